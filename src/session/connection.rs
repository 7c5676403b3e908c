//! Building one viewer's PeerConnection: the codecs campeer sends, the interceptors, the
//! ICE settings, the UDP port, and one local track per media feed. Its callbacks come back
//! to the session as [`PcEvent`]s.

use std::sync::Arc;
use std::time::Duration;

use rtc::ice::mdns::MulticastDnsMode;
use rtc::interceptor::{Registry, Slot};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::interceptor_registry::{
    configure_nack, configure_rtcp_reports, configure_simulcast_extension_headers,
};
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_OPUS, MIME_TYPE_VP8};
use rtc::rtp_transceiver::PayloadType;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters,
    RTCRtpEncodingParameters, RtpCodecKind,
};
use tokio::sync::mpsc;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCConfigurationBuilder, RTCIceServer, RTCPeerConnectionIceEvent, RTCPeerConnectionState,
    SettingEngineBuilder,
};
use webrtc::rtp_transceiver::{RTCRtpTransceiverDirection, RtpSender};

use super::certificate;
use super::congestion::{SessionCongestion, congestion_control};
use super::flight_socket;
use super::header_ext;
use super::keyframe::{self, KeyframeRequests};
use super::peer::{SessionContext, SessionError, webrtc_err};
use super::read_tap::ReadTap;
use super::resend_gate::{self, GiveUps, ResendGate};
use super::rtx;
use crate::config::WebrtcConfig;
use crate::media::{MediaFeed, MediaKind};

const VP8_PAYLOAD_TYPE: PayloadType = 96;
const OPUS_PAYLOAD_TYPE: PayloadType = 111;

pub(super) enum PcEvent {
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
        // The answer is sendonly (see `send_only`), so a page sends nothing; should one
        // send anyway, unread packets would pile up in the driver's queue as drops.
        tokio::spawn(async move {
            while !matches!(track.poll().await, None | Some(TrackRemoteEvent::OnEnded)) {}
        });
    }
}

/// The codecs and latency header extensions campeer sends (RTX for VP8, taken where the
/// offer has it), and the interceptors: the defaults (NACK, reports), the gate on how
/// often a packet is resent (raising `give_ups`), congestion control publishing to the
/// session's estimate, and the one that surfaces keyframe requests.
fn engine_and_interceptors(
    congestion: &SessionCongestion,
    give_ups: &GiveUps,
) -> Result<(MediaEngine, Registry), SessionError> {
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
    header_ext::register(&mut engine).map_err(webrtc_err("register header extensions"))?;
    // register_default_interceptors less its TWCC recorder, which congestion control
    // brings (a second would replace the first, with a warning per session).
    configure_simulcast_extension_headers(&mut engine).map_err(webrtc_err("interceptors"))?;
    let registry = configure_rtcp_reports(configure_nack(Registry::new(), &mut engine))
        .with(Slot::from(keyframe::SLOT), ReadTap::new(KeyframeRequests))
        .with(
            Slot::from(resend_gate::SLOT),
            ReadTap::new(ResendGate::new(give_ups.clone())),
        );
    let registry = congestion_control(registry, &mut engine, congestion)
        .map_err(webrtc_err("congestion control"))?;
    rtx::register(&mut engine, VP8_PAYLOAD_TYPE).map_err(webrtc_err("register RTX"))?;
    Ok((engine, registry))
}

pub(super) fn vp8_codec(rtcp_feedback: Vec<RTCPFeedback>) -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_VP8.to_owned(),
        clock_rate: 90_000,
        channels: 0,
        sdp_fmtp_line: String::new(),
        rtcp_feedback,
    }
}

pub(super) fn opus_codec() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_OPUS.to_owned(),
        clock_rate: 48_000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
        rtcp_feedback: Vec::new(),
    }
}

pub(super) fn local_track(
    kind: RtpCodecKind,
    codec: RTCRtpCodec,
    ssrc: u32,
) -> Arc<TrackLocalStaticRTP> {
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

/// While ICE checks, how often its timer runs. webrtc-rs sends the first DTLS flight
/// only when some timer fires after ICE connects (rtc 0.21's DTLS handler queues it in
/// `handle_timeout`); with the default 200 ms check interval that wait was 130–190 ms of
/// every connection. Connected, the timer runs at the keep-alive interval instead.
const ICE_CHECK_INTERVAL: Duration = Duration::from_millis(20);
/// Checks per candidate pair before it fails: 70 x 20 ms keeps webrtc-rs's default
/// 1.4 s per pair.
const ICE_MAX_BINDING_REQUESTS: u16 = 70;

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
        .with_ice_connection_attempts(Some(ICE_CHECK_INTERVAL), Some(ICE_MAX_BINDING_REQUESTS))
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
                tracing::warn!(
                    "mDNS off: cannot join multicast group 224.0.0.251: {e}; viewers' `.local` \
                     candidates will not resolve (a default or multicast route enables it)"
                );
            }
            MulticastDnsMode::Disabled
        }
    }
}

/// A connection on `cfg`'s sockets using `ice_servers` (`webrtc.ice_servers` as the
/// session opened them: see `crate::turn`).
pub(super) async fn build_connection(
    cfg: &WebrtcConfig,
    ice_servers: Vec<RTCIceServer>,
    congestion: &SessionCongestion,
    give_ups: &GiveUps,
    events: mpsc::UnboundedSender<PcEvent>,
) -> Result<impl PeerConnection, SessionError> {
    let ports: Vec<u16> = match cfg.udp_port_range {
        Some([first, last]) => (first..=last).collect(),
        None => vec![0],
    };
    let mdns = multicast_dns_mode();
    let certificate = certificate::dtls_certificate()?;
    let mut last_err = None;
    for port in ports {
        let (engine, registry) = engine_and_interceptors(congestion, give_ups)?;
        let built = PeerConnectionBuilder::new()
            .with_configuration(
                RTCConfigurationBuilder::new()
                    .with_ice_servers(ice_servers.clone())
                    .with_certificates(vec![certificate.clone()])
                    .build(),
            )
            .with_setting_engine(setting_engine(mdns))
            .with_media_engine(engine)
            .with_interceptor_registry(registry)
            .with_handler(Arc::new(Events { tx: events.clone() }))
            .with_udp_addrs(vec![std::net::SocketAddr::new(cfg.bind, port)])
            .with_runtime(flight_socket::runtime())
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
pub(super) struct Track {
    pub(super) track: Arc<TrackLocalStaticRTP>,
    pub(super) sender: Arc<dyn RtpSender>,
    pub(super) feed: MediaFeed,
    pub(super) ssrc: u32,
}

pub(super) async fn add_tracks(
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

/// Turns every transceiver the offer made into one that only sends: campeer consumes
/// no media, so the answer says `sendonly` where it sends and `inactive` where it does
/// not (an m-line it has no feed for). webrtc-rs would otherwise answer the reference
/// page's `sendrecv` offer with `sendrecv`, and the page's camera and microphone would
/// flow into the board for nothing. Called between applying the offer and answering.
pub(super) async fn send_only(pc: &impl PeerConnection) -> Result<(), SessionError> {
    for transceiver in pc.get_transceivers().await {
        let sends = transceiver
            .sender()
            .await
            .map_err(webrtc_err("transceiver sender"))?
            .is_some();
        let direction = if sends {
            RTCRtpTransceiverDirection::Sendonly
        } else {
            RTCRtpTransceiverDirection::Inactive
        };
        transceiver
            .set_direction(direction)
            .await
            .map_err(webrtc_err("transceiver direction"))?;
    }
    Ok(())
}
