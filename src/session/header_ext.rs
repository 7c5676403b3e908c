//! The RTP header extensions campeer sends for latency. `playout-delay` 0/0 asks the
//! viewer to render each video frame as soon as it is decoded, with no smoothing buffer
//! (Chromium honours it). `abs-capture-time` carries each frame's wall-clock capture time,
//! which Chromium reports as `getSynchronizationSources()[i].captureTimestamp`, so the
//! viewer can tell its glass-to-glass delay. Both go on the first packet of each frame,
//! as libwebrtc sends them; one-byte headers (RFC 8285), so ids 1 to 14 only.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use rtc::rtp::header::Header;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpHeaderExtensionCapability, RTCRtpHeaderExtensionParameters, RtpCodecKind,
};
use tracing::debug;
use webrtc::peer_connection::MediaEngine;

pub const PLAYOUT_DELAY_URI: &str = "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay";
pub const ABS_CAPTURE_TIME_URI: &str =
    "http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time";

/// min 0, max 0 (12 bits each, in 10 ms units): render at once.
const PLAYOUT_AT_ONCE: [u8; 3] = [0; 3];

/// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
const NTP_UNIX_OFFSET_SECS: u64 = 2_208_988_800;

/// Offers the extensions to the engine: playout-delay for video, abs-capture-time for
/// both kinds. Only what the viewer's offer names is answered.
pub(super) fn register(engine: &mut MediaEngine) -> Result<(), webrtc::error::Error> {
    let ext = |uri: &str| RTCRtpHeaderExtensionCapability {
        uri: uri.to_owned(),
    };
    engine.register_header_extension(ext(PLAYOUT_DELAY_URI), RtpCodecKind::Video, None)?;
    for kind in [RtpCodecKind::Video, RtpCodecKind::Audio] {
        engine.register_header_extension(ext(ABS_CAPTURE_TIME_URI), kind, None)?;
    }
    Ok(())
}

/// The ids one track's negotiation settled on; `None` for an extension the viewer did
/// not take.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct HeaderExtIds {
    playout_delay: Option<u8>,
    abs_capture_time: Option<u8>,
}

impl HeaderExtIds {
    /// From a sender's negotiated parameters. An id a one-byte header cannot carry is
    /// left out (campeer never writes two-byte headers).
    pub(super) fn negotiated(params: &[RTCRtpHeaderExtensionParameters]) -> Self {
        let id_of = |uri: &str| {
            let p = params.iter().find(|p| p.uri == uri)?;
            match u8::try_from(p.id) {
                Ok(id @ 1..=14) => Some(id),
                _ => {
                    debug!(
                        id = p.id,
                        uri, "header extension id out of one-byte range; not sent"
                    );
                    None
                }
            }
        };
        Self {
            playout_delay: id_of(PLAYOUT_DELAY_URI),
            abs_capture_time: id_of(ABS_CAPTURE_TIME_URI),
        }
    }

    /// Adds the extensions to the header of a frame's first packet, the frame taken at
    /// `captured` on the wall clock.
    pub(super) fn stamp_first_packet(&self, header: &mut Header, captured: SystemTime) {
        let values = [
            (self.playout_delay, Bytes::from_static(&PLAYOUT_AT_ONCE)),
            (
                self.abs_capture_time,
                Bytes::copy_from_slice(&ntp_time(captured).to_be_bytes()),
            ),
        ];
        for (id, value) in values {
            if let Some(id) = id
                && let Err(e) = header.set_extension(id, value)
            {
                debug!("header extension {id} not set: {e}");
            }
        }
    }
}

/// `at` as a 64-bit NTP timestamp: seconds since 1900 in the high 32 bits, the fraction
/// of a second in the low 32 (UQ32.32, as abs-capture-time carries it).
fn ntp_time(at: SystemTime) -> u64 {
    let since_unix = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    let secs = since_unix.as_secs() + NTP_UNIX_OFFSET_SECS;
    let fraction = (u64::from(since_unix.subsec_nanos()) << 32) / 1_000_000_000;
    (secs << 32) | fraction
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::rtp::extension::playout_delay_extension::PlayoutDelayExtension;
    use rtc::shared::marshal::{Marshal, Unmarshal};

    fn negotiated(pairs: &[(u16, &str)]) -> HeaderExtIds {
        let params: Vec<_> = pairs
            .iter()
            .map(|&(id, uri)| RTCRtpHeaderExtensionParameters {
                uri: uri.to_owned(),
                id,
                encrypted: false,
            })
            .collect();
        HeaderExtIds::negotiated(&params)
    }

    #[test]
    fn ntp_time_counts_from_1900_with_a_32_bit_fraction() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_250);
        let ntp = ntp_time(at);
        assert_eq!(ntp >> 32, 1_700_000_000 + NTP_UNIX_OFFSET_SECS);
        assert_eq!(ntp & 0xffff_ffff, 1 << 30, "a quarter second");
    }

    #[test]
    fn ids_are_read_by_uri_and_kept_to_the_one_byte_range() {
        let ids = negotiated(&[
            (3, "urn:ietf:params:rtp-hdrext:sdes:mid"),
            (5, PLAYOUT_DELAY_URI),
            (15, ABS_CAPTURE_TIME_URI),
        ]);
        assert_eq!(ids.playout_delay, Some(5));
        assert_eq!(ids.abs_capture_time, None, "15 needs a two-byte header");
        assert_eq!(negotiated(&[]), HeaderExtIds::default());
    }

    #[test]
    fn first_packet_carries_both_extensions_through_the_wire_format() {
        let ids = negotiated(&[(5, PLAYOUT_DELAY_URI), (13, ABS_CAPTURE_TIME_URI)]);
        let captured = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let mut header = Header {
            version: 2,
            payload_type: 96,
            ..Default::default()
        };
        ids.stamp_first_packet(&mut header, captured);
        let wire = rtc::rtp::Packet {
            header,
            payload: Bytes::from_static(b"vp8"),
        }
        .marshal()
        .expect("the packet marshals");
        let back = rtc::rtp::Packet::unmarshal(&mut &wire[..]).expect("and parses back");
        assert_eq!(back.header.extension_profile, 0xBEDE, "one-byte headers");
        let delay = PlayoutDelayExtension::unmarshal(
            &mut back
                .header
                .get_extension(5)
                .expect("playout-delay")
                .as_ref(),
        )
        .unwrap();
        assert_eq!((delay.min_delay, delay.max_delay), (0, 0));
        let abs = back.header.get_extension(13).expect("abs-capture-time");
        assert_eq!(abs.len(), 8, "the short form: no clock offset");
        let secs = u64::from_be_bytes(abs[..].try_into().unwrap()) >> 32;
        assert_eq!(secs, 1_800_000_000 + NTP_UNIX_OFFSET_SECS);
        assert_eq!(&back.payload[..], b"vp8");
    }

    #[test]
    fn nothing_is_added_for_extensions_the_viewer_did_not_take() {
        let mut header = Header::default();
        HeaderExtIds::default().stamp_first_packet(&mut header, SystemTime::now());
        assert!(!header.extension && header.extensions.is_empty());
        // Audio: abs-capture-time only.
        let mut header = Header::default();
        negotiated(&[(2, ABS_CAPTURE_TIME_URI)]).stamp_first_packet(&mut header, SystemTime::now());
        assert_eq!(header.extensions.len(), 1);
        assert!(header.get_extension(2).is_some());
    }
}
