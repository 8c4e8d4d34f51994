//! wharf-init: the process `docker run --init` puts at PID 1 (mounted as `/sbin/docker-init`).
//!
//! It does what Docker's docker-init (tini) does: every signal is blocked and taken
//! synchronously with `sigwaitinfo`, so none is dropped by the kernel's rule that PID 1 only
//! gets signals it handles; each one but SIGCHLD is forwarded to the child; every zombie that
//! the kernel re-parents to us is reaped; and when the child ends we exit with its status
//! (128 + the signal when it was killed).
//!
//! The engine's build script compiles this single file, with no crates and no std, into a
//! static binary: it has to run in any image, even one without a libc, and without std it is
//! about 40% smaller (~0.7 MB, most of it static glibc) because std's panic and backtrace
//! machinery stays out.

#![no_std]
#![no_main]

use core::ffi::{c_char, c_int, c_ulong, CStr};
use core::ptr::null_mut;

/// glibc's `sigset_t`: 1024 bits.
#[repr(C)]
struct SigSet([u64; 16]);

// Static glibc's archive refers to the unwinder (for cancellation cleanups); gcc ships it.
#[link(name = "c")]
#[link(name = "gcc_eh")]
#[link(name = "gcc")]
extern "C" {
    fn sigfillset(set: *mut SigSet) -> c_int;
    fn sigemptyset(set: *mut SigSet) -> c_int;
    fn sigprocmask(how: c_int, set: *const SigSet, old: *mut SigSet) -> c_int;
    fn sigwaitinfo(set: *const SigSet, info: *mut u8) -> c_int;
    fn fork() -> c_int;
    fn execvp(file: *const c_char, argv: *const *const c_char) -> c_int;
    fn waitpid(pid: c_int, status: *mut c_int, options: c_int) -> c_int;
    fn kill(pid: c_int, sig: c_int) -> c_int;
    fn getpid() -> c_int;
    fn setpgid(pid: c_int, pgid: c_int) -> c_int;
    fn tcsetpgrp(fd: c_int, pgrp: c_int) -> c_int;
    fn prctl(option: c_int, ...) -> c_int;
    fn dprintf(fd: c_int, format: *const c_char, ...) -> c_int;
    fn strerror(errnum: c_int) -> *const c_char;
    fn __errno_location() -> *mut c_int;
    fn _exit(status: c_int) -> !;
    fn abort() -> !;
}

const SIG_SETMASK: c_int = 2;
const SIGCHLD: c_int = 17;
const WNOHANG: c_int = 1;
const PR_SET_CHILD_SUBREAPER: c_int = 36;
const ENOENT: c_int = 2;
const EACCES: c_int = 13;

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    // SAFETY: abort has no preconditions.
    unsafe { abort() }
}

/// Never called with `panic = "abort"`, but libcore's prebuilt objects name it, and whether
/// the linker keeps them depends on inlining; defining it makes the link not depend on that.
#[no_mangle]
extern "C" fn rust_eh_personality() {}

#[no_mangle]
extern "C" fn main(argc: c_int, argv: *const *const c_char) -> c_int {
    // SAFETY: C's startup passes argc valid C strings in argv, followed by NULL.
    unsafe { run(argc, argv) }
}

unsafe fn run(argc: c_int, argv: *const *const c_char) -> c_int {
    // Docker runs `docker-init -- cmd args...`; the `--` is optional, as in tini.
    let mut first = 1;
    if first < argc && CStr::from_ptr(*argv.add(1)) == c"--" {
        first += 1;
    }
    if first >= argc {
        dprintf(2, c"usage: docker-init [--] PROGRAM [ARGS...]\n".as_ptr());
        return 1;
    }
    let cmd = argv.add(first as usize);

    let mut all = SigSet([0; 16]);
    sigfillset(&mut all);
    // Blocked before the child exists, so that no signal meant for it slips past us.
    if sigprocmask(SIG_SETMASK, &all, null_mut()) != 0 {
        return fatal(1, c"blocking signals");
    }
    if getpid() != 1 {
        // Without a PID namespace, orphans would otherwise go to the host's init.
        prctl(PR_SET_CHILD_SUBREAPER, 1 as c_ulong);
    }

    let child = fork();
    if child < 0 {
        return fatal(1, c"fork");
    }
    if child == 0 {
        // Its own process group, made the terminal's foreground group when there is one, so a
        // ^C reaches it once rather than again through us. SIGTTOU is still blocked here,
        // which is what lets a background group take the terminal; no tty is not an error.
        setpgid(0, 0);
        tcsetpgrp(0, getpid());
        let mut none = SigSet([0; 16]);
        sigemptyset(&mut none);
        sigprocmask(SIG_SETMASK, &none, null_mut());
        execvp(*cmd, cmd);
        let err = *__errno_location();
        dprintf(
            2,
            c"[FATAL wharf-init (%d)] exec %s failed: %s\n".as_ptr(),
            getpid(),
            *cmd,
            strerror(err),
        );
        _exit(match err {
            ENOENT => 127,
            EACCES => 126,
            _ => 1,
        });
    }

    loop {
        let sig = sigwaitinfo(&all, null_mut());
        if sig > 0 && sig != SIGCHLD {
            // A child already gone (ESRCH) is collected below.
            kill(child, sig);
        }
        // Exits coalesce into one pending SIGCHLD: reap until there is nothing left.
        loop {
            let mut status: c_int = 0;
            let pid = waitpid(-1, &mut status, WNOHANG);
            if pid <= 0 {
                break;
            }
            if pid == child {
                // Whatever still runs is killed by the kernel once PID 1 is gone. Without
                // WUNTRACED, a status that is not an exit is a death by signal.
                return if status & 0x7f == 0 {
                    (status >> 8) & 0xff
                } else {
                    128 + (status & 0x7f)
                };
            }
        }
    }
}

unsafe fn fatal(code: c_int, what: &CStr) -> c_int {
    let err = *__errno_location();
    dprintf(
        2,
        c"[FATAL wharf-init (%d)] %s failed: %s\n".as_ptr(),
        getpid(),
        what.as_ptr(),
        strerror(err),
    );
    code
}
