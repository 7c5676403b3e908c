//! A whole campeer (media pipeline on the test sources, session loop, sessions) against a
//! webrtc-rs viewer through the in-process signaller: no Node, no socket for signaling.
//! The order campeer says things in is seen directly, not inferred from a relay's log.

mod common;

use std::time::Duration;

use campeer::signaling::protocol::{self, RoomEvent};
use serde_json::json;
use tokio::sync::mpsc;

use common::in_process::InProcess;
use common::viewer::{Direction, RoomLink, VideoFrame, Viewer, ViewerNet};

/// Waits for the connection and two frames, the second later than the first.
async fn plays(viewer: &mut Viewer) -> VideoFrame {
    viewer.connected(Duration::from_secs(20)).await;
    let first = viewer.next_video(Duration::from_secs(10)).await;
    let later = viewer.next_video(Duration::from_secs(10)).await;
    assert!(first.counter.is_some() && later.counter > first.counter);
    later
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_answer_precedes_every_candidate_and_frames_arrive() {
    let (campeer, room) = InProcess::start();
    let (link, said) = RoomLink::direct(room);
    let mut viewer = Viewer::call_over(link, Direction::RecvOnly, ViewerNet::default()).await;

    let later = plays(&mut viewer).await;
    assert_eq!((later.width, later.height), (160, 120));
    assert!(!viewer.next_audio(Duration::from_secs(10)).await.is_empty());

    let said = said.lock().unwrap().clone();
    assert_eq!(said.first(), Some(&"sendAnswer"), "said: {said:?}");
    assert_eq!(said.iter().filter(|e| **e == "sendAnswer").count(), 1);
    assert!(said.contains(&"sendCandidate"), "said: {said:?}");

    viewer.hang_up().await;
    campeer.stop().await;
}

/// One member of the room flooding: VP8 offers under made-up ufrags but its one DTLS
/// identity, candidates for sessions that do not exist, and ICE-TCP and loopback
/// candidates. Tells `started` once it is well under way.
async fn flood(room: mpsc::Sender<RoomEvent>, started: tokio::sync::oneshot::Sender<()>) {
    let mut started = Some(started);
    for n in 0..300u32 {
        let sdp = format!(
            "v=0\r\no=- {n} 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
             a=fingerprint:sha-256 AB:CD:EF\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n\
             a=ice-ufrag:flood{n:04}\r\na=ice-pwd:0123456789abcdef01234567\r\n\
             a=rtpmap:96 VP8/90000\r\n"
        );
        let offer = json!({ "offer": { "type": "offer", "sdp": sdp } });
        let candidates = [
            format!("candidate:1 1 udp 1 203.0.113.{} 9 typ host", n % 250),
            "candidate:2 1 tcp 1 192.0.2.1 9 typ host tcptype passive".to_owned(),
            "candidate:3 1 udp 1 127.0.0.1 22 typ host".to_owned(),
        ];
        let mut events = vec![protocol::parse(protocol::RECEIVE_OFFER, &[offer]).unwrap()];
        for (i, c) in candidates.into_iter().enumerate() {
            let body = json!({ "candidate": { "candidate": c, "sdpMid": "0",
                "usernameFragment": format!("ghost{n:04}{i}") } });
            events.push(protocol::parse(protocol::RECEIVE_CANDIDATE, &[body]).unwrap());
        }
        for ev in events {
            if room.send(ev).await.is_err() {
                return;
            }
        }
        if n == 50 {
            started.take().map(|s| s.send(()));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_calling_during_a_flood_from_one_sender_still_plays() {
    let (campeer, room) = InProcess::start();
    let (started_tx, started) = tokio::sync::oneshot::channel();
    let flooder = tokio::spawn(flood(room.events.clone(), started_tx));
    started.await.expect("the flood starts");
    let (link, _) = RoomLink::direct(room);
    let mut viewer = Viewer::call_over(link, Direction::RecvOnly, ViewerNet::default()).await;

    plays(&mut viewer).await;

    flooder.abort();
    viewer.hang_up().await;
    campeer.stop().await;
}
