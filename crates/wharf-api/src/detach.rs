//! Detach key sequences (`--detach-keys`, `detachKeys=`, `DetachKeys`), in Docker's syntax:
//! comma-separated keys, each a single character or `ctrl-<c>` with `<c>` in `a-z @ [ \ ] ^ _`.

/// Docker's default: ctrl-p, ctrl-q.
pub const DEFAULT_DETACH_KEYS: &[u8] = &[16, 17];

/// Parses a detach-key spec; the error text is Docker's.
pub fn parse_detach_keys(spec: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for key in spec.split(',') {
        let lower = key.to_ascii_lowercase();
        if let Some(c) = lower.strip_prefix("ctrl-") {
            let b = match c.as_bytes() {
                [c @ b'a'..=b'z'] => c - b'a' + 1,
                [b'@'] => 0,
                [c @ (b'[' | b'\\' | b']' | b'^' | b'_')] => c - b'[' + 27,
                _ => return Err(format!("Unknown character: '{key}'")),
            };
            out.push(b);
        } else if key.len() == 1 {
            out.push(key.as_bytes()[0]);
        } else {
            return Err(format!("Unknown character: '{key}'"));
        }
    }
    Ok(out)
}

/// Finds a detach sequence in a byte stream that arrives in pieces, holding back a partial
/// match until it is either completed or broken (then the held bytes are passed on).
#[derive(Debug, Clone)]
pub struct DetachScanner {
    keys: Vec<u8>,
    matched: usize,
}

/// What one piece of input turned into.
#[derive(Debug, PartialEq, Eq)]
pub enum Scanned {
    /// Bytes to forward (possibly empty while a match is pending).
    Forward(Vec<u8>),
    /// The sequence was seen; these bytes preceded it and still go through.
    Detach(Vec<u8>),
}

impl DetachScanner {
    pub fn new(keys: Vec<u8>) -> DetachScanner {
        DetachScanner { keys, matched: 0 }
    }

    pub fn feed(&mut self, input: &[u8]) -> Scanned {
        let mut out = Vec::with_capacity(input.len());
        if self.keys.is_empty() {
            out.extend_from_slice(input);
            return Scanned::Forward(out);
        }
        for &b in input {
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    self.matched = 0;
                    return Scanned::Detach(out);
                }
                continue;
            }
            // A broken partial match: what was held back is ordinary input after all.
            out.extend_from_slice(&self.keys[..self.matched]);
            self.matched = 0;
            if b == self.keys[0] {
                self.matched = 1;
                if self.keys.len() == 1 {
                    self.matched = 0;
                    return Scanned::Detach(out);
                }
            } else {
                out.push(b);
            }
        }
        Scanned::Forward(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_syntax() {
        assert_eq!(
            parse_detach_keys("ctrl-p,ctrl-q").unwrap(),
            DEFAULT_DETACH_KEYS
        );
        assert_eq!(parse_detach_keys("ctrl-a,x").unwrap(), vec![1, b'x']);
        assert_eq!(
            parse_detach_keys("ctrl-@,ctrl-[,ctrl-_").unwrap(),
            vec![0, 27, 31]
        );
        assert_eq!(parse_detach_keys("CTRL-Z").unwrap(), vec![26]);
        assert_eq!(
            parse_detach_keys("ctrl-1").unwrap_err(),
            "Unknown character: 'ctrl-1'"
        );
        assert!(parse_detach_keys("abc").is_err());
        assert!(parse_detach_keys("").is_err());
    }

    #[test]
    fn scanner_holds_and_releases() {
        let mut s = DetachScanner::new(DEFAULT_DETACH_KEYS.to_vec());
        assert_eq!(s.feed(b"ab"), Scanned::Forward(b"ab".to_vec()));
        assert_eq!(s.feed(&[16]), Scanned::Forward(vec![]));
        assert_eq!(s.feed(b"x"), Scanned::Forward(vec![16, b'x']));
        assert_eq!(s.feed(&[b'y', 16]), Scanned::Forward(vec![b'y']));
        assert_eq!(s.feed(&[16]), Scanned::Forward(vec![16]));
        assert_eq!(s.feed(&[17, b'z']), Scanned::Detach(vec![]));
        let mut s = DetachScanner::new(vec![b'q']);
        assert_eq!(s.feed(b"abq"), Scanned::Detach(b"ab".to_vec()));
    }
}
