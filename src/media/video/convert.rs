//! Camera pixels to the encoder's I420, into a reused frame: MJPEG through libjpeg-turbo,
//! decoded straight to YUV planes (no RGB or 4:4:4 detour);
//! YUYV, UYVY, NV12 and YU12 by plane copies and a chroma average.
//!
//! yuvutils-rs 0.8 was tried for YUYV/UYVY and dropped: it refuses frames whose lines are
//! padded (drivers pad), and its 4:2:0 output measured 17 dB PSNR against ffmpeg's on the
//! same frame where this loop gives over 40 (tests/convert_matches_ffmpeg.rs).
//!
//! JPEG carries full-range YCbCr while VP8 viewers assume video range (BT.601, Y 16–235),
//! so MJPEG is rescaled on the way; the other formats are video range already.

use turbojpeg::{Decompressor, Subsamp, YuvImage};

use crate::media::frame::I420Frame;

/// The capture formats campeer takes, in order of preference: no conversion, plane
/// shuffles, packed 4:2:2, then JPEG decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum PixelFormat {
    Yu12,
    Nv12,
    Yuyv,
    Uyvy,
    Mjpeg,
}

impl PixelFormat {
    pub const ALL: [PixelFormat; 5] = [Self::Yu12, Self::Nv12, Self::Yuyv, Self::Uyvy, Self::Mjpeg];

    pub fn fourcc(self) -> [u8; 4] {
        *match self {
            Self::Yu12 => b"YU12",
            Self::Nv12 => b"NV12",
            Self::Yuyv => b"YUYV",
            Self::Uyvy => b"UYVY",
            Self::Mjpeg => b"MJPG",
        }
    }

    pub fn from_fourcc(code: [u8; 4]) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.fourcc() == code)
    }

    /// Bytes per line when the driver reports none (compressed formats) or packs tightly.
    fn min_stride(self, width: u32) -> usize {
        match self {
            Self::Yuyv | Self::Uyvy => width as usize * 2,
            Self::Yu12 | Self::Nv12 => width as usize,
            Self::Mjpeg => 0,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error("{format:?} frame of {got} bytes, {need} needed for {width}x{height}")]
    Short {
        format: PixelFormat,
        got: usize,
        need: usize,
        width: u32,
        height: u32,
    },
    #[error("odd frame size {0}x{1}: I420 needs even dimensions")]
    OddSize(u32, u32),
    #[error("MJPEG frame: {0}")]
    Jpeg(String),
    #[error("MJPEG frame is {got_w}x{got_h}, the stream was set up for {want_w}x{want_h}")]
    JpegSize {
        got_w: usize,
        got_h: usize,
        want_w: u32,
        want_h: u32,
    },
}

/// Converts frames of one stream; keeps the JPEG decoder and its buffer between frames.
#[derive(Default)]
pub struct Converter {
    decompressor: Option<Decompressor>,
    scratch: Vec<u8>,
}

impl Converter {
    /// Writes `src` (one captured frame of `format`, lines `stride` bytes apart, 0 for
    /// tightly packed) into `dst`, whose size is the stream's.
    pub fn convert(
        &mut self,
        format: PixelFormat,
        src: &[u8],
        stride: u32,
        dst: &mut I420Frame,
    ) -> Result<(), ConvertError> {
        let (w, h) = dst.size();
        if w % 2 != 0 || h % 2 != 0 {
            return Err(ConvertError::OddSize(w, h));
        }
        let stride = (stride as usize).max(format.min_stride(w));
        let need = match format {
            PixelFormat::Yuyv | PixelFormat::Uyvy => stride * h as usize,
            PixelFormat::Yu12 | PixelFormat::Nv12 => stride * h as usize * 3 / 2,
            PixelFormat::Mjpeg => 0,
        };
        if src.len() < need {
            return Err(ConvertError::Short {
                format,
                got: src.len(),
                need,
                width: w,
                height: h,
            });
        }
        match format {
            PixelFormat::Yuyv | PixelFormat::Uyvy => {
                packed_422(format, src, stride, dst);
                Ok(())
            }
            PixelFormat::Yu12 => {
                copy_planes(src, stride, dst, false);
                Ok(())
            }
            PixelFormat::Nv12 => {
                copy_planes(src, stride, dst, true);
                Ok(())
            }
            PixelFormat::Mjpeg => self.jpeg(src, dst),
        }
    }

    fn jpeg(&mut self, src: &[u8], dst: &mut I420Frame) -> Result<(), ConvertError> {
        let jpeg_err = |e: turbojpeg::Error| ConvertError::Jpeg(e.to_string());
        let decompressor = match &mut self.decompressor {
            Some(d) => d,
            slot => slot.insert(Decompressor::new().map_err(jpeg_err)?),
        };
        let header = decompressor.read_header(src).map_err(jpeg_err)?;
        let (w, h) = (dst.width() as usize, dst.height() as usize);
        if (header.width, header.height) != (w, h) {
            return Err(ConvertError::JpegSize {
                got_w: header.width,
                got_h: header.height,
                want_w: dst.width(),
                want_h: dst.height(),
            });
        }
        // Chroma subsampling factors of the JPEG (a webcam's is 4:2:2 or 4:2:0).
        let (hf, vf) = match header.subsamp {
            Subsamp::None => (1, 1),
            Subsamp::Sub2x1 => (2, 1),
            Subsamp::Sub2x2 => (2, 2),
            Subsamp::Gray => (0, 0),
            other => {
                return Err(ConvertError::Jpeg(format!(
                    "unsupported subsampling {other:?}"
                )));
            }
        };
        let len = turbojpeg::yuv_pixels_len(w, 1, h, header.subsamp).map_err(jpeg_err)?;
        self.scratch.resize(len, 0);
        let image = YuvImage {
            pixels: &mut self.scratch[..],
            width: w,
            align: 1,
            height: h,
            subsamp: header.subsamp,
        };
        decompressor
            .decompress_to_yuv(src, image)
            .map_err(jpeg_err)?;
        full_range_to_i420(&self.scratch, w, h, hf, vf, dst);
        Ok(())
    }
}

/// YUYV or UYVY: luma copied, chroma of each two lines averaged.
fn packed_422(format: PixelFormat, src: &[u8], stride: usize, dst: &mut I420Frame) {
    let (w, h) = (dst.width() as usize, dst.height() as usize);
    // Byte offsets of Y0, U, Y1, V within each 4-byte pair of pixels.
    let [y0, cb, y1, cr] = if format == PixelFormat::Yuyv {
        [0, 1, 2, 3]
    } else {
        [1, 0, 3, 2]
    };
    let (y, u, v) = dst.planes_mut();
    let cw = w / 2;
    for row in (0..h).step_by(2) {
        let (a, b) = (
            &src[row * stride..row * stride + 2 * w],
            &src[(row + 1) * stride..(row + 1) * stride + 2 * w],
        );
        for (x, (pa, pb)) in a.chunks_exact(4).zip(b.chunks_exact(4)).enumerate() {
            y[row * w + 2 * x] = pa[y0];
            y[row * w + 2 * x + 1] = pa[y1];
            y[(row + 1) * w + 2 * x] = pb[y0];
            y[(row + 1) * w + 2 * x + 1] = pb[y1];
            let avg = |i: usize| (u16::from(pa[i]) + u16::from(pb[i])).div_ceil(2) as u8;
            u[row / 2 * cw + x] = avg(cb);
            v[row / 2 * cw + x] = avg(cr);
        }
    }
}

/// YU12 (planar) or NV12 (interleaved chroma) with `stride`-byte luma lines.
fn copy_planes(src: &[u8], stride: usize, dst: &mut I420Frame, interleaved: bool) {
    let (w, h) = (dst.width() as usize, dst.height() as usize);
    let (y, u, v) = dst.planes_mut();
    for row in 0..h {
        y[row * w..(row + 1) * w].copy_from_slice(&src[row * stride..row * stride + w]);
    }
    let chroma = &src[stride * h..];
    let (cw, ch) = (w / 2, h / 2);
    if interleaved {
        for row in 0..ch {
            let line = &chroma[row * stride..row * stride + w];
            for (x, pair) in line.chunks_exact(2).enumerate() {
                u[row * cw + x] = pair[0];
                v[row * cw + x] = pair[1];
            }
        }
    } else {
        let cstride = stride / 2;
        for row in 0..ch {
            u[row * cw..(row + 1) * cw].copy_from_slice(&chroma[row * cstride..row * cstride + cw]);
            let vs = &chroma[cstride * ch..];
            v[row * cw..(row + 1) * cw].copy_from_slice(&vs[row * cstride..row * cstride + cw]);
        }
    }
}

/// JPEG's full-range planes (chroma subsampled by `hf` x `vf`, or absent for grey) to
/// video-range I420, averaging the chroma samples under each 2x2 block.
fn full_range_to_i420(src: &[u8], w: usize, h: usize, hf: usize, vf: usize, dst: &mut I420Frame) {
    let luma = |v: u8| (16 + (u32::from(v) * 219 + 127) / 255) as u8;
    let (y, u, v) = dst.planes_mut();
    for (d, &s) in y.iter_mut().zip(&src[..w * h]) {
        *d = luma(s);
    }
    if hf == 0 {
        u.fill(128);
        v.fill(128);
        return;
    }
    let (sw, sh) = (w / hf, h / vf);
    let (su, sv) = (
        &src[w * h..w * h + sw * sh],
        &src[w * h + sw * sh..w * h + 2 * sw * sh],
    );
    let (cw, ch) = (w / 2, h / 2);
    // Source samples per output sample along each axis: 2 for 4:4:4, 1 when already halved.
    let (nx, ny) = (2 / hf, 2 / vf);
    let n = (nx * ny) as u32;
    for row in 0..ch {
        for x in 0..cw {
            let (mut a, mut b) = (0u32, 0u32);
            for dy in 0..ny {
                let line = (row * 2 / vf + dy) * sw;
                for dx in 0..nx {
                    a += u32::from(su[line + x * 2 / hf + dx]);
                    b += u32::from(sv[line + x * 2 / hf + dx]);
                }
            }
            let scale = |sum: u32| (16 + (sum * 224 + n * 255 / 2) / (n * 255)) as u8;
            u[row * cw + x] = scale(a);
            v[row * cw + x] = scale(b);
        }
    }
}
