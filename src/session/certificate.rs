//! One DTLS certificate for every session of this process. webrtc-rs makes a key and signs
//! a certificate for each PeerConnection that is given none: time spent between the offer
//! and the answer, on the board most of all. Browsers keep theirs too (per origin).
//! Made again when it nears its end (webrtc-rs gives it two days on 32-bit ARM).

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use rtc::crypto::{SignatureScheme, default_provider};
use rtc::peer_connection::certificate::{CertificateParams, RTCCertificate};

use super::peer::SessionError;

/// Made anew when it has less than this left: longer than any session lasts.
const RENEW_BEFORE: Duration = Duration::from_secs(24 * 60 * 60);

static CURRENT: Mutex<Option<RTCCertificate>> = Mutex::new(None);

/// The process's certificate, made on first use (see [`warm`]) or when near its end.
pub(super) fn dtls_certificate() -> Result<RTCCertificate, SessionError> {
    let mut current = CURRENT.lock().unwrap_or_else(|p| p.into_inner());
    let renew_at = SystemTime::now() + RENEW_BEFORE;
    match current.as_ref() {
        Some(cert) if cert.expires > renew_at => Ok(cert.clone()),
        _ => {
            let cert = generate()?;
            *current = Some(cert.clone());
            Ok(cert)
        }
    }
}

/// Makes the certificate now, so the first viewer does not wait for it.
pub fn warm() {
    if let Err(e) = dtls_certificate() {
        tracing::warn!("{e}; each session will make its own");
    }
}

fn generate() -> Result<RTCCertificate, SessionError> {
    let err = |e: &dyn std::fmt::Display| SessionError::Certificate(e.to_string());
    let provider = default_provider().map_err(|e| err(&e))?;
    let name = format!("campeer-{:016x}", rand::random::<u64>());
    let params = CertificateParams::new(vec![name]).map_err(|e| err(&e))?;
    RTCCertificate::generate(provider.crypto(), SignatureScheme::EcdsaP256Sha256, params)
        .map_err(|e| err(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_share_one_certificate() {
        let a = dtls_certificate().expect("a certificate");
        let b = dtls_certificate().expect("the same one");
        assert_eq!(a, b);
        assert!(a.expires > SystemTime::now() + RENEW_BEFORE);
    }
}
