//! ALSA microphones, through alsa-lib: open a capture PCM at 48 kHz S16, read 20 ms
//! chunks, and recover from overruns. Blocking; owned by the `campeer-alsa` thread.
//!
//! Rate conversion is left to alsa-lib's own `plug` layer (`default`, `plughw:…`), a
//! well-kept resampler already on every board; a raw `hw:` device that cannot do 48 kHz
//! is refused with a message that says so.

use alsa::pcm::{Access, Format, HwParams, PCM};
use alsa::{Direction, ValueOr};
use serde::Serialize;

use super::{CHUNK_SAMPLES, SAMPLE_RATE};

#[derive(Debug, thiserror::Error)]
pub enum MicError {
    #[error("microphone {pcm:?}: {what}: {source}")]
    Alsa {
        pcm: String,
        what: &'static str,
        source: alsa::Error,
    },
    #[error(
        "microphone {pcm:?}: gives {rate} Hz, not {SAMPLE_RATE}; name it through alsa-lib's plug layer (`plughw:…` instead of `hw:…`, or `default`) and alsa-lib resamples"
    )]
    Rate { pcm: String, rate: u32 },
}

/// One capture PCM as `campeer devices` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct PcmInfo {
    pub name: String,
    pub description: String,
}

/// Every PCM alsa-lib knows that can capture (hints without a direction can do both).
pub fn list_capture_pcms() -> Vec<PcmInfo> {
    let _quiet = AlsaLibMessages::capture();
    let Ok(hints) = alsa::device_name::HintIter::new_str(None, "pcm") else {
        return Vec::new();
    };
    hints
        .filter(|h| h.direction.is_none_or(|d| d == Direction::Capture))
        .filter_map(|h| {
            Some(PcmInfo {
                name: h.name?,
                description: h.desc.unwrap_or_default().replace('\n', " "),
            })
        })
        .collect()
}

pub struct Microphone {
    name: String,
    pcm: PCM,
    channels: usize,
    /// Interleaved samples as the device delivers them, before the mix to mono.
    raw: Vec<i16>,
    pub overruns: u64,
}

impl Microphone {
    pub fn open(name: &str) -> Result<Self, MicError> {
        let _quiet = AlsaLibMessages::capture();
        let err = |what| {
            move |source| MicError::Alsa {
                pcm: name.to_owned(),
                what,
                source,
            }
        };
        let pcm = PCM::new(name, Direction::Capture, false).map_err(err("open"))?;
        let channels = {
            let hw = HwParams::any(&pcm).map_err(err("hw params"))?;
            hw.set_access(Access::RWInterleaved)
                .map_err(err("interleaved access"))?;
            hw.set_format(Format::s16()).map_err(err("S16 format"))?;
            let channels = hw.set_channels_near(1).map_err(err("channels"))?;
            let rate = hw
                .set_rate_near(SAMPLE_RATE, ValueOr::Nearest)
                .map_err(err("rate"))?;
            if rate != SAMPLE_RATE {
                return Err(MicError::Rate {
                    pcm: name.to_owned(),
                    rate,
                });
            }
            hw.set_period_size_near(CHUNK_SAMPLES as _, ValueOr::Nearest)
                .map_err(err("period"))?;
            // Four periods: room for a scheduling hiccup, little latency.
            hw.set_buffer_size_near(4 * CHUNK_SAMPLES as alsa::pcm::Frames)
                .map_err(err("buffer"))?;
            pcm.hw_params(&hw).map_err(err("apply hw params"))?;
            channels as usize
        };
        pcm.prepare().map_err(err("prepare"))?;
        Ok(Self {
            name: name.to_owned(),
            pcm,
            channels,
            raw: vec![0; CHUNK_SAMPLES * channels],
            overruns: 0,
        })
    }

    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Fills `out` with the next 20 ms, mixed to mono. An overrun (the reader fell
    /// behind) is recovered and counted; other errors mean the device is unusable.
    pub fn read_chunk(&mut self, out: &mut [i16]) -> Result<(), MicError> {
        let before = self.overruns;
        let mut reader = PcmReader(&self.pcm);
        let result = read_frames(
            &mut reader,
            &mut self.raw,
            self.channels,
            &mut self.overruns,
        );
        if self.overruns > before {
            tracing::warn!(pcm = %self.name, overruns = self.overruns, "microphone overrun recovered");
        }
        result.map_err(|(what, source)| MicError::Alsa {
            pcm: self.name.clone(),
            what,
            source,
        })?;
        mix_to_mono(&self.raw, self.channels, out);
        Ok(())
    }
}

/// alsa-lib prints its own diagnostics on stderr (eight lines for a missing `default`
/// card, every second while a microphone is away); while this lives they go to this
/// thread's debug log instead, and the error campeer returns says what failed.
struct AlsaLibMessages(Option<std::rc::Rc<std::cell::RefCell<alsa::Output>>>);

impl AlsaLibMessages {
    fn capture() -> Self {
        Self(alsa::Output::local_error_handler().ok())
    }

    /// What alsa-lib said on this thread since `capture`.
    fn text(&self) -> String {
        self.0
            .as_ref()
            .map(|out| out.borrow().to_string())
            .unwrap_or_default()
    }
}

impl Drop for AlsaLibMessages {
    fn drop(&mut self) {
        // SAFETY: restores alsa-lib's default handler for this thread; takes no pointers.
        unsafe { alsa_sys::snd_lib_error_set_local(None) };
        let text = self.text();
        if !text.is_empty() {
            tracing::debug!(alsa_lib = %text.trim_end(), "alsa-lib said");
        }
    }
}

/// The two calls the capture loop makes, so its recovery is tested without a device.
pub trait CaptureReader {
    fn readi(&mut self, buf: &mut [i16]) -> Result<usize, alsa::Error>;
    fn prepare(&mut self) -> Result<(), alsa::Error>;
}

struct PcmReader<'a>(&'a PCM);

impl CaptureReader for PcmReader<'_> {
    fn readi(&mut self, buf: &mut [i16]) -> Result<usize, alsa::Error> {
        self.0.io_i16()?.readi(buf)
    }

    fn prepare(&mut self) -> Result<(), alsa::Error> {
        self.0.prepare()
    }
}

/// Reads until `raw` (interleaved, `channels` wide) is full. An overrun (EPIPE) loses
/// what the buffer held: the stream is prepared again, counted, and reading goes on.
pub fn read_frames(
    reader: &mut impl CaptureReader,
    raw: &mut [i16],
    channels: usize,
    overruns: &mut u64,
) -> Result<(), (&'static str, alsa::Error)> {
    let frames = raw.len() / channels;
    let mut filled = 0;
    while filled < frames {
        match reader.readi(&mut raw[filled * channels..]) {
            Ok(n) => filled += n,
            Err(e) if e.errno() == libc::EPIPE => {
                *overruns += 1;
                reader.prepare().map_err(|e| ("prepare after overrun", e))?;
            }
            Err(e) => return Err(("read", e)),
        }
    }
    Ok(())
}

/// Averages interleaved channels into one.
pub fn mix_to_mono(interleaved: &[i16], channels: usize, out: &mut [i16]) {
    if channels == 1 {
        out.copy_from_slice(&interleaved[..out.len()]);
        return;
    }
    for (o, frame) in out.iter_mut().zip(interleaved.chunks_exact(channels)) {
        *o = (frame.iter().map(|&s| i32::from(s)).sum::<i32>() / channels as i32) as i16;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Delivers `script` in turn: a frame count, or an errno.
    struct Scripted {
        script: Vec<Result<usize, i32>>,
        prepared: u32,
    }

    impl CaptureReader for Scripted {
        fn readi(&mut self, buf: &mut [i16]) -> Result<usize, alsa::Error> {
            match self.script.remove(0) {
                Ok(n) => {
                    buf[..n].fill(7);
                    Ok(n)
                }
                Err(errno) => Err(alsa::Error::new("snd_pcm_readi", errno)),
            }
        }

        fn prepare(&mut self) -> Result<(), alsa::Error> {
            self.prepared += 1;
            Ok(())
        }
    }

    #[test]
    fn an_overrun_is_recovered_and_counted() {
        let mut r = Scripted {
            script: vec![Ok(400), Err(libc::EPIPE), Ok(300), Ok(260)],
            prepared: 0,
        };
        let (mut raw, mut overruns) = (vec![0i16; 960], 0);
        read_frames(&mut r, &mut raw, 1, &mut overruns).unwrap();
        assert_eq!((overruns, r.prepared), (1, 1));
        assert!(
            raw.iter().all(|&s| s == 7),
            "the chunk is filled after the overrun"
        );
    }

    #[test]
    fn a_vanished_device_is_an_error() {
        let mut r = Scripted {
            script: vec![Ok(100), Err(libc::ENODEV)],
            prepared: 0,
        };
        let (mut raw, mut overruns) = (vec![0i16; 960], 0);
        let (what, e) = read_frames(&mut r, &mut raw, 1, &mut overruns).unwrap_err();
        assert_eq!((what, e.errno()), ("read", libc::ENODEV));
    }

    #[test]
    fn alsa_libs_own_messages_are_collected_and_the_error_names_the_pcm() {
        let e = Microphone::open("campeer_no_such_pcm")
            .err()
            .expect("no such PCM");
        assert!(e.to_string().contains("campeer_no_such_pcm"), "{e}");
        let quiet = AlsaLibMessages::capture();
        assert!(PCM::new("campeer_no_such_pcm", Direction::Capture, false).is_err());
        assert!(
            quiet.text().contains("campeer_no_such_pcm"),
            "{:?}",
            quiet.text()
        );
    }

    #[test]
    fn stereo_is_averaged_and_mono_copied() {
        let mut out = [0i16; 3];
        mix_to_mono(&[100, 300, -100, -300, i16::MAX, i16::MAX], 2, &mut out);
        assert_eq!(out, [200, -200, i16::MAX]);
        mix_to_mono(&[1, 2, 3, 4], 1, &mut out);
        assert_eq!(out, [1, 2, 3]);
    }
}
