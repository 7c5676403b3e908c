//! The offer's way in and the answer's way out: the room protocol (pure), the
//! Socket.IO client that speaks it to the relay, and the embedded relay for a camera
//! that has none.

#[cfg(feature = "embedded-server")]
pub mod addresses;
pub mod client;
pub mod protocol;
#[cfg(feature = "embedded-server")]
pub mod server;

use serde_json::Value;
use tokio::sync::mpsc;

use crate::config::RoomId;
use protocol::Candidate;

/// How many outgoing messages may wait for the socket; a session's answer and its
/// candidates are a few dozen at most, so a full outbox means the relay is gone.
pub const OUTBOX_CAPACITY: usize = 256;

/// What a session hands the signaling client to say in the room. Cheap to clone; it never
/// blocks the session: a message that cannot be queued is counted in the log and dropped.
#[derive(Clone)]
pub struct Outbox {
    room: RoomId,
    tx: mpsc::Sender<(&'static str, Value)>,
}

impl Outbox {
    pub fn new(room: RoomId) -> (Self, mpsc::Receiver<(&'static str, Value)>) {
        let (tx, rx) = mpsc::channel(OUTBOX_CAPACITY);
        (Self { room, tx }, rx)
    }

    pub fn answer(&self, sdp: &str) {
        self.push("sendAnswer", protocol::send_answer(&self.room, sdp));
    }

    pub fn candidate(&self, candidate: &Candidate) {
        self.push(
            "sendCandidate",
            protocol::send_candidate(&self.room, candidate),
        );
    }

    fn push(&self, event: &'static str, payload: Value) {
        if let Err(e) = self.tx.try_send((event, payload)) {
            tracing::warn!(event, "signaling outbox: {e}; message dropped");
        }
    }
}
