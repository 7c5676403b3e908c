//! A viewer's goodbye. A viewer that closes its RTCPeerConnection sends a DTLS
//! `close_notify`; rtc 0.21 then marks the DTLS transport closed
//! (rtc-0.21.1/src/peer_connection/handler/dtls.rs:323) but raises no event anyone sees:
//! the connection state stays `connected`, as the spec's rule counts a closed DTLS
//! transport with connected ones (peer_connection/internal.rs:973-977), and the stats'
//! DTLS state is only ever set to connected (handler/dtls.rs:105). So the transport's
//! state is read, or the session would hold its slot until ICE notices the silence.

use std::sync::Arc;
use std::time::Duration;

use rtc::peer_connection::transport::RTCDtlsTransportState;
use webrtc::peer_connection::PeerConnection;
use webrtc::peer_connection::transport::DtlsTransport;

/// How often a connected session reads its DTLS transport's state: a goodbye is acted
/// on within this, against the 4 s ICE takes to call a silent viewer disconnected.
pub(super) const READ_EVERY: Duration = Duration::from_millis(200);

/// The DTLS transport every track of a session runs over (BUNDLE), found once.
#[derive(Default)]
pub(super) struct Goodbye {
    dtls: Option<Arc<dyn DtlsTransport>>,
}

impl Goodbye {
    /// Whether the viewer has closed the DTLS transport.
    pub(super) async fn said(&mut self, pc: &impl PeerConnection) -> bool {
        if self.dtls.is_none() {
            self.dtls = dtls_transport(pc).await;
        }
        match &self.dtls {
            Some(dtls) => matches!(dtls.state().await, Ok(RTCDtlsTransportState::Closed)),
            None => false,
        }
    }
}

async fn dtls_transport(pc: &impl PeerConnection) -> Option<Arc<dyn DtlsTransport>> {
    let sender = pc.get_senders().await.into_iter().next()?;
    sender.transport().await.ok().flatten()
}
