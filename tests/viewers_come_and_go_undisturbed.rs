//! As many viewers as campeer serves by default (`webrtc.max_sessions`), webrtc-rs in this
//! process: two watch throughout, one also sends bad candidates under its own name and
//! under a watcher's, and the rest join and leave at random (a seeded RNG, its seed
//! printed; `CHURN_SEED` replays a run). Every viewer decodes the test pattern's frame
//! counter in order, and none sees a hole in it longer than a second's frames: no viewer's
//! arrival, departure or bad candidates disturbs another.

mod common;

use std::sync::Arc;
use std::time::Duration;

use campeer::config::Config;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use tokio::time::Instant;

use common::in_process::InProcess;
use common::playback::{assert_in_order, counters_until};
use common::viewer::{DirectRoom, Direction, Says, Viewer, ViewerNet};

/// The viewers at once: campeer's default limit, checked below.
const VIEWERS: usize = 8;
/// How long the viewers come and go.
const CHURN: Duration = Duration::from_secs(16);
/// A second of the test pattern (30 fps): a longer step between the counters one viewer
/// decodes is a stall a person sees. A frame lost on loopback costs the frames until the
/// next keyframe, which a PLI brings within a few.
const MAX_STEP: u32 = 30;
/// Only against a hang; a viewer on loopback connects in well under a second.
const CONNECT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_viewers_coming_and_going_at_random_each_play_in_order() {
    assert_eq!(
        Config::default().webrtc.max_sessions,
        VIEWERS,
        "the default viewer limit"
    );
    let seed: u64 = std::env::var("CHURN_SEED")
        .ok()
        .map(|s| s.parse().expect("CHURN_SEED is a number"))
        .unwrap_or_else(rand::random);
    eprintln!("churn seed: {seed} (CHURN_SEED={seed} replays this run)");
    let (campeer, room) = InProcess::start();
    let room = Arc::new(DirectRoom::new(room));

    let mut steady = Vec::new();
    for _ in 0..2 {
        let mut v = Viewer::call_over(room.link(), Direction::RecvOnly, ViewerNet::default()).await;
        v.connected(CONNECT).await;
        steady.push(v);
    }
    let rogue_link = room.link();
    let rogue_mouth = rogue_link.mouth();
    let mut rogue = Viewer::call_over(rogue_link, Direction::RecvOnly, ViewerNet::default()).await;
    for ufrag in [&rogue.ufrag, &steady[0].ufrag] {
        for c in bad_candidates(ufrag) {
            let _ = rogue_mouth.send(Says::Candidate(c));
        }
    }
    rogue.connected(CONNECT).await;

    let end = Instant::now() + CHURN;
    let watchers: Vec<_> = steady
        .into_iter()
        .chain([rogue])
        .map(|mut v| {
            tokio::spawn(async move {
                let mut counters = watch(&mut v, end).await;
                // The frame after the end: a stall at the end shows as a hole too.
                counters.push(next_counter(&mut v).await);
                (v, counters)
            })
        })
        .collect();
    let churners: Vec<_> = (watchers.len()..VIEWERS)
        .map(|slot| {
            let rng = StdRng::seed_from_u64(seed.wrapping_add(slot as u64));
            tokio::spawn(churn(slot, Arc::clone(&room), rng, end))
        })
        .collect();

    let mut calls = 0;
    for (slot, churner) in churners.into_iter().enumerate() {
        for (n, counters) in churner
            .await
            .expect("a churning viewer")
            .into_iter()
            .enumerate()
        {
            assert_in_order(&format!("churner {slot}, call {n}"), &counters, MAX_STEP);
            calls += 1;
        }
    }
    eprintln!("{calls} calls came and went");
    assert!(calls >= VIEWERS, "the viewers came and went: {calls} calls");
    for (i, watcher) in watchers.into_iter().enumerate() {
        let (v, counters) = watcher.await.expect("a watching viewer");
        let name = if i < 2 { "steady" } else { "rogue" };
        assert_in_order(&format!("{name} viewer {i}"), &counters, MAX_STEP);
        v.hang_up().await;
    }
    campeer.stop().await;
}

/// Joins and leaves over and over until `end`: first after up to 2 s, then after 5–7 s
/// away, each call lasting 0.5–3 s, now and then sending media as the reference page
/// does. Returns the counters each call decoded.
///
/// Away that long because campeer sees a viewer leave only when ICE does (webrtc-rs 0.21
/// reports no peer's DTLS close): its session holds a slot until it is disconnected (4 s),
/// then gives it to the next offer that finds all slots taken.
async fn churn(slot: usize, room: Arc<DirectRoom>, mut rng: StdRng, end: Instant) -> Vec<Vec<u32>> {
    let mut calls = Vec::new();
    let mut away = Duration::from_millis(rng.random_range(0..2000));
    loop {
        tokio::time::sleep(away).await;
        away = Duration::from_millis(rng.random_range(5000..7000));
        let stay = Duration::from_millis(rng.random_range(500..3000));
        if Instant::now() + stay > end {
            return calls;
        }
        let direction = if rng.random_ratio(1, 4) {
            Direction::SendRecv
        } else {
            Direction::RecvOnly
        };
        let mut v = Viewer::call_over(room.link(), direction, ViewerNet::default()).await;
        v.connected(CONNECT).await;
        let mut counters = vec![next_counter(&mut v).await];
        counters.extend(watch(&mut v, Instant::now() + stay).await);
        eprintln!(
            "[churn] slot {slot}: {} frames, {:?}",
            counters.len(),
            direction
        );
        v.hang_up().await;
        calls.push(counters);
    }
}

/// The counters `viewer` decodes until `until`.
async fn watch(viewer: &mut Viewer, until: Instant) -> Vec<u32> {
    counters_until(viewer, tokio::time::sleep_until(until)).await
}

async fn next_counter(viewer: &mut Viewer) -> u32 {
    viewer.next_counter(Duration::from_secs(5)).await
}

/// Candidates a page's script can send: not candidate lines, ICE-TCP, addresses campeer
/// must not send to, nonsense numbers, and more loopback ports where nobody listens
/// (127.0.0.3) than a session applies.
fn bad_candidates(ufrag: &str) -> Vec<Value> {
    let mut lines = vec![
        "candidate:garbage".to_owned(),
        "not a candidate at all".to_owned(),
        "candidate:1 1 tcp 2105524479 127.0.0.1 9 typ host tcptype passive".to_owned(),
        "candidate:2 1 udp 2122260223 0.0.0.0 9 typ host".to_owned(),
        "candidate:3 1 udp 2122260223 224.0.0.251 5353 typ host".to_owned(),
        "candidate:4 1 udp 2122260223 ::1 9 typ host".to_owned(),
        "candidate:5 1 udp 99999999999 127.0.0.3 70000 typ host".to_owned(),
        "candidate:6 7 udp 1 127.0.0.3 9 typ relay raddr x rport y".to_owned(),
        format!(
            "candidate:7 1 udp 1 127.0.0.3 9 typ host {}",
            "x".repeat(4000)
        ),
    ];
    lines.extend(
        (1..=40).map(|port| format!("candidate:{port} 1 udp 2130706431 127.0.0.3 {port} typ host")),
    );
    lines
        .into_iter()
        .map(|c| {
            json!({ "candidate": c, "sdpMid": "0", "sdpMLineIndex": 0,
                    "usernameFragment": ufrag })
        })
        .collect()
}
