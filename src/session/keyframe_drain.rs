//! Keyframes for a viewer sent keyframes only (below the base layer; pure, time passed
//! in). Such a viewer gets a picture only when a keyframe reaches it whole, and each one
//! is sized for the strongest viewer. So a keyframe goes to it only when its pacer can
//! hold the keyframe whole (the pacer refuses what its queue cannot hold: a keyframe cut
//! short decodes as nothing, and only costs the link) and when its link has carried the
//! one before at [`KEYFRAME_SHARE`] of its video share; once that is done, and at most
//! every [`ASK_EVERY`], the session asks the encoder for the next. Its viewer's own
//! requests are not relayed: they ask for a keyframe a second (a frame cut short, or none
//! for a while), which every other viewer would be sent too.

use std::time::{Duration, Instant};

/// What of its video share a keyframes-only viewer's keyframes may take on average: the
/// rest is room for resends of their losses, and for an estimate that was too high.
const KEYFRAME_SHARE: f64 = 0.5;
/// The least video share a keyframes-only viewer's link is taken to carry. Sent little
/// (its audio and a keyframe every few seconds), such a viewer's estimate follows what it
/// is sent, not what its link could carry, and was seen to fall under its audio alone (a
/// share of 0, which would hold the next keyframe back for minutes).
const LEAST_SHARE_KBPS: u32 = 32;
/// How often such a viewer may ask the encoder for a keyframe: every other viewer is sent
/// it too, and pays for its bits (several frames' worth) in the frames that follow.
const ASK_EVERY: Duration = Duration::from_secs(3);

/// One keyframes-only session's keyframes.
#[derive(Debug, Default)]
pub struct KeyframeDrain {
    /// When the last keyframe was sent, and when the link will have carried it.
    sent_at: Option<Instant>,
    drained_at: Option<Instant>,
    /// The next keyframe has been asked for since the last one sent.
    asked: bool,
}

impl KeyframeDrain {
    /// Whether a keyframe of `packets` payloads and `bytes` goes to the viewer at `now`,
    /// its video share being `share_kbps` and its pacer holding `queue_packets`.
    pub fn admit(
        &mut self,
        now: Instant,
        share_kbps: u32,
        packets: usize,
        bytes: usize,
        queue_packets: usize,
    ) -> bool {
        if packets > queue_packets || self.drained_at.is_some_and(|at| now < at) {
            return false;
        }
        let bps = f64::from(share_kbps.max(LEAST_SHARE_KBPS)) * 1000.0 * KEYFRAME_SHARE;
        self.sent_at = Some(now);
        self.drained_at = Some(now + Duration::from_secs_f64(bytes as f64 * 8.0 / bps));
        self.asked = false;
        true
    }

    /// Whether to ask the encoder for a keyframe at `now`: once for each keyframe sent,
    /// when the link has carried it and [`ASK_EVERY`] has passed (at once, before the
    /// first). Not again after a keyframe too long to send: the next would be as long.
    pub fn ask(&mut self, now: Instant) -> bool {
        let due = self
            .sent_at
            .map(|at| at + ASK_EVERY)
            .max(self.drained_at)
            .is_none_or(|at| now >= at);
        if self.asked || !due {
            return false;
        }
        self.asked = true;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUEUE: usize = 16;

    #[test]
    fn a_keyframe_longer_than_the_pacer_queue_is_not_sent() {
        let mut d = KeyframeDrain::default();
        assert!(!d.admit(Instant::now(), 100, QUEUE + 1, 20_000, QUEUE));
        assert!(d.admit(Instant::now(), 100, QUEUE, 19_000, QUEUE));
    }

    #[test]
    fn the_next_keyframe_waits_until_the_link_has_carried_the_last() {
        let mut d = KeyframeDrain::default();
        let t = Instant::now();
        // 10 KB is 80 kbit: 4 s at half of a 40 kbit/s share.
        assert!(d.admit(t, 40, 9, 10_000, QUEUE));
        assert!(!d.admit(t + Duration::from_millis(3900), 40, 9, 10_000, QUEUE));
        assert!(d.admit(t + Duration::from_secs(4), 40, 9, 10_000, QUEUE));
    }

    #[test]
    fn a_share_fallen_to_nothing_still_lets_a_keyframe_through_every_few_seconds() {
        let mut d = KeyframeDrain::default();
        let t = Instant::now();
        // 1.3 KB at half of the least share, 16 kbit/s: 0.65 s.
        assert!(d.admit(t, 0, 2, 1_300, QUEUE));
        assert!(!d.ask(t + ASK_EVERY - Duration::from_millis(1)));
        assert!(d.ask(t + ASK_EVERY), "carried long before");
        assert!(d.admit(t + ASK_EVERY, 0, 2, 1_300, QUEUE));
    }

    #[test]
    fn the_next_keyframe_is_asked_for_once_the_last_has_been_carried() {
        let mut d = KeyframeDrain::default();
        let t = Instant::now();
        assert!(d.ask(t), "the first at once");
        assert!(!d.ask(t + Duration::from_secs(1)), "and once");
        assert!(d.admit(t, 40, 9, 10_000, QUEUE));
        assert!(!d.ask(t + Duration::from_millis(3900)));
        assert!(d.ask(t + Duration::from_secs(4)));
        assert!(!d.ask(t + Duration::from_secs(5)), "once per keyframe sent");
    }

    #[test]
    fn small_keyframes_are_asked_for_no_more_often_than_every_few_seconds() {
        let mut d = KeyframeDrain::default();
        let t = Instant::now();
        // 1 KB: carried in 80 ms.
        assert!(d.admit(t, 200, 1, 1_000, QUEUE));
        // Another viewer's keyframe, once carried, is sent at no cost.
        let t = t + Duration::from_secs(1);
        assert!(d.admit(t, 200, 1, 1_000, QUEUE));
        assert!(!d.ask(t + ASK_EVERY - Duration::from_millis(1)));
        assert!(d.ask(t + ASK_EVERY));
    }

    #[test]
    fn after_a_keyframe_too_long_to_send_none_is_asked_for() {
        let mut d = KeyframeDrain::default();
        let t = Instant::now();
        assert!(d.ask(t));
        assert!(!d.admit(t, 100, QUEUE + 1, 20_000, QUEUE));
        assert!(!d.ask(t + Duration::from_secs(10)));
    }
}
