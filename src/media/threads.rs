//! The media threads and their supervision. Each stage runs on its own named thread
//! until the pipeline is cancelled; one that ends before that, returned or panicked,
//! is reported as a [`StageEnded`], so the daemon can stop with an error naming it and
//! systemd restart campeer, instead of serving viewers a frozen track.

use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::warn;

/// A media thread that ended while the pipeline was still meant to run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("media thread {thread} {}", if *panicked { "panicked" } else { "exited" })]
pub struct StageEnded {
    /// The thread's name, which names its stage (`campeer-vp8`, `campeer-alsa`, …).
    pub thread: &'static str,
    pub panicked: bool,
}

/// The first stage that ended early, if any.
pub type Ended = watch::Receiver<Option<StageEnded>>;

pub struct MediaThreads {
    cancel: CancellationToken,
    handles: Vec<JoinHandle<()>>,
    report: Arc<watch::Sender<Option<StageEnded>>>,
    /// Made before any thread runs, so that a clone sees even the earliest end.
    ended: Ended,
}

impl MediaThreads {
    /// Threads that run until `cancel`.
    pub fn new(cancel: CancellationToken) -> Self {
        let (report, ended) = watch::channel(None);
        Self {
            cancel,
            handles: Vec::new(),
            report: Arc::new(report),
            ended,
        }
    }

    /// Runs `body` on a thread called `name`, watched.
    pub fn spawn(
        &mut self,
        name: &'static str,
        body: impl FnOnce() + Send + 'static,
    ) -> std::io::Result<()> {
        let guard = ReportEnd {
            thread: name,
            cancel: self.cancel.clone(),
            report: Arc::clone(&self.report),
        };
        let handle = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let _guard = guard;
                body();
            })?;
        self.handles.push(handle);
        Ok(())
    }

    /// Changes when a stage ends before [`stop`](Self::stop); holds the first that did.
    pub fn ended(&self) -> Ended {
        self.ended.clone()
    }

    /// Cancels every thread and waits for them.
    pub fn stop(&mut self) {
        self.cancel.cancel();
        for t in self.handles.drain(..) {
            let name = t.thread().name().unwrap_or("media").to_owned();
            if t.join().is_err() {
                warn!(thread = name, "media thread panicked");
            }
        }
    }
}

/// Reports its thread's end from its drop, so a panic is reported as a return is.
struct ReportEnd {
    thread: &'static str,
    cancel: CancellationToken,
    report: Arc<watch::Sender<Option<StageEnded>>>,
}

impl Drop for ReportEnd {
    fn drop(&mut self) {
        if self.cancel.is_cancelled() {
            return;
        }
        let ended = StageEnded {
            thread: self.thread,
            panicked: std::thread::panicking(),
        };
        // The first end is the cause; stages downstream of it may end for want of input.
        self.report.send_if_modified(|first| {
            first.is_none() && {
                *first = Some(ended);
                true
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn threads() -> MediaThreads {
        MediaThreads::new(CancellationToken::new())
    }

    /// Waits (blocking, as the threads do) for the first reported end.
    fn first_end(mut ended: Ended) -> StageEnded {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        runtime.block_on(async {
            let changed = ended.wait_for(Option::is_some);
            tokio::time::timeout(std::time::Duration::from_secs(20), changed)
                .await
                .expect("only against a hang")
                .expect("the report channel is open")
                .clone()
                .expect("an end")
        })
    }

    #[test]
    fn a_panicking_stage_is_reported_by_name() {
        let mut t = threads();
        t.spawn("campeer-test-panics", || panic!("a stage bug"))
            .unwrap();
        let end = first_end(t.ended());
        assert_eq!(
            end,
            StageEnded {
                thread: "campeer-test-panics",
                panicked: true
            }
        );
        assert_eq!(end.to_string(), "media thread campeer-test-panics panicked");
        t.stop();
    }

    #[test]
    fn a_stage_that_returns_early_is_reported_and_the_first_end_is_kept() {
        let mut t = threads();
        t.spawn("campeer-first", || {}).unwrap();
        let end = first_end(t.ended());
        t.spawn("campeer-second", || {}).unwrap();
        t.stop();
        assert_eq!(end.thread, "campeer-first");
        assert!(!end.panicked);
        assert_eq!(
            t.ended().borrow().as_ref(),
            Some(&end),
            "the first end stays"
        );
    }

    #[test]
    fn stages_stopped_by_cancellation_are_not_reported() {
        let cancel = CancellationToken::new();
        let mut t = MediaThreads::new(cancel.clone());
        for name in ["campeer-a", "campeer-b"] {
            let cancel = cancel.clone();
            t.spawn(name, move || {
                while !cancel.is_cancelled() {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            })
            .unwrap();
        }
        t.stop();
        assert_eq!(*t.ended().borrow(), None);
    }
}
