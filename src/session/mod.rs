//! One session per viewer: the registry routes room messages to sessions and enforces
//! limits per sender; a machine is one session's lifecycle (pure); a peer is the
//! PeerConnection edge that drives it, over a connection (built in `connection.rs`) that
//! sends the shared media (`send.rs`). Remote candidates are vetted in `candidate.rs`,
//! keyframe requests throttled in `keyframe.rs`.

pub mod candidate;
mod connection;
pub mod keyframe;
pub mod machine;
pub mod peer;
pub mod registry;
mod send;
