//! ALSA microphones, through alsa-lib: open a capture PCM at 48 kHz S16, read 20 ms
//! chunks, and recover from overruns. Blocking; owned by the `campeer-alsa` thread.

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
        "microphone {pcm:?}: gives {rate} Hz; campeer needs {SAMPLE_RATE} (resampling is not built yet)"
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
        let mut filled = 0;
        while filled < CHUNK_SAMPLES {
            let io = self.pcm.io_i16().map_err(|source| MicError::Alsa {
                pcm: self.name.clone(),
                what: "io",
                source,
            })?;
            let want = &mut self.raw[filled * self.channels..];
            match io.readi(want) {
                Ok(frames) => filled += frames,
                Err(e) if e.errno() == libc::EPIPE => {
                    self.overruns += 1;
                    tracing::warn!(pcm = %self.name, overruns = self.overruns, "microphone overrun; recovering");
                    self.pcm.prepare().map_err(|source| MicError::Alsa {
                        pcm: self.name.clone(),
                        what: "prepare after overrun",
                        source,
                    })?;
                }
                Err(source) => {
                    return Err(MicError::Alsa {
                        pcm: self.name.clone(),
                        what: "read",
                        source,
                    });
                }
            }
        }
        mix_to_mono(&self.raw, self.channels, out);
        Ok(())
    }
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

    #[test]
    fn stereo_is_averaged_and_mono_copied() {
        let mut out = [0i16; 3];
        mix_to_mono(&[100, 300, -100, -300, i16::MAX, i16::MAX], 2, &mut out);
        assert_eq!(out, [200, -200, i16::MAX]);
        mix_to_mono(&[1, 2, 3, 4], 1, &mut out);
        assert_eq!(out, [1, 2, 3]);
    }
}
