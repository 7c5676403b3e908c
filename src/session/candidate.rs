//! Which remote candidates a session applies. A candidate is an address the sender picks
//! and campeer then sends packets to, so the room must not choose freely:
//!
//! - ICE-TCP candidates are ignored: webrtc-rs opens a TCP connection for every
//!   `tcptype passive` one (a port scan from the board, and a file descriptor each);
//! - loopback, link-local, unspecified and multicast addresses are refused, unless
//!   campeer's media is itself bound to loopback (the tests, and a relay on the same host);
//! - at most [`MAX_MDNS_NAMES`] `.local` names per session: the ICE agent sends an mDNS
//!   query to the LAN for each; other host names are refused (a browser sends none);
//! - at most `session.max_remote_candidates` per session: a browser gathers a handful.
//!
//! Pure: parsed from the candidate line, no resolution (an mDNS `.local` name passes here
//! and is resolved, or not, by the ICE agent). What is refused is counted, for one log
//! line per session instead of one per candidate.

use std::fmt;
use std::net::IpAddr;

/// `.local` candidates one session applies at most. A browser hides each of its host
/// addresses behind one name, so a handful covers its interfaces.
pub const MAX_MDNS_NAMES: usize = 4;

/// Why a remote candidate is not applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("an ICE-TCP candidate (ignored)")]
    Tcp,
    #[error("a candidate naming {0}, which this host does not send to")]
    Address(IpAddr),
    #[error("a host name that is not an mDNS `.local` name")]
    Name,
    #[error("over the limit of {0} mDNS `.local` candidates per session")]
    TooManyNames(usize),
    #[error("over the limit of {0} remote candidates per session")]
    TooMany(usize),
    #[error("not a candidate line")]
    Malformed,
}

/// What a session's candidate filter refused, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RefusedTally {
    pub tcp: usize,
    pub address: usize,
    pub name: usize,
    pub mdns_over_limit: usize,
    pub over_limit: usize,
    pub malformed: usize,
}

impl RefusedTally {
    pub fn total(&self) -> usize {
        self.tcp
            + self.address
            + self.name
            + self.mdns_over_limit
            + self.over_limit
            + self.malformed
    }

    fn count(&mut self, refused: Refused) {
        *match refused {
            Refused::Tcp => &mut self.tcp,
            Refused::Address(_) => &mut self.address,
            Refused::Name => &mut self.name,
            Refused::TooManyNames(_) => &mut self.mdns_over_limit,
            Refused::TooMany(_) => &mut self.over_limit,
            Refused::Malformed => &mut self.malformed,
        } += 1;
    }
}

impl fmt::Display for RefusedTally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts = [
            (self.tcp, "ICE-TCP"),
            (self.address, "local-only or unroutable address"),
            (self.name, "host name"),
            (self.mdns_over_limit, "mDNS name over the limit"),
            (self.over_limit, "over the limit"),
            (self.malformed, "malformed"),
        ];
        let mut first = true;
        for (n, what) in parts.into_iter().filter(|(n, _)| *n > 0) {
            if !std::mem::take(&mut first) {
                f.write_str(", ")?;
            }
            write!(f, "{n} {what}")?;
        }
        Ok(())
    }
}

/// The remote candidates of one session so far.
#[derive(Debug)]
pub struct RemoteCandidates {
    max: usize,
    accepted: usize,
    mdns_names: usize,
    /// campeer's media is bound to loopback, so loopback peers are the only ones.
    loopback_peers: bool,
    refused: RefusedTally,
}

impl RemoteCandidates {
    /// A session that applies at most `max` candidates (`session.max_remote_candidates`).
    pub fn new(max: usize, loopback_peers: bool) -> Self {
        Self {
            max,
            accepted: 0,
            mdns_names: 0,
            loopback_peers,
            refused: RefusedTally::default(),
        }
    }

    /// Vets `line` (`candidate:…`, as in `RTCIceCandidate.candidate`) and counts it if it
    /// is to be applied, or what refused it.
    pub fn admit(&mut self, line: &str) -> Result<(), Refused> {
        let verdict = self.vet_and_count(line);
        if let Err(refused) = verdict {
            self.refused.count(refused);
        }
        verdict
    }

    /// What was refused so far.
    pub fn refused(&self) -> RefusedTally {
        self.refused
    }

    fn vet_and_count(&mut self, line: &str) -> Result<(), Refused> {
        let address = vet(line, self.loopback_peers)?;
        if self.accepted >= self.max {
            return Err(Refused::TooMany(self.max));
        }
        if address == Address::MdnsName {
            if self.mdns_names >= MAX_MDNS_NAMES {
                return Err(Refused::TooManyNames(MAX_MDNS_NAMES));
            }
            self.mdns_names += 1;
        }
        self.accepted += 1;
        Ok(())
    }
}

/// What a candidate that passed [`vet`] names.
#[derive(Debug, PartialEq, Eq)]
enum Address {
    Ip,
    MdnsName,
}

fn vet(line: &str, loopback_peers: bool) -> Result<Address, Refused> {
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
    // An mDNS name is resolved by the ICE agent, which never resolves to loopback.
    let Ok(ip) = address.parse::<IpAddr>() else {
        return match is_mdns_name(address) {
            true => Ok(Address::MdnsName),
            false => Err(Refused::Name),
        };
    };
    let ip = ip.to_canonical();
    let local_only = ip.is_loopback() || is_link_local(ip);
    if ip.is_unspecified() || ip.is_multicast() || (local_only && !loopback_peers) {
        return Err(Refused::Address(ip));
    }
    Ok(Address::Ip)
}

/// A browser's mDNS name: `<uuid>.local`, one label before the suffix webrtc-rs resolves.
fn is_mdns_name(address: &str) -> bool {
    address
        .strip_suffix(".local")
        .is_some_and(|label| !label.is_empty() && !label.contains('.'))
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

    const MAX: usize = 32;

    fn admit(line: &str) -> Result<(), Refused> {
        RemoteCandidates::new(MAX, false).admit(line)
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
        let mut on_loopback = RemoteCandidates::new(MAX, true);
        assert_eq!(on_loopback.admit(&host("127.0.0.1")), Ok(()));
        assert_eq!(on_loopback.admit(&host("::1")), Ok(()));
        assert!(on_loopback.admit(&host("0.0.0.0")).is_err());
    }

    #[test]
    fn a_session_applies_at_most_its_limit_of_candidates() {
        let mut remote = RemoteCandidates::new(MAX, false);
        for port in 0..MAX {
            let line = format!("candidate:1 1 udp 1 192.0.2.1 {port} typ host");
            assert_eq!(remote.admit(&line), Ok(()));
        }
        assert_eq!(remote.admit(&host("192.0.2.1")), Err(Refused::TooMany(MAX)));
        assert_eq!(remote.refused().over_limit, 1);
    }

    #[test]
    fn a_session_applies_a_few_mdns_names_and_counts_the_rest() {
        let mut remote = RemoteCandidates::new(MAX, false);
        let name = |n: usize| host(&format!("0b9e1a2c-5f4e-4d1a-9d1e-{n:012}.local"));
        for n in 0..MAX_MDNS_NAMES {
            assert_eq!(remote.admit(&name(n)), Ok(()));
        }
        for n in 0..10 {
            assert_eq!(
                remote.admit(&name(100 + n)),
                Err(Refused::TooManyNames(MAX_MDNS_NAMES))
            );
        }
        assert_eq!(
            remote.admit(&host("192.0.2.1")),
            Ok(()),
            "addresses still pass"
        );
        assert_eq!(remote.refused().mdns_over_limit, 10);
        assert_eq!(remote.refused().total(), 10);
    }

    #[test]
    fn host_names_other_than_mdns_ones_are_refused() {
        for address in [
            "example.org",
            "printer.lan",
            "a.b.local",
            ".local",
            "localhost",
        ] {
            assert_eq!(admit(&host(address)), Err(Refused::Name), "{address}");
        }
    }

    #[test]
    fn the_tally_names_each_reason_refused() {
        let mut remote = RemoteCandidates::new(MAX, false);
        let _ = remote.admit("candidate:3 1 tcp 1 192.0.2.1 9 typ host tcptype passive");
        let _ = remote.admit(&host("127.0.0.1"));
        let _ = remote.admit(&host("127.0.0.2"));
        let _ = remote.admit("garbage");
        assert_eq!(remote.refused().total(), 4);
        assert_eq!(
            remote.refused().to_string(),
            "1 ICE-TCP, 2 local-only or unroutable address, 1 malformed"
        );
    }

    #[test]
    fn refused_candidates_do_not_count_toward_the_limit() {
        let mut remote = RemoteCandidates::new(MAX, false);
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
