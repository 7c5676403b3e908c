//! DTLS certificate fingerprints as SDP writes them (`sha-256 AB:CD:…`, RFC 8122),
//! normalized so that a listed one compares equal to what a browser sends.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fingerprint(String);

impl Fingerprint {
    /// `text` as `<hash> <HEX:HEX:…>` with as many bytes as the hash makes.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (hash, hex) = text
            .trim()
            .split_once(' ')
            .ok_or("expected `<hash> <HEX:HEX:…>`, e.g. `sha-256 AB:CD:…`")?;
        let hash = hash.to_ascii_lowercase();
        let bytes = match hash.as_str() {
            "sha-1" => 20,
            "sha-224" => 28,
            "sha-256" => 32,
            "sha-384" => 48,
            "sha-512" => 64,
            _ => return Err(format!("unknown hash {hash:?}")),
        };
        let pairs: Vec<&str> = hex.trim().split(':').collect();
        if pairs.len() != bytes
            || !pairs
                .iter()
                .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(format!("{hash} takes {bytes} colon-separated hex bytes"));
        }
        Ok(Self(format!("{hash} {}", hex.trim().to_ascii_uppercase())))
    }

    /// The `sha-256` fingerprint of a DER certificate.
    pub fn sha256_of(der: &[u8]) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, der);
        let hex: Vec<String> = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
        Self(format!("sha-256 {}", hex.join(":")))
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_does_not_matter() {
        let upper = format!("SHA-256 {}", ["AB"; 32].join(":"));
        let lower = format!("sha-256 {}", ["ab"; 32].join(":"));
        assert_eq!(Fingerprint::parse(&upper), Fingerprint::parse(&lower));
        assert!(Fingerprint::parse(&upper).is_ok());
    }

    #[test]
    fn wrong_lengths_and_hashes_are_refused() {
        assert!(Fingerprint::parse(&format!("sha-256 {}", ["AB"; 31].join(":"))).is_err());
        assert!(Fingerprint::parse(&format!("md5 {}", ["AB"; 16].join(":"))).is_err());
        assert!(Fingerprint::parse("AB:CD").is_err());
        assert!(Fingerprint::parse(&format!("sha-1 {}", ["ZZ"; 20].join(":"))).is_err());
    }
}
