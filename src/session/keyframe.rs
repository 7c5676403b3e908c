//! Keyframe requests, from the viewers to the encoder, about one a second in total.
//!
//! webrtc 0.21 consumes RTCP inside its interceptor chain; only packets an interceptor
//! marks `DeliverToApplication` reach a local track's `poll()`. [`KeyframeRequests`] marks
//! exactly the keyframe requests (PLI, FIR), puts them first in their compound packet (see
//! there why), and passes everything else through untouched.
//!
//! A keyframe is several times the size of a frame, so a viewer sending PLIs in a loop
//! (or many lagging at once) would make every frame one. [`Keyframes`] is what sessions
//! ask: the first repair request in a second goes to the encoder at once; later ones in
//! that second become a single request at its end, so none is lost and no viewer waits
//! for the encoder's own keyframe interval. A viewer arriving waits less: a quarter of a
//! second after the last keyframe at most, so two viewers opening the page together both
//! see their first frame at once. Arrivals are bounded by the sessions the registry
//! admits, not by what a viewer sends.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::media::MediaFeed;

use rtc::interceptor::{Attribute, Packet, TaggedPacket};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;

use super::read_tap::ReadObserver;

/// Where in the interceptor chain it sits: after the built-in ones, which must still see
/// every RTCP packet (reports, NACK).
pub const SLOT: usize = 14_000;

pub fn is_keyframe_request(packet: &dyn rtc::rtcp::Packet) -> bool {
    let any = packet.as_any();
    any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>()
}

/// Marks keyframe requests for the application (in a
/// [`ReadTap`](super::read_tap::ReadTap)).
///
/// rtc 0.21 hands a compound RTCP packet to the track of its first packet's first
/// destination SSRC (`handle_rtcp_message`), and drops it when no track has that SSRC.
/// Chromium sends its PLI behind a receiver report whose first block may be for the RTX
/// SSRC, which no track owns: every PLI it sent on a lossy link was dropped so, and its
/// picture stayed frozen until the encoder's periodic keyframe. A keyframe request put
/// first names the media SSRC it is for.
pub struct KeyframeRequests;

impl ReadObserver for KeyframeRequests {
    fn observe(&mut self, msg: &mut TaggedPacket) {
        if let Packet::Rtcp(packets) = &mut msg.message.packet
            && packets.iter().any(|p| is_keyframe_request(p.as_ref()))
        {
            // Stable: the rest keep their order.
            packets.sort_by_key(|p| !is_keyframe_request(p.as_ref()));
            msg.message.add(Attribute::DeliverToApplication);
        }
    }
}

/// Requests that reach the encoder at most once per this interval.
pub const KEYFRAME_INTERVAL: Duration = Duration::from_secs(1);
/// How soon after the last keyframe a viewer's arrival may ask for another.
pub const ARRIVAL_GAP: Duration = Duration::from_millis(250);

/// Why a session asks for a keyframe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// A new viewer needs one to start: its first frame waits on it.
    Arrival,
    /// A viewer lost pictures (PLI, FIR, or it fell behind).
    Repair,
}

/// What to do with one keyframe request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Ask the encoder now.
    Now,
    /// Ask it at this time (the caller schedules it, then calls [`Throttle::fired`]).
    At(Instant),
    /// A request is already due as soon or sooner: this one is part of it.
    Coalesced,
}

/// The pure rule: a repair at most once per interval, an arrival at most once per
/// [`ARRIVAL_GAP`]; a request that must wait is folded into the one scheduled, or
/// brings it forward.
#[derive(Debug)]
pub struct Throttle {
    interval: Duration,
    arrival_gap: Duration,
    last: Option<Instant>,
    scheduled: Option<Instant>,
}

impl Throttle {
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            arrival_gap: ARRIVAL_GAP.min(interval),
            last: None,
            scheduled: None,
        }
    }

    pub fn request(&mut self, now: Instant, why: Why) -> Decision {
        let gap = match why {
            Why::Arrival => self.arrival_gap,
            Why::Repair => self.interval,
        };
        let due = self.last.map_or(now, |last| (last + gap).max(now));
        if self.scheduled.is_some_and(|at| at <= due) {
            return Decision::Coalesced;
        }
        if due <= now {
            // Also serves whatever was scheduled for later: that one is dropped.
            self.scheduled = None;
            self.last = Some(now);
            Decision::Now
        } else {
            self.scheduled = Some(due);
            Decision::At(due)
        }
    }

    /// The request scheduled for `at` is due at `now`: whether it still goes to the
    /// encoder (an earlier one may have replaced it).
    pub fn fired(&mut self, at: Instant, now: Instant) -> bool {
        if self.scheduled != Some(at) {
            return false;
        }
        self.scheduled = None;
        self.last = Some(now);
        true
    }
}

/// The video feed's keyframe request, shared by every session through one [`Throttle`].
#[derive(Clone)]
pub struct Keyframes {
    feed: MediaFeed,
    throttle: Arc<Mutex<Throttle>>,
}

impl Keyframes {
    pub fn new(feed: MediaFeed) -> Self {
        Self {
            feed,
            throttle: Arc::new(Mutex::new(Throttle::new(KEYFRAME_INTERVAL))),
        }
    }

    /// Asks for a keyframe, now or when the throttle allows. Never waits; returns the
    /// task that will ask, when this call scheduled one.
    pub fn request(&self, why: Why) -> Option<tokio::task::JoinHandle<()>> {
        let decision = self.lock().request(Instant::now(), why);
        match decision {
            Decision::Now => {
                self.feed.request_keyframe();
                None
            }
            Decision::At(at) => {
                let this = self.clone();
                Some(tokio::spawn(async move {
                    tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
                    if this.lock().fired(at, Instant::now()) {
                        this.feed.request_keyframe();
                    }
                }))
            }
            Decision::Coalesced => None,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Throttle> {
        // The throttle holds no invariant a panic elsewhere could break halfway.
        self.throttle.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::interceptor::AttributedPacket;
    use rtc::rtcp::receiver_report::ReceiverReport;
    use rtc::rtcp::reception_report::ReceptionReport;
    use rtc::shared::TransportContext;

    const SECOND: Duration = Duration::from_secs(1);

    /// Chromium's compound: a receiver report whose first block is for the RTX SSRC,
    /// then the PLI for the media SSRC.
    #[test]
    fn a_keyframe_request_goes_first_so_that_it_reaches_the_media_track() {
        const MEDIA: u32 = 1111;
        const RTX: u32 = 2222;
        let block = |ssrc| ReceptionReport {
            ssrc,
            ..Default::default()
        };
        let report = ReceiverReport {
            ssrc: 1,
            reports: vec![block(RTX), block(MEDIA)],
            ..Default::default()
        };
        let pli = PictureLossIndication {
            sender_ssrc: 1,
            media_ssrc: MEDIA,
        };
        let mut msg = TaggedPacket {
            now: Instant::now(),
            transport: TransportContext::default(),
            message: AttributedPacket::new(Packet::Rtcp(vec![Box::new(report), Box::new(pli)])),
        };
        KeyframeRequests.observe(&mut msg);
        assert!(msg.message.has(&Attribute::DeliverToApplication));
        let Packet::Rtcp(packets) = &msg.message.packet else {
            panic!("RTCP in, RTCP out");
        };
        assert_eq!(packets.len(), 2, "nothing taken out");
        assert!(is_keyframe_request(packets[0].as_ref()));
        assert_eq!(packets[0].destination_ssrc().first(), Some(&MEDIA));
    }

    #[test]
    fn the_first_request_goes_at_once() {
        let mut t = Throttle::new(SECOND);
        assert_eq!(t.request(Instant::now(), Why::Repair), Decision::Now);
    }

    #[test]
    fn requests_within_a_second_become_one_at_its_end() {
        let mut t = Throttle::new(SECOND);
        let t0 = Instant::now();
        t.request(t0, Why::Repair);
        let ms = |n| t0 + Duration::from_millis(n);
        assert_eq!(t.request(ms(10), Why::Repair), Decision::At(t0 + SECOND));
        for n in 20..120 {
            assert_eq!(t.request(ms(n), Why::Repair), Decision::Coalesced);
        }
        assert!(t.fired(t0 + SECOND, t0 + SECOND));
        assert_eq!(
            t.request(ms(1500), Why::Repair),
            Decision::At(t0 + 2 * SECOND)
        );
    }

    #[test]
    fn a_request_after_a_quiet_second_goes_at_once() {
        let mut t = Throttle::new(SECOND);
        let t0 = Instant::now();
        t.request(t0, Why::Repair);
        assert_eq!(t.request(t0 + SECOND, Why::Repair), Decision::Now);
        assert_eq!(t.request(t0 + 5 * SECOND, Why::Repair), Decision::Now);
    }

    /// Drives the throttle with `why(ms)` every millisecond for ten seconds, firing
    /// scheduled requests when due; returns when keyframes were asked of the encoder.
    fn keyframes_asked(why: impl Fn(u64) -> Option<Why>) -> Vec<Instant> {
        let mut t = Throttle::new(SECOND);
        let t0 = Instant::now();
        let mut sent = Vec::new();
        let mut due = Vec::new();
        for ms in 0..10_000 {
            let now = t0 + Duration::from_millis(ms);
            for at in due.iter().filter(|&&at| now >= at) {
                if t.fired(*at, now) {
                    sent.push(now);
                }
            }
            due.retain(|&at| now < at);
            match why(ms).map(|w| t.request(now, w)) {
                Some(Decision::Now) => sent.push(now),
                Some(Decision::At(at)) => due.push(at),
                Some(Decision::Coalesced) | None => {}
            }
        }
        sent
    }

    #[test]
    fn a_flood_of_requests_reaches_the_encoder_once_a_second() {
        let sent = keyframes_asked(|_| Some(Why::Repair));
        assert_eq!(sent.len(), 10);
        assert!(sent.windows(2).all(|w| w[1] - w[0] >= SECOND));
    }

    #[test]
    fn a_viewer_arriving_after_a_keyframe_waits_a_quarter_second_not_a_second() {
        let mut t = Throttle::new(SECOND);
        let t0 = Instant::now();
        assert_eq!(t.request(t0, Why::Arrival), Decision::Now);
        let ms = |n| t0 + Duration::from_millis(n);
        assert_eq!(t.request(ms(300), Why::Arrival), Decision::Now);
        assert_eq!(
            t.request(ms(400), Why::Arrival),
            Decision::At(ms(300) + ARRIVAL_GAP)
        );
    }

    #[test]
    fn an_arrival_brings_a_waiting_repair_forward_and_serves_it() {
        let mut t = Throttle::new(SECOND);
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        t.request(t0, Why::Repair);
        assert_eq!(t.request(ms(10), Why::Repair), Decision::At(ms(1000)));
        assert_eq!(t.request(ms(100), Why::Arrival), Decision::At(ms(250)));
        assert_eq!(t.request(ms(120), Why::Repair), Decision::Coalesced);
        assert!(t.fired(ms(250), ms(250)));
        assert!(!t.fired(ms(1000), ms(1000)), "the later one was replaced");
    }

    #[test]
    fn a_repair_does_not_jump_the_queue_of_an_arrival() {
        let mut t = Throttle::new(SECOND);
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        t.request(t0, Why::Arrival);
        assert_eq!(t.request(ms(50), Why::Arrival), Decision::At(ms(250)));
        assert_eq!(t.request(ms(60), Why::Repair), Decision::Coalesced);
    }

    #[test]
    fn arrivals_in_a_crowd_reach_the_encoder_four_times_a_second() {
        // A viewer arriving every 10 ms, and every viewer sending PLIs.
        let sent = keyframes_asked(|ms| {
            Some(if ms % 10 == 0 {
                Why::Arrival
            } else {
                Why::Repair
            })
        });
        assert!(sent.windows(2).all(|w| w[1] - w[0] >= ARRIVAL_GAP));
        assert_eq!(sent.len(), 40);
    }

    #[tokio::test]
    async fn a_throttled_request_still_reaches_the_encoder() {
        let feed = MediaFeed::new(crate::media::MediaKind::Video);
        let keyframes = Keyframes::new(feed.clone());
        assert!(keyframes.request(Why::Repair).is_none());
        assert!(feed.take_keyframe_request());
        let held = keyframes
            .request(Why::Repair)
            .expect("the second request is scheduled");
        assert!(
            keyframes.request(Why::Repair).is_none(),
            "and the third folded into it"
        );
        assert!(
            !feed.take_keyframe_request(),
            "held until the second is over"
        );
        held.await.unwrap();
        assert!(feed.take_keyframe_request());
    }
}
