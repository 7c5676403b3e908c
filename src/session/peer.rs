//! One viewer's session: the thin PeerConnection edge that applies the offer, sends the
//! answer and drives the session's state [`Machine`] with what happens, until it ends.
//! Building the connection is `connection.rs`; the media it sends is `send.rs`.
//!
//! A session is a cheap view onto the media pipeline (the webrtcsink lesson): it never
//! encodes; it subscribes to the pipeline's [`MediaFeed`]s and writes each frame's
//! ready-made RTP payloads under its own SSRC, sequence numbers and payload type.
//! webrtc 0.21 binds a local track to one sender only, so each session owns its tracks.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, info_span, warn};
use webrtc::peer_connection::{
    PeerConnection, RTCIceCandidateInit, RTCPeerConnectionIceEvent, RTCPeerConnectionState,
    RTCSdpType, RTCSessionDescription,
};

use super::candidate::RemoteCandidates;
use super::congestion::{Congestion, VideoShare};
use super::connection::{PcEvent, Track, add_tracks, build_connection, send_only};
use super::goodbye::{self, Goodbye};
use super::header_ext::HeaderExtIds;
use super::keyframe::Keyframes;
use super::link_report;
use super::machine::{Ending, Link, Machine, Remote};
use super::resend_gate::GiveUps;
use super::send::{MediaTasks, Sending, subscribe_video_early};
use super::stats::{LinkState, SessionStats};
use crate::access::Access;
use crate::config::{SessionConfig, WebrtcConfig};
use crate::media::{MediaFeed, MediaKind};
use crate::sdp;
use crate::signaling::Outbox;
use crate::signaling::protocol::{Candidate, SessionId};
use crate::turn::TurnPlan;

/// How often a session reads its link's RTT, loss and remote end from webrtc-rs.
const LINK_REPORT_EVERY: Duration = Duration::from_secs(2);
/// No feedback for this long from a connected viewer that is sent media (Chromium's
/// transport-cc comes every 50–100 ms): it is gone, as far as a new offer in a full room
/// is concerned.
const SILENT: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("webrtc: {context}: {source}")]
    Webrtc {
        context: &'static str,
        source: webrtc::error::Error,
    },
    #[error("the offer has no {0} this peer can send")]
    NoCodec(&'static str),
    #[error("no usable local description after answering")]
    NoLocalDescription,
    #[error("DTLS certificate: {0}")]
    Certificate(String),
}

pub(super) fn webrtc_err(
    context: &'static str,
) -> impl FnOnce(webrtc::error::Error) -> SessionError {
    move |source| SessionError::Webrtc { context, source }
}

/// What every session shares: the media to send and the way to the room.
#[derive(Clone)]
pub struct SessionContext {
    pub webrtc: Arc<WebrtcConfig>,
    /// The handshake deadline (a viewer not connected by then has gone away, cannot
    /// reach us, or never meant to: its slot is given back) and the candidate limit.
    pub session: SessionConfig,
    pub video: MediaFeed,
    pub audio: Option<MediaFeed>,
    /// The video's keyframe requests, throttled across all sessions.
    pub keyframes: Keyframes,
    pub outbox: Outbox,
    /// Signs answers with the viewer token.
    pub access: Arc<Access>,
    /// Each viewer's bandwidth estimate, read to steer the encoder.
    pub congestion: Congestion,
    /// `webrtc.ice_servers` as each session opens them, TURN over TCP/TLS bridged.
    pub turn: Arc<TurnPlan>,
}

/// What the registry keeps per live session.
pub struct SessionHandle {
    candidates: mpsc::Sender<Candidate>,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    stats: Arc<SessionStats>,
}

impl SessionHandle {
    /// Hands a remote candidate to the session; it applies it once its remote
    /// description is set.
    pub fn add_candidate(&self, candidate: Candidate) {
        if let Err(e) = self.candidates.try_send(candidate) {
            // Only a flood fills it (the session drains it as fast as it refuses); not logged
            // one by one.
            debug!("candidate not queued: {e}");
        }
    }

    /// Whether the viewer was connected and is no longer heard: ICE says disconnected,
    /// or its congestion feedback has stopped for [`SILENT`]. A closed tab looks like
    /// this for the seconds before ICE gives up; a page reloaded in a full room needs
    /// its old session's slot before ICE notices (4 s).
    pub fn is_lost(&self) -> bool {
        match self.stats.state() {
            LinkState::Disconnected | LinkState::Failed => true,
            LinkState::Connected => self
                .stats
                .silent_for(Instant::now())
                .is_some_and(|s| s >= SILENT),
            _ => false,
        }
    }

    /// The session's live figures, for the status page.
    pub fn stats(&self) -> &Arc<SessionStats> {
        &self.stats
    }

    /// Closes the connection and waits for the session's task to finish.
    pub async fn close(self) {
        self.cancel.cancel();
        let _ = self.task.await;
    }
}

/// Starts a session for `offer`. When it ends, for whatever reason, its id is sent on
/// `ended` so the registry forgets it.
pub fn spawn(
    id: SessionId,
    offer: String,
    early: Vec<Candidate>,
    ctx: SessionContext,
    ended: mpsc::UnboundedSender<SessionId>,
    parent: &CancellationToken,
) -> SessionHandle {
    let (tx, rx) = mpsc::channel(64);
    for c in early {
        // Capacity 64 is above the registry's early-candidate limit of 32.
        let _ = tx.try_send(c);
    }
    let cancel = parent.child_token();
    let span = info_span!("session", ufrag = %id);
    let stats = Arc::new(SessionStats::new(id.clone(), Instant::now()));
    let session = {
        let (id, cancel, stats) = (id.clone(), cancel.clone(), Arc::clone(&stats));
        async move {
            let started = Instant::now();
            match run(&id, offer, rx, ctx, stats, cancel).await {
                Ok(ending) => info!(lasted = ?started.elapsed(), "session ended: {ending}"),
                Err(e) => warn!(lasted = ?started.elapsed(), "session ended: {e}"),
            }
        }
        .instrument(span)
    };
    SessionHandle {
        candidates: tx,
        cancel,
        task: spawn_reporting_end(id, ended, session),
        stats,
    }
}

/// Reports a session's end from its task's drop, so that it is reported however the task
/// ends: returned, panicked or aborted. An unbounded send never waits, so neither a
/// session nor shutdown can hang on a registry that no longer reads (one message per
/// session, and the sessions are bounded by `webrtc.max_sessions`).
struct ReportEnd {
    id: Option<SessionId>,
    ended: mpsc::UnboundedSender<SessionId>,
}

impl Drop for ReportEnd {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            let _ = self.ended.send(id);
        }
    }
}

fn spawn_reporting_end(
    id: SessionId,
    ended: mpsc::UnboundedSender<SessionId>,
    session: impl Future<Output = ()> + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    let report = ReportEnd {
        id: Some(id),
        ended,
    };
    tokio::spawn(async move {
        let _report = report;
        session.await;
    })
}

/// The answer, and what it tells the candidates campeer trickles.
struct Answer {
    sdp: String,
    names: LocalNames,
}

/// What names campeer's candidates: its ufrag and its first media section.
struct LocalNames {
    ufrag: Option<String>,
    first_mid: Option<String>,
}

/// What drives a session besides its PeerConnection.
struct Inputs {
    offer_received: Instant,
    remote_candidates: mpsc::Receiver<Candidate>,
    events: mpsc::UnboundedReceiver<PcEvent>,
    /// What of the viewer's estimate video may take: which layers it is sent.
    video_share: VideoShare,
    /// Packets the resend gate gave up on: the viewer needs a keyframe.
    give_ups: GiveUps,
}

async fn run(
    id: &SessionId,
    offer: String,
    remote_candidates: mpsc::Receiver<Candidate>,
    ctx: SessionContext,
    stats: Arc<SessionStats>,
    cancel: CancellationToken,
) -> Result<Ending, SessionError> {
    let offer_received = Instant::now();
    // Refused before any socket is bound: a camera that cannot send video has no answer.
    if !sdp::offers_codec(&offer, "VP8") {
        return Err(SessionError::NoCodec("VP8"));
    }
    let (events_tx, events) = mpsc::unbounded_channel();
    let congestion = ctx.congestion.join(Arc::clone(&stats));
    // The bridges of TURN over TCP/TLS go with the connection, when `run` returns.
    let (ice_servers, _bridges) = ctx.turn.open(ctx.webrtc.bind, &cancel).await;
    let give_ups = GiveUps::default();
    let pc = build_connection(&ctx.webrtc, ice_servers, &congestion, &give_ups, events_tx).await?;
    let result = async {
        let tracks = add_tracks(&pc, &ctx).await?;
        let (answer, mut sending) = negotiate(&pc, id, offer, &tracks).await?;
        subscribe_video_early(&mut sending, &ctx.keyframes);
        let inputs = Inputs {
            offer_received,
            remote_candidates,
            events,
            video_share: congestion.video_share(),
            give_ups,
        };
        Ok(drive(&pc, &ctx, answer, sending, inputs, stats, &cancel).await)
    }
    .await;
    if let Err(e) = pc.close().await {
        debug!("close: {e}");
    }
    result
}

/// Applies the offer and makes the answer, tagged with the offer it answers; returns it
/// with the tracks it agreed to send.
async fn negotiate(
    pc: &impl PeerConnection,
    id: &SessionId,
    offer: String,
    tracks: &[Track],
) -> Result<(Answer, Vec<Sending>), SessionError> {
    let offer = RTCSessionDescription::offer(offer).map_err(webrtc_err("parse offer"))?;
    pc.set_remote_description(offer)
        .await
        .map_err(webrtc_err("apply offer"))?;
    send_only(pc).await?;
    let answer = pc
        .create_answer(None)
        .await
        .map_err(webrtc_err("create answer"))?;
    pc.set_local_description(answer)
        .await
        .map_err(webrtc_err("apply answer"))?;
    let local = pc
        .local_description()
        .await
        .filter(|d| d.sdp_type == RTCSdpType::Answer)
        .ok_or(SessionError::NoLocalDescription)?;

    let answer = Answer {
        names: LocalNames {
            ufrag: sdp::attribute(&local.sdp, "ice-ufrag").map(str::to_owned),
            first_mid: sdp::attribute(&local.sdp, "mid").map(str::to_owned),
        },
        sdp: sdp::tag_answer(&local.sdp, id.as_str()),
    };
    Ok((answer, agreed(tracks).await?))
}

/// The tracks the answer agreed to send, each with its payload type. Video is required;
/// audio the offer does not take is left out.
async fn agreed(tracks: &[Track]) -> Result<Vec<Sending>, SessionError> {
    let mut sending = Vec::new();
    for t in tracks {
        let params = t
            .sender
            .get_parameters()
            .await
            .map_err(webrtc_err("sender parameters"))?;
        match params.rtp_parameters.codecs.first() {
            Some(codec) => sending.push(Sending {
                track: Arc::clone(&t.track),
                feed: t.feed.clone(),
                ssrc: t.ssrc,
                payload_type: codec.payload_type,
                header_ext: HeaderExtIds::negotiated(&params.rtp_parameters.header_extensions),
                early: None,
            }),
            None if t.feed.kind() == MediaKind::Video => {
                return Err(SessionError::NoCodec("VP8"));
            }
            None => warn!("the offer takes no Opus audio; sending video only"),
        }
    }
    Ok(sending)
}

/// Sends the answer, then feeds the machine what happens until it says the session is
/// over, carrying out what it decides.
async fn drive(
    pc: &impl PeerConnection,
    ctx: &SessionContext,
    answer: Answer,
    sending: Vec<Sending>,
    mut inputs: Inputs,
    stats: Arc<SessionStats>,
    cancel: &CancellationToken,
) -> Ending {
    let limits = ctx.session;
    let remote = RemoteCandidates::new(limits.max_remote_candidates, ctx.webrtc.bind.is_loopback());
    let mut edge = Edge {
        machine: Machine::new(
            inputs.offer_received,
            limits.handshake_timeout.duration(),
            remote,
        ),
        ctx,
        names: answer.names,
        sending,
        media: MediaTasks::new(cancel),
        stats,
        video_share: inputs.video_share.clone(),
        give_ups: inputs.give_ups.clone(),
    };
    let mut link_reports = tokio::time::interval(LINK_REPORT_EVERY);
    let mut goodbye = Goodbye::default();
    let mut goodbye_reads = tokio::time::interval(goodbye::READ_EVERY);
    // Signed, so the page can tell campeer's answer from one another room member made.
    ctx.outbox.answer(ctx.access.sign_answer(&answer.sdp));
    info!(after = ?inputs.offer_received.elapsed(), "answer sent");
    for c in edge.machine.answer_sent(Instant::now()) {
        ctx.outbox.candidate(c);
    }
    let ending = loop {
        if let Some(ending) = edge.machine.ended() {
            let refused = edge.machine.refused_candidates();
            if refused.total() > 0 {
                info!(%refused, "remote candidates not applied");
            }
            break ending;
        }
        let deadline = edge.machine.deadline().map(tokio::time::Instant::from_std);
        tokio::select! {
            _ = cancel.cancelled() => edge.machine.close(),
            _ = sleep_until(deadline) => edge.machine.tick(Instant::now()),
            Some(c) = inputs.remote_candidates.recv() => edge.remote_candidate(pc, c).await,
            Some(ev) = inputs.events.recv() => {
                // The selected pair is known now: read it at once, not in a period.
                if matches!(ev, PcEvent::State(RTCPeerConnectionState::Connected)) {
                    link_reports.reset_immediately();
                }
                edge.pc_event(ev);
            }
            _ = link_reports.tick() => edge.stats.set_link(link_report::read(pc).await),
            _ = goodbye_reads.tick() => {
                if goodbye.said(pc).await {
                    info!("the viewer closed the connection");
                    edge.machine.link(Link::Closed, Instant::now());
                }
            }
        }
    };
    edge.media.stop().await;
    ending
}

/// What the session's loop carries out the machine's decisions with.
struct Edge<'a> {
    machine: Machine,
    ctx: &'a SessionContext,
    names: LocalNames,
    /// Until media starts (taken then).
    sending: Vec<Sending>,
    /// Started once connected; joined when the session ends.
    media: MediaTasks,
    /// Shared with the [`SessionHandle`]: its state tells [`SessionHandle::is_lost`].
    stats: Arc<SessionStats>,
    video_share: VideoShare,
    give_ups: GiveUps,
}

impl Edge<'_> {
    async fn remote_candidate(&mut self, pc: &impl PeerConnection, c: Candidate) {
        match self.machine.remote_candidate(c, Instant::now()) {
            Remote::Apply(c) => apply_remote(pc, c).await,
            Remote::Refuse(why) => debug!("remote candidate not applied: {why}"),
            Remote::Ignore => {}
        }
    }

    fn pc_event(&mut self, ev: PcEvent) {
        match ev {
            PcEvent::LocalCandidate(ev) => {
                if let Some(c) = local_candidate(&ev, &self.names)
                    .and_then(|c| self.machine.local_candidate(c, Instant::now()))
                {
                    self.ctx.outbox.candidate(c);
                }
            }
            PcEvent::State(state) => {
                info!(%state, "connection state");
                self.stats.set_state(LinkState::from(state));
                if link(state).is_some_and(|l| self.machine.link(l, Instant::now())) {
                    let sending = std::mem::take(&mut self.sending);
                    self.media.start(
                        sending,
                        &self.ctx.keyframes,
                        &self.stats,
                        &self.video_share,
                        &self.give_ups,
                    );
                }
            }
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn link(state: RTCPeerConnectionState) -> Option<Link> {
    match state {
        RTCPeerConnectionState::Connected => Some(Link::Connected),
        RTCPeerConnectionState::Failed => Some(Link::Failed),
        RTCPeerConnectionState::Closed => Some(Link::Closed),
        _ => None,
    }
}

/// A gathered candidate as the room protocol carries it, named by campeer's own ufrag.
fn local_candidate(ev: &RTCPeerConnectionIceEvent, names: &LocalNames) -> Option<Candidate> {
    match ev.candidate.to_json() {
        Ok(init) => Some(Candidate {
            candidate: init.candidate,
            sdp_mid: names.first_mid.clone(),
            sdp_mline_index: Some(0),
            username_fragment: names.ufrag.clone(),
        }),
        Err(e) => {
            warn!("local candidate not sendable: {e}");
            None
        }
    }
}

async fn apply_remote(pc: &impl PeerConnection, c: Candidate) {
    let init = RTCIceCandidateInit {
        candidate: c.candidate,
        sdp_mid: c.sdp_mid,
        sdp_mline_index: c.sdp_mline_index,
        username_fragment: c.username_fragment,
        url: None,
    };
    if let Err(e) = pc.add_ice_candidate(init).await {
        warn!("remote candidate refused: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::registry::{Limits, Registry};

    #[tokio::test]
    async fn a_panicking_session_is_removed_from_the_registry() {
        let id = SessionId::parse("boom").unwrap();
        let mut registry = Registry::new(Limits::with_max_sessions(1));
        registry.admit(&id, None, Instant::now()).unwrap();
        let (ended_tx, mut ended) = mpsc::unbounded_channel();
        let task = spawn_reporting_end(id.clone(), ended_tx, async { panic!("a session bug") });
        registry.insert(id.clone(), ());
        assert!(task.await.unwrap_err().is_panic());
        let reported = ended.recv().await.expect("the end is reported");
        assert_eq!(registry.remove(&reported), Some(()));
        assert!(registry.is_empty());
    }

    #[tokio::test]
    async fn an_aborted_session_reports_its_end_without_a_reader_waiting() {
        let (ended_tx, ended) = mpsc::unbounded_channel();
        // Nobody reads `ended` while the sessions stop, as at shutdown.
        let tasks: Vec<_> = (0..200)
            .map(|n| {
                let id = SessionId::parse(&format!("s{n:03}")).unwrap();
                spawn_reporting_end(id, ended_tx.clone(), std::future::pending())
            })
            .collect();
        for t in &tasks {
            t.abort();
        }
        for t in tasks {
            assert!(t.await.unwrap_err().is_cancelled());
        }
        drop(ended_tx);
        let mut ended = ended;
        let mut n = 0;
        while ended.recv().await.is_some() {
            n += 1;
        }
        assert_eq!(n, 200);
    }
}
