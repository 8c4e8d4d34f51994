//! stdcopy framing for non-TTY attach, exec and logs streams:
//! `[stream, 0, 0, 0, len_be32]` followed by `len` bytes of payload.

/// Which standard stream a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StdStream {
    Stdin = 0,
    Stdout = 1,
    Stderr = 2,
}

impl StdStream {
    pub fn from_byte(b: u8) -> Option<StdStream> {
        match b {
            0 => Some(StdStream::Stdin),
            1 => Some(StdStream::Stdout),
            2 => Some(StdStream::Stderr),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            StdStream::Stdin => "stdin",
            StdStream::Stdout => "stdout",
            StdStream::Stderr => "stderr",
        }
    }
}

pub const HEADER_LEN: usize = 8;

/// One frame, header and payload.
pub fn encode_frame(stream: StdStream, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.push(stream as u8);
    out.extend_from_slice(&[0, 0, 0]);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Incremental decoder: feed bytes, take whole frames.
#[derive(Debug, Default)]
pub struct Demuxer {
    buf: Vec<u8>,
}

impl Demuxer {
    pub fn feed(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next whole frame, if one is buffered. An unknown stream byte is an error.
    pub fn next_frame(&mut self) -> Result<Option<(StdStream, Vec<u8>)>, String> {
        if self.buf.len() < HEADER_LEN {
            return Ok(None);
        }
        let stream = StdStream::from_byte(self.buf[0])
            .ok_or_else(|| format!("unrecognized stdcopy stream byte {}", self.buf[0]))?;
        let len = u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]]) as usize;
        if self.buf.len() < HEADER_LEN + len {
            return Ok(None);
        }
        let payload = self.buf[HEADER_LEN..HEADER_LEN + len].to_vec();
        self.buf.drain(..HEADER_LEN + len);
        Ok(Some((stream, payload)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_in_pieces() {
        let mut all = encode_frame(StdStream::Stdout, b"hi\n");
        assert_eq!(&all[..8], &[1, 0, 0, 0, 0, 0, 0, 3]);
        all.extend(encode_frame(StdStream::Stderr, b"err"));
        let mut d = Demuxer::default();
        let mut got = Vec::new();
        for b in all {
            d.feed(&[b]);
            while let Some(f) = d.next_frame().unwrap() {
                got.push(f);
            }
        }
        assert_eq!(
            got,
            vec![
                (StdStream::Stdout, b"hi\n".to_vec()),
                (StdStream::Stderr, b"err".to_vec())
            ]
        );
    }
}
