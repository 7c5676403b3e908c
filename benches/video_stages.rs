//! What the video stages cost, in CPU time, on this machine: the test pattern per frame
//! (only what changes, against painting the whole picture), and the VP8 encoder at 30
//! fps paced like a camera, by picture size and libvpx threads (what `video.threads =
//! "auto"` decides from). Encoded frames are ffmpeg's moving testsrc2, so every
//! macroblock changes, as with a camera's noise. Run by hand or by `scripts/bench`;
//! figures go to BENCHMARKS.md, never into assertions.

use std::process::Command;
use std::time::{Duration, Instant};

use campeer::media::I420Frame;
use campeer::media::video::test_pattern::TestPattern;
use campeer::media::video::vp8::{Vp8Encoder, Vp8Settings};

const FPS: u32 = 30;

fn cpu_seconds(clock: libc::clockid_t) -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

fn frames(w: u32, h: u32, n: u32) -> Vec<I420Frame> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size={w}x{h}:rate={FPS}"))
        .args([
            "-frames:v",
            &n.to_string(),
            "-pix_fmt",
            "yuv420p",
            "-f",
            "rawvideo",
            "-",
        ])
        .output()
        .expect("ffmpeg runs (scripts/setup installs it)");
    assert!(out.status.success());
    let size = out.stdout.len() / n as usize;
    out.stdout
        .chunks_exact(size)
        .map(|c| I420Frame::from_data(w, h, c.to_vec()).expect("whole I420 frames"))
        .collect()
}

fn pattern(w: u32, h: u32) {
    let mut p = TestPattern::new(w, h);
    let mut f = I420Frame::new(w, h);
    p.draw(&mut f, 0, 0);
    let per_frame = |step: &mut dyn FnMut(u32)| {
        let (c0, n) = (cpu_seconds(libc::CLOCK_THREAD_CPUTIME_ID), 3000u32);
        for k in 0..n {
            step(k);
        }
        (cpu_seconds(libc::CLOCK_THREAD_CPUTIME_ID) - c0) / f64::from(n)
    };
    let update = per_frame(&mut |k| p.update(&mut f, k, 1_800_000_000_000 + u64::from(k)));
    let mut p2 = TestPattern::new(w, h);
    let full = per_frame(&mut |k| p2.draw(&mut f, k, 1_800_000_000_000 + u64::from(k)));
    println!(
        "| test pattern {w}x{h}, only what changes | {:.1} µs/frame | {:.2} % of a core at {FPS} fps |",
        update * 1e6,
        update * f64::from(FPS) * 100.0
    );
    println!(
        "| test pattern {w}x{h}, whole picture | {:.1} µs/frame | {:.2} % of a core at {FPS} fps |",
        full * 1e6,
        full * f64::from(FPS) * 100.0
    );
}

/// Encodes `seconds` of `input` at 30 fps, sleeping between frames as a live source
/// does (idle libvpx threads spin in those gaps, and that is what costs).
fn encode(input: &[I420Frame], threads: u32, seconds: u32) {
    let (w, h) = input[0].size();
    let mut enc = Vp8Encoder::new(&Vp8Settings {
        width: w,
        height: h,
        target_kbps: if w > 640 { 2500 } else { 1000 },
        frame_rate: FPS,
        max_keyframe_distance: 300,
        cpu_used: 8,
        threads,
    })
    .expect("encoder");
    let period = Duration::from_secs(1) / FPS;
    let (start, c0) = (Instant::now(), cpu_seconds(libc::CLOCK_PROCESS_CPUTIME_ID));
    let (mut busy, mut worst, n) = (Duration::ZERO, Duration::ZERO, seconds * FPS);
    for k in 0..n {
        let t = Instant::now();
        enc.encode(
            &input[k as usize % input.len()],
            i64::from(k) * 3000,
            false,
            &mut |_, _| {},
        )
        .expect("encode");
        busy += t.elapsed();
        worst = worst.max(t.elapsed());
        let due = start + period * (k + 1);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
    }
    let cpu = cpu_seconds(libc::CLOCK_PROCESS_CPUTIME_ID) - c0;
    println!(
        "| VP8 {w}x{h}@{FPS}, {threads} thread(s) | {:.1} ms/frame (worst {:.1}) | {:.1} % of a core |",
        busy.as_secs_f64() * 1e3 / f64::from(n),
        worst.as_secs_f64() * 1e3,
        cpu / start.elapsed().as_secs_f64() * 100.0
    );
}

fn main() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("| stage ({cores} cores) | time | CPU |");
    println!("|---|---|---|");
    pattern(640, 480);
    pattern(1280, 720);
    for (w, h) in [(640, 480), (1280, 720)] {
        let input = frames(w, h, 60);
        for threads in [1, 2] {
            encode(&input, threads, 5);
        }
    }
}
