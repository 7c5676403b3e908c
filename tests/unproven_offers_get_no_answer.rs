//! On a relay shared with strangers (the npm relay of PROTOCOL.md), campeer answers only
//! offers that prove the token: an offer with a wrong proof, and a proof sniffed from the
//! room replayed under another DTLS fingerprint, are refused before any session is made
//! (campeer's "offer refused" line names them), while the proven offers are answered.

mod common;

use std::time::Duration;

use futures_util::FutureExt;
use rust_socketio::Payload;
use rust_socketio::asynchronous::{Client, ClientBuilder};
use serde_json::json;
use tokio::sync::mpsc;

use campeer::access::{Token, proof};
use campeer::sdp;
use common::viewer::{Direction, Viewer};
use common::{CONNECT_DEADLINE, TEST_TOKEN, campeer_in_relay_room};

/// A real Chromium offer (ufrag `c6UP`).
const CHROMIUM_OFFER: &str = include_str!("../fuzz/corpus/offer_sdp/chromium-recvonly-offer.sdp");

/// What a member of the room hears: `(event, sdp)` for offers and answers.
struct Member {
    socket: Client,
    heard: mpsc::UnboundedReceiver<(&'static str, String)>,
}

impl Member {
    /// Joins room 1 at `url`, with the embedded relay's connect token (the npm relay
    /// ignores it): any stranger can.
    async fn join(url: &str) -> Member {
        let (heard_tx, heard) = mpsc::unbounded_channel();
        let (joined_tx, mut joined) = mpsc::unbounded_channel();
        let mut builder = ClientBuilder::new(url).on("open", move |_, c: Client| {
            let joined_tx = joined_tx.clone();
            async move {
                c.emit("joinRoom", json!(1)).await.expect("joinRoom");
                let _ = joined_tx.send(());
            }
            .boxed()
        });
        for (event, kind) in [("receiveOffer", "offer"), ("receiveAnswer", "answer")] {
            let heard_tx = heard_tx.clone();
            builder = builder.on(event, move |payload, _| {
                let heard_tx = heard_tx.clone();
                async move {
                    if let Payload::Text(v) = payload
                        && let Some(sdp) = v[0][kind]["sdp"].as_str()
                    {
                        let _ = heard_tx.send((kind, sdp.to_owned()));
                    }
                }
                .boxed()
            });
        }
        let socket = tokio::time::timeout(CONNECT_DEADLINE, builder.connect())
            .await
            .expect("the member reaches the relay in time")
            .expect("the member reaches the relay");
        tokio::time::timeout(CONNECT_DEADLINE, joined.recv())
            .await
            .expect("the member joins in time");
        Member { socket, heard }
    }

    async fn offer(&self, sdp: &str) {
        let payload = json!({ "offer": { "type": "offer", "sdp": sdp }, "room": 1 });
        self.socket
            .emit("sendOffer", payload)
            .await
            .expect("sendOffer");
    }

    /// The next offer or answer heard (`kind` is "offer" or "answer").
    async fn next(&mut self, kind: &str) -> String {
        loop {
            let (heard, sdp) = tokio::time::timeout(CONNECT_DEADLINE, self.heard.recv())
                .await
                .unwrap_or_else(|_| panic!("no {kind} within {CONNECT_DEADLINE:?}"))
                .expect("the member's socket is open");
            if heard == kind {
                return sdp;
            }
        }
    }
}

fn token(text: &str) -> Token {
    Token::parse(text).expect("a valid token")
}

/// `sdp` with every `a=fingerprint` line naming a certificate of the sender's own.
fn with_own_fingerprint(sdp: &str) -> String {
    let own: Vec<String> = (0..32).map(|i| format!("{:02X}", 0xA0 + i)).collect();
    sdp.split_inclusive("\r\n")
        .map(|line| match line.starts_with("a=fingerprint:") {
            true => format!("a=fingerprint:sha-256 {}\r\n", own.join(":")),
            false => line.to_owned(),
        })
        .collect()
}

fn answers(sdp: &str) -> Option<&str> {
    sdp::attribute(sdp, sdp::ANSWERS_ATTRIBUTE)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_with_a_wrong_proof_gets_no_answer_and_the_proven_one_does() {
    let (relay, campeer) = campeer_in_relay_room(&[]);
    let mut member = Member::join(&relay.url()).await;
    let ufrag = sdp::attribute(CHROMIUM_OFFER, "ice-ufrag").expect("the offer's ufrag");

    let wrong = token("someone-elses-token-0123456789");
    member
        .offer(&proof::with_proof(&wrong, CHROMIUM_OFFER).expect("provable"))
        .await;
    let refused = format!("a=x-campeer-auth does not match the token ufrag={ufrag}");
    campeer.log.wait_for(&refused, CONNECT_DEADLINE);

    member
        .offer(&proof::with_proof(&token(TEST_TOKEN), CHROMIUM_OFFER).expect("provable"))
        .await;
    // The relay and campeer keep the order: the first answer is for the second offer.
    let answer = member.next("answer").await;
    assert_eq!(answers(&answer), Some(ufrag));
    proof::verify(&token(TEST_TOKEN), &answer).expect("campeer proves its answer");
    let sessions = format!("starting session ufrag={ufrag}");
    assert_eq!(
        campeer.log.count(&sessions),
        1,
        "one session: the proven offer's"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sniffed_proof_under_another_fingerprint_gets_no_answer() {
    let (relay, campeer) = campeer_in_relay_room(&[]);
    let mut sniffer = Member::join(&relay.url()).await;
    relay.wait_for_join(2);
    let mut viewer = Viewer::call(&relay.url(), json!(1), Direction::RecvOnly).await;
    viewer.connected(CONNECT_DEADLINE).await;

    // The viewer's proven offer, as every member of the room heard it.
    let sniffed = sniffer.next("offer").await;
    let ufrag = sdp::attribute(&sniffed, "ice-ufrag").expect("the offer's ufrag");
    assert!(
        sniffed.contains("a=x-campeer-auth:"),
        "the viewer proves its offer"
    );
    sniffer.offer(&with_own_fingerprint(&sniffed)).await;

    let refused = format!("a=x-campeer-auth does not match the token ufrag={ufrag}");
    campeer.log.wait_for(&refused, CONNECT_DEADLINE);
    let sessions = format!("starting session ufrag={ufrag}");
    assert_eq!(campeer.log.count(&sessions), 1, "one session: the viewer's");
    assert_eq!(
        campeer.log.count("answer sent"),
        1,
        "one answer: the viewer's"
    );
    viewer.plays(2, Duration::from_secs(5)).await;
    viewer.hang_up().await;
}
