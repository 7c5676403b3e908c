//! Wires the media pipeline, the signaling client and the sessions together, and owns
//! the one shutdown path: cancelling the token closes every session, stops the client,
//! joins the media threads, and returns.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::access::Access;
use crate::config::Config;
use crate::media::MediaPipeline;
use crate::session::peer::{self, SessionContext, SessionHandle};
use crate::session::registry::{Limits, Registry, Route};
use crate::signaling::protocol::{RoomEvent, SessionId};
use crate::signaling::{Outbox, client};
use crate::systemd::Notifier;

/// Room events waiting for the daemon loop; a relay flooding faster than sessions are
/// built loses the excess (logged by the client).
const ROOM_EVENT_CAPACITY: usize = 256;
const STATUS_EVERY: Duration = Duration::from_secs(30);

/// Serves the relay and viewer page on `listen`; returns the URL campeer itself joins.
#[cfg(feature = "embedded-server")]
async fn embedded_relay(
    listen: std::net::SocketAddr,
    access: Arc<Access>,
    cancel: &CancellationToken,
) -> anyhow::Result<(String, Option<tokio::task::JoinHandle<()>>)> {
    let settings = crate::signaling::server::Settings {
        listen,
        access,
        tls: None,
    };
    let (addr, task) = crate::signaling::server::start(settings, cancel.child_token()).await?;
    let host = if addr.ip().is_unspecified() {
        std::net::IpAddr::from([127, 0, 0, 1])
    } else {
        addr.ip()
    };
    let urls = crate::signaling::addresses::watch_urls("http", addr);
    info!("no signaling.url: watch at {}", urls.join(" or "));
    Ok((
        format!("http://{}", std::net::SocketAddr::new(host, addr.port())),
        Some(task),
    ))
}

#[cfg(not(feature = "embedded-server"))]
async fn embedded_relay(
    _: std::net::SocketAddr,
    _: Arc<Access>,
    _: &CancellationToken,
) -> anyhow::Result<(String, Option<tokio::task::JoinHandle<()>>)> {
    anyhow::bail!(
        "signaling.url is not set and this build has no embedded server (feature embedded-server)"
    )
}

pub async fn run(cfg: Config, cancel: CancellationToken) -> anyhow::Result<()> {
    let access = Arc::new(Access::load(&cfg.access)?);
    let (url, server) = match cfg.signaling.url.clone() {
        Some(url) => (url, None),
        None => embedded_relay(cfg.signaling.listen, Arc::clone(&access), &cancel).await?,
    };
    // Probing and opening devices blocks: off the async workers.
    let (video, audio, media_cancel) = (cfg.video.clone(), cfg.audio.clone(), cancel.child_token());
    let pipeline =
        tokio::task::spawn_blocking(move || MediaPipeline::start(&video, &audio, media_cancel))
            .await
            .context("starting the media pipeline")?
            .context("starting the media pipeline")?;

    let (joins_tx, mut joins) = tokio::sync::watch::channel(0u64);
    let (outbox, outbox_rx) = Outbox::new(cfg.signaling.room.clone());
    let (events_tx, mut events) = mpsc::channel(ROOM_EVENT_CAPACITY);
    let signaling = tokio::spawn(client::run(
        client::ClientSettings {
            url,
            room: cfg.signaling.room.clone(),
            auth: server.is_some().then(|| access.socket_auth()),
            joins: joins_tx,
        },
        events_tx,
        outbox_rx,
        cancel.child_token(),
    ));

    let session_ctx = SessionContext {
        webrtc: Arc::new(cfg.webrtc.clone()),
        video: pipeline.video(),
        audio: pipeline.audio(),
        outbox,
    };
    let (ended_tx, mut ended) = mpsc::channel::<SessionId>(64);
    let mut registry: Registry<SessionHandle> = Registry::new(
        Limits::with_max_sessions(cfg.webrtc.max_sessions),
        Instant::now(),
    );
    let mut housekeeping = tokio::time::interval(Duration::from_secs(1));
    let mut last_status = Instant::now();
    let mut systemd = Notifier::from_env();
    let status = |viewers: usize| format!("{viewers} viewer(s), room {}", cfg.signaling.room);
    info!("campeer running");
    // Media runs: ready, even if the relay is down at boot (the client keeps trying).
    systemd.ready(&status(registry.len()));

    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            Some(ev) = events.recv() => match ev {
                RoomEvent::Offer { session, sdp } => match registry.admit(&session, Instant::now()) {
                    Ok(early) => {
                        info!(ufrag = %session, early = early.len(), "offer received; starting session");
                        let handle = peer::spawn(session.clone(), sdp, early, session_ctx.clone(), ended_tx.clone(), &cancel);
                        registry.insert(session, handle);
                    }
                    Err(refusal) => warn!(ufrag = %session, "offer refused: {refusal}"),
                },
                RoomEvent::Candidate(c) => {
                    if let Route::Deliver(handle, c) = registry.route(c, Instant::now()) {
                        handle.add_candidate(c);
                    }
                }
                RoomEvent::ForeignAnswer => tracing::debug!("ignoring another peer's answer"),
            },
            Ok(()) = joins.changed() => systemd.ready(&status(registry.len())),
            Some(id) = ended.recv() => {
                if registry.remove(&id).is_some() {
                    info!(ufrag = %id, viewers = registry.len(), "session closed");
                }
            }
            _ = housekeeping.tick() => {
                systemd.tick(Instant::now(), pipeline.stats().snapshot().video_encoded);
                systemd.status(&status(registry.len()));
                let dropped = registry.prune(Instant::now());
                if dropped > 0 {
                    warn!(dropped, "candidates for sessions that never made an offer were dropped");
                }
                if last_status.elapsed() >= STATUS_EVERY {
                    last_status = Instant::now();
                    info!(viewers = registry.len(), media = %pipeline.stats().snapshot(), "status");
                }
            }
        }
    }

    info!(viewers = registry.len(), "shutting down");
    systemd.stopping();
    for (_, handle) in registry.drain() {
        handle.close().await;
    }
    let _ = signaling.await;
    if let Some(server) = server {
        // Open WebSockets do not end a graceful shutdown; give them a moment, then stop.
        let abort = server.abort_handle();
        if tokio::time::timeout(Duration::from_secs(1), server)
            .await
            .is_err()
        {
            abort.abort();
        }
    }
    tokio::task::spawn_blocking(move || pipeline.shutdown())
        .await
        .context("joining the media threads")?;
    info!("stopped");
    Ok(())
}
