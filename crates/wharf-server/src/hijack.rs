//! Hijacked attach: after a `101 UPGRADED` the connection is a raw duplex pipe. Output goes to
//! the socket (stdcopy frames unless TTY), socket bytes go to the container's stdin, and the
//! socket is closed when the output ends.

use crate::conn::ConnIo;
use crate::stream::encode_output;
use bytes::Bytes;
use futures_util::StreamExt;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use std::os::fd::{AsFd, OwnedFd};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, Interest};
use tokio::net::UnixStream;
use tokio::sync::oneshot;
use wharf_api::detach::{DetachScanner, Scanned};
use wharf_backend::{AttachSession, StdinSink};

const STDIN_BUF: usize = 32 * 1024;
/// How long the first output may wait for the client to read the 101's headers; a client that
/// takes longer gets the output anyway.
const HEADERS_READ_LIMIT: std::time::Duration = std::time::Duration::from_secs(2);
/// Without a socket to ask (not a unix connection), the first write waits this long instead.
const FIRST_WRITE_DELAY: std::time::Duration = std::time::Duration::from_millis(30);

/// Waits for hyper to hand over the connection, then pumps until the output ends, the client
/// detaches, or the client's socket is gone.
pub async fn run_upgraded(on_upgrade: OnUpgrade, session: AttachSession) {
    let upgraded = match on_upgrade.await {
        Ok(u) => u,
        Err(e) => {
            tracing::debug!(error = %e, "attach upgrade failed");
            return;
        }
    };
    match upgraded.downcast::<TokioIo<ConnIo>>() {
        Ok(parts) => {
            // The slot under the socket's connection cap is held until the session ends.
            let (stream, _slot) = parts.io.into_inner().into_parts();
            let hangup = HangupWatch::new(&stream);
            let first_write =
                FirstWrite::AfterHeadersRead(stream.as_fd().try_clone_to_owned().ok());
            let (rd, wr) = stream.into_split();
            // Bytes hyper read past the request (stdin sent right behind it) come first.
            let rd = std::io::Cursor::new(parts.read_buf).chain(rd);
            pump_halves(rd, wr, session, hangup, first_write).await
        }
        Err(upgraded) => pump(TokioIo::new(upgraded), session).await,
    }
}

/// When the first output byte may go out. docker-py reads the 101 through a buffered reader
/// and then reads the raw socket, so output that arrives together with the headers is lost in
/// that buffer (seen as lost `exec_run` output about one run in five). The first write
/// therefore waits until the client has read everything sent so far: the kernel's count of our
/// unread bytes (`SIOCOUTQ` on a unix socket) is zero.
enum FirstWrite {
    AfterHeadersRead(Option<OwnedFd>),
    AfterDelay,
}

impl FirstWrite {
    async fn wait(self) {
        let fd = match self {
            FirstWrite::AfterHeadersRead(Some(fd)) => fd,
            FirstWrite::AfterHeadersRead(None) | FirstWrite::AfterDelay => {
                tokio::time::sleep(FIRST_WRITE_DELAY).await;
                return;
            }
        };
        let deadline = tokio::time::Instant::now() + HEADERS_READ_LIMIT;
        while unread_bytes(&fd).is_some_and(|n| n > 0) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    }
}

/// Bytes we sent that the peer has not read yet, or `None` when the kernel cannot say.
fn unread_bytes(fd: &OwnedFd) -> Option<i32> {
    use std::os::fd::AsRawFd;
    let mut n: libc::c_int = 0;
    // SAFETY: SIOCOUTQ (== TIOCOUTQ) writes one int through the valid pointer we pass; the
    // descriptor is open for the call's duration.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCOUTQ, &mut n) };
    (r == 0).then_some(n)
}

/// Notices a client that closed its socket entirely. A half-close is stdin EOF and must not
/// end the stream, and a client that sends nothing and receives nothing would otherwise hold
/// its session (and the daemon's descriptors) until the container next prints.
struct HangupWatch(AsyncFd<OwnedFd>);

impl HangupWatch {
    fn new(stream: &UnixStream) -> Option<HangupWatch> {
        let dup = stream.as_fd().try_clone_to_owned().ok()?;
        // SAFETY: the OwnedFd keeps this descriptor open and unchanged until the AsyncFd drops.
        let afd = unsafe { AsyncFd::register_with_interest(dup, Interest::WRITABLE) }.ok()?;
        Some(HangupWatch(afd))
    }

    async fn wait(&self) {
        loop {
            match self.0.writable().await {
                // A full hang-up (EPOLLHUP) closes the write direction too.
                Ok(g) if g.ready().is_write_closed() => return,
                Ok(mut g) => g.clear_ready(),
                Err(_) => return,
            }
        }
    }
}

/// The two directions of a hijacked stream, over any duplex byte pipe.
pub async fn pump<IO>(io: IO, session: AttachSession)
where
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    let (rd, wr) = tokio::io::split(io);
    pump_halves(rd, wr, session, None, FirstWrite::AfterDelay).await
}

async fn pump_halves<R, W>(
    rd: R,
    mut wr: W,
    session: AttachSession,
    hangup: Option<HangupWatch>,
    first_write: FirstWrite,
) where
    R: AsyncRead + Send + 'static,
    W: AsyncWrite + Unpin + Send,
{
    let AttachSession {
        tty,
        mut output,
        stdin,
        detach_keys,
        on_detach,
    } = session;
    let hung_up = async {
        match &hangup {
            Some(h) => h.wait().await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(hung_up);
    let (detached_tx, mut detached_rx) = oneshot::channel::<()>();
    // Client EOF is stdin EOF: the CLI half-closes right after the 101 when it has no stdin, and
    // output must keep flowing after that.
    let stdin_task =
        stdin.map(|sink| tokio::spawn(forward_stdin(rd, sink, detach_keys, detached_tx)));
    let mut watching_detach = stdin_task.is_some();
    let mut first_write = Some(first_write);
    loop {
        tokio::select! {
            chunk = output.next() => {
                let Some(chunk) = chunk else { break };
                if let Some(w) = first_write.take() {
                    w.wait().await;
                }
                let bytes = encode_output(&chunk, tty, false);
                if wr.write_all(&bytes).await.is_err() || wr.flush().await.is_err() {
                    tracing::debug!("attach client went away");
                    break;
                }
            }
            () = &mut hung_up => {
                tracing::debug!("attach client hung up");
                break;
            }
            r = &mut detached_rx, if watching_detach => {
                if r.is_ok() {
                    if let Some(f) = on_detach {
                        f();
                    }
                    break;
                }
                // The stdin side ended without detaching; output goes on.
                watching_detach = false;
            }
        }
    }
    let _ = wr.shutdown().await;
    // The read half lives in the stdin task; ending it drops the last handle and closes the fd.
    if let Some(t) = stdin_task {
        t.abort();
    }
}

async fn forward_stdin<R: AsyncRead>(
    rd: R,
    sink: StdinSink,
    detach_keys: Vec<u8>,
    detached: oneshot::Sender<()>,
) {
    let mut rd = std::pin::pin!(rd);
    let mut buf = vec![0u8; STDIN_BUF];
    let mut scanner = DetachScanner::new(detach_keys);
    loop {
        match rd.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let (data, detach) = match scanner.feed(&buf[..n]) {
                    Scanned::Forward(d) => (d, false),
                    Scanned::Detach(d) => (d, true),
                };
                if !data.is_empty() && sink.tx.send(Bytes::from(data)).await.is_err() {
                    return;
                }
                if detach {
                    // Detaching never closes the process's stdin.
                    let _ = detached.send(());
                    return;
                }
            }
        }
    }
    if sink.close_on_eof {
        let _ = sink.tx.send(Bytes::new()).await;
    }
}
