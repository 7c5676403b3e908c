//! `GET /metrics`: the snapshot in Prometheus' text exposition format (version 0.0.4):
//! `campeer_` names, base units (seconds, bytes), counters ending in `_total`, and one
//! `session` label (the viewer's ICE ufrag) on the per-session series. A figure not
//! known yet (no RTT measured, no receiver report, no bandwidth estimate) has no sample.

use std::fmt::Write;

use super::Snapshot;
use crate::session::stats::SessionSnapshot;

/// The `Content-Type` Prometheus expects for this format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
    Summary,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Summary => "summary",
        }
    }
}

/// The text being written: one family (HELP, TYPE, samples) at a time.
struct Exposition(String);

impl Exposition {
    fn family(&mut self, name: &str, kind: Kind, help: &str) -> &mut Self {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {}", kind.as_str());
        self
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Into<f64>) -> &mut Self {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                let sep = if i == 0 { "" } else { "," };
                let _ = write!(self.0, "{sep}{k}=\"{}\"", escape(v));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {}", value.into());
        self
    }

    /// A family with one unlabelled sample.
    fn single(&mut self, name: &str, kind: Kind, help: &str, value: impl Into<f64>) {
        self.family(name, kind, help).sample(name, &[], value);
    }

    /// A family with one sample per session that has a value for it.
    fn per_session<V: Into<f64>>(
        &mut self,
        sessions: &[SessionSnapshot],
        name: &str,
        kind: Kind,
        help: &str,
        value: impl Fn(&SessionSnapshot) -> Option<V>,
    ) {
        self.family(name, kind, help);
        for s in sessions {
            if let Some(v) = value(s) {
                self.sample(name, &[("session", &s.id)], v);
            }
        }
    }
}

/// A label value as the format wants it: backslash, double quote and newline escaped.
fn escape(v: &str) -> String {
    v.replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Counts as `f64` samples; exact up to 2^53, years of any counter here.
fn n(v: u64) -> f64 {
    v as f64
}

pub fn render(snap: &Snapshot) -> String {
    let mut out = Exposition(String::new());
    daemon(&mut out, snap);
    media(&mut out, snap);
    sessions(&mut out, &snap.sessions);
    out.0
}

fn daemon(out: &mut Exposition, snap: &Snapshot) {
    use Kind::*;
    out.single(
        "campeer_uptime_seconds",
        Gauge,
        "Seconds since campeer started.",
        snap.uptime.as_secs_f64(),
    );
    let joined = if snap.signaling.joins > 0 { 1.0 } else { 0.0 };
    out.single(
        "campeer_signaling_joined",
        Gauge,
        "1 once campeer has joined its room.",
        joined,
    );
    out.single(
        "campeer_signaling_joins_total",
        Counter,
        "Room joins: the first and one per reconnect.",
        n(snap.signaling.joins),
    );
    out.single(
        "campeer_viewers",
        Gauge,
        "Viewer sessions open now.",
        n(snap.sessions.len() as u64),
    );
    out.single(
        "campeer_viewers_max",
        Gauge,
        "webrtc.max_sessions.",
        n(snap.max_sessions as u64),
    );
}

fn media(out: &mut Exposition, snap: &Snapshot) {
    use Kind::*;
    let c = &snap.media.counters;
    let counters = [
        (
            "campeer_video_frames_captured_total",
            "Video frames from the camera or test pattern.",
            c.video_captured,
        ),
        (
            "campeer_video_frames_dropped_total",
            "Video frames replaced in the slot before the encoder took them.",
            c.video_dropped,
        ),
        (
            "campeer_video_frames_encoded_total",
            "Video frames encoded.",
            c.video_encoded,
        ),
        (
            "campeer_video_frames_rested_total",
            "Video frames let go with no viewer to encode for.",
            c.video_rested,
        ),
        (
            "campeer_video_keyframes_total",
            "Video keyframes encoded.",
            c.video_keyframes,
        ),
        (
            "campeer_video_encoded_bytes_total",
            "Bytes of encoded video.",
            c.video_bytes,
        ),
        (
            "campeer_audio_frames_captured_total",
            "Audio chunks captured.",
            c.audio_captured,
        ),
        (
            "campeer_audio_frames_dropped_total",
            "Audio chunks dropped on a full queue.",
            c.audio_dropped,
        ),
        (
            "campeer_audio_frames_encoded_total",
            "Audio chunks encoded.",
            c.audio_encoded,
        ),
        (
            "campeer_audio_encoded_bytes_total",
            "Bytes of encoded audio.",
            c.audio_bytes,
        ),
    ];
    for (name, help, value) in counters {
        out.single(name, Counter, help, n(value));
    }
    let rates = [
        (
            "campeer_video_capture_fps",
            "Video frames captured per second, recently.",
            snap.media.rates.video_captured_fps,
        ),
        (
            "campeer_video_encode_fps",
            "Video frames encoded per second, recently.",
            snap.media.rates.video_encoded_fps,
        ),
    ];
    for (name, help, value) in rates {
        out.family(name, Gauge, help);
        if let Some(v) = value {
            out.sample(name, &[], v);
        }
    }
}

fn sessions(out: &mut Exposition, sessions: &[SessionSnapshot]) {
    use Kind::*;
    let name = "campeer_session_info";
    out.family(
        name,
        Gauge,
        "One per session: its connection state and remote end.",
    );
    for s in sessions {
        let remote = s.link.remote.as_deref().unwrap_or("");
        let labels = [
            ("session", s.id.as_str()),
            ("state", s.state.as_str()),
            ("remote", remote),
        ];
        out.sample(name, &labels, 1.0);
    }
    for (name, help, bytes) in [
        (
            "campeer_session_sent_packets_total",
            "RTP packets written for the session.",
            false,
        ),
        (
            "campeer_session_sent_bytes_total",
            "RTP payload bytes written for the session.",
            true,
        ),
    ] {
        out.family(name, Counter, help);
        for s in sessions {
            for (kind, sent) in [("video", s.video), ("audio", s.audio)] {
                let v = if bytes { sent.bytes } else { sent.packets };
                out.sample(name, &[("session", &s.id), ("kind", kind)], n(v));
            }
        }
    }
    out.per_session(
        sessions,
        "campeer_session_lags_total",
        Counter,
        "Times the viewer fell behind the shared frames and skipped to a keyframe.",
        |s| Some(n(s.lags)),
    );
    out.per_session(
        sessions,
        "campeer_session_rtt_seconds",
        Gauge,
        "Round trip on the selected ICE candidate pair.",
        |s| s.link.rtt.map(|d| d.as_secs_f64()),
    );
    out.per_session(
        sessions,
        "campeer_session_remote_packets_lost",
        Gauge,
        "Video packets the viewer reports lost in all (RTCP receiver reports).",
        |s| s.link.packets_lost.map(n),
    );
    out.per_session(
        sessions,
        "campeer_session_remote_fraction_lost",
        Gauge,
        "Fraction of video packets lost in the viewer's last report interval.",
        |s| s.link.fraction_lost,
    );
    out.per_session(
        sessions,
        "campeer_session_bitrate_estimate_bps",
        Gauge,
        "Congestion control's bandwidth estimate for the viewer.",
        |s| s.bitrate_estimate_kbps.map(|k| f64::from(k) * 1000.0),
    );
    out.per_session(
        sessions,
        "campeer_session_layers_forwarded",
        Gauge,
        "VP8 temporal layers the viewer is sent: 2 all, 1 the base (half the frames), 0 keyframes only.",
        |s| s.layers_forwarded.map(|l| f64::from(l.layers())),
    );

    let name = "campeer_session_capture_to_send_seconds";
    out.family(name, Summary,
        "Video capture to the frame's last RTP packet written, over the recent frames (quantiles) and since the session started (sum, count).");
    for s in sessions {
        let Some(d) = s.capture_to_send else { continue };
        for (q, v) in [("0.5", d.p50), ("0.95", d.p95), ("1", d.max)] {
            out.sample(
                name,
                &[("session", &s.id), ("quantile", q)],
                v.as_secs_f64(),
            );
        }
        out.sample(
            &format!("{name}_sum"),
            &[("session", &s.id)],
            d.sum.as_secs_f64(),
        );
        out.sample(&format!("{name}_count"), &[("session", &s.id)], n(d.count));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::fixture;

    /// A sample line split as Prometheus reads it: name, labels, value.
    type Sample = (String, Vec<(String, String)>, f64);

    fn parse(line: &str) -> Sample {
        let (series, value) = line.rsplit_once(' ').expect("name and value");
        let value: f64 = value.parse().expect("a number");
        let (name, labels) = match series.split_once('{') {
            None => (series.to_owned(), Vec::new()),
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').expect("closing brace");
                let mut labels = Vec::new();
                let mut rest = body;
                while !rest.is_empty() {
                    let (k, after) = rest.split_once("=\"").expect("label=\"");
                    let mut value = String::new();
                    let mut chars = after.char_indices();
                    let end = loop {
                        match chars.next().expect("closing quote") {
                            (i, '"') => break i,
                            (_, '\\') => match chars.next().expect("escaped char").1 {
                                'n' => value.push('\n'),
                                c => value.push(c),
                            },
                            (_, c) => value.push(c),
                        }
                    };
                    labels.push((k.to_owned(), value));
                    rest = after[end + 1..].trim_start_matches(',');
                }
                (name.to_owned(), labels)
            }
        };
        assert!(name.starts_with("campeer_"), "{name}");
        (name, labels, value)
    }

    fn samples(text: &str) -> Vec<Sample> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .map(parse)
            .collect()
    }

    fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        samples(text).into_iter().find_map(|(n, l, v)| {
            let want: Vec<(String, String)> = labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            (n == name && want.iter().all(|w| l.contains(w))).then_some(v)
        })
    }

    #[test]
    fn every_family_has_help_and_type_and_counters_end_in_total() {
        let text = render(&fixture::snapshot());
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                assert!(lines[i - 1].starts_with(&format!("# HELP {name} ")));
                assert_eq!(kind == "counter", name.ends_with("_total"), "{name}");
            }
        }
        for (name, ..) in samples(&text) {
            let family = name.trim_end_matches("_sum").trim_end_matches("_count");
            assert!(
                text.contains(&format!("# TYPE {family} ")),
                "{name} has a TYPE"
            );
        }
    }

    #[test]
    fn daemon_and_media_figures_are_exposed() {
        let text = render(&fixture::snapshot());
        assert_eq!(value(&text, "campeer_viewers", &[]), Some(2.0));
        assert_eq!(value(&text, "campeer_signaling_joined", &[]), Some(1.0));
        assert_eq!(
            value(&text, "campeer_video_frames_dropped_total", &[]),
            Some(3.0)
        );
        assert_eq!(value(&text, "campeer_video_encode_fps", &[]), Some(29.5));
    }

    #[test]
    fn each_session_has_its_series_and_unknown_figures_no_sample() {
        let text = render(&fixture::snapshot());
        let a = [("session", "abcd")];
        let info = [
            ("session", "abcd"),
            ("state", "connected"),
            ("remote", "192.0.2.7:50000"),
        ];
        assert_eq!(value(&text, "campeer_session_info", &info), Some(1.0));
        let video = [("session", "abcd"), ("kind", "video")];
        assert_eq!(
            value(&text, "campeer_session_sent_packets_total", &video),
            Some(5000.0)
        );
        assert_eq!(value(&text, "campeer_session_lags_total", &a), Some(2.0));
        assert_eq!(value(&text, "campeer_session_rtt_seconds", &a), Some(0.012));
        let p50 = [("session", "abcd"), ("quantile", "0.5")];
        assert_eq!(
            value(&text, "campeer_session_capture_to_send_seconds", &p50),
            Some(0.004)
        );
        let p95 = [("session", "abcd"), ("quantile", "0.95")];
        assert_eq!(
            value(&text, "campeer_session_capture_to_send_seconds", &p95),
            Some(0.009)
        );
        assert_eq!(
            value(&text, "campeer_session_capture_to_send_seconds_count", &a),
            Some(1800.0)
        );
        assert_eq!(
            value(&text, "campeer_session_bitrate_estimate_bps", &a),
            None
        );
        assert_eq!(
            value(&text, "campeer_session_layers_forwarded", &a),
            Some(1.0)
        );

        // The label value comes back whole through the escaping.
        let b = [("session", "we\"ird")];
        assert_eq!(
            value(&text, "campeer_session_bitrate_estimate_bps", &b),
            Some(800_000.0)
        );
        assert_eq!(value(&text, "campeer_session_rtt_seconds", &b), None);
        assert_eq!(
            value(&text, "campeer_session_capture_to_send_seconds", &b),
            None
        );
    }
}
