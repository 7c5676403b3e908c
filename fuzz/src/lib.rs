//! What the fuzz targets run, one function per target, over arbitrary bytes: everything
//! campeer parses from the room, as far as the code that parses it without a peer
//! connection. The fuzz binaries call these under libFuzzer; `tests/fuzz_corpus_replays.rs`
//! includes this file and feeds them every committed corpus and regression file, so CI
//! replays the corpus with a plain `cargo test`.
//!
//! A target may only panic when campeer would: a panic here is a finding.

use std::io::Cursor;
use std::sync::OnceLock;

use campeer::access::{Access, Fingerprint, Token, proof};
use campeer::config::AccessConfig;
use campeer::sdp::{self, ANSWERS_ATTRIBUTE};
use campeer::signaling::protocol::{
    self, Candidate, MAX_CANDIDATE_BYTES, MAX_MID_BYTES, MAX_SDP_BYTES, MAX_UFRAG_BYTES, RoomEvent,
    SessionId,
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
                let named = sdp::attribute(&sdp, "ice-ufrag").and_then(SessionId::parse);
                assert_eq!(named.as_ref(), Some(&session), "session is not the ufrag");
                offer_checks(&sdp, &session);
            }
            Ok(RoomEvent::Candidate(c)) => {
                let len = |f: &Option<String>| f.as_ref().map_or(0, String::len);
                assert!(
                    c.candidate.len() <= MAX_CANDIDATE_BYTES
                        && len(&c.sdp_mid) <= MAX_MID_BYTES
                        && len(&c.username_fragment) <= MAX_UFRAG_BYTES,
                    "an oversized candidate field was accepted"
                );
                candidate_checks(&c);
            }
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
    match sdp::attribute(sdp, "ice-ufrag").and_then(SessionId::parse) {
        Some(session) => offer_checks(sdp, &session),
        None => proof_checks(sdp),
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

/// What a browser's request or connect says about who it is: an `Origin` and a `Host`
/// header (the first line and the rest), or a Socket.IO `auth` payload (the bytes as JSON);
/// also the fingerprint and token syntax the same checks rest on.
pub fn auth(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (origin, host) = text.split_once('\n').unwrap_or((text, ""));
    let auth_payload = serde_json::from_str::<Value>(text).ok();
    for gate in gates() {
        let _ = gate.admits_origin(Some(origin), Some(host));
        let _ = gate.admits_origin(Some(text), None);
        if let Some(payload) = &auth_payload {
            let _ = gate.admits_socket(payload);
        }
    }
    let _ = Fingerprint::parse(text);
    let _ = Token::parse(text);
}

/// The token every gate holds.
const TOKEN: &str = "fuzz-token-0123456789abcdef";

/// Two boards: one closed (proof required, one listed browser, one extra origin, TLS) and
/// one open to any offer.
fn gates() -> &'static [Access; 2] {
    static GATES: OnceLock<[Access; 2]> = OnceLock::new();
    GATES.get_or_init(|| {
        let token = Token::parse(TOKEN).expect("a valid token");
        let closed = AccessConfig {
            allowed_fingerprints: vec![
                "sha-256 88:20:4C:6B:CF:DC:EA:B7:E4:C7:2A:DE:37:3F:BD:98:93:DC:9E:95:CB:79:CB:25:1A:6C:29:E2:89:A8:90:5C".into(),
            ],
            allowed_origins: vec!["https://a.example".into()],
            tls: campeer::config::TlsMode::SelfSigned,
            ..AccessConfig::default()
        };
        let open = AccessConfig {
            open: true,
            ..AccessConfig::default()
        };
        [
            Access::with_token(token.clone(), &closed),
            Access::with_token(token, &open),
        ]
    })
}

/// The offer's proof line (`a=x-campeer-auth`), through each gate; and what campeer signs
/// itself verifies.
fn proof_checks(sdp: &str) {
    for gate in gates() {
        let _ = gate.admit_offer(sdp);
    }
    let token = gates()[0].token();
    if !sdp.contains(proof::ATTRIBUTE)
        && let Some(signed) = proof::with_proof(token, sdp)
    {
        assert_eq!(
            proof::verify(token, &signed),
            Ok(()),
            "a proof campeer adds does not verify"
        );
    }
}

fn offer_checks(sdp: &str, session: &SessionId) {
    proof_checks(sdp);
    let _ = sdp::offers_codec(sdp, "VP8");
    let _ = sdp::offers_codec(sdp, "opus");
    let _ = sdp::attribute(sdp, "fingerprint");
    // tag_answer runs on campeer's own answers; over any text it must still not panic.
    let _ = sdp::tag_answer(sdp, session.as_str());
    let _ = sdp::attribute(sdp, ANSWERS_ATTRIBUTE);
    if sdp.len() <= MAX_SDP_BYTES {
        let _ = rtc::sdp::SessionDescription::unmarshal(&mut Cursor::new(sdp.as_bytes()));
    }
}

fn candidate_checks(c: &Candidate) {
    let _ = c.session();
    let _ = campeer::session::candidate::RemoteCandidates::new(32, false).admit(&c.candidate);
    if c.is_end_of_candidates() {
        return;
    }
    let line = c
        .candidate
        .strip_prefix("candidate:")
        .unwrap_or(&c.candidate);
    let _ = rtc::ice::candidate::unmarshal_candidate(line);
}
