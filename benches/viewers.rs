//! What each added viewer costs campeer: its CPU share and RSS at 640x480@30 with 1, 2, 4
//! and 8 webrtc-rs viewers watching at once (viewers live in this process, so their
//! decoding is not counted), and the marginal CPU per viewer beyond the first. Run by
//! `scripts/bench`; figures go to BENCHMARKS.md, never into assertions.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::viewer::{Direction, Viewer};
use common::{campeer_in_relay_room, cpu_seconds};
use serde_json::json;
use tokio_util::sync::CancellationToken;

const WINDOW: Duration = Duration::from_secs(10);

fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS");
    kb / 1024.0
}

/// Keeps a viewer's decoded frames flowing (and dropped) until `stop`.
fn drain(mut viewer: Viewer, stop: CancellationToken) -> tokio::task::JoinHandle<Viewer> {
    tokio::spawn(async move {
        while !stop.is_cancelled() {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = viewer.next_video(Duration::from_secs(5)) => {}
            }
        }
        viewer
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let (relay, mut campeer) = campeer_in_relay_room(&[
        ("CAMPEER__VIDEO__WIDTH", "640"),
        ("CAMPEER__VIDEO__HEIGHT", "480"),
        ("RUST_LOG", "warn,webrtc=error,rtc=error"),
    ]);
    let pid = campeer.pid();
    let stop = CancellationToken::new();
    let mut watching = Vec::new();
    let mut one = None;
    println!(
        "| viewers | campeer CPU, % of one core | marginal per viewer beyond the first | campeer RSS |"
    );
    println!("|---|---|---|---|");
    for n in [1usize, 2, 4, 8] {
        while watching.len() < n {
            let mut v = Viewer::call(&relay.url(), json!(1), Direction::RecvOnly).await;
            v.connected(Duration::from_secs(15)).await;
            v.next_video(Duration::from_secs(5)).await;
            watching.push(drain(v, stop.clone()));
        }
        // The newest viewer's keyframe and handshake are not the steady cost.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (t0, c0) = (Instant::now(), cpu_seconds(pid));
        tokio::time::sleep(WINDOW).await;
        let share = (cpu_seconds(pid) - c0) / t0.elapsed().as_secs_f64() * 100.0;
        let base = *one.get_or_insert(share);
        let marginal = if n > 1 {
            format!("{:.2} %", (share - base) / (n - 1) as f64)
        } else {
            "—".to_owned()
        };
        println!(
            "| {n} | {share:.1} % | {marginal} | {:.1} MB |",
            rss_mb(pid)
        );
    }
    stop.cancel();
    for w in watching {
        w.await.expect("viewer task").hang_up().await;
    }
    assert!(campeer.terminate().success());
}
