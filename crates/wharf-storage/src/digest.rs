//! `sha256:<hex>` digests and OCI chain ids.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

use crate::StorageError;

/// A validated `sha256:<64 lowercase hex>` digest. Other algorithms are refused on purpose:
/// every path and key in Wharf is derived from this string, so there is exactly one spelling.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

const PREFIX: &str = "sha256:";

impl Digest {
    /// The 64 hex characters after `sha256:`.
    pub fn hex(&self) -> &str {
        &self.0[PREFIX.len()..]
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn from_sha256_bytes(b: &[u8; 32]) -> Digest {
        Digest(format!("{PREFIX}{}", hex::encode(b)))
    }

    pub fn sha256_of(data: &[u8]) -> Digest {
        Digest::from_sha256_bytes(&Sha256::digest(data).into())
    }

    /// Parses a bare 64-hex string (as found in file names under `blobs/sha256/`).
    pub fn from_hex(h: &str) -> Result<Digest, StorageError> {
        format!("{PREFIX}{h}").parse()
    }
}

impl FromStr for Digest {
    type Err = StorageError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = s.strip_prefix(PREFIX).is_some_and(|h| {
            h.len() == 64 && h.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
        });
        if ok {
            Ok(Digest(s.to_owned()))
        } else {
            Err(StorageError::InvalidDigest(s.to_owned()))
        }
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.0)
    }
}

impl AsRef<str> for Digest {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// OCI image spec chain id: `ChainID(L0) = DiffID(L0)`,
/// `ChainID(L0..Ln) = sha256(ChainID(L0..Ln-1) + " " + DiffID(Ln))`.
///
/// The chain id of no layers is undefined in the spec; this returns `sha256("")` so the function
/// stays total, and callers that can see an empty list should not ask.
pub fn chain_id(diff_ids: &[Digest]) -> Digest {
    let mut iter = diff_ids.iter();
    let Some(first) = iter.next() else {
        return Digest::sha256_of(b"");
    };
    iter.fold(first.clone(), |acc, d| chain_id_next(Some(&acc), d))
}

/// One step of [`chain_id`]: the chain id of `diff_id` stacked on `parent_chain`.
pub fn chain_id_next(parent_chain: Option<&Digest>, diff_id: &Digest) -> Digest {
    match parent_chain {
        None => diff_id.clone(),
        Some(p) => Digest::sha256_of(format!("{p} {diff_id}").as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parse_and_display() {
        let d: Digest = EMPTY.parse().unwrap();
        assert_eq!(d.to_string(), EMPTY);
        assert_eq!(d.hex(), &EMPTY[7..]);
        assert_eq!(Digest::sha256_of(b""), d);
        assert_eq!(Digest::from_hex(d.hex()).unwrap(), d);
    }

    #[test]
    fn rejects_bad_digests() {
        for bad in [
            "",
            "sha256:",
            "sha512:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855/..",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ] {
            assert!(
                matches!(bad.parse::<Digest>(), Err(StorageError::InvalidDigest(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn serde_roundtrip() {
        let d = Digest::sha256_of(b"x");
        let j = serde_json::to_string(&d).unwrap();
        assert_eq!(j, format!("\"{d}\""));
        assert_eq!(serde_json::from_str::<Digest>(&j).unwrap(), d);
        assert!(serde_json::from_str::<Digest>("\"md5:abc\"").is_err());
    }

    #[test]
    fn chain_id_vectors() {
        // Computed independently with: printf 'sha256:<a> sha256:<b>' | sha256sum
        let a = Digest::sha256_of(b"a");
        let b = Digest::sha256_of(b"b");
        let c = Digest::sha256_of(b"c");
        assert_eq!(chain_id(std::slice::from_ref(&a)), a);
        let ab = Digest::sha256_of(format!("{a} {b}").as_bytes());
        assert_eq!(chain_id(&[a.clone(), b.clone()]), ab);
        let abc = Digest::sha256_of(format!("{ab} {c}").as_bytes());
        assert_eq!(chain_id(&[a, b, c]), abc);
    }

    #[test]
    fn chain_id_known_vector() {
        // Checked with coreutils: printf "<l0> <l1>" | sha256sum.
        let l0: Digest = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
            .parse()
            .unwrap();
        let l1: Digest = EMPTY.parse().unwrap();
        assert_eq!(chain_id(&[l0.clone(), l1]).to_string(), KNOWN_CHAIN);
        assert_eq!(chain_id(std::slice::from_ref(&l0)), l0);
    }

    const KNOWN_CHAIN: &str =
        "sha256:33b3e894f3d840843a86495314bf58ac707860d3553f5535922e180a451dc751";
}
