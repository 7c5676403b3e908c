//! The addresses a person can type to reach the embedded page: `0.0.0.0` is where the
//! server listens, not where anyone can watch.

use std::net::{IpAddr, SocketAddr};

/// `scheme://host:port/` for each way to reach `bound`: when it is the unspecified
/// address, the host name, `HOST.local` (mDNS, as Raspberry Pi OS announces it) and each
/// interface address, loopback last; otherwise `bound` itself.
pub fn watch_urls(scheme: &str, bound: SocketAddr) -> Vec<String> {
    if !bound.ip().is_unspecified() {
        return vec![url(scheme, &host(bound.ip()), bound.port())];
    }
    let hostname = crate::access::viewer_url::hostname();
    let interfaces: Vec<IpAddr> = nix::ifaddrs::getifaddrs()
        .map(|all| {
            all.filter_map(|i| i.address)
                .filter_map(|a| {
                    a.as_sockaddr_in()
                        .map(|v4| IpAddr::V4(v4.ip()))
                        .or_else(|| a.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip())))
                })
                .collect()
        })
        .unwrap_or_default();
    urls_for(scheme, bound, hostname.as_deref(), &interfaces)
}

fn urls_for(
    scheme: &str,
    bound: SocketAddr,
    hostname: Option<&str>,
    interfaces: &[IpAddr],
) -> Vec<String> {
    let port = bound.port();
    let mut hosts: Vec<String> = Vec::new();
    if let Some(name) = hostname.filter(|n| !n.is_empty() && *n != "localhost") {
        hosts.push(name.to_owned());
        if !name.contains('.') {
            hosts.push(format!("{name}.local"));
        }
    }
    let reachable = |ip: &IpAddr| match ip {
        // An IPv4 listener takes no IPv6 connections; link-local IPv6 needs a zone.
        IpAddr::V4(_) => true,
        IpAddr::V6(v6) => bound.is_ipv6() && (v6.segments()[0] & 0xffc0) != 0xfe80,
    };
    let (lo, other): (Vec<IpAddr>, Vec<IpAddr>) = interfaces
        .iter()
        .copied()
        .filter(reachable)
        .partition(IpAddr::is_loopback);
    for ip in other.into_iter().chain(lo) {
        let h = host(ip);
        if !hosts.contains(&h) {
            hosts.push(h);
        }
    }
    hosts.iter().map(|h| url(scheme, h, port)).collect()
}

fn host(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

fn url(scheme: &str, host: &str, port: u16) -> String {
    format!("{scheme}://{host}:{port}/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_unspecified_listener_is_named_by_host_name_mdns_name_and_each_address() {
        let got = urls_for(
            "http",
            "0.0.0.0:3000".parse().unwrap(),
            Some("pi"),
            &[
                ip("127.0.0.1"),
                ip("192.168.1.20"),
                ip("fe80::1"),
                ip("10.0.0.2"),
            ],
        );
        assert_eq!(
            got,
            [
                "http://pi:3000/",
                "http://pi.local:3000/",
                "http://192.168.1.20:3000/",
                "http://10.0.0.2:3000/",
                "http://127.0.0.1:3000/",
            ]
        );
    }

    #[test]
    fn an_ipv6_listener_lists_global_ipv6_addresses_in_brackets() {
        let got = urls_for(
            "https",
            "[::]:8443".parse().unwrap(),
            None,
            &[ip("::1"), ip("2001:db8::5"), ip("fe80::1")],
        );
        assert_eq!(got, ["https://[2001:db8::5]:8443/", "https://[::1]:8443/"]);
    }

    #[test]
    fn a_specific_listener_is_named_as_bound() {
        assert_eq!(
            watch_urls("http", "127.0.0.1:3000".parse().unwrap()),
            ["http://127.0.0.1:3000/"]
        );
    }
}
