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
    Registry, Slot, TwccReceiverBuilder, TwccSenderBuilder,
};
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpHeaderExtensionCapability, RtpCodecKind, TYPE_RTCP_FB_TRANSPORT_CC,
};
use rtc::sdp::extmap::TRANSPORT_CC_URI;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};
use webrtc::peer_connection::MediaEngine;

use super::late_arrivals::{self, LateArrivals};
use super::queue_delay::QueueGuard;
use super::rtx::RtxBound;
use super::stats::SessionStats;
use crate::config::Config;
use crate::media::VideoBitrate;
use crate::media::video::vp8::{BASE_LAYER_SHARE, LayerRates};

/// Packets a pacer holds before refusing more: about 300 ms at 200 kbit/s. Longer queues
/// (the library's default is 4096) held resends past the viewer's patience.
pub(super) const PACER_QUEUE_LIMIT: usize = 16;
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

/// A weak viewer may pull the encoder's total down to this share of what the strongest
/// could take, so that the base layer fits its link; one weaker still is sent keyframes
/// only and costs the others nothing. A fifth, so that a 300 kbit/s viewer is served
/// beside one at the 2500 kbit/s ceiling: under the noisy pattern its estimate dips to
/// 196–216 kbit/s, once to 142, which at a quarter (a floor of 142) left it keyframes
/// only (at a half, it always was); a 120 kbit/s viewer's reads about 105.
const WEAK_VIEWER_COST: f64 = 0.2;
/// The base layer never gets less than this share of the total (TL1 frames refer only
/// to base frames: a starved base makes every TL1 frame nearly a keyframe).
const MIN_BASE_SHARE: f64 = 0.1;
/// The base layer is sized to this share of the weakest viewer's video share, leaving
/// it room for its keyframes and resends.
const BASE_FIT: f64 = 0.9;

/// What the encoder may be asked for, from `[video]` and `[audio]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub min_kbps: u32,
    pub max_kbps: u32,
    /// Before any viewer has said anything.
    pub start_kbps: u32,
    /// What audio takes of every viewer's estimate.
    pub audio_kbps: u32,
    /// The encoder's temporal layers, 1 or 2.
    pub temporal_layers: u8,
}

impl Bounds {
    pub fn from_config(cfg: &Config) -> Self {
        let v = &cfg.video;
        Self {
            min_kbps: v.min_bitrate_kbps,
            max_kbps: v.max_bitrate_kbps,
            start_kbps: v.start_bitrate_kbps(),
            audio_kbps: cfg.audio.bitrate_kbps + AUDIO_HEADERS_KBPS,
            temporal_layers: v.temporal_layers,
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

    /// Where a newcomer's estimate starts while the encoder's total is `total_kbps`: where
    /// its video share carries that total, so it is sent every layer from its first frame
    /// (the others' estimates vouch for the camera's uplink; a weak link's losses bring it
    /// down within a second, and the layer selector follows after its grace). Never below
    /// [`start_estimate_kbps`](Self::start_estimate_kbps): beside weaker viewers a
    /// newcomer starts as the first viewer does.
    pub fn newcomer_estimate_kbps(&self, total_kbps: u32) -> u32 {
        self.estimate_for(total_kbps.max(self.start_kbps))
    }

    /// The estimate that carries `video_kbps` of video (rounded up, so that its
    /// [`video_share_kbps`](Self::video_share_kbps) is not a kbps short of it).
    fn estimate_for(&self, video_kbps: u32) -> u32 {
        (f64::from(video_kbps) / VIDEO_PAYLOAD_SHARE).ceil() as u32 + self.audio_kbps
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

/// The encoder's layer rates for the viewers' path estimates: the total is the
/// strongest viewer's latest ([`video_target_kbps`]); the base layer is sized to fit the
/// weakest viewer it can serve (by its lowest estimate lately), from [`MIN_BASE_SHARE`]
/// up to the usual split, and the total comes down for that viewer to no less than
/// [`WEAK_VIEWER_COST`] of the strongest's.
///
/// A viewer is left to keyframes only when its latest estimate, not only its lowest
/// lately, is under what the smallest base layer needs: a viewer sent keyframes only is
/// sent little, so its estimate follows that and does not climb back; one dip of a
/// viewer that carries a base layer must not leave it there.
pub fn layer_rates(readings: &[Reading], b: &Bounds) -> LayerRates {
    let strongest = video_target_kbps(readings.iter().map(|r| r.kbps), b);
    if b.temporal_layers < 2 {
        return LayerRates::single(strongest);
    }
    let floor = f64::from(strongest) * WEAK_VIEWER_COST * MIN_BASE_SHARE;
    let fit = |kbps: u32| f64::from(b.video_share_kbps(kbps)) * BASE_FIT;
    let weakest = readings
        .iter()
        .filter(|r| fit(r.kbps) >= floor)
        .map(|r| fit(r.low_kbps).max(floor))
        .fold(f64::INFINITY, f64::min);
    if !weakest.is_finite() {
        return LayerRates::split(strongest);
    }
    let total = f64::from(strongest)
        .min(weakest / MIN_BASE_SHARE)
        .max(f64::from(b.min_kbps));
    LayerRates {
        base_kbps: weakest.clamp(total * MIN_BASE_SHARE, total * BASE_LAYER_SHARE) as u32,
        total_kbps: total as u32,
    }
}

/// One viewer's path estimate, kbps: written by its estimator, read by [`steer`] and
/// by its session's choice of layers.
#[derive(Debug, Default)]
pub struct Estimate {
    latest: AtomicU32,
    /// The lowest over the last [`LOW_WINDOW`]: what the link held at its worst lately.
    low: AtomicU32,
}

impl Estimate {
    fn new(kbps: u32) -> Self {
        Self {
            latest: AtomicU32::new(kbps),
            low: AtomicU32::new(kbps),
        }
    }

    pub fn kbps(&self) -> u32 {
        self.latest.load(Ordering::Relaxed)
    }

    pub fn low_kbps(&self) -> u32 {
        self.low.load(Ordering::Relaxed)
    }

    fn set(&self, kbps: u32, low_kbps: u32) {
        self.latest.store(kbps, Ordering::Relaxed);
        self.low.store(low_kbps, Ordering::Relaxed);
    }
}

/// One viewer's estimate as [`layer_rates`] weighs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    pub kbps: u32,
    /// The lowest lately: under a token bucket GCC's loss half climbs past the link until
    /// it loses, then falls back; a base layer sized to the latest would follow it over.
    pub low_kbps: u32,
}

/// What a published estimate may exceed what the viewer is receiving by, on a path that
/// lost packets lately: there GCC's loss half climbs back past the link while a session
/// sends less than its estimate (a viewer sent only the base layer), with nothing to say
/// it is wrong until it is used. libwebrtc clamps its delay-based estimate to 1.5 times
/// the acknowledged rate for the same reason. A path that has not lost is left alone, so
/// a viewer that could carry more is not held where it is.
const ACKED_HEADROOM: f64 = 2.0;
/// Lost this share of packets (GCC's smoothed loss)…
const LOSSY: f64 = 0.02;
/// …this recently: the path is held to what it has proven. Also how often a viewer held
/// to the base layer gets to try more.
const LOSSY_FOR: Duration = Duration::from_secs(30);
/// Over how long the received rate is measured.
const ACKED_WINDOW: Duration = Duration::from_secs(1);

/// The rate a viewer acknowledges receiving (TWCC reports of packets that arrived) over
/// the last `window`.
pub(super) struct AckedRate {
    window: Duration,
    since: Option<Instant>,
    arrived: VecDeque<(Instant, usize)>,
    bytes: usize,
}

impl AckedRate {
    pub(super) fn new(window: Duration) -> Self {
        Self {
            window,
            since: None,
            arrived: VecDeque::new(),
            bytes: 0,
        }
    }

    /// Adds `reports` at `now`; returns the rate in kbps once a whole window is known.
    pub(super) fn add(&mut self, now: Instant, reports: &[PacketReport]) -> Option<u32> {
        let since = *self.since.get_or_insert(now);
        let bytes = reports.iter().filter(|r| r.arrived).map(|r| r.size).sum();
        self.arrived.push_back((now, bytes));
        self.bytes += bytes;
        // A report as old as the window is out of it: with feedback every 100 ms, keeping
        // it counted one feedback too many (four in a 300 ms window).
        while let Some(&(at, b)) = self.arrived.front()
            && now.saturating_duration_since(at) >= self.window
        {
            self.arrived.pop_front();
            self.bytes -= b;
        }
        (now.saturating_duration_since(since) >= self.window)
            .then(|| (self.bytes as f64 * 8.0 / self.window.as_secs_f64() / 1000.0) as u32)
    }
}

/// How far back [`Estimate::low_kbps`] looks: a few of GCC's climbs and falls.
const LOW_WINDOW: Duration = Duration::from_secs(10);

/// The minimum of the values of the last `window` (a monotonic queue: each value leaves
/// once a later one is no larger, or once it is too old).
pub(super) struct LowWindow<T> {
    window: Duration,
    values: VecDeque<(Instant, T)>,
}

impl<T: PartialOrd + Copy> LowWindow<T> {
    pub(super) fn new(window: Duration) -> Self {
        Self {
            window,
            values: VecDeque::new(),
        }
    }

    /// Adds `value` at `now`; returns the minimum of the window.
    pub(super) fn push(&mut self, now: Instant, value: T) -> T {
        while self.values.back().is_some_and(|&(_, v)| v >= value) {
            self.values.pop_back();
        }
        self.values.push_back((now, value));
        while self
            .values
            .front()
            .is_some_and(|&(at, _)| now.saturating_duration_since(at) > self.window)
        {
            self.values.pop_front();
        }
        self.values.front().map_or(value, |&(_, v)| v)
    }
}

/// Every live viewer's [`Estimate`]; a viewer's drops out when its session drops it.
#[derive(Clone, Default)]
pub struct Estimates(Arc<Mutex<Vec<Weak<Estimate>>>>);

impl Estimates {
    /// A new viewer's estimate, starting where its estimator does.
    pub fn join(&self, start_kbps: u32) -> Arc<Estimate> {
        let estimate = Arc::new(Estimate::new(start_kbps));
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        all.retain(|e| e.strong_count() > 0);
        all.push(Arc::downgrade(&estimate));
        estimate
    }

    /// The live viewers' estimates.
    pub fn readings(&self) -> Vec<Reading> {
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        all.retain(|e| e.strong_count() > 0);
        all.iter()
            .filter_map(|e| {
                let e = e.upgrade()?;
                Some(Reading {
                    kbps: e.kbps(),
                    low_kbps: e.low_kbps(),
                })
            })
            .collect()
    }

    /// The live viewers' latest estimates, kbps.
    pub fn kbps(&self) -> Vec<u32> {
        self.readings().iter().map(|r| r.kbps).collect()
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

    /// A new viewer's share: its estimate, starting where it carries what the encoder
    /// sends the others ([`Bounds::newcomer_estimate_kbps`]), counted until the session
    /// drops it, and shown in its `stats` once feedback has said something.
    pub(super) fn join(&self, stats: Arc<SessionStats>) -> SessionCongestion {
        let total = layer_rates(&self.estimates.readings(), &self.bounds).total_kbps;
        let start_kbps = self.bounds.newcomer_estimate_kbps(total);
        SessionCongestion {
            bounds: self.bounds,
            start_kbps,
            estimate: self.estimates.join(start_kbps),
            stats,
        }
    }
}

/// One session's congestion control: its estimate, where it starts, and the bounds.
pub(super) struct SessionCongestion {
    pub(super) bounds: Bounds,
    pub(super) start_kbps: u32,
    pub(super) estimate: Arc<Estimate>,
    pub(super) stats: Arc<SessionStats>,
}

impl SessionCongestion {
    pub(super) fn video_share(&self) -> VideoShare {
        VideoShare {
            bounds: self.bounds,
            estimate: Arc::clone(&self.estimate),
        }
    }
}

/// What of one viewer's estimate video may take: what its send task weighs the
/// encoder's layers against.
#[derive(Clone)]
pub(super) struct VideoShare {
    bounds: Bounds,
    estimate: Arc<Estimate>,
}

impl VideoShare {
    pub(super) fn kbps(&self) -> u32 {
        self.bounds.video_share_kbps(self.estimate.kbps())
    }
}

/// Sequence numbers a [`Resends`] remembers: a few seconds of video.
const REMEMBERED: usize = 4096;

/// Keeps resent copies' losses out of the estimate. A packet resent on a NACK to a viewer
/// without RTX goes out under its original sequence number; when it is NACKed twice the
/// viewer gets two copies, SRTP drops the second as a replay, and TWCC reports that copy
/// lost although the packet arrived. Counted, those phantom losses held the estimate at
/// its floor after a burst of loss, on a link with room to spare
/// (`tests/bitrate_follows_the_link.rs`). An RTX copy has an SSRC and sequence number of
/// its own, so it is never a replay: its report is always a first, and counts.
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
///
/// What it publishes may go under GCC's floor (what the encoder's minimum and audio
/// need): that floor is for the pacer, which must not hold back what is sent; the
/// published figure is what the link carries, and a link under the base layer must read
/// as such for its viewer to be sent keyframes only (`layers.rs`) rather than a base
/// layer it can only lose.
struct Publishing {
    gcc: Gcc,
    resends: Resends,
    late: LateArrivals,
    acked: AckedRate,
    /// When GCC last saw [`LOSSY`] loss.
    lossy_at: Option<Instant>,
    /// Holds the estimate under the link while a queue builds, which GCC does not.
    queue: QueueGuard,
    low: LowWindow<u32>,
    out: Arc<Estimate>,
    stats: Option<Arc<SessionStats>>,
}

impl Publishing {
    /// Publishes GCC's target, on a lossy path held to [`ACKED_HEADROOM`] times what the
    /// viewer received.
    fn publish(&mut self, now: Instant, acked_kbps: Option<u32>, held_kbps: Option<u32>) {
        let mut kbps = (self.gcc.target_bitrate() / 1000.0) as u32;
        if let Some(held) = held_kbps {
            kbps = kbps.min(held);
        }
        if self.gcc.stats().packet_loss.is_some_and(|l| l > LOSSY) {
            self.lossy_at = Some(now);
        }
        let lossy = self
            .lossy_at
            .is_some_and(|at| now.saturating_duration_since(at) < LOSSY_FOR);
        if let Some(acked) = acked_kbps.filter(|_| lossy) {
            let proven = (f64::from(acked) * ACKED_HEADROOM) as u32;
            kbps = kbps.min(proven);
        }
        let gcc = self.gcc.stats();
        // Each feedback's figures, to tell which half steered and what held it.
        debug!(
            kbps,
            delay_kbps = gcc.delay_based_bitrate.unwrap_or(0.0) as u32 / 1000,
            loss_kbps = gcc.loss_based_bitrate.unwrap_or(0.0) as u32 / 1000,
            loss = gcc.packet_loss.unwrap_or(0.0),
            ?acked_kbps,
            ?held_kbps,
            "estimate published"
        );
        self.out.set(kbps, self.low.push(now, kbps));
        if let Some(stats) = &self.stats {
            stats.set_bitrate_estimate_kbps(Some(kbps));
        }
    }
}

impl BandwidthEstimator for Publishing {
    fn on_reports(&mut self, now: Instant, reports: &[PacketReport]) {
        if let Some(stats) = &self.stats {
            stats.heard(now);
        }
        let counted: Vec<PacketReport> = reports
            .iter()
            .filter(|r| self.resends.counts(r))
            .cloned()
            .collect();
        let heard = self.late.sort(now, counted);
        self.gcc.on_reports(now, &heard);
        let acked = self.acked.add(now, &heard);
        let held = self.queue.on_reports(now, reports);
        self.publish(now, acked, held);
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
        start_kbps: start,
        estimate,
        stats,
    } = session;
    let bps = |kbps: u32| f64::from(kbps) * 1000.0;
    let gcc = Gcc::new(
        bps(*start),
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
        acked: AckedRate::new(ACKED_WINDOW),
        lossy_at: None,
        queue: QueueGuard::new(),
        low: LowWindow::new(LOW_WINDOW),
        out: Arc::clone(estimate),
        stats: Some(Arc::clone(stats)),
    };
    // What `configure_congestion_control` assembles, with its pacer built here: started at
    // our rate (its default is 1 Mbit/s until the first estimate) and with a short queue
    // (its default holds 4096 packets, seconds at a low rate). Replacing its pacer
    // afterwards would log a warning per session. The TWCC numbering and the send history
    // see RTX resends too ([`RtxBound`]).
    Ok(twcc(registry, engine)?
        .with(Slot::from(late_arrivals::SLOT), tap)
        .with(
            Slot::CongestionControl,
            RtxBound(CongestionControlBuilder::new(estimator).build()),
        )
        .with(
            Slot::Pacer,
            PacerBuilder::new()
                .with_target_bitrate(bps(*start) * PACING_FACTOR)
                .with_queue_limit(PACER_QUEUE_LIMIT)
                .build(),
        ))
}

/// What the library's `configure_twcc` does (`transport-cc` feedback and the
/// transport-wide sequence number extension for every codec registered so far, and the
/// TWCC interceptors), its numbering extended to RTX resends.
fn twcc(registry: Registry, engine: &mut MediaEngine) -> Result<Registry, webrtc::error::Error> {
    for kind in [RtpCodecKind::Video, RtpCodecKind::Audio] {
        engine.register_feedback(
            RTCPFeedback {
                typ: TYPE_RTCP_FB_TRANSPORT_CC.to_owned(),
                parameter: String::new(),
            },
            kind,
        );
        engine.register_header_extension(
            RTCRtpHeaderExtensionCapability {
                uri: TRANSPORT_CC_URI.to_owned(),
            },
            kind,
            None,
        )?;
    }
    Ok(registry
        .with(Slot::TwccSender, RtxBound(TwccSenderBuilder::new().build()))
        .with(Slot::TwccReceiver, TwccReceiverBuilder::new().build()))
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
        let readings = estimates.readings();
        let rates = layer_rates(&readings, &bounds);
        let all: Vec<u32> = readings.iter().map(|r| r.kbps).collect();
        if rates == target.rates() {
            continue;
        }
        target.set(rates);
        let kbps = rates.total_kbps;
        let step = logged.abs_diff(kbps) * 10 >= logged * LOG_STEP_TENTHS;
        let bound = kbps == bounds.min_kbps || kbps == bounds.max_kbps;
        if step || bound {
            logged = kbps;
            info!(kbps, base_kbps = rates.base_kbps, estimates_kbps = ?all, "video target");
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    fn bounds() -> Bounds {
        Bounds {
            min_kbps: 100,
            max_kbps: 2500,
            start_kbps: 1000,
            audio_kbps: 55,
            temporal_layers: 2,
        }
    }

    /// A steady estimate whose video share is `video_kbps`.
    fn estimate(video_kbps: u32) -> Reading {
        let kbps = bounds().estimate_for(video_kbps);
        Reading {
            kbps,
            low_kbps: kbps,
        }
    }

    #[test]
    fn viewers_alike_get_the_usual_split() {
        let r = layer_rates(&[estimate(1000), estimate(1000)], &bounds());
        assert_eq!(r.total_kbps.abs_diff(1000), 0, "{r:?}");
        assert!(r.base_kbps.abs_diff(600) <= 1, "{r:?}");
    }

    #[test]
    fn the_base_layer_shrinks_to_fit_a_weaker_viewer() {
        let r = layer_rates(&[estimate(2000), estimate(400)], &bounds());
        assert_eq!(r.total_kbps, 2000, "the strongest keeps its rate");
        assert!(
            r.base_kbps.abs_diff(360) <= 1,
            "90 % of the weak share: {r:?}"
        );
    }

    #[test]
    fn a_weak_viewer_costs_the_strongest_at_most_four_fifths() {
        let b = bounds();
        let r = layer_rates(&[estimate(2000), estimate(200)], &b);
        assert!(
            r.total_kbps.abs_diff(1800) <= 1,
            "180 kbps is 10 % of 1800: {r:?}"
        );
        assert!(r.base_kbps.abs_diff(180) <= 1, "{r:?}");
        let r = layer_rates(&[estimate(2000), estimate(100)], &b);
        assert!(
            r.total_kbps.abs_diff(900) <= 1,
            "90 kbps is 10 % of 900: {r:?}"
        );
        let r = layer_rates(&[estimate(2000), estimate(40)], &b);
        assert_eq!(
            r,
            LayerRates::split(2000),
            "too weak to serve at a fifth: keyframes only, at no cost"
        );
    }

    #[test]
    fn a_viewer_whose_latest_carries_a_base_layer_is_served_through_a_dip() {
        let b = bounds();
        // Latest: a share of 200; lowest lately: a share of 20, under the floor (40).
        let dipped = Reading {
            low_kbps: b.estimate_for(20),
            ..estimate(200)
        };
        let r = layer_rates(&[estimate(2000), dipped], &b);
        assert!(r.total_kbps.abs_diff(400) <= 1, "a fifth of 2000: {r:?}");
        assert!(r.base_kbps.abs_diff(40) <= 1, "the smallest base: {r:?}");
        // Both under the floor: keyframes only.
        let gone = Reading {
            kbps: b.estimate_for(30),
            low_kbps: b.estimate_for(20),
        };
        assert_eq!(
            layer_rates(&[estimate(2000), gone], &b),
            LayerRates::split(2000)
        );
    }

    #[test]
    fn one_layer_gets_the_whole_target() {
        let b = Bounds {
            temporal_layers: 1,
            ..bounds()
        };
        let r = layer_rates(&[estimate(2000), estimate(200)], &b);
        assert_eq!(
            r,
            LayerRates::single(video_target_kbps([estimate(2000).kbps], &b))
        );
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
    fn a_newcomer_starts_where_it_carries_what_the_others_are_sent() {
        let b = bounds();
        let others = [estimate(2000), estimate(400)];
        let total = layer_rates(&others, &b).total_kbps;
        let start = b.newcomer_estimate_kbps(total);
        assert_eq!(
            b.video_share_kbps(start),
            total,
            "every layer from the start"
        );
        let with_newcomer = [
            others[0],
            others[1],
            Reading {
                kbps: start,
                low_kbps: start,
            },
        ];
        assert_eq!(
            layer_rates(&with_newcomer, &b),
            layer_rates(&others, &b),
            "and the encoder's rates stay where the others put them"
        );
    }

    #[test]
    fn a_newcomer_beside_weaker_viewers_starts_at_the_start_rate() {
        let b = bounds();
        assert_eq!(b.newcomer_estimate_kbps(300), b.start_estimate_kbps());
        let alone = layer_rates(&[], &b).total_kbps;
        assert_eq!(b.newcomer_estimate_kbps(alone), b.start_estimate_kbps());
    }

    #[test]
    fn a_viewer_gone_leaves_the_estimates() {
        let estimates = Estimates::default();
        let a = estimates.join(500);
        let b = estimates.join(900);
        a.set(700, 500);
        assert_eq!(estimates.kbps(), vec![700, 900]);
        drop(b);
        assert_eq!(estimates.kbps(), vec![700]);
    }

    /// A 1200-byte packet's report, sent now and (if it arrived) 5 ms after the receiver's
    /// clock started.
    pub(in crate::session) fn report(seq: u16, arrived: bool) -> PacketReport {
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

    /// An estimator starting at `start_bps`, publishing to the estimate returned.
    fn publishing(start_bps: f64) -> (Publishing, Arc<Estimate>) {
        let out = Estimates::default().join(0);
        let e = Publishing {
            gcc: Gcc::new(start_bps, 30_000.0, 3_000_000.0),
            resends: Resends::default(),
            late: LateArrivals::new().1,
            acked: AckedRate::new(ACKED_WINDOW),
            lossy_at: None,
            queue: QueueGuard::new(),
            low: LowWindow::new(LOW_WINDOW),
            out: Arc::clone(&out),
            stats: None,
        };
        (e, out)
    }

    #[test]
    fn the_estimator_publishes_its_estimate_and_paces_above_it() {
        let (mut e, out) = publishing(400_000.0);
        assert_eq!(out.kbps(), 0, "nothing said before any feedback");
        e.on_reports(Instant::now(), &[report(1, true)]);
        let estimate = e.gcc.target_bitrate();
        assert!(estimate > 0.0);
        assert_eq!(out.kbps(), (estimate / 1000.0) as u32);
        assert_eq!(e.target_bitrate(), estimate * PACING_FACTOR);
    }

    #[test]
    fn the_base_layer_fits_a_viewer_at_its_lowest_lately() {
        let climbing = Reading {
            low_kbps: estimate(200).kbps,
            ..estimate(600)
        };
        let r = layer_rates(&[estimate(2000), climbing], &bounds());
        assert!(r.base_kbps.abs_diff(180) <= 1, "{r:?}");
    }

    #[test]
    fn the_low_is_the_minimum_of_the_window() {
        let mut w = LowWindow::new(LOW_WINDOW);
        let t = Instant::now();
        let s = Duration::from_secs;
        assert_eq!(w.push(t, 500), 500);
        assert_eq!(w.push(t + s(1), 200), 200);
        assert_eq!(w.push(t + s(2), 900), 200);
        assert_eq!(w.push(t + s(9), 700), 200);
        assert_eq!(w.push(t + s(12), 800), 700, "the 200 is too old");
        assert_eq!(w.push(t + s(30), 900), 900);
    }

    #[test]
    fn a_link_under_gccs_floor_reads_under_it_while_gcc_keeps_it_for_the_pacer() {
        let (mut e, out) = publishing(400_000.0);
        e.gcc = Gcc::new(400_000.0, 180_000.0, 3_000_000.0);
        let t = Instant::now();
        // A packet of 1200 bytes every 100 ms (96 kbit/s), every other one lost.
        for n in 0..40 {
            let at = t + Duration::from_millis(100 * u64::from(n));
            e.on_reports(at, &[report(n, n % 2 == 0)]);
        }
        assert!(e.gcc.target_bitrate() >= 180_000.0, "GCC holds its floor");
        let published = out.kbps();
        assert!(
            published < 180,
            "what arrives (48 kbit/s) with headroom, not the floor: {published}"
        );
    }

    #[test]
    fn after_loss_the_published_estimate_is_held_to_twice_what_arrives() {
        let (mut e, out) = publishing(3_000_000.0);
        let t = Instant::now();
        let at = |n: u16| t + Duration::from_millis(100 * u64::from(n));
        // 10 packets of 1200 bytes every 100 ms: 960 kbit/s, none lost.
        let batch = |n: u16, lost: u16| -> Vec<PacketReport> {
            (0..10).map(|k| report(n * 10 + k, k >= lost)).collect()
        };
        for n in 0..=15 {
            e.on_reports(at(n), &batch(n, 0));
        }
        assert_eq!(
            f64::from(out.kbps()),
            (e.gcc.target_bitrate() / 1000.0).floor(),
            "a path that lost nothing is not held"
        );
        e.on_reports(at(16), &batch(16, 5));
        for n in 17..=30 {
            e.on_reports(at(n), &batch(n, 0));
        }
        let published = out.kbps();
        assert!(
            (1700..=2200).contains(&published),
            "about twice 960 kbit/s: {published}"
        );
        assert!(f64::from(published) < e.gcc.target_bitrate() / 1000.0);
    }
}
