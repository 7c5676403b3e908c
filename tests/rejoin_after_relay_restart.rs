//! campeer started before its relay, and a relay restarted mid-run, both end in a
//! working call: the first connection is retried and the room is joined again after
//! every reconnect (rust_socketio forgets rooms).

mod common;

use std::time::Duration;

use common::viewer::{Direction, Viewer};
use common::{Campeer, Relay, free_port};

async fn one_good_call(url: &str) {
    let mut viewer = Viewer::connect(url, Direction::RecvOnly).await;
    let a = viewer.next_counter(Duration::from_secs(5)).await;
    let b = viewer.next_counter(Duration::from_secs(5)).await;
    assert!(b > a, "frames move: {a} then {b}");
    viewer.hang_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campeer_started_before_the_relay_and_relay_restarted_still_serves() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut campeer = Campeer::start(Some(&url), &[]);
    campeer
        .log
        .wait_for("cannot connect", Duration::from_secs(10));

    let mut relay = Relay::start_on(port);
    relay.wait_for_join(1);
    one_good_call(&url).await;

    relay.stop();
    let relay = Relay::start_on(port);
    relay.wait_for_join(1);
    one_good_call(&url).await;

    assert!(campeer.is_running());
    assert!(campeer.terminate().success());
}
