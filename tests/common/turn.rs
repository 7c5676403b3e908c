//! Debian's coturn as the TURN server of a test: its config written to a temp dir, one
//! static user, UDP on port 3478 of one address, run in a [`Host`] of the test's LAN;
//! verbose, for the line that says it listens.

use std::process::{Child, Command, Stdio};

use super::netns::Host;
use super::{Lines, START_DEADLINE};

pub const PORT: u16 = 3478;
pub const USER: &str = "campeer";

pub struct Turn {
    child: Child,
    pub url: String,
    /// Made up per server, so that a search for it in a log finds only leaks.
    pub password: String,
    pub out: Lines,
    _dir: tempfile::TempDir,
}

impl Turn {
    /// Starts coturn in `host`, listening and relaying on its address; returns once it
    /// listens.
    pub fn start(host: &Host) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let password = format!("pw-{:016x}", rand::random::<u64>());
        let config = dir.path().join("turnserver.conf");
        std::fs::write(
            &config,
            format!(
                "listening-ip={addr}\nrelay-ip={addr}\nlistening-port={PORT}\n\
                 lt-cred-mech\nfingerprint\nuser={USER}:{password}\nrealm=campeer.test\n\
                 no-tls\nno-dtls\nno-tcp-relay\nno-cli\nno-rfc5780\nno-stun-backward-compatibility\n\
                 pidfile={dir}/turnserver.pid\nuserdb={dir}/turndb\nlog-file=stdout\nsimple-log\nverbose\n",
                addr = host.addr,
                dir = dir.path().display(),
            ),
        )
        .expect("coturn config written");
        let mut child = Command::new(host.wrapper()[0])
            .args(&host.wrapper()[1..])
            .arg("turnserver")
            .arg("-c")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("turnserver runs (scripts/setup installs coturn)");
        let out = Lines::default();
        out.follow(child.stdout.take().expect("piped stdout"), "turn");
        out.follow(child.stderr.take().expect("piped stderr"), "turn");
        out.wait_for(
            &format!("UDP listener opened on: {}:{PORT}", host.addr),
            START_DEADLINE,
        );
        Self {
            child,
            url: format!("turn:{}:{PORT}?transport=udp", host.addr),
            password,
            out,
            _dir: dir,
        }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
