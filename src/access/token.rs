//! The room's shared secret: configured, or made once from OS randomness and kept in the
//! state directory so that a viewer's bookmarked URL keeps working across restarts and
//! upgrades.

use std::fmt;
use std::path::{Path, PathBuf};

use subtle::ConstantTimeEq;

/// File name of the generated token inside the state directory.
pub const FILE_NAME: &str = "token";
/// Random bytes in a generated token (hex-encoded: 64 characters).
const RANDOM_BYTES: usize = 32;
/// Shortest configured token accepted: 16 characters from the URL-safe set.
pub const MIN_LEN: usize = 16;
/// Longest token accepted: it travels in URL fragments and Socket.IO auth payloads.
pub const MAX_LEN: usize = 256;

/// A token that passed [`Token::parse`]. Its `Debug` and `Display` never show the secret;
/// [`Token::expose`] does, for the few places that must (the viewer URL, HMAC keys).
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{reason}")]
    Invalid { reason: String },
    #[error("token file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("token file {path}: {reason}")]
    BadFile { path: PathBuf, reason: String },
    #[error("token file {path}: no OS randomness to make a token")]
    NoRandomness { path: PathBuf },
}

impl Token {
    /// Accepts `text` if it can travel unescaped in a URL fragment and is long enough not
    /// to be guessed: 16..=256 characters of `A-Z a-z 0-9 - . _ ~`.
    pub fn parse(text: &str) -> Result<Self, TokenError> {
        let invalid = |reason: String| TokenError::Invalid { reason };
        if !(MIN_LEN..=MAX_LEN).contains(&text.len()) {
            return Err(invalid(format!(
                "must be {MIN_LEN}..={MAX_LEN} characters, not {}",
                text.len()
            )));
        }
        // The offending character is not echoed: it is part of a secret.
        if !text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~'))
        {
            return Err(invalid(
                "may only hold A-Z, a-z, 0-9, '-', '.', '_' and '~'".into(),
            ));
        }
        Ok(Self(text.to_owned()))
    }

    /// A fresh token of 32 random bytes, lowercase hex.
    pub fn generate() -> Option<Self> {
        use ring::rand::SecureRandom;
        let mut bytes = [0u8; RANDOM_BYTES];
        ring::rand::SystemRandom::new().fill(&mut bytes).ok()?;
        Some(Self(hex(&bytes)))
    }

    /// The token kept in `dir/token`, made at first start (mode 0600, `dir` 0700).
    pub fn load_or_create(dir: &Path) -> Result<Self, TokenError> {
        let path = dir.join(FILE_NAME);
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::parse(text.trim_end()).map_err(|e| TokenError::BadFile {
                path: path.clone(),
                reason: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Self::create(&path),
            Err(source) => Err(TokenError::Io { path, source }),
        }
    }

    fn create(path: &Path) -> Result<Self, TokenError> {
        let token = Self::generate().ok_or_else(|| TokenError::NoRandomness {
            path: path.to_path_buf(),
        })?;
        super::state_dir::write_private(path, format!("{}\n", token.0).as_bytes()).map_err(
            |source| TokenError::Io {
                path: path.to_path_buf(),
                source,
            },
        )?;
        tracing::info!(file = %path.display(), "access: generated a new token");
        Ok(token)
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `candidate` is this token, in time that does not depend on where they differ.
    pub fn matches(&self, candidate: &str) -> bool {
        self.0.as_bytes().ct_eq(candidate.as_bytes()).into()
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(super::REDACTED)
    }
}

/// Lowercase hex, as the proofs and generated tokens are written.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_token_is_made_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let first = Token::load_or_create(&state).unwrap();
        let again = Token::load_or_create(&state).unwrap();
        assert_eq!(first, again);
        assert_eq!(first.expose().len(), 64);
        assert!(first.expose().bytes().all(|b| b.is_ascii_hexdigit()));
        let file = std::fs::metadata(state.join(FILE_NAME)).unwrap();
        assert_eq!(file.permissions().mode() & 0o777, 0o600);
        let dir_mode = std::fs::metadata(&state).unwrap().permissions().mode();
        assert_eq!(dir_mode & 0o077, 0, "state directory is private");
    }

    #[test]
    fn two_state_directories_get_different_tokens() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        assert_ne!(
            Token::load_or_create(a.path()).unwrap(),
            Token::load_or_create(b.path()).unwrap()
        );
    }

    #[test]
    fn a_damaged_token_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE_NAME), "short\n").unwrap();
        let e = Token::load_or_create(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains(&dir.path().join(FILE_NAME).display().to_string()),
            "{e}"
        );
    }

    #[test]
    fn an_unwritable_state_directory_is_an_error_naming_the_file() {
        let e = Token::load_or_create(Path::new("/proc/campeer-state"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("/proc/campeer-state/token"), "{e}");
    }

    #[test]
    fn the_secret_stays_out_of_debug_and_display() {
        let t = Token::parse("abcdefghijklmnop-secret").unwrap();
        assert!(!format!("{t:?} {t}").contains("secret"));
    }

    #[test]
    fn parse_refuses_short_and_url_unsafe_tokens() {
        assert!(Token::parse("tooshort").is_err());
        assert!(Token::parse("sixteen chars with space").is_err());
        assert!(Token::parse("a#fragment-breaking-token").is_err());
        assert!(Token::parse("ABCdef0123456789-._~").is_ok());
    }

    #[test]
    fn matches_only_the_same_token() {
        let t = Token::parse("0123456789abcdef").unwrap();
        assert!(t.matches("0123456789abcdef"));
        assert!(!t.matches("0123456789abcdeF"));
        assert!(!t.matches("0123456789abcde"));
        assert!(!t.matches(""));
    }
}
