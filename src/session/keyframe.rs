//! Keyframe requests, from the viewers to the encoder, about one a second in total.
//!
//! webrtc 0.21 consumes RTCP inside its interceptor chain; only packets an interceptor
//! marks `DeliverToApplication` reach a local track's `poll()`. [`KeyframeRequests`] marks
//! exactly the keyframe requests (PLI, FIR) and passes everything else through untouched.
//!
//! A keyframe is several times the size of a frame, so a viewer sending PLIs in a loop
//! (or many lagging at once) would make every frame one. [`Keyframes`] is what sessions
//! ask: the first request in a second goes to the encoder at once; later ones in that
//! second become a single request at its end, so none is lost and a new viewer never
//! waits for the encoder's own keyframe interval.

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
pub struct KeyframeRequests;

impl ReadObserver for KeyframeRequests {
    fn observe(&mut self, msg: &mut TaggedPacket) {
        if let Packet::Rtcp(packets) = &msg.message.packet
            && packets.iter().any(|p| is_keyframe_request(p.as_ref()))
        {
            msg.message.add(Attribute::DeliverToApplication);
        }
    }
}

/// Requests that reach the encoder at most once per this interval.
pub const KEYFRAME_INTERVAL: Duration = Duration::from_secs(1);

/// What to do with one keyframe request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Ask the encoder now.
    Now,
    /// Ask it at this time (the caller schedules it, then calls [`Throttle::fired`]).
    At(Instant),
    /// A request is already scheduled: this one is part of it.
    Coalesced,
}

/// The pure rule: one request per interval, the rest folded into one at its end.
#[derive(Debug)]
pub struct Throttle {
    interval: Duration,
    last: Option<Instant>,
    scheduled: bool,
}

impl Throttle {
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            last: None,
            scheduled: false,
        }
    }

    pub fn request(&mut self, now: Instant) -> Decision {
        if self.scheduled {
            return Decision::Coalesced;
        }
        match self.last {
            Some(last) if now < last + self.interval => {
                self.scheduled = true;
                Decision::At(last + self.interval)
            }
            _ => {
                self.last = Some(now);
                Decision::Now
            }
        }
    }

    /// The scheduled request went to the encoder at `now`.
    pub fn fired(&mut self, now: Instant) {
        self.scheduled = false;
        self.last = Some(now);
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

    /// Asks for a keyframe, now or at the end of the current interval. Never waits;
    /// returns the task that will ask, when this call scheduled one.
    pub fn request(&self) -> Option<tokio::task::JoinHandle<()>> {
        let decision = self.lock().request(Instant::now());
        match decision {
            Decision::Now => {
                self.feed.request_keyframe();
                None
            }
            Decision::At(at) => {
                let this = self.clone();
                Some(tokio::spawn(async move {
                    tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
                    this.lock().fired(Instant::now());
                    this.feed.request_keyframe();
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

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn the_first_request_goes_at_once() {
        let mut t = Throttle::new(SECOND);
        assert_eq!(t.request(Instant::now()), Decision::Now);
    }

    #[test]
    fn requests_within_a_second_become_one_at_its_end() {
        let mut t = Throttle::new(SECOND);
        let t0 = Instant::now();
        t.request(t0);
        let ms = |n| t0 + Duration::from_millis(n);
        assert_eq!(t.request(ms(10)), Decision::At(t0 + SECOND));
        for n in 20..120 {
            assert_eq!(t.request(ms(n)), Decision::Coalesced);
        }
        t.fired(t0 + SECOND);
        assert_eq!(t.request(ms(1500)), Decision::At(t0 + 2 * SECOND));
    }

    #[test]
    fn a_request_after_a_quiet_second_goes_at_once() {
        let mut t = Throttle::new(SECOND);
        let t0 = Instant::now();
        t.request(t0);
        assert_eq!(t.request(t0 + SECOND), Decision::Now);
        assert_eq!(t.request(t0 + 5 * SECOND), Decision::Now);
    }

    #[test]
    fn a_flood_of_requests_reaches_the_encoder_once_a_second() {
        let mut t = Throttle::new(SECOND);
        let t0 = Instant::now();
        let mut sent = Vec::new();
        let mut due = None;
        // 1000 requests a second for ten seconds, the scheduled one fired when due.
        for ms in 0..10_000 {
            let now = t0 + Duration::from_millis(ms);
            if due.is_some_and(|at| now >= at) {
                t.fired(now);
                sent.push(now);
                due = None;
            }
            match t.request(now) {
                Decision::Now => sent.push(now),
                Decision::At(at) => due = Some(at),
                Decision::Coalesced => {}
            }
        }
        assert_eq!(sent.len(), 10);
        assert!(sent.windows(2).all(|w| w[1] - w[0] >= SECOND));
    }

    #[tokio::test]
    async fn a_throttled_request_still_reaches_the_encoder() {
        let feed = MediaFeed::new(crate::media::MediaKind::Video);
        let keyframes = Keyframes::new(feed.clone());
        assert!(keyframes.request().is_none());
        assert!(feed.take_keyframe_request());
        let held = keyframes
            .request()
            .expect("the second request is scheduled");
        assert!(
            keyframes.request().is_none(),
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
