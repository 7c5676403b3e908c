//! The embedded relay, for a camera with no signaling server of its own: the same three
//! forwarded messages and room semantics as the Node relay of PROTOCOL.md, on
//! socketioxide, plus the viewer page at `/`.
//!
//! Socket.IO room names are strings, while PROTOCOL.md rooms are JSON values whose type
//! matters; a room is keyed by its JSON text, so `1` and `"1"` stay different rooms.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::header;
use axum::routing::get;
use serde_json::{Value, json};
use socketioxide::SocketIo;
use socketioxide::extract::{Data, SocketRef, TryData};
use socketioxide::handler::ConnectHandler;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::access::Access;

const VIEWER_PAGE: &str = include_str!("../../web/viewer.html");
/// The official Socket.IO browser client (npm `socket.io` 4.8.4, `client-dist/`, MIT),
/// served so the page needs nothing from the internet.
const SOCKET_IO_CLIENT: &str = include_str!("../../web/socket.io.min.js");
/// The page's token handling and proofs (plain JavaScript, see its header).
const AUTH_SCRIPT: &str = include_str!("../../web/auth.js");

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
fn relay(io: &SocketIo, access: Arc<Access>) {
    let io2 = io.clone();
    let register = move |s: SocketRef, TryData(auth): TryData<Value>| {
        let admitted = admit(&access, &s, auth.as_ref().ok());
        if admitted.is_ok() {
            register_handlers(&io2, &s);
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
}

/// The connect check: the `Origin` a browser sends is the page's own or an allowed one,
/// and the `auth` payload carries the token (always needed, browser or not).
fn admit(access: &Access, s: &SocketRef, auth: Option<&Value>) -> Result<(), SocketRefused> {
    let headers = &s.req_parts().headers;
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    if !access.admits_origin(text(header::ORIGIN), text(header::HOST)) {
        warn!(sid = %s.id, "relay: socket refused: its origin is not allowed");
        return Err(SocketRefused::Origin);
    }
    if !auth.is_some_and(|a| access.admits_socket(a)) {
        info!(sid = %s.id, "relay: socket refused: no valid token");
        return Err(SocketRefused::Token);
    }
    Ok(())
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

/// What the embedded server is told at start.
pub struct Settings {
    pub listen: SocketAddr,
    pub access: Arc<Access>,
    /// Serve `https` with this identity; plain `http` without.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// The files the page needs, embedded in the binary.
const FILES: [(&str, &str, &str); 3] = [
    ("/", "text/html; charset=utf-8", VIEWER_PAGE),
    (
        "/socket.io.min.js",
        "text/javascript; charset=utf-8",
        SOCKET_IO_CLIENT,
    ),
    ("/auth.js", "text/javascript; charset=utf-8", AUTH_SCRIPT),
];

/// Open WebSockets do not end a graceful shutdown by themselves: they get this long.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// Binds `settings.listen` and serves until `cancel`. Returns the bound address (port 0
/// picks one).
pub async fn start(
    settings: Settings,
    cancel: CancellationToken,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), ServerError> {
    let (layer, io) = SocketIo::new_layer();
    relay(&io, settings.access);
    let mut app = axum::Router::new();
    for (path, content_type, body) in FILES {
        app = app.route(
            path,
            get(move || async move { ([(header::CONTENT_TYPE, content_type)], body) }),
        );
    }
    let app = app.layer(layer).into_make_service();
    let listen = settings.listen;
    let failed = |source| ServerError {
        addr: listen,
        source,
    };
    let listener = std::net::TcpListener::bind(listen).map_err(failed)?;
    let addr = listener.local_addr().map_err(failed)?;
    let scheme = if settings.tls.is_some() {
        "https"
    } else {
        "http"
    };
    info!(%addr, scheme, "embedded signaling server and viewer page listening");
    let task = match settings.tls {
        None => {
            let handle = axum_server::Handle::new();
            let server = axum_server::from_tcp(listener).map_err(failed)?;
            let serving = server.handle(handle.clone()).serve(app);
            spawn_until(
                cancel,
                move || handle.graceful_shutdown(Some(SHUTDOWN_GRACE)),
                serving,
            )
        }
        Some(tls) => {
            let config = axum_server::tls_rustls::RustlsConfig::from_config(tls);
            let handle = axum_server::Handle::new();
            let server =
                axum_server::tls_rustls::from_tcp_rustls(listener, config).map_err(failed)?;
            let serving = server.handle(handle.clone()).serve(app);
            spawn_until(
                cancel,
                move || handle.graceful_shutdown(Some(SHUTDOWN_GRACE)),
                serving,
            )
        }
    };
    Ok((addr, task))
}

/// Runs `serving` until it ends, calling `stop` once `cancel` fires.
fn spawn_until(
    cancel: CancellationToken,
    stop: impl FnOnce() + Send + 'static,
    serving: impl std::future::Future<Output = std::io::Result<()>> + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let stopper = tokio::spawn(async move {
            cancel.cancelled().await;
            stop();
        });
        if let Err(e) = serving.await {
            warn!("embedded signaling server stopped: {e}");
        }
        stopper.abort();
    })
}
