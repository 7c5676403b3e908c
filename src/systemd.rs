//! Talks to systemd when it runs campeer as a `Type=notify` service: READY once media
//! runs, a STATUS line with the viewer count, watchdog keep-alives from the daemon's
//! main loop while encoded frames keep coming (a hung loop or a stalled stage stops them
//! and systemd restarts campeer; a stage that dies outright ends the daemon with an
//! error, see `media::threads`), STOPPING on shutdown. Without `NOTIFY_SOCKET`
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

    /// Called from the main loop's tick with the count of video frames through the encode
    /// stage (encoded, or let go with nobody watching; the test pattern counts too):
    /// pings every half watchdog period while it advances.
    pub fn tick(&mut self, now: Instant, frames: u64) {
        match self.watchdog.feed(now, frames) {
            Feed::NotDue => {}
            Feed::Ping => self.send(&[NotifyState::Watchdog]),
            Feed::Withhold => tracing::error!(
                frames,
                "no video frame through the encoder for half a watchdog period; \
                 withholding the watchdog so systemd restarts campeer"
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

    /// What a 10 s watchdog gets at each (second, frames encoded so far) tick.
    fn feeds(ticks: &[(u64, u64)]) -> Vec<Feed> {
        let (mut w, t0) = (watchdog(), Instant::now());
        ticks
            .iter()
            .map(|&(s, frames)| w.feed(t0 + Duration::from_secs(s), frames))
            .collect()
    }

    #[test]
    fn fed_every_half_period_while_frames_flow() {
        use Feed::*;
        // The first ping is free: a camera may be slow to start.
        let got = feeds(&[(0, 0), (1, 30), (5, 150), (10, 300)]);
        assert_eq!(got, [Ping, NotDue, Ping, Ping]);
    }

    #[test]
    fn withheld_when_frames_stop_and_fed_again_when_they_resume() {
        use Feed::*;
        let got = feeds(&[(0, 10), (5, 10), (6, 11), (10, 11)]);
        assert_eq!(got, [Ping, Withhold, NotDue, Ping]);
        let never_started = feeds(&[(0, 0), (5, 0)]);
        assert_eq!(never_started, [Ping, Withhold]);
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
