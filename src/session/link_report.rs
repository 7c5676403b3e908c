//! What webrtc-rs knows about one viewer's link, read into a [`LinkReport`]: the remote
//! end of the selected candidate pair (from ICE, which knows peer-reflexive candidates
//! the stats do not list), its STUN round trip, and the video loss the viewer's RTCP
//! receiver reports (`get_stats`' remote-inbound-rtp; rtc 0.21 leaves its RTT at 0, so
//! the RTT is ICE's).

use std::time::{Duration, Instant};

use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use webrtc::peer_connection::{PeerConnection, RTCStatsReportEntry, StatsSelector};

use super::stats::LinkReport;

/// Reads the link's figures now; what is not known yet stays `None`.
pub(super) async fn read(pc: &impl PeerConnection) -> LinkReport {
    let mut report = LinkReport {
        remote: remote_end(pc).await,
        ..LinkReport::default()
    };
    let stats = pc.get_stats(Instant::now(), StatsSelector::None).await;
    let selected = stats.iter().find_map(|e| match e {
        RTCStatsReportEntry::Transport(t) if !t.selected_candidate_pair_id.is_empty() => {
            Some(t.selected_candidate_pair_id.as_str())
        }
        _ => None,
    });
    for entry in stats.iter() {
        match entry {
            RTCStatsReportEntry::IceCandidatePair(p) if Some(p.stats.id.as_str()) == selected => {
                report.rtt = seconds(p.current_round_trip_time);
            }
            RTCStatsReportEntry::RemoteInboundRtp(r)
                if r.received_rtp_stream_stats.rtp_stream_stats.kind == RtpCodecKind::Video
                    && r.round_trip_time_measurements > 0 =>
            {
                report.packets_lost = Some(
                    r.received_rtp_stream_stats
                        .packets_lost
                        .max(0)
                        .unsigned_abs(),
                );
                report.fraction_lost = Some(r.fraction_lost.clamp(0.0, 1.0));
            }
            _ => {}
        }
    }
    report
}

/// The selected pair's remote address and port, as ICE has it (an mDNS name stays a
/// name).
async fn remote_end(pc: &impl PeerConnection) -> Option<String> {
    let sender = pc.get_senders().await.into_iter().next()?;
    let dtls = sender.transport().await.ok()??;
    let pair = dtls
        .ice_transport()
        .get_selected_candidate_pair()
        .await
        .ok()??;
    let remote = pair.remote();
    Some(match remote.address.parse::<std::net::IpAddr>() {
        Ok(ip) => std::net::SocketAddr::new(ip, remote.port).to_string(),
        Err(_) => format!("{}:{}", remote.address, remote.port),
    })
}

/// A stats figure in seconds, where 0 means "not measured yet".
fn seconds(s: f64) -> Option<Duration> {
    (s.is_finite() && s > 0.0).then(|| Duration::from_secs_f64(s))
}
