//! The embedded relay's caps hold against a member that opens sockets or joins rooms
//! without end: 64 sockets connect and the 65th is refused; a socket's fifth room is
//! refused, and its first four are kept.

mod common;

use std::time::Duration;

use common::viewer::RoomLink;
use common::{Campeer, TEST_TOKEN};
use rust_socketio::asynchronous::ClientBuilder;
use serde_json::json;

const DEADLINE: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_65th_socket_and_a_fifth_room_are_refused() {
    let (mut campeer, url) =
        Campeer::start_embedded(&[("RUST_LOG", "info,campeer::signaling::server=debug")]);

    let mut links = Vec::new();
    for i in 0..64 {
        // Each waits until its socket is open and its join sent.
        links.push(RoomLink::relay(&url, json!(format!("cap-{i}"))).await);
    }
    campeer
        .log
        .wait_for_n("relay: socket joined room", 64, DEADLINE);
    assert_eq!(campeer.log.count("socket refused"), 0, "64 sockets fit");

    let extra = ClientBuilder::new(url.as_str())
        .auth(json!({ "token": TEST_TOKEN }))
        .connect();
    // The refused socket may or may not see an error; the relay's word is what counts.
    let _extra = tokio::time::timeout(DEADLINE, extra).await;
    campeer
        .log
        .wait_for("relay: socket refused: 64 are connected", DEADLINE);

    let first = &links[0];
    for room in ["a", "b", "c"] {
        first.join_also(json!(room)).await;
    }
    campeer
        .log
        .wait_for_n("relay: socket joined room", 67, DEADLINE);
    first.join_also(json!("e")).await;
    campeer.log.wait_for("relay: join refused", DEADLINE);
    assert_eq!(
        campeer.log.count("relay: socket joined room"),
        67,
        "the fifth room was not joined"
    );
    drop(links);
    assert!(campeer.terminate().success());
}
