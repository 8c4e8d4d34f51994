#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use wharf_api::ErrorKind;

fn service(root: &Path) -> VolumeService {
    let s = VolumeService::new(Arc::new(Ctx::for_tests(root)));
    s.recover().unwrap();
    s
}

fn req(name: &str, labels: &[(&str, &str)]) -> VolumeCreateRequest {
    VolumeCreateRequest {
        name: name.into(),
        labels: Some(
            labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
        ..Default::default()
    }
}

fn filters(raw: &str) -> Filters {
    Filters::parse(raw).unwrap()
}

fn kind(e: EngineError) -> (ErrorKind, String) {
    (e.kind(), e.message())
}

#[test]
fn create_makes_the_directory_and_the_record_and_an_existing_name_answers_itself() {
    let d = tempfile::tempdir().unwrap();
    let s = service(d.path());
    let v = s.create(req("volumes_create", &[("a", "b")])).unwrap();
    assert_eq!(v.driver, "local");
    assert_eq!(v.scope, "local");
    assert_eq!(v.options, None);
    assert_eq!(v.labels.as_ref().unwrap()["a"], "b");
    let data = d.path().join("volumes/volumes_create/_data");
    assert_eq!(v.mountpoint, data.to_string_lossy());
    assert!(data.is_dir());
    assert!(chrono::DateTime::parse_from_rfc3339(&v.created_at).is_ok());
    let again = s.create(req("volumes_create", &[("c", "d")])).unwrap();
    assert_eq!(again, v);
    assert_eq!(s.inspect("volumes_create").unwrap(), v);
}

#[test]
fn an_unnamed_volume_gets_a_random_name_and_the_anonymous_label() {
    let d = tempfile::tempdir().unwrap();
    let s = service(d.path());
    let v = s.create(VolumeCreateRequest::default()).unwrap();
    assert_eq!(v.name.len(), 64);
    assert!(v.name.chars().all(|c| c.is_ascii_hexdigit()));
    assert!(v.labels.unwrap().contains_key(ANONYMOUS_LABEL));
}

#[test]
fn bad_names_drivers_and_options_are_refused_in_dockerds_words() {
    let d = tempfile::tempdir().unwrap();
    let s = service(d.path());
    let (k, m) = kind(s.create(req("a", &[])).unwrap_err());
    assert_eq!(k, ErrorKind::InvalidArgument);
    assert!(m.contains("volume name is too short"), "{m}");
    for bad in ["-ab", "a/b", "a b", "_ab", "ä1"] {
        let (k, m) = kind(s.create(req(bad, &[])).unwrap_err());
        assert_eq!(k, ErrorKind::InvalidArgument, "{bad}");
        assert!(m.contains("includes invalid characters"), "{m}");
    }
    for good in ["ab", "a.b-c_d", "0x"] {
        validate_name(good).unwrap();
    }
    let mut r = req("volumes_driver", &[]);
    r.driver = "nfs".into();
    let (k, m) = kind(s.create(r).unwrap_err());
    assert_eq!(k, ErrorKind::NotFound);
    assert_eq!(
        m,
        "create volumes_driver: error looking up volume plugin nfs: plugin \"nfs\" not found"
    );
    let mut r = req("volumes_opts", &[]);
    r.driver_opts = Some([("type".to_string(), "tmpfs".to_string())].into());
    let (k, m) = kind(s.create(r).unwrap_err());
    assert_eq!(k, ErrorKind::InvalidArgument);
    assert_eq!(
        m,
        r#"create volumes_opts: missing required option: "device""#
    );
    assert!(s.list(&Filters::default()).unwrap().is_empty());
    assert!(!d.path().join("volumes/volumes_opts").exists());
}

#[test]
fn list_filters_by_name_driver_label_and_dangling() {
    let d = tempfile::tempdir().unwrap();
    let s = service(d.path());
    s.create(req("list_one", &[("k", "1")])).unwrap();
    s.create(req("list_two", &[("k", "2")])).unwrap();
    let names = |f: &str| -> Vec<String> {
        s.list(&filters(f))
            .unwrap()
            .into_iter()
            .map(|v| v.name)
            .collect()
    };
    assert_eq!(names("{}"), ["list_one", "list_two"]);
    assert_eq!(names(r#"{"name":["one"]}"#), ["list_one"]);
    assert_eq!(names(r#"{"label":["k=2"]}"#), ["list_two"]);
    assert_eq!(names(r#"{"label":["k"]}"#).len(), 2);
    assert_eq!(names(r#"{"driver":["local"]}"#).len(), 2);
    assert!(names(r#"{"driver":["other"]}"#).is_empty());
    assert_eq!(names(r#"{"dangling":["true"]}"#).len(), 2);
    assert!(names(r#"{"dangling":["false"]}"#).is_empty());
    let (k, m) = kind(s.list(&filters(r#"{"until":["1h"]}"#)).unwrap_err());
    assert_eq!(k, ErrorKind::InvalidArgument);
    assert_eq!(m, "invalid filter 'until'");
}

#[test]
fn remove_deletes_record_and_data_and_force_forgives_unknown_names() {
    let d = tempfile::tempdir().unwrap();
    let s = service(d.path());
    let v = s.create(req("rm_me", &[])).unwrap();
    std::fs::write(Path::new(&v.mountpoint).join("f"), b"x").unwrap();
    s.remove("rm_me", false).unwrap();
    assert!(!d.path().join("volumes/rm_me").exists());
    let (k, m) = kind(s.inspect("rm_me").unwrap_err());
    assert_eq!(
        (k, m.as_str()),
        (ErrorKind::NotFound, "get rm_me: no such volume")
    );
    let (k, _) = kind(s.remove("rm_me", false).unwrap_err());
    assert_eq!(k, ErrorKind::NotFound);
    s.remove("rm_me", true).unwrap();
}

#[test]
fn prune_takes_anonymous_volumes_unless_all_and_honours_labels() {
    let d = tempfile::tempdir().unwrap();
    let s = service(d.path());
    let anon = s.create(VolumeCreateRequest::default()).unwrap();
    std::fs::write(Path::new(&anon.mountpoint).join("f"), b"12345").unwrap();
    s.create(req("prune_keep", &[("keep", "yes")])).unwrap();
    s.create(req("prune_go", &[])).unwrap();
    let rep = s.prune(&Filters::default()).unwrap();
    assert_eq!(rep.volumes_deleted, [anon.name]);
    assert_eq!(rep.space_reclaimed, 5);
    let rep = s
        .prune(&filters(r#"{"all":["true"],"label!":["keep"]}"#))
        .unwrap();
    assert_eq!(rep.volumes_deleted, ["prune_go"]);
    let rep = s
        .prune(&filters(r#"{"all":["1"],"label":["keep=yes"]}"#))
        .unwrap();
    assert_eq!(rep.volumes_deleted, ["prune_keep"]);
    let (k, _) = kind(s.prune(&filters(r#"{"dangling":["true"]}"#)).unwrap_err());
    assert_eq!(k, ErrorKind::InvalidArgument);
}

#[test]
fn recover_deletes_directories_without_a_record_and_keeps_the_rest() {
    let d = tempfile::tempdir().unwrap();
    {
        let s = service(d.path());
        s.create(req("kept", &[])).unwrap();
    }
    // A create cut after its directory, and a remove cut after its row.
    std::fs::create_dir_all(d.path().join("volumes/half_made/_data")).unwrap();
    std::fs::write(d.path().join("volumes/half_made/_data/f"), b"x").unwrap();
    let s = VolumeService::new(Arc::new(Ctx::for_tests(d.path())));
    assert_eq!(s.recover().unwrap(), 1);
    assert!(!d.path().join("volumes/half_made").exists());
    assert!(d.path().join("volumes/kept/_data").is_dir());
    assert_eq!(s.list(&Filters::default()).unwrap().len(), 1);
}

#[test]
fn a_volume_in_use_is_refused_by_rm_and_skipped_by_dangling_and_prune() {
    let d = tempfile::tempdir().unwrap();
    let s = service(d.path());
    let named = s
        .use_volume("volumes_in_use", "", BTreeMap::new(), "c1")
        .unwrap();
    assert_eq!(named.name, "volumes_in_use");
    let anon = s.use_volume("", "", BTreeMap::new(), "c2").unwrap();
    assert!(anon.labels.as_ref().unwrap().contains_key(ANONYMOUS_LABEL));
    s.create(req("volumes_idle", &[])).unwrap();

    let (k, m) = kind(s.remove("volumes_in_use", true).unwrap_err());
    assert_eq!(k, ErrorKind::Conflict);
    assert_eq!(m, "remove volumes_in_use: volume is in use - [c1]");
    let names = |f: &str| -> Vec<String> {
        s.list(&filters(f))
            .unwrap()
            .into_iter()
            .map(|v| v.name)
            .collect()
    };
    assert_eq!(names(r#"{"dangling":["true"]}"#), ["volumes_idle"]);
    assert_eq!(names(r#"{"dangling":["false"]}"#).len(), 2);
    assert_eq!(names("").len(), 3);
    let pruned = s.prune(&filters(r#"{"all":["true"]}"#)).unwrap();
    assert_eq!(pruned.volumes_deleted, ["volumes_idle"]);

    s.ctx.volume_refs.remove_container("c1");
    s.ctx.volume_refs.remove_container("c2");
    s.remove("volumes_in_use", false).unwrap();
    let pruned = s.prune(&filters("")).unwrap();
    assert_eq!(pruned.volumes_deleted, [anon.name]);
}
