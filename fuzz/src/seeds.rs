//! Starting inputs per target, in code rather than corpus files: the stable runner mutates
//! these, and `wharf-fuzz --write-seeds DIR` writes them out as a libFuzzer corpus.

/// Seeds for `target` (empty for an unknown name).
pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    let text: &[&str] = match target {
        "create_body" => &[
            r#"{"Image":"busybox","Cmd":["sh","-c","true"]}"#,
            r#"{"Image":"busybox","Env":["A=1","B"],"User":"1000:1000","Hostname":"h","Domainname":"d","Labels":{"a":"b"},"Tty":true,"OpenStdin":true,"WorkingDir":"/srv","Entrypoint":"sh","StopSignal":"SIGKILL","StopTimeout":5,"Healthcheck":{"Test":["CMD","true"],"Interval":1000000000,"Retries":3}}"#,
            r#"{"Image":"x","HostConfig":{"Memory":6291456,"MemorySwap":-1,"CpuShares":512,"NanoCpus":1000000000,"CpusetCpus":"0-1","PidsLimit":10,"Ulimits":[{"Name":"nofile","Soft":10,"Hard":20}],"Binds":["/a:/b:ro"],"NetworkMode":"none","RestartPolicy":{"Name":"on-failure","MaximumRetryCount":2},"LogConfig":{"Type":"json-file","Config":{"max-size":"1m","max-file":"2"}},"CapAdd":["NET_ADMIN"],"CapDrop":["ALL"],"Privileged":false,"ReadonlyRootfs":true,"Tmpfs":{"/t":"size=1m"},"Sysctls":{"net.ipv4.ip_forward":"1"},"ExtraHosts":["h:1.2.3.4"],"ShmSize":67108864,"OomScoreAdj":500,"BlkioWeight":300,"Devices":[{"PathOnHost":"/dev/null","PathInContainer":"/dev/n","CgroupPermissions":"rwm"}],"PortBindings":{"80/tcp":[{"HostIp":"127.0.0.1","HostPort":"8080"}]},"Mounts":[{"Type":"tmpfs","Target":"/m"}]}}"#,
            r#"{"image":"x","hostconfig":{"memory":"lots","cpushares":1.5e300,"Memory":18446744073709551615}}"#,
            // One field each, so a mutated number reaches its own check without another
            // field's refusal first.
            r#"{"Image":"x","HostConfig":{"Memory":6291456}}"#,
            r#"{"Image":"x","HostConfig":{"Memory":6291456,"MemorySwap":12582912}}"#,
            r#"{"Image":"x","HostConfig":{"ShmSize":67108864,"PidsLimit":10}}"#,
            r#"{"Image":"x","HostConfig":{"CpuShares":512,"NanoCpus":1000000000}}"#,
            r#"{"Image":"x","HostConfig":{"CpuPeriod":100000,"CpuQuota":50000}}"#,
            r#"{"Image":"x","StopTimeout":5,"Healthcheck":{"Interval":1000000000,"Retries":3}}"#,
            r#"{"Image":"x","ExposedPorts":{"80/tcp":{},"53/udp":{}},"Volumes":{"/v":{}},"NetworkingConfig":{"EndpointsConfig":{"bridge":{"Aliases":["a"]}}}}"#,
        ],
        "filters" => &[
            r#"{"label":{"a=b":true},"status":{"exited":true}}"#,
            r#"{"label":["a=b","com.x"],"dangling":["true"],"reference":["busy*:*"]}"#,
            r#"{"until":["10m"],"since":["2023-11-14T22:13:20Z"],"before":["x"]}"#,
            r#"{"until":["1700000000.5"],"dangling":{"1":true,"0":false}}"#,
            r#"{"reference":["*/*/*:v?.*"],"label":"x"}"#,
        ],
        "query" => &[
            "/v1.44/containers/json?all=1&limit=-1&size=True&filters=%7B%22label%22%3A%5B%22a%3Db%22%5D%7D",
            "/v1.24/images/create?fromSrc=-&repo=x&tag=y&changes=CMD+sh",
            "/containers/x/logs?since=1700000000.25&until=0&t=10&follow=false",
            "/v999.999/_ping?a=%ff&b=&&=c",
        ],
        "units" => &[
            "16m", "1.5GiB", "0", "-1", "1 kb", "100b", "2p", "0x10", "0o17", "1.5",
            "nofile=10:20", "/dev/sda:1mb", "/dev/sda:300", "all", "count=2,capabilities=gpu",
            "host:1.2.3.4", "/dev/null:/dev/n:rwm", "net.ipv4.ip_forward", "c 1:3 rwm",
            "a/../b//c/.", "3600",
        ],
        "changes" => &[
            "CMD [\"sh\",\"-c\",\"true\"]\nENTRYPOINT sh\nWORKDIR /srv\nUSER 1000",
            "ENV A=1 B=\"two words\" C='x'\nENV D e\nLABEL a=b \"c d\"=e",
            "EXPOSE 80/tcp 53/udp\nVOLUME [\"/v\"]\nSTOPSIGNAL SIGKILL",
            "HEALTHCHECK --interval=1m30s --timeout=200ms --start-period=1.5s --retries=3 CMD true",
            "HEALTHCHECK NONE\nONBUILD RUN x\nMAINTAINER me",
        ],
        "reference" => &[
            "busybox",
            "docker.io/library/busybox:latest",
            "localhost:5000/a/b:v1",
            "Upper/Case:tag",
            "busy*:*\nbusybox:latest",
            "*/*/*:v?.*\nlocalhost:5000/some/deep:v1.2",
            "sha256:0123456789abcdef",
        ],
        _ => &[],
    };
    let mut out: Vec<Vec<u8>> = text.iter().map(|s| s.as_bytes().to_vec()).collect();
    if target == "layer" {
        out.extend(layer_seeds());
    }
    out
}

fn layer_seeds() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    // Structured ones: an odd first byte, then bytes for `arbitrary`.
    for i in 0..8u8 {
        let mut s = vec![1u8];
        s.extend((0..200u16).map(|j| (j as u8).wrapping_mul(31).wrapping_add(i * 17)));
        out.push(s);
    }
    // A raw tar: a dir, a file, a symlink and a hard link.
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |kind: tar::EntryType, path: &str, link: Option<&str>, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(0o755);
        h.set_size(data.len() as u64);
        if let Some(l) = link {
            let _ = h.set_link_name(l);
        }
        let _ = b.append_data(&mut h, path, data);
    };
    add(tar::EntryType::Directory, "d/", None, b"");
    add(tar::EntryType::Regular, "d/f", None, b"hello");
    add(tar::EntryType::Symlink, "d/s", Some("/etc"), b"");
    add(tar::EntryType::Link, "d/h", Some("d/f"), b"");
    add(tar::EntryType::Regular, "d/.wh.gone", None, b"");
    if let Ok(raw) = b.into_inner() {
        let mut s = vec![0u8];
        s.extend(raw);
        out.push(s);
    }
    out
}
