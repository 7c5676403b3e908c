//! Which remote candidates a session applies. A candidate is an address the sender picks
//! and campeer then sends packets to, so the room must not choose freely:
//!
//! - ICE-TCP candidates are ignored: webrtc-rs opens a TCP connection for every
//!   `tcptype passive` one (a port scan from the board, and a file descriptor each);
//! - loopback, link-local, unspecified and multicast addresses are refused, unless
//!   campeer's media is itself bound to loopback (the tests, and a relay on the same host);
//! - at most [`MAX_REMOTE_CANDIDATES`] per session: a browser gathers a handful.
//!
//! Pure: parsed from the candidate line, no resolution (an mDNS `.local` name passes here
//! and is resolved, or not, by the ICE agent).

use std::net::IpAddr;

/// Remote candidates one session applies at most (`session.max_remote_candidates` of
/// issue 14 once the config has a `[session]` table).
pub const MAX_REMOTE_CANDIDATES: usize = 32;

/// Why a remote candidate is not applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("an ICE-TCP candidate (ignored)")]
    Tcp,
    #[error("a candidate naming {0}, which this host does not send to")]
    Address(IpAddr),
    #[error("over the limit of {0} remote candidates per session")]
    TooMany(usize),
    #[error("not a candidate line")]
    Malformed,
}

/// The remote candidates of one session so far.
#[derive(Debug)]
pub struct RemoteCandidates {
    accepted: usize,
    /// campeer's media is bound to loopback, so loopback peers are the only ones.
    loopback_peers: bool,
}

impl RemoteCandidates {
    pub fn new(loopback_peers: bool) -> Self {
        Self {
            accepted: 0,
            loopback_peers,
        }
    }

    /// Vets `line` (`candidate:…`, as in `RTCIceCandidate.candidate`) and counts it if it
    /// is to be applied.
    pub fn admit(&mut self, line: &str) -> Result<(), Refused> {
        vet(line, self.loopback_peers)?;
        if self.accepted >= MAX_REMOTE_CANDIDATES {
            return Err(Refused::TooMany(MAX_REMOTE_CANDIDATES));
        }
        self.accepted += 1;
        Ok(())
    }
}

fn vet(line: &str, loopback_peers: bool) -> Result<(), Refused> {
    // candidate:<foundation> <component> <transport> <priority> <address> <port> typ <type> …
    let mut fields = line
        .strip_prefix("a=")
        .unwrap_or(line)
        .strip_prefix("candidate:")
        .ok_or(Refused::Malformed)?
        .split_ascii_whitespace();
    let transport = fields.nth(2).ok_or(Refused::Malformed)?;
    let address = fields.nth(1).ok_or(Refused::Malformed)?;
    if !transport.eq_ignore_ascii_case("udp") || line.contains(" tcptype ") {
        return Err(Refused::Tcp);
    }
    // A name (mDNS `.local`) is resolved by the ICE agent, which never resolves to loopback.
    let Ok(ip) = address.parse::<IpAddr>() else {
        return Ok(());
    };
    let ip = ip.to_canonical();
    let local_only = ip.is_loopback() || is_link_local(ip);
    if ip.is_unspecified() || ip.is_multicast() || (local_only && !loopback_peers) {
        return Err(Refused::Address(ip));
    }
    Ok(())
}

fn is_link_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => v6.is_unicast_link_local(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(address: &str) -> String {
        format!("candidate:1 1 udp 2122260223 {address} 50000 typ host")
    }

    fn admit(line: &str) -> Result<(), Refused> {
        RemoteCandidates::new(false).admit(line)
    }

    #[test]
    fn ordinary_udp_candidates_are_applied() {
        assert_eq!(admit(&host("192.168.1.20")), Ok(()));
        assert_eq!(admit(&host("2001:db8::1")), Ok(()));
        assert_eq!(
            admit(&host("0b9e1a2c-5f4e-4d1a-9d1e-3b2c1a0f9e8d.local")),
            Ok(())
        );
        let srflx =
            "candidate:2 1 UDP 1686052607 203.0.113.7 61000 typ srflx raddr 10.0.0.2 rport 61000";
        assert_eq!(admit(srflx), Ok(()));
        assert_eq!(admit(&format!("a={}", host("10.0.0.2"))), Ok(()));
    }

    #[test]
    fn ice_tcp_candidates_are_ignored() {
        let passive = "candidate:3 1 tcp 1518280447 192.168.1.20 9 typ host tcptype passive";
        assert_eq!(admit(passive), Err(Refused::Tcp));
        let active = "candidate:3 1 TCP 1518280447 192.168.1.20 9 typ host tcptype active";
        assert_eq!(admit(active), Err(Refused::Tcp));
    }

    #[test]
    fn loopback_and_link_local_are_refused_for_a_host_bound_elsewhere() {
        for address in [
            "127.0.0.1",
            "127.9.9.9",
            "::1",
            "169.254.3.4",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(
                matches!(admit(&host(address)), Err(Refused::Address(_))),
                "{address}"
            );
        }
        for address in ["0.0.0.0", "::", "224.0.0.251", "ff02::fb"] {
            assert!(
                matches!(admit(&host(address)), Err(Refused::Address(_))),
                "{address}"
            );
        }
    }

    #[test]
    fn loopback_is_applied_when_campeer_itself_is_bound_to_loopback() {
        let mut on_loopback = RemoteCandidates::new(true);
        assert_eq!(on_loopback.admit(&host("127.0.0.1")), Ok(()));
        assert_eq!(on_loopback.admit(&host("::1")), Ok(()));
        assert!(on_loopback.admit(&host("0.0.0.0")).is_err());
    }

    #[test]
    fn a_session_applies_at_most_its_limit_of_candidates() {
        let mut remote = RemoteCandidates::new(false);
        for port in 0..MAX_REMOTE_CANDIDATES {
            let line = format!("candidate:1 1 udp 1 192.0.2.1 {port} typ host");
            assert_eq!(remote.admit(&line), Ok(()));
        }
        assert_eq!(
            remote.admit(&host("192.0.2.1")),
            Err(Refused::TooMany(MAX_REMOTE_CANDIDATES))
        );
    }

    #[test]
    fn refused_candidates_do_not_count_toward_the_limit() {
        let mut remote = RemoteCandidates::new(false);
        for _ in 0..100 {
            let _ = remote.admit(&host("127.0.0.1"));
        }
        assert_eq!(remote.admit(&host("192.0.2.1")), Ok(()));
    }

    #[test]
    fn malformed_lines_are_refused_without_panicking() {
        for line in [
            "",
            "candidate:",
            "candidate:1 1",
            "garbage 1 udp 1 1.2.3.4 5 typ host",
        ] {
            assert_eq!(admit(line), Err(Refused::Malformed), "{line:?}");
        }
    }
}
