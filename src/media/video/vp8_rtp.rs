//! VP8's RTP payload descriptor (RFC 7741 §4.2) with the temporal-layer fields: rtc's
//! `Vp8Payloader` writes only the picture id, and a receiver needs TID, Y and TL0PICIDX
//! to know which frames it may go without.
//!
//! Every packet carries the same six-byte descriptor (X, I with a 15-bit picture id, L,
//! T), so each session can restamp the picture id and TL0PICIDX in place, at fixed
//! offsets, for the frames it forwards.

use bytes::{BufMut, Bytes, BytesMut};

/// The descriptor's length in every packet written here.
pub const DESCRIPTOR_LEN: usize = 6;
const PICTURE_ID_AT: usize = 2;
const TL0_PIC_IDX_AT: usize = 4;

/// X: the extension byte follows.
const X: u8 = 0x80;
/// S: the packet starts the frame (partition 0).
const S: u8 = 0x10;
/// I, L, T: picture id, TL0PICIDX and TID/Y present.
const ILT: u8 = 0x80 | 0x40 | 0x20;
/// M: the picture id is 15 bits.
const M: u8 = 0x80;

/// What the descriptor says of one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Descriptor {
    /// 15 bits: one more for each frame the receiver gets.
    pub picture_id: u16,
    /// One more for each base-layer frame the receiver gets.
    pub tl0_pic_idx: u8,
    pub temporal_id: u8,
    pub layer_sync: bool,
}

impl Descriptor {
    fn write(&self, start: bool, out: &mut BytesMut) {
        let id = self.picture_id & 0x7fff;
        out.put_u8(X | if start { S } else { 0 });
        out.put_u8(ILT);
        out.put_u8(M | (id >> 8) as u8);
        out.put_u8(id as u8);
        out.put_u8(self.tl0_pic_idx);
        out.put_u8((self.temporal_id & 0x3) << 6 | u8::from(self.layer_sync) << 5);
    }
}

/// Splits one encoded frame into payloads of at most `mtu` bytes, each with the
/// descriptor; none when the frame is empty or `mtu` leaves no room for data.
pub fn packetize(frame: &[u8], d: &Descriptor, mtu: usize) -> Vec<Bytes> {
    let Some(room) = mtu.checked_sub(DESCRIPTOR_LEN).filter(|&r| r > 0) else {
        return Vec::new();
    };
    frame
        .chunks(room)
        .enumerate()
        .map(|(i, chunk)| {
            let mut out = BytesMut::with_capacity(DESCRIPTOR_LEN + chunk.len());
            d.write(i == 0, &mut out);
            out.put_slice(chunk);
            out.freeze()
        })
        .collect()
}

/// The frame back from payloads written by [`packetize`] (for tests and benches).
pub fn unpacketize(payloads: &[Bytes]) -> Vec<u8> {
    payloads
        .iter()
        .flat_map(|p| p.get(DESCRIPTOR_LEN..).unwrap_or_default())
        .copied()
        .collect()
}

/// A copy of `payload` (one written by [`packetize`]) under a session's own picture id
/// and TL0PICIDX; `None` if it does not carry that descriptor.
pub fn restamp(payload: &[u8], picture_id: u16, tl0_pic_idx: u8) -> Option<Bytes> {
    if payload.len() <= DESCRIPTOR_LEN || payload[0] & X == 0 || payload[1] != ILT {
        return None;
    }
    let mut out = BytesMut::from(payload);
    let id = picture_id & 0x7fff;
    out[PICTURE_ID_AT] = M | (id >> 8) as u8;
    out[PICTURE_ID_AT + 1] = id as u8;
    out[TL0_PIC_IDX_AT] = tl0_pic_idx;
    Some(out.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::rtp::codec::vp8::Vp8Packet;
    use rtc::rtp::packetizer::Depacketizer;

    fn parse(payload: &Bytes) -> (Vp8Packet, Bytes) {
        let mut p = Vp8Packet::default();
        let data = p.depacketize(payload).expect("rtc parses the descriptor");
        (p, data)
    }

    const D: Descriptor = Descriptor {
        picture_id: 0x1234,
        tl0_pic_idx: 200,
        temporal_id: 1,
        layer_sync: true,
    };

    #[test]
    fn rtc_reads_every_field_back_and_the_frame_whole() {
        let frame: Vec<u8> = (0..3000u32).map(|n| n as u8).collect();
        let payloads = packetize(&frame, &D, 1200);
        assert_eq!(payloads.len(), 3);
        let mut joined = Vec::new();
        for (i, payload) in payloads.iter().enumerate() {
            assert!(payload.len() <= 1200);
            let (p, data) = parse(payload);
            assert_eq!((p.x, p.i, p.l, p.t, p.k), (1, 1, 1, 1, 0));
            assert_eq!(p.s, u8::from(i == 0), "S on the first packet only");
            assert_eq!(p.pid, 0);
            assert_eq!((p.picture_id, p.tl0_pic_idx), (0x1234, 200));
            assert_eq!((p.tid, p.y), (1, 1));
            joined.extend_from_slice(&data);
        }
        assert_eq!(joined, frame);
        assert_eq!(unpacketize(&payloads), frame);
    }

    #[test]
    fn a_base_layer_frame_says_tid_zero_without_sync() {
        let d = Descriptor {
            temporal_id: 0,
            layer_sync: false,
            ..D
        };
        let (p, _) = parse(&packetize(&[7; 10], &d, 1200)[0]);
        assert_eq!((p.tid, p.y), (0, 0));
    }

    #[test]
    fn the_picture_id_keeps_to_15_bits() {
        let d = Descriptor {
            picture_id: 0xffff,
            ..D
        };
        let (p, _) = parse(&packetize(&[7; 10], &d, 1200)[0]);
        assert_eq!(p.picture_id, 0x7fff);
    }

    #[test]
    fn restamping_changes_the_ids_and_nothing_else() {
        let payload = packetize(&[9; 50], &D, 1200).remove(0);
        let restamped = restamp(&payload, 5, 7).expect("our descriptor");
        let (p, data) = parse(&restamped);
        assert_eq!((p.picture_id, p.tl0_pic_idx), (5, 7));
        assert_eq!((p.tid, p.y, p.s), (1, 1, 1));
        assert_eq!(data, parse(&payload).1);
        assert_eq!(payload.len(), restamped.len());
    }

    #[test]
    fn a_payload_without_this_descriptor_is_not_restamped() {
        assert_eq!(restamp(&[0x10, 1, 2, 3, 4, 5, 6, 7], 1, 1), None);
        assert_eq!(restamp(&[0x90, 0x80, 1, 2, 3, 4, 5], 1, 1), None);
        assert_eq!(restamp(&[], 1, 1), None);
    }

    #[test]
    fn nothing_comes_of_an_empty_frame_or_a_tiny_mtu() {
        assert!(packetize(&[], &D, 1200).is_empty());
        assert!(packetize(&[1, 2, 3], &D, DESCRIPTOR_LEN).is_empty());
    }
}
