// Offer → first decoded frame in Debian's Chromium, watch-only, on loopback: where the
// time goes, stage by stage, from the page's side (latency.js gives the total beside a
// Chromium → Chromium call). Run by scripts/bench; it asserts nothing.
//
// Environment: PAGE (campeer's viewer page, with its #token=), LOADS (fresh page loads,
// 10 by default). Each load is a fresh browser context without camera permission, so its
// host candidates are mDNS names, as a real watch-only page's are. Prints one line per
// load and the medians, all in ms from the moment the page applies its offer.
const { launch } = require("../../tests/browser/chromium");

const PAGE = process.env.PAGE;
const LOADS = Number(process.env.LOADS || 10);
// Between one load's close and the next offer.
const GAP_MS = Number(process.env.GAP_MS || 300);
const STAGES = ["local", "answer", "remote", "ice", "dtls", "frame"];

// Stamps each stage on the page's clock, without touching the page's code.
function instrument() {
  const t = (window.firstFrame = { origin: performance.timeOrigin });
  const stamp = (name) => { if (t[name] === undefined) t[name] = performance.now(); };
  const Native = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener("icecandidate", (e) => { if (e.candidate) stamp("local"); });
      this.addEventListener("track", (e) => {
        if (e.track.kind !== "video") return;
        // The page sets the element's source in its own ontrack, after this listener.
        setTimeout(() => {
          const v = document.querySelector("video");
          v.requestVideoFrameCallback(() => stamp("frame"));
        });
      });
    }
    async addIceCandidate(c) { stamp("remote"); return super.addIceCandidate(c); }
    async setLocalDescription(d) { stamp("offer"); return super.setLocalDescription(d); }
    async setRemoteDescription(d) {
      stamp("answer");
      const done = await super.setRemoteDescription(d);
      const dtls = this.getReceivers()[0].transport;
      dtls.addEventListener("statechange", () => { if (dtls.state === "connected") stamp("dtls"); });
      const ice = dtls.iceTransport;
      const iceUp = () => { if (ice.state === "connected" || ice.state === "completed") stamp("ice"); };
      ice.addEventListener("statechange", iceUp);
      iceUp();
      return done;
    }
  };
}

// Of the loads that saw the stage (Chromium may skip an ICE state).
const median = (xs) => { const s = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };

(async () => {
  const browser = await launch();
  const rows = [];
  try {
    for (let i = 1; i <= LOADS; i++) {
      const context = await browser.newContext({ permissions: [] });
      await context.addInitScript(instrument);
      const page = await context.newPage();
      await page.goto(PAGE);
      await page.waitForFunction(() => window.firstFrame && window.firstFrame.frame !== undefined, null, { timeout: 20000 });
      const t = await page.evaluate(() => window.firstFrame);
      const row = Object.fromEntries(STAGES.map((s) => [s, t[s] - t.offer]));
      rows.push(row);
      // The wall-clock time of the offer, to line the page up with campeer's log.
      const at = new Date(t.origin + t.offer).toISOString();
      console.log(`load ${i} (offer at ${at}): ` + STAGES.map((s) => `${s} ${row[s].toFixed(0)}`).join(", "));
      await context.close();
      // Past the keyframe throttle's gap between arrivals (ARRIVAL_GAP in
      // src/session/keyframe.rs, 250 ms), and well within its second between repairs.
      await new Promise((ok) => setTimeout(ok, GAP_MS));
    }
  } finally {
    await browser.close();
  }
  console.log(`first frame in Chromium (watch-only, mDNS, loopback), median of ${rows.length} loads, ms after the offer: ` +
    STAGES.map((s) => `${s} ${median(rows.map((r) => r[s])).toFixed(0)}`).join(", "));
})().catch((e) => { console.error("first_frame: " + (e.stack || e)); process.exit(1); });
