//! `GET /status` and `GET /metrics` over HTTP, behind the access token: `Authorization:
//! Bearer TOKEN`, as a Prometheus scrape config's `authorization` sends it. The token is
//! required even with `access.open = true`: status names viewers' addresses, which an
//! open room does not make public. Served by the embedded server and, when
//! `status.listen` is set, by a small listener of its own ([`serve`]).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{Snapshot, StatusSource, json, prometheus};
use crate::access::Access;

#[derive(Clone)]
struct Shared {
    source: StatusSource,
    access: Arc<Access>,
}

/// The two routes, to merge into a server's router.
pub fn routes<S>(source: StatusSource, access: Arc<Access>) -> axum::Router<S> {
    axum::Router::new()
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .with_state(Shared { source, access })
}

async fn status(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    respond(&shared, &headers, "application/json", json::render).await
}

async fn metrics(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    respond(
        &shared,
        &headers,
        prometheus::CONTENT_TYPE,
        prometheus::render,
    )
    .await
}

async fn respond(
    shared: &Shared,
    headers: &HeaderMap,
    content_type: &'static str,
    render: fn(&Snapshot) -> String,
) -> Response {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if !authorized(&shared.access, presented) {
        return (
            StatusCode::UNAUTHORIZED,
            [(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"campeer\""),
            )],
            "the access token is required: Authorization: Bearer TOKEN\n",
        )
            .into_response();
    }
    match shared.source.snapshot().await {
        Some(snap) => ([(header::CONTENT_TYPE, content_type)], render(&snap)).into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, "campeer is stopping\n").into_response(),
    }
}

/// Whether `authorization` (the header's value) is `Bearer` and campeer's token, compared
/// in constant time. The scheme is case-insensitive (RFC 7235).
fn authorized(access: &Access, authorization: Option<&str>) -> bool {
    authorization
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .is_some_and(|(_, token)| access.token().matches(token.trim()))
}

#[derive(Debug, thiserror::Error)]
#[error("cannot serve status on status.listen = {addr}: {source}")]
pub struct ListenError {
    addr: SocketAddr,
    source: std::io::Error,
}

/// Serves the two routes alone on `listen` (plain http) until `cancel`.
pub async fn serve(
    listen: SocketAddr,
    source: StatusSource,
    access: Arc<Access>,
    cancel: CancellationToken,
) -> Result<tokio::task::JoinHandle<()>, ListenError> {
    let failed = |source| ListenError {
        addr: listen,
        source,
    };
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(failed)?;
    let addr = listener.local_addr().map_err(failed)?;
    info!(%addr, "status and metrics listening (http, token required)");
    let app = routes(source, access);
    Ok(tokio::spawn(async move {
        let serving = axum::serve(listener, app).with_graceful_shutdown(cancel.cancelled_owned());
        if let Err(e) = serving.await {
            warn!("status listener stopped: {e}");
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::Token;
    use crate::config::AccessConfig;

    fn access(open: bool) -> Access {
        let cfg = AccessConfig {
            open,
            ..AccessConfig::default()
        };
        Access::with_token(Token::parse("status-test-token-0123456789").unwrap(), &cfg)
    }

    #[test]
    fn only_the_bearer_token_is_authorized() {
        let a = access(false);
        assert!(authorized(&a, Some("Bearer status-test-token-0123456789")));
        assert!(authorized(&a, Some("bearer status-test-token-0123456789")));
        assert!(!authorized(&a, None));
        assert!(!authorized(&a, Some("Bearer")));
        assert!(!authorized(&a, Some("Bearer wrong")));
        assert!(!authorized(&a, Some("Basic status-test-token-0123456789")));
        assert!(!authorized(&a, Some("status-test-token-0123456789")));
    }

    #[test]
    fn an_open_room_still_needs_the_token_for_status() {
        assert!(!authorized(&access(true), None));
    }
}
