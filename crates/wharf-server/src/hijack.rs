//! Hijacked attach: after a `101 UPGRADED` the connection is a raw duplex pipe. Output goes to
//! the socket (stdcopy frames unless TTY), socket bytes go to the container's stdin, and the
//! socket is closed when the output ends.

use crate::backend::AttachSession;
use crate::stream::encode_output;
use bytes::Bytes;
use futures_util::StreamExt;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

const STDIN_BUF: usize = 32 * 1024;

/// Waits for hyper to hand over the connection, then pumps until the output ends.
pub async fn run_upgraded(on_upgrade: OnUpgrade, session: AttachSession) {
    match on_upgrade.await {
        Ok(upgraded) => pump(TokioIo::new(upgraded), session).await,
        Err(e) => tracing::debug!(error = %e, "attach upgrade failed"),
    }
}

/// The two directions of a hijacked stream, over any duplex byte pipe.
pub async fn pump<IO>(io: IO, session: AttachSession)
where
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    let AttachSession {
        tty,
        mut output,
        stdin,
    } = session;
    let (rd, mut wr) = tokio::io::split(io);
    // Client EOF is stdin EOF: the CLI half-closes right after the 101 when it has no stdin, and
    // output must keep flowing after that.
    let stdin_task = stdin.map(|tx| tokio::spawn(forward_stdin(rd, tx)));
    while let Some(chunk) = output.next().await {
        let bytes = encode_output(&chunk, tty, false);
        if wr.write_all(&bytes).await.is_err() || wr.flush().await.is_err() {
            tracing::debug!("attach client went away");
            break;
        }
    }
    let _ = wr.shutdown().await;
    // The read half lives in the stdin task; ending it drops the last handle and closes the fd.
    if let Some(t) = stdin_task {
        t.abort();
    }
}

async fn forward_stdin<R: AsyncRead>(rd: R, tx: mpsc::Sender<Bytes>) {
    let mut rd = std::pin::pin!(rd);
    let mut buf = vec![0u8; STDIN_BUF];
    loop {
        match rd.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if tx.send(Bytes::copy_from_slice(&buf[..n])).await.is_err() {
                    break;
                }
            }
        }
    }
}
