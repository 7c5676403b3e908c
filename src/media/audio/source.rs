//! The audio source stage: its own thread makes 20 ms chunks, from the microphone or the
//! test tone, and queues them for the encoder. A short queue, because a gap is audible;
//! when it is full the chunk is dropped and counted, never waited for.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::CHUNK_SAMPLES;
use super::alsa::Microphone;
use super::tone::Tone;
use crate::media::frame::MediaStats;
use crate::media::pace::pace;

/// The test tone's pitch.
pub const TONE_HZ: f64 = 440.0;
const CHUNK_PERIOD: Duration = Duration::from_millis(20);

/// Where sound comes from, once `audio.source = "auto"` is resolved; no value at all
/// (`Option::None`) means no audio track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AudioOrigin {
    Tone,
    /// An ALSA PCM name, e.g. `default` or `hw:1,0`.
    Microphone(String),
}

/// An audio source thread's state: where its 20 ms chunks go, and the buffers it reuses.
pub struct AudioCapture {
    chunks: SyncSender<Vec<i16>>,
    recycle: Receiver<Vec<i16>>,
    stats: Arc<MediaStats>,
    cancel: CancellationToken,
}

impl AudioCapture {
    /// `recycle` brings back buffers the encoder is done with.
    pub fn new(
        chunks: SyncSender<Vec<i16>>,
        recycle: Receiver<Vec<i16>>,
        stats: Arc<MediaStats>,
        cancel: CancellationToken,
    ) -> Self {
        Self {
            chunks,
            recycle,
            stats,
            cancel,
        }
    }

    /// The thread's body, until shutdown.
    pub fn run(self, origin: AudioOrigin) {
        match origin {
            AudioOrigin::Tone => self.tone_forever(),
            AudioOrigin::Microphone(pcm) => self.microphone_forever(&pcm),
        }
    }

    fn buffer(&self) -> Vec<i16> {
        self.recycle
            .try_recv()
            .unwrap_or_else(|_| vec![0; CHUNK_SAMPLES])
    }

    /// Never blocks the source: a full queue drops the chunk and counts it.
    fn put(&self, chunk: Vec<i16>) {
        MediaStats::add(&self.stats.audio_captured, 1);
        if self.chunks.try_send(chunk).is_err() {
            MediaStats::add(&self.stats.audio_dropped, 1);
        }
    }

    /// `fill` makes each chunk; the clock paces them at 20 ms until `until` or shutdown.
    fn paced(&self, until: Option<Instant>, mut fill: impl FnMut(&mut [i16])) {
        let mut next = Instant::now();
        while !self.cancel.is_cancelled() && until.is_none_or(|t| Instant::now() < t) {
            let mut chunk = self.buffer();
            fill(&mut chunk);
            self.put(chunk);
            next = pace(next, CHUNK_PERIOD);
        }
    }

    fn tone_forever(self) {
        let mut tone = Tone::new(TONE_HZ);
        self.paced(None, |c| tone.fill(c));
    }

    /// Captures the microphone (alsa-lib paces the reads); while it is absent or broken,
    /// sends silence and tries it again every second, so the audio track never ends.
    fn microphone_forever(self, pcm: &str) {
        let mut outage_reported = false;
        while !self.cancel.is_cancelled() {
            match Microphone::open(pcm) {
                Ok(mut mic) => {
                    info!(
                        pcm,
                        channels = mic.channels(),
                        "microphone capturing at 48 kHz"
                    );
                    outage_reported = false;
                    while !self.cancel.is_cancelled() {
                        let mut chunk = self.buffer();
                        if let Err(e) = mic.read_chunk(&mut chunk) {
                            warn!("{e}; sending silence until the microphone is back");
                            break;
                        }
                        self.put(chunk);
                    }
                }
                Err(e) if !outage_reported => {
                    warn!("{e}; sending silence and retrying every second");
                    outage_reported = true;
                }
                Err(_) => {}
            }
            self.paced(Some(Instant::now() + Duration::from_secs(1)), |c| c.fill(0));
        }
    }
}
