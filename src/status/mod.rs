//! Status for people and machines: one [`Snapshot`] of the daemon (signaling, media
//! pipeline, every session's figures), rendered as JSON ([`json`], `GET /status`) or in
//! Prometheus' text format ([`prometheus`], `GET /metrics`), served behind the access
//! token by [`http`] on the embedded server or on `status.listen`.
//!
//! The registry stays the sessions' one owner: a request reaches the daemon's loop as a
//! message ([`StatusSource::snapshot`]) and comes back as a snapshot built there, so no
//! lock is shared with the loop and nothing it owns is copied elsewhere.

#[cfg(feature = "embedded-server")]
pub mod http;
pub mod json;
pub mod prometheus;
pub mod rates;

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::media::frame::StatsSnapshot;
use crate::session::stats::SessionSnapshot;

pub use rates::FrameRates;

/// The daemon at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub uptime: Duration,
    pub signaling: SignalingStatus,
    pub media: MediaStatus,
    pub max_sessions: usize,
    /// Oldest first.
    pub sessions: Vec<SessionSnapshot>,
}

/// Where campeer's room is and whether it is in it.
#[derive(Debug, Clone, PartialEq)]
pub struct SignalingStatus {
    /// The external relay's URL (credentials redacted), or `None` for the embedded one.
    pub relay: Option<String>,
    /// The room as JSON, with its type (`1` and `"1"` are different rooms).
    pub room: serde_json::Value,
    /// Room joins so far: the first, and one per reconnect. 0 while still connecting.
    pub joins: u64,
}

impl SignalingStatus {
    pub fn state(&self) -> &'static str {
        if self.joins > 0 {
            "joined"
        } else {
            "connecting"
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MediaStatus {
    pub counters: StatsSnapshot,
    pub rates: FrameRates,
}

/// How a request for a snapshot waits for its answer.
pub type StatusRequest = oneshot::Sender<Snapshot>;
/// The daemon loop's side: it answers each request with a fresh snapshot.
pub type StatusRequests = mpsc::Receiver<StatusRequest>;

/// The HTTP side's handle: asks the daemon loop for a snapshot.
#[derive(Clone)]
pub struct StatusSource {
    tx: mpsc::Sender<StatusRequest>,
}

/// Requests waiting for the loop at once; more wait to be queued (they are authenticated
/// before they ask).
const PENDING_REQUESTS: usize = 8;

impl StatusSource {
    pub fn channel() -> (Self, StatusRequests) {
        let (tx, rx) = mpsc::channel(PENDING_REQUESTS);
        (Self { tx }, rx)
    }

    /// A snapshot from the daemon loop; `None` when it has stopped.
    pub async fn snapshot(&self) -> Option<Snapshot> {
        let (reply, answer) = oneshot::channel();
        self.tx.send(reply).await.ok()?;
        answer.await.ok()
    }
}

/// The short line for `systemctl status` and the periodic log line: viewers, room, and
/// the worst session's capture → send delay.
pub fn summary_line(viewers: usize, room: &str, sessions: &[SessionSnapshot]) -> String {
    let mut line = format!("{viewers} viewer(s), room {room}");
    let delays = sessions.iter().filter_map(|s| s.capture_to_send);
    if let Some((p50, max)) = delays.fold(None, |worst: Option<(Duration, Duration)>, d| {
        Some(worst.map_or((d.p50, d.max), |(p, m)| (p.max(d.p50), m.max(d.max))))
    }) {
        line += &format!(
            ", capture→send p50 {} ms, max {} ms",
            p50.as_millis(),
            max.as_millis()
        );
    }
    line
}

#[cfg(test)]
pub(crate) mod fixture {
    //! One fixed snapshot both renderers are tested on.

    use super::*;
    use crate::session::layers::Forwarded;
    use crate::session::stats::{DelaySummary, LinkReport, LinkState, SentSnapshot};

    pub fn snapshot() -> Snapshot {
        let ms = Duration::from_millis;
        Snapshot {
            uptime: Duration::from_secs(90),
            signaling: SignalingStatus {
                relay: None,
                room: serde_json::json!(1),
                joins: 1,
            },
            media: MediaStatus {
                counters: StatsSnapshot {
                    video_captured: 2700,
                    video_dropped: 3,
                    video_encoded: 2000,
                    video_rested: 697,
                    video_keyframes: 12,
                    video_bytes: 4_000_000,
                    audio_captured: 4500,
                    audio_dropped: 0,
                    audio_encoded: 4500,
                    audio_bytes: 360_000,
                },
                rates: FrameRates {
                    video_captured_fps: Some(30.0),
                    video_encoded_fps: Some(29.5),
                },
            },
            max_sessions: 8,
            sessions: vec![
                SessionSnapshot {
                    id: "abcd".into(),
                    state: LinkState::Connected,
                    age: Duration::from_secs(60),
                    link: LinkReport {
                        remote: Some("192.0.2.7:50000".into()),
                        rtt: Some(ms(12)),
                        packets_lost: Some(4),
                        fraction_lost: Some(0.5),
                    },
                    video: SentSnapshot {
                        packets: 5000,
                        bytes: 4_500_000,
                    },
                    audio: SentSnapshot {
                        packets: 3000,
                        bytes: 240_000,
                    },
                    lags: 2,
                    capture_to_send: Some(DelaySummary {
                        p50: ms(4),
                        p95: ms(9),
                        max: ms(15),
                        window: 128,
                        count: 1800,
                        sum: ms(9000),
                    }),
                    bitrate_estimate_kbps: None,
                    layers_forwarded: Some(Forwarded::Base),
                },
                SessionSnapshot {
                    id: "we\"ird".into(),
                    state: LinkState::Negotiating,
                    age: ms(500),
                    link: LinkReport::default(),
                    video: SentSnapshot::default(),
                    audio: SentSnapshot::default(),
                    lags: 0,
                    capture_to_send: None,
                    bitrate_estimate_kbps: Some(800),
                    layers_forwarded: None,
                },
            ],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_line_names_viewers_room_and_the_worst_delay() {
        let snap = fixture::snapshot();
        assert_eq!(
            summary_line(2, "1", &snap.sessions),
            "2 viewer(s), room 1, capture→send p50 4 ms, max 15 ms"
        );
        assert_eq!(summary_line(0, "1", &[]), "0 viewer(s), room 1");
    }

    #[tokio::test]
    async fn a_snapshot_is_asked_of_whoever_holds_the_requests() {
        let (source, mut requests) = StatusSource::channel();
        let answer = tokio::spawn(async move {
            let reply = requests.recv().await.expect("a request");
            let _ = reply.send(fixture::snapshot());
        });
        assert_eq!(source.snapshot().await, Some(fixture::snapshot()));
        answer.await.unwrap();
        assert_eq!(source.snapshot().await, None, "the loop has stopped");
    }
}
