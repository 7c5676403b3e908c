//! What a viewer saw over a span of time: frames (and how many read their counter back),
//! the gaps between them, audio decoded, video packets lost.

use std::time::Duration;

use tokio::time::Instant;

use super::viewer::{Seen, VideoPackets, Viewer};

#[derive(Debug)]
pub struct Playback {
    pub frames: usize,
    /// Frames whose test-pattern counter read back: whole, uncorrupted pictures.
    pub intact: usize,
    pub longest_gap: Duration,
    /// Gaps longer than the `freeze` given to [`watch`].
    pub freezes: usize,
    pub audio: Duration,
    pub video: VideoPackets,
}

/// Watches `viewer` for `span`: frames decoded, the gaps between them (the one before the
/// first frame and the one after the last count too), audio decoded.
pub async fn watch(viewer: &mut Viewer, span: Duration, freeze: Duration) -> Playback {
    let start = Instant::now();
    let end = start + span;
    let mut last = start;
    let mut p = Playback {
        frames: 0,
        intact: 0,
        longest_gap: Duration::ZERO,
        freezes: 0,
        audio: Duration::ZERO,
        video: VideoPackets::default(),
    };
    let gap = |p: &mut Playback, from: Instant, to: Instant| {
        let g = to - from;
        p.longest_gap = p.longest_gap.max(g);
        p.freezes += usize::from(g > freeze);
    };
    while let Ok(Some(seen)) = tokio::time::timeout_at(end, viewer.seen.recv()).await {
        match seen {
            Seen::Video(f) => {
                let now = Instant::now();
                gap(&mut p, last, now);
                last = now;
                p.frames += 1;
                p.intact += usize::from(f.counter.is_some());
            }
            Seen::Audio(pcm) => p.audio += Duration::from_secs_f64(pcm.len() as f64 / 48_000.0),
            _ => {}
        }
    }
    gap(&mut p, last, end);
    p.video = viewer.video_packets().await;
    p
}
