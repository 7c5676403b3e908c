//! One session per viewer: the registry routes room messages to sessions and enforces
//! limits; a machine is one session's lifecycle (pure); a peer is the PeerConnection
//! edge that drives it.

pub mod candidate;
pub mod keyframe;
pub mod machine;
pub mod peer;
pub mod registry;
