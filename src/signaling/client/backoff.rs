//! When to try the relay again: doubling delays with jitter, capped, forever. Pure (the
//! clock and the randomness are passed in) so the schedule can be tested.

use std::time::{Duration, Instant};

/// The first wait (before jitter).
const FIRST: Duration = Duration::from_millis(250);
/// The longest wait: a relay back from a long outage is rejoined within this.
pub const MAX: Duration = Duration::from_secs(10);
/// A connection up this long was healthy: the failure after it starts the schedule over.
/// Shorter ones keep climbing, so a relay that accepts and drops at once is not hammered.
pub const STABLE_AFTER: Duration = Duration::from_secs(30);

/// Failures warned about one by one, then one in [`WARN_EVERY`].
const WARN_FIRST: u32 = 8;
const WARN_EVERY: u32 = 30;

#[derive(Debug, Default)]
pub struct Backoff {
    failures: u32,
    up_since: Option<Instant>,
}

impl Backoff {
    pub fn new() -> Self {
        Self::default()
    }

    /// The room was joined at `now`.
    pub fn connected(&mut self, now: Instant) {
        self.up_since = Some(now);
    }

    /// Consecutive failures so far (a lost short-lived connection counts as one).
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Whether the latest failure deserves a warning: the first few do, then one in 30
    /// (every few minutes at the cap), so a relay down for days does not fill the journal.
    pub fn worth_a_warning(&self) -> bool {
        self.failures <= WARN_FIRST || self.failures.is_multiple_of(WARN_EVERY)
    }

    /// The wait after a failed attempt or a lost connection at `now`. `jitter` in
    /// `[0, 1]` picks a point in the upper half of the ceiling, so campeers behind one
    /// relay that restarts do not all knock at once, and no wait is ever near zero.
    pub fn next_delay(&mut self, now: Instant, jitter: f64) -> Duration {
        if self
            .up_since
            .take()
            .is_some_and(|since| now.saturating_duration_since(since) >= STABLE_AFTER)
        {
            self.failures = 0;
        }
        let ceiling = ceiling(self.failures);
        self.failures = self.failures.saturating_add(1);
        let jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        ceiling.mul_f64(0.5 + 0.5 * jitter)
    }
}

/// 250 ms doubled per failure, at most [`MAX`].
fn ceiling(failures: u32) -> Duration {
    FIRST.saturating_mul(1u32 << failures.min(16)).min(MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap() {
        let (mut b, now) = (Backoff::new(), Instant::now());
        let ceilings: Vec<Duration> = (0..8).map(|_| b.next_delay(now, 1.0)).collect();
        let ms: Vec<u128> = ceilings.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [250, 500, 1000, 2000, 4000, 8000, 10_000, 10_000]);
    }

    #[test]
    fn jitter_stays_in_the_upper_half() {
        let now = Instant::now();
        assert_eq!(
            Backoff::new().next_delay(now, 0.0),
            Duration::from_millis(125)
        );
        assert_eq!(
            Backoff::new().next_delay(now, 0.5),
            Duration::from_micros(187_500)
        );
        for silly in [-3.0, 7.0, f64::NAN, f64::INFINITY] {
            let d = Backoff::new().next_delay(now, silly);
            assert!(
                (Duration::from_millis(125)..=FIRST).contains(&d),
                "{silly}: {d:?}"
            );
        }
    }

    #[test]
    fn retrying_forever_never_stops_waiting() {
        // rust_socketio's own backoff gave up after 15 minutes and then retried with no wait.
        let (mut b, mut now) = (Backoff::new(), Instant::now());
        for _ in 0..100_000 {
            let d = b.next_delay(now, 0.0);
            assert!(d >= FIRST / 2, "{d:?} after {} failures", b.failures());
            now += d;
        }
        assert_eq!(b.next_delay(now, 0.0), MAX / 2);
    }

    #[test]
    fn a_stable_connection_starts_the_schedule_over_a_short_one_keeps_climbing() {
        let t0 = Instant::now();
        let connected_after_five_failures = || {
            let mut b = Backoff::new();
            for _ in 0..5 {
                b.next_delay(t0, 1.0);
            }
            b.connected(t0);
            b
        };
        assert_eq!(
            connected_after_five_failures().next_delay(t0 + STABLE_AFTER, 1.0),
            FIRST
        );
        assert_eq!(
            connected_after_five_failures().next_delay(t0 + Duration::from_secs(1), 1.0),
            Duration::from_secs(8)
        );
    }

    #[test]
    fn a_long_outage_is_warned_about_now_and_then() {
        let (mut b, now) = (Backoff::new(), Instant::now());
        let warned: Vec<u32> = (0..100)
            .filter_map(|_| {
                b.next_delay(now, 0.0);
                b.worth_a_warning().then_some(b.failures())
            })
            .collect();
        assert_eq!(warned, [1, 2, 3, 4, 5, 6, 7, 8, 30, 60, 90]);
    }
}
