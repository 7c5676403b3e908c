//! The part of a browser's jitter buffer a test viewer needs: VP8 frames reach the decoder
//! whole and in order, a packet a NACK may still bring is waited for, and a frame lost for
//! good means waiting for a keyframe. Decoding a frame with a hole, or against the wrong
//! reference, paints stale pixels (an old frame counter) that campeer never sent.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;

/// How long a missing packet is waited for before its frame is given up.
const PATIENCE: Duration = Duration::from_millis(500);

pub struct Assembled {
    pub rtp_time: u32,
    pub data: Vec<u8>,
    pub keyframe: bool,
}

struct Packet {
    rtp_time: u32,
    marker: bool,
    /// First packet of a frame (VP8 descriptor S bit).
    head: bool,
    data: Bytes,
    arrived: Instant,
}

#[derive(Default)]
pub struct FrameAssembler {
    /// Held packets by unwrapped sequence number.
    packets: BTreeMap<u64, Packet>,
    highest: Option<u64>,
    /// Packets up to here were decoded or given up: a late copy of one (a retransmission)
    /// is ignored, so an old frame never decodes after a newer one.
    done: Option<u64>,
    /// The frame right after `done` is the next to decode; false waits for a keyframe.
    in_order: bool,
    /// A frame was given up since the caller last asked.
    lost: bool,
}

impl FrameAssembler {
    pub fn push(&mut self, seq: u16, rtp_time: u32, marker: bool, payload: &Bytes, now: Instant) {
        let seq = self.unwrap(seq);
        if self.done.is_some_and(|d| seq <= d) {
            return;
        }
        if let Some((head, data)) = vp8_payload(payload) {
            self.packets.entry(seq).or_insert(Packet {
                rtp_time,
                marker,
                head,
                data,
                arrived: now,
            });
        }
    }

    /// The next whole frame in order, if it has arrived.
    pub fn pop(&mut self) -> Option<Assembled> {
        let start = match self.done {
            Some(done) if self.in_order => done + 1,
            _ => {
                let key = self
                    .packets
                    .iter()
                    .find(|(_, p)| p.head && p.data.first().is_some_and(|b| b & 1 == 0))
                    .map(|(&s, _)| s)?;
                self.packets = self.packets.split_off(&key);
                self.done = Some(key - 1);
                key
            }
        };
        let rtp_time = self.packets.get(&start)?.rtp_time;
        let mut end = start;
        loop {
            let p = self.packets.get(&end)?;
            if p.rtp_time != rtp_time {
                // A frame without its marker packet: the stream is broken here.
                self.resync();
                return None;
            }
            if p.marker {
                break;
            }
            end += 1;
        }
        let mut data = Vec::new();
        for s in start..=end {
            data.extend_from_slice(&self.packets.remove(&s).expect("held").data);
        }
        self.done = Some(end);
        self.in_order = true;
        Some(Assembled {
            rtp_time,
            keyframe: data.first().is_some_and(|b| b & 1 == 0),
            data,
        })
    }

    /// True once per lost frame: a packet that the frame being assembled needs (the next
    /// one, or the keyframe waited for) has been missing too long. The packets that waited
    /// that long are dropped, and the caller asks for a keyframe (PLI), as a browser does;
    /// newer ones stay, as they may hold that keyframe. Called after `pop` has drained what
    /// was whole, so any packet still held belongs to a frame that is not.
    pub fn gave_up(&mut self, now: Instant) -> bool {
        let stale = |p: &Packet| now.duration_since(p.arrived) > PATIENCE;
        if self.packets.values().next().is_some_and(stale) {
            let keep = self
                .packets
                .iter()
                .find(|(_, p)| !stale(p))
                .map_or(self.highest.unwrap_or(0) + 1, |(&s, _)| s);
            self.packets = self.packets.split_off(&keep);
            self.done = Some(keep - 1);
            self.resync();
        }
        std::mem::take(&mut self.lost)
    }

    /// The frames that follow are useless until a keyframe: one was lost, or failed to decode.
    pub fn resync(&mut self) {
        self.in_order = false;
        self.lost = true;
    }

    fn unwrap(&mut self, seq: u16) -> u64 {
        // Start far from zero so a packet older than the first one still fits.
        let ext = self.highest.map_or((1 << 32) + u64::from(seq), |h| {
            h.wrapping_add_signed(i64::from(seq.wrapping_sub(h as u16) as i16))
        });
        self.highest = Some(self.highest.map_or(ext, |h| h.max(ext)));
        ext
    }
}

/// Splits an RTP payload into its VP8 payload descriptor (RFC 7741 §4.2) and the frame
/// data after it; says whether it starts a frame (S set, partition 0). Written here
/// because webrtc-rs's depacketizer refuses payloads under 4 bytes, and a frame's last
/// packet is that short whenever the frame's size is 1 or 2 bytes past a packet boundary:
/// the viewer then waited for a packet it had thrown away.
fn vp8_payload(payload: &Bytes) -> Option<(bool, Bytes)> {
    let first = *payload.first()?;
    let mut at = 1;
    if first & 0x80 != 0 {
        let ext = *payload.get(1)?;
        at = 2;
        if ext & 0x80 != 0 {
            // PictureID: 15 bits when its M bit is set, else 7.
            at += if payload.get(at)? & 0x80 != 0 { 2 } else { 1 };
        }
        at += usize::from(ext & 0x40 != 0); // TL0PICIDX
        at += usize::from(ext & 0x30 != 0); // TID/Y/KEYIDX
    }
    let head = first & 0x10 != 0 && first & 0x07 == 0;
    (at <= payload.len()).then(|| (head, payload.slice(at..)))
}
