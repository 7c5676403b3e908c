//! Inside the VM of `scripts/vm-test` (ignored elsewhere): campeer's V4L2 source against
//! the kernel's vivid driver. Each format campeer converts comes out of the converter as
//! vivid's colour bars; the rate vivid grants (25 at 640x480, not the 30 asked) is the
//! one reported; `campeer devices` lists vivid and the Loopback card.

mod common;

use common::vm::{in_vm, load_loopback_camera};
use common::{ffmpeg, psnr};
use std::path::Path;
use std::process::Command;

use campeer::media::I420Frame;
use campeer::media::video::convert::PixelFormat;
use campeer::media::video::v4l2::{Camera, Mode, describe};

const CAMERA: &str = "/dev/video0";

/// Mean luma of a 16x16 patch centred at (x, y).
fn luma(f: &I420Frame, x: usize, y: usize) -> u32 {
    let w = f.width() as usize;
    let mut sum = 0u32;
    for row in y - 8..y + 8 {
        sum += f.y()[row * w + x - 8..row * w + x + 8]
            .iter()
            .map(|&v| u32::from(v))
            .sum::<u32>();
    }
    sum / 256
}

#[test]
#[ignore = "needs the vivid driver: scripts/vm-test"]
fn every_format_shows_vivids_colour_bars() {
    in_vm();
    let info = describe(Path::new(CAMERA)).unwrap();
    assert!(info.is_camera, "{info:?}");
    for format in [
        PixelFormat::Yuyv,
        PixelFormat::Uyvy,
        PixelFormat::Nv12,
        PixelFormat::Yu12,
    ] {
        let mode = Mode {
            format,
            width: 640,
            height: 360,
            fps: 30.0,
        };
        let mut camera = Camera::open_mode(Path::new(CAMERA), mode).unwrap();
        assert_eq!(camera.mode.format, format);
        let (w, h) = (camera.mode.width, camera.mode.height);
        let mut frame = I420Frame::new(w, h);
        for _ in 0..3 {
            camera.next_frame(&mut frame).unwrap();
        }
        // vivid's default pattern: 75 % bars, white to black, in eight equal columns;
        // luma falls from bar to bar.
        let bars: Vec<u32> = (0..8)
            .map(|i| {
                luma(
                    &frame,
                    (w as usize / 8) * i + w as usize / 16,
                    h as usize / 2,
                )
            })
            .collect();
        eprintln!(
            "{format:?} {w}x{h} @ {:.1}: bar luma {bars:?}",
            camera.mode.fps
        );
        assert!(
            bars.windows(2).all(|p| p[0] > p[1]),
            "{format:?}: bars {bars:?}"
        );
        assert!(
            bars[0] > 150 && bars[7] < 40,
            "{format:?}: white {} black {}",
            bars[0],
            bars[7]
        );
    }
}

#[test]
#[ignore = "needs the vivid driver: scripts/vm-test"]
fn the_rate_vivid_grants_is_the_one_reported() {
    in_vm();
    let mut camera = Camera::open(Path::new(CAMERA), 640, 480, 30).unwrap();
    let m = camera.mode;
    eprintln!(
        "asked 640x480@30, granted {:?} {}x{}@{}",
        m.format, m.width, m.height, m.fps
    );
    assert_eq!((m.width, m.height), (640, 480));
    assert!(
        (m.fps - 25.0).abs() < 0.01,
        "vivid's webcam input gives 25 fps at 640x480, got {}",
        m.fps
    );
    // Driver timestamps, not dequeue time: 10 frames span 9 periods of 40 ms. (vivid stamps
    // frame n at n periods after the start however late it is dequeued: this compares
    // the driver's own clock, so emulation's pace cannot fail it.)
    let mut frame = I420Frame::new(m.width, m.height);
    camera.next_frame(&mut frame).unwrap();
    let first = frame.captured();
    for _ in 0..9 {
        camera.next_frame(&mut frame).unwrap();
    }
    let span = frame.captured() - first;
    eprintln!("9 frame periods by driver timestamps: {span:?}");
    assert!(span.as_millis().abs_diff(360) < 20, "{span:?}");
}

#[test]
#[ignore = "needs the vivid and snd-aloop drivers: scripts/vm-test"]
fn devices_lists_vivid_and_the_loopback_card() {
    in_vm();
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_campeer"))
            .arg("devices")
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let table = run(&[]);
    eprintln!("{table}");
    assert!(table.contains(CAMERA) && table.contains("vivid"), "{table}");
    assert!(
        table.contains("YUYV") && table.contains("640x480@25"),
        "{table}"
    );
    assert!(table.contains("Loopback"), "{table}");
    // vivid's Bayer, RGB and 4:2:2 planar formats share one line.
    let unsupported: Vec<&str> = table
        .lines()
        .filter(|l| l.contains("not supported"))
        .collect();
    assert_eq!(unsupported.len(), 1, "{table}");
    assert!(unsupported[0].contains("YVYU"), "{table}");
    let json: serde_json::Value = serde_json::from_str(&run(&["--json"])).unwrap();
    assert_eq!(json["cameras"][0]["driver"], "vivid");
    assert!(
        json["sound_cards"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "Loopback")
    );
}

#[test]
#[ignore = "needs v4l2loopback: scripts/vm-test"]
fn mjpeg_from_v4l2loopback_matches_the_jpeg_written() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use v4l::video::Output;

    in_vm();
    let node = load_loopback_camera(10);
    let node = Path::new(&node);
    let (w, h) = (640, 480);
    let jpeg = ffmpeg::testsrc2_jpeg(w, h, 3);
    let reference = ffmpeg::jpeg_to_i420(&jpeg);

    // The writer: sets the output format to MJPG and writes the JPEG at 30 fps.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, jpeg) = (Arc::clone(&stop), jpeg.clone());
        std::thread::spawn(move || {
            let dev = v4l::Device::with_path("/dev/video10").unwrap();
            let mut fmt = v4l::Format::new(w, h, v4l::FourCC::new(b"MJPG"));
            fmt.size = jpeg.len() as u32 * 2;
            Output::set_format(&dev, &fmt).unwrap();
            while !stop.load(Ordering::Relaxed) {
                // SAFETY: fd is open for the life of `dev`; the buffer outlives the call.
                let n = unsafe { libc::write(dev.handle().fd(), jpeg.as_ptr().cast(), jpeg.len()) };
                assert_eq!(n, jpeg.len() as isize, "write to v4l2loopback");
                std::thread::sleep(std::time::Duration::from_millis(33));
            }
        })
    };

    // With exclusive_caps the node turns into a capture device once the writer runs.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let info = loop {
        let info = describe(node).unwrap();
        if info.is_camera
            && info
                .formats
                .iter()
                .any(|f| f.format == Some(PixelFormat::Mjpeg))
        {
            break info;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "loopback never offered MJPG: {info:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    eprintln!(
        "v4l2loopback offers {:?}",
        info.formats.iter().map(|f| &f.fourcc).collect::<Vec<_>>()
    );

    let mut camera = Camera::open(node, w, h, 30).unwrap();
    assert_eq!(
        (camera.mode.format, camera.mode.width, camera.mode.height),
        (PixelFormat::Mjpeg, w, h)
    );
    let mut frame = I420Frame::new(w, h);
    for _ in 0..3 {
        camera.next_frame(&mut frame).unwrap();
    }
    let db = psnr(frame.data(), &reference);
    eprintln!("MJPEG through v4l2loopback vs ffmpeg's decode: {db:.1} dB");
    assert!(db >= 40.0, "{db:.1} dB");
    drop(camera);
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
}
