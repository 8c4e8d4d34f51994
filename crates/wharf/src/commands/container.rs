//! `ps`, `logs`, `stop`/`restart`, `kill`, `rm`, `rename`, `wait`.

use super::create_body::{self, BadFlag};
use super::{err_out, filters_json, for_each, out, Ctx, Exit};
use crate::cli::{KillArgs, LogsArgs, PsArgs, RenameArgs, RmArgs, StopArgs, TopArgs, UpdateArgs};
use crate::format::{ellipsis, go_quote, truncate_id, units, Format};
use anyhow::Result;
use serde_json::{json, Value};
use wharf_api::stdcopy::StdStream;
use wharf_client::{encode, with_query, LogsOptions, Method};

const PS_TABLE: &str =
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";

pub fn ps_headers() -> Value {
    json!({
        "ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
        "RunningFor": "CREATED", "Ports": "PORTS", "Status": "STATUS", "Size": "SIZE",
        "Names": "NAMES", "Labels": "LABELS", "State": "STATE", "Mounts": "MOUNTS",
        "Networks": "NETWORKS", "LocalVolumes": "LOCAL VOLUMES", "Platform": "PLATFORM",
    })
}

/// One `ps` row with docker's formatter fields, computed from a container summary.
pub fn ps_row(c: &Value, trunc: bool) -> Value {
    let s = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let n = |k: &str| c.get(k).and_then(Value::as_i64).unwrap_or(0);
    let id = s("Id");
    let mut image = s("Image");
    if image.is_empty() {
        image = "<no image>".into();
    } else if trunc && image.starts_with("sha256:") {
        image = truncate_id(&image);
    }
    let command = s("Command");
    let command = go_quote(&if trunc {
        ellipsis(&command, 20)
    } else {
        command
    });
    let mut names: Vec<String> = c
        .get("Names")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(|n| n.trim_start_matches('/').to_string())
                .collect()
        })
        .unwrap_or_default();
    if trunc {
        if let Some(first) = names.iter().find(|n| !n.contains('/')).cloned() {
            names = vec![first];
        }
    }
    let mut labels: Vec<String> = c
        .get("Labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    labels.sort();
    let srw = units::human_size(n("SizeRw") as f64);
    let size = if n("SizeRootFs") > 0 {
        format!(
            "{srw} (virtual {})",
            units::human_size(n("SizeRootFs") as f64)
        )
    } else {
        srw
    };
    let mut networks: Vec<String> = c
        .pointer("/NetworkSettings/Networks")
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    networks.sort();
    let mounts = c.get("Mounts").and_then(Value::as_array);
    let mount_names: Vec<String> = mounts
        .map(|a| {
            a.iter()
                .map(|m| {
                    let name = m
                        .get("Name")
                        .and_then(Value::as_str)
                        .filter(|s| !s.is_empty())
                        .or_else(|| m.get("Source").and_then(Value::as_str))
                        .unwrap_or("");
                    if trunc {
                        ellipsis(name, 15)
                    } else {
                        name.to_string()
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let local_volumes = mounts.map_or(0, |a| {
        a.iter()
            .filter(|m| m.get("Driver").and_then(Value::as_str) == Some("local"))
            .count()
    });
    json!({
        "ID": if trunc { truncate_id(&id) } else { id },
        "Image": image,
        "Command": command,
        "CreatedAt": units::go_time_string(n("Created")),
        "RunningFor": units::since_ago(n("Created")),
        "Ports": display_ports(c.get("Ports")),
        "Status": s("Status"),
        "Size": size,
        "Names": names.join(","),
        "Labels": labels.join(","),
        "State": s("State"),
        "Mounts": mount_names.join(","),
        "Networks": networks.join(","),
        "LocalVolumes": local_volumes.to_string(),
        "Platform": Value::Null,
    })
}

fn display_ports(ports: Option<&Value>) -> String {
    let Some(list) = ports.and_then(Value::as_array) else {
        return String::new();
    };
    list.iter()
        .map(|p| {
            let private = p.get("PrivatePort").and_then(Value::as_u64).unwrap_or(0);
            let kind = p.get("Type").and_then(Value::as_str).unwrap_or("tcp");
            match p.get("PublicPort").and_then(Value::as_u64) {
                Some(public) if public > 0 => {
                    let ip = p.get("IP").and_then(Value::as_str).unwrap_or("0.0.0.0");
                    format!("{ip}:{public}->{private}/{kind}")
                }
                _ => format!("{private}/{kind}"),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub async fn ps(ctx: &Ctx, a: &PsArgs) -> Result<i32> {
    let user_format = a.format.clone().unwrap_or_default();
    let format = if a.quiet && matches!(user_format.trim(), "" | "table") {
        Format::new("{{.ID}}", PS_TABLE)?
    } else {
        let base = if a.size && matches!(user_format.trim(), "" | "table") {
            format!("{PS_TABLE}\t{{{{.Size}}}}")
        } else {
            PS_TABLE.to_string()
        };
        Format::new(&user_format, &base).map_err(|e| Exit::error(1, format!("{e:#}")))?
    };
    let mut q = Vec::new();
    if a.all {
        q.push("all=1".to_string());
    }
    let limit = if a.latest && a.last == -1 { 1 } else { a.last };
    if limit > 0 {
        q.push(format!("limit={limit}"));
    }
    if a.size || format.uses_field("Size") {
        q.push("size=1".to_string());
    }
    if let Some(f) = filters_json(&a.filter, &[])? {
        q.push(format!("filters={}", encode(&f)));
    }
    let path = with_query("/containers/json", &q);
    let list = ctx.get(&path).await.map_err(|e| ctx.err(1, &e))?;
    let rows: Vec<Value> = list
        .as_array()
        .map(|a| a.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|c| ps_row(c, !a.no_trunc))
        .collect();
    out(format.render(&rows, &ps_headers())?.as_bytes());
    Ok(0)
}

pub async fn logs(ctx: &Ctx, a: &LogsArgs) -> Result<i32> {
    let now = units::now_unix();
    let time = |v: &Option<String>| -> Result<Option<i64>> {
        match v {
            Some(s) => units::parse_timestamp(s, now)
                .map(Some)
                .map_err(|e| Exit::error(1, format!("{e:#}"))),
            None => Ok(None),
        }
    };
    let tail = match a.tail.as_str() {
        "all" | "" => None,
        t => match t.parse::<i64>() {
            Ok(n) if n >= 0 => Some(n as u64),
            Ok(_) => None,
            Err(_) => return Err(Exit::error(1, format!("invalid value for \"tail\": {t:?}"))),
        },
    };
    let opts = LogsOptions {
        follow: a.follow,
        stdout: true,
        stderr: true,
        timestamps: a.timestamps,
        tail,
        since: time(&a.since)?,
        until: time(&a.until)?,
        details: a.details,
        tty: false,
    };
    // As docker does: inspect first, since a TTY container's log is raw bytes, not stdcopy
    // frames, and nothing in the logs answer says which.
    let info = ctx
        .get(&format!(
            "/containers/{}/json",
            wharf_client::encode(&a.container)
        ))
        .await
        .map_err(|e| ctx.err(1, &e))?;
    let opts = LogsOptions {
        tty: info
            .pointer("/Config/Tty")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        ..opts
    };
    let id = info
        .get("Id")
        .and_then(Value::as_str)
        .unwrap_or(&a.container)
        .to_string();
    let mut stream = ctx
        .client
        .logs_stream(&id, &opts)
        .await
        .map_err(|e| ctx.err(1, &e))?;
    while let Some(frame) = stream.next().await {
        match frame.map_err(|e| ctx.err(1, &e))? {
            (StdStream::Stderr, data) => err_out(&data),
            (_, data) => out(&data),
        }
    }
    Ok(0)
}

pub async fn stop(ctx: &Ctx, a: &StopArgs, restart: bool) -> Result<i32> {
    let verb = if restart { "restart" } else { "stop" };
    let mut q = Vec::new();
    if let Some(t) = a.time {
        q.push(format!("t={t}"));
    }
    if let Some(s) = &a.signal {
        q.push(format!("signal={}", encode(s)));
    }
    let query = with_query("", &q);
    for_each(ctx, &a.containers, |name| {
        let path = format!("/containers/{}/{verb}{query}", encode(name));
        async move {
            ctx.call(Method::POST, &path, None, !restart)
                .await
                .map(drop)
        }
    })
    .await
}

pub async fn kill(ctx: &Ctx, a: &KillArgs) -> Result<i32> {
    let query = match &a.signal {
        Some(s) => format!("?signal={}", encode(s)),
        None => String::new(),
    };
    for_each(ctx, &a.containers, |name| {
        let path = format!("/containers/{}/kill{query}", encode(name));
        async move { ctx.call(Method::POST, &path, None, false).await.map(drop) }
    })
    .await
}

pub async fn rm(ctx: &Ctx, a: &RmArgs) -> Result<i32> {
    let mut q = Vec::new();
    if a.force {
        q.push("force=1");
    }
    if a.volumes {
        q.push("v=1");
    }
    if a.link {
        q.push("link=1");
    }
    let query = with_query("", &q);
    let mut errors = Vec::new();
    for name in &a.containers {
        let path = format!("/containers/{}{query}", encode(name));
        match ctx.call(Method::DELETE, &path, None, false).await {
            Ok(_) => out(format!("{name}\n").as_bytes()),
            // docker -f reports a missing container but does not fail on it.
            Err(e) if a.force && e.is_not_found() => {
                err_out(format!("{}\n", ctx.msg(&e)).as_bytes())
            }
            Err(e) => errors.push(ctx.msg(&e)),
        }
    }
    if errors.is_empty() {
        Ok(0)
    } else {
        Err(Exit::error(1, errors.join("\n")))
    }
}

pub async fn rename(ctx: &Ctx, a: &RenameArgs) -> Result<i32> {
    if a.new_name.trim().is_empty() {
        return Err(Exit::error(
            1,
            "Error: Neither old nor new names may be empty",
        ));
    }
    ctx.client
        .rename(&a.container, &a.new_name)
        .await
        .map_err(|e| {
            Exit::error(
                1,
                format!(
                    "{}\nError: failed to rename container named {}",
                    ctx.msg(&e),
                    a.container
                ),
            )
        })?;
    Ok(0)
}

/// `docker top`: the daemon's Titles/Processes in docker's table (min width 20, padding 3).
pub async fn top(ctx: &Ctx, a: &TopArgs) -> Result<i32> {
    let mut path = format!("/containers/{}/top", encode(&a.container));
    if !a.ps_args.is_empty() {
        path.push_str(&format!("?ps_args={}", encode(&a.ps_args.join(" "))));
    }
    let v = ctx.get(&path).await.map_err(|e| ctx.err(1, &e))?;
    let row = |cells: Option<&Vec<Value>>| -> String {
        cells
            .map(|c| {
                c.iter()
                    .map(|x| x.as_str().unwrap_or_default().to_string())
                    .collect::<Vec<_>>()
                    .join("\t")
            })
            .unwrap_or_default()
    };
    let mut text = row(v["Titles"].as_array());
    text.push('\n');
    for p in v["Processes"].as_array().into_iter().flatten() {
        text.push_str(&row(p.as_array()));
        text.push('\n');
    }
    out(crate::format::table::TabWriter::new(20, 3)
        .format(&text)
        .as_bytes());
    Ok(0)
}

/// `pause` / `unpause` of each container.
pub async fn pause(ctx: &Ctx, names: &[String], verb: &str) -> Result<i32> {
    for_each(ctx, names, |name| {
        let path = format!("/containers/{}/{verb}", encode(name));
        async move { ctx.call(Method::POST, &path, None, false).await.map(drop) }
    })
    .await
}

/// docker's `update` body: the resource fields it always sends (zero when not given), the
/// restart policy (empty name when not given), `PidsLimit` only when set.
pub fn update_body(a: &UpdateArgs) -> Result<Value> {
    let r = &a.resources;
    let given = a.restart.is_some()
        || [
            &r.memory,
            &r.memory_swap,
            &r.memory_reservation,
            &r.kernel_memory,
            &r.cpus,
            &r.cpu_shares,
            &r.cpu_period,
            &r.cpu_quota,
            &r.cpu_rt_period,
            &r.cpu_rt_runtime,
            &r.cpuset_cpus,
            &r.cpuset_mems,
            &r.pids_limit,
            &r.blkio_weight,
        ]
        .iter()
        .any(|f| f.is_some());
    if !given {
        return Err(Exit::error(
            1,
            "you must provide one or more flags when using this command",
        ));
    }
    let bad = |e: BadFlag| {
        let text = match e {
            BadFlag::Value { flag, value, reason } => format!(
                "invalid argument {} for \"{flag}\" flag: {reason}\n\nUsage:  wharf update [OPTIONS] CONTAINER [CONTAINER...]\n\nRun 'wharf update --help' for more information",
                crate::opts::values::go_quoted(&value)
            ),
            BadFlag::Parse(m) => m,
        };
        Exit::error(125, text)
    };
    let mut m = create_body::resources(r).map_err(bad)?;
    if r.pids_limit.is_none() {
        m.insert("PidsLimit".into(), Value::Null);
    }
    let kernel = match &r.kernel_memory {
        Some(s) => crate::opts::values::parse_size(s, true).map_err(|e| {
            bad(BadFlag::Value {
                flag: "--kernel-memory",
                value: s.clone(),
                reason: e,
            })
        })?,
        None => 0,
    };
    if kernel != 0 {
        m.insert("KernelMemory".into(), json!(kernel));
    }
    let restart = match &a.restart {
        Some(p) => create_body::restart_policy(p).map_err(|e| Exit::error(1, e))?,
        None => json!({"Name": "", "MaximumRetryCount": 0}),
    };
    m.insert("RestartPolicy".into(), restart);
    for (k, v) in [
        ("CgroupParent", json!("")),
        ("BlkioWeightDevice", Value::Null),
        ("BlkioDeviceReadBps", Value::Null),
        ("BlkioDeviceWriteBps", Value::Null),
        ("BlkioDeviceReadIOps", Value::Null),
        ("BlkioDeviceWriteIOps", Value::Null),
        ("Devices", Value::Null),
        ("DeviceCgroupRules", Value::Null),
        ("DeviceRequests", Value::Null),
        ("MemorySwappiness", Value::Null),
        ("OomKillDisable", Value::Null),
        ("Ulimits", Value::Null),
        ("CpuCount", json!(0)),
        ("CpuPercent", json!(0)),
        ("IOMaximumIOps", json!(0)),
        ("IOMaximumBandwidth", json!(0)),
    ] {
        m.insert(k.into(), v);
    }
    Ok(Value::Object(m))
}

/// `update`: docker prints each updated name, then the daemon's warnings, then the errors.
pub async fn update(ctx: &Ctx, a: &UpdateArgs) -> Result<i32> {
    let body = update_body(a)?;
    let mut warnings = Vec::new();
    let mut errors = Vec::new();
    for name in &a.containers {
        let path = format!("/containers/{}/update", encode(name));
        match ctx.call(Method::POST, &path, Some(&body), false).await {
            Ok(raw) => {
                out(format!("{name}\n").as_bytes());
                let v: Value = raw.json(&path).unwrap_or(Value::Null);
                warnings.extend(
                    v.get("Warnings")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .map(str::to_string),
                );
            }
            Err(e) => errors.push(ctx.msg(&e)),
        }
    }
    if !warnings.is_empty() {
        out(format!("{}\n", warnings.join("\n")).as_bytes());
    }
    if errors.is_empty() {
        Ok(0)
    } else {
        Err(Exit::error(1, errors.join("\n")))
    }
}

pub async fn wait(ctx: &Ctx, names: &[String]) -> Result<i32> {
    let mut errors = Vec::new();
    for name in names {
        match ctx.client.wait(name, None).await {
            Ok(w) => out(format!("{}\n", w.status_code).as_bytes()),
            Err(e) => errors.push(ctx.msg(&e)),
        }
    }
    if errors.is_empty() {
        Ok(0)
    } else {
        Err(Exit::error(1, errors.join("\n")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_row_fields() {
        let c = json!({
            "Id": "0123456789abcdef0123", "Names": ["/web"], "Image": "busybox",
            "Command": "sh -c 'while true; do sleep 1; done'", "Created": 0,
            "Status": "Up 2 seconds", "State": "running", "Ports": [],
            "Labels": {"b": "2", "a": "1"}, "SizeRw": 1200, "SizeRootFs": 4_260_000,
        });
        let r = ps_row(&c, true);
        assert_eq!(r["ID"], "0123456789ab");
        assert_eq!(r["Command"], "\"sh -c 'while true; …\"");
        assert_eq!(r["Names"], "web");
        assert_eq!(r["Labels"], "a=1,b=2");
        assert_eq!(r["Size"], "1.2kB (virtual 4.26MB)");
        assert_eq!(r["CreatedAt"], "1970-01-01 00:00:00 +0000 UTC");
        let r = ps_row(&c, false);
        assert_eq!(r["ID"], "0123456789abcdef0123");
        assert_eq!(r["Command"], "\"sh -c 'while true; do sleep 1; done'\"");
    }

    fn update_args(args: &[&str]) -> UpdateArgs {
        use clap::Parser;
        let mut argv = vec!["wharf", "update"];
        argv.extend_from_slice(args);
        match crate::cli::Cli::try_parse_from(argv).map(|c| c.cmd) {
            Ok(Some(crate::cli::Cmd::Update(a))) => a,
            other => panic!("not an update: {other:?}"),
        }
    }

    #[test]
    fn update_body_is_dockers() {
        // docker 28's body for `update --restart always c1` (captured against a fake daemon).
        let want = json!({"BlkioDeviceReadBps": null, "BlkioDeviceReadIOps": null,
            "BlkioDeviceWriteBps": null, "BlkioDeviceWriteIOps": null, "BlkioWeight": 0,
            "BlkioWeightDevice": null, "CgroupParent": "", "CpuCount": 0, "CpuPercent": 0,
            "CpuPeriod": 0, "CpuQuota": 0, "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0,
            "CpuShares": 0, "CpusetCpus": "", "CpusetMems": "", "DeviceCgroupRules": null,
            "DeviceRequests": null, "Devices": null, "IOMaximumBandwidth": 0, "IOMaximumIOps": 0,
            "Memory": 0, "MemoryReservation": 0, "MemorySwap": 0, "MemorySwappiness": null,
            "NanoCpus": 0, "OomKillDisable": null, "PidsLimit": null,
            "RestartPolicy": {"MaximumRetryCount": 0, "Name": "always"}, "Ulimits": null});
        assert_eq!(
            update_body(&update_args(&["--restart", "always", "c1"])).unwrap(),
            want
        );
        let b = update_body(&update_args(&[
            "--memory",
            "16m",
            "--cpus",
            "1.5",
            "--pids-limit",
            "5",
            "--memory-swap",
            "-1",
            "c1",
        ]))
        .unwrap();
        assert_eq!(
            (
                &b["Memory"],
                &b["NanoCpus"],
                &b["PidsLimit"],
                &b["MemorySwap"]
            ),
            (
                &json!(16 << 20),
                &json!(1_500_000_000i64),
                &json!(5),
                &json!(-1)
            )
        );
        assert_eq!(
            b["RestartPolicy"],
            json!({"Name": "", "MaximumRetryCount": 0})
        );
        let e = update_body(&update_args(&["c1"])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "you must provide one or more flags when using this command"
        );
    }
}
