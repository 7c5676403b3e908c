//! What a viewer saw over a span of time: frames (and how many read their counter back),
//! the gaps between them, audio decoded, video packets lost; and whether it played: the
//! frame counters it decoded in order, with no hole longer than a given number of frames.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use super::viewer::{Seen, VideoPackets, Viewer};

#[derive(Debug)]
pub struct Playback {
    pub frames: usize,
    /// Frames whose test-pattern counter read back: whole, uncorrupted pictures.
    pub intact: usize,
    /// Intact frames whose counter did not rise past the one before: shown out of order.
    pub backwards: usize,
    /// Frames the counters of consecutive intact frames passed over: lost for good (or
    /// never captured, on a busy host).
    pub skipped: u32,
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
    let mut last_counter = None;
    let mut p = Playback {
        frames: 0,
        intact: 0,
        backwards: 0,
        skipped: 0,
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
                if let Some(counter) = f.counter {
                    p.intact += 1;
                    p.backwards += usize::from(last_counter.is_some_and(|l| counter <= l));
                    if let Some(before) = last_counter {
                        p.skipped += counter.saturating_sub(before).saturating_sub(1);
                    }
                    last_counter = Some(counter);
                }
            }
            Seen::Audio(pcm) => p.audio += Duration::from_secs_f64(pcm.len() as f64 / 48_000.0),
            _ => {}
        }
    }
    gap(&mut p, last, end);
    p.video = viewer.video_packets().await;
    p
}

/// The counters `viewer` decodes until `end` completes.
pub async fn counters_until(viewer: &mut Viewer, end: impl Future<Output = ()>) -> Vec<u32> {
    let mut counters = Vec::new();
    tokio::pin!(end);
    loop {
        let seen = tokio::select! {
            _ = &mut end => return counters,
            seen = viewer.seen.recv() => seen.expect("the viewer's events"),
        };
        match seen {
            Seen::Video(f) => counters.push(f.counter.expect("the pattern's counter reads back")),
            Seen::Failed => panic!("viewer {}: connection failed", viewer.ufrag),
            Seen::Violation(what) => panic!("viewer {}: {what}", viewer.ufrag),
            Seen::Connected | Seen::Audio(_) => {}
        }
    }
}

/// Asserts that `counters` rise, by at most `max_step` at a time (a step of `n` is a hole
/// of `n - 1` frames), and that there is at least one.
pub fn assert_in_order(viewer: &str, counters: &[u32], max_step: u32) {
    let (Some(first), Some(last)) = (counters.first(), counters.last()) else {
        panic!("{viewer} decoded no frame");
    };
    let largest = counters.windows(2).map(|w| w[1].wrapping_sub(w[0])).max();
    eprintln!(
        "{viewer}: {} frames, counters {first}..={last}, largest step {largest:?}",
        counters.len()
    );
    for w in counters.windows(2) {
        assert!(
            w[1] > w[0],
            "{viewer}: counter went from {} to {}",
            w[0],
            w[1]
        );
        assert!(
            w[1] - w[0] <= max_step,
            "{viewer}: a hole of {} frames, from {} to {}",
            w[1] - w[0] - 1,
            w[0],
            w[1]
        );
    }
}
