//! Passing descriptors over unix sockets (`SCM_RIGHTS`): exec stdio from wharfd to the shim,
//! pty masters from the runtime to whoever serves the terminal. Blocking or not is the
//! caller's socket's business; these are single `sendmsg`/`recvmsg` calls.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};

/// The most descriptors one message may carry here (exec stdio is three).
pub const MAX_FDS: usize = 4;

/// Sends `data` (at least one byte, so the descriptors have something to ride on) with `fds`.
/// Returns how many bytes of `data` went out.
pub fn send_with_fds(sock: RawFd, data: &[u8], fds: &[RawFd]) -> std::io::Result<usize> {
    let iov = [IoSlice::new(data)];
    let cmsg = [ControlMessage::ScmRights(fds)];
    let cmsgs: &[ControlMessage] = if fds.is_empty() { &[] } else { &cmsg };
    sendmsg::<()>(sock, &iov, cmsgs, MsgFlags::MSG_NOSIGNAL, None).map_err(std::io::Error::from)
}

/// Receives into `buf`; descriptors that came with the bytes are returned close-on-exec.
/// `Ok((0, _))` is EOF.
pub fn recv_with_fds(sock: RawFd, buf: &mut [u8]) -> std::io::Result<(usize, Vec<OwnedFd>)> {
    let mut space = nix::cmsg_space!([RawFd; MAX_FDS]);
    let mut iov = [IoSliceMut::new(buf)];
    let msg = recvmsg::<()>(sock, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)
        .map_err(std::io::Error::from)?;
    let mut fds = Vec::new();
    if let Ok(cmsgs) = msg.cmsgs() {
        for c in cmsgs {
            if let ControlMessageOwned::ScmRights(raw) = c {
                for fd in raw {
                    // SAFETY: the kernel just installed these descriptors in our table for us.
                    fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
                }
            }
        }
    }
    Ok((msg.bytes, fds))
}

/// Receives exactly one descriptor, skipping nothing: for a peer that sends one fd and a byte.
pub fn recv_one_fd(sock: &impl AsRawFd) -> std::io::Result<OwnedFd> {
    let mut byte = [0u8; 64];
    let (n, mut fds) = recv_with_fds(sock.as_raw_fd(), &mut byte)?;
    if fds.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            if n == 0 {
                "peer closed without sending a descriptor"
            } else {
                "message carried no descriptor"
            },
        ));
    }
    Ok(fds.swap_remove(0))
}

/// Sets a pty's window size (`TIOCSWINSZ`), which also sends SIGWINCH to its foreground group.
pub fn set_winsize(pty: RawFd, height: u16, width: u16) -> std::io::Result<()> {
    let ws = libc::winsize {
        ws_row: height,
        ws_col: width,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize from the valid pointer we pass.
    if unsafe { libc::ioctl(pty, libc::TIOCSWINSZ, &ws) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    #[test]
    fn passes_descriptors_with_bytes() {
        let (a, b) = UnixStream::pair().unwrap();
        let (r, w) = nix::unistd::pipe().unwrap();
        assert_eq!(
            send_with_fds(a.as_raw_fd(), b"x", &[r.as_raw_fd(), w.as_raw_fd()]).unwrap(),
            1
        );
        let mut buf = [0u8; 8];
        let (n, fds) = recv_with_fds(b.as_raw_fd(), &mut buf).unwrap();
        assert_eq!((n, fds.len()), (1, 2));
        nix::unistd::write(&fds[1], b"ok").unwrap();
        let mut got = [0u8; 2];
        nix::unistd::read(fds[0].as_raw_fd(), &mut got).unwrap();
        assert_eq!(&got, b"ok");
    }

    #[test]
    fn missing_descriptor_is_an_error() {
        let (a, b) = UnixStream::pair().unwrap();
        send_with_fds(a.as_raw_fd(), b"x", &[]).unwrap();
        assert!(recv_one_fd(&b).is_err());
        drop(a);
        assert!(recv_one_fd(&b).is_err());
    }
}
