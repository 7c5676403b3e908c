//! Debian's Chromium (through playwright-core, `tests/browser/lossy.js`) watching
//! campeer's viewer page from a host of a test's LAN, window by window, while the test
//! changes the link. Its numbers are the page's own: the frames the video element
//! presented, their test-pattern counters, and the receiver's getStats().

use std::io::Write;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::netns::Host;
use super::{CONNECT_DEADLINE, Lines, TEST_TOKEN, repo};

/// A Chromium whose page plays campeer; closed (and its exit checked) by [`Chromium::close`].
pub struct Chromium {
    child: Child,
    /// Its commands; closed to close the browser.
    stdin: Option<ChildStdin>,
    out: Lines,
    /// The `playing` report: the answer's RTX and the inbound-rtp SSRCs.
    pub playing: Value,
}

impl Chromium {
    /// Opens `page` (with campeer's test token) in a Chromium in `host`, and waits until
    /// its frames show the pattern's counter.
    pub fn watch_from(host: &Host, page: &str) -> Self {
        let mut child = Command::new("ip")
            .args(["netns", "exec", host.namespace(), "node"])
            .arg(repo().join("tests/browser/lossy.js"))
            .env("NODE_PATH", repo().join("tests/node_modules"))
            .env("PAGE", page)
            .env("TOKEN", TEST_TOKEN)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node runs (scripts/setup installs it)");
        let stdin = child.stdin.take();
        let out = Lines::default();
        out.follow(child.stdout.take().expect("piped stdout"), "chromium");
        let playing = report(&out, 0, "playing", CONNECT_DEADLINE);
        Self {
            child,
            stdin,
            out,
            playing,
        }
    }

    /// Watches for `span`; gaps between intact frames longer than `freeze` count as
    /// freezes. Returns the page's `watched` report.
    pub fn watch(&mut self, span: Duration, freeze: Duration) -> Watched {
        let from = self.out.len();
        writeln!(
            self.stdin.as_mut().expect("open until close"),
            "watch {} {}",
            span.as_millis(),
            freeze.as_millis()
        )
        .expect("the browser script reads its commands");
        Watched(report(&self.out, from, "watched", span + CONNECT_DEADLINE))
    }

    /// Closes the browser; panics if the script failed.
    pub fn close(mut self) {
        let from = self.out.len();
        drop(self.stdin.take());
        self.out
            .wait_for_line(from, CONNECT_DEADLINE, "the browser closed", |line| {
                (line == "closed").then_some(())
            });
        let status = self.child.wait().expect("wait on the browser script");
        assert!(
            status.success(),
            "the browser script failed (see its FAIL line above)"
        );
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        // After close this finds the script gone; on a panic it takes Chromium with it.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The JSON of the first `word {json}` line after the first `from` lines.
fn report(out: &Lines, from: usize, word: &str, within: Duration) -> Value {
    let prefix = format!("{word} ");
    out.wait_for_line(from, within, &format!("the page's {word} report"), |line| {
        let json = line.strip_prefix(&prefix)?;
        Some(
            serde_json::from_str(json)
                .unwrap_or_else(|e| panic!("the page's {word} report {json}: {e}")),
        )
    })
}

/// One window of [`Chromium::watch`]: `frames` (what the video element presented) and
/// `receiver` (getStats' inbound-rtp video, counted over the window).
pub struct Watched(pub Value);

impl Watched {
    pub fn seconds(&self) -> f64 {
        self.number("seconds")
    }

    /// Presented frames whose counter read back, higher than the one before.
    pub fn intact(&self) -> f64 {
        self.number("frames.intact")
    }

    pub fn intact_fps(&self) -> f64 {
        self.intact() / self.seconds()
    }

    /// Gaps between intact frames longer than the `freeze` watched with.
    pub fn freezes(&self) -> f64 {
        self.number("frames.freezes")
    }

    /// A number at a dotted path, e.g. `receiver.nackCount`.
    pub fn number(&self, path: &str) -> f64 {
        path.split('.')
            .fold(&self.0, |v, key| &v[key])
            .as_f64()
            .unwrap_or_else(|| panic!("no number {path} in the page's report {}", self.0))
    }
}
