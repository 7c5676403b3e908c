//! A viewer calls campeer through the real npm relay and gets the live test pattern:
//! frames decode in order with a rising counter, Opus audio plays the tone, and a PLI
//! brings a keyframe within 500 ms. Once as a watch-only page, once as the reference
//! page that sends its own camera and microphone.

mod common;

use std::time::{Duration, Instant};

use common::viewer::{Direction, Viewer};
use common::{Campeer, Relay};
use serde_json::json;

async fn call_and_check(direction: Direction) {
    let relay = Relay::start();
    let mut campeer = Campeer::start(Some(&relay.url()), &[]);
    relay.out.wait_for("join 1", Duration::from_secs(20));

    let offered = Instant::now();
    let mut viewer = Viewer::call(&relay.url(), json!(1), direction).await;
    viewer.connected(Duration::from_secs(15)).await;
    let first = viewer.next_video(Duration::from_secs(5)).await;
    eprintln!(
        "first decoded frame {:?} after the offer",
        first.at - offered
    );
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

    // PLI → keyframe within 500 ms.
    while viewer.seen.try_recv().is_ok() {}
    let asked = Instant::now();
    viewer.send_pli().await;
    let key = viewer
        .expect(Duration::from_millis(500), |s| match s {
            common::viewer::Seen::Video(f) if f.keyframe => Some(f),
            _ => None,
        })
        .await;
    eprintln!("keyframe {:?} after PLI", key.at - asked);

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
