//! What a start needs from other containers and from the host beyond the config: the
//! namespaces of `--pid/--ipc container:<id>` donors, the shared `/dev/shm`, the resources in
//! force after `docker update`, and dockerd's default network sysctls.

use super::model::Status;
use super::{lock, Container, ContainerService};
use crate::error::EngineError;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use wharf_api::container::Resources;
use wharf_runtime::spec::{NsMode, Shm};

impl ContainerService {
    /// A running donor's init pid, in dockerd's words when it cannot be joined.
    fn donor_pid(
        &self,
        name: &str,
        what: &str,
    ) -> Result<(i64, std::sync::Arc<Container>), EngineError> {
        let donor = self
            .resolve(name)
            .map_err(|e| EngineError::invalid(e.message()))?;
        let st = donor.state();
        if donor.is_restarting() {
            return Err(EngineError::conflict(format!(
                "container {} is restarting, wait until the container is running",
                donor.id()
            )));
        }
        if st.status != Status::Running || st.pid <= 0 {
            return Err(EngineError::conflict(format!(
                "cannot join {what} of a non running container: {}",
                donor.id()
            )));
        }
        Ok((st.pid, donor))
    }

    /// The pid and IPC namespaces to join and the `/dev/shm` to use, for this start.
    pub(super) fn namespaces_to_join(
        &self,
        c: &Container,
    ) -> Result<(NsMode, NsMode, Shm), EngineError> {
        let hc = &c.spec.host_config;
        let ns =
            |pid: i64, kind: &str| NsMode::Join(PathBuf::from(format!("/proc/{pid}/ns/{kind}")));
        let pid = match hc.pid_mode.strip_prefix("container:") {
            Some(name) => ns(self.donor_pid(name, "PID")?.0, "pid"),
            None if hc.pid_mode == "host" => NsMode::Host,
            None => NsMode::Private,
        };
        let shm_size = u64::try_from(hc.shm_size)
            .ok()
            .filter(|s| *s > 0)
            .unwrap_or(super::config::DEFAULT_SHM_SIZE as u64);
        let (ipc, shm) = match hc.ipc_mode.strip_prefix("container:") {
            Some(name) => {
                let (donor_pid, donor) = self.donor_pid(name, "IPC")?;
                let shm = match donor.spec.host_config.ipc_mode.as_str() {
                    "host" => Shm::Bind("/dev/shm".into()),
                    "shareable" => Shm::Bind(self.exec_dir(donor.id()).join(super::SHM_DIR)),
                    _ => return Err(EngineError::invalid(
                        "non-shareable IPC (hint: use IpcMode:shareable for the donor container)",
                    )),
                };
                (ns(donor_pid, "ipc"), shm)
            }
            None => match hc.ipc_mode.as_str() {
                "host" => (NsMode::Host, Shm::Bind("/dev/shm".into())),
                "none" => (NsMode::Private, Shm::None),
                // Its /dev/shm is the host tmpfs the start mounted, so joiners see the same one.
                "shareable" => (
                    NsMode::Private,
                    Shm::Bind(self.exec_dir(c.id()).join(super::SHM_DIR)),
                ),
                _ => (NsMode::Private, Shm::Private(shm_size)),
            },
        };
        Ok((pid, ipc, shm))
    }

    /// The resources in force: the last `docker update`'s, else the create-time ones.
    pub(super) fn effective_resources(&self, c: &Container) -> Resources {
        lock(&c.state)
            .resources
            .clone()
            .unwrap_or_else(|| c.spec.host_config.resources.clone())
    }
}

/// The host tmpfs behind a shareable container's `/dev/shm`, with dockerd's options.
pub(super) fn shm_mount(shm_size: i64) -> wharf_storage::Mount {
    let size = u64::try_from(shm_size)
        .ok()
        .filter(|s| *s > 0)
        .unwrap_or(super::config::DEFAULT_SHM_SIZE as u64);
    wharf_storage::Mount {
        kind: "tmpfs".into(),
        source: "shm".into(),
        options: vec![
            "nosuid".into(),
            "nodev".into(),
            "noexec".into(),
            "mode=1777".into(),
            format!("size={size}"),
        ],
    }
}

/// dockerd's defaults for a private network namespace: ping without CAP_NET_RAW and binding
/// low ports without CAP_NET_BIND_SERVICE, where the kernel has the knobs.
pub(super) fn default_net_sysctls() -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for (k, v) in [
        ("net.ipv4.ping_group_range", "0 2147483647"),
        ("net.ipv4.ip_unprivileged_port_start", "0"),
    ] {
        if Path::new("/proc/sys").join(k.replace('.', "/")).exists() {
            m.insert(k.to_string(), v.to_string());
        }
    }
    m
}

/// `?platform=` of a create: the image must be for it (dockerd answers 404 otherwise).
pub(super) fn check_platform(
    platform: Option<&str>,
    image_ref: &str,
    image: &crate::images::ImageConfigDoc,
) -> Result<(), EngineError> {
    let Some(wanted) = platform.filter(|p| !p.is_empty()) else {
        return Ok(());
    };
    let mut parts = wanted.split('/');
    let os = parts.next().unwrap_or("");
    let arch = parts.next().unwrap_or("");
    let actual = format!("{}/{}", image.os, image.architecture);
    let arch_matches = arch.is_empty()
        || arch == image.architecture
        || (arch == "x86_64" && image.architecture == "amd64");
    if os != image.os || !arch_matches {
        return Err(EngineError::not_found(format!(
            "image with reference {image_ref} was found but does not match the specified platform: wanted {wanted}, actual: {actual}"
        )));
    }
    Ok(())
}
