//! The async runtime campeer's connections run on: webrtc-rs's tokio runtime, with each
//! UDP socket watched by a [`FlightRepeat`] (see there why).

use std::fmt;
use std::future::Future;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use webrtc::runtime::{
    AsyncInterval, AsyncTcpListener, AsyncTcpStream, AsyncUdpSocket, JoinHandle, RecvMeta, Runtime,
    TokioRuntime, Transmit,
};

use super::flight_repeat::{FlightRepeat, is_dtls};

/// [`TokioRuntime`], its UDP sockets wrapped in [`RepeatingSocket`]s.
#[derive(Debug)]
pub(super) struct RepeatingRuntime(TokioRuntime);

pub(super) fn runtime() -> Arc<dyn Runtime> {
    Arc::new(RepeatingRuntime(TokioRuntime))
}

impl Runtime for RepeatingRuntime {
    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>) -> Box<dyn JoinHandle> {
        self.0.spawn(future)
    }

    fn spawn_reactor(
        &self,
        reactor_pool_size: usize,
        future: Pin<Box<dyn Future<Output = ()> + Send>>,
    ) -> Box<dyn JoinHandle> {
        self.0.spawn_reactor(reactor_pool_size, future)
    }

    fn wrap_udp_socket(&self, socket: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        Ok(Arc::new(RepeatingSocket {
            inner: self.0.wrap_udp_socket(socket)?,
            flights: Mutex::default(),
        }))
    }

    fn wrap_tcp_listener(
        &self,
        listener: std::net::TcpListener,
    ) -> io::Result<Arc<dyn AsyncTcpListener>> {
        self.0.wrap_tcp_listener(listener)
    }

    fn connect_tcp<'a>(
        &'a self,
        remote_addr: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = io::Result<Arc<dyn AsyncTcpStream>>> + Send + 'a>> {
        self.0.connect_tcp(remote_addr)
    }

    fn resolve_host<'a>(
        &'a self,
        host: &'a str,
    ) -> Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send + 'a>> {
        self.0.resolve_host(host)
    }

    fn now(&self) -> Instant {
        self.0.now()
    }

    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        self.0.sleep(duration)
    }

    fn interval(&self, period: Duration) -> Box<dyn AsyncInterval> {
        self.0.interval(period)
    }

    fn block_on(&self, future: Pin<Box<dyn Future<Output = ()> + '_>>) {
        self.0.block_on(future)
    }

    fn yield_now(&self) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        self.0.yield_now()
    }

    fn name(&self) -> &'static str {
        self.0.name()
    }
}

/// A UDP socket that sends campeer's last DTLS flight again when the viewer repeats its
/// own.
struct RepeatingSocket {
    inner: Arc<dyn AsyncUdpSocket>,
    flights: Mutex<FlightRepeat>,
}

impl fmt::Debug for RepeatingSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RepeatingSocket").field(&self.inner).finish()
    }
}

/// The datagrams of a buffer that holds one, or several of `segment` bytes (GSO, GRO).
fn datagrams(contents: &[u8], segment: Option<usize>) -> impl Iterator<Item = &[u8]> {
    contents.chunks(segment.filter(|&n| n > 0).unwrap_or(contents.len().max(1)))
}

impl AsyncUdpSocket for RepeatingSocket {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    fn poll_send(&self, cx: &mut Context<'_>, transmit: &Transmit<'_>) -> Poll<io::Result<usize>> {
        let sent = self.inner.poll_send(cx, transmit);
        // Media never takes the lock: only DTLS is looked at.
        if matches!(sent, Poll::Ready(Ok(_))) && is_dtls(transmit.contents) {
            let mut flights = self.flights.lock().unwrap_or_else(|e| e.into_inner());
            for d in datagrams(transmit.contents, transmit.segment_size) {
                flights.sent(transmit.destination, d);
            }
        }
        sent
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        let received = self.inner.poll_recv(cx, bufs, meta);
        if let Poll::Ready(Ok(n)) = received {
            for (buf, m) in bufs.iter().zip(meta.iter()).take(n) {
                for d in datagrams(&buf[..m.len], Some(m.stride)).filter(|d| is_dtls(d)) {
                    self.repeat_if_asked(cx, m.addr, d);
                }
            }
        }
        received
    }

    fn max_gso_segments(&self) -> usize {
        self.inner.max_gso_segments()
    }

    fn max_gro_segments(&self) -> usize {
        self.inner.max_gro_segments()
    }
}

impl RepeatingSocket {
    /// Sends the kept flight again if `datagram` is the viewer repeating its own; best
    /// effort, as a datagram is (a socket not writable now drops it).
    fn repeat_if_asked(&self, cx: &mut Context<'_>, from: SocketAddr, datagram: &[u8]) {
        let mut flights = self.flights.lock().unwrap_or_else(|e| e.into_inner());
        let Some(flight) = flights.received(from, datagram) else {
            return;
        };
        tracing::debug!(
            viewer = %from,
            datagrams = flight.len(),
            "viewer repeated its DTLS flight; sending ours again"
        );
        for d in flight {
            let transmit = Transmit {
                destination: from,
                ecn: None,
                contents: d,
                segment_size: None,
                src_ip: None,
            };
            let _ = self.inner.poll_send(cx, &transmit);
        }
    }
}
