//! The audio encode stage: its own thread takes queued 20 ms chunks, encodes each to one
//! Opus packet (one RTP payload) and publishes it on the audio feed. With no viewer
//! subscribed it encodes nothing, but its sample clock runs on.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender};
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::CHUNK_SAMPLES;
use super::opus::OpusEncoder;
use crate::media::STAGE_POLL;
use crate::media::frame::{EncodedFrame, MediaFeed, MediaStats};

/// The Opus thread's state.
pub struct AudioEncode {
    pub encoder: OpusEncoder,
    pub feed: MediaFeed,
    pub stats: Arc<MediaStats>,
}

impl AudioEncode {
    /// The thread's body, until shutdown: every chunk goes back to the source through
    /// `recycle` once encoded.
    pub fn run(
        mut self,
        chunks: &Receiver<Vec<i16>>,
        recycle: &SyncSender<Vec<i16>>,
        cancel: &CancellationToken,
    ) {
        let mut packet = Vec::new();
        // The sample clock is the capture clock: one chunk is CHUNK_SAMPLES samples.
        let mut samples: u32 = 0;
        while !cancel.is_cancelled() {
            let Ok(chunk) = chunks.recv_timeout(STAGE_POLL) else {
                continue;
            };
            if self.feed.has_subscribers() {
                self.encode(&chunk, samples, &mut packet);
            }
            samples = samples.wrapping_add(CHUNK_SAMPLES as u32);
            let _ = recycle.try_send(chunk);
        }
    }

    fn encode(&mut self, chunk: &[i16], rtp_time: u32, packet: &mut Vec<u8>) {
        match self.encoder.encode(chunk, packet) {
            Ok(n) => {
                MediaStats::add(&self.stats.audio_encoded, 1);
                MediaStats::add(&self.stats.audio_bytes, n as u64);
                self.feed.publish(EncodedFrame {
                    payloads: vec![Bytes::copy_from_slice(packet)],
                    rtp_time,
                    keyframe: false,
                    // When the chunk reached this stage: ALSA's own stamps are not read.
                    captured: Instant::now(),
                    captured_wall: SystemTime::now(),
                    layer: None,
                });
            }
            Err(e) => warn!("{e}"),
        }
    }
}
