//! At most a few log lines per interval for what the room sends and campeer refuses or
//! drops (offers, sockets, malformed input), each saying how many more there were since
//! the last: a flood from the room must not become a flood in the journal, while a
//! handful of bad messages still get a line each. (Libraries' repeated lines are summed
//! up by `crate::log_limit`.) Pure: the time is passed in.

use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct LineBudget {
    interval: Duration,
    /// Lines per interval.
    burst: u32,
    window: Option<Instant>,
    logged: u32,
    /// Events not logged since the last one that was.
    more: u64,
}

impl LineBudget {
    pub fn new(interval: Duration, burst: u32) -> Self {
        Self {
            interval,
            burst,
            window: None,
            logged: 0,
            more: 0,
        }
    }

    /// Whether the event at `now` is to be logged; if so, with how many were not since
    /// the last one that was.
    pub fn admit(&mut self, now: Instant) -> Option<u64> {
        if self
            .window
            .is_none_or(|start| now.saturating_duration_since(start) >= self.interval)
        {
            self.window = Some(now);
            self.logged = 0;
        }
        if self.logged >= self.burst {
            self.more += 1;
            return None;
        }
        self.logged += 1;
        Some(std::mem::take(&mut self.more))
    }

    /// The events not logged since the last one that was, for a summing-up line; they
    /// are not counted again.
    pub fn take_more(&mut self) -> u64 {
        std::mem::take(&mut self.more)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_few_events_per_interval_are_logged_and_the_rest_counted() {
        let mut limit = LineBudget::new(Duration::from_secs(1), 3);
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        assert_eq!(
            [limit.admit(t0), limit.admit(ms(1)), limit.admit(ms(2))],
            [Some(0); 3]
        );
        assert!((3..=999).all(|n| limit.admit(ms(n)).is_none()));
        assert_eq!(limit.admit(ms(1000)), Some(997));
        assert_eq!(limit.admit(ms(1001)), Some(0));
        assert_eq!(limit.admit(ms(1002)), Some(0));
        assert_eq!(limit.admit(ms(1500)), None);
        assert_eq!(limit.admit(ms(5000)), Some(1));
        assert_eq!([limit.admit(ms(5001)), limit.admit(ms(5002))], [Some(0); 2]);
        assert_eq!(limit.admit(ms(5003)), None);
        assert_eq!(limit.take_more(), 1, "summed up apart");
        assert_eq!(limit.admit(ms(6003)), Some(0), "and not counted again");
    }
}
