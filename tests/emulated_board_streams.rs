//! The aarch64 build, on an emulated board (`scripts/board-vm`), streams to an x86 webrtc-rs
//! viewer through the npm relay: frames decode in order with a rising counter. Run by
//! `scripts/cross-aarch64` (it sets CAMPEER_BIN and CAMPEER_RUNNER); ignored in a plain
//! `cargo test`, where there is no such build. The frame rate the board reaches is
//! printed for BENCHMARKS.md, not asserted: emulation on a shared host is too noisy for a
//! bound.

mod common;

use std::time::Duration;

use common::call_through_relay;
use common::viewer::Direction;

/// About five seconds of video at the 30 fps asked.
const FRAMES: u32 = 150;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs CAMPEER_BIN from scripts/cross-aarch64"]
async fn emulated_board_streams_to_a_viewer() {
    assert!(
        std::env::var_os("CAMPEER_BIN").is_some(),
        "run through scripts/cross-aarch64"
    );
    // The emulated board takes seconds to answer under a loaded CI host (6 s seen, and no
    // connection by the 10 s default): this test is about the aarch64 build working, so
    // its handshake has the longest time the setting allows.
    let handshake = Duration::from_secs(60);
    let (_relay, mut campeer, mut viewer) = call_through_relay(
        &[("CAMPEER__SESSION__HANDSHAKE_TIMEOUT", "60")],
        Direction::RecvOnly,
    )
    .await;
    let first = viewer.next_video(handshake).await;
    // Deadlines only against a hang: the emulated board was seen to stall for seconds.
    let wait = Duration::from_secs(15);
    let mut last = first.clone();
    for _ in 0..FRAMES {
        let f = viewer.next_video(wait).await;
        let (was, now) = (last.counter.expect("counter"), f.counter.expect("counter"));
        assert!(now > was, "counter went from {was} to {now}");
        last = f;
    }
    let secs = last.at.duration_since(first.at).as_secs_f64();
    eprintln!(
        "emulated aarch64 campeer: {FRAMES} frames decoded in {secs:.1} s at 320x240 ({:.1} fps)",
        f64::from(FRAMES) / secs
    );
    viewer.hang_up().await;
    assert!(campeer.terminate().success());
}
