//! Under systemd (`Type=notify`, `WatchdogSec=`) campeer says READY=1 once its media
//! runs, whether or not its relay answers, keeps the watchdog fed, reports a STATUS line,
//! and says STOPPING=1 on SIGTERM. The test plays systemd: it listens on its own
//! NOTIFY_SOCKET.

mod common;

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use common::Campeer;

/// Every message up to `deadline`, until `stop` appears in one.
fn collect(sock: &UnixDatagram, stop: &str, deadline: Duration) -> Vec<String> {
    let end = Instant::now() + deadline;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !seen.iter().any(|m: &String| m.contains(stop)) {
        let left = end.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "no {stop:?} within {deadline:?}; got {seen:?}"
        );
        sock.set_read_timeout(Some(left)).unwrap();
        let n = sock
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("no {stop:?} ({e}); got {seen:?}"));
        seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    seen
}

/// A socket to play systemd on, in `dir`, and its path for NOTIFY_SOCKET.
fn notify_socket(dir: &std::path::Path) -> (UnixDatagram, String) {
    let path = dir.join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    (sock, path.to_string_lossy().into_owned())
}

#[test]
fn ready_watchdog_status_and_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let (sock, path) = notify_socket(dir.path());
    let (mut campeer, _url) =
        Campeer::start_embedded(&[("NOTIFY_SOCKET", &path), ("WATCHDOG_USEC", "2000000")]);

    let first = collect(&sock, "READY=1", Duration::from_secs(20));
    let ready = first.iter().find(|m| m.contains("READY=1")).unwrap();
    assert!(ready.contains("STATUS=0 viewer(s), room 1"), "{ready}");
    // Two keep-alives: the watchdog is fed repeatedly, not once.
    collect(&sock, "WATCHDOG=1", Duration::from_secs(5));
    collect(&sock, "WATCHDOG=1", Duration::from_secs(5));

    assert!(campeer.terminate().success());
    collect(&sock, "STOPPING=1", Duration::from_secs(5));
}

#[test]
fn ready_comes_while_the_relay_is_down() {
    let dir = tempfile::tempdir().unwrap();
    let (sock, path) = notify_socket(dir.path());
    // A port nothing listens on: the relay is down at boot.
    let down = format!("http://127.0.0.1:{}", common::free_port());
    let mut campeer = Campeer::start(Some(&down), &[("NOTIFY_SOCKET", &path)]);

    collect(&sock, "READY=1", Duration::from_secs(20));
    assert_eq!(
        campeer.log.count("connected, joining room"),
        0,
        "no relay was reached"
    );
    assert!(campeer.terminate().success());
}
