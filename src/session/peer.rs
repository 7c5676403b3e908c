//! One viewer's PeerConnection: the thin edge that drives the session's state
//! [`Machine`], and the tasks that copy the shared encoded frames into its tracks.
//!
//! A session is a cheap view onto the media pipeline (the webrtcsink lesson): it never
//! encodes; it subscribes to the pipeline's [`MediaFeed`]s and writes each frame's
//! ready-made RTP payloads under its own SSRC, sequence numbers and payload type.
//! webrtc 0.21 binds a local track to one sender only, so each session owns its tracks.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtc::ice::mdns::MulticastDnsMode;
use rtc::interceptor::{Registry, Slot};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_OPUS, MIME_TYPE_VP8};
use rtc::rtp_transceiver::PayloadType;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters,
    RTCRtpEncodingParameters, RtpCodecKind,
};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, info_span, warn};
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCConfigurationBuilder, RTCIceCandidateInit, RTCIceServer, RTCPeerConnectionIceEvent,
    RTCPeerConnectionState, RTCSdpType, RTCSessionDescription, SettingEngineBuilder,
    register_default_interceptors,
};
use webrtc::rtp_transceiver::RtpSender;

use super::candidate::RemoteCandidates;
use super::keyframe::{self, KeyframeRequests, Keyframes};
use super::machine::{Ending, Link, Machine, Remote};
use crate::config::WebrtcConfig;
use crate::media::{EncodedFrame, MediaFeed, MediaKind};
use crate::sdp;
use crate::signaling::Outbox;
use crate::signaling::protocol::{Candidate, SessionId};

const VP8_PAYLOAD_TYPE: PayloadType = 96;
const OPUS_PAYLOAD_TYPE: PayloadType = 111;
/// A viewer that has not connected by then has gone away, cannot reach us, or never
/// meant to: its slot is given back.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

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
}

fn webrtc_err(context: &'static str) -> impl FnOnce(webrtc::error::Error) -> SessionError {
    move |source| SessionError::Webrtc { context, source }
}

/// What every session shares: the media to send and the way to the room.
#[derive(Clone)]
pub struct SessionContext {
    pub webrtc: Arc<WebrtcConfig>,
    pub video: MediaFeed,
    pub audio: Option<MediaFeed>,
    /// The video's keyframe requests, throttled across all sessions.
    pub keyframes: Keyframes,
    pub outbox: Outbox,
}

/// What the registry keeps per live session.
pub struct SessionHandle {
    candidates: mpsc::Sender<Candidate>,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl SessionHandle {
    /// Hands a remote candidate to the session; it applies it once its remote
    /// description is set.
    pub fn add_candidate(&self, candidate: Candidate) {
        if let Err(e) = self.candidates.try_send(candidate) {
            warn!("candidate not queued: {e}");
        }
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
    let session = {
        let (id, cancel) = (id.clone(), cancel.clone());
        async move {
            let started = Instant::now();
            match run(&id, offer, rx, ctx, cancel).await {
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

enum PcEvent {
    LocalCandidate(RTCPeerConnectionIceEvent),
    State(RTCPeerConnectionState),
}

/// Forwards the driver's callbacks into the session's loop; it must never block the
/// driver, hence an unbounded channel (a session gathers a handful of candidates).
struct Events {
    tx: mpsc::UnboundedSender<PcEvent>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Events {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        let _ = self.tx.send(PcEvent::LocalCandidate(event));
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let _ = self.tx.send(PcEvent::State(state));
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        // The reference page sends its own camera; nobody watches it here, but unread
        // packets would pile up in the driver's queue and be logged as drops.
        tokio::spawn(async move {
            while !matches!(track.poll().await, None | Some(TrackRemoteEvent::OnEnded)) {}
        });
    }
}

/// The codecs campeer sends, and the interceptors: the defaults (NACK, reports) plus
/// the one that surfaces keyframe requests.
fn engine_and_interceptors() -> Result<(MediaEngine, Registry), SessionError> {
    let mut engine = MediaEngine::default();
    let feedback = |typ: &str, parameter: &str| RTCPFeedback {
        typ: typ.to_owned(),
        parameter: parameter.to_owned(),
    };
    engine
        .register_codec(
            RTCRtpCodecParameters {
                rtp_codec: vp8_codec(vec![
                    feedback("ccm", "fir"),
                    feedback("nack", ""),
                    feedback("nack", "pli"),
                ]),
                payload_type: VP8_PAYLOAD_TYPE,
            },
            RtpCodecKind::Video,
        )
        .map_err(webrtc_err("register VP8"))?;
    engine
        .register_codec(
            RTCRtpCodecParameters {
                rtp_codec: opus_codec(),
                payload_type: OPUS_PAYLOAD_TYPE,
            },
            RtpCodecKind::Audio,
        )
        .map_err(webrtc_err("register Opus"))?;
    let registry = register_default_interceptors(Registry::new(), &mut engine)
        .map_err(webrtc_err("interceptors"))?
        .with(Slot::from(keyframe::SLOT), KeyframeRequests::default());
    Ok((engine, registry))
}

fn vp8_codec(rtcp_feedback: Vec<RTCPFeedback>) -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_VP8.to_owned(),
        clock_rate: 90_000,
        channels: 0,
        sdp_fmtp_line: String::new(),
        rtcp_feedback,
    }
}

fn opus_codec() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_OPUS.to_owned(),
        clock_rate: 48_000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
        rtcp_feedback: Vec::new(),
    }
}

fn local_track(kind: RtpCodecKind, codec: RTCRtpCodec, ssrc: u32) -> Arc<TrackLocalStaticRTP> {
    Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
        "campeer".to_owned(),
        format!("campeer-{kind}"),
        format!("campeer {kind}"),
        kind,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                ..Default::default()
            },
            codec,
            ..Default::default()
        }],
    )))
}

/// A viewer that closes its page sends nothing more; these bound how long its session
/// lingers (consent checks stop: disconnected after 4 s, failed 6 s later). mDNS
/// resolution lets a watch-only browser's `.local` candidates be used directly.
fn setting_engine() -> webrtc::peer_connection::SettingEngine {
    SettingEngineBuilder::new()
        .with_ice_timeouts(
            Some(Duration::from_secs(4)),
            Some(Duration::from_secs(6)),
            Some(Duration::from_secs(1)),
        )
        .with_multicast_dns_mode(MulticastDnsMode::QueryOnly)
        .build()
}

async fn build_connection(
    cfg: &WebrtcConfig,
    events: mpsc::UnboundedSender<PcEvent>,
) -> Result<impl PeerConnection, SessionError> {
    let ice_servers: Vec<RTCIceServer> = cfg
        .ice_servers
        .iter()
        .map(|s| RTCIceServer {
            urls: s.urls.clone(),
            username: s.username.clone().unwrap_or_default(),
            credential: s.credential.clone().unwrap_or_default(),
        })
        .collect();
    let ports: Vec<u16> = match cfg.udp_port_range {
        Some([first, last]) => (first..=last).collect(),
        None => vec![0],
    };
    let mut last_err = None;
    for port in ports {
        let (engine, registry) = engine_and_interceptors()?;
        let built = PeerConnectionBuilder::new()
            .with_configuration(
                RTCConfigurationBuilder::new()
                    .with_ice_servers(ice_servers.clone())
                    .build(),
            )
            .with_setting_engine(setting_engine())
            .with_media_engine(engine)
            .with_interceptor_registry(registry)
            .with_handler(Arc::new(Events { tx: events.clone() }))
            .with_udp_addrs(vec![std::net::SocketAddr::new(cfg.bind, port)])
            .build()
            .await;
        match built {
            Ok(pc) => return Ok(pc),
            Err(e) => last_err = Some(e),
        }
    }
    Err(SessionError::Webrtc {
        context: "bind a UDP port in webrtc.udp_port_range",
        source: last_err.expect("the port list is never empty"),
    })
}

/// The media this session may send: one track per feed.
struct Track {
    track: Arc<TrackLocalStaticRTP>,
    sender: Arc<dyn RtpSender>,
    feed: MediaFeed,
    ssrc: u32,
}

/// A track the answer agreed to, with the payload type it agreed on.
struct Sending {
    track: Arc<TrackLocalStaticRTP>,
    feed: MediaFeed,
    ssrc: u32,
    payload_type: PayloadType,
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
}

async fn run(
    id: &SessionId,
    offer: String,
    remote_candidates: mpsc::Receiver<Candidate>,
    ctx: SessionContext,
    cancel: CancellationToken,
) -> Result<Ending, SessionError> {
    let offer_received = Instant::now();
    // Refused before any socket is bound: a camera that cannot send video has no answer.
    if !sdp::offers_codec(&offer, "VP8") {
        return Err(SessionError::NoCodec("VP8"));
    }
    let (events_tx, events) = mpsc::unbounded_channel();
    let pc = build_connection(&ctx.webrtc, events_tx).await?;
    let result = async {
        let tracks = add_tracks(&pc, &ctx).await?;
        let (answer, sending) = negotiate(&pc, id, offer, &tracks).await?;
        let inputs = Inputs {
            offer_received,
            remote_candidates,
            events,
        };
        Ok(drive(&pc, &ctx, answer, &sending, inputs, &cancel).await)
    }
    .await;
    if let Err(e) = pc.close().await {
        debug!("close: {e}");
    }
    result
}

async fn add_tracks(
    pc: &impl PeerConnection,
    ctx: &SessionContext,
) -> Result<Vec<Track>, SessionError> {
    let mut tracks = Vec::new();
    for feed in std::iter::once(&ctx.video).chain(ctx.audio.as_ref()) {
        let (kind, codec) = match feed.kind() {
            MediaKind::Video => (RtpCodecKind::Video, vp8_codec(Vec::new())),
            MediaKind::Audio => (RtpCodecKind::Audio, opus_codec()),
        };
        let ssrc = rand::random::<u32>();
        let track = local_track(kind, codec, ssrc);
        let sender = pc
            .add_track(Arc::clone(&track) as Arc<dyn TrackLocal>)
            .await
            .map_err(webrtc_err("add track"))?;
        tracks.push(Track {
            track,
            sender,
            feed: feed.clone(),
            ssrc,
        });
    }
    Ok(tracks)
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
            }),
            None if t.feed.kind() == MediaKind::Video => {
                return Err(SessionError::NoCodec("VP8"));
            }
            None => warn!("the offer takes no Opus audio; sending video only"),
        }
    }
    let answer = Answer {
        names: LocalNames {
            ufrag: sdp::attribute(&local.sdp, "ice-ufrag").map(str::to_owned),
            first_mid: sdp::attribute(&local.sdp, "mid").map(str::to_owned),
        },
        sdp: sdp::tag_answer(&local.sdp, id.as_str()),
    };
    Ok((answer, sending))
}

/// Sends the answer, then feeds the machine what happens until it says the session is
/// over, carrying out what it decides.
async fn drive(
    pc: &impl PeerConnection,
    ctx: &SessionContext,
    answer: Answer,
    sending: &[Sending],
    mut inputs: Inputs,
    cancel: &CancellationToken,
) -> Ending {
    let remote = RemoteCandidates::new(ctx.webrtc.bind.is_loopback());
    let mut machine = Machine::new(inputs.offer_received, HANDSHAKE_TIMEOUT, remote);
    let media = cancel.child_token();
    let _stop_media = media.clone().drop_guard();
    let Answer { sdp, names } = answer;
    ctx.outbox.answer(sdp);
    info!(after = ?inputs.offer_received.elapsed(), "answer sent");
    for c in machine.answer_sent(Instant::now()) {
        ctx.outbox.candidate(c);
    }
    loop {
        if let Some(ending) = machine.ended() {
            return ending;
        }
        let deadline = machine.deadline().map(tokio::time::Instant::from_std);
        tokio::select! {
            _ = cancel.cancelled() => machine.close(),
            _ = sleep_until(deadline) => machine.tick(Instant::now()),
            Some(c) = inputs.remote_candidates.recv() => {
                match machine.remote_candidate(c, Instant::now()) {
                    Remote::Apply(c) => apply_remote(pc, c).await,
                    Remote::Refuse(why) => debug!("remote candidate not applied: {why}"),
                    Remote::Ignore => {}
                }
            }
            Some(ev) = inputs.events.recv() => match ev {
                PcEvent::LocalCandidate(ev) => {
                    if let Some(c) = local_candidate(&ev, &names)
                        .and_then(|c| machine.local_candidate(c, Instant::now()))
                    {
                        ctx.outbox.candidate(c);
                    }
                }
                PcEvent::State(state) => {
                    info!(%state, "connection state");
                    if link(state).is_some_and(|l| machine.link(l, Instant::now())) {
                        start_media(sending, &ctx.keyframes, &media);
                    }
                }
            },
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

fn start_media(sending: &[Sending], keyframes: &Keyframes, stop: &CancellationToken) {
    for s in sending {
        let video = s.feed.kind() == MediaKind::Video;
        let keyframes = video.then(|| keyframes.clone());
        let writer = RtpWriter::new(Arc::clone(&s.track), s.ssrc, s.payload_type, video);
        let frames = s.feed.subscribe();
        tokio::spawn(send_media(frames, writer, keyframes.clone(), stop.clone()).in_current_span());
        if let Some(keyframes) = keyframes {
            let track = Arc::clone(&s.track);
            tokio::spawn(watch_feedback(track, keyframes, stop.clone()).in_current_span());
        }
    }
}

/// Relays the viewer's PLI/FIR to the encoder, through the shared throttle.
async fn watch_feedback(
    track: Arc<TrackLocalStaticRTP>,
    keyframes: Keyframes,
    stop: CancellationToken,
) {
    loop {
        let ev = tokio::select! {
            _ = stop.cancelled() => return,
            ev = track.poll() => ev,
        };
        match ev {
            Some(TrackLocalEvent::OnRtcpPacket(packets)) => {
                if packets
                    .iter()
                    .any(|p| keyframe::is_keyframe_request(p.as_ref()))
                {
                    debug!("keyframe requested by the viewer");
                    keyframes.request();
                }
            }
            Some(_) => {}
            None => return,
        }
    }
}

/// Copies the shared frames into this session's track. Video (which has `keyframes`)
/// starts on a keyframe, and a viewer that falls behind the broadcast skips ahead to the
/// next keyframe rather than stalling capture or decoding garbage.
async fn send_media(
    mut frames: broadcast::Receiver<Arc<EncodedFrame>>,
    mut writer: RtpWriter,
    keyframes: Option<Keyframes>,
    stop: CancellationToken,
) {
    let mut need_keyframe = keyframes.is_some();
    if let Some(k) = &keyframes {
        k.request();
    }
    loop {
        let frame = tokio::select! {
            _ = stop.cancelled() => return,
            f = frames.recv() => f,
        };
        let frame = match frame {
            Ok(f) => f,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                warn!(
                    skipped = n,
                    "viewer fell behind; skipping to the next keyframe"
                );
                if let Some(k) = &keyframes {
                    need_keyframe = true;
                    k.request();
                }
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if need_keyframe && !frame.keyframe {
            continue;
        }
        need_keyframe = false;
        if let Err(e) = writer.write(&frame).await {
            debug!("write rtp: {e}");
            return;
        }
    }
}

/// Writes frames as RTP under one session's SSRC, sequence numbers and timestamp base.
struct RtpWriter {
    track: Arc<TrackLocalStaticRTP>,
    ssrc: u32,
    payload_type: PayloadType,
    /// Video marks the last packet of each frame.
    marks_frames: bool,
    seq: u16,
    rtp_base: u32,
}

impl RtpWriter {
    fn new(
        track: Arc<TrackLocalStaticRTP>,
        ssrc: u32,
        payload_type: PayloadType,
        marks_frames: bool,
    ) -> Self {
        Self {
            track,
            ssrc,
            payload_type,
            marks_frames,
            seq: rand::random(),
            rtp_base: rand::random(),
        }
    }

    async fn write(&mut self, frame: &EncodedFrame) -> Result<(), webrtc::error::Error> {
        let last = frame.payloads.len().saturating_sub(1);
        for (i, payload) in frame.payloads.iter().enumerate() {
            let packet = rtc::rtp::Packet {
                header: rtc::rtp::header::Header {
                    version: 2,
                    marker: self.marks_frames && i == last,
                    payload_type: self.payload_type,
                    sequence_number: self.seq,
                    timestamp: self.rtp_base.wrapping_add(frame.rtp_time),
                    ssrc: self.ssrc,
                    ..Default::default()
                },
                payload: payload.clone(),
            };
            self.seq = self.seq.wrapping_add(1);
            self.track.write_rtp(packet).await?;
        }
        Ok(())
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
