//! A plain http relay that refuses websockets (socket.io with `transports: ["polling"]`,
//! as behind a proxy that cannot pass them) is still joined: campeer's first attempt is a
//! websocket, the relay answers it with 400, and the next attempt takes Engine.IO's usual
//! way, polling, on which the room is joined and a viewer's call plays.

mod common;

use std::time::Duration;

use common::viewer::{Direction, Viewer};
use common::{Campeer, Relay, START_DEADLINE};

/// campeer's log from its start to the room joined: the attempts' transports and the
/// fallback between them, in order.
fn attempts_until_joined(campeer: &Campeer) -> Vec<String> {
    campeer
        .log
        .wait_for("signaling: connected, joining room", START_DEADLINE);
    campeer
        .log
        .all()
        .into_iter()
        .filter(|l| l.contains("signaling: connecting") || l.contains("falling back to polling"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_refusing_websockets_is_joined_over_polling_and_plays() {
    let relay = Relay::start_polling_only();
    let url = relay.url();
    let mut campeer = Campeer::start(Some(&url), &[]);
    // Checked before the join is awaited, so that a campeer that keeps to the websocket
    // fails here at its second attempt, not at the join's deadline.
    let second = campeer
        .log
        .wait_for_n("signaling: connecting", 2, START_DEADLINE);
    assert!(
        second.contains("transport=Usual"),
        "polling second: {second}"
    );
    relay.wait_for_join(1);

    let attempts = attempts_until_joined(&campeer);
    let [websocket, fallback, polling] = attempts.as_slice() else {
        panic!("one websocket attempt, the fallback, one polling attempt: {attempts:#?}");
    };
    assert!(websocket.contains("transport=Websocket"), "{websocket}");
    assert!(
        fallback.contains(&url),
        "the fallback names the relay: {fallback}"
    );
    assert!(polling.contains("transport=Usual"), "{polling}");

    let mut viewer = Viewer::connect(&url, Direction::RecvOnly).await;
    viewer.plays(10, Duration::from_secs(5)).await;
    viewer.hang_up().await;

    assert!(campeer.is_running());
    assert!(campeer.terminate().success(), "clean exit on SIGTERM");
    // Hanging up aborts polling's pending request; that is campeer's doing, not an error.
    assert_eq!(campeer.log.count("signaling: socket error"), 0);
}
