//! The room behaviour of the embedded relay: who may connect (token, Origin), `joinRoom`,
//! and three messages forwarded to the rest of the sender's room with only the named
//! field kept; campeer's own [`Seat`] in its room hears them without a socket.
//!
//! Socket.IO room names are strings, while PROTOCOL.md rooms are JSON values whose type
//! matters; a room is keyed by its JSON text, so `1` and `"1"` stay different rooms.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::header;
use serde_json::{Value, json};
use socketioxide::SocketIo;
use socketioxide::extract::{Data, SocketRef, TryData};
use socketioxide::handler::ConnectHandler;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::seat::Seat;
use crate::access::Access;
use crate::line_budget::LineBudget;

/// Each message a client may send, the field of it that is forwarded, and the event the
/// rest of the room receives it as.
const FORWARDS: [(&str, &str, &str); 3] = [
    ("sendOffer", "offer", "receiveOffer"),
    ("sendAnswer", "answer", "receiveAnswer"),
    ("sendCandidate", "candidate", "receiveCandidate"),
];

/// What the room can make the relay hold: a page keeps one socket in one room and says a
/// few dozen things per call; a flooder gets this much and no more.
const MAX_SOCKETS: usize = 64;
const MAX_ROOMS_PER_SOCKET: usize = 4;
/// A room's JSON text; the seed's rooms are small numbers.
const MAX_ROOM_KEY_BYTES: usize = 256;
/// Messages of one socket waiting to be forwarded; the excess is dropped.
const QUEUE_PER_SOCKET: usize = 256;

/// One message on its way to a room: the room's key, the event and its body.
pub(super) type Forward = (String, &'static str, Value);

/// What `incoming` (a client's message, `{FIELD: …, room: …}`) becomes for the rest of its
/// room, or `None` if it names no room.
pub(super) fn forward(incoming: &str, msg: &Value) -> Option<Forward> {
    let (_, field, outgoing) = FORWARDS.into_iter().find(|(i, _, _)| *i == incoming)?;
    let room = usable_room(msg.get("room")?)?;
    let body = json!({ field: msg.get(field).cloned().unwrap_or(Value::Null) });
    Some((room, outgoing, body))
}

/// The key of `room`, unless it is too long to be anybody's room.
fn usable_room(room: &Value) -> Option<String> {
    Some(room_key(room)).filter(|k| k.len() <= MAX_ROOM_KEY_BYTES)
}

pub(super) fn room_key(room: &Value) -> String {
    room.to_string()
}

/// The relay's whole behaviour: `joinRoom`, and three messages forwarded to the other
/// sockets of the sender's room with only the named field kept.
///
/// The handlers are registered in a connect *middleware*: socketioxide 0.18 sends the
/// CONNECT packet before it calls the namespace handler (`ns.rs`), so a page that emits
/// `joinRoom` in its "connect" callback could reach a socket with no handler yet on a
/// busy runtime, and the join was lost. Middleware runs before CONNECT is sent.
///
/// socketioxide runs each event's future as its own task, which would let a candidate
/// overtake the answer sent just before it. The handler closures themselves run in
/// arrival order, so they only queue the message; one task per socket forwards the queue
/// in order, as the single-threaded Node relay does.
pub(super) fn relay(io: &SocketIo, access: Arc<Access>, seat: Seat) {
    let io2 = io.clone();
    // A connect flood is told in a few lines a second, the rest counted.
    let refusals = Arc::new(Mutex::new(LineBudget::new(Duration::from_secs(1), 5)));
    let register = move |s: SocketRef, TryData(auth): TryData<Value>| {
        let admitted = admit(&io2, &access, &s, auth.as_ref().ok());
        match &admitted {
            Ok(()) => register_handlers(&io2, &s, &seat),
            Err(refused) => {
                let logged = refusals
                    .lock()
                    .map_or(Some(0), |mut l| l.admit(Instant::now()));
                if let Some(more) = logged {
                    refused.log(&s, more);
                }
            }
        }
        std::future::ready(admitted)
    };
    io.ns(
        "/",
        (async |s: SocketRef| debug!(sid = %s.id, "socket connected")).with(register),
    );
}

/// Why the embedded server refused a socket; the page reads the message, which names
/// the token so it can ask for one.
#[derive(Debug, thiserror::Error)]
enum SocketRefused {
    #[error("a valid viewer token is needed (campeer url prints the link)")]
    Token,
    #[error("origin not allowed (access.allowed_origins)")]
    Origin,
    #[error("too many connections")]
    Full,
}

impl SocketRefused {
    /// A page without its token is an everyday sight (it asks for the token); the rest
    /// are warnings. `more`: refusals not logged since the last line.
    fn log(&self, s: &SocketRef, more: u64) {
        match self {
            Self::Token => info!(sid = %s.id, more, "relay: socket refused: no valid token"),
            Self::Origin => {
                warn!(sid = %s.id, more, "relay: socket refused: its origin is not allowed")
            }
            Self::Full => {
                warn!(sid = %s.id, more, "relay: socket refused: {MAX_SOCKETS} are connected")
            }
        }
    }
}

/// The connect check: the `Origin` a browser sends is the page's own or an allowed one,
/// and the `auth` payload carries the token (always needed, browser or not).
fn admit(
    io: &SocketIo,
    access: &Access,
    s: &SocketRef,
    auth: Option<&Value>,
) -> Result<(), SocketRefused> {
    let headers = &s.req_parts().headers;
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    if !access.admits_origin(text(header::ORIGIN), text(header::HOST)) {
        return Err(SocketRefused::Origin);
    }
    if !auth.is_some_and(|a| access.admits_socket(a)) {
        return Err(SocketRefused::Token);
    }
    if io.sockets().len() >= MAX_SOCKETS {
        return Err(SocketRefused::Full);
    }
    Ok(())
}

fn register_handlers(io: &SocketIo, s: &SocketRef, seat: &Seat) {
    let (tx, mut queue) = mpsc::channel::<Forward>(QUEUE_PER_SOCKET);
    let (io, sid, seat) = (io.clone(), s.id, seat.clone());
    // Holds no SocketRef, so it ends when the socket's handlers (and their senders) drop.
    tokio::spawn(async move {
        while let Some((room, event, body)) = queue.recv().await {
            seat.hear(&room, event, &body);
            if let Err(e) = io.to(room).except(sid).emit(event, &body).await {
                warn!(event, "relay: {e}");
            }
        }
    });
    s.on("joinRoom", |s: SocketRef, Data(room): Data<Value>| {
        match usable_room(&room) {
            Some(key) if s.rooms().len() < MAX_ROOMS_PER_SOCKET => {
                info!(sid = %s.id, room = %key, "relay: socket joined room");
                s.join(key);
            }
            _ => debug!(sid = %s.id, "relay: join refused: room too long, or too many rooms"),
        }
        std::future::ready(())
    });
    for (incoming, _, _) in FORWARDS {
        let tx = tx.clone();
        s.on(incoming, move |s: SocketRef, Data(msg): Data<Value>| {
            match forward(incoming, &msg) {
                Some(message) => {
                    if tx.try_send(message).is_err() {
                        debug!(sid = %s.id, event = incoming, "relay: socket's queue full; dropped");
                    }
                }
                None => debug!(sid = %s.id, event = incoming, "relay: message without a usable room dropped"),
            }
            std::future::ready(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_forwarded_to_its_room_with_only_its_field() {
        let msg = json!({ "offer": { "sdp": "v=0" }, "room": 1, "extra": "dropped" });
        let (room, event, body) = forward("sendOffer", &msg).unwrap();
        assert_eq!((room.as_str(), event), ("1", "receiveOffer"));
        assert_eq!(body, json!({ "offer": { "sdp": "v=0" } }));
        let as_string = forward("sendCandidate", &json!({ "candidate": {}, "room": "1" }));
        assert_eq!(
            as_string.unwrap().0,
            "\"1\"",
            "1 and \"1\" stay different rooms"
        );
    }

    #[test]
    fn no_room_an_overlong_room_or_an_unknown_event_forwards_nothing() {
        assert!(forward("sendOffer", &json!({ "offer": {} })).is_none());
        let long = "x".repeat(MAX_ROOM_KEY_BYTES);
        assert!(forward("sendOffer", &json!({ "offer": {}, "room": long })).is_none());
        assert!(forward("joinRoom", &json!({ "room": 1 })).is_none());
    }
}
