//! The proof an offer or answer carries on an external relay, where the room is shared
//! with strangers: `a=x-campeer-auth:HEX`, HEX the lowercase hex HMAC-SHA256 keyed with
//! the token over `<ice-ufrag> <first a=fingerprint value>`. It binds the token to the
//! sender's DTLS certificate, so a proof sniffed from the room is worthless with any
//! other certificate, and an answer without one did not come from campeer.

use ring::hmac;

use super::token::{Token, hex};

/// The SDP attribute carrying the proof.
pub const ATTRIBUTE: &str = "x-campeer-auth";
/// Hex digits in a proof (an HMAC-SHA256 tag).
const PROOF_HEX_LEN: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("the SDP has no a=ice-ufrag")]
    NoUfrag,
    #[error("the SDP has no a=fingerprint")]
    NoFingerprint,
    /// A DTLS stack may accept a certificate matching any listed fingerprint; only the
    /// first is proven, so a second one would let a sniffed proof through.
    #[error("the SDP lists different a=fingerprint values")]
    SeveralFingerprints,
    #[error("the SDP has no a={ATTRIBUTE}")]
    NoProof,
    #[error("a={ATTRIBUTE} is not {PROOF_HEX_LEN} hex digits")]
    Malformed,
    #[error("a={ATTRIBUTE} does not match the token")]
    Mismatch,
}

/// The values of every `a=NAME:` line, in order, without line ends or trailing blanks.
fn attribute_values<'a>(sdp: &'a str, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    sdp.lines().filter_map(move |line| {
        line.strip_prefix("a=")?
            .strip_prefix(name)?
            .strip_prefix(':')
            .map(str::trim_end)
    })
}

/// What the HMAC covers: the first ufrag, one space, the fingerprint, which must be the
/// only one the SDP names.
fn signed_text(sdp: &str) -> Result<String, ProofError> {
    let ufrag = attribute_values(sdp, "ice-ufrag")
        .next()
        .ok_or(ProofError::NoUfrag)?;
    Ok(format!("{ufrag} {}", sole_fingerprint(sdp)?))
}

/// The `a=fingerprint` value of `sdp`, which must name one certificate (repeated per
/// media section is fine).
pub fn sole_fingerprint(sdp: &str) -> Result<&str, ProofError> {
    let mut fingerprints = attribute_values(sdp, "fingerprint");
    let fingerprint = fingerprints.next().ok_or(ProofError::NoFingerprint)?;
    if fingerprints.any(|other| !other.eq_ignore_ascii_case(fingerprint)) {
        return Err(ProofError::SeveralFingerprints);
    }
    Ok(fingerprint)
}

fn key(token: &Token) -> hmac::Key {
    hmac::Key::new(hmac::HMAC_SHA256, token.expose().as_bytes())
}

/// The proof for `sdp` (lowercase hex), or `None` if it lacks a ufrag or a single
/// fingerprint.
pub fn prove(token: &Token, sdp: &str) -> Option<String> {
    let text = signed_text(sdp).ok()?;
    Some(hex(hmac::sign(&key(token), text.as_bytes()).as_ref()))
}

/// Checks the `a=x-campeer-auth` line of `sdp` (the first, if several) in constant time.
pub fn verify(token: &Token, sdp: &str) -> Result<(), ProofError> {
    let text = signed_text(sdp)?;
    let claimed = attribute_values(sdp, ATTRIBUTE)
        .next()
        .ok_or(ProofError::NoProof)?;
    let tag = decode_hex(claimed).ok_or(ProofError::Malformed)?;
    hmac::verify(&key(token), text.as_bytes(), &tag).map_err(|_| ProofError::Mismatch)
}

/// `sdp` with its proof as a session-level line (before the first `m=`), in the SDP's
/// own line ending; `None` if no proof can be made for it.
pub fn with_proof(token: &Token, sdp: &str) -> Option<String> {
    let proof = prove(token, sdp)?;
    let eol = if sdp.contains("\r\n") { "\r\n" } else { "\n" };
    let line = format!("a={ATTRIBUTE}:{proof}{eol}");
    let at = if sdp.starts_with("m=") {
        Some(0)
    } else {
        sdp.find("\nm=").map(|i| i + 1)
    };
    let mut out = String::with_capacity(sdp.len() + line.len() + eol.len());
    match at {
        Some(i) => {
            out.push_str(&sdp[..i]);
            out.push_str(&line);
            out.push_str(&sdp[i..]);
        }
        None => {
            out.push_str(sdp);
            if !sdp.is_empty() && !sdp.ends_with('\n') {
                out.push_str(eol);
            }
            out.push_str(&line);
        }
    }
    Some(out)
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() != PROOF_HEX_LEN || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    text.as_bytes()
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FP: &str = "sha-256 AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89";
    const OTHER_FP: &str = "sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF";

    fn token() -> Token {
        Token::parse("correct-horse-battery-staple").unwrap()
    }

    fn sdp(ufrag: &str, fingerprint: &str) -> String {
        format!(
            "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n\
             m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:{ufrag}\r\n\
             a=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=fingerprint:{fingerprint}\r\na=mid:0\r\n\
             m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=ice-ufrag:{ufrag}\r\na=fingerprint:{fingerprint}\r\na=mid:1\r\n"
        )
    }

    #[test]
    fn proof_matches_an_independent_hmac() {
        // printf '%s' 'Fz3k sha-256 AB:CD:…:89' | openssl dgst -sha256 -hmac 'correct-horse-battery-staple'
        assert_eq!(
            prove(&token(), &sdp("Fz3k", FP)).as_deref(),
            Some("59a006892fd54021ffaeb22643cd8f9c011456b209ed39998d7bea455f3aba2d")
        );
    }

    #[test]
    fn a_signed_sdp_verifies() {
        let signed = with_proof(&token(), &sdp("Fz3k", FP)).unwrap();
        assert_eq!(verify(&token(), &signed), Ok(()));
    }

    #[test]
    fn the_proof_line_is_session_level_in_the_sdps_line_ending() {
        let signed = with_proof(&token(), &sdp("Fz3k", FP)).unwrap();
        let line =
            "a=x-campeer-auth:59a006892fd54021ffaeb22643cd8f9c011456b209ed39998d7bea455f3aba2d\r\n";
        assert!(
            signed.contains(&format!("a=group:BUNDLE 0 1\r\n{line}m=video")),
            "{signed}"
        );
        let unix = with_proof(&token(), &sdp("Fz3k", FP).replace("\r\n", "\n")).unwrap();
        assert!(!unix.contains('\r'));
        assert_eq!(verify(&token(), &unix), Ok(()));
    }

    /// `forged` carrying the proof sniffed from an honest offer (ufrag Fz3k, [`FP`]).
    fn replayed(forged: &str) -> Result<(), ProofError> {
        let sniffed = prove(&token(), &sdp("Fz3k", FP)).unwrap();
        verify(&token(), &format!("{forged}a={ATTRIBUTE}:{sniffed}\r\n"))
    }

    #[test]
    fn a_sniffed_proof_is_worthless_with_another_fingerprint_or_ufrag() {
        assert_eq!(
            replayed(&sdp("Fz3k", FP)),
            Ok(()),
            "the honest offer verifies"
        );
        assert_eq!(replayed(&sdp("Fz3k", OTHER_FP)), Err(ProofError::Mismatch));
        assert_eq!(replayed(&sdp("Zz9q", FP)), Err(ProofError::Mismatch));
        let extra = format!("{}a=fingerprint:{OTHER_FP}\r\n", sdp("Fz3k", FP));
        assert_eq!(replayed(&extra), Err(ProofError::SeveralFingerprints));
    }

    #[test]
    fn another_token_does_not_verify() {
        let signed = with_proof(&token(), &sdp("Fz3k", FP)).unwrap();
        let other = Token::parse("another-token-entirely").unwrap();
        assert_eq!(verify(&other, &signed), Err(ProofError::Mismatch));
    }

    #[test]
    fn missing_or_malformed_parts_are_named() {
        let t = token();
        assert_eq!(verify(&t, &sdp("Fz3k", FP)), Err(ProofError::NoProof));
        assert_eq!(
            verify(&t, "v=0\r\na=fingerprint:x\r\n"),
            Err(ProofError::NoUfrag)
        );
        assert_eq!(
            verify(&t, "v=0\r\na=ice-ufrag:x\r\n"),
            Err(ProofError::NoFingerprint)
        );
        for bad in ["zz", "", &"é".repeat(32), &"g".repeat(64)] {
            let sdp = format!("{}a={ATTRIBUTE}:{bad}\r\n", sdp("Fz3k", FP));
            assert_eq!(verify(&t, &sdp), Err(ProofError::Malformed), "{bad:?}");
        }
        assert_eq!(prove(&t, "garbage"), None);
        assert_eq!(with_proof(&t, ""), None);
    }
}
