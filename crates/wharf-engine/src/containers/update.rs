//! `docker update`: new resource limits (written into a running container's cgroups by its
//! shim, and kept for its next starts) and the restart policy, with dockerd's rules and words.

use super::config;
use super::model::Status;
use super::restart::validate as validate_restart;
use super::{lock, shim, ContainerService};
use crate::error::{Cause, EngineError};
use wharf_api::container::{
    ContainerUpdateRequest, ContainerUpdateResponse, HostConfig, Resources,
};
use wharf_runtime::shim_proto::Request;

fn cannot(id: &str, why: impl std::fmt::Display) -> EngineError {
    EngineError::invalid(format!("Cannot update container {id}: {why}"))
}

/// dockerd's `UpdateContainer`: the request's non-zero fields replace the current ones, with
/// its conflict checks between NanoCpus and CpuPeriod/CpuQuota and between Memory and
/// MemorySwap.
pub fn merge_update(current: &Resources, req: &Resources) -> Result<Resources, String> {
    let mut r = current.clone();
    if req.nano_cpus > 0 && r.cpu_period > 0 {
        return Err(
            "Conflicting options: Nano CPUs cannot be updated as CPU Period has already been set"
                .into(),
        );
    }
    if req.nano_cpus > 0 && r.cpu_quota > 0 {
        return Err(
            "Conflicting options: Nano CPUs cannot be updated as CPU Quota has already been set"
                .into(),
        );
    }
    if req.cpu_period > 0 && r.nano_cpus > 0 {
        return Err(
            "Conflicting options: CPU Period cannot be updated as NanoCPUs has already been set"
                .into(),
        );
    }
    if req.cpu_quota > 0 && r.nano_cpus > 0 {
        return Err(
            "Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set"
                .into(),
        );
    }
    if req.blkio_weight != 0 {
        r.blkio_weight = req.blkio_weight;
    }
    if req.cpu_shares != 0 {
        r.cpu_shares = req.cpu_shares;
    }
    if req.nano_cpus != 0 {
        r.nano_cpus = req.nano_cpus;
    }
    if req.cpu_period != 0 {
        r.cpu_period = req.cpu_period;
    }
    if req.cpu_quota != 0 {
        r.cpu_quota = req.cpu_quota;
    }
    if !req.cpuset_cpus.is_empty() {
        r.cpuset_cpus = req.cpuset_cpus.clone();
    }
    if !req.cpuset_mems.is_empty() {
        r.cpuset_mems = req.cpuset_mems.clone();
    }
    if req.memory != 0 {
        if req.memory > r.memory_swap && req.memory_swap == 0 {
            return Err("Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time".into());
        }
        r.memory = req.memory;
    }
    if req.memory_swap != 0 {
        r.memory_swap = req.memory_swap;
    }
    if req.memory_reservation != 0 {
        r.memory_reservation = req.memory_reservation;
    }
    if req.pids_limit.is_some() {
        r.pids_limit = req.pids_limit;
    }
    Ok(r)
}

/// Whether the request changes any resource at all.
fn touches_resources(req: &Resources) -> bool {
    req.blkio_weight != 0
        || req.cpu_shares != 0
        || req.nano_cpus != 0
        || req.cpu_period != 0
        || req.cpu_quota != 0
        || !req.cpuset_cpus.is_empty()
        || !req.cpuset_mems.is_empty()
        || req.memory != 0
        || req.memory_swap != 0
        || req.memory_reservation != 0
        || req.pids_limit.is_some()
}

impl ContainerService {
    pub async fn update(
        &self,
        name: &str,
        req: ContainerUpdateRequest,
    ) -> Result<ContainerUpdateResponse, EngineError> {
        let c = self.resolve(name)?;
        let body = serde_json::to_value(&req).map_err(|e| e.during("reading the request"))?;
        crate::honour::check(crate::honour::update::TABLE, "", &body)?;
        crate::honour::values::update(&body)?;
        let mut wanted = req.resources.clone();
        config::validate_resources(&mut wanted, &self.ctx.host, true)?;
        let policy = req.restart_policy.filter(|p| !p.name.is_empty());
        if let Some(p) = &policy {
            validate_restart(&HostConfig {
                restart_policy: p.clone(),
                ..Default::default()
            })?;
        }
        let _op = c.op.lock().await;
        if matches!(c.state().status, Status::Removing | Status::Dead) {
            return Err(cannot(
                c.id(),
                "container is marked for removal and cannot be \"update\"",
            ));
        }
        if let Some(p) = &policy {
            if c.spec.host_config.auto_remove && p.name != "no" {
                return Err(cannot(
                    c.id(),
                    "Restart policy cannot be updated because AutoRemove is enabled for the container",
                ));
            }
        }
        let resources = if touches_resources(&wanted) {
            let merged = merge_update(&self.effective_resources(&c), &wanted)
                .map_err(|e| cannot(c.id(), e))?;
            // A running (or paused) container gets the request's limits now, as dockerd hands
            // them to containerd; a stopped one gets them all at its next start.
            if c.is_running() && !c.is_restarting() {
                let mut limits = config::limits(&wanted);
                // libcgroups rewrites memory.oom_control with every memory update: carry the
                // container's own setting, which an update cannot change.
                limits.oom_kill_disable = merged.oom_kill_disable.filter(|d| *d);
                shim::request(&self.exec_dir(c.id()), &Request::Update { limits })
                    .await
                    .map_err(|e| {
                        EngineError::internal(format!("Cannot update container {}: {e}", c.id()))
                    })?;
            }
            Some(merged)
        } else {
            None
        };
        {
            let mut st = lock(&c.state);
            if let Some(r) = resources {
                st.resources = Some(r);
            }
            if let Some(p) = policy {
                st.restart_policy = Some(p);
            }
        }
        self.persist_state(&c)?;
        self.emit(&c, "update", &[]);
        Ok(ContainerUpdateResponse::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockers_update_rules() {
        let cur = Resources {
            memory: 16 << 20,
            memory_swap: 32 << 20,
            cpu_quota: 50_000,
            ..Default::default()
        };
        let got = merge_update(
            &cur,
            &Resources {
                memory: 24 << 20,
                pids_limit: Some(10),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            (got.memory, got.memory_swap, got.pids_limit),
            (24 << 20, 32 << 20, Some(10))
        );
        let e = merge_update(
            &cur,
            &Resources {
                memory: 64 << 20,
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(e.starts_with("Memory limit should be smaller"));
        let e = merge_update(
            &cur,
            &Resources {
                nano_cpus: 1_000_000_000,
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(e.contains("CPU Quota has already been set"));
        assert!(!touches_resources(&Resources::default()));
    }
}
