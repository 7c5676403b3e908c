//! A viewer that closes its peer connection (DTLS `close_notify`) while it stays in the
//! room has its session ended at once, as closed by the viewer: its slot is not held until
//! ICE notices the silence (4 s to disconnected, then failed), which would end it as
//! failed.

mod common;

use std::time::Duration;

use common::call_through_relay;
use common::viewer::Direction;

/// Only against a hang: the call's first frames.
const PLAYS: Duration = Duration::from_secs(20);
/// Only against a hang: longer than the ICE timeouts, so the old way ends too, as failed.
const ENDS_WITHIN: Duration = Duration::from_secs(30);

#[tokio::test]
async fn a_viewer_that_closes_its_connection_ends_its_session_as_closed() {
    let (_relay, campeer, mut viewer) = call_through_relay(&[], Direction::RecvOnly).await;
    viewer.plays(3, PLAYS).await;
    let from = campeer.log.len();

    viewer.close_connection().await;
    let ended = campeer
        .log
        .wait_for_line(from, ENDS_WITHIN, "the session's end", |l| {
            l.contains("session ended").then(|| l.to_owned())
        });
    assert!(
        ended.contains("session ended: closed"),
        "the session ended on the viewer's goodbye: {ended}"
    );
}
