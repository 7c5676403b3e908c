//! Camera formats converted to I420 match what ffmpeg makes of the same picture: frames
//! recorded with Debian's ffmpeg from its testsrc2 pattern in YUYV, UYVY, NV12, YU12 and
//! MJPEG, converted by campeer, compared with ffmpeg's own yuv420p (PSNR, or exact).

mod common;

use common::ffmpeg;
use common::psnr;

use campeer::media::I420Frame;
use campeer::media::video::convert::{ConvertError, Converter, PixelFormat};

const W: u32 = 320;
const H: u32 = 240;

fn raw(pix_fmt: &str) -> Vec<u8> {
    ffmpeg::testsrc2_raw(W, H, pix_fmt)
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
    let reference = raw("yuv420p");
    assert_eq!(
        convert(PixelFormat::Yu12, &reference).data(),
        reference,
        "YU12 is a copy"
    );
    assert_eq!(
        convert(PixelFormat::Nv12, &raw("nv12")).data(),
        reference,
        "NV12 is exact"
    );
    for (format, pix_fmt) in [
        (PixelFormat::Yuyv, "yuyv422"),
        (PixelFormat::Uyvy, "uyvy422"),
    ] {
        let db = psnr(convert(format, &raw(pix_fmt)).data(), &reference);
        eprintln!("{format:?}: {db:.1} dB");
        assert!(db >= 40.0, "{format:?}: {db:.1} dB");
    }
    let jpeg = ffmpeg::testsrc2_jpeg(W, H, 2);
    let db = psnr(
        convert(PixelFormat::Mjpeg, &jpeg).data(),
        &ffmpeg::jpeg_to_i420(&jpeg),
    );
    eprintln!("MJPEG: {db:.1} dB");
    assert!(db >= 40.0, "MJPEG: {db:.1} dB");
}

#[test]
fn padded_lines_are_honoured() {
    let yuyv = raw("yuyv422");
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
    assert_eq!(out.data(), convert(PixelFormat::Yuyv, &yuyv).data());
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
    let small = ffmpeg::testsrc2_jpeg(W / 2, H / 2, 2);
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
