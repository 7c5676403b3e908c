//! TEMPORARY stub until the media pipeline lands.
pub mod frame;
pub use frame::{EncodedFrame, MediaFeed, MediaKind};
