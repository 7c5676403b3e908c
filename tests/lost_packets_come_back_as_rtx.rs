//! Loss recovery (issue 15): a viewer whose offer has RTX (RFC 4588) gets its lost video
//! packets back as RTX, on the RTX SSRC the answer groups with the media SSRC
//! (`a=ssrc-group:FID`), under the RTX payload type, each carrying a sequence number the
//! media flow lost; one whose offer has none gets plain resends on the media SSRC. Either
//! way the frame counter decodes in order. The loss is nftables' on the viewer's side of
//! a veth link (root; see `common::netns`).

mod common;

use std::time::Duration;

use common::netns::{self, Lan};
use common::playback::{assert_in_order, counters_until};
use common::rtp_log::{RtpLog, RtxFlow};
use common::viewer::{Direction, Retransmission, RoomLink, VideoPackets, Viewer, extmap_id};
use common::{CONNECT_DEADLINE, Campeer, Relay};
use rtc::sdp::extmap::TRANSPORT_CC_URI;
use serde_json::json;

/// Of the UDP reaching the viewer, the percentage dropped.
const LOSS: u32 = 5;
/// How long the lossy call is watched: some hundred video packets, so a few dozen lost.
const SPAN: Duration = Duration::from_secs(6);
/// A step between decoded counters longer than this is a frame lost for good: the viewer
/// waits half a second for a packet, then for a keyframe. Shorter steps are frames the
/// debug build's capture skipped on a busy host.
const MAX_STEP: u32 = 5;

/// The SSRCs the answer declares.
fn answered_ssrcs(answer: &str) -> Vec<u32> {
    let mut ssrcs: Vec<u32> = answer
        .lines()
        .filter_map(|l| l.strip_prefix("a=ssrc:")?.split(' ').next()?.parse().ok())
        .collect();
    ssrcs.dedup();
    ssrcs
}

/// What the viewer of a lossy call saw.
struct LossyCall {
    answer: String,
    rtp_log: RtpLog,
    video: VideoPackets,
    /// The frame counters decoded over `SPAN` of loss.
    counters: Vec<u32>,
}

/// Calls campeer from the viewer host with `retransmission` offered, loses `LOSS` % of what
/// reaches the viewer, and watches for `SPAN`. None when the test cannot run here.
fn lossy_call(test: &str, retransmission: Retransmission) -> Option<LossyCall> {
    if !netns::can_run(test) {
        return None;
    }
    let lan = Lan::new(&["campeer", "viewer"]);
    let viewer = lan.host("viewer");
    let relay = Relay::start_in(viewer);
    let _campeer = Campeer::start_in(lan.host("campeer"), &relay.url(), &[]);
    relay.wait_for_join(1);
    Some(viewer.block_on(async {
        let link = RoomLink::relay(&relay.url(), json!(1)).await;
        let mut v = Viewer::call_offering(
            link,
            Direction::RecvOnly,
            viewer.viewer_net(),
            retransmission,
        )
        .await;
        v.connected(CONNECT_DEADLINE).await;
        v.plays(10, CONNECT_DEADLINE).await;
        viewer.lose_incoming_udp(LOSS);
        let counters = counters_until(&mut v, tokio::time::sleep(SPAN)).await;
        let call = LossyCall {
            answer: v.answer().expect("the answer applied"),
            rtp_log: v.rtp_log().clone(),
            video: v.video_packets().await,
            counters,
        };
        v.hang_up().await;
        call
    }))
}

#[test]
fn a_viewer_offering_rtx_gets_lost_packets_back_as_rtx() {
    let Some(call) = lossy_call(
        "a_viewer_offering_rtx_gets_lost_packets_back_as_rtx",
        Retransmission::Rtx,
    ) else {
        return;
    };
    let answer = &call.answer;
    let (media, rtx) = RtxFlow::answered(answer)
        .unwrap_or_else(|| panic!("the answer has no RTX for video:\n{answer}"));
    let twcc = extmap_id(answer, TRANSPORT_CC_URI).expect("the answer takes transport-cc");
    let repairs = call.rtp_log.repairs(media, rtx, twcc);
    eprintln!("media SSRC {media}, {rtx:?}: {repairs:?}");
    assert!(
        repairs.filled > 0,
        "no RTX packet brought a lost one: {repairs:?}"
    );
    assert_eq!(repairs.other, 0, "the RTX SSRC under another payload type");
    assert_eq!(
        repairs.numbered, repairs.rtx,
        "RTX packets without a transport-wide sequence number of their own"
    );
    assert_in_order("the viewer offering RTX", &call.counters, MAX_STEP);
}

#[test]
fn a_viewer_without_rtx_gets_plain_resends() {
    let Some(call) = lossy_call(
        "a_viewer_without_rtx_gets_plain_resends",
        Retransmission::Plain,
    ) else {
        return;
    };
    let answer = &call.answer;
    assert_eq!(RtxFlow::answered(answer), None, "RTX answered:\n{answer}");
    assert!(!answer.contains("FID"), "an RTX SSRC declared:\n{answer}");
    let ssrcs = answered_ssrcs(answer);
    assert_eq!(
        call.rtp_log.on_other_ssrcs(&ssrcs),
        0,
        "packets on SSRCs the answer does not declare ({ssrcs:?})"
    );
    assert!(call.video.nacks > 0, "no loss NACKed: {:?}", call.video);
    assert_in_order("the viewer without RTX", &call.counters, MAX_STEP);
}
