//! Debian's Chromium, headless through playwright-core, watches campeer: the viewer page
//! on the embedded server and through the npm relay, the reference page (sendrecv, its own fake camera) through
//! the npm relay, a watch-only page whose host candidates are mDNS names, two tabs, and
//! twenty fresh loads in a row.
//! The viewer page also checks that its offer and campeer's answer carry the latency
//! header extensions and that Chromium reports campeer's capture time per frame, and that
//! the answer gives VP8 an RTX SSRC, which Chromium reports as its rtxSsrc.
//! The checks run in `tests/browser/watch.js` from the page's getStats() and pixels;
//! screenshots land in `target/browser-screenshots/`.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Mutex;

use common::Campeer;

/// One browser at a time: two Chromiums and campeer on two cores make frame rates lie.
static BROWSER: Mutex<()> = Mutex::new(());

const WIDTH: &str = "320";
const HEIGHT: &str = "240";

fn watch(mode: &str, page: &str) {
    let _one = BROWSER.lock().unwrap_or_else(|p| p.into_inner());
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = repo.join("target/browser-screenshots");
    std::fs::create_dir_all(&out).expect("screenshot folder");
    let status = Command::new("node")
        .arg(repo.join("tests/browser/watch.js"))
        .env("NODE_PATH", repo.join("tests/node_modules"))
        .env("MODE", mode)
        .env("PAGE", page)
        .env("WIDTH", WIDTH)
        .env("HEIGHT", HEIGHT)
        .env("OUT", &out)
        .env("TOKEN", common::TEST_TOKEN)
        .status()
        .expect("node runs (scripts/setup installs it)");
    assert!(
        status.success(),
        "the browser check {mode} failed (see its FAIL line above)"
    );
    if !matches!(mode, "two-tabs" | "reloads" | "forged-answer") {
        assert!(
            out.join(format!("{mode}.png")).is_file(),
            "screenshot saved"
        );
    }
}

fn embedded() -> (Campeer, String) {
    Campeer::start_embedded(&[
        ("CAMPEER__VIDEO__WIDTH", WIDTH),
        ("CAMPEER__VIDEO__HEIGHT", HEIGHT),
    ])
}

/// campeer joined to an npm relay, and the page `mode` served apart and pointed at it.
fn through_npm_relay(mode: &str, env: &[(&str, &str)]) {
    let (relay, mut campeer) = common::campeer_in_relay_room(env);
    watch(mode, &relay.url());
    assert!(campeer.terminate().success());
}

#[test]
fn viewer_page_plays_from_the_embedded_server() {
    let (mut campeer, url) = embedded();
    watch("viewer", &format!("{url}/"));
    assert!(campeer.terminate().success());
}

#[test]
fn reference_page_calls_through_the_npm_relay() {
    // The seed's page cannot prove its offers: only an open camera answers it.
    through_npm_relay("reference", &[("CAMPEER__ACCESS__OPEN", "true")]);
}

#[test]
fn viewer_page_plays_through_an_external_relay() {
    through_npm_relay("viewer-external", &[]);
}

#[test]
fn watch_only_page_with_mdns_candidates_connects() {
    let (mut campeer, url) = embedded();
    watch("mdns", &format!("{url}/"));
    assert!(campeer.terminate().success());
}

#[test]
fn two_tabs_watch_at_once() {
    let (mut campeer, url) = embedded();
    watch("two-tabs", &format!("{url}/"));
    assert_eq!(campeer.log.count("answer sent"), 2, "one session per tab");
    assert!(campeer.terminate().success());
}

/// A person who opens the page always sees the camera: twenty loads in a row, each in a
/// fresh browser context, each plays (a join lost to the relay's connect race once left
/// a page waiting for an answer forever).
#[test]
fn every_fresh_page_load_plays() {
    let (mut campeer, url) = embedded();
    watch("reloads", &format!("{url}/"));
    assert_eq!(campeer.log.count("answer sent"), 20, "one session per load");
    assert!(campeer.terminate().success());
}

/// A link without the token: the embedded server refuses the socket, the page asks for
/// the token, and once it is typed in the camera plays.
#[test]
fn page_without_the_token_asks_for_it() {
    let (mut campeer, url) = embedded();
    watch("token-needed", &format!("{url}/"));
    assert!(campeer.log.count("socket refused: no valid token") >= 1);
    assert!(campeer.terminate().success());
}

/// A member of a shared relay's room answers the page's offers itself: without
/// campeer's proof the page never applies such an answer (no campeer in this room).
#[test]
fn page_refuses_an_answer_without_campeers_proof() {
    let relay = common::Relay::start();
    watch("forged-answer", &relay.url());
}

/// `access.tls = "self-signed"`: campeer makes a certificate in its state directory and
/// serves the page over https (a phone's browser needs that for its microphone); with
/// the token the page plays there.
#[test]
fn page_plays_over_https_with_a_self_signed_certificate() {
    let state = tempfile::tempdir().expect("a state directory");
    let (mut campeer, url) = Campeer::start_embedded(&[
        ("CAMPEER__VIDEO__WIDTH", WIDTH),
        ("CAMPEER__VIDEO__HEIGHT", HEIGHT),
        ("CAMPEER__ACCESS__TLS", "self-signed"),
        (
            "CAMPEER__ACCESS__STATE_DIR",
            state.path().to_str().expect("a UTF-8 path"),
        ),
    ]);
    assert!(url.starts_with("https://"), "{url}");
    watch("https", &format!("{url}/"));
    assert!(campeer.terminate().success());
}
