//! Keeps libraries' repeated warnings and errors from flooding the log. webrtc-rs logs
//! `Failed to write packet` (target `webrtc::peer_connection::driver`) for every packet
//! it cannot send while a firewall drops the path, some two dozen a call: the first of a
//! kind (one log statement: target, file and line) is logged, the rest of its
//! [`REPEAT_INTERVAL`] are counted, and [`RepeatLimit::flush_every`] sums them up in one
//! line. webrtc-rs logs through `log`, so its records arrive through `tracing-log`, all
//! under one callsite per level; their own target and location tell them apart.
//! campeer's own events are not limited: it sums up its own floods where they happen.
//!
//! The decision is a plain state machine over time passed in ([`Limiter`]); the
//! [`RepeatLimit`] layer is its edge in the subscriber.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::layer::{Context, Layer};

/// How long the repeats of a first line are counted before they are summed up.
pub const REPEAT_INTERVAL: Duration = Duration::from_secs(10);

/// What a window of repeats came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppressed {
    pub target: String,
    pub level: Level,
    /// The first line's message, which was logged.
    pub first: String,
    pub count: u64,
}

#[derive(Debug)]
struct Window {
    opened: Instant,
    suppressed: u64,
    target: String,
    level: Level,
    first: String,
}

impl Window {
    fn summary(&self) -> Option<Suppressed> {
        (self.suppressed > 0).then(|| Suppressed {
            target: self.target.clone(),
            level: self.level,
            first: self.first.clone(),
            count: self.suppressed,
        })
    }
}

/// Per kind of line (`K`), whether it may be logged now; what was held back, per window.
#[derive(Debug)]
pub struct Limiter<K> {
    interval: Duration,
    windows: HashMap<K, Window>,
    /// Windows that ended when a new line of their kind arrived, not yet reported.
    ended: Vec<Suppressed>,
}

impl<K: Eq + Hash> Limiter<K> {
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            windows: HashMap::new(),
            ended: Vec::new(),
        }
    }

    /// Whether a line of kind `key` may be logged at `now`: the first of a window is;
    /// its repeats within the interval are counted instead. `first` (its message) is
    /// asked for only when it opens a window.
    pub fn admit(
        &mut self,
        key: K,
        target: &str,
        level: Level,
        now: Instant,
        first: impl FnOnce() -> String,
    ) -> bool {
        let open = |first: String| Window {
            opened: now,
            suppressed: 0,
            target: target.to_owned(),
            level,
            first,
        };
        match self.windows.entry(key) {
            Entry::Vacant(v) => {
                v.insert(open(first()));
                true
            }
            Entry::Occupied(mut o) => {
                let w = o.get_mut();
                if now.saturating_duration_since(w.opened) < self.interval {
                    w.suppressed += 1;
                    return false;
                }
                self.ended.extend(w.summary());
                *w = open(first());
                true
            }
        }
    }

    /// The windows over by `now` that held lines back; the kinds whose window is over
    /// are forgotten, so their next line is logged again.
    pub fn take_due(&mut self, now: Instant) -> Vec<Suppressed> {
        let interval = self.interval;
        self.take_where(|w| now.saturating_duration_since(w.opened) >= interval)
    }

    /// Every window's count, over or not: for the last report before exit.
    pub fn take_all(&mut self) -> Vec<Suppressed> {
        self.take_where(|_| true)
    }

    fn take_where(&mut self, over: impl Fn(&Window) -> bool) -> Vec<Suppressed> {
        let mut due = std::mem::take(&mut self.ended);
        self.windows.retain(|_, w| {
            let over = over(w);
            if over {
                due.extend(w.summary());
            }
            !over
        });
        due
    }
}

/// One log statement: its target and where it is in the source.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Statement {
    target: String,
    file: Option<String>,
    line: Option<u32>,
}

/// The layer: limits warnings and errors whose target is not campeer's, per statement.
#[derive(Clone)]
pub struct RepeatLimit {
    limiter: Arc<Mutex<Limiter<Statement>>>,
}

impl RepeatLimit {
    pub fn new(interval: Duration) -> Self {
        Self {
            limiter: Arc::new(Mutex::new(Limiter::new(interval))),
        }
    }

    fn limiter(&self) -> std::sync::MutexGuard<'_, Limiter<Statement>> {
        // The limiter's state stays consistent at every step; a panic elsewhere cannot
        // leave it half-updated.
        self.limiter.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The windows over by `now` that held lines back.
    pub fn take_due(&self, now: Instant) -> Vec<Suppressed> {
        self.limiter().take_due(now)
    }

    /// Logs what was held back, every interval, for as long as the runtime runs.
    pub async fn flush_every(self, interval: Duration) {
        let mut tick = tokio::time::interval(interval);
        loop {
            tick.tick().await;
            report(self.take_due(Instant::now()));
        }
    }

    /// Logs what is held back now, windows over or not: before exit.
    pub fn flush_all(&self) {
        report(self.limiter().take_all());
    }
}

fn report(due: Vec<Suppressed>) {
    for s in due {
        tracing::warn!(
            suppressed = s.count,
            "{} more {} lines from {} like {:?} not logged",
            s.count,
            s.level,
            s.target,
            s.first
        );
    }
}

fn limited(level: &Level, target: &str) -> bool {
    *level <= Level::WARN && !target.starts_with(env!("CARGO_CRATE_NAME"))
}

impl<S: Subscriber> Layer<S> for RepeatLimit {
    fn event_enabled(&self, event: &Event<'_>, _: Context<'_, S>) -> bool {
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        if !limited(meta.level(), meta.target()) {
            return true;
        }
        let first = || {
            let mut message = Message(String::new());
            event.record(&mut message);
            message.0
        };
        let key = Statement {
            target: meta.target().to_owned(),
            file: meta.file().map(str::to_owned),
            line: meta.line(),
        };
        (self.limiter()).admit(key, meta.target(), *meta.level(), Instant::now(), first)
    }
}

/// An event's `message` field, as text.
struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            value.clone_into(&mut self.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tracing_subscriber::prelude::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn limiter() -> (Limiter<&'static str>, Instant) {
        (Limiter::new(10 * SECOND), Instant::now())
    }

    fn admit(l: &mut Limiter<&'static str>, key: &'static str, at: Instant) -> bool {
        l.admit(key, "webrtc::driver", Level::ERROR, at, || {
            format!("{key} failed")
        })
    }

    #[test]
    fn the_first_line_passes_and_its_repeats_are_summed_up_once_the_window_is_over() {
        let (mut l, t0) = limiter();
        assert!(admit(&mut l, "write", t0));
        for n in 0..23 {
            assert!(!admit(&mut l, "write", t0 + n * SECOND / 10));
        }
        assert_eq!(l.take_due(t0 + 9 * SECOND), [], "the window is still open");
        let due = l.take_due(t0 + 10 * SECOND);
        assert_eq!(
            due,
            [Suppressed {
                target: "webrtc::driver".into(),
                level: Level::ERROR,
                first: "write failed".into(),
                count: 23,
            }]
        );
        assert_eq!(l.take_due(t0 + 20 * SECOND), [], "reported once");
        assert!(admit(&mut l, "write", t0 + 21 * SECOND), "a new window");
    }

    #[test]
    fn kinds_are_limited_apart() {
        let (mut l, t0) = limiter();
        assert!(admit(&mut l, "write", t0));
        assert!(admit(&mut l, "read", t0));
        assert!(!admit(&mut l, "write", t0));
        let due = l.take_due(t0 + 10 * SECOND);
        assert_eq!(due.len(), 1);
        assert_eq!((due[0].first.as_str(), due[0].count), ("write failed", 1));
    }

    #[test]
    fn a_window_a_new_line_ends_is_still_reported() {
        let (mut l, t0) = limiter();
        admit(&mut l, "write", t0);
        admit(&mut l, "write", t0 + SECOND);
        assert!(admit(&mut l, "write", t0 + 11 * SECOND));
        let due = l.take_due(t0 + 12 * SECOND);
        assert_eq!(due.len(), 1, "the first window's one repeat");
        assert_eq!(due[0].count, 1);
    }

    #[test]
    fn before_exit_every_open_window_is_reported() {
        let (mut l, t0) = limiter();
        admit(&mut l, "write", t0);
        admit(&mut l, "write", t0);
        admit(&mut l, "read", t0);
        let all = l.take_all();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].count, 1);
        assert!(admit(&mut l, "write", t0), "forgotten once reported");
    }

    #[test]
    fn a_lone_line_leaves_nothing_to_report() {
        let (mut l, t0) = limiter();
        admit(&mut l, "write", t0);
        assert_eq!(l.take_due(t0 + 60 * SECOND), []);
    }

    /// Counts the events that reach the layers after the limit.
    struct Count(Arc<AtomicUsize>);

    impl<S: Subscriber> Layer<S> for Count {
        fn on_event(&self, _: &Event<'_>, _: Context<'_, S>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn the_layer_holds_back_a_librarys_repeats_but_never_campeers_own_lines() {
        let limit = RepeatLimit::new(REPEAT_INTERVAL);
        let seen = Arc::new(AtomicUsize::new(0));
        let subscriber = tracing_subscriber::registry()
            .with(limit.clone())
            .with(Count(Arc::clone(&seen)));
        tracing::subscriber::with_default(subscriber, || {
            for _ in 0..24 {
                tracing::error!(target: "webrtc::peer_connection::driver", "Failed to write packet");
            }
            // webrtc-rs logs through `log`: one tracing callsite for all its errors.
            let log_tracer = tracing_log::LogTracer::new();
            for n in 0..5 {
                for target in ["webrtc::a", "webrtc::b"] {
                    log::Log::log(
                        &log_tracer,
                        &log::Record::builder()
                            .level(log::Level::Error)
                            .target(target)
                            .file(Some("src/driver.rs"))
                            .line(Some(7))
                            .args(format_args!("write {n} failed"))
                            .build(),
                    );
                }
            }
            for _ in 0..3 {
                tracing::warn!("campeer's own warning");
                tracing::info!(target: "webrtc::ice", "not a warning");
            }
        });
        assert_eq!(seen.load(Ordering::Relaxed), 1 + 2 + 3 + 3);
        let mut due = limit.take_due(Instant::now() + REPEAT_INTERVAL);
        due.sort_by(|a, b| a.target.cmp(&b.target));
        let summed: Vec<_> = due
            .iter()
            .map(|s| (s.target.as_str(), s.first.as_str(), s.count))
            .collect();
        assert_eq!(
            summed,
            [
                ("webrtc::a", "write 0 failed", 4),
                ("webrtc::b", "write 0 failed", 4),
                (
                    "webrtc::peer_connection::driver",
                    "Failed to write packet",
                    23
                ),
            ]
        );
    }
}
