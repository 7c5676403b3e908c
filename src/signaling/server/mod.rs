//! The embedded relay, for a camera with no signaling server of its own: the same three
//! forwarded messages and room semantics as the Node relay of PROTOCOL.md, on
//! socketioxide ([`relay`]), the viewer page at `/`, `/status` and `/metrics` (token
//! required, [`crate::status::http`]), over http or https, and campeer's own seat in its
//! room ([`seat`]), with no socket between campeer and itself.

mod relay;
pub mod seat;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::header;
use axum::routing::get;
use socketioxide::SocketIo;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::access::Access;
use crate::config::RoomId;
use seat::{EmbeddedRoom, Seat};

const VIEWER_PAGE: &str = include_str!("../../../web/viewer.html");
/// The official Socket.IO browser client (npm `socket.io` 4.8.4, `client-dist/`, MIT),
/// served so the page needs nothing from the internet.
const SOCKET_IO_CLIENT: &str = include_str!("../../../web/socket.io.min.js");
/// The page's token handling and proofs (plain JavaScript, see its header).
const AUTH_SCRIPT: &str = include_str!("../../../web/auth.js");

#[derive(Debug, thiserror::Error)]
#[error("cannot serve on signaling.listen = {addr}")]
pub struct ServerError {
    addr: SocketAddr,
    source: std::io::Error,
}

/// What the embedded server is told at start.
pub struct Settings {
    pub listen: SocketAddr,
    pub access: Arc<Access>,
    /// Serve `https` with this identity; plain `http` without.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Where `/status` and `/metrics` get their snapshots.
    pub status: crate::status::StatusSource,
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

/// A running embedded server.
pub struct Embedded {
    /// Where it listens (port 0 in `signaling.listen` picked one).
    pub addr: SocketAddr,
    /// Ends once the server has stopped after `cancel`.
    pub task: tokio::task::JoinHandle<()>,
    io: SocketIo,
    seat: Seat,
}

impl Embedded {
    /// campeer's own signaller: a seat in `room` on this server.
    pub fn seat_in(&self, room: RoomId) -> EmbeddedRoom {
        EmbeddedRoom {
            io: self.io.clone(),
            seat: self.seat.clone(),
            room,
        }
    }
}

/// Binds `settings.listen` and serves until `cancel`.
pub async fn start(settings: Settings, cancel: CancellationToken) -> Result<Embedded, ServerError> {
    let (layer, io) = SocketIo::new_layer();
    let seat = Seat::default();
    let mut app = crate::status::http::routes(settings.status, Arc::clone(&settings.access));
    relay::relay(&io, settings.access, seat.clone());
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
    info!(%addr, %scheme, "embedded signaling server and viewer page listening");
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
    Ok(Embedded {
        addr,
        task,
        io,
        seat,
    })
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
