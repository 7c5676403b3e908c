//! Video: the source stage (camera or test pattern, filling I420 frames) and the encode
//! stage (VP8), with the devices and codecs they drive.

pub mod convert;
pub mod encode;
pub mod source;
pub mod test_pattern;
pub mod token_buffer;
pub mod v4l2;
pub mod vp8;
pub mod vp8_rtp;
