//! What a container sees besides its image: /etc/hosts, /etc/hostname, /etc/resolv.conf, and
//! the user it runs as, resolved from the image's own /etc/passwd and /etc/group.

use std::path::Path;
use wharf_runtime::spec::{check_id, check_uts_name, parse_id};

/// The user and groups a process runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub home: String,
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

/// A file of the image read as the container would see it: symlinks resolved inside the
/// rootfs, never followed on the host (an image whose `/etc/passwd` links to `/etc/shadow`
/// reads its own, or nothing), and the last component opened without following a link, so a
/// swap after the resolution fails instead of escaping. Missing or unreadable: empty.
fn read_in(rootfs: &Path, path: &str) -> String {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let Ok(on_host) = wharf_fs::resolve_in(rootfs, path) else {
        return String::new();
    };
    let mut out = String::new();
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(on_host);
    if let Ok(mut f) = opened {
        let _ = f.read_to_string(&mut out);
    }
    out
}

fn read_passwd(rootfs: &Path) -> Vec<PasswdEntry> {
    parse_passwd(&read_in(rootfs, "/etc/passwd"))
}

fn parse_passwd(data: &str) -> Vec<PasswdEntry> {
    data.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 6 {
                return None;
            }
            Some(PasswdEntry {
                name: f[0].to_string(),
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
                home: f[5].to_string(),
            })
        })
        .collect()
}

/// (name, gid, members)
fn read_group(rootfs: &Path) -> Vec<(String, u32, Vec<String>)> {
    parse_group(&read_in(rootfs, "/etc/group"))
}

fn parse_group(data: &str) -> Vec<(String, u32, Vec<String>)> {
    data.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 3 {
                return None;
            }
            let members = f
                .get(3)
                .map(|m| {
                    m.split(',')
                        .filter(|s| !s.is_empty())
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default();
            Some((f[0].to_string(), f[2].parse().ok()?, members))
        })
        .collect()
}

/// Resolves Docker's `User` (`name`, `uid`, `name:group`, `uid:gid`) inside the rootfs, with
/// Docker's error words when a name is unknown. No id outside moby's range comes back, from
/// the request or from the image's files: `(uid_t)-1` would leave the process root.
pub fn resolve_user(rootfs: &Path, spec: &str) -> Result<ResolvedUser, String> {
    resolve_user_in(read_passwd(rootfs), read_group(rootfs), spec)
}

/// [`resolve_user`] with the contents of `/etc/passwd` and `/etc/group` already read (by
/// `docker cp -a`, which reads them through the container's root, never by a host path).
pub fn resolve_user_from(passwd: &str, group: &str, spec: &str) -> Result<ResolvedUser, String> {
    resolve_user_in(parse_passwd(passwd), parse_group(group), spec)
}

fn resolve_user_in(
    passwd: Vec<PasswdEntry>,
    groups: Vec<(String, u32, Vec<String>)>,
    spec: &str,
) -> Result<ResolvedUser, String> {
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let user_part = if user_part.is_empty() { "0" } else { user_part };
    let numeric = parse_id(user_part).transpose()?;
    let entry = passwd
        .iter()
        .find(|p| p.name == user_part)
        .or_else(|| numeric.and_then(|uid| passwd.iter().find(|p| p.uid == uid)));
    let (uid, mut gid, home, name) = match (entry, numeric) {
        (Some(p), _) => (
            check_id(p.uid)?,
            check_id(p.gid)?,
            p.home.clone(),
            Some(p.name.clone()),
        ),
        (None, Some(uid)) => (uid, 0, "/".to_string(), None),
        (None, None) => {
            return Err(format!(
                "unable to find user {user_part}: no matching entries in passwd file"
            ))
        }
    };
    if let Some(g) = group_part {
        gid = match groups.iter().find(|(n, _, _)| n == g) {
            Some((_, id, _)) => check_id(*id)?,
            None => parse_id(g).unwrap_or_else(|| {
                Err(format!(
                    "unable to find group {g}: no matching entries in group file"
                ))
            })?,
        };
    }
    let additional_gids = match &name {
        Some(n) => groups
            .iter()
            .filter(|(_, id, members)| *id != gid && members.iter().any(|m| m == n))
            .map(|(_, id, _)| check_id(*id))
            .collect::<Result<_, _>>()?,
        None => Vec::new(),
    };
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids,
        home,
    })
}

/// `GroupAdd`: names looked up in the rootfs's /etc/group, numbers taken as they are (in
/// moby's range).
pub fn resolve_groups(rootfs: &Path, groups: &[String]) -> Result<Vec<u32>, String> {
    if groups.is_empty() {
        return Ok(Vec::new());
    }
    let known = read_group(rootfs);
    groups
        .iter()
        .map(|g| {
            if let Some((_, id, _)) = known.iter().find(|(n, _, _)| n == g) {
                return check_id(*id);
            }
            parse_id(g).unwrap_or_else(|| {
                Err(format!(
                    "Unable to find group {g}: no matching entries in group file"
                ))
            })
        })
        .collect()
}

/// /etc/hostname. The name is checked again here (create checked it) so that a config stored
/// by an older version cannot put a second line into the file.
pub fn hostname_file(hostname: &str) -> Result<String, String> {
    check_uts_name("Hostname", hostname)?;
    Ok(format!("{hostname}\n"))
}

/// /etc/hosts: Docker's defaults, the container's own name, then `--add-host` entries. Every
/// name is one word of the line it is on: a newline or blank in one would add entries.
pub fn hosts_file(
    hostname: &str,
    domainname: &str,
    extra: &[(String, String)],
) -> Result<String, String> {
    check_uts_name("Hostname", hostname)?;
    check_uts_name("Domainname", domainname)?;
    for (name, ip) in extra {
        let blank = |w: &str| w.chars().any(|c| c.is_control() || c.is_whitespace());
        if let Some(bad) = [name, ip]
            .into_iter()
            .find(|w| blank(w) || (w == &name && w.is_empty()))
        {
            return Err(format!("bad format for add-host: {bad:?}"));
        }
    }
    let own = if domainname.is_empty() {
        hostname.to_string()
    } else {
        format!("{hostname}.{domainname} {hostname}")
    };
    let mut s = format!(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n127.0.1.1\t{own}\n"
    );
    for (name, ip) in extra {
        s.push_str(&format!("{ip}\t{name}\n"));
    }
    Ok(s)
}

/// `--dns`, `--dns-search`, `--dns-option`: each replaces the host's lines of its kind.
#[derive(Debug, Default, Clone, Copy)]
pub struct DnsOverrides<'a> {
    pub servers: &'a [String],
    pub search: &'a [String],
    pub options: &'a [String],
}

/// Each `--dns*` entry is one word of a resolv.conf line: a blank or newline in one would add
/// options or name servers nobody asked for.
pub fn check_dns_words(o: DnsOverrides<'_>) -> Result<(), String> {
    for (what, list) in [
        ("Dns", o.servers),
        ("DnsSearch", o.search),
        ("DnsOptions", o.options),
    ] {
        if let Some(bad) = list
            .iter()
            .find(|w| w.is_empty() || w.chars().any(|c| c.is_control() || c.is_whitespace()))
        {
            return Err(format!(
                "invalid HostConfig.{what} entry {bad:?}: it must be one word without control characters"
            ));
        }
    }
    Ok(())
}

/// The container's resolv.conf: the host's, with the user's overrides (libnetwork's rules:
/// a search list of just "." means none).
pub fn resolv_conf_with(host: &str, o: DnsOverrides<'_>) -> Result<String, String> {
    check_dns_words(o)?;
    if o.servers.is_empty() && o.search.is_empty() && o.options.is_empty() {
        return Ok(resolv_conf(host));
    }
    let filtered = resolv_conf(host);
    let lines_of = |key: &str| -> Vec<String> {
        filtered
            .lines()
            .filter(|l| l.trim_start().starts_with(key))
            .map(str::to_string)
            .collect()
    };
    let mut out = String::new();
    if o.servers.is_empty() {
        for l in lines_of("nameserver") {
            out.push_str(&l);
            out.push('\n');
        }
    } else {
        for s in o.servers {
            out.push_str(&format!("nameserver {s}\n"));
        }
    }
    if o.search.is_empty() {
        for l in lines_of("search") {
            out.push_str(&l);
            out.push('\n');
        }
    } else if o.search != ["."] {
        out.push_str(&format!("search {}\n", o.search.join(" ")));
    }
    if o.options.is_empty() {
        for l in lines_of("options") {
            out.push_str(&l);
            out.push('\n');
        }
    } else {
        out.push_str(&format!("options {}\n", o.options.join(" ")));
    }
    Ok(out)
}

/// The host's resolv.conf without loopback resolvers, which mean nothing inside a container's
/// own network namespace; Docker's public fallbacks when none is left.
pub fn resolv_conf(host: &str) -> String {
    let mut out = String::new();
    let mut servers = 0;
    for line in host.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("nameserver") {
            let addr = rest.trim();
            if addr.starts_with("127.") || addr == "::1" {
                continue;
            }
            servers += 1;
        }
        out.push_str(line);
        out.push('\n');
    }
    if servers == 0 {
        out.push_str("nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rootfs() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("etc")).unwrap();
        std::fs::write(
            d.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nwharfuser:x:1000:1000::/home/wharfuser:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            d.path().join("etc/group"),
            "root:x:0:\nwharfuser:x:1000:\naudio:x:29:wharfuser\n",
        )
        .unwrap();
        d
    }

    #[test]
    fn an_image_passwd_linking_out_reads_inside_the_rootfs_never_the_host() {
        let d = rootfs();
        let host = tempfile::tempdir().unwrap();
        let bait = host.path().join("passwd");
        std::fs::write(&bait, "hostuser:x:4321:4321::/host:/bin/sh\n").unwrap();
        std::fs::remove_file(d.path().join("etc/passwd")).unwrap();
        // Absolute: the container's own path of that name, which does not exist.
        std::os::unix::fs::symlink(&bait, d.path().join("etc/passwd")).unwrap();
        assert!(resolve_user(d.path(), "hostuser").is_err());
        // Relative, climbing out: stops at the container's root.
        std::fs::remove_file(d.path().join("etc/passwd")).unwrap();
        let up = "../".repeat(d.path().components().count() + 2);
        let rel = format!("{up}{}", bait.strip_prefix("/").unwrap().display());
        std::os::unix::fs::symlink(&rel, d.path().join("etc/passwd")).unwrap();
        assert!(resolve_user(d.path(), "hostuser").is_err());
        // A link inside the rootfs is followed, as the container would.
        std::fs::write(
            d.path().join("etc/passwd.real"),
            "inside:x:77:77::/:/bin/sh\n",
        )
        .unwrap();
        std::fs::remove_file(d.path().join("etc/passwd")).unwrap();
        std::os::unix::fs::symlink("passwd.real", d.path().join("etc/passwd")).unwrap();
        assert_eq!(resolve_user(d.path(), "inside").unwrap().uid, 77);
    }

    #[test]
    fn users() {
        let d = rootfs();
        let u = resolve_user(d.path(), "wharfuser").unwrap();
        assert_eq!(
            (u.uid, u.gid, u.additional_gids.clone()),
            (1000, 1000, vec![29])
        );
        assert_eq!(u.home, "/home/wharfuser");
        assert_eq!(resolve_user(d.path(), "").unwrap().uid, 0);
        assert_eq!(resolve_user(d.path(), "4242:7").unwrap().gid, 7);
        assert_eq!(resolve_user(d.path(), "0:audio").unwrap().gid, 29);
        assert!(resolve_user(d.path(), "nobody")
            .unwrap_err()
            .contains("no matching entries in passwd file"));
    }

    #[test]
    fn groups_and_etc_files() {
        let d = rootfs();
        assert_eq!(
            resolve_groups(d.path(), &["audio".into(), "42".into()]).unwrap(),
            vec![29, 42]
        );
        assert_eq!(
            resolve_groups(d.path(), &["nope".into()]).unwrap_err(),
            "Unable to find group nope: no matching entries in group file"
        );
        let h = hosts_file("web", "example.org", &[("db".into(), "10.0.0.5".into())]).unwrap();
        assert!(h.contains("127.0.1.1\tweb.example.org web\n"));
        assert!(h.ends_with("10.0.0.5\tdb\n"));
        let r = resolv_conf_with(
            "nameserver 10.1.1.1\nsearch corp\noptions ndots:1\n",
            DnsOverrides {
                servers: &["1.1.1.1".into()],
                search: &[],
                options: &["ndots:5".into()],
            },
        )
        .unwrap();
        assert_eq!(r, "nameserver 1.1.1.1\nsearch corp\noptions ndots:5\n");
        let r = resolv_conf_with(
            "nameserver 10.1.1.1\nsearch corp\n",
            DnsOverrides {
                search: &[".".into()],
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(r, "nameserver 10.1.1.1\n");
    }

    /// A newline in any name written into /etc/hosts, /etc/hostname or resolv.conf would add
    /// lines of the requester's choosing; each file refuses it even from a stored config.
    #[test]
    fn etc_files_refuse_names_that_add_lines() {
        let inject = "a\n6.6.6.6 injected.example";
        assert!(hosts_file(inject, "", &[]).is_err());
        assert!(hosts_file("web", inject, &[]).is_err());
        assert!(hosts_file("web", "", &[(inject.into(), "1.2.3.4".into())]).is_err());
        assert!(hosts_file("web", "", &[("db".into(), "1.2.3.4\n6.6.6.6".into())]).is_err());
        assert!(hostname_file(inject).is_err());
        assert_eq!(hostname_file("web").unwrap(), "web\n");
        for (servers, search, options) in [
            (
                vec!["1.1.1.1\nnameserver 6.6.6.6".to_string()],
                vec![],
                vec![],
            ),
            (vec![], vec!["corp\nnameserver 6.6.6.6".to_string()], vec![]),
            (vec![], vec![], vec!["ndots:1 rotate".to_string()]),
            (vec![], vec![String::new()], vec![]),
        ] {
            let o = DnsOverrides {
                servers: &servers,
                search: &search,
                options: &options,
            };
            assert!(resolv_conf_with("", o).is_err(), "{o:?}");
        }
    }

    #[test]
    fn user_ids_out_of_range_never_resolve() {
        let d = rootfs();
        let msg = wharf_runtime::spec::ID_RANGE_MESSAGE;
        for spec in [
            "4294967295",
            "-1",
            "0:4294967295",
            "0:-1",
            "2147483648",
            "wharfuser:4294967295",
        ] {
            assert_eq!(resolve_user(d.path(), spec).unwrap_err(), msg, "{spec}");
        }
        assert_eq!(
            resolve_groups(d.path(), &["4294967295".into()]).unwrap_err(),
            msg
        );
        // An image whose own /etc/passwd or /etc/group holds (uid_t)-1.
        std::fs::write(
            d.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nevil:x:4294967295:0::/:/bin/sh\nevilgid:x:5:4294967295::/:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            d.path().join("etc/group"),
            "root:x:0:\nneg:x:4294967295:root\n",
        )
        .unwrap();
        assert_eq!(resolve_user(d.path(), "evil").unwrap_err(), msg);
        assert_eq!(resolve_user(d.path(), "evilgid").unwrap_err(), msg);
        assert_eq!(resolve_user(d.path(), "root").unwrap_err(), msg);
        assert_eq!(resolve_user(d.path(), "0:neg").unwrap_err(), msg);
        assert_eq!(resolve_groups(d.path(), &["neg".into()]).unwrap_err(), msg);
        assert_eq!(resolve_user(d.path(), "7:0").unwrap().uid, 7);
    }

    #[test]
    fn resolv_drops_loopback() {
        let r = resolv_conf("nameserver 127.0.0.53\nsearch x\n");
        assert!(!r.contains("127.0.0.53"));
        assert!(r.contains("8.8.8.8"));
        let r = resolv_conf("nameserver 10.1.1.1\n");
        assert!(r.contains("10.1.1.1") && !r.contains("8.8.8.8"));
    }
}
