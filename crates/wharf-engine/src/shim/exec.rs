//! The `Exec` request: the exec's stdio rides on the request line as `SCM_RIGHTS`, and the same
//! connection answers twice, once when the process started (or failed to) and once when it has
//! been reaped.

use super::{connect, read_response};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncWriteExt, BufReader, Interest};
use tokio::net::UnixStream;
use wharf_runtime::fdpass;
use wharf_runtime::shim_proto::{Request, Response};

/// How long the shim may take to say whether the process started.
pub(crate) const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The connection of a started exec, on which its exit will be reported.
pub(crate) struct ExecConn(BufReader<UnixStream>);

/// Sends the exec request with its descriptors and reads the first answer (started or not).
pub(crate) async fn request_exec(
    state_dir: &Path,
    process: &str,
    tty: bool,
    fds: &[OwnedFd],
) -> io::Result<(ExecConn, Response)> {
    let mut s = connect(state_dir).await?;
    let mut line = serde_json::to_vec(&Request::Exec {
        process: process.to_string(),
        tty,
    })
    .map_err(io::Error::other)?;
    line.push(b'\n');
    let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
    // The descriptors go with the first bytes; whatever the socket did not take goes after.
    let sent = s
        .async_io(Interest::WRITABLE, || {
            fdpass::send_with_fds(s.as_raw_fd(), &line, &raw)
        })
        .await?;
    s.write_all(&line[sent..]).await?;
    let mut r = BufReader::new(s);
    let resp = tokio::time::timeout(START_TIMEOUT, read_response(&mut r))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "the shim did not answer"))??
        .ok_or_else(|| {
            io::Error::new(io::ErrorKind::UnexpectedEof, "shim closed the connection")
        })?;
    Ok((ExecConn(r), resp))
}

impl ExecConn {
    /// The exit code from the shim's second line; 255 if the shim went away without one
    /// (wharfd cannot know, and Docker reports the same for an exec whose shim died).
    pub(crate) async fn exit_code(mut self) -> i64 {
        match read_response(&mut self.0).await {
            Ok(Some(resp)) => resp.exit.map_or(255, |x| i64::from(x.exit_code)),
            _ => 255,
        }
    }
}
