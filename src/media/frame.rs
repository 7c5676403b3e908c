use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use tokio::sync::broadcast;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind { Video, Audio }

#[derive(Debug)]
pub struct EncodedFrame { pub payloads: Vec<bytes::Bytes>, pub rtp_time: u32, pub keyframe: bool, pub captured: Instant }

#[derive(Clone)]
pub struct MediaFeed { tx: broadcast::Sender<Arc<EncodedFrame>>, keyframe: Arc<AtomicBool>, kind: MediaKind }
impl MediaFeed {
    pub fn new(kind: MediaKind, cap: usize) -> Self { Self { tx: broadcast::channel(cap).0, keyframe: Arc::default(), kind } }
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<EncodedFrame>> { self.tx.subscribe() }
    pub fn request_keyframe(&self) { self.keyframe.store(true, Ordering::Relaxed) }
    pub fn kind(&self) -> MediaKind { self.kind }
}
