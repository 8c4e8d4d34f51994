//! Bringing `lo` up inside a container's fresh network namespace.
//!
//! Done from the shim (which is single-threaded, so `setns` affects the whole process) between
//! create and start: the container's `/proc/sys` is read-only and its user may lack
//! `CAP_NET_ADMIN`, and the user process must find loopback working from its first instruction.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

use anyhow::{Context, Result};
use nix::sched::{setns, CloneFlags};

/// Sets `IFF_UP` on `lo` in the network namespace of `pid`, then returns to our own.
pub fn loopback_up(pid: i32) -> Result<()> {
    let ours = File::open("/proc/self/ns/net").context("opening our network namespace")?;
    let theirs = File::open(format!("/proc/{pid}/ns/net"))
        .with_context(|| format!("opening network namespace of pid {pid}"))?;
    setns(theirs.as_fd(), CloneFlags::CLONE_NEWNET).context("entering container netns")?;
    let result = set_lo_up();
    // Returning must not fail silently: every later socket would land in the container's netns.
    setns(ours.as_fd(), CloneFlags::CLONE_NEWNET).context("returning to the shim's netns")?;
    result
}

fn set_lo_up() -> Result<()> {
    // The socket must be created after setns: it belongs to the netns it was born in.
    // SAFETY: plain socket(2) call; the result is checked before use.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(std::io::Error::last_os_error()).context("socket for SIOCSIFFLAGS");
    }
    // SAFETY: `raw` is a fresh descriptor that nothing else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(raw) };

    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads ifr_name and writes ifr_flags of a valid ifreq.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } < 0 {
        return Err(std::io::Error::last_os_error()).context("SIOCGIFFLAGS lo");
    }
    // SAFETY: the kernel filled the flags member of the union just above.
    unsafe {
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
    }
    // SAFETY: SIOCSIFFLAGS reads a valid ifreq.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } < 0 {
        return Err(std::io::Error::last_os_error()).context("SIOCSIFFLAGS lo up");
    }
    Ok(())
}
