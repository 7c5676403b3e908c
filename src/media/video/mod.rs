//! Video: sources that fill I420 frames, and the VP8 encoder.

pub mod convert;
pub mod test_pattern;
pub mod v4l2;
pub mod vp8;
