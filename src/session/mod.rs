//! One session per viewer: the registry routes room messages to sessions and enforces
//! limits per sender; a machine is one session's lifecycle (pure); a peer is the
//! PeerConnection edge that drives it, over a connection (built in `connection.rs`) that
//! sends the shared media (`send.rs`). Remote candidates are vetted in `candidate.rs`,
//! keyframe requests throttled in `keyframe.rs`, lost packets resent as RTX where the
//! viewer offers it (`rtx.rs`) and at most so often (`resend_gate.rs`); the latency
//! header extensions are `header_ext.rs`, the DTLS certificate all sessions share
//! `certificate.rs`, a viewer's DTLS goodbye `goodbye.rs`; `flight_repeat.rs` (on the
//! sockets of `flight_socket.rs`) resends a DTLS flight the viewer shows was lost. Each
//! session's live figures are `stats.rs`, filled from its send tasks and from webrtc-rs
//! (`link_report.rs`); each viewer's bandwidth estimate and the encoder's target are
//! `congestion.rs`; which of the encoder's temporal layers each viewer is sent,
//! `layers.rs`, and when a viewer below them all is sent a keyframe, `keyframe_drain.rs`.

pub mod candidate;
pub mod certificate;
pub mod congestion;
mod connection;
mod flight_repeat;
mod flight_socket;
mod goodbye;
pub mod header_ext;
pub mod keyframe;
mod keyframe_drain;
mod late_arrivals;
pub mod layers;
mod link_report;
pub mod machine;
pub mod peer;
mod queue_delay;
pub mod read_tap;
pub mod registry;
mod resend_gate;
mod rtx;
mod send;
pub mod stats;
