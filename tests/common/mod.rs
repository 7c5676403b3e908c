//! The shared harness: a real npm `socket.io` relay process, campeer as its own process,
//! and webrtc-rs viewers. Every wait is on an event (a line printed, a frame decoded)
//! bounded by a deadline, never a bare sleep.

#![allow(dead_code)] // each test file uses a different part of the harness

pub mod chromium;
pub mod ffmpeg;
pub mod held;
pub mod in_process;
pub mod jitter;
pub mod killable;
pub mod netns;
pub mod playback;
pub mod rtp_log;
pub mod turn;
pub mod viewer;
pub mod vm;
pub mod wire;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use viewer::{Direction, Viewer};

/// How long a test waits for the relay to listen, for campeer to join its room and for a
/// call to connect. Only to keep a broken run from hanging, so long enough for emulation
/// on a busy host (the VM's node read its modules over 9p for more than 45 s once); how
/// long these take is measured in benches/, not here.
pub const START_DEADLINE: Duration = Duration::from_secs(120);
pub const CONNECT_DEADLINE: Duration = Duration::from_secs(60);

/// Lines a child process printed, shared with the thread that reads them.
#[derive(Clone, Default)]
pub struct Lines(Arc<(Mutex<Vec<String>>, Condvar)>);

impl Lines {
    fn follow(&self, stream: impl std::io::Read + Send + 'static, echo: &'static str) {
        let lines = self.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                eprintln!("[{echo}] {line}");
                let (buf, cv) = &*lines.0;
                buf.lock().unwrap().push(line);
                cv.notify_all();
            }
        });
    }

    /// Waits until `count` lines contain `needle`; returns the last of them.
    pub fn wait_for_n(&self, needle: &str, count: usize, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        let (buf, cv) = &*self.0;
        let mut guard = buf.lock().unwrap();
        loop {
            let hits: Vec<&String> = guard.iter().filter(|l| l.contains(needle)).collect();
            if hits.len() >= count {
                return hits[count - 1].clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "timed out after {timeout:?} waiting for {count}× {needle:?}"
            );
            guard = cv.wait_timeout(guard, left).unwrap().0;
        }
    }

    /// Waits for a line after the first `from` that `pick` accepts; `what` names it in
    /// the panic. Returns what `pick` made of it.
    pub fn wait_for_line<T>(
        &self,
        from: usize,
        timeout: Duration,
        what: &str,
        pick: impl Fn(&str) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        let (buf, cv) = &*self.0;
        let mut guard = buf.lock().unwrap();
        let mut seen = from;
        loop {
            if let Some(t) = guard.iter().skip(seen).find_map(|l| pick(l)) {
                return t;
            }
            seen = guard.len().max(from);
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "timed out after {timeout:?} waiting for {what}"
            );
            guard = cv.wait_timeout(guard, left).unwrap().0;
        }
    }

    /// How many lines have been printed so far.
    pub fn len(&self) -> usize {
        self.0.0.lock().unwrap().len()
    }

    pub fn wait_for(&self, needle: &str, timeout: Duration) -> String {
        self.wait_for_n(needle, 1, timeout)
    }

    pub fn count(&self, needle: &str) -> usize {
        self.0
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }

    pub fn all(&self) -> Vec<String> {
        self.0.0.lock().unwrap().clone()
    }
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A free TCP port on loopback, for a relay that must come back on the same port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// The Engine.IO transports a [`Relay`] accepts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Transports {
    /// socket.io's default: polling, upgraded to a websocket, or a websocket at once.
    Any,
    /// Long polling only; a websocket is refused with 400, and no upgrade is offered.
    PollingOnly,
}

/// The field relay of PROTOCOL.md: `tests/relay/relay.js` on Node's socket.io.
pub struct Relay {
    child: Child,
    scheme: &'static str,
    host: String,
    pub port: u16,
    pub out: Lines,
}

impl Relay {
    pub fn start() -> Self {
        Self::start_on(0)
    }

    pub fn start_on(port: u16) -> Self {
        Self::spawn(&[], "127.0.0.1", port, None, Transports::Any)
    }

    /// The relay in a host of a test's LAN, on that host's address.
    pub fn start_in(host: &netns::Host) -> Self {
        Self::spawn(
            &host.wrapper(),
            &host.addr.to_string(),
            0,
            None,
            Transports::Any,
        )
    }

    /// The relay over https on loopback, with this PEM certificate and key.
    pub fn start_https(cert: &Path, key: &Path) -> Self {
        Self::spawn(&[], "127.0.0.1", 0, Some((cert, key)), Transports::Any)
    }

    /// The relay on loopback refusing websockets: Engine.IO over long polling alone.
    pub fn start_polling_only() -> Self {
        Self::spawn(&[], "127.0.0.1", 0, None, Transports::PollingOnly)
    }

    /// Runs the relay under `wrapper` (words put before `node`), listening on `host`,
    /// over https with `tls`'s certificate and key if given, over `transports`.
    fn spawn(
        wrapper: &[&str],
        host: &str,
        port: u16,
        tls: Option<(&Path, &Path)>,
        transports: Transports,
    ) -> Self {
        let mut words = wrapper.iter().copied().chain(["node"]);
        let mut cmd = Command::new(words.next().expect("a program"));
        if let Some((cert, key)) = tls {
            cmd.env("TLS_CERT", cert).env("TLS_KEY", key);
        }
        if transports == Transports::PollingOnly {
            cmd.env("POLLING_ONLY", "1");
        }
        let mut child = cmd
            .args(words)
            .arg(repo().join("tests/relay/relay.js"))
            .env("HOST", host)
            .env("PORT", port.to_string())
            .env("NODE_PATH", repo().join("tests/node_modules"))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node runs (scripts/setup installs it)");
        let out = Lines::default();
        out.follow(child.stdout.take().expect("piped stdout"), "relay");
        let line = out.wait_for("listening ", START_DEADLINE);
        let port = line["listening ".len()..]
            .trim()
            .parse()
            .expect("relay prints its port");
        Self {
            child,
            scheme: if tls.is_some() { "https" } else { "http" },
            host: host.to_owned(),
            port,
            out,
        }
    }

    pub fn url(&self) -> String {
        format!("{}://{}:{}", self.scheme, self.host, self.port)
    }

    /// Waits for the `n`th join of room 1 this relay has seen (campeer's, while no
    /// viewer has joined).
    pub fn wait_for_join(&self, n: usize) {
        self.out.wait_for_n("join 1", n, START_DEADLINE);
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The viewer token every campeer the tests start is configured with (`access.token`), so
/// none writes a token file, and the test viewers can prove their offers.
pub const TEST_TOKEN: &str = "campeer-test-token-2b7e151628aed2a6";

/// campeer itself, the release of this build, as its own process.
pub struct Campeer {
    child: Child,
    pub log: Lines,
}

impl Campeer {
    /// Starts campeer on the test sources at 320x240 against `url`, bound to loopback.
    /// `env` adds or overrides `CAMPEER__` settings.
    ///
    /// `CAMPEER_BIN` runs another build instead of this one (the aarch64 binary), under
    /// `CAMPEER_RUNNER` if set (e.g. `qemu-aarch64-static -L /usr/aarch64-linux-gnu`).
    pub fn start(url: Option<&str>, env: &[(&str, &str)]) -> Self {
        Self::start_wrapped(&[], url, env)
    }

    /// [`Campeer::start`] in a host of a test's LAN, its media bound to the host's address.
    pub fn start_in(host: &netns::Host, url: &str, env: &[(&str, &str)]) -> Self {
        let addr = host.addr.to_string();
        let mut all = vec![("CAMPEER__WEBRTC__BIND", addr.as_str())];
        all.extend_from_slice(env);
        Self::start_wrapped(&host.wrapper(), Some(url), &all)
    }

    /// [`Campeer::start`] under `wrapper`: words put before the runner and the binary.
    fn start_wrapped(wrapper: &[&str], url: Option<&str>, env: &[(&str, &str)]) -> Self {
        let bin =
            std::env::var_os("CAMPEER_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_campeer").into());
        let runner = std::env::var("CAMPEER_RUNNER").unwrap_or_default();
        let mut words = wrapper
            .iter()
            .map(std::ffi::OsString::from)
            .chain(runner.split_whitespace().map(Into::into))
            .chain([bin]);
        let mut cmd = Command::new(words.next().expect("a program"));
        cmd.args(words);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("RUST_LOG", "info,webrtc=warn,rtc=warn")
            .env("CAMPEER__VIDEO__SOURCE", "test")
            .env("CAMPEER__AUDIO__SOURCE", "test")
            .env("CAMPEER__VIDEO__WIDTH", "320")
            .env("CAMPEER__VIDEO__HEIGHT", "240")
            .env("CAMPEER__VIDEO__BITRATE_KBPS", "600")
            .env("CAMPEER__WEBRTC__BIND", "127.0.0.1")
            .env("CAMPEER__ACCESS__TOKEN", TEST_TOKEN)
            .current_dir(std::env::temp_dir());
        if let Some(url) = url {
            cmd.env("CAMPEER__SIGNALING__URL", url);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("campeer starts");
        let log = Lines::default();
        log.follow(child.stderr.take().expect("piped stderr"), "campeer");
        Self { child, log }
    }

    /// Starts campeer with no relay configured, so it serves its own on a free port; returns
    /// it with that relay's URL once campeer has joined its room there.
    pub fn start_embedded(env: &[(&str, &str)]) -> (Self, String) {
        Self::embedded(&[], "127.0.0.1", env)
    }

    /// [`Campeer::start_embedded`] in a host of a test's LAN: the page and the media on
    /// the host's address.
    pub fn start_embedded_in(host: &netns::Host, env: &[(&str, &str)]) -> (Self, String) {
        let addr = host.addr.to_string();
        let mut all = vec![("CAMPEER__WEBRTC__BIND", addr.as_str())];
        all.extend_from_slice(env);
        Self::embedded(&host.wrapper(), &addr, &all)
    }

    /// campeer under `wrapper` serving its own relay on `addr`, port free.
    fn embedded(wrapper: &[&str], addr: &str, env: &[(&str, &str)]) -> (Self, String) {
        let listen = format!("{addr}:0");
        let mut all = vec![("CAMPEER__SIGNALING__LISTEN", listen.as_str())];
        all.extend_from_slice(env);
        let me = Self::start_wrapped(wrapper, None, &all);
        let line = me.log.wait_for("viewer page listening", START_DEADLINE);
        let field = |name: &str| {
            line.split(&format!("{name}="))
                .nth(1)
                .and_then(|a| a.split_whitespace().next())
                .unwrap_or_else(|| panic!("the log names the {name}: {line}"))
                .to_owned()
        };
        let url = format!("{}://{}", field("scheme"), field("addr"));
        me.log.wait_for("seated in its room", START_DEADLINE);
        (me, url)
    }

    /// SIGTERM, then the exit status (within 10 s).
    pub fn terminate(&mut self) -> ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::scope(|s| {
            let child = &mut self.child;
            s.spawn(move || tx.send(child.wait().expect("wait on campeer")));
            rx.recv_timeout(Duration::from_secs(10))
                .expect("campeer exits within 10 s of SIGTERM")
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("wait on campeer").is_none()
    }
}

impl Drop for Campeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `kbps=N` of campeer's `video target` log line: the encoder's new target.
pub fn video_target_kbps(line: &str) -> Option<u32> {
    if !line.contains("video target") {
        return None;
    }
    let (_, rest) = line.split_once(" kbps=")?;
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// The layers a session said it forwards, in order (its `layers forwarded` log lines).
pub fn layers_forwarded(log: &Lines, ufrag: &str) -> Vec<u32> {
    let session = format!("ufrag={ufrag}");
    log.all()
        .iter()
        .filter(|l| l.contains(&session) && l.contains("layers forwarded"))
        .filter_map(|l| {
            let (_, rest) = l.split_once(" layers=")?;
            rest.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        })
        .collect()
}

/// The npm relay, and campeer (`env` as for [`Campeer::start`]) joined to its room 1 there.
pub fn campeer_in_relay_room(env: &[(&str, &str)]) -> (Relay, Campeer) {
    let relay = Relay::start();
    let campeer = Campeer::start(Some(&relay.url()), env);
    relay.wait_for_join(1);
    (relay, campeer)
}

/// [`campeer_in_relay_room`], and a viewer that called campeer through the relay, connected.
pub async fn call_through_relay(
    env: &[(&str, &str)],
    direction: Direction,
) -> (Relay, Campeer, Viewer) {
    let (relay, campeer) = campeer_in_relay_room(env);
    let viewer = Viewer::connect(&relay.url(), direction).await;
    (relay, campeer, viewer)
}

/// CPU seconds (user + system) a process has used, from /proc.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc stat");
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = &stat[stat.rfind(')').expect("comm field") + 2..];
    let f: Vec<u64> = rest
        .split(' ')
        .skip(11)
        .take(2)
        .map(|v| v.parse().expect("tick count"))
        .collect();
    // USER_HZ is 100 on every Linux this runs on.
    (f[0] + f[1]) as f64 / 100.0
}

/// Peak signal-to-noise ratio of two 8-bit pictures, in dB (infinite when equal).
pub fn psnr(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len(), "pictures of one size");
    let mse = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum::<f64>()
        / a.len() as f64;
    if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (255.0f64.powi(2) / mse).log10()
    }
}
