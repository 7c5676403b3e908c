//! One session's figures, live: what its media tasks count (packets, bytes, lags, the
//! capture → send delay), what its PeerConnection reports (remote address, RTT, loss),
//! and the bandwidth estimate congestion control will set. All atomics behind one `Arc`,
//! each with one writer; the status page reads them without stopping anyone.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use webrtc::peer_connection::RTCPeerConnectionState;

use super::layers::Forwarded;
use crate::media::{EncodedFrame, MediaKind};
use crate::signaling::protocol::SessionId;

/// The bandwidth estimate's "none yet".
const NO_ESTIMATE: u32 = u32::MAX;
/// The layers forwarded's "no video frame yet".
const NO_LAYERS: u8 = u8::MAX;

/// Where a session's connection is, as the status page shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum LinkState {
    /// Offer applied, answer on its way, ICE not yet checking.
    Negotiating = 0,
    Connecting = 1,
    Connected = 2,
    /// Connected once, not heard for a few seconds: ICE may still recover.
    Disconnected = 3,
    Failed = 4,
    Closed = 5,
}

impl LinkState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Negotiating => "negotiating",
            Self::Connecting => "connecting",
            Self::Connected => "connected",
            Self::Disconnected => "disconnected",
            Self::Failed => "failed",
            Self::Closed => "closed",
        }
    }

    fn from_u8(v: u8) -> Self {
        match v {
            1 => Self::Connecting,
            2 => Self::Connected,
            3 => Self::Disconnected,
            4 => Self::Failed,
            5 => Self::Closed,
            _ => Self::Negotiating,
        }
    }
}

impl From<RTCPeerConnectionState> for LinkState {
    fn from(s: RTCPeerConnectionState) -> Self {
        match s {
            RTCPeerConnectionState::Connecting => Self::Connecting,
            RTCPeerConnectionState::Connected => Self::Connected,
            RTCPeerConnectionState::Disconnected => Self::Disconnected,
            RTCPeerConnectionState::Failed => Self::Failed,
            RTCPeerConnectionState::Closed => Self::Closed,
            _ => Self::Negotiating,
        }
    }
}

/// Packets and bytes of one media kind written to the session's track.
#[derive(Debug, Default)]
struct Sent {
    packets: AtomicU64,
    bytes: AtomicU64,
}

/// How many recent video frames the capture → send delay is summed up over: about four
/// seconds at 30 fps.
pub const DELAY_WINDOW: usize = 128;

/// The last [`DELAY_WINDOW`] capture → send delays, in microseconds, written by the one
/// video task and read by whoever asks (a torn read mixes two recent samples, harmless).
#[derive(Debug)]
struct DelayRing {
    micros: [AtomicU32; DELAY_WINDOW],
    /// Samples ever written; the next goes to `written % DELAY_WINDOW`.
    written: AtomicU64,
    /// For a Prometheus summary's `_sum`.
    total_micros: AtomicU64,
}

impl Default for DelayRing {
    fn default() -> Self {
        Self {
            micros: std::array::from_fn(|_| AtomicU32::new(0)),
            written: AtomicU64::new(0),
            total_micros: AtomicU64::new(0),
        }
    }
}

impl DelayRing {
    fn record(&self, delay: Duration) {
        let us = u32::try_from(delay.as_micros()).unwrap_or(u32::MAX);
        let n = self.written.load(Ordering::Relaxed);
        self.micros[(n % DELAY_WINDOW as u64) as usize].store(us, Ordering::Relaxed);
        self.total_micros
            .fetch_add(u64::from(us), Ordering::Relaxed);
        self.written.store(n + 1, Ordering::Release);
    }

    fn summary(&self) -> Option<DelaySummary> {
        let written = self.written.load(Ordering::Acquire);
        let filled = written.min(DELAY_WINDOW as u64) as usize;
        let mut recent: Vec<u32> = self.micros[..filled]
            .iter()
            .map(|a| a.load(Ordering::Relaxed))
            .collect();
        let mut summary = DelaySummary::of(&mut recent)?;
        summary.count = written;
        summary.sum = Duration::from_micros(self.total_micros.load(Ordering::Relaxed));
        Some(summary)
    }
}

/// Capture → send over the recent window, and the totals since the session started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DelaySummary {
    pub p50: Duration,
    pub p95: Duration,
    pub max: Duration,
    /// Frames in the window.
    pub window: usize,
    /// Frames measured since the session started, and their delays summed.
    pub count: u64,
    pub sum: Duration,
}

impl DelaySummary {
    /// The median (the lower one of an even count), the 95th percentile (nearest rank)
    /// and the maximum of `micros`, which it sorts; `None` when empty.
    fn of(micros: &mut [u32]) -> Option<Self> {
        micros.sort_unstable();
        let max = *micros.last()?;
        let p50 = micros[(micros.len() - 1) / 2];
        let p95 = micros[(micros.len() * 95).div_ceil(100) - 1];
        Some(Self {
            p50: Duration::from_micros(p50.into()),
            p95: Duration::from_micros(p95.into()),
            max: Duration::from_micros(max.into()),
            window: micros.len(),
            count: micros.len() as u64,
            sum: Duration::from_micros(micros.iter().map(|&m| u64::from(m)).sum()),
        })
    }
}

/// What the viewer's receiver reports and ICE say about the link.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LinkReport {
    /// The selected candidate pair's remote end, `address:port` (the address may be an
    /// mDNS name).
    pub remote: Option<String>,
    /// The selected pair's latest STUN round trip.
    pub rtt: Option<Duration>,
    /// Video packets the receiver reports lost in all (RTCP receiver reports).
    pub packets_lost: Option<u64>,
    /// The fraction lost in the receiver's last report interval, 0..=1.
    pub fraction_lost: Option<f64>,
}

/// One session's live figures. Each field has one writer: the video and audio send tasks
/// ([`frame_sent`](Self::frame_sent), [`lagged`](Self::lagged)), the session's loop
/// ([`set_state`](Self::set_state), [`set_link`](Self::set_link)), congestion control
/// ([`set_bitrate_estimate_kbps`](Self::set_bitrate_estimate_kbps), [`heard`](Self::heard)).
#[derive(Debug)]
pub struct SessionStats {
    id: SessionId,
    started: Instant,
    state: AtomicU8,
    video: Sent,
    audio: Sent,
    lags: AtomicU64,
    delay: DelayRing,
    bitrate_estimate_kbps: AtomicU32,
    /// [`Forwarded::layers`], or [`NO_LAYERS`] before the first video frame.
    layers_forwarded: AtomicU8,
    link: Mutex<LinkReport>,
    /// When the viewer's feedback last arrived, ms after `started` ([`NEVER_HEARD`]
    /// before the first).
    heard_ms: AtomicU64,
}

/// [`SessionStats::heard_ms`] before any feedback.
const NEVER_HEARD: u64 = u64::MAX;

impl SessionStats {
    pub fn new(id: SessionId, now: Instant) -> Self {
        Self {
            id,
            started: now,
            state: AtomicU8::new(LinkState::Negotiating as u8),
            video: Sent::default(),
            audio: Sent::default(),
            lags: AtomicU64::new(0),
            delay: DelayRing::default(),
            bitrate_estimate_kbps: AtomicU32::new(NO_ESTIMATE),
            layers_forwarded: AtomicU8::new(NO_LAYERS),
            link: Mutex::default(),
            heard_ms: AtomicU64::new(NEVER_HEARD),
        }
    }

    /// The viewer's congestion feedback arrived at `now` (transport-cc, every 50–100 ms
    /// while media reaches it).
    pub fn heard(&self, now: Instant) {
        let ms = now.saturating_duration_since(self.started).as_millis() as u64;
        self.heard_ms
            .store(ms.min(NEVER_HEARD - 1), Ordering::Relaxed);
    }

    /// How long the viewer has said nothing at `now`; `None` before it first did.
    pub fn silent_for(&self, now: Instant) -> Option<Duration> {
        let ms = self.heard_ms.load(Ordering::Relaxed);
        (ms != NEVER_HEARD)
            .then(|| now.saturating_duration_since(self.started + Duration::from_millis(ms)))
    }

    fn sent(&self, kind: MediaKind) -> &Sent {
        match kind {
            MediaKind::Video => &self.video,
            MediaKind::Audio => &self.audio,
        }
    }

    /// `frame` of `kind` went out, its last packet written at `written`: for video,
    /// its capture → send delay joins the window.
    pub fn frame_sent(&self, kind: MediaKind, frame: &EncodedFrame, written: Instant) {
        let sent = self.sent(kind);
        let bytes: usize = frame.payloads.iter().map(|p| p.len()).sum();
        sent.packets
            .fetch_add(frame.payloads.len() as u64, Ordering::Relaxed);
        sent.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        if kind == MediaKind::Video {
            self.delay
                .record(written.saturating_duration_since(frame.captured));
        }
    }

    /// The viewer fell behind the shared frames and skipped ahead.
    pub fn lagged(&self) {
        self.lags.fetch_add(1, Ordering::Relaxed);
    }

    pub fn state(&self) -> LinkState {
        LinkState::from_u8(self.state.load(Ordering::Relaxed))
    }

    pub fn set_state(&self, state: LinkState) {
        self.state.store(state as u8, Ordering::Relaxed);
    }

    pub fn set_link(&self, report: LinkReport) {
        *self.link.lock().unwrap_or_else(|e| e.into_inner()) = report;
    }

    /// Congestion control's current estimate for this viewer; `None` while it has none.
    pub fn set_bitrate_estimate_kbps(&self, kbps: Option<u32>) {
        let v = kbps.map_or(NO_ESTIMATE, |k| k.min(NO_ESTIMATE - 1));
        self.bitrate_estimate_kbps.store(v, Ordering::Relaxed);
    }

    /// Which of the encoder's temporal layers the video task forwards; `None` before
    /// its first frame.
    pub fn set_layers_forwarded(&self, forwarded: Option<Forwarded>) {
        let v = forwarded.map_or(NO_LAYERS, Forwarded::layers);
        self.layers_forwarded.store(v, Ordering::Relaxed);
    }

    /// What [`set_layers_forwarded`](Self::set_layers_forwarded) said last.
    pub fn layers_forwarded(&self) -> Option<Forwarded> {
        Forwarded::from_layers(self.layers_forwarded.load(Ordering::Relaxed))
    }

    /// The figures as they are now.
    pub fn snapshot(&self, now: Instant) -> SessionSnapshot {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let estimate = self.bitrate_estimate_kbps.load(Ordering::Relaxed);
        SessionSnapshot {
            id: self.id.to_string(),
            state: self.state(),
            age: now.saturating_duration_since(self.started),
            link: self.link.lock().unwrap_or_else(|e| e.into_inner()).clone(),
            video: SentSnapshot {
                packets: get(&self.video.packets),
                bytes: get(&self.video.bytes),
            },
            audio: SentSnapshot {
                packets: get(&self.audio.packets),
                bytes: get(&self.audio.bytes),
            },
            lags: get(&self.lags),
            capture_to_send: self.delay.summary(),
            bitrate_estimate_kbps: (estimate != NO_ESTIMATE).then_some(estimate),
            layers_forwarded: self.layers_forwarded(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SentSnapshot {
    pub packets: u64,
    pub bytes: u64,
}

/// One session's figures at one moment: what `/status` and `/metrics` render.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionSnapshot {
    /// The viewer's ICE ufrag, which names the session in the log too.
    pub id: String,
    pub state: LinkState,
    pub age: Duration,
    pub link: LinkReport,
    pub video: SentSnapshot,
    pub audio: SentSnapshot,
    pub lags: u64,
    pub capture_to_send: Option<DelaySummary>,
    pub bitrate_estimate_kbps: Option<u32>,
    /// Which temporal layers the viewer is sent; `None` before its first video frame.
    pub layers_forwarded: Option<Forwarded>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame of `packets` payloads of `size` bytes each, captured at `captured`.
    fn frame(packets: usize, size: usize, captured: Instant) -> EncodedFrame {
        EncodedFrame {
            payloads: vec![bytes::Bytes::from(vec![0; size]); packets],
            rtp_time: 0,
            keyframe: false,
            captured,
            captured_wall: std::time::SystemTime::now(),
            layer: None,
        }
    }

    fn stats() -> (SessionStats, Instant) {
        let t0 = Instant::now();
        (SessionStats::new(SessionId::parse("abcd").unwrap(), t0), t0)
    }

    #[test]
    fn silence_counts_from_the_viewers_last_feedback() {
        let (s, t) = stats();
        assert_eq!(
            s.silent_for(t + Duration::from_secs(9)),
            None,
            "never heard"
        );
        s.heard(t + Duration::from_millis(1500));
        assert_eq!(
            s.silent_for(t + Duration::from_millis(4000)),
            Some(Duration::from_millis(2500))
        );
        s.heard(t + Duration::from_millis(3900));
        assert_eq!(
            s.silent_for(t + Duration::from_millis(4000)),
            Some(Duration::from_millis(100))
        );
    }

    #[test]
    fn frames_sent_are_counted_per_kind() {
        let (s, t0) = stats();
        s.frame_sent(MediaKind::Video, &frame(3, 1000, t0), t0);
        s.frame_sent(MediaKind::Video, &frame(2, 50, t0), t0);
        s.frame_sent(MediaKind::Audio, &frame(1, 80, t0), t0);
        let snap = s.snapshot(t0);
        assert_eq!(
            (snap.video, snap.audio),
            (
                SentSnapshot {
                    packets: 5,
                    bytes: 3100
                },
                SentSnapshot {
                    packets: 1,
                    bytes: 80
                }
            )
        );
    }

    #[test]
    fn the_delay_summary_covers_the_recent_video_frames_only() {
        let (s, t0) = stats();
        assert_eq!(s.snapshot(t0).capture_to_send, None);
        let ms = Duration::from_millis;
        // An early slow frame, then a full window of 1..=128 ms.
        let f = frame(1, 1, t0);
        s.frame_sent(MediaKind::Video, &f, t0 + ms(900));
        for n in 1..=DELAY_WINDOW as u64 {
            s.frame_sent(MediaKind::Video, &f, t0 + ms(n));
        }
        // Audio is not part of the video delay.
        s.frame_sent(MediaKind::Audio, &f, t0 + ms(5000));
        let d = s.snapshot(t0).capture_to_send.unwrap();
        assert_eq!(
            (d.p50, d.p95, d.max, d.window),
            (ms(64), ms(122), ms(128), DELAY_WINDOW)
        );
        assert_eq!(d.count, DELAY_WINDOW as u64 + 1);
        assert_eq!(d.sum, ms(900 + 128 * 129 / 2));
    }

    #[test]
    fn a_frame_written_before_its_stamp_counts_as_no_delay() {
        let (s, t0) = stats();
        let stamped_later = frame(1, 1, t0 + Duration::from_secs(1));
        s.frame_sent(MediaKind::Video, &stamped_later, t0);
        assert_eq!(s.snapshot(t0).capture_to_send.unwrap().max, Duration::ZERO);
    }

    #[test]
    fn lags_state_link_and_estimate_show_in_the_snapshot() {
        let (s, t0) = stats();
        let snap = s.snapshot(t0);
        assert_eq!(snap.state, LinkState::Negotiating);
        assert_eq!(snap.bitrate_estimate_kbps, None);
        assert_eq!(snap.layers_forwarded, None);
        assert_eq!(snap.link, LinkReport::default());
        s.lagged();
        s.lagged();
        s.set_state(RTCPeerConnectionState::Connected.into());
        s.set_bitrate_estimate_kbps(Some(750));
        s.set_layers_forwarded(Some(Forwarded::Base));
        let link = LinkReport {
            remote: Some("192.0.2.7:50000".into()),
            rtt: Some(Duration::from_millis(12)),
            packets_lost: Some(3),
            fraction_lost: Some(0.25),
        };
        s.set_link(link.clone());
        let snap = s.snapshot(t0 + Duration::from_secs(2));
        assert_eq!(snap.lags, 2);
        assert_eq!(snap.state, LinkState::Connected);
        assert_eq!(snap.bitrate_estimate_kbps, Some(750));
        assert_eq!(snap.layers_forwarded, Some(Forwarded::Base));
        assert_eq!(snap.link, link);
        assert_eq!(snap.age, Duration::from_secs(2));
        s.set_bitrate_estimate_kbps(None);
        assert_eq!(s.snapshot(t0).bitrate_estimate_kbps, None);
    }
}
