use super::*;

const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

fn image_json(media_type: Option<&str>) -> String {
    let mt = media_type
        .map(|m| format!(r#""mediaType":"{m}","#))
        .unwrap_or_default();
    format!(
        r#"{{"schemaVersion":2,{mt}"config":{{"mediaType":"{DOCKER_CONFIG}","digest":"{D1}","size":10}},"layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":"{D2}","size":20}}]}}"#
    )
}

fn entry(os: &str, arch: &str, variant: Option<&str>, n: u8) -> Descriptor {
    Descriptor {
        media_type: OCI_MANIFEST.into(),
        digest: Digest::parse(&format!("sha256:{}", format!("{n:02x}").repeat(32))).unwrap(),
        size: 1,
        urls: vec![],
        platform: Some(Platform {
            architecture: arch.into(),
            os: os.into(),
            os_version: None,
            variant: variant.map(str::to_owned),
        }),
        annotations: None,
    }
}

#[test]
fn manifests_parse_by_content_type_or_their_own_media_type() {
    let docker = image_json(Some(DOCKER_MANIFEST));
    let oci = image_json(None);
    let index = r#"{"schemaVersion":2,"manifests":[]}"#.to_owned();
    for (ct, body, want_image) in [
        (DOCKER_MANIFEST, docker.as_str(), true),
        ("application/json", docker.as_str(), true),
        (OCI_MANIFEST, oci.as_str(), true),
        ("", oci.as_str(), true),
        ("text/plain", index.as_str(), false),
        (OCI_INDEX, index.as_str(), false),
    ] {
        match parse(ct, body.as_bytes()) {
            Ok(Manifest::Image(m)) => {
                assert!(want_image, "{ct}");
                assert_eq!(m.layers.len(), 1);
                assert_eq!(m.config.digest.as_str(), D1);
            }
            Ok(Manifest::Index(i)) => {
                assert!(!want_image, "{ct}");
                assert!(i.manifests.is_empty());
            }
            Err(e) => panic!("{ct}: {e}"),
        }
    }
    assert_eq!(
        media_type_of("application/json", docker.as_bytes()),
        DOCKER_MANIFEST
    );
    assert_eq!(media_type_of("", oci.as_bytes()), OCI_MANIFEST);
    assert_eq!(media_type_of("", index.as_bytes()), OCI_INDEX);
}

#[test]
fn refusals_use_dockers_words() {
    let schema1 = r#"{"schemaVersion":1,"name":"a","tag":"b","fsLayers":[],"history":[]}"#;
    for ct in [DOCKER_SCHEMA1_SIGNED, DOCKER_SCHEMA1, "application/json"] {
        let e = parse(ct, schema1.as_bytes()).unwrap_err().to_string();
        assert_eq!(e, SCHEMA1_REMOVED, "{ct}");
    }
    assert!(SCHEMA1_REMOVED.starts_with(
        "Docker Image Format v1 and Docker Image manifest version 2, schema 1 support has been \
         removed."
    ));
    let e = parse(
        DOCKER_MANIFEST,
        image_json(Some(DOCKER_MANIFEST_LIST)).as_bytes(),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("mediaType in manifest should be '{DOCKER_MANIFEST}' not '{DOCKER_MANIFEST_LIST}'")
    );
    let e = parse(OCI_MANIFEST, image_json(Some(DOCKER_MANIFEST)).as_bytes()).unwrap_err();
    assert!(e
        .to_string()
        .starts_with("if present, mediaType in manifest should be"));
    // An empty object reads as an index, as dockerd detects it, and fails as one.
    let e = parse("application/x-thing", b"{}").unwrap_err().to_string();
    assert!(e.starts_with("invalid manifest list: missing field"), "{e}");
    let e = parse("application/x-thing", b"not json")
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "unsupported manifest media type and no default available: application/x-thing"
    );
    assert!(parse(DOCKER_MANIFEST, b"{").is_err());
}

fn index(entries: Vec<Descriptor>) -> ImageIndex {
    ImageIndex {
        schema_version: 2,
        media_type: Some(OCI_INDEX.into()),
        manifests: entries,
    }
}

#[test]
fn selection_follows_containerds_matcher() {
    let amd64 = entry("linux", "amd64", None, 1);
    let arm64 = entry("linux", "arm64", Some("v8"), 2);
    let armv7 = entry("linux", "arm", Some("v7"), 3);
    let armv6 = entry("linux", "arm", Some("v6"), 4);
    let armv5 = entry("linux", "arm", Some("v5"), 5);
    let i386 = entry("linux", "386", None, 6);
    let win = entry("windows", "amd64", None, 7);
    let attest = entry("unknown", "unknown", None, 8);
    let arm64_bare = entry("linux", "arm64", None, 9);
    let full = index(vec![
        attest.clone(),
        win.clone(),
        amd64.clone(),
        arm64.clone(),
        armv5.clone(),
        armv6.clone(),
        armv7.clone(),
        i386.clone(),
    ]);
    let pick = |idx: &ImageIndex, want: &str| {
        select(idx, &Platform::parse(want).unwrap())
            .map(|d| d.digest.clone())
            .map_err(|e| e.to_string())
    };
    assert_eq!(pick(&full, "linux/amd64"), Ok(amd64.digest.clone()));
    assert_eq!(pick(&full, "linux/arm64"), Ok(arm64.digest.clone()));
    // arm64/v8 is arm64 with no variant, and the other way round.
    assert_eq!(pick(&full, "linux/arm64/v8"), Ok(arm64.digest.clone()));
    assert_eq!(
        pick(&index(vec![arm64_bare.clone()]), "linux/arm64/v8"),
        Ok(arm64_bare.digest.clone())
    );
    assert_eq!(pick(&full, "linux/arm/v7"), Ok(armv7.digest.clone()));
    assert_eq!(pick(&full, "linux/arm/v6"), Ok(armv6.digest.clone()));
    assert_eq!(pick(&full, "armhf"), Ok(armv7.digest.clone()));
    assert_eq!(pick(&full, "windows/amd64"), Ok(win.digest.clone()));
    // Lower variants are fallbacks, best first, whatever their order in the index.
    let old_arm = index(vec![armv5.clone(), armv6.clone()]);
    assert_eq!(pick(&old_arm, "linux/arm/v7"), Ok(armv6.digest.clone()));
    assert_eq!(pick(&old_arm, "linux/arm/v5"), Ok(armv5.digest.clone()));
    assert_eq!(
        pick(&old_arm, "linux/arm/v4").unwrap_err(),
        "no matching manifest for linux/arm/v4 in the manifest list entries"
    );
    // arm64 runs 32-bit arm; amd64 runs 386.
    assert_eq!(pick(&old_arm, "linux/arm64"), Ok(armv6.digest.clone()));
    assert_eq!(
        pick(&index(vec![i386.clone()]), "linux/amd64"),
        Ok(i386.digest.clone())
    );
    let only_amd64 = index(vec![amd64.clone(), attest.clone()]);
    assert_eq!(
        pick(&only_amd64, "linux/arm64/v8").unwrap_err(),
        "no matching manifest for linux/arm64/v8 in the manifest list entries"
    );
    assert_eq!(
        pick(&only_amd64, "linux/s390x").unwrap_err(),
        "no matching manifest for linux/s390x in the manifest list entries"
    );
    // An entry without a platform fits anything, after those that name one.
    let mut bare = entry("linux", "amd64", None, 10);
    bare.platform = None;
    let with_bare = index(vec![bare.clone(), amd64.clone()]);
    assert_eq!(pick(&with_bare, "linux/amd64"), Ok(amd64.digest.clone()));
    assert_eq!(pick(&with_bare, "linux/ppc64le"), Ok(bare.digest.clone()));
    // No platform asked: the host's.
    let host = select(&full, &Platform::default()).unwrap();
    let host_platform = host.platform.clone().unwrap();
    assert_eq!(host_platform.os, "linux");
}

#[test]
fn amd64_variants_fall_back_down_to_v1() {
    let v1 = entry("linux", "amd64", None, 1);
    let v2 = entry("linux", "amd64", Some("v2"), 2);
    let v4 = entry("linux", "amd64", Some("v4"), 4);
    let idx = index(vec![v1.clone(), v2.clone(), v4]);
    let want = Platform::parse("linux/amd64/v3").unwrap();
    assert_eq!(select(&idx, &want).unwrap().digest, v2.digest);
    let want = Platform::parse("linux/amd64").unwrap();
    assert_eq!(select(&idx, &want).unwrap().digest, v1.digest);
}
