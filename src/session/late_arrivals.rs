//! Losses that were late arrivals. webrtc-rs 0.21's congestion-control interceptor hands
//! the estimator every packet up to the newest one feedback reports received, one not yet
//! received as lost, and then forgets it. A packet the path reordered behind a later one
//! is reported missing by the feedback sent in between and received by the next (Chrome's
//! and webrtc-rs's TWCC recorders both report late packets), which the interceptor no
//! longer matches. On a link with jitter that reorders, a tenth of the packets counted as
//! lost and GCC's loss half took the encoder to its floor on a link with room to spare
//! (`tests/playback_on_jittery_links.rs`).
//!
//! [`FeedbackTap`] notes the packets each TWCC feedback reports received; [`LateArrivals`]
//! holds each loss for [`GRACE`] and drops it when a feedback since reported the packet.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rtc::interceptor::{Packet, PacketReport, TaggedPacket, convert_twcc};
use rtc::rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc;

use super::read_tap::{ReadObserver, ReadTap};

/// Where the tap sits: wire-side of congestion control (1000), so a feedback's arrivals
/// are noted before the estimator hears of that feedback.
pub const SLOT: usize = 500;

/// How long a loss waits for a feedback saying the packet came after all: a late packet is
/// in the first feedback after it arrives, and webrtc-rs sends one every 100 ms, Chrome
/// every 50 ms at video rates. Longer held the estimate back on a falling link: with
/// 400 ms, the target came back up after a 300 kbit/s cap 2-3 s later.
pub const GRACE: Duration = Duration::from_millis(200);

/// Transport-wide sequence numbers remembered as received: seconds of packets, far more
/// than arrive within [`GRACE`], far fewer than the 65536 before a number comes again.
const REMEMBERED: usize = 4096;

/// Transport-wide sequence numbers some feedback reported received, the newest
/// [`REMEMBERED`].
#[derive(Default)]
struct Received {
    order: VecDeque<u16>,
    seen: HashSet<u16>,
}

impl Received {
    fn note(&mut self, seq: u16) {
        if self.seen.insert(seq) {
            self.order.push_back(seq);
            if self.order.len() > REMEMBERED
                && let Some(old) = self.order.pop_front()
            {
                self.seen.remove(&old);
            }
        }
    }
}

type SharedReceived = Arc<Mutex<Received>>;

fn lock(received: &SharedReceived) -> std::sync::MutexGuard<'_, Received> {
    // A set of numbers: a panic elsewhere leaves nothing half-done in it.
    received.lock().unwrap_or_else(|e| e.into_inner())
}

/// Notes what each TWCC feedback reports received (in a [`ReadTap`]).
pub struct FeedbackTap {
    received: SharedReceived,
}

impl ReadObserver for FeedbackTap {
    fn observe(&mut self, msg: &mut TaggedPacket) {
        let Packet::Rtcp(packets) = &msg.message.packet else {
            return;
        };
        let feedbacks = packets
            .iter()
            .filter_map(|p| p.as_any().downcast_ref::<TransportLayerCc>());
        for feedback in feedbacks {
            let mut received = lock(&self.received);
            for ack in convert_twcc(feedback).into_iter().filter(|a| a.arrived) {
                received.note(ack.sequence_number);
            }
        }
    }
}

/// The estimator's side: losses held until [`GRACE`] says whether they were.
pub struct LateArrivals {
    received: SharedReceived,
    held: VecDeque<(Instant, PacketReport)>,
}

impl LateArrivals {
    /// A pair sharing one record: the tap for the interceptor chain, and this.
    pub fn new() -> (ReadTap<FeedbackTap>, Self) {
        let received = SharedReceived::default();
        let tap = ReadTap::new(FeedbackTap {
            received: Arc::clone(&received),
        });
        let held = Self {
            received,
            held: VecDeque::new(),
        };
        (tap, held)
    }

    /// What of `reports`, handed over at `now`, the estimator hears: the arrivals at once;
    /// each TWCC loss [`GRACE`] later, unless a feedback reported the packet received by then.
    pub fn sort(&mut self, now: Instant, reports: Vec<PacketReport>) -> Vec<PacketReport> {
        let (mut heard, lost): (Vec<_>, Vec<_>) =
            reports.into_iter().partition(|r| r.arrived || !r.is_twcc);
        self.held.extend(lost.into_iter().map(|r| (now, r)));
        let received = lock(&self.received);
        while let Some((at, _)) = self.held.front()
            && now.saturating_duration_since(*at) >= GRACE
        {
            let (_, r) = self.held.pop_front().expect("a front");
            if !received.seen.contains(&r.twcc_sequence_number) {
                heard.push(r);
            }
        }
        heard
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(twcc: u16, arrived: bool) -> PacketReport {
        PacketReport {
            ssrc: 7,
            id: u64::from(twcc),
            rtp_sequence_number: twcc,
            is_twcc: true,
            twcc_sequence_number: twcc,
            size: 1200,
            arrived,
            departure: Instant::now(),
            arrival: arrived.then_some(Duration::from_millis(5)),
            ecn: Default::default(),
        }
    }

    fn seqs(reports: &[PacketReport]) -> Vec<(u16, bool)> {
        reports
            .iter()
            .map(|r| (r.twcc_sequence_number, r.arrived))
            .collect()
    }

    #[test]
    fn arrivals_pass_at_once_and_a_loss_after_the_grace() {
        let (_tap, mut late) = LateArrivals::new();
        let t0 = Instant::now();
        let heard = late.sort(t0, vec![report(1, true), report(2, false), report(3, true)]);
        assert_eq!(seqs(&heard), [(1, true), (3, true)]);
        assert!(late.sort(t0 + GRACE / 2, vec![]).is_empty(), "still held");
        assert_eq!(seqs(&late.sort(t0 + GRACE, vec![])), [(2, false)]);
        assert!(late.sort(t0 + 2 * GRACE, vec![]).is_empty(), "heard once");
    }

    #[test]
    fn a_loss_a_later_feedback_reports_received_is_dropped() {
        let (_tap, mut late) = LateArrivals::new();
        let t0 = Instant::now();
        late.sort(t0, vec![report(2, false), report(3, false)]);
        lock(&late.received).note(2);
        assert_eq!(
            seqs(&late.sort(t0 + GRACE, vec![report(4, true)])),
            [(4, true), (3, false)],
            "2 came late; 3 never came"
        );
    }

    #[test]
    fn received_numbers_are_forgotten_oldest_first() {
        let mut r = Received::default();
        for seq in 0..=REMEMBERED as u16 {
            r.note(seq);
        }
        assert_eq!(r.seen.len(), REMEMBERED);
        assert!(!r.seen.contains(&0) && r.seen.contains(&1));
    }
}
