//! The bounds every layer ingest runs under, whatever its source (import today; load, pull,
//! build, commit and cp later): a maximum expanded size, a maximum expansion ratio beyond a
//! size floor, a free-space reserve on the data root's filesystem, and cancellation.
//!
//! [`IngestPolicy`] is the daemon's settings plus how it measures free space (statvfs of the
//! data root, or a fake in tests); it lives as long as the daemon. [`Guard`] is one ingest's
//! view of it: it counts the compressed and expanded bytes as they pass, checks the limits on
//! every read and the free space every [`SPACE_CHECK_EVERY`] bytes, and, when one is crossed,
//! keeps the typed reason and makes the stream fail, so that the tar parser stops and the
//! caller gets the reason back rather than the parser's words about a broken stream.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::{Result, StorageError};

const GIB: u64 = 1 << 30;

/// Default `--max-layer-size`: generous (bigger than any sane layer), but finite.
pub const DEFAULT_MAX_LAYER_SIZE: u64 = 100 * GIB;
/// Default `--max-layer-ratio`: real layers compress 2-10x, text-heavy ones up to ~30x; a
/// gzip of zeros reaches ~1000x.
pub const DEFAULT_MAX_LAYER_RATIO: u64 = 100;
/// The ratio only counts past this much expanded data, so small, very compressible layers
/// (a layer of empty files, a sparse file) are never refused by it.
pub const RATIO_FLOOR: u64 = GIB;
/// How often (in bytes written) the free space is measured: statvfs per write would cost more
/// than the write, and a few MiB is nothing next to the reserve.
pub const SPACE_CHECK_EVERY: u64 = 4 << 20;

/// `--min-free-space`: what must stay free on the data root's filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MinFree {
    /// The smaller of 5 % of the filesystem and 2 GiB.
    Default,
    Bytes(u64),
    /// Percent of the filesystem's size (0-100).
    Percent(u8),
}

impl MinFree {
    /// Bytes to keep free on a filesystem of `total` bytes.
    pub fn reserve(&self, total: u64) -> u64 {
        match *self {
            MinFree::Default => (total / 20).min(2 * GIB),
            MinFree::Bytes(b) => b,
            MinFree::Percent(p) => (total as u128 * u128::from(p) / 100) as u64,
        }
    }

    /// `5%`, or a size as [`parse_size`] reads it (`0` turns the reserve off).
    pub fn parse(s: &str) -> std::result::Result<MinFree, String> {
        if let Some(p) = s.trim().strip_suffix('%') {
            return match p.trim().parse::<u8>() {
                Ok(v) if v <= 100 => Ok(MinFree::Percent(v)),
                _ => Err(format!(
                    "invalid percentage {s:?}: want a whole number from 0% to 100%"
                )),
            };
        }
        parse_size(s).map(MinFree::Bytes)
    }
}

impl fmt::Display for MinFree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MinFree::Default => f.write_str("min(5%, 2GiB)"),
            MinFree::Bytes(b) => f.write_str(&human_bytes(*b)),
            MinFree::Percent(p) => write!(f, "{p}%"),
        }
    }
}

/// A size with binary units, as go-units' `RAMInBytes` (and `docker run -m`) reads it:
/// `512m` = 512 MiB, `100g`, `1.5G`, `2gb`, `4096` (bytes).
pub fn parse_size(s: &str) -> std::result::Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let bad = || format!("invalid size {s:?}: want a number and an optional unit (b, k, m, g, t)");
    let n: f64 = num.parse().map_err(|_| bad())?;
    let unit = unit.trim().to_ascii_lowercase();
    let shift = match unit.trim_end_matches("ib").trim_end_matches('b') {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        "p" => 50,
        _ => return Err(bad()),
    };
    let v = n * (1u64 << shift) as f64;
    if !v.is_finite() || v < 0.0 || v >= u64::MAX as f64 {
        return Err(bad());
    }
    Ok(v as u64)
}

/// `1.5GiB`-style, for messages.
pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < UNITS.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{b}B")
    } else if (v - v.round()).abs() < 0.005 {
        format!("{}{}", v.round() as u64, UNITS[i])
    } else {
        format!("{v:.2}{}", UNITS[i])
    }
}

/// The daemon's ingest limits (`wharfd --max-layer-size`, `--max-layer-ratio`,
/// `--min-free-space`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestLimits {
    /// Maximum expanded (uncompressed tar) bytes of one layer; 0 = no limit.
    pub max_layer_size: u64,
    /// Maximum expanded / compressed ratio once past [`IngestLimits::ratio_floor`]; 0 = off.
    pub max_ratio: u64,
    pub ratio_floor: u64,
    pub min_free: MinFree,
}

impl Default for IngestLimits {
    fn default() -> Self {
        IngestLimits {
            max_layer_size: DEFAULT_MAX_LAYER_SIZE,
            max_ratio: DEFAULT_MAX_LAYER_RATIO,
            ratio_floor: RATIO_FLOOR,
            min_free: MinFree::Default,
        }
    }
}

impl IngestLimits {
    /// No limit at all (tests, tools that ingest trusted data).
    pub fn unlimited() -> Self {
        IngestLimits {
            max_layer_size: 0,
            max_ratio: 0,
            ratio_floor: 0,
            min_free: MinFree::Bytes(0),
        }
    }
}

/// Free and total bytes of a filesystem, for an unprivileged writer (`f_bavail`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Space {
    pub free: u64,
    pub total: u64,
}

/// Measures the data root's free space; injectable so tests need not fill a disk.
pub trait SpaceProbe: Send + Sync {
    fn space(&self) -> io::Result<Space>;
}

/// statvfs of a directory.
#[derive(Debug, Clone)]
pub struct Statvfs(pub PathBuf);

impl SpaceProbe for Statvfs {
    fn space(&self) -> io::Result<Space> {
        let s = nix::sys::statvfs::statvfs(&self.0).map_err(io::Error::from)?;
        let frag = s.fragment_size().max(1) as u64;
        Ok(Space {
            // f_bavail, not f_bfree: the blocks reserved for root are not ours to plan with.
            free: (s.blocks_available() as u64).saturating_mul(frag),
            total: (s.blocks() as u64).saturating_mul(frag),
        })
    }
}

/// Set when the ingest's client went away; checked on every read.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    pub fn new() -> Cancel {
        Cancel::default()
    }
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// The daemon's limits and its free-space probe, shared by every ingest.
#[derive(Clone)]
pub struct IngestPolicy {
    limits: IngestLimits,
    probe: Arc<dyn SpaceProbe>,
}

impl fmt::Debug for IngestPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IngestPolicy")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl IngestPolicy {
    pub fn new(limits: IngestLimits, probe: Arc<dyn SpaceProbe>) -> IngestPolicy {
        IngestPolicy { limits, probe }
    }

    /// The limits, with statvfs of `data_root` as the probe.
    pub fn statvfs(limits: IngestLimits, data_root: impl Into<PathBuf>) -> IngestPolicy {
        IngestPolicy::new(limits, Arc::new(Statvfs(data_root.into())))
    }

    pub fn limits(&self) -> &IngestLimits {
        &self.limits
    }

    /// The reserve in bytes on the data root's filesystem as it is now.
    pub fn reserve_bytes(&self) -> io::Result<u64> {
        Ok(self.limits.min_free.reserve(self.probe.space()?.total))
    }

    /// Starts one ingest: refuses at once if the free space is already below the reserve.
    pub fn guard<'a>(&'a self, cancel: &'a Cancel) -> Result<Guard<'a>> {
        let g = Guard {
            policy: self,
            cancel,
            compressed: Cell::new(0),
            expanded: Cell::new(0),
            written: Cell::new(0),
            next_space_check: Cell::new(0),
            stop: RefCell::new(None),
        };
        g.check_cancel().map_err(|_| g.take_stop_or_cancelled())?;
        g.check_space().map_err(|_| g.take_stop_or_cancelled())?;
        Ok(g)
    }
}

/// One ingest's counters and the reason it was stopped, if it was. Single-threaded: the whole
/// ingest (read, store, decompress, apply) runs on one blocking thread.
pub struct Guard<'a> {
    policy: &'a IngestPolicy,
    cancel: &'a Cancel,
    compressed: Cell<u64>,
    expanded: Cell<u64>,
    written: Cell<u64>,
    next_space_check: Cell<u64>,
    stop: RefCell<Option<StorageError>>,
}

/// What a stopped stream returns to the parser reading it; the caller reports the kept reason.
fn stopped() -> io::Error {
    io::Error::other("layer ingest stopped")
}

impl Guard<'_> {
    /// Records the first reason to stop and returns the error that makes the reader fail.
    pub(crate) fn stop(&self, e: StorageError) -> io::Error {
        let mut s = self.stop.borrow_mut();
        if s.is_none() {
            *s = Some(e);
        }
        stopped()
    }

    pub(crate) fn stopped(&self) -> bool {
        self.stop.borrow().is_some()
    }

    /// The kept reason, if any.
    pub(crate) fn take_stop(&self) -> Option<StorageError> {
        self.stop.borrow_mut().take()
    }

    fn take_stop_or_cancelled(&self) -> StorageError {
        self.take_stop()
            .unwrap_or_else(|| StorageError::Cancelled("the ingest was stopped".into()))
    }

    pub(crate) fn check_cancel(&self) -> io::Result<()> {
        if self.stopped() {
            return Err(stopped());
        }
        if self.cancel.is_cancelled() {
            return Err(self.stop(StorageError::Cancelled("the client went away".into())));
        }
        Ok(())
    }

    /// `n` bytes of the stream as it arrives (compressed, stored as the blob).
    pub(crate) fn compressed(&self, n: u64) -> io::Result<()> {
        self.check_cancel()?;
        self.compressed.set(self.compressed.get() + n);
        self.wrote(n)
    }

    /// `n` bytes of the uncompressed tar.
    pub(crate) fn expanded(&self, n: u64) -> io::Result<()> {
        self.check_cancel()?;
        let total = self.expanded.get() + n;
        self.expanded.set(total);
        let l = &self.policy.limits;
        if l.max_layer_size > 0 && total > l.max_layer_size {
            return Err(self.stop(StorageError::LayerTooLarge {
                limit: l.max_layer_size,
            }));
        }
        let compressed = self.compressed.get().max(1);
        if l.max_ratio > 0 && total > l.ratio_floor && total / compressed >= l.max_ratio {
            return Err(self.stop(StorageError::LayerRatio {
                ratio: l.max_ratio,
                floor: l.ratio_floor,
                compressed,
                expanded: total,
            }));
        }
        self.wrote(n)
    }

    fn wrote(&self, n: u64) -> io::Result<()> {
        let w = self.written.get() + n;
        self.written.set(w);
        if w >= self.next_space_check.get() {
            self.next_space_check.set(w + SPACE_CHECK_EVERY);
            self.check_space()?;
        }
        Ok(())
    }

    fn check_space(&self) -> io::Result<()> {
        let l = &self.policy.limits;
        if l.min_free == MinFree::Bytes(0) {
            return Ok(());
        }
        let space = self.policy.probe.space().map_err(|e| {
            self.stop(StorageError::Io {
                op: "measure the free space of",
                path: PathBuf::from("the data root"),
                source: e,
            })
        })?;
        let reserve = l.min_free.reserve(space.total);
        if space.free < reserve {
            return Err(self.stop(StorageError::LowSpace {
                free: space.free,
                reserve,
                setting: l.min_free,
            }));
        }
        Ok(())
    }

    /// Compressed bytes seen so far.
    pub fn compressed_bytes(&self) -> u64 {
        self.compressed.get()
    }

    /// Uncompressed bytes seen so far.
    pub fn expanded_bytes(&self) -> u64 {
        self.expanded.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_size("100g").unwrap(), 100 * GIB);
        assert_eq!(parse_size("512m").unwrap(), 512 << 20);
        assert_eq!(parse_size("512MiB").unwrap(), 512 << 20);
        assert_eq!(parse_size("2GB").unwrap(), 2 * GIB);
        assert_eq!(parse_size("1.5k").unwrap(), 1536);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("0").unwrap(), 0);
        for bad in ["", "g", "-1g", "12x", "1e9", "99999999999p"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn min_free_parses_and_resolves() {
        assert_eq!(MinFree::parse("5%").unwrap(), MinFree::Percent(5));
        assert_eq!(MinFree::parse("2g").unwrap(), MinFree::Bytes(2 * GIB));
        assert!(MinFree::parse("101%").is_err());
        assert!(MinFree::parse("x%").is_err());
        assert_eq!(MinFree::Percent(10).reserve(1000), 100);
        // The default is the smaller of 5 % and 2 GiB.
        assert_eq!(MinFree::Default.reserve(10 * GIB), GIB / 2);
        assert_eq!(MinFree::Default.reserve(1000 * GIB), 2 * GIB);
    }

    #[test]
    fn human_bytes_reads_well() {
        assert_eq!(human_bytes(100 * GIB), "100GiB");
        assert_eq!(human_bytes(1536 << 20), "1.50GiB");
        assert_eq!(human_bytes(12), "12B");
    }

    struct Fixed(Space);
    impl SpaceProbe for Fixed {
        fn space(&self) -> io::Result<Space> {
            Ok(self.0)
        }
    }

    #[test]
    fn guard_refuses_to_start_below_the_reserve() {
        let p = IngestPolicy::new(
            IngestLimits {
                min_free: MinFree::Bytes(100),
                ..IngestLimits::default()
            },
            Arc::new(Fixed(Space {
                free: 99,
                total: 1000,
            })),
        );
        let c = Cancel::new();
        let err = p.guard(&c).err().unwrap();
        assert!(
            matches!(
                err,
                StorageError::LowSpace {
                    free: 99,
                    reserve: 100,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("--min-free-space"), "{err}");
    }

    #[test]
    fn guard_stops_on_cancel_and_keeps_the_first_reason() {
        let p = IngestPolicy::new(IngestLimits::unlimited(), Arc::new(Statvfs("/".into())));
        let c = Cancel::new();
        let g = p.guard(&c).unwrap();
        g.compressed(10).unwrap();
        c.cancel();
        assert!(g.expanded(10).is_err());
        assert!(g.compressed(10).is_err());
        assert!(matches!(g.take_stop(), Some(StorageError::Cancelled(_))));
    }
}
