//! Extended attributes through descriptors (nix has no xattr calls).

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// File capabilities: the one xattr moby's tarballer writes.
pub const CAPABILITY: &str = "security.capability";

/// The value of `name` on `fd`; `None` when it has none (or the filesystem has no xattrs).
pub fn get(fd: BorrowedFd<'_>, name: &str) -> io::Result<Option<Vec<u8>>> {
    let c = CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    read_value(|buf| {
        // SAFETY: `c` is NUL-terminated and `buf` is valid for `buf.len()` bytes for the
        // whole call.
        unsafe {
            libc::fgetxattr(
                fd.as_raw_fd(),
                c.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        }
    })
}

/// The value of `name` on `path` itself (a symlink is not followed); `None` when it has none,
/// its filesystem keeps none, or the path is gone.
pub fn lget(path: &std::path::Path, name: &str) -> io::Result<Option<Vec<u8>>> {
    use std::os::unix::ffi::OsStrExt;
    let nul = |_| io::Error::from_raw_os_error(libc::EINVAL);
    let p = CString::new(path.as_os_str().as_bytes()).map_err(nul)?;
    let c = CString::new(name).map_err(nul)?;
    match read_value(|buf| {
        // SAFETY: both strings are NUL-terminated and outlive the call; the kernel writes at
        // most `buf.len()` bytes into `buf`.
        unsafe { libc::lgetxattr(p.as_ptr(), c.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) }
    }) {
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ENOTDIR)) => Ok(None),
        other => other,
    }
}

/// One *getxattr call, retried with a bigger buffer while the value does not fit.
fn read_value(mut call: impl FnMut(&mut [u8]) -> libc::ssize_t) -> io::Result<Option<Vec<u8>>> {
    let mut buf = vec![0u8; 256];
    loop {
        let n = call(&mut buf);
        if n >= 0 {
            buf.truncate(n as usize);
            return Ok(Some(buf));
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::ENODATA) | Some(libc::ENOTSUP) => return Ok(None),
            Some(libc::ERANGE) if buf.len() < 64 * 1024 => buf.resize(buf.len() * 4, 0),
            _ => return Err(e),
        }
    }
}

pub fn set(fd: BorrowedFd<'_>, name: &str, value: &[u8]) -> io::Result<()> {
    let c = CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `c` is NUL-terminated and `value` valid for its length during the call.
    let r = unsafe {
        libc::fsetxattr(
            fd.as_raw_fd(),
            c.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
