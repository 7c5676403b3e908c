//! libvpx's VP8 behind one small safe type per direction.
//!
//! vpx-encode cannot force a keyframe, set cpu-used or threads, run CBR or change the
//! bitrate while running, all of which a real-time peer needs; so this drives
//! env-libvpx-sys directly. A libvpx context is not thread-safe but has no thread
//! affinity: each value here is `Send` (it may move to the thread that uses it) and not
//! `Sync` (only one thread at a time, through `&mut self`), so nothing here locks.

use std::os::raw::c_int;

use vpx_sys as vpx;

use crate::media::frame::I420Frame;

/// What the encoder needs to know, in its own terms, and nothing about where frames
/// come from (the pipeline derives it from `[video]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vp8Settings {
    /// Even and non-zero: I420 chroma is subsampled 2x2.
    pub width: u32,
    pub height: u32,
    /// CBR target; congestion control changes it while running.
    pub target_kbps: u32,
    /// Bounds a keyframe's size to a few frames' worth of bits.
    pub frame_rate: u32,
    /// At most this many frames between two keyframes.
    pub max_keyframe_distance: u32,
    /// libvpx `cpu-used`: higher costs less CPU for less quality.
    pub cpu_used: i32,
    /// libvpx worker threads.
    pub threads: u32,
}

/// libvpx threads worth having for `width` x `height` on `cores` cores: libwebrtc's rule
/// (`LibvpxVp8Encoder::NumberOfThreads`, desktop): one up to 640x480, where more only
/// spin (measured: 2 threads cost 60 % more CPU at 640x480 for the same frames); two
/// above it given 3 cores, three above 1280x960 given 6, eight from 1080p given 9.
pub fn threads_for(width: u32, height: u32, cores: usize) -> u32 {
    let pixels = u64::from(width) * u64::from(height);
    match pixels {
        p if p >= 1920 * 1080 && cores > 8 => 8,
        p if p > 1280 * 960 && cores >= 6 => 3,
        p if p > 640 * 480 && cores >= 3 => 2,
        _ => 1,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Vp8Error {
    #[error("VP8 {call}: {detail}")]
    Codec { call: &'static str, detail: String },
    #[error("VP8 frame size {width}x{height}: must be even and non-zero")]
    BadSize { width: u32, height: u32 },
    #[error("VP8 input is {got_w}x{got_h}, the encoder was set up for {want_w}x{want_h}")]
    SizeMismatch {
        got_w: u32,
        got_h: u32,
        want_w: u32,
        want_h: u32,
    },
}

fn check(
    call: &'static str,
    ctx: *mut vpx::vpx_codec_ctx_t,
    err: vpx::vpx_codec_err_t,
) -> Result<(), Vp8Error> {
    if err == vpx::VPX_CODEC_OK {
        return Ok(());
    }
    // SAFETY: both return static or context-owned NUL-terminated strings.
    let detail = unsafe {
        let msg = std::ffi::CStr::from_ptr(vpx::vpx_codec_err_to_string(err))
            .to_string_lossy()
            .into_owned();
        let extra = if ctx.is_null() {
            std::ptr::null()
        } else {
            vpx::vpx_codec_error_detail(ctx)
        };
        if extra.is_null() {
            msg
        } else {
            format!(
                "{msg} ({})",
                std::ffi::CStr::from_ptr(extra).to_string_lossy()
            )
        }
    };
    Err(Vp8Error::Codec { call, detail })
}

pub struct Vp8Encoder {
    ctx: Box<vpx::vpx_codec_ctx_t>,
    /// Boxed so its address is stable: libvpx keeps the pointer given to
    /// `vpx_codec_enc_init_ver` and reads it again on later calls.
    cfg: Box<vpx::vpx_codec_enc_cfg_t>,
    image: Box<vpx::vpx_image_t>,
}

impl Vp8Encoder {
    /// A real-time (CBR, no lag, no alt-ref) encoder for frames of `s.width` x `s.height`.
    pub fn new(s: &Vp8Settings) -> Result<Self, Vp8Error> {
        if s.width == 0
            || s.height == 0
            || !s.width.is_multiple_of(2)
            || !s.height.is_multiple_of(2)
        {
            return Err(Vp8Error::BadSize {
                width: s.width,
                height: s.height,
            });
        }
        // SAFETY: the config is read only after libvpx filled every field of it (its
        // `g_bit_depth` has no zero variant, so a zeroed config is not a valid value); the
        // context and image hold integers, pointers and enums that all have a zero
        // variant, so all-zero is a valid value of each. The context is destroyed in Drop only if init succeeded (a failed
        // init leaves nothing to free).
        unsafe {
            let iface = vpx::vpx_codec_vp8_cx();
            let mut raw_cfg = Box::<vpx::vpx_codec_enc_cfg_t>::new_uninit();
            check(
                "default config",
                std::ptr::null_mut(),
                vpx::vpx_codec_enc_config_default(iface, raw_cfg.as_mut_ptr(), 0),
            )?;
            let mut cfg = raw_cfg.assume_init();
            cfg.g_w = s.width;
            cfg.g_h = s.height;
            cfg.g_timebase = vpx::vpx_rational {
                num: 1,
                den: 90_000,
            };
            cfg.g_threads = s.threads;
            cfg.g_lag_in_frames = 0;
            cfg.g_error_resilient = vpx::VPX_ERROR_RESILIENT_DEFAULT;
            cfg.rc_end_usage = vpx::vpx_rc_mode::VPX_CBR;
            cfg.rc_target_bitrate = s.target_kbps;
            cfg.rc_min_quantizer = 4;
            cfg.rc_max_quantizer = 56;
            cfg.rc_undershoot_pct = 95;
            cfg.rc_overshoot_pct = 15;
            // Small buffers keep frame sizes even, so a frame never waits behind a burst.
            cfg.rc_buf_sz = 1000;
            cfg.rc_buf_initial_sz = 500;
            cfg.rc_buf_optimal_sz = 600;
            cfg.rc_dropframe_thresh = 0;
            cfg.kf_mode = vpx::vpx_kf_mode::VPX_KF_AUTO;
            cfg.kf_min_dist = 0;
            cfg.kf_max_dist = s.max_keyframe_distance;
            let mut ctx = Box::<vpx::vpx_codec_ctx_t>::new_zeroed().assume_init();
            check(
                "encoder init",
                std::ptr::null_mut(),
                vpx::vpx_codec_enc_init_ver(
                    &mut *ctx,
                    iface,
                    &*cfg,
                    0,
                    vpx::VPX_ENCODER_ABI_VERSION as c_int,
                ),
            )?;
            let mut enc = Self {
                ctx,
                cfg,
                image: Box::<vpx::vpx_image_t>::new_zeroed().assume_init(),
            };
            enc.control(vpx::vp8e_enc_control_id::VP8E_SET_CPUUSED, s.cpu_used)?;
            enc.control(vpx::vp8e_enc_control_id::VP8E_SET_ENABLEAUTOALTREF, 0)?;
            enc.control(vpx::vp8e_enc_control_id::VP8E_SET_NOISE_SENSITIVITY, 0)?;
            enc.control(vpx::vp8e_enc_control_id::VP8E_SET_STATIC_THRESHOLD, 1)?;
            // A keyframe at most ~3 frames' worth of bits, so it does not stall the link.
            let max_intra = (300 * s.frame_rate.max(1) / 10).max(300) as c_int;
            enc.control(
                vpx::vp8e_enc_control_id::VP8E_SET_MAX_INTRA_BITRATE_PCT,
                max_intra,
            )?;
            Ok(enc)
        }
    }

    fn control(&mut self, id: vpx::vp8e_enc_control_id, value: c_int) -> Result<(), Vp8Error> {
        // SAFETY: every control used here takes one int.
        let err = unsafe { vpx::vpx_codec_control_(&mut *self.ctx, id as c_int, value) };
        check("control", &mut *self.ctx, err)
    }

    /// Changes the target bitrate between frames (congestion feedback).
    pub fn set_bitrate_kbps(&mut self, kbps: u32) -> Result<(), Vp8Error> {
        self.cfg.rc_target_bitrate = kbps;
        // SAFETY: the context and config are live and owned by self.
        let err = unsafe { vpx::vpx_codec_enc_config_set(&mut *self.ctx, &*self.cfg) };
        check("set bitrate", &mut *self.ctx, err)
    }

    pub fn bitrate_kbps(&self) -> u32 {
        self.cfg.rc_target_bitrate
    }

    /// Encodes one frame; `out` sees each compressed frame (one per input with lag 0)
    /// and whether it is a keyframe.
    pub fn encode(
        &mut self,
        frame: &I420Frame,
        pts_90k: i64,
        force_keyframe: bool,
        out: &mut impl FnMut(&[u8], bool),
    ) -> Result<(), Vp8Error> {
        let (width, height) = frame.size();
        if (width, height) != (self.cfg.g_w, self.cfg.g_h) {
            return Err(Vp8Error::SizeMismatch {
                got_w: width,
                got_h: height,
                want_w: self.cfg.g_w,
                want_h: self.cfg.g_h,
            });
        }
        let flags = if force_keyframe {
            vpx::VPX_EFLAG_FORCE_KF as vpx::vpx_enc_frame_flags_t
        } else {
            0
        };
        // SAFETY: the image wraps the frame's buffer only for the duration of this call
        // (libvpx copies what it keeps); I420Frame guarantees the buffer holds exactly
        // the three planes of its size, which is the size checked above.
        unsafe {
            let img = vpx::vpx_img_wrap(
                &mut *self.image,
                vpx::vpx_img_fmt::VPX_IMG_FMT_I420,
                width,
                height,
                1,
                frame.data().as_ptr() as *mut u8,
            );
            if img.is_null() {
                return Err(Vp8Error::Codec {
                    call: "wrap image",
                    detail: "vpx_img_wrap failed".into(),
                });
            }
            let err = vpx::vpx_codec_encode(
                &mut *self.ctx,
                img,
                pts_90k,
                1,
                flags,
                vpx::VPX_DL_REALTIME as _,
            );
            check("encode", &mut *self.ctx, err)?;
            let mut iter = std::ptr::null();
            loop {
                let pkt = vpx::vpx_codec_get_cx_data(&mut *self.ctx, &mut iter);
                if pkt.is_null() {
                    break;
                }
                if (*pkt).kind == vpx::vpx_codec_cx_pkt_kind::VPX_CODEC_CX_FRAME_PKT {
                    let f = (*pkt).data.frame;
                    let data = std::slice::from_raw_parts(f.buf as *const u8, f.sz as usize);
                    out(data, f.flags & vpx::VPX_FRAME_IS_KEY != 0);
                }
            }
        }
        Ok(())
    }
}

// SAFETY: `Send` moves the encoder whole to another thread, and nothing in it belongs to
// the thread that made it: libvpx keeps no thread-local state, its worker threads belong
// to the context and are joined by `vpx_codec_destroy`, and every pointer inside points
// to memory this value owns (the boxed config and context, libvpx's private state), the
// image's plane pointers being rewritten before each use. It is not `Sync`, and every
// libvpx call takes `&mut self`: two threads never use one context at once.
unsafe impl Send for Vp8Encoder {}

impl Drop for Vp8Encoder {
    fn drop(&mut self) {
        // SAFETY: initialised in new(); destroyed once.
        unsafe { vpx::vpx_codec_destroy(&mut *self.ctx) };
    }
}

/// A decoded picture's luma, enough to check what a viewer would see.
#[derive(Debug, Clone)]
pub struct DecodedImage {
    pub width: u32,
    pub height: u32,
    pub stride: usize,
    pub y: Vec<u8>,
}

/// The receiving side, for tests and test viewers that read frames back.
pub struct Vp8Decoder {
    ctx: Box<vpx::vpx_codec_ctx_t>,
}

impl Vp8Decoder {
    pub fn new() -> Result<Self, Vp8Error> {
        // SAFETY: as for the encoder's context.
        unsafe {
            let mut ctx = Box::<vpx::vpx_codec_ctx_t>::new_zeroed().assume_init();
            check(
                "decoder init",
                std::ptr::null_mut(),
                vpx::vpx_codec_dec_init_ver(
                    &mut *ctx,
                    vpx::vpx_codec_vp8_dx(),
                    std::ptr::null(),
                    0,
                    vpx::VPX_DECODER_ABI_VERSION as c_int,
                ),
            )?;
            Ok(Self { ctx })
        }
    }

    pub fn decode(&mut self, data: &[u8]) -> Result<Option<DecodedImage>, Vp8Error> {
        // SAFETY: data outlives the call; the returned image is copied before the next call.
        unsafe {
            let err = vpx::vpx_codec_decode(
                &mut *self.ctx,
                data.as_ptr(),
                data.len() as _,
                std::ptr::null_mut(),
                0,
            );
            check("decode", &mut *self.ctx, err)?;
            let mut iter = std::ptr::null();
            let img = vpx::vpx_codec_get_frame(&mut *self.ctx, &mut iter);
            if img.is_null() {
                return Ok(None);
            }
            let img = &*img;
            let (w, h, stride) = (img.d_w, img.d_h, img.stride[0] as usize);
            let y = std::slice::from_raw_parts(img.planes[0], stride * h as usize).to_vec();
            Ok(Some(DecodedImage {
                width: w,
                height: h,
                stride,
                y,
            }))
        }
    }
}

// SAFETY: as for the encoder: the context owns its state, and `decode` takes `&mut self`.
unsafe impl Send for Vp8Decoder {}

impl Drop for Vp8Decoder {
    fn drop(&mut self) {
        // SAFETY: initialised in new(); destroyed once.
        unsafe { vpx::vpx_codec_destroy(&mut *self.ctx) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::video::test_pattern::{TestPattern, read_counter};

    fn small(width: u32, height: u32) -> Vp8Settings {
        Vp8Settings {
            width,
            height,
            target_kbps: 500,
            frame_rate: 30,
            max_keyframe_distance: 300,
            cpu_used: 8,
            threads: 1,
        }
    }

    fn encode_run(
        enc: &mut Vp8Encoder,
        frames: u32,
        force_at: Option<u32>,
    ) -> Vec<(Vec<u8>, bool)> {
        let (w, h) = (enc.cfg.g_w, enc.cfg.g_h);
        let mut pattern = TestPattern::new(w, h);
        let mut img = I420Frame::new(w, h);
        let mut out = Vec::new();
        let mut seed = 1u32;
        for n in 0..frames {
            pattern.draw(&mut img, n, u64::from(n) * 33);
            // A camera's noise below the blocks: every macroblock changes, so the
            // bitrate is what rate control allows, not what a still picture needs.
            let below_blocks = 8 * 16 * w as usize;
            for px in &mut img.planes_mut().0[below_blocks..] {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                *px = px.saturating_add((seed >> 28) as u8);
            }
            enc.encode(
                &img,
                i64::from(n) * 3000,
                force_at == Some(n),
                &mut |d, k| out.push((d.to_vec(), k)),
            )
            .unwrap();
        }
        out
    }

    #[test]
    fn round_trip_reads_every_counter_back() {
        for (w, h) in [(320, 240), (640, 480)] {
            let mut enc = Vp8Encoder::new(&small(w, h)).unwrap();
            let frames = encode_run(&mut enc, 30, None);
            assert_eq!(frames.len(), 30);
            assert!(frames[0].1, "first frame is a keyframe");
            assert!(
                frames[1..].iter().all(|f| !f.1),
                "no keyframes without a reason"
            );
            let mut dec = Vp8Decoder::new().unwrap();
            for (n, (data, _)) in frames.iter().enumerate() {
                let img = dec.decode(data).unwrap().expect("a picture per frame");
                assert_eq!((img.width, img.height), (w, h));
                assert_eq!(
                    read_counter(&img.y, img.stride, w, h),
                    Some(n as u32),
                    "{w}x{h} frame {n}"
                );
            }
        }
    }

    #[test]
    fn keyframe_is_forced_mid_stream() {
        let mut enc = Vp8Encoder::new(&small(320, 240)).unwrap();
        let frames = encode_run(&mut enc, 20, Some(12));
        let keys: Vec<usize> = frames
            .iter()
            .enumerate()
            .filter(|(_, f)| f.1)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(keys, vec![0, 12]);
    }

    #[test]
    fn bitrate_changes_at_run_time() {
        let mut settings = small(640, 480);
        settings.target_kbps = 2000;
        let mut enc = Vp8Encoder::new(&settings).unwrap();
        let high: usize = encode_run(&mut enc, 60, None)[30..]
            .iter()
            .map(|f| f.0.len())
            .sum();
        enc.set_bitrate_kbps(150).unwrap();
        assert_eq!(enc.bitrate_kbps(), 150);
        let low: usize = encode_run(&mut enc, 60, None)[30..]
            .iter()
            .map(|f| f.0.len())
            .sum();
        assert!(
            low * 2 < high,
            "150 kbps ({low} B) should be well under 2000 kbps ({high} B)"
        );
    }

    #[test]
    fn threads_pay_only_above_vga_and_with_cores_to_spare() {
        assert_eq!(threads_for(640, 480, 16), 1);
        assert_eq!(threads_for(320, 240, 4), 1);
        assert_eq!(threads_for(1280, 720, 2), 1);
        assert_eq!(threads_for(1280, 720, 4), 2);
        assert_eq!(threads_for(1920, 1080, 6), 3);
        assert_eq!(threads_for(1920, 1080, 12), 8);
    }

    #[test]
    fn bad_sizes_are_errors() {
        assert!(matches!(
            Vp8Encoder::new(&small(0, 240)),
            Err(Vp8Error::BadSize { .. })
        ));
        assert!(matches!(
            Vp8Encoder::new(&small(321, 240)),
            Err(Vp8Error::BadSize { .. })
        ));
        let mut enc = Vp8Encoder::new(&small(320, 240)).unwrap();
        let wrong = I420Frame::new(160, 120);
        assert!(matches!(
            enc.encode(&wrong, 0, false, &mut |_, _| {}),
            Err(Vp8Error::SizeMismatch { .. })
        ));
        assert!(
            Vp8Decoder::new()
                .unwrap()
                .decode(b"not vp8 at all")
                .is_err()
        );
    }
}
