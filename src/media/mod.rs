//! The frame's way, one direction, never waiting for the network:
//! source (camera or test pattern) → I420 → newest-frame slot → VP8 → [`EncodedFrame`]
//! → every session; microphone or tone → 20 ms chunks → Opus → the same sessions.
//! [`MediaPipeline`] owns every device and encoder; sessions only hold [`MediaFeed`]s.

pub mod audio;
pub mod devices;
pub mod frame;
pub mod pace;
pub mod pipeline;
pub mod slot;
pub mod threads;
pub mod video;

pub use frame::{EncodedFrame, I420Frame, MediaFeed, MediaKind, MediaStats, VideoLayer};
pub use pipeline::{MediaPipeline, VideoBitrate};

/// How often a stage blocked on its input looks at the cancellation token.
const STAGE_POLL: std::time::Duration = std::time::Duration::from_millis(100);
