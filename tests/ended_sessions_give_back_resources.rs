//! Viewers that go away (three killed without a goodbye: their runtimes dropped, sockets
//! closed, nothing sent; one hanging up) are dropped by campeer within the ICE timeouts,
//! while a viewer that stays plays on; then campeer holds what it held before they came:
//! tokio tasks (each session's media tasks joined), file descriptors, threads, UDP
//! sockets, and about the same memory.
//!
//! campeer runs in this process on a runtime of its own, so its tasks are counted apart
//! from the viewers'; the viewers' media binds 127.0.0.2, so campeer's sockets (on
//! 127.0.0.1) are told apart. A test binary of its own: it counts the whole process.

mod common;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use tokio::runtime::Runtime;

use common::held::{Held, udp_sockets};
use common::in_process::InProcess;
use common::killable::{Killable, viewer_runtime};
use common::playback::{assert_in_order, counters_until};
use common::viewer::{DirectRoom, Direction, Viewer, ViewerNet};

/// ICE's disconnected (4 s) and failed (6 s more) timeouts in src/session/connection.rs,
/// with room for a busy host: only against a hang.
const GONE_WITHIN: Duration = Duration::from_secs(20);
/// For counts to settle once the sessions are gone (a blocking thread's 100 ms keep-alive,
/// a task's last poll): only against a hang.
const SETTLE: Duration = Duration::from_secs(5);
/// Viewers that come and go: one hangs up, the others are killed.
const LEAVING: usize = 4;
/// A second of the test pattern (30 fps): a longer step is a stall a person sees.
const MAX_STEP: u32 = 30;
const CAMPEER_ADDR: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// Blocking threads kept 100 ms when idle, not tokio's 10 s, so the thread count settles.
fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_keep_alive(Duration::from_millis(100))
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn viewer_net() -> ViewerNet {
    ViewerNet {
        addr: "127.0.0.2".into(),
        ..ViewerNet::default()
    }
}

/// What campeer holds, and what the process does.
#[derive(Debug)]
struct Counts {
    campeer_tasks: usize,
    campeer_udp_sockets: usize,
    fds: usize,
    threads: usize,
    udp_sockets: usize,
}

impl Counts {
    /// Nothing above `before`. A count may end below it: a blocking thread counted
    /// before, in its keep-alive, may have gone since.
    fn no_more_than(&self, before: &Counts) -> bool {
        self.campeer_tasks <= before.campeer_tasks
            && self.campeer_udp_sockets <= before.campeer_udp_sockets
            && self.fds <= before.fds
            && self.threads <= before.threads
            && self.udp_sockets <= before.udp_sockets
    }
}

fn counts(campeer: &Runtime) -> (Counts, u64) {
    // Freed memory back to the system first, so RSS tells what is still allocated.
    // SAFETY: malloc_trim only releases free pages of glibc's heaps.
    unsafe { libc::malloc_trim(0) };
    let held = Held::of("self");
    let counts = Counts {
        campeer_tasks: campeer.metrics().num_alive_tasks(),
        campeer_udp_sockets: udp_sockets("self", Some(CAMPEER_ADDR)),
        fds: held.fds,
        threads: held.threads,
        udp_sockets: held.udp_sockets,
    };
    (counts, held.rss_kib)
}

/// Polls `counts` until `done` holds or `within` passes; returns the last counts.
async fn wait_for(
    campeer: &Runtime,
    within: Duration,
    done: impl Fn(&Counts) -> bool,
) -> (Counts, u64) {
    let deadline = Instant::now() + within;
    loop {
        let now = counts(campeer);
        if done(&now.0) || Instant::now() >= deadline {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn viewers_gone_without_a_goodbye_are_dropped_and_everything_is_given_back() {
    let campeer_rt = runtime();
    let viewers_rt = runtime();
    let (campeer, room) = {
        let _in = campeer_rt.enter();
        InProcess::start()
    };
    viewers_rt.block_on(async {
        let room = DirectRoom::new(room);
        let mut steady = Viewer::call_over(room.link(), Direction::RecvOnly, viewer_net()).await;
        steady.plays(3, Duration::from_secs(20)).await;
        let (before, rss_before) = counts(&campeer_rt);

        let mut leaving = Vec::new();
        for _ in 0..LEAVING {
            let link = room.link();
            let call = Viewer::call_over(link, Direction::RecvOnly, viewer_net());
            let mut v = Killable::start(viewer_runtime(), call).await;
            v.viewer.plays(3, Duration::from_secs(20)).await;
            leaving.push(v);
        }
        let (during, rss_during) = counts(&campeer_rt);
        assert_eq!(
            during.campeer_udp_sockets,
            before.campeer_udp_sockets + LEAVING,
            "a UDP socket per session"
        );

        let (stop_watching, stopped) = tokio::sync::oneshot::channel::<()>();
        let watching = tokio::spawn(async move {
            let counters = counters_until(&mut steady, async { drop(stopped.await) }).await;
            (steady, counters)
        });
        let went = Instant::now();
        let mut leaving = leaving.into_iter();
        let hangs_up = leaving.next().expect("viewers leaving");
        for v in leaving {
            v.kill().await;
        }
        hangs_up.hang_up().await;

        let (gone, _) = wait_for(&campeer_rt, GONE_WITHIN, |c| {
            c.campeer_udp_sockets == before.campeer_udp_sockets
        })
        .await;
        assert_eq!(
            gone.campeer_udp_sockets, before.campeer_udp_sockets,
            "campeer dropped the viewers that went within {GONE_WITHIN:?}"
        );
        eprintln!("sessions gone {:?} after their viewers", went.elapsed());
        let (after, rss_after) = wait_for(&campeer_rt, SETTLE, |c| c.no_more_than(&before)).await;
        eprintln!(
            "before: {before:?}, RSS {rss_before} KiB\nduring: {during:?}, RSS {rss_during} KiB\n\
             after: {after:?}, RSS {rss_after} KiB"
        );
        assert!(
            after.no_more_than(&before),
            "what campeer and the process hold: {after:?} after, {before:?} before"
        );
        // Roughly: high-water marks stay (heap fragmentation, grown slabs and maps: 1.5-2.5
        // MB measured after 3-6 viewers, not in proportion), a leak keeps what they took.
        assert!(
            rss_after - rss_before.min(rss_after) < (rss_during - rss_before) / 2,
            "resident memory: {rss_before} KiB before, {rss_during} KiB with the viewers \
             who left, {rss_after} KiB after"
        );

        stop_watching
            .send(())
            .expect("the steady viewer is watched");
        let (steady, counters) = watching.await.expect("the steady viewer");
        assert_in_order("the viewer that stayed", &counters, MAX_STEP);
        steady.hang_up().await;
        campeer.stop().await;
    });
}
