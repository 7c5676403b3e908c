//! TURN over TCP and TLS for a WebRTC stack that speaks TURN over UDP only. webrtc-rs
//! 0.21 skips `turns:` and `turn:…?transport=tcp` URLs (its `turn_relayer.rs`), yet a
//! network that lets no UDP out leaves exactly those. So campeer bridges them: each
//! session gets, per such URL, a loopback UDP socket handed to webrtc-rs as
//! `turn:127.0.0.1:PORT?transport=udp` (same credentials); `bridge.rs` carries what
//! arrives there over a TCP or TLS connection to the real server, cut back into datagrams
//! by `framing.rs`. The relayed candidates stay UDP on the server's side, as RFC 8656
//! allows for a client on TCP.
//!
//! Which URLs webrtc-rs reaches itself and which are bridged is [`reach`], also used by
//! the config's validation; [`TurnPlan`] is what the daemon loads once (TLS trust
//! included) and each session opens.

mod bridge;
pub mod framing;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::Arc;

use rtc::ice::url::{ProtoType, SchemeType, Url};
use tokio_util::sync::{CancellationToken, DropGuard};
use tracing::warn;
use webrtc::peer_connection::RTCIceServer;

use crate::config::IceServer;
use crate::signaling::client::trust;

/// A TURN server campeer reaches over a stream on webrtc-rs's behalf. Shown as its URL,
/// which never holds credentials (they are separate fields of the config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamServer {
    pub host: String,
    pub port: u16,
    pub tls: bool,
}

impl fmt::Display for StreamServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match self.tls {
            true => write!(f, "turns:{host}:{}", self.port),
            false => write!(f, "turn:{host}:{}?transport=tcp", self.port),
        }
    }
}

/// How campeer reaches one ICE server URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// webrtc-rs itself: `stun:` and `turn:` over UDP.
    Direct,
    /// Through a bridge: TURN over TCP or TLS.
    Bridged(StreamServer),
}

const STUN_OVER_STREAM: &str = "STUN over TCP or TLS cannot tell the address of campeer's UDP \
     media socket; use a stun: URL over UDP, or a turn:/turns: URL (TCP and TLS are relayed)";

/// How campeer reaches `url`, or why it cannot. STUN must be UDP: its one use to campeer
/// is the server-reflexive address of the UDP socket media leaves from.
pub fn reach(url: &str) -> Result<Reach, String> {
    // As webrtc-rs's STUN gatherer does: a `?transport=udp` on a stun: URL is common.
    let sanitized = match url.split_once('?') {
        Some((stun, "transport=udp")) if url.starts_with("stun:") => stun,
        Some(_) if url.starts_with("stun") => return Err(STUN_OVER_STREAM.into()),
        _ => url,
    };
    let parsed = Url::parse_url(sanitized).map_err(|e| format!("not a STUN or TURN URL: {e}"))?;
    match (parsed.scheme, parsed.proto) {
        (SchemeType::Stun, ProtoType::Udp) | (SchemeType::Turn, ProtoType::Udp) => {
            Ok(Reach::Direct)
        }
        (SchemeType::Turn, ProtoType::Tcp) | (SchemeType::Turns, ProtoType::Tcp) => {
            Ok(Reach::Bridged(StreamServer {
                host: parsed.host,
                port: parsed.port,
                tls: parsed.scheme == SchemeType::Turns,
            }))
        }
        (SchemeType::Turns, _) => Err(
            "TURN over DTLS is not supported; use turns: (TLS over TCP) or turn: (UDP or TCP)"
                .into(),
        ),
        (SchemeType::Stuns, _) | (SchemeType::Stun, _) => Err(STUN_OVER_STREAM.into()),
        _ => Err("not a STUN or TURN URL".into()),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TurnError {
    #[error("webrtc.ice_servers: {url:?}: {reason}")]
    Url { url: String, reason: String },
    #[error(transparent)]
    Trust(#[from] trust::TrustError),
    #[error("webrtc.ice_servers: TLS for {server}: {source}")]
    Tls {
        server: String,
        source: native_tls::Error,
    },
}

/// One URL of an ICE server, as a session hands it to webrtc-rs.
enum PlannedUrl {
    Direct(String),
    Bridged(Arc<bridge::Upstream>),
}

struct PlannedServer {
    urls: Vec<PlannedUrl>,
    username: String,
    credential: String,
}

/// `webrtc.ice_servers`, with the TLS trust of every `turns:` URL loaded: what each
/// session turns into its ICE servers and bridges.
#[derive(Default)]
pub struct TurnPlan {
    servers: Vec<PlannedServer>,
}

impl TurnPlan {
    /// Blocking: reads each server's `ca_file`.
    pub fn load(servers: &[IceServer]) -> Result<Self, TurnError> {
        let servers = servers
            .iter()
            .map(|s| {
                let urls = s
                    .urls
                    .iter()
                    .map(|u| plan_url(u, s.ca_file.as_deref()))
                    .collect::<Result<_, _>>()?;
                Ok(PlannedServer {
                    urls,
                    username: s.username.clone().unwrap_or_default(),
                    credential: s.credential.clone().unwrap_or_default(),
                })
            })
            .collect::<Result<_, TurnError>>()?;
        Ok(Self { servers })
    }

    /// The ICE servers for one session's connection, bridged URLs replaced by loopback
    /// sockets whose bridges live until the returned guard drops or `cancel` fires. A
    /// bridge that cannot open is left out with a warning: ICE goes on with the rest.
    pub async fn open(
        &self,
        bind: IpAddr,
        cancel: &CancellationToken,
    ) -> (Vec<RTCIceServer>, BridgesGuard) {
        let token = cancel.child_token();
        let mut servers = Vec::with_capacity(self.servers.len());
        for planned in &self.servers {
            let mut urls = Vec::with_capacity(planned.urls.len());
            for url in &planned.urls {
                match url {
                    PlannedUrl::Direct(u) => urls.push(u.clone()),
                    PlannedUrl::Bridged(upstream) => {
                        if let Some(u) = open_bridge(upstream, bind, &token).await {
                            urls.push(u);
                        }
                    }
                }
            }
            if !urls.is_empty() {
                servers.push(RTCIceServer {
                    urls,
                    username: planned.username.clone(),
                    credential: planned.credential.clone(),
                });
            }
        }
        (
            servers,
            BridgesGuard {
                _cancel_on_drop: token.drop_guard(),
            },
        )
    }
}

/// Ends a session's bridges, and so their TCP and TLS connections, when dropped.
pub struct BridgesGuard {
    _cancel_on_drop: DropGuard,
}

fn plan_url(url: &str, ca_file: Option<&Path>) -> Result<PlannedUrl, TurnError> {
    let reach = reach(url).map_err(|reason| TurnError::Url {
        url: url.to_owned(),
        reason,
    })?;
    let server = match reach {
        Reach::Direct => return Ok(PlannedUrl::Direct(url.to_owned())),
        Reach::Bridged(server) => server,
    };
    let tls = match server.tls {
        false => None,
        true => {
            let connector = match ca_file {
                Some(path) => trust::connector("webrtc.ice_servers ca_file", path)?,
                None => native_tls::TlsConnector::new().map_err(|source| TurnError::Tls {
                    server: server.to_string(),
                    source,
                })?,
            };
            Some(tokio_native_tls::TlsConnector::from(connector))
        }
    };
    Ok(PlannedUrl::Bridged(Arc::new(bridge::Upstream {
        server,
        tls,
    })))
}

/// Opens one bridge; returns the URL webrtc-rs is to use for it.
async fn open_bridge(
    upstream: &Arc<bridge::Upstream>,
    bind: IpAddr,
    cancel: &CancellationToken,
) -> Option<String> {
    // webrtc-rs pairs a TURN server with the sockets of its address family, and writes
    // an IPv6 server address in a form it cannot resolve: IPv4 loopback only (the
    // config refuses bridged URLs with an IPv6 `webrtc.bind`).
    if bind.is_ipv6() {
        warn!(server = %upstream.server, "TURN over TCP/TLS needs an IPv4 webrtc.bind; left out");
        return None;
    }
    let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    match bridge::open(Arc::clone(upstream), loopback, cancel.clone()).await {
        Ok(local) => Some(format!(
            "turn:{}:{}?transport=udp",
            local.ip(),
            local.port()
        )),
        Err(e) => {
            warn!(server = %upstream.server, "cannot open a loopback socket to bridge TURN: {e}; left out");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bridged(host: &str, port: u16, tls: bool) -> Reach {
        Reach::Bridged(StreamServer {
            host: host.into(),
            port,
            tls,
        })
    }

    #[test]
    fn udp_urls_are_left_to_webrtc_rs() {
        for url in [
            "stun:stun.example.org",
            "stun:stun.example.org:3478?transport=udp",
            "turn:t.example.org",
            "turn:t.example.org:3478?transport=udp",
        ] {
            assert_eq!(reach(url), Ok(Reach::Direct), "{url}");
        }
    }

    #[test]
    fn tcp_and_tls_turn_urls_are_bridged_with_their_default_ports() {
        assert_eq!(
            reach("turn:t.example.org?transport=tcp"),
            Ok(bridged("t.example.org", 3478, false))
        );
        assert_eq!(
            reach("turns:t.example.org"),
            Ok(bridged("t.example.org", 5349, true))
        );
        assert_eq!(
            reach("turns:10.0.0.1:443?transport=tcp"),
            Ok(bridged("10.0.0.1", 443, true))
        );
    }

    #[test]
    fn a_bridged_server_shows_as_its_url() {
        let server = |host: &str, port, tls| StreamServer {
            host: host.into(),
            port,
            tls,
        };
        assert_eq!(
            server("t.example.org", 3478, false).to_string(),
            "turn:t.example.org:3478?transport=tcp"
        );
        assert_eq!(server("::1", 5349, true).to_string(), "turns:[::1]:5349");
    }

    #[test]
    fn stun_over_tcp_or_tls_and_turn_over_dtls_are_refused_with_a_reason() {
        for url in ["stuns:s.example.org", "stun:s.example.org?transport=tcp"] {
            let e = reach(url).unwrap_err();
            assert!(e.contains("UDP media socket"), "{url}: {e}");
        }
        let e = reach("turns:t.example.org?transport=udp").unwrap_err();
        assert!(e.contains("DTLS"), "{e}");
        for url in [
            "http://x",
            "turn:",
            "turn:x?transport=sctp",
            "turn:x?foo=bar",
        ] {
            assert!(reach(url).is_err(), "{url}");
        }
    }
}
