//! What a writable layer changed, as `docker diff` lists it: each path added, modified or
//! deleted, found by reading the overlay upper dir and looking each path up in the layers
//! below it, without mounting anything.
//!
//! The upper dir holds overlay's own format (see [`crate::diff`]): a whiteout is a char
//! device 0/0 and deletes the path below; a directory with `trusted.overlay.opaque=y` hides
//! everything below it, so the lower entries it does not hold again are deleted too. A path
//! that exists below is modified when its stat differs as moby's `statDifferent` judges it
//! (type and mode, owner, device; for a non-directory also size and mtime to the second) or
//! its `security.capability` differs; a directory holding changes is listed as modified
//! whether or not it changed itself, ahead of them (moby's `addChanges`). Siblings come in
//! byte order of their names; the root is never listed.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fs::{self, Metadata};
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::{Result, StorageError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Modified = 0,
    Added = 1,
    Deleted = 2,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Absolute inside the container (`/etc/hosts`).
    pub path: String,
    pub kind: ChangeKind,
}

/// What of a container's writable layer is not the container's own doing. Paths are
/// relative to the layer's root.
#[derive(Debug, Clone, Default)]
pub struct Skip {
    /// Its mounts' destinations (volumes, binds, tmpfs): the directory is the layer's (the
    /// mount point made for it), what is below it the mount's, so it is not looked into.
    pub mounts: Vec<PathBuf>,
    /// Where the runtime mounts its own files (`etc/hosts`, `proc`, ...): an empty file or
    /// directory there is a mount point the runtime made, which dockerd keeps in a layer of
    /// its own (the init layer) and so never shows or commits; it is left out.
    pub mount_points: Vec<PathBuf>,
}

impl Skip {
    pub(crate) fn descends(&self, rel: &Path) -> bool {
        !self.mounts.iter().any(|d| d == rel)
    }

    /// Whether `rel` (with metadata `m`, in the upper dir at `abs`) is a runtime mount point,
    /// or a directory that holds nothing else (made, or copied up, to hold one: `etc` for
    /// `etc/hosts`).
    pub(crate) fn is_mount_point(&self, rel: &Path, abs: &Path, m: &Metadata) -> bool {
        if self.mount_points.iter().any(|d| d == rel) {
            if m.is_file() {
                return m.len() == 0;
            }
            return m.is_dir() && fs::read_dir(abs).is_ok_and(|mut d| d.next().is_none());
        }
        if !m.is_dir()
            || !self
                .mount_points
                .iter()
                .any(|d| d.starts_with(rel) && d != rel)
        {
            return false;
        }
        let Ok(rd) = fs::read_dir(abs) else {
            return false;
        };
        let mut any = false;
        for e in rd {
            let Ok(e) = e else { return false };
            let child = rel.join(e.file_name());
            let Ok(cm) = fs::symlink_metadata(e.path()) else {
                return false;
            };
            if !self.is_mount_point(&child, &e.path(), &cm) {
                return false;
            }
            any = true;
        }
        any
    }
}

/// The changes of `dirs[0]` (an overlay upper dir) over `dirs[1..]` (its lower layers, top
/// first), as [`crate::Snapshotter::fs_dirs`] lists them, but for what `skip` leaves out.
pub fn changes(dirs: &[PathBuf], skip: &Skip) -> Result<Vec<Change>> {
    let Some((upper, lowers)) = dirs.split_first() else {
        return Ok(Vec::new());
    };
    let w = Walker {
        upper,
        lowers,
        skip,
    };
    let mut out = Vec::new();
    w.dir(Path::new(""), false, &mut out)?;
    Ok(out)
}

struct Walker<'a> {
    upper: &'a Path,
    lowers: &'a [PathBuf],
    skip: &'a Skip,
}

/// One name in a directory of the upper dir: there, or deleted by the dir being opaque.
enum Item {
    Upper(Metadata),
    HiddenBelow,
}

fn vanished(e: &io::Error) -> bool {
    // A running container changes its files while they are read: what went meanwhile is
    // simply not listed.
    matches!(e.kind(), io::ErrorKind::NotFound) || e.raw_os_error() == Some(libc::ENOTDIR)
}

fn display(rel: &Path) -> String {
    format!("/{}", rel.to_string_lossy())
}

pub(crate) fn is_whiteout(m: &Metadata) -> bool {
    m.file_type().is_char_device() && m.rdev() == 0
}

pub(crate) fn is_opaque(p: &Path) -> Result<bool> {
    Ok(lgetxattr(p, "trusted.overlay.opaque")?.as_deref() == Some(b"y"))
}

impl Walker<'_> {
    /// Appends the changes inside the upper dir's `rel`. `all_added`: nothing below has this
    /// directory (it is new, or replaces a non-directory), so everything in it is added.
    fn dir(&self, rel: &Path, all_added: bool, out: &mut Vec<Change>) -> Result<()> {
        let abs = self.upper.join(rel);
        let mut items: BTreeMap<OsString, Item> = BTreeMap::new();
        let rd = match fs::read_dir(&abs) {
            Ok(rd) => rd,
            Err(e) if vanished(&e) => return Ok(()),
            Err(e) => return Err(StorageError::io("read dir", &abs, e)),
        };
        for entry in rd {
            let entry = entry.map_err(|e| StorageError::io("read dir", &abs, e))?;
            match entry.metadata() {
                Ok(m) => {
                    items.insert(entry.file_name(), Item::Upper(m));
                }
                Err(e) if vanished(&e) => {}
                Err(e) => return Err(StorageError::io("stat", entry.path(), e)),
            }
        }
        if !all_added && !rel.as_os_str().is_empty() && is_opaque(&abs)? {
            for name in self.lower_children(rel)? {
                items.entry(name).or_insert(Item::HiddenBelow);
            }
        }
        for (name, item) in items {
            let child = rel.join(&name);
            match item {
                Item::HiddenBelow => out.push(Change {
                    path: display(&child),
                    kind: ChangeKind::Deleted,
                }),
                Item::Upper(m) if is_whiteout(&m) => {
                    if !all_added {
                        out.push(Change {
                            path: display(&child),
                            kind: ChangeKind::Deleted,
                        });
                    }
                }
                Item::Upper(m) => self.entry(&child, &m, all_added, out)?,
            }
        }
        Ok(())
    }

    fn entry(
        &self,
        rel: &Path,
        m: &Metadata,
        all_added: bool,
        out: &mut Vec<Change>,
    ) -> Result<()> {
        if self.skip.is_mount_point(rel, &self.upper.join(rel), m) {
            return Ok(());
        }
        let start = out.len();
        let below = if all_added {
            None
        } else {
            self.lower_lookup(rel)?
        };
        let mut listed = true;
        let children_all_added = match &below {
            None => {
                out.push(Change {
                    path: display(rel),
                    kind: ChangeKind::Added,
                });
                true
            }
            Some((lm, lpath)) => {
                if self.differs(lm, lpath, m, &self.upper.join(rel))? {
                    out.push(Change {
                        path: display(rel),
                        kind: ChangeKind::Modified,
                    });
                } else {
                    listed = false;
                }
                !lm.is_dir()
            }
        };
        if m.is_dir() && self.skip.descends(rel) {
            self.dir(rel, children_all_added, out)?;
            if !listed && out.len() > start {
                out.insert(
                    start,
                    Change {
                        path: display(rel),
                        kind: ChangeKind::Modified,
                    },
                );
            }
        }
        Ok(())
    }

    /// moby's `statDifferent`, plus the file capabilities.
    fn differs(
        &self,
        old: &Metadata,
        old_path: &Path,
        new: &Metadata,
        new_path: &Path,
    ) -> Result<bool> {
        if old.mode() != new.mode()
            || old.uid() != new.uid()
            || old.gid() != new.gid()
            || old.rdev() != new.rdev()
        {
            return Ok(true);
        }
        if !new.is_dir() {
            let same_time = old.mtime() == new.mtime()
                && (old.mtime_nsec() == new.mtime_nsec()
                    || old.mtime_nsec() == 0
                    || new.mtime_nsec() == 0);
            if !same_time || old.size() != new.size() {
                return Ok(true);
            }
        }
        if new.is_file() {
            let cap = "security.capability";
            return Ok(lgetxattr(old_path, cap)? != lgetxattr(new_path, cap)?);
        }
        Ok(false)
    }

    /// What the layers below hold at `rel` (the entry and where), as their overlay shows it:
    /// a whiteout or a non-directory on the way ends the search, and so does an opaque
    /// directory above it in the layer where the path is missing.
    fn lower_lookup(&self, rel: &Path) -> Result<Option<(Metadata, PathBuf)>> {
        let comps: Vec<&OsStr> = rel.iter().collect();
        for layer in self.lowers {
            let mut cur = layer.clone();
            let mut opaque_above = false;
            let mut missing = false;
            for (i, c) in comps.iter().enumerate() {
                cur.push(c);
                let m = match fs::symlink_metadata(&cur) {
                    Ok(m) => m,
                    Err(e) if vanished(&e) => {
                        missing = true;
                        break;
                    }
                    Err(e) => return Err(StorageError::io("stat", &cur, e)),
                };
                if is_whiteout(&m) {
                    return Ok(None);
                }
                if i + 1 == comps.len() {
                    return Ok(Some((m, cur)));
                }
                if !m.is_dir() {
                    return Ok(None);
                }
                if is_opaque(&cur)? {
                    opaque_above = true;
                }
            }
            if missing && opaque_above {
                return Ok(None);
            }
        }
        Ok(None)
    }

    /// The names the layers below show in directory `rel`.
    fn lower_children(&self, rel: &Path) -> Result<Vec<OsString>> {
        let mut names = std::collections::BTreeSet::new();
        for layer in self.lowers {
            let d = layer.join(rel);
            let rd = match fs::read_dir(&d) {
                Ok(rd) => rd,
                Err(e) if vanished(&e) => continue,
                Err(e) => return Err(StorageError::io("read dir", &d, e)),
            };
            for entry in rd {
                let entry = entry.map_err(|e| StorageError::io("read dir", &d, e))?;
                names.insert(entry.file_name());
            }
        }
        let mut out = Vec::new();
        for n in names {
            if self.lower_lookup(&rel.join(&n))?.is_some() {
                out.push(n);
            }
        }
        Ok(out)
    }
}

/// The value of extended attribute `name` of `p` itself (a symlink is not followed); `None`
/// when it has none or its filesystem keeps none.
pub(crate) fn lgetxattr(p: &Path, name: &str) -> Result<Option<Vec<u8>>> {
    wharf_fs::xattr::lget(p, name).map_err(|e| StorageError::io("read xattr of", p, e))
}

#[cfg(test)]
mod tests;
