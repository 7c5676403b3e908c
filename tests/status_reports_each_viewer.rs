//! `GET /status` and `GET /metrics` on the embedded server: a viewer that plays shows up
//! as one session with packets sent and a capture → send delay, the metrics parse as
//! Prometheus text, and neither answers without the access token. A viewer joining
//! beside one already watching is shown forwarding every layer from the start.

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::playback::counters_until;
use common::viewer::{Direction, Viewer};
use common::{Campeer, TEST_TOKEN, layers_forwarded, video_target_kbps};
use serde_json::{Value, json};

struct Reply {
    status: u16,
    body: String,
}

fn get(url: &str, path: &str, authorization: Option<&str>) -> Reply {
    let host = url.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(host).expect("the embedded server accepts");
    let auth = authorization
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("a status line: {head}"));
    Reply {
        status,
        body: body.to_owned(),
    }
}

fn bearer() -> String {
    format!("Bearer {TEST_TOKEN}")
}

/// Each sample line is `name{labels} value` or `name value`, with a `campeer_` name
/// declared by a `# TYPE` line, and a number for a value.
fn assert_prometheus_text(text: &str) {
    let mut samples = 0;
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(comment) = line.strip_prefix("# ") {
            assert!(
                comment.starts_with("HELP campeer_") || comment.starts_with("TYPE campeer_"),
                "{line}"
            );
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("a value after the series");
        assert!(value.parse::<f64>().is_ok(), "not a number: {line}");
        let name = match series.split_once('{') {
            Some((name, labels)) => {
                assert!(labels.ends_with('}') && labels.contains("=\""), "{line}");
                name
            }
            None => series,
        };
        assert!(
            name.starts_with("campeer_")
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{line}"
        );
        let family = name.trim_end_matches("_sum").trim_end_matches("_count");
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "{line}: no TYPE"
        );
        samples += 1;
    }
    assert!(samples > 0, "no samples in {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_metrics_report_a_playing_viewer_to_token_holders_only() {
    let (mut campeer, url) = Campeer::start_embedded(&[]);

    for path in ["/status", "/metrics"] {
        for auth in [
            None,
            Some("Bearer wrong-token-0123456789"),
            Some(TEST_TOKEN),
        ] {
            let reply = get(&url, path, auth);
            assert_eq!(reply.status, 401, "{path} with {auth:?}");
            assert!(!reply.body.contains("campeer_") && !reply.body.contains("sessions"));
        }
    }

    let mut viewer = Viewer::call(&url, json!(1), Direction::RecvOnly).await;
    viewer.connected(Duration::from_secs(15)).await;
    let x = viewer.next_counter(Duration::from_secs(5)).await;
    let y = viewer.next_counter(Duration::from_secs(5)).await;
    assert!(y > x);
    // Video starts on the keyframe encoded while the call connected, before any audio.
    viewer.next_audio(Duration::from_secs(5)).await;

    let reply = get(&url, "/status", Some(&bearer()));
    assert_eq!(reply.status, 200, "{}", reply.body);
    let status: Value = serde_json::from_str(&reply.body).expect("JSON");
    assert_eq!(status["signaling"]["state"], "joined");
    assert_eq!(status["signaling"]["room"], json!(1));
    let sessions = status["sessions"].as_array().expect("a session list");
    assert_eq!(sessions.len(), 1, "{status:#}");
    let s = &sessions[0];
    assert_eq!(s["state"], "connected", "{s:#}");
    assert!(s["video"]["packets"].as_u64().unwrap() > 0, "{s:#}");
    assert!(s["audio"]["packets"].as_u64().unwrap() > 0, "{s:#}");
    assert!(s["capture_to_send_ms"]["p50"].is_number(), "{s:#}");
    assert!(s["capture_to_send_ms"]["p95"].is_number(), "{s:#}");
    assert!(s["capture_to_send_ms"]["max"].is_number(), "{s:#}");
    assert_eq!(
        s["layers_forwarded"],
        json!(2),
        "all layers on loopback: {s:#}"
    );
    let remote = s["remote"].as_str().expect("the viewer's address");
    assert!(remote.starts_with("127.0.0.1:"), "{remote}");
    assert!(status["media"]["video"]["frames_encoded"].as_u64().unwrap() > 0);

    let reply = get(&url, "/metrics", Some(&bearer()));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_prometheus_text(&reply.body);
    assert!(reply.body.contains("campeer_viewers 1\n"), "{}", reply.body);
    let id = s["id"].as_str().unwrap();
    assert!(
        reply.body.contains(&format!(
            "campeer_session_capture_to_send_seconds{{session=\"{id}\",quantile=\"0.5\"}}"
        )),
        "{}",
        reply.body
    );
    assert!(
        reply.body.contains(&format!(
            "campeer_session_layers_forwarded{{session=\"{id}\"}} 2\n"
        )),
        "{}",
        reply.body
    );

    viewer.hang_up().await;
    assert!(campeer.terminate().success());
}

/// campeer's `video.bitrate_kbps`: where the first viewer's estimate starts (and, before
/// issue 15's fix, every newcomer's).
const START_KBPS: u32 = 600;
/// The encoder has followed the first viewer to half again the start rate: a newcomer
/// carrying only the start rate would be sent the base layer alone.
const RAMPED_KBPS: u32 = START_KBPS * 3 / 2;
/// Only against a hang: on loopback the first viewer's estimate climbs there in seconds.
const RAMP_DEADLINE: Duration = Duration::from_secs(60);

/// A viewer that joins beside one the encoder has followed up (issue 15) is sent every
/// layer from its first frame: its session's first choice is both layers, `/status` says
/// so at its first reading, and its first second of frames has upper-layer frames
/// (consecutive counters between the base layer's every other).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newcomer_beside_a_ramped_up_viewer_is_sent_every_layer_from_its_start() {
    let start = START_KBPS.to_string();
    let (mut campeer, url) =
        Campeer::start_embedded(&[("CAMPEER__VIDEO__BITRATE_KBPS", start.as_str())]);
    let mut first = Viewer::call(&url, json!(1), Direction::RecvOnly).await;
    first.connected(Duration::from_secs(15)).await;
    let log = campeer.log.clone();
    let ramped = tokio::task::spawn_blocking(move || {
        log.wait_for_line(0, RAMP_DEADLINE, "the encoder's target up", |l| {
            video_target_kbps(l).filter(|&k| k >= RAMPED_KBPS)
        })
    });
    // The first viewer keeps watching while its estimate climbs.
    let mut target = None;
    counters_until(&mut first, async {
        target = Some(ramped.await.expect("the log watcher"));
    })
    .await;
    eprintln!("the encoder at {target:?} kbps for the first viewer");

    let mut newcomer = Viewer::call(&url, json!(1), Direction::RecvOnly).await;
    newcomer.connected(Duration::from_secs(15)).await;
    let mut counters = vec![newcomer.next_counter(Duration::from_secs(5)).await];
    let status: Value =
        serde_json::from_str(&get(&url, "/status", Some(&bearer())).body).expect("JSON");
    counters
        .extend(counters_until(&mut newcomer, tokio::time::sleep(Duration::from_secs(1))).await);

    let sessions = status["sessions"].as_array().expect("a session list");
    let mine = sessions
        .iter()
        .find(|s| s["id"] == json!(newcomer.ufrag))
        .unwrap_or_else(|| panic!("the newcomer's session: {status:#}"));
    assert_eq!(
        mine["layers_forwarded"],
        json!(2),
        "both layers at the first reading: {mine:#}"
    );
    let layers = layers_forwarded(&campeer.log, &newcomer.ufrag);
    assert_eq!(
        layers.first(),
        Some(&2),
        "its session's first choice: {layers:?}"
    );
    let upper = counters.windows(2).filter(|w| w[1] == w[0] + 1).count();
    eprintln!(
        "the newcomer's first second: {} frames, {upper} right after the one before",
        counters.len()
    );
    assert!(
        upper > 0,
        "no upper-layer frame in its first second: {counters:?}"
    );

    newcomer.hang_up().await;
    first.hang_up().await;
    assert!(campeer.terminate().success());
}

#[test]
fn status_listen_serves_them_beside_an_external_relay() {
    let (_relay, campeer) =
        common::campeer_in_relay_room(&[("CAMPEER__STATUS__LISTEN", "127.0.0.1:0")]);
    let line = campeer
        .log
        .wait_for("status and metrics listening", common::START_DEADLINE);
    let addr = line
        .split("addr=")
        .nth(1)
        .and_then(|a| a.split_whitespace().next())
        .unwrap_or_else(|| panic!("the log names the address: {line}"));
    let url = format!("http://{addr}");

    assert_eq!(get(&url, "/metrics", None).status, 401);
    let reply = get(&url, "/metrics", Some(&bearer()));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_prometheus_text(&reply.body);
    assert!(reply.body.contains("campeer_viewers 0\n"), "{}", reply.body);
    let status: Value =
        serde_json::from_str(&get(&url, "/status", Some(&bearer())).body).expect("JSON");
    assert_eq!(status["signaling"]["state"], "joined");
    assert!(
        status["signaling"]["relay"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );
}
