//! Networks made for one test: network namespaces ("hosts") on one Ethernet segment, a
//! bridge in a hub namespace of their own, so the test shapes and firewalls real links
//! without touching the machine's own network. Every host has loopback, its address on
//! `eth0` (10.77.0.N/24) and a default route out of `eth0` (to nowhere beyond the LAN),
//! unless the test takes that away.
//!
//! Needs root (`ip netns`, `tc`, `nft`: scripts/setup installs iproute2 and nftables).
//! Namespace names carry the test process's id, so tests run in parallel; they are
//! deleted when the [`Lan`] drops, even when the test panics, and ones left by a killed
//! test process are deleted by the next [`Lan`].

use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::viewer::ViewerNet;
use super::wire::{Impairment, Wire, WireCounts};

const PREFIX: &str = "campeer-test";

/// Whether this process may make namespaces. When not (not root), prints a loud SKIPPED
/// and returns false; under CI (`CI` set and not false/0, as in scripts/lib/ci.sh) fails
/// the test instead, so a green CI run always ran it.
pub fn can_run(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    let what = "network namespaces need root (run the tests as root, e.g. in the CI container)";
    match std::env::var("CI").as_deref() {
        Err(_) | Ok("" | "false" | "0") => {
            // Straight to stderr: libtest keeps what eprintln! says of a passing test.
            let stars = "*".repeat(72);
            let _ = writeln!(
                std::io::stderr(),
                "{stars}\n{test}: SKIPPED: {what}\n{test}: (under CI, CI=true, this fails the run)\n{stars}"
            );
            false
        }
        Ok(ci) => panic!("{test}: {what} (CI={ci}: a CI run must run every part)"),
    }
}

/// Runs `program args`, panicking with its stderr if it fails.
pub fn run(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{program} runs (scripts/setup installs it): {e}"));
    assert!(
        out.status.success(),
        "{program} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

/// One network namespace, deleted on drop.
struct Namespace(String);

impl Namespace {
    fn add(name: String) -> Self {
        run("ip", &["netns", "add", &name]);
        let ns = Self(name);
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    fn ip(&self, args: &[&str]) {
        let mut all = vec!["-n", self.0.as_str()];
        all.extend_from_slice(args);
        run("ip", &all);
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.0])
            .stderr(Stdio::null())
            .status();
    }
}

/// A namespace on the [`Lan`].
pub struct Host {
    ns: Namespace,
    pub addr: Ipv4Addr,
}

impl Host {
    pub fn namespace(&self) -> &str {
        &self.ns.0
    }

    /// The words that run a program in this host: `ip netns exec NS`.
    pub fn wrapper(&self) -> [&str; 4] {
        ["ip", "netns", "exec", self.namespace()]
    }

    /// Runs `program args` in this host.
    pub fn run(&self, program: &str, args: &[&str]) {
        let mut all = vec!["netns", "exec", self.namespace(), program];
        all.extend_from_slice(args);
        run("ip", &all);
    }

    /// Runs `f` on a thread of its own that lives in this host's namespace; everything
    /// `f` binds or connects (a tokio runtime it builds, its worker threads) is there too.
    pub fn enter<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        let path = format!("/run/netns/{}", self.namespace());
        std::thread::scope(|s| {
            s.spawn(|| {
                let ns = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
                // SAFETY: setns on a valid namespace fd changes only this thread.
                let rc = unsafe {
                    libc::setns(std::os::fd::AsRawFd::as_raw_fd(&ns), libc::CLONE_NEWNET)
                };
                assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
                f()
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    /// A viewer's network in this host: its address, no ICE servers.
    pub fn viewer_net(&self) -> ViewerNet {
        ViewerNet {
            addr: self.addr.to_string(),
            ice_servers: Vec::new(),
        }
    }

    /// Runs `fut` to completion on a tokio runtime of its own inside this host (see
    /// [`Host::enter`]): a viewer made there binds and connects from this host.
    pub fn block_on<F>(&self, fut: F) -> F::Output
    where
        F: std::future::Future + Send,
        F::Output: Send,
    {
        self.enter(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("tokio runtime")
                .block_on(fut)
        })
    }

    /// Leaves this host only the route to its LAN, as on a board cabled straight to a
    /// laptop: no default route, so no route for multicast either.
    pub fn remove_default_route(&self) {
        self.ns.ip(&["route", "del", "default"]);
    }

    /// Limits what this host sends on the LAN to `rate`: a slow uplink (see
    /// [`token_bucket`]).
    pub fn limit_upload(&self, rate: &str) {
        let mut args = vec!["netns", "exec", self.namespace()];
        args.extend(token_bucket("eth0", rate));
        run("ip", &args);
    }

    /// Lifts [`Host::limit_upload`].
    pub fn unlimit_upload(&self) {
        let _ = Command::new("ip")
            .args(["netns", "exec", self.namespace()])
            .args(["tc", "qdisc", "del", "dev", "eth0", "root"])
            .stderr(Stdio::null())
            .status();
    }

    /// Replaces this host's firewall with `rules` (an nft script body for `table inet
    /// test`), or none when empty.
    pub fn firewall(&self, rules: &str) {
        let script = format!("table inet test\ndelete table inet test\n{rules}\n");
        let path = std::env::temp_dir().join(format!("{}.nft", self.namespace()));
        std::fs::write(&path, script).expect("nft script written");
        // `table inet test` first so that the delete never fails on a fresh host.
        self.run("nft", &["-f", path.to_str().expect("utf-8 temp dir")]);
        let _ = std::fs::remove_file(path);
    }

    /// Drops `percent` % of the UDP packets that arrive, at random: a lossy link inward.
    pub fn lose_incoming_udp(&self, percent: u32) {
        self.firewall(&format!(
            "table inet test {{\n chain input {{ type filter hook input priority 0; \
             meta l4proto udp numgen random mod 100 < {percent} drop\n }}\n}}"
        ));
    }

    /// Lets UDP out only to `to`:`port` (TCP, loopback untouched): a network whose only
    /// way out for media is a TURN server.
    pub fn allow_udp_only_to(&self, to: Ipv4Addr, port: u16) {
        self.firewall(&format!(
            "table inet test {{\n chain output {{ type filter hook output priority 0; \
             oifname \"lo\" accept; ip daddr {to} udp dport {port} accept; \
             meta l4proto udp drop\n }}\n}}"
        ));
    }

    /// Lets no UDP out at all (TCP and loopback untouched): a network whose only way out
    /// for media is TURN over TCP or TLS.
    pub fn deny_udp_out(&self) {
        self.firewall(
            "table inet test {\n chain output { type filter hook output priority 0; \
             oifname \"lo\" accept; meta l4proto udp drop\n }\n}",
        );
    }
}

/// `tc` words that hold what leaves `dev` to `rate` (tc syntax, e.g. `500kbit`) with a
/// token bucket: what a slow link does, queueing up to 50 ms, then dropping.
fn token_bucket<'a>(dev: &'a str, rate: &'a str) -> [&'a str; 13] {
    [
        "tc", "qdisc", "replace", "dev", dev, "root", "tbf", "rate", rate, "burst", "10kb",
        "latency", "50ms",
    ]
}

/// Hosts on one Ethernet segment; see the module comment.
pub struct Lan {
    /// Userspace links by host index, dropped first: their threads hold the hub's veths.
    wires: Mutex<Vec<(usize, Wire)>>,
    hosts: Vec<Host>,
    // Dropped last: the hosts' veth ends go with it.
    hub: Namespace,
}

impl Lan {
    /// One host per name, addressed 10.77.0.1, .2, … in that order.
    pub fn new(names: &[&str]) -> Self {
        remove_stale();
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let id = format!(
            "{PREFIX}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let hub = Namespace::add(format!("{id}-hub"));
        hub.ip(&["link", "add", "br0", "type", "bridge"]);
        hub.ip(&["link", "set", "br0", "up"]);
        let hosts = names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let ns = Namespace::add(format!("{id}-{name}"));
                let port = format!("p{i}");
                hub.ip(&[
                    "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &ns.0,
                ]);
                hub.ip(&["link", "set", &port, "master", "br0", "up"]);
                let addr = Ipv4Addr::new(10, 77, 0, i as u8 + 1);
                ns.ip(&["addr", "add", &format!("{addr}/24"), "dev", "eth0"]);
                ns.ip(&["link", "set", "eth0", "up"]);
                ns.ip(&["route", "add", "default", "dev", "eth0"]);
                Host { ns, addr }
            })
            .collect();
        Self {
            wires: Mutex::default(),
            hosts,
            hub,
        }
    }

    /// Delays, jitters and drops what reaches host `name` from the LAN (see `wire`): its
    /// link leaves the bridge for a userspace [`Wire`] on the first call, before the
    /// host's traffic starts; later calls change what the wire does.
    pub fn impair_download(&self, name: &str, impairment: Impairment) {
        let i = self.index(name);
        let mut wires = self.wires.lock().unwrap();
        if let Some((_, wire)) = wires.iter().find(|(w, _)| *w == i) {
            return wire.set(impairment);
        }
        let (port, bridged, loose) = (self.hub_port(name), format!("w{i}"), format!("x{i}"));
        self.hub.ip(&["link", "set", &port, "nomaster"]);
        self.hub.ip(&[
            "link", "add", &bridged, "type", "veth", "peer", "name", &loose,
        ]);
        self.hub
            .ip(&["link", "set", &bridged, "master", "br0", "up"]);
        self.hub.ip(&["link", "set", &loose, "up"]);
        // Frames reach the wire's sockets as their senders hand them over: checksums
        // left to the card and 64 KB TCP segments unless the senders do it in software.
        let hub_ns = self.hub.0.as_str();
        for (ns, dev) in [
            (hub_ns, bridged.as_str()),
            (self.host(name).namespace(), "eth0"),
        ] {
            run(
                "ip",
                &[
                    "netns", "exec", ns, "ethtool", "-K", dev, "tx", "off", "tso", "off", "gso",
                    "off",
                ],
            );
        }
        let wire = Wire::start(&format!("/run/netns/{hub_ns}"), &loose, &port, impairment);
        wires.push((i, wire));
    }

    /// What the wire of [`Lan::impair_download`] did to host `name`'s frames so far.
    pub fn download_counts(&self, name: &str) -> WireCounts {
        let i = self.index(name);
        let wires = self.wires.lock().unwrap();
        let (_, wire) = wires
            .iter()
            .find(|(w, _)| *w == i)
            .unwrap_or_else(|| panic!("no wire to host {name}"));
        wire.counts()
    }

    /// Limits what reaches host `name` from the LAN to `rate`, as [`Host::limit_upload`]
    /// does for what leaves a host: one viewer on a slow link, the others not.
    pub fn limit_download(&self, name: &str, rate: &str) {
        let port = self.hub_port(name);
        let mut args = vec!["netns", "exec", self.hub.0.as_str()];
        args.extend(token_bucket(&port, rate));
        run("ip", &args);
    }

    pub fn host(&self, name: &str) -> &Host {
        &self.hosts[self.index(name)]
    }

    fn index(&self, name: &str) -> usize {
        self.hosts
            .iter()
            .position(|h| h.namespace().ends_with(&format!("-{name}")))
            .unwrap_or_else(|| panic!("no host {name} on this LAN"))
    }

    /// The hub's end of host `name`'s link.
    fn hub_port(&self, name: &str) -> String {
        format!("p{}", self.index(name))
    }

    /// What the link to host `name` carried and dropped: `tc -s qdisc` of its hub port.
    pub fn download_report(&self, name: &str) -> String {
        let port = self.hub_port(name);
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.hub.0,
                "tc",
                "-s",
                "qdisc",
                "show",
                "dev",
                &port,
            ])
            .output()
            .expect("tc runs");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

/// Deletes namespaces a killed test process left behind.
fn remove_stale() {
    let Ok(entries) = std::fs::read_dir("/run/netns") else {
        return;
    };
    for name in entries.filter_map(|e| e.ok()?.file_name().into_string().ok()) {
        let Some(pid) = name
            .strip_prefix(&format!("{PREFIX}-"))
            .and_then(|rest| rest.split('-').next())
        else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            drop(Namespace(name));
        }
    }
}
