//! A viewer written with webrtc-rs, playing the browser's part of PROTOCOL.md: it joins the
//! room (over the real relay, or straight to campeer's in-process signaller), sends an
//! offer, trickles candidates, then decodes the VP8 it receives with libvpx and reads the
//! test pattern's frame counter back.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use futures_util::FutureExt;
use rtc::interceptor::{NackGeneratorBuilder, Registry, Slot};
use rtc::media::Sample;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::transport::RTCIceCandidateType;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp::header::Extension;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters,
    RTCRtpEncodingParameters, RTCRtpHeaderExtensionCapability, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use rust_socketio::Payload;
use rust_socketio::asynchronous::{Client, ClientBuilder};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use webrtc::media_stream::Track;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCConfigurationBuilder, RTCIceCandidateInit, RTCIceServer, RTCPeerConnectionIceEvent,
    RTCPeerConnectionState, RTCSessionDescription, RTCStatsReportEntry, StatsSelector,
    register_default_interceptors,
};

use super::jitter::FrameAssembler;
use super::rtp_log::{self, RtpLog, RtpRecorder};
use campeer::media::I420Frame;
use campeer::media::pace::unix_ms;
use campeer::media::video::test_pattern::{TestPattern, read_counter, read_stamp};
use campeer::media::video::vp8::{Vp8Decoder, Vp8Encoder, Vp8Settings};
use campeer::session::header_ext::{ABS_CAPTURE_TIME_URI, PLAYOUT_DELAY_URI};
use campeer::signaling::direct::RoomSide;
use campeer::signaling::protocol::{self, Outgoing, RoomEvent};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// A watch-only page.
    RecvOnly,
    /// The reference page: it sends its own camera and microphone too.
    SendRecv,
}

/// What a viewer's offer has for repairing lost packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retransmission {
    /// NACK, and RTX (RFC 4588) for video: what Chromium and webrtc-rs offer by default.
    Rtx,
    /// NACK alone: resends come on the media SSRC.
    Plain,
}

#[derive(Debug)]
pub enum Seen {
    Connected,
    Video(VideoFrame),
    /// One decoded 20 ms Opus packet.
    Audio(Vec<i16>),
    Failed,
    /// campeer broke PROTOCOL.md in a way the reference page would trip over.
    Violation(String),
}

#[derive(Debug, Clone)]
pub struct VideoFrame {
    pub counter: Option<u32>,
    /// The test pattern's capture time, ms since the Unix epoch.
    pub captured_unix_ms: Option<u64>,
    /// Mean luma of the picture: tells "no signal" grey, and frames apart.
    pub mean_luma: u32,
    pub rtp_time: u32,
    pub keyframe: bool,
    pub width: u32,
    pub height: u32,
    pub at: Instant,
}

/// The RTP header extensions on one kind of media received: how many packets came, how
/// many carried extensions, and the last such packet's, with when it arrived.
#[derive(Debug, Clone, Default)]
pub struct ExtensionsSeen {
    pub packets: u64,
    pub with_extensions: u64,
    pub last: Vec<Extension>,
    pub last_at: Option<SystemTime>,
}

impl ExtensionsSeen {
    fn record(&mut self, header: &rtc::rtp::header::Header) {
        self.packets += 1;
        if header.extension && !header.extensions.is_empty() {
            self.with_extensions += 1;
            self.last = header.extensions.clone();
            self.last_at = Some(SystemTime::now());
        }
    }

    /// The last value of extension `id`.
    pub fn value(&self, id: u8) -> Option<&[u8]> {
        self.last
            .iter()
            .find(|e| e.id == id)
            .map(|e| e.payload.as_ref())
    }
}

/// Per kind, what [`ExtensionsSeen`] counts.
#[derive(Debug, Clone, Default)]
pub struct Received {
    pub video: ExtensionsSeen,
    pub audio: ExtensionsSeen,
}

type SharedReceived = Arc<Mutex<Received>>;

/// The id an SDP's `a=extmap` gives `uri` (the first one: a BUNDLE uses one id per URI).
pub fn extmap_id(sdp: &str, uri: &str) -> Option<u8> {
    sdp.lines().find_map(|l| {
        let (id, rest) = l.strip_prefix("a=extmap:")?.split_once(' ')?;
        let id = id.split('/').next()?;
        (rest.split_whitespace().next()? == uri).then(|| id.parse().ok())?
    })
}

struct Handler {
    seen: mpsc::UnboundedSender<Seen>,
    candidates: mpsc::UnboundedSender<RTCPeerConnectionIceEvent>,
    video_track: Arc<Mutex<Option<Arc<dyn TrackRemote>>>>,
    received: SharedReceived,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        let _ = self.candidates.send(event);
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        match state {
            RTCPeerConnectionState::Connected => drop(self.seen.send(Seen::Connected)),
            RTCPeerConnectionState::Failed => drop(self.seen.send(Seen::Failed)),
            _ => {}
        }
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let seen = self.seen.clone();
        let received = Arc::clone(&self.received);
        match track.kind().await {
            RtpCodecKind::Video => {
                *self.video_track.lock().unwrap() = Some(Arc::clone(&track));
                tokio::spawn(decode_video(track, seen, received));
            }
            _ => {
                tokio::spawn(decode_audio(track, seen, received));
            }
        }
    }
}

/// Chrome's `NackRequester::kMaxNackRetries`.
const MAX_NACKS_PER_PACKET: u16 = 10;

/// Decodes the VP8 that arrives, whole frames in order (see `jitter`), and reads the
/// counter. A frame lost for good, or one that fails to decode, is followed by a PLI.
async fn decode_video(
    track: Arc<dyn TrackRemote>,
    seen: mpsc::UnboundedSender<Seen>,
    received: SharedReceived,
) {
    let mut frames = FrameAssembler::default();
    let mut decoder = Vp8Decoder::new().expect("libvpx VP8 decoder");
    while let Some(ev) = track.poll().await {
        let TrackRemoteEvent::OnRtpPacket(pkt) = ev else {
            continue;
        };
        let h = &pkt.header;
        received.lock().unwrap().video.record(h);
        let now = Instant::now();
        frames.push(h.sequence_number, h.timestamp, h.marker, &pkt.payload, now);
        while let Some(frame) = frames.pop() {
            match decoder.decode(&frame.data) {
                Ok(Some(img)) => {
                    let counter = read_counter(&img.y, img.stride, img.width, img.height);
                    let captured_unix_ms = read_stamp(&img.y, img.stride, img.width, img.height);
                    // Every 4th pixel of every 4th row: as good a mean, at a sixteenth
                    // of the work (this runs unoptimized, and under emulation in the VM).
                    let (mut sum, mut n) = (0u64, 0u64);
                    for row in img
                        .y
                        .chunks(img.stride)
                        .take(img.height as usize)
                        .step_by(4)
                    {
                        for &v in row[..img.width as usize].iter().step_by(4) {
                            sum += u64::from(v);
                            n += 1;
                        }
                    }
                    let _ = seen.send(Seen::Video(VideoFrame {
                        counter,
                        captured_unix_ms,
                        mean_luma: (sum / n.max(1)) as u32,
                        rtp_time: frame.rtp_time,
                        keyframe: frame.keyframe,
                        width: img.width,
                        height: img.height,
                        at: now,
                    }));
                }
                Ok(None) => {}
                Err(e) => {
                    eprintln!("[viewer] VP8 frame failed to decode: {e}");
                    frames.resync();
                }
            }
        }
        if frames.gave_up(now) {
            eprintln!("[viewer] a VP8 frame was lost; asking for a keyframe");
            send_pli(track.as_ref()).await;
        }
    }
}

/// Where the viewer's media goes out: the address its socket binds, and the STUN/TURN
/// servers its page would name.
#[derive(Clone)]
pub struct ViewerNet {
    pub addr: String,
    pub ice_servers: Vec<RTCIceServer>,
}

impl Default for ViewerNet {
    /// Loopback, unless `CAMPEER_VIEWER_ADDR` names an address a campeer in a VM can reach
    /// (`scripts/cross-aarch64` does); no ICE servers, as on the reference page.
    fn default() -> Self {
        Self {
            addr: std::env::var("CAMPEER_VIEWER_ADDR").unwrap_or_else(|_| "127.0.0.1".into()),
            ice_servers: Vec::new(),
        }
    }
}

/// What the ICE pair the call settled on is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SelectedPair {
    pub local: RTCIceCandidateType,
    /// None for a peer-reflexive candidate (learned from a check that came before the
    /// candidate did): webrtc-rs keeps no stats of those.
    pub remote: Option<RTCIceCandidateType>,
}

/// The video received so far, as counted by the viewer's RTP stack.
#[derive(Debug, Clone, Copy, Default)]
pub struct VideoPackets {
    pub received: u64,
    pub lost: i64,
    /// NACKs the viewer sent: losses that a retransmission may have repaired.
    pub nacks: u64,
}

async fn send_pli(track: &dyn TrackRemote) {
    let ssrc = *track.ssrcs().await.first().expect("video ssrc");
    track
        .write_rtcp(vec![Box::new(PictureLossIndication {
            sender_ssrc: 0,
            media_ssrc: ssrc,
        })])
        .await
        .expect("PLI sent");
}

async fn decode_audio(
    track: Arc<dyn TrackRemote>,
    seen: mpsc::UnboundedSender<Seen>,
    received: SharedReceived,
) {
    let mut decoder = opus::Decoder::new(48_000, opus::Channels::Mono).expect("libopus decoder");
    let mut pcm = vec![0i16; 5760];
    while let Some(ev) = track.poll().await {
        let TrackRemoteEvent::OnRtpPacket(pkt) = ev else {
            continue;
        };
        received.lock().unwrap().audio.record(&pkt.header);
        if let Ok(n) = decoder.decode(&pkt.payload, &mut pcm, false) {
            let _ = seen.send(Seen::Audio(pcm[..n].to_vec()));
        }
    }
}

pub struct Viewer {
    pc: Arc<dyn PeerConnection>,
    socket: Option<Client>,
    pub seen: mpsc::UnboundedReceiver<Seen>,
    video_track: Arc<Mutex<Option<Arc<dyn TrackRemote>>>>,
    received: SharedReceived,
    rtp_log: RtpLog,
    answer: Arc<Mutex<Option<String>>>,
    pub ufrag: String,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Viewer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Viewer {
    /// Joins `room` on the relay at `url` and sends an offer. Returns once the offer is
    /// out; watch `seen` for what arrives.
    pub async fn call(url: &str, room: Value, direction: Direction) -> Viewer {
        Self::call_on(url, room, direction, ViewerNet::default()).await
    }

    /// [`Viewer::call`] with its media on `net`.
    pub async fn call_on(url: &str, room: Value, direction: Direction, net: ViewerNet) -> Viewer {
        Self::call_over(RoomLink::relay(url, room).await, direction, net).await
    }

    /// As [`Viewer::call_on`], through any way to the room (e.g. [`RoomLink::direct`]).
    pub async fn call_over(link: RoomLink, direction: Direction, net: ViewerNet) -> Viewer {
        Self::call_offering(link, direction, net, Retransmission::Rtx).await
    }

    /// As [`Viewer::call_over`], its offer with `retransmission`.
    pub async fn call_offering(
        link: RoomLink,
        direction: Direction,
        net: ViewerNet,
        retransmission: Retransmission,
    ) -> Viewer {
        let RoomLink {
            say,
            hear: mut from_room,
            socket,
            task: link_task,
        } = link;
        let (seen_tx, seen) = mpsc::unbounded_channel();
        let violations = seen_tx.clone();
        let (cand_tx, mut local_candidates) = mpsc::unbounded_channel();
        let video_track = Arc::default();
        let mut engine = media_engine(retransmission);
        // As Chromium offers them (abs-capture-time once the page enables it).
        let ext = |uri: &str| RTCRtpHeaderExtensionCapability { uri: uri.into() };
        for (uri, kind) in [
            (PLAYOUT_DELAY_URI, RtpCodecKind::Video),
            (ABS_CAPTURE_TIME_URI, RtpCodecKind::Video),
            (ABS_CAPTURE_TIME_URI, RtpCodecKind::Audio),
        ] {
            engine
                .register_header_extension(ext(uri), kind, None)
                .expect("header extension");
        }
        let received = SharedReceived::default();
        let answer = Arc::new(Mutex::new(None));
        let registry =
            register_default_interceptors(Registry::new(), &mut engine).expect("interceptors");
        // NACK a lost packet at most this many times, as Chrome does (`kMaxNackRetries`):
        // webrtc-rs's default NACKs it every 100 ms for as long as it is in its 512-packet
        // log, which on a thin link is tens of seconds of resends crowding out new frames.
        let registry = registry.with(
            Slot::NackGenerator,
            NackGeneratorBuilder::new()
                .with_max_nacks_per_packet(MAX_NACKS_PER_PACKET)
                .build(),
        );
        let rtp_log = RtpLog::default();
        let registry = registry.with(
            Slot::from(rtp_log::SLOT),
            RtpRecorder::interceptor(rtp_log.clone()),
        );
        let pc = PeerConnectionBuilder::new()
            .with_configuration(
                RTCConfigurationBuilder::new()
                    .with_ice_servers(net.ice_servers)
                    .build(),
            )
            .with_media_engine(engine)
            .with_interceptor_registry(registry)
            .with_handler(Arc::new(Handler {
                seen: seen_tx,
                candidates: cand_tx,
                video_track: Arc::clone(&video_track),
                received: Arc::clone(&received),
            }))
            .with_udp_addrs(vec![format!("{}:0", net.addr)])
            .build()
            .await
            .expect("viewer peer connection");

        let mut tasks: Vec<_> = link_task.into_iter().collect();
        match direction {
            Direction::RecvOnly => {
                for kind in [RtpCodecKind::Audio, RtpCodecKind::Video] {
                    pc.add_transceiver_from_kind(
                        kind,
                        Some(RTCRtpTransceiverInit {
                            direction: RTCRtpTransceiverDirection::Recvonly,
                            ..Default::default()
                        }),
                    )
                    .await
                    .expect("recvonly transceiver");
                }
            }
            Direction::SendRecv => {
                let video = sample_track(RtpCodecKind::Video, "video/VP8", 90_000, 0);
                let audio = sample_track(RtpCodecKind::Audio, "audio/opus", 48_000, 2);
                for t in [&audio, &video] {
                    pc.add_track(Arc::clone(t) as Arc<dyn TrackLocal>)
                        .await
                        .expect("viewer's own track");
                }
                tasks.push(tokio::spawn(send_own_media(video, audio)));
            }
        }

        let offer = pc.create_offer(None).await.expect("offer");
        pc.set_local_description(offer.clone())
            .await
            .expect("set offer");
        let ufrag = campeer::sdp::attribute(&offer.sdp, "ice-ufrag")
            .expect("offer has a ufrag")
            .to_owned();
        // Proven as the page proves its offers: campeer answers no other.
        let proven = campeer::access::proof::with_proof(&test_token(), &offer.sdp)
            .expect("the offer has a ufrag and one fingerprint");
        say.send(Says::Offer(proven))
            .expect("the room link is open");

        // Trickle both ways in the background for the life of the call.
        let pc: Arc<dyn PeerConnection> = Arc::new(pc);
        let pc_ref = Arc::clone(&pc);
        let my_ufrag = ufrag.clone();
        let applied = Arc::clone(&answer);
        tasks.push(tokio::spawn(async move {
            let mut remote_ufrag: Option<String> = None;
            let mut early: Vec<RTCIceCandidateInit> = Vec::new();
            loop {
                tokio::select! {
                    Some(ev) = local_candidates.recv() => {
                        let Ok(init) = ev.candidate.to_json() else { continue };
                        let c = json!({ "candidate": init.candidate, "sdpMid": "0",
                            "sdpMLineIndex": 0, "usernameFragment": my_ufrag });
                        let _ = say.send(Says::Candidate(c));
                    }
                    Some((is_answer, msg)) = from_room.recv() => {
                        // Others in the room may send anything, and every viewer sees every
                        // answer and candidate: keep what names this call.
                        if is_answer {
                            let sdp = msg["answer"]["sdp"].as_str().unwrap_or_default().to_owned();
                            let for_me = campeer::sdp::attribute(&sdp, "x-campeer-answers") == Some(my_ufrag.as_str());
                            if remote_ufrag.is_some() || !for_me {
                                continue;
                            }
                            if let Err(e) = campeer::access::proof::verify(&test_token(), &sdp) {
                                let _ = violations.send(Seen::Violation(format!("an answer without campeer's proof: {e}")));
                                continue;
                            }
                            let theirs = campeer::sdp::attribute(&sdp, "ice-ufrag").map(str::to_owned);
                            if let Ok(answer) = RTCSessionDescription::answer(sdp.clone())
                                && pc_ref.set_remote_description(answer).await.is_ok()
                            {
                                *applied.lock().unwrap() = Some(sdp);
                                remote_ufrag = theirs;
                                for init in early.drain(..) {
                                    if init.username_fragment == remote_ufrag {
                                        // The reference page calls addIceCandidate at once,
                                        // which fails without a remote description.
                                        let _ = violations.send(Seen::Violation("a candidate arrived before its answer".into()));
                                    }
                                }
                            }
                            continue;
                        }
                        let Ok(init) = serde_json::from_value::<RTCIceCandidateInit>(msg["candidate"].clone()) else {
                            continue;
                        };
                        match &remote_ufrag {
                            None => early.push(init),
                            Some(r) if init.username_fragment.as_ref() == Some(r) => {
                                let _ = pc_ref.add_ice_candidate(init).await;
                            }
                            Some(_) => {}
                        }
                    }
                    else => return,
                }
            }
        }));
        Viewer {
            pc,
            socket,
            seen,
            video_track,
            received,
            rtp_log,
            answer,
            ufrag,
            tasks,
        }
    }

    /// Calls campeer in room 1 on the relay at `url`; returns once the call is connected.
    pub async fn connect(url: &str, direction: Direction) -> Viewer {
        Self::connect_on(url, direction, ViewerNet::default()).await
    }

    /// [`Viewer::connect`] with its media on `net`.
    pub async fn connect_on(url: &str, direction: Direction, net: ViewerNet) -> Viewer {
        let mut viewer = Self::call_on(url, json!(1), direction, net).await;
        viewer.connected(super::CONNECT_DEADLINE).await;
        viewer
    }

    /// The candidate pair the connection uses now, if it has chosen one.
    pub async fn selected_pair(&self) -> Option<SelectedPair> {
        let stats = self.pc.get_stats(Instant::now(), StatsSelector::None).await;
        let pair_id = &stats.transport()?.selected_candidate_pair_id;
        let Some(RTCStatsReportEntry::IceCandidatePair(pair)) = stats.get(pair_id) else {
            return None;
        };
        // webrtc-rs 0.21 files candidates under their id with a side's prefix.
        let kind = |side: &str, id: &str| match stats.get(&format!("RTC{side}IceCandidate_{id}")) {
            Some(
                RTCStatsReportEntry::LocalCandidate(c) | RTCStatsReportEntry::RemoteCandidate(c),
            ) => Some(c.candidate_type),
            _ => None,
        };
        Some(SelectedPair {
            local: kind("Local", &pair.local_candidate_id)?,
            remote: kind("Remote", &pair.remote_candidate_id),
        })
    }

    /// The answer this viewer applied, once it has.
    pub fn answer(&self) -> Option<String> {
        self.answer.lock().unwrap().clone()
    }

    /// The RTP that came off the wire so far, RTX not yet unwrapped.
    pub fn rtp_log(&self) -> &RtpLog {
        &self.rtp_log
    }

    /// The header extensions received so far.
    pub fn received(&self) -> Received {
        self.received.lock().unwrap().clone()
    }

    /// Video packets received and lost so far.
    pub async fn video_packets(&self) -> VideoPackets {
        let stats = self.pc.get_stats(Instant::now(), StatsSelector::None).await;
        stats
            .inbound_rtp_streams()
            .find(|s| s.received_rtp_stream_stats.rtp_stream_stats.kind == RtpCodecKind::Video)
            .map(|s| VideoPackets {
                received: s.received_rtp_stream_stats.packets_received,
                lost: s.received_rtp_stream_stats.packets_lost,
                nacks: u64::from(s.nack_count),
            })
            .unwrap_or_default()
    }

    /// Waits for the next event matching `pick`, up to `timeout`.
    pub async fn expect<T>(
        &mut self,
        timeout: Duration,
        mut pick: impl FnMut(Seen) -> Option<T>,
    ) -> T {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let ev = tokio::time::timeout_at(deadline, self.seen.recv())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "viewer {} saw nothing matching within {timeout:?}",
                        self.ufrag
                    )
                })
                .expect("viewer event stream open");
            match ev {
                Seen::Failed => panic!("viewer {}: connection failed", self.ufrag),
                Seen::Violation(what) => panic!("viewer {}: {what}", self.ufrag),
                _ => {}
            }
            if let Some(t) = pick(ev) {
                return t;
            }
        }
    }

    pub async fn connected(&mut self, timeout: Duration) {
        self.expect(timeout, |s| matches!(s, Seen::Connected).then_some(()))
            .await
    }

    pub async fn next_video(&mut self, timeout: Duration) -> VideoFrame {
        self.expect(timeout, |s| match s {
            Seen::Video(f) => Some(f),
            _ => None,
        })
        .await
    }

    /// Waits for `n` decoded frames whose counters rise, each within `timeout`; returns
    /// the first.
    pub async fn plays(&mut self, n: usize, timeout: Duration) -> VideoFrame {
        let first = self.next_video(timeout).await;
        let mut last = first.counter.expect("the pattern's counter reads back");
        for _ in 1..n {
            let next = self.next_counter(timeout).await;
            assert!(next > last, "counter went from {last} to {next}");
            last = next;
        }
        first
    }

    /// The test pattern's frame counter read back from the next frame.
    pub async fn next_counter(&mut self, timeout: Duration) -> u32 {
        self.next_video(timeout)
            .await
            .counter
            .expect("the pattern's counter reads back")
    }

    pub async fn next_audio(&mut self, timeout: Duration) -> Vec<i16> {
        self.expect(timeout, |s| match s {
            Seen::Audio(a) => Some(a),
            _ => None,
        })
        .await
    }

    /// The frequency of the next second of audio decoded, its first 200 ms left out (the
    /// decoder settling, or the end of what came before); `timeout` is per packet.
    pub async fn tone_hz(&mut self, timeout: Duration) -> f64 {
        let mut pcm = Vec::new();
        while pcm.len() < 48_000 {
            pcm.extend(self.next_audio(timeout).await);
        }
        campeer::media::audio::tone::estimate_frequency(&pcm[9_600..])
    }

    /// Asks campeer for a keyframe the way a browser does, with an RTCP PLI.
    pub async fn send_pli(&self) {
        let track = self
            .video_track
            .lock()
            .unwrap()
            .clone()
            .expect("video track arrived");
        send_pli(track.as_ref()).await;
    }

    /// Asks for a keyframe with a PLI and waits up to `timeout` for one, passing over what
    /// was decoded before; returns it with the time from the PLI to its arrival.
    pub async fn keyframe_after_pli(&mut self, timeout: Duration) -> (VideoFrame, Duration) {
        while self.seen.try_recv().is_ok() {}
        let asked = Instant::now();
        self.send_pli().await;
        let key = self
            .expect(timeout, |s| match s {
                Seen::Video(f) if f.keyframe => Some(f),
                _ => None,
            })
            .await;
        let took = key.at.saturating_duration_since(asked);
        (key, took)
    }

    /// Closes the peer connection, which sends DTLS `close_notify`, and stays in the room:
    /// what a page does that calls `pc.close()`.
    pub async fn close_connection(&self) {
        let _ = self.pc.close().await;
    }

    pub async fn hang_up(self) {
        for t in &self.tasks {
            t.abort();
        }
        self.close_connection().await;
        if let Some(socket) = &self.socket {
            let _ = socket.disconnect().await;
        }
    }
}

/// What a viewer says in the room.
pub enum Says {
    Offer(String),
    /// A candidate as `RTCIceCandidate.toJSON()` writes it.
    Candidate(Value),
}

/// A viewer's way to the room: the relay over Socket.IO, or campeer's in-process signaller.
pub struct RoomLink {
    say: mpsc::UnboundedSender<Says>,
    /// What the room says, in order: `(is_answer, payload)` as the relay delivers it.
    hear: mpsc::UnboundedReceiver<(bool, Value)>,
    socket: Option<Client>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl RoomLink {
    /// Joins `room` on the relay at `url`.
    pub async fn relay(url: &str, room: Value) -> RoomLink {
        Self::relay_trusting(url, room, None).await
    }

    /// [`RoomLink::relay`] to an https relay whose certificate `tls` trusts.
    pub async fn relay_trusting(
        url: &str,
        room: Value,
        tls: Option<native_tls::TlsConnector>,
    ) -> RoomLink {
        // One channel for both, so they are handled in the order the relay sent them.
        let (answer_tx, hear) = mpsc::unbounded_channel::<(bool, Value)>();
        let rcand_tx = answer_tx.clone();
        let (joined_tx, mut joined) = mpsc::unbounded_channel::<()>();
        let room_for_join = room.clone();
        let mut builder = ClientBuilder::new(url);
        if let Some(tls) = tls {
            builder = builder.tls_config(tls);
        }
        let connect = builder
            .auth(json!({ "token": super::TEST_TOKEN }))
            .on("open", move |_, c: Client| {
                let room = room_for_join.clone();
                let joined = joined_tx.clone();
                async move {
                    c.emit("joinRoom", room).await.expect("joinRoom");
                    let _ = joined.send(());
                }
                .boxed()
            })
            .on("receiveAnswer", move |p, _| {
                let tx = answer_tx.clone();
                async move {
                    if let Payload::Text(v) = p {
                        let _ = tx.send((true, v[0].clone()));
                    }
                }
                .boxed()
            })
            .on("receiveCandidate", move |p, _| {
                let tx = rcand_tx.clone();
                async move {
                    if let Payload::Text(v) = p {
                        let _ = tx.send((false, v[0].clone()));
                    }
                }
                .boxed()
            })
            .connect();
        // Only against a hang (a refused socket never opens): the deadline is generous.
        let socket = tokio::time::timeout(super::CONNECT_DEADLINE, connect)
            .await
            .expect("viewer reaches the relay in time")
            .expect("viewer reaches the relay");
        tokio::time::timeout(super::CONNECT_DEADLINE, joined.recv())
            .await
            .expect("viewer joins its room in time");
        let (say, mut said) = mpsc::unbounded_channel();
        let emitter = socket.clone();
        let task = tokio::spawn(async move {
            while let Some(msg) = said.recv().await {
                let (event, payload) = match msg {
                    Says::Offer(sdp) => (
                        "sendOffer",
                        json!({ "offer": { "type": "offer", "sdp": sdp }, "room": room }),
                    ),
                    Says::Candidate(c) => {
                        ("sendCandidate", json!({ "candidate": c, "room": room }))
                    }
                };
                emitter.emit(event, payload).await.expect(event);
            }
        });
        RoomLink {
            say,
            hear,
            socket: Some(socket),
            task: Some(task),
        }
    }

    /// Asks the relay to put this socket in `room` as well.
    pub async fn join_also(&self, room: Value) {
        let socket = self.socket.as_ref().expect("a link through a relay");
        socket.emit("joinRoom", room).await.expect("joinRoom");
    }

    /// Straight to campeer's [`DirectSignaller`], through the same parser as the relay's
    /// events. Returns the link and the events campeer said, in the order it said them.
    pub fn direct(room: RoomSide) -> (RoomLink, Arc<Mutex<Vec<&'static str>>>) {
        let RoomSide { events, mut said } = room;
        let log = Arc::new(Mutex::new(Vec::new()));
        let (say, mut from_viewer) = mpsc::unbounded_channel();
        let (to_viewer, hear) = mpsc::unbounded_channel();
        let said_log = Arc::clone(&log);
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    Some(msg) = from_viewer.recv() => {
                        if let Some(ev) = room_event(msg) {
                            let _ = events.send(ev).await;
                        }
                    }
                    Some(msg) = said.recv() => {
                        said_log.lock().unwrap().push(msg.event());
                        if let Some(heard) = heard(msg) {
                            let _ = to_viewer.send(heard);
                        }
                    }
                    else => return,
                }
            }
        });
        let link = RoomLink {
            say,
            hear,
            socket: None,
            task: Some(task),
        };
        (link, log)
    }

    /// Another way to say things in the room as this link's viewer: what a page's script
    /// could send besides what its PeerConnection gathers.
    pub fn mouth(&self) -> mpsc::UnboundedSender<Says> {
        self.say.clone()
    }
}

/// What a viewer says, as campeer's signaller parses it from the relay; nothing for what
/// the parser refuses (campeer's client drops it too, with a warning).
fn room_event(says: Says) -> Option<RoomEvent> {
    let (event, body) = match says {
        Says::Offer(sdp) => (
            protocol::RECEIVE_OFFER,
            json!({ "offer": { "type": "offer", "sdp": sdp } }),
        ),
        Says::Candidate(c) => (protocol::RECEIVE_CANDIDATE, json!({ "candidate": c })),
    };
    protocol::parse(event, &[body])
        .map_err(|e| eprintln!("[room] not for campeer: {e}"))
        .ok()
}

/// What campeer says, as the relay hands it to the room: `(is_answer, payload)`; nothing
/// for its join.
fn heard(said: Outgoing) -> Option<(bool, Value)> {
    match said {
        Outgoing::Answer { sdp } => {
            Some((true, json!({ "answer": { "type": "answer", "sdp": sdp } })))
        }
        Outgoing::Candidate(c) => Some((false, json!({ "candidate": c }))),
        Outgoing::JoinRoom => None,
    }
}

/// A room of many viewers on campeer's [`DirectSignaller`]: what each says reaches campeer,
/// and everything campeer says reaches every viewer, as the relay broadcasts it.
pub struct DirectRoom {
    events: mpsc::Sender<RoomEvent>,
    heard: tokio::sync::broadcast::Sender<(bool, Value)>,
    task: tokio::task::JoinHandle<()>,
}

impl DirectRoom {
    pub fn new(room: RoomSide) -> Self {
        let RoomSide { events, mut said } = room;
        // Room for a burst of answers and candidates from 8 sessions at once.
        let (heard_tx, _) = tokio::sync::broadcast::channel(1024);
        let to_all = heard_tx.clone();
        let task = tokio::spawn(async move {
            while let Some(msg) = said.recv().await {
                if let Some(h) = heard(msg) {
                    let _ = to_all.send(h);
                }
            }
        });
        Self {
            events,
            heard: heard_tx,
            task,
        }
    }

    /// One more member's way into the room.
    pub fn link(&self) -> RoomLink {
        let events = self.events.clone();
        let mut from_room = self.heard.subscribe();
        let (say, mut from_viewer) = mpsc::unbounded_channel();
        let (to_viewer, hear) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    msg = from_viewer.recv() => match msg {
                        Some(msg) => {
                            if let Some(ev) = room_event(msg) {
                                let _ = events.send(ev).await;
                            }
                        }
                        None => return,
                    },
                    heard = from_room.recv() => match heard {
                        Ok(h) => drop(to_viewer.send(h)),
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                            panic!("a viewer's room link fell {n} messages behind")
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                    },
                }
            }
        });
        RoomLink {
            say,
            hear,
            socket: None,
            task: Some(task),
        }
    }
}

impl Drop for DirectRoom {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// webrtc-rs's default codecs, or for [`Retransmission::Plain`] the two campeer sends
/// without RTX, with the same feedback.
fn media_engine(retransmission: Retransmission) -> MediaEngine {
    let mut engine = MediaEngine::default();
    if retransmission == Retransmission::Rtx {
        engine.register_default_codecs().expect("default codecs");
        return engine;
    }
    let feedback = |typ: &str, parameter: &str| RTCPFeedback {
        typ: typ.into(),
        parameter: parameter.into(),
    };
    let codec = |mime: &str, clock_rate, channels, fmtp: &str, rtcp_feedback| RTCRtpCodec {
        mime_type: mime.into(),
        clock_rate,
        channels,
        sdp_fmtp_line: fmtp.into(),
        rtcp_feedback,
    };
    let vp8 = codec(
        "video/VP8",
        90_000,
        0,
        "",
        vec![
            feedback("goog-remb", ""),
            feedback("ccm", "fir"),
            feedback("nack", ""),
            feedback("nack", "pli"),
        ],
    );
    let opus = codec(
        "audio/opus",
        48_000,
        2,
        "minptime=10;useinbandfec=1",
        vec![],
    );
    for (rtp_codec, payload_type, kind) in [
        (vp8, 96, RtpCodecKind::Video),
        (opus, 111, RtpCodecKind::Audio),
    ] {
        engine
            .register_codec(
                RTCRtpCodecParameters {
                    rtp_codec,
                    payload_type,
                },
                kind,
            )
            .expect("codec");
    }
    engine
}

fn sample_track(
    kind: RtpCodecKind,
    mime: &str,
    clock_rate: u32,
    channels: u16,
) -> Arc<TrackLocalStaticSample> {
    Arc::new(
        TrackLocalStaticSample::new(
            Instant::now(),
            MediaStreamTrack::new(
                "viewer".into(),
                format!("viewer-{kind}"),
                format!("viewer {kind}"),
                kind,
                vec![RTCRtpEncodingParameters {
                    rtp_coding_parameters: RTCRtpCodingParameters {
                        ssrc: Some(rand::random()),
                        ..Default::default()
                    },
                    codec: RTCRtpCodec {
                        mime_type: mime.into(),
                        clock_rate,
                        channels,
                        sdp_fmtp_line: String::new(),
                        rtcp_feedback: vec![],
                    },
                    ..Default::default()
                }],
            ),
        )
        .expect("sample track"),
    )
}

/// The reference page's own camera and microphone: a real VP8 and Opus stream into campeer.
async fn send_own_media(video: Arc<TrackLocalStaticSample>, audio: Arc<TrackLocalStaticSample>) {
    let settings = Vp8Settings {
        width: 160,
        height: 120,
        target_kbps: 300,
        frame_rate: 25,
        max_keyframe_distance: 300,
        cpu_used: 8,
        threads: 1,
        temporal_layers: 1,
    };
    let mut encoder = Vp8Encoder::new(&settings).expect("viewer VP8 encoder");
    let mut pattern = TestPattern::new(160, 120);
    let mut image = I420Frame::new(160, 120);
    let mut opus = opus::Encoder::new(48_000, opus::Channels::Mono, opus::Application::Voip)
        .expect("viewer Opus encoder");
    let silence = [0i16; 960];
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let (vssrc, assrc) = (video.ssrcs().await[0], audio.ssrcs().await[0]);
    for n in 0u32.. {
        tick.tick().await;
        let packet = opus.encode_vec(&silence, 4000).expect("opus encode");
        let _ = audio
            .sample_writer(assrc, 111)
            .write_sample(&Sample {
                data: packet.into(),
                duration: Duration::from_millis(20),
                ..Sample::new(Instant::now())
            })
            .await;
        if n % 2 == 0 {
            pattern.draw(&mut image, n, unix_ms(Instant::now()));
            let mut out = Vec::new();
            encoder
                .encode(&image, i64::from(n) * 1500, false, &mut |data, _| {
                    out.extend_from_slice(data)
                })
                .expect("viewer VP8 encode");
            let _ = video
                .sample_writer(vssrc, 96)
                .write_sample(&Sample {
                    data: out.into(),
                    duration: Duration::from_millis(40),
                    ..Sample::new(Instant::now())
                })
                .await;
        }
    }
}

fn test_token() -> campeer::access::Token {
    campeer::access::Token::parse(super::TEST_TOKEN).expect("the test token is valid")
}
