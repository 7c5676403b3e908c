//! The built-in microphone: a sine tone, phase-continuous across chunks so it plays
//! without clicks.

use super::SAMPLE_RATE;

pub struct Tone {
    step: f64,
    phase: f64,
    amplitude: f64,
}

impl Tone {
    pub fn new(frequency_hz: f64) -> Self {
        Self {
            step: std::f64::consts::TAU * frequency_hz / f64::from(SAMPLE_RATE),
            phase: 0.0,
            // -12 dBFS: clearly audible, far from clipping after Opus.
            amplitude: 0.25 * f64::from(i16::MAX),
        }
    }

    pub fn fill(&mut self, out: &mut [i16]) {
        for s in out {
            *s = (self.phase.sin() * self.amplitude) as i16;
            self.phase = (self.phase + self.step) % std::f64::consts::TAU;
        }
    }
}

/// Frequency estimate from rising zero crossings; for tests and test viewers.
pub fn estimate_frequency(samples: &[i16]) -> f64 {
    let rising: Vec<usize> = samples
        .windows(2)
        .enumerate()
        .filter(|(_, w)| w[0] < 0 && w[1] >= 0)
        .map(|(i, _)| i)
        .collect();
    match (rising.first(), rising.last()) {
        (Some(&a), Some(&b)) if b > a => {
            (rising.len() - 1) as f64 * f64::from(SAMPLE_RATE) / (b - a) as f64
        }
        _ => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_second_has_the_frequency() {
        for hz in [440.0, 1000.0] {
            let mut tone = Tone::new(hz);
            let mut buf = vec![0i16; SAMPLE_RATE as usize];
            // In 20 ms chunks, as the source thread does.
            for chunk in buf.chunks_mut(super::super::CHUNK_SAMPLES) {
                tone.fill(chunk);
            }
            let est = estimate_frequency(&buf);
            assert!((est - hz).abs() < 1.0, "{hz}: {est}");
        }
    }
}
