//! The test viewer's jitter buffer, on hand-made VP8 RTP payloads: the other tests trust
//! it to hand the decoder only whole frames in order, so it is tested on its own.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::jitter::FrameAssembler;

/// One RTP packet of a frame: VP8 descriptor (S bit on the first packet) + three data
/// bytes. The first data byte's low bit is VP8's "inter frame" flag.
fn packet(frame: u8, part: u8, keyframe: bool) -> Bytes {
    let descriptor = if part == 0 { 0x10 } else { 0x00 };
    let data = if part == 0 {
        (frame << 1) | u8::from(!keyframe)
    } else {
        part
    };
    Bytes::from(vec![descriptor, data, 0, 0])
}

/// Pushes frame `frame` (3 packets, starting at `seq`), leaving out the parts in `skip`.
fn push_frame(
    a: &mut FrameAssembler,
    seq: u16,
    frame: u8,
    keyframe: bool,
    skip: &[u8],
    at: Instant,
) {
    for part in 0..3u8 {
        if !skip.contains(&part) {
            let ts = u32::from(frame) * 3000;
            a.push(
                seq.wrapping_add(u16::from(part)),
                ts,
                part == 2,
                &packet(frame, part, keyframe),
                at,
            );
        }
    }
}

fn drain(a: &mut FrameAssembler) -> Vec<(u32, bool)> {
    std::iter::from_fn(|| a.pop())
        .map(|f| {
            assert_eq!(f.data.len(), 9, "a whole frame: three packets' data");
            (f.rtp_time / 3000, f.keyframe)
        })
        .collect()
}

#[test]
fn frames_come_out_whole_and_in_order_across_a_sequence_wrap() {
    let now = Instant::now();
    let mut a = FrameAssembler::default();
    push_frame(&mut a, 65533, 1, true, &[], now);
    push_frame(&mut a, 0, 2, false, &[], now);
    assert_eq!(drain(&mut a), [(1, true), (2, false)]);
}

#[test]
fn inter_frames_before_the_first_keyframe_are_not_decoded() {
    let now = Instant::now();
    let mut a = FrameAssembler::default();
    push_frame(&mut a, 10, 1, false, &[], now);
    assert!(drain(&mut a).is_empty());
    push_frame(&mut a, 13, 2, true, &[], now);
    assert_eq!(drain(&mut a), [(2, true)]);
}

#[test]
fn a_hole_filled_by_a_retransmission_waits_and_then_decodes() {
    let now = Instant::now();
    let mut a = FrameAssembler::default();
    push_frame(&mut a, 100, 1, true, &[], now);
    push_frame(&mut a, 103, 2, false, &[1], now);
    push_frame(&mut a, 106, 3, false, &[], now);
    assert_eq!(
        drain(&mut a),
        [(1, true)],
        "frame 2 has a hole; 3 must wait for it"
    );
    assert!(!a.gave_up(now + Duration::from_millis(100)));
    a.push(104, 6000, false, &packet(2, 1, false), now);
    assert_eq!(drain(&mut a), [(2, false), (3, false)]);
    a.push(104, 6000, false, &packet(2, 1, false), now);
    assert!(drain(&mut a).is_empty(), "a late duplicate is ignored");
}

#[test]
fn a_frame_lost_for_good_is_given_up_once_and_the_next_keyframe_resumes() {
    let now = Instant::now();
    let mut a = FrameAssembler::default();
    push_frame(&mut a, 100, 1, true, &[], now);
    push_frame(&mut a, 103, 2, false, &[0], now);
    push_frame(&mut a, 106, 3, false, &[], now);
    assert_eq!(drain(&mut a), [(1, true)]);
    let later = now + Duration::from_secs(1);
    assert!(a.gave_up(later), "the hole is given up after the patience");
    assert!(!a.gave_up(later), "and only once");
    assert!(
        drain(&mut a).is_empty(),
        "inter frames after a loss are not decoded"
    );
    push_frame(&mut a, 109, 4, true, &[], later);
    push_frame(&mut a, 112, 5, false, &[], later);
    assert_eq!(drain(&mut a), [(4, true), (5, false)]);
}

#[test]
fn a_hole_inside_a_frame_is_given_up_too() {
    let now = Instant::now();
    let mut a = FrameAssembler::default();
    push_frame(&mut a, 100, 1, true, &[], now);
    push_frame(&mut a, 103, 2, false, &[1], now);
    push_frame(&mut a, 106, 3, false, &[], now);
    assert_eq!(drain(&mut a), [(1, true)]);
    assert!(
        !a.gave_up(now + Duration::from_millis(100)),
        "still patient"
    );
    assert!(
        a.gave_up(now + Duration::from_secs(1)),
        "the frame's head arrived but its middle never did"
    );
    push_frame(&mut a, 109, 4, true, &[], now);
    assert_eq!(drain(&mut a), [(4, true)]);
}

#[test]
fn a_first_keyframe_with_a_hole_is_given_up_and_the_next_one_decodes() {
    let now = Instant::now();
    let mut a = FrameAssembler::default();
    push_frame(&mut a, 100, 1, true, &[1], now);
    push_frame(&mut a, 103, 2, false, &[], now);
    assert!(drain(&mut a).is_empty(), "no whole keyframe yet");
    assert!(
        !a.gave_up(now + Duration::from_millis(100)),
        "still patient"
    );
    let later = now + Duration::from_secs(1);
    assert!(a.gave_up(later), "the keyframe's hole is given up");
    assert!(!a.gave_up(later), "and only once");
    push_frame(&mut a, 106, 3, true, &[], later);
    assert_eq!(drain(&mut a), [(3, true)]);
}

#[test]
fn giving_up_keeps_a_newer_keyframe_and_ignores_late_copies_of_what_it_dropped() {
    let now = Instant::now();
    let later = now + Duration::from_secs(1);
    let mut a = FrameAssembler::default();
    push_frame(&mut a, 100, 1, true, &[], now);
    push_frame(&mut a, 103, 2, false, &[1], now);
    assert_eq!(drain(&mut a), [(1, true)]);
    // The keyframe a PLI asked for arrives while frame 2 is still waited for.
    push_frame(&mut a, 106, 3, true, &[], later);
    assert!(drain(&mut a).is_empty(), "frame 2 is still waited for");
    assert!(a.gave_up(later), "frame 2 is given up");
    a.push(104, 6000, false, &packet(2, 1, false), later);
    assert_eq!(
        drain(&mut a),
        [(3, true)],
        "the newer keyframe decodes; frame 2's late packet does not revive it"
    );
}

#[test]
fn a_frame_whose_last_packet_holds_one_byte_decodes() {
    let now = Instant::now();
    let mut a = FrameAssembler::default();
    a.push(7, 3000, false, &packet(1, 0, true), now);
    a.push(8, 3000, true, &Bytes::from_static(&[0x00, 0xAB]), now);
    let f = a.pop().expect("a whole frame");
    assert_eq!(f.data, [2, 0, 0, 0xAB], "descriptors stripped, data kept");
}

#[test]
fn extended_descriptors_are_stripped() {
    let now = Instant::now();
    let mut a = FrameAssembler::default();
    // X, then I with a 15-bit PictureID, L (TL0PICIDX) and T (TID): 6 descriptor bytes.
    a.push(
        1,
        3000,
        true,
        &Bytes::from_static(&[0x90, 0xE0, 0x81, 0x02, 0x03, 0x40, 0x10, 0xCD]),
        now,
    );
    let f = a.pop().expect("a whole keyframe");
    assert_eq!(f.data, [0x10, 0xCD]);
    assert!(f.keyframe);
}
