//! Camera formats converted to I420 match what ffmpeg makes of the same picture: frames
//! recorded with Debian's ffmpeg from its testsrc2 pattern in YUYV, UYVY, NV12, YU12 and
//! MJPEG, converted by campeer, compared with ffmpeg's own yuv420p (PSNR, or exact).

mod common;

use common::psnr;
use std::path::{Path, PathBuf};
use std::process::Command;

use campeer::media::I420Frame;
use campeer::media::video::convert::{ConvertError, Converter, PixelFormat};

const W: u32 = 320;
const H: u32 = 240;

/// Records one frame of the pattern as `pix_fmt` (or a JPEG) and returns its bytes.
fn ffmpeg(dir: &Path, name: &str, args: &[&str]) -> Vec<u8> {
    let out = dir.join(name);
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size={W}x{H}:rate=1"))
        .args(["-frames:v", "1"])
        .args(args)
        .arg(&out)
        .status()
        .expect("ffmpeg runs (scripts/setup installs it)");
    assert!(status.success(), "ffmpeg {args:?}");
    std::fs::read(out).unwrap()
}

fn raw(dir: &Path, pix_fmt: &str) -> Vec<u8> {
    ffmpeg(
        dir,
        &format!("frame.{pix_fmt}"),
        &["-pix_fmt", pix_fmt, "-f", "rawvideo"],
    )
}

fn workdir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("convert");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn convert(format: PixelFormat, src: &[u8]) -> I420Frame {
    let mut out = I420Frame::new(W, H);
    Converter::default()
        .convert(format, src, 0, &mut out)
        .unwrap();
    out
}

#[test]
fn every_format_matches_ffmpegs_i420() {
    let dir = workdir();
    let reference = raw(&dir, "yuv420p");
    assert_eq!(
        convert(PixelFormat::Yu12, &reference).data,
        reference,
        "YU12 is a copy"
    );
    assert_eq!(
        convert(PixelFormat::Nv12, &raw(&dir, "nv12")).data,
        reference,
        "NV12 is exact"
    );
    for (format, pix_fmt) in [
        (PixelFormat::Yuyv, "yuyv422"),
        (PixelFormat::Uyvy, "uyvy422"),
    ] {
        let db = psnr(&convert(format, &raw(&dir, pix_fmt)).data, &reference);
        eprintln!("{format:?}: {db:.1} dB");
        assert!(db >= 40.0, "{format:?}: {db:.1} dB");
    }
    let jpeg = ffmpeg(&dir, "frame.jpg", &["-q:v", "2", "-f", "image2"]);
    // ffmpeg's own decode of that JPEG, to video-range I420.
    let decoded = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(dir.join("frame.jpg"))
        .args(["-pix_fmt", "yuv420p", "-f", "rawvideo", "-"])
        .output()
        .unwrap()
        .stdout;
    let db = psnr(&convert(PixelFormat::Mjpeg, &jpeg).data, &decoded);
    eprintln!("MJPEG: {db:.1} dB");
    assert!(db >= 40.0, "MJPEG: {db:.1} dB");
}

#[test]
fn padded_lines_are_honoured() {
    let dir = workdir();
    let yuyv = raw(&dir, "yuyv422");
    let line = W as usize * 2;
    let stride = line + 64;
    let mut padded = vec![0xAB; stride * H as usize];
    for row in 0..H as usize {
        padded[row * stride..row * stride + line]
            .copy_from_slice(&yuyv[row * line..(row + 1) * line]);
    }
    let mut out = I420Frame::new(W, H);
    Converter::default()
        .convert(PixelFormat::Yuyv, &padded, stride as u32, &mut out)
        .unwrap();
    assert_eq!(out.data, convert(PixelFormat::Yuyv, &yuyv).data);
}

#[test]
fn bad_frames_are_errors_not_panics() {
    let mut c = Converter::default();
    let mut out = I420Frame::new(W, H);
    assert!(matches!(
        c.convert(PixelFormat::Yuyv, &[0; 100], 0, &mut out),
        Err(ConvertError::Short { .. })
    ));
    assert!(matches!(
        c.convert(PixelFormat::Mjpeg, b"not a jpeg", 0, &mut out),
        Err(ConvertError::Jpeg(_))
    ));
    let small = ffmpeg(
        &workdir(),
        "small.jpg",
        &["-vf", "scale=160:120", "-f", "image2"],
    );
    assert!(matches!(
        c.convert(PixelFormat::Mjpeg, &small, 0, &mut out),
        Err(ConvertError::JpegSize { .. })
    ));
    let mut odd = I420Frame::new(W + 1, H);
    assert!(matches!(
        c.convert(PixelFormat::Nv12, &[0; 200_000], 0, &mut odd),
        Err(ConvertError::OddSize(..))
    ));
}
