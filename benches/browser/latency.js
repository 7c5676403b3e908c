// Capture → display latency and offer → first frame, read by a real Chromium from the
// Unix-ms stamp painted into each frame at capture: campeer's test pattern (CAMPEER, the
// viewer URL with its #token=), beside the Chromium → Chromium reference of
// loopback.html, alternating, RUNS times each, SECONDS_PER_RUN of frames per run after a 2 s
// warm-up. Prints one JSON line per run and one summary line. Run by scripts/bench.
// Two figures per frame: p50/p95, when the page's requestVideoFrameCallback runs with it
// (timed on the page's clock, so it means the same for both senders), and displayP50/P95
// from Chromium's expectedDisplayTime, an estimate: for frames it renders at once
// (campeer asks for that: playout-delay 0/0) Chromium gives its last frame deadline, which
// moved from before the frame's arrival to 47 ms after it from run to run, while the
// callback's time held within a few ms. stagesP50: where each frame's time went.
const fs = require("fs");
const http = require("http");
const path = require("path");
const { launch } = require("../../tests/browser/chromium");

const CAMPEER = process.env.CAMPEER;
const RUNS = Number(process.env.RUNS || 3), SECONDS = Number(process.env.SECONDS_PER_RUN || 10);

// Installed before any page script: notes when the page makes its offer, then reads the
// stamp from every frame the video element presents (requestVideoFrameCallback).
function instrument() {
  const bench = (window.bench = { offerAt: null, firstFrameAt: null, estimated: [], seen: [], unread: 0, stages: [] });
  const setLocal = RTCPeerConnection.prototype.setLocalDescription;
  RTCPeerConnection.prototype.setLocalDescription = function (...args) {
    if (bench.offerAt === null && this.signalingState === "stable") bench.offerAt = performance.now();
    return setLocal.apply(this, args);
  };
  const B = 16, COLS = 12, ROWS = 7, STAMP_ROW = 3;
  const c = document.createElement("canvas");
  c.width = COLS * B; c.height = ROWS * B;
  const g = c.getContext("2d", { willReadFrequently: true });
  function readStamp(v) {
    // The blocks' corner of the picture, at the painted 640x480 scale.
    const sx = v.videoWidth / 640, sy = v.videoHeight / 480;
    g.drawImage(v, 0, 0, c.width * sx, c.height * sy, 0, 0, c.width, c.height);
    const px = g.getImageData(0, 0, c.width, c.height).data;
    const bit = (col, row) => {
      let sum = 0;
      for (let y = row * B + 4; y < row * B + 12; y++)
        for (let x = col * B + 4; x < col * B + 12; x++) sum += px[(y * c.width + x) * 4 + 1];
      return sum / 64 > 128;
    };
    for (let col = 0; col < COLS; col++) if (bit(col, 0) !== (col % 2 === 0)) return null;
    let ms = 0;
    for (let i = 0; i < 48; i++) ms = ms * 2 + (bit(i % COLS, STAMP_ROW + Math.floor(i / COLS)) ? 1 : 0);
    return ms;
  }
  function watch(v) {
    const step = (now, meta) => {
      const called = performance.timeOrigin + performance.now(); // before the readback's cost
      if (bench.firstFrameAt === null) bench.firstFrameAt = now;
      const stamp = readStamp(v);
      if (stamp === null) bench.unread++;
      else {
        bench.seen.push(called - stamp);
        bench.estimated.push(performance.timeOrigin + meta.expectedDisplayTime - stamp);
        if (meta.receiveTime !== undefined)
          bench.stages.push([performance.timeOrigin + meta.receiveTime - stamp,
            1000 * (meta.processingDuration || 0), meta.presentationTime - meta.receiveTime,
            called - performance.timeOrigin - meta.presentationTime,
            meta.expectedDisplayTime - meta.presentationTime]);
      }
      v.requestVideoFrameCallback(step);
    };
    v.requestVideoFrameCallback(step);
  }
  document.addEventListener("DOMContentLoaded", () => watch(document.querySelector("video#remote, video#video")));
}

function percentile(xs, p) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] : NaN;
}

async function measure(browser, subject, url) {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.addInitScript(instrument);
  await page.goto(url);
  if (subject === "reference") await page.evaluate(() => call());
  await page.waitForFunction(() => window.bench.firstFrameAt !== null, null, { timeout: 20000 });
  await page.waitForTimeout(2000);
  await page.evaluate(() => { window.bench.estimated = []; window.bench.seen = []; window.bench.unread = 0; window.bench.stages = []; });
  await page.waitForTimeout(SECONDS * 1000);
  const run = await page.evaluate(async () => {
    const b = window.bench;
    const pc = window.campeerViewer ? window.campeerViewer.pc : window.peer;
    let jitter = null;
    (await pc.getStats()).forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "video")
        jitter = (1000 * s.jitterBufferDelay) / s.jitterBufferEmittedCount;
    });
    return { estimated: b.estimated, seen: b.seen, unread: b.unread, stages: b.stages, firstFrameMs: b.firstFrameAt - b.offerAt, jitterMs: jitter };
  });
  await context.close();
  if (run.seen.length < SECONDS * 10) throw new Error(`${subject}: only ${run.seen.length} stamps read (${run.unread} unreadable)`);
  return { subject, frames: run.seen.length, unread: run.unread,
    p50: percentile(run.seen, 50), p95: percentile(run.seen, 95),
    displayP50: percentile(run.estimated, 50), displayP95: percentile(run.estimated, 95),
    firstFrameMs: run.firstFrameMs, jitterBufferMs: run.jitterMs, stagesP50: stagesP50(run.stages) };
}

// The p50 of each stage, ms, from requestVideoFrameCallback's metadata: stamp → last
// packet received, decode, received → presented to the compositor, presented → the
// callback, and (Chromium's estimate) presented → expected on the display.
function stagesP50(stages) {
  const names = ["toReceived", "decode", "receivedToPresented", "presentedToCallback", "presentedToDisplay"];
  return Object.fromEntries(names.map((n, i) => [n, Math.round(10 * percentile(stages.map((s) => s[i]), 50)) / 10]));
}

function serveReference() {
  const page = fs.readFileSync(path.join(__dirname, "loopback.html"));
  const server = http.createServer((req, res) => { res.setHeader("content-type", "text/html"); res.end(page); });
  return new Promise((ok) => server.listen(0, "127.0.0.1", () => { server.unref(); ok(`http://127.0.0.1:${server.address().port}/`); }));
}

(async () => {
  if (!CAMPEER) throw new Error("CAMPEER (campeer's viewer URL with #token=) is not set");
  const reference = await serveReference();
  const browser = await launch();
  const runs = [];
  try {
    for (let i = 0; i < RUNS; i++) {
      for (const [subject, url] of [["campeer", CAMPEER], ["reference", reference]]) {
        const r = await measure(browser, subject, url);
        console.log(JSON.stringify(r));
        runs.push(r);
      }
    }
  } finally {
    await browser.close();
  }
  const median = (xs) => percentile(xs, 50);
  const summary = {};
  for (const subject of ["campeer", "reference"]) {
    const rs = runs.filter((r) => r.subject === subject);
    summary[subject] = Object.fromEntries(["p50", "p95", "displayP50", "displayP95", "firstFrameMs", "jitterBufferMs"]
      .map((k) => [k, rs.map((r) => Math.round(r[k]))]));
    summary[subject].median = Object.fromEntries(Object.entries(summary[subject]).map(([k, v]) => [k, median(v)]));
  }
  console.log("SUMMARY " + JSON.stringify(summary));
})().catch((e) => { console.error("FAIL: " + (e.stack || e)); process.exit(1); });
