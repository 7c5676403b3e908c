//! Retransmission as RFC 4588 RTX where the viewer's offer has it: campeer answers its
//! `video/rtx` codec, webrtc-rs gives the video track an RTX SSRC (the answer's
//! `a=ssrc-group:FID`), and its NACK responder resends each NACKed packet on that SSRC,
//! the original sequence number (OSN) ahead of the payload, under RTX sequence numbers
//! of its own. A viewer whose offer has no `rtx` keeps the plain resends on the media SSRC.
//!
//! The interceptors nearest the wire know only the SSRCs bound to them, and webrtc-rs
//! binds the media SSRC alone (with its RTX SSRC as an attribute): [`RtxBound`] binds the
//! RTX SSRC too, so that resends carry a transport-wide sequence number and the
//! congestion controller's send history records them.

use std::time::Instant;

use rtc::interceptor::{Interceptor, StreamInfo, TaggedPacket};
use rtc::peer_connection::configuration::media_engine::MIME_TYPE_RTX;
use rtc::rtp_transceiver::PayloadType;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodec, RTCRtpCodecParameters, RtpCodecKind};
use rtc::sansio::Protocol;
use rtc::shared::error::Error;
use webrtc::peer_connection::MediaEngine;

/// What browsers and webrtc-rs offer for the RTX of VP8 at 96.
pub(super) const RTX_PAYLOAD_TYPE: PayloadType = 97;

/// Offers RTX for the video codec at `apt`. Registered after the feedback mechanisms
/// (NACK, TWCC), which the engine adds to every codec registered before them: RTX
/// carries none of its own, as browsers offer it.
pub(super) fn register(engine: &mut MediaEngine, apt: PayloadType) -> Result<(), Error> {
    engine.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: RTCRtpCodec {
                mime_type: MIME_TYPE_RTX.to_owned(),
                clock_rate: 90_000,
                channels: 0,
                sdp_fmtp_line: format!("apt={apt}"),
                rtcp_feedback: Vec::new(),
            },
            payload_type: RTX_PAYLOAD_TYPE,
        },
        RtpCodecKind::Video,
    )
}

/// The stream an RTX SSRC is, for an interceptor that keys on SSRC: the media stream's
/// codec and header extensions under the RTX SSRC and payload type. None when the
/// negotiation agreed no RTX (webrtc-rs then leaves out its payload type).
fn rtx_stream(media: &StreamInfo) -> Option<StreamInfo> {
    let (ssrc, payload_type) = (media.ssrc_rtx?, media.payload_type_rtx?);
    Some(StreamInfo {
        ssrc,
        payload_type,
        ssrc_rtx: None,
        payload_type_rtx: None,
        ssrc_fec: None,
        payload_type_fec: None,
        ..media.clone()
    })
}

/// `I`, with each local stream's RTX SSRC bound as a stream of its own.
pub(super) struct RtxBound<I>(pub(super) I);

impl<I: Interceptor> Protocol<TaggedPacket, TaggedPacket, ()> for RtxBound<I> {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), Error> {
        self.0.handle_read(msg)
    }

    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.0.poll_read()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Error> {
        self.0.handle_write(msg)
    }

    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.0.poll_write()
    }

    fn handle_event(&mut self, evt: ()) -> Result<(), Error> {
        self.0.handle_event(evt)
    }

    fn poll_event(&mut self) -> Option<()> {
        self.0.poll_event()
    }

    fn handle_timeout(&mut self, now: Instant) -> Result<(), Error> {
        self.0.handle_timeout(now)
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        self.0.poll_timeout()
    }

    fn close(&mut self) -> Result<(), Error> {
        self.0.close()
    }
}

impl<I: Interceptor> Interceptor for RtxBound<I> {
    fn bind_local_stream(&mut self, info: &StreamInfo) {
        self.0.bind_local_stream(info);
        if let Some(rtx) = rtx_stream(info) {
            self.0.bind_local_stream(&rtx);
        }
    }

    fn unbind_local_stream(&mut self, info: &StreamInfo) {
        if let Some(rtx) = rtx_stream(info) {
            self.0.unbind_local_stream(&rtx);
        }
        self.0.unbind_local_stream(info);
    }

    fn bind_remote_stream(&mut self, info: &StreamInfo) {
        self.0.bind_remote_stream(info);
    }

    fn unbind_remote_stream(&mut self, info: &StreamInfo) {
        self.0.unbind_remote_stream(info);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::read_tap::ReadTap;
    use crate::session::resend_gate::{self, ResendGate};
    use rtc::interceptor::{
        AttributedPacket, NackResponderBuilder, Packet, RTCPFeedback, RTPHeaderExtension, Registry,
        Slot, TwccSenderBuilder,
    };
    use rtc::rtcp::transport_feedbacks::transport_layer_nack::{
        TransportLayerNack, nack_pairs_from_sequence_numbers,
    };
    use rtc::sdp::extmap::TRANSPORT_CC_URI;
    use rtc::shared::TransportContext;

    const MEDIA: u32 = 1111;
    const RTX: u32 = 2222;
    const TWCC_ID: u8 = 5;

    /// The sending side of campeer's chain that RTX passes through: TWCC numbering
    /// nearest the wire, the resend gate, the NACK responder.
    fn chain(media: StreamInfo) -> impl Interceptor {
        let mut chain = Registry::new()
            .with(Slot::TwccSender, RtxBound(TwccSenderBuilder::new().build()))
            .with(
                Slot::from(resend_gate::SLOT),
                ReadTap::new(ResendGate::default()),
            )
            .with(Slot::NackResponder, NackResponderBuilder::new().build())
            .build();
        chain.bind_local_stream(&media);
        chain
    }

    /// VP8 as webrtc-rs binds it, with RTX agreed at `payload_type_rtx` (if any).
    fn video(payload_type_rtx: Option<PayloadType>) -> StreamInfo {
        StreamInfo {
            ssrc: MEDIA,
            ssrc_rtx: Some(RTX),
            payload_type: 96,
            payload_type_rtx,
            rtp_header_extensions: vec![RTPHeaderExtension {
                uri: TRANSPORT_CC_URI.to_owned(),
                id: u16::from(TWCC_ID),
            }],
            rtcp_feedback: vec![RTCPFeedback {
                typ: "nack".to_owned(),
                parameter: String::new(),
            }],
            ..Default::default()
        }
    }

    fn tagged(packet: Packet) -> TaggedPacket {
        TaggedPacket {
            now: Instant::now(),
            transport: TransportContext::default(),
            message: AttributedPacket::new(packet),
        }
    }

    fn rtp(seq: u16) -> TaggedPacket {
        tagged(Packet::Rtp(rtc::rtp::Packet {
            header: rtc::rtp::header::Header {
                version: 2,
                payload_type: 96,
                sequence_number: seq,
                ssrc: MEDIA,
                ..Default::default()
            },
            payload: vec![0xAB; 100].into(),
        }))
    }

    fn nack(seq: u16) -> TaggedPacket {
        tagged(Packet::Rtcp(vec![Box::new(TransportLayerNack {
            sender_ssrc: 9,
            media_ssrc: MEDIA,
            nacks: nack_pairs_from_sequence_numbers(&[seq]),
        })]))
    }

    /// What the chain sends after the viewer NACKs `seq` of the packets it sent.
    fn resent_after_nack(chain: &mut impl Interceptor, seq: u16) -> Vec<rtc::rtp::Packet> {
        chain.handle_read(nack(seq)).unwrap();
        while chain.poll_read().is_some() {}
        std::iter::from_fn(|| chain.poll_write())
            .filter_map(|m| match m.message.packet {
                Packet::Rtp(p) => Some(p),
                _ => None,
            })
            .collect()
    }

    fn twcc_number(p: &rtc::rtp::Packet) -> Option<u16> {
        let ext = p.header.get_extension(TWCC_ID)?;
        Some(u16::from_be_bytes(ext.get(..2)?.try_into().ok()?))
    }

    fn send(chain: &mut impl Interceptor, seqs: std::ops::Range<u16>) -> Vec<u16> {
        seqs.map(|seq| {
            chain.handle_write(rtp(seq)).unwrap();
            let Packet::Rtp(sent) = chain.poll_write().expect("sent").message.packet else {
                panic!("RTP in, RTP out");
            };
            twcc_number(&sent).expect("media numbered")
        })
        .collect()
    }

    #[test]
    fn a_nacked_packet_leaves_as_rtx_with_a_transport_wide_number_of_its_own() {
        let mut chain = chain(video(Some(RTX_PAYLOAD_TYPE)));
        let numbers = send(&mut chain, 40..43);
        let resent = resent_after_nack(&mut chain, 41);
        let [rtx] = resent.as_slice() else {
            panic!("one resend: {resent:?}");
        };
        assert_eq!(rtx.header.ssrc, RTX);
        assert_eq!(rtx.header.payload_type, RTX_PAYLOAD_TYPE);
        assert_eq!(rtx.payload[..2], 41u16.to_be_bytes(), "the OSN first");
        assert_eq!(rtx.payload[2..], [0xAB; 100]);
        let number = twcc_number(rtx).expect("RTX numbered");
        assert!(
            !numbers.contains(&number),
            "{number} reused from {numbers:?}"
        );
    }

    #[test]
    fn without_rtx_agreed_a_nacked_packet_leaves_as_itself() {
        let mut chain = chain(video(None));
        send(&mut chain, 40..43);
        let resent = resent_after_nack(&mut chain, 41);
        let [again] = resent.as_slice() else {
            panic!("one resend: {resent:?}");
        };
        assert_eq!(
            (again.header.ssrc, again.header.sequence_number),
            (MEDIA, 41)
        );
        assert!(twcc_number(again).is_some());
    }

    #[test]
    fn a_packet_nacked_again_at_once_is_not_resent_again() {
        let mut chain = chain(video(Some(RTX_PAYLOAD_TYPE)));
        send(&mut chain, 40..43);
        assert_eq!(resent_after_nack(&mut chain, 41).len(), 1);
        assert_eq!(resent_after_nack(&mut chain, 41).len(), 0);
    }
}
