//! Debian's coturn as the TURN server of a test: its config written to a temp dir, one
//! static user, UDP and TCP on port 3478 of one address (and TLS on 5349 with a
//! certificate made for that address, when asked), run in a [`Host`] of the test's LAN;
//! verbose, for the lines that say it listens.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use super::netns::Host;
use super::{Lines, START_DEADLINE};

pub const PORT: u16 = 3478;
pub const TLS_PORT: u16 = 5349;
pub const USER: &str = "campeer";

pub struct Turn {
    child: Child,
    /// `turn:ADDR:3478?transport=udp`.
    pub url: String,
    /// `turn:ADDR:3478?transport=tcp`.
    pub tcp_url: String,
    /// `turns:ADDR:5349` and the certificate to trust for it, when started with TLS.
    pub tls: Option<TurnTls>,
    /// Made up per server, so that a search for it in a log finds only leaks.
    pub password: String,
    pub out: Lines,
    _dir: tempfile::TempDir,
}

pub struct TurnTls {
    pub url: String,
    /// The server's self-signed certificate (for its address), PEM: the CA to trust.
    pub ca_file: PathBuf,
}

impl Turn {
    /// Starts coturn in `host`, listening (UDP and TCP) and relaying on its address;
    /// returns once it listens.
    pub fn start(host: &Host) -> Self {
        Self::start_with(host, false)
    }

    /// As [`Turn::start`], and TLS on [`TLS_PORT`] with a self-signed certificate for the
    /// host's address.
    pub fn start_with_tls(host: &Host) -> Self {
        Self::start_with(host, true)
    }

    fn start_with(host: &Host, with_tls: bool) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let password = format!("pw-{:016x}", rand::random::<u64>());
        let addr = host.addr;
        let tls = if with_tls {
            let made = rcgen::generate_simple_self_signed(vec![addr.to_string()])
                .expect("a self-signed certificate for the TURN server");
            let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
            std::fs::write(&cert, made.cert.pem()).expect("certificate written");
            std::fs::write(&key, made.signing_key.serialize_pem()).expect("key written");
            format!(
                "tls-listening-port={TLS_PORT}\ncert={}\npkey={}\n",
                cert.display(),
                key.display()
            )
        } else {
            "no-tls\n".to_owned()
        };
        let config = dir.path().join("turnserver.conf");
        std::fs::write(
            &config,
            format!(
                "listening-ip={addr}\nrelay-ip={addr}\nlistening-port={PORT}\n{tls}\
                 lt-cred-mech\nfingerprint\nuser={USER}:{password}\nrealm=campeer.test\n\
                 no-dtls\nno-tcp-relay\nno-cli\nno-rfc5780\nno-stun-backward-compatibility\n\
                 pidfile={dir}/turnserver.pid\nuserdb={dir}/turndb\nlog-file=stdout\nsimple-log\nverbose\n",
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
            &format!("UDP listener opened on: {addr}:{PORT}"),
            START_DEADLINE,
        );
        // coturn tells TLS from plain TCP on any of its TCP listeners.
        let tcp = if with_tls { "TLS/TCP" } else { "TCP" };
        out.wait_for(
            &format!("{tcp} listener opened on : {addr}:{PORT}"),
            START_DEADLINE,
        );
        let tls = with_tls.then(|| {
            out.wait_for(
                &format!("TLS/TCP listener opened on : {addr}:{TLS_PORT}"),
                START_DEADLINE,
            );
            TurnTls {
                url: format!("turns:{addr}:{TLS_PORT}"),
                ca_file: dir.path().join("cert.pem"),
            }
        });
        Self {
            child,
            url: format!("turn:{addr}:{PORT}?transport=udp"),
            tcp_url: format!("turn:{addr}:{PORT}?transport=tcp"),
            tls,
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
