//! What one viewer costs: offer → answer inside campeer, offer → first decoded frame at
//! the viewer, campeer's CPU share at 640x480@30 over 20 s, and how soon a PLI brings a
//! keyframe. Run by `scripts/bench`; figures go to BENCHMARKS.md, never into assertions.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::viewer::{Direction, Viewer};
use common::{campeer_in_relay_room, cpu_seconds};
use serde_json::json;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let (relay, mut campeer) = campeer_in_relay_room(&[
        ("CAMPEER__VIDEO__WIDTH", "640"),
        ("CAMPEER__VIDEO__HEIGHT", "480"),
        ("CAMPEER__VIDEO__BITRATE_KBPS", "1000"),
        (
            "RUST_LOG",
            "info,webrtc=error,rtc=error,rtc_ice=error,rtc_dtls=error",
        ),
    ]);
    let pid = campeer.pid();
    let idle_t = Instant::now();
    let idle_cpu = cpu_seconds(pid);

    let offered = Instant::now();
    let mut viewer = Viewer::call(&relay.url(), json!(1), Direction::RecvOnly).await;
    viewer.connected(Duration::from_secs(15)).await;
    let first = viewer.next_video(Duration::from_secs(5)).await;
    let to_first = first.at - offered;
    let answer_line = campeer.log.wait_for("answer sent", Duration::from_secs(1));
    let idle_share = (cpu_seconds(pid) - idle_cpu) / idle_t.elapsed().as_secs_f64();

    let (t0, c0) = (Instant::now(), cpu_seconds(pid));
    let mut frames = 0u32;
    while t0.elapsed() < Duration::from_secs(20) {
        viewer.next_video(Duration::from_secs(2)).await;
        frames += 1;
    }
    let wall = t0.elapsed().as_secs_f64();
    let share = (cpu_seconds(pid) - c0) / wall;
    let after = answer_line
        .split("after=")
        .nth(1)
        .unwrap_or("?")
        .split_whitespace()
        .next()
        .unwrap_or("?");
    println!("offer -> answer sent (inside campeer): {after}");
    println!("offer -> first decoded frame (viewer): {to_first:?}");
    println!(
        "campeer CPU before the call (pipeline only): {:.1}% of one core",
        idle_share * 100.0
    );
    println!(
        "campeer CPU, 640x480@30, one viewer, {wall:.0} s: {:.1}% of one core",
        share * 100.0
    );
    println!(
        "frames decoded by the viewer: {frames} ({:.1} fps)",
        f64::from(frames) / wall
    );

    // PLI → keyframe, a second of video apart (a periodic keyframe, every 10 s, may land
    // in one of the windows: the median is the figure).
    let mut pli = Vec::new();
    for _ in 0..PLI_REQUESTS {
        for _ in 0..30 {
            viewer.next_video(Duration::from_secs(2)).await;
        }
        pli.push(viewer.keyframe_after_pli(Duration::from_secs(5)).await.1);
    }
    pli.sort();
    println!(
        "PLI -> keyframe decoded at the viewer, {PLI_REQUESTS} requests: median {:?}, worst {:?}",
        pli[pli.len() / 2],
        pli[pli.len() - 1]
    );
    viewer.hang_up().await;
    assert!(campeer.terminate().success());
}

const PLI_REQUESTS: usize = 10;
