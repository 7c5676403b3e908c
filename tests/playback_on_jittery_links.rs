//! Playback over a link with delay, jitter and loss, as on Wi-Fi or a mobile network (issue
//! 15): the viewer still decodes whole frames, in order, at about the capture rate, with no
//! freeze a person notices, and the congestion controller does not read jitter as
//! congestion and starve the encoder. This kernel has no `netem`, so the link is the
//! userspace one of `common::wire` (see there what it models), between network namespaces
//! (root; see `common::netns`); the path has room to spare, only its timing is bad.

mod common;

use std::time::Duration;

use common::netns::{self, Lan};
use common::playback::watch;
use common::viewer::{Direction, Viewer};
use common::wire::Impairment;
use common::{Campeer, Relay, video_target_kbps};

/// Only against a hang: the call's first frames.
const PLAYS: Duration = Duration::from_secs(20);
/// How long playback is watched once the call plays.
const SPAN: Duration = Duration::from_secs(8);
/// A gap between frames longer than this is a freeze.
const FREEZE: Duration = Duration::from_secs(1);
/// Whole frames a second, of the 30 captured, that still look like video.
const MIN_FPS: f64 = 20.0;
/// The encoder's target never falls below this on a link with room to spare: a third of
/// where it starts, three times its floor.
const KEPT_KBPS: u32 = 300;
/// Where campeer's encoder starts.
const START_KBPS: u32 = 1000;

/// `netem delay 80ms 20ms distribution normal loss N%`, packets overtaking or kept in order.
fn jittery(loss_percent: u32, reorder: bool) -> Impairment {
    Impairment {
        delay: Duration::from_millis(80),
        jitter: Duration::from_millis(20),
        loss_percent,
        reorder,
    }
}

/// Watches campeer over `impairment` (toward the viewer) and asserts what a viewer needs.
fn plays_whole_frames_and_keeps_the_bitrate(test: &str, impairment: Impairment) {
    if !netns::can_run(test) {
        return;
    }
    let lan = Lan::new(&["campeer", "viewer"]);
    let (board, viewer) = (lan.host("campeer"), lan.host("viewer"));
    lan.impair_download("viewer", impairment);
    let relay = Relay::start_in(viewer);
    // `test-noisy` spends what the encoder is given: the link carries the target's load.
    let start = START_KBPS.to_string();
    let campeer = Campeer::start_in(
        board,
        &relay.url(),
        &[
            ("CAMPEER__VIDEO__BITRATE_KBPS", start.as_str()),
            ("CAMPEER__VIDEO__SOURCE", "test-noisy"),
        ],
    );
    relay.wait_for_join(1);
    viewer.block_on(async {
        let mut v =
            Viewer::connect_on(&relay.url(), Direction::RecvOnly, viewer.viewer_net()).await;
        v.plays(10, PLAYS).await;
        let from = campeer.log.len();
        let link_before = lan.download_counts("viewer");
        let p = watch(&mut v, SPAN, FREEZE).await;
        let link = lan.download_counts("viewer");

        // The target in force when watching began, and every one set while watching.
        let log = campeer.log.all();
        let at_start = log[..from]
            .iter()
            .rev()
            .find_map(|l| video_target_kbps(l))
            .unwrap_or(START_KBPS);
        let targets: Vec<u32> = std::iter::once(at_start)
            .chain(log[from..].iter().filter_map(|l| video_target_kbps(l)))
            .collect();
        let lowest = *targets.iter().min().expect("one target at least");
        let fps = p.intact as f64 / SPAN.as_secs_f64();
        eprintln!(
            "{test}: {impairment:?}: {fps:.1} fps of whole frames, longest freeze {:?}, \
             video target {targets:?} kbps (lowest {lowest}); link: {} frames delivered, \
             {} lost, {} overtaken; {p:?}",
            p.longest_gap,
            link.delivered - link_before.delivered,
            link.lost - link_before.lost,
            link.overtaken - link_before.overtaken,
        );
        assert_eq!(link.failed, 0, "the wire failed to pass frames: {link:?}");
        assert_eq!(p.backwards, 0, "frames shown out of order: {p:?}");
        assert!(fps >= MIN_FPS, "{fps:.1} fps of whole frames: {p:?}");
        assert_eq!(p.freezes, 0, "a freeze over {FREEZE:?}: {p:?}");
        assert!(
            lowest >= KEPT_KBPS,
            "jitter cost the encoder its bitrate: targets {targets:?} kbps"
        );
        v.hang_up().await;
    });
}

#[test]
fn jittery_lossy_link_plays_whole_frames_in_order_and_keeps_its_bitrate() {
    plays_whole_frames_and_keeps_the_bitrate(
        "jittery_lossy_link_plays_whole_frames_in_order_and_keeps_its_bitrate",
        jittery(2, false),
    );
}

#[test]
fn reordering_link_plays_whole_frames_in_order_and_keeps_its_bitrate() {
    plays_whole_frames_and_keeps_the_bitrate(
        "reordering_link_plays_whole_frames_in_order_and_keeps_its_bitrate",
        jittery(1, true),
    );
}
