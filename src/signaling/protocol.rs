//! The room protocol of `shared/PROTOCOL.md` as pure functions: what arrives from the
//! relay becomes a [`RoomEvent`] or a [`ProtocolError`], and what campeer says becomes a
//! JSON payload. No sockets here, so every malformed input is tested directly.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::config::RoomId;
use crate::sdp;

/// Larger SDPs are refused before parsing: a browser offer is a few KiB.
pub const MAX_SDP_BYTES: usize = 64 * 1024;
/// A candidate line is under 200 bytes; anything near this is not a candidate.
pub const MAX_CANDIDATE_BYTES: usize = 2 * 1024;
/// A media section's id: browsers write "0", "1" or a short word.
pub const MAX_MID_BYTES: usize = 64;
/// RFC 8839 caps an ICE ufrag at 256 characters.
pub const MAX_UFRAG_BYTES: usize = 256;
/// Room text quoted in an error (a serde message quotes the value it refused) is cut
/// here, so a megabyte payload is never a megabyte log line.
pub const MAX_QUOTED_CHARS: usize = 120;

/// `text` cut to `max` characters, an ellipsis marking the cut.
pub fn bounded(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// What serde said about a payload, bounded: see [`MAX_QUOTED_CHARS`].
fn detail(e: &serde_json::Error) -> String {
    bounded(&e.to_string(), MAX_QUOTED_CHARS)
}

/// Names one viewer's session: the ICE username fragment of its offer, which its
/// candidates repeat in `usernameFragment`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(String);

impl SessionId {
    /// Accepts a fragment of ICE characters (RFC 8839: ALPHA / DIGIT / "+" / "/"),
    /// 4 to 256 long, so that a log line or a map key never holds arbitrary input.
    pub fn parse(ufrag: &str) -> Option<Self> {
        let ok = (4..=256).contains(&ufrag.len())
            && ufrag
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/');
        ok.then(|| Self(ufrag.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An ICE candidate as the browser's `RTCIceCandidate.toJSON()` writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Candidate {
    pub candidate: String,
    #[serde(default)]
    pub sdp_mid: Option<String>,
    #[serde(default, rename = "sdpMLineIndex")]
    pub sdp_mline_index: Option<u16>,
    #[serde(default)]
    pub username_fragment: Option<String>,
}

impl Candidate {
    /// The session it names, if it names a well-formed one.
    pub fn session(&self) -> Option<SessionId> {
        self.username_fragment.as_deref().and_then(SessionId::parse)
    }

    /// An empty candidate string is the browser's "end of candidates".
    pub fn is_end_of_candidates(&self) -> bool {
        self.candidate.is_empty()
    }
}

/// What the room says that campeer acts on.
#[derive(Debug, Clone, PartialEq)]
pub enum RoomEvent {
    Offer {
        session: SessionId,
        sdp: String,
    },
    Candidate(Candidate),
    /// Another callee's answer: never for campeer, kept only to be counted and ignored.
    ForeignAnswer,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("`{event}`: payload is not a JSON object: {detail}")]
    NotJson { event: &'static str, detail: String },
    #[error("`{event}`: payload has the wrong shape: {detail}")]
    Shape { event: &'static str, detail: String },
    #[error("`{event}`: {field} is {len} bytes, over the {max}-byte limit")]
    TooLarge {
        event: &'static str,
        field: &'static str,
        len: usize,
        max: usize,
    },
    #[error("`receiveOffer`: description type is {0:?}, not \"offer\"")]
    NotAnOffer(String),
    #[error("`receiveOffer`: SDP has no usable a=ice-ufrag line")]
    NoUfrag,
}

/// The events campeer listens to.
pub const RECEIVE_OFFER: &str = "receiveOffer";
pub const RECEIVE_CANDIDATE: &str = "receiveCandidate";
pub const RECEIVE_ANSWER: &str = "receiveAnswer";

/// Turns one relay event into a [`RoomEvent`]. `payload` is the list of values the
/// Socket.IO packet carried; the relay sends exactly one object.
pub fn parse(event: &'static str, payload: &[Value]) -> Result<RoomEvent, ProtocolError> {
    let body = first_object(event, payload)?;
    match event {
        RECEIVE_OFFER => parse_offer(body),
        RECEIVE_CANDIDATE => parse_candidate(body),
        _ => Ok(RoomEvent::ForeignAnswer),
    }
}

fn first_object(event: &'static str, payload: &[Value]) -> Result<Value, ProtocolError> {
    let first = payload.first().ok_or_else(|| ProtocolError::Shape {
        event,
        detail: "empty payload".into(),
    })?;
    // A client that stringified its JSON still meant an object.
    let value = match first {
        Value::String(s) => serde_json::from_str(s).map_err(|e| ProtocolError::NotJson {
            event,
            detail: detail(&e),
        })?,
        other => other.clone(),
    };
    if value.is_object() {
        Ok(value)
    } else {
        Err(ProtocolError::NotJson {
            event,
            detail: format!("got {}", kind_of(&value)),
        })
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn parse_offer(body: Value) -> Result<RoomEvent, ProtocolError> {
    #[derive(Deserialize)]
    struct Envelope {
        offer: Description,
    }
    #[derive(Deserialize)]
    struct Description {
        #[serde(rename = "type")]
        kind: String,
        sdp: String,
    }
    let Envelope { offer } = serde_json::from_value(body).map_err(|e| ProtocolError::Shape {
        event: RECEIVE_OFFER,
        detail: detail(&e),
    })?;
    if offer.kind != "offer" {
        return Err(ProtocolError::NotAnOffer(bounded(
            &offer.kind,
            MAX_QUOTED_CHARS,
        )));
    }
    if offer.sdp.len() > MAX_SDP_BYTES {
        return Err(ProtocolError::TooLarge {
            event: RECEIVE_OFFER,
            field: "sdp",
            len: offer.sdp.len(),
            max: MAX_SDP_BYTES,
        });
    }
    let session = sdp::attribute(&offer.sdp, "ice-ufrag")
        .and_then(SessionId::parse)
        .ok_or(ProtocolError::NoUfrag)?;
    Ok(RoomEvent::Offer {
        session,
        sdp: offer.sdp,
    })
}

fn parse_candidate(body: Value) -> Result<RoomEvent, ProtocolError> {
    #[derive(Deserialize)]
    struct Envelope {
        candidate: Candidate,
    }
    let Envelope { candidate } =
        serde_json::from_value(body).map_err(|e| ProtocolError::Shape {
            event: RECEIVE_CANDIDATE,
            detail: detail(&e),
        })?;
    let fields = [
        ("candidate", Some(&candidate.candidate), MAX_CANDIDATE_BYTES),
        ("sdpMid", candidate.sdp_mid.as_ref(), MAX_MID_BYTES),
        (
            "usernameFragment",
            candidate.username_fragment.as_ref(),
            MAX_UFRAG_BYTES,
        ),
    ];
    for (field, value, max) in fields {
        let len = value.map_or(0, String::len);
        if len > max {
            return Err(ProtocolError::TooLarge {
                event: RECEIVE_CANDIDATE,
                field,
                len,
                max,
            });
        }
    }
    Ok(RoomEvent::Candidate(candidate))
}

/// What campeer says in the room; the signaling client adds the room and sends it.
#[derive(Debug, Clone, PartialEq)]
pub enum Outgoing {
    JoinRoom,
    Answer { sdp: String },
    Candidate(Candidate),
}

impl Outgoing {
    /// The Socket.IO event name of PROTOCOL.md.
    pub fn event(&self) -> &'static str {
        match self {
            Outgoing::JoinRoom => "joinRoom",
            Outgoing::Answer { .. } => "sendAnswer",
            Outgoing::Candidate(_) => "sendCandidate",
        }
    }

    /// The payload, with the room as the relay wants it (number or string, as configured).
    pub fn payload(&self, room: &RoomId) -> Value {
        match self {
            Outgoing::JoinRoom => room.to_json(),
            Outgoing::Answer { sdp } => {
                json!({ "answer": { "type": "answer", "sdp": sdp }, "room": room.to_json() })
            }
            Outgoing::Candidate(c) => json!({ "candidate": c, "room": room.to_json() }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER_SDP: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=ice-ufrag:AbC1\r\na=ice-pwd:x\r\n";

    fn offer(sdp: &str) -> Value {
        json!({ "offer": { "type": "offer", "sdp": sdp } })
    }

    #[test]
    fn offer_is_named_by_its_ufrag() {
        let ev = parse(RECEIVE_OFFER, &[offer(OFFER_SDP)]).unwrap();
        match ev {
            RoomEvent::Offer { session, sdp } => {
                assert_eq!(session.as_str(), "AbC1");
                assert_eq!(sdp, OFFER_SDP);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn stringified_payload_is_accepted() {
        let s = Value::String(offer(OFFER_SDP).to_string());
        assert!(matches!(
            parse(RECEIVE_OFFER, &[s]),
            Ok(RoomEvent::Offer { .. })
        ));
    }

    #[test]
    fn malformed_offers_are_errors_not_panics() {
        let cases = [
            (vec![], "empty payload"),
            (vec![json!("{not json")], "not a JSON"),
            (vec![json!(42)], "a number"),
            (vec![json!({ "offer": 1 })], "wrong shape"),
            (vec![json!({ "answer": {} })], "wrong shape"),
            (
                vec![json!({ "offer": { "type": "answer", "sdp": OFFER_SDP } })],
                "not \"offer\"",
            ),
            (vec![offer("v=0\r\n")], "ice-ufrag"),
            (vec![offer("a=ice-ufrag:bad ufrag!\r\n")], "ice-ufrag"),
            (vec![offer(&"x".repeat(MAX_SDP_BYTES + 1))], "limit"),
        ];
        for (payload, want) in cases {
            let e = parse(RECEIVE_OFFER, &payload).unwrap_err().to_string();
            assert!(e.contains(want), "{payload:?}: {e}");
        }
    }

    #[test]
    fn candidate_fields_may_be_missing_or_null() {
        let full = json!({ "candidate": {
            "candidate": "candidate:1 1 udp 2122260223 10.0.0.2 5000 typ host",
            "sdpMid": "0", "sdpMLineIndex": 0, "usernameFragment": "AbC1" } });
        let RoomEvent::Candidate(c) = parse(RECEIVE_CANDIDATE, &[full]).unwrap() else {
            panic!()
        };
        assert_eq!(c.session().unwrap().as_str(), "AbC1");
        assert_eq!(c.sdp_mline_index, Some(0));

        let bare =
            json!({ "candidate": { "candidate": "", "sdpMid": null, "usernameFragment": null } });
        let RoomEvent::Candidate(c) = parse(RECEIVE_CANDIDATE, &[bare]).unwrap() else {
            panic!()
        };
        assert!(c.is_end_of_candidates());
        assert_eq!(c.session(), None);

        assert!(parse(RECEIVE_CANDIDATE, &[json!({ "candidate": 5 })]).is_err());
        let huge = json!({ "candidate": { "candidate": "c".repeat(MAX_CANDIDATE_BYTES + 1) } });
        assert!(parse(RECEIVE_CANDIDATE, &[huge]).is_err());
    }

    #[test]
    fn every_candidate_field_has_a_size_limit() {
        let with = |field: &str, len: usize| {
            let mut c = json!({ "candidate": "candidate:1 1 udp 1 192.0.2.1 9 typ host",
                "sdpMid": "0", "usernameFragment": "AbC1" });
            c[field] = json!("x".repeat(len));
            parse(RECEIVE_CANDIDATE, &[json!({ "candidate": c })])
        };
        for (field, max) in [
            ("candidate", MAX_CANDIDATE_BYTES),
            ("sdpMid", MAX_MID_BYTES),
            ("usernameFragment", MAX_UFRAG_BYTES),
        ] {
            assert!(with(field, max).is_ok(), "{field} at its limit");
            let e = with(field, max + 1).unwrap_err().to_string();
            assert!(e.contains(field) && e.contains("limit"), "{e}");
        }
    }

    #[test]
    fn answers_from_others_are_recognised() {
        let a = json!({ "answer": { "type": "answer", "sdp": "v=0" } });
        assert_eq!(
            parse(RECEIVE_ANSWER, &[a]).unwrap(),
            RoomEvent::ForeignAnswer
        );
    }

    #[test]
    fn outgoing_payloads_keep_the_room_type() {
        let join = Outgoing::JoinRoom;
        assert_eq!(join.event(), "joinRoom");
        assert_eq!(join.payload(&RoomId::number(1)), json!(1));
        assert_eq!(join.payload(&RoomId::string("1")), json!("1"));
        let answer = Outgoing::Answer { sdp: "v=0".into() };
        assert_eq!(answer.event(), "sendAnswer");
        let a = answer.payload(&RoomId::string("1"));
        assert_eq!(
            a,
            json!({ "answer": { "type": "answer", "sdp": "v=0" }, "room": "1" })
        );
        let c = Candidate {
            candidate: "candidate:x".into(),
            sdp_mid: Some("0".into()),
            sdp_mline_index: Some(0),
            username_fragment: Some("loc1".into()),
        };
        assert_eq!(
            Outgoing::Candidate(c).payload(&RoomId::number(1)),
            json!({ "candidate": { "candidate": "candidate:x", "sdpMid": "0",
                "sdpMLineIndex": 0, "usernameFragment": "loc1" }, "room": 1 })
        );
    }

    #[test]
    fn errors_quote_no_more_than_a_line_of_room_text() {
        let huge = "x".repeat(1_000_000);
        let payloads = [
            (
                RECEIVE_OFFER,
                json!({ "offer": { "type": huge, "sdp": "v=0" } }),
            ),
            (
                RECEIVE_OFFER,
                json!({ "offer": { "type": "offer", "sdp": 7 }, "pad": huge }),
            ),
            (
                RECEIVE_CANDIDATE,
                json!({ "candidate": { "candidate": "c", "sdpMLineIndex": huge } }),
            ),
            (RECEIVE_CANDIDATE, json!(format!("{{{huge}"))),
        ];
        for (event, payload) in payloads {
            let e = parse(event, &[payload]).expect_err("refused").to_string();
            assert!(
                e.len() < 4 * MAX_QUOTED_CHARS,
                "{} bytes: {}",
                e.len(),
                &e[..200]
            );
        }
        assert_eq!(bounded("abcdef", 3), "abc…");
        assert_eq!(bounded("abc", 3), "abc");
        assert_eq!(bounded("ééé", 2), "éé…");
    }
}
