//! A board cabled straight to a laptop (an isolated VLAN, a container) has an address and
//! no default route, so no route for multicast either: campeer must still answer and
//! play, with mDNS left out and said so once.

mod common;

use std::time::Duration;

use common::netns::{self, Lan};
use common::viewer::{Direction, Viewer};
use common::{Campeer, Relay};

#[test]
fn campeer_without_a_default_route_answers_and_plays() {
    if !netns::can_run("campeer_without_a_default_route_answers_and_plays") {
        return;
    }
    let lan = Lan::new(&["campeer", "laptop"]);
    let (board, laptop) = (lan.host("campeer"), lan.host("laptop"));
    board.remove_default_route();
    let relay = Relay::start_in(laptop);
    let campeer = Campeer::start_in(board, &relay.url(), &[]);
    relay.wait_for_join(1);

    laptop.block_on(async {
        let mut viewer =
            Viewer::connect_on(&relay.url(), Direction::RecvOnly, laptop.viewer_net()).await;
        viewer.plays(30, Duration::from_secs(5)).await;
        // A second call finds the same network: no second warning.
        let mut again =
            Viewer::connect_on(&relay.url(), Direction::RecvOnly, laptop.viewer_net()).await;
        again.plays(10, Duration::from_secs(5)).await;
        viewer.hang_up().await;
        again.hang_up().await;
    });
    assert_eq!(
        campeer.log.count("mDNS off"),
        1,
        "mDNS is given up once, and said so"
    );
}
