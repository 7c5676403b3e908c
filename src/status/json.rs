//! `GET /status`: the snapshot as JSON for people and scripts. Durations are in
//! milliseconds (`_ms`) or seconds (`_s`); what is not known yet is `null`.

use std::time::Duration;

use serde_json::{Value, json};

use super::Snapshot;
use crate::session::layers::Forwarded;
use crate::session::stats::{SentSnapshot, SessionSnapshot};

pub fn render(snap: &Snapshot) -> String {
    let c = &snap.media.counters;
    let value = json!({
        "uptime_s": seconds(snap.uptime),
        "signaling": {
            "state": snap.signaling.state(),
            "relay": snap.signaling.relay.as_deref().unwrap_or("embedded"),
            "room": snap.signaling.room,
            "joins": snap.signaling.joins,
        },
        "media": {
            "video": {
                "capture_fps": snap.media.rates.video_captured_fps,
                "encode_fps": snap.media.rates.video_encoded_fps,
                "frames_captured": c.video_captured,
                "frames_dropped": c.video_dropped,
                "frames_encoded": c.video_encoded,
                "frames_rested": c.video_rested,
                "keyframes": c.video_keyframes,
                "bytes_encoded": c.video_bytes,
            },
            "audio": {
                "frames_captured": c.audio_captured,
                "frames_dropped": c.audio_dropped,
                "frames_encoded": c.audio_encoded,
                "bytes_encoded": c.audio_bytes,
            },
        },
        "viewers": snap.sessions.len(),
        "max_viewers": snap.max_sessions,
        "sessions": snap.sessions.iter().map(session).collect::<Vec<_>>(),
    });
    // A `Value` always serializes.
    serde_json::to_string_pretty(&value).unwrap_or_default() + "\n"
}

fn session(s: &SessionSnapshot) -> Value {
    let sent = |x: &SentSnapshot| json!({ "packets": x.packets, "bytes": x.bytes });
    json!({
        "id": s.id,
        "state": s.state.as_str(),
        "age_s": seconds(s.age),
        "remote": s.link.remote,
        "rtt_ms": s.link.rtt.map(millis),
        "packets_lost": s.link.packets_lost,
        "fraction_lost": s.link.fraction_lost,
        "lags": s.lags,
        "video": sent(&s.video),
        "audio": sent(&s.audio),
        "capture_to_send_ms": s.capture_to_send.map(|d| json!({
            "p50": millis(d.p50),
            "p95": millis(d.p95),
            "max": millis(d.max),
            "frames": d.window,
        })),
        "bitrate_estimate_kbps": s.bitrate_estimate_kbps,
        "layers_forwarded": s.layers_forwarded.map(Forwarded::layers),
    })
}

/// Rounded to the millisecond.
fn seconds(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

/// Rounded to the tenth of a millisecond.
fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::fixture;

    #[test]
    fn the_snapshot_renders_as_json_with_every_session() {
        let v: Value = serde_json::from_str(&render(&fixture::snapshot())).unwrap();
        assert_eq!(v["signaling"]["state"], "joined");
        assert_eq!(v["signaling"]["relay"], "embedded");
        assert_eq!(v["signaling"]["room"], json!(1));
        assert_eq!(v["media"]["video"]["capture_fps"], json!(30.0));
        assert_eq!(v["media"]["video"]["frames_dropped"], json!(3));
        assert_eq!(v["viewers"], json!(2));
        let a = &v["sessions"][0];
        assert_eq!(a["id"], "abcd");
        assert_eq!(a["state"], "connected");
        assert_eq!(a["remote"], "192.0.2.7:50000");
        assert_eq!(a["rtt_ms"], json!(12.0));
        assert_eq!(a["packets_lost"], json!(4));
        assert_eq!(a["lags"], json!(2));
        assert_eq!(a["video"]["packets"], json!(5000));
        assert_eq!(
            a["capture_to_send_ms"],
            json!({"p50": 4.0, "p95": 9.0, "max": 15.0, "frames": 128})
        );
        assert_eq!(a["bitrate_estimate_kbps"], Value::Null);
        assert_eq!(a["layers_forwarded"], json!(1));
    }

    #[test]
    fn what_is_not_known_yet_is_null() {
        let v: Value = serde_json::from_str(&render(&fixture::snapshot())).unwrap();
        let b = &v["sessions"][1];
        assert_eq!(b["id"], "we\"ird");
        assert_eq!(b["state"], "negotiating");
        for key in [
            "remote",
            "rtt_ms",
            "packets_lost",
            "fraction_lost",
            "capture_to_send_ms",
            "layers_forwarded",
        ] {
            assert_eq!(b[key], Value::Null, "{key}");
        }
        assert_eq!(b["bitrate_estimate_kbps"], json!(800));
    }
}
