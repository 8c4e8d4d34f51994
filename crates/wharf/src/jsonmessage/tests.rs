//! The renderer against the daemon streams of captures 46 (push) and 47 (pull), byte for byte
//! what the docker CLI printed for them; the terminal drawing against moby's algorithm.

use super::*;

/// Capture 46, `docker push localhost:5000/x`: the messages as dockerd sent them.
const PUSH_X: &[&str] = &[
    r#"{"status":"The push refers to repository [localhost:5000/x]"}"#,
    r#"{"status":"Preparing","progressDetail":{},"id":"80e0452609cc"}"#,
    r#"{"status":"Pushing","progressDetail":{"current":37376,"total":1982354},"progress":"[\u003e                                                  ]  37.38kB/1.982MB","id":"80e0452609cc"}"#,
    r#"{"status":"Pushing","progressDetail":{"current":1544704,"total":1982354},"progress":"[======================================\u003e            ]  1.545MB/1.982MB","id":"80e0452609cc"}"#,
    r#"{"status":"Pushing","progressDetail":{"current":1996800,"total":1982354},"progress":"[==================================================\u003e]  1.997MB","id":"80e0452609cc"}"#,
    r#"{"status":"Pushed","progressDetail":{},"id":"80e0452609cc"}"#,
    r#"{"status":"latest: digest: sha256:4a71447f1d639552ba6cdedd5e5e3ea503c5a545b63fe983635a9a3240fdb8e6 size: 527"}"#,
    r#"{"progressDetail":{},"aux":{"Tag":"latest","Digest":"sha256:4a71447f1d639552ba6cdedd5e5e3ea503c5a545b63fe983635a9a3240fdb8e6","Size":527}}"#,
];

/// Capture 46, `docker push localhost:5000/multi:v1`.
const PUSH_MULTI: &[&str] = &[
    r#"{"status":"The push refers to repository [localhost:5000/multi]"}"#,
    r#"{"status":"Preparing","progressDetail":{},"id":"c8cffd6ed0e6"}"#,
    r#"{"status":"Preparing","progressDetail":{},"id":"9d6e4e5ab5a5"}"#,
    r#"{"status":"Preparing","progressDetail":{},"id":"80e0452609cc"}"#,
    r#"{"status":"Pushing","progressDetail":{"current":512,"total":19},"progress":"[==================================================\u003e]     512B","id":"c8cffd6ed0e6"}"#,
    r#"{"status":"Pushing","progressDetail":{"current":512,"total":6},"progress":"[==================================================\u003e]     512B","id":"9d6e4e5ab5a5"}"#,
    r#"{"status":"Pushing","progressDetail":{"current":2048,"total":19},"progress":"[==================================================\u003e]  2.048kB","id":"c8cffd6ed0e6"}"#,
    r#"{"status":"Mounted from x","progressDetail":{},"id":"80e0452609cc"}"#,
    r#"{"status":"Pushing","progressDetail":{"current":2048,"total":6},"progress":"[==================================================\u003e]  2.048kB","id":"9d6e4e5ab5a5"}"#,
    r#"{"status":"Pushed","progressDetail":{},"id":"c8cffd6ed0e6"}"#,
    r#"{"status":"Pushed","progressDetail":{},"id":"9d6e4e5ab5a5"}"#,
    r#"{"status":"v1: digest: sha256:eee9fd10dd0028a38be91307f0af88f332544fc1028fbf9bf201671625321c94 size: 942"}"#,
    r#"{"progressDetail":{},"aux":{"Tag":"v1","Digest":"sha256:eee9fd10dd0028a38be91307f0af88f332544fc1028fbf9bf201671625321c94","Size":942}}"#,
];

/// Capture 47, `docker pull localhost:5000/multi:v1`.
const PULL_MULTI: &[&str] = &[
    r#"{"status":"Pulling from multi","id":"v1"}"#,
    r#"{"status":"Already exists","progressDetail":{},"id":"389ed6bbf73b"}"#,
    r#"{"status":"Pulling fs layer","progressDetail":{},"id":"680518934dcd"}"#,
    r#"{"status":"Pulling fs layer","progressDetail":{},"id":"b3da9f41977a"}"#,
    r#"{"status":"Downloading","progressDetail":{"current":126,"total":126},"progress":"[==================================================\u003e]     126B/126B","id":"b3da9f41977a"}"#,
    r#"{"status":"Verifying Checksum","progressDetail":{},"id":"b3da9f41977a"}"#,
    r#"{"status":"Download complete","progressDetail":{},"id":"b3da9f41977a"}"#,
    r#"{"status":"Downloading","progressDetail":{"current":113,"total":113},"progress":"[==================================================\u003e]     113B/113B","id":"680518934dcd"}"#,
    r#"{"status":"Verifying Checksum","progressDetail":{},"id":"680518934dcd"}"#,
    r#"{"status":"Download complete","progressDetail":{},"id":"680518934dcd"}"#,
    r#"{"status":"Extracting","progressDetail":{"current":113,"total":113},"progress":"[==================================================\u003e]     113B/113B","id":"680518934dcd"}"#,
    r#"{"status":"Extracting","progressDetail":{"current":113,"total":113},"progress":"[==================================================\u003e]     113B/113B","id":"680518934dcd"}"#,
    r#"{"status":"Pull complete","progressDetail":{},"id":"680518934dcd"}"#,
    r#"{"status":"Extracting","progressDetail":{"current":126,"total":126},"progress":"[==================================================\u003e]     126B/126B","id":"b3da9f41977a"}"#,
    r#"{"status":"Extracting","progressDetail":{"current":126,"total":126},"progress":"[==================================================\u003e]     126B/126B","id":"b3da9f41977a"}"#,
    r#"{"status":"Pull complete","progressDetail":{},"id":"b3da9f41977a"}"#,
    r#"{"status":"Digest: sha256:eee9fd10dd0028a38be91307f0af88f332544fc1028fbf9bf201671625321c94"}"#,
    r#"{"status":"Status: Downloaded newer image for localhost:5000/multi:v1"}"#,
];

/// The stream as the daemon sends it: `\r\n` after every message.
fn wire(messages: &[&str]) -> Vec<u8> {
    messages
        .iter()
        .flat_map(|m| format!("{m}\r\n").into_bytes())
        .collect()
}

fn term(is_terminal: bool, width: u16) -> Term {
    Term {
        is_terminal,
        width: Box::new(move || width),
        now: Box::new(|| 1_700_000_000.0),
    }
}

/// Renders `bytes` fed in chunks of `chunk` bytes (a stream splits messages anywhere).
fn render(bytes: &[u8], t: Term, chunk: usize) -> (String, Result<(), StreamError>, Vec<Value>) {
    let mut display = Display::new(Vec::new(), t);
    let mut dec = Decoder::default();
    let mut auxes = Vec::new();
    let mut result = Ok(());
    'outer: for piece in bytes.chunks(chunk) {
        dec.feed(piece);
        while let Some(v) = dec.next_value() {
            let step = v
                .and_then(|v| decode(&v))
                .and_then(|m| display.show(&m, &mut |a: &Value| auxes.push(a.clone())));
            if let Err(e) = step {
                result = Err(e);
                break 'outer;
            }
        }
    }
    if result.is_ok() {
        result = dec.finish();
    }
    let out = String::from_utf8(display.into_inner()).unwrap();
    (out, result, auxes)
}

#[test]
fn capture_46_push_prints_what_docker_printed() {
    // The client stdout of capture 46, less the CLI's own "Using default tag: latest".
    let want_x = "The push refers to repository [localhost:5000/x]\n\
                  80e0452609cc: Preparing\n\
                  80e0452609cc: Pushed\n\
                  latest: digest: sha256:4a71447f1d639552ba6cdedd5e5e3ea503c5a545b63fe983635a9a3240fdb8e6 size: 527\n";
    let want_multi = "The push refers to repository [localhost:5000/multi]\n\
                      c8cffd6ed0e6: Preparing\n\
                      9d6e4e5ab5a5: Preparing\n\
                      80e0452609cc: Preparing\n\
                      80e0452609cc: Mounted from x\n\
                      c8cffd6ed0e6: Pushed\n\
                      9d6e4e5ab5a5: Pushed\n\
                      v1: digest: sha256:eee9fd10dd0028a38be91307f0af88f332544fc1028fbf9bf201671625321c94 size: 942\n";
    for chunk in [1, 7, 64, 1 << 20] {
        let (out, res, aux) = render(&wire(PUSH_X), term(false, 200), chunk);
        assert_eq!(res, Ok(()));
        assert_eq!(out, want_x, "chunk {chunk}");
        // The digest message goes to the aux handler, not the screen.
        assert_eq!(aux.len(), 1);
        assert_eq!(aux[0]["Size"], 527);
        let (out, res, _) = render(&wire(PUSH_MULTI), term(false, 200), chunk);
        assert_eq!(res, Ok(()));
        assert_eq!(out, want_multi, "chunk {chunk}");
    }
}

#[test]
fn capture_47_pull_prints_what_docker_printed() {
    let want = "v1: Pulling from multi\n\
                389ed6bbf73b: Already exists\n\
                680518934dcd: Pulling fs layer\n\
                b3da9f41977a: Pulling fs layer\n\
                b3da9f41977a: Verifying Checksum\n\
                b3da9f41977a: Download complete\n\
                680518934dcd: Verifying Checksum\n\
                680518934dcd: Download complete\n\
                680518934dcd: Pull complete\n\
                b3da9f41977a: Pull complete\n\
                Digest: sha256:eee9fd10dd0028a38be91307f0af88f332544fc1028fbf9bf201671625321c94\n\
                Status: Downloaded newer image for localhost:5000/multi:v1\n";
    let (out, res, _) = render(&wire(PULL_MULTI), term(false, 80), 13);
    assert_eq!(res, Ok(()));
    assert_eq!(out, want);
}

#[test]
fn bars_are_the_daemons_own_rendering_on_a_wide_terminal() {
    // dockerd renders `progress` as the CLI does on a terminal wider than 110 columns.
    for raw in PUSH_X.iter().chain(PUSH_MULTI).chain(PULL_MULTI) {
        let v: Value = serde_json::from_str(raw).unwrap();
        let m = decode(&v).unwrap();
        if let (Some(p), false) = (&m.progress, m.progress_message.is_empty()) {
            assert_eq!(p.render(200, 0.0), m.progress_message, "{raw}");
        }
    }
}

#[test]
fn terminal_lines_are_redrawn_in_place() {
    let stream = wire(&PUSH_X[..6]);
    let (out, res, _) = render(&stream, term(true, 200), 5);
    assert_eq!(res, Ok(()));
    let bar = |s: &str| format!("\x1b[1A\x1b[2K\r80e0452609cc: {s}\r\x1b[1B");
    let want = [
        "The push refers to repository [localhost:5000/x]\n".to_string(),
        // A new id opens its line below, then every update goes up to it and back.
        "\n".to_string(),
        bar("Preparing "),
        bar("Pushing [>                                                  ]  37.38kB/1.982MB"),
        bar("Pushing [======================================>            ]  1.545MB/1.982MB"),
        bar("Pushing [==================================================>]  1.997MB"),
        bar("Pushed "),
    ]
    .concat();
    assert_eq!(out, want);

    // Two layers: the first is two lines up once the second exists; a message without
    // progress ends the block.
    let stream = wire(&[
        r#"{"status":"Pulling fs layer","progressDetail":{},"id":"a"}"#,
        r#"{"status":"Pulling fs layer","progressDetail":{},"id":"b"}"#,
        r#"{"status":"Downloading","progressDetail":{"current":50,"total":100},"id":"a"}"#,
        r#"{"status":"Digest: sha256:x"}"#,
        r#"{"status":"Waiting","progressDetail":{},"id":"a"}"#,
    ]);
    let (out, _, _) = render(&stream, term(true, 80), 1 << 20);
    let want = "\n\x1b[1A\x1b[2K\ra: Pulling fs layer \r\x1b[1B\
                \n\x1b[1A\x1b[2K\rb: Pulling fs layer \r\x1b[1B\
                \x1b[2A\x1b[2K\ra: Downloading      50B/100B\r\x1b[2B\
                Digest: sha256:x\n\
                \n\x1b[1A\x1b[2K\ra: Waiting \r\x1b[1B";
    assert_eq!(out, want);
}

#[test]
fn progress_strings_follow_moby() {
    let p = |current, total| Progress {
        current,
        total,
        ..Progress::default()
    };
    assert_eq!(p(0, 0).render(200, 0.0), "");
    assert_eq!(p(1500, 0).render(200, 0.0), "   1.5kB");
    assert_eq!(p(1500, 3000).render(80, 0.0), "   1.5kB/3kB");
    assert_eq!(
        p(1500, 3000).render(111, 0.0),
        format!("[{}>{}]    1.5kB/3kB", "=".repeat(25), " ".repeat(25))
    );
    let units = Progress {
        current: 3,
        total: 10,
        units: "layers".into(),
        ..Progress::default()
    };
    assert_eq!(units.render(80, 0.0), "3/10 layers");
    let hidden = Progress {
        hide_counts: true,
        ..p(3, 10)
    };
    assert_eq!(hidden.render(80, 0.0), "");
    // Time left: 10 s for the first 1000 bytes, 9000 to go.
    let timed = Progress {
        start: 100,
        ..p(1000, 10_000)
    };
    assert_eq!(timed.render(80, 110.0), "     1kB/10kB 1m30s");
    assert_eq!(timed.render(50, 110.0), "     1kB/10kB");
    assert_eq!(go_duration_seconds(3_723_000_000_000), "1h2m3s");
    assert_eq!(go_duration_seconds(0), "0s");
    assert_eq!(round_to_second(1_500_000_000), 2_000_000_000);
    assert_eq!(round_to_second(-1_500_000_000), -2_000_000_000);
}

#[test]
fn errors_end_the_stream_with_their_message() {
    let stream = wire(&[
        r#"{"status":"Pulling from x","id":"latest"}"#,
        r#"{"errorDetail":{"message":"manifest unknown"},"error":"manifest unknown"}"#,
        r#"{"status":"never shown"}"#,
    ]);
    let (out, res, _) = render(&stream, term(false, 200), 1 << 20);
    assert_eq!(out, "latest: Pulling from x\n");
    assert_eq!(res, Err(StreamError("manifest unknown".into())));
    // Only errorDetail counts: the deprecated `error` alone is an empty line.
    let (out, res, _) = render(&wire(&[r#"{"error":"x"}"#]), term(false, 200), 4);
    assert_eq!((out.as_str(), res), ("\n", Ok(())));
    // A message cut short, or not JSON.
    let (_, res, _) = render(b"{\"status\":\"a\"}\r\n{\"stat", term(false, 200), 3);
    assert_eq!(res, Err(StreamError("unexpected EOF".into())));
    let (_, res, _) = render(b"<html>", term(false, 200), 64);
    assert!(res.is_err());
    // Go's type errors.
    let (_, res, _) = render(br#"{"status":5}"#, term(false, 200), 64);
    assert_eq!(
        res,
        Err(StreamError(
            "json: cannot unmarshal number into Go struct field JSONMessage.status of type string"
                .into()
        ))
    );
}

#[test]
fn go_decoding_rules() {
    // Keys in any case; null leaves the field unset.
    let v: Value =
        serde_json::from_str(r#"{"Status":"s","ID":"i","progressDetail":null,"aux":null}"#)
            .unwrap();
    let m = decode(&v).unwrap();
    assert_eq!((m.status.as_str(), m.id.as_str()), ("s", "i"));
    assert!(m.progress.is_none() && m.aux.is_none());
    // The deprecated `progress` text without detail: shown, and without a newline.
    let (out, _, _) = render(
        &wire(&[r#"{"status":"Downloading","progress":"[=>  ]","id":"l"}"#]),
        term(false, 200),
        64,
    );
    assert_eq!(out, "l: Downloading [=>  ]");
    // `stream` (build, load) is printed as is.
    let (out, _, _) = render(br#"{"stream":"Loaded image: x\n"}"#, term(false, 200), 64);
    assert_eq!(out, "Loaded image: x\n");
}
