//! A whole campeer (media pipeline on the test sources, session loop, sessions) against a
//! webrtc-rs viewer through the in-process signaller: no Node, no socket for signaling.
//! The order campeer says things in is seen directly, not inferred from a relay's log.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use campeer::config::{AudioSource, Config, VideoSource};
use campeer::signaling::direct::DirectSignaller;
use tokio_util::sync::CancellationToken;

use common::viewer::{Direction, RoomLink, Viewer};

fn small_test_config() -> Config {
    let mut cfg = Config::default();
    cfg.video.source = VideoSource::Test;
    cfg.video.width = 160;
    cfg.video.height = 120;
    cfg.video.bitrate_kbps = 300;
    cfg.audio.source = AudioSource::Test;
    cfg.webrtc.bind = IpAddr::V4(Ipv4Addr::LOCALHOST);
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_answer_precedes_every_candidate_and_frames_arrive() {
    // campeer's log, shown when the test fails.
    let _ = tracing_subscriber::fmt()
        .with_env_filter("info,webrtc=warn,rtc=warn")
        .with_test_writer()
        .try_init();
    let (signaller, room) = DirectSignaller::new();
    let cancel = CancellationToken::new();
    let campeer = tokio::spawn(campeer::daemon::serve(
        small_test_config(),
        signaller,
        cancel.clone(),
    ));
    let (link, said) = RoomLink::direct(room);
    let mut viewer = Viewer::call_over(link, Direction::RecvOnly).await;

    viewer.connected(Duration::from_secs(20)).await;
    let first = viewer.next_video(Duration::from_secs(10)).await;
    let later = viewer.next_video(Duration::from_secs(10)).await;
    assert!(first.counter.is_some() && later.counter > first.counter);
    assert_eq!((later.width, later.height), (160, 120));
    assert!(!viewer.next_audio(Duration::from_secs(10)).await.is_empty());

    let said = said.lock().unwrap().clone();
    assert_eq!(said.first(), Some(&"sendAnswer"), "said: {said:?}");
    assert_eq!(said.iter().filter(|e| **e == "sendAnswer").count(), 1);
    assert!(said.contains(&"sendCandidate"), "said: {said:?}");

    viewer.hang_up().await;
    cancel.cancel();
    campeer
        .await
        .expect("the daemon task")
        .expect("campeer stops cleanly");
}
