//! What the fuzz targets run, one function per target, over arbitrary bytes: everything
//! campeer parses from the room, as far as the code that parses it without a peer
//! connection. The fuzz binaries call these under libFuzzer; `tests/fuzz_corpus_replays.rs`
//! includes this file and feeds them every committed corpus and regression file, so CI
//! replays the corpus with a plain `cargo test`.
//!
//! A target may only panic when campeer would: a panic here is a finding.

use std::io::Cursor;

use campeer::signaling::protocol::{
    self, ANSWERS_ATTRIBUTE, Candidate, MAX_SDP_BYTES, RoomEvent, SessionId,
};
use serde_json::Value;

/// The events the relay delivers to campeer, all parsed by the same entry point.
const EVENTS: [&str; 3] = [
    protocol::RECEIVE_OFFER,
    protocol::RECEIVE_CANDIDATE,
    protocol::RECEIVE_ANSWER,
];

/// A Socket.IO event payload: the bytes as JSON (an array is the packet's argument list,
/// anything else its one argument), or as the stringified JSON some clients send.
pub fn room_event(data: &[u8]) {
    let payload = match serde_json::from_slice::<Value>(data) {
        Ok(Value::Array(args)) => args,
        Ok(one) => vec![one],
        Err(_) => vec![Value::String(String::from_utf8_lossy(data).into_owned())],
    };
    for event in EVENTS {
        match protocol::parse(event, &payload) {
            Ok(RoomEvent::Offer { session, sdp }) => {
                assert!(
                    sdp.len() <= MAX_SDP_BYTES,
                    "an oversized offer was accepted"
                );
                let named = protocol::sdp_attribute(&sdp, "ice-ufrag").and_then(SessionId::parse);
                assert_eq!(named.as_ref(), Some(&session), "session is not the ufrag");
                offer_checks(&sdp, &session);
            }
            Ok(RoomEvent::Candidate(c)) => candidate_checks(&c),
            Ok(RoomEvent::ForeignAnswer) | Err(_) => {}
        }
    }
}

/// An offer's SDP text: campeer's own checks, then webrtc-rs's parser, which every
/// admitted offer reaches (`RTCSessionDescription::offer` parses eagerly).
pub fn offer_sdp(data: &[u8]) {
    // The SDP arrives inside a JSON string: always UTF-8.
    let Ok(sdp) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(session) = protocol::sdp_attribute(sdp, "ice-ufrag").and_then(SessionId::parse) {
        offer_checks(sdp, &session);
    }
}

/// A candidate line, as `addIceCandidate` hands it to the ICE agent.
pub fn candidate(data: &[u8]) {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    candidate_checks(&Candidate {
        candidate: line.to_owned(),
        sdp_mid: Some("0".into()),
        sdp_mline_index: Some(0),
        username_fragment: Some(line.to_owned()),
    });
}

fn offer_checks(sdp: &str, session: &SessionId) {
    let _ = protocol::sdp_offers_codec(sdp, "VP8");
    let _ = protocol::sdp_offers_codec(sdp, "opus");
    let _ = protocol::sdp_attribute(sdp, "fingerprint");
    // tag_answer runs on campeer's own answers; over any text it must still not panic.
    let _ = protocol::tag_answer(sdp, session);
    let _ = protocol::sdp_attribute(sdp, ANSWERS_ATTRIBUTE);
    if sdp.len() <= MAX_SDP_BYTES {
        let _ = rtc::sdp::SessionDescription::unmarshal(&mut Cursor::new(sdp.as_bytes()));
    }
}

fn candidate_checks(c: &Candidate) {
    let _ = c.session();
    if c.is_end_of_candidates() {
        return;
    }
    let line = c
        .candidate
        .strip_prefix("candidate:")
        .unwrap_or(&c.candidate);
    let _ = rtc::ice::candidate::unmarshal_candidate(line);
}
