#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn point(
    ty: &str,
    name: &str,
    source: &str,
    dest: &str,
    mode: &str,
    rw: bool,
    prop: &str,
) -> MountPoint {
    MountPoint {
        r#type: ty.into(),
        name: name.into(),
        source: source.into(),
        destination: dest.into(),
        driver: String::new(),
        mode: mode.into(),
        rw,
        propagation: prop.into(),
    }
}

#[test]
fn go_path_clean() {
    for (p, want) in [
        ("/a/b/../c/", "/a/c"),
        ("//x//y/.", "/x/y"),
        ("/..", "/"),
        ("a/../..", ".."),
        ("", "."),
        ("./", "."),
    ] {
        assert_eq!(clean(p), want, "{p}");
    }
}

#[test]
fn binds_as_dockerd_shows_them() {
    let p = parse_bind("/host/dir:/data", "").unwrap();
    assert_eq!(
        p.point,
        point("bind", "", "/host/dir", "/data", "", true, "rprivate")
    );
    assert!(p.extra.create_source);
    let p = parse_bind("/host/dir/:/data/:ro,rshared", "").unwrap();
    assert_eq!(
        p.point,
        point(
            "bind",
            "",
            "/host/dir",
            "/data",
            "ro,rshared",
            false,
            "rshared"
        )
    );
    assert!(p.extra.propagation_asked);
    let p = parse_bind("vol:/data:ro", "").unwrap();
    assert_eq!(
        p.point,
        point("volume", "vol", "", "/data", "ro", false, "")
    );
    assert!(p.extra.copy_data && !p.extra.anonymous);
    let p = parse_bind("vol:/data:nocopy", "").unwrap();
    assert!(!p.extra.copy_data);
    let p = parse_bind("/anon", "").unwrap();
    assert_eq!(p.point, point("volume", "", "", "/anon", "", true, ""));
    assert!(p.extra.anonymous);
    let p = parse_bind("vol:/data", "other").unwrap();
    assert_eq!(p.point.driver, "other");
    // The volume driver is for volumes only.
    assert_eq!(parse_bind("/h:/data", "other").unwrap().point.driver, "");
    for mode in ["z", "Z", "rw,z", "cached", "delegated", "consistent"] {
        parse_bind(&format!("/h:/d:{mode}"), "").unwrap();
    }
}

#[test]
fn bad_binds_in_dockerds_words() {
    for (raw, want) in [
        ("", "invalid volume specification: ''"),
        (":/x", "invalid volume specification: ':/x'"),
        ("/tmp:", "invalid volume specification: '/tmp:'"),
        ("/tmp:ro", "invalid volume specification: '/tmp:ro'"),
        ("/a:/b:ro:extra", "invalid volume specification: '/a:/b:ro:extra'"),
        ("/a:/b:c:d:e", "invalid volume specification: '/a:/b:c:d:e'"),
        ("/a:/b:foo", "invalid mode: foo"),
        ("/a:/b:ro,rw", "invalid mode: ro,rw"),
        ("/a:/b:rshared,rslave", "invalid mode: rshared,rslave"),
        (
            "vol:/",
            "invalid volume specification: 'vol:/': invalid mount config for type \"volume\": invalid specification: destination can't be '/'",
        ),
        (
            "/h:relative",
            "invalid volume specification: '/h:relative': invalid mount config for type \"bind\": invalid mount path: 'relative' mount path must be absolute",
        ),
        (
            "./",
            "invalid volume specification: './': invalid mount config for type \"volume\": invalid mount path: './' mount path must be absolute",
        ),
        (
            "vol:/d:rshared",
            "invalid volume specification: 'vol:/d:rshared': invalid mount config for type \"volume\": field BindOptions must not be specified",
        ),
    ] {
        assert_eq!(parse_bind(raw, "").unwrap_err(), want, "{raw:?}");
    }
}

fn mount(v: serde_json::Value) -> Mount {
    serde_json::from_value(v).unwrap()
}

#[test]
fn mounts_as_dockerd_shows_them() {
    let yes = |_: &str| true;
    let p = parse_mount(
        &mount(serde_json::json!({"Type": "bind", "Source": "/h", "Target": "/d"})),
        &yes,
    )
    .unwrap();
    assert_eq!(p.point, point("bind", "", "/h", "/d", "", true, "rprivate"));
    assert!(!p.extra.create_source && !p.extra.propagation_asked);
    let p = parse_mount(
        &mount(serde_json::json!({"Type": "bind", "Source": "/h", "Target": "/d", "ReadOnly": true,
            "BindOptions": {"Propagation": "rslave", "NonRecursive": true, "ReadOnlyNonRecursive": true}})),
        &yes,
    )
    .unwrap();
    assert_eq!(p.point, point("bind", "", "/h", "/d", "", false, "rslave"));
    assert!(p.extra.non_recursive && p.extra.readonly_non_recursive);
    let p = parse_mount(
        &mount(serde_json::json!({"Type": "volume", "Source": "v", "Target": "/d",
            "VolumeOptions": {"NoCopy": true, "Labels": {"a": "b"}, "DriverConfig": {"Name": "local"}}})),
        &yes,
    )
    .unwrap();
    assert_eq!(p.point.driver, "local");
    assert!(!p.extra.copy_data);
    assert_eq!(p.labels["a"], "b");
    let p = parse_mount(
        &mount(serde_json::json!({"Type": "volume", "Target": "/d"})),
        &yes,
    )
    .unwrap();
    assert!(p.extra.anonymous && p.extra.copy_data);
    // A missing source is fine when the mount makes it.
    let no = |_: &str| false;
    let p = parse_mount(
        &mount(
            serde_json::json!({"Type": "bind", "Source": "/x", "Target": "/d",
            "BindOptions": {"CreateMountpoint": true}}),
        ),
        &no,
    )
    .unwrap();
    assert!(p.extra.create_source);
}

#[test]
fn bad_mounts_in_dockerds_words() {
    let no = |_: &str| false;
    for (m, want) in [
        (
            serde_json::json!({"Type": "bind", "Source": "/x", "Target": "/d"}),
            "invalid mount config for type \"bind\": bind source path does not exist: /x",
        ),
        (
            serde_json::json!({"Type": "bind", "Target": "/d"}),
            "invalid mount config for type \"bind\": field Source must not be empty",
        ),
        (
            serde_json::json!({"Type": "bind", "Source": "/x"}),
            "invalid mount config for type \"bind\": field Target must not be empty",
        ),
        (
            serde_json::json!({"Type": "bind", "Source": "rel", "Target": "/d"}),
            "invalid mount config for type \"bind\": invalid mount path: 'rel' mount path must be absolute",
        ),
        (
            serde_json::json!({"Type": "bind", "Source": "/x", "Target": "/d", "BindOptions": {"Propagation": "sideways"}}),
            "invalid mount config for type \"bind\": invalid propagation mode: sideways",
        ),
        (
            serde_json::json!({"Type": "bind", "Source": "/x", "Target": "/d", "VolumeOptions": {}}),
            "invalid mount config for type \"bind\": field VolumeOptions must not be specified",
        ),
        (
            serde_json::json!({"Type": "volume", "Target": "/d", "BindOptions": {}}),
            "invalid mount config for type \"volume\": field BindOptions must not be specified",
        ),
        (
            serde_json::json!({"Type": "volume", "Target": "/d", "ReadOnly": true}),
            "invalid mount config for type \"volume\": must not set ReadOnly mode when using anonymous volumes",
        ),
        (
            serde_json::json!({"Type": "volume", "Source": "v", "Target": "/"}),
            "invalid mount config for type \"volume\": invalid specification: destination can't be '/'",
        ),
        (
            serde_json::json!({"Type": "npipe", "Source": "v", "Target": "/d"}),
            "invalid mount config for type \"npipe\": mount type unknown",
        ),
        (
            serde_json::json!({"Type": "bind", "Source": "/x", "Target": "/d", "BindOptions": {"CreateMountpoint": true, "ReadOnlyNonRecursive": true}}),
            "mount options conflict: !ReadOnly && BindOptions.ReadOnlyNonRecursive",
        ),
    ] {
        assert_eq!(parse_mount(&mount(m.clone()), &no).unwrap_err(), want, "{m}");
    }
}

#[test]
fn volumes_from_entries() {
    assert_eq!(parse_volumes_from("c").unwrap(), ("c".into(), "rw".into()));
    assert_eq!(
        parse_volumes_from("c:ro").unwrap(),
        ("c".into(), "ro".into())
    );
    assert_eq!(
        parse_volumes_from("").unwrap_err(),
        "volumes-from specification cannot be an empty string"
    );
    for mode in ["rshared", "nocopy", "bogus", "ro,rw"] {
        assert_eq!(
            parse_volumes_from(&format!("c:{mode}")).unwrap_err(),
            format!("invalid mode: {mode}")
        );
    }
}

#[test]
fn binds_of_the_daemon_root_become_rslave() {
    let root = "/var/lib/wharf";
    let p = parse_bind("/:/host", "").unwrap();
    assert!(daemon_root_propagation(&p, root).unwrap());
    let p = parse_bind("/var/lib/wharf/x:/x", "").unwrap();
    assert!(daemon_root_propagation(&p, root).unwrap());
    let p = parse_bind("/:/host:rshared", "").unwrap();
    assert!(!daemon_root_propagation(&p, root).unwrap());
    let p = parse_bind("/srv:/srv", "").unwrap();
    assert!(!daemon_root_propagation(&p, root).unwrap());
    let p = parse_bind("/:/host:rprivate", "").unwrap();
    assert_eq!(
        daemon_root_propagation(&p, root).unwrap_err(),
        "invalid mount config: must use either propagation mode \"rslave\" or \"rshared\" when mount source is within the daemon root, daemon root: \"/var/lib/wharf\", bind mount source: \"/\", propagation: \"rprivate\""
    );
}
