#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn hc(v: serde_json::Value) -> HostConfig {
    serde_json::from_value(v).unwrap()
}

fn no_donor(name: &str) -> Result<Donor, EngineError> {
    Err(EngineError::no_such_container(name))
}

fn dests(p: &BTreeMap<String, Planned>) -> Vec<(&str, &str, Origin)> {
    p.values()
        .map(|x| {
            (
                x.parsed.point.destination.as_str(),
                x.parsed.point.r#type.as_str(),
                x.origin,
            )
        })
        .collect()
}

#[test]
fn later_sources_replace_earlier_ones_and_config_volumes_fill_the_gaps() {
    let donor = |_: &str| {
        Ok(Donor {
            mounts: vec![
                MountPoint {
                    r#type: "volume".into(),
                    name: "shared".into(),
                    destination: "/data".into(),
                    rw: true,
                    ..Default::default()
                },
                MountPoint {
                    r#type: "volume".into(),
                    name: "other".into(),
                    destination: "/other".into(),
                    rw: true,
                    ..Default::default()
                },
            ],
            extras: BTreeMap::from([(
                "/data".to_string(),
                MountExtra {
                    copy_data: true,
                    anonymous: true,
                    ..Default::default()
                },
            )]),
        })
    };
    let h = hc(serde_json::json!({
        "VolumesFrom": ["box:ro"],
        "Binds": ["/h:/other"],
        "Mounts": [{"Type": "volume", "Source": "v", "Target": "/m"}],
        "Tmpfs": {"/t": ""},
    }));
    let vols = [
        "/data".to_string(),
        "/img".into(),
        "/t".into(),
        "/m/".into(),
    ];
    let p = plan(&h, &vols, "/var/lib/wharf", &|_| true, &donor).unwrap();
    assert_eq!(
        dests(&p),
        [
            ("/data", "volume", Origin::VolumesFrom),
            ("/img", "volume", Origin::ConfigVolume),
            ("/m", "volume", Origin::Request),
            ("/other", "bind", Origin::Request),
        ]
    );
    let from = &p["/data"].parsed;
    assert!(!from.point.rw, ":ro makes the copy read-only");
    assert!(!from.extra.copy_data && from.extra.anonymous);
}

#[test]
fn duplicate_destinations_are_refused() {
    for (h, want) in [
        (
            serde_json::json!({"Binds": ["/a:/x", "v:/x/"]}),
            "Duplicate mount point: /x",
        ),
        (
            serde_json::json!({"Binds": ["/a:/x"], "Tmpfs": {"/x": ""}}),
            "Duplicate mount point: /x",
        ),
        (
            serde_json::json!({"Binds": ["/a:/x"], "Mounts": [{"Type": "volume", "Target": "/x/"}]}),
            "Duplicate mount point: /x/",
        ),
        (
            serde_json::json!({"Mounts": [{"Type": "tmpfs", "Target": "/x"}, {"Type": "volume", "Target": "/x"}]}),
            "Duplicate mount point: /x",
        ),
    ] {
        let e = plan(&hc(h.clone()), &[], "/r", &|_| true, &no_donor)
            .err()
            .unwrap();
        assert_eq!(e.message(), want, "{h}");
        assert_eq!(e.kind(), wharf_api::ErrorKind::InvalidArgument);
    }
    let e = plan(
        &hc(serde_json::json!({"VolumesFrom": ["ghost"]})),
        &[],
        "/r",
        &|_| true,
        &no_donor,
    )
    .err()
    .unwrap();
    assert_eq!(e.message(), "No such container: ghost");
    assert_eq!(e.kind(), wharf_api::ErrorKind::InvalidArgument);
}

#[test]
fn a_bind_of_the_daemon_root_is_rslave() {
    let p = plan(
        &hc(serde_json::json!({"Binds": ["/:/host", "/srv:/srv"]})),
        &[],
        "/var/lib/wharf",
        &|_| true,
        &no_donor,
    )
    .unwrap();
    assert_eq!(p["/host"].parsed.point.propagation, "rslave");
    assert_eq!(p["/srv"].parsed.point.propagation, "rprivate");
}

#[test]
fn volumes_are_claimed_with_dockerds_modes_and_released() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = std::sync::Arc::new(crate::ctx::Ctx::for_tests(dir.path()));
    let volumes = VolumeService::new(ctx.clone());
    volumes.recover().unwrap();
    let h = hc(serde_json::json!({
        "Binds": ["named:/n", "/h:/b:ro"],
        "Mounts": [{"Type": "volume", "Target": "/anon"}],
    }));
    let r = resolve(
        &volumes,
        &ctx.volume_refs,
        "c1",
        &h,
        &["/img".to_string()],
        "/nowhere",
        &no_donor,
    )
    .unwrap();
    let by: BTreeMap<&str, &MountPoint> = r
        .mounts
        .iter()
        .map(|m| (m.destination.as_str(), m))
        .collect();
    assert_eq!(by["/n"].name, "named");
    assert_eq!(by["/n"].mode, "z");
    assert_eq!(by["/n"].driver, "local");
    assert_eq!(
        by["/n"].source,
        volumes.data_path("named").to_string_lossy()
    );
    assert_eq!(by["/anon"].mode, "z");
    assert_eq!(by["/anon"].name.len(), 64);
    assert_eq!(by["/img"].mode, "", "an image's volume has no mode");
    assert_eq!(by["/b"].mode, "ro");
    assert!(!by["/b"].rw);
    assert_eq!(ctx.volume_refs.users("named"), ["c1"]);
    let anon = [by["/anon"].name.clone(), by["/img"].name.clone()];
    assert!(anon.iter().all(|a| ctx.volume_refs.in_use(a)));
    release(&volumes, &ctx.volume_refs, "c1", &r, true);
    assert!(!ctx.volume_refs.in_use("named"));
    volumes.inspect("named").unwrap();
    for a in &anon {
        assert!(volumes.inspect(a).is_err(), "anonymous {a} removed");
    }
}

#[test]
fn an_unknown_driver_is_refused_like_a_missing_plugin_and_nothing_stays_claimed() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = std::sync::Arc::new(crate::ctx::Ctx::for_tests(dir.path()));
    let volumes = VolumeService::new(ctx.clone());
    volumes.recover().unwrap();
    let h = hc(serde_json::json!({"Binds": ["a:/a", "b:/b"], "VolumeDriver": "flocker"}));
    let e = resolve(&volumes, &ctx.volume_refs, "c1", &h, &[], "/r", &no_donor)
        .err()
        .unwrap();
    assert_eq!(
        e.message(),
        "create a: error looking up volume plugin flocker: plugin \"flocker\" not found"
    );
    assert!(!ctx.volume_refs.in_use("a"));
}
