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
    Field {
        path: "RestartPolicy",
        rule: Rule::Honoured(Effect::Engine("restart policies (containers/restart.rs)")),
    },
];

/// The docker CLI sends `MemorySwappiness: -1` ("unchanged") with every update.
fn swappiness_default(v: &Value) -> bool {
    is_zero(v) || v.as_i64() == Some(-1)
}
