//! A link with delay, jitter and loss, emulated in userspace because this machine's kernel
//! has no `netem`: a thread in the LAN's hub namespace copies Ethernet frames between a
//! host's veth and the bridge, and holds each frame going to the host for its own delay.
//!
//! What it models, per frame toward the host (everything on the link: ARP, TCP, STUN,
//! RTP, RTCP): a delay drawn from a normal distribution (`netem delay D J distribution
//! normal`, cut off at zero), `loss` % dropped at random, uncorrelated; and either packets
//! that overtake each other when their delays differ by more than their spacing (what
//! netem itself does with jitter), or a queue that keeps them in order (netem with a `rate`
//! or a FIFO child), where a frame waits behind a slower one before it. Frames from the
//! host pass at once. Not modelled: a rate limit (the `tbf` of `netns` does that),
//! correlated loss, duplication.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the link does to frames toward its host.
#[derive(Debug, Clone, Copy, Default)]
pub struct Impairment {
    pub delay: Duration,
    /// The standard deviation of the delay.
    pub jitter: Duration,
    pub loss_percent: u32,
    /// Frames with a shorter delay leave before earlier ones with a longer delay.
    pub reorder: bool,
}

impl Impairment {
    /// This frame's delay: normal around `delay`, never negative.
    fn draw(&self) -> Duration {
        // Box-Muller: two uniform draws make one standard normal one.
        let (u1, u2) = (1.0 - rand::random::<f64>(), rand::random::<f64>());
        let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        let ms = self.delay.as_secs_f64() * 1e3 + z * self.jitter.as_secs_f64() * 1e3;
        Duration::from_secs_f64(ms.max(0.0) / 1e3)
    }
}

/// What the link did to frames toward its host so far.
#[derive(Debug, Clone, Copy, Default)]
pub struct WireCounts {
    pub delivered: u64,
    pub lost: u64,
    /// Delivered after a frame that reached the link later: overtaken.
    pub overtaken: u64,
    /// Frames the kernel refused to send on (e.g. larger than the MTU): the link is broken.
    pub failed: u64,
}

#[derive(Default)]
struct Shared {
    impairment: Mutex<Impairment>,
    counts: Mutex<WireCounts>,
    stop: AtomicBool,
}

/// The running link; stops its thread on drop.
pub struct Wire {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Wire {
    /// Copies frames between `lan_side` and `host_side`, two interfaces of namespace `ns`
    /// (a path under /run/netns), impairing those toward the host.
    pub fn start(ns: &str, lan_side: &str, host_side: &str, impairment: Impairment) -> Self {
        let shared = Arc::new(Shared::default());
        *shared.impairment.lock().unwrap() = impairment;
        let (ns, lan_side, host_side) = (ns.to_owned(), lan_side.to_owned(), host_side.to_owned());
        let (ready_tx, ready) = std::sync::mpsc::channel();
        let thread = std::thread::spawn({
            let shared = Arc::clone(&shared);
            move || {
                let ns_file = std::fs::File::open(&ns).unwrap_or_else(|e| panic!("{ns}: {e}"));
                // SAFETY: setns on a valid namespace fd changes only this thread.
                let rc = unsafe { libc::setns(ns_file.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(rc, 0, "setns {ns}: {}", std::io::Error::last_os_error());
                let lan = packet_socket(&lan_side);
                let host = packet_socket(&host_side);
                let _ = ready_tx.send(());
                forward(&lan, &host, &shared);
            }
        });
        // The thread panics (a socket it cannot make) before it is ready: its panic.
        if ready.recv().is_err() {
            let panic = thread.join().expect_err("the wire's thread ended early");
            std::panic::resume_unwind(panic);
        }
        Self {
            shared,
            thread: Some(thread),
        }
    }

    pub fn set(&self, impairment: Impairment) {
        *self.shared.impairment.lock().unwrap() = impairment;
    }

    pub fn counts(&self) -> WireCounts {
        *self.shared.counts.lock().unwrap()
    }
}

impl Drop for Wire {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A raw socket for every frame arriving on interface `name`, non-blocking.
fn packet_socket(name: &str) -> OwnedFd {
    let all = (libc::ETH_P_ALL as u16).to_be();
    // SAFETY: plain socket(2); the fd is owned at once.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_NONBLOCK,
            all.into(),
        )
    };
    assert!(
        fd >= 0,
        "packet socket: {} (root?)",
        std::io::Error::last_os_error()
    );
    // SAFETY: fd is a fresh socket nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let cname = std::ffi::CString::new(name).expect("interface name");
    // SAFETY: cname is a valid C string.
    let index = unsafe { libc::if_nametoindex(cname.as_ptr()) };
    assert!(
        index != 0,
        "interface {name}: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: sockaddr_ll is plain data; zeroed is valid.
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = libc::AF_PACKET as u16;
    addr.sll_protocol = all;
    addr.sll_ifindex = index as i32;
    // SAFETY: addr is a sockaddr_ll of the size passed.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&addr as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        )
    };
    assert_eq!(rc, 0, "bind to {name}: {}", std::io::Error::last_os_error());
    fd
}

/// The next frame that arrived on `fd` from its peer (not one this side sent), if any.
fn receive(fd: &OwnedFd, buf: &mut [u8]) -> Option<usize> {
    loop {
        // SAFETY: sockaddr_ll is plain data; zeroed is valid.
        let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::sockaddr_ll>() as u32;
        // SAFETY: buf and from are valid for the lengths passed.
        let n = unsafe {
            libc::recvfrom(
                fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                0,
                (&mut from as *mut libc::sockaddr_ll).cast(),
                &mut len,
            )
        };
        if n < 0 {
            return None;
        }
        if from.sll_pkttype != libc::PACKET_OUTGOING {
            return Some(n as usize);
        }
    }
}

fn send(fd: &OwnedFd, frame: &[u8], counts: &Mutex<WireCounts>) {
    // SAFETY: frame is valid for its length.
    let n = unsafe { libc::send(fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
    if n < 0 {
        counts.lock().unwrap().failed += 1;
    }
}

/// A frame held for its delay: ordered by when it leaves, then by when it arrived.
type Held = Reverse<(Instant, u64, Vec<u8>)>;

/// Copies frames both ways until told to stop; see the module comment.
fn forward(lan: &OwnedFd, host: &OwnedFd, shared: &Shared) {
    let mut held: BinaryHeap<Held> = BinaryHeap::new();
    let mut buf = vec![0u8; 65536];
    let (mut arrived, mut last_due, mut delivered_up_to) = (0u64, Instant::now(), 0u64);
    while !shared.stop.load(Ordering::Relaxed) {
        // Wake for the next frame due, or to look at `stop` now and then.
        let now = Instant::now();
        let wait = held
            .peek()
            .map_or(Duration::from_millis(20), |Reverse((due, ..))| {
                due.saturating_duration_since(now)
            })
            .min(Duration::from_millis(20));
        let mut fds = [lan, host].map(|fd| libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        });
        let ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: wait.as_nanos() as i64,
        };
        // SAFETY: fds and ts are valid for the call.
        unsafe { libc::ppoll(fds.as_mut_ptr(), 2, &ts, std::ptr::null()) };

        while let Some(n) = receive(host, &mut buf) {
            send(lan, &buf[..n], &shared.counts);
        }
        while let Some(n) = receive(lan, &mut buf) {
            let imp = *shared.impairment.lock().unwrap();
            arrived += 1;
            if rand::random_range(0..100) < imp.loss_percent {
                shared.counts.lock().unwrap().lost += 1;
                continue;
            }
            let mut due = Instant::now() + imp.draw();
            if !imp.reorder {
                due = due.max(last_due);
            }
            last_due = due;
            held.push(Reverse((due, arrived, buf[..n].to_vec())));
        }
        let now = Instant::now();
        while held.peek().is_some_and(|Reverse((due, ..))| *due <= now) {
            let Reverse((_, seq, frame)) = held.pop().expect("peeked");
            send(host, &frame, &shared.counts);
            let mut c = shared.counts.lock().unwrap();
            c.delivered += 1;
            c.overtaken += u64::from(seq < delivered_up_to);
            delivered_up_to = delivered_up_to.max(seq);
        }
    }
}
