//! Debian's ffmpeg as the reference: it makes the test pictures and the tone, and decodes
//! a JPEG the way a player would. Everything goes through pipes, so that tests running at
//! once share no file.

#![allow(dead_code)] // the benches include this file alone and use part of it

use std::io::Write;
use std::process::{Command, Stdio};

/// Runs ffmpeg with `args` (whose output must be `-`), `input` on its stdin; returns what
/// it wrote to stdout.
fn run(args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut child = Command::new("ffmpeg")
        .args(["-v", "error"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("ffmpeg runs (scripts/setup installs it)");
    let mut stdin = child.stdin.take().expect("piped stdin");
    // Written from another thread: ffmpeg may fill stdout before it has read all of stdin.
    let out = std::thread::scope(|s| {
        s.spawn(move || stdin.write_all(input).expect("ffmpeg reads its input"));
        child.wait_with_output().expect("ffmpeg's output")
    });
    assert!(out.status.success(), "ffmpeg {args:?}: {}", out.status);
    out.stdout
}

/// One frame of ffmpeg's testsrc2 pattern at `width`x`height`, written as `format` says
/// (e.g. `["-pix_fmt", "nv12", "-f", "rawvideo"]`).
pub fn testsrc2(width: u32, height: u32, format: &[&str]) -> Vec<u8> {
    let source = format!("testsrc2=size={width}x{height}:rate=1");
    let mut args = vec!["-f", "lavfi", "-i", &source, "-frames:v", "1"];
    args.extend_from_slice(format);
    args.push("-");
    run(&args, &[])
}

/// The pattern's frame in a raw `pix_fmt` (ffmpeg's name: yuv420p, nv12, yuyv422, ...).
pub fn testsrc2_raw(width: u32, height: u32, pix_fmt: &str) -> Vec<u8> {
    testsrc2(width, height, &["-pix_fmt", pix_fmt, "-f", "rawvideo"])
}

/// The pattern's frame as a JPEG of quality `q` (ffmpeg's -q:v: 2 is the best).
pub fn testsrc2_jpeg(width: u32, height: u32, q: u8) -> Vec<u8> {
    testsrc2(width, height, &["-q:v", &q.to_string(), "-f", "mjpeg"])
}

/// ffmpeg's own decode of `jpeg`, in video-range I420 (yuv420p), as a camera's would be.
pub fn jpeg_to_i420(jpeg: &[u8]) -> Vec<u8> {
    run(
        &[
            "-f", "mjpeg", "-i", "-", "-pix_fmt", "yuv420p", "-f", "rawvideo", "-",
        ],
        jpeg,
    )
}

/// `secs` seconds of a `hz` sine at 48 kHz, mono, as raw signed 16-bit little-endian.
pub fn sine_s16le(hz: u32, secs: u32) -> Vec<u8> {
    let source = format!("sine=frequency={hz}:sample_rate=48000:duration={secs}");
    run(
        &["-f", "lavfi", "-i", &source, "-f", "s16le", "-ac", "1", "-"],
        &[],
    )
}
