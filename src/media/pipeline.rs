//! The one owner of sources and encoders. Each blocking stage runs on its own named
//! thread; what crosses between them is a slot (video), a short bounded queue (audio),
//! an atomic (keyframe request, bitrate) or a broadcast of encoded frames (sessions).
//!
//! Video never queues: the source overwrites the newest-frame slot and a frame the encoder
//! did not take in time is dropped and counted. Audio goes through a short queue, because
//! a gap is audible; an overflow is counted too.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rtc::rtp::codec::vp8::Vp8Payloader;
use rtc::rtp::packetizer::Payloader;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::audio::alsa::Microphone;
use super::audio::opus::OpusEncoder;
use super::audio::tone::Tone;
use super::audio::{CHUNK_SAMPLES, SAMPLE_RATE};
use super::frame::{EncodedFrame, I420Frame, MediaFeed, MediaKind, MediaStats};
use super::video::test_pattern::TestPattern;
use super::video::v4l2::{self, Camera, CameraError};
use super::video::vp8::{Vp8Encoder, Vp8Error, Vp8Settings};
use crate::config::{AudioConfig, AudioSource, VideoConfig, VideoSource};

/// RTP payload size: 1200-byte packets (a safe MTU through tunnels) less the 12-byte header.
const RTP_PAYLOAD_MTU: usize = 1188;
/// How often a blocked stage looks at the cancellation token.
const POLL: Duration = Duration::from_millis(100);
/// 100 ms of audio between tone and Opus: absorbs scheduling hiccups, adds no latency
/// while the encoder keeps up.
const AUDIO_QUEUE: usize = 5;
const TONE_HZ: f64 = 440.0;
const CHUNK_PERIOD: Duration = Duration::from_millis(20);
/// One-second poll timeouts in a row before a silent camera is closed and reopened.
const STALLED_AFTER: u32 = 3;
/// The PCM `audio.source = "auto"` tries: alsa-lib's default capture device.
const AUTO_PCM: &str = "default";

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("starting the VP8 encoder: {0}")]
    Vp8(#[from] Vp8Error),
    #[error("starting the Opus encoder: {0}")]
    Opus(#[from] super::audio::opus::OpusError),
    #[error("spawning thread {name}: {source}")]
    Spawn {
        name: &'static str,
        source: std::io::Error,
    },
    #[error("thread {0} exited while starting")]
    Died(&'static str),
}

/// The newest raw frame, capacity one: a put replaces what the encoder has not taken.
#[derive(Default)]
pub struct FrameSlot {
    frame: Mutex<Option<I420Frame>>,
    ready: Condvar,
}

impl FrameSlot {
    /// Stores `frame`; returns the one it displaced (a drop), whose buffer the caller reuses.
    pub fn put(&self, frame: I420Frame) -> Option<I420Frame> {
        let old = self.lock().replace(frame);
        self.ready.notify_one();
        old
    }

    /// The newest frame, waiting up to `timeout` for one.
    pub fn take_timeout(&self, timeout: Duration) -> Option<I420Frame> {
        let guard = self.lock();
        let (mut guard, _) = self
            .ready
            .wait_timeout_while(guard, timeout, |f| f.is_none())
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        guard.take()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<I420Frame>> {
        // A panic elsewhere cannot leave an Option half-written.
        self.frame.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub struct MediaPipeline {
    video: MediaFeed,
    audio: Option<MediaFeed>,
    stats: Arc<MediaStats>,
    bitrate_kbps: Arc<AtomicU32>,
    cancel: CancellationToken,
    threads: Vec<JoinHandle<()>>,
}

impl MediaPipeline {
    pub fn start(
        video: &VideoConfig,
        audio: &AudioConfig,
        cancel: CancellationToken,
    ) -> Result<Self, PipelineError> {
        let camera = match &video.source {
            VideoSource::Device(path) => Some(path.clone()),
            VideoSource::Test => None,
            VideoSource::Auto => {
                let found = v4l2::first_camera(&v4l2::list_cameras()).map(|c| c.path.clone());
                if found.is_none() {
                    warn!("video.source = auto: no camera found; sending the test pattern");
                }
                found
            }
        };
        match &camera {
            Some(path) => info!(camera = %path.display(), "video: camera"),
            None => info!("video: test pattern"),
        }
        // None: no audio track; Some(None): the tone; Some(Some(pcm)): a microphone.
        let mic = match &audio.source {
            AudioSource::None => None,
            AudioSource::Test => Some(None),
            AudioSource::Pcm(name) => Some(Some(name.clone())),
            AudioSource::Auto => match Microphone::open(AUTO_PCM) {
                Ok(_) => Some(Some(AUTO_PCM.to_owned())),
                Err(e) => {
                    warn!("audio.source = auto: {e}; sending the test tone");
                    Some(None)
                }
            },
        };
        match &mic {
            None => info!("audio: none"),
            Some(None) => info!(hz = TONE_HZ, "audio: test tone"),
            Some(Some(pcm)) => info!(%pcm, "audio: microphone"),
        }
        let audio_on = mic.is_some();
        let mut pipeline = Self {
            video: MediaFeed::new(MediaKind::Video),
            audio: audio_on.then(|| MediaFeed::new(MediaKind::Audio)),
            stats: Arc::default(),
            bitrate_kbps: Arc::new(AtomicU32::new(video.bitrate_kbps)),
            cancel,
            threads: Vec::new(),
        };
        // On any error below, Drop cancels and joins what already started.
        pipeline.start_video(video, camera)?;
        if let (Some(feed), Some(mic)) = (pipeline.audio.clone(), mic) {
            pipeline.start_audio(audio, feed, mic)?;
        }
        info!(
            width = video.width,
            height = video.height,
            fps = video.fps,
            kbps = video.bitrate_kbps,
            "media pipeline running"
        );
        Ok(pipeline)
    }

    pub fn video(&self) -> MediaFeed {
        self.video.clone()
    }

    pub fn audio(&self) -> Option<MediaFeed> {
        self.audio.clone()
    }

    pub fn stats(&self) -> Arc<MediaStats> {
        Arc::clone(&self.stats)
    }

    /// Congestion feedback's way back to the encoder; applied before the next frame.
    pub fn set_video_bitrate_kbps(&self, kbps: u32) {
        self.bitrate_kbps.store(kbps, Ordering::Relaxed);
    }

    /// Stops every thread and waits for them.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.cancel.cancel();
        for t in self.threads.drain(..) {
            let name = t.thread().name().unwrap_or("media").to_owned();
            if t.join().is_err() {
                warn!(thread = name, "media thread panicked");
            }
        }
    }

    fn spawn(
        &mut self,
        name: &'static str,
        body: impl FnOnce() + Send + 'static,
    ) -> Result<(), PipelineError> {
        let handle = std::thread::Builder::new()
            .name(name.into())
            .spawn(body)
            .map_err(|source| PipelineError::Spawn { name, source })?;
        self.threads.push(handle);
        Ok(())
    }

    fn start_video(
        &mut self,
        cfg: &VideoConfig,
        camera: Option<PathBuf>,
    ) -> Result<(), PipelineError> {
        let slot = Arc::new(FrameSlot::default());
        let (recycle_tx, recycle_rx) = sync_channel::<I420Frame>(2);
        let started = Instant::now();

        let settings = vp8_settings(cfg);
        let (ready_tx, ready_rx) = sync_channel(1);
        let (feed, stats, bitrate, cancel) = (
            self.video.clone(),
            self.stats(),
            Arc::clone(&self.bitrate_kbps),
            self.cancel.clone(),
        );
        let encoder_slot = Arc::clone(&slot);
        self.spawn("campeer-vp8", move || {
            // libvpx's context stays on this thread for its whole life.
            let encoder = match Vp8Encoder::new(&settings) {
                Ok(e) => {
                    let _ = ready_tx.send(Ok(()));
                    e
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let mut encoding = Encoding {
                encoder,
                settings,
                started,
            };
            encoding.run(&encoder_slot, &recycle_tx, &feed, &stats, &bitrate, &cancel);
        })?;
        ready_rx
            .recv()
            .map_err(|_| PipelineError::Died("campeer-vp8"))??;

        let source = VideoInput {
            slot,
            recycle: recycle_rx,
            stats: self.stats(),
            cancel: self.cancel.clone(),
            spare: None,
            counter: 0,
            pattern: TestPattern::new(cfg.width, cfg.height),
            size: (cfg.width, cfg.height),
            period: Duration::from_secs(1) / cfg.fps,
        };
        match camera {
            None => self.spawn("campeer-pattern", move || source.pattern_forever()),
            Some(path) => {
                let want = (cfg.width, cfg.height, cfg.fps);
                self.spawn("campeer-v4l2", move || source.camera_forever(&path, want))
            }
        }
    }

    fn start_audio(
        &mut self,
        cfg: &AudioConfig,
        feed: MediaFeed,
        mic: Option<String>,
    ) -> Result<(), PipelineError> {
        let (chunks_tx, chunks_rx) = sync_channel::<Vec<i16>>(AUDIO_QUEUE);
        let (recycle_tx, recycle_rx) = sync_channel::<Vec<i16>>(AUDIO_QUEUE + 2);
        let encoder = OpusEncoder::new(cfg.bitrate_kbps)?;
        let (stats, cancel) = (self.stats(), self.cancel.clone());
        self.spawn("campeer-opus", move || {
            encode_audio(encoder, &chunks_rx, &recycle_tx, &feed, &stats, &cancel);
        })?;

        let input = AudioInput {
            chunks: chunks_tx,
            recycle: recycle_rx,
            stats: self.stats(),
            cancel: self.cancel.clone(),
        };
        match mic {
            None => self.spawn("campeer-tone", move || input.tone_forever()),
            Some(pcm) => self.spawn("campeer-alsa", move || input.microphone_forever(&pcm)),
        }
    }
}

/// An audio source thread's state: where its 20 ms chunks go, and the buffers it reuses.
struct AudioInput {
    chunks: SyncSender<Vec<i16>>,
    recycle: Receiver<Vec<i16>>,
    stats: Arc<MediaStats>,
    cancel: CancellationToken,
}

impl AudioInput {
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

impl Drop for MediaPipeline {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Sleeps until `next`, then returns the following deadline. A fixed schedule does not
/// drift with the work done each period; after a long stall it restarts from now
/// instead of bursting to catch up.
fn pace(next: Instant, period: Duration) -> Instant {
    let next = next + period;
    let now = Instant::now();
    if next > now {
        std::thread::sleep(next - now);
        next
    } else if now - next > period {
        now
    } else {
        next
    }
}

/// The encoder's share of `[video]`.
fn vp8_settings(v: &VideoConfig) -> Vp8Settings {
    Vp8Settings {
        width: v.width,
        height: v.height,
        fps: v.fps,
        bitrate_kbps: v.bitrate_kbps,
        keyframe_interval: v.keyframe_interval,
        cpu_used: v.cpu_used,
        threads: v.threads,
    }
}

/// The VP8 thread's state: the encoder, rebuilt when the camera's granted size changes.
struct Encoding {
    encoder: Vp8Encoder,
    settings: Vp8Settings,
    started: Instant,
}

impl Encoding {
    fn run(
        &mut self,
        slot: &FrameSlot,
        recycle: &SyncSender<I420Frame>,
        feed: &MediaFeed,
        stats: &MediaStats,
        bitrate: &AtomicU32,
        cancel: &CancellationToken,
    ) {
        let mut payloader = Vp8Payloader::default();
        while !cancel.is_cancelled() {
            let Some(frame) = slot.take_timeout(POLL) else {
                continue;
            };
            if frame.size() != (self.settings.width, self.settings.height) {
                self.resize(frame.width(), frame.height());
            }
            let kbps = bitrate.load(Ordering::Relaxed);
            if kbps != self.encoder.bitrate_kbps()
                && let Err(e) = self.encoder.set_bitrate_kbps(kbps)
            {
                warn!("{e}");
            }
            let ticks = (frame
                .captured()
                .saturating_duration_since(self.started)
                .as_secs_f64()
                * 90_000.0) as i64;
            let force = feed.take_keyframe_request();
            let result = self
                .encoder
                .encode(&frame, ticks, force, &mut |data, keyframe| match payloader
                    .payload(RTP_PAYLOAD_MTU, &Bytes::copy_from_slice(data))
                {
                    Ok(payloads) => {
                        MediaStats::add(&stats.video_encoded, 1);
                        MediaStats::add(&stats.video_bytes, data.len() as u64);
                        if keyframe {
                            MediaStats::add(&stats.video_keyframes, 1);
                        }
                        feed.publish(EncodedFrame {
                            payloads,
                            rtp_time: ticks as u32,
                            keyframe,
                            captured: frame.captured(),
                        });
                    }
                    Err(e) => warn!("VP8 packetization: {e}"),
                });
            if let Err(e) = result {
                warn!("{e}");
                feed.request_keyframe();
            }
            // The source may have allocated a replacement already; then this one is freed.
            let _ = recycle.try_send(frame);
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

/// A video source thread's state: where frames go, and the buffers it reuses.
struct VideoInput {
    slot: Arc<FrameSlot>,
    recycle: Receiver<I420Frame>,
    stats: Arc<MediaStats>,
    cancel: CancellationToken,
    spare: Option<I420Frame>,
    counter: u32,
    /// Draws the test pattern, or the "no signal" picture while a camera is away.
    pattern: TestPattern,
    size: (u32, u32),
    period: Duration,
}

impl VideoInput {
    /// A buffer of the current size: a displaced or returned one when it fits.
    fn buffer(&mut self) -> I420Frame {
        let (w, h) = self.size;
        self.spare
            .take()
            .or_else(|| self.recycle.try_recv().ok())
            .filter(|f| f.size() == (w, h))
            .unwrap_or_else(|| I420Frame::new(w, h))
    }

    fn put(&mut self, frame: I420Frame) {
        MediaStats::add(&self.stats.video_captured, 1);
        self.counter = self.counter.wrapping_add(1);
        if let Some(old) = self.slot.put(frame) {
            MediaStats::add(&self.stats.video_dropped, 1);
            self.spare = Some(old);
        }
    }

    fn pattern_forever(mut self) {
        let mut next = Instant::now();
        while !self.cancel.is_cancelled() {
            let mut frame = self.buffer();
            self.pattern.draw(&mut frame, self.counter);
            frame.set_captured(Instant::now());
            self.put(frame);
            next = pace(next, self.period);
        }
    }

    /// Streams the camera; while it is absent or broken, sends "no signal" and tries it
    /// again every second, so viewers stay connected through an unplug.
    fn camera_forever(mut self, path: &Path, (width, height, fps): (u32, u32, u32)) {
        let mut outage_reported = false;
        while !self.cancel.is_cancelled() {
            match Camera::open(path, width, height, fps) {
                Ok(mut camera) => {
                    let m = camera.mode;
                    info!(
                        camera = %path.display(),
                        asked = %format!("{width}x{height}@{fps}"),
                        granted = %format!("{:?} {}x{}@{:.1}", m.format, m.width, m.height, m.fps),
                        "camera streaming"
                    );
                    outage_reported = false;
                    self.size = (m.width, m.height);
                    self.pattern = TestPattern::new(m.width, m.height);
                    if let Err(e) = self.stream(&mut camera) {
                        warn!("{e}; sending \"no signal\" until the camera is back");
                    }
                }
                Err(e) if !outage_reported => {
                    warn!("{e}; sending \"no signal\" and retrying every second");
                    outage_reported = true;
                }
                Err(_) => {}
            }
            let until = Instant::now() + Duration::from_secs(1);
            let mut next = Instant::now();
            while Instant::now() < until && !self.cancel.is_cancelled() {
                let mut frame = self.buffer();
                self.pattern.draw_no_signal(&mut frame, self.counter);
                frame.set_captured(Instant::now());
                self.put(frame);
                next = pace(next, self.period);
            }
        }
    }

    /// Until the camera fails for good (or shutdown); a bad frame is only dropped.
    fn stream(&mut self, camera: &mut Camera) -> Result<(), CameraError> {
        let mut silent = 0;
        while !self.cancel.is_cancelled() {
            let mut frame = self.buffer();
            match camera.next_frame(&mut frame) {
                Ok(()) => {
                    silent = 0;
                    self.put(frame);
                }
                Err(e @ CameraError::Convert { .. }) => {
                    MediaStats::add(&self.stats.video_dropped, 1);
                    tracing::debug!("{e}");
                    self.spare = Some(frame);
                }
                // A camera that gives nothing for a few seconds is reopened: a wedged
                // driver, or a node opened in the moment it was being unplugged.
                Err(e) if e.is_timeout() && silent < STALLED_AFTER => {
                    silent += 1;
                    warn!("{e}: no frame for a second");
                    self.spare = Some(frame);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

fn encode_audio(
    mut encoder: OpusEncoder,
    chunks: &Receiver<Vec<i16>>,
    recycle: &SyncSender<Vec<i16>>,
    feed: &MediaFeed,
    stats: &MediaStats,
    cancel: &CancellationToken,
) {
    let mut packet = Vec::new();
    let mut samples: u32 = 0;
    while !cancel.is_cancelled() {
        let Ok(chunk) = chunks.recv_timeout(POLL) else {
            continue;
        };
        match encoder.encode(&chunk, &mut packet) {
            Ok(n) => {
                MediaStats::add(&stats.audio_encoded, 1);
                MediaStats::add(&stats.audio_bytes, n as u64);
                // The sample clock is the capture clock: one chunk is 960 samples.
                feed.publish(EncodedFrame {
                    payloads: vec![Bytes::copy_from_slice(&packet)],
                    rtp_time: samples,
                    keyframe: false,
                    captured: Instant::now(),
                });
            }
            Err(e) => warn!("{e}"),
        }
        samples = samples.wrapping_add(CHUNK_SAMPLES as u32);
        let _ = recycle.try_send(chunk);
    }
    debug_assert_eq!(SAMPLE_RATE, 48_000);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_keeps_only_the_newest() {
        let slot = FrameSlot::default();
        let mut a = I420Frame::new(2, 2);
        a.planes_mut().0[0] = 1;
        let mut b = I420Frame::new(2, 2);
        b.planes_mut().0[0] = 2;
        assert!(slot.put(a).is_none());
        let dropped = slot.put(b).expect("the first is displaced");
        assert_eq!(dropped.y()[0], 1);
        assert_eq!(slot.take_timeout(POLL).unwrap().y()[0], 2);
        assert!(slot.take_timeout(Duration::from_millis(1)).is_none());
    }

    async fn recv(
        rx: &mut tokio::sync::broadcast::Receiver<Arc<EncodedFrame>>,
    ) -> Arc<EncodedFrame> {
        tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("a frame within 5 s")
            .expect("feed open")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn test_sources_flow_to_subscribers() {
        let video_cfg = VideoConfig {
            source: VideoSource::Test,
            width: 320,
            height: 240,
            ..VideoConfig::default()
        };
        let audio_cfg = AudioConfig {
            source: AudioSource::Test,
            ..AudioConfig::default()
        };
        let p = MediaPipeline::start(&video_cfg, &audio_cfg, CancellationToken::new()).unwrap();
        let mut video = p.video().subscribe();
        let mut last = recv(&mut video).await;
        for _ in 0..11 {
            let f = recv(&mut video).await;
            let step = f.rtp_time.wrapping_sub(last.rtp_time);
            assert!(step > 0 && step < 90_000, "RTP time moves forward: {step}");
            // The RTP clock is the capture clock, whatever the machine's load.
            let captured = (f.captured - last.captured).as_secs_f64() * 90_000.0;
            assert!(
                (f64::from(step) - captured).abs() <= 1.0,
                "RTP step {step} for {captured:.1} ticks between captures"
            );
            assert!(f.payloads.iter().all(|p| p.len() <= RTP_PAYLOAD_MTU));
            last = f;
        }
        p.video().request_keyframe();
        let mut saw_key = false;
        for _ in 0..5 {
            if recv(&mut video).await.keyframe {
                saw_key = true;
                break;
            }
        }
        assert!(saw_key, "a requested keyframe arrives within a few frames");
        // Subscribed late, so a slow video half cannot make it lag.
        let mut audio = p.audio().expect("tone on").subscribe();
        let a0 = recv(&mut audio).await;
        let a1 = recv(&mut audio).await;
        assert_eq!(a1.rtp_time.wrapping_sub(a0.rtp_time), 960);
        assert_eq!(a1.payloads.len(), 1, "one Opus packet per RTP packet");

        let stats = p.stats().snapshot();
        assert!(
            stats.video_encoded >= 10 && stats.audio_encoded >= 2,
            "{stats}"
        );
        tokio::task::spawn_blocking(move || p.shutdown())
            .await
            .unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_missing_camera_sends_no_signal_and_keeps_the_track_running() {
        use crate::media::video::test_pattern::{NO_SIGNAL_LUMA, read_counter};
        use crate::media::video::vp8::Vp8Decoder;
        let video_cfg = VideoConfig {
            source: VideoSource::Device("/nonexistent/video9".into()),
            width: 320,
            height: 240,
            ..VideoConfig::default()
        };
        let audio_cfg = AudioConfig {
            source: AudioSource::None,
            ..AudioConfig::default()
        };
        let p = MediaPipeline::start(&video_cfg, &audio_cfg, CancellationToken::new()).unwrap();
        let mut video = p.video().subscribe();
        let mut decoder = Vp8Decoder::new().unwrap();
        let mut counters = Vec::new();
        for _ in 0..5 {
            let frame = recv(&mut video).await;
            let data: Vec<u8> = frame
                .payloads
                .iter()
                .flat_map(|p| {
                    // Strip the 1-byte VP8 payload descriptor (no extensions are written).
                    p[1..].to_vec()
                })
                .collect();
            let img = decoder.decode(&data).unwrap().expect("a picture");
            let below = &img.y[100 * img.stride..100 * img.stride + 320];
            let mean = below.iter().map(|&v| u32::from(v)).sum::<u32>() / 320;
            assert!(
                mean.abs_diff(u32::from(NO_SIGNAL_LUMA)) < 8,
                "no-signal grey, got {mean}"
            );
            counters.push(read_counter(&img.y, img.stride, 320, 240).expect("still numbered"));
        }
        assert!(counters.windows(2).all(|w| w[1] > w[0]), "{counters:?}");
        tokio::task::spawn_blocking(move || p.shutdown())
            .await
            .unwrap();
    }
}
