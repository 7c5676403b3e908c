//! What moves along the frame's way: raw I420 pictures into the encoder, encoded frames
//! out of it, and the feed through which sessions receive them.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use tokio::sync::broadcast;

use super::video::vp8::LayerRates;

/// A raw picture: Y, then U, then V, tightly packed, chroma halved in both directions
/// (rounded up). Buffers are reused, never allocated per frame. The fields are private
/// so the buffer always holds exactly the planes its size says: the encoder hands it to
/// libvpx by pointer.
#[derive(Debug, Clone)]
pub struct I420Frame {
    width: u32,
    height: u32,
    data: Vec<u8>,
    captured: Instant,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("I420 {width}x{height} takes {need} bytes, got {got}")]
pub struct FrameSizeError {
    pub width: u32,
    pub height: u32,
    pub need: usize,
    pub got: usize,
}

impl I420Frame {
    /// A black-on-zero frame of this size.
    pub fn new(width: u32, height: u32) -> Self {
        Self {
            width,
            height,
            data: vec![0; Self::len_for(width, height)],
            captured: Instant::now(),
        }
    }

    /// Wraps planes read from elsewhere (a file of raw frames); refuses a buffer whose
    /// length is not exactly what `width` x `height` takes.
    pub fn from_data(width: u32, height: u32, data: Vec<u8>) -> Result<Self, FrameSizeError> {
        let need = Self::len_for(width, height);
        if data.len() != need {
            return Err(FrameSizeError {
                width,
                height,
                need,
                got: data.len(),
            });
        }
        Ok(Self {
            width,
            height,
            data,
            captured: Instant::now(),
        })
    }

    fn luma_len(width: u32, height: u32) -> usize {
        width as usize * height as usize
    }

    fn chroma_len(width: u32, height: u32) -> usize {
        width.div_ceil(2) as usize * height.div_ceil(2) as usize
    }

    fn len_for(width: u32, height: u32) -> usize {
        Self::luma_len(width, height) + 2 * Self::chroma_len(width, height)
    }

    pub fn width(&self) -> u32 {
        self.width
    }

    pub fn height(&self) -> u32 {
        self.height
    }

    pub fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// Every plane, in order: what an encoder or a file of raw frames takes.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// When the picture was taken: the driver's capture time, or when it was drawn.
    pub fn captured(&self) -> Instant {
        self.captured
    }

    pub fn set_captured(&mut self, at: Instant) {
        self.captured = at;
    }

    pub fn y(&self) -> &[u8] {
        &self.data[..Self::luma_len(self.width, self.height)]
    }

    pub fn planes_mut(&mut self) -> (&mut [u8], &mut [u8], &mut [u8]) {
        let luma = Self::luma_len(self.width, self.height);
        let chroma = Self::chroma_len(self.width, self.height);
        let (y, uv) = self.data.split_at_mut(luma);
        let (u, v) = uv.split_at_mut(chroma);
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
    /// `captured` on the wall clock, read once at encode: what `abs-capture-time` carries
    /// (and the test pattern paints).
    pub captured_wall: SystemTime,
    /// Video: the frame's temporal layer and the encoder's layer rates when it was made.
    pub layer: Option<VideoLayer>,
}

/// Where a video frame sits among the temporal layers, for a session deciding what its
/// viewer's link can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoLayer {
    /// 0: the base layer, which keyframes are too.
    pub temporal_id: u8,
    /// Refers only to base-layer frames: a viewer may start taking its layer here.
    pub sync: bool,
    /// What the encoder's layers were given for this frame.
    pub rates: LayerRates,
    /// The VP8 picture id and TL0PICIDX the encoder stamped it with: what a session that
    /// has left no frame out sends unchanged.
    pub picture_id: u16,
    pub tl0_pic_idx: u8,
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

    /// Whether anyone receives this feed: with nobody watching, its encoder rests.
    pub fn has_subscribers(&self) -> bool {
        self.frames.receiver_count() > 0
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
    /// Frames the encode stage took and let go with no viewer to encode for.
    pub video_rested: AtomicU64,
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
    pub video_rested: u64,
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
            video_rested: get(&self.video_rested),
            video_keyframes: get(&self.video_keyframes),
            video_bytes: get(&self.video_bytes),
            audio_captured: get(&self.audio_captured),
            audio_dropped: get(&self.audio_dropped),
            audio_encoded: get(&self.audio_encoded),
            audio_bytes: get(&self.audio_bytes),
        }
    }
}

impl StatsSnapshot {
    /// Frames through the encode stage, encoded or rested: what shows the video's way is
    /// alive, watched or not (the systemd watchdog's measure).
    pub fn video_through_encoder(&self) -> u64 {
        self.video_encoded + self.video_rested
    }
}

impl fmt::Display for StatsSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "video {} captured, {} dropped, {} encoded ({} key, {} KiB), {} rested; audio {} captured, {} dropped, {} encoded ({} KiB)",
            self.video_captured,
            self.video_dropped,
            self.video_encoded,
            self.video_keyframes,
            self.video_bytes / 1024,
            self.video_rested,
            self.audio_captured,
            self.audio_dropped,
            self.audio_encoded,
            self.audio_bytes / 1024,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_planes_of_the_wrong_length_are_refused() {
        assert_eq!(
            I420Frame::from_data(4, 2, vec![0; 11]).unwrap_err(),
            FrameSizeError {
                width: 4,
                height: 2,
                need: 12,
                got: 11
            }
        );
        assert!(I420Frame::from_data(4, 2, vec![0; 13]).is_err());
        // Odd sizes round chroma up, as libvpx reads it: 3x3 luma, 2x2 per chroma plane.
        assert!(I420Frame::from_data(3, 3, vec![0; 9 + 4 + 4]).is_ok());
        let f = I420Frame::from_data(4, 2, (0..12).collect()).unwrap();
        assert_eq!(f.y(), &[0, 1, 2, 3, 4, 5, 6, 7]);
    }

    #[test]
    fn planes_cover_the_buffer_for_odd_sizes_too() {
        let mut f = I420Frame::new(5, 3);
        let (y, u, v) = f.planes_mut();
        assert_eq!((y.len(), u.len(), v.len()), (15, 6, 6));
        assert_eq!(f.data().len(), 27);
    }
}
