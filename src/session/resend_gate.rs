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
//!
//! A packet refused after [`MAX_RESENDS`] is lost for good, and with it the viewer's
//! picture until the next keyframe; Chromium asks for one only after 3 s without a
//! decodable frame. So the gate raises [`GiveUps`] then, and the session asks the encoder
//! for the keyframe at once; once per episode: a give-up of a packet sent before the
//! last one raised is repaired by the keyframe that one asked for. A webrtc-rs viewer
//! NACKs even repaired packets until the gate refuses them (above), so its every loss
//! ends in a give-up too; the shared throttle bounds what that costs (about one keyframe
//! a second in all).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtc::interceptor::{Packet, TaggedPacket};
use rtc::rtcp::transport_feedbacks::transport_layer_nack::{
    TransportLayerNack, nack_pairs_from_sequence_numbers,
};

use tokio::sync::Notify;

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

/// Raised by the gate when it gives up on a packet, awaited by the session, which asks
/// for a keyframe. Raises while nobody waits are kept as one.
#[derive(Clone, Default)]
pub(super) struct GiveUps(Arc<Notify>);

impl GiveUps {
    fn raise(&self) {
        self.0.notify_one();
    }

    /// Until the gate next gives up (at once if it did since the last call).
    pub(super) async fn next(&self) {
        self.0.notified().await;
    }
}

/// What the gate does with one packet's NACK.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Resend,
    /// Not now: resent too recently, or given up on before.
    Refuse,
    /// Resent [`MAX_RESENDS`] times already: lost for good, refused from now on.
    GiveUp,
}

/// What is left of a NACK after the gate.
#[derive(Debug, Default)]
struct Gated {
    /// The packets to resend now; None if none.
    resend: Option<TransportLayerNack>,
    /// Whether a packet was given up on that the viewer's last repair does not cover.
    repair: bool,
}

/// Gates NACKs on their way to the responder; run in a [`ReadTap`](super::read_tap::ReadTap).
#[derive(Default)]
pub(super) struct ResendGate {
    resent: HashMap<PacketId, Resent>,
    /// `resent`'s keys, oldest first, to forget the oldest.
    order: VecDeque<PacketId>,
    /// Per SSRC, the newest sequence number any NACK named: sent before now.
    newest_nacked: HashMap<u32, u16>,
    /// Per SSRC, the newest packet sent before the last repair was asked: given up, it is
    /// part of that repair's episode.
    repaired_up_to: HashMap<u32, u16>,
    give_ups: GiveUps,
}

/// Whether sequence number `a` is after `b`, across the wrap.
fn is_after(a: u16, b: u16) -> bool {
    (a.wrapping_sub(b) as i16) > 0
}

impl ResendGate {
    /// A gate that raises `give_ups` once per give-up episode.
    pub(super) fn new(give_ups: GiveUps) -> Self {
        Self {
            give_ups,
            ..Self::default()
        }
    }

    /// What to do with `packet`'s NACK at `now`; counts the resend if it is one.
    fn admit(&mut self, packet: PacketId, now: Instant) -> Verdict {
        match self.resent.get_mut(&packet) {
            // The last resend may still be on its way.
            Some(r) if now < r.last + RESEND_GAP => Verdict::Refuse,
            Some(r) if r.times > MAX_RESENDS => Verdict::Refuse,
            Some(r) if r.times == MAX_RESENDS => {
                // Counted past MAX_RESENDS: given up on once only.
                r.times += 1;
                Verdict::GiveUp
            }
            Some(r) => {
                r.last = now;
                r.times += 1;
                Verdict::Resend
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
                Verdict::Resend
            }
        }
    }

    /// `nack` less the packets not to resend now, and whether the viewer needs a repair.
    fn gate(&mut self, nack: &TransportLayerNack, now: Instant) -> Gated {
        let ssrc = nack.media_ssrc;
        let mut admitted = Vec::new();
        let mut given_up = Vec::new();
        for seq in nack.nacks.iter().flat_map(|pair| pair.packet_list()) {
            let newest = self.newest_nacked.entry(ssrc).or_insert(seq);
            if is_after(seq, *newest) {
                *newest = seq;
            }
            match self.admit((ssrc, seq), now) {
                Verdict::Resend => admitted.push(seq),
                Verdict::GiveUp => given_up.push(seq),
                Verdict::Refuse => {}
            }
        }
        let repaired_up_to = self.repaired_up_to.get(&ssrc).copied();
        let repair = given_up
            .iter()
            .any(|&seq| repaired_up_to.is_none_or(|up_to| is_after(seq, up_to)));
        if repair && let Some(&newest) = self.newest_nacked.get(&ssrc) {
            self.repaired_up_to.insert(ssrc, newest);
        }
        Gated {
            resend: (!admitted.is_empty()).then(|| TransportLayerNack {
                nacks: nack_pairs_from_sequence_numbers(&admitted),
                ..nack.clone()
            }),
            repair,
        }
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
                    let gated = self.gate(nack, now);
                    if gated.repair {
                        self.give_ups.raise();
                    }
                    if let Some(resend) = gated.resend {
                        kept.push(Box::new(resend) as Box<dyn rtc::rtcp::Packet>);
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

    fn asked(gated: Gated) -> Vec<u16> {
        gated
            .resend
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
        assert!(
            gate.gate(&nack(&[5]), at + 10 * RESEND_GAP)
                .resend
                .is_none()
        );
    }

    /// Resends `seqs` until the gate would give up on them; returns when that is.
    fn resend_all(gate: &mut ResendGate, seqs: &[u16], from: Instant) -> Instant {
        let mut at = from;
        for _ in 0..MAX_RESENDS {
            let gated = gate.gate(&nack(seqs), at);
            assert_eq!(asked(gated), seqs);
            at += RESEND_GAP;
        }
        at
    }

    #[test]
    fn a_packet_resent_for_the_last_time_and_asked_again_needs_a_repair_once() {
        let mut gate = ResendGate::default();
        let at = resend_all(&mut gate, &[5], Instant::now());
        let soon = at - RESEND_GAP / 2;
        assert!(
            !gate.gate(&nack(&[5]), soon).repair,
            "the last resend may still come"
        );
        let given_up = gate.gate(&nack(&[5]), at);
        assert!(given_up.repair);
        assert!(given_up.resend.is_none());
        assert!(!gate.gate(&nack(&[5]), at + RESEND_GAP).repair, "once only");
    }

    #[test]
    fn packets_given_up_on_after_a_repair_was_asked_are_part_of_it() {
        let mut gate = ResendGate::default();
        let t0 = Instant::now();
        // 5 and 6 lost in one burst, NACKed apart: 6 was sent before the repair 5 asked.
        let at = resend_all(&mut gate, &[5], t0);
        resend_all(&mut gate, &[6], t0 + RESEND_GAP / 2);
        assert!(gate.gate(&nack(&[5]), at).repair);
        assert!(!gate.gate(&nack(&[6]), at + RESEND_GAP).repair);
        // 9, lost after the repair was asked, is a new episode.
        let later = resend_all(&mut gate, &[9], at + RESEND_GAP);
        assert!(gate.gate(&nack(&[9]), later).repair);
    }

    #[test]
    fn episodes_are_told_apart_across_the_sequence_number_wrap() {
        let mut gate = ResendGate::default();
        let at = resend_all(&mut gate, &[u16::MAX], Instant::now());
        assert!(gate.gate(&nack(&[u16::MAX]), at).repair);
        let later = resend_all(&mut gate, &[1], at);
        assert!(gate.gate(&nack(&[1]), later).repair, "1 follows 65535");
    }

    #[test]
    fn the_same_sequence_number_of_another_ssrc_is_another_packet() {
        let mut gate = ResendGate::default();
        let now = Instant::now();
        assert!(gate.gate(&nack(&[5]), now).resend.is_some());
        let other = TransportLayerNack {
            media_ssrc: SSRC + 1,
            ..nack(&[5])
        };
        assert!(gate.gate(&other, now).resend.is_some());
    }

    #[test]
    fn old_packets_are_forgotten() {
        let mut gate = ResendGate::default();
        let now = Instant::now();
        for seq in 0..=REMEMBERED as u16 {
            gate.admit((SSRC, seq), now);
        }
        assert_eq!(gate.resent.len(), REMEMBERED);
        assert_eq!(
            gate.admit((SSRC, 0), now),
            Verdict::Resend,
            "forgotten: admitted again"
        );
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

    #[test]
    fn a_give_up_is_raised_to_the_session() {
        use futures_util::FutureExt;

        let give_ups = GiveUps::default();
        let mut gate = ResendGate::new(give_ups.clone());
        let at = resend_all(&mut gate, &[5], Instant::now());
        let mut msg = TaggedPacket {
            now: at,
            transport: TransportContext::default(),
            message: AttributedPacket::new(Packet::Rtcp(vec![Box::new(nack(&[5]))])),
        };
        gate.observe(&mut msg);
        assert!(give_ups.next().now_or_never().is_some(), "raised");
        assert!(give_ups.next().now_or_never().is_none(), "and taken");
    }
}
