//! How often one packet is resent. A viewer NACKs a packet again for as long as it has not
//! seen it, and a webrtc-rs 0.21 viewer never sees one repaired by RTX: its NACK
//! generator (rtc-interceptor `nack/generator.rs`, `handle_read`) logs arrivals by the
//! SSRC on the wire, the RTX SSRC, and RTX is unwrapped only further in (rtc
//! `peer_connection/handler/endpoint.rs`, `handle_rtp_message`). So it NACKs every
//! repaired packet every 100 ms until 512 packets later; each NACK answered was another
//! copy, and on a 300 kbit/s link those copies filled the pacer's queue, which then
//! refused the new frames (2.7 fps of 30).
//!
//! [`ResendGate`] sits wire-ward of the NACK responder and passes a packet's NACK on at
//! most once per [`RESEND_GAP`] and [`MAX_RESENDS`] times in all, as libwebrtc's sender
//! resends a packet at most once per round trip.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use rtc::interceptor::{Packet, TaggedPacket};
use rtc::rtcp::transport_feedbacks::transport_layer_nack::{
    TransportLayerNack, nack_pairs_from_sequence_numbers,
};

use super::read_tap::ReadObserver;

/// Where in the chain it sits: between the pacer (3 000) and the NACK responder (4 000),
/// so it edits the NACKs before the responder reads them.
pub(super) const SLOT: usize = 3_500;

/// A packet is resent again only this long after its last resend: about a round trip on
/// the links campeer serves, and what a webrtc-rs viewer waits between its NACKs.
const RESEND_GAP: Duration = Duration::from_millis(100);
/// Resends of one packet in all. With 5 % loss, three lost copies in a row are one lost
/// packet in 8 000; the viewer then asks for a keyframe.
const MAX_RESENDS: u8 = 3;
/// Packets remembered: seconds of video, more than the responder's buffer holds.
const REMEMBERED: usize = 2048;

/// One media packet: its SSRC and sequence number.
type PacketId = (u32, u16);

struct Resent {
    last: Instant,
    times: u8,
}

/// Gates NACKs on their way to the responder; run in a [`ReadTap`](super::read_tap::ReadTap).
#[derive(Default)]
pub(super) struct ResendGate {
    resent: HashMap<PacketId, Resent>,
    /// `resent`'s keys, oldest first, to forget the oldest.
    order: VecDeque<PacketId>,
}

impl ResendGate {
    /// Whether `packet` may be resent at `now`; if so, counts the resend.
    fn admit(&mut self, packet: PacketId, now: Instant) -> bool {
        match self.resent.get_mut(&packet) {
            Some(r) if r.times >= MAX_RESENDS || now < r.last + RESEND_GAP => false,
            Some(r) => {
                r.last = now;
                r.times += 1;
                true
            }
            None => {
                self.resent.insert(
                    packet,
                    Resent {
                        last: now,
                        times: 1,
                    },
                );
                self.order.push_back(packet);
                if self.order.len() > REMEMBERED
                    && let Some(old) = self.order.pop_front()
                {
                    self.resent.remove(&old);
                }
                true
            }
        }
    }

    /// `nack` less the packets not to resend now; None if that leaves none.
    fn gate(&mut self, nack: &TransportLayerNack, now: Instant) -> Option<TransportLayerNack> {
        let admitted: Vec<u16> = nack
            .nacks
            .iter()
            .flat_map(|pair| pair.packet_list())
            .filter(|&seq| self.admit((nack.media_ssrc, seq), now))
            .collect();
        (!admitted.is_empty()).then(|| TransportLayerNack {
            nacks: nack_pairs_from_sequence_numbers(&admitted),
            ..nack.clone()
        })
    }
}

impl ReadObserver for ResendGate {
    /// Takes out of each NACK what is not to be resent now. An RTCP message left empty
    /// goes on as one: webrtc-rs carries attributes on such (the new target bitrate) and
    /// discards it at the end of the chain.
    fn observe(&mut self, msg: &mut TaggedPacket) {
        let now = msg.now;
        let Packet::Rtcp(packets) = &mut msg.message.packet else {
            return;
        };
        let mut kept = Vec::with_capacity(packets.len());
        for p in packets.drain(..) {
            match p.as_any().downcast_ref::<TransportLayerNack>() {
                Some(nack) => {
                    if let Some(gated) = self.gate(nack, now) {
                        kept.push(Box::new(gated) as Box<dyn rtc::rtcp::Packet>);
                    }
                }
                None => kept.push(p),
            }
        }
        *packets = kept;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::interceptor::AttributedPacket;
    use rtc::rtcp::receiver_report::ReceiverReport;
    use rtc::shared::TransportContext;

    const SSRC: u32 = 7;

    fn nack(seqs: &[u16]) -> TransportLayerNack {
        TransportLayerNack {
            sender_ssrc: 1,
            media_ssrc: SSRC,
            nacks: nack_pairs_from_sequence_numbers(seqs),
        }
    }

    fn asked(gated: Option<TransportLayerNack>) -> Vec<u16> {
        gated
            .map(|n| n.nacks.iter().flat_map(|p| p.packet_list()).collect())
            .unwrap_or_default()
    }

    #[test]
    fn a_packet_is_resent_again_only_after_the_gap_and_then_not_for_ever() {
        let mut gate = ResendGate::default();
        let t0 = Instant::now();
        assert_eq!(asked(gate.gate(&nack(&[5, 6]), t0)), [5, 6]);
        let soon = t0 + RESEND_GAP / 2;
        assert_eq!(asked(gate.gate(&nack(&[5, 6, 7]), soon)), [7]);
        let mut at = t0;
        for _ in 1..MAX_RESENDS {
            at += RESEND_GAP;
            assert_eq!(asked(gate.gate(&nack(&[5]), at)), [5]);
        }
        assert!(gate.gate(&nack(&[5]), at + 10 * RESEND_GAP).is_none());
    }

    #[test]
    fn the_same_sequence_number_of_another_ssrc_is_another_packet() {
        let mut gate = ResendGate::default();
        let now = Instant::now();
        assert!(gate.gate(&nack(&[5]), now).is_some());
        let other = TransportLayerNack {
            media_ssrc: SSRC + 1,
            ..nack(&[5])
        };
        assert!(gate.gate(&other, now).is_some());
    }

    #[test]
    fn old_packets_are_forgotten() {
        let mut gate = ResendGate::default();
        let now = Instant::now();
        for seq in 0..=REMEMBERED as u16 {
            gate.admit((SSRC, seq), now);
        }
        assert_eq!(gate.resent.len(), REMEMBERED);
        assert!(gate.admit((SSRC, 0), now), "forgotten: admitted again");
    }

    /// How many RTCP packets of `packets` the gate lets on.
    fn read(gate: &mut ResendGate, packets: Vec<Box<dyn rtc::rtcp::Packet>>) -> usize {
        let mut msg = TaggedPacket {
            now: Instant::now(),
            transport: TransportContext::default(),
            message: AttributedPacket::new(Packet::Rtcp(packets)),
        };
        gate.observe(&mut msg);
        match msg.message.packet {
            Packet::Rtcp(p) => p.len(),
            _ => panic!("RTCP in, RTCP out"),
        }
    }

    #[test]
    fn a_nack_for_nothing_to_resend_is_taken_out_and_other_rtcp_passes() {
        let mut gate = ResendGate::default();
        assert_eq!(read(&mut gate, vec![Box::new(nack(&[5]))]), 1);
        assert_eq!(read(&mut gate, vec![Box::new(nack(&[5]))]), 0);
        let report = Box::new(ReceiverReport::default());
        assert_eq!(
            read(&mut gate, vec![report, Box::new(nack(&[5]))]),
            1,
            "the report alone"
        );
    }
}
