//! The embedded server's TLS identity: configured PEM files, or a self-signed
//! certificate made once with rcgen and kept in the state directory (so a phone that
//! accepted it once is not asked again), and the rustls server configuration from it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::fingerprint::Fingerprint;
use crate::config::{AccessConfig, TlsMode};

/// Where `tls = "self-signed"` keeps its certificate and key, inside the state directory.
pub const SELF_SIGNED_CERT: &str = "tls/cert.pem";
pub const SELF_SIGNED_KEY: &str = "tls/key.pem";

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("access.tls: {path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("access.tls: cannot make a self-signed certificate: {0}")]
    Generate(String),
    #[error("access.tls: {0}")]
    Config(String),
}

/// A certificate chain and its key, ready for rustls.
#[derive(Debug)]
pub struct TlsIdentity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl TlsIdentity {
    /// The identity `mode` asks for; `None` when TLS is off. `names` go into a
    /// certificate made now (this host's name, `localhost`, …).
    pub fn load(
        mode: &TlsMode,
        state_dir: &Path,
        names: &[String],
    ) -> Result<Option<Self>, TlsError> {
        match mode {
            TlsMode::Off => Ok(None),
            TlsMode::Files { cert, key } => Self::from_files(cert, key).map(Some),
            TlsMode::SelfSigned => {
                let (cert, key) = (
                    state_dir.join(SELF_SIGNED_CERT),
                    state_dir.join(SELF_SIGNED_KEY),
                );
                if !cert.exists() || !key.exists() {
                    make_self_signed(&cert, &key, names)?;
                }
                Self::from_files(&cert, &key).map(Some)
            }
        }
    }

    /// The identity `[access]` asks for on this host (`host` names a certificate made
    /// now); `None` when TLS is off. Blocking: files, and key generation the first time.
    pub fn for_access(access: &AccessConfig, host: &str) -> anyhow::Result<Option<Self>> {
        if !access.tls.is_on() {
            return Ok(None);
        }
        let dir = super::state_dir::resolve(access.state_dir.as_deref())?;
        Ok(Self::load(&access.tls, &dir, &names_for(host))?)
    }

    fn from_files(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let file_error = |path: &Path, reason: String| TlsError::File {
            path: path.to_path_buf(),
            reason,
        };
        let chain = CertificateDer::pem_file_iter(cert)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| file_error(cert, e.to_string()))?;
        if chain.is_empty() {
            return Err(file_error(cert, "no PEM certificate in it".into()));
        }
        let key_der =
            PrivateKeyDer::from_pem_file(key).map_err(|e| file_error(key, e.to_string()))?;
        Ok(Self {
            chain,
            key: key_der,
        })
    }

    /// SHA-256 of the leaf certificate, as browsers show it and SDP writes it.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::sha256_of(&self.chain[0])
    }

    /// A rustls server configuration (ring provider, safe protocol versions, HTTP/1.1).
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(self.chain.clone(), self.key.clone_key())
        .map_err(|e| TlsError::Config(format!("certificate and key: {e}")))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

fn make_self_signed(cert: &Path, key: &Path, names: &[String]) -> Result<(), TlsError> {
    let made = rcgen::generate_simple_self_signed(names.to_vec())
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    let write = |path: &Path, pem: String| {
        super::state_dir::write_private(path, pem.as_bytes()).map_err(|e| TlsError::File {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
    };
    // The key first: a certificate without its key would be kept and never work.
    write(key, made.signing_key.serialize_pem())?;
    write(cert, made.cert.pem())?;
    tracing::info!(file = %cert.display(), "access: made a self-signed TLS certificate");
    Ok(())
}

/// Names for a certificate made on this machine: its host name, that name under
/// `.local` (mDNS), and `localhost`.
pub fn names_for(hostname: &str) -> Vec<String> {
    let mut names = vec![
        hostname.to_owned(),
        format!("{hostname}.local"),
        "localhost".into(),
    ];
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_needs_no_identity() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            TlsIdentity::load(&TlsMode::Off, dir.path(), &[])
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn a_self_signed_certificate_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let names = names_for("camera");
        let first = TlsIdentity::load(&TlsMode::SelfSigned, dir.path(), &names)
            .unwrap()
            .unwrap();
        let again = TlsIdentity::load(&TlsMode::SelfSigned, dir.path(), &names)
            .unwrap()
            .unwrap();
        assert_eq!(first.fingerprint(), again.fingerprint());
        let shown = first.fingerprint().to_string();
        assert_eq!(Fingerprint::parse(&shown).unwrap(), first.fingerprint());
        first.server_config().unwrap();
        let key = std::fs::metadata(dir.path().join(SELF_SIGNED_KEY)).unwrap();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&key.permissions()) & 0o777,
            0o600
        );
    }

    #[test]
    fn configured_files_that_are_missing_or_not_pem_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("cert.pem");
        std::fs::write(&cert, "not pem").unwrap();
        let mode = TlsMode::Files {
            cert: cert.clone(),
            key: dir.path().join("missing.pem"),
        };
        let e = TlsIdentity::load(&mode, dir.path(), &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("access.tls") && e.contains("cert.pem"), "{e}");
    }

    #[test]
    fn configured_files_are_served() {
        let dir = tempfile::tempdir().unwrap();
        // Make a pair as an operator would, then point the config at it.
        TlsIdentity::load(&TlsMode::SelfSigned, dir.path(), &names_for("cam")).unwrap();
        let mode = TlsMode::Files {
            cert: dir.path().join(SELF_SIGNED_CERT),
            key: dir.path().join(SELF_SIGNED_KEY),
        };
        let id = TlsIdentity::load(&mode, Path::new("/nonexistent"), &[])
            .unwrap()
            .unwrap();
        id.server_config().unwrap();
    }
}
