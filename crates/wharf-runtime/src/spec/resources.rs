//! A container's cgroup limits in runtime terms, and their OCI form. The same [`Limits`] go
//! into `config.json` at start and, for `docker update` of a running container, to the shim
//! (`shim_proto::Request::Update`), so both paths write the same cgroup values.

use super::SpecError;
use oci_spec::runtime::{
    LinuxBlockIoBuilder, LinuxCpu, LinuxCpuBuilder, LinuxMemory, LinuxMemoryBuilder, LinuxPids,
    LinuxPidsBuilder, LinuxResourcesBuilder,
};
use serde::{Deserialize, Serialize};

/// `None` leaves the kernel's default (no limit). Values are already in the kernel's units.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_reservation: Option<i64>,
    /// Memory plus swap, bytes; -1 unlimited swap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_swap: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_swappiness: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oom_kill_disable: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_shares: Option<u64>,
    /// CFS period, microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_period: Option<u64>,
    /// CFS quota, microseconds per period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_quota: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpuset_cpus: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpuset_mems: Option<String>,
    /// -1 unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids_limit: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blkio_weight: Option<u16>,
}

/// The OCI pieces of [`Limits`]; `None` where nothing is limited.
pub struct OciLimits {
    pub memory: Option<LinuxMemory>,
    pub cpu: Option<LinuxCpu>,
    pub pids: Option<LinuxPids>,
    pub block_io: Option<oci_spec::runtime::LinuxBlockIo>,
}

impl Limits {
    pub fn to_oci(&self) -> Result<OciLimits, SpecError> {
        let memory = if self.memory.is_some()
            || self.memory_reservation.is_some()
            || self.memory_swap.is_some()
            || self.memory_swappiness.is_some()
            || self.oom_kill_disable.is_some()
        {
            let mut b = LinuxMemoryBuilder::default();
            if let Some(v) = self.memory {
                b = b.limit(v);
            }
            if let Some(v) = self.memory_reservation {
                b = b.reservation(v);
            }
            if let Some(v) = self.memory_swap {
                b = b.swap(v);
            }
            if let Some(v) = self.memory_swappiness {
                b = b.swappiness(v);
            }
            if let Some(v) = self.oom_kill_disable {
                b = b.disable_oom_killer(v);
            }
            Some(b.build()?)
        } else {
            None
        };
        let cpu = if self.cpu_shares.is_some()
            || self.cpu_period.is_some()
            || self.cpu_quota.is_some()
            || self.cpuset_cpus.is_some()
            || self.cpuset_mems.is_some()
        {
            let mut b = LinuxCpuBuilder::default();
            if let Some(v) = self.cpu_shares {
                b = b.shares(v);
            }
            if let Some(v) = self.cpu_period {
                b = b.period(v);
            }
            if let Some(v) = self.cpu_quota {
                b = b.quota(v);
            }
            if let Some(v) = &self.cpuset_cpus {
                b = b.cpus(v.clone());
            }
            if let Some(v) = &self.cpuset_mems {
                b = b.mems(v.clone());
            }
            Some(b.build()?)
        } else {
            None
        };
        let pids = match self.pids_limit {
            Some(l) => Some(LinuxPidsBuilder::default().limit(l).build()?),
            None => None,
        };
        let block_io = match self.blkio_weight {
            Some(w) => Some(LinuxBlockIoBuilder::default().weight(w).build()?),
            None => None,
        };
        Ok(OciLimits {
            memory,
            cpu,
            pids,
            block_io,
        })
    }

    /// The `LinuxResources` an update applies: the limits only, no device rules (an update
    /// never touches the device cgroup).
    pub fn to_update_resources(&self) -> Result<oci_spec::runtime::LinuxResources, SpecError> {
        let o = self.to_oci()?;
        let mut b = LinuxResourcesBuilder::default();
        if let Some(m) = o.memory {
            b = b.memory(m);
        }
        if let Some(c) = o.cpu {
            b = b.cpu(c);
        }
        if let Some(p) = o.pids {
            b = b.pids(p);
        }
        if let Some(io) = o.block_io {
            b = b.block_io(io);
        }
        let mut r = b.build()?;
        // The builder's default is an empty allow-list, which a v2 runtime would turn into
        // "deny every device".
        r.set_devices(None);
        Ok(r)
    }
}
