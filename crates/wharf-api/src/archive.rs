//! `docker cp`'s wire types: the stat of a path inside a container, sent base64-encoded JSON
//! in the `X-Docker-Container-Path-Stat` header of `HEAD` and `GET /containers/{id}/archive`.

use serde::{Deserialize, Serialize};

/// The response header carrying a [`ContainerPathStat`].
pub const PATH_STAT_HEADER: &str = "X-Docker-Container-Path-Stat";

/// Go's `os.FileMode` type bits, as dockerd puts them in `mode` (the permission bits are the
/// low nine, as in Unix).
pub mod file_mode {
    pub const DIR: u32 = 1 << 31;
    pub const SYMLINK: u32 = 1 << 27;
    pub const DEVICE: u32 = 1 << 26;
    pub const NAMED_PIPE: u32 = 1 << 25;
    pub const SOCKET: u32 = 1 << 24;
    pub const SETUID: u32 = 1 << 23;
    pub const SETGID: u32 = 1 << 22;
    pub const CHAR_DEVICE: u32 = 1 << 21;
    pub const STICKY: u32 = 1 << 20;

    /// Go's `os.FileMode` of a Unix `st_mode`, as `fs.FileInfo.Mode()` computes it.
    pub fn from_unix(st_mode: u32) -> u32 {
        let mut m = st_mode & 0o777;
        m |= match st_mode & 0o170000 {
            0o040000 => DIR,
            0o120000 => SYMLINK,
            0o060000 => DEVICE,
            0o020000 => DEVICE | CHAR_DEVICE,
            0o010000 => NAMED_PIPE,
            0o140000 => SOCKET,
            _ => 0,
        };
        if st_mode & 0o4000 != 0 {
            m |= SETUID;
        }
        if st_mode & 0o2000 != 0 {
            m |= SETGID;
        }
        if st_mode & 0o1000 != 0 {
            m |= STICKY;
        }
        m
    }
}

/// moby's `types.ContainerPathStat`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerPathStat {
    pub name: String,
    pub size: i64,
    /// Go's `os.FileMode` bits ([`file_mode`]), not `st_mode`.
    pub mode: u32,
    /// RFC 3339 with nanoseconds.
    pub mtime: String,
    /// The path a symlink resolves to inside the container (every link followed); empty
    /// for anything else.
    #[serde(rename = "linkTarget")]
    pub link_target: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_file_modes() {
        assert_eq!(file_mode::from_unix(0o040755), file_mode::DIR | 0o755);
        assert_eq!(file_mode::from_unix(0o100644), 0o644);
        assert_eq!(file_mode::from_unix(0o104755), file_mode::SETUID | 0o755);
        assert_eq!(file_mode::from_unix(0o120777), file_mode::SYMLINK | 0o777);
        assert_eq!(
            file_mode::from_unix(0o020666),
            file_mode::DEVICE | file_mode::CHAR_DEVICE | 0o666
        );
        assert_eq!(
            file_mode::from_unix(0o041777),
            file_mode::DIR | file_mode::STICKY | 0o777
        );
    }

    #[test]
    fn stat_json_uses_docker_names() {
        let s = ContainerPathStat {
            name: "x".into(),
            size: 3,
            mode: 0o644,
            mtime: "2024-01-01T00:00:00Z".into(),
            link_target: String::new(),
        };
        let j = serde_json::to_string(&s).unwrap();
        assert_eq!(
            j,
            r#"{"name":"x","size":3,"mode":420,"mtime":"2024-01-01T00:00:00Z","linkTarget":""}"#
        );
    }
}
