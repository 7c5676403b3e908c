//! A relay that accepts TCP and then says nothing does not hold campeer: the attempt is
//! abandoned after the connect timeout and another one follows, without credentials of
//! the relay URL in the log.

mod common;

use std::net::TcpListener;
use std::time::Duration;

use common::Campeer;

#[test]
fn a_silent_relay_is_abandoned_and_tried_again() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accept and hold every connection, answering nothing.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    let url = format!("http://cam:relaysecret@127.0.0.1:{port}");
    let mut campeer = Campeer::start(Some(&url), &[]);

    campeer
        .log
        .wait_for("no room joined within", Duration::from_secs(30));
    // The next attempt follows (over polling at once, as the websocket reached the relay).
    campeer
        .log
        .wait_for_n("signaling: connecting", 2, Duration::from_secs(10));
    assert!(campeer.is_running());
    assert_eq!(
        campeer.log.count("relaysecret"),
        0,
        "credentials in the log"
    );
    assert!(campeer.terminate().success());
}
