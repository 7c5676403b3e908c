//! Frame rates from the pipeline's counters: the change between two readings over the
//! time between them (time passed in).

use std::time::Instant;

use crate::media::frame::StatsSnapshot;

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct FrameRates {
    /// Video frames from the camera or pattern per second.
    pub video_captured_fps: Option<f64>,
    /// Video frames encoded per second (0 while nobody watches and the encoder rests).
    pub video_encoded_fps: Option<f64>,
}

/// Turns counter readings into rates over the interval since the previous reading.
#[derive(Debug, Default)]
pub struct RateMeter {
    last: Option<(Instant, StatsSnapshot)>,
    rates: FrameRates,
}

impl RateMeter {
    /// Takes a reading; returns the rates since the previous one (none for the first, or
    /// when no time passed).
    pub fn update(&mut self, now: Instant, counters: StatsSnapshot) -> FrameRates {
        if let Some((then, before)) = self.last {
            let secs = now.saturating_duration_since(then).as_secs_f64();
            if secs > 0.0 {
                let rate =
                    |after: u64, before: u64| Some(after.saturating_sub(before) as f64 / secs);
                self.rates = FrameRates {
                    video_captured_fps: rate(counters.video_captured, before.video_captured),
                    video_encoded_fps: rate(counters.video_encoded, before.video_encoded),
                };
            }
        }
        self.last = Some((now, counters));
        self.rates
    }

    pub fn rates(&self) -> FrameRates {
        self.rates
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn counters(captured: u64, encoded: u64) -> StatsSnapshot {
        StatsSnapshot {
            video_captured: captured,
            video_dropped: 0,
            video_encoded: encoded,
            video_rested: 0,
            video_keyframes: 0,
            video_bytes: 0,
            audio_captured: 0,
            audio_dropped: 0,
            audio_encoded: 0,
            audio_bytes: 0,
        }
    }

    #[test]
    fn rates_are_the_change_over_the_time_between_readings() {
        let (mut m, t0) = (RateMeter::default(), Instant::now());
        assert_eq!(m.update(t0, counters(100, 50)), FrameRates::default());
        let r = m.update(t0 + Duration::from_secs(2), counters(160, 80));
        assert_eq!(r.video_captured_fps, Some(30.0));
        assert_eq!(r.video_encoded_fps, Some(15.0));
        // No time passed: the last rates stand.
        assert_eq!(m.update(t0 + Duration::from_secs(2), counters(999, 999)), r);
        assert_eq!(m.rates(), r);
    }
}
