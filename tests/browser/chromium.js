// Debian's Chromium (never a downloaded one) through playwright-core, with the flags every
// browser test and bench shares.
const { chromium } = require("playwright-core");

const FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
  "--use-fake-device-for-media-stream", "--autoplay-policy=no-user-gesture-required"];

function launch(extraFlags = []) {
  return chromium.launch({ executablePath: "/usr/bin/chromium", args: FLAGS.concat(extraFlags), headless: true });
}

module.exports = { launch };
