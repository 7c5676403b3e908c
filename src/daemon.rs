//! Wires the media pipeline, a signaller and the sessions together, and owns
//! the one shutdown path: cancelling the token closes every session, stops the client,
//! joins the media threads, and returns.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::access::Access;
use crate::config::Config;
use crate::line_budget::LineBudget;
use crate::media::MediaPipeline;
use crate::sdp;
use crate::session::congestion::{self, Congestion};
use crate::session::keyframe::Keyframes;
use crate::session::peer::{self, SessionContext, SessionHandle};
use crate::session::registry::{Limits, Registry, Route};
use crate::signaling::client::trust;
use crate::signaling::protocol::{RoomEvent, SessionId};
use crate::signaling::{Signaller, SocketIo};
use crate::status::rates::RateMeter;
use crate::status::{
    MediaStatus, SignalingStatus, Snapshot, StatusRequests, StatusSource, summary_line,
};
use crate::systemd::Notifier;
use crate::turn::TurnPlan;

const STATUS_EVERY: Duration = Duration::from_secs(30);

pub async fn run(cfg: Config, cancel: CancellationToken) -> anyhow::Result<()> {
    // The token file (made at first start) is blocking I/O: off the async workers.
    let access_cfg = cfg.access.clone();
    let access = Arc::new(
        tokio::task::spawn_blocking(move || Access::load(&access_cfg))
            .await
            .context("loading the viewer token")??,
    );
    let room = cfg.signaling.room.clone();
    let status = StatusSource::channel();
    match cfg.signaling.url.clone() {
        Some(url) => {
            let tls = relay_trust(cfg.signaling.ca_file.clone()).await?;
            let relay = SocketIo { url, room, tls };
            serve_reporting(cfg, access, relay, status, cancel).await
        }
        None => serve_embedded(cfg, access, status, cancel).await,
    }
}

/// The TLS connector trusting `signaling.ca_file` besides the system's roots; `None`
/// when no file is set. A file that cannot be used stops campeer at start.
async fn relay_trust(
    ca_file: Option<std::path::PathBuf>,
) -> anyhow::Result<Option<native_tls::TlsConnector>> {
    let Some(path) = ca_file else {
        return Ok(None);
    };
    // A file: off the async workers.
    let connector =
        tokio::task::spawn_blocking(move || trust::connector("signaling.ca_file", &path))
            .await
            .context("loading signaling.ca_file")??;
    Ok(Some(connector))
}

/// Serves the relay and viewer page on `signaling.listen`, campeer seated in its room.
#[cfg(feature = "embedded-server")]
async fn serve_embedded(
    cfg: Config,
    access: Arc<Access>,
    status: (StatusSource, StatusRequests),
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    use crate::access::{tls::TlsIdentity, viewer_url};
    use crate::signaling::server;

    let host = viewer_url::hostname().unwrap_or_else(|| "localhost".into());
    // Files, and key generation the first time: off the async workers.
    let access_cfg = cfg.access.clone();
    let identity = tokio::task::spawn_blocking(move || TlsIdentity::for_access(&access_cfg, &host))
        .await
        .context("loading the TLS identity")??;
    if let Some(identity) = &identity {
        info!(fingerprint = %identity.fingerprint(), "access.tls: serving https");
    }
    let settings = server::Settings {
        listen: cfg.signaling.listen,
        access: Arc::clone(&access),
        tls: identity.map(|i| i.server_config()).transpose()?,
        status: status.0.clone(),
    };
    let embedded = server::start(settings, cancel.child_token()).await?;
    let scheme = if cfg.access.tls.is_on() {
        "https"
    } else {
        "http"
    };
    let urls = crate::signaling::addresses::watch_urls(scheme, embedded.addr);
    info!(
        "no signaling.url: watch at {} (each with #token=<redacted>: `campeer url` prints the link)",
        urls.join(" or ")
    );
    let seat = embedded.seat_in(cfg.signaling.room.clone());
    let result = serve_reporting(cfg, access, seat, status, cancel).await;
    let _ = embedded.task.await;
    result
}

#[cfg(not(feature = "embedded-server"))]
async fn serve_embedded(
    _: Config,
    _: Arc<Access>,
    _: (StatusSource, StatusRequests),
    _: CancellationToken,
) -> anyhow::Result<()> {
    anyhow::bail!(
        "signaling.url is not set and this build has no embedded server (feature embedded-server)"
    )
}

/// Runs the media pipeline and one session per viewer that `signaller` brings, until
/// `cancel`; then closes the sessions, stops the signaller and joins the media threads.
pub async fn serve(
    cfg: Config,
    access: Arc<Access>,
    signaller: impl Signaller,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    serve_reporting(cfg, access, signaller, StatusSource::channel(), cancel).await
}

/// [`serve`], answering `status`' requests for snapshots (and serving them on
/// `status.listen` when it is set).
async fn serve_reporting(
    cfg: Config,
    access: Arc<Access>,
    signaller: impl Signaller,
    (status_source, mut status_requests): (StatusSource, StatusRequests),
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let status_listener = match cfg.status.listen {
        Some(listen) => Some(serve_status(listen, status_source, &access, &cancel).await?),
        None => None,
    };
    // Probing and opening devices blocks: off the async workers.
    let (video, audio, media_cancel) = (cfg.video.clone(), cfg.audio.clone(), cancel.child_token());
    let pipeline =
        tokio::task::spawn_blocking(move || MediaPipeline::start(&video, &audio, media_cancel))
            .await
            .context("starting the media pipeline")?
            .context("starting the media pipeline")?;

    // TURN servers' CA files are read once; one that cannot be used stops campeer here.
    let ice_servers = cfg.webrtc.ice_servers.clone();
    let turn = Arc::new(
        tokio::task::spawn_blocking(move || TurnPlan::load(&ice_servers))
            .await
            .context("loading webrtc.ice_servers")??,
    );
    // The sessions' DTLS certificate, made before the first viewer calls.
    tokio::task::spawn_blocking(crate::session::certificate::warm);
    let mut room = signaller.start(cancel.child_token());
    let congestion = Congestion::new(&cfg);
    let steering = tokio::spawn(congestion::steer(
        congestion.clone(),
        pipeline.video_bitrate(),
        cancel.child_token(),
    ));
    let mut sessions = Sessions::new(
        &cfg,
        SessionContext {
            webrtc: Arc::new(cfg.webrtc.clone()),
            session: cfg.session,
            video: pipeline.video(),
            audio: pipeline.audio(),
            keyframes: Keyframes::new(pipeline.video()),
            outbox: room.outbox.clone(),
            access,
            congestion: congestion.clone(),
            turn,
        },
        &cancel,
    );
    let mut media_ended = pipeline.ended();
    let mut broken = None;
    let mut housekeeping = tokio::time::interval(Duration::from_secs(1));
    let mut last_status = Instant::now();
    let mut systemd = Notifier::from_env();
    let mut rates = RateMeter::default();
    let room_name = cfg.signaling.room.to_string();
    let status = |sessions: &Sessions| {
        summary_line(
            sessions.len(),
            &room_name,
            &sessions.snapshots(Instant::now()),
        )
    };
    info!("campeer running");
    // Media runs: ready, even if the relay is down at boot (the signaller keeps trying).
    systemd.ready(&status(&sessions));

    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            // A dead stage leaves viewers a frozen track: stop, with an error, so that
            // systemd (Restart=on-failure) starts campeer afresh.
            Ok(ended) = media_ended.wait_for(Option::is_some) => {
                broken = ended.clone();
                break;
            }
            Some(ev) = room.events.recv() => sessions.on_room_event(ev),
            Ok(()) = room.joins.changed() => systemd.ready(&status(&sessions)),
            Some(id) = sessions.ended.recv() => sessions.on_ended(&id),
            Some(reply) = status_requests.recv() => {
                let now = Instant::now();
                let _ = reply.send(Snapshot {
                    uptime: now.saturating_duration_since(started),
                    signaling: SignalingStatus {
                        relay: cfg.signaling.url.as_deref().map(crate::access::redact::url),
                        room: cfg.signaling.room.to_json(),
                        joins: *room.joins.borrow(),
                    },
                    media: MediaStatus {
                        counters: pipeline.stats().snapshot(),
                        rates: rates.rates(),
                    },
                    max_sessions: cfg.webrtc.max_sessions,
                    sessions: sessions.snapshots(now),
                });
            }
            _ = housekeeping.tick() => {
                let media = pipeline.stats().snapshot();
                rates.update(Instant::now(), media);
                systemd.tick(Instant::now(), media.video_through_encoder());
                systemd.status(&status(&sessions));
                sessions.prune();
                if last_status.elapsed() >= STATUS_EVERY {
                    last_status = Instant::now();
                    // Tasks alive and the heap in use: what a long run watches for
                    // growth (scripts/bench soak).
                    let tasks = tokio::runtime::Handle::current().metrics().num_alive_tasks();
                    let heap_kib = crate::heap::in_use() / 1024;
                    info!(viewers = sessions.len(), tasks, heap_kib, media = %pipeline.stats().snapshot(), "status");
                }
            }
        }
    }

    match &broken {
        Some(ended) => error!(viewers = sessions.len(), "{ended}: shutting down"),
        None => info!(viewers = sessions.len(), "shutting down"),
    }
    systemd.stopping();
    sessions.close_all().await;
    let _ = room.task.await;
    if let Some(listener) = status_listener {
        let _ = listener.await;
    }
    let _ = steering.await;
    tokio::task::spawn_blocking(move || pipeline.shutdown())
        .await
        .context("joining the media threads")?;
    if let Some(ended) = broken {
        return Err(anyhow::Error::new(ended).context("the media pipeline broke"));
    }
    info!("stopped");
    Ok(())
}

#[cfg(feature = "embedded-server")]
async fn serve_status(
    listen: std::net::SocketAddr,
    source: StatusSource,
    access: &Arc<Access>,
    cancel: &CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let access = Arc::clone(access);
    Ok(crate::status::http::serve(listen, source, access, cancel.child_token()).await?)
}

#[cfg(not(feature = "embedded-server"))]
async fn serve_status(
    _: std::net::SocketAddr,
    _: StatusSource,
    _: &Arc<Access>,
    _: &CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    anyhow::bail!(
        "status.listen is set but this build has no HTTP server (feature embedded-server)"
    )
}

/// The live sessions and what the loop does with room events and sessions that end.
struct Sessions {
    registry: Registry<SessionHandle>,
    ctx: SessionContext,
    /// Every session reports its end here, however it ends; unbounded so that a report
    /// never waits (see `peer::spawn`).
    ended_tx: mpsc::UnboundedSender<SessionId>,
    ended: mpsc::UnboundedReceiver<SessionId>,
    cancel: CancellationToken,
    /// Refused offers: one line a second, the rest summed up by `prune`.
    refusals: LineBudget,
}

impl Sessions {
    fn new(cfg: &Config, ctx: SessionContext, cancel: &CancellationToken) -> Self {
        let (ended_tx, ended) = mpsc::unbounded_channel();
        Self {
            registry: Registry::new(Limits::with_max_sessions(cfg.webrtc.max_sessions)),
            ctx,
            ended_tx,
            ended,
            cancel: cancel.clone(),
            refusals: LineBudget::new(Duration::from_secs(1), 1),
        }
    }

    fn len(&self) -> usize {
        self.registry.len()
    }

    /// Every session's figures, oldest first.
    fn snapshots(&self, now: Instant) -> Vec<crate::session::stats::SessionSnapshot> {
        self.registry
            .iter()
            .map(|(_, h)| h.stats().snapshot(now))
            .collect()
    }

    fn on_room_event(&mut self, ev: RoomEvent) {
        match ev {
            RoomEvent::Offer { session, sdp } => {
                // Before anything is spent on it: no session, no socket, no DTLS key.
                if let Err(refusal) = self.ctx.access.admit_offer(&sdp) {
                    if self.refusals.admit(Instant::now()).is_some() {
                        warn!(ufrag = %session, "offer refused: {refusal}");
                    }
                    return;
                }
                // A full house gives the slot of a viewer no longer heard (a closed tab,
                // for the seconds before ICE gives up) to the one calling now.
                if self.registry.is_full()
                    && let Some((gone, handle)) = self.registry.evict_oldest(SessionHandle::is_lost)
                {
                    info!(ufrag = %gone, "all viewer slots taken: closing a lost session for a new offer");
                    tokio::spawn(handle.close());
                }
                match self.registry.admit(
                    &session,
                    sdp::attribute(&sdp, "fingerprint"),
                    Instant::now(),
                ) {
                    Ok(early) => {
                        info!(ufrag = %session, early = early.len(), "offer received; starting session");
                        let handle = peer::spawn(
                            session.clone(),
                            sdp,
                            early,
                            self.ctx.clone(),
                            self.ended_tx.clone(),
                            &self.cancel,
                        );
                        self.registry.insert(session, handle);
                    }
                    Err(refusal) => {
                        if self.refusals.admit(Instant::now()).is_some() {
                            warn!(ufrag = %session, "offer refused: {refusal}");
                        }
                    }
                }
            }
            RoomEvent::Candidate(c) => {
                if let Route::Deliver(handle, c) = self.registry.route(c, Instant::now()) {
                    handle.add_candidate(c);
                }
            }
            RoomEvent::ForeignAnswer => tracing::debug!("ignoring another peer's answer"),
        }
    }

    fn on_ended(&mut self, id: &SessionId) {
        if self.registry.remove(id).is_some() {
            info!(ufrag = %id, viewers = self.registry.len(), "session closed");
        }
    }

    /// Once a second: forgets what the registry no longer needs, and sums up the offers
    /// refused since the last one that was logged.
    fn prune(&mut self) {
        let more = self.refusals.take_more();
        if more > 0 {
            warn!(
                more,
                "offer refused, and more since (not logged one by one)"
            );
        }
        let dropped = self.registry.prune(Instant::now());
        if dropped > 0 {
            warn!(
                dropped,
                "candidates for sessions that never made an offer were dropped"
            );
        }
    }

    async fn close_all(&mut self) {
        for (_, handle) in self.registry.drain() {
            handle.close().await;
        }
    }
}
