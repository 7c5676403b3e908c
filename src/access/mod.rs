//! Who may watch: the room token ([`token`]), the proof offers and answers carry on
//! external relays ([`proof`]), the offer gate built from `[access]` ([`Access`]), and
//! keeping secrets out of logs and `check-config` ([`redact`]).

pub mod fingerprint;
mod gate;
pub mod origin;
pub mod proof;
pub mod redact;
pub mod state_dir;
pub mod tls;
pub mod token;
pub mod viewer_url;

pub use fingerprint::Fingerprint;
pub use gate::{Access, AccessError, Refusal};
pub use token::Token;

/// What is printed in place of a secret.
pub const REDACTED: &str = "<redacted>";
