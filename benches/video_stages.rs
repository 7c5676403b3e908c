//! What the video stages cost, in CPU time, on this machine: the test pattern per frame
//! (only what changes, against painting the whole picture), and the VP8 encoder at 30
//! fps paced like a camera, by picture size and libvpx threads (what `video.threads =
//! "auto"` decides from), and with one temporal layer against two. Encoded frames are
//! ffmpeg's moving testsrc2, so every macroblock changes, as with a camera's noise. The
//! reference in the same run is GStreamer's `vp8enc` (Debian's gstreamer1.0-plugins-good,
//! the same libvpx) with the same settings on the same raw frames, paced by `fakesink
//! sync=true`. Run by hand or by `scripts/bench`; figures go to BENCHMARKS.md, never into
//! assertions.

use std::process::Command;
use std::time::{Duration, Instant};

use campeer::media::I420Frame;
use campeer::media::video::test_pattern::TestPattern;
use campeer::media::video::vp8::{self, Arch, Vp8Decoder, Vp8Encoder, Vp8Settings};

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

fn settings(w: u32, h: u32, threads: u32) -> Vp8Settings {
    layered(w, h, threads, 1)
}

/// What `video.cpu_used = "auto"` picks here.
fn auto_speed(w: u32, h: u32) -> i32 {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    vp8::speed_for(w, h, cores, Arch::HOST)
}

fn layered(w: u32, h: u32, threads: u32, temporal_layers: u8) -> Vp8Settings {
    Vp8Settings {
        width: w,
        height: h,
        target_kbps: if w > 640 { 2500 } else { 1000 },
        frame_rate: FPS,
        max_keyframe_distance: 300,
        cpu_used: auto_speed(w, h),
        threads,
        temporal_layers,
    }
}

/// What one encode of `seconds` at 30 fps cost.
struct EncodeCost {
    ms_per_frame: f64,
    worst_ms: f64,
    /// Percent of one core.
    cpu: f64,
    /// What came out, all layers and the base layer alone.
    kbps: f64,
    base_kbps: f64,
    /// Every frame as it came out, to decode after the clock stops.
    encoded: Vec<Vec<u8>>,
}

/// Encodes `seconds` of `input` at 30 fps, sleeping between frames as a live source
/// does (idle libvpx threads spin in those gaps, and that is what costs).
fn encode(input: &[I420Frame], s: &Vp8Settings, seconds: u32) -> EncodeCost {
    let mut enc = Vp8Encoder::new(s).expect("encoder");
    let (mut bytes, mut base_bytes) = (0usize, 0usize);
    let mut encoded = Vec::with_capacity((seconds * FPS) as usize);
    let period = Duration::from_secs(1) / FPS;
    let (start, c0) = (Instant::now(), cpu_seconds(libc::CLOCK_PROCESS_CPUTIME_ID));
    let (mut busy, mut worst, n) = (Duration::ZERO, Duration::ZERO, seconds * FPS);
    for k in 0..n {
        let t = Instant::now();
        enc.encode(
            &input[k as usize % input.len()],
            i64::from(k) * 3000,
            false,
            &mut |data, f| {
                encoded.push(data.to_vec());
                bytes += data.len();
                if f.temporal_id == 0 {
                    base_bytes += data.len();
                }
            },
        )
        .expect("encode");
        busy += t.elapsed();
        worst = worst.max(t.elapsed());
        let due = start + period * (k + 1);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
    }
    let cpu = cpu_seconds(libc::CLOCK_PROCESS_CPUTIME_ID) - c0;
    let kbps = |b: usize| b as f64 * 8.0 / f64::from(seconds) / 1000.0;
    EncodeCost {
        kbps: kbps(bytes),
        base_kbps: kbps(base_bytes),
        ms_per_frame: busy.as_secs_f64() * 1e3 / f64::from(n),
        worst_ms: worst.as_secs_f64() * 1e3,
        cpu: cpu / start.elapsed().as_secs_f64() * 100.0,
        encoded,
    }
}

/// Luma PSNR of what a viewer decodes against what went in, over every frame, dB.
fn psnr(input: &[I420Frame], encoded: &[Vec<u8>]) -> f64 {
    let mut dec = Vp8Decoder::new().expect("decoder");
    let (mut squared, mut samples) = (0f64, 0f64);
    for (k, data) in encoded.iter().enumerate() {
        let Some(img) = dec.decode(data).expect("decode") else {
            continue;
        };
        let source = &input[k % input.len()];
        let w = source.width() as usize;
        for (row, src) in source.y().chunks_exact(w).enumerate() {
            let out = &img.y[row * img.stride..row * img.stride + w];
            for (a, b) in src.iter().zip(out) {
                squared += (f64::from(*a) - f64::from(*b)).powi(2);
            }
            samples += w as f64;
        }
    }
    10.0 * (255f64.powi(2) / (squared / samples)).log10()
}

/// GStreamer's `vp8enc` on the same raw frames (written to `raw`), with campeer's
/// encoder settings spelled as its properties, paced at 30 fps by the sink's clock.
/// Percent of one core over the whole `gst-launch-1.0` process, start-up included.
fn gst_vp8enc(raw: &std::path::Path, s: &Vp8Settings) -> f64 {
    let pipeline = format!(
        "filesrc location={} ! rawvideoparse width={} height={} format=i420 framerate={FPS}/1 \
         ! vp8enc deadline=1 cpu-used={} threads={} end-usage=cbr target-bitrate={} \
         lag-in-frames=0 error-resilient=default min-quantizer=4 max-quantizer=56 \
         undershoot=95 overshoot=15 buffer-size=1000 buffer-initial-size=500 \
         buffer-optimal-size=600 dropframe-threshold=0 keyframe-max-dist={} auto-alt-ref=false \
         noise-sensitivity=0 static-threshold=1 max-intra-bitrate={} ! fakesink sync=true",
        raw.display(),
        s.width,
        s.height,
        s.cpu_used,
        s.threads,
        s.target_kbps * 1000,
        s.max_keyframe_distance,
        (300 * s.frame_rate / 10).max(300),
    );
    let start = Instant::now();
    let mut child = Command::new("gst-launch-1.0")
        .arg("-q")
        .args(pipeline.split_whitespace())
        .spawn()
        .expect("gst-launch-1.0 runs (scripts/setup bench installs it)");
    // SAFETY: wait4 fills the status and the rusage it is given, for our own child.
    let (status, usage) = unsafe {
        let (mut status, mut usage) = (0, std::mem::zeroed::<libc::rusage>());
        libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage);
        (status, usage)
    };
    let _ = child.try_wait();
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "gst-launch-1.0 failed"
    );
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (secs(usage.ru_utime) + secs(usage.ru_stime)) / start.elapsed().as_secs_f64() * 100.0
}

fn main() {
    const SECONDS: u32 = 5;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("| stage ({cores} cores) | time | CPU |");
    println!("|---|---|---|");
    pattern(640, 480);
    pattern(1280, 720);
    println!();
    println!(
        "| VP8 at {FPS} fps, same frames | campeer ms/frame (worst) | campeer CPU | gst vp8enc CPU | campeer / gst |"
    );
    println!("|---|---|---|---|---|");
    // gst scans its plugins on its first run; not part of what is measured.
    let _ = Command::new("gst-inspect-1.0").arg("vp8enc").output();
    let raw = std::env::temp_dir().join(format!("campeer-bench-{}.yuv", std::process::id()));
    for (w, h) in [(640, 480), (1280, 720)] {
        let input = frames(w, h, SECONDS * FPS);
        let bytes: Vec<u8> = input
            .iter()
            .flat_map(|f| f.data().iter().copied())
            .collect();
        std::fs::write(&raw, bytes).expect("write the raw frames for gst");
        for threads in [1, 2] {
            let ours = encode(&input, &settings(w, h, threads), SECONDS);
            let gst = gst_vp8enc(&raw, &settings(w, h, threads));
            println!(
                "| {w}x{h}, {threads} thread(s) | {:.1} ({:.1}) | {:.1} % | {:.1} % | {:.2} |",
                ours.ms_per_frame,
                ours.worst_ms,
                ours.cpu,
                gst,
                ours.cpu / gst
            );
        }
    }
    let _ = std::fs::remove_file(&raw);
    temporal_layers(SECONDS);
    speeds(SECONDS);
}

/// libvpx's adaptive speed (a positive `cpu_used`, campeer's default before it took
/// libwebrtc's fixed ones) against fixed speeds: time a frame, and what it costs in
/// quality at the same bitrate.
fn speeds(seconds: u32) {
    println!();
    println!(
        "| VP8 640x480 at {FPS} fps, 1 thread, 2 layers, 1000 kbit/s | ms/frame (worst) | CPU | out kbit/s | luma PSNR |"
    );
    println!("|---|---|---|---|---|");
    let input = frames(640, 480, seconds * FPS);
    let auto = auto_speed(640, 480);
    for cpu_used in [8, -6, -10, -12] {
        let s = Vp8Settings {
            cpu_used,
            ..layered(640, 480, 1, 2)
        };
        let c = encode(&input, &s, seconds);
        let name = match cpu_used {
            8 => "8 (adaptive: up to half a frame interval)".to_owned(),
            n if n == auto => format!("{n} (\"auto\" here)"),
            n => n.to_string(),
        };
        println!(
            "| cpu_used {name} | {:.1} ({:.1}) | {:.1} % | {:.0} | {:.2} dB |",
            c.ms_per_frame,
            c.worst_ms,
            c.cpu,
            c.kbps,
            psnr(&input, &c.encoded)
        );
    }
}

/// What a second temporal layer costs the encoder (`video.temporal_layers`), at the
/// default size and target.
fn temporal_layers(seconds: u32) {
    println!();
    println!(
        "| VP8 640x480 at {FPS} fps, 1 thread, 1000 kbit/s | ms/frame (worst) | CPU | out kbit/s | base layer kbit/s |"
    );
    println!("|---|---|---|---|---|");
    let input = frames(640, 480, seconds * FPS);
    for layers in [1, 2] {
        let c = encode(&input, &layered(640, 480, 1, layers), seconds);
        println!(
            "| {layers} temporal layer(s) | {:.1} ({:.1}) | {:.1} % | {:.0} | {:.0} |",
            c.ms_per_frame, c.worst_ms, c.cpu, c.kbps, c.base_kbps
        );
    }
}
