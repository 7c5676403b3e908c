//! V4L2 cameras. The decisions (which node is a camera, which format, size and rate to
//! ask for) are plain functions over plain data, tested without a device; the adapter
//! below them is only the ioctls the `v4l` crate wraps: enumerate, set format and rate,
//! stream with mmap buffers.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;
use v4l::buffer::Type;
use v4l::capability::Flags;
use v4l::frameinterval::FrameIntervalEnum;
use v4l::framesize::FrameSizeEnum;
use v4l::io::mmap::Stream;
use v4l::io::traits::CaptureStream;
use v4l::video::Capture;
use v4l::video::capture::Parameters;
use v4l::{Device, FourCC, Fraction};

use super::convert::{ConvertError, Converter, PixelFormat};
use crate::media::frame::I420Frame;

/// One size a format offers, with the frame rates it offers at that size.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SizeRates {
    pub width: u32,
    pub height: u32,
    pub fps: Vec<f64>,
}

/// One pixel format a camera offers; `format` is `None` for ones campeer cannot convert.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FormatCaps {
    pub fourcc: String,
    pub format: Option<PixelFormat>,
    pub sizes: Vec<SizeRates>,
}

/// What a `/dev/video*` node says about itself.
#[derive(Debug, Clone, Serialize)]
pub struct CameraInfo {
    pub path: PathBuf,
    pub driver: String,
    pub card: String,
    pub bus: String,
    /// A single-planar streaming capture node: not metadata, not a codec (m2m) node.
    pub is_camera: bool,
    pub formats: Vec<FormatCaps>,
}

/// What campeer asks a camera for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mode {
    pub format: PixelFormat,
    pub width: u32,
    pub height: u32,
    pub fps: f64,
}

/// Whether capability flags describe a camera campeer can stream from.
pub fn is_camera(flags: u32) -> bool {
    let f = Flags::from(flags);
    f.contains(Flags::VIDEO_CAPTURE)
        && f.contains(Flags::STREAMING)
        && !f.intersects(Flags::VIDEO_M2M | Flags::VIDEO_M2M_MPLANE)
}

/// The best mode for `want`: the size nearest the configured one, then a rate that
/// reaches the configured one, then the cheapest format to convert (I420, NV12, packed
/// 4:2:2, MJPEG), then the rate nearest the configured one.
pub fn choose_mode(formats: &[FormatCaps], width: u32, height: u32, fps: u32) -> Option<Mode> {
    let want = f64::from(fps);
    formats
        .iter()
        .filter_map(|f| Some((f.format?, &f.sizes)))
        .flat_map(|(format, sizes)| {
            sizes.iter().map(move |s| {
                // The slowest rate that still reaches the wanted one, else the fastest.
                let reaching = s
                    .fps
                    .iter()
                    .copied()
                    .filter(|&r| r >= want * 0.95)
                    .reduce(f64::min);
                let rate = reaching
                    .or_else(|| s.fps.iter().copied().reduce(f64::max))
                    .unwrap_or(want);
                let distance = s.width.abs_diff(width) + s.height.abs_diff(height);
                let key = (
                    distance,
                    reaching.is_none(),
                    format,
                    ((rate - want).abs() * 1000.0) as u64,
                );
                (
                    key,
                    Mode {
                        format,
                        width: s.width,
                        height: s.height,
                        fps: rate,
                    },
                )
            })
        })
        .min_by_key(|(key, _)| *key)
        .map(|(_, mode)| mode)
}

/// The first camera among `cameras`, for `video.source = "auto"`.
pub fn first_camera(cameras: &[CameraInfo]) -> Option<&CameraInfo> {
    cameras
        .iter()
        .find(|c| c.is_camera && c.formats.iter().any(|f| f.format.is_some()))
}

#[derive(Debug, thiserror::Error)]
pub enum CameraError {
    #[error("camera {path}: {what}: {source}")]
    Io {
        path: PathBuf,
        what: &'static str,
        source: io::Error,
    },
    #[error("camera {0}: not a capture device")]
    NotACamera(PathBuf),
    #[error("camera {0}: offers no format campeer can convert (YU12, NV12, YUYV, UYVY, MJPG)")]
    NoFormat(PathBuf),
    #[error("camera {path}: {source}")]
    Convert { path: PathBuf, source: ConvertError },
}

impl CameraError {
    /// The device is gone (unplugged) rather than misbehaving.
    pub fn is_gone(&self) -> bool {
        matches!(self, Self::Io { source, .. } if source.raw_os_error() == Some(libc::ENODEV))
    }

    /// No frame within the poll timeout: a stalled camera, worth waiting for.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Io { source, .. } if source.kind() == io::ErrorKind::TimedOut)
    }
}

fn io_err<'a>(path: &'a Path, what: &'static str) -> impl FnOnce(io::Error) -> CameraError + 'a {
    move |source| CameraError::Io {
        path: path.to_owned(),
        what,
        source,
    }
}

fn fps_of(f: Fraction) -> f64 {
    if f.numerator == 0 {
        0.0
    } else {
        f64::from(f.denominator) / f64::from(f.numerator)
    }
}

/// Every `/dev/video*` node with what it offers; nodes that cannot be opened are skipped.
pub fn list_cameras() -> Vec<CameraInfo> {
    let mut nodes: Vec<PathBuf> = v4l::context::enum_devices()
        .iter()
        .map(|n| n.path().to_owned())
        .collect();
    nodes.sort();
    nodes.iter().filter_map(|p| describe(p).ok()).collect()
}

pub fn describe(path: &Path) -> Result<CameraInfo, CameraError> {
    let dev = Device::with_path(path).map_err(io_err(path, "open"))?;
    let caps = dev.query_caps().map_err(io_err(path, "VIDIOC_QUERYCAP"))?;
    let camera = is_camera(caps.capabilities.bits());
    let mut formats = Vec::new();
    if camera {
        for desc in dev
            .enum_formats()
            .map_err(io_err(path, "VIDIOC_ENUM_FMT"))?
        {
            let format = PixelFormat::from_fourcc(desc.fourcc.repr);
            let mut sizes = Vec::new();
            for size in dev.enum_framesizes(desc.fourcc).unwrap_or_default() {
                let discrete: Vec<(u32, u32)> = match size.size {
                    FrameSizeEnum::Discrete(d) => vec![(d.width, d.height)],
                    FrameSizeEnum::Stepwise(s) => {
                        vec![(s.min_width, s.min_height), (s.max_width, s.max_height)]
                    }
                };
                for (w, h) in discrete {
                    let mut fps: Vec<f64> = dev
                        .enum_frameintervals(desc.fourcc, w, h)
                        .unwrap_or_default()
                        .into_iter()
                        .flat_map(|i| match i.interval {
                            FrameIntervalEnum::Discrete(f) => vec![fps_of(f)],
                            FrameIntervalEnum::Stepwise(s) => vec![fps_of(s.min), fps_of(s.max)],
                        })
                        .collect();
                    // Fastest first, as people read a camera's rates.
                    fps.sort_by(|a, b| b.total_cmp(a));
                    fps.dedup();
                    sizes.push(SizeRates {
                        width: w,
                        height: h,
                        fps,
                    });
                }
            }
            formats.push(FormatCaps {
                fourcc: desc.fourcc.str().unwrap_or("????").to_owned(),
                format,
                sizes,
            });
        }
    }
    Ok(CameraInfo {
        path: path.to_owned(),
        driver: caps.driver,
        card: caps.card,
        bus: caps.bus,
        is_camera: camera,
        formats,
    })
}

/// An open, negotiated camera.
pub struct Camera {
    path: PathBuf,
    stream: Stream<'static>,
    pub mode: Mode,
    stride: u32,
    converter: Converter,
    /// The first frame's driver timestamp and the instant it mapped to: driver time
    /// (CLOCK_MONOTONIC) is carried over to `Instant`s from there.
    epoch: Option<(Duration, Instant)>,
}

impl Camera {
    /// Opens `path` and negotiates the best mode for the wanted size and rate. The
    /// granted mode may differ: it is what `mode` says.
    pub fn open(path: &Path, width: u32, height: u32, fps: u32) -> Result<Self, CameraError> {
        let info = describe(path)?;
        if !info.is_camera {
            return Err(CameraError::NotACamera(path.to_owned()));
        }
        let wanted = choose_mode(&info.formats, width, height, fps)
            .ok_or_else(|| CameraError::NoFormat(path.to_owned()))?;
        Self::open_mode(path, wanted)
    }

    /// Opens `path` asking for exactly `wanted` (the driver may still adjust it).
    pub fn open_mode(path: &Path, wanted: Mode) -> Result<Self, CameraError> {
        let dev = Device::with_path(path).map_err(io_err(path, "open"))?;
        let set = v4l::Format::new(
            wanted.width,
            wanted.height,
            FourCC::new(&wanted.format.fourcc()),
        );
        let got = Capture::set_format(&dev, &set).map_err(io_err(path, "VIDIOC_S_FMT"))?;
        let format = PixelFormat::from_fourcc(got.fourcc.repr)
            .ok_or_else(|| CameraError::NoFormat(path.to_owned()))?;
        let rate = (wanted.fps.round() as u32).max(1);
        let params = Capture::set_params(&dev, &Parameters::with_fps(rate))
            .map_err(io_err(path, "VIDIOC_S_PARM"))?;
        let granted = Mode {
            format,
            width: got.width,
            height: got.height,
            fps: fps_of(params.interval),
        };
        let mut stream = Stream::with_buffers(&dev, Type::VideoCapture, 4)
            .map_err(io_err(path, "VIDIOC_REQBUFS"))?;
        // A stalled camera must not hold the thread past shutdown or a replug.
        stream.set_timeout(Duration::from_secs(1));
        Ok(Self {
            path: path.to_owned(),
            stream,
            mode: granted,
            stride: got.stride,
            converter: Converter::default(),
            epoch: None,
        })
    }

    /// Dequeues the next frame into `dst` (sized to the granted mode) and stamps it with
    /// the driver's capture time.
    pub fn next_frame(&mut self, dst: &mut I420Frame) -> Result<(), CameraError> {
        let (data, meta) =
            CaptureStream::next(&mut self.stream).map_err(io_err(&self.path, "VIDIOC_DQBUF"))?;
        let used = (meta.bytesused as usize).min(data.len());
        let ts = Duration::new(
            meta.timestamp.sec.max(0) as u64,
            (meta.timestamp.usec.max(0) as u32) * 1000,
        );
        self.converter
            .convert(self.mode.format, &data[..used], self.stride, dst)
            .map_err(|source| CameraError::Convert {
                path: self.path.clone(),
                source,
            })?;
        let (t0, i0) = *self.epoch.get_or_insert((ts, Instant::now()));
        dst.set_captured(i0 + ts.saturating_sub(t0));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(fourcc: &str, sizes: &[(u32, u32, &[f64])]) -> FormatCaps {
        let code: [u8; 4] = fourcc.as_bytes().try_into().unwrap();
        FormatCaps {
            fourcc: fourcc.into(),
            format: PixelFormat::from_fourcc(code),
            sizes: sizes
                .iter()
                .map(|&(width, height, fps)| SizeRates {
                    width,
                    height,
                    fps: fps.to_vec(),
                })
                .collect(),
        }
    }

    #[test]
    fn uncompressed_wins_when_it_reaches_the_rate() {
        let offered = [
            caps("MJPG", &[(640, 480, &[30.0, 15.0])]),
            caps("YUYV", &[(640, 480, &[30.0, 15.0])]),
            caps("NV12", &[(640, 480, &[30.0])]),
        ];
        let m = choose_mode(&offered, 640, 480, 30).unwrap();
        assert_eq!(
            (m.format, m.width, m.height, m.fps),
            (PixelFormat::Nv12, 640, 480, 30.0)
        );
    }

    #[test]
    fn mjpeg_wins_when_raw_is_too_slow() {
        // The usual USB webcam: YUYV at 640x480 only manages 10 fps.
        let offered = [
            caps("YUYV", &[(640, 480, &[10.0, 5.0]), (320, 240, &[30.0])]),
            caps("MJPG", &[(640, 480, &[30.0, 15.0])]),
        ];
        let m = choose_mode(&offered, 640, 480, 30).unwrap();
        assert_eq!((m.format, m.fps), (PixelFormat::Mjpeg, 30.0));
    }

    #[test]
    fn nearest_size_and_best_rate_when_nothing_matches() {
        // vivid's webcam input: 640x480 at 25 at most.
        let offered = [caps(
            "YUYV",
            &[
                (320, 180, &[50.0]),
                (640, 360, &[40.0]),
                (640, 480, &[25.0, 12.5]),
            ],
        )];
        let m = choose_mode(&offered, 640, 480, 30).unwrap();
        assert_eq!((m.width, m.height, m.fps), (640, 480, 25.0));
        let m = choose_mode(&offered, 600, 350, 30).unwrap();
        assert_eq!((m.width, m.height, m.fps), (640, 360, 40.0));
    }

    #[test]
    fn unknown_formats_are_never_chosen() {
        let offered = [
            caps("RGB3", &[(640, 480, &[30.0])]),
            caps("H264", &[(640, 480, &[30.0])]),
        ];
        assert_eq!(choose_mode(&offered, 640, 480, 30), None);
        assert_eq!(choose_mode(&[], 640, 480, 30), None);
    }

    #[test]
    fn only_streaming_single_planar_capture_nodes_are_cameras() {
        assert!(is_camera(0x0000_0001 | 0x0400_0000));
        assert!(!is_camera(0x0080_0000 | 0x0400_0000), "metadata node");
        assert!(
            !is_camera(0x0000_8000 | 0x0000_0001 | 0x0400_0000),
            "m2m codec"
        );
        assert!(!is_camera(0x0000_0001), "no streaming I/O");
    }

    #[test]
    fn auto_takes_the_first_usable_camera() {
        let cam = |path: &str, is_camera, formats| CameraInfo {
            path: path.into(),
            driver: "d".into(),
            card: "c".into(),
            bus: "b".into(),
            is_camera,
            formats,
        };
        let list = [
            cam("/dev/video0", false, vec![]),
            cam(
                "/dev/video1",
                true,
                vec![caps("H264", &[(640, 480, &[30.0])])],
            ),
            cam(
                "/dev/video2",
                true,
                vec![caps("YUYV", &[(640, 480, &[30.0])])],
            ),
        ];
        assert_eq!(first_camera(&list).unwrap().path, Path::new("/dev/video2"));
        assert!(first_camera(&list[..2]).is_none());
    }
}
