//! The frame's way, one direction, never waiting for the network:
//! source (test pattern; camera later) → I420 → newest-frame slot → VP8 → [`EncodedFrame`]
//! → every session; tone (microphone later) → 20 ms chunks → Opus → the same sessions.
//! [`MediaPipeline`] owns every device and encoder; sessions only hold [`MediaFeed`]s.

pub mod audio;
pub mod devices;
pub mod frame;
pub mod pipeline;
pub mod video;

pub use frame::{EncodedFrame, I420Frame, MediaFeed, MediaKind, MediaStats};
pub use pipeline::MediaPipeline;
