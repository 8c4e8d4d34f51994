//! A container's volume, bind and tmpfs mounts (`-v`, `--mount`, `--volumes-from`, the
//! image's `VOLUME`s), as dockerd 25 makes them:
//! - [`parse`]: the syntax and dockerd's validation, pure;
//! - [`resolve`]: at create, every source folded into one list of `MountPoint`s (what
//!   inspect shows, stored in `ContainerSpec.mounts`), volumes claimed through
//!   `VolumeService::use_volume`, and the image's content copied into empty volumes;
//! - [`copyup`]: that copy, crash-safe (a marker beside the volume's data);
//! - [`start`]: at each start, the volumes mounted through `VolumeService::mount`, bind
//!   sources made, and the runtime's bind mounts with their propagation.
//!
//! `docs/mounts.md` tells the whole story.

pub mod copyup;
pub mod parse;
pub mod resolve;
pub mod start;

use serde::{Deserialize, Serialize};

/// What a mount needs beyond what inspect shows (dockerd keeps it in its `MountPoint.Spec`),
/// stored with the container, keyed by destination.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountExtra {
    /// A volume the user did not name: `rm -v` and `--rm` remove it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub anonymous: bool,
    /// Copy the image's content at the destination into the volume when it is empty.
    #[serde(default, skip_serializing_if = "is_false")]
    pub copy_data: bool,
    /// A bind's missing source is made at start (`-v`, `CreateMountpoint`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub create_source: bool,
    /// `BindOptions.NonRecursive`: `bind`, not `rbind`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub non_recursive: bool,
    /// `BindOptions.ReadOnlyNonRecursive`: `ro` on the top mount only, not `rro`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub readonly_non_recursive: bool,
    /// The propagation was given by the user (a bind in the daemon's root falls back to
    /// private only when it was not).
    #[serde(default, skip_serializing_if = "is_false")]
    pub propagation_asked: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}
