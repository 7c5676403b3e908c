//! With no relay configured campeer serves its own (socketioxide) and the viewer page;
//! two viewers watch at once, each getting its own session and its own answer, and a
//! viewer in room "1" (a string) is not in campeer's room 1 (a number).

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::Campeer;
use common::viewer::{Direction, Viewer};
use serde_json::json;

fn http_get(url: &str, path: &str) -> String {
    let host = url.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(host).expect("the embedded server accepts");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_viewers_watch_through_the_embedded_server() {
    let (mut campeer, url) = Campeer::start_embedded(&[]);

    let page = http_get(&url, "/");
    assert!(page.starts_with("HTTP/1.1 200"), "{page:.200}");
    assert!(page.contains("text/html") && page.contains("campeerViewer"));
    let client = http_get(&url, "/socket.io.min.js");
    assert!(client.starts_with("HTTP/1.1 200") && client.contains("Socket.IO v4"));

    let mut stranger = Viewer::call(&url, json!("1"), Direction::RecvOnly).await;
    let mut a = Viewer::call(&url, json!(1), Direction::RecvOnly).await;
    let mut b = Viewer::call(&url, json!(1), Direction::SendRecv).await;
    a.connected(Duration::from_secs(15)).await;
    b.connected(Duration::from_secs(15)).await;
    for v in [&mut a, &mut b] {
        let x = v.next_counter(Duration::from_secs(5)).await;
        let y = v.next_counter(Duration::from_secs(5)).await;
        assert!(y > x);
    }
    assert_eq!(
        campeer.log.count("offer received"),
        2,
        "the string room \"1\" is another room"
    );
    assert!(
        stranger.seen.try_recv().is_err(),
        "nothing reached room \"1\""
    );

    // The first viewer leaving does not disturb the second.
    a.hang_up().await;
    campeer
        .log
        .wait_for("session closed", Duration::from_secs(15));
    let x = b.next_counter(Duration::from_secs(5)).await;
    let y = b.next_counter(Duration::from_secs(5)).await;
    assert!(y > x);
    b.hang_up().await;
    drop(stranger);
    assert!(campeer.terminate().success());
}
