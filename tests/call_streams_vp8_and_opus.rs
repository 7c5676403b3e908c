//! A viewer calls campeer through the real npm relay and gets the live test pattern:
//! frames decode in order with a rising counter, Opus audio plays the tone, and a PLI
//! brings a keyframe. Once as a watch-only page, once as the reference page that sends
//! its own camera and microphone. (How soon these come is measured by benches/one_viewer.rs.)

mod common;

use std::time::Duration;

use common::call_through_relay;
use common::viewer::Direction;

async fn call_and_check(direction: Direction) {
    // No periodic keyframes: the one after the PLI can only be the PLI's.
    let (_relay, mut campeer, mut viewer) = call_through_relay(
        &[("CAMPEER__VIDEO__KEYFRAME_INTERVAL", "1000000")],
        direction,
    )
    .await;
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

    let (_, took) = viewer.keyframe_after_pli(Duration::from_secs(10)).await;
    eprintln!("keyframe {took:?} after PLI");

    viewer.hang_up().await;
    assert!(campeer.terminate().success(), "clean exit on SIGTERM");
    assert!(campeer.log.count("answer sent") >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_only_viewer_gets_live_vp8_and_opus() {
    call_and_check(Direction::RecvOnly).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_page_sending_its_own_media_gets_live_vp8_and_opus() {
    call_and_check(Direction::SendRecv).await;
}
