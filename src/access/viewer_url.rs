//! The URL a viewer opens, token in the fragment (which browsers never send to a server,
//! so it stays out of request lines and access logs).

use std::fmt;

use crate::config::Config;

use super::token::Token;

/// A viewer URL. `Display` (for logs) shows the token as `<redacted>`;
/// [`ViewerUrl::expose`] is the whole URL, for `campeer url` and its QR code.
#[derive(Debug, Clone)]
pub struct ViewerUrl {
    base: String,
    token: Token,
}

impl ViewerUrl {
    pub fn expose(&self) -> String {
        format!("{}#token={}", self.base, self.token.expose())
    }

    /// The whole URL as a QR code of Unicode half blocks, for a phone to scan off a
    /// terminal; `None` if it is too long for a QR code.
    pub fn qr_code(&self) -> Option<String> {
        use qrcode::render::unicode::Dense1x2;
        let code = qrcode::QrCode::new(self.expose().as_bytes()).ok()?;
        Some(
            code.render::<Dense1x2>()
                .dark_color(Dense1x2::Light)
                .light_color(Dense1x2::Dark)
                .quiet_zone(true)
                .build(),
        )
    }
}

impl fmt::Display for ViewerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#token={}", self.base, super::REDACTED)
    }
}

/// `http(s)://HOST:PORT/#token=…` for the embedded server (HOST is `hostname` when it
/// listens on every address, else the address it listens on; https when `access.tls` is
/// on), or the external relay's URL without userinfo, with the same fragment.
pub fn viewer_url(cfg: &Config, token: &Token, hostname: &str) -> ViewerUrl {
    let base = match &cfg.signaling.url {
        Some(relay) => match url::Url::parse(relay) {
            Ok(mut u) => {
                let _ = u.set_username("");
                let _ = u.set_password(None);
                u.set_fragment(None);
                u.to_string()
            }
            Err(_) => relay.clone(),
        },
        None => {
            let scheme = if cfg.access.tls.is_on() {
                "https"
            } else {
                "http"
            };
            let listen = cfg.signaling.listen;
            if listen.ip().is_unspecified() {
                format!("{scheme}://{hostname}:{}/", listen.port())
            } else {
                format!("{scheme}://{listen}/")
            }
        }
    };
    ViewerUrl {
        base,
        token: token.clone(),
    }
}

/// This machine's host name, as `gethostname(2)` reports it.
pub fn hostname() -> Option<String> {
    let name = nix::unistd::gethostname().ok()?.into_string().ok()?;
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TlsMode;

    fn token() -> Token {
        Token::parse("0123456789abcdef0123").unwrap()
    }

    fn url_for(edit: impl FnOnce(&mut Config)) -> String {
        let mut cfg = Config::default();
        edit(&mut cfg);
        viewer_url(&cfg, &token(), "camera").expose()
    }

    #[test]
    fn embedded_server_url_names_this_host_and_carries_the_token_in_the_fragment() {
        assert_eq!(
            url_for(|_| {}),
            "http://camera:3000/#token=0123456789abcdef0123"
        );
    }

    #[test]
    fn tls_makes_it_https_and_a_specific_address_replaces_the_host_name() {
        let url = url_for(|cfg| {
            cfg.access.tls = TlsMode::SelfSigned;
            cfg.signaling.listen = "[::1]:8443".parse().unwrap();
        });
        assert_eq!(url, "https://[::1]:8443/#token=0123456789abcdef0123");
    }

    #[test]
    fn an_external_relay_url_loses_its_credentials() {
        let url =
            url_for(|cfg| cfg.signaling.url = Some("https://cam:pw@relay.example.org/".into()));
        assert_eq!(url, "https://relay.example.org/#token=0123456789abcdef0123");
    }

    #[test]
    fn logs_see_the_url_without_the_token() {
        let url = viewer_url(&Config::default(), &token(), "camera");
        assert_eq!(url.to_string(), "http://camera:3000/#token=<redacted>");
        assert!(!format!("{url:?}").contains("0123456789abcdef0123"));
    }

    #[test]
    fn the_qr_code_is_drawn_in_half_blocks() {
        let qr = viewer_url(&Config::default(), &token(), "camera")
            .qr_code()
            .unwrap();
        assert!(qr.lines().count() > 10 && qr.contains('▀'), "{qr}");
    }

    #[test]
    fn this_machine_has_a_host_name() {
        assert!(hostname().is_some_and(|h| !h.contains('\0')));
    }
}
