//! One viewer: its PeerConnection, its two local tracks, and the tasks that copy the
//! shared encoded frames into them.
//!
//! A session is a cheap view onto the media pipeline (the webrtcsink lesson): it never
//! encodes; it subscribes to the pipeline's [`MediaFeed`]s and writes each frame's
//! ready-made RTP payloads under its own SSRC, sequence numbers and payload type.
//! webrtc 0.21 binds a local track to one sender only, so each session owns its tracks.

use std::sync::Arc;
use std::time::Duration;

use rtc::ice::mdns::MulticastDnsMode;
use rtc::interceptor::{Registry, Slot};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_OPUS, MIME_TYPE_VP8};
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

use super::keyframe::{self, KeyframeRequests};
use crate::config::WebrtcConfig;
use crate::media::{EncodedFrame, MediaFeed, MediaKind};
use crate::signaling::Outbox;
use crate::signaling::protocol::{
    Candidate, SessionId, sdp_attribute, sdp_offers_codec, tag_answer,
};

const VP8_PAYLOAD_TYPE: u8 = 96;
const OPUS_PAYLOAD_TYPE: u8 = 111;
/// A viewer that has not connected by then has gone away (or cannot reach us).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

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
    #[error("did not connect within {0:?}")]
    ConnectTimeout(Duration),
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
    ended: mpsc::Sender<SessionId>,
    parent: &CancellationToken,
) -> SessionHandle {
    let (tx, rx) = mpsc::channel(64);
    for c in early {
        // Capacity 64 is above the registry's early-candidate limit of 32.
        let _ = tx.try_send(c);
    }
    let cancel = parent.child_token();
    let span = info_span!("session", ufrag = %id);
    let task = tokio::spawn({
        let cancel = cancel.clone();
        async move {
            let started = tokio::time::Instant::now();
            match run(&id, offer, rx, ctx, cancel).await {
                Ok(()) => info!(lasted = ?started.elapsed(), "session ended"),
                Err(e) => warn!(lasted = ?started.elapsed(), "session ended: {e}"),
            }
            let _ = ended.send(id).await;
        }
        .instrument(span)
    });
    SessionHandle {
        candidates: tx,
        cancel,
        task,
    }
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

/// The media this session sends: one track per feed.
struct Outgoing {
    track: Arc<TrackLocalStaticRTP>,
    sender: Arc<dyn RtpSender>,
    feed: MediaFeed,
    ssrc: u32,
}

async fn run(
    id: &SessionId,
    offer: String,
    mut remote_candidates: mpsc::Receiver<Candidate>,
    ctx: SessionContext,
    cancel: CancellationToken,
) -> Result<(), SessionError> {
    let received = tokio::time::Instant::now();
    // Refused before any socket is bound: a camera that cannot send video has no answer.
    if !sdp_offers_codec(&offer, "VP8") {
        return Err(SessionError::NoCodec("VP8"));
    }
    let ice_servers = ctx
        .webrtc
        .ice_servers
        .iter()
        .map(|s| RTCIceServer {
            urls: s.urls.clone(),
            username: s.username.clone().unwrap_or_default(),
            credential: s.credential.clone().unwrap_or_default(),
        })
        .collect();
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let pc = build_connection(&ctx.webrtc, ice_servers, events_tx).await?;

    let mut outgoing = Vec::new();
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
        outgoing.push(Outgoing {
            track,
            sender,
            feed: feed.clone(),
            ssrc,
        });
    }

    let result = answer_and_serve(
        id,
        received,
        &pc,
        offer,
        &mut remote_candidates,
        &mut events,
        &ctx,
        &outgoing,
        &cancel,
    )
    .await;
    if let Err(e) = pc.close().await {
        debug!("close: {e}");
    }
    result
}

/// A viewer that closes its page sends nothing more; these bound how long its session
/// lingers (consent checks stop: disconnected after 4 s, failed 6 s later). mDNS
/// resolution lets a watch-only browser's `.local` candidates be used directly.
fn setting_engine(mdns: MulticastDnsMode) -> webrtc::peer_connection::SettingEngine {
    SettingEngineBuilder::new()
        .with_ice_timeouts(
            Some(Duration::from_secs(4)),
            Some(Duration::from_secs(6)),
            Some(Duration::from_secs(1)),
        )
        .with_multicast_dns_mode(mdns)
        .build()
}

/// mDNS if this host can join its multicast group now, else none. Without a route for
/// 224.0.0.251 (no default route: a board cabled straight to a laptop, an isolated VLAN)
/// webrtc-rs fails the whole connection on that join; losing `.local` resolution is the
/// lesser harm. Probed per connection, as the network may come up after campeer does;
/// warned once per process.
fn multicast_dns_mode() -> MulticastDnsMode {
    use std::sync::atomic::{AtomicBool, Ordering};
    static WARNED: AtomicBool = AtomicBool::new(false);
    match rtc::mdns::MulticastSocket::new().into_std() {
        Ok(_) => MulticastDnsMode::QueryOnly,
        Err(e) => {
            if !WARNED.swap(true, Ordering::Relaxed) {
                warn!(
                    "mDNS off: cannot join multicast group 224.0.0.251: {e}; viewers' `.local` \
                     candidates will not resolve (a default or multicast route enables it)"
                );
            }
            MulticastDnsMode::Disabled
        }
    }
}

async fn build_connection(
    cfg: &WebrtcConfig,
    ice_servers: Vec<RTCIceServer>,
    events: mpsc::UnboundedSender<PcEvent>,
) -> Result<impl PeerConnection, SessionError> {
    let ports: Vec<u16> = match cfg.udp_port_range {
        Some([first, last]) => (first..=last).collect(),
        None => vec![0],
    };
    let mdns = multicast_dns_mode();
    let mut last_err = None;
    for port in ports {
        let (engine, registry) = engine_and_interceptors()?;
        let built = PeerConnectionBuilder::new()
            .with_configuration(
                RTCConfigurationBuilder::new()
                    .with_ice_servers(ice_servers.clone())
                    .build(),
            )
            .with_setting_engine(setting_engine(mdns))
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

#[allow(clippy::too_many_arguments)]
async fn answer_and_serve(
    id: &SessionId,
    received: tokio::time::Instant,
    pc: &impl PeerConnection,
    offer: String,
    remote_candidates: &mut mpsc::Receiver<Candidate>,
    events: &mut mpsc::UnboundedReceiver<PcEvent>,
    ctx: &SessionContext,
    outgoing: &[Outgoing],
    cancel: &CancellationToken,
) -> Result<(), SessionError> {
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

    let mut writers = Vec::new();
    let mut payload_types = Vec::new();
    for out in outgoing {
        let params = out
            .sender
            .get_parameters()
            .await
            .map_err(webrtc_err("sender parameters"))?;
        match params.rtp_parameters.codecs.first() {
            Some(codec) => payload_types.push(codec.payload_type),
            None if out.feed.kind() == MediaKind::Video => {
                return Err(SessionError::NoCodec("VP8"));
            }
            None => {
                warn!("the offer takes no Opus audio; sending video only");
                payload_types.push(0);
            }
        }
    }

    // The reference page applies candidates the moment they arrive and fails without a
    // remote description, so the answer goes out before any candidate does.
    ctx.outbox.answer(&tag_answer(&local.sdp, id));
    info!(after = ?received.elapsed(), "answer sent");
    let local_ufrag = sdp_attribute(&local.sdp, "ice-ufrag").map(str::to_owned);
    let first_mid = sdp_attribute(&local.sdp, "mid").map(str::to_owned);

    let deadline = tokio::time::sleep(CONNECT_TIMEOUT);
    tokio::pin!(deadline);
    let mut connected = false;
    let media = cancel.child_token();
    let _stop_media = media.clone().drop_guard();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            _ = &mut deadline, if !connected => return Err(SessionError::ConnectTimeout(CONNECT_TIMEOUT)),
            Some(c) = remote_candidates.recv() => {
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
            Some(ev) = events.recv() => match ev {
                PcEvent::LocalCandidate(ev) => match ev.candidate.to_json() {
                    Ok(init) => ctx.outbox.candidate(&Candidate {
                        candidate: init.candidate,
                        sdp_mid: first_mid.clone(),
                        sdp_mline_index: Some(0),
                        username_fragment: local_ufrag.clone(),
                    }),
                    Err(e) => warn!("local candidate not sendable: {e}"),
                },
                PcEvent::State(state) => {
                    info!(%state, "connection state");
                    match state {
                        RTCPeerConnectionState::Connected if !connected => {
                            connected = true;
                            for (out, &pt) in outgoing.iter().zip(&payload_types) {
                                if pt != 0 {
                                    writers.push(tokio::spawn(send_media(out.feed.clone(), Arc::clone(&out.track), out.ssrc, pt, media.clone()).in_current_span()));
                                }
                                if out.feed.kind() == MediaKind::Video {
                                    tokio::spawn(watch_feedback(Arc::clone(&out.track), out.feed.clone(), media.clone()).in_current_span());
                                }
                            }
                        }
                        RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed => return Ok(()),
                        _ => {}
                    }
                }
            },
        }
    }
}

/// Relays the viewer's PLI/FIR to the encoder; the pipeline coalesces them.
async fn watch_feedback(track: Arc<TrackLocalStaticRTP>, feed: MediaFeed, stop: CancellationToken) {
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
                    feed.request_keyframe();
                }
            }
            Some(_) => {}
            None => return,
        }
    }
}

/// Copies the shared frames into this session's track. Video starts on a keyframe, and a
/// viewer that falls behind the broadcast skips ahead to the next keyframe rather than
/// stalling capture or decoding garbage.
async fn send_media(
    feed: MediaFeed,
    track: Arc<TrackLocalStaticRTP>,
    ssrc: u32,
    payload_type: u8,
    stop: CancellationToken,
) {
    let mut frames = feed.subscribe();
    let video = feed.kind() == MediaKind::Video;
    let mut need_keyframe = video;
    if video {
        feed.request_keyframe();
    }
    let mut seq: u16 = rand::random();
    let rtp_base: u32 = rand::random();
    loop {
        let frame = tokio::select! {
            _ = stop.cancelled() => return,
            f = frames.recv() => f,
        };
        let frame: Arc<EncodedFrame> = match frame {
            Ok(f) => f,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                warn!(
                    skipped = n,
                    "viewer fell behind; skipping to the next keyframe"
                );
                if video {
                    need_keyframe = true;
                    feed.request_keyframe();
                }
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if need_keyframe {
            if !frame.keyframe {
                continue;
            }
            need_keyframe = false;
        }
        let last = frame.payloads.len().saturating_sub(1);
        for (i, payload) in frame.payloads.iter().enumerate() {
            let packet = rtc::rtp::Packet {
                header: rtc::rtp::header::Header {
                    version: 2,
                    marker: video && i == last,
                    payload_type,
                    sequence_number: seq,
                    timestamp: rtp_base.wrapping_add(frame.rtp_time),
                    ssrc,
                    ..Default::default()
                },
                payload: payload.clone(),
            };
            seq = seq.wrapping_add(1);
            if let Err(e) = track.write_rtp(packet).await {
                debug!("write rtp: {e}");
                return;
            }
        }
    }
}
