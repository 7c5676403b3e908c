//! One session per viewer: the registry routes room messages to sessions and enforces
//! limits; a peer owns one viewer's PeerConnection.

pub mod keyframe;
pub mod peer;
pub mod registry;
