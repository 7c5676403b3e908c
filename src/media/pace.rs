//! The clocks of sources that have none of their own: the test pattern and "no signal"
//! run on a camera's clock, the tone and silence on a continuous one.

use std::time::{Duration, Instant, SystemTime};

/// A camera's clock: frame k is due at `start + k * period`, whatever happened before.
/// After a stall the frames whose time has passed are skipped (and reported, so they
/// count as drops), so every later frame is still on the clock.
#[derive(Debug, Clone)]
pub struct FrameClock {
    start: Instant,
    period: Duration,
    next: u64,
}

/// One frame to produce: its number on the clock, when it is due (its capture time),
/// and how many frames before it were skipped because their time had passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tick {
    pub index: u64,
    pub due: Instant,
    pub skipped: u64,
}

impl FrameClock {
    /// Frame 0 is due at `start`.
    pub fn new(start: Instant, period: Duration) -> Self {
        Self {
            start,
            period: period.max(Duration::from_micros(1)),
            next: 0,
        }
    }

    /// The frame to produce when the time is `now`: the next in order, or, if later ones
    /// are due already, the latest of them. It may be due in the future: see [`wait`].
    ///
    /// [`wait`]: FrameClock::wait
    pub fn tick_at(&mut self, now: Instant) -> Tick {
        let elapsed = now.saturating_duration_since(self.start);
        let latest_due =
            u64::try_from(elapsed.as_nanos() / self.period.as_nanos()).unwrap_or(u64::MAX);
        let expected = self.next;
        let index = expected.max(latest_due);
        self.next = index.saturating_add(1);
        Tick {
            index,
            due: self.due(index),
            skipped: index - expected,
        }
    }

    /// Sleeps until the next frame is due and returns it.
    pub fn wait(&mut self) -> Tick {
        let tick = self.tick_at(Instant::now());
        let now = Instant::now();
        if tick.due > now {
            std::thread::sleep(tick.due - now);
        }
        tick
    }

    fn due(&self, index: u64) -> Instant {
        let nanos = self.period.as_nanos().saturating_mul(u128::from(index));
        self.start + Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

/// The wall-clock time of `at` (not in the future): read now, so it follows the system
/// clock's adjustments.
pub fn wall_clock(at: Instant) -> SystemTime {
    let ago = Instant::now().saturating_duration_since(at);
    SystemTime::now()
        .checked_sub(ago)
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

/// [`wall_clock`] in milliseconds since the Unix epoch.
pub fn unix_ms(at: Instant) -> u64 {
    wall_clock(at)
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Sleeps until `next`, then returns the following deadline. A fixed schedule does not
/// drift with the work done each period; after a long stall it restarts from now
/// instead of bursting to catch up: audio must stay continuous, and its RTP clock
/// counts samples, not time.
pub fn pace(next: Instant, period: Duration) -> Instant {
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

#[cfg(test)]
mod tests {
    use super::*;

    const PERIOD: Duration = Duration::from_millis(10);

    #[test]
    fn frames_are_due_on_the_clock_while_the_producer_keeps_up() {
        let t0 = Instant::now();
        let mut clock = FrameClock::new(t0, PERIOD);
        for k in 0..5u32 {
            // Produced a little late each time: the schedule does not drift with it.
            let tick = clock.tick_at(t0 + PERIOD * k + Duration::from_millis(3));
            assert_eq!(tick.index, u64::from(k));
            assert_eq!(tick.due, t0 + PERIOD * k);
            assert_eq!(tick.skipped, 0);
        }
        // Early: the next frame is still the next one, due in the future.
        let early = clock.tick_at(t0 + PERIOD * 5 - Duration::from_millis(9));
        assert_eq!((early.index, early.due), (5, t0 + PERIOD * 5));
    }

    #[test]
    fn a_stall_skips_the_missed_frames_and_counts_them() {
        let t0 = Instant::now();
        let mut clock = FrameClock::new(t0, PERIOD);
        assert_eq!(clock.tick_at(t0).index, 0);
        // Stalled until frame 7's time (+4 ms): 1..=6 are gone, 7 is produced now.
        let tick = clock.tick_at(t0 + PERIOD * 7 + Duration::from_millis(4));
        assert_eq!(tick.index, 7);
        assert_eq!(tick.skipped, 6);
        assert_eq!(tick.due, t0 + PERIOD * 7, "still on the clock");
        let after = clock.tick_at(t0 + PERIOD * 7 + Duration::from_millis(5));
        assert_eq!((after.index, after.skipped), (8, 0));
        assert_eq!(after.due, t0 + PERIOD * 8);
    }
}
