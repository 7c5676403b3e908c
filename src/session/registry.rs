//! Which viewer a room message belongs to, and how many viewers may exist.
//!
//! A pure state machine over [`SessionId`]s: it never touches a socket or a clock (time
//! is passed in), so routing, limits and the early-candidate buffer are tested directly.
//! `H` is whatever the daemon keeps per live session (a handle to its task).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::signaling::protocol::{Candidate, SessionId};

#[derive(Debug, Clone)]
pub struct Limits {
    pub max_sessions: usize,
    /// Offers accepted in a burst, then `offers_per_second` on average: a flooding
    /// page cannot make campeer build peer connections faster than this.
    pub offer_burst: u32,
    pub offers_per_second: f64,
    /// How long a candidate for an unknown session waits for its offer.
    pub candidate_grace: Duration,
    pub max_early_candidates: usize,
    pub max_early_sessions: usize,
}

impl Limits {
    pub fn with_max_sessions(max_sessions: usize) -> Self {
        Self {
            max_sessions,
            offer_burst: 10,
            offers_per_second: 2.0,
            candidate_grace: Duration::from_secs(10),
            max_early_candidates: 32,
            max_early_sessions: 64,
        }
    }
}

/// Why an offer gets no session.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum Refusal {
    #[error("a session with this ufrag already exists")]
    Duplicate,
    #[error("already serving the maximum of {0} viewers")]
    Full(usize),
    #[error("offers arrive faster than {0}/s")]
    Flood(f64),
}

/// Where one incoming candidate went.
#[derive(Debug, PartialEq)]
pub enum Route<'a, H> {
    /// To this live session, with the candidate handed back.
    Deliver(&'a H, Candidate),
    /// Held until its offer arrives or the grace period ends.
    Held,
    /// Dropped: end-of-candidates, or the early buffer is full.
    Dropped,
}

struct Early {
    since: Instant,
    candidates: Vec<Candidate>,
}

pub struct Registry<H> {
    limits: Limits,
    /// Oldest first, so the newest session is the last.
    sessions: Vec<(SessionId, H)>,
    early: HashMap<SessionId, Early>,
    /// Candidates that named no session while none existed: given to the next one.
    anonymous: Option<Early>,
    tokens: f64,
    refilled: Instant,
}

impl<H> Registry<H> {
    pub fn new(limits: Limits, now: Instant) -> Self {
        Self {
            tokens: f64::from(limits.offer_burst),
            limits,
            sessions: Vec::new(),
            early: HashMap::new(),
            anonymous: None,
            refilled: now,
        }
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    pub fn contains(&self, id: &SessionId) -> bool {
        self.sessions.iter().any(|(s, _)| s == id)
    }

    /// Decides on an offer. On acceptance returns the candidates that arrived before it,
    /// and the caller [`insert`](Self::insert)s the session once it is built.
    pub fn admit(&mut self, id: &SessionId, now: Instant) -> Result<Vec<Candidate>, Refusal> {
        if self.contains(id) {
            return Err(Refusal::Duplicate);
        }
        if self.sessions.len() >= self.limits.max_sessions {
            return Err(Refusal::Full(self.limits.max_sessions));
        }
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.refilled = now;
        self.tokens = (self.tokens + elapsed * self.limits.offers_per_second)
            .min(f64::from(self.limits.offer_burst));
        if self.tokens < 1.0 {
            return Err(Refusal::Flood(self.limits.offers_per_second));
        }
        self.tokens -= 1.0;
        let mut early = self
            .early
            .remove(id)
            .map(|e| e.candidates)
            .unwrap_or_default();
        if let Some(anon) = self.anonymous.take() {
            early.extend(anon.candidates);
        }
        Ok(early)
    }

    pub fn insert(&mut self, id: SessionId, handle: H) {
        self.sessions.push((id, handle));
    }

    pub fn remove(&mut self, id: &SessionId) -> Option<H> {
        let at = self.sessions.iter().position(|(s, _)| s == id)?;
        Some(self.sessions.remove(at).1)
    }

    pub fn drain(&mut self) -> impl Iterator<Item = (SessionId, H)> + '_ {
        self.sessions.drain(..)
    }

    /// Routes a candidate by its `usernameFragment`; one without goes to the newest
    /// session (PROTOCOL.md), and one whose session does not exist yet is held.
    pub fn route(&mut self, candidate: Candidate, now: Instant) -> Route<'_, H> {
        if candidate.is_end_of_candidates() {
            return Route::Dropped;
        }
        let Some(id) = candidate.session() else {
            if let Some((_, h)) = self.sessions.last() {
                return Route::Deliver(h, candidate);
            }
            let anon = self.anonymous.get_or_insert_with(|| Early {
                since: now,
                candidates: Vec::new(),
            });
            return hold(anon, candidate, self.limits.max_early_candidates);
        };
        if let Some((_, h)) = self.sessions.iter().find(|(s, _)| *s == id) {
            return Route::Deliver(h, candidate);
        }
        if !self.early.contains_key(&id) && self.early.len() >= self.limits.max_early_sessions {
            return Route::Dropped;
        }
        let early = self.early.entry(id).or_insert_with(|| Early {
            since: now,
            candidates: Vec::new(),
        });
        hold(early, candidate, self.limits.max_early_candidates)
    }

    /// Forgets held candidates whose offer never came; returns how many.
    pub fn prune(&mut self, now: Instant) -> usize {
        let grace = self.limits.candidate_grace;
        let expired = |e: &Early| now.saturating_duration_since(e.since) > grace;
        let mut dropped = 0;
        self.early.retain(|_, e| {
            let keep = !expired(e);
            if !keep {
                dropped += e.candidates.len();
            }
            keep
        });
        if self.anonymous.as_ref().is_some_and(expired) {
            dropped += self.anonymous.take().map_or(0, |e| e.candidates.len());
        }
        dropped
    }
}

fn hold<'a, H>(early: &mut Early, candidate: Candidate, max: usize) -> Route<'a, H> {
    if early.candidates.len() >= max {
        return Route::Dropped;
    }
    early.candidates.push(candidate);
    Route::Held
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> SessionId {
        SessionId::parse(s).unwrap()
    }

    fn cand(ufrag: Option<&str>, n: u32) -> Candidate {
        Candidate {
            candidate: format!("candidate:{n} 1 udp 1 127.0.0.1 {n} typ host"),
            sdp_mid: Some("0".into()),
            sdp_mline_index: Some(0),
            username_fragment: ufrag.map(str::to_owned),
        }
    }

    fn registry(max: usize) -> (Registry<u32>, Instant) {
        let now = Instant::now();
        (Registry::new(Limits::with_max_sessions(max), now), now)
    }

    #[test]
    fn candidates_route_by_ufrag_and_bare_ones_to_the_newest() {
        let (mut r, now) = registry(4);
        r.admit(&id("aaaa"), now).unwrap();
        r.insert(id("aaaa"), 1);
        r.admit(&id("bbbb"), now).unwrap();
        r.insert(id("bbbb"), 2);
        let c = cand(Some("aaaa"), 1);
        assert_eq!(r.route(c.clone(), now), Route::Deliver(&1, c));
        let c = cand(Some("bbbb"), 2);
        assert_eq!(r.route(c.clone(), now), Route::Deliver(&2, c));
        let c = cand(None, 3);
        assert_eq!(r.route(c.clone(), now), Route::Deliver(&2, c));
        let mut eoc = cand(Some("aaaa"), 1);
        eoc.candidate.clear();
        assert_eq!(r.route(eoc, now), Route::Dropped);
    }

    #[test]
    fn early_candidates_wait_for_their_offer() {
        let (mut r, now) = registry(4);
        assert_eq!(r.route(cand(Some("cccc"), 1), now), Route::Held);
        assert_eq!(r.route(cand(Some("cccc"), 2), now), Route::Held);
        assert_eq!(r.route(cand(None, 3), now), Route::Held);
        let early = r.admit(&id("cccc"), now).unwrap();
        assert_eq!(early.len(), 3);
        // Given away once only.
        r.insert(id("cccc"), 7);
        r.remove(&id("cccc"));
        assert!(r.admit(&id("cccc"), now).unwrap().is_empty());
    }

    #[test]
    fn held_candidates_expire_after_the_grace_period() {
        let (mut r, now) = registry(4);
        r.route(cand(Some("dddd"), 1), now);
        r.route(cand(None, 2), now);
        assert_eq!(r.prune(now + Duration::from_secs(1)), 0);
        assert_eq!(r.prune(now + Duration::from_secs(11)), 2);
        assert!(
            r.admit(&id("dddd"), now + Duration::from_secs(11))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn early_buffer_is_bounded() {
        let (mut r, now) = registry(4);
        for n in 0..32 {
            assert_eq!(r.route(cand(Some("eeee"), n), now), Route::Held);
        }
        assert_eq!(r.route(cand(Some("eeee"), 99), now), Route::Dropped);
        for n in 0..63 {
            r.route(cand(Some(&format!("u{n:03}")), 1), now);
        }
        assert_eq!(r.route(cand(Some("zzzz"), 1), now), Route::Dropped);
    }

    #[test]
    fn limits_refuse_duplicates_full_rooms_and_floods() {
        let (mut r, now) = registry(2);
        r.admit(&id("aaaa"), now).unwrap();
        r.insert(id("aaaa"), 1);
        assert_eq!(r.admit(&id("aaaa"), now), Err(Refusal::Duplicate));
        r.admit(&id("bbbb"), now).unwrap();
        r.insert(id("bbbb"), 2);
        assert_eq!(r.admit(&id("cccc"), now), Err(Refusal::Full(2)));
        assert_eq!(r.remove(&id("aaaa")), Some(1));
        assert_eq!(r.len(), 1);

        let (mut r, now) = registry(1000);
        let accepted = (0..100)
            .filter(|n| r.admit(&id(&format!("f{n:03}")), now).is_ok())
            .count();
        assert_eq!(accepted, 10, "the burst");
        assert!(
            r.admit(&id("late"), now + Duration::from_millis(100))
                .is_err()
        );
        assert!(r.admit(&id("later"), now + Duration::from_secs(1)).is_ok());
    }
}
