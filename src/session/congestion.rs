//! Send-side congestion control: each viewer's connection estimates its own path with the
//! library's GCC (TWCC feedback, which browsers send), and one encoder serves them all at
//! the strongest viewer's rate (the pure policy [`video_target_kbps`]). A weaker viewer's
//! pacer holds its session to its own estimate.
//!
//! The estimate leaves the interceptor chain through the estimator itself, wrapped to
//! publish each new value (the way webrtc-rs's bandwidth-estimation example reads it): no
//! stats polling, no lock shared with the connection's driver.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use rtc::interceptor::{
    BandwidthEstimator, CongestionControlBuilder, EstimatorStats, Gcc, PacerBuilder, PacketReport,
    Registry, Slot,
};
use rtc::peer_connection::configuration::interceptor_registry::configure_twcc;
use tokio_util::sync::CancellationToken;
use tracing::info;
use webrtc::peer_connection::MediaEngine;

use super::late_arrivals::{self, LateArrivals};
use super::stats::SessionStats;
use crate::config::Config;
use crate::media::VideoBitrate;

/// Packets a pacer holds before refusing more: about 300 ms at 200 kbit/s. Longer queues
/// (the library's default is 4096) held resends past the viewer's patience.
const PACER_QUEUE_LIMIT: usize = 16;
/// How much faster than the estimate the pacer releases, as libwebrtc's pacer does: a
/// frame leaves in a fraction of its interval instead of spread over all of it (which
/// added a frame's worth of delay to every frame and held the first keyframe back).
const PACING_FACTOR: f64 = 2.5;
/// What video may take of an estimate, audio aside: the rest carries packet headers
/// (about 5 %), resends of lost packets and the keyframes viewers ask for.
const VIDEO_PAYLOAD_SHARE: f64 = 0.8;
/// Audio's headers: 50 packets a second of 58 bytes.
const AUDIO_HEADERS_KBPS: u32 = 23;
/// How often the encoder's target is brought up to date.
const STEER_EVERY: Duration = Duration::from_millis(200);
/// A change of the target smaller than this (in tenths) is applied but not logged.
const LOG_STEP_TENTHS: u32 = 1;

/// What the encoder may be asked for, from `[video]` and `[audio]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub min_kbps: u32,
    pub max_kbps: u32,
    /// Before any viewer has said anything.
    pub start_kbps: u32,
    /// What audio takes of every viewer's estimate.
    pub audio_kbps: u32,
}

impl Bounds {
    pub fn from_config(cfg: &Config) -> Self {
        let v = &cfg.video;
        Self {
            min_kbps: v.min_bitrate_kbps,
            max_kbps: v.max_bitrate_kbps,
            start_kbps: v.start_bitrate_kbps(),
            audio_kbps: cfg.audio.bitrate_kbps + AUDIO_HEADERS_KBPS,
        }
    }

    /// What a path estimated at `estimate_kbps` leaves for video payload.
    pub fn video_share_kbps(&self, estimate_kbps: u32) -> u32 {
        let left = estimate_kbps.saturating_sub(self.audio_kbps);
        (f64::from(left) * VIDEO_PAYLOAD_SHARE) as u32
    }

    /// Where a viewer's estimate starts: what carries the start rate.
    pub fn start_estimate_kbps(&self) -> u32 {
        self.estimate_for(self.start_kbps)
    }

    /// The estimate that carries `video_kbps` of video.
    fn estimate_for(&self, video_kbps: u32) -> u32 {
        (f64::from(video_kbps) / VIDEO_PAYLOAD_SHARE) as u32 + self.audio_kbps
    }
}

/// The encoder's target for the viewers' path estimates: the strongest viewer's video
/// share, within the bounds; the start rate when no viewer has an estimate.
pub fn video_target_kbps(estimates_kbps: impl IntoIterator<Item = u32>, b: &Bounds) -> u32 {
    match estimates_kbps.into_iter().max() {
        Some(strongest) => b.video_share_kbps(strongest).clamp(b.min_kbps, b.max_kbps),
        None => b.start_kbps,
    }
}

/// One viewer's latest path estimate, kbps: written by its estimator, read by [`steer`].
#[derive(Debug, Default)]
pub struct Estimate(AtomicU32);

impl Estimate {
    pub fn kbps(&self) -> u32 {
        self.0.load(Ordering::Relaxed)
    }

    fn set(&self, kbps: u32) {
        self.0.store(kbps, Ordering::Relaxed);
    }
}

/// Every live viewer's [`Estimate`]; a viewer's drops out when its session drops it.
#[derive(Clone, Default)]
pub struct Estimates(Arc<Mutex<Vec<Weak<Estimate>>>>);

impl Estimates {
    /// A new viewer's estimate, starting where its estimator does.
    pub fn join(&self, start_kbps: u32) -> Arc<Estimate> {
        let estimate = Arc::new(Estimate(AtomicU32::new(start_kbps)));
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        all.retain(|e| e.strong_count() > 0);
        all.push(Arc::downgrade(&estimate));
        estimate
    }

    /// The live viewers' estimates, kbps.
    pub fn kbps(&self) -> Vec<u32> {
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        all.retain(|e| e.strong_count() > 0);
        all.iter()
            .filter_map(|e| Some(e.upgrade()?.kbps()))
            .collect()
    }
}

/// What every session shares for congestion control: the bounds, and where each viewer's
/// estimate is read by [`steer`].
#[derive(Clone)]
pub struct Congestion {
    pub bounds: Bounds,
    pub estimates: Estimates,
}

impl Congestion {
    pub fn new(cfg: &Config) -> Self {
        Self {
            bounds: Bounds::from_config(cfg),
            estimates: Estimates::default(),
        }
    }

    /// A new viewer's share: its estimate, counted until the session drops it, and shown
    /// in its `stats` once feedback has said something.
    pub(super) fn join(&self, stats: Arc<SessionStats>) -> SessionCongestion {
        SessionCongestion {
            bounds: self.bounds,
            estimate: self.estimates.join(self.bounds.start_estimate_kbps()),
            stats,
        }
    }
}

/// One session's congestion control: its estimate and the bounds.
pub(super) struct SessionCongestion {
    pub(super) bounds: Bounds,
    pub(super) estimate: Arc<Estimate>,
    pub(super) stats: Arc<SessionStats>,
}

/// Sequence numbers a [`Resends`] remembers: a few seconds of video.
const REMEMBERED: usize = 4096;

/// Keeps resent copies' losses out of the estimate. A packet resent on a NACK goes out
/// under its original sequence number; when it is NACKed twice the viewer gets two
/// copies, SRTP drops the second as a replay, and TWCC reports that copy lost although
/// the packet arrived. Counted, those phantom losses held the estimate at its floor after
/// a burst of loss, on a link with room to spare (`tests/bitrate_follows_the_link.rs`).
#[derive(Default)]
struct Resends {
    order: VecDeque<(u32, u16)>,
    seen: HashSet<(u32, u16)>,
}

impl Resends {
    /// Whether `r` counts: anything that arrived, and the first report of a packet.
    fn counts(&mut self, r: &PacketReport) -> bool {
        let key = (r.ssrc, r.rtp_sequence_number);
        let first = self.seen.insert(key);
        if first {
            self.order.push_back(key);
            if self.order.len() > REMEMBERED
                && let Some(old) = self.order.pop_front()
            {
                self.seen.remove(&old);
            }
        }
        r.arrived || first
    }
}

/// GCC, publishing each new estimate to its viewer's [`Estimate`]; the library's pacer
/// releases [`PACING_FACTOR`] times the estimate. GCC hears a loss only once it was not a
/// resent copy ([`Resends`]) nor a packet that came late ([`LateArrivals`]). Under a token-bucket cap GCC's delay
/// half saw no queue (its target kept rising under the cap), so the loss half is what
/// holds the estimate, and the encoder, to such a link.
struct Publishing {
    gcc: Gcc,
    resends: Resends,
    late: LateArrivals,
    out: Arc<Estimate>,
    stats: Option<Arc<SessionStats>>,
}

impl Publishing {
    fn publish(&self) {
        let kbps = (self.gcc.target_bitrate() / 1000.0) as u32;
        self.out.set(kbps);
        if let Some(stats) = &self.stats {
            stats.set_bitrate_estimate_kbps(Some(kbps));
        }
    }
}

impl BandwidthEstimator for Publishing {
    fn on_reports(&mut self, now: Instant, reports: &[PacketReport]) {
        let counted: Vec<PacketReport> = reports
            .iter()
            .filter(|r| self.resends.counts(r))
            .cloned()
            .collect();
        let heard = self.late.sort(now, counted);
        self.gcc.on_reports(now, &heard);
        self.publish();
    }

    /// What the library's pacer releases: the estimate, with [`PACING_FACTOR`] headroom.
    fn target_bitrate(&self) -> f64 {
        self.gcc.target_bitrate() * PACING_FACTOR
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.gcc.handle_timeout(now);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.gcc.poll_timeout()
    }

    fn stats(&self) -> EstimatorStats {
        self.gcc.stats()
    }
}

/// Adds send-side congestion control to a connection's interceptors (GCC over TWCC, the
/// TWCC header extension and `transport-cc` feedback for every codec registered so far,
/// the tap that tells late arrivals from losses,
/// the library's pacer), its estimates published to `estimate`.
pub(super) fn congestion_control(
    registry: Registry,
    engine: &mut MediaEngine,
    session: &SessionCongestion,
) -> Result<Registry, webrtc::error::Error> {
    let SessionCongestion {
        bounds,
        estimate,
        stats,
    } = session;
    let bps = |kbps: u32| f64::from(kbps) * 1000.0;
    let start = bounds.start_estimate_kbps();
    let gcc = Gcc::new(
        bps(start),
        // Never below what the encoder's minimum and audio need: the pacer follows the
        // estimate, and one paced under what is sent only queues it, audio too.
        bps(bounds.estimate_for(bounds.min_kbps)),
        bps(bounds.estimate_for(bounds.max_kbps)),
    );
    let (tap, late) = LateArrivals::new();
    let estimator = Publishing {
        gcc,
        resends: Resends::default(),
        late,
        out: Arc::clone(estimate),
        stats: Some(Arc::clone(stats)),
    };
    // What `configure_congestion_control` assembles for TWCC, with its pacer built here:
    // started at our rate (its default is 1 Mbit/s until the first estimate) and with a
    // short queue (its default holds 4096 packets, seconds at a low rate). Replacing its
    // pacer afterwards would log a warning per session.
    Ok(configure_twcc(registry, engine)?
        .with(Slot::from(late_arrivals::SLOT), tap)
        .with(
            Slot::CongestionControl,
            CongestionControlBuilder::new(estimator).build(),
        )
        .with(
            Slot::Pacer,
            PacerBuilder::new()
                .with_target_bitrate(bps(start) * PACING_FACTOR)
                .with_queue_limit(PACER_QUEUE_LIMIT)
                .build(),
        ))
}

/// Keeps the encoder's target on [`video_target_kbps`] of the live estimates until
/// `cancel`. Logs `video target` on each change of a tenth or more, and at the bounds.
pub async fn steer(congestion: Congestion, target: VideoBitrate, cancel: CancellationToken) {
    let Congestion { bounds, estimates } = congestion;
    let mut tick = tokio::time::interval(STEER_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut logged = target.kbps();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let all = estimates.kbps();
        let kbps = video_target_kbps(all.iter().copied(), &bounds);
        if kbps == target.kbps() {
            continue;
        }
        target.set(kbps);
        let step = logged.abs_diff(kbps) * 10 >= logged * LOG_STEP_TENTHS;
        let bound = kbps == bounds.min_kbps || kbps == bounds.max_kbps;
        if step || bound {
            logged = kbps;
            info!(kbps, estimates_kbps = ?all, "video target");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds() -> Bounds {
        Bounds {
            min_kbps: 100,
            max_kbps: 2500,
            start_kbps: 1000,
            audio_kbps: 55,
        }
    }

    #[test]
    fn no_viewer_means_the_start_rate() {
        assert_eq!(video_target_kbps([], &bounds()), 1000);
    }

    #[test]
    fn the_strongest_viewer_sets_the_target() {
        let b = bounds();
        let one = video_target_kbps([1055], &b);
        assert_eq!(one, 800, "audio and overheads come off the estimate");
        assert_eq!(video_target_kbps([300, 1055, 600], &b), one);
    }

    #[test]
    fn the_target_stays_within_the_bounds() {
        let b = bounds();
        assert_eq!(video_target_kbps([40], &b), 100);
        assert_eq!(video_target_kbps([0], &b), 100);
        assert_eq!(video_target_kbps([90_000], &b), 2500);
    }

    #[test]
    fn a_viewer_starts_at_the_estimate_that_carries_the_start_rate() {
        let b = bounds();
        let start = b.start_estimate_kbps();
        assert!(b.video_share_kbps(start).abs_diff(b.start_kbps) <= 1);
    }

    #[test]
    fn a_viewer_gone_leaves_the_estimates() {
        let estimates = Estimates::default();
        let a = estimates.join(500);
        let b = estimates.join(900);
        a.set(700);
        assert_eq!(estimates.kbps(), vec![700, 900]);
        drop(b);
        assert_eq!(estimates.kbps(), vec![700]);
    }

    fn report(seq: u16, arrived: bool) -> PacketReport {
        PacketReport {
            ssrc: 7,
            id: u64::from(seq),
            rtp_sequence_number: seq,
            is_twcc: true,
            twcc_sequence_number: seq,
            size: 1200,
            arrived,
            departure: Instant::now(),
            arrival: arrived.then_some(Duration::from_millis(5)),
            ecn: Default::default(),
        }
    }

    #[test]
    fn a_resent_copy_reported_lost_does_not_count() {
        let mut r = Resends::default();
        assert!(r.counts(&report(1, true)));
        assert!(
            !r.counts(&report(1, false)),
            "a second copy, dropped as a replay"
        );
        assert!(r.counts(&report(2, false)), "a first loss is a loss");
        assert!(r.counts(&report(2, true)), "its resend arrived");
        assert!(!r.counts(&report(2, false)));
    }

    #[test]
    fn resends_forget_old_sequence_numbers() {
        let mut r = Resends::default();
        for seq in 0..=REMEMBERED as u16 {
            r.counts(&report(seq, true));
        }
        assert_eq!(r.seen.len(), REMEMBERED);
        assert!(r.counts(&report(0, false)), "forgotten: counted again");
    }

    #[test]
    fn the_estimator_publishes_its_estimate_and_paces_above_it() {
        let estimates = Estimates::default();
        let out = estimates.join(0);
        let mut e = Publishing {
            gcc: Gcc::new(400_000.0, 30_000.0, 3_000_000.0),
            resends: Resends::default(),
            late: LateArrivals::new().1,
            out: Arc::clone(&out),
            stats: None,
        };
        assert_eq!(out.kbps(), 0, "nothing said before any feedback");
        e.on_reports(Instant::now(), &[report(1, true)]);
        let estimate = e.gcc.target_bitrate();
        assert!(estimate > 0.0);
        assert_eq!(out.kbps(), (estimate / 1000.0) as u32);
        assert_eq!(e.target_bitrate(), estimate * PACING_FACTOR);
    }
}
