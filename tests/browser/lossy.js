// Debian's Chromium watches campeer's viewer page while the test shapes the link between
// them (tests/chromium_plays_on_lossy_links.rs), and reports what it showed and what its
// receiver did, window by window. Runs in the viewer's network namespace, so Chromium,
// its child, is there too.
//
// Environment: PAGE (the embedded server's page URL), TOKEN (campeer's viewer token).
// Protocol, a line each: prints `playing {json}` once frames show their counter (the
// answer's RTX and the inbound-rtp SSRCs); then for each `watch SPAN_MS FREEZE_MS` read
// from stdin, watches that long and prints `watched {json}`; at the end of stdin closes
// the browser and prints `closed`.
// A failure prints `FAIL: why` on stderr and exits non-zero.
const readline = require("readline");
const { launch } = require("./chromium");
const { readCounterInPage, stats, waitFor, answeredRtx } = require("./page");

const { PAGE, TOKEN } = process.env;

function fail(why) { console.error("FAIL: " + why); process.exit(1); }

// Records every frame the video element presents, with its counter (null when the
// picture holds none), from requestVideoFrameCallback: the frames a person sees.
function recordFrames(readCounter) {
  const v = document.querySelector("video#remote") || document.querySelector("video");
  window.presented = [];
  const tick = (now) => {
    window.presented.push([now, readCounter()]);
    v.requestVideoFrameCallback(tick);
  };
  v.requestVideoFrameCallback(tick);
}

// What the frames presented between `from` and `to` (page ms) show: intact frames are
// those whose counter reads back and rises; a gap between intact frames (the window's
// ends count) longer than `freezeMs` is a freeze.
function summarizeFrames(frames, from, to, freezeMs) {
  const out = { presented: frames.length, intact: 0, unreadable: 0, backwards: 0, skipped: 0,
    longestGapMs: 0, freezes: 0, firstCounter: null, lastCounter: null };
  let lastAt = from, lastCounter = null;
  const gap = (at) => {
    out.longestGapMs = Math.max(out.longestGapMs, at - lastAt);
    if (at - lastAt > freezeMs) out.freezes++;
  };
  for (const [at, counter] of frames) {
    if (counter === null) { out.unreadable++; continue; }
    if (lastCounter !== null && counter <= lastCounter) { out.backwards++; continue; }
    if (lastCounter !== null) out.skipped += counter - lastCounter - 1;
    out.intact++;
    gap(at);
    lastAt = at;
    lastCounter = counter;
    if (out.firstCounter === null) out.firstCounter = counter;
  }
  gap(to);
  out.lastCounter = lastCounter;
  return out;
}

// What Chromium's receiver counted between two inbound-rtp video stats.
const COUNTED = ["framesDecoded", "framesDropped", "keyFramesDecoded", "freezeCount",
  "totalFreezesDuration", "pauseCount", "packetsReceived", "packetsLost", "nackCount",
  "pliCount", "firCount", "retransmittedPacketsReceived", "retransmittedBytesReceived",
  "bytesReceived", "jitterBufferDelay", "jitterBufferEmittedCount"];
function receiverDelta(before, after) {
  const out = {};
  for (const k of COUNTED) out[k] = (after[k] || 0) - (before[k] || 0);
  out.framesPerSecond = after.framesPerSecond;
  return out;
}

async function watch(page, spanMs, freezeMs) {
  const before = (await stats(page)).video;
  const from = await page.evaluate(() => { window.presented = []; return performance.now(); });
  await page.waitForTimeout(spanMs);
  const [to, frames] = await page.evaluate(() => [performance.now(), window.presented.splice(0)]);
  const after = (await stats(page)).video;
  return { seconds: (to - from) / 1000, frames: summarizeFrames(frames, from, to, freezeMs),
    receiver: receiverDelta(before, after) };
}

(async () => {
  const browser = await launch(["--use-fake-ui-for-media-stream"]);
  try {
    const page = await browser.newPage();
    page.on("console", (m) => console.error("page: " + m.text()));
    await page.goto(PAGE + "#token=" + TOKEN);
    await waitFor(page, "video frames decoded", (s) => s.video && s.video.framesDecoded > 0, 20000);
    await page.waitForFunction(readCounterInPage, null, { timeout: 5000 });
    await page.evaluate(`(${recordFrames})(${readCounterInPage})`);
    const answer = await page.evaluate(() => window.campeerViewer.pc.remoteDescription.sdp);
    const video = (await stats(page)).video;
    console.log("playing " + JSON.stringify({ answer: answeredRtx(answer),
      inbound: { ssrc: String(video.ssrc), rtxSsrc: video.rtxSsrc === undefined ? null : String(video.rtxSsrc) } }));
    for await (const line of readline.createInterface({ input: process.stdin })) {
      const [word, span, freeze] = line.trim().split(/\s+/);
      if (word !== "watch") fail(`unknown command ${line}`);
      console.log("watched " + JSON.stringify(await watch(page, Number(span), Number(freeze))));
    }
  } finally {
    await browser.close();
  }
  console.log("closed");
})().catch((e) => fail(e.stack || String(e)));
