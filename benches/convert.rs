//! Frames per second of the camera conversions at 640x480 and 1280x720, with a plain
//! copy of the same frame as the in-run baseline (the machine is shared and noisy).
//! Frames are recorded by Debian's ffmpeg from its testsrc2 pattern.

#[path = "../tests/common/ffmpeg.rs"]
mod ffmpeg;

use std::hint::black_box;
use std::time::{Duration, Instant};

use campeer::media::I420Frame;
use campeer::media::video::convert::{Converter, PixelFormat};

/// Runs `f` for about a second; returns calls per second.
fn rate(mut f: impl FnMut()) -> f64 {
    let (start, mut n) = (Instant::now(), 0u32);
    while start.elapsed() < Duration::from_secs(1) {
        f();
        n += 1;
    }
    f64::from(n) / start.elapsed().as_secs_f64()
}

fn main() {
    println!("| size | conversion | frames/s | copy of the same bytes, frames/s | ratio |");
    println!("|---|---|---|---|---|");
    for (w, h) in [(640, 480), (1280, 720)] {
        let yuyv = ffmpeg::testsrc2_raw(w, h, "yuyv422");
        let jpeg = ffmpeg::testsrc2_jpeg(w, h, 3);
        let mut frame = I420Frame::new(w, h);
        let mut converter = Converter::default();
        for (name, format, src) in [
            ("YUYV→I420", PixelFormat::Yuyv, &yuyv),
            ("MJPEG→I420", PixelFormat::Mjpeg, &jpeg),
        ] {
            let len = frame.data().len();
            let mut copy = vec![0u8; len];
            let baseline = rate(|| {
                copy.copy_from_slice(black_box(&yuyv[..len]));
                black_box(&copy);
            });
            let fps = rate(|| {
                converter
                    .convert(format, black_box(src), 0, &mut frame)
                    .expect("converts");
                black_box(frame.data());
            });
            println!(
                "| {w}x{h} | {name} | {fps:.0} | {baseline:.0} | {:.3} |",
                fps / baseline
            );
        }
    }
}
