//! `/version` and `/info`: what this daemon is and what it holds.

use crate::Engine;
use serde_json::json;
use wharf_api::system::{ComponentVersion, Info, PlatformName, Version};
use wharf_api::version::{API_VERSION, MIN_API_VERSION};

pub const WHARF_VERSION: &str = env!("CARGO_PKG_VERSION");

fn kernel_version() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn os_pretty_name() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_string())
        })
        .unwrap_or_else(|| "Linux".into())
}

fn os_version() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VERSION_ID="))
                .map(|v| v.trim_matches('"').to_string())
        })
        .unwrap_or_default()
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// "2" on a unified hierarchy, "1" otherwise (including hybrid hosts like this one).
pub fn cgroup_version() -> &'static str {
    if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "2"
    } else {
        "1"
    }
}

fn mem_total() -> i64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("MemTotal:")
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
            })
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

impl Engine {
    pub fn version_info(&self) -> Version {
        Version {
            platform: PlatformName {
                name: "Wharf Engine".into(),
            },
            components: vec![ComponentVersion {
                name: "Engine".into(),
                version: WHARF_VERSION.into(),
                details: Some(json!({
                    "ApiVersion": API_VERSION.to_string(),
                    "MinAPIVersion": MIN_API_VERSION.to_string(),
                    "Os": "linux",
                    "Arch": go_arch(),
                    "KernelVersion": kernel_version(),
                })),
            }],
            version: WHARF_VERSION.into(),
            api_version: API_VERSION.to_string(),
            min_api_version: MIN_API_VERSION.to_string(),
            git_commit: option_env!("WHARF_GIT_COMMIT").unwrap_or("unknown").into(),
            go_version: "n/a (Rust)".into(),
            os: "linux".into(),
            arch: go_arch().into(),
            kernel_version: kernel_version(),
            build_time: String::new(),
        }
    }

    pub fn system_info(&self) -> Info {
        let (total, running, paused, stopped) = self.containers.counts();
        // Claims only what this host enforces for containers (create refuses the rest).
        let host = &self.ctx.host;
        let ncpu = host.ncpu;
        let hostname = nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut driver_status = vec![
            json!(["Backing Filesystem", "overlayfs layers"]),
            json!(["Supports d_type", "true"]),
        ];
        driver_status.extend(
            crate::images::ingest::status(&self.ctx.ingest)
                .into_iter()
                .map(|(k, v)| json!([k, v])),
        );
        json!({
            "ID": self.daemon_id,
            "Containers": total,
            "ContainersRunning": running,
            "ContainersPaused": paused,
            "ContainersStopped": stopped,
            "Images": self.images.count(),
            "Driver": crate::STORAGE_DRIVER,
            "DriverStatus": driver_status,
            "Plugins": {"Volume": [crate::volumes::LOCAL_DRIVER], "Network": ["host", "none"], "Authorization": null, "Log": ["json-file"]},
            "MemoryLimit": host.memory,
            "SwapLimit": host.swap,
            "CpuCfsPeriod": host.cpu_cfs,
            "CpuCfsQuota": host.cpu_cfs,
            "CPUShares": host.cpu_shares,
            "CPUSet": host.cpuset,
            "PidsLimit": host.pids,
            "IPv4Forwarding": host.ipv4_forwarding,
            "BridgeNfIptables": false,
            "BridgeNfIp6tables": false,
            "Debug": false,
            "NFd": count_fds(),
            "OomKillDisable": host.oom_kill_disable,
            // Go's goroutines are Wharf's async tasks.
            "NGoroutines": tokio::runtime::Handle::try_current()
                .map(|h| h.metrics().num_alive_tasks())
                .unwrap_or(0),
            "SystemTime": crate::timefmt::now_rfc3339(),
            "LoggingDriver": "json-file",
            "CgroupDriver": "cgroupfs",
            "CgroupVersion": cgroup_version(),
            "NEventsListener": self.ctx.events.listeners(),
            "KernelVersion": kernel_version(),
            "OperatingSystem": os_pretty_name(),
            "OSVersion": os_version(),
            "OSType": "linux",
            "Architecture": std::env::consts::ARCH,
            "IndexServerAddress": "https://index.docker.io/v1/",
            "RegistryConfig": crate::distribution::settings::info(&self.ctx.registries.service_config()),
            "NCPU": ncpu,
            "MemTotal": mem_total(),
            "GenericResources": null,
            "DockerRootDir": self.ctx.data_root.display().to_string(),
            "HttpProxy": "",
            "HttpsProxy": "",
            "NoProxy": "",
            "Name": hostname,
            "Labels": [],
            "ExperimentalBuild": false,
            "ServerVersion": WHARF_VERSION,
            "Runtimes": {"wharf-shim": {"path": self.ctx.shim_path.display().to_string()}},
            "DefaultRuntime": "wharf-shim",
            "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": false, "Error": "", "RemoteManagers": null},
            "LiveRestoreEnabled": true,
            "Isolation": "",
            "InitBinary": "docker-init",
            "ContainerdCommit": {"ID": ""},
            "RuncCommit": {"ID": ""},
            "InitCommit": {"ID": ""},
            "SecurityOptions": [],
            "Warnings": [],
        })
    }
}

fn count_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}
