//! Networks whose only way out for media is a TURN server (Debian's coturn, started by
//! the test): a viewer behind one plays over its relay candidate; campeer behind one plays
//! through its own allocation while the viewer, like the reference page, has no TURN
//! server, whether campeer may reach the server over UDP or, with no UDP out at all,
//! only over TCP or TLS (bridged by campeer, src/turn). The TURN password never reaches
//! campeer's log.

mod common;

use std::time::{Duration, Instant};

use common::netns::{self, Lan};
use common::turn::{self, Turn};
use common::viewer::{Direction, SelectedPair, Viewer, ViewerNet};
use common::{Campeer, Relay};
use rtc::peer_connection::transport::RTCIceCandidateType;
use webrtc::peer_connection::RTCIceServer;

/// campeer's own log at debug, where a leaked credential would show, and the ICE pair
/// webrtc-rs selects.
const LOG: (&str, &str) = (
    "RUST_LOG",
    "info,campeer=debug,webrtc=warn,rtc=warn,rtc::peer_connection::handler::ice=debug",
);

/// Calls campeer from `viewer`, waits for 30 frames, prints how soon the first came, and
/// returns the pair the viewer settled on.
fn watch(viewer: &netns::Host, relay: &Relay, net: ViewerNet, how: &str) -> SelectedPair {
    viewer.block_on(async {
        let asked = Instant::now();
        let mut v = Viewer::connect_on(&relay.url(), Direction::RecvOnly, net).await;
        let first = v.plays(30, Duration::from_secs(5)).await;
        eprintln!(
            "first frame through TURN ({how}) {:?} after the offer",
            first.at.duration_since(asked)
        );
        let pair = v.selected_pair().await.expect("a selected candidate pair");
        v.hang_up().await;
        pair
    })
}

/// The places in webrtc-rs 0.21's driver that log `Failed to write packet`.
const FAILED_WRITE_STATEMENTS: usize = 4;

fn assert_password_not_logged(campeer: &Campeer, turn: &Turn) {
    let leaks: Vec<String> = campeer
        .log
        .all()
        .into_iter()
        .filter(|l| l.contains(&turn.password))
        .collect();
    assert!(leaks.is_empty(), "the TURN password was logged: {leaks:?}");
}

#[test]
fn viewer_reaching_campeer_only_through_turn_plays_over_a_relay_candidate() {
    if !netns::can_run("viewer_reaching_campeer_only_through_turn_plays_over_a_relay_candidate") {
        return;
    }
    let lan = Lan::new(&["campeer", "viewer", "turn"]);
    let (board, viewer, server) = (lan.host("campeer"), lan.host("viewer"), lan.host("turn"));
    let turn = Turn::start(server);
    let relay = Relay::start_in(server);
    let campeer = Campeer::start_in(board, &relay.url(), &[LOG]);
    relay.wait_for_join(1);
    viewer.allow_udp_only_to(server.addr, turn::PORT);

    let net = ViewerNet {
        ice_servers: vec![RTCIceServer {
            urls: vec![turn.url.clone()],
            username: turn::USER.into(),
            credential: turn.password.clone(),
        }],
        ..viewer.viewer_net()
    };
    let pair = watch(viewer, &relay, net, "Udp, the viewer's allocation");
    assert_eq!(pair.local, RTCIceCandidateType::Relay, "{pair:?}");
    assert_password_not_logged(&campeer, &turn);
}

/// How campeer's network lets it reach the TURN server, and the URL it is given.
#[derive(Clone, Copy, Debug)]
enum TurnTransport {
    /// UDP to the TURN port only.
    Udp,
    /// No UDP out at all: `turn:…?transport=tcp`, bridged by campeer.
    Tcp,
    /// No UDP out at all: `turns:`, bridged by campeer over TLS, the server's
    /// self-signed certificate trusted through the entry's `ca_file`.
    Tls,
}

#[test]
fn campeer_reaching_only_turn_plays_through_its_own_allocation() {
    if !netns::can_run("campeer_reaching_only_turn_plays_through_its_own_allocation") {
        return;
    }
    plays_through_its_own_allocation(TurnTransport::Udp);
}

#[test]
fn campeer_reaching_turn_only_over_tcp_plays_through_its_own_allocation() {
    if !netns::can_run("campeer_reaching_turn_only_over_tcp_plays_through_its_own_allocation") {
        return;
    }
    plays_through_its_own_allocation(TurnTransport::Tcp);
}

#[test]
fn campeer_reaching_turn_only_over_tls_plays_through_its_own_allocation() {
    if !netns::can_run("campeer_reaching_turn_only_over_tls_plays_through_its_own_allocation") {
        return;
    }
    plays_through_its_own_allocation(TurnTransport::Tls);
}

/// campeer behind a firewall that leaves it only `transport` to the TURN server, and a
/// viewer without one: the call plays over campeer's relay candidate.
fn plays_through_its_own_allocation(transport: TurnTransport) {
    let lan = Lan::new(&["campeer", "viewer", "turn"]);
    let (board, viewer, server) = (lan.host("campeer"), lan.host("viewer"), lan.host("turn"));
    let turn = match transport {
        TurnTransport::Tls => Turn::start_with_tls(server),
        TurnTransport::Udp | TurnTransport::Tcp => Turn::start(server),
    };
    let relay = Relay::start_in(server);
    let (url, ca_file) = match transport {
        TurnTransport::Udp => (turn.url.clone(), String::new()),
        TurnTransport::Tcp => (turn.tcp_url.clone(), String::new()),
        TurnTransport::Tls => {
            let tls = turn.tls.as_ref().expect("started with TLS");
            let ca = tls.ca_file.to_str().expect("utf-8 path");
            (tls.url.clone(), format!(", ca_file = {ca:?}"))
        }
    };
    let config = tempfile::NamedTempFile::new().expect("temp config");
    std::fs::write(
        config.path(),
        format!(
            "[webrtc]\nice_servers = [{{ urls = [{url:?}], username = {:?}, credential = {:?}{ca_file} }}]\n",
            turn::USER,
            turn.password
        ),
    )
    .expect("config written");
    match transport {
        TurnTransport::Udp => board.allow_udp_only_to(server.addr, turn::PORT),
        TurnTransport::Tcp | TurnTransport::Tls => board.deny_udp_out(),
    }
    let campeer = Campeer::start_in(
        board,
        &relay.url(),
        &[
            LOG,
            (
                "CAMPEER_CONFIG",
                config.path().to_str().expect("utf-8 path"),
            ),
        ],
    );
    relay.wait_for_join(1);

    watch(
        viewer,
        &relay,
        viewer.viewer_net(),
        &format!("{transport:?}, campeer's allocation"),
    );
    // The viewer may know campeer's relay candidate only as peer-reflexive (a check
    // through it came first), so campeer says which pair it uses: its side is an address
    // of the TURN server's.
    let selected = campeer
        .log
        .wait_for("ice selected candidate pair", Duration::from_secs(5));
    let local = selected
        .split("ice selected candidate pair ")
        .nth(1)
        .and_then(|pair| pair.split(" <-> ").next())
        .expect("the line names the local address");
    assert!(
        local.starts_with(&format!("{}:", server.addr)),
        "campeer's side of the pair is not relayed: {selected}"
    );
    assert_password_not_logged(&campeer, &turn);
    let errors = campeer
        .log
        .all()
        .into_iter()
        .filter(|l| l.contains(" ERROR "))
        .count();
    eprintln!("campeer logged {errors} ERROR lines behind the firewall");
    // webrtc-rs logs one for every packet the firewall refuses; campeer logs the first of
    // each of its statements and sums up the rest.
    let failed_writes = campeer.log.count("Failed to write packet");
    assert!(
        failed_writes <= FAILED_WRITE_STATEMENTS,
        "{failed_writes} `Failed to write packet` lines"
    );
}
