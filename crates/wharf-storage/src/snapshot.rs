//! Overlay snapshotter, after containerd's: it hands out [`Mount`]s and never sees a tar.
//!
//! On disk: `root/snapshots/<id>/{fs,work}` where `<id>` is a number; the record (key, id, parent,
//! kind, created) lives in the `snapshots` table of the meta DB. The DB row is the commit point:
//! a directory without a row is garbage from a crash and is removed by [`Snapshotter::new`].
//!
//! An active snapshot is writable (`fs` is the overlay upper dir); committing freezes it under a
//! new key (for image layers: the chain id). Only committed snapshots can be parents.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use nix::mount::{MntFlags, MsFlags};

use crate::meta::{Db, SnapshotKind, SnapshotRecord};
use crate::{now_rfc3339, random_hex, IoContext, Result, StorageError};

/// One mount to perform, in containerd's shape (`mount -t <kind> -o <options> <source> <target>`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Mount {
    /// `overlay` or `bind`.
    pub kind: String,
    pub source: String,
    pub options: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    pub key: String,
    pub parent: Option<String>,
    pub kind: SnapshotKind,
    pub created: String,
    /// Directory name under `snapshots/`.
    pub id: i64,
}

impl From<SnapshotRecord> for SnapshotInfo {
    fn from(r: SnapshotRecord) -> Self {
        SnapshotInfo {
            key: r.key,
            parent: r.parent,
            kind: r.kind,
            created: r.created,
            id: r.id,
        }
    }
}

pub struct Snapshotter {
    dir: PathBuf,
    db: Arc<Db>,
    next_id: AtomicI64,
}

impl std::fmt::Debug for Snapshotter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshotter")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Snapshotter {
    /// Opens the snapshotter under `root/snapshots` and removes directories without a record
    /// (half-made by a crashed `prepare`, or half-removed by a crashed `remove`).
    /// Call once per data root, before anything else uses it.
    pub fn new(root: &Path, db: Arc<Db>) -> Result<Snapshotter> {
        let dir = root.join("snapshots");
        // overlay's mount options are ','-separated and lowerdir is ':'-separated; the kernel
        // offers no escaping we could rely on everywhere.
        if dir.to_string_lossy().contains([',', ':']) {
            return Err(StorageError::io(
                "use as snapshot root",
                &dir,
                io::Error::new(io::ErrorKind::InvalidInput, "path contains ',' or ':'"),
            ));
        }
        fs::create_dir_all(&dir).ctx("create dir", &dir)?;
        let records = db.list_snapshots()?;
        let known: HashSet<i64> = records.iter().map(|r| r.id).collect();
        for e in fs::read_dir(&dir).ctx("read dir", &dir)? {
            let e = e.ctx("read dir", &dir)?;
            let name = e.file_name();
            let keep = name
                .to_str()
                .and_then(|n| n.parse::<i64>().ok())
                .is_some_and(|id| known.contains(&id));
            if !keep {
                let p = e.path();
                tracing::info!(path = %p.display(), "restore: removing a snapshot directory without a record (a prepare or remove cut by a crash)");
                remove_tree(&p)?;
            }
        }
        for r in &records {
            let p = dir.join(r.id.to_string());
            if !p.is_dir() {
                tracing::warn!(key = %r.key, path = %p.display(), "snapshot record without directory");
            }
        }
        let next = records.iter().map(|r| r.id).max().unwrap_or(0) + 1;
        Ok(Snapshotter {
            dir,
            db,
            next_id: AtomicI64::new(next),
        })
    }

    pub fn db(&self) -> &Arc<Db> {
        &self.db
    }

    fn snap_dir(&self, id: i64) -> PathBuf {
        self.dir.join(id.to_string())
    }

    fn get(&self, key: &str) -> Result<SnapshotRecord> {
        self.db
            .get_snapshot(key)?
            .ok_or_else(|| StorageError::SnapshotNotFound(key.to_owned()))
    }

    /// Creates the active (writable) snapshot `key` on top of the committed `parent`.
    pub fn prepare(&self, key: &str, parent: Option<&str>) -> Result<Vec<Mount>> {
        if self.db.get_snapshot(key)?.is_some() {
            return Err(StorageError::SnapshotExists(key.to_owned()));
        }
        if let Some(p) = parent {
            let pr = self.get(p)?;
            if pr.kind != SnapshotKind::Committed {
                return Err(StorageError::SnapshotWrongKind {
                    key: p.to_owned(),
                    expected: SnapshotKind::Committed,
                    actual: pr.kind,
                });
            }
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let tmp = self.dir.join(format!("tmp-{id}-{}", random_hex(4)));
        let final_dir = self.snap_dir(id);
        let made = (|| {
            let mut b = fs::DirBuilder::new();
            b.mode(0o755);
            b.create(&tmp).ctx("create dir", &tmp)?;
            let fs_dir = tmp.join("fs");
            b.create(&fs_dir).ctx("create dir", &fs_dir)?;
            let work = tmp.join("work");
            b.mode(0o700).create(&work).ctx("create dir", &work)?;
            fs::rename(&tmp, &final_dir).ctx("rename into", &final_dir)?;
            wharf_fs::fsync_dir(&self.dir).ctx("fsync dir", &self.dir)
        })();
        if let Err(e) = made {
            let _ = remove_tree(&tmp);
            let _ = remove_tree(&final_dir);
            return Err(e);
        }
        let rec = SnapshotRecord {
            key: key.to_owned(),
            id,
            parent: parent.map(str::to_owned),
            kind: SnapshotKind::Active,
            created: now_rfc3339(),
        };
        if let Err(e) = self.db.insert_snapshot(&rec) {
            let _ = remove_tree(&final_dir);
            return Err(e);
        }
        self.mounts(key)
    }

    /// Freezes the active snapshot `key` as the committed snapshot `name`.
    pub fn commit(&self, name: &str, key: &str) -> Result<()> {
        self.freeze(key, |db| db.commit_snapshot(key, name))
    }

    /// [`Self::commit`] that also puts the snapshot on the committed `parent` (`None`: on
    /// nothing), whatever it was prepared on. With overlayfs a layer's upper dir does not
    /// depend on what lies below it, so layers can be unpacked side by side, each on no
    /// parent, and stacked as they are committed. One DB transaction sets the key, the kind
    /// and the parent together: a crash leaves the active snapshot or the committed one.
    pub fn commit_with_parent(&self, name: &str, key: &str, parent: Option<&str>) -> Result<()> {
        self.freeze(key, |db| db.commit_snapshot_with_parent(key, name, parent))
    }

    fn freeze(&self, key: &str, commit: impl FnOnce(&Db) -> Result<SnapshotRecord>) -> Result<()> {
        let rec = self.get(key)?;
        if rec.kind != SnapshotKind::Active {
            return Err(StorageError::SnapshotWrongKind {
                key: key.to_owned(),
                expected: SnapshotKind::Active,
                actual: rec.kind,
            });
        }
        // The record says "complete" once committed, so the files must be on disk first; syncfs
        // flushes the whole filesystem in one call instead of fsyncing every extracted file.
        let fs_dir = self.snap_dir(rec.id).join("fs");
        let d = fs::File::open(&fs_dir).ctx("open", &fs_dir)?;
        nix::unistd::syncfs(std::os::fd::AsRawFd::as_raw_fd(&d))
            .map_err(|e| StorageError::io("syncfs", &fs_dir, e.into()))?;
        commit(&self.db)?;
        Ok(())
    }

    /// The mounts that make up snapshot `key`: writable for active, read-only for committed.
    pub fn mounts(&self, key: &str) -> Result<Vec<Mount>> {
        let rec = self.get(key)?;
        let mut lowers = Vec::new();
        let mut next = rec.parent.clone();
        let mut seen = HashSet::new();
        while let Some(p) = next {
            if !seen.insert(p.clone()) {
                // Only a corrupted DB can make a cycle; refuse instead of looping forever.
                return Err(StorageError::SnapshotNotFound(p));
            }
            let pr = self.get(&p)?;
            lowers.push(self.path_str(&self.snap_dir(pr.id).join("fs")));
            next = pr.parent;
        }
        let dir = self.snap_dir(rec.id);
        let fs_dir = self.path_str(&dir.join("fs"));
        let m = match (rec.kind, lowers.is_empty()) {
            (SnapshotKind::Active, true) => Mount {
                kind: "bind".into(),
                source: fs_dir,
                options: vec!["rbind".into(), "rw".into()],
            },
            (SnapshotKind::Active, false) => Mount {
                kind: "overlay".into(),
                source: "overlay".into(),
                options: vec![
                    format!("workdir={}", self.path_str(&dir.join("work"))),
                    format!("upperdir={fs_dir}"),
                    format!("lowerdir={}", lowers.join(":")),
                ],
            },
            (SnapshotKind::Committed, true) => Mount {
                kind: "bind".into(),
                source: fs_dir,
                options: vec!["rbind".into(), "ro".into()],
            },
            (SnapshotKind::Committed, false) => {
                // Overlay without an upper dir is read-only and needs two or more lowers: itself first.
                lowers.insert(0, fs_dir);
                Mount {
                    kind: "overlay".into(),
                    source: "overlay".into(),
                    options: vec![format!("lowerdir={}", lowers.join(":"))],
                }
            }
        };
        Ok(vec![m])
    }

    fn path_str(&self, p: &Path) -> String {
        p.to_string_lossy().into_owned()
    }

    /// Removes a snapshot and its directories. Refuses with
    /// [`StorageError::SnapshotHasChildren`] if others are built on it. The caller must have
    /// unmounted it.
    pub fn remove(&self, key: &str) -> Result<()> {
        let rec = self.db.delete_snapshot(key)?;
        // The record is gone, so the snapshot is gone. Renaming first hides the directory at once;
        // if deleting the tree fails half-way, the next start removes what is left (no record).
        let dir = self.snap_dir(rec.id);
        let doomed = self.dir.join(format!("rm-{}-{}", rec.id, random_hex(4)));
        let target = match fs::rename(&dir, &doomed) {
            Ok(()) => doomed,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(_) => dir,
        };
        if let Err(e) = remove_tree(&target) {
            tracing::warn!(key, error = %e, "snapshot removed; its files will be deleted at next start");
        }
        Ok(())
    }

    pub fn stat(&self, key: &str) -> Result<Option<SnapshotInfo>> {
        Ok(self.db.get_snapshot(key)?.map(SnapshotInfo::from))
    }

    pub fn list(&self) -> Result<Vec<SnapshotInfo>> {
        Ok(self
            .db
            .list_snapshots()?
            .into_iter()
            .map(SnapshotInfo::from)
            .collect())
    }

    /// The `fs` dir of an active snapshot: the overlay upper dir, where a layer is applied.
    pub fn upper_dir(&self, key: &str) -> Result<PathBuf> {
        let rec = self.get(key)?;
        if rec.kind != SnapshotKind::Active {
            return Err(StorageError::SnapshotWrongKind {
                key: key.to_owned(),
                expected: SnapshotKind::Active,
                actual: rec.kind,
            });
        }
        Ok(self.snap_dir(rec.id).join("fs"))
    }

    /// The `fs` dirs of `key` and of each of its parents, `key`'s first: what an overlay of
    /// it stacks, for readers that compare a layer with what lies below it.
    pub fn fs_dirs(&self, key: &str) -> Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let mut next = Some(key.to_owned());
        while let Some(k) = next {
            if !seen.insert(k.clone()) {
                return Err(StorageError::SnapshotNotFound(k));
            }
            let rec = self.get(&k)?;
            out.push(self.snap_dir(rec.id).join("fs"));
            next = rec.parent;
        }
        Ok(out)
    }

    /// Bytes held in the snapshot's own `fs` dir (not its parents), hard links counted once.
    pub fn usage(&self, key: &str) -> Result<u64> {
        let rec = self.get(key)?;
        let root = self.snap_dir(rec.id).join("fs");
        let mut seen = HashSet::new();
        let mut total = 0u64;
        let mut stack = vec![root];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d).ctx("read dir", &d)? {
                let e = e.ctx("read dir", &d)?;
                let p = e.path();
                let m = fs::symlink_metadata(&p).ctx("stat", &p)?;
                if m.is_dir() {
                    stack.push(p);
                } else if seen.insert((m.dev(), m.ino())) {
                    total += m.len();
                }
            }
        }
        Ok(total)
    }
}

fn remove_tree(p: &Path) -> Result<()> {
    match fs::symlink_metadata(p) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StorageError::io("stat", p, e)),
        Ok(m) if m.is_dir() => fs::remove_dir_all(p).ctx("remove dir", p),
        Ok(_) => fs::remove_file(p).ctx("remove", p),
    }
}

/// Performs `mounts` on `target`, in order. If one fails, those already done are undone.
pub fn mount_all(mounts: &[Mount], target: &Path) -> Result<()> {
    for (i, m) in mounts.iter().enumerate() {
        if let Err(e) = mount_one(m, target) {
            for _ in 0..i {
                let _ = unmount(target);
            }
            return Err(e);
        }
    }
    Ok(())
}

fn mount_one(m: &Mount, target: &Path) -> Result<()> {
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    let mut bind = m.kind == "bind";
    for o in &m.options {
        match o.as_str() {
            "ro" => flags |= MsFlags::MS_RDONLY,
            "rw" => flags &= !MsFlags::MS_RDONLY,
            "bind" => bind = true,
            "rbind" => {
                bind = true;
                flags |= MsFlags::MS_REC;
            }
            "nosuid" => flags |= MsFlags::MS_NOSUID,
            "nodev" => flags |= MsFlags::MS_NODEV,
            "noexec" => flags |= MsFlags::MS_NOEXEC,
            other => data.push(other),
        }
    }
    let err = |errno| StorageError::Mount {
        kind: m.kind.clone(),
        source_path: m.source.clone(),
        target: target.to_owned(),
        errno,
    };
    if bind {
        let ro = flags.contains(MsFlags::MS_RDONLY);
        let base = MsFlags::MS_BIND | (flags & MsFlags::MS_REC);
        nix::mount::mount(
            Some(m.source.as_str()),
            target,
            None::<&str>,
            base,
            None::<&str>,
        )
        .map_err(err)?;
        // MS_BIND ignores every other flag on the first call; they only apply on a remount.
        let rest = flags & !MsFlags::MS_REC;
        if ro || !rest.is_empty() {
            let r = nix::mount::mount(
                None::<&str>,
                target,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | rest,
                None::<&str>,
            );
            if let Err(e) = r {
                let _ = unmount(target);
                return Err(err(e));
            }
        }
        return Ok(());
    }
    let data = data.join(",");
    nix::mount::mount(
        Some(m.source.as_str()),
        target,
        Some(m.kind.as_str()),
        flags,
        Some(data.as_str()),
    )
    .map_err(err)
}

/// Lazily unmounts `target` (MNT_DETACH). Not mounted, or absent, is success.
pub fn unmount(target: &Path) -> Result<()> {
    match nix::mount::umount2(target, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => Ok(()),
        Err(errno) => Err(StorageError::Unmount {
            target: target.to_owned(),
            errno,
        }),
    }
}

/// Behaviour every snapshotter must show; run against a fresh, empty snapshotter.
#[cfg(any(test, feature = "testsuite"))]
#[allow(clippy::unwrap_used, clippy::expect_used)] // test code behind a feature, not #[cfg(test)]
pub mod conformance {
    use super::*;

    fn expect_kind(
        r: Result<impl std::fmt::Debug>,
        what: &str,
        ok: impl Fn(&StorageError) -> bool,
    ) {
        match r {
            Err(e) if ok(&e) => {}
            other => panic!("{what}: unexpected {other:?}"),
        }
    }

    pub fn snapshotter_suite(s: &Snapshotter) {
        assert!(
            s.list().unwrap().is_empty(),
            "suite needs an empty snapshotter"
        );

        let m = s.prepare("suite-a-active", None).unwrap();
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].kind, "bind");
        assert!(m[0].options.iter().any(|o| o == "rw"));
        let up = s.upper_dir("suite-a-active").unwrap();
        assert_eq!(Path::new(&m[0].source), up);
        fs::write(up.join("f"), b"12345").unwrap();
        std::fs::hard_link(up.join("f"), up.join("g")).unwrap();
        assert_eq!(s.usage("suite-a-active").unwrap(), 5);
        expect_kind(s.prepare("suite-a-active", None), "duplicate key", |e| {
            matches!(e, StorageError::SnapshotExists(_))
        });

        s.commit("suite-a", "suite-a-active").unwrap();
        assert!(s.stat("suite-a-active").unwrap().is_none());
        let a = s.stat("suite-a").unwrap().unwrap();
        assert_eq!((a.kind, a.parent.clone()), (SnapshotKind::Committed, None));
        expect_kind(s.upper_dir("suite-a"), "upper of committed", |e| {
            matches!(e, StorageError::SnapshotWrongKind { .. })
        });
        expect_kind(s.commit("x", "suite-a"), "commit committed", |e| {
            matches!(e, StorageError::SnapshotWrongKind { .. })
        });
        let ma = s.mounts("suite-a").unwrap();
        assert_eq!(ma[0].kind, "bind");
        assert!(ma[0].options.iter().any(|o| o == "ro"));

        let mb = s.prepare("suite-b-active", Some("suite-a")).unwrap();
        assert_eq!(mb[0].kind, "overlay");
        let upb = s.upper_dir("suite-b-active").unwrap();
        let opts = mb[0].options.join(",");
        assert!(
            opts.contains(&format!("upperdir={}", upb.display())),
            "{opts}"
        );
        assert!(
            opts.contains(&format!("lowerdir={}", up.display())),
            "{opts}"
        );
        assert!(opts.contains("workdir="), "{opts}");
        expect_kind(
            s.prepare("c", Some("suite-b-active")),
            "active parent",
            |e| matches!(e, StorageError::SnapshotWrongKind { .. }),
        );
        expect_kind(s.prepare("c", Some("nope")), "missing parent", |e| {
            e.is_not_found()
        });
        expect_kind(
            s.commit("suite-a", "suite-b-active"),
            "commit onto existing",
            |e| matches!(e, StorageError::SnapshotExists(_)),
        );

        s.commit("suite-b", "suite-b-active").unwrap();
        let mb = s.mounts("suite-b").unwrap();
        assert_eq!(
            mb[0].options,
            vec![format!("lowerdir={}:{}", upb.display(), up.display())]
        );
        // Unpacked on nothing, put on its parent as it is committed.
        s.prepare("suite-c-active", None).unwrap();
        let upc = s.upper_dir("suite-c-active").unwrap();
        expect_kind(
            s.commit_with_parent("suite-c", "suite-c-active", Some("nope")),
            "commit onto a missing parent",
            |e| e.is_not_found(),
        );
        s.prepare("suite-d-active", None).unwrap();
        expect_kind(
            s.commit_with_parent("suite-c", "suite-c-active", Some("suite-d-active")),
            "commit onto an active parent",
            |e| matches!(e, StorageError::SnapshotWrongKind { .. }),
        );
        s.remove("suite-d-active").unwrap();
        assert_eq!(
            s.stat("suite-c-active").unwrap().unwrap().kind,
            SnapshotKind::Active
        );
        s.commit_with_parent("suite-c", "suite-c-active", Some("suite-b"))
            .unwrap();
        let c = s.stat("suite-c").unwrap().unwrap();
        assert_eq!(
            (c.kind, c.parent.as_deref()),
            (SnapshotKind::Committed, Some("suite-b"))
        );
        assert_eq!(
            s.mounts("suite-c").unwrap()[0].options,
            vec![format!(
                "lowerdir={}:{}:{}",
                upc.display(),
                upb.display(),
                up.display()
            )]
        );
        expect_kind(
            s.remove("suite-b"),
            "remove under a reparented child",
            |e| matches!(e, StorageError::SnapshotHasChildren { .. }),
        );
        s.remove("suite-c").unwrap();
        expect_kind(s.remove("suite-a"), "remove with children", |e| {
            matches!(e, StorageError::SnapshotHasChildren { .. })
        });
        expect_kind(s.remove("nope"), "remove missing", |e| e.is_not_found());
        expect_kind(s.mounts("nope"), "mounts missing", |e| e.is_not_found());
        assert!(s.stat("nope").unwrap().is_none());
        s.remove("suite-b").unwrap();
        s.remove("suite-a").unwrap();
        assert!(!up.exists() && !upb.exists());
        assert!(s.list().unwrap().is_empty());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::tests::{tar_bytes, E};
    use crate::layer::tests::import_unlimited as import_layer;
    use crate::ContentStore;

    fn snapshotter(d: &Path) -> Snapshotter {
        let db = Arc::new(Db::open(&d.join("meta.db")).unwrap());
        Snapshotter::new(d, db).unwrap()
    }

    #[test]
    fn suite() {
        let d = tempfile::tempdir().unwrap();
        conformance::snapshotter_suite(&snapshotter(d.path()));
    }

    #[test]
    fn startup_removes_half_made_dirs() {
        let d = tempfile::tempdir().unwrap();
        {
            let s = snapshotter(d.path());
            s.prepare("keep", None).unwrap();
        }
        let snaps = d.path().join("snapshots");
        fs::create_dir_all(snaps.join("tmp-7-abcd/fs")).unwrap();
        fs::create_dir_all(snaps.join("999/fs")).unwrap();
        fs::create_dir_all(snaps.join("rm-3-abcd/fs")).unwrap();
        let s = snapshotter(d.path());
        let names: Vec<_> = fs::read_dir(&snaps)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec!["1"]);
        assert!(s.upper_dir("keep").unwrap().is_dir());
        s.prepare("next", None).unwrap();
        assert_eq!(s.stat("next").unwrap().unwrap().id, 2);
    }

    #[test]
    fn overlay_union_and_whiteout_as_root() {
        if !nix::unistd::geteuid().is_root() {
            crate::test_skip::skip("needs root for overlay mounts");
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let s = snapshotter(d.path());
        let cs = ContentStore::open(&d.path().join("content")).unwrap();
        let l1 = tar_bytes(&[
            E::File("a", b"A"),
            E::File("b", b"B"),
            E::Dir("d/"),
            E::File("d/x", b"X"),
        ]);
        let l2 = tar_bytes(&[
            E::File(".wh.b", b""),
            E::File("c", b"C"),
            E::Dir("d/"),
            E::File("d/.wh..wh..opq", b""),
            E::File("d/y", b"Y"),
        ]);
        let i1 = import_layer(&cs, &s, &l1[..], None).unwrap();
        let i2 = import_layer(&cs, &s, &l2[..], Some(&i1.chain_id)).unwrap();

        let target = d.path().join("rootfs");
        fs::create_dir(&target).unwrap();
        let mounts = s.prepare("ctr-rw", Some(i2.chain_id.as_str())).unwrap();
        mount_all(&mounts, &target).unwrap();
        // Unmount even if an assertion fails, so a failing test does not leak a mount.
        let check = std::panic::catch_unwind(|| {
            assert_eq!(fs::read(target.join("a")).unwrap(), b"A");
            assert_eq!(fs::read(target.join("c")).unwrap(), b"C");
            assert!(
                !target.join("b").exists(),
                "whiteout must hide the lower file"
            );
            assert!(
                !target.join("d/x").exists(),
                "opaque dir must hide lower contents"
            );
            assert_eq!(fs::read(target.join("d/y")).unwrap(), b"Y");
            fs::write(target.join("new"), b"N").unwrap();
        });
        unmount(&target).unwrap();
        unmount(&target).unwrap(); // not mounted any more: still fine
        if let Err(p) = check {
            std::panic::resume_unwind(p);
        }
        assert_eq!(
            fs::read(s.upper_dir("ctr-rw").unwrap().join("new")).unwrap(),
            b"N"
        );
        assert!(!target.join("a").exists());

        // Committed multi-layer view is read-only.
        let ro = s.mounts(i2.chain_id.as_str()).unwrap();
        mount_all(&ro, &target).unwrap();
        let r = fs::write(target.join("z"), b"z");
        let seen = fs::read(target.join("a"));
        unmount(&target).unwrap();
        assert!(r.is_err());
        assert_eq!(seen.unwrap(), b"A");

        s.remove("ctr-rw").unwrap();
        s.remove(i2.chain_id.as_str()).unwrap();
        s.remove(i1.chain_id.as_str()).unwrap();
    }
}
