//! Audio: sources that fill 20 ms chunks, and the Opus encoder.

pub mod alsa;
pub mod opus;
pub mod tone;

/// WebRTC's Opus clock and the rate every source delivers.
pub const SAMPLE_RATE: u32 = 48_000;
/// 20 ms at 48 kHz: one Opus packet, one RTP packet.
pub const CHUNK_SAMPLES: usize = 960;
