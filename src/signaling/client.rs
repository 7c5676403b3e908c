//! The Socket.IO client: owns the socket, joins the room, turns relay events into
//! [`RoomEvent`]s and sends what sessions put in the [`Outbox`](super::Outbox).
//!
//! rust_socketio drops emits made before the server accepted the connection and forgets
//! rooms on reconnect, so the room is joined from the `open` handler and nothing is sent
//! before it ran. Its own reconnect loop gives up backing off after 15 minutes and then
//! retries without pause, so it is off: this module reconnects, forever, with
//! [`Backoff`], and bounds each attempt with [`CONNECT_TIMEOUT`].

mod backoff;
mod transport;
pub mod trust;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use rust_socketio::Payload;
use rust_socketio::asynchronous::{Client, ClientBuilder};
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::protocol::{
    self, Outgoing, RECEIVE_ANSWER, RECEIVE_CANDIDATE, RECEIVE_OFFER, RoomEvent,
};
use crate::access::redact;
use crate::config::RoomId;
use crate::line_budget::LineBudget;
pub use backoff::Backoff;
use transport::{Retry, Transport, TransportChoice};

/// How long one attempt may take from the first request to the room joined: a relay
/// that accepts TCP and then says nothing must not hold campeer forever.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Log lines a second about room input that is dropped; the rest are counted.
const DROPPED_LINES: u32 = 5;
/// How long a goodbye to a relay that may be gone may take.
const DISCONNECT_TIMEOUT: Duration = Duration::from_secs(2);

pub struct ClientSettings {
    pub url: String,
    pub room: RoomId,
    /// For an https or wss relay: the system's roots and `signaling.ca_file`
    /// ([`trust::connector`]). `None`: the system's roots alone.
    pub tls: Option<native_tls::TlsConnector>,
    /// Counts room joins (the first, and one after every reconnect).
    pub joins: watch::Sender<u64>,
}

/// One connection's fate, told by its callbacks.
#[derive(Clone, Default)]
struct Link {
    /// The room was joined.
    joined: CancellationToken,
    /// The relay closed the connection or the transport failed.
    lost: CancellationToken,
}

enum Ended {
    Cancelled,
    Lost,
    OutboxClosed,
}

/// Runs until `cancel`: connects, reconnects, forwards room events to `events` and
/// outbox messages to the relay.
pub async fn run(
    settings: ClientSettings,
    events: mpsc::Sender<RoomEvent>,
    mut outbox: mpsc::Receiver<Outgoing>,
    cancel: CancellationToken,
) {
    let url = redact::url(&settings.url);
    let mut backoff = Backoff::new();
    let mut transports = TransportChoice::for_url(&settings.url);
    loop {
        let transport = transports.next();
        info!(%url, room = %settings.room, ?transport, "signaling: connecting");
        let link = Link::default();
        let connected = tokio::select! {
            _ = cancel.cancelled() => return,
            result = connect(&settings, transport, events.clone(), &link) => result,
        };
        let retry_in = match connected {
            Ok(client) => {
                backoff.connected(Instant::now());
                let ended = serve(&client, &settings.room, &mut outbox, &link.lost, &cancel).await;
                // The connection is over from here: what hanging up breaks (polling's
                // pending request) is no socket error worth a warning.
                link.lost.cancel();
                disconnect(&client).await;
                if !matches!(ended, Ended::Lost) {
                    return;
                }
                let delay = backoff.next_delay(Instant::now(), rand::random());
                warn!(%url, "signaling: connection lost; reconnecting in {delay:?}");
                delay
            }
            Err(failed) => {
                let e = failed.why;
                if transports.failed(failed.reached_relay) == Retry::FallBackToPolling {
                    // Said as often as a failure is warned about: once, not per retry.
                    if backoff.worth_a_warning() {
                        info!(%url, "signaling: no websocket ({e}); falling back to polling");
                    } else {
                        debug!(%url, "signaling: no websocket ({e}); falling back to polling");
                    }
                    continue;
                }
                let delay = backoff.next_delay(Instant::now(), rand::random());
                let failures = backoff.failures();
                if backoff.worth_a_warning() {
                    warn!(%url, failures, "signaling: cannot connect: {e}; retrying in {delay:?}");
                } else {
                    debug!(%url, failures, "signaling: cannot connect: {e}; retrying in {delay:?}");
                }
                delay
            }
        };
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(retry_in) => {}
        }
    }
}

/// Why an attempt failed, and whether it got as far as the relay (for the next one's
/// [`Transport`]).
struct Failed {
    why: String,
    reached_relay: bool,
}

impl Failed {
    /// At the relay, or past where the network could refuse: a timeout, a closed socket.
    fn at_relay(why: String) -> Self {
        Self {
            why,
            reached_relay: true,
        }
    }
}

/// One attempt, bounded by [`CONNECT_TIMEOUT`]: the client once its room is joined.
async fn connect(
    settings: &ClientSettings,
    transport: Transport,
    events: mpsc::Sender<RoomEvent>,
    link: &Link,
) -> Result<Client, Failed> {
    let deadline = tokio::time::Instant::now() + CONNECT_TIMEOUT;
    let timed_out = || Failed::at_relay(format!("no room joined within {CONNECT_TIMEOUT:?}"));
    let connecting = builder(settings, transport, events, link).connect();
    let client = tokio::time::timeout_at(deadline, connecting)
        .await
        .map_err(|_| timed_out())?
        .map_err(|e| Failed {
            why: connect_error(&e, &settings.url),
            reached_relay: transport::reached_relay(&e),
        })?;
    let joined = tokio::select! {
        _ = link.joined.cancelled() => Ok(client.clone()),
        _ = link.lost.cancelled() => Err(Failed::at_relay("the relay closed the connection before the room was joined".to_owned())),
        _ = tokio::time::sleep_until(deadline) => Err(timed_out()),
    };
    if joined.is_err() {
        // Its background task would otherwise keep the half-open connection alive.
        disconnect(&client).await;
    }
    joined
}

/// A failed connect for the log: without the URL's credentials, and saying what to do
/// about an untrusted certificate.
fn connect_error(e: &rust_socketio::Error, url: &str) -> String {
    // rust_socketio errors may name the URL as given; keep its credentials out of logs.
    let e = redact::url_credentials_in(&with_causes(e), url);
    match trust::is_certificate_failure(&e) {
        true => format!(
            "the relay's TLS certificate is not trusted ({e}); \
             signaling.ca_file can name the CA that signed it"
        ),
        false => e,
    }
}

/// `e` and its sources: rust_socketio's own message ("EngineIO Error") says little.
/// A cause whose text is already there (reqwest repeats its own) is left out.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let said = cause.to_string();
        if !text.contains(&said) {
            text = format!("{text}: {said}");
        }
        source = cause.source();
    }
    text
}

async fn disconnect(client: &Client) {
    match tokio::time::timeout(DISCONNECT_TIMEOUT, client.disconnect()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => debug!("signaling: disconnect: {e}"),
        Err(_) => debug!("signaling: disconnect timed out"),
    }
}

async fn serve(
    client: &Client,
    room: &RoomId,
    outbox: &mut mpsc::Receiver<Outgoing>,
    lost: &CancellationToken,
    cancel: &CancellationToken,
) -> Ended {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return Ended::Cancelled,
            _ = lost.cancelled() => return Ended::Lost,
            msg = outbox.recv() => {
                let Some(msg) = msg else { return Ended::OutboxClosed };
                let event = msg.event();
                if let Err(e) = client.emit(event, msg.payload(room)).await {
                    warn!(event, "signaling: emit failed: {e}");
                }
            }
        }
    }
}

fn builder(
    settings: &ClientSettings,
    transport: Transport,
    events: mpsc::Sender<RoomEvent>,
    link: &Link,
) -> ClientBuilder {
    let room = settings.room.clone();
    let joins = settings.joins.clone();
    let (joined, lost_on_close, lost_on_error) =
        (link.joined.clone(), link.lost.clone(), link.lost.clone());
    let url = settings.url.clone();
    let mut b = ClientBuilder::new(settings.url.clone());
    if let Some(tls) = &settings.tls {
        b = b.tls_config(tls.clone());
    }
    b = b
        .transport_type(transport.engine_io())
        .reconnect(false)
        .reconnect_on_disconnect(false)
        .on("open", move |_, client: Client| {
            let (room, joins, joined) = (room.clone(), joins.clone(), joined.clone());
            async move {
                info!(%room, "signaling: connected, joining room");
                match client
                    .emit(
                        Outgoing::JoinRoom.event(),
                        Outgoing::JoinRoom.payload(&room),
                    )
                    .await
                {
                    Ok(()) => {
                        joins.send_modify(|n| *n += 1);
                        joined.cancel();
                    }
                    Err(e) => warn!(%room, "signaling: joinRoom failed: {e}"),
                }
            }
            .boxed()
        })
        .on("close", move |_, _| {
            let lost = lost_on_close.clone();
            async move {
                debug!("signaling: the relay closed the connection");
                lost.cancel();
            }
            .boxed()
        })
        // Every error rust_socketio reports from its stream ends that stream (transport
        // failures, ping timeouts, a refused connect): the connection is gone.
        .on("error", move |payload, _| {
            let (lost, url) = (lost_on_error.clone(), url.clone());
            async move {
                if !lost.is_cancelled() {
                    let error = redact::url_credentials_in(&describe(&payload), &url);
                    warn!("signaling: socket error: {error}");
                }
                lost.cancel();
            }
            .boxed()
        });
    let dropped = Arc::new(Mutex::new(LineBudget::new(
        Duration::from_secs(1),
        DROPPED_LINES,
    )));
    for event in [RECEIVE_OFFER, RECEIVE_CANDIDATE, RECEIVE_ANSWER] {
        let (events, dropped) = (events.clone(), Arc::clone(&dropped));
        b = b.on(event, move |payload, _| {
            let (events, dropped) = (events.clone(), Arc::clone(&dropped));
            async move { forward(event, payload, &events, &dropped) }.boxed()
        });
    }
    b
}

/// Hands a relay event to the daemon, or says why not: in at most [`DROPPED_LINES`]
/// warnings a second (the rest at debug), so that a member flooding the room with garbage
/// cannot flood the log.
fn forward(
    event: &'static str,
    payload: Payload,
    events: &mpsc::Sender<RoomEvent>,
    dropped: &Mutex<LineBudget>,
) {
    let Err(why) = deliver(event, payload, events) else {
        return;
    };
    let admitted = dropped
        .lock()
        .map_or(Some(0), |mut limit| limit.admit(Instant::now()));
    match admitted {
        Some(more) => warn!(event, dropped_since_last = more, "signaling: {why}"),
        // Past the budget, each still has a line for whoever asks for debug.
        None => debug!(event, "signaling: {why}"),
    }
}

fn deliver(
    event: &'static str,
    payload: Payload,
    events: &mpsc::Sender<RoomEvent>,
) -> Result<(), String> {
    let values = match payload {
        Payload::Text(values) => values,
        #[allow(deprecated)]
        Payload::String(s) => vec![Value::String(s)],
        Payload::Binary(_) => return Err("binary payload ignored".into()),
    };
    let ev = protocol::parse(event, &values).map_err(|e| format!("ignoring bad message: {e}"))?;
    events
        .try_send(ev)
        .map_err(|e| format!("room event dropped: {e}"))
}

/// An error payload for the log, at most [`DESCRIBE_MAX`] characters: it may carry
/// text the relay got from elsewhere.
fn describe(payload: &Payload) -> String {
    let text = match payload {
        Payload::Text(v) => format!("{v:?}"),
        #[allow(deprecated)]
        Payload::String(s) => s.clone(),
        Payload::Binary(b) => format!("{} bytes", b.len()),
    };
    protocol::bounded(&text, DESCRIBE_MAX)
}

const DESCRIBE_MAX: usize = 300;
