//! What moves along the frame's way: raw I420 pictures into the encoder, encoded frames
//! out of it, and the feed through which sessions receive them.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::broadcast;

/// A raw picture: Y, then U, then V, tightly packed. Buffers are reused, never
/// allocated per frame.
#[derive(Debug, Clone)]
pub struct I420Frame {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
    pub captured: Instant,
}

impl I420Frame {
    pub fn new(width: u32, height: u32) -> Self {
        let luma = width as usize * height as usize;
        Self {
            width,
            height,
            data: vec![0; luma + luma / 2],
            captured: Instant::now(),
        }
    }

    pub fn y(&self) -> &[u8] {
        &self.data[..self.width as usize * self.height as usize]
    }

    pub fn planes_mut(&mut self) -> (&mut [u8], &mut [u8], &mut [u8]) {
        let luma = self.width as usize * self.height as usize;
        let (y, chroma) = self.data.split_at_mut(luma);
        let (u, v) = chroma.split_at_mut(luma / 4);
        (y, u, v)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    Video,
    Audio,
}

/// One encoded frame, already split into RTP payloads (VP8 payload descriptor
/// included) in the encoder thread, so that each viewer only adds an RTP header.
#[derive(Debug)]
pub struct EncodedFrame {
    pub payloads: Vec<Bytes>,
    /// Media clock (90 kHz video, 48 kHz audio) from the capture time, not the send time.
    pub rtp_time: u32,
    pub keyframe: bool,
    pub captured: Instant,
}

/// A session's handle on one encoded stream: subscribe to frames, ask for a keyframe.
#[derive(Clone)]
pub struct MediaFeed {
    kind: MediaKind,
    frames: broadcast::Sender<Arc<EncodedFrame>>,
    keyframe_wanted: Arc<AtomicBool>,
}

impl MediaFeed {
    /// Frames a viewer may fall behind before it skips ahead: about a second of video
    /// (or 1.3 s of audio). A lagging viewer never holds back capture or other viewers.
    pub fn new(kind: MediaKind) -> Self {
        let capacity = match kind {
            MediaKind::Video => 32,
            MediaKind::Audio => 64,
        };
        Self {
            kind,
            frames: broadcast::channel(capacity).0,
            keyframe_wanted: Arc::default(),
        }
    }

    pub fn kind(&self) -> MediaKind {
        self.kind
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<EncodedFrame>> {
        self.frames.subscribe()
    }

    /// Many requests before the next frame make one keyframe.
    pub fn request_keyframe(&self) {
        self.keyframe_wanted.store(true, Ordering::Relaxed);
    }

    /// For the encoder: whether a keyframe was asked for since the last call.
    pub(crate) fn take_keyframe_request(&self) -> bool {
        self.keyframe_wanted.swap(false, Ordering::Relaxed)
    }

    /// For the encoder: hands a frame to every subscriber (none is fine).
    pub(crate) fn publish(&self, frame: EncodedFrame) {
        let _ = self.frames.send(Arc::new(frame));
    }
}

/// Counters along the frame's way, for the status line.
#[derive(Debug, Default)]
pub struct MediaStats {
    pub video_captured: AtomicU64,
    pub video_dropped: AtomicU64,
    pub video_encoded: AtomicU64,
    pub video_keyframes: AtomicU64,
    pub video_bytes: AtomicU64,
    pub audio_captured: AtomicU64,
    pub audio_dropped: AtomicU64,
    pub audio_encoded: AtomicU64,
    pub audio_bytes: AtomicU64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatsSnapshot {
    pub video_captured: u64,
    pub video_dropped: u64,
    pub video_encoded: u64,
    pub video_keyframes: u64,
    pub video_bytes: u64,
    pub audio_captured: u64,
    pub audio_dropped: u64,
    pub audio_encoded: u64,
    pub audio_bytes: u64,
}

impl MediaStats {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StatsSnapshot {
            video_captured: get(&self.video_captured),
            video_dropped: get(&self.video_dropped),
            video_encoded: get(&self.video_encoded),
            video_keyframes: get(&self.video_keyframes),
            video_bytes: get(&self.video_bytes),
            audio_captured: get(&self.audio_captured),
            audio_dropped: get(&self.audio_dropped),
            audio_encoded: get(&self.audio_encoded),
            audio_bytes: get(&self.audio_bytes),
        }
    }
}

impl fmt::Display for StatsSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "video {} captured, {} dropped, {} encoded ({} key, {} KiB); audio {} captured, {} dropped, {} encoded ({} KiB)",
            self.video_captured,
            self.video_dropped,
            self.video_encoded,
            self.video_keyframes,
            self.video_bytes / 1024,
            self.audio_captured,
            self.audio_dropped,
            self.audio_encoded,
            self.audio_bytes / 1024,
        )
    }
}
