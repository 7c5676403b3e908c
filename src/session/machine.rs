//! One session's lifecycle as a pure state machine:
//!
//! ```text
//! offer applied ─▶ answer sent ─▶ candidates trickled ─▶ connected
//!        └───────────────┴─────────────────┴──▶ timed out | failed | closed
//! ```
//!
//! It owns the rules the PeerConnection edge (`peer.rs`) must keep: no local candidate
//! leaves before the answer (the reference page fails on a candidate without a remote
//! description), a handshake that has not connected by its deadline ends, and media
//! starts once, on the first connection. Every transition takes the time as input and
//! nothing here touches a socket, so each rule is tested directly.

use std::fmt;
use std::time::{Duration, Instant};

use super::candidate::{Refused, RefusedTally, RemoteCandidates};
use crate::signaling::protocol::Candidate;

/// Where a session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The viewer's offer is the remote description; no answer has left yet.
    OfferApplied,
    AnswerSent,
    /// At least one candidate went one way or the other after the answer.
    Trickling,
    Connected,
    Ended(Ending),
}

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// No connection by the handshake deadline.
    TimedOut(Duration),
    /// ICE or DTLS gave up (including a viewer that went away after connecting).
    Failed,
    /// Closed by campeer (shutdown) or by the viewer.
    Closed,
}

impl fmt::Display for Ending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ending::TimedOut(after) => write!(f, "no connection within {after:?}"),
            Ending::Failed => f.write_str("connection failed"),
            Ending::Closed => f.write_str("closed"),
        }
    }
}

/// The connection states the machine acts on; the edge maps the PeerConnection's onto
/// these and ignores the rest (new, connecting, disconnected: ICE may still recover).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    Connected,
    Failed,
    Closed,
}

/// What to do with a remote candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remote {
    Apply(Candidate),
    Refuse(Refused),
    /// The session has ended: nothing to apply it to.
    Ignore,
}

#[derive(Debug)]
pub struct Machine {
    phase: Phase,
    deadline: Instant,
    handshake: Duration,
    /// Local candidates gathered before the answer left.
    held: Vec<Candidate>,
    remote: RemoteCandidates,
}

impl Machine {
    /// A session whose offer was applied at `now`, which must connect within `handshake`
    /// and applies the remote candidates `remote` lets through.
    pub fn new(now: Instant, handshake: Duration, remote: RemoteCandidates) -> Self {
        Self {
            phase: Phase::OfferApplied,
            deadline: now + handshake,
            handshake,
            held: Vec::new(),
            remote,
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    pub fn ended(&self) -> Option<Ending> {
        match self.phase {
            Phase::Ended(ending) => Some(ending),
            _ => None,
        }
    }

    /// When [`tick`](Self::tick) must next be called: the handshake deadline, while the
    /// session is still handshaking.
    pub fn deadline(&self) -> Option<Instant> {
        matches!(
            self.phase,
            Phase::OfferApplied | Phase::AnswerSent | Phase::Trickling
        )
        .then_some(self.deadline)
    }

    /// Ends a handshake that is past its deadline.
    pub fn tick(&mut self, now: Instant) {
        if self.deadline().is_some_and(|d| now >= d) {
            self.end(Ending::TimedOut(self.handshake));
        }
    }

    /// The answer has left: returns the local candidates held until now, to send after it.
    pub fn answer_sent(&mut self, now: Instant) -> Vec<Candidate> {
        self.tick(now);
        if self.phase != Phase::OfferApplied {
            return Vec::new();
        }
        self.phase = Phase::AnswerSent;
        std::mem::take(&mut self.held)
    }

    /// A candidate campeer gathered: returns it when it may be sent now.
    pub fn local_candidate(&mut self, candidate: Candidate, now: Instant) -> Option<Candidate> {
        self.tick(now);
        match self.phase {
            Phase::OfferApplied => {
                self.held.push(candidate);
                None
            }
            Phase::Ended(_) => None,
            _ => {
                self.trickled();
                Some(candidate)
            }
        }
    }

    /// A candidate the viewer sent. The offer is already the remote description, so it
    /// can be applied in every phase but the last, if it passes [`RemoteCandidates`].
    pub fn remote_candidate(&mut self, candidate: Candidate, now: Instant) -> Remote {
        self.tick(now);
        if matches!(self.phase, Phase::Ended(_)) {
            return Remote::Ignore;
        }
        if let Err(refused) = self.remote.admit(&candidate.candidate) {
            return Remote::Refuse(refused);
        }
        self.trickled();
        Remote::Apply(candidate)
    }

    /// The remote candidates refused so far, by reason.
    pub fn refused_candidates(&self) -> RefusedTally {
        self.remote.refused()
    }

    /// The connection changed; returns `true` when media should start now (the first
    /// connection only).
    pub fn link(&mut self, link: Link, now: Instant) -> bool {
        self.tick(now);
        if matches!(self.phase, Phase::Ended(_)) {
            return false;
        }
        match link {
            Link::Connected if self.phase != Phase::Connected => {
                self.phase = Phase::Connected;
                true
            }
            Link::Connected => false,
            Link::Failed => {
                self.end(Ending::Failed);
                false
            }
            Link::Closed => {
                self.end(Ending::Closed);
                false
            }
        }
    }

    /// campeer closes the session (shutdown, or the registry let it go).
    pub fn close(&mut self) {
        self.end(Ending::Closed);
    }

    fn trickled(&mut self) {
        if self.phase == Phase::AnswerSent {
            self.phase = Phase::Trickling;
        }
    }

    fn end(&mut self, ending: Ending) {
        if !matches!(self.phase, Phase::Ended(_)) {
            self.phase = Phase::Ended(ending);
            self.held.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HANDSHAKE: Duration = Duration::from_secs(10);

    fn cand(n: u32) -> Candidate {
        Candidate {
            candidate: format!("candidate:{n} 1 udp 1 192.0.2.1 {n} typ host"),
            sdp_mid: Some("0".into()),
            sdp_mline_index: Some(0),
            username_fragment: Some("loc1".into()),
        }
    }

    fn machine() -> (Machine, Instant) {
        let t0 = Instant::now();
        (
            Machine::new(t0, HANDSHAKE, RemoteCandidates::new(32, false)),
            t0,
        )
    }

    #[test]
    fn a_local_candidate_before_the_answer_is_held_until_the_answer_leaves() {
        let (mut m, t0) = machine();
        assert_eq!(m.local_candidate(cand(1), t0), None);
        assert_eq!(m.local_candidate(cand(2), t0), None);
        assert_eq!(m.answer_sent(t0), vec![cand(1), cand(2)]);
        assert_eq!(m.phase(), Phase::AnswerSent);
        assert_eq!(m.local_candidate(cand(3), t0), Some(cand(3)));
        assert_eq!(m.phase(), Phase::Trickling);
    }

    #[test]
    fn held_candidates_leave_once_only() {
        let (mut m, t0) = machine();
        m.local_candidate(cand(1), t0);
        assert_eq!(m.answer_sent(t0).len(), 1);
        assert!(m.answer_sent(t0).is_empty());
    }

    #[test]
    fn a_remote_candidate_is_applied_from_the_start() {
        let (mut m, t0) = machine();
        assert_eq!(m.remote_candidate(cand(1), t0), Remote::Apply(cand(1)));
        assert_eq!(m.phase(), Phase::OfferApplied);
        m.answer_sent(t0);
        assert_eq!(m.remote_candidate(cand(2), t0), Remote::Apply(cand(2)));
        assert_eq!(m.phase(), Phase::Trickling);
    }

    #[test]
    fn a_refused_remote_candidate_is_not_applied_and_moves_nothing() {
        let (mut m, t0) = machine();
        m.answer_sent(t0);
        let mut tcp = cand(1);
        tcp.candidate = "candidate:1 1 tcp 1 192.0.2.1 9 typ host tcptype passive".into();
        assert_eq!(m.remote_candidate(tcp, t0), Remote::Refuse(Refused::Tcp));
        assert_eq!(m.phase(), Phase::AnswerSent);
    }

    #[test]
    fn media_starts_on_the_first_connection_only() {
        let (mut m, t0) = machine();
        m.answer_sent(t0);
        assert!(m.link(Link::Connected, t0 + Duration::from_secs(1)));
        assert_eq!(m.phase(), Phase::Connected);
        assert!(!m.link(Link::Connected, t0 + Duration::from_secs(2)));
    }

    #[test]
    fn no_connection_by_the_deadline_times_out() {
        let (mut m, t0) = machine();
        m.answer_sent(t0);
        assert_eq!(m.deadline(), Some(t0 + HANDSHAKE));
        m.tick(t0 + HANDSHAKE - Duration::from_millis(1));
        assert_eq!(m.ended(), None);
        m.tick(t0 + HANDSHAKE);
        assert_eq!(m.ended(), Some(Ending::TimedOut(HANDSHAKE)));
        assert_eq!(m.deadline(), None);
    }

    #[test]
    fn a_connection_reported_after_the_deadline_does_not_start_media() {
        let (mut m, t0) = machine();
        m.answer_sent(t0);
        assert!(!m.link(Link::Connected, t0 + HANDSHAKE + Duration::from_secs(1)));
        assert_eq!(m.ended(), Some(Ending::TimedOut(HANDSHAKE)));
    }

    #[test]
    fn a_connected_session_has_no_deadline() {
        let (mut m, t0) = machine();
        m.answer_sent(t0);
        m.link(Link::Connected, t0);
        assert_eq!(m.deadline(), None);
        m.tick(t0 + HANDSHAKE * 100);
        assert_eq!(m.phase(), Phase::Connected);
    }

    #[test]
    fn a_failed_link_ends_the_session_and_later_input_is_ignored() {
        let (mut m, t0) = machine();
        m.answer_sent(t0);
        m.link(Link::Connected, t0);
        m.link(Link::Failed, t0);
        assert_eq!(m.ended(), Some(Ending::Failed));
        assert_eq!(m.remote_candidate(cand(1), t0), Remote::Ignore);
        assert_eq!(m.local_candidate(cand(2), t0), None);
        assert!(!m.link(Link::Connected, t0));
        m.close();
        assert_eq!(m.ended(), Some(Ending::Failed), "the first ending stays");
    }

    #[test]
    fn closing_before_the_answer_drops_what_was_held() {
        let (mut m, t0) = machine();
        m.local_candidate(cand(1), t0);
        m.close();
        assert_eq!(m.ended(), Some(Ending::Closed));
        assert!(m.answer_sent(t0).is_empty());
    }

    #[test]
    fn the_viewer_closing_ends_the_session() {
        let (mut m, t0) = machine();
        m.answer_sent(t0);
        m.link(Link::Closed, t0);
        assert_eq!(m.ended(), Some(Ending::Closed));
    }
}
