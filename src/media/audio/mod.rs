//! Audio: the source stage (microphone or tone, filling 20 ms chunks) and the encode
//! stage (Opus), with the device and codec they drive.

pub mod alsa;
pub mod encode;
pub mod opus;
pub mod source;
pub mod tone;

/// WebRTC's Opus clock and the rate every source delivers.
pub const SAMPLE_RATE: u32 = 48_000;
/// 20 ms at 48 kHz: one Opus packet, one RTP packet.
pub const CHUNK_SAMPLES: usize = 960;
