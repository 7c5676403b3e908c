//! campeer's own place in its room on the embedded relay: what the room's sockets send
//! to that room reaches campeer as [`RoomEvent`]s, and what campeer says is sent to the
//! room, as if campeer were one more member, with no Socket.IO client, no loopback
//! connection and no TLS to itself.

use std::sync::{Arc, OnceLock};

use serde_json::Value;
use socketioxide::SocketIo;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::relay::{forward, room_key};
use crate::config::RoomId;
use crate::signaling::protocol::{self, RoomEvent};
use crate::signaling::{Outbox, ROOM_EVENT_CAPACITY, Room, Signaller};

/// Where the relay delivers what is said in campeer's room; empty until campeer sits.
#[derive(Clone, Default)]
pub(super) struct Seat(Arc<OnceLock<Seated>>);

struct Seated {
    room: String,
    events: mpsc::Sender<RoomEvent>,
}

impl Seat {
    /// Hands `event` to campeer if it was said in campeer's room.
    pub(super) fn hear(&self, room: &str, event: &'static str, body: &Value) {
        let Some(seated) = self.0.get().filter(|s| s.room == room) else {
            return;
        };
        match protocol::parse(event, std::slice::from_ref(body)) {
            Ok(ev) => {
                if let Err(e) = seated.events.try_send(ev) {
                    debug!(event, "embedded relay: room event dropped: {e}");
                }
            }
            Err(e) => debug!("embedded relay: ignoring bad message: {e}"),
        }
    }
}

/// The [`Signaller`] for a campeer that serves its own relay.
pub struct EmbeddedRoom {
    pub(super) io: SocketIo,
    pub(super) seat: Seat,
    pub(super) room: RoomId,
}

impl Signaller for EmbeddedRoom {
    /// Seated at once: there is no connection to make.
    fn start(self, cancel: CancellationToken) -> Room {
        let (events_tx, events) = mpsc::channel(ROOM_EVENT_CAPACITY);
        let (outbox, mut said) = Outbox::new();
        let seated = Seated {
            room: room_key(&self.room.to_json()),
            events: events_tx,
        };
        if self.seat.0.set(seated).is_err() {
            warn!("embedded relay: campeer already has a seat; the second is ignored");
        }
        info!(room = %self.room, "embedded relay: campeer seated in its room");
        let (joins_tx, joins) = watch::channel(1u64);
        let task = tokio::spawn(async move {
            loop {
                let msg = tokio::select! {
                    _ = cancel.cancelled() => break,
                    msg = said.recv() => msg,
                };
                let Some(msg) = msg else { break };
                // `joinRoom` forwards nothing: campeer is seated.
                let Some((room, event, body)) = forward(msg.event(), &msg.payload(&self.room))
                else {
                    continue;
                };
                if let Err(e) = self.io.to(room).emit(event, &body).await {
                    warn!(event, "embedded relay: {e}");
                }
            }
            drop(joins_tx);
        });
        Room {
            events,
            outbox,
            joins,
            task,
        }
    }
}
