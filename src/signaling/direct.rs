//! A signaller in the same process, over channels (webrtcsink's `direct_signaller`): what
//! a test sends on [`RoomSide::events`] reaches campeer as if a relay had sent it, and
//! what campeer says arrives on [`RoomSide::said`] in the order it was said.

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::protocol::{Outgoing, RoomEvent};
use super::{Outbox, ROOM_EVENT_CAPACITY, Room, Signaller};

pub struct DirectSignaller {
    events: mpsc::Receiver<RoomEvent>,
    outbox: Outbox,
}

/// The room's end of a [`DirectSignaller`], for the test that plays the viewers.
pub struct RoomSide {
    pub events: mpsc::Sender<RoomEvent>,
    pub said: mpsc::Receiver<Outgoing>,
}

impl DirectSignaller {
    pub fn new() -> (Self, RoomSide) {
        let (events_tx, events) = mpsc::channel(ROOM_EVENT_CAPACITY);
        let (outbox, said) = Outbox::new();
        (
            Self { events, outbox },
            RoomSide {
                events: events_tx,
                said,
            },
        )
    }
}

impl Signaller for DirectSignaller {
    /// Joined at once: there is no relay to reach.
    fn start(self, cancel: CancellationToken) -> Room {
        let (joins_tx, joins) = watch::channel(0u64);
        joins_tx.send_replace(1);
        Room {
            events: self.events,
            outbox: self.outbox,
            joins,
            task: tokio::spawn(async move {
                cancel.cancelled().await;
                drop(joins_tx);
            }),
        }
    }
}
