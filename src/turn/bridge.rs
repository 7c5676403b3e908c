//! One bridge: a loopback UDP socket webrtc-rs takes for a TURN server, and per source
//! address it sees (webrtc-rs makes one allocation per local socket) one TCP or TLS
//! connection to the real server, carrying datagrams both ways in TURN's stream framing.
//! Everything ends with the bridge's token; a connection that fails or carries garbage
//! is logged once, naming the server, and its datagrams are dropped after that, as an
//! unreachable UDP server's would be: ICE goes on with the other candidates.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::StreamServer;
use super::framing::{Deframer, FramingError, to_stream};
use crate::signaling::client::trust;

/// How long a TCP connection and TLS handshake may take: about the ICE handshake's
/// default deadline; a server slower than that is no use to the session.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Datagrams waiting for one connection (the first ones wait for its handshake). A full
/// queue drops, as a congested UDP path would; TURN retransmits its requests.
const FLOW_QUEUE: usize = 256;

/// Where a bridge's connections go.
pub(super) struct Upstream {
    pub(super) server: StreamServer,
    /// For `turns:`: verifies the server's certificate against its host name.
    pub(super) tls: Option<tokio_native_tls::TlsConnector>,
}

#[derive(Debug, thiserror::Error)]
enum FlowError {
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    #[error("no connection within {CONNECT_TIMEOUT:?}")]
    ConnectTimeout,
    #[error("TLS handshake: {0}")]
    Tls(native_tls::Error),
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("the server closed the connection")]
    Closed,
    #[error("the server sent {0}; connection closed")]
    Garbage(FramingError),
}

/// Binds the loopback socket on `loopback` and serves it until `cancel`; returns its
/// address.
pub(super) async fn open(
    upstream: Arc<Upstream>,
    loopback: IpAddr,
    cancel: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let socket = Arc::new(UdpSocket::bind((loopback, 0)).await?);
    let local = socket.local_addr()?;
    debug!(server = %upstream.server, %local, "TURN bridge open");
    tokio::spawn(serve(socket, upstream, cancel));
    Ok(local)
}

/// Hands each datagram to the connection of its source, starting one for a new source.
async fn serve(socket: Arc<UdpSocket>, upstream: Arc<Upstream>, cancel: CancellationToken) {
    let mut flows: HashMap<SocketAddr, mpsc::Sender<Bytes>> = HashMap::new();
    let mut buf = vec![0u8; Deframer::MAX_MESSAGE];
    loop {
        let (n, from) = tokio::select! {
            _ = cancel.cancelled() => return,
            received = socket.recv_from(&mut buf) => match received {
                Ok(r) => r,
                Err(e) => {
                    warn!(server = %upstream.server, "TURN bridge: loopback socket: {e}; bridge closed");
                    return;
                }
            },
        };
        let queue = flows.entry(from).or_insert_with(|| {
            let (tx, rx) = mpsc::channel(FLOW_QUEUE);
            let (socket, upstream, cancel) =
                (Arc::clone(&socket), Arc::clone(&upstream), cancel.clone());
            tokio::spawn(async move {
                tokio::select! {
                    _ = cancel.cancelled() => {}
                    () = flow(&socket, &upstream, from, rx) => {}
                }
            });
            tx
        });
        // Full, or the flow gave up: dropped (see FLOW_QUEUE).
        let _ = queue.try_send(Bytes::copy_from_slice(&buf[..n]));
    }
}

/// One source's connection, until it fails (logged once) or the bridge ends; after a
/// failure the source's datagrams are drained and dropped.
async fn flow(
    socket: &UdpSocket,
    upstream: &Upstream,
    source: SocketAddr,
    mut datagrams: mpsc::Receiver<Bytes>,
) {
    if let Err(e) = carry(socket, upstream, source, &mut datagrams).await {
        let hint = match &e {
            FlowError::Tls(tls) if trust::is_certificate_failure(&tls.to_string()) => {
                " (its certificate is not trusted: the entry's ca_file can name the CA that signed it)"
            }
            _ => "",
        };
        warn!(server = %upstream.server, "TURN over {}: {e}{hint}", transport(upstream));
    }
    while datagrams.recv().await.is_some() {}
}

fn transport(upstream: &Upstream) -> &'static str {
    match upstream.tls {
        Some(_) => "TLS",
        None => "TCP",
    }
}

async fn carry(
    socket: &UdpSocket,
    upstream: &Upstream,
    source: SocketAddr,
    datagrams: &mut mpsc::Receiver<Bytes>,
) -> Result<(), FlowError> {
    let server = &upstream.server;
    let tcp = tokio::time::timeout(
        CONNECT_TIMEOUT,
        TcpStream::connect((server.host.as_str(), server.port)),
    )
    .await
    .map_err(|_| FlowError::ConnectTimeout)?
    .map_err(FlowError::Connect)?;
    // Media rides on this stream: no Nagle delay on small packets.
    tcp.set_nodelay(true)?;
    debug!(%server, %source, "TURN connection up");
    match &upstream.tls {
        None => relay(tcp, socket, source, datagrams).await,
        Some(tls) => {
            let stream = tokio::time::timeout(CONNECT_TIMEOUT, tls.connect(&server.host, tcp))
                .await
                .map_err(|_| FlowError::ConnectTimeout)?
                .map_err(FlowError::Tls)?;
            relay(stream, socket, source, datagrams).await
        }
    }
}

/// Datagrams to the stream and the stream's messages back to `source`, until either
/// side ends.
async fn relay(
    stream: impl AsyncRead + AsyncWrite,
    socket: &UdpSocket,
    source: SocketAddr,
    datagrams: &mut mpsc::Receiver<Bytes>,
) -> Result<(), FlowError> {
    let (mut reader, mut writer) = tokio::io::split(stream);
    let up = async {
        // One write per datagram (one TLS record), padding included.
        let mut out = BytesMut::new();
        while let Some(datagram) = datagrams.recv().await {
            match to_stream(&datagram) {
                Ok((message, padding)) => {
                    out.clear();
                    out.extend_from_slice(message);
                    out.extend_from_slice(padding);
                    writer.write_all(&out).await?;
                }
                // Not TURN: nothing the server could use.
                Err(e) => debug!("TURN bridge: a local datagram dropped: {e}"),
            }
        }
        Ok(())
    };
    let down = async {
        let mut deframer = Deframer::default();
        loop {
            if reader.read_buf(deframer.buffer()).await? == 0 {
                return Err(FlowError::Closed);
            }
            while let Some(message) = deframer.next_message().map_err(FlowError::Garbage)? {
                socket.send_to(&message, source).await?;
            }
        }
    };
    tokio::select! {
        r = up => r,
        r = down => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    /// A bridge to a plain TCP listener on loopback: the "server" side of the test.
    async fn bridge_to_listener() -> (UdpSocket, SocketAddr, TcpListener, CancellationToken) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream = Arc::new(Upstream {
            server: StreamServer {
                host: "127.0.0.1".into(),
                port: listener.local_addr().unwrap().port(),
                tls: false,
            },
            tls: None,
        });
        let cancel = CancellationToken::new();
        let bridge = open(upstream, "127.0.0.1".parse().unwrap(), cancel.clone())
            .await
            .unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        (client, bridge, listener, cancel)
    }

    fn channel_data(payload: &[u8]) -> Vec<u8> {
        let mut m = vec![0x40, 0x00];
        m.extend((payload.len() as u16).to_be_bytes());
        m.extend(payload);
        m
    }

    #[tokio::test]
    async fn datagrams_cross_the_stream_padded_and_come_back_unpadded() {
        let (client, bridge, listener, cancel) = bridge_to_listener().await;
        client.send_to(&channel_data(b"abc"), bridge).await.unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        let mut got = [0u8; 8];
        server.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"\x40\x00\x00\x03abc\x00");

        server
            .write_all(b"\x40\x00\x00\x01z\x00\x00\x00\x40\x00\x00\x02")
            .await
            .unwrap();
        server.write_all(b"yy\x00\x00").await.unwrap();
        let mut buf = [0u8; 64];
        let (n, from) = client.recv_from(&mut buf).await.unwrap();
        assert_eq!((&buf[..n], from), (&b"\x40\x00\x00\x01z"[..], bridge));
        let (n, _) = client.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"\x40\x00\x00\x02yy");

        cancel.cancel();
        // The bridge's end of the connection closes with it.
        let mut rest = Vec::new();
        assert_eq!(server.read_to_end(&mut rest).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn garbage_from_the_server_closes_its_connection() {
        let (client, bridge, listener, _cancel) = bridge_to_listener().await;
        client
            .send_to(&channel_data(b"abcd"), bridge)
            .await
            .unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        // A TLS alert: what a server expecting TLS may say to plain TCP.
        server
            .write_all(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28])
            .await
            .unwrap();
        let mut rest = Vec::new();
        let _ = server.read_to_end(&mut rest).await;
        assert_eq!(
            rest,
            channel_data(b"abcd"),
            "only the datagram, then the close"
        );
    }

    #[tokio::test]
    async fn each_source_gets_its_own_connection() {
        let (client, bridge, listener, _cancel) = bridge_to_listener().await;
        let other = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        client
            .send_to(&channel_data(b"one!"), bridge)
            .await
            .unwrap();
        let (mut first, _) = listener.accept().await.unwrap();
        other.send_to(&channel_data(b"two!"), bridge).await.unwrap();
        let (mut second, _) = listener.accept().await.unwrap();
        let mut got = [0u8; 8];
        first.read_exact(&mut got).await.unwrap();
        assert_eq!(&got[4..], b"one!");
        second.read_exact(&mut got).await.unwrap();
        assert_eq!(&got[4..], b"two!");
    }
}
