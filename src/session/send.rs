//! Media out of one session: the tasks that copy the shared encoded frames into its
//! tracks as RTP, and that relay its viewer's keyframe requests. The session owns them
//! ([`MediaTasks`]) and joins them when it ends, so none outlives it.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtc::rtp_transceiver::PayloadType;
use tokio::sync::broadcast;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, warn};
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};

use super::congestion::{PACER_QUEUE_LIMIT, VideoShare};
use super::header_ext::HeaderExtIds;
use super::keyframe::{self, Keyframes, Why};
use super::keyframe_drain::KeyframeDrain;
use super::layers::{Forwarded, LayerSelector, PictureIds, Verdict};
use super::resend_gate::GiveUps;
use super::stats::SessionStats;
use crate::media::video::vp8_rtp;
use crate::media::{EncodedFrame, MediaFeed, MediaKind};

/// A track the answer agreed to, with the payload type and header extensions it agreed
/// on.
pub(super) struct Sending {
    pub(super) track: Arc<TrackLocalStaticRTP>,
    pub(super) feed: MediaFeed,
    pub(super) ssrc: u32,
    pub(super) payload_type: PayloadType,
    pub(super) header_ext: HeaderExtIds,
    /// Video's frames since the answer: see [`subscribe_video_early`].
    pub(super) early: Option<broadcast::Receiver<Arc<EncodedFrame>>>,
}

/// Subscribes the video at the answer and asks for a keyframe, so that while ICE and
/// DTLS connect the keyframe is encoded (a resting encoder starts on one) and waiting
/// when the connection opens; the frames since follow it at once. A connection that takes
/// longer than the feed holds (about a second: TURN) starts on a fresh keyframe instead.
/// Audio waits for the connection: old audio sent in a burst would only lengthen the
/// viewer's jitter buffer.
pub(super) fn subscribe_video_early(sending: &mut [Sending], keyframes: &Keyframes) {
    for s in sending
        .iter_mut()
        .filter(|s| s.feed.kind() == MediaKind::Video)
    {
        s.early = Some(s.feed.subscribe());
        keyframes.request(Why::Arrival);
    }
}

/// How long a stopped media task may take to notice; one blocked in a write to a
/// connection that no longer drains is aborted after that.
const STOP_GRACE: Duration = Duration::from_secs(1);

/// One session's media tasks: started when it connects, stopped and joined when it ends.
/// Dropped unjoined (the session's own task aborted), they are aborted.
pub(super) struct MediaTasks {
    stop: CancellationToken,
    tasks: JoinSet<()>,
}

impl MediaTasks {
    /// Tasks that also stop when `parent` is cancelled.
    pub(super) fn new(parent: &CancellationToken) -> Self {
        Self {
            stop: parent.child_token(),
            tasks: JoinSet::new(),
        }
    }

    pub(super) fn start(
        &mut self,
        sending: Vec<Sending>,
        keyframes: &Keyframes,
        stats: &Arc<SessionStats>,
        video_share: &VideoShare,
        give_ups: &GiveUps,
    ) {
        for s in sending {
            let video = s.feed.kind() == MediaKind::Video;
            let keyframes = video.then(|| keyframes.clone());
            let layers = video.then(|| Layers {
                selector: LayerSelector::default(),
                share: video_share.clone(),
                logged: None,
                drain: KeyframeDrain::default(),
            });
            let writer = RtpWriter::new(Arc::clone(&s.track), s.ssrc, s.payload_type, video)
                .with_header_ext(s.header_ext);
            let frames = s.early.unwrap_or_else(|| {
                if let Some(k) = &keyframes {
                    k.request(Why::Arrival);
                }
                s.feed.subscribe()
            });
            let counted = Counted {
                kind: s.feed.kind(),
                stats: Arc::clone(stats),
                layers,
            };
            let stop = self.stop.clone();
            self.spawn(send_media(frames, writer, keyframes.clone(), counted, stop));
            if let Some(keyframes) = keyframes {
                let feedback = Feedback {
                    track: Arc::clone(&s.track),
                    give_ups: give_ups.clone(),
                };
                let stats = Arc::clone(stats);
                self.spawn(watch_feedback(
                    feedback,
                    keyframes,
                    stats,
                    self.stop.clone(),
                ));
            }
        }
    }

    fn spawn(&mut self, task: impl Future<Output = ()> + Send + 'static) {
        self.tasks.spawn(task.in_current_span());
    }

    /// Stops the tasks and waits until every one has ended.
    pub(super) async fn stop(self) {
        self.stop_within(STOP_GRACE).await;
    }

    /// Stops the tasks, aborts those still running after `grace`, and joins them all.
    async fn stop_within(mut self, grace: Duration) {
        self.stop.cancel();
        let joined = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(grace, joined).await.is_err() {
            warn!(
                left = self.tasks.len(),
                "media tasks still running {grace:?} after the session ended; aborting them"
            );
            self.tasks.shutdown().await;
        }
    }
}

/// Where a video session learns its viewer needs a keyframe.
struct Feedback {
    /// Its RTCP: PLI and FIR.
    track: Arc<TrackLocalStaticRTP>,
    /// Packets lost for good (see [`resend_gate`](super::resend_gate)): a viewer that
    /// waits for a keyframe before asking (Chromium, 3 s) is not kept waiting.
    give_ups: GiveUps,
}

/// Relays the viewer's PLI/FIR, and the resend gate's give-ups, to the encoder through
/// the shared throttle; not while it is sent keyframes only (its session asks for those:
/// see [`KeyframeDrain`]).
async fn watch_feedback(
    feedback: Feedback,
    keyframes: Keyframes,
    stats: Arc<SessionStats>,
    stop: CancellationToken,
) {
    loop {
        let why = tokio::select! {
            _ = stop.cancelled() => return,
            () = feedback.give_ups.next() => "packets lost for good",
            ev = feedback.track.poll() => match ev {
                Some(TrackLocalEvent::OnRtcpPacket(packets))
                    if packets
                        .iter()
                        .any(|p| keyframe::is_keyframe_request(p.as_ref())) =>
                {
                    "keyframe requested by the viewer"
                }
                Some(_) => continue,
                None => return,
            },
        };
        if stats.layers_forwarded() == Some(Forwarded::Keyframes) {
            debug!("{why}, sent keyframes only: not relayed");
        } else {
            debug!("{why}");
            keyframes.request(Why::Repair);
        }
    }
}

/// Where one send task counts what it writes and skips, and (video) which layers it
/// forwards.
struct Counted {
    kind: MediaKind,
    stats: Arc<SessionStats>,
    layers: Option<Layers>,
}

/// Video's choice of temporal layers, against its viewer's share of the estimate.
struct Layers {
    selector: LayerSelector,
    share: VideoShare,
    /// What the log and the stats last said.
    logged: Option<Forwarded>,
    /// Keyframes while only keyframes are forwarded.
    drain: KeyframeDrain,
}

impl Layers {
    /// Whether `frame`, a keyframe, may go to the viewer now: always, unless it is sent
    /// keyframes only and its link cannot take this one whole now ([`KeyframeDrain`]).
    fn keyframe_fits(&mut self, now: Instant, share_kbps: u32, frame: &EncodedFrame) -> bool {
        if self.selector.forwarded() != Some(Forwarded::Keyframes) {
            return true;
        }
        let bytes = frame.payloads.iter().map(|p| p.len()).sum();
        let packets = frame.payloads.len();
        let fits = self
            .drain
            .admit(now, share_kbps, packets, bytes, PACER_QUEUE_LIMIT);
        debug!(packets, bytes, share_kbps, fits, "keyframe, keyframes only");
        fits
    }
}

impl Counted {
    /// Whether `frame` goes to this viewer, and under which picture ids; asks for a
    /// keyframe when the viewer needs one before anything else can follow.
    fn select(&mut self, frame: &EncodedFrame, keyframes: Option<&Keyframes>) -> Option<Stamp> {
        let (Some(layers), Some(layer)) = (&mut self.layers, &frame.layer) else {
            return Some(Stamp::Unchanged);
        };
        let share = layers.share.kbps();
        let now = Instant::now();
        if frame.keyframe && !layers.keyframe_fits(now, share, frame) {
            return None;
        }
        let verdict = layers.selector.frame(now, share, frame.keyframe, layer);
        let forwarded = layers.selector.forwarded();
        if forwarded != layers.logged {
            layers.logged = forwarded;
            layers.drain = KeyframeDrain::default();
            self.stats.set_layers_forwarded(forwarded);
            if let Some(f) = forwarded {
                info!(
                    layers = f.layers(),
                    share_kbps = share,
                    base_kbps = layer.rates.base_kbps,
                    total_kbps = layer.rates.total_kbps,
                    "layers forwarded"
                );
            }
        }
        if forwarded == Some(Forwarded::Keyframes)
            && layers.drain.ask(now)
            && let Some(k) = keyframes
        {
            debug!("keyframes only: asking for the next");
            k.request(Why::Repair);
        }
        match verdict {
            Verdict::Forward(None) => Some(Stamp::Unchanged),
            Verdict::Forward(Some(ids)) => Some(Stamp::Vp8(ids)),
            Verdict::Drop => None,
            Verdict::DropAndAskKeyframe => {
                if let Some(k) = keyframes {
                    k.request(Why::Repair);
                }
                None
            }
        }
    }
}

/// The session's own numbering of a frame's payloads.
#[derive(Debug, Clone, Copy)]
enum Stamp {
    /// As encoded: audio, and video while the session has left no frame out (the shared
    /// payloads go, uncopied).
    Unchanged,
    /// VP8 restamped with the session's picture id and TL0PICIDX (a copy).
    Vp8(PictureIds),
}

/// Copies the shared frames into this session's track. Video (which has `keyframes`)
/// starts on a keyframe, and a viewer that falls behind the broadcast skips ahead to the
/// next keyframe rather than stalling capture or decoding garbage.
async fn send_media(
    mut frames: broadcast::Receiver<Arc<EncodedFrame>>,
    mut writer: RtpWriter,
    keyframes: Option<Keyframes>,
    mut counted: Counted,
    stop: CancellationToken,
) {
    let mut need_keyframe = keyframes.is_some();
    let mut sent_any = false;
    loop {
        let frame = tokio::select! {
            _ = stop.cancelled() => return,
            f = frames.recv() => f,
        };
        let frame = match frame {
            Ok(f) => f,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                if sent_any {
                    counted.stats.lagged();
                    warn!(
                        skipped = n,
                        "viewer fell behind; skipping to the next keyframe"
                    );
                } else {
                    // The connection took long to open: the early frames ran over.
                    debug!(skipped = n, "frames before the connection opened dropped");
                }
                if let Some(k) = &keyframes {
                    need_keyframe = true;
                    k.request(Why::Repair);
                }
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if need_keyframe && !frame.keyframe {
            continue;
        }
        need_keyframe = false;
        let Some(stamp) = counted.select(&frame, keyframes.as_ref()) else {
            continue;
        };
        sent_any = true;
        if let Err(e) = writer.write(&frame, stamp).await {
            debug!("write rtp: {e}");
            return;
        }
        counted
            .stats
            .frame_sent(counted.kind, &frame, Instant::now());
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
    header_ext: HeaderExtIds,
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
            header_ext: HeaderExtIds::default(),
        }
    }

    fn with_header_ext(self, header_ext: HeaderExtIds) -> Self {
        Self { header_ext, ..self }
    }

    async fn write(
        &mut self,
        frame: &EncodedFrame,
        stamp: Stamp,
    ) -> Result<(), webrtc::error::Error> {
        let last = frame.payloads.len().saturating_sub(1);
        for (i, payload) in frame.payloads.iter().enumerate() {
            let payload = match stamp {
                Stamp::Unchanged => payload.clone(),
                Stamp::Vp8(ids) => vp8_rtp::restamp(payload, ids.picture_id, ids.tl0_pic_idx)
                    .unwrap_or_else(|| payload.clone()),
            };
            let mut packet = rtc::rtp::Packet {
                header: rtc::rtp::header::Header {
                    version: 2,
                    marker: self.marks_frames && i == last,
                    payload_type: self.payload_type,
                    sequence_number: self.seq,
                    timestamp: self.rtp_base.wrapping_add(frame.rtp_time),
                    ssrc: self.ssrc,
                    ..Default::default()
                },
                payload,
            };
            if i == 0 {
                self.header_ext
                    .stamp_first_packet(&mut packet.header, frame.captured_wall);
            }
            self.seq = self.seq.wrapping_add(1);
            self.track.write_rtp(packet).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::super::connection::{local_track, opus_codec, vp8_codec};
    use super::*;
    use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;

    fn sending(feed: &MediaFeed) -> Sending {
        let (kind, codec) = match feed.kind() {
            MediaKind::Video => (RtpCodecKind::Video, vp8_codec(Vec::new())),
            MediaKind::Audio => (RtpCodecKind::Audio, opus_codec()),
        };
        Sending {
            track: local_track(kind, codec, 1),
            feed: feed.clone(),
            ssrc: 1,
            payload_type: 96,
            header_ext: HeaderExtIds::default(),
            early: None,
        }
    }

    #[tokio::test]
    async fn video_wakes_the_encoder_at_the_answer_and_audio_waits_for_the_connection() {
        let (video, audio) = (
            MediaFeed::new(MediaKind::Video),
            MediaFeed::new(MediaKind::Audio),
        );
        let mut tracks = vec![sending(&video), sending(&audio)];
        subscribe_video_early(&mut tracks, &Keyframes::new(video.clone()));
        assert!(video.has_subscribers(), "the resting encoder wakes");
        assert!(video.take_keyframe_request(), "and starts on a keyframe");
        assert!(!audio.has_subscribers());
    }

    /// Sets its flag when dropped: when the task holding it has ended, however it ended.
    struct Ended(Arc<AtomicBool>);

    impl Drop for Ended {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    fn flag() -> (Arc<AtomicBool>, Ended) {
        let flag = Arc::new(AtomicBool::new(false));
        (Arc::clone(&flag), Ended(flag))
    }

    #[tokio::test]
    async fn stopping_waits_for_tasks_that_finish_after_the_stop() {
        let mut media = MediaTasks::new(&CancellationToken::new());
        let (ended, guard) = flag();
        let stop = media.stop.clone();
        media.spawn(async move {
            stop.cancelled().await;
            // Still busy for a while after it was told to stop.
            for _ in 0..10 {
                tokio::task::yield_now().await;
            }
            drop(guard);
        });
        media.stop().await;
        assert!(ended.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn a_task_that_ignores_the_stop_is_aborted_and_joined() {
        let mut media = MediaTasks::new(&CancellationToken::new());
        let (ended, guard) = flag();
        media.spawn(async move {
            let _guard = guard;
            std::future::pending::<()>().await;
        });
        media.stop_within(Duration::from_millis(10)).await;
        assert!(ended.load(Ordering::SeqCst));
    }
}
