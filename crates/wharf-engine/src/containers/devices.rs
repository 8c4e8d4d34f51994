//! `--device`: the host's device nodes (a node, or every node under a directory) as the
//! runtime must recreate them in the container, found the way dockerd's `DevicesFromPath` does.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use wharf_api::container::DeviceMapping;
use wharf_runtime::spec::Device;

fn node(host: &Path, container: String, access: &str) -> Result<Option<Device>, String> {
    let meta = std::fs::metadata(host).map_err(|e| e.to_string())?;
    let ft = meta.file_type();
    let kind = if ft.is_char_device() {
        'c'
    } else if ft.is_block_device() {
        'b'
    } else if ft.is_fifo() {
        'p'
    } else {
        return Ok(None);
    };
    let rdev = meta.rdev();
    Ok(Some(Device {
        path: container,
        kind,
        major: i64::from(nix::sys::stat::major(rdev) as u32),
        minor: i64::from(nix::sys::stat::minor(rdev) as u32),
        file_mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
        access: access.to_string(),
    }))
}

/// The devices one `--device` mapping stands for, in dockerd's words on failure.
pub fn resolve(m: &DeviceMapping) -> Result<Vec<Device>, String> {
    let fail = |why: &str| {
        format!(
            "error gathering device information while adding custom device \"{}\": {why}",
            m.path_on_host
        )
    };
    let host = std::fs::canonicalize(&m.path_on_host).map_err(|e| fail(&os_words(&e)))?;
    let in_container = if m.path_in_container.is_empty() {
        m.path_on_host.clone()
    } else {
        m.path_in_container.clone()
    };
    let access = if m.cgroup_permissions.is_empty() {
        "rwm"
    } else {
        m.cgroup_permissions.as_str()
    };
    if let Some(d) = node(&host, in_container.clone(), access).map_err(|e| fail(&e))? {
        return Ok(vec![d]);
    }
    if !host.is_dir() {
        return Err(fail("not a device node"));
    }
    let mut out = Vec::new();
    walk(&host, &host, Path::new(&in_container), access, &mut out);
    Ok(out)
}

/// Go's words for the usual errors (`no such file or directory`).
fn os_words(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

fn walk(root: &Path, dir: &Path, dest: &Path, access: &str, out: &mut Vec<Device>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            walk(root, &p, dest, access, out);
            continue;
        }
        let rel = p
            .strip_prefix(root)
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let target: PathBuf = dest.join(rel);
        if let Ok(Some(d)) = node(&p, target.to_string_lossy().into_owned(), access) {
            out.push(d);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(host: &str, ctr: &str, perms: &str) -> DeviceMapping {
        DeviceMapping {
            path_on_host: host.into(),
            path_in_container: ctr.into(),
            cgroup_permissions: perms.into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_node_a_rename_and_errors() {
        let d = resolve(&mapping("/dev/null", "/dev/mynull", "rw")).unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!((d[0].kind, d[0].major, d[0].minor), ('c', 1, 3));
        assert_eq!(d[0].path, "/dev/mynull");
        assert_eq!(d[0].access, "rw");
        let d = resolve(&mapping("/dev/zero", "", "")).unwrap();
        assert_eq!(
            (d[0].path.as_str(), d[0].access.as_str()),
            ("/dev/zero", "rwm")
        );
        let e = resolve(&mapping("/dev/nope-wharf", "", "")).unwrap_err();
        assert_eq!(
            e,
            "error gathering device information while adding custom device \"/dev/nope-wharf\": no such file or directory"
        );
        assert!(resolve(&mapping("/etc/hostname", "", ""))
            .unwrap_err()
            .ends_with("not a device node"));
    }
}
