//! Which viewer a room message belongs to, and how many viewers may exist.
//!
//! A pure state machine over [`SessionId`]s: it never touches a socket or a clock (time
//! is passed in), so routing, limits and the early-candidate buffer are tested directly.
//! `H` is whatever the daemon keeps per live session (a handle to its task).
//!
//! Offers are admitted per sender, not from one bucket for the whole room (where one
//! flooder denied every viewer): a sender is known by its offer's ufrag and by its DTLS
//! fingerprint, and each of those has its own allowance. Offers without a fingerprint
//! (which cannot become a DTLS session anyway) share one. A sender that makes up a new
//! ufrag and fingerprint for every offer is a new sender each time: against that only the
//! slots (`max_sessions`, each freed when its handshake times out) and the access proof
//! of issue 14 help.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::signaling::protocol::{Candidate, SessionId};

#[derive(Debug, Clone)]
pub struct Limits {
    pub max_sessions: usize,
    /// Offers one sender may make in a burst, then `offers_per_second` on average.
    pub offer_burst: u32,
    pub offers_per_second: f64,
    /// Senders remembered at once; past that the longest idle is forgotten first.
    pub max_senders: usize,
    /// How long a candidate for an unknown session waits for its offer.
    pub candidate_grace: Duration,
    pub max_early_candidates: usize,
    pub max_early_sessions: usize,
}

impl Limits {
    pub fn with_max_sessions(max_sessions: usize) -> Self {
        Self {
            max_sessions,
            // A page retries about every 8 s, with a new ufrag and fingerprint each time.
            offer_burst: 3,
            offers_per_second: 0.5,
            max_senders: 1024,
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
    #[error("this sender's offers arrive faster than {0}/s")]
    Flood(f64),
}

/// Who made an offer, as far as the room lets campeer tell.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum SenderKey {
    Ufrag(SessionId),
    /// The offer's first `a=fingerprint` value, case-folded.
    Fingerprint(String),
    /// Offers with no (or no sane) fingerprint.
    Unsigned,
}

/// Longer than any real `a=fingerprint` value (sha-512: 199 bytes).
const MAX_FINGERPRINT_BYTES: usize = 256;

impl SenderKey {
    fn of_fingerprint(fingerprint: Option<&str>) -> Self {
        match fingerprint.map(str::trim) {
            Some(f) if !f.is_empty() && f.len() <= MAX_FINGERPRINT_BYTES => {
                Self::Fingerprint(f.to_ascii_lowercase())
            }
            _ => Self::Unsigned,
        }
    }
}

/// A token bucket: `tokens` offers may be made now.
#[derive(Debug, Clone, Copy)]
struct Allowance {
    tokens: f64,
    refilled: Instant,
}

impl Allowance {
    fn refill(&mut self, limits: &Limits, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.refilled = now;
        self.tokens =
            (self.tokens + elapsed * limits.offers_per_second).min(f64::from(limits.offer_burst));
        self.tokens
    }
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
    senders: HashMap<SenderKey, Allowance>,
}

impl<H> Registry<H> {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            sessions: Vec::new(),
            early: HashMap::new(),
            anonymous: None,
            senders: HashMap::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    pub fn is_full(&self) -> bool {
        self.sessions.len() >= self.limits.max_sessions
    }

    /// Takes out the oldest session for which `lost` holds, to give its slot to a new
    /// viewer when all are taken.
    pub fn evict_oldest(&mut self, lost: impl Fn(&H) -> bool) -> Option<(SessionId, H)> {
        let at = self.sessions.iter().position(|(_, h)| lost(h))?;
        Some(self.sessions.remove(at))
    }

    pub fn contains(&self, id: &SessionId) -> bool {
        self.sessions.iter().any(|(s, _)| s == id)
    }

    /// Decides on the offer `id` whose first `a=fingerprint` is `fingerprint`. On
    /// acceptance returns the candidates that arrived before it, and the caller
    /// [`insert`](Self::insert)s the session once it is built.
    pub fn admit(
        &mut self,
        id: &SessionId,
        fingerprint: Option<&str>,
        now: Instant,
    ) -> Result<Vec<Candidate>, Refusal> {
        if self.contains(id) {
            return Err(Refusal::Duplicate);
        }
        if self.is_full() {
            return Err(Refusal::Full(self.limits.max_sessions));
        }
        self.charge(
            [
                SenderKey::Ufrag(id.clone()),
                SenderKey::of_fingerprint(fingerprint),
            ],
            now,
        )?;
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

    /// Takes one offer from each of `keys`' allowances, or none if one is spent.
    fn charge(&mut self, keys: [SenderKey; 2], now: Instant) -> Result<(), Refusal> {
        let fresh = Allowance {
            tokens: f64::from(self.limits.offer_burst),
            refilled: now,
        };
        let mut allowances = keys
            .each_ref()
            .map(|k| self.senders.get(k).copied().unwrap_or(fresh));
        if allowances
            .iter_mut()
            .any(|a| a.refill(&self.limits, now) < 1.0)
        {
            return Err(Refusal::Flood(self.limits.offers_per_second));
        }
        for (key, mut allowance) in keys.into_iter().zip(allowances) {
            allowance.tokens -= 1.0;
            if !self.senders.contains_key(&key) && self.senders.len() >= self.limits.max_senders {
                self.forget_longest_idle_sender();
            }
            self.senders.insert(key, allowance);
        }
        Ok(())
    }

    fn forget_longest_idle_sender(&mut self) {
        let idle = self
            .senders
            .iter()
            .min_by_key(|(_, a)| a.refilled)
            .map(|(k, _)| k.clone());
        if let Some(key) = idle {
            self.senders.remove(&key);
        }
    }

    pub fn insert(&mut self, id: SessionId, handle: H) {
        self.sessions.push((id, handle));
    }

    pub fn remove(&mut self, id: &SessionId) -> Option<H> {
        let at = self.sessions.iter().position(|(s, _)| s == id)?;
        Some(self.sessions.remove(at).1)
    }

    /// The live sessions, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = (&SessionId, &H)> {
        self.sessions.iter().map(|(id, h)| (id, h))
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

    /// Forgets held candidates whose offer never came (returns how many), and senders
    /// whose allowance is whole again (they would start afresh anyway).
    pub fn prune(&mut self, now: Instant) -> usize {
        let limits = &self.limits;
        self.senders
            .retain(|_, a| a.refill(limits, now) < f64::from(limits.offer_burst));
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
        (
            Registry::new(Limits::with_max_sessions(max)),
            Instant::now(),
        )
    }

    /// An offer as a browser makes it: a new ufrag and a new fingerprint each time.
    fn offer(r: &mut Registry<u32>, ufrag: &str, now: Instant) -> Result<Vec<Candidate>, Refusal> {
        r.admit(&id(ufrag), Some(&format!("sha-256 {ufrag}")), now)
    }

    #[test]
    fn candidates_route_by_ufrag_and_bare_ones_to_the_newest() {
        let (mut r, now) = registry(4);
        offer(&mut r, "aaaa", now).unwrap();
        r.insert(id("aaaa"), 1);
        offer(&mut r, "bbbb", now).unwrap();
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
        let early = offer(&mut r, "cccc", now).unwrap();
        assert_eq!(early.len(), 3);
        // Given away once only.
        r.insert(id("cccc"), 7);
        r.remove(&id("cccc"));
        assert!(offer(&mut r, "cccc", now).unwrap().is_empty());
    }

    #[test]
    fn held_candidates_expire_after_the_grace_period() {
        let (mut r, now) = registry(4);
        r.route(cand(Some("dddd"), 1), now);
        r.route(cand(None, 2), now);
        assert_eq!(r.prune(now + Duration::from_secs(1)), 0);
        assert_eq!(r.prune(now + Duration::from_secs(11)), 2);
        assert!(
            offer(&mut r, "dddd", now + Duration::from_secs(11))
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
    fn limits_refuse_duplicates_and_full_rooms() {
        let (mut r, now) = registry(2);
        offer(&mut r, "aaaa", now).unwrap();
        r.insert(id("aaaa"), 1);
        assert_eq!(offer(&mut r, "aaaa", now), Err(Refusal::Duplicate));
        offer(&mut r, "bbbb", now).unwrap();
        r.insert(id("bbbb"), 2);
        assert_eq!(offer(&mut r, "cccc", now), Err(Refusal::Full(2)));
        assert_eq!(r.remove(&id("aaaa")), Some(1));
        assert_eq!(r.len(), 1);
    }

    #[test]
    fn a_full_house_gives_the_oldest_lost_slot_to_a_new_viewer() {
        let (mut r, now) = registry(3);
        for (name, handle) in [("aaaa", 1), ("bbbb", 2), ("cccc", 3)] {
            offer(&mut r, name, now).unwrap();
            r.insert(id(name), handle);
        }
        let lost = |h: &u32| *h != 1;
        assert!(r.is_full());
        assert_eq!(r.evict_oldest(lost), Some((id("bbbb"), 2)));
        assert!(offer(&mut r, "dddd", now).is_ok());
        assert_eq!(
            r.evict_oldest(|_| false),
            None,
            "no slot is taken from a live viewer"
        );
    }

    /// A flooder reusing its DTLS identity under made-up ufrags.
    fn flood(r: &mut Registry<u32>, now: Instant) -> usize {
        (0..100)
            .filter(|n| {
                r.admit(&id(&format!("f{n:03}")), Some("sha-256 AA:BB"), now)
                    .is_ok()
            })
            .count()
    }

    #[test]
    fn one_sender_flooding_leaves_other_viewers_their_offers() {
        let (mut r, now) = registry(1000);
        assert_eq!(flood(&mut r, now), 3, "the flooder's burst");
        assert!(offer(&mut r, "viewer1", now).is_ok());
        assert!(offer(&mut r, "viewer2", now).is_ok());
    }

    #[test]
    fn a_sender_is_known_by_its_fingerprint_in_any_case() {
        let (mut r, now) = registry(1000);
        flood(&mut r, now);
        let refused = r.admit(&id("other"), Some("SHA-256 aa:bb"), now);
        assert_eq!(refused, Err(Refusal::Flood(0.5)));
    }

    #[test]
    fn a_sender_is_known_by_its_ufrag_across_fingerprints() {
        let (mut r, now) = registry(1000);
        for n in 0..3 {
            let fp = format!("sha-256 {n}");
            r.admit(&id("same"), Some(&fp), now).unwrap();
        }
        assert!(r.admit(&id("same"), Some("sha-256 new"), now).is_err());
    }

    #[test]
    fn offers_without_a_fingerprint_share_one_allowance() {
        let (mut r, now) = registry(1000);
        let unsigned = (0..10)
            .filter(|n| r.admit(&id(&format!("u{n:03}")), None, now).is_ok())
            .count();
        assert_eq!(unsigned, 3);
        let absurd = "x".repeat(MAX_FINGERPRINT_BYTES + 1);
        assert!(r.admit(&id("long"), Some(&absurd), now).is_err());
        assert!(offer(&mut r, "signed", now).is_ok());
    }

    #[test]
    fn a_sender_allowance_refills_with_time() {
        let (mut r, now) = registry(1000);
        flood(&mut r, now);
        let soon = now + Duration::from_millis(100);
        assert!(r.admit(&id("g001"), Some("sha-256 AA:BB"), soon).is_err());
        let later = now + Duration::from_secs(2);
        assert!(r.admit(&id("g002"), Some("sha-256 AA:BB"), later).is_ok());
    }

    #[test]
    fn remembered_senders_are_bounded() {
        let (mut r, now) = registry(100_000);
        for n in 0..3000 {
            let _ = offer(&mut r, &format!("s{n:05}"), now);
        }
        assert!(r.senders.len() <= Limits::with_max_sessions(1).max_senders);
        r.prune(now + Duration::from_secs(60));
        assert!(r.senders.is_empty(), "whole allowances are forgotten");
    }
}
