//! The layer target: a tar applied by `wharf_storage::apply_layer` into a fresh directory, with
//! an `outside` directory beside it that must stay empty and nothing new beside both.
//!
//! Inputs whose first byte is even are taken as a raw tar stream; odd ones drive `arbitrary` to
//! build a tar whose names, link targets and types are drawn from the tricks that matter
//! (`..`, absolute paths, links into `outside`, whiteouts, devices, long names, pax records),
//! so an unguided fuzzer still reaches deep into the applier.

use arbitrary::{Arbitrary, Unstructured};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Per-process scratch: `<dir>/wharf-fuzz-layer-<pid>/{root,outside}`, where `<dir>` is
/// `$WHARF_FUZZ_SCRATCH` (bench/fuzz makes one and removes it: libFuzzer never returns to let
/// the target clean up) or the temp dir.
fn scratch() -> PathBuf {
    std::env::var_os("WHARF_FUZZ_SCRATCH")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join(format!("wharf-fuzz-layer-{}", std::process::id()))
}

fn base() -> &'static PathBuf {
    static BASE: OnceLock<PathBuf> = OnceLock::new();
    BASE.get_or_init(|| {
        let b = scratch();
        let _ = fs::remove_dir_all(&b);
        if let Err(e) = fs::create_dir_all(b.join("outside")) {
            panic!(
                "cannot make the layer target's scratch dir {}: {e}",
                b.display()
            );
        }
        b
    })
}

/// Removes the scratch directory (the runner calls this on exit).
pub fn cleanup() {
    let _ = fs::remove_dir_all(scratch());
}

pub fn layer(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let tar = if mode & 1 == 0 {
        // Compressed streams are skipped: a few KiB of fuzz input can inflate to GiBs, which
        // tests the decompressor and the disk, not the header path (the hostile suite covers
        // bombs).
        if wharf_storage::Compression::detect(rest) != wharf_storage::Compression::None {
            return;
        }
        rest.to_vec()
    } else {
        build_tar(&mut Unstructured::new(rest))
    };
    let base = base();
    let root = base.join("root");
    let _ = fs::remove_dir_all(&root);
    if let Err(e) = fs::create_dir(&root) {
        panic!("cannot make {}: {e}", root.display());
    }
    let _ = wharf_storage::apply_layer(&tar[..], &root);
    check_contained(base);
    let _ = fs::remove_dir_all(&root);
}

fn check_contained(base: &Path) {
    let mut names: Vec<String> = match fs::read_dir(base) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(e) => panic!("scratch dir {} vanished: {e}", base.display()),
    };
    names.sort();
    assert_eq!(names, ["outside", "root"], "a layer wrote beside its root");
    let outside: Vec<_> = fs::read_dir(base.join("outside"))
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        outside.is_empty(),
        "a layer wrote outside its root: {outside:?}"
    );
}

#[derive(Arbitrary, Debug)]
struct Entry {
    kind: Kind,
    name: Vec<Part>,
    link: Link,
    mode: u16,
    setid: bool,
    uid: u8,
    gid: u8,
    dev: (u8, u8),
    size: u8,
    pax: Option<Pax>,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Kind {
    File,
    Dir,
    Symlink,
    Hardlink,
    Char,
    Block,
    Fifo,
    Contiguous,
    Other(u8),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Part {
    A,
    B,
    Dot,
    DotDot,
    Empty,
    Slash,
    Outside,
    Whiteout,
    Opaque,
    AufsMeta,
    Long,
    Nul,
    Raw(u8),
}

#[derive(Arbitrary, Debug)]
enum Link {
    None,
    Path(Vec<Part>),
    OutsideAbs,
    Root,
    UpOutside,
    Long,
}

#[derive(Arbitrary, Debug)]
enum Pax {
    Path(Vec<Part>),
    Linkpath(Vec<Part>),
    Xattr(XattrKey, Vec<u8>),
    Size(u16),
    Garbage(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
enum XattrKey {
    Capability,
    OverlayOpaque,
    OverlayRedirect,
    User,
    Empty,
}

fn part(p: Part) -> Vec<u8> {
    match p {
        Part::A => b"a".to_vec(),
        Part::B => b"b".to_vec(),
        Part::Dot => b".".to_vec(),
        Part::DotDot => b"..".to_vec(),
        Part::Empty => Vec::new(),
        Part::Slash => b"/".to_vec(),
        Part::Outside => b"outside".to_vec(),
        Part::Whiteout => b".wh.a".to_vec(),
        Part::Opaque => b".wh..wh..opq".to_vec(),
        Part::AufsMeta => b".wh..wh.plnk".to_vec(),
        Part::Long => vec![b'n'; 300],
        Part::Nul => b"x\0y".to_vec(),
        Part::Raw(b) => vec![b],
    }
}

fn join(parts: &[Part]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, p) in parts.iter().take(12).enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        out.extend(part(*p));
    }
    out
}

fn link_target(l: &Link) -> Option<Vec<u8>> {
    match l {
        Link::None => None,
        Link::Path(p) => Some(join(p)),
        Link::OutsideAbs => Some(
            base()
                .join("outside")
                .as_os_str()
                .as_encoded_bytes()
                .to_vec(),
        ),
        Link::Root => Some(b"/".to_vec()),
        Link::UpOutside => Some(b"../outside".to_vec()),
        Link::Long => Some(vec![b'l'; 5000]),
    }
}

fn pad(out: &mut Vec<u8>) {
    let rem = out.len() % 512;
    if rem != 0 {
        out.resize(out.len() + 512 - rem, 0);
    }
}

fn pax_record(key: &[u8], value: &[u8]) -> Vec<u8> {
    // "<len> <key>=<value>\n", where <len> counts itself.
    let body = key.len() + value.len() + 3;
    let mut len = body + body.to_string().len();
    if len.to_string().len() != body.to_string().len() {
        len += 1;
    }
    let mut r = format!("{len} ").into_bytes();
    r.extend_from_slice(key);
    r.push(b'=');
    r.extend_from_slice(value);
    r.push(b'\n');
    r
}

fn header(kind: u8, name: &[u8], link: &[u8], size: u64, e: &Entry) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    {
        let old = h.as_old_mut();
        let n = name.len().min(100);
        old.name[..n].copy_from_slice(&name[..n]);
        let l = link.len().min(100);
        old.linkname[..l].copy_from_slice(&link[..l]);
    }
    h.set_entry_type(tar::EntryType::new(kind));
    h.set_size(size);
    let mut mode = u32::from(e.mode) & 0o7777;
    if e.setid {
        mode |= 0o6000;
    }
    h.set_mode(mode);
    h.set_uid(u64::from(e.uid));
    h.set_gid(u64::from(e.gid));
    h.set_mtime(1_700_000_000);
    let _ = h.set_device_major(u32::from(e.dev.0));
    let _ = h.set_device_minor(u32::from(e.dev.1));
    h.set_cksum();
    h
}

/// A tar of up to 16 entries drawn from `u`; never fails (a short input ends the archive).
pub fn build_tar(u: &mut Unstructured<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..16 {
        let Ok(e) = Entry::arbitrary(u) else {
            break;
        };
        let name = join(&e.name);
        let link = link_target(&e.link).unwrap_or_default();
        let kind = match e.kind {
            Kind::File => b'0',
            Kind::Dir => b'5',
            Kind::Symlink => b'2',
            Kind::Hardlink => b'1',
            Kind::Char => b'3',
            Kind::Block => b'4',
            Kind::Fifo => b'6',
            Kind::Contiguous => b'7',
            Kind::Other(k) => k,
        };
        let mut records = Vec::new();
        if name.len() > 100 {
            records.extend(pax_record(b"path", &name));
        }
        if link.len() > 100 {
            records.extend(pax_record(b"linkpath", &link));
        }
        match &e.pax {
            None => {}
            Some(Pax::Path(p)) => records.extend(pax_record(b"path", &join(p))),
            Some(Pax::Linkpath(p)) => records.extend(pax_record(b"linkpath", &join(p))),
            Some(Pax::Xattr(k, v)) => {
                let key: &[u8] = match k {
                    XattrKey::Capability => b"SCHILY.xattr.security.capability",
                    XattrKey::OverlayOpaque => b"SCHILY.xattr.trusted.overlay.opaque",
                    XattrKey::OverlayRedirect => b"SCHILY.xattr.trusted.overlay.redirect",
                    XattrKey::User => b"SCHILY.xattr.user.fuzz",
                    XattrKey::Empty => b"SCHILY.xattr.",
                };
                records.extend(pax_record(key, v));
            }
            Some(Pax::Size(n)) => records.extend(pax_record(b"size", n.to_string().as_bytes())),
            Some(Pax::Garbage(g)) => records.extend_from_slice(g),
        }
        if !records.is_empty() {
            let h = header(b'x', b"././@PaxHeader", b"", records.len() as u64, &e);
            out.extend_from_slice(h.as_bytes());
            out.extend_from_slice(&records);
            pad(&mut out);
        }
        let size = if kind == b'0' || kind == b'7' {
            u64::from(e.size)
        } else {
            0
        };
        let h = header(kind, &name, &link, size, &e);
        out.extend_from_slice(h.as_bytes());
        out.extend(std::iter::repeat_n(b'z', size as usize));
        pad(&mut out);
    }
    out.resize(out.len() + 1024, 0);
    out
}
