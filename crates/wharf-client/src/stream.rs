//! Streams that outlive one request: log frames and hijacked attach connections.

use crate::error::ClientError;
use crate::transport::next_data;
use hyper::body::Incoming;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use wharf_api::stdcopy::{Demuxer, StdStream};

/// Log output as it arrives: stdcopy frames, or raw chunks (reported as stdout) for a TTY
/// container.
#[derive(Debug)]
pub struct LogStream {
    body: Incoming,
    demux: Demuxer,
    raw: bool,
    done: bool,
}

impl LogStream {
    pub(crate) fn new(body: Incoming, raw: bool) -> LogStream {
        LogStream {
            body,
            demux: Demuxer::default(),
            raw,
            done: false,
        }
    }

    /// The next frame; `None` when the daemon ends the stream.
    pub async fn next(&mut self) -> Option<Result<(StdStream, Vec<u8>), ClientError>> {
        loop {
            if !self.raw {
                match self.demux.next_frame() {
                    Ok(Some(f)) => return Some(Ok(f)),
                    Ok(None) => {}
                    Err(e) => return Some(Err(ClientError::Stdcopy(e))),
                }
            }
            if self.done {
                return None;
            }
            match next_data(&mut self.body).await {
                Some(Ok(chunk)) if self.raw => {
                    return Some(Ok((StdStream::Stdout, chunk.to_vec())))
                }
                Some(Ok(chunk)) => self.demux.feed(&chunk),
                Some(Err(e)) => return Some(Err(e)),
                None => self.done = true,
            }
        }
    }
}

/// The read side of a hijacked connection.
#[derive(Debug)]
pub struct AttachReader {
    io: ReadHalf<TokioIo<Upgraded>>,
    demux: Demuxer,
    eof: bool,
}

/// The write side (the container's stdin).
#[derive(Debug)]
pub struct AttachWriter {
    io: WriteHalf<TokioIo<Upgraded>>,
    shut: bool,
}

/// A hijacked attach connection: a raw duplex byte pipe to the container's stdio.
#[derive(Debug)]
pub struct AttachStream {
    reader: AttachReader,
    writer: AttachWriter,
}

impl AttachStream {
    pub(crate) fn new(up: Upgraded) -> AttachStream {
        let (r, w) = tokio::io::split(TokioIo::new(up));
        AttachStream {
            reader: AttachReader {
                io: r,
                demux: Demuxer::default(),
                eof: false,
            },
            writer: AttachWriter { io: w, shut: false },
        }
    }

    pub fn split(self) -> (AttachReader, AttachWriter) {
        (self.reader, self.writer)
    }

    pub async fn write_stdin(&mut self, data: &[u8]) -> Result<(), ClientError> {
        self.writer.write_stdin(data).await
    }

    /// Half-closes the connection: the daemon sees EOF on the container's stdin and keeps
    /// streaming output.
    pub async fn shutdown_write(&mut self) -> Result<(), ClientError> {
        self.writer.shutdown_write().await
    }

    pub async fn next_frame(&mut self) -> Option<Result<(StdStream, Vec<u8>), ClientError>> {
        self.reader.next_frame().await
    }

    pub async fn read_raw(&mut self, buf: &mut [u8]) -> Result<usize, ClientError> {
        self.reader.read_raw(buf).await
    }

    /// Every frame until the daemon closes the connection (the container's stdio ended).
    pub async fn collect_frames(self) -> Result<Vec<(StdStream, Vec<u8>)>, ClientError> {
        self.reader.collect_frames().await
    }
}

impl AttachReader {
    /// The next stdcopy frame (for containers without a TTY); `None` at EOF.
    pub async fn next_frame(&mut self) -> Option<Result<(StdStream, Vec<u8>), ClientError>> {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match self.demux.next_frame() {
                Ok(Some(f)) => return Some(Ok(f)),
                Ok(None) => {}
                Err(e) => return Some(Err(ClientError::Stdcopy(e))),
            }
            if self.eof {
                return None;
            }
            match self.io.read(&mut buf).await {
                Ok(0) => self.eof = true,
                Ok(n) => self.demux.feed(&buf[..n]),
                Err(e) => return Some(Err(e.into())),
            }
        }
    }

    /// Raw bytes (for TTY containers); 0 at EOF.
    pub async fn read_raw(&mut self, buf: &mut [u8]) -> Result<usize, ClientError> {
        Ok(self.io.read(buf).await?)
    }

    pub async fn collect_frames(mut self) -> Result<Vec<(StdStream, Vec<u8>)>, ClientError> {
        let mut out = Vec::new();
        while let Some(f) = self.next_frame().await {
            out.push(f?);
        }
        Ok(out)
    }
}

impl AttachWriter {
    pub async fn write_stdin(&mut self, data: &[u8]) -> Result<(), ClientError> {
        self.io.write_all(data).await?;
        self.io.flush().await?;
        Ok(())
    }

    /// Idempotent, so callers can shut down on every path without tracking it.
    pub async fn shutdown_write(&mut self) -> Result<(), ClientError> {
        if !self.shut {
            self.shut = true;
            self.io.shutdown().await?;
        }
        Ok(())
    }
}

/// Concatenates the payloads of one stream, for assertions and simple callers.
pub fn payload_of(frames: &[(StdStream, Vec<u8>)], which: StdStream) -> Vec<u8> {
    frames
        .iter()
        .filter(|(s, _)| *s == which)
        .flat_map(|(_, p)| p.iter().copied())
        .collect()
}
