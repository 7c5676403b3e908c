//! The offer's way in and the answer's way out: the room protocol (pure), the
//! [`Signaller`] that carries it (the Socket.IO client in production, in-process channels
//! in tests), and the embedded relay for a camera that has none.

#[cfg(feature = "embedded-server")]
pub mod addresses;
pub mod client;
pub mod direct;
pub mod protocol;
#[cfg(feature = "embedded-server")]
pub mod server;

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::config::RoomId;
use protocol::{Candidate, Outgoing, RoomEvent};

/// How many outgoing messages may wait for the socket; a session's answer and its
/// candidates are a few dozen at most, so a full outbox means the relay is gone.
pub const OUTBOX_CAPACITY: usize = 256;
/// Room events waiting for the daemon loop; a relay flooding faster than sessions are
/// built loses the excess (logged by the signaller).
pub const ROOM_EVENT_CAPACITY: usize = 256;

/// What a session hands the signaller to say in the room. Cheap to clone; it never
/// blocks the session: a message that cannot be queued is counted in the log and dropped.
#[derive(Clone)]
pub struct Outbox {
    tx: mpsc::Sender<Outgoing>,
}

impl Outbox {
    pub fn new() -> (Self, mpsc::Receiver<Outgoing>) {
        let (tx, rx) = mpsc::channel(OUTBOX_CAPACITY);
        (Self { tx }, rx)
    }

    pub fn answer(&self, sdp: String) {
        self.push(Outgoing::Answer { sdp });
    }

    pub fn candidate(&self, candidate: Candidate) {
        self.push(Outgoing::Candidate(candidate));
    }

    fn push(&self, message: Outgoing) {
        if let Err(e) = self.tx.try_send(message) {
            let event = match &e {
                mpsc::error::TrySendError::Full(m) | mpsc::error::TrySendError::Closed(m) => {
                    m.event()
                }
            };
            tracing::warn!(event, "signaling outbox: {e}; message dropped");
        }
    }
}

/// The daemon's side of a running signaller.
pub struct Room {
    /// What the room says that campeer acts on.
    pub events: mpsc::Receiver<RoomEvent>,
    /// Where sessions put their answers and candidates.
    pub outbox: Outbox,
    /// Counts room joins (the first, and one after every reconnect).
    pub joins: watch::Receiver<u64>,
    /// Ends after `cancel`; the daemon awaits it on shutdown.
    pub task: tokio::task::JoinHandle<()>,
}

/// Room events in, answers and candidates out: all the daemon's session loop needs from
/// signaling (webrtcsink's `Signallable`, smaller). The production one is the Socket.IO
/// client ([`client::SocketIo`]); tests use [`direct::DirectSignaller`], with no relay.
pub trait Signaller: Send + 'static {
    /// Starts talking to the room until `cancel`.
    fn start(self, cancel: CancellationToken) -> Room;
}

/// The Socket.IO client against `url`, in `room`.
pub struct SocketIo {
    pub url: String,
    pub room: RoomId,
    /// See [`client::ClientSettings::tls`].
    pub tls: Option<native_tls::TlsConnector>,
}

impl Signaller for SocketIo {
    fn start(self, cancel: CancellationToken) -> Room {
        let (joins_tx, joins) = watch::channel(0u64);
        let (outbox, outbox_rx) = Outbox::new();
        let (events_tx, events) = mpsc::channel(ROOM_EVENT_CAPACITY);
        let settings = client::ClientSettings {
            url: self.url,
            room: self.room,
            tls: self.tls,
            joins: joins_tx,
        };
        let task = tokio::spawn(client::run(settings, events_tx, outbox_rx, cancel));
        Room {
            events,
            outbox,
            joins,
            task,
        }
    }
}
