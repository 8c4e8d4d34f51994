//! docker's atomic writer (`moby/sys/atomicwriter`) for `export -o` and `save -o`: the target
//! checked first, a temporary file beside it, renamed into place at the end only when
//! something was written and no write failed.

use super::archive::{base, dir, go_err, path_err, resolve_local};
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;

/// docker's atomic writer: a temporary file beside the target, renamed over it at the end.
pub struct AtomicFile {
    tmp: PathBuf,
    target: PathBuf,
    file: fs::File,
    perm: u32,
    write_failed: bool,
    written: bool,
}

impl AtomicFile {
    pub fn create(path: &str, perm: u32) -> Result<AtomicFile, String> {
        validate_destination(path)?;
        let abs = resolve_local(path).map_err(|e| go_err(&e))?;
        let abs = abs.trim_end_matches('/').to_string();
        let parent = dir(&abs);
        let mut n = 0u32;
        loop {
            let mut rnd = [0u8; 4];
            let salt = match getrandom_bytes(&mut rnd) {
                Ok(()) => u32::from_le_bytes(rnd),
                Err(_) => std::process::id().wrapping_add(n),
            };
            let tmp = PathBuf::from(format!("{parent}/.tmp-{}{salt}", base(path)));
            match fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode_600()
                .open(&tmp)
            {
                Ok(file) => {
                    return Ok(AtomicFile {
                        tmp,
                        target: PathBuf::from(abs),
                        file,
                        perm,
                        write_failed: false,
                        written: false,
                    })
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && n < 100 => n += 1,
                Err(e) => return Err(path_err("open", &tmp.to_string_lossy(), &e)),
            }
        }
    }

    pub fn write(&mut self, data: &[u8]) -> io::Result<()> {
        self.written = true;
        let r = self.file.write_all(data);
        if r.is_err() {
            self.write_failed = true;
        }
        r
    }

    /// Puts the file in place when something was written and no write failed; the temporary
    /// file never stays.
    pub fn commit(self) -> io::Result<()> {
        let result = (|| {
            self.file.sync_all()?;
            fs::set_permissions(&self.tmp, fs::Permissions::from_mode(self.perm))?;
            if self.written && !self.write_failed {
                fs::rename(&self.tmp, &self.target)?;
            }
            Ok(())
        })();
        let _ = fs::remove_file(&self.tmp);
        result
    }
}

trait Mode600 {
    fn mode_600(&mut self) -> &mut Self;
}

impl Mode600 for fs::OpenOptions {
    fn mode_600(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.mode(0o600)
    }
}

fn getrandom_bytes(buf: &mut [u8]) -> io::Result<()> {
    fs::File::open("/dev/urandom")?.read_exact(buf)
}

/// `atomicwriter`'s checks of the target before anything is written.
fn validate_destination(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("file name is empty".into());
    }
    let d = dir(path);
    if d != "." && d != ".." {
        match fs::metadata(&d) {
            Err(e) => return Err(format!("invalid output path: {}", path_err("stat", &d, &e))),
            Ok(m) if !m.is_dir() => {
                return Err(format!("invalid output path: stat {d}: not a directory"))
            }
            Ok(_) => {}
        }
    }
    let md = match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(format!(
                "failed to stat output path: {}",
                path_err("lstat", path, &e)
            ))
        }
        Ok(m) => m,
    };
    use std::os::unix::fs::FileTypeExt;
    let ft = md.file_type();
    let mode = md.mode();
    Err(if ft.is_file() {
        if mode & 0o4000 != 0 {
            "cannot write to a setuid file"
        } else if mode & 0o2000 != 0 {
            "cannot write to a setgid file"
        } else if mode & 0o1000 != 0 {
            "cannot write to a sticky bit file"
        } else {
            return Ok(());
        }
    } else if ft.is_dir() {
        "cannot write to a directory"
    } else if ft.is_symlink() {
        "cannot write to a symbolic link directly"
    } else if ft.is_fifo() {
        "cannot write to a named pipe (FIFO)"
    } else if ft.is_socket() {
        "cannot write to a socket"
    } else if ft.is_char_device() {
        "cannot write to a character device file"
    } else {
        "cannot write to a block device file"
    }
    .to_string())
}
