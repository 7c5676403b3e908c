//! A long run (issue 15): four viewers on campeer's release build for `SOAK_SECS` (600
//! unless set), one of them leaving every 10 s for a new one to call (by turns hanging up
//! and killed without a goodbye), one behind a 500 kbit/s link that loses 2 % of its UDP.
//! Prints what campeer holds at each of its status lines (tasks, RSS, fds, threads, UDP
//! sockets), and what each viewer decoded and lost (holes in the pattern's counter).
//! Needs root: the viewers and campeer are hosts in network namespaces. Run by
//! `scripts/bench soak`; figures go to BENCHMARKS.md, never into assertions.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;

use common::held::Held;
use common::killable::{Killable, viewer_runtime};
use common::netns::{Host, Lan};
use common::playback::counters_until;
use common::viewer::{Direction, VideoPackets, Viewer};
use common::{CONNECT_DEADLINE, Campeer, Relay};

const CHURN_EVERY: Duration = Duration::from_secs(10);
const LOSSY_RATE: &str = "500kbit";
const LOSSY_LOSS_PERCENT: u32 = 2;

/// What one viewer (or the churning seat, over all its calls) decoded.
#[derive(Default)]
struct Watched {
    calls: usize,
    /// Calls that did not connect within [`CONNECT_WITHIN`].
    failed_calls: usize,
    decoded: u64,
    /// Counters skipped between decoded frames.
    lost: u64,
    longest_hole: u32,
    packets: VideoPackets,
}

impl Watched {
    fn add(&mut self, counters: &[u32], packets: VideoPackets) {
        self.calls += 1;
        self.decoded += counters.len() as u64;
        for w in counters.windows(2) {
            let hole = w[1].saturating_sub(w[0]).saturating_sub(1);
            self.lost += u64::from(hole);
            self.longest_hole = self.longest_hole.max(hole);
        }
        self.packets.received += packets.received;
        self.packets.lost += packets.lost;
        self.packets.nacks += packets.nacks;
    }
}

/// How long a call may take to connect before it counts as failed and is made again:
/// campeer gives a handshake 10 s.
const CONNECT_WITHIN: Duration = Duration::from_secs(12);

/// Calls campeer from `host` on a runtime of the viewer's own until a call connects;
/// returns it with the number of calls that did not.
async fn call(host: &Host, url: &str) -> (Killable, usize) {
    let mut failed = 0;
    loop {
        let (url, net) = (url.to_owned(), host.viewer_net());
        let runtime = host.enter(viewer_runtime);
        let mut v = Killable::start(runtime, async move {
            Viewer::call_on(&url, json!(1), Direction::RecvOnly, net).await
        })
        .await;
        let connected = v.viewer.connected(CONNECT_DEADLINE);
        if tokio::time::timeout(CONNECT_WITHIN, connected)
            .await
            .is_ok()
        {
            return (v, failed);
        }
        eprintln!("[soak] a call from {} did not connect", host.addr);
        v.kill().await;
        failed += 1;
    }
}

/// Watches `v` until `until`; then it hangs up, or is killed.
async fn watch(mut v: Killable, until: Instant, kill: bool, into: &mut Watched) {
    let counters = counters_until(&mut v.viewer, tokio::time::sleep_until(until)).await;
    into.add(&counters, v.viewer.video_packets().await);
    if kill {
        v.kill().await;
    } else {
        v.hang_up().await;
    }
}

/// The value of `name=` in a log line.
fn field<'a>(line: &'a str, name: &str) -> &'a str {
    line.split(&format!(" {name}="))
        .nth(1)
        .and_then(|v| v.split_whitespace().next())
        .unwrap_or("?")
}

fn main() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("soak: needs root (network namespaces, tc, nft)");
        std::process::exit(1);
    }
    let secs: u64 = std::env::var("SOAK_SECS")
        .ok()
        .map(|s| s.parse().expect("SOAK_SECS is a number of seconds"))
        .unwrap_or(600);
    let lan = Lan::new(&["campeer", "viewers", "lossy"]);
    let (board, viewers, lossy) = (lan.host("campeer"), lan.host("viewers"), lan.host("lossy"));
    lan.limit_download("lossy", LOSSY_RATE);
    lossy.lose_incoming_udp(LOSSY_LOSS_PERCENT);
    let relay = Relay::start_in(board);
    let campeer = Campeer::start_in(
        board,
        &relay.url(),
        &[
            ("CAMPEER__VIDEO__WIDTH", "640"),
            ("CAMPEER__VIDEO__HEIGHT", "480"),
            ("CAMPEER__VIDEO__BITRATE_KBPS", "1000"),
            (
                "RUST_LOG",
                "info,webrtc=error,rtc=error,rtc_ice=error,rtc_dtls=error,rtc_srtp=error",
            ),
        ],
    );
    relay.wait_for_join(1);
    let pid = campeer.pid().to_string();
    let url = relay.url();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let (seats, churns) = runtime.block_on(async {
        let end = Instant::now() + Duration::from_secs(secs);
        let mut steady = Vec::new();
        for (name, host) in [
            ("steady 1", viewers),
            ("steady 2", viewers),
            ("lossy", lossy),
        ] {
            let (v, failed_calls) = call(host, &url).await;
            steady.push(tokio::spawn(async move {
                let mut w = Watched {
                    failed_calls,
                    ..Watched::default()
                };
                watch(v, end, false, &mut w).await;
                (name, w)
            }));
        }
        let log = campeer.log.clone();
        let samples = tokio::task::spawn_blocking(move || sample(&log, &pid, secs));

        let mut churning = Watched::default();
        let mut churns = 0;
        while Instant::now() + CHURN_EVERY <= end {
            let (v, failed) = call(viewers, &url).await;
            churning.failed_calls += failed;
            watch(
                v,
                Instant::now() + CHURN_EVERY,
                churns % 2 == 1,
                &mut churning,
            )
            .await;
            churns += 1;
        }
        let mut seats = Vec::new();
        for s in steady {
            seats.push(s.await.expect("a steady viewer"));
        }
        seats.push(("churning", churning));
        samples.await.expect("the sampler");
        (seats, churns)
    });

    println!(
        "soak: {secs} s, 640x480@30 at 1000 kbit/s, 4 viewers, one leaving every {} s \
         ({churns} calls, every other one killed), one on {LOSSY_RATE} with \
         {LOSSY_LOSS_PERCENT} % loss",
        CHURN_EVERY.as_secs()
    );
    println!(
        "viewer | calls (not connected) | frames decoded | frames lost | longest hole | video packets lost | NACKs sent"
    );
    for (name, w) in seats {
        println!(
            "{name} | {} ({}) | {} | {} | {} | {} of {} | {}",
            w.calls,
            w.failed_calls,
            w.decoded,
            w.lost,
            w.longest_hole,
            w.packets.lost,
            w.packets.received as i64 + w.packets.lost,
            w.packets.nacks
        );
    }
    let link = lan.download_report("lossy");
    let link: Vec<&str> = link.split_whitespace().collect();
    println!("the lossy viewer's link: {}", link.join(" "));
    if let Some(last) = campeer
        .log
        .all()
        .iter()
        .rev()
        .find(|l| l.contains(" status "))
    {
        println!(
            "campeer's last status:{}",
            last.split(" status").nth(1).unwrap_or("?")
        );
    }
}

/// At each of campeer's status lines (every 30 s) until `secs` have passed, prints what it
/// holds: the tasks its line counts, and from /proc its RSS, fds, threads, UDP sockets.
fn sample(log: &common::Lines, pid: &str, secs: u64) {
    println!("t | sessions | tasks | RSS (MB) | heap in use (MB) | fds | threads | UDP sockets");
    let started = std::time::Instant::now();
    for n in 1.. {
        let left = Duration::from_secs(secs).saturating_sub(started.elapsed());
        if left < Duration::from_secs(30) {
            return;
        }
        let line = log.wait_for_n(" status ", n, Duration::from_secs(60));
        let held = Held::of(pid);
        println!(
            "{:.0} s | {} | {} | {:.1} | {:.2} | {} | {} | {}",
            started.elapsed().as_secs_f64(),
            field(&line, "viewers"),
            field(&line, "tasks"),
            held.rss_kib as f64 / 1024.0,
            field(&line, "heap_kib").parse::<f64>().unwrap_or(f64::NAN) / 1024.0,
            held.fds,
            held.threads,
            held.udp_sockets,
        );
    }
}
