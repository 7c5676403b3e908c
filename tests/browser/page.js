// What the browser checks read back from a page that plays campeer: the test pattern's
// frame counter, the video's and audio's inbound-rtp stats, and the RTX the answer pairs
// with VP8. Shared by watch.js and lossy.js.

// The pattern's frame counter, read as campeer's read_counter does: a guard row of
// alternating 16-pixel blocks, then 24 bits, in the top-left corner. Runs in the page
// (page.evaluate(readCounterInPage), or installed by its source); null when the picture
// holds no counter (none yet, or a corrupt frame).
function readCounterInPage() {
  const v = document.querySelector("video#remote") || document.querySelector("video");
  const w = v.videoWidth, h = v.videoHeight;
  if (!w || !h) return null;
  const c = document.createElement("canvas");
  c.width = w; c.height = h;
  const g = c.getContext("2d");
  g.drawImage(v, 0, 0);
  const px = g.getImageData(0, 0, w, h).data;
  const B = 16, BITS = 24, cols = Math.min(12, Math.floor(w / B));
  const bit = (col, row) => {
    let sum = 0;
    for (let y = row * B + 4; y < row * B + 12; y++)
      for (let x = col * B + 4; x < col * B + 12; x++) {
        const i = (y * w + x) * 4;
        sum += 0.299 * px[i] + 0.587 * px[i + 1] + 0.114 * px[i + 2];
      }
    return sum / 64 > 128;
  };
  for (let col = 0; col < cols; col++) if (bit(col, 0) !== (col % 2 === 0)) return null;
  let n = 0;
  for (let i = 0; i < BITS; i++) n = n * 2 + (bit(i % cols, 1 + Math.floor(i / cols)) ? 1 : 0);
  return n;
}

// The connection state and the video's and audio's inbound-rtp stats, or null before the
// page has a peer connection.
async function stats(page) {
  return page.evaluate(async () => {
    const pc = window.campeerViewer ? window.campeerViewer.pc : window.peer;
    if (!pc) return null;
    const out = { state: pc.connectionState };
    (await pc.getStats()).forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "video") out.video = s;
      if (s.type === "inbound-rtp" && s.kind === "audio") out.audio = s;
    });
    return out;
  });
}

// Polls stats until `predicate` holds; throws naming `what` after `ms`.
async function waitFor(page, what, predicate, ms) {
  const end = Date.now() + ms;
  for (;;) {
    const s = await stats(page);
    if (s && predicate(s)) return s;
    if (Date.now() > end) throw new Error(`${what} within ${ms} ms; last stats: ${JSON.stringify(s)}`);
    await page.waitForTimeout(200);
  }
}

// The RTX an answer pairs with VP8: { vp8, rtx } payload types and the FID group's
// { ssrc, rtxSsrc }; { missing: the video section } when any part is missing.
function answeredRtx(answer) {
  const video = answer.slice(answer.indexOf("m=video")).split(/\r?\n(?=m=)/)[0];
  const vp8 = (video.match(/^a=rtpmap:(\d+) VP8\/90000/m) || [])[1];
  const rtx = (video.match(new RegExp(`^a=fmtp:(\\d+) apt=${vp8}\\r?$`, "m")) || [])[1];
  const fid = video.match(/^a=ssrc-group:FID (\d+) (\d+)/m);
  if (!vp8 || !rtx || !new RegExp(`^a=rtpmap:${rtx} rtx/90000`, "m").test(video) || !fid)
    return { missing: video };
  return { vp8: Number(vp8), rtx: Number(rtx), ssrc: fid[1], rtxSsrc: fid[2] };
}

module.exports = { readCounterInPage, stats, waitFor, answeredRtx };
