//! dockerd's `merge` of `daemon/commit.go`: what the committed config leaves empty, the
//! container's config fills.

use wharf_api::container::ContainerConfig;

/// Fills `user` (the body's or the container's config with the changes applied) from `base`
/// (the container's config), field by field as dockerd does.
pub fn merge(user: &mut ContainerConfig, base: &ContainerConfig) {
    if user.user.is_empty() {
        user.user = base.user.clone();
    }
    match (&mut user.exposed_ports, &base.exposed_ports) {
        (Some(mine), Some(theirs)) if !mine.is_empty() => {
            for (k, v) in theirs {
                mine.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        (mine, theirs) => *mine = theirs.clone(),
    }
    match (&mut user.env, &base.env) {
        (Some(mine), Some(theirs)) if !mine.is_empty() => {
            let key = |e: &str| e.split_once('=').map_or(e, |(k, _)| k).to_string();
            for e in theirs {
                if !mine.iter().any(|m| key(m) == key(e)) {
                    mine.push(e.clone());
                }
            }
        }
        (mine, theirs) => *mine = theirs.clone(),
    }
    let labels = user.labels.get_or_insert_with(Default::default);
    for (k, v) in base.labels.iter().flatten() {
        labels.entry(k.clone()).or_insert_with(|| v.clone());
    }
    if user.entrypoint.as_ref().is_none_or(Vec::is_empty) {
        if user.cmd.as_ref().is_none_or(Vec::is_empty) {
            user.cmd = base.cmd.clone();
        }
        if user.entrypoint.is_none() {
            user.entrypoint = base.entrypoint.clone();
        }
    }
    if let Some(theirs) = &base.healthcheck {
        match &mut user.healthcheck {
            None => user.healthcheck = Some(theirs.clone()),
            Some(mine) => {
                if mine.test.is_empty() {
                    mine.test = theirs.test.clone();
                }
                if mine.interval == 0 {
                    mine.interval = theirs.interval;
                }
                if mine.timeout == 0 {
                    mine.timeout = theirs.timeout;
                }
                if mine.start_period == 0 {
                    mine.start_period = theirs.start_period;
                }
                if mine.start_interval == 0 {
                    mine.start_interval = theirs.start_interval;
                }
                if mine.retries == 0 {
                    mine.retries = theirs.retries;
                }
            }
        }
    }
    if user.working_dir.is_empty() {
        user.working_dir = base.working_dir.clone();
    }
    match (&mut user.volumes, &base.volumes) {
        (Some(mine), Some(theirs)) if !mine.is_empty() => {
            // dockerd's: the container's volumes win over the new config's.
            for (k, v) in theirs {
                mine.insert(k.clone(), v.clone());
            }
        }
        (mine, theirs) => *mine = theirs.clone(),
    }
    if user.stop_signal.as_deref().unwrap_or("").is_empty() {
        user.stop_signal = base.stop_signal.clone();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn base() -> ContainerConfig {
        ContainerConfig {
            user: "root".into(),
            env: Some(vec!["PATH=/bin".into(), "A=base".into()]),
            cmd: Some(vec!["sh".into()]),
            working_dir: "/w".into(),
            labels: Some(BTreeMap::from([("l".into(), "base".into())])),
            stop_signal: Some("SIGINT".into()),
            ..Default::default()
        }
    }

    #[test]
    fn the_container_fills_what_the_new_config_leaves_empty() {
        let mut c = ContainerConfig {
            env: Some(vec!["A=new".into()]),
            labels: Some(BTreeMap::from([("m".into(), "new".into())])),
            ..Default::default()
        };
        merge(&mut c, &base());
        assert_eq!(c.user, "root");
        assert_eq!(c.env.unwrap(), vec!["A=new", "PATH=/bin"]);
        assert_eq!(c.cmd.unwrap(), vec!["sh"]);
        assert_eq!(c.working_dir, "/w");
        assert_eq!(c.labels.unwrap().len(), 2);
        assert_eq!(c.stop_signal.as_deref(), Some("SIGINT"));
    }

    #[test]
    fn an_entrypoint_keeps_its_empty_cmd() {
        let mut c = ContainerConfig {
            entrypoint: Some(vec!["e".into()]),
            ..Default::default()
        };
        merge(&mut c, &base());
        assert_eq!(c.cmd, None);
        assert_eq!(c.entrypoint.unwrap(), vec!["e"]);
    }
}
