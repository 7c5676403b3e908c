//! Which Engine.IO transport an attempt takes. Engine.IO's usual way opens with a polling
//! handshake over reqwest, and reqwest builds a native-tls client even for a plain http
//! relay: OpenSSL reads the system's whole CA bundle (~65,000 allocations; heap and
//! libcrypto pages that stay resident) for a connection without TLS. So a plain (http, ws)
//! relay is tried over a websocket alone first, which needs no TLS client. The usual way
//! (polling, upgraded when the relay offers it) follows at once, without the backoff, a
//! websocket attempt that reached the relay and failed there: a relay or proxy that allows
//! polling only, or wants the basic auth of the URL's userinfo, which only reqwest sends.
//! An https or wss relay always takes the usual way, verified by its TLS connector as
//! before.

use std::error::Error;

use rust_socketio::TransportType;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// A websocket straight away, without a polling handshake.
    Websocket,
    /// Polling, upgraded to a websocket when the relay offers it (Engine.IO's default).
    Usual,
}

impl Transport {
    pub fn engine_io(self) -> TransportType {
        match self {
            Transport::Websocket => TransportType::Websocket,
            Transport::Usual => TransportType::Any,
        }
    }
}

/// When the attempt after a failed one starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// The usual way, at once: the relay refused a websocket, and waiting would not make
    /// it accept one, while polling has not been tried yet.
    FallBackToPolling,
    /// After the backoff: the way that failed was the last one to try for now.
    AfterBackoff,
}

/// The transport of the next attempt; pure, so the alternation can be tested.
#[derive(Debug)]
pub struct TransportChoice {
    /// No TLS: the websocket way saves loading OpenSSL's trust store.
    plain: bool,
    next: Transport,
}

impl TransportChoice {
    pub fn for_url(url: &str) -> Self {
        let plain = url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "ws"));
        let next = if plain {
            Transport::Websocket
        } else {
            Transport::Usual
        };
        Self { plain, next }
    }

    pub fn next(&self) -> Transport {
        self.next
    }

    /// The attempt over [`Self::next`] failed; `reached_relay` unless the network refused
    /// it before the relay could answer (the usual way would fail the same). A success
    /// keeps the transport that worked.
    #[must_use = "a fallback starts at once, anything else after the backoff"]
    pub fn failed(&mut self, reached_relay: bool) -> Retry {
        if !self.plain {
            return Retry::AfterBackoff;
        }
        let (next, retry) = match self.next {
            Transport::Websocket if reached_relay => (Transport::Usual, Retry::FallBackToPolling),
            // The websocket way again: after a failed usual attempt the relay may be back,
            // and a relay that needs polling fails it at once.
            _ => (Transport::Websocket, Retry::AfterBackoff),
        };
        self.next = next;
        retry
    }
}

/// Whether a failed attempt got as far as the relay: anything but an I/O error on the way
/// (connection refused, no route, name not resolved), which any transport would meet too.
pub fn reached_relay(error: &(dyn Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if e.is::<std::io::Error>() {
            return false;
        }
        cause = e.source();
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_relay_is_tried_over_a_websocket_first() {
        for url in ["http://relay:3000", "ws://relay:3000/"] {
            assert_eq!(
                TransportChoice::for_url(url).next(),
                Transport::Websocket,
                "{url}"
            );
        }
    }

    #[test]
    fn a_tls_relay_always_takes_the_usual_way() {
        for url in ["https://relay:3000", "wss://relay"] {
            let mut choice = TransportChoice::for_url(url);
            for reached in [true, false, true] {
                assert_eq!(choice.next(), Transport::Usual, "{url}");
                assert_eq!(choice.failed(reached), Retry::AfterBackoff, "{url}");
            }
        }
    }

    #[test]
    fn a_websocket_the_relay_refused_is_followed_at_once_by_the_usual_way_then_websocket_again() {
        let mut choice = TransportChoice::for_url("http://relay:3000");
        assert_eq!(choice.failed(true), Retry::FallBackToPolling);
        assert_eq!(choice.next(), Transport::Usual);
        assert_eq!(choice.failed(true), Retry::AfterBackoff);
        assert_eq!(choice.next(), Transport::Websocket);
        assert_eq!(choice.failed(true), Retry::FallBackToPolling);
        assert_eq!(choice.failed(false), Retry::AfterBackoff);
        assert_eq!(
            choice.next(),
            Transport::Websocket,
            "a usual attempt that failed on the network"
        );
    }

    #[test]
    fn a_relay_out_of_reach_keeps_the_websocket_way() {
        let mut choice = TransportChoice::for_url("http://relay:3000");
        for _ in 0..3 {
            assert_eq!(choice.failed(false), Retry::AfterBackoff);
            assert_eq!(choice.next(), Transport::Websocket);
        }
    }

    #[derive(Debug, thiserror::Error)]
    #[error("wrapped")]
    struct Wrapped(#[source] Box<dyn Error + Send + Sync>);

    #[test]
    fn an_io_error_anywhere_in_the_chain_means_the_relay_was_not_reached() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(!reached_relay(&Wrapped(Box::new(refused))));
        let http = Wrapped("HTTP error: 400 Bad Request".into());
        assert!(reached_relay(&http));
    }
}
