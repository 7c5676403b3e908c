//! Calls over a link that loses `LOSS` % (20 unless set) of the UDP packets each way
//! (nftables in each network namespace), `CALLS` (30 unless set) of them one after another
//! against one campeer: how many play within 14 s, and how long each took to its first
//! frame. A call lost to a DTLS handshake that hung ends as "no connection within 10s";
//! see `src/session/flight_repeat.rs`. Needs root. Run by `scripts/bench handshakes`;
//! figures go to BENCHMARKS.md, never into assertions.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use serde_json::json;

use common::netns::{self, Lan};
use common::viewer::{Direction, Viewer};
use common::{Campeer, Relay};

/// A call with no frame by then has failed: campeer gives up its session at 10 s.
const PLAYS_WITHIN: Duration = Duration::from_secs(14);

fn env_or(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    if !netns::can_run("lossy_handshakes") {
        std::process::exit(1);
    }
    let (calls, loss) = (env_or("CALLS", 30), env_or("LOSS", 20));
    let lan = Lan::new(&["campeer", "viewer"]);
    let (board, viewer) = (lan.host("campeer"), lan.host("viewer"));
    let relay = Relay::start_in(viewer);
    let campeer = Campeer::start_in(board, &relay.url(), &[]);
    relay.wait_for_join(1);
    board.lose_incoming_udp(loss);
    viewer.lose_incoming_udp(loss);
    let mut first_frames = Vec::new();
    for call in 0..calls {
        viewer.block_on(async {
            let start = Instant::now();
            let mut v = Viewer::call_on(
                &relay.url(),
                json!(1),
                Direction::RecvOnly,
                viewer.viewer_net(),
            )
            .await;
            // The inner limit is never reached: the outer one ends the wait.
            match tokio::time::timeout(PLAYS_WITHIN, v.plays(1, PLAYS_WITHIN * 2)).await {
                Ok(_) => first_frames.push(start.elapsed()),
                Err(_) => eprintln!("call {call}: no frame within {PLAYS_WITHIN:?}"),
            }
            v.hang_up().await;
        });
    }
    first_frames.sort();
    let ms = |d: Duration| d.as_millis();
    let at = |q: f64| ms(first_frames[((first_frames.len() - 1) as f64 * q) as usize]);
    println!(
        "lossy_handshakes: {loss} % loss each way: {} of {calls} calls played; first frame \
         median {} ms, p90 {} ms, max {} ms; sessions ended by the handshake timeout: {}",
        first_frames.len(),
        if first_frames.is_empty() { 0 } else { at(0.5) },
        if first_frames.is_empty() { 0 } else { at(0.9) },
        first_frames.last().map_or(0, |d| ms(*d)),
        campeer.log.count("no connection within"),
    );
}
