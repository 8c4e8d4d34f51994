//! zstd layers (`tar+zstd`): every frame of the stream in turn, skippable frames skipped, as
//! `zstd -d` reads a file. ruzstd's `StreamingDecoder` stops after one frame, and writers
//! (`zstd --rsyncable`, zstd:chunked, concatenated files) may cut a layer into many.
//!
//! The frame checksum is not checked (ruzstd's `hash` feature is off): the blob's digest
//! covers the compressed bytes and the diff id the decompressed ones, both checked anyway.

use std::io::{self, BufRead, Read};

use ruzstd::decoding::errors::{FrameDecoderError, ReadFrameHeaderError};
use ruzstd::decoding::{BlockDecodingStrategy, FrameDecoder};

pub(crate) struct ZstdFrames<R> {
    src: R,
    dec: FrameDecoder,
    /// A frame was started and not yet drained.
    in_frame: bool,
}

impl<R: BufRead> ZstdFrames<R> {
    pub(crate) fn new(src: R) -> Self {
        ZstdFrames {
            src,
            dec: FrameDecoder::new(),
            in_frame: false,
        }
    }
}

fn corrupt(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("zstd: {e}"))
}

impl<R: BufRead> Read for ZstdFrames<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if self.in_frame {
                // Decoded bytes within the window stay back until more is decoded or the
                // frame ends.
                while self.dec.can_collect() == 0 && !self.dec.is_finished() {
                    self.dec
                        .decode_blocks(&mut self.src, BlockDecodingStrategy::UptoBlocks(1))
                        .map_err(corrupt)?;
                }
                let n = self.dec.read(buf)?;
                if n > 0 {
                    return Ok(n);
                }
                self.in_frame = false;
            }
            if self.src.fill_buf()?.is_empty() {
                return Ok(0);
            }
            match self.dec.reset(&mut self.src) {
                Ok(()) => self.in_frame = true,
                Err(FrameDecoderError::ReadFrameHeaderError(ReadFrameHeaderError::SkipFrame {
                    length,
                    ..
                })) => {
                    let want = u64::from(length);
                    let skipped = io::copy(&mut (&mut self.src).take(want), &mut io::sink())?;
                    if skipped != want {
                        return Err(corrupt("skippable frame cut short"));
                    }
                }
                Err(e) => return Err(corrupt(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ruzstd::encoding::{compress_to_vec, CompressionLevel};

    fn decode(data: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        // A small buffer, so frame and block boundaries fall inside reads.
        ZstdFrames::new(io::BufReader::with_capacity(7, data)).read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn frames_one_after_another_and_skippable_ones() {
        let a: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let b = b"second frame".to_vec();
        let mut z = compress_to_vec(&a[..], CompressionLevel::Fastest);
        assert_eq!(decode(&z).unwrap(), a);
        // A skippable frame (magic 0x184D2A5?, length, payload), then another frame.
        z.extend_from_slice(&0x184D_2A53u32.to_le_bytes());
        z.extend_from_slice(&5u32.to_le_bytes());
        z.extend_from_slice(b"hello");
        z.extend(compress_to_vec(&b[..], CompressionLevel::Fastest));
        assert_eq!(decode(&z).unwrap(), [a, b].concat());
        assert_eq!(decode(b"").unwrap(), b"");
    }

    /// Made by the zstd 1.5 command line (`zstd -19 --check` of two files, concatenated):
    /// real libzstd output, compressed blocks and content checksums.
    #[test]
    fn reads_what_libzstd_writes() {
        let two_frames: &[u8] = &[
            0x28, 0xb5, 0x2f, 0xfd, 0x64, 0x64, 0x18, 0x85, 0x02, 0x00, 0x32, 0x03, 0x0a, 0x0f,
            0xd0, 0xe7, 0x45, 0xa1, 0x6f, 0x06, 0x60, 0x4c, 0x4a, 0x99, 0x12, 0x75, 0x44, 0x42,
            0x07, 0x67, 0x75, 0x97, 0x67, 0x75, 0x97, 0x67, 0x75, 0x97, 0x67, 0x75, 0x97, 0x67,
            0x55, 0xbf, 0xdd, 0x02, 0x92, 0x20, 0x44, 0x3a, 0xc5, 0x8c, 0x10, 0x28, 0xa8, 0x20,
            0xbe, 0xfe, 0x06, 0xe0, 0xa5, 0x61, 0x0c, 0x11, 0x70, 0x04, 0x88, 0x23, 0x4c, 0xdf,
            0xff, 0xff, 0x7f, 0x03, 0x9a, 0xa7, 0x5c, 0x11, 0x01, 0xa4, 0x20, 0xa0, 0x3c, 0x76,
            0x84, 0xb2, 0x07, 0xc2, 0x4e, 0x01, 0x72, 0xa5, 0x4d, 0x3c, 0x28, 0xb5, 0x2f, 0xfd,
            0x24, 0x06, 0x31, 0x00, 0x00, 0x77, 0x6f, 0x72, 0x6c, 0x64, 0x0a, 0xaa, 0x6e, 0x56,
            0x9f,
        ];
        let first: String = (0..500)
            .map(|i| format!("entry {} of {}\n", i % 7, i % 5))
            .collect();
        let want = [first.as_bytes(), b"world\n"].concat();
        assert_eq!(decode(two_frames).unwrap(), want);
    }

    #[test]
    fn corrupt_streams_fail() {
        let z = compress_to_vec(&[1u8; 10_000][..], CompressionLevel::Fastest);
        let cut = decode(&z[..z.len() - 3]).unwrap_err();
        assert_eq!(cut.kind(), io::ErrorKind::InvalidData, "{cut}");
        let mut trailing = z.clone();
        trailing.extend_from_slice(b"garbage!");
        assert!(decode(&trailing).is_err());
    }
}
