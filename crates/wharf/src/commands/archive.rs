//! The local side of `cp`, `export -o` and `save -o`, as docker's `go-archive` and atomic
//! writer do it: path rules (trailing `/` and `/.`), the tar of a local source with its names
//! rebased, and unpacking a container's tar into a local directory without letting an entry
//! land outside it.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// An OS error in Go's words (`no such file or directory`), as docker prints them.
pub fn go_err(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => {
            let desc = nix::errno::Errno::from_raw(code).desc();
            let mut c = desc.chars();
            match c.next() {
                Some(first) => first.to_lowercase().collect::<String>() + c.as_str(),
                None => String::new(),
            }
        }
        None => e.to_string(),
    }
}

/// `op path: reason`, Go's `*PathError`.
pub fn path_err(op: &str, path: &str, e: &io::Error) -> String {
    format!("{op} {path}: {}", go_err(e))
}

/// `filepath.Clean`.
pub fn clean(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            s => parts.push(s),
        }
    }
    let body = parts.join("/");
    match (rooted, body.is_empty()) {
        (true, _) => format!("/{body}"),
        (false, true) => ".".into(),
        (false, false) => body,
    }
}

/// `filepath.Base`.
pub fn base(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let t = p.trim_end_matches('/');
    if t.is_empty() {
        return "/".into();
    }
    t.rsplit('/').next().unwrap_or(t).to_string()
}

/// `filepath.Dir`.
pub fn dir(p: &str) -> String {
    let i = p.rfind('/').map_or(0, |i| i + 1);
    clean(&p[..i])
}

/// `filepath.Join` of two parts.
pub fn join(a: &str, b: &str) -> String {
    if a.is_empty() {
        return clean(b);
    }
    clean(&format!("{a}/{b}"))
}

pub fn has_trailing_sep(p: &str) -> bool {
    p.ends_with('/')
}

pub fn specifies_current_dir(p: &str) -> bool {
    base(p) == "."
}

/// `archive.PreserveTrailingDotOrSeparator`.
pub fn preserve_trailing(cleaned: &str, original: &str) -> String {
    let mut c = cleaned.to_string();
    if !specifies_current_dir(&c) && specifies_current_dir(original) {
        if !has_trailing_sep(&c) {
            c.push('/');
        }
        c.push('.');
    }
    if !has_trailing_sep(&c) && has_trailing_sep(original) {
        c.push('/');
    }
    c
}

/// `archive.SplitPathDirEntry`.
pub fn split_dir_entry(p: &str) -> (String, String) {
    let mut cleaned = clean(p);
    if specifies_current_dir(p) {
        cleaned.push_str("/.");
    }
    (dir(&cleaned), base(&cleaned))
}

/// `archive.GetRebaseName`: the resolved path keeps the original's trailing `/` or `/.`, and
/// the name to rebase to when the last element changed.
pub fn rebase_name(path: &str, resolved: &str) -> (String, String) {
    let mut r = resolved.to_string();
    if specifies_current_dir(path) && !specifies_current_dir(&r) {
        r.push_str("/.");
    }
    if has_trailing_sep(path) && !has_trailing_sep(&r) {
        r.push('/');
    }
    let name = if base(path) != base(&r) {
        base(path)
    } else {
        String::new()
    };
    (r, name)
}

/// `filepath.Abs` keeping a trailing `/` or `/.` (`resolveLocalPath`).
pub fn resolve_local(p: &str) -> io::Result<String> {
    let abs = if p.starts_with('/') {
        clean(p)
    } else {
        let cwd = std::env::current_dir()?;
        join(&cwd.to_string_lossy(), p)
    };
    Ok(preserve_trailing(&abs, p))
}

/// Go's `strings.Replace(s, old, new, 1)` (an empty `old` inserts `new` in front).
pub fn replace_first(s: &str, old: &str, new: &str) -> String {
    if old.is_empty() {
        return format!("{new}{s}");
    }
    s.replacen(old, new, 1)
}

/// What `go-archive` knows of a copy's end.
#[derive(Debug, Clone, Default)]
pub struct CopyInfo {
    pub path: String,
    pub exists: bool,
    pub is_dir: bool,
    pub rebase_name: String,
}

/// `filepath.EvalSymlinks` (the path must exist).
fn eval_symlinks(p: &str) -> Result<String, String> {
    let target = if p.is_empty() { "." } else { p };
    match fs::canonicalize(target) {
        Ok(c) => {
            let s = c.to_string_lossy().into_owned();
            if p.starts_with('/') {
                Ok(s)
            } else {
                // Relative input keeps a relative answer in Go; callers here pass absolute
                // paths, so this is only a fallback.
                Ok(s)
            }
        }
        Err(e) => Err(path_err("lstat", &clean(target), &e)),
    }
}

/// `archive.CopyInfoSourcePath`.
pub fn source_info(path: &str, follow: bool) -> Result<CopyInfo, String> {
    let (resolved, rebase) = if follow {
        let r = eval_symlinks(path)?;
        rebase_name(path, &r)
    } else {
        let i = path.rfind('/').map_or(0, |i| i + 1);
        let (d, b) = (&path[..i], &path[i..]);
        let rd = eval_symlinks(d)?;
        let resolved = format!("{}/{b}", rd.trim_end_matches('/'));
        let resolved = if rd == "/" { format!("/{b}") } else { resolved };
        let rebase = if has_trailing_sep(path) && base(path) != base(&resolved) {
            base(path)
        } else {
            String::new()
        };
        (resolved, rebase)
    };
    let md = fs::symlink_metadata(&resolved).map_err(|e| path_err("lstat", &resolved, &e))?;
    Ok(CopyInfo {
        path: resolved,
        exists: true,
        is_dir: md.is_dir(),
        rebase_name: rebase,
    })
}

/// `archive.CopyInfoDestinationPath`: symlinks at the destination are followed (at most 10).
pub fn destination_info(path: &str) -> Result<CopyInfo, String> {
    let mut path = path.to_string();
    let original = path.clone();
    let mut stat = fs::symlink_metadata(&path);
    if let Ok(m) = &stat {
        if !m.file_type().is_symlink() {
            return Ok(CopyInfo {
                is_dir: m.is_dir(),
                path,
                exists: true,
                rebase_name: String::new(),
            });
        }
    }
    let mut n = 0;
    while let Ok(m) = &stat {
        if !m.file_type().is_symlink() {
            break;
        }
        if n > 10 {
            return Err(format!("too many symlinks in {original}"));
        }
        n += 1;
        let target = fs::read_link(&path).map_err(|e| path_err("readlink", &path, &e))?;
        let mut t = target.to_string_lossy().into_owned();
        if !t.starts_with('/') {
            t = join(&split_dir_entry(&path).0, &t);
        }
        path = t;
        stat = fs::symlink_metadata(&path);
    }
    match stat {
        Ok(m) => Ok(CopyInfo {
            is_dir: m.is_dir(),
            path,
            exists: true,
            rebase_name: String::new(),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let parent = split_dir_entry(&path).0;
            let pm = fs::metadata(&parent).map_err(|e| path_err("stat", &parent, &e))?;
            if !pm.is_dir() {
                return Err("not a directory".into());
            }
            Ok(CopyInfo {
                path,
                ..CopyInfo::default()
            })
        }
        Err(e) => Err(path_err("lstat", &path, &e)),
    }
}

/// `archive.PrepareArchiveCopy`: the directory the tar is unpacked in, and the rename
/// (`old` → `new` first name element) its entries need.
pub fn prepare_copy(
    src: &CopyInfo,
    dst: &CopyInfo,
) -> Result<(String, Option<(String, String)>), String> {
    let (dst_dir, dst_base) = split_dir_entry(&dst.path);
    let (_, mut src_base) = split_dir_entry(&src.path);
    if !src.rebase_name.is_empty() {
        src_base = src.rebase_name.clone();
    }
    match () {
        _ if dst.exists && dst.is_dir => Ok((dst.path.clone(), None)),
        _ if dst.exists && src.is_dir => Err("cannot copy directory".into()),
        _ if dst.exists || src.is_dir => Ok((dst_dir, Some((src_base, dst_base)))),
        _ if has_trailing_sep(&dst.path) || specifies_current_dir(&dst.path) => {
            Err("no such directory".into())
        }
        _ => Ok((dst_dir, Some((src_base, dst_base)))),
    }
}

/// A tar entry's name after `RebaseArchiveEntries` (`/` as the old base means none).
pub fn rebase(name: &str, rename: &Option<(String, String)>) -> String {
    match rename {
        Some((old, new)) => {
            let old = if old == "/" { "" } else { old.as_str() };
            replace_first(name, old, new)
        }
        None => name.to_string(),
    }
}

/// Writes the tar `TarResourceRebase` makes of `source` (walked in name order, directories
/// with a trailing `/`, hard links as links to the first name seen), names rebased as the
/// copy needs. Sockets are left out with docker's error line, as Go's tar refuses them and
/// docker logs what it cannot add and goes on.
pub fn write_source_tar<W: Write>(
    out: W,
    src: &CopyInfo,
    rename: &Option<(String, String)>,
) -> io::Result<()> {
    let (source_dir, source_base) = split_dir_entry(&src.path);
    let mut b = tar::Builder::new(out);
    b.follow_symlinks(false);
    let mut seen: HashMap<u64, String> = HashMap::new();
    let root = format!("{}/{source_base}", source_dir.trim_end_matches('/'));
    let mut stack = vec![PathBuf::from(&root)];
    while let Some(p) = stack.pop() {
        let Ok(md) = fs::symlink_metadata(&p) else {
            continue;
        };
        let full = p.to_string_lossy().into_owned();
        let rel = full
            .strip_prefix(&format!("{}/", source_dir.trim_end_matches('/')))
            .unwrap_or(&full)
            .to_string();
        let rel = if source_base == "." && rel != "." && !rel.starts_with("./") {
            format!("./{rel}")
        } else {
            rel
        };
        let mut name = if src.rebase_name.is_empty() {
            rel.clone()
        } else {
            let replacement = if src.rebase_name == "/" {
                ""
            } else {
                src.rebase_name.as_str()
            };
            replace_first(&rel, &source_base, replacement)
        };
        name = rebase(&name, rename);
        append_entry(&mut b, &p, &md, &name, &mut seen)?;
        if md.is_dir() {
            let mut kids: Vec<PathBuf> = match fs::read_dir(&p) {
                Ok(rd) => rd.flatten().map(|e| e.path()).collect(),
                Err(_) => Vec::new(),
            };
            kids.sort_by(|a, b| b.file_name().cmp(&a.file_name()));
            stack.extend(kids);
        }
    }
    b.into_inner()?.flush()
}

fn append_entry<W: Write>(
    b: &mut tar::Builder<W>,
    path: &Path,
    md: &fs::Metadata,
    name: &str,
    seen: &mut HashMap<u64, String>,
) -> io::Result<()> {
    let ft = md.file_type();
    use std::os::unix::fs::FileTypeExt;
    let mut h = tar::Header::new_ustar();
    let mut name = name.to_string();
    let mut link = String::new();
    let mut size = 0u64;
    let kind = if ft.is_dir() {
        if !name.ends_with('/') {
            name.push('/');
        }
        tar::EntryType::Directory
    } else if ft.is_symlink() {
        link = fs::read_link(path)?.to_string_lossy().into_owned();
        tar::EntryType::Symlink
    } else if ft.is_file() {
        size = md.len();
        tar::EntryType::Regular
    } else if ft.is_char_device() || ft.is_block_device() {
        let dev = md.rdev();
        h.set_device_major(nix::sys::stat::major(dev) as u32)?;
        h.set_device_minor(nix::sys::stat::minor(dev) as u32)?;
        if ft.is_char_device() {
            tar::EntryType::Char
        } else {
            tar::EntryType::Block
        }
    } else if ft.is_fifo() {
        tar::EntryType::Fifo
    } else {
        // Go's tar refuses sockets; docker logs that and goes on without the file.
        crate::log::log(
            crate::log::Level::Error,
            &format!(
                "Can't add file {} to tar: archive/tar: sockets not supported",
                clean(&path.to_string_lossy())
            ),
        );
        return Ok(());
    };
    let mut kind = kind;
    if !ft.is_dir() && md.nlink() > 1 {
        match seen.get(&md.ino()) {
            Some(first) => {
                kind = tar::EntryType::Link;
                link = first.clone();
                size = 0;
            }
            None => {
                seen.insert(md.ino(), name.clone());
            }
        }
    }
    h.set_entry_type(kind);
    h.set_mode(md.mode() & 0o7777);
    h.set_uid(u64::from(md.uid()));
    h.set_gid(u64::from(md.gid()));
    h.set_mtime(md.mtime().max(0) as u64);
    h.set_size(size);
    // Go's PAX writer puts names over 100 bytes (or not ASCII) in a `path` record.
    let mut pax: Vec<(&str, &[u8])> = Vec::new();
    if name.len() > 100 || !name.is_ascii() {
        pax.push(("path", name.as_bytes()));
    }
    if link.len() > 100 || !link.is_ascii() {
        pax.push(("linkpath", link.as_bytes()));
    }
    if !pax.is_empty() {
        b.append_pax_extensions(pax.iter().copied())?;
    }
    set_field(&mut h.as_old_mut().name, &name);
    set_field(&mut h.as_old_mut().linkname, &link);
    h.set_cksum();
    if kind == tar::EntryType::Regular && size > 0 {
        let f = fs::File::open(path)?;
        // A file that shrank while being read is padded, one that grew is cut, as the size
        // in its header promised.
        let reader = f.take(size).chain(io::repeat(0)).take(size);
        b.append(&h, reader)
    } else {
        b.append(&h, io::empty())
    }
}

/// A header name field: as much of `s` as fits (the PAX record holds the whole).
fn set_field(field: &mut [u8], s: &str) {
    field.iter_mut().for_each(|b| *b = 0);
    let bytes = s.as_bytes();
    let n = bytes.len().min(field.len());
    field[..n].copy_from_slice(&bytes[..n]);
}

/// Unpacks a container's tar into `dest` as `archive.Untar` with `NoLchown` and
/// `NoOverwriteDirNonDir`, entries renamed by `rename` first. An entry whose name, link or
/// parent directories would lead outside `dest` is refused.
pub fn untar<R: Read>(
    input: R,
    dest: &str,
    rename: &Option<(String, String)>,
) -> Result<(), String> {
    let dest = clean(dest);
    let mut ar = tar::Archive::new(input);
    let mut dirs: Vec<(String, u64)> = Vec::new();
    let entries = ar.entries().map_err(|e| e.to_string())?;
    for entry in entries {
        let mut entry = entry.map_err(|e| e.to_string())?;
        let kind = entry.header().entry_type();
        if matches!(kind, tar::EntryType::XGlobalHeader) {
            continue;
        }
        let raw_name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let name = clean(&rebase(&raw_name, rename));
        let path = join(&dest, &name);
        if !within(&dest, &path) {
            return Err(format!("{name:?} is outside of {dest:?}"));
        }
        // Parent directories the tar implies, made as Go makes them (0755).
        let parent = dir(&path);
        refuse_symlinked_parents(&dest, &parent, &name)?;
        if fs::symlink_metadata(&parent).is_err() {
            fs::create_dir_all(&parent).map_err(|e| path_err("mkdir", &parent, &e))?;
        }
        let is_dir_entry = matches!(kind, tar::EntryType::Directory);
        if let Ok(fi) = fs::symlink_metadata(&path) {
            if fi.is_dir() && !is_dir_entry {
                return Err(format!(
                    "cannot overwrite directory {path:?} with non-directory {dest:?}"
                ));
            }
            if !fi.is_dir() && is_dir_entry {
                return Err(format!(
                    "cannot overwrite non-directory {path:?} with directory {dest:?}"
                ));
            }
            if fi.is_dir() && name == "." {
                continue;
            }
            if !fi.is_dir() {
                fs::remove_file(&path).map_err(|e| path_err("remove", &path, &e))?;
            }
        }
        let mode = entry.header().mode().unwrap_or(0o644) & 0o7777;
        let mtime = entry.header().mtime().unwrap_or(0);
        match kind {
            tar::EntryType::Directory => {
                if !fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
                    fs::create_dir(&path).map_err(|e| path_err("mkdir", &path, &e))?;
                }
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let mut f = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&path)
                    .map_err(|e| path_err("open", &path, &e))?;
                io::copy(&mut entry, &mut f).map_err(|e| e.to_string())?;
            }
            tar::EntryType::Link => {
                let target = rebase(&link_of(&entry), rename);
                let target_path = join(&dest, &target);
                if !within(&dest, &target_path) {
                    return Err(format!("invalid hardlink {target_path:?} -> {target:?}"));
                }
                fs::hard_link(&target_path, &path)
                    .map_err(|e| format!("link {target_path} {path}: {}", go_err(&e)))?;
            }
            tar::EntryType::Symlink => {
                let target = link_of(&entry);
                let resolved = join(&dir(&path), &target);
                if !within(&dest, &resolved) {
                    return Err(format!("invalid symlink {path:?} -> {target:?}"));
                }
                std::os::unix::fs::symlink(&target, &path)
                    .map_err(|e| format!("symlink {target} {path}: {}", go_err(&e)))?;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let major = entry.header().device_major().ok().flatten().unwrap_or(0);
                let minor = entry.header().device_minor().ok().flatten().unwrap_or(0);
                let sflag = match kind {
                    tar::EntryType::Char => nix::sys::stat::SFlag::S_IFCHR,
                    tar::EntryType::Block => nix::sys::stat::SFlag::S_IFBLK,
                    _ => nix::sys::stat::SFlag::S_IFIFO,
                };
                nix::sys::stat::mknod(
                    path.as_str(),
                    sflag,
                    nix::sys::stat::Mode::from_bits_truncate(mode),
                    nix::sys::stat::makedev(u64::from(major), u64::from(minor)),
                )
                .map_err(|e| format!("mknod {path}: {}", go_err(&io::Error::from(e))))?;
            }
            other => return Err(format!("unhandled tar header type {}", other.as_byte())),
        }
        if !matches!(kind, tar::EntryType::Symlink) {
            // A hard link shares its target's mode; docker chmods it all the same.
            fs::set_permissions(&path, fs::Permissions::from_mode(mode))
                .map_err(|e| path_err("chmod", &path, &e))?;
        }
        if is_dir_entry {
            dirs.push((path.clone(), mtime));
        } else {
            set_times(&path, mtime, matches!(kind, tar::EntryType::Symlink));
        }
    }
    // Directory times last: unpacking their contents changed them.
    for (path, mtime) in dirs {
        set_times(&path, mtime, false);
    }
    Ok(())
}

fn link_of<R: Read>(entry: &tar::Entry<'_, R>) -> String {
    entry
        .link_name_bytes()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// `path` is `dest` or below it (both clean).
fn within(dest: &str, path: &str) -> bool {
    path == dest || dest == "/" || path.starts_with(&format!("{dest}/"))
}

/// No directory between `dest` and `parent` may be a symlink: writing through one could land
/// anywhere (docker follows them; a tar from a container is not trusted that far).
fn refuse_symlinked_parents(dest: &str, parent: &str, name: &str) -> Result<(), String> {
    let rest = parent.strip_prefix(dest).unwrap_or("");
    let mut cur = dest.to_string();
    for seg in rest.split('/').filter(|s| !s.is_empty()) {
        cur = join(&cur, seg);
        match fs::symlink_metadata(&cur) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(format!("{name:?} is outside of {dest:?}"));
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    Ok(())
}

fn set_times(path: &str, mtime: u64, symlink: bool) {
    let t = nix::sys::time::TimeSpec::new(mtime as i64, 0);
    let flag = if symlink {
        nix::sys::stat::UtimensatFlags::NoFollowSymlink
    } else {
        nix::sys::stat::UtimensatFlags::FollowSymlink
    };
    // Times are best effort, as docker ignores what it cannot set on links.
    let _ = nix::sys::stat::utimensat(None, path, &t, &t, flag);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_go_rules() {
        assert_eq!(clean("/a/../b/./c/"), "/b/c");
        assert_eq!(clean("a/.."), ".");
        assert_eq!(base("/a/b/"), "b");
        assert_eq!(dir("/a/b"), "/a");
        assert_eq!(dir("b"), ".");
        assert_eq!(preserve_trailing("/x/d", "d/."), "/x/d/.");
        assert_eq!(preserve_trailing("/x/d", "d/"), "/x/d/");
        assert_eq!(split_dir_entry("/a/b/."), ("/a/b".into(), ".".into()));
        assert_eq!(split_dir_entry("/a/b/"), ("/a".into(), "b".into()));
        assert_eq!(rebase_name("/l", "/t/real"), ("/t/real".into(), "l".into()));
        assert_eq!(replace_first("x", "", "n/"), "n/x");
    }

    #[test]
    fn prepare_copy_matches_go_archive() {
        let file = CopyInfo {
            path: "/s/f".into(),
            exists: true,
            ..CopyInfo::default()
        };
        let dir_src = CopyInfo {
            path: "/s/d".into(),
            exists: true,
            is_dir: true,
            ..CopyInfo::default()
        };
        let existing_dir = CopyInfo {
            path: "/t".into(),
            exists: true,
            is_dir: true,
            ..CopyInfo::default()
        };
        let new_path = CopyInfo {
            path: "/t/new".into(),
            ..CopyInfo::default()
        };
        let missing_dir = CopyInfo {
            path: "/t/new/".into(),
            ..CopyInfo::default()
        };
        assert_eq!(prepare_copy(&file, &existing_dir), Ok(("/t".into(), None)));
        assert_eq!(
            prepare_copy(&file, &new_path),
            Ok(("/t".into(), Some(("f".into(), "new".into()))))
        );
        assert_eq!(
            prepare_copy(&dir_src, &new_path),
            Ok(("/t".into(), Some(("d".into(), "new".into()))))
        );
        assert_eq!(
            prepare_copy(&file, &missing_dir),
            Err("no such directory".into())
        );
    }

    #[test]
    fn untar_refuses_escapes() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("d");
        fs::create_dir(&dest).unwrap();
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        set_field(&mut h.as_old_mut().name, "evil");
        set_field(&mut h.as_old_mut().linkname, "../../etc");
        h.set_cksum();
        b.append(&h, io::empty()).unwrap();
        let data = b.into_inner().unwrap();
        let err = untar(&data[..], &dest.to_string_lossy(), &None).unwrap_err();
        assert!(err.starts_with("invalid symlink"), "{err}");
        // A file through a symlinked parent is refused too.
        std::os::unix::fs::symlink("/", dest.join("up")).unwrap();
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(1);
        h.set_mode(0o644);
        set_field(&mut h.as_old_mut().name, "up/tmp/x");
        h.set_cksum();
        b.append(&h, &b"x"[..]).unwrap();
        let data = b.into_inner().unwrap();
        let err = untar(&data[..], &dest.to_string_lossy(), &None).unwrap_err();
        assert!(err.contains("is outside of"), "{err}");
    }
}
