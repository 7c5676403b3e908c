//! A viewer on a tokio runtime of its own, as a viewer in another process is: killing it
//! drops that runtime, which ends every task of the viewer at once and closes its sockets
//! with nothing sent (no DTLS close, no more consent checks), what campeer sees of a tab
//! that crashed or a phone whose network went away. Dropping a webrtc-rs PeerConnection
//! is no such thing: its driver task goes on answering checks.

use std::future::Future;

use tokio::runtime::Runtime;

use super::viewer::Viewer;

/// A runtime for one viewer: one worker, and blocking threads that go soon when idle, so
/// a count of the process's threads settles quickly after it ends.
pub fn viewer_runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_keep_alive(std::time::Duration::from_millis(100))
        .enable_all()
        .build()
        .expect("a viewer's tokio runtime")
}

pub struct Killable {
    /// Its events arrive on a channel, so it is watched from any runtime.
    pub viewer: Viewer,
    runtime: Runtime,
}

impl Killable {
    /// Runs `call` (which makes the viewer, its room link included) on `runtime`; returns
    /// once the offer is out.
    pub async fn start(
        runtime: Runtime,
        call: impl Future<Output = Viewer> + Send + 'static,
    ) -> Self {
        let viewer = runtime.spawn(call).await.expect("the viewer calls");
        Self { viewer, runtime }
    }

    /// Ends the viewer without a goodbye; returns once all its threads are gone.
    pub async fn kill(self) {
        let Self { viewer, runtime } = self;
        drop(viewer);
        end(runtime).await;
    }

    /// Ends the call as a page that closes its connection does.
    pub async fn hang_up(self) {
        let Self { viewer, runtime } = self;
        runtime
            .spawn(viewer.hang_up())
            .await
            .expect("the viewer hangs up");
        end(runtime).await;
    }
}

/// Drops `runtime`, which blocks until its threads have finished: off the async workers.
async fn end(runtime: Runtime) {
    tokio::task::spawn_blocking(move || drop(runtime))
        .await
        .expect("the viewer's runtime shuts down");
}
