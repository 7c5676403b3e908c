//! Which certificates an https or wss relay (or a `turns:` server) may present: the
//! system's roots (what native-tls trusts by default), and the PEM certificates of a CA
//! file (`signaling.ca_file`, an ICE server's `ca_file`) for a server with a self-signed
//! certificate or a private CA. Verification is never turned off; a certificate that
//! does not check out fails the connection.

use std::path::{Path, PathBuf};

use native_tls::{Certificate, TlsConnector};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

#[derive(Debug, thiserror::Error)]
#[error("{key} {}: {reason}", path.display())]
pub struct TrustError {
    key: &'static str,
    path: PathBuf,
    reason: String,
}

/// A TLS connector trusting the system's roots plus every certificate in `ca_file`, the
/// file config key `key` names. Blocking (reads the file).
pub fn connector(key: &'static str, ca_file: &Path) -> Result<TlsConnector, TrustError> {
    let error = |reason: String| TrustError {
        key,
        path: ca_file.to_path_buf(),
        reason,
    };
    let certificates = CertificateDer::pem_file_iter(ca_file)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| error(e.to_string()))?;
    if certificates.is_empty() {
        return Err(error("no PEM certificate in it".into()));
    }
    let mut builder = TlsConnector::builder();
    for der in certificates {
        let certificate = Certificate::from_der(&der).map_err(|e| error(e.to_string()))?;
        builder.add_root_certificate(certificate);
    }
    builder.build().map_err(|e| error(e.to_string()))
}

/// Whether a failed connection's error text says the relay's certificate was refused
/// (OpenSSL's words for every verification failure: unknown issuer, expired, wrong
/// name; through reqwest and tungstenite), so the log can say what to do.
pub fn is_certificate_failure(error: &str) -> bool {
    error.contains("certificate verify failed")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_with_certificates_makes_a_connector() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        let cert = rcgen::generate_simple_self_signed(vec!["relay.test".to_owned()]).unwrap();
        let pem = format!("{}{}", cert.cert.pem(), cert.cert.pem());
        std::fs::write(&path, pem).unwrap();
        assert!(connector("signaling.ca_file", &path).is_ok());
    }

    #[test]
    fn a_missing_or_empty_ca_file_is_an_error_naming_the_key_and_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let e = connector("signaling.ca_file", &missing)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("signaling.ca_file") && e.contains("missing.pem"),
            "{e}"
        );
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = connector("signaling.ca_file", &empty)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("empty.pem") && e.contains("no PEM certificate"),
            "{e}"
        );
    }
}
