//! The video encode stage: its own thread takes the newest frame from the slot, encodes
//! it to VP8 at the bitrate congestion control last asked for, splits it into RTP
//! payloads once for every viewer, and publishes it on the video feed.
//!
//! With no viewer subscribed it rests: it still takes each frame (so the source keeps
//! capturing, warm, and counts no drops) but encodes nothing; the first frame after a
//! viewer subscribes is a keyframe.

use std::sync::Arc;
use std::sync::mpsc::SyncSender;
use std::time::Instant;

use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::vp8::{LayerRates, Vp8Encoder, Vp8Error, Vp8Settings};
use super::vp8_rtp::{self, Descriptor};
use crate::media::STAGE_POLL;
use crate::media::frame::{EncodedFrame, I420Frame, MediaFeed, MediaStats, VideoLayer};
use crate::media::pace::wall_clock;
use crate::media::pipeline::VideoBitrate;
use crate::media::slot::FrameSlot;

/// RTP payload size: 1200-byte packets (a safe MTU through tunnels) less the 12-byte header.
pub const RTP_PAYLOAD_MTU: usize = 1188;

/// The VP8 thread's state: the encoder, rebuilt when the camera's granted size changes.
pub struct VideoEncode {
    encoder: Vp8Encoder,
    settings: Vp8Settings,
    /// The descriptor's picture id and TL0PICIDX as encoded; each session restamps them
    /// for the frames it forwards.
    picture_id: u16,
    tl0_pic_idx: u8,
    /// The RTP clock's zero: frames are stamped from their capture time.
    started: Instant,
    feed: MediaFeed,
    stats: Arc<MediaStats>,
    /// Congestion control's target, applied before the next frame.
    bitrate: VideoBitrate,
    /// No viewer at the last frame: nothing was encoded.
    resting: bool,
}

impl VideoEncode {
    /// Builds the encoder; call it on the thread that will run it.
    pub fn new(
        settings: Vp8Settings,
        started: Instant,
        feed: MediaFeed,
        stats: Arc<MediaStats>,
        bitrate: VideoBitrate,
    ) -> Result<Self, Vp8Error> {
        Ok(Self {
            encoder: Vp8Encoder::new(&settings)?,
            settings,
            picture_id: 0,
            tl0_pic_idx: 0,
            started,
            feed,
            stats,
            bitrate,
            resting: false,
        })
    }

    /// The thread's body, until shutdown: every frame goes back to the source through
    /// `recycle` once encoded.
    pub fn run(
        mut self,
        slot: &FrameSlot,
        recycle: &SyncSender<I420Frame>,
        cancel: &CancellationToken,
    ) {
        while !cancel.is_cancelled() {
            let Some(frame) = slot.take_timeout(STAGE_POLL) else {
                continue;
            };
            if self.feed.has_subscribers() {
                if self.resting {
                    self.resting = false;
                    info!("a viewer: encoding from a keyframe");
                    self.feed.request_keyframe();
                }
                self.encode(&frame);
            } else {
                MediaStats::add(&self.stats.video_rested, 1);
                if !self.resting {
                    self.resting = true;
                    info!("no viewer: the encoder rests");
                }
            }
            // The source may have allocated a replacement already; then this one is freed.
            let _ = recycle.try_send(frame);
        }
    }

    fn encode(&mut self, frame: &I420Frame) {
        if frame.size() != (self.settings.width, self.settings.height) {
            self.resize(frame.width(), frame.height());
        }
        let rates = self.bitrate.rates();
        let rates = match self.encoder.temporal_layers() {
            1 => LayerRates::single(rates.total_kbps),
            _ => rates,
        };
        if rates != self.encoder.rates()
            && let Err(e) = self.encoder.set_rates(rates)
        {
            warn!("{e}");
        }
        let ticks = (frame
            .captured()
            .saturating_duration_since(self.started)
            .as_secs_f64()
            * 90_000.0) as i64;
        let captured_wall = wall_clock(frame.captured());
        let force = self.feed.take_keyframe_request();
        let rates = self.encoder.rates();
        let Self {
            encoder,
            picture_id,
            tl0_pic_idx,
            feed,
            stats,
            ..
        } = self;
        let result = encoder.encode(frame, ticks, force, &mut |data, vp8| {
            if vp8.temporal_id == 0 {
                *tl0_pic_idx = tl0_pic_idx.wrapping_add(1);
            }
            let descriptor = Descriptor {
                picture_id: *picture_id,
                tl0_pic_idx: *tl0_pic_idx,
                temporal_id: vp8.temporal_id,
                layer_sync: vp8.layer_sync,
            };
            *picture_id = picture_id.wrapping_add(1) & 0x7fff;
            // Per frame, to set what the encoder made against what it was asked for.
            debug!(
                bytes = data.len(),
                key = vp8.keyframe,
                tid = vp8.temporal_id,
                total_kbps = rates.total_kbps,
                base_kbps = rates.base_kbps,
                "encoded"
            );
            MediaStats::add(&stats.video_encoded, 1);
            MediaStats::add(&stats.video_bytes, data.len() as u64);
            if vp8.keyframe {
                MediaStats::add(&stats.video_keyframes, 1);
            }
            feed.publish(EncodedFrame {
                payloads: vp8_rtp::packetize(data, &descriptor, RTP_PAYLOAD_MTU),
                rtp_time: ticks as u32,
                keyframe: vp8.keyframe,
                captured: frame.captured(),
                captured_wall,
                layer: Some(VideoLayer {
                    temporal_id: vp8.temporal_id,
                    sync: vp8.layer_sync,
                    rates,
                    picture_id: descriptor.picture_id,
                    tl0_pic_idx: descriptor.tl0_pic_idx,
                }),
            });
        });
        if let Err(e) = result {
            warn!("{e}");
            self.feed.request_keyframe();
        }
    }

    fn resize(&mut self, width: u32, height: u32) {
        let settings = Vp8Settings {
            width,
            height,
            ..self.settings.clone()
        };
        match Vp8Encoder::new(&settings) {
            Ok(e) => {
                info!(width, height, "VP8 encoder follows the camera's size");
                self.encoder = e;
                self.settings = settings;
            }
            Err(e) => warn!(
                "{e}; keeping {}x{}",
                self.settings.width, self.settings.height
            ),
        }
    }
}
