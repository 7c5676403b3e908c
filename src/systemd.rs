//! Talks to systemd when it runs campeer as a `Type=notify` service: READY once media
//! runs, a STATUS line with the viewer count, watchdog keep-alives from the daemon's
//! main loop while encoded frames keep coming (a hung loop or a dead media thread stops
//! them and systemd restarts campeer), STOPPING on shutdown. Without `NOTIFY_SOCKET`
//! every call is a no-op.

use std::time::{Duration, Instant};

use sd_notify::NotifyState;

pub struct Notifier {
    watchdog: Watchdog,
    ready: bool,
    status: String,
}

/// What the watchdog gets on a tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Feed {
    NotDue,
    Ping,
    /// Due, but no frame was encoded since the last ping: media is dead.
    Withhold,
}

/// When to feed the watchdog: every half period, if frames moved since the last ping.
#[derive(Debug)]
struct Watchdog {
    /// Half the watchdog period; `None` when systemd runs no watchdog.
    every: Option<Duration>,
    last_check: Option<Instant>,
    /// Encoded frames at the last ping; `None` before the first, which is free so a
    /// camera slow to start gets one period more.
    frames_at_ping: Option<u64>,
}

impl Watchdog {
    fn feed(&mut self, now: Instant, frames: u64) -> Feed {
        let Some(every) = self.every else {
            return Feed::NotDue;
        };
        if self
            .last_check
            .is_some_and(|t| now.saturating_duration_since(t) < every)
        {
            return Feed::NotDue;
        }
        self.last_check = Some(now);
        if self.frames_at_ping.is_some_and(|seen| frames <= seen) {
            return Feed::Withhold;
        }
        self.frames_at_ping = Some(frames);
        Feed::Ping
    }
}

impl Notifier {
    pub fn from_env() -> Self {
        Self {
            watchdog: Watchdog {
                every: sd_notify::watchdog_enabled().map(|d| d / 2),
                last_check: None,
                frames_at_ping: None,
            },
            ready: false,
            status: String::new(),
        }
    }

    fn send(&self, states: &[NotifyState]) {
        if let Err(e) = sd_notify::notify(states) {
            tracing::warn!("systemd notify: {e}");
        }
    }

    /// Once; later calls only update the status.
    pub fn ready(&mut self, status: &str) {
        if !self.ready {
            self.ready = true;
            tracing::info!("ready");
            self.send(&[NotifyState::Ready, NotifyState::Status(status)]);
            self.status = status.to_owned();
        } else {
            self.status(status);
        }
    }

    /// Sends the status line when it changed.
    pub fn status(&mut self, status: &str) {
        if self.status != status {
            self.send(&[NotifyState::Status(status)]);
            self.status = status.to_owned();
        }
    }

    /// Called from the main loop's tick with the count of encoded video frames (the
    /// test pattern counts too): pings every half watchdog period while it advances.
    pub fn tick(&mut self, now: Instant, frames_encoded: u64) {
        match self.watchdog.feed(now, frames_encoded) {
            Feed::NotDue => {}
            Feed::Ping => self.send(&[NotifyState::Watchdog]),
            Feed::Withhold => tracing::error!(
                frames_encoded,
                "no video frame encoded for half a watchdog period; withholding the \
                 watchdog so systemd restarts campeer"
            ),
        }
    }

    pub fn stopping(&self) {
        self.send(&[NotifyState::Stopping]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watchdog() -> Watchdog {
        Watchdog {
            every: Some(Duration::from_secs(5)),
            last_check: None,
            frames_at_ping: None,
        }
    }

    #[test]
    fn fed_every_half_period_while_frames_flow() {
        let (mut w, t0) = (watchdog(), Instant::now());
        assert_eq!(w.feed(t0, 0), Feed::Ping, "the first ping is free");
        assert_eq!(w.feed(t0 + Duration::from_secs(1), 30), Feed::NotDue);
        assert_eq!(w.feed(t0 + Duration::from_secs(5), 150), Feed::Ping);
        assert_eq!(w.feed(t0 + Duration::from_secs(10), 300), Feed::Ping);
    }

    #[test]
    fn withheld_when_frames_stop_and_fed_again_when_they_resume() {
        let (mut w, t0) = (watchdog(), Instant::now());
        assert_eq!(w.feed(t0, 10), Feed::Ping);
        assert_eq!(w.feed(t0 + Duration::from_secs(5), 10), Feed::Withhold);
        assert_eq!(w.feed(t0 + Duration::from_secs(6), 11), Feed::NotDue);
        assert_eq!(w.feed(t0 + Duration::from_secs(10), 11), Feed::Ping);
    }

    #[test]
    fn a_camera_that_never_starts_is_withheld_after_the_free_ping() {
        let (mut w, t0) = (watchdog(), Instant::now());
        assert_eq!(w.feed(t0, 0), Feed::Ping);
        assert_eq!(w.feed(t0 + Duration::from_secs(5), 0), Feed::Withhold);
    }

    #[test]
    fn without_a_watchdog_nothing_is_due() {
        let mut w = Watchdog {
            every: None,
            ..watchdog()
        };
        assert_eq!(w.feed(Instant::now(), 1), Feed::NotDue);
    }
}
