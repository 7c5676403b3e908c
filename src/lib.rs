//! campeer: a camera board as a WebRTC peer.
//!
//! The frame's way: [`media`] (capture → convert → encode) → shared encoded frames →
//! [`session`] (one per viewer). The offer's way: [`signaling`] → [`session::registry`] →
//! [`session::peer`]. [`daemon`] wires them together under one shutdown token.

pub mod access;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod heap;
mod line_budget;
pub mod log_limit;
pub mod media;
pub mod sdp;
pub mod session;
pub mod signaling;
pub mod status;
pub mod systemd;
pub mod turn;
