//! list and inspect: how containers look from outside.

use super::model::Status;
use super::{Container, ContainerService};
use crate::error::EngineError;
use crate::timefmt;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use wharf_api::container::{ContainerInspect, ContainerState, ContainerSummary, GraphDriver};
use wharf_api::filters::{FilterSet, Filters};
use wharf_backend::ListContainersOptions;

/// `GET /containers/json` filters (moby v25 `daemon/list.go` `acceptedPsFilterTags`).
/// Networks and ports are not Wharf's yet, so filtering on them is refused.
pub const LIST_FILTERS: FilterSet = FilterSet {
    applied: &[
        "ancestor",
        "before",
        "exited",
        "health",
        "id",
        "isolation",
        "is-task",
        "label",
        "name",
        "since",
        "status",
        "volume",
    ],
    not_yet: &["expose", "network", "publish"],
};

/// moby's `container.IsValidStateString`.
const STATES: &[&str] = &[
    "created",
    "restarting",
    "running",
    "removing",
    "paused",
    "exited",
    "dead",
];

/// `Up 3 seconds`, `Exited (0) 30 seconds ago`, `Created`.
fn status_text(c: &Container) -> String {
    let st = c.state();
    match st.status {
        Status::Running => format!(
            "Up {}{}",
            timefmt::human_duration(timefmt::seconds_since(&st.started_at)),
            match (&st.health, st.paused) {
                (_, true) => " (Paused)".to_string(),
                (Some(h), false) => format!(" ({})", super::health::status_suffix(h)),
                (None, false) => String::new(),
            }
        ),
        Status::Exited if c.is_restarting() => format!(
            "Restarting ({}) {} ago",
            st.exit_code,
            timefmt::human_duration(timefmt::seconds_since(&st.finished_at))
        ),
        Status::Exited => format!(
            "Exited ({}) {} ago",
            st.exit_code,
            timefmt::human_duration(timefmt::seconds_since(&st.finished_at))
        ),
        Status::Created => "Created".into(),
        Status::Removing => "Removal In Progress".into(),
        Status::Dead => "Dead".into(),
    }
}

fn network_settings(c: &Container) -> Value {
    let mode = c.spec.host_config.network_mode.clone();
    let net_name = if mode == "default" {
        "bridge".to_string()
    } else {
        mode
    };
    json!({
        "Networks": {
            net_name: {
                "IPAMConfig": null, "Links": null, "Aliases": null, "NetworkID": "",
                "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0,
                "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
                "MacAddress": "", "DriverOpts": null
            }
        }
    })
}

impl ContainerService {
    fn image_name(&self, c: &Container) -> String {
        if c.spec.config.image.is_empty() {
            c.spec.image_id.clone()
        } else {
            c.spec.config.image.clone()
        }
    }

    /// The values' checks of moby's `foldFilter`, in its words, before any container is looked
    /// at; returns the `is-task` choice.
    fn check_filter_values(f: &Filters) -> Result<Option<bool>, EngineError> {
        for v in f.get("exited") {
            if v.parse::<i64>().is_err() {
                return Err(EngineError::invalid(format!(
                    "invalid filter 'exited={v}': strconv.Atoi: parsing {v:?}: invalid syntax"
                )));
            }
        }
        for s in f.get("status") {
            if !STATES.contains(&s.as_str()) {
                return Err(EngineError::invalid(format!("invalid filter 'status={s}'")));
            }
        }
        for h in f.get("health") {
            if !super::health::valid_filter_value(h) {
                return Err(EngineError::invalid(format!(
                    "unrecognized filter value for health: {h}"
                )));
            }
        }
        if f.contains("is-task") {
            return Ok(f.bool_or_default("is-task", false).map(Some)?);
        }
        Ok(None)
    }

    fn matches(&self, c: &Container, f: &Filters, is_task: Option<bool>) -> bool {
        let st = c.state();
        let ok_any = |key: &str, pred: &dyn Fn(&str) -> bool| -> bool {
            let vals = f.get(key);
            vals.is_empty() || vals.iter().any(|v| pred(v))
        };
        let labels = c.spec.config.labels.clone().unwrap_or_default();
        let name = c.name();
        // No Wharf container is a swarm task.
        if is_task == Some(true) {
            return false;
        }
        ok_any("id", &|v| c.id().starts_with(v))
            && ok_any("name", &|v| {
                let v = v.strip_prefix('/').unwrap_or(v);
                name.contains(v)
            })
            && ok_any("status", &|v| v == st.status_name(c.is_restarting()))
            && ok_any("ancestor", &|v| {
                let img = self.images.resolve(v).ok();
                match img {
                    Some(i) => i.record.id == c.spec.image_id,
                    None => c.spec.config.image == v,
                }
            })
            // moby: only a container that ran and is not running has an exit code to match.
            && ok_any("exited", &|v| {
                st.status != Status::Running
                    && !st.started_at.is_empty()
                    && !st.started_at.starts_with("0001-")
                    && v.parse::<i64>().ok() == Some(st.exit_code)
            })
            && ok_any("health", &|v| {
                v == super::health::filter_value(st.health.as_ref())
            })
            // dockerd's: a destination, or a volume's name (a bind's source).
            && ok_any("volume", &|v| {
                c.spec.mounts.iter().any(|m| {
                    m.destination == v
                        || if m.name.is_empty() { m.source == v } else { m.name == v }
                })
            })
            // A Linux container's isolation is always "default" (moby `excludeByIsolation`;
            // the value is a pattern there, a substring here).
            && ok_any("isolation", &|v| "default".contains(v))
            && f.match_labels(&labels)
    }

    pub async fn list(
        &self,
        opts: ListContainersOptions,
    ) -> Result<Vec<ContainerSummary>, EngineError> {
        opts.filters.check(&LIST_FILTERS)?;
        let is_task = Self::check_filter_values(&opts.filters)?;
        let mut all: Vec<Arc<Container>> = self.all();
        all.sort_by(|a, b| b.spec.created.cmp(&a.spec.created));
        let before = self.anchor(opts.filters.get("before"))?;
        let since = self.anchor(opts.filters.get("since"))?;
        let limit = opts.limit.filter(|l| *l > 0);
        // moby: a `status` filter implies all; `exited` does not.
        let show_all = opts.all || limit.is_some() || opts.filters.contains("status");
        let mut out = Vec::new();
        for c in all {
            if !show_all && !c.is_running() {
                continue;
            }
            if let Some(b) = &before {
                if c.spec.created >= *b {
                    continue;
                }
            }
            if let Some(s) = &since {
                if c.spec.created <= *s {
                    continue;
                }
            }
            if !self.matches(&c, &opts.filters, is_task) {
                continue;
            }
            out.push(self.summary(&c, opts.size));
            if let Some(l) = limit {
                if out.len() as i64 >= l {
                    break;
                }
            }
        }
        Ok(out)
    }

    fn anchor(&self, v: &[String]) -> Result<Option<String>, EngineError> {
        match v.first() {
            Some(name) => Ok(Some(self.resolve(name)?.spec.created.clone())),
            None => Ok(None),
        }
    }

    fn sizes(&self, c: &Container) -> (i64, i64) {
        let rw = self.ctx.snaps.usage(&c.spec.snapshot_key).unwrap_or(0) as i64;
        let img = self.images.size_of(&c.spec.image_id);
        (rw, rw + img)
    }

    fn summary(&self, c: &Container, size: bool) -> ContainerSummary {
        let st = c.state();
        let mut command = c.spec.path.clone();
        for a in &c.spec.args {
            command.push(' ');
            command.push_str(a);
        }
        let (size_rw, size_root_fs) = if size {
            let (rw, root) = self.sizes(c);
            (Some(rw), Some(root))
        } else {
            (None, None)
        };
        ContainerSummary {
            id: c.id().to_string(),
            names: vec![format!("/{}", c.name())],
            image: self.image_name(c),
            image_id: c.spec.image_id.clone(),
            command,
            created: timefmt::unix_seconds(&c.spec.created),
            ports: Vec::new(),
            size_rw,
            size_root_fs,
            labels: c.spec.config.labels.clone().unwrap_or_default(),
            state: st.status_name(c.is_restarting()).to_string(),
            status: status_text(c),
            host_config: json!({"NetworkMode": c.spec.host_config.network_mode}),
            network_settings: network_settings(c),
            mounts: c.spec.mounts.clone(),
        }
    }

    pub async fn inspect(&self, name: &str, size: bool) -> Result<ContainerInspect, EngineError> {
        let c = self.resolve(name)?;
        let st = c.state();
        let id = c.id().to_string();
        let etc_dir = self.exec_dir(&id);
        let snap_dir = self
            .ctx
            .snaps
            .upper_dir(&c.spec.snapshot_key)
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let mut gd = BTreeMap::new();
        gd.insert("UpperDir".to_string(), snap_dir);
        gd.insert(
            "MergedDir".to_string(),
            self.rootfs_dir(&id).display().to_string(),
        );
        let (size_rw, size_root_fs) = if size {
            let (rw, root) = self.sizes(&c);
            (Some(rw), Some(root))
        } else {
            (None, None)
        };
        let mut network = network_settings(&c);
        if let Some(obj) = network.as_object_mut() {
            for (k, v) in [
                ("Bridge", json!("")),
                ("SandboxID", json!("")),
                ("HairpinMode", json!(false)),
                ("LinkLocalIPv6Address", json!("")),
                ("LinkLocalIPv6PrefixLen", json!(0)),
                ("Ports", json!({})),
                ("SandboxKey", json!("")),
                ("SecondaryIPAddresses", Value::Null),
                ("SecondaryIPv6Addresses", Value::Null),
                ("EndpointID", json!("")),
                ("Gateway", json!("")),
                ("GlobalIPv6Address", json!("")),
                ("GlobalIPv6PrefixLen", json!(0)),
                ("IPAddress", json!("")),
                ("IPPrefixLen", json!(0)),
                ("IPv6Gateway", json!("")),
                ("MacAddress", json!("")),
            ] {
                obj.insert(k.to_string(), v);
            }
        }
        Ok(ContainerInspect {
            id: id.clone(),
            created: c.spec.created.clone(),
            path: c.spec.path.clone(),
            args: c.spec.args.clone(),
            state: ContainerState {
                status: st.status_name(c.is_restarting()).to_string(),
                running: st.status == Status::Running,
                paused: st.status == Status::Running && st.paused,
                restarting: c.is_restarting(),
                oom_killed: st.oom_killed,
                dead: st.status == Status::Dead,
                pid: st.pid,
                exit_code: st.exit_code,
                error: st.error.clone(),
                started_at: st.started_at.clone(),
                finished_at: st.finished_at.clone(),
                health: st.health.clone(),
            },
            image: c.spec.image_id.clone(),
            resolv_conf_path: etc_dir.join("resolv.conf").display().to_string(),
            hostname_path: etc_dir.join("hostname").display().to_string(),
            hosts_path: etc_dir.join("hosts").display().to_string(),
            // dockerd shows no path for a driver that keeps no file.
            log_path: if c.spec.host_config.log_config.r#type == "none" {
                String::new()
            } else {
                self.log_path(&id).display().to_string()
            },
            name: format!("/{}", c.name()),
            restart_count: st.restart_count,
            driver: crate::STORAGE_DRIVER.to_string(),
            platform: "linux".into(),
            mount_label: String::new(),
            process_label: String::new(),
            app_armor_profile: String::new(),
            // The engine fills it from the exec service, which owns the execs.
            exec_ids: None,
            host_config: {
                let mut hc = c.spec.host_config.clone();
                hc.restart_policy = super::restart::effective_policy(&c);
                hc.resources = self.effective_resources(&c);
                hc
            },
            graph_driver: GraphDriver {
                data: gd,
                name: crate::STORAGE_DRIVER.to_string(),
            },
            size_rw,
            size_root_fs,
            mounts: c.spec.mounts.clone(),
            config: c.spec.config.clone(),
            network_settings: network,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_names_are_mobys() {
        // moby v25 `daemon/list.go` `acceptedPsFilterTags`.
        assert_eq!(
            LIST_FILTERS.docker_names(),
            [
                "ancestor",
                "before",
                "exited",
                "expose",
                "health",
                "id",
                "is-task",
                "isolation",
                "label",
                "name",
                "network",
                "publish",
                "since",
                "status",
                "volume"
            ]
        );
        // moby v25 `daemon/images/image_list.go` `acceptedImageFilterTags`.
        assert_eq!(
            crate::images::filters::LIST_FILTERS.docker_names(),
            ["before", "dangling", "label", "reference", "since", "until"]
        );
    }

    #[test]
    fn filter_values_in_mobys_words() {
        let check = |j: &str| {
            ContainerService::check_filter_values(&Filters::parse(j).unwrap())
                .map_err(|e| e.message())
        };
        assert_eq!(
            check(r#"{"status":["up"]}"#).unwrap_err(),
            "invalid filter 'status=up'"
        );
        assert_eq!(
            check(r#"{"exited":["x"]}"#).unwrap_err(),
            "invalid filter 'exited=x': strconv.Atoi: parsing \"x\": invalid syntax"
        );
        assert_eq!(
            check(r#"{"health":["sick"]}"#).unwrap_err(),
            "unrecognized filter value for health: sick"
        );
        assert_eq!(check(r#"{"is-task":["true"]}"#).unwrap(), Some(true));
        assert_eq!(
            check(r#"{"is-task":["maybe"]}"#).unwrap_err(),
            "invalid filter 'is-task=[maybe]'"
        );
        assert_eq!(check("{}").unwrap(), None);
    }
}
