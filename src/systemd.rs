//! Talks to systemd when it runs campeer as a `Type=notify` service: READY once the
//! room is joined, a STATUS line with the viewer count, watchdog keep-alives from the
//! daemon's main loop (a hung loop stops them and systemd restarts campeer), STOPPING on
//! shutdown. Without `NOTIFY_SOCKET` every call is a no-op.

use std::time::{Duration, Instant};

use sd_notify::NotifyState;

pub struct Notifier {
    /// Half the watchdog period: keep-alives go out at least this often.
    keepalive: Option<Duration>,
    last_ping: Option<Instant>,
    ready: bool,
    status: String,
}

impl Notifier {
    pub fn from_env() -> Self {
        Self {
            keepalive: sd_notify::watchdog_enabled().map(|d| d / 2),
            last_ping: None,
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

    /// Called from the main loop's tick; pings when half the watchdog period has passed.
    pub fn tick(&mut self, now: Instant) {
        let Some(every) = self.keepalive else { return };
        if self
            .last_ping
            .is_none_or(|t| now.duration_since(t) >= every)
        {
            self.last_ping = Some(now);
            self.send(&[NotifyState::Watchdog]);
        }
    }

    pub fn stopping(&self) {
        self.send(&[NotifyState::Stopping]);
    }
}
