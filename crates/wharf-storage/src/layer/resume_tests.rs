//! Resumable downloads through the layer ingest: a cut-off one keeps its bytes, the next
//! replays them and reads only the rest.

use std::fs;

use super::tests::{assert_nothing_left, count, env, limits, skip_unless_root, CancelAfter, Env};
use super::*;
use crate::diff::tests::{gzip, tar_bytes, E};

fn resumable(
    e: &Env,
    r: impl Read,
    blob: &Digest,
    cancel: &Cancel,
    resume: Resume,
) -> Result<DetachedLayer> {
    let p = limits(|_| {});
    let how = LayerIngest {
        policy: &p,
        cancel,
        expected_blob: Some(blob),
    };
    import_layer_detached(&e.cs, &e.snaps, r, how, resume)
}

/// Counts what is read through it.
struct Counted<'a> {
    data: &'a [u8],
    read: usize,
}

impl Read for Counted<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.data.read(buf)?;
        self.read += n;
        Ok(n)
    }
}

/// Bytes that gzip cannot shrink much, so the blob is long enough to be cut in the middle.
fn noisy(n: usize) -> Vec<u8> {
    let mut x: u32 = 0x2545_f491;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn ingest_files(e: &Env) -> Vec<String> {
    fs::read_dir(e.d.path().join("content/ingest"))
        .unwrap()
        .map(|d| d.unwrap().file_name().into_string().unwrap())
        .collect()
}

#[test]
fn a_resumed_download_reads_only_the_rest() {
    if skip_unless_root() {
        return;
    }
    let e = env();
    let data = noisy(600 << 10);
    let plain = tar_bytes(&[E::Dir("opt/"), E::File("opt/blob", &data)]);
    let layer = gzip(&plain);
    let d = Digest::sha256_of(&layer);
    assert_eq!(e.cs.partial_len(&d), 0);

    // Cut off at about 60 %: the bytes received are kept, and nothing else.
    let mut r = CancelAfter::new(&layer, layer.len() * 6 / 10);
    let cancel = r.cancel.clone();
    let err = resumable(&e, &mut r, &d, &cancel, Resume::From(0)).unwrap_err();
    assert!(matches!(err, StorageError::Cancelled(_)), "{err:?}");
    let kept = e.cs.partial_len(&d);
    assert_eq!(kept, r.pos as u64);
    assert!(kept > 0 && kept < layer.len() as u64);
    assert_eq!(ingest_files(&e), vec![format!("{}.partial", d.hex())]);
    assert!(e.cs.list().unwrap().is_empty(), "a partial file is no blob");
    assert!(e.snaps.list().unwrap().is_empty());
    assert_eq!(count(&e.d.path().join("snapshots")), 0);

    // The next download asks its source for the rest only.
    let mut rest = Counted {
        data: &layer[kept as usize..],
        read: 0,
    };
    let l = resumable(&e, &mut rest, &d, &Cancel::new(), Resume::From(kept)).unwrap();
    assert_eq!(rest.read, layer.len() - kept as usize);
    assert_eq!(l.blob(), &d);
    assert_eq!(l.blob_size(), layer.len() as u64);
    assert_eq!(l.diff_id(), &Digest::sha256_of(&plain));
    assert_eq!(e.cs.read(&d).unwrap(), layer);
    assert!(
        ingest_files(&e).is_empty(),
        "the partial file became the blob"
    );
    let i = l.commit_onto(&e.cs, &e.snaps, None).unwrap();
    let id = e.snaps.stat(i.chain_id.as_str()).unwrap().unwrap().id;
    let f = e.d.path().join(format!("snapshots/{id}/fs/opt/blob"));
    assert_eq!(fs::read(f).unwrap(), data);
}

#[test]
fn a_wrong_partial_fails_cleanly_and_the_next_download_starts_over() {
    if skip_unless_root() {
        return;
    }
    let e = env();
    // Plain: a flipped byte of file content still unpacks, and only the digest tells.
    let layer = tar_bytes(&[E::File("f", &noisy(64 << 10))]);
    let d = Digest::sha256_of(&layer);
    let n = 40 << 10;
    let mut bad = layer[..n].to_vec();
    bad[20_000] ^= 0xff;
    let partial =
        e.d.path()
            .join(format!("content/ingest/{}.partial", d.hex()));
    fs::write(&partial, &bad).unwrap();
    let err = resumable(&e, &layer[n..], &d, &Cancel::new(), Resume::From(n as u64)).unwrap_err();
    assert!(
        matches!(err, StorageError::DigestMismatch { ref expected, .. } if *expected == d),
        "{err:?}"
    );
    assert_nothing_left(&e);

    // Compressed, a flipped byte breaks the stream itself: the same end.
    let gz = gzip(&layer);
    let gd = Digest::sha256_of(&gz);
    let mut bad = gz[..gz.len() / 2].to_vec();
    bad[100] ^= 0xff;
    let gpartial =
        e.d.path()
            .join(format!("content/ingest/{}.partial", gd.hex()));
    fs::write(&gpartial, &bad).unwrap();
    let from = bad.len();
    let err = resumable(
        &e,
        &gz[from..],
        &gd,
        &Cancel::new(),
        Resume::From(from as u64),
    )
    .unwrap_err();
    assert!(err.is_invalid_input(), "{err:?}");
    assert_nothing_left(&e);

    // Started over, it works.
    let from = e.cs.partial_len(&d);
    assert_eq!(from, 0);
    let l = resumable(&e, &layer[..], &d, &Cancel::new(), Resume::From(from)).unwrap();
    assert_eq!(l.blob(), &d);
    l.discard(&e.cs, &e.snaps).unwrap();
    assert_nothing_left(&e);
}

#[test]
fn resume_refusals_and_what_is_not_kept() {
    if skip_unless_root() {
        return;
    }
    let e = env();
    let layer = gzip(&tar_bytes(&[E::File("f", &noisy(64 << 10))]));
    let d = Digest::sha256_of(&layer);
    let c = Cancel::new();
    // Further than anything kept: start over.
    let err = resumable(&e, &layer[10..], &d, &c, Resume::From(10)).unwrap_err();
    assert!(
        matches!(err, StorageError::ResumeUnavailable { offset: 10, .. }),
        "{err:?}"
    );
    assert_nothing_left(&e);
    // No digest to key the kept bytes by.
    let p = limits(|_| {});
    let how = LayerIngest {
        policy: &p,
        cancel: &c,
        expected_blob: None,
    };
    assert!(import_layer_detached(&e.cs, &e.snaps, &layer[..], how, Resume::From(0)).is_err());
    assert_nothing_left(&e);
    // Not resumable: a cut-off download keeps nothing, digest or not.
    let mut r = CancelAfter::new(&layer, layer.len() / 2);
    let cancel = r.cancel.clone();
    let err = resumable(&e, &mut r, &d, &cancel, Resume::No).unwrap_err();
    assert!(matches!(err, StorageError::Cancelled(_)), "{err:?}");
    assert_nothing_left(&e);
    // A failure that is not a cut (a bad layer) keeps nothing either.
    let bad = gzip(&tar_bytes(&[E::File("../evil", b"x")]));
    let bd = Digest::sha256_of(&bad);
    assert!(resumable(&e, &bad[..], &bd, &c, Resume::From(0)).is_err());
    assert_nothing_left(&e);

    // Two downloads of one blob at once: the second goes without the kept bytes.
    let held = e.cs.resumable_writer(&d, 0).unwrap().unwrap();
    let err = resumable(&e, &layer[5..], &d, &c, Resume::From(5)).unwrap_err();
    assert!(
        matches!(err, StorageError::ResumeUnavailable { .. }),
        "{err:?}"
    );
    let l = resumable(&e, &layer[..], &d, &c, Resume::From(0)).unwrap();
    assert_eq!(l.blob(), &d);
    drop(held);
    l.discard(&e.cs, &e.snaps).unwrap();
    assert_nothing_left(&e);
}
