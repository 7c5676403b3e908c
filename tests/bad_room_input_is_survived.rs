//! Garbage from the room (PROTOCOL.md's "bad input") gets a logged warning (a few lines
//! a second at most, the rest counted) and never harms the call already running: a
//! viewer keeps decoding frames throughout.

mod common;

use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use rtc::interceptor::Registry;
use rtc::peer_connection::configuration::media_engine::MIME_TYPE_H264;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodec, RTCRtpCodecParameters, RtpCodecKind};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use rust_socketio::asynchronous::{Client, ClientBuilder};
use serde_json::{Value, json};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCConfigurationBuilder, register_default_interceptors,
};

use common::call_through_relay;
use common::viewer::Direction;

struct Quiet;
#[async_trait::async_trait]
impl PeerConnectionEventHandler for Quiet {}

/// A real browser-shaped offer whose only video codec is H.264.
async fn offer_without_vp8() -> String {
    let mut engine = MediaEngine::default();
    engine
        .register_codec(
            RTCRtpCodecParameters {
                rtp_codec: RTCRtpCodec {
                    mime_type: MIME_TYPE_H264.into(),
                    clock_rate: 90_000,
                    channels: 0,
                    sdp_fmtp_line:
                        "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"
                            .into(),
                    rtcp_feedback: vec![],
                },
                payload_type: 102,
            },
            RtpCodecKind::Video,
        )
        .unwrap();
    let registry = register_default_interceptors(Registry::new(), &mut engine).unwrap();
    let pc = PeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_media_engine(engine)
        .with_interceptor_registry(registry)
        .with_handler(Arc::new(Quiet))
        .with_udp_addrs(vec!["127.0.0.1:0"])
        .build()
        .await
        .unwrap();
    pc.add_transceiver_from_kind(
        RtpCodecKind::Video,
        Some(RTCRtpTransceiverInit {
            direction: RTCRtpTransceiverDirection::Recvonly,
            ..Default::default()
        }),
    )
    .await
    .unwrap();
    let offer = pc.create_offer(None).await.unwrap();
    pc.close().await.unwrap();
    offer.sdp
}

async fn troll(url: &str) -> Client {
    let (tx, mut joined) = tokio::sync::mpsc::unbounded_channel();
    let c = ClientBuilder::new(url)
        .on("open", move |_, c: Client| {
            let tx = tx.clone();
            async move {
                c.emit("joinRoom", json!(1)).await.unwrap();
                let _ = tx.send(());
            }
            .boxed()
        })
        .connect()
        .await
        .unwrap();
    joined.recv().await;
    c
}

fn offer(sdp: &str) -> Value {
    json!({ "offer": { "type": "offer", "sdp": sdp }, "room": 1 })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_in_the_room_is_logged_and_the_running_call_goes_on() {
    // Open, so that unproven garbage reaches the parsers and sessions it is here to test
    // (with access closed it is refused before them: the access tests cover that).
    let open = [("CAMPEER__ACCESS__OPEN", "true")];
    let (relay, mut campeer, mut viewer) = call_through_relay(&open, Direction::RecvOnly).await;
    let before = viewer.next_counter(Duration::from_secs(5)).await;

    let t = troll(&relay.url()).await;
    let no_vp8 = offer_without_vp8().await;
    let bad: Vec<(&str, Value)> = vec![
        ("sendOffer", json!({ "offer": "garbage{", "room": 1 })),
        ("sendOffer", json!({ "offer": 17, "room": 1 })),
        (
            "sendOffer",
            offer(&format!(
                "v=0\r\na=ice-ufrag:Big1\r\n{}",
                "x".repeat(100_000)
            )),
        ),
        (
            "sendOffer",
            offer("this is not sdp\r\na=ice-ufrag:Junk1234\r\na=rtpmap:96 VP8/90000\r\n"),
        ),
        ("sendOffer", offer(&no_vp8)),
        ("sendCandidate", json!({ "candidate": 42, "room": 1 })),
        (
            "sendCandidate",
            json!({ "candidate": {
            "candidate": "candidate:1 1 udp 2122260223 10.9.9.9 9 typ host",
            "sdpMid": "0", "sdpMLineIndex": 0, "usernameFragment": "nobodyhere" }, "room": 1 }),
        ),
        (
            "sendAnswer",
            json!({ "answer": { "type": "answer", "sdp": "v=0\r\n" }, "room": 1 }),
        ),
    ];
    for (event, payload) in bad {
        t.emit(event, payload).await.unwrap();
    }
    // A flood: more offers than the burst allowance.
    for n in 0..15 {
        t.emit(
            "sendOffer",
            offer(&format!("v=0\r\na=ice-ufrag:flood{n:03}\r\n")),
        )
        .await
        .unwrap();
    }

    let log = campeer.log.clone();
    let wait = Duration::from_secs(10);
    log.wait_for_n("wrong shape", 3, wait);
    log.wait_for("over the 65536-byte limit", wait);
    assert!(log.wait_for("parse offer", wait).contains("Junk1234"));
    log.wait_for("the offer has no VP8", wait);
    log.wait_for("offer refused", wait);

    // The call that was running never noticed.
    let mut last = before;
    for _ in 0..30 {
        let n = viewer.next_counter(Duration::from_secs(2)).await;
        assert!(n > last, "counter went from {last} to {n}");
        last = n;
    }
    assert!(campeer.is_running());
    assert_eq!(log.count("panicked"), 0);
    viewer.hang_up().await;
    assert!(campeer.terminate().success());
}
