//! Opus for WebRTC: 48 kHz mono, 20 ms packets, in-band FEC so a lost packet is
//! recovered from the next one.

use super::{CHUNK_SAMPLES, SAMPLE_RATE};

#[derive(Debug, thiserror::Error)]
#[error("Opus {call}: {source}")]
pub struct OpusError {
    call: &'static str,
    source: opus::Error,
}

fn err(call: &'static str) -> impl FnOnce(opus::Error) -> OpusError {
    move |source| OpusError { call, source }
}

pub struct OpusEncoder {
    inner: opus::Encoder,
}

/// Big enough for any 20 ms packet at 510 kbps.
pub const MAX_PACKET: usize = 1500;

impl OpusEncoder {
    pub fn new(bitrate_kbps: u32) -> Result<Self, OpusError> {
        let mut inner =
            opus::Encoder::new(SAMPLE_RATE, opus::Channels::Mono, opus::Application::Voip)
                .map_err(err("encoder init"))?;
        inner
            .set_bitrate(opus::Bitrate::Bits(bitrate_kbps as i32 * 1000))
            .map_err(err("set bitrate"))?;
        inner.set_inband_fec(true).map_err(err("set FEC"))?;
        inner.set_packet_loss_perc(10).map_err(err("set loss"))?;
        Ok(Self { inner })
    }

    /// Encodes one 20 ms chunk into `out` (cleared first); returns the packet size.
    pub fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<usize, OpusError> {
        debug_assert_eq!(pcm.len(), CHUNK_SAMPLES);
        out.resize(MAX_PACKET, 0);
        let n = self.inner.encode(pcm, out).map_err(err("encode"))?;
        out.truncate(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::audio::tone::{Tone, estimate_frequency};

    #[test]
    fn tone_survives_encoding() {
        let mut enc = OpusEncoder::new(32).unwrap();
        let mut dec = opus::Decoder::new(SAMPLE_RATE, opus::Channels::Mono).unwrap();
        let mut tone = Tone::new(1000.0);
        let (mut chunk, mut packet) = (vec![0i16; CHUNK_SAMPLES], Vec::new());
        let mut decoded = Vec::new();
        for _ in 0..50 {
            tone.fill(&mut chunk);
            let n = enc.encode(&chunk, &mut packet).unwrap();
            assert!(n > 0 && n < 400, "{n} bytes");
            let mut pcm = vec![0i16; CHUNK_SAMPLES];
            let got = dec.decode(&packet, &mut pcm, false).unwrap();
            decoded.extend_from_slice(&pcm[..got]);
        }
        let est = estimate_frequency(&decoded[4800..]);
        assert!((est - 1000.0).abs() < 5.0, "{est}");
    }
}
