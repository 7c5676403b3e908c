//! A queue building on the path, seen in the one-way delay of the packets TWCC reports, and
//! what the estimate may be while one does.
//!
//! webrtc-rs 0.21's GCC leaves this to its delay half, which never backed off under a
//! token bucket (measured: its target rose to the 3.2 Mbit/s ceiling on a 500 kbit/s link
//! whose 50 ms queue filled and overflowed). So the loss half alone steered: it climbs 5 %
//! every 200 ms until a tenth of the packets are lost, which with a camera's full-rate
//! video meant overrunning the link to twice its rate and a freeze every 10–12 s. Here,
//! as libwebrtc's rate control does on overuse, a queue holds the estimate to 0.85 times
//! what the viewer acknowledges receiving; it then grows back at [`GROWTH`] a second near
//! the rate the link carried, so it finds the link again by filling its queue a little,
//! not by overflowing it, and at [`FAR_GROWTH`] beyond, so a link that comes back is used.

use std::time::{Duration, Instant};

use rtc::interceptor::PacketReport;

use super::congestion::{AckedRate, LowWindow};

/// Queueing delay (over the lowest of the last [`BASE_WINDOW`]) that says a queue is
/// building: under a 50 ms buffer's overflow, above what jitter moves the smoothed delay
/// (80 ± 20 ms a packet, kept in order as a rate-limited link keeps it, moved it up to
/// 36 ms at a sixteenth's smoothing and up to 27 ms at [`SMOOTHING`], in a simulation of
/// `tests/common/wire.rs`; at a sixteenth and 30 ms, `playback_on_jittery_links` backed
/// off to 371 kbit/s on a link with room for 1800).
const QUEUED_MS: f64 = 35.0;
/// How far back the path's own delay (no queue) is looked for: a few of the cycles of
/// filling and draining, short enough to follow a new route.
const BASE_WINDOW: Duration = Duration::from_secs(10);
/// Each packet's weight in the smoothed delay: 32 packets (150–400 ms of video and audio
/// at these rates) average jitter out; the first ones weigh more, as in a plain mean.
const SMOOTHING: f64 = 1.0 / 32.0;
/// On a queue the estimate goes to this share of the acknowledged rate: below the link, so
/// the queue drains (libwebrtc's beta).
const BACK_OFF: f64 = 0.85;
/// What the acknowledged rate is measured over: short, so that when the link falls under
/// a high rate the back-off follows what it carries now, not a second ago (which left the
/// estimate at four times a new 500 kbit/s link for a second).
const ACKED_WINDOW: Duration = Duration::from_millis(300);
/// No second back-off within this of one: the queue takes a few hundred ms to drain and
/// feedback to say so.
const DRAIN: Duration = Duration::from_secs(1);
/// How fast the hold grows back, per second, up to [`NEAR`] times what the link carried
/// at the back-off: libwebrtc's multiplicative increase is 8 %.
const GROWTH: f64 = 0.10;
/// Where the link may well be, as a multiple of what it carried at the back-off: the
/// estimate that fills a link is about 1.2 times what it acknowledges (audio and packet
/// headers on top of the video share), and libwebrtc lets its estimate go to 1.5 times.
const NEAR: f64 = 1.5;
/// How fast the hold grows beyond that, per second: GCC's own climb (5 % every 200 ms).
/// At [`GROWTH`] throughout, the target took 14 s to come back over 600 kbit/s when a
/// 300 kbit/s link went back to 2 Mbit/s (`tests/bitrate_follows_the_link.rs`).
const FAR_GROWTH: f64 = 0.27;

/// The most the estimate may be since a queue last built.
#[derive(Debug, Clone, Copy)]
struct Hold {
    kbps: f64,
    /// When `kbps` was last set or grown.
    at: Instant,
    /// [`NEAR`] times what the link carried at the back-off.
    near_kbps: f64,
}

/// One viewer's path: its delay, and the hold on its estimate since a queue last built.
pub(super) struct QueueGuard {
    /// The first departure seen: one-way delays are taken against it (the receiver's clock
    /// has an offset of its own; only differences count).
    origin: Option<Instant>,
    smoothed_ms: Option<f64>,
    /// Delays taken in so far (to weigh the first ones as a mean does).
    samples: u32,
    base: LowWindow<f64>,
    acked: AckedRate,
    hold: Option<Hold>,
    backed_off_at: Option<Instant>,
}

impl QueueGuard {
    pub(super) fn new() -> Self {
        Self {
            origin: None,
            smoothed_ms: None,
            samples: 0,
            base: LowWindow::new(BASE_WINDOW),
            acked: AckedRate::new(ACKED_WINDOW),
            hold: None,
            backed_off_at: None,
        }
    }

    /// Takes in a feedback's `reports` at `now`; returns the most the estimate may be, if
    /// anything holds it.
    pub(super) fn on_reports(&mut self, now: Instant, reports: &[PacketReport]) -> Option<u32> {
        let acked_kbps = self.acked.add(now, reports);
        let queued_ms = self.queue_ms(now, reports);
        self.grow(now);
        let draining = self
            .backed_off_at
            .is_some_and(|at| now.saturating_duration_since(at) < DRAIN);
        if let Some(acked) = acked_kbps
            && queued_ms.is_some_and(|q| q > QUEUED_MS)
            && !draining
        {
            let held = f64::from(acked) * BACK_OFF;
            self.hold = Some(Hold {
                kbps: self.hold.map_or(held, |h| h.kbps.min(held)),
                at: now,
                near_kbps: f64::from(acked) * NEAR,
            });
            self.backed_off_at = Some(now);
        }
        self.hold.map(|h| h.kbps as u32)
    }

    /// The smoothed one-way delay over the path's own, ms, after `reports`.
    fn queue_ms(&mut self, now: Instant, reports: &[PacketReport]) -> Option<f64> {
        for r in reports {
            let Some(arrival) = r.arrival.filter(|_| r.arrived) else {
                continue;
            };
            let origin = *self.origin.get_or_insert(r.departure);
            let sent = r.departure.saturating_duration_since(origin);
            let one_way = (arrival.as_secs_f64() - sent.as_secs_f64()) * 1000.0;
            self.samples = self.samples.saturating_add(1);
            let weight = SMOOTHING.max(1.0 / f64::from(self.samples));
            let smoothed = self.smoothed_ms.unwrap_or(one_way);
            self.smoothed_ms = Some(smoothed + (one_way - smoothed) * weight);
        }
        let smoothed = self.smoothed_ms?;
        Some(smoothed - self.base.push(now, smoothed))
    }

    /// Grows the hold by [`GROWTH`] or [`FAR_GROWTH`] a second since it was last set.
    fn grow(&mut self, now: Instant) {
        if let Some(h) = &mut self.hold {
            let secs = now.saturating_duration_since(h.at).as_secs_f64();
            let growth = if h.kbps < h.near_kbps {
                GROWTH
            } else {
                FAR_GROWTH
            };
            h.kbps *= (1.0 + growth).powf(secs);
            h.at = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::congestion::tests::report;
    use super::*;

    /// `n` packets of 1200 bytes sent 10 ms apart from `sent`, each arriving `delay_ms`
    /// after it left (on a receiver clock that starts at `sent`).
    fn packets(
        sent: Instant,
        from: u16,
        n: u16,
        delay_ms: impl Fn(u16) -> u64,
    ) -> Vec<PacketReport> {
        (from..from + n)
            .map(|seq| {
                let at = Duration::from_millis(10 * u64::from(seq));
                PacketReport {
                    departure: sent + at,
                    arrival: Some(at + Duration::from_millis(delay_ms(seq))),
                    ..report(seq, true)
                }
            })
            .collect()
    }

    /// Feeds `batches` of 10 packets of 1200 bytes (100 ms each: 960 kbit/s) with
    /// `delay_ms`; returns the hold after each.
    fn feed(
        g: &mut QueueGuard,
        t: Instant,
        batches: std::ops::Range<u16>,
        delay_ms: impl Fn(u16) -> u64 + Copy,
    ) -> Vec<Option<u32>> {
        batches
            .map(|b| {
                let now = t + Duration::from_millis(100 * u64::from(b + 1));
                g.on_reports(now, &packets(t, b * 10, 10, delay_ms))
            })
            .collect()
    }

    #[test]
    fn a_steady_delay_holds_nothing() {
        let mut g = QueueGuard::new();
        let t = Instant::now();
        let holds = feed(&mut g, t, 0..50, |_| 40);
        assert!(holds.iter().all(Option::is_none), "{holds:?}");
    }

    #[test]
    fn jitter_alone_holds_nothing() {
        let mut g = QueueGuard::new();
        let t = Instant::now();
        // 80 ± 20 ms a packet, kept in order: one waits behind the packet before it.
        let mut held = 0u64;
        let delays: Vec<u64> = (0..1000u64)
            .map(|seq| {
                held = (60 + seq * 7919 % 41).max(held.saturating_sub(10));
                held
            })
            .collect();
        let holds = feed(&mut g, t, 0..100, |seq| delays[usize::from(seq)]);
        assert!(holds.iter().all(Option::is_none), "{holds:?}");
    }

    #[test]
    fn a_filling_queue_holds_the_estimate_under_what_arrives_then_lets_it_grow() {
        let mut g = QueueGuard::new();
        let t = Instant::now();
        feed(&mut g, t, 0..20, |_| 20);
        // The queue fills by 1 ms a packet, to 50 ms, and stays full.
        let holds = feed(&mut g, t, 20..40, |seq| 20 + u64::from(seq - 200).min(50));
        let first = holds.iter().flatten().next().copied();
        assert_eq!(first, Some(816), "0.85 of 960 kbit/s: {holds:?}");
        // Drained: the hold grows 10 % a second.
        let holds = feed(&mut g, t, 40..60, |_| 20);
        let last = holds.last().copied().flatten().expect("still held");
        assert!(
            (816..=1100).contains(&last),
            "grown back within two seconds, not released: {holds:?}"
        );
        assert!(last > holds[0].unwrap_or(0), "{holds:?}");
    }
}
