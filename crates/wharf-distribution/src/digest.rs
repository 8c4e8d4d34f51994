//! Content digests (`algorithm:hex`), validated as go-digest's `Digest.Validate` does, so a
//! reference Docker refuses is refused here with the same words.

use std::fmt;

/// Why a digest string is not a usable digest; the texts are go-digest's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("invalid checksum digest format")]
    InvalidFormat,
    #[error("invalid checksum digest length")]
    InvalidLength,
    #[error("unsupported digest algorithm")]
    Unsupported,
}

/// A validated digest of one of the algorithms Docker accepts (sha256, sha384, sha512).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    text: String,
    colon: usize,
}

impl Digest {
    pub fn parse(s: &str) -> Result<Self, DigestError> {
        let colon = match s.find(':') {
            Some(i) if i > 0 && i + 1 < s.len() => i,
            _ => return Err(DigestError::InvalidFormat),
        };
        let (algorithm, hex) = (&s[..colon], &s[colon + 1..]);
        let bytes = match algorithm {
            "sha256" => 32,
            "sha384" => 48,
            "sha512" => 64,
            // An unknown algorithm is "unsupported" only when the whole string is still
            // digest-shaped in go-digest's looser sense; otherwise it is simply malformed.
            _ if is_any_digest(algorithm, hex) => return Err(DigestError::Unsupported),
            _ => return Err(DigestError::InvalidFormat),
        };
        if hex.len() != bytes * 2 {
            return Err(DigestError::InvalidLength);
        }
        // Upper-case hex is refused: a digest has exactly one spelling.
        if !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(DigestError::InvalidFormat);
        }
        Ok(Digest {
            text: s.to_owned(),
            colon,
        })
    }

    pub fn algorithm(&self) -> &str {
        &self.text[..self.colon]
    }

    pub fn hex(&self) -> &str {
        &self.text[self.colon + 1..]
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// go-digest's shape for any algorithm: `[a-z0-9]+([.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+`.
fn is_any_digest(algorithm: &str, encoded: &str) -> bool {
    algorithm.split(['.', '+', '_', '-']).all(|part| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    }) && !encoded.is_empty()
        && encoded
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'=' | b'_' | b'-'))
}

/// The reference grammar's digest: `[A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*:` then at
/// least 32 hex digits of either case.
pub(crate) fn is_digest_shaped(s: &str) -> bool {
    let Some((algorithm, hex)) = s.split_once(':') else {
        return false;
    };
    hex.len() >= 32
        && hex.bytes().all(|b| b.is_ascii_hexdigit())
        && !algorithm.is_empty()
        && algorithm.split(['-', '_', '+', '.']).all(|part| {
            let mut b = part.bytes();
            b.next().is_some_and(|c| c.is_ascii_alphabetic())
                && b.all(|c| c.is_ascii_alphanumeric())
        })
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX64: &str = "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";

    #[test]
    fn digests_are_validated_like_go_digest() {
        let hex96 = "a".repeat(96);
        let hex128 = "0".repeat(128);
        let cases: Vec<(String, Result<(), DigestError>)> = vec![
            (format!("sha256:{HEX64}"), Ok(())),
            (format!("sha384:{hex96}"), Ok(())),
            (format!("sha512:{hex128}"), Ok(())),
            (
                format!("sha256:{}", &HEX64[1..]),
                Err(DigestError::InvalidLength),
            ),
            (format!("sha512:{HEX64}"), Err(DigestError::InvalidLength)),
            (
                format!("sha256:{}", HEX64.to_uppercase()),
                Err(DigestError::InvalidFormat),
            ),
            (
                format!("sha256:{}g", &HEX64[1..]),
                Err(DigestError::InvalidFormat),
            ),
            (
                format!("md5:{}", &HEX64[..32]),
                Err(DigestError::Unsupported),
            ),
            (format!("sha-3+x.y:{HEX64}"), Err(DigestError::Unsupported)),
            (format!("1sha:{HEX64}"), Err(DigestError::Unsupported)),
            ("md5:a=_-Z".to_owned(), Err(DigestError::Unsupported)),
            (format!("MD5:{HEX64}"), Err(DigestError::InvalidFormat)),
            (format!("sha..x:{HEX64}"), Err(DigestError::InvalidFormat)),
            ("md5:a/b".to_owned(), Err(DigestError::InvalidFormat)),
            (format!(":{HEX64}"), Err(DigestError::InvalidFormat)),
            ("sha256:".to_owned(), Err(DigestError::InvalidFormat)),
            ("sha256".to_owned(), Err(DigestError::InvalidFormat)),
            (String::new(), Err(DigestError::InvalidFormat)),
        ];
        for (input, want) in cases {
            let got = Digest::parse(&input).map(|_| ());
            assert_eq!(got, want, "{input:?}");
        }
    }

    #[test]
    fn parts_and_display() {
        let d = Digest::parse(&format!("sha256:{HEX64}")).unwrap();
        assert_eq!(d.algorithm(), "sha256");
        assert_eq!(d.hex(), HEX64);
        assert_eq!(d.to_string(), format!("sha256:{HEX64}"));
    }
}
