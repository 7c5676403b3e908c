//! The video source stage: its own thread fills I420 frames, from the camera or the
//! test pattern, and puts each into the newest-frame slot. It never waits for the
//! encoder; a frame the encoder did not take is counted as dropped.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::test_pattern::TestPattern;
use super::v4l2::{Camera, CameraError};
use crate::media::frame::{I420Frame, MediaStats};
use crate::media::pace::{FrameClock, unix_ms};
use crate::media::slot::FrameSlot;

/// One-second poll timeouts in a row before a silent camera is closed and reopened.
const STALLED_AFTER: u32 = 3;

/// Where pictures come from, once `video.source = "auto"` is resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VideoOrigin {
    TestPattern,
    /// The pattern under sensor noise.
    NoisyTestPattern,
    Camera(PathBuf),
}

/// What the source paints when it has no camera frame.
#[derive(Debug, Clone, Copy)]
enum Picture {
    Pattern,
    NoSignal,
}

/// What the source asks for; a camera may grant another size.
#[derive(Debug, Clone, Copy)]
pub struct VideoMode {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
}

/// A video source thread's state: where frames go, and the buffers it reuses.
pub struct VideoCapture {
    slot: Arc<FrameSlot>,
    recycle: Receiver<I420Frame>,
    stats: Arc<MediaStats>,
    cancel: CancellationToken,
    spare: Option<I420Frame>,
    counter: u32,
    /// Draws the test pattern, or the "no signal" picture while a camera is away.
    pattern: TestPattern,
    mode: VideoMode,
    period: Duration,
}

impl VideoCapture {
    /// `recycle` brings back buffers the encoder is done with.
    pub fn new(
        mode: VideoMode,
        slot: Arc<FrameSlot>,
        recycle: Receiver<I420Frame>,
        stats: Arc<MediaStats>,
        cancel: CancellationToken,
    ) -> Self {
        Self {
            slot,
            recycle,
            stats,
            cancel,
            spare: None,
            counter: 0,
            pattern: TestPattern::new(mode.width, mode.height),
            mode,
            period: Duration::from_secs(1) / mode.fps.max(1),
        }
    }

    /// The thread's body, until shutdown.
    pub fn run(mut self, origin: VideoOrigin) {
        match origin {
            VideoOrigin::TestPattern => self.pattern_forever(),
            VideoOrigin::NoisyTestPattern => {
                self.pattern = TestPattern::new(self.mode.width, self.mode.height).noisy();
                self.pattern_forever()
            }
            VideoOrigin::Camera(path) => self.camera_forever(&path),
        }
    }

    /// A displaced or returned buffer of the current size, if there is one.
    fn reuse(&mut self) -> Option<I420Frame> {
        let size = (self.mode.width, self.mode.height);
        self.spare
            .take()
            .or_else(|| self.recycle.try_recv().ok())
            .filter(|f| f.size() == size)
    }

    /// A buffer of the current size, reused when one fits.
    fn buffer(&mut self) -> I420Frame {
        self.reuse()
            .unwrap_or_else(|| I420Frame::new(self.mode.width, self.mode.height))
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
        self.paint_on_clock(Picture::Pattern, None);
    }

    /// Paints `picture` on a camera's clock until `until` (or shutdown): each frame is
    /// stamped with the time it was due, and frames missed in a stall are dropped.
    fn paint_on_clock(&mut self, picture: Picture, until: Option<Instant>) {
        let mut clock = FrameClock::new(Instant::now(), self.period);
        while !self.cancel.is_cancelled() && until.is_none_or(|t| Instant::now() < t) {
            let tick = clock.wait();
            MediaStats::add(&self.stats.video_dropped, tick.skipped);
            self.counter = self.counter.wrapping_add(tick.skipped as u32);
            let stamp = unix_ms(tick.due);
            let mut frame = match picture {
                // Every buffer here holds an earlier frame of the pattern, or is new.
                Picture::Pattern => match self.reuse() {
                    Some(mut f) => {
                        self.pattern.update(&mut f, self.counter, stamp);
                        f
                    }
                    None => {
                        let mut f = I420Frame::new(self.mode.width, self.mode.height);
                        self.pattern.draw(&mut f, self.counter, stamp);
                        f
                    }
                },
                Picture::NoSignal => {
                    let mut f = self.buffer();
                    self.pattern.draw_no_signal(&mut f, self.counter, stamp);
                    f
                }
            };
            frame.set_captured(tick.due);
            self.put(frame);
        }
    }

    /// Streams the camera; while it is absent or broken, sends "no signal" and tries it
    /// again every second, so viewers stay connected through an unplug.
    fn camera_forever(mut self, path: &Path) {
        let VideoMode { width, height, fps } = self.mode;
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
                    self.mode.width = m.width;
                    self.mode.height = m.height;
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
            self.paint_on_clock(Picture::NoSignal, Some(until));
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
