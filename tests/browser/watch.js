// Drives Debian's Chromium (never a downloaded one) through playwright-core and checks,
// from the page's own getStats() and pixels, that campeer's stream plays. Run by
// tests/browser_watches_campeer.rs; exits non-zero with a reason on any failure.
//
// Environment: MODE (viewer | viewer-external | reference | mdns | two-tabs | reloads |
// token-needed | forged-answer | https), PAGE (URL
// to open; for reference and viewer-external, the external relay's URL, and the page is
// served from here), WIDTH, HEIGHT (configured video size), OUT (folder for screenshots),
// LOADS (reloads: how many fresh loads, 20 by default), TOKEN (campeer's viewer token: it
// goes in the page's #token= fragment, except in token-needed, where it is typed).
const { launch } = require("./chromium");
const { readCounterInPage, stats, waitFor, answeredRtx } = require("./page");
const fs = require("fs");
const http = require("http");
const path = require("path");

const { MODE, OUT, TOKEN } = process.env;
let PAGE = process.env.PAGE;
const WIDTH = Number(process.env.WIDTH), HEIGHT = Number(process.env.HEIGHT);
const LOADS = Number(process.env.LOADS || 20);

function fail(why) { console.error("FAIL: " + why); process.exit(1); }

async function checkPlays(page, name) {
  const first = await waitFor(page, "video frames decoded", (s) => s.video && s.video.framesDecoded > 0, 20000);
  // A decoded frame reaches the element a moment later (videoWidth is 0 until then).
  const c0 = await (await page.waitForFunction(readCounterInPage, null, { timeout: 5000 })).jsonValue();
  const t0 = Date.now();
  await page.waitForTimeout(5000);
  const last = await stats(page);
  const c1 = await page.evaluate(readCounterInPage);
  const secs = (Date.now() - t0) / 1000;
  const decoded = last.video.framesDecoded - first.video.framesDecoded;
  console.log(`${name}: ${decoded} frames in ${secs.toFixed(1)} s, ${last.video.frameWidth}x${last.video.frameHeight}, ` +
    `audio samples ${first.audio && first.audio.totalSamplesReceived} -> ${last.audio && last.audio.totalSamplesReceived}, counter ${c0} -> ${c1}`);
  if (decoded < 60) fail(`${name}: only ${decoded} frames decoded in ${secs} s`);
  if (last.video.frameWidth !== WIDTH || last.video.frameHeight !== HEIGHT)
    fail(`${name}: frames are ${last.video.frameWidth}x${last.video.frameHeight}, configured ${WIDTH}x${HEIGHT}`);
  if (!last.audio || !(last.audio.totalSamplesReceived > (first.audio ? first.audio.totalSamplesReceived : 0)))
    fail(`${name}: audio samples did not grow`);
  if (c0 === null || c1 === null || !(c1 > c0)) fail(`${name}: frame counter did not increase (${c0} -> ${c1})`);
  await page.screenshot({ path: path.join(OUT, name + ".png") });
}

// campeer's latency header extensions: the page offers playout-delay (Chromium's default)
// and abs-capture-time (which the page asks for), campeer's answer takes both, and the
// video's synchronization source reports campeer's capture time.
const PLAYOUT_DELAY = "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay";
const ABS_CAPTURE_TIME = "http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time";
async function checkHeaderExtensions(page, name) {
  const got = await page.evaluate(() => {
    const pc = window.campeerViewer.pc;
    const receiver = pc.getReceivers().find((r) => r.track.kind === "video");
    return { offer: pc.localDescription.sdp, answer: pc.remoteDescription.sdp,
      sources: receiver.getSynchronizationSources() };
  });
  for (const uri of [PLAYOUT_DELAY, ABS_CAPTURE_TIME]) {
    const line = new RegExp("^a=extmap:\\d+ " + uri.replace(/[.\/]/g, "\\$&") + "$", "m");
    if (!line.test(got.offer)) fail(`${name}: the page's offer lacks ${uri}`);
    if (!line.test(got.answer)) fail(`${name}: campeer's answer does not take ${uri}`);
  }
  const source = got.sources.find((s) => s.captureTimestamp !== undefined);
  console.log(`${name}: synchronization sources ${JSON.stringify(got.sources)}`);
  if (!source) fail(`${name}: no captureTimestamp in the video's synchronization sources`);
  // Chromium gives captureTimestamp in ms since the NTP epoch (1900); `timestamp` is when
  // the frame was delivered, in Unix ms.
  const age = source.timestamp - (source.captureTimestamp - 2208988800000);
  console.log(`${name}: the frame was captured ${age.toFixed(0)} ms before Chromium delivered it`);
  if (!(age > -500 && age < 5000)) fail(`${name}: captureTimestamp ${source.captureTimestamp} is ${age} ms from delivery`);
}

// RTX: campeer's answer pairs an rtx codec with VP8 and groups an RTX SSRC with the video
// SSRC (a=ssrc-group:FID), and Chromium reports that SSRC as the video's rtxSsrc.
// (Loss, and packets coming back on it, are tests/lost_packets_come_back_as_rtx.rs.)
async function checkRtx(page, name) {
  const answer = await page.evaluate(() => window.campeerViewer.pc.remoteDescription.sdp);
  const got = answeredRtx(answer);
  if (got.missing) fail(`${name}: campeer's answer has no RTX for VP8:\n${got.missing}`);
  const v = (await stats(page)).video;
  console.log(`${name}: RTX payload type ${got.rtx}, SSRC ${got.rtxSsrc} for ${got.ssrc}; ` +
    `inbound-rtp ssrc ${v.ssrc} rtxSsrc ${v.rtxSsrc}, ${v.retransmittedPacketsReceived} retransmitted`);
  if (String(v.ssrc) !== got.ssrc || String(v.rtxSsrc) !== got.rtxSsrc)
    fail(`${name}: inbound-rtp ssrc ${v.ssrc} rtxSsrc ${v.rtxSsrc}, the answer's FID ${got.ssrc} ${got.rtxSsrc}`);
}

// A page for an external relay must come from an http origin (getUserMedia needs a
// secure context, which 127.0.0.1 is), so it is served from here with the Socket.IO
// client campeer embeds.
function servePage(file) {
  const files = {
    "/": [file, "text/html"],
    "/forger": [path.join(__dirname, "forger.html"), "text/html"],
    "/socket.io.min.js": [path.join(__dirname, "../../web/socket.io.min.js"), "text/javascript"],
    "/auth.js": [path.join(__dirname, "../../web/auth.js"), "text/javascript"],
  };
  const server = http.createServer((req, res) => {
    const hit = files[req.url.split("?")[0]];
    if (!hit) { res.statusCode = 404; return res.end(); }
    res.setHeader("content-type", hit[1]);
    res.end(fs.readFileSync(hit[0]));
  });
  return new Promise((ok) => server.listen(0, "127.0.0.1", () => ok(server)));
}

(async () => {
  const served = { reference: path.join(__dirname, "reference.html"),
    "viewer-external": path.join(__dirname, "../../web/viewer.html"),
    "forged-answer": path.join(__dirname, "../../web/viewer.html") }[MODE];
  const relay = PAGE;
  let origin = null;
  if (served) {
    const server = await servePage(served);
    origin = `http://127.0.0.1:${server.address().port}`;
    PAGE = `${origin}/?server=${encodeURIComponent(relay)}`;
    server.unref();
  }
  if (TOKEN && MODE !== "token-needed") PAGE += "#token=" + TOKEN;
  const mdns = MODE === "mdns";
  // A page without camera permission gets its host addresses hidden behind mDNS names.
  const browser = await launch(mdns ? [] : ["--use-fake-ui-for-media-stream"]);
  // A self-signed certificate, as campeer's access.tls = "self-signed" makes.
  const context = await browser.newContext(mdns ? { permissions: [] } : { ignoreHTTPSErrors: true });
  try {
    if (MODE === "reloads") {
      // Each load is a new person: a fresh context (no cache, no storage), the page's own
      // first join and call, and its first decoded frame.
      for (let i = 1; i <= LOADS; i++) {
        const fresh = await browser.newContext();
        const page = await fresh.newPage();
        const t0 = Date.now();
        await page.goto(PAGE);
        await waitFor(page, `load ${i}: video frames decoded`, (s) => s.video && s.video.framesDecoded > 0, 20000);
        const calls = await page.evaluate(() => window.campeerViewer.calls);
        console.log(`load ${i}: first frame ${Date.now() - t0} ms after navigation, ${calls} call(s)`);
        if (calls !== 1) fail(`load ${i}: the first call was not answered (${calls} calls made)`);
        await fresh.close();
      }
    } else if (MODE === "token-needed") {
      // No token in the link: the embedded server refuses the socket and the page asks.
      const page = await context.newPage();
      await page.goto(PAGE);
      await page.waitForSelector("#ask:not([hidden])", { timeout: 20000 });
      const state = await page.textContent("#state");
      if (state !== "token needed") fail(`without a token the page says ${state}`);
      await page.fill("#token", TOKEN);
      await page.click("#ask button");
      await checkPlays(page, MODE);
    } else if (MODE === "forged-answer") {
      // Another member of the room answers the page's offers with real answers of its own;
      // without campeer's proof the page must not apply them, with it the page does (so
      // the check, not something else, is what refuses).
      const forger = await context.newPage();
      await forger.goto(`${origin}/forger?server=${encodeURIComponent(relay)}`);
      await forger.waitForFunction(() => window.forger.joined, null, { timeout: 20000 });
      const victim = await context.newPage();
      victim.on("console", (m) => console.log("victim: " + m.text()));
      await victim.goto(PAGE);
      await forger.waitForFunction(() => window.forger && window.forger.answered > 0, null, { timeout: 20000 });
      await victim.waitForTimeout(500);
      const unsigned = await victim.evaluate(() => window.campeerViewer.pc && window.campeerViewer.pc.signalingState);
      console.log(`after ${await forger.evaluate(() => window.forger.answered)} unsigned answers: ${unsigned}`);
      if (unsigned !== "have-local-offer") fail(`an answer without campeer's proof was applied (${unsigned})`);
      await forger.evaluate((t) => { window.forger.token = t; }, TOKEN);
      await victim.waitForFunction(() => window.campeerViewer.pc && window.campeerViewer.pc.signalingState === "stable", null, { timeout: 20000 })
        .catch(() => fail("a signed answer was not applied either: the check refuses everything"));
      console.log("a signed answer was applied");
    } else if (MODE === "two-tabs") {
      const [a, b] = [await context.newPage(), await context.newPage()];
      await a.goto(PAGE);
      await b.goto(PAGE);
      await Promise.all([checkPlays(a, "tab-1"), checkPlays(b, "tab-2")]);
    } else {
      const page = await context.newPage();
      page.on("console", (m) => console.log("page: " + m.text()));
      await page.goto(PAGE);
      if (MODE === "reference") await page.evaluate(() => call());
      await checkPlays(page, MODE);
      if (MODE === "viewer") await checkHeaderExtensions(page, MODE);
      if (MODE === "viewer") await checkRtx(page, MODE);
      if (mdns) {
        const sent = await page.evaluate(() => window.campeerViewer.localCandidates);
        const hosts = sent.filter((c) => / typ host/.test(c));
        console.log("page's host candidates: " + JSON.stringify(hosts));
        if (!hosts.length || !hosts.every((c) => /\.local /.test(c))) fail("host candidates were not all mDNS names");
      }
    }
  } finally {
    await browser.close();
  }
  console.log("PASS");
})().catch((e) => fail(e.stack || String(e)));
