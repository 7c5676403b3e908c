//! The one owner of sources and encoders, and the wiring between them. Each blocking
//! stage runs on its own named thread; what crosses between them is a slot (video), a
//! short bounded queue (audio), an atomic (keyframe request, bitrate) or a broadcast of
//! encoded frames (sessions). The stages themselves live along the frame's way:
//! [`video::source`](super::video::source), [`slot`](super::slot),
//! [`video::encode`](super::video::encode), [`audio::source`](super::audio::source),
//! [`audio::encode`](super::audio::encode).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::sync_channel;
use std::time::Instant;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::audio::alsa::Microphone;
use super::audio::encode::AudioEncode;
use super::audio::opus::OpusEncoder;
use super::audio::source::{AudioCapture, AudioOrigin, TONE_HZ};
use super::frame::{I420Frame, MediaFeed, MediaKind, MediaStats};
use super::slot::FrameSlot;
use super::threads::{Ended, MediaThreads};
use super::video::encode::VideoEncode;
use super::video::source::{VideoCapture, VideoMode, VideoOrigin};
use super::video::v4l2;
use super::video::vp8::{self, Arch, LayerRates, Vp8Error, Vp8Settings};
use crate::config::{
    AudioConfig, AudioSource, EncoderSpeed, EncoderThreads, VideoConfig, VideoSource,
};

/// 100 ms of audio between tone and Opus: absorbs scheduling hiccups, adds no latency
/// while the encoder keeps up.
const AUDIO_QUEUE: usize = 5;
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

/// `video.source` with `auto` resolved: the first camera found, else the pattern.
fn video_origin(source: &VideoSource) -> VideoOrigin {
    let origin = match source {
        VideoSource::Device(path) => VideoOrigin::Camera(path.clone()),
        VideoSource::Test => VideoOrigin::TestPattern,
        VideoSource::NoisyTest => VideoOrigin::NoisyTestPattern,
        VideoSource::Auto => match v4l2::first_camera(&v4l2::list_cameras()) {
            Some(c) => VideoOrigin::Camera(c.path.clone()),
            None => {
                warn!("video.source = auto: no camera found; sending the test pattern");
                VideoOrigin::TestPattern
            }
        },
    };
    match &origin {
        VideoOrigin::Camera(path) => info!(camera = %path.display(), "video: camera"),
        VideoOrigin::TestPattern => info!("video: test pattern"),
        VideoOrigin::NoisyTestPattern => info!("video: test pattern under sensor noise"),
    }
    origin
}

/// `audio.source` with `auto` resolved: the default PCM if it opens, else the tone.
/// `None`: no audio track.
fn audio_origin(source: &AudioSource) -> Option<AudioOrigin> {
    let origin = match source {
        AudioSource::None => None,
        AudioSource::Test => Some(AudioOrigin::Tone),
        AudioSource::Pcm(name) => Some(AudioOrigin::Microphone(name.clone())),
        AudioSource::Auto => match Microphone::open(AUTO_PCM) {
            Ok(_) => Some(AudioOrigin::Microphone(AUTO_PCM.to_owned())),
            Err(e) => {
                warn!("audio.source = auto: {e}; sending the test tone");
                Some(AudioOrigin::Tone)
            }
        },
    };
    match &origin {
        None => info!("audio: none"),
        Some(AudioOrigin::Tone) => info!(hz = TONE_HZ, "audio: test tone"),
        Some(AudioOrigin::Microphone(pcm)) => info!(%pcm, "audio: microphone"),
    }
    origin
}

/// The encoder's share of `[video]`, with `"auto"` resolved for this machine.
fn vp8_settings(v: &VideoConfig) -> Vp8Settings {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = match v.threads {
        EncoderThreads::Set(n) => n,
        EncoderThreads::Auto => vp8::threads_for(v.width, v.height, cores),
    };
    let cpu_used = match v.cpu_used {
        EncoderSpeed::Set(n) => n,
        EncoderSpeed::Auto => vp8::speed_for(v.width, v.height, cores, Arch::HOST),
    };
    Vp8Settings {
        width: v.width,
        height: v.height,
        target_kbps: v.start_bitrate_kbps(),
        frame_rate: v.fps,
        max_keyframe_distance: v.keyframe_interval,
        cpu_used,
        threads,
        temporal_layers: v.temporal_layers,
    }
}

/// The video encoder's target rates: set by congestion control, applied by the encoder
/// before its next frame. Both rates in one atomic, so the encoder never reads a base
/// from one decision with a total from another.
#[derive(Debug, Clone)]
pub struct VideoBitrate(Arc<AtomicU64>);

impl VideoBitrate {
    pub fn new(rates: LayerRates) -> Self {
        Self(Arc::new(AtomicU64::new(Self::pack(rates))))
    }

    fn pack(r: LayerRates) -> u64 {
        u64::from(r.base_kbps) << 32 | u64::from(r.total_kbps)
    }

    pub fn rates(&self) -> LayerRates {
        let v = self.0.load(Ordering::Relaxed);
        LayerRates {
            base_kbps: (v >> 32) as u32,
            total_kbps: v as u32,
        }
    }

    /// All layers together, kbps.
    pub fn kbps(&self) -> u32 {
        self.rates().total_kbps
    }

    pub fn set(&self, rates: LayerRates) {
        self.0.store(Self::pack(rates), Ordering::Relaxed);
    }
}

pub struct MediaPipeline {
    video: MediaFeed,
    audio: Option<MediaFeed>,
    stats: Arc<MediaStats>,
    bitrate: VideoBitrate,
    cancel: CancellationToken,
    threads: MediaThreads,
}

impl MediaPipeline {
    pub fn start(
        video: &VideoConfig,
        audio: &AudioConfig,
        cancel: CancellationToken,
    ) -> Result<Self, PipelineError> {
        let video_origin = video_origin(&video.source);
        let audio_origin = audio_origin(&audio.source);
        let mut pipeline = Self {
            video: MediaFeed::new(MediaKind::Video),
            audio: audio_origin
                .is_some()
                .then(|| MediaFeed::new(MediaKind::Audio)),
            stats: Arc::default(),
            bitrate: VideoBitrate::new(LayerRates::start(
                video.temporal_layers,
                video.start_bitrate_kbps(),
            )),
            threads: MediaThreads::new(cancel.clone()),
            cancel,
        };
        // On any error below, Drop cancels and joins what already started.
        pipeline.start_video(video, video_origin)?;
        if let (Some(feed), Some(origin)) = (pipeline.audio.clone(), audio_origin) {
            pipeline.start_audio(audio, feed, origin)?;
        }
        info!(
            width = video.width,
            height = video.height,
            fps = video.fps,
            kbps = video.start_bitrate_kbps(),
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

    /// Congestion control's way to the encoder's target.
    pub fn video_bitrate(&self) -> VideoBitrate {
        self.bitrate.clone()
    }

    /// Changes when a media thread ends before shutdown (see [`MediaThreads`]): the
    /// pipeline is broken, and campeer stops for its service manager to restart it.
    pub fn ended(&self) -> Ended {
        self.threads.ended()
    }

    /// Stops every thread and waits for them.
    pub fn shutdown(mut self) {
        self.threads.stop();
    }

    fn spawn(
        &mut self,
        name: &'static str,
        body: impl FnOnce() + Send + 'static,
    ) -> Result<(), PipelineError> {
        self.threads
            .spawn(name, body)
            .map_err(|source| PipelineError::Spawn { name, source })
    }

    /// The encoder first (its errors are the likely ones), then the source.
    fn start_video(&mut self, cfg: &VideoConfig, origin: VideoOrigin) -> Result<(), PipelineError> {
        let slot = Arc::new(FrameSlot::default());
        let (recycle_tx, recycle_rx) = sync_channel::<I420Frame>(2);
        let (ready_tx, ready_rx) = sync_channel(1);
        let settings = vp8_settings(cfg);
        info!(
            threads = settings.threads,
            cpu_used = settings.cpu_used,
            "VP8 encoder"
        );
        let (feed, stats, bitrate, cancel) = (
            self.video.clone(),
            self.stats(),
            self.bitrate.clone(),
            self.cancel.clone(),
        );
        let encoder_slot = Arc::clone(&slot);
        let started = Instant::now();
        self.spawn("campeer-vp8", move || {
            // libvpx's context stays on this thread for its whole life.
            match VideoEncode::new(settings, started, feed, stats, bitrate) {
                Ok(stage) => {
                    let _ = ready_tx.send(Ok(()));
                    stage.run(&encoder_slot, &recycle_tx, &cancel);
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            }
        })?;
        ready_rx
            .recv()
            .map_err(|_| PipelineError::Died("campeer-vp8"))??;

        let mode = VideoMode {
            width: cfg.width,
            height: cfg.height,
            fps: cfg.fps,
        };
        let source = VideoCapture::new(mode, slot, recycle_rx, self.stats(), self.cancel.clone());
        let name = match origin {
            VideoOrigin::TestPattern | VideoOrigin::NoisyTestPattern => "campeer-pattern",
            VideoOrigin::Camera(_) => "campeer-v4l2",
        };
        self.spawn(name, move || source.run(origin))
    }

    fn start_audio(
        &mut self,
        cfg: &AudioConfig,
        feed: MediaFeed,
        origin: AudioOrigin,
    ) -> Result<(), PipelineError> {
        let (chunks_tx, chunks_rx) = sync_channel::<Vec<i16>>(AUDIO_QUEUE);
        let (recycle_tx, recycle_rx) = sync_channel::<Vec<i16>>(AUDIO_QUEUE + 2);
        let stage = AudioEncode {
            encoder: OpusEncoder::new(cfg.bitrate_kbps)?,
            feed,
            stats: self.stats(),
        };
        let cancel = self.cancel.clone();
        self.spawn("campeer-opus", move || {
            stage.run(&chunks_rx, &recycle_tx, &cancel);
        })?;

        let source = AudioCapture::new(chunks_tx, recycle_rx, self.stats(), self.cancel.clone());
        let name = match origin {
            AudioOrigin::Tone => "campeer-tone",
            AudioOrigin::Microphone(_) => "campeer-alsa",
        };
        self.spawn(name, move || source.run(origin))
    }
}

impl Drop for MediaPipeline {
    fn drop(&mut self) {
        self.threads.stop();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::media::EncodedFrame;
    use crate::media::video::encode::RTP_PAYLOAD_MTU;
    use crate::media::video::vp8_rtp;

    fn start_320x240(video: VideoSource, audio: AudioSource) -> MediaPipeline {
        let video = VideoConfig {
            source: video,
            width: 320,
            height: 240,
            ..VideoConfig::default()
        };
        let audio = AudioConfig {
            source: audio,
            ..AudioConfig::default()
        };
        MediaPipeline::start(&video, &audio, CancellationToken::new()).unwrap()
    }

    async fn recv(
        rx: &mut tokio::sync::broadcast::Receiver<Arc<EncodedFrame>>,
    ) -> Arc<EncodedFrame> {
        // A loaded machine may leave the test behind the broadcast: skip, as a session does.
        let next = async {
            loop {
                match rx.recv().await {
                    Ok(frame) => return frame,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(e) => panic!("feed: {e}"),
                }
            }
        };
        // Only against a hang: the figures are checked on what arrives, not when.
        tokio::time::timeout(Duration::from_secs(20), next)
            .await
            .expect("a frame within 20 s")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn test_sources_flow_to_subscribers() {
        let p = start_320x240(VideoSource::Test, AudioSource::Test);
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
        let step = a1.rtp_time.wrapping_sub(a0.rtp_time);
        assert!(step > 0 && step % 960 == 0, "20 ms chunks: {step}");
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
    async fn nothing_is_encoded_until_a_viewer_subscribes_then_a_stamped_keyframe() {
        use crate::media::pace::unix_ms;
        use crate::media::video::test_pattern::read_stamp;
        use crate::media::video::vp8::Vp8Decoder;
        let p = start_320x240(VideoSource::Test, AudioSource::Test);
        let deadline = Instant::now() + Duration::from_secs(10);
        // Frames flow through the resting encoder: the watchdog's measure of liveness.
        while p.stats().snapshot().video_rested < 3 || p.stats().snapshot().audio_captured < 3 {
            assert!(Instant::now() < deadline, "capture runs without viewers");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let idle = p.stats().snapshot();
        assert_eq!((idle.video_encoded, idle.audio_encoded), (0, 0), "{idle}");

        let mut video = p.video().subscribe();
        let first = recv(&mut video).await;
        assert!(
            first.keyframe,
            "the first frame a viewer gets is a keyframe"
        );
        let data = vp8_rtp::unpacketize(&first.payloads);
        let img = Vp8Decoder::new()
            .unwrap()
            .decode(&data)
            .unwrap()
            .expect("a picture");
        let stamp = read_stamp(&img.y, img.stride, 320, 240).expect("stamped");
        assert!(
            stamp.abs_diff(unix_ms(first.captured)) <= 1,
            "the painted time {stamp} is the frame's capture time {}",
            unix_ms(first.captured)
        );
        let wall = first
            .captured_wall
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        assert!(
            wall.abs_diff(stamp) <= 1,
            "the wall-clock capture time {wall} is the painted time {stamp}"
        );
        tokio::task::spawn_blocking(move || p.shutdown())
            .await
            .unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_missing_camera_sends_no_signal_and_keeps_the_track_running() {
        use crate::media::video::test_pattern::{NO_SIGNAL_LUMA, read_counter};
        use crate::media::video::vp8::Vp8Decoder;
        let p = start_320x240(
            VideoSource::Device("/nonexistent/video9".into()),
            AudioSource::None,
        );
        let mut video = p.video().subscribe();
        let mut decoder = Vp8Decoder::new().unwrap();
        let mut counters = Vec::new();
        for _ in 0..5 {
            let frame = recv(&mut video).await;
            let data = vp8_rtp::unpacketize(&frame.payloads);
            let img = decoder.decode(&data).unwrap().expect("a picture");
            let below = &img.y[200 * img.stride..200 * img.stride + 320];
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
