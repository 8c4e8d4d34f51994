use super::*;

fn p(os: &str, arch: &str, variant: Option<&str>) -> Platform {
    Platform {
        architecture: arch.into(),
        os: os.into(),
        os_version: None,
        variant: variant.map(str::to_owned),
    }
}

#[test]
fn specifiers_parse_like_containerd() {
    let host = Platform::host();
    let cases: Vec<(&str, Result<Platform, &str>)> = vec![
        ("linux/amd64", Ok(p("linux", "amd64", None))),
        ("linux/x86_64", Ok(p("linux", "amd64", None))),
        ("Linux/X86-64", Ok(p("linux", "amd64", None))),
        ("linux/amd64/v1", Ok(p("linux", "amd64", None))),
        ("linux/amd64/v3", Ok(p("linux", "amd64", Some("v3")))),
        ("linux/aarch64", Ok(p("linux", "arm64", None))),
        ("linux/arm64/v8", Ok(p("linux", "arm64", Some("v8")))),
        ("linux/arm64/8", Ok(p("linux", "arm64", Some("v8")))),
        ("linux/arm64/v9.0", Ok(p("linux", "arm64", Some("v9")))),
        ("linux/arm", Ok(p("linux", "arm", None))),
        ("linux/arm/7", Ok(p("linux", "arm", Some("v7")))),
        ("linux/arm/6", Ok(p("linux", "arm", Some("v6")))),
        ("linux/armhf", Ok(p("linux", "arm", None))),
        ("linux/armel", Ok(p("linux", "arm", Some("v6")))),
        ("linux/i386", Ok(p("linux", "386", None))),
        ("macos/arm64", Ok(p("darwin", "arm64", None))),
        ("amd64", Ok(p("linux", "amd64", None))),
        ("aarch64", Ok(p("linux", "arm64", None))),
        ("armhf", Ok(p("linux", "arm", None))),
        ("armel", Ok(p("linux", "arm", Some("v6")))),
        ("linux", Ok(p("linux", &host.architecture, None))),
        ("linux/s390x", Ok(p("linux", "s390x", None))),
        (
            "foo",
            Err("\"foo\": unknown operating system or architecture: invalid argument"),
        ),
        ("linux/*", Err("\"linux/*\": wildcards not yet supported: invalid argument")),
        (
            "linux/arm/v7/x",
            Err("\"linux/arm/v7/x\": cannot parse platform specifier: invalid argument"),
        ),
        (
            "linux/a b",
            Err("\"a b\" is an invalid component of \"linux/a b\": platform specifier \
                 component must match \"^[A-Za-z0-9_.-]+$\": invalid argument"),
        ),
        (
            "lin ux/amd64",
            Err("\"lin ux\" is an invalid OS component of \"lin ux/amd64\": OSAndVersion \
                 specifier component must match \"^([A-Za-z0-9_-]+)(?:\\\\(([A-Za-z0-9_.-]*)\\\\))?$\": \
                 invalid argument"),
        ),
        (
            "",
            Err("\"\" is an invalid OS component of \"\": OSAndVersion specifier component \
                 must match \"^([A-Za-z0-9_-]+)(?:\\\\(([A-Za-z0-9_.-]*)\\\\))?$\": invalid argument"),
        ),
    ];
    for (input, want) in cases {
        let got = Platform::parse(input).map_err(|e| e.to_string());
        assert_eq!(got, want.map_err(str::to_owned), "{input:?}");
    }
    let w = Platform::parse("windows(10.0.17763)/amd64").unwrap();
    assert_eq!(w.os_version.as_deref(), Some("10.0.17763"));
    assert_eq!(w.to_string(), "windows(10.0.17763)/amd64");
}

#[test]
fn platforms_format_like_format_all() {
    assert_eq!(
        p("linux", "arm64", Some("v8")).to_string(),
        "linux/arm64/v8"
    );
    assert_eq!(p("linux", "amd64", None).to_string(), "linux/amd64");
    assert_eq!(p("", "amd64", None).to_string(), "unknown");
    assert_eq!(Platform::host().os, "linux");
}

#[test]
fn vectors_list_what_a_platform_runs_best_first() {
    let names = |want: Platform| -> Vec<String> {
        vector(&want.normalized())
            .iter()
            .map(|p| p.to_string())
            .collect()
    };
    assert_eq!(
        names(p("linux", "amd64", None)),
        ["linux/amd64", "linux/386"]
    );
    assert_eq!(
        names(p("linux", "amd64", Some("v3"))),
        [
            "linux/amd64/v3",
            "linux/amd64/v2",
            "linux/amd64/v1",
            "linux/386"
        ]
    );
    assert_eq!(
        names(p("linux", "arm", Some("v7"))),
        ["linux/arm/v7", "linux/arm/v6", "linux/arm/v5"]
    );
    assert_eq!(
        names(p("linux", "arm64", Some("v8"))),
        [
            "linux/arm64/v8",
            "linux/arm/v8",
            "linux/arm/v7",
            "linux/arm/v6",
            "linux/arm/v5"
        ]
    );
    assert_eq!(
        names(p("linux", "arm64", Some("v8.2")))[..3],
        ["linux/arm64/v8.2", "linux/arm64/v8.1", "linux/arm64/v8"]
    );
    let v9 = names(p("linux", "arm64", Some("v9")));
    assert_eq!(
        v9[..3],
        ["linux/arm64/v9", "linux/arm64/v8.5", "linux/arm64/v8.4"]
    );
    assert!(names(p("linux", "arm64", Some("v10"))).is_empty());
}
