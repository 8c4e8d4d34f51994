//! Docker's request body schemas (API 1.44; moby v25 `api/types/container`, `api/types/mount`,
//! `api/types/network`, `api/types/configs.go`) as [`Key`] tables, and the [`WireKeys`] impls
//! of Wharf's request types. A request type that gains a body adds its impl here.

use super::{Inner, Key, WireKeys};
use crate::container::{ContainerCreateRequest, ContainerUpdateRequest};
use crate::exec::{ExecCreateRequest, ExecStartRequest};

const fn leaves<const N: usize>(names: [&'static str; N]) -> [Key; N] {
    let mut out = [Key::leaf(""); N];
    let mut i = 0;
    while i < N {
        out[i] = Key::leaf(names[i]);
        i += 1;
    }
    out
}

pub const HEALTH_CONFIG: &[Key] = &leaves([
    "Test",
    "Interval",
    "Timeout",
    "StartPeriod",
    "StartInterval",
    "Retries",
]);

/// `container.Config`.
pub const CONFIG: &[Key] = &[
    Key::leaf("Hostname"),
    Key::leaf("Domainname"),
    Key::leaf("User"),
    Key::leaf("AttachStdin"),
    Key::leaf("AttachStdout"),
    Key::leaf("AttachStderr"),
    Key::leaf("ExposedPorts"),
    Key::leaf("Tty"),
    Key::leaf("OpenStdin"),
    Key::leaf("StdinOnce"),
    Key::leaf("Env"),
    Key::leaf("Cmd"),
    Key::nested("Healthcheck", HEALTH_CONFIG),
    Key::leaf("ArgsEscaped"),
    Key::leaf("Image"),
    Key::leaf("Volumes"),
    Key::leaf("WorkingDir"),
    Key::leaf("Entrypoint"),
    Key::leaf("NetworkDisabled"),
    Key::leaf("MacAddress"),
    Key::leaf("OnBuild"),
    Key::leaf("Labels"),
    Key::leaf("StopSignal"),
    Key::leaf("StopTimeout"),
    Key::leaf("Shell"),
];

const WEIGHT_DEVICE: Inner = Inner::List(&Inner::Struct(&leaves(["Path", "Weight"])));
const THROTTLE_DEVICE: Inner = Inner::List(&Inner::Struct(&leaves(["Path", "Rate"])));

/// `container.Resources`, embedded in HostConfig and UpdateConfig.
pub const RESOURCES: &[Key] = &[
    Key::leaf("CpuShares"),
    Key::leaf("Memory"),
    Key::leaf("NanoCpus"),
    Key::leaf("CgroupParent"),
    Key::leaf("BlkioWeight"),
    Key::with("BlkioWeightDevice", WEIGHT_DEVICE),
    Key::with("BlkioDeviceReadBps", THROTTLE_DEVICE),
    Key::with("BlkioDeviceWriteBps", THROTTLE_DEVICE),
    Key::with("BlkioDeviceReadIOps", THROTTLE_DEVICE),
    Key::with("BlkioDeviceWriteIOps", THROTTLE_DEVICE),
    Key::leaf("CpuPeriod"),
    Key::leaf("CpuQuota"),
    Key::leaf("CpuRealtimePeriod"),
    Key::leaf("CpuRealtimeRuntime"),
    Key::leaf("CpusetCpus"),
    Key::leaf("CpusetMems"),
    Key::with(
        "Devices",
        Inner::List(&Inner::Struct(&leaves([
            "PathOnHost",
            "PathInContainer",
            "CgroupPermissions",
        ]))),
    ),
    Key::leaf("DeviceCgroupRules"),
    Key::with(
        "DeviceRequests",
        Inner::List(&Inner::Struct(&leaves([
            "Driver",
            "Count",
            "DeviceIDs",
            "Capabilities",
            "Options",
        ]))),
    ),
    Key::leaf("KernelMemory"),
    Key::leaf("KernelMemoryTCP"),
    Key::leaf("MemoryReservation"),
    Key::leaf("MemorySwap"),
    Key::leaf("MemorySwappiness"),
    Key::leaf("OomKillDisable"),
    Key::leaf("PidsLimit"),
    Key::with(
        "Ulimits",
        Inner::List(&Inner::Struct(&leaves(["Name", "Hard", "Soft"]))),
    ),
    Key::leaf("CpuCount"),
    Key::leaf("CpuPercent"),
    Key::leaf("IOMaximumIOps"),
    Key::leaf("IOMaximumBandwidth"),
];

pub const RESTART_POLICY: &[Key] = &leaves(["Name", "MaximumRetryCount"]);

/// `mount.Mount`.
pub const MOUNT: &[Key] = &[
    Key::leaf("Type"),
    Key::leaf("Source"),
    Key::leaf("Target"),
    Key::leaf("ReadOnly"),
    Key::leaf("Consistency"),
    Key::nested(
        "BindOptions",
        &leaves([
            "Propagation",
            "NonRecursive",
            "CreateMountpoint",
            "ReadOnlyNonRecursive",
            "ReadOnlyForceRecursive",
        ]),
    ),
    Key::nested(
        "VolumeOptions",
        &[
            Key::leaf("NoCopy"),
            Key::leaf("Labels"),
            Key::nested("DriverConfig", &leaves(["Name", "Options"])),
        ],
    ),
    Key::nested("TmpfsOptions", &leaves(["SizeBytes", "Mode"])),
];

/// `container.HostConfig` (with `Resources` embedded).
pub const HOST_CONFIG: &[Key] = &[
    Key::leaf("Binds"),
    Key::leaf("ContainerIDFile"),
    Key::nested("LogConfig", &leaves(["Type", "Config"])),
    Key::leaf("NetworkMode"),
    Key::with(
        "PortBindings",
        Inner::Map(&Inner::List(&Inner::Struct(&leaves([
            "HostIp", "HostPort",
        ])))),
    ),
    Key::nested("RestartPolicy", RESTART_POLICY),
    Key::leaf("AutoRemove"),
    Key::leaf("VolumeDriver"),
    Key::leaf("VolumesFrom"),
    Key::leaf("ConsoleSize"),
    Key::leaf("Annotations"),
    Key::leaf("CapAdd"),
    Key::leaf("CapDrop"),
    Key::leaf("CgroupnsMode"),
    Key::leaf("Dns"),
    Key::leaf("DnsOptions"),
    Key::leaf("DnsSearch"),
    Key::leaf("ExtraHosts"),
    Key::leaf("GroupAdd"),
    Key::leaf("IpcMode"),
    Key::leaf("Cgroup"),
    Key::leaf("Links"),
    Key::leaf("OomScoreAdj"),
    Key::leaf("PidMode"),
    Key::leaf("Privileged"),
    Key::leaf("PublishAllPorts"),
    Key::leaf("ReadonlyRootfs"),
    Key::leaf("SecurityOpt"),
    Key::leaf("StorageOpt"),
    Key::leaf("Tmpfs"),
    Key::leaf("UTSMode"),
    Key::leaf("UsernsMode"),
    Key::leaf("ShmSize"),
    Key::leaf("Sysctls"),
    Key::leaf("Runtime"),
    Key::leaf("Isolation"),
    Key::flatten(RESOURCES),
    Key::with("Mounts", Inner::List(&Inner::Struct(MOUNT))),
    Key::leaf("MaskedPaths"),
    Key::leaf("ReadonlyPaths"),
    Key::leaf("Init"),
];

/// `network.EndpointSettings`.
pub const ENDPOINT_SETTINGS: &[Key] = &[
    Key::nested(
        "IPAMConfig",
        &leaves(["IPv4Address", "IPv6Address", "LinkLocalIPs"]),
    ),
    Key::leaf("Links"),
    Key::leaf("Aliases"),
    Key::leaf("MacAddress"),
    Key::leaf("DriverOpts"),
    Key::leaf("NetworkID"),
    Key::leaf("EndpointID"),
    Key::leaf("Gateway"),
    Key::leaf("IPAddress"),
    Key::leaf("IPPrefixLen"),
    Key::leaf("IPv6Gateway"),
    Key::leaf("GlobalIPv6Address"),
    Key::leaf("GlobalIPv6PrefixLen"),
    Key::leaf("DNSNames"),
];

pub const NETWORKING_CONFIG: &[Key] = &[Key::with(
    "EndpointsConfig",
    Inner::Map(&Inner::Struct(ENDPOINT_SETTINGS)),
)];

/// `container.CreateRequest`: the Config embedded, HostConfig and NetworkingConfig beside it.
impl WireKeys for ContainerCreateRequest {
    const GO_NAME: &'static str = "ContainerConfigWrapper";
    const KEYS: &'static [Key] = &[
        Key::flatten(CONFIG),
        Key::nested("HostConfig", HOST_CONFIG),
        Key::nested("NetworkingConfig", NETWORKING_CONFIG),
    ];
}

/// `container.UpdateConfig`: Resources embedded, and the restart policy.
impl WireKeys for ContainerUpdateRequest {
    const GO_NAME: &'static str = "UpdateConfig";
    const KEYS: &'static [Key] = &[
        Key::flatten(RESOURCES),
        Key::nested("RestartPolicy", RESTART_POLICY),
    ];
}

/// `types.ExecConfig`.
impl WireKeys for ExecCreateRequest {
    const GO_NAME: &'static str = "ExecConfig";
    const KEYS: &'static [Key] = &leaves([
        "User",
        "Privileged",
        "Tty",
        "ConsoleSize",
        "AttachStdin",
        "AttachStderr",
        "AttachStdout",
        "Detach",
        "DetachKeys",
        "Env",
        "WorkingDir",
        "Cmd",
    ]);
}

/// `types.ExecStartCheck`.
impl WireKeys for ExecStartRequest {
    const GO_NAME: &'static str = "ExecStartCheck";
    const KEYS: &'static [Key] = &leaves(["Detach", "Tty", "ConsoleSize"]);
}

/// `registry.AuthConfig`, `POST /auth`'s body (its JSON names are lower case).
impl WireKeys for crate::registry::AuthConfig {
    const GO_NAME: &'static str = "AuthConfig";
    const KEYS: &'static [Key] = &leaves([
        "username",
        "password",
        "auth",
        "email",
        "serveraddress",
        "identitytoken",
        "registrytoken",
    ]);
}

/// `volume.CreateOptions`, `POST /volumes/create`'s body.
impl WireKeys for crate::volume::VolumeCreateRequest {
    const GO_NAME: &'static str = "CreateOptions";
    const KEYS: &'static [Key] = &leaves([
        "Name",
        "Driver",
        "DriverOpts",
        "Labels",
        "ClusterVolumeSpec",
    ]);
}
