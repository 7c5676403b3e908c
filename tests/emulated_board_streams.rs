//! The aarch64 build, on an emulated board (`scripts/board-vm`), streams to an x86 webrtc-rs viewer
//! through the npm relay. Run by `scripts/cross-aarch64` (it sets CAMPEER_BIN and
//! CAMPEER_RUNNER); ignored in a plain `cargo test`, where there is no such build.

mod common;

use std::time::{Duration, Instant};

use common::viewer::{Direction, Viewer};
use common::{Campeer, Relay};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs CAMPEER_BIN from scripts/cross-aarch64"]
async fn emulated_board_streams_to_a_viewer() {
    assert!(
        std::env::var_os("CAMPEER_BIN").is_some(),
        "run through scripts/cross-aarch64"
    );
    let relay = Relay::start();
    let mut campeer = Campeer::start(Some(&relay.url()), &[]);
    relay.out.wait_for("join 1", Duration::from_secs(60));
    let mut viewer = Viewer::call(&relay.url(), json!(1), Direction::RecvOnly).await;
    viewer.connected(Duration::from_secs(30)).await;
    let first = viewer.next_video(Duration::from_secs(15)).await;
    let start = Instant::now();
    let mut last = first.counter.expect("counter");
    let mut frames = 0;
    while start.elapsed() < Duration::from_secs(5) {
        let n = viewer
            .next_video(Duration::from_secs(5))
            .await
            .counter
            .expect("counter");
        assert!(n > last, "counter went from {last} to {n}");
        last = n;
        frames += 1;
    }
    eprintln!("emulated aarch64 campeer: {frames} frames decoded in 5 s at 320x240");
    assert!(frames >= 10, "only {frames} frames in 5 s");
    viewer.hang_up().await;
    assert!(campeer.terminate().success());
}
