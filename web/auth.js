// campeer's access check in the page: the room token, and the proof offers and answers
// carry (a=x-campeer-auth: lowercase hex HMAC-SHA256, keyed with the token, over
// "<first ice-ufrag> <first fingerprint>"). Plain JavaScript, not crypto.subtle: the
// page is often opened over plain http on a LAN, where browsers hide crypto.subtle.
// Loaded by viewer.html; Node's tests require() it.
"use strict";

const campeerAuth = (() => {
  const K = new Uint32Array([
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
  ]);

  // SHA-256 (FIPS 180-4) of a byte array.
  function sha256(bytes) {
    const bitLen = bytes.length * 8;
    const padded = new Uint8Array(((bytes.length + 9 + 63) >> 6) << 6);
    padded.set(bytes);
    padded[bytes.length] = 0x80;
    const view = new DataView(padded.buffer);
    view.setUint32(padded.length - 8, Math.floor(bitLen / 0x100000000));
    view.setUint32(padded.length - 4, bitLen >>> 0);
    const h = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
    const w = new Uint32Array(64);
    const rotr = (x, n) => (x >>> n) | (x << (32 - n));
    for (let off = 0; off < padded.length; off += 64) {
      for (let i = 0; i < 16; i++) w[i] = view.getUint32(off + 4 * i);
      for (let i = 16; i < 64; i++) {
        const s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >>> 3);
        const s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >>> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
      }
      let [a, b, c, d, e, f, g, hh] = h;
      for (let i = 0; i < 64; i++) {
        const t1 = hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
        const t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        hh = g; g = f; f = e; e = (d + t1) >>> 0; d = c; c = b; b = a; a = (t1 + t2) >>> 0;
      }
      h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
    }
    const out = new Uint8Array(32);
    for (let i = 0; i < 8; i++) new DataView(out.buffer).setUint32(4 * i, h[i]);
    return out;
  }

  // HMAC-SHA256 (RFC 2104) as lowercase hex.
  function hmacHex(keyText, messageText) {
    const enc = new TextEncoder();
    let key = enc.encode(keyText);
    if (key.length > 64) key = sha256(key);
    const block = (pad) => {
      const b = new Uint8Array(64).fill(pad);
      key.forEach((k, i) => { b[i] ^= k; });
      return b;
    };
    const concat = (x, y) => { const z = new Uint8Array(x.length + y.length); z.set(x); z.set(y, x.length); return z; };
    const inner = sha256(concat(block(0x36), enc.encode(messageText)));
    const mac = sha256(concat(block(0x5c), inner));
    return Array.from(mac, (v) => v.toString(16).padStart(2, "0")).join("");
  }

  const ATTRIBUTE = "x-campeer-auth";
  function values(sdp, name) {
    return sdp.split(/\r?\n/).filter((l) => l.startsWith("a=" + name + ":")).map((l) => l.slice(name.length + 3).trim());
  }
  // What the proof covers, or null when the SDP has no ufrag or names several certificates.
  function signedText(sdp) {
    const [ufrag] = values(sdp, "ice-ufrag");
    const prints = values(sdp, "fingerprint");
    if (!ufrag || !prints.length || prints.some((p) => p.toLowerCase() !== prints[0].toLowerCase())) return null;
    return ufrag + " " + prints[0];
  }
  function prove(token, sdp) {
    const text = signedText(sdp);
    return text === null ? null : hmacHex(token, text);
  }
  // The SDP with its proof as a session-level line, before the first m= section.
  function withProof(token, sdp) {
    const proof = prove(token, sdp);
    if (proof === null) return sdp;
    const eol = sdp.includes("\r\n") ? "\r\n" : "\n";
    const at = sdp.indexOf(eol + "m=");
    const line = "a=" + ATTRIBUTE + ":" + proof;
    return at < 0 ? sdp + line + eol : sdp.slice(0, at + eol.length) + line + eol + sdp.slice(at + eol.length);
  }
  function verify(token, sdp) {
    const proof = prove(token, sdp);
    const [claimed] = values(sdp, ATTRIBUTE);
    return proof !== null && claimed !== undefined && claimed.toLowerCase() === proof;
  }

  // The token: from the URL fragment (#token=…, never sent to any server), else the one
  // remembered for this origin. The fragment is then taken out of the address bar.
  const STORAGE_KEY = "campeer-token";
  function tokenFromPage(location, storage, history) {
    const fromUrl = new URLSearchParams(location.hash.replace(/^#/, "")).get("token");
    if (fromUrl) {
      try { storage.setItem(STORAGE_KEY, fromUrl); } catch (_) {}
      if (history) history.replaceState(null, "", location.pathname + location.search);
      return fromUrl;
    }
    try { return storage.getItem(STORAGE_KEY); } catch (_) { return null; }
  }
  function remember(storage, token) {
    try { if (token) storage.setItem(STORAGE_KEY, token); else storage.removeItem(STORAGE_KEY); } catch (_) {}
  }

  return { sha256, hmacHex, prove, withProof, verify, tokenFromPage, remember };
})();

if (typeof module !== "undefined") module.exports = campeerAuth;
