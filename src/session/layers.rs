//! Which of the shared encode's temporal layers one viewer's link can carry (pure; time
//! passed in). The encoder runs at the strongest viewer's rate; a session forwards all
//! of it, the base layer (every other frame) alone, or only keyframes, as its own
//! estimate allows. Its viewer's VP8 picture ids and TL0PICIDX start at the encoder's
//! own, so that while it is sent every frame the packets go as encoded (one copy of each
//! shared by every such viewer); once a frame has been left out, the session restamps
//! the frames it sends so that its viewer sees no gap (sequence numbers are per session
//! already).
//!
//! Dropping never corrupts a picture: a TL1 frame is referred to by nothing, so it goes
//! whole or not at all, and is taken up again only at a layer sync; once a base-layer
//! frame is dropped, nothing but a keyframe follows it.

use std::time::{Duration, Instant};

use crate::media::VideoLayer;
use crate::media::video::vp8::LayerRates;

/// A layer's rate is carried while the viewer's video share is at least this fraction
/// of it…
const KEEP: f64 = 0.85;
/// …or has not been for less than this: the encoder's total follows the strongest
/// viewer's share a step (a steer, a frame) behind, and that viewer must not lose a
/// layer while it catches up.
const GRACE: Duration = Duration::from_millis(400);
/// A layer is added once the share reaches this fraction of its rate…
const ADD: f64 = 0.95;
/// …and has stayed there this long; doubled each time an added layer is soon dropped
/// again (the link could not carry it after all), up to [`MAX_HOLD`].
const MIN_HOLD: Duration = Duration::from_secs(1);
const MAX_HOLD: Duration = Duration::from_secs(16);
/// A layer carried this long has proven itself: the hold is back to [`MIN_HOLD`].
const PROVEN: Duration = Duration::from_secs(10);

/// How much of the encode a session forwards, least first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Forwarded {
    /// Below even the base layer: keyframes alone, each a whole picture.
    Keyframes = 0,
    /// TL0: every other frame.
    Base = 1,
    All = 2,
}

impl Forwarded {
    /// How many layers this forwards, as `/status` and `/metrics` show it.
    pub fn layers(self) -> u8 {
        self as u8
    }

    pub fn from_layers(n: u8) -> Option<Self> {
        match n {
            0 => Some(Self::Keyframes),
            1 => Some(Self::Base),
            2 => Some(Self::All),
            _ => None,
        }
    }

    fn rate_kbps(self, rates: LayerRates) -> u32 {
        match self {
            Self::Keyframes => 0,
            Self::Base => rates.base_kbps,
            Self::All => rates.total_kbps,
        }
    }

    fn next(self) -> Option<Self> {
        match self {
            Self::Keyframes => Some(Self::Base),
            Self::Base => Some(Self::All),
            Self::All => None,
        }
    }

    /// The most that `share_kbps` carries at `fraction` of each rate.
    fn most_carried(share_kbps: u32, rates: LayerRates, fraction: f64) -> Self {
        [Self::All, Self::Base]
            .into_iter()
            .find(|l| f64::from(share_kbps) >= f64::from(l.rate_kbps(rates)) * fraction)
            .unwrap_or(Self::Keyframes)
    }
}

/// The VP8 picture numbering of one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PictureIds {
    pub picture_id: u16,
    pub tl0_pic_idx: u8,
}

/// What to do with one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send it: as encoded (`None`), or its descriptor restamped with these.
    Forward(Option<PictureIds>),
    Drop,
    /// Drop it; the viewer needs a keyframe before anything else can follow.
    DropAndAskKeyframe,
}

/// One session's choice of layers, and its own picture numbering.
#[derive(Debug)]
pub struct LayerSelector {
    /// What the link carries; `None` before the first frame.
    carried: Option<Forwarded>,
    /// Since when the share has been enough for one layer more…
    enough_since: Option<Instant>,
    /// …or too little for the layers forwarded.
    short_since: Option<Instant>,
    hold: Duration,
    added_at: Option<Instant>,
    /// The viewer holds every base-layer frame since its last keyframe.
    base_whole: bool,
    /// TL1 is being forwarded (it resumes only at a layer sync).
    upper_on: bool,
    /// The next picture id and the last TL0PICIDX this viewer was sent; `None` before
    /// the first frame forwarded, whose numbering is the encoder's.
    next: Option<PictureIds>,
}

impl Default for LayerSelector {
    fn default() -> Self {
        Self {
            carried: None,
            enough_since: None,
            short_since: None,
            hold: MIN_HOLD,
            added_at: None,
            base_whole: false,
            upper_on: false,
            next: None,
        }
    }
}

impl LayerSelector {
    /// What is being forwarded; `None` before the first frame.
    pub fn forwarded(&self) -> Option<Forwarded> {
        self.carried
    }

    /// Decides `frame` at `now`, the viewer's video share being `share_kbps`.
    pub fn frame(
        &mut self,
        now: Instant,
        share_kbps: u32,
        keyframe: bool,
        layer: &VideoLayer,
    ) -> Verdict {
        let carried = self.steer(now, share_kbps, layer.rates);
        let send = if keyframe {
            self.base_whole = true;
            self.upper_on = carried == Forwarded::All;
            true
        } else if layer.temporal_id == 0 {
            if !self.base_whole {
                return if carried >= Forwarded::Base {
                    Verdict::DropAndAskKeyframe
                } else {
                    Verdict::Drop
                };
            }
            self.base_whole = carried >= Forwarded::Base;
            self.base_whole
        } else {
            self.upper_on =
                self.base_whole && carried == Forwarded::All && (self.upper_on || layer.sync);
            self.upper_on
        };
        if !send {
            return Verdict::Drop;
        }
        Verdict::Forward(self.number(keyframe || layer.temporal_id == 0, layer))
    }

    /// This viewer's numbering of a frame it is sent, `None` while that is the
    /// encoder's: it starts there, and leaves it at the first frame left out.
    fn number(&mut self, base: bool, layer: &VideoLayer) -> Option<PictureIds> {
        let encoded = PictureIds {
            picture_id: layer.picture_id & 0x7fff,
            tl0_pic_idx: layer.tl0_pic_idx,
        };
        let next = self.next.get_or_insert(PictureIds {
            tl0_pic_idx: encoded.tl0_pic_idx.wrapping_sub(u8::from(base)),
            ..encoded
        });
        if base {
            next.tl0_pic_idx = next.tl0_pic_idx.wrapping_add(1);
        }
        let ids = *next;
        next.picture_id = ids.picture_id.wrapping_add(1) & 0x7fff;
        (ids != encoded).then_some(ids)
    }

    /// Brings [`carried`](Self::carried) up to date: down when the share has not kept
    /// a layer for [`GRACE`], up one layer when it has had room for it long enough.
    fn steer(&mut self, now: Instant, share_kbps: u32, rates: LayerRates) -> Forwarded {
        let Some(carried) = self.carried else {
            let first = Forwarded::most_carried(share_kbps, rates, ADD);
            self.carried = Some(first);
            return first;
        };
        if self
            .added_at
            .is_some_and(|at| now.saturating_duration_since(at) >= PROVEN)
        {
            self.added_at = None;
            self.hold = MIN_HOLD;
        }
        let kept = Forwarded::most_carried(share_kbps, rates, KEEP);
        if kept >= carried {
            self.short_since = None;
        } else if now.saturating_duration_since(*self.short_since.get_or_insert(now)) >= GRACE {
            if self.added_at.is_some() {
                self.hold = (self.hold * 2).min(MAX_HOLD);
            }
            self.added_at = None;
            self.enough_since = None;
            self.short_since = None;
            self.carried = Some(kept);
            return kept;
        } else {
            return carried;
        }
        let Some(next) = carried.next() else {
            return carried;
        };
        if f64::from(share_kbps) < f64::from(next.rate_kbps(rates)) * ADD {
            self.enough_since = None;
            return carried;
        }
        let since = *self.enough_since.get_or_insert(now);
        if now.saturating_duration_since(since) < self.hold {
            return carried;
        }
        self.enough_since = None;
        self.added_at = Some(now);
        self.carried = Some(next);
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATES: LayerRates = LayerRates {
        base_kbps: 300,
        total_kbps: 1000,
    };

    fn layer(temporal_id: u8) -> VideoLayer {
        numbered(temporal_id, 0, 0)
    }

    /// A frame the encoder numbered `picture_id` and `tl0_pic_idx`.
    fn numbered(temporal_id: u8, picture_id: u16, tl0_pic_idx: u8) -> VideoLayer {
        VideoLayer {
            temporal_id,
            sync: temporal_id > 0,
            rates: RATES,
            picture_id,
            tl0_pic_idx,
        }
    }

    /// Feeds 30 fps of the two-layer pattern (a keyframe first) at `share_kbps` for
    /// `frames` frames from `t`; returns what was sent, as temporal ids, and the time after.
    fn run(
        s: &mut LayerSelector,
        t: Instant,
        share_kbps: u32,
        frames: u32,
        first_keyframe: bool,
    ) -> (Vec<Option<u8>>, Instant) {
        let mut sent = Vec::new();
        let mut t = t;
        for n in 0..frames {
            let key = first_keyframe && n == 0;
            let tid = if key { 0 } else { (n % 2) as u8 };
            let v = s.frame(t, share_kbps, key, &layer(tid));
            sent.push(matches!(v, Verdict::Forward(_)).then_some(tid));
            t += Duration::from_millis(33);
        }
        (sent, t)
    }

    fn count(sent: &[Option<u8>]) -> usize {
        sent.iter().flatten().count()
    }

    #[test]
    fn a_viewer_with_room_gets_every_frame() {
        let mut s = LayerSelector::default();
        let (sent, _) = run(&mut s, Instant::now(), 2000, 30, true);
        assert_eq!(count(&sent), 30);
        assert_eq!(s.forwarded(), Some(Forwarded::All));
    }

    #[test]
    fn a_viewer_with_room_for_the_base_layer_gets_every_other_frame() {
        let mut s = LayerSelector::default();
        let (sent, _) = run(&mut s, Instant::now(), 400, 30, true);
        assert_eq!(count(&sent), 15);
        assert!(sent.iter().flatten().all(|&tid| tid == 0), "{sent:?}");
        assert_eq!(s.forwarded(), Some(Forwarded::Base));
    }

    #[test]
    fn a_viewer_below_the_base_layer_gets_keyframes_only() {
        let mut s = LayerSelector::default();
        let (sent, t) = run(&mut s, Instant::now(), 100, 30, true);
        assert_eq!(sent.iter().flatten().count(), 1, "the keyframe: {sent:?}");
        assert_eq!(s.forwarded(), Some(Forwarded::Keyframes));
        assert_eq!(
            s.frame(t, 100, true, &numbered(0, 30, 15)),
            Verdict::Forward(Some(PictureIds {
                picture_id: 1,
                tl0_pic_idx: 1
            })),
            "the next keyframe goes, numbered right after the last"
        );
    }

    /// The encoder's numbering of the two-layer pattern from a keyframe at
    /// `(0x7ffe, 255)`, across both wraps: `(temporal id, picture id, TL0PICIDX)`.
    const ENCODED: [(u8, u16, u8); 5] = [
        (0, 0x7ffe, 255),
        (1, 0x7fff, 255),
        (0, 0, 0),
        (1, 1, 0),
        (0, 2, 1),
    ];

    /// What `s` makes of [`ENCODED`] at `share_kbps`: each frame forwarded, with the
    /// numbering it is restamped with.
    fn numbering(s: &mut LayerSelector, share_kbps: u32) -> Vec<Option<PictureIds>> {
        let t = Instant::now();
        ENCODED
            .iter()
            .enumerate()
            .filter_map(|(n, &(tid, id, tl0))| {
                match s.frame(t, share_kbps, n == 0, &numbered(tid, id, tl0)) {
                    Verdict::Forward(ids) => Some(ids),
                    _ => None,
                }
            })
            .collect()
    }

    #[test]
    fn a_viewer_sent_every_frame_gets_them_as_encoded() {
        let mut s = LayerSelector::default();
        assert_eq!(numbering(&mut s, 2000), vec![None; ENCODED.len()]);
    }

    #[test]
    fn once_a_frame_is_left_out_the_viewer_sees_consecutive_ids_restamped() {
        let mut s = LayerSelector::default();
        let ids = |picture_id, tl0_pic_idx| {
            Some(PictureIds {
                picture_id,
                tl0_pic_idx,
            })
        };
        assert_eq!(
            numbering(&mut s, 400),
            vec![None, ids(0x7fff, 0), ids(0, 1)],
            "the keyframe as encoded; after the first TL1 frame left out, one on"
        );
    }

    #[test]
    fn a_dropped_base_frame_waits_for_a_keyframe_and_asks_for_one() {
        let mut s = LayerSelector::default();
        let t = Instant::now();
        run(&mut s, t, 400, 4, true);
        // The link falls under the base layer: once that has lasted the grace, the next
        // base frame is dropped…
        let t = t + Duration::from_millis(200);
        s.frame(t, 100, false, &layer(1));
        let t = t + GRACE;
        assert_eq!(s.frame(t, 100, false, &layer(0)), Verdict::Drop);
        // …and when it recovers, nothing but a keyframe may follow: asked for once the
        // base layer is carried again.
        let mut t = t + Duration::from_secs(5);
        let mut verdicts = Vec::new();
        while s.forwarded() != Some(Forwarded::Base) {
            verdicts.push(s.frame(t, 400, false, &layer(0)));
            t += Duration::from_millis(66);
        }
        assert_eq!(verdicts.pop(), Some(Verdict::DropAndAskKeyframe));
        assert!(verdicts.iter().all(|v| *v == Verdict::Drop), "{verdicts:?}");
        assert_eq!(
            s.frame(t, 400, false, &layer(0)),
            Verdict::DropAndAskKeyframe
        );
        assert!(matches!(
            s.frame(t, 400, true, &layer(0)),
            Verdict::Forward(_)
        ));
        assert!(matches!(
            s.frame(t, 400, false, &layer(0)),
            Verdict::Forward(_)
        ));
    }

    #[test]
    fn a_dip_shorter_than_the_grace_costs_no_layer() {
        let mut s = LayerSelector::default();
        let (_, t) = run(&mut s, Instant::now(), 2000, 10, true);
        let (sent, t) = run(&mut s, t, 800, 10, false);
        let (more, _) = run(&mut s, t, 2000, 10, false);
        assert_eq!(count(&sent) + count(&more), 20);
        assert_eq!(s.forwarded(), Some(Forwarded::All));
    }

    #[test]
    fn layers_drop_after_the_grace_and_come_back_only_after_the_hold() {
        let mut s = LayerSelector::default();
        let (_, t) = run(&mut s, Instant::now(), 2000, 10, true);
        let (sent, t) = run(&mut s, t, 500, 20, false);
        assert_eq!(s.forwarded(), Some(Forwarded::Base));
        let after_grace = &sent[(GRACE.as_millis() / 33 + 1) as usize..];
        assert!(
            after_grace.iter().flatten().all(|&tid| tid == 0),
            "{sent:?}"
        );
        // Room again: not within the hold…
        let (sent, t) = run(&mut s, t, 2000, 30, false);
        assert_eq!(count(&sent), 15, "{sent:?}");
        // …then every frame again.
        let (sent, _) = run(&mut s, t, 2000, 10, false);
        assert_eq!(count(&sent), 10, "{sent:?}");
        assert_eq!(s.forwarded(), Some(Forwarded::All));
    }

    #[test]
    fn a_layer_that_fails_again_soon_is_retried_later_each_time() {
        let mut s = LayerSelector::default();
        let (_, mut t) = run(&mut s, Instant::now(), 400, 2, true);
        let mut holds = Vec::new();
        for _ in 0..3 {
            let from = t;
            while s.forwarded() != Some(Forwarded::All) {
                t += Duration::from_millis(33);
                s.frame(t, 2000, false, &layer(1));
            }
            holds.push((t - from).as_millis() / 100);
            s.frame(t, 400, false, &layer(0));
            t += GRACE;
            s.frame(t, 400, false, &layer(0));
            assert_eq!(s.forwarded(), Some(Forwarded::Base));
        }
        assert!(holds[0] < holds[1] && holds[1] < holds[2], "{holds:?}");
    }

    #[test]
    fn tl1_resumes_only_at_a_layer_sync() {
        let mut s = LayerSelector::default();
        let t = Instant::now();
        s.frame(t, 2000, true, &layer(0));
        s.frame(t, 500, false, &layer(1));
        let t = t + GRACE;
        s.frame(t, 500, false, &layer(0));
        assert_eq!(s.forwarded(), Some(Forwarded::Base));
        let no_sync = VideoLayer {
            sync: false,
            ..layer(1)
        };
        // Room again: the hold starts, and once it is over TL1 waits for a sync.
        let later = t + Duration::from_secs(3);
        s.frame(later, 2000, false, &no_sync);
        let after = later + Duration::from_millis(1100);
        assert_eq!(s.frame(after, 2000, false, &no_sync), Verdict::Drop);
        assert_eq!(s.forwarded(), Some(Forwarded::All));
        assert!(matches!(
            s.frame(after, 2000, false, &layer(1)),
            Verdict::Forward(_)
        ));
    }

    #[test]
    fn layer_counts_round_trip() {
        for f in [Forwarded::Keyframes, Forwarded::Base, Forwarded::All] {
            assert_eq!(Forwarded::from_layers(f.layers()), Some(f));
        }
        assert_eq!(Forwarded::from_layers(3), None);
    }
}
