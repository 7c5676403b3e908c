// Capture → send while a second viewer connects, with that viewer's browser already
// running: campeer's own connect cost, without a browser's launch on the same cores (a
// board's viewers are elsewhere). One Chromium, two contexts: A watches throughout; B has
// loaded the page, watched once and stopped before the runs. Each run: B stopped for
// QUIET_MS (the 128-frame window slides past its last session), `/status` read ("steady");
// then B's Play pressed (a fresh offer: a new session, ICE, DTLS, a keyframe) and `/status`
// read WINDOW_MS later ("connecting"). Per window also: the capture drops in it (the test
// pattern's frames its thread skipped or the encoder did not take), the CPU each of
// campeer's threads used (/proc/PID/task), so the connect's cost shows by stage, and the
// browser's CPU (the viewer's own load, which a board would not carry).
// CAMPEER: the viewer URL with #token=; PID: campeer's; RUNS (default 3); LABEL (printed);
// TRACE=1: /status polled every 50 ms in the connecting window, printing when drops came.
// Prints one line per session and window, and one with each window's CPU. Run by scripts/bench.
const fs = require("fs");
const { launch } = require("../../tests/browser/chromium");

const CAMPEER = process.env.CAMPEER, PID = process.env.PID, LABEL = process.env.LABEL || "";
const RUNS = Number(process.env.RUNS || 3);
const QUIET_MS = 6000, WINDOW_MS = 4500;
// TRACE=1: when in the connecting window the drops come, against campeer's log stamps.
const TRACE = Boolean(process.env.TRACE);
const HZ = 100; // USER_HZ on every Linux this runs on

async function status() {
  const url = new URL(CAMPEER);
  const token = new URLSearchParams(url.hash.slice(1)).get("token");
  const res = await fetch(new URL("/status", url), { headers: { authorization: `Bearer ${token}` } });
  if (!res.ok) throw new Error(`/status: HTTP ${res.status}`);
  return res.json();
}

// CPU ticks per campeer thread, by thread id (names repeat: tokio's workers).
function threadTicks() {
  const out = new Map();
  for (const tid of fs.readdirSync(`/proc/${PID}/task`)) {
    let stat;
    try { stat = fs.readFileSync(`/proc/${PID}/task/${tid}/stat`, "utf8"); } catch { continue; } // ended
    const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    out.set(tid, { name, ticks: Number(f[11]) + Number(f[12]) });
  }
  return out;
}

// CPU ticks of this script's descendants (the browser's processes): the viewer's own load,
// on these cores here, elsewhere on a board's network.
function browserTicks() {
  const procs = [];
  for (const pid of fs.readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      procs.push({ pid: Number(pid), ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) });
    } catch { /* ended */ }
  }
  const mine = new Set([process.pid]);
  let total = 0;
  for (let grew = true; grew;) {
    grew = false;
    for (const p of procs) if (!mine.has(p.pid) && mine.has(p.ppid)) { mine.add(p.pid); total += p.ticks; grew = true; }
  }
  return total;
}

// ms of CPU per thread name over a window, busiest first.
function cpuByName(before, after) {
  const byName = {};
  for (const [tid, a] of after) {
    const ms = ((a.ticks - (before.get(tid)?.ticks ?? 0)) * 1000) / HZ;
    byName[a.name] = (byName[a.name] || 0) + ms;
  }
  return Object.entries(byName).filter(([, ms]) => ms > 0).sort((x, y) => y[1] - x[1]);
}

function report(when, s, dropsBefore, cpu, browserMs) {
  const drops = s.media.video.frames_dropped - dropsBefore;
  for (const x of s.sessions.filter((x) => x.capture_to_send_ms)) {
    const c = x.capture_to_send_ms;
    console.log(`${LABEL}, ${when}: capture→send p50 ${c.p50} ms, p95 ${c.p95} ms, max ${c.max} ms ` +
      `(session ${x.id}, ${c.frames} frames; capture drops in the window: ${drops})`);
  }
  console.log(`${LABEL}, ${when}: campeer CPU by thread, ms in ${WINDOW_MS} ms: ` +
    cpu.map(([n, ms]) => `${n} ${Math.round(ms)}`).join(", ") + `; RSS ${rssMb()} MB; the browser's CPU ${browserMs} ms`);
}

function rssMb() {
  const kb = /VmRSS:\s*(\d+)/.exec(fs.readFileSync(`/proc/${PID}/status`, "utf8"))[1];
  return (Number(kb) / 1024).toFixed(1);
}

// Polls /status for WINDOW_MS and prints when capture drops were counted, in ms after Play.
async function traceDrops(pressed, drops) {
  const seen = [];
  while (Date.now() - pressed < WINDOW_MS) {
    const now = (await status()).media.video.frames_dropped;
    if (now > drops) seen.push(`+${Date.now() - pressed} ms: ${now - drops}`);
    drops = now;
    await new Promise((ok) => setTimeout(ok, 50));
  }
  console.log(`${LABEL}, Play pressed at ${new Date(pressed).toISOString()}; drops counted ${seen.join(", ") || "none"}`);
}

// Waits until the page's video element has shown a frame.
function playing(page) {
  return page.waitForFunction(() => {
    const v = document.querySelector("video");
    return v && v.currentTime > 0;
  }, null, { timeout: 20000 });
}

(async () => {
  if (!CAMPEER || !PID) throw new Error("CAMPEER (the viewer URL with #token=) and PID must be set");
  const browser = await launch();
  try {
    const watching = await (await browser.newContext()).newPage();
    await watching.goto(CAMPEER);
    await playing(watching);
    const second = await (await browser.newContext()).newPage();
    await second.goto(CAMPEER);
    await playing(second);
    await second.click("#play"); // stop: B's renderer stays up, its session ends
    for (let run = 0; run < RUNS; run++) {
      await second.waitForTimeout(QUIET_MS - WINDOW_MS);
      let drops = (await status()).media.video.frames_dropped, cpu = threadTicks(), b = browserTicks();
      await second.waitForTimeout(WINDOW_MS);
      report("steady, one viewer", await status(), drops, cpuByName(cpu, threadTicks()), (browserTicks() - b) * 1000 / HZ);
      drops = (await status()).media.video.frames_dropped; cpu = threadTicks(); b = browserTicks();
      const pressed = Date.now();
      await second.click("#play"); // play: a fresh offer from the running browser
      if (TRACE) await traceDrops(pressed, drops);
      else await second.waitForTimeout(WINDOW_MS);
      const s = await status();
      report("a second viewer connecting", s, drops, cpuByName(cpu, threadTicks()), (browserTicks() - b) * 1000 / HZ);
      await playing(second);
      await second.click("#play");
    }
  } finally {
    await browser.close();
  }
})().catch((e) => { console.error("FAIL: " + (e.stack || e)); process.exit(1); });
