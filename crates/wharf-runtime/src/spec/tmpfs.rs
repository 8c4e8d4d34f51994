//! tmpfs mount options the way dockerd builds them: `noexec,nosuid,nodev,rprivate` first, then
//! the user's options, merged so that a later option wins over an earlier one of the same kind
//! (moby/sys `MergeTmpfsOptions`).

use super::SpecError;

/// Flags that toggle one mount flag: both spellings share a key, so `exec` overrides `noexec`.
const FLAG_GROUPS: &[&[&str]] = &[
    &["ro", "rw"],
    &["suid", "nosuid"],
    &["dev", "nodev"],
    &["exec", "noexec"],
    &["sync", "async"],
    &["dirsync"],
    &["remount"],
    &["mand", "nomand"],
    &["atime", "noatime"],
    &["diratime", "nodiratime"],
    &["relatime", "norelatime"],
    &["strictatime", "nostrictatime"],
    // One propagation mode per mount.
    &[
        "bind",
        "rbind",
        "unbindable",
        "runbindable",
        "private",
        "rprivate",
        "shared",
        "rshared",
        "slave",
        "rslave",
    ],
];

/// `key=value` options tmpfs understands.
const DATA_KEYS: &[&str] = &[
    "size",
    "mode",
    "uid",
    "gid",
    "nr_inodes",
    "nr_blocks",
    "mpol",
];

/// Docker's defaults for `--tmpfs` and `--mount type=tmpfs`.
pub const TMPFS_DEFAULTS: [&str; 4] = ["noexec", "nosuid", "nodev", "rprivate"];

fn flag_group(option: &str) -> Option<usize> {
    FLAG_GROUPS.iter().position(|g| g.contains(&option))
}

/// The options of a tmpfs mount given the user's comma-separated `data` (may be empty).
pub fn tmpfs_options(data: &str) -> Result<Vec<String>, SpecError> {
    let all: Vec<&str> = TMPFS_DEFAULTS
        .iter()
        .copied()
        .chain(data.split(',').map(str::trim).filter(|o| !o.is_empty()))
        .collect();
    let mut seen_flags = Vec::new();
    let mut seen_keys = Vec::new();
    let mut out = Vec::new();
    for option in all.iter().rev() {
        if *option == "defaults" {
            continue;
        }
        if let Some(g) = flag_group(option) {
            if !seen_flags.contains(&g) {
                seen_flags.push(g);
                out.push(option.to_string());
            }
            continue;
        }
        match option.split_once('=') {
            Some((k, _)) if DATA_KEYS.contains(&k) => {
                if !seen_keys.contains(&k) {
                    seen_keys.push(k);
                    out.push(option.to_string());
                }
            }
            _ => return Err(SpecError::InvalidTmpfsOption(option.to_string())),
        }
    }
    out.reverse();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_then_user_options_later_wins() {
        assert_eq!(
            tmpfs_options("").unwrap(),
            ["noexec", "nosuid", "nodev", "rprivate"]
        );
        assert_eq!(
            tmpfs_options("exec,size=64m,mode=1770").unwrap(),
            [
                "nosuid",
                "nodev",
                "rprivate",
                "exec",
                "size=64m",
                "mode=1770"
            ]
        );
        assert_eq!(
            tmpfs_options("size=1m,size=2m,ro").unwrap(),
            ["noexec", "nosuid", "nodev", "rprivate", "size=2m", "ro"]
        );
        assert_eq!(
            tmpfs_options("bogus").unwrap_err().to_string(),
            "invalid tmpfs option \"bogus\""
        );
    }
}
