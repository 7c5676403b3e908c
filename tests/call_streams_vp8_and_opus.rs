//! A viewer calls campeer through the real npm relay and gets the live test pattern:
//! frames decode in order with a rising counter, Opus audio plays the tone, and a PLI
//! brings a keyframe; the answer takes the latency header extensions the viewer offers, and
//! the packets carry them: playout-delay 0/0 on video, the capture time on both. Once as a
//! watch-only page, once as the reference page that sends its own camera and microphone,
//! whose media campeer declines: its answer only sends.
//! (How soon these come is measured by benches/one_viewer.rs.)

mod common;

use std::time::{Duration, UNIX_EPOCH};

use campeer::session::header_ext::{ABS_CAPTURE_TIME_URI, PLAYOUT_DELAY_URI};
use common::call_through_relay;
use common::viewer::{Direction, ExtensionsSeen, Viewer, extmap_id};

/// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
const NTP_UNIX_OFFSET_SECS: f64 = 2_208_988_800.0;

/// An abs-capture-time value (64-bit NTP, UQ32.32) as seconds since the Unix epoch.
fn abs_capture_unix_secs(value: &[u8]) -> f64 {
    let ntp = u64::from_be_bytes(value[..8].try_into().expect("8 bytes at least"));
    (ntp >> 32) as f64 + (ntp & 0xffff_ffff) as f64 / 4_294_967_296.0 - NTP_UNIX_OFFSET_SECS
}

/// The answer names both extensions, and the last packet of each kind that carried
/// extensions has a capture time close to when it arrived (loopback: well under a
/// second; a few seconds allowed for a busy host), and playout-delay 0/0 on video.
fn check_header_extensions(viewer: &Viewer) {
    let answer = viewer.answer().expect("the answer was applied");
    let delay_id = extmap_id(&answer, PLAYOUT_DELAY_URI).expect("the answer takes playout-delay");
    let capture_id =
        extmap_id(&answer, ABS_CAPTURE_TIME_URI).expect("the answer takes abs-capture-time");
    let received = viewer.received();
    let capture_time = |kind: &str, seen: &ExtensionsSeen| {
        let value = seen
            .value(capture_id)
            .unwrap_or_else(|| panic!("{kind}: no abs-capture-time on {seen:?}"));
        assert!(matches!(value.len(), 8 | 16), "{kind}: {value:?}");
        let arrived = seen.last_at.expect("arrival noted");
        let arrived = arrived.duration_since(UNIX_EPOCH).unwrap().as_secs_f64();
        let age = arrived - abs_capture_unix_secs(value);
        assert!(
            (-0.5..5.0).contains(&age),
            "{kind}: captured {age:.3} s before arrival"
        );
    };
    capture_time("video", &received.video);
    capture_time("audio", &received.audio);
    assert_eq!(
        received.video.value(delay_id),
        Some(&[0u8, 0, 0][..]),
        "playout-delay min 0, max 0"
    );
    assert!(
        received.video.with_extensions > 0
            && received.video.with_extensions <= received.video.packets,
        "{:?}",
        received.video
    );
}

async fn call_and_check(direction: Direction) {
    // No periodic keyframes: the one after the PLI can only be the PLI's.
    let (_relay, mut campeer, mut viewer) = call_through_relay(
        &[("CAMPEER__VIDEO__KEYFRAME_INTERVAL", "1000000")],
        direction,
    )
    .await;
    let answer = viewer
        .answer()
        .expect("the viewer applied campeer's answer");
    assert_eq!(
        media_directions(&answer),
        ["sendonly", "sendonly"],
        "audio and video, neither received:\n{answer}"
    );

    let first = viewer.next_video(Duration::from_secs(5)).await;
    assert_eq!((first.width, first.height), (320, 240));
    assert!(first.keyframe, "a session starts on a keyframe");

    // Frames arrive in order and the counter rises.
    let mut last = first.counter.expect("the counter reads back");
    for _ in 0..30 {
        let f = viewer.next_video(Duration::from_secs(2)).await;
        let n = f.counter.expect("the counter reads back");
        assert!(n > last, "counter went from {last} to {n}");
        last = n;
    }

    // The tone arrives as Opus and decodes to 440 Hz.
    let hz = viewer.tone_hz(Duration::from_secs(2)).await;
    assert!((hz - 440.0).abs() < 5.0, "tone decoded at {hz} Hz");

    check_header_extensions(&viewer);

    let (_, took) = viewer.keyframe_after_pli(Duration::from_secs(10)).await;
    eprintln!("keyframe {took:?} after PLI");

    viewer.hang_up().await;
    assert!(campeer.terminate().success(), "clean exit on SIGTERM");
    assert!(campeer.log.count("answer sent") >= 1);
}

/// Each media section's direction attribute, in order (`sendrecv` when it names none).
fn media_directions(sdp: &str) -> Vec<&str> {
    sdp.split("\r\nm=")
        .skip(1)
        .map(|section| {
            section
                .lines()
                .filter_map(|l| l.strip_prefix("a="))
                .find(|a| matches!(*a, "sendrecv" | "sendonly" | "recvonly" | "inactive"))
                .unwrap_or("sendrecv")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_only_viewer_gets_live_vp8_and_opus() {
    call_and_check(Direction::RecvOnly).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_page_sending_its_own_media_gets_live_vp8_and_opus() {
    call_and_check(Direction::SendRecv).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_microphone_the_reference_pages_audio_section_is_inactive() {
    let (_relay, _campeer, mut viewer) =
        call_through_relay(&[("CAMPEER__AUDIO__SOURCE", "none")], Direction::SendRecv).await;
    let answer = viewer
        .answer()
        .expect("the viewer applied campeer's answer");
    assert_eq!(
        media_directions(&answer),
        ["inactive", "sendonly"],
        "{answer}"
    );
    viewer.plays(2, Duration::from_secs(5)).await;
    viewer.hang_up().await;
}
