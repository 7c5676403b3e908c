//! What reached a viewer's RTP stack, as it came off the wire: each packet's SSRC, payload
//! type and sequence number, before webrtc-rs unwraps RTX (RFC 4588) back into the media
//! stream (its track sees the repaired packet, not the RTX one). An interceptor nearest
//! the wire records them.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use campeer::session::read_tap::{ReadObserver, ReadTap};
use rtc::interceptor::{Packet, TaggedPacket};
use rtc::rtp::header::Extension;

/// Nearer the wire than every built-in interceptor (the first sits at 1 000).
pub const SLOT: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpSeen {
    pub ssrc: u32,
    pub payload_type: u8,
    pub sequence_number: u16,
    /// The payload's first two bytes, big-endian: an RTX packet's original sequence
    /// number (OSN).
    pub head: Option<u16>,
    pub extensions: Vec<Extension>,
}

impl RtpSeen {
    /// The two-byte value of header extension `id` (e.g. a transport-wide sequence number).
    pub fn extension_u16(&self, id: u8) -> Option<u16> {
        let e = self.extensions.iter().find(|e| e.id == id)?;
        Some(u16::from_be_bytes(e.payload.get(..2)?.try_into().ok()?))
    }
}

/// The packets recorded so far, shared with the recorder.
#[derive(Clone, Default)]
pub struct RtpLog(Arc<Mutex<Vec<RtpSeen>>>);

impl RtpLog {
    pub fn packets(&self) -> Vec<RtpSeen> {
        self.since(0)
    }

    /// How many packets are recorded so far.
    pub fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    /// The packets recorded after the first `from`.
    pub fn since(&self, from: usize) -> Vec<RtpSeen> {
        self.0
            .lock()
            .unwrap()
            .get(from..)
            .unwrap_or_default()
            .to_vec()
    }

    /// The RTX flow `rtx` checked against the media flow it repairs: how many RTX
    /// packets came, how many of them brought a packet the media flow had lost (its OSN
    /// never arrived there), and how many carried a transport-wide sequence number
    /// (header extension `twcc_id`) of their own.
    pub fn repairs(&self, media_ssrc: u32, rtx: RtxFlow, twcc_id: u8) -> Repairs {
        let packets = self.packets();
        let media: Vec<&RtpSeen> = packets.iter().filter(|p| p.ssrc == media_ssrc).collect();
        let media_seqs: HashSet<u16> = media.iter().map(|p| p.sequence_number).collect();
        let media_twcc: HashSet<u16> = media
            .iter()
            .filter_map(|p| p.extension_u16(twcc_id))
            .collect();
        let on_rtx_ssrc = || packets.iter().filter(|p| p.ssrc == rtx.ssrc);
        let rtx_packets: Vec<&RtpSeen> = on_rtx_ssrc()
            .filter(|p| p.payload_type == rtx.payload_type)
            .collect();
        let filled: HashSet<u16> = rtx_packets
            .iter()
            .filter_map(|p| p.head)
            .filter(|osn| !media_seqs.contains(osn))
            .collect();
        Repairs {
            media: media_seqs.len(),
            rtx: rtx_packets.len(),
            filled: filled.len(),
            numbered: rtx_packets
                .iter()
                .filter_map(|p| p.extension_u16(twcc_id))
                .filter(|seq| !media_twcc.contains(seq))
                .count(),
            other: on_rtx_ssrc().count() - rtx_packets.len(),
        }
    }

    /// Packets on SSRCs other than `known`.
    pub fn on_other_ssrcs(&self, known: &[u32]) -> usize {
        self.packets()
            .iter()
            .filter(|p| !known.contains(&p.ssrc))
            .count()
    }
}

/// An RTX flow as an answer declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtxFlow {
    pub ssrc: u32,
    pub payload_type: u8,
}

impl RtxFlow {
    /// The media SSRC and the RTX flow of the answer's video, if it has RTX: the
    /// `a=ssrc-group:FID` and the `rtx` codec whose `apt` is the video's payload type.
    pub fn answered(answer: &str) -> Option<(u32, RtxFlow)> {
        let video = &answer[answer.find("m=video")?..];
        let video = &video[..video[1..].find("\nm=").map_or(video.len(), |e| e + 1)];
        let media_pt = video.lines().next()?.split_whitespace().nth(3)?;
        let (media, rtx) = video.lines().find_map(|l| {
            let mut ssrcs = l.strip_prefix("a=ssrc-group:FID ")?.split_whitespace();
            Some((ssrcs.next()?.parse().ok()?, ssrcs.next()?.parse().ok()?))
        })?;
        let rtx_pt = video.lines().find_map(|l| {
            let (pt, fmtp) = l.strip_prefix("a=fmtp:")?.split_once(' ')?;
            let is_rtx = video.contains(&format!("a=rtpmap:{pt} rtx/90000"));
            (is_rtx && fmtp.split(';').any(|p| p == format!("apt={media_pt}")))
                .then(|| pt.parse().ok())?
        })?;
        Some((
            media,
            Self {
                ssrc: rtx,
                payload_type: rtx_pt,
            },
        ))
    }
}

/// See [`RtpLog::repairs`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repairs {
    /// Distinct sequence numbers that arrived on the media flow.
    pub media: usize,
    /// Packets on the RTX SSRC under the RTX payload type.
    pub rtx: usize,
    /// Distinct media packets the RTX flow brought that the media flow had lost.
    pub filled: usize,
    /// RTX packets with a transport-wide sequence number no media packet had.
    pub numbered: usize,
    /// Packets on the RTX SSRC under another payload type.
    pub other: usize,
}

/// Records RTP on its way in, passes everything on; run in a [`ReadTap`].
pub struct RtpRecorder(pub RtpLog);

impl RtpRecorder {
    /// The interceptor, recording into `log`.
    pub fn interceptor(log: RtpLog) -> ReadTap<Self> {
        ReadTap::new(Self(log))
    }
}

impl ReadObserver for RtpRecorder {
    fn observe(&mut self, msg: &mut TaggedPacket) {
        if let Packet::Rtp(p) = &msg.message.packet {
            let head = p.payload.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]]));
            self.0.0.lock().unwrap().push(RtpSeen {
                ssrc: p.header.ssrc,
                payload_type: p.header.payload_type,
                sequence_number: p.header.sequence_number,
                head,
                extensions: p.header.extensions.clone(),
            });
        }
    }
}
