//! An exec's stdio: the pipes (or the socket on which the pty master comes back) whose far ends
//! go to the shim with the `Exec` request, and wharfd's ends of them as async streams.

use super::exec::START_TIMEOUT;
use bytes::Bytes;
use futures_util::stream::{self, BoxStream, StreamExt};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream as StdUnixStream;
use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc;
use wharf_api::stdcopy::StdStream;
use wharf_backend::OutputChunk;
use wharf_runtime::fdpass;

const READ_CHUNK: usize = 32 * 1024;

/// wharfd's ends of an exec's stdio.
#[derive(Default)]
pub(crate) struct OurEnds {
    pub stdin: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
    /// TTY: where the pty master arrives.
    pub console: Option<StdUnixStream>,
    pub pty: Option<OwnedFd>,
}

pub(crate) struct Stdio {
    pub ours: OurEnds,
    /// Sent to the shim: stdin, stdout, stderr; or the console socket.
    pub theirs: Vec<OwnedFd>,
}

impl Stdio {
    /// A TTY exec gets a socket for its pty master. Otherwise each of `stdin`, `stdout` and
    /// `stderr` is a pipe when wharfd wants that stream, `/dev/null` when not.
    pub(crate) fn new(tty: bool, stdin: bool, stdout: bool, stderr: bool) -> io::Result<Stdio> {
        let mut ours = OurEnds::default();
        if tty {
            let (a, b) = StdUnixStream::pair()?;
            ours.console = Some(a);
            return Ok(Stdio {
                ours,
                theirs: vec![b.into()],
            });
        }
        let null = |write: bool| -> io::Result<OwnedFd> {
            Ok(std::fs::OpenOptions::new()
                .read(!write)
                .write(write)
                .open("/dev/null")?
                .into())
        };
        let pipe = || -> io::Result<(OwnedFd, OwnedFd)> {
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(io::Error::from)
        };
        let stdin = if stdin {
            let (r, w) = pipe()?;
            ours.stdin = Some(w);
            r
        } else {
            null(false)?
        };
        let out = |attach: bool, slot: &mut Option<OwnedFd>| -> io::Result<OwnedFd> {
            if attach {
                let (r, w) = pipe()?;
                *slot = Some(r);
                Ok(w)
            } else {
                null(true)
            }
        };
        let stdout = out(stdout, &mut ours.stdout)?;
        let stderr = out(stderr, &mut ours.stderr)?;
        Ok(Stdio {
            ours,
            theirs: vec![stdin, stdout, stderr],
        })
    }
}

impl OurEnds {
    /// TTY: receives the pty master the shim sends back on the console socket.
    pub(crate) async fn receive_pty(&mut self) -> io::Result<()> {
        let sock = self
            .console
            .take()
            .ok_or_else(|| io::Error::other("no console socket"))?;
        let master = tokio::task::spawn_blocking(move || -> io::Result<OwnedFd> {
            sock.set_read_timeout(Some(START_TIMEOUT))?;
            fdpass::recv_one_fd(&sock)
        })
        .await
        .map_err(io::Error::other)??;
        self.pty = Some(master);
        Ok(())
    }
}

fn set_nonblocking(fd: &OwnedFd) -> io::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let flags = fcntl(fd.as_raw_fd(), FcntlArg::F_GETFL).map_err(io::Error::from)?;
    fcntl(
        fd.as_raw_fd(),
        FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK),
    )
    .map_err(io::Error::from)?;
    Ok(())
}

fn register(fd: OwnedFd) -> io::Result<AsyncFd<OwnedFd>> {
    set_nonblocking(&fd)?;
    // SAFETY: an OwnedFd keeps its descriptor open and unchanged until the AsyncFd drops it.
    unsafe { AsyncFd::register(fd) }.map_err(|e| io::Error::other(e.to_string()))
}

/// Output chunks from a pipe or pty master until EOF (a pty master says EIO once the process
/// side is gone, which is its EOF).
pub(crate) fn read_stream(
    fd: OwnedFd,
    which: StdStream,
) -> io::Result<BoxStream<'static, OutputChunk>> {
    let afd = register(fd)?;
    Ok(stream::unfold(Some(afd), move |afd| async move {
        let afd = afd?;
        let mut buf = vec![0u8; READ_CHUNK];
        loop {
            let mut guard = afd.readable().await.ok()?;
            match guard.try_io(|inner| {
                nix::unistd::read(inner.get_ref().as_raw_fd(), &mut buf).map_err(io::Error::from)
            }) {
                Ok(Ok(0)) | Ok(Err(_)) => return None,
                Ok(Ok(n)) => {
                    buf.truncate(n);
                    let chunk = OutputChunk {
                        stream: which,
                        data: Bytes::from(buf),
                        timestamp: None,
                    };
                    return Some((chunk, Some(afd)));
                }
                Err(_would_block) => continue,
            }
        }
    })
    .boxed())
}

/// Writes the channel's bytes to the exec's stdin; an empty `Bytes` closes it.
pub(crate) fn spawn_stdin_writer(fd: OwnedFd, mut rx: mpsc::Receiver<Bytes>) -> io::Result<()> {
    let afd = register(fd)?;
    tokio::spawn(async move {
        while let Some(chunk) = rx.recv().await {
            if chunk.is_empty() {
                return; // dropping the descriptor is the close
            }
            let mut rest: &[u8] = &chunk;
            while !rest.is_empty() {
                let Ok(mut guard) = afd.writable().await else {
                    return;
                };
                match guard.try_io(|inner| {
                    nix::unistd::write(inner.get_ref(), rest).map_err(io::Error::from)
                }) {
                    Ok(Ok(n)) => rest = &rest[n..],
                    Ok(Err(_)) => return,
                    Err(_would_block) => continue,
                }
            }
        }
    });
    Ok(())
}
