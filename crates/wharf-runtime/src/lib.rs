//! Runtime contract and OCI spec building.
//!
//! Owns: Docker container config → OCI runtime spec and an exec's OCI process ([`spec`], pure,
//! unit-tested), the daemon↔shim contract ([`shim_proto`]), executable lookup inside a rootfs
//! ([`exec_lookup`]), a container's cgroup as files ([`cgroupfs`]: the shim freezes it, the
//! engine reads its pids), and pre-paying the first cgroup migration's RCU grace period
//! ([`cgroup_lock`]), and the pins by which log readers hold back a rotation ([`logpin`]).
//! Must not touch: tokio, the database, the Engine API types.

pub mod cgroup_lock;
pub mod cgroupfs;
pub mod exec_lookup;
pub mod fdpass;
pub mod logpin;
pub mod shim_proto;
pub mod spec;
