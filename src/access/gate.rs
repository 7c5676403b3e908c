//! The access decision for one configuration: which offers are answered, which sockets
//! and browser origins the embedded server accepts, and the proof on campeer's answers.

use super::fingerprint::Fingerprint;
use super::origin;
use super::proof::{self, ProofError};
use super::state_dir::{self, NoStateDir};
use super::token::{Token, TokenError};
use crate::config::AccessConfig;

#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error(transparent)]
    StateDir(#[from] NoStateDir),
    #[error("access.token: {0}")]
    Token(#[from] TokenError),
}

/// Why an offer gets no answer (and costs no session).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("offer proof: {0}")]
    Proof(#[from] ProofError),
    #[error("the offer's DTLS fingerprint is not in access.allowed_fingerprints")]
    UnknownFingerprint,
}

#[derive(Debug, Clone)]
pub struct Access {
    token: Token,
    open: bool,
    fingerprints: Vec<Fingerprint>,
    origins: Vec<String>,
    tls: bool,
}

impl Access {
    /// The configured token, or the one kept in (or now made in) the state directory.
    pub fn load(cfg: &AccessConfig) -> Result<Self, AccessError> {
        let token = match &cfg.token {
            Some(secret) => Token::parse(secret.expose())?,
            None => Token::load_or_create(&state_dir::resolve(cfg.state_dir.as_deref())?)?,
        };
        Ok(Self::with_token(token, cfg))
    }

    /// `cfg`'s rules with `token`; entries the config validation refused are skipped.
    pub fn with_token(token: Token, cfg: &AccessConfig) -> Self {
        Self {
            token,
            open: cfg.open,
            fingerprints: cfg
                .allowed_fingerprints
                .iter()
                .filter_map(|f| Fingerprint::parse(f).ok())
                .collect(),
            origins: cfg.allowed_origins.clone(),
            tls: cfg.tls.is_on(),
        }
    }

    pub fn token(&self) -> &Token {
        &self.token
    }

    /// Answer this offer? Listed fingerprints are enforced even when open; the proof
    /// unless open.
    pub fn admit_offer(&self, sdp: &str) -> Result<(), Refusal> {
        if !self.fingerprints.is_empty() {
            let offered = Fingerprint::parse(proof::sole_fingerprint(sdp)?)
                .map_err(|_| Refusal::UnknownFingerprint)?;
            if !self.fingerprints.contains(&offered) {
                return Err(Refusal::UnknownFingerprint);
            }
        }
        if self.open {
            return Ok(());
        }
        Ok(proof::verify(&self.token, sdp)?)
    }

    /// The answer with campeer's proof, for the page to check before applying it; an
    /// answer without ufrag or fingerprint (which webrtc-rs never makes) goes unsigned.
    pub fn sign_answer(&self, sdp: &str) -> String {
        proof::with_proof(&self.token, sdp).unwrap_or_else(|| sdp.to_owned())
    }

    /// The embedded server's Socket.IO connect check: `auth` must be `{"token": "…"}`
    /// with this token.
    pub fn admits_socket(&self, auth: &serde_json::Value) -> bool {
        auth.get("token")
            .and_then(serde_json::Value::as_str)
            .is_some_and(|t| self.token.matches(t))
    }

    /// The embedded server's `Origin` check. A request without `Origin` is not from a
    /// browser page (campeer itself, a relay, a test client) and still needs the token.
    pub fn admits_origin(&self, origin: Option<&str>, host: Option<&str>) -> bool {
        origin.is_none_or(|o| origin::allowed(o, host, self.tls, &self.origins))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    const FP: &str = "sha-256 AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89";

    fn offer() -> String {
        format!(
            "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=ice-ufrag:Fz3k\r\na=fingerprint:{FP}\r\n"
        )
    }

    fn access(cfg: AccessConfig) -> Access {
        let cfg = AccessConfig {
            token: Some(Secret::new("correct-horse-battery-staple")),
            ..cfg
        };
        Access::load(&cfg).unwrap()
    }

    #[test]
    fn closed_by_default_proof_required() {
        let a = access(AccessConfig::default());
        assert_eq!(
            a.admit_offer(&offer()),
            Err(Refusal::Proof(ProofError::NoProof))
        );
        assert_eq!(a.admit_offer(&a.sign_answer(&offer())), Ok(()));
    }

    #[test]
    fn open_answers_without_proof() {
        let a = access(AccessConfig {
            open: true,
            ..Default::default()
        });
        assert_eq!(a.admit_offer(&offer()), Ok(()));
    }

    #[test]
    fn listed_fingerprints_hold_even_when_open() {
        let other = format!("sha-256 {}", ["00"; 32].join(":"));
        let a = access(AccessConfig {
            open: true,
            allowed_fingerprints: vec![other],
            ..Default::default()
        });
        assert_eq!(a.admit_offer(&offer()), Err(Refusal::UnknownFingerprint));
        let a = access(AccessConfig {
            open: true,
            allowed_fingerprints: vec![FP.to_lowercase()],
            ..Default::default()
        });
        assert_eq!(a.admit_offer(&offer()), Ok(()));
    }

    #[test]
    fn sockets_need_the_token_in_auth() {
        let a = access(AccessConfig::default());
        let good = serde_json::json!({ "token": "correct-horse-battery-staple" });
        assert!(a.admits_socket(&good));
        assert!(!a.admits_socket(&serde_json::json!({ "token": "wrong" })));
        assert!(!a.admits_socket(&serde_json::json!("correct-horse-battery-staple")));
        assert!(!a.admits_socket(&serde_json::Value::Null));
    }

    #[test]
    fn browser_origins_must_match_what_is_served() {
        let a = access(AccessConfig::default());
        assert!(a.admits_origin(None, Some("cam:3000")));
        assert!(a.admits_origin(Some("http://cam:3000"), Some("cam:3000")));
        assert!(!a.admits_origin(Some("http://evil.example"), Some("cam:3000")));
    }

    #[test]
    fn a_generated_token_is_used_when_none_is_configured() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = AccessConfig {
            state_dir: Some(dir.path().to_path_buf()),
            ..Default::default()
        };
        let a = Access::load(&cfg).unwrap();
        assert_eq!(a.token(), &Token::load_or_create(dir.path()).unwrap());
    }
}
