//! Resends campeer's last DTLS handshake flight when the viewer repeats its own: RFC 6347
//! 4.2.4's "a retransmitted flight from the peer means ours was lost", which rtc-dtls
//! 0.21.1 misses. While it waits for the viewer's next flight, any handshake record it
//! receives clears its own retransmit timer (rtc-dtls-0.21.1/src/handshaker.rs:195) and a
//! repeated flight parses as "not complete yet" (flight5.rs:55, flight4.rs:77), so it
//! waits with no timer at all: if its flight was lost and the viewer's timer fired first,
//! the handshake hangs until campeer's handshake timeout. Both DTLS roles have this, so
//! answering `a=setup:passive` would only move it.
//!
//! Here, at the socket: campeer's handshake datagrams to the viewer are kept as its
//! current flight; a handshake datagram from the viewer whose message sequence numbers
//! were all seen before is a repeat, and the kept flight goes out again, byte for byte
//! (records the viewer did get are dropped by its replay window, the lost ones fill the
//! gap). DTLS inside TURN is not seen here, and is left to rtc-dtls.

use std::net::SocketAddr;

/// DTLS record content types (RFC 6347 4.1).
const CHANGE_CIPHER_SPEC: u8 = 20;
const HANDSHAKE: u8 = 22;
const RECORD_HEADER: usize = 13;
/// A handshake message's header: type, length, message_seq, fragment offset and length.
const HANDSHAKE_HEADER: usize = 12;
/// More datagrams than any flight of campeer's: bounds what a socket keeps.
const MAX_FLIGHT_DATAGRAMS: usize = 16;

/// One socket's view of its DTLS handshake.
#[derive(Debug, Default)]
pub(super) struct FlightRepeat {
    /// Where campeer's current flight went, and its datagrams.
    peer: Option<SocketAddr>,
    flight: Vec<Vec<u8>>,
    /// The viewer sent a new flight since campeer's last one: the next handshake datagram
    /// campeer sends starts its next flight, and until then there is none to repeat.
    answered: bool,
    /// The highest handshake message sequence number the viewer has sent.
    highest_seen: Option<u16>,
}

impl FlightRepeat {
    /// A datagram campeer sends.
    pub(super) fn sent(&mut self, to: SocketAddr, datagram: &[u8]) {
        if !carries_handshake(datagram) {
            return;
        }
        if self.answered || self.peer != Some(to) {
            self.flight.clear();
            self.answered = false;
            self.peer = Some(to);
        }
        if self.flight.len() < MAX_FLIGHT_DATAGRAMS {
            self.flight.push(datagram.to_vec());
        }
    }

    /// A datagram campeer received; returns the flight to send again when the viewer
    /// repeated its own.
    pub(super) fn received(&mut self, from: SocketAddr, datagram: &[u8]) -> Option<&[Vec<u8>]> {
        if self.peer != Some(from) {
            return None;
        }
        let seq = highest_message_seq(datagram)?;
        if self.highest_seen.is_some_and(|h| seq <= h) {
            return (!self.answered && !self.flight.is_empty()).then_some(&self.flight[..]);
        }
        self.highest_seen = Some(seq);
        self.answered = true;
        None
    }
}

/// The DTLS records of a datagram: (content type, epoch, fragment).
fn records(mut datagram: &[u8]) -> impl Iterator<Item = (u8, u16, &[u8])> {
    std::iter::from_fn(move || {
        let header = datagram.get(..RECORD_HEADER)?;
        let (kind, epoch) = (header[0], u16::from_be_bytes([header[3], header[4]]));
        let len = usize::from(u16::from_be_bytes([header[11], header[12]]));
        let body = datagram.get(RECORD_HEADER..RECORD_HEADER + len)?;
        datagram = &datagram[RECORD_HEADER + len..];
        Some((kind, epoch, body))
    })
}

/// Whether a datagram is DTLS (RFC 7983: first byte 20..=63), not STUN, RTP or RTCP.
pub(super) fn is_dtls(datagram: &[u8]) -> bool {
    matches!(datagram.first(), Some(20..=63))
}

/// Whether a datagram is DTLS carrying handshake records.
fn carries_handshake(datagram: &[u8]) -> bool {
    is_dtls(datagram)
        && records(datagram).any(|(kind, _, _)| kind == HANDSHAKE || kind == CHANGE_CIPHER_SPEC)
}

/// The highest message_seq among a datagram's plaintext (epoch 0) handshake messages.
fn highest_message_seq(datagram: &[u8]) -> Option<u16> {
    if !is_dtls(datagram) {
        return None;
    }
    records(datagram)
        .filter(|(kind, epoch, _)| *kind == HANDSHAKE && *epoch == 0)
        .filter_map(|(_, _, body)| {
            let header = body.get(..HANDSHAKE_HEADER)?;
            Some(u16::from_be_bytes([header[4], header[5]]))
        })
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    /// One record of `kind` in `epoch`; a handshake one carries message `seq`.
    fn record(kind: u8, epoch: u16, seq: u16) -> Vec<u8> {
        let mut body = vec![1, 0, 0, 0];
        body.extend_from_slice(&seq.to_be_bytes());
        body.extend_from_slice(&[0; 6]);
        let mut r = vec![kind, 0xfe, 0xfd];
        r.extend_from_slice(&epoch.to_be_bytes());
        r.extend_from_slice(&[0; 6]);
        r.extend_from_slice(&(body.len() as u16).to_be_bytes());
        r.extend_from_slice(&body);
        r
    }

    #[test]
    fn a_repeated_viewer_flight_brings_campeers_last_flight_again() {
        let (viewer, mut f) = (addr(1), FlightRepeat::default());
        f.sent(viewer, &record(HANDSHAKE, 0, 0)); // ClientHello
        assert!(f.received(viewer, &record(HANDSHAKE, 0, 0)).is_none()); // ServerHello...
        let mut flight5 = record(HANDSHAKE, 0, 1);
        flight5.extend(record(CHANGE_CIPHER_SPEC, 0, 0));
        f.sent(viewer, &flight5);
        f.sent(viewer, &record(HANDSHAKE, 1, 5));
        let again = f
            .received(viewer, &record(HANDSHAKE, 0, 0))
            .expect("a repeat");
        assert_eq!(again, [flight5, record(HANDSHAKE, 1, 5)]);
    }

    #[test]
    fn a_new_viewer_flight_brings_nothing_again() {
        let (viewer, mut f) = (addr(1), FlightRepeat::default());
        f.sent(viewer, &record(HANDSHAKE, 0, 0));
        assert!(f.received(viewer, &record(HANDSHAKE, 0, 0)).is_none());
        // Repeated before campeer answered: nothing of campeer's is outstanding.
        assert!(f.received(viewer, &record(HANDSHAKE, 0, 0)).is_none());
        f.sent(viewer, &record(HANDSHAKE, 0, 1));
        assert!(f.received(viewer, &record(HANDSHAKE, 0, 1)).is_none());
    }

    #[test]
    fn media_stun_and_strangers_are_ignored() {
        let (viewer, mut f) = (addr(1), FlightRepeat::default());
        f.sent(viewer, &record(HANDSHAKE, 0, 0));
        assert!(f.received(viewer, &record(HANDSHAKE, 0, 3)).is_none());
        f.sent(viewer, &[0x80, 96, 0, 1]); // RTP
        f.sent(viewer, &record(HANDSHAKE, 0, 1));
        assert!(f.received(addr(2), &record(HANDSHAKE, 0, 3)).is_none());
        assert!(f.received(viewer, &[0, 1, 0, 0]).is_none()); // STUN
        assert!(f.received(viewer, &record(HANDSHAKE, 0, 3)).is_some());
        assert!(f.received(viewer, &record(HANDSHAKE, 0, 2)[..20]).is_none()); // cut short
    }
}
