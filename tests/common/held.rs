//! What a process holds, read from /proc: file descriptors, threads, UDP sockets and
//! resident memory. For this test process (`"self"`) or a child (its pid).

use std::collections::HashSet;
use std::net::Ipv4Addr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    pub fds: usize,
    pub threads: usize,
    /// All its UDP sockets, IPv4 and IPv6.
    pub udp_sockets: usize,
    pub rss_kib: u64,
}

impl Held {
    /// `pid` is a process id or `"self"`.
    pub fn of(pid: &str) -> Self {
        Self {
            fds: entries(&format!("/proc/{pid}/fd")),
            threads: entries(&format!("/proc/{pid}/task")),
            udp_sockets: udp_sockets(pid, None),
            rss_kib: rss_kib(pid),
        }
    }
}

fn entries(dir: &str) -> usize {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .count()
}

/// Its UDP sockets, only those bound to `local` if given (IPv4 then).
pub fn udp_sockets(pid: &str, local: Option<Ipv4Addr>) -> usize {
    let mine = socket_inodes(pid);
    let tables: &[&str] = if local.is_some() {
        &["udp"]
    } else {
        &["udp", "udp6"]
    };
    // /proc/net/udp writes an IPv4 address as the hex of its bytes in memory order.
    let want = local.map(|ip| format!("{:08X}:", u32::from_le_bytes(ip.octets())));
    tables
        .iter()
        .map(|t| {
            let path = format!("/proc/{pid}/net/{t}");
            std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{path}: {e}"))
                .lines()
                .skip(1)
                .filter(|line| {
                    let f: Vec<&str> = line.split_whitespace().collect();
                    let bound = want.as_ref().is_none_or(|w| f[1].starts_with(w.as_str()));
                    bound && f.get(9).is_some_and(|inode| mine.contains(*inode))
                })
                .count()
        })
        .sum()
}

/// The inodes of its sockets, from the `socket:[N]` its fds link to.
fn socket_inodes(pid: &str) -> HashSet<String> {
    let dir = format!("/proc/{pid}/fd");
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|target| {
            let t = target.to_str()?;
            Some(t.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
        })
        .collect()
}

fn rss_kib(pid: &str) -> u64 {
    let path = format!("/proc/{pid}/status");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{path} has VmRSS"))
}
