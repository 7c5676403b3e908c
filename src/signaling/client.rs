//! The Socket.IO client: owns the socket, joins the room, turns relay events into
//! [`RoomEvent`]s and sends what sessions put in the [`Outbox`](super::Outbox).
//!
//! rust_socketio drops emits made before the server accepted the connection and forgets
//! rooms on reconnect, so the room is joined from the `open` handler, which runs again on
//! every reconnect. Its `connect()` fails outright while the relay is down, so the first
//! connection is retried here, forever, with backoff.

use std::time::Duration;

use futures_util::FutureExt;
use rust_socketio::Payload;
use rust_socketio::asynchronous::{Client, ClientBuilder};
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::protocol::{self, RECEIVE_ANSWER, RECEIVE_CANDIDATE, RECEIVE_OFFER, RoomEvent};
use crate::config::RoomId;

/// Delay before connection attempt `attempt` (0-based): doubling from 250 ms to 5 s, so a
/// relay that restarts is rejoined quickly and one that is down is not hammered.
pub fn retry_delay(attempt: u32) -> Duration {
    let ms = 250u64.saturating_mul(1u64 << attempt.min(16));
    Duration::from_millis(ms.min(5_000))
}

pub struct ClientSettings {
    pub url: String,
    pub room: RoomId,
    /// Counts room joins (the first, and one after every reconnect).
    pub joins: watch::Sender<u64>,
}

/// Runs until `cancel`: connects, reconnects, forwards room events to `events` and
/// outbox messages to the relay.
pub async fn run(
    settings: ClientSettings,
    events: mpsc::Sender<RoomEvent>,
    mut outbox: mpsc::Receiver<(&'static str, Value)>,
    cancel: CancellationToken,
) {
    let mut attempt = 0;
    loop {
        info!(url = %settings.url, room = %settings.room, "signaling: connecting");
        let connecting = builder(&settings, events.clone()).connect();
        let client = tokio::select! {
            _ = cancel.cancelled() => return,
            result = connecting => result,
        };
        match client {
            Ok(client) => {
                // From here on rust_socketio reconnects by itself, forever.
                serve(&client, &mut outbox, &cancel).await;
                if let Err(e) = client.disconnect().await {
                    debug!("signaling: disconnect: {e}");
                }
                return;
            }
            Err(e) => {
                let delay = retry_delay(attempt);
                attempt += 1;
                warn!(url = %settings.url, "signaling: cannot connect: {e}; retrying in {delay:?}");
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}

async fn serve(
    client: &Client,
    outbox: &mut mpsc::Receiver<(&'static str, Value)>,
    cancel: &CancellationToken,
) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            msg = outbox.recv() => {
                let Some((event, payload)) = msg else { return };
                if let Err(e) = client.emit(event, payload).await {
                    warn!(event, "signaling: emit failed: {e}");
                }
            }
        }
    }
}

fn builder(settings: &ClientSettings, events: mpsc::Sender<RoomEvent>) -> ClientBuilder {
    let room = settings.room.clone();
    let url = settings.url.clone();
    let joins = settings.joins.clone();
    let mut b = ClientBuilder::new(settings.url.clone())
        .reconnect(true)
        .reconnect_on_disconnect(true)
        .reconnect_delay(250, 5_000)
        .on("open", move |_, client: Client| {
            let room = room.clone();
            let url = url.clone();
            let joins = joins.clone();
            async move {
                info!(%url, %room, "signaling: connected, joining room");
                match client.emit("joinRoom", protocol::join_room(&room)).await {
                    Ok(()) => joins.send_modify(|n| *n += 1),
                    Err(e) => warn!(%room, "signaling: joinRoom failed: {e}"),
                }
            }
            .boxed()
        })
        .on("close", |_, _| {
            async { warn!("signaling: connection closed; reconnecting") }.boxed()
        })
        .on("error", |payload, _| {
            async move { warn!("signaling: socket error: {}", describe(&payload)) }.boxed()
        });
    for event in [RECEIVE_OFFER, RECEIVE_CANDIDATE, RECEIVE_ANSWER] {
        let events = events.clone();
        b = b.on(event, move |payload, _| {
            let events = events.clone();
            async move { forward(event, payload, &events) }.boxed()
        });
    }
    b
}

fn forward(event: &'static str, payload: Payload, events: &mpsc::Sender<RoomEvent>) {
    let values = match payload {
        Payload::Text(values) => values,
        #[allow(deprecated)]
        Payload::String(s) => vec![Value::String(s)],
        Payload::Binary(_) => {
            warn!(event, "signaling: binary payload ignored");
            return;
        }
    };
    match protocol::parse(event, &values) {
        Ok(ev) => {
            if let Err(e) = events.try_send(ev) {
                warn!(event, "signaling: room event dropped: {e}");
            }
        }
        Err(e) => warn!("signaling: ignoring bad message: {e}"),
    }
}

fn describe(payload: &Payload) -> String {
    match payload {
        Payload::Text(v) => format!("{v:?}"),
        #[allow(deprecated)]
        Payload::String(s) => s.clone(),
        Payload::Binary(b) => format!("{} bytes", b.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delay_doubles_up_to_a_cap() {
        assert_eq!(retry_delay(0), Duration::from_millis(250));
        assert_eq!(retry_delay(1), Duration::from_millis(500));
        assert_eq!(retry_delay(4), Duration::from_secs(4));
        assert_eq!(retry_delay(5), Duration::from_secs(5));
        assert_eq!(retry_delay(u32::MAX), Duration::from_secs(5));
    }
}
