//! Reading a load's tarball: every file of it goes to a temp file of its own
//! ([`super::spoolfiles`]), hashed as it arrives and checked against its name when it sits under
//! `blobs/sha256/`, and the archive's names are kept in memory as a map from path to content
//! digest, symlink or directory.
//!
//! Nothing of the archive is ever unpacked under its own names, so no entry, whatever its
//! path or type (`../x`, `/etc/passwd`, a symlink out, a device), can write anywhere but the
//! load's temp files: names are checked (no `..`, no absolute path, no device) and refused
//! with a 400 rather than cleaned, so a hostile archive is told why. Symlinks and hard links
//! between the archive's own files (Docker 20.10 links a shared layer's `layer.tar`, skopeo
//! its legacy directories) are followed inside the map, never on disk.
//!
//! The tarball may be bigger than memory: only names and digests are kept, each file streams
//! to its temp file. The temp files go with the [`Spooled`] (and a crash leaves them to the
//! content store's clean-up at the next start); what the load keeps, it stores as blobs.

use super::spoolfiles::{SpoolError, SpoolFiles};
use crate::ctx::Ctx;
use crate::error::EngineError;
use std::collections::HashMap;
use std::io::{self, Read};
use wharf_storage::{Cancel, Digest, StorageError};

/// More entries than any image archive has (one per blob and a few legacy files per layer).
const MAX_ENTRIES: usize = 100_000;
/// A path longer than this is no archive's.
const MAX_PATH: usize = 4096;
/// All names (and link targets) kept in memory together: far more than any archive's, far
/// less than what 100 000 entries of 4 KiB names would hold.
const MAX_NAMES: usize = 16 << 20;
/// Symlinks followed for one name before giving up (Linux's own limit).
const MAX_LINKS: usize = 40;
/// How much of what follows the end of the archive is read (and dropped).
const TRAILER: u64 = 1 << 20;
/// The free space is measured again after this many bytes were stored.
const SPACE_CHECK_EVERY: u64 = 64 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Node {
    File { digest: Digest, size: u64 },
    Symlink(String),
    Dir,
}

/// The archive's names and the temp files holding its content.
#[derive(Debug, Default)]
pub(super) struct Spooled {
    pub nodes: HashMap<String, Node>,
    pub files: SpoolFiles,
    /// Blobs and layers this load counts on, pinned in [`super::pins::Pins`] until it ends.
    pub pinned: Vec<Digest>,
}

/// A client's archive that cannot be read: 400 with the reason.
fn bad(what: impl std::fmt::Display) -> EngineError {
    EngineError::invalid(format!("invalid archive: {what}"))
}

/// An entry name as messages show it: escaped and cut short.
fn shown(raw: &str) -> String {
    let s = raw.escape_debug().to_string();
    if s.chars().count() > 200 {
        format!("{}...", s.chars().take(200).collect::<String>())
    } else {
        s
    }
}

/// A relative path with normal components only (`./a//b/` → `a/b`); `..` and absolute paths
/// are refused.
pub(super) fn clean(raw: &str) -> Result<String, EngineError> {
    if raw.len() > MAX_PATH {
        return Err(bad(format!(
            "entry \"{}\": path longer than {MAX_PATH} bytes",
            shown(raw)
        )));
    }
    if raw.starts_with('/') {
        return Err(bad(format!("entry \"{}\": absolute path", shown(raw))));
    }
    let mut parts = Vec::new();
    for c in raw.split('/') {
        match c {
            "" | "." => {}
            ".." => return Err(bad(format!("entry \"{}\": '..' in a path", shown(raw)))),
            c => parts.push(c),
        }
    }
    Ok(parts.join("/"))
}

impl Spooled {
    /// A small file of the archive, read whole (`what` names it in the refusal).
    pub fn document(&self, d: &Digest, size: u64, what: &str) -> Result<Vec<u8>, EngineError> {
        const MAX: u64 = super::formats::MAX_DOCUMENT;
        if size > MAX {
            return Err(bad(format!(
                "{what} is {} long, more than the {} a document may be",
                wharf_storage::ingest::human_bytes(size),
                wharf_storage::ingest::human_bytes(MAX)
            )));
        }
        let mut out = Vec::with_capacity(size as usize);
        self.files
            .open(d)
            .and_then(|f| f.take(MAX).read_to_end(&mut out))
            .map_err(|e| EngineError::io("reading the archive", e))?;
        Ok(out)
    }

    /// The blob a path of the archive names, following the archive's own symlinks as
    /// dockerd's `FollowSymlinkInScope` does (`..` stops at the archive's root).
    pub fn file(&self, path: &str) -> Result<(Digest, u64), EngineError> {
        let missing = || bad(format!("{} is not in the archive", shown(path)));
        let mut todo: Vec<String> = path.split('/').rev().map(str::to_string).collect();
        let mut done: Vec<String> = Vec::new();
        let mut links = 0;
        while let Some(c) = todo.pop() {
            match c.as_str() {
                "" | "." => continue,
                ".." => {
                    done.pop();
                    continue;
                }
                _ => {}
            }
            done.push(c);
            let here = done.join("/");
            match self.nodes.get(&here) {
                Some(Node::Symlink(target)) => {
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(bad(format!(
                            "{}: too many levels of symbolic links",
                            shown(path)
                        )));
                    }
                    done.pop();
                    if target.starts_with('/') {
                        done.clear();
                    }
                    todo.extend(target.split('/').rev().map(str::to_string));
                }
                Some(Node::File { digest, size }) if todo.is_empty() => {
                    return Ok((digest.clone(), *size))
                }
                Some(Node::File { .. }) => return Err(missing()),
                Some(Node::Dir) => {}
                None if todo.iter().all(|t| t.is_empty() || t == ".") => return Err(missing()),
                // An implied parent directory (archives need not list them).
                None => {}
            }
        }
        Err(bad(format!("{} is a directory", shown(path))))
    }

    /// A top-level file of the archive (`manifest.json`...), which must be a plain file: a
    /// symlink there is refused, not followed.
    pub fn top_file(&self, name: &str) -> Result<Option<(Digest, u64)>, EngineError> {
        match self.nodes.get(name) {
            None => Ok(None),
            Some(Node::File { digest, size }) => Ok(Some((digest.clone(), *size))),
            Some(Node::Symlink(_)) => Err(bad(format!("{name} is a symlink"))),
            Some(Node::Dir) => Err(bad(format!("{name} is a directory"))),
        }
    }
}

/// Counts an entry's bytes as they are stored, stops them when the load is cancelled.
struct Counted<'a, R> {
    inner: R,
    n: u64,
    cancel: &'a Cancel,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.cancel.is_cancelled() {
            return Err(io::Error::other("the client went away"));
        }
        let n = self.inner.read(buf)?;
        self.n += n as u64;
        Ok(n)
    }
}

/// The digest a path under `blobs/sha256/` names, if it does.
fn named_digest(path: &str) -> Option<Digest> {
    path.strip_prefix("blobs/sha256/")
        .and_then(|h| Digest::from_hex(h).ok())
}

/// Reads the archive from `r` (plain, gzip or zstd) into temp files under `ingest_dir` (the
/// content store's `ingest/`). On error, they are gone when this returns.
pub(super) fn spool(
    ctx: &Ctx,
    ingest_dir: std::path::PathBuf,
    r: impl Read,
    cancel: &Cancel,
) -> Result<Spooled, EngineError> {
    let mut sp = Spooled {
        files: SpoolFiles::new(ingest_dir),
        ..Spooled::default()
    };
    fill(ctx, r, cancel, &mut sp)?;
    Ok(sp)
}

fn cancelled_or(cancel: &Cancel, e: EngineError) -> EngineError {
    if cancel.is_cancelled() {
        EngineError::internal("load: cancelled, the client went away")
    } else {
        e
    }
}

fn fill(ctx: &Ctx, r: impl Read, cancel: &Cancel, sp: &mut Spooled) -> Result<(), EngineError> {
    let started = std::time::Instant::now();
    // Refused at once when the data root is already below its free-space reserve.
    drop(
        ctx.ingest
            .guard(cancel)
            .map_err(|e| super::storage_error("loading", e, started))?,
    );
    let (_, plain) = wharf_storage::decompressed(r).map_err(|e| match e {
        StorageError::UnsupportedCompression(c) => EngineError::not_implemented(format!(
            "Wharf cannot read {} compressed archives: decompress it first, or use gzip or zstd",
            c.to_lowercase()
        )),
        StorageError::NotATar(_) => cancelled_or(cancel, bad("empty stream")),
        other => cancelled_or(cancel, bad(other.public_message())),
    })?;
    let max_entry = ctx.ingest.limits().max_layer_size;
    let mut archive = tar::Archive::new(plain);
    let entries = archive
        .entries()
        .map_err(|e| cancelled_or(cancel, bad(format!("reading tar: {e}"))))?;
    let mut stored: u64 = 0;
    let mut next_check = SPACE_CHECK_EVERY;
    let mut count = 0usize;
    let mut names = 0usize;
    for entry in entries {
        let mut entry =
            entry.map_err(|e| cancelled_or(cancel, bad(format!("reading tar: {e}"))))?;
        count += 1;
        if count > MAX_ENTRIES {
            return Err(bad(format!("more than {MAX_ENTRIES} entries")));
        }
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let kind = entry.header().entry_type();
        let path = clean(&raw)?;
        names += raw.len() + entry.link_name_bytes().map_or(0, |l| l.len());
        if names > MAX_NAMES {
            return Err(bad(format!(
                "its names take more than {}",
                wharf_storage::ingest::human_bytes(MAX_NAMES as u64)
            )));
        }
        if path.is_empty() {
            if kind.is_dir() {
                continue;
            }
            return Err(bad(format!("entry \"{}\": no name", shown(&raw))));
        }
        let node = match kind {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let size = entry.size();
                if max_entry > 0 && size > max_entry {
                    return Err(EngineError::invalid(format!(
                        "invalid archive: entry \"{}\" is {} long, more than the daemon's maximum layer size (wharfd --max-layer-size)",
                        shown(&raw),
                        wharf_storage::ingest::human_bytes(size)
                    )));
                }
                let expected = named_digest(&path);
                let mut src = Counted {
                    inner: &mut entry,
                    n: 0,
                    cancel,
                };
                let (digest, got) = sp.files.add(&mut src, expected.as_ref()).map_err(|e| match e {
                    SpoolError::Mismatch { actual } => bad(format!(
                        "{} does not match its digest: its content is {actual}",
                        shown(&path)
                    )),
                    SpoolError::Io(e) if cancel.is_cancelled() => {
                        cancelled_or(cancel, EngineError::io("loading", e))
                    }
                    // Not the disk's: the archive's stream (truncated, corrupt compression).
                    SpoolError::Io(e) if e.raw_os_error().is_none() => {
                        bad(format!("reading entry \"{}\": {e}", shown(&raw)))
                    }
                    SpoolError::Io(e) => EngineError::io("loading: spooling the archive", e),
                })?;
                if got != size {
                    return Err(cancelled_or(
                        cancel,
                        bad(format!(
                            "entry \"{}\" is cut short: {got} of {size} bytes",
                            shown(&raw)
                        )),
                    ));
                }
                stored += size;
                if stored >= next_check {
                    next_check = stored + SPACE_CHECK_EVERY;
                    drop(
                        ctx.ingest
                            .guard(cancel)
                            .map_err(|e| super::storage_error("loading", e, started))?,
                    );
                }
                Node::File { digest, size }
            }
            tar::EntryType::Directory => Node::Dir,
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                if target.len() > MAX_PATH {
                    return Err(bad(format!(
                        "symlink \"{}\": target too long",
                        shown(&raw)
                    )));
                }
                Node::Symlink(target)
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                match sp.nodes.get(&clean(&target)?) {
                    Some(n @ Node::File { .. }) => n.clone(),
                    _ => {
                        return Err(bad(format!(
                            "hard link \"{}\" to \"{}\", which is no file before it",
                            shown(&raw),
                            shown(&target)
                        )))
                    }
                }
            }
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader => continue,
            other => {
                return Err(bad(format!(
                    "entry \"{}\" is a {other:?}: an image archive holds only files, directories and links",
                    shown(&raw)
                )))
            }
        };
        if cancel.is_cancelled() {
            return Err(cancelled_or(cancel, bad("cancelled")));
        }
        sp.nodes.insert(path, node);
    }
    if cancel.is_cancelled() {
        return Err(cancelled_or(cancel, bad("cancelled")));
    }
    // What follows the end-of-archive blocks (a tar's padding to its record size) is read, a
    // little of it, so that a client still sending it is not cut off before the answer.
    let _ = io::copy(&mut archive.into_inner().take(TRAILER), &mut io::sink());
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn d(s: &str) -> Digest {
        Digest::sha256_of(s.as_bytes())
    }

    #[test]
    fn paths_are_cleaned_or_refused() {
        assert_eq!(clean("./a//b/").unwrap(), "a/b");
        assert_eq!(clean("manifest.json").unwrap(), "manifest.json");
        for bad in ["../x", "a/../../x", "/etc/passwd", "a/.."] {
            let e = clean(bad).unwrap_err().message();
            assert!(e.starts_with("invalid archive: entry"), "{bad}: {e}");
        }
        assert!(clean(&"a/".repeat(3000)).is_err());
    }

    #[test]
    fn links_are_followed_inside_the_archive_only() {
        let mut sp = Spooled::default();
        let f = Node::File {
            digest: d("layer"),
            size: 5,
        };
        sp.nodes.insert("abc/layer.tar".into(), f.clone());
        sp.nodes.insert("abc".into(), Node::Dir);
        sp.nodes.insert(
            "def/layer.tar".into(),
            Node::Symlink("../abc/layer.tar".into()),
        );
        sp.nodes
            .insert("out".into(), Node::Symlink("../../../../etc/passwd".into()));
        sp.nodes.insert("loop".into(), Node::Symlink("loop".into()));
        sp.nodes
            .insert("dirlink".into(), Node::Symlink("/abc".into()));
        sp.nodes.insert(
            "manifest.json".into(),
            Node::Symlink("abc/layer.tar".into()),
        );
        assert_eq!(sp.file("abc/layer.tar").unwrap().0, d("layer"));
        assert_eq!(sp.file("def/layer.tar").unwrap().0, d("layer"));
        assert_eq!(sp.file("dirlink/layer.tar").unwrap().0, d("layer"));
        // Out of the archive is its root: `/etc/passwd` of the archive, which it has not.
        assert!(sp
            .file("out")
            .unwrap_err()
            .message()
            .contains("not in the archive"));
        assert!(sp
            .file("loop")
            .unwrap_err()
            .message()
            .contains("too many levels"));
        assert!(sp.file("abc").unwrap_err().message().contains("directory"));
        assert!(sp.file("abc/layer.tar/x").is_err());
        assert!(sp.file("nope").is_err());
        assert!(sp
            .top_file("manifest.json")
            .unwrap_err()
            .message()
            .contains("symlink"));
        assert_eq!(sp.top_file("index.json").unwrap(), None);
    }
}
