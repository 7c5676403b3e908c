//! The embedded relay, for a camera with no signaling server of its own: the same three
//! forwarded messages and room semantics as the Node relay of PROTOCOL.md, on
//! socketioxide, plus the viewer page at `/`.
//!
//! Socket.IO room names are strings, while PROTOCOL.md rooms are JSON values whose type
//! matters; a room is keyed by its JSON text, so `1` and `"1"` stay different rooms.

use std::net::SocketAddr;

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::{Value, json};
use socketioxide::SocketIo;
use socketioxide::extract::{Data, SocketRef};
use socketioxide::handler::ConnectHandler;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

const VIEWER_PAGE: &str = include_str!("../../web/viewer.html");
/// The official Socket.IO browser client (npm `socket.io` 4.8.4, `client-dist/`, MIT),
/// served so the page needs nothing from the internet.
const SOCKET_IO_CLIENT: &str = include_str!("../../web/socket.io.min.js");

#[derive(Debug, thiserror::Error)]
#[error("cannot serve on signaling.listen = {addr}")]
pub struct ServerError {
    addr: SocketAddr,
    source: std::io::Error,
}

fn room_key(room: &Value) -> String {
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
fn relay(io: &SocketIo) {
    let io2 = io.clone();
    let register = move |s: SocketRef| {
        register_handlers(&io2, &s);
        std::future::ready(Ok::<(), std::convert::Infallible>(()))
    };
    io.ns(
        "/",
        (async |s: SocketRef| debug!(sid = %s.id, "socket connected")).with(register),
    );
}

fn register_handlers(io: &SocketIo, s: &SocketRef) {
    let (tx, mut queue) = mpsc::unbounded_channel::<(String, &'static str, Value)>();
    let (io, sid) = (io.clone(), s.id);
    // Holds no SocketRef, so it ends when the socket's handlers (and their senders) drop.
    tokio::spawn(async move {
        while let Some((room, event, body)) = queue.recv().await {
            if let Err(e) = io.to(room).except(sid).emit(event, &body).await {
                warn!(event, "relay: {e}");
            }
        }
    });
    s.on("joinRoom", |s: SocketRef, Data(room): Data<Value>| {
        info!(sid = %s.id, %room, "relay: socket joined room");
        s.join(room_key(&room));
        std::future::ready(())
    });
    for (incoming, field, outgoing) in [
        ("sendOffer", "offer", "receiveOffer"),
        ("sendAnswer", "answer", "receiveAnswer"),
        ("sendCandidate", "candidate", "receiveCandidate"),
    ] {
        let tx = tx.clone();
        s.on(incoming, move |s: SocketRef, Data(msg): Data<Value>| {
            match msg.get("room") {
                Some(room) => {
                    let body = json!({ field: msg.get(field).cloned().unwrap_or(Value::Null) });
                    let _ = tx.send((room_key(room), outgoing, body));
                }
                None => {
                    warn!(sid = %s.id, event = incoming, "relay: message without a room dropped")
                }
            }
            std::future::ready(())
        });
    }
}

/// Binds `listen` and serves until `cancel`. Returns the bound address (port 0 picks one).
pub async fn start(
    listen: SocketAddr,
    cancel: CancellationToken,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), ServerError> {
    let (layer, io) = SocketIo::new_layer();
    relay(&io);
    let app = axum::Router::new()
        .route(
            "/",
            get(async || {
                (
                    [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                    VIEWER_PAGE,
                )
            }),
        )
        .route(
            "/socket.io.min.js",
            get(async || {
                (
                    [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
                    SOCKET_IO_CLIENT,
                )
                    .into_response()
            }),
        )
        .layer(layer);
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|source| ServerError {
            addr: listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServerError {
        addr: listen,
        source,
    })?;
    info!(%addr, "embedded signaling server and viewer page listening");
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { cancel.cancelled().await })
            .await;
        if let Err(e) = served {
            warn!("embedded signaling server stopped: {e}");
        }
    });
    Ok((addr, task))
}
