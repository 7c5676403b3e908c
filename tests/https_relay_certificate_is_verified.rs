//! campeer joins an https relay only if its certificate checks out: against the system's
//! roots (where a self-signed certificate is not), or the CA of `signaling.ca_file`. The
//! npm relay serves https with a certificate made here for 127.0.0.1.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use campeer::signaling::client::trust;
use common::viewer::{Direction, RoomLink, Viewer, ViewerNet};
use common::{CONNECT_DEADLINE, Campeer, Relay, START_DEADLINE};
use serde_json::json;

/// A self-signed certificate for 127.0.0.1 and its key, as PEM files in `dir`.
fn self_signed(dir: &Path) -> (PathBuf, PathBuf) {
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
        .expect("a self-signed certificate");
    let (cert, key) = (dir.join("relay.pem"), dir.join("relay.key"));
    std::fs::write(&cert, made.cert.pem()).expect("write the certificate");
    std::fs::write(&key, made.signing_key.serialize_pem()).expect("write the key");
    (cert, key)
}

#[test]
fn a_relay_certificate_no_trusted_ca_signed_is_refused_naming_the_url() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let (cert, key) = self_signed(dir.path());
    let relay = Relay::start_https(&cert, &key);

    let campeer = Campeer::start(Some(&relay.url()), &[]);
    let line = campeer
        .log
        .wait_for("TLS certificate is not trusted", START_DEADLINE);
    assert!(
        line.contains(&relay.url()),
        "the error names the relay: {line}"
    );
    assert!(line.contains("signaling.ca_file"), "and what to do: {line}");
    assert_eq!(relay.out.count("join"), 0, "no room joined");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_certificate_from_signaling_ca_file_is_trusted_and_a_viewer_plays() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let (cert, key) = self_signed(dir.path());
    let relay = Relay::start_https(&cert, &key);
    let ca_file = cert.to_str().expect("a UTF-8 path");

    let _campeer = Campeer::start(
        Some(&relay.url()),
        &[("CAMPEER__SIGNALING__CA_FILE", ca_file)],
    );
    relay.wait_for_join(1);

    let tls = trust::connector("signaling.ca_file", &cert).expect("the viewer trusts the same CA");
    let link = RoomLink::relay_trusting(&relay.url(), json!(1), Some(tls)).await;
    let mut viewer = Viewer::call_over(link, Direction::RecvOnly, ViewerNet::default()).await;
    viewer.connected(CONNECT_DEADLINE).await;
    viewer.plays(2, Duration::from_secs(5)).await;
    viewer.hang_up().await;
}
