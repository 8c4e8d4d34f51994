//! `POST /containers/{id}/update`: Docker's `UpdateConfig` (the `Resources` of a container
//! and its restart policy). dockerd changes only the fields below marked honoured and drops the
//! rest of the body without a word; Wharf refuses them.

use super::{is_empty, is_zero, Effect, Field, Rule};
use serde_json::Value;

const CREATE_ONLY: &str = "it is set at create and docker update cannot change it";
const RESOURCES: &str = "issue 17: the rest of the resource and security options";

const fn live(path: &'static str) -> Field {
    Field {
        path,
        rule: Rule::Honoured(Effect::Engine(
            "written into the running container's cgroups by its shim, and kept for its next start",
        )),
    }
}

const fn refused(path: &'static str, until: &'static str, is_default: fn(&Value) -> bool) -> Field {
    Field {
        path,
        rule: Rule::Refused { until, is_default },
    }
}

pub const TABLE: &[Field] = &[
    live("CpuShares"),
    live("Memory"),
    refused("CgroupParent", CREATE_ONLY, is_zero),
    live("BlkioWeight"),
    refused("BlkioWeightDevice", RESOURCES, is_empty),
    refused("BlkioDeviceReadBps", RESOURCES, is_empty),
    refused("BlkioDeviceWriteBps", RESOURCES, is_empty),
    refused("BlkioDeviceReadIOps", RESOURCES, is_empty),
    refused("BlkioDeviceWriteIOps", RESOURCES, is_empty),
    live("CpuPeriod"),
    live("CpuQuota"),
    refused("CpuRealtimePeriod", RESOURCES, is_zero),
    refused("CpuRealtimeRuntime", RESOURCES, is_zero),
    live("CpusetCpus"),
    live("CpusetMems"),
    refused("Devices", CREATE_ONLY, is_empty),
    refused("DeviceCgroupRules", CREATE_ONLY, is_empty),
    refused("DeviceRequests", CREATE_ONLY, is_empty),
    refused("KernelMemory", RESOURCES, is_zero),
    refused("KernelMemoryTCP", RESOURCES, is_zero),
    live("MemoryReservation"),
    live("MemorySwap"),
    refused("MemorySwappiness", CREATE_ONLY, swappiness_default),
    live("NanoCpus"),
    refused("OomKillDisable", CREATE_ONLY, is_zero),
    refused("Init", CREATE_ONLY, is_zero),
    live("PidsLimit"),
    refused("Ulimits", CREATE_ONLY, is_empty),
    refused("CpuCount", "Windows only", is_zero),
    refused("CpuPercent", "Windows only", is_zero),
    refused("IOMaximumIOps", "Windows only", is_zero),
    refused("IOMaximumBandwidth", "Windows only", is_zero),
    restart("RestartPolicy"),
    restart("RestartPolicy.Name"),
    restart("RestartPolicy.MaximumRetryCount"),
];

const fn restart(path: &'static str) -> Field {
    Field {
        path,
        rule: Rule::Honoured(Effect::Engine("restart policies (containers/restart.rs)")),
    }
}

/// The docker CLI sends `MemorySwappiness: -1` ("unchanged") with every update.
fn swappiness_default(v: &Value) -> bool {
    is_zero(v) || v.as_i64() == Some(-1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::honour::check;
    use serde_json::json;
    use wharf_api::container::ContainerUpdateRequest;

    /// API 1.44's update body (swagger, moby v25.0.0: `Resources` plus `RestartPolicy`; `Init`
    /// is among the swagger's Resources) plus Go's `KernelMemory`, each with a non-default value.
    fn samples() -> Vec<(&'static str, serde_json::Value)> {
        vec![
            ("CpuShares", json!(512)),
            ("Memory", json!(16777216)),
            ("CgroupParent", json!("x")),
            ("BlkioWeight", json!(300)),
            (
                "BlkioWeightDevice",
                json!([{"Path": "/dev/sda", "Weight": 300}]),
            ),
            (
                "BlkioDeviceReadBps",
                json!([{"Path": "/dev/sda", "Rate": 1}]),
            ),
            (
                "BlkioDeviceWriteBps",
                json!([{"Path": "/dev/sda", "Rate": 1}]),
            ),
            (
                "BlkioDeviceReadIOps",
                json!([{"Path": "/dev/sda", "Rate": 1}]),
            ),
            (
                "BlkioDeviceWriteIOps",
                json!([{"Path": "/dev/sda", "Rate": 1}]),
            ),
            ("CpuPeriod", json!(100000)),
            ("CpuQuota", json!(50000)),
            ("CpuRealtimePeriod", json!(1000000)),
            ("CpuRealtimeRuntime", json!(10000)),
            ("CpusetCpus", json!("0")),
            ("CpusetMems", json!("0")),
            ("Devices", json!([{"PathOnHost": "/dev/null"}])),
            ("DeviceCgroupRules", json!(["c 1:3 r"])),
            ("DeviceRequests", json!([{"Driver": "x"}])),
            ("KernelMemory", json!(8388608)),
            ("KernelMemoryTCP", json!(8388608)),
            ("MemoryReservation", json!(8388608)),
            ("MemorySwap", json!(33554432)),
            ("MemorySwappiness", json!(10)),
            ("NanoCpus", json!(500000000)),
            ("OomKillDisable", json!(true)),
            ("Init", json!(true)),
            ("PidsLimit", json!(5)),
            ("Ulimits", json!([{"Name": "nofile", "Soft": 1, "Hard": 2}])),
            ("CpuCount", json!(1)),
            ("CpuPercent", json!(1)),
            ("IOMaximumIOps", json!(1)),
            ("IOMaximumBandwidth", json!(1)),
            ("RestartPolicy", json!({"Name": "always"})),
        ]
    }

    #[test]
    fn every_update_field_is_applied_or_refused() {
        let schema: Vec<&str> = samples().iter().map(|(p, _)| *p).collect();
        let top: Vec<&Field> = TABLE.iter().filter(|f| !f.path.contains('.')).collect();
        assert_eq!(schema.len(), top.len());
        for f in top {
            assert!(schema.contains(&f.path), "{}", f.path);
        }
        for (path, value) in samples() {
            let req: ContainerUpdateRequest =
                serde_json::from_value(json!({ path: value })).unwrap();
            let body = serde_json::to_value(&req).unwrap();
            let field = TABLE.iter().find(|f| f.path == path).unwrap();
            let got = check(TABLE, "", &body);
            match field.rule {
                Rule::Refused { .. } => {
                    let e = got.expect_err(path).message();
                    assert!(e.contains(path), "{path}: {e}");
                }
                _ => assert!(got.is_ok(), "{path}: {got:?}"),
            }
        }
    }

    #[test]
    fn the_docker_cli_update_body_is_accepted() {
        // `docker update --restart always x` (docker 28): zero resources, nulls for pointers.
        let body = json!({"CpuShares":0,"Memory":0,"CgroupParent":"","BlkioWeight":0,
            "BlkioWeightDevice":null,"BlkioDeviceReadBps":null,"BlkioDeviceWriteBps":null,
            "BlkioDeviceReadIOps":null,"BlkioDeviceWriteIOps":null,"CpuPeriod":0,"CpuQuota":0,
            "CpuRealtimePeriod":0,"CpuRealtimeRuntime":0,"CpusetCpus":"","CpusetMems":"",
            "Devices":null,"DeviceCgroupRules":null,"DeviceRequests":null,"MemoryReservation":0,
            "MemorySwap":0,"MemorySwappiness":null,"NanoCpus":0,"OomKillDisable":null,
            "PidsLimit":null,"Ulimits":null,"CpuCount":0,"CpuPercent":0,"IOMaximumIOps":0,
            "IOMaximumBandwidth":0,"RestartPolicy":{"Name":"always","MaximumRetryCount":0}});
        let req: ContainerUpdateRequest = serde_json::from_value(body).unwrap();
        check(TABLE, "", &serde_json::to_value(&req).unwrap()).unwrap();
    }

    #[test]
    fn the_restart_policy_is_walked_into() {
        let r = json!({"RestartPolicy": {"Name": "always", "MaximumRetryCount": 0, "Later": ""}});
        assert!(check(TABLE, "", &r).is_ok());
        let r = json!({"RestartPolicy": {"Name": "always", "Later": 1}});
        assert_eq!(
            check(TABLE, "", &r).unwrap_err().message(),
            "Wharf does not support RestartPolicy.Later"
        );
    }
}
