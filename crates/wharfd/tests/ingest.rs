//! Layer ingest through a real wharfd (issue 13): a client that hangs up mid-import leaves
//! nothing; bad layer entries are the client's fault and their messages name the entry, never
//! the data root. The limits themselves (--max-layer-size, --max-layer-ratio,
//! --min-free-space) are covered by wharf-storage's unit tests and tests/hostile/test_ingest.py,
//! which can start wharfd with small limits.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::Path;
use wharf_testkit::{start_or_skip, wait_until_true, TestDaemon};

fn entries(p: &Path) -> Vec<String> {
    std::fs::read_dir(p)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Nothing of an ingest left: no blob, no temp file, no snapshot.
fn leftovers(d: &TestDaemon) -> Vec<String> {
    let root = d.data_root();
    let mut out = Vec::new();
    for sub in ["content/blobs/sha256", "content/ingest", "snapshots"] {
        out.extend(
            entries(&root.join(sub))
                .into_iter()
                .map(|e| format!("{sub}/{e}")),
        );
    }
    out
}

/// A tar of one file of `n` zero bytes, gzipped: tiny on the wire, `n` on disk.
fn gzip_of_zeros(n: usize) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = header(n as u64);
    h.set_cksum();
    b.append_data(&mut h, "zeros", std::io::repeat(0).take_n(n))
        .unwrap();
    let tar = b.into_inner().unwrap();
    // Level 6: zlib-rs's level 1 (deflate_quick) shrinks runs of zeros ~10x less than
    // zlib's, and the bomb tests need zeros to compress ~1000:1.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).unwrap();
    gz.finish().unwrap()
}

fn header(size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_600_000_000);
    h
}

trait TakeN: std::io::Read + Sized {
    fn take_n(self, n: usize) -> std::io::Take<Self> {
        std::io::Read::take(self, n as u64)
    }
}
impl<R: std::io::Read> TakeN for R {}

/// Sends the head of a chunked import request and `body`, then closes the connection
/// without finishing it.
async fn send_and_hang_up(d: &TestDaemon, repo: &str, body: &[u8], finish: bool) {
    use tokio::io::AsyncWriteExt;
    let mut s = tokio::net::UnixStream::connect(d.socket_path())
        .await
        .unwrap();
    let head = format!(
        "POST /v1.41/images/create?fromSrc=-&repo={repo} HTTP/1.1\r\nHost: docker\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    for c in body.chunks(32 * 1024) {
        s.write_all(format!("{:x}\r\n", c.len()).as_bytes())
            .await
            .unwrap();
        s.write_all(c).await.unwrap();
        s.write_all(b"\r\n").await.unwrap();
    }
    if finish {
        s.write_all(b"0\r\n\r\n").await.unwrap();
    }
    s.flush().await.unwrap();
    if !finish {
        // Hang up only once the import is under way (its temporary snapshot exists).
        let snaps = d.data_root().join("snapshots");
        wait_until_true("the import to start unpacking", || {
            !entries(&snaps).is_empty()
        })
        .await;
    }
    drop(s);
}

async fn wait_clean(d: &TestDaemon, what: &str) {
    let mut last = Vec::new();
    for _ in 0..300 {
        last = leftovers(d);
        if last.is_empty() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{what}: left behind {last:?}");
}

#[tokio::test]
async fn client_hanging_up_mid_import_leaves_nothing() {
    let Some(d) = start_or_skip("it-ingest-hangup").await else {
        return;
    };
    let c = d.client();
    assert!(leftovers(&d).is_empty(), "{:?}", leftovers(&d));

    // Mid-body: half of a layer sent, then the connection closed.
    let layer = gzip_of_zeros(64 << 20);
    send_and_hang_up(&d, "it-ingest-half", &layer[..layer.len() / 2], false).await;
    wait_clean(&d, "a client gone mid-body").await;
    let log_path = d.log_path();
    wait_until_true("the daemon to log the cancelled import", || {
        std::fs::read_to_string(&log_path)
            .unwrap_or_default()
            .contains("cancelled, the client went away")
    })
    .await;

    // The whole body sent, the connection closed while the layer is still being unpacked:
    // the dropped request cancels it.
    let layer = gzip_of_zeros(256 << 20);
    send_and_hang_up(&d, "it-ingest-whole", &layer, true).await;
    wait_until_true("the daemon to log the second cancelled import", || {
        std::fs::read_to_string(&log_path)
            .unwrap_or_default()
            .matches("cancelled, the client went away")
            .count()
            >= 2
    })
    .await;
    wait_clean(&d, "a client gone while unpacking").await;

    assert!(
        c.list_images(false).await.unwrap().is_empty(),
        "an image was made"
    );
    for r in ["it-ingest-half", "it-ingest-whole"] {
        assert!(c.inspect_image(r).await.unwrap_err().is_not_found(), "{r}");
    }
    // The daemon still imports normally afterwards.
    let small = gzip_of_zeros(1 << 20);
    c.import_image(small, "it-ingest-after", None)
        .await
        .unwrap();
}

/// A tar with a PAX header carrying `records`, then a file `path`.
fn pax_layer(path: &str, records: &[(&str, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (k, v) in records {
        let rest = 1 + k.len() + 1 + v.len() + 1;
        let mut len = rest + 1;
        while len != rest + len.to_string().len() {
            len = rest + len.to_string().len();
        }
        body.extend_from_slice(format!("{len} {k}=").as_bytes());
        body.extend_from_slice(v);
        body.push(b'\n');
    }
    let mut b = tar::Builder::new(Vec::new());
    let mut h = header(body.len() as u64);
    h.set_entry_type(tar::EntryType::XHeader);
    h.set_path("PaxHeader").unwrap();
    h.set_cksum();
    b.append(&h, &body[..]).unwrap();
    let mut h = header(1);
    h.set_path(path).unwrap();
    h.set_cksum();
    b.append(&h, &b"x"[..]).unwrap();
    b.into_inner().unwrap()
}

#[tokio::test]
async fn bad_layer_entries_are_400_naming_the_entry() {
    let Some(d) = start_or_skip("it-ingest-badentry").await else {
        return;
    };
    let c = d.client();
    let root = d.data_root().to_string_lossy().into_owned();
    let long = "d".repeat(5000);
    let cases = [
        (
            pax_layer("ping", &[("SCHILY.xattr.security.capability", b"garbage")]),
            "\"ping\" in the layer: invalid argument",
        ),
        (
            pax_layer("x", &[("path", long.as_bytes())]),
            "in the layer: file name too long",
        ),
    ];
    for (layer, want) in cases {
        let e = c
            .import_image(layer, "it-ingest-bad", None)
            .await
            .unwrap_err();
        let m = e.to_string();
        assert_eq!(e.status(), Some(400), "{m}");
        assert!(m.contains(want), "{m}");
        assert!(!m.contains(&root), "leaks the data root: {m}");
        wait_clean(&d, "a refused layer").await;
    }
    assert!(c.list_images(false).await.unwrap().is_empty());
}
