//! Pure SDP helpers shared by signaling and sessions: read one attribute, ask whether a
//! codec is offered, name the offer an answer answers. Line-based on purpose: they run on
//! untrusted offers before any SDP parser does, and never allocate more than their result.

/// The value of the first `a=NAME:value` line, session or media level.
pub fn attribute<'a>(sdp: &'a str, name: &str) -> Option<&'a str> {
    sdp.lines().find_map(|line| {
        line.trim_end()
            .strip_prefix("a=")?
            .strip_prefix(name)?
            .strip_prefix(':')
    })
}

/// Whether some `a=rtpmap` line offers `codec` (e.g. `VP8`), case-insensitively as SDP
/// encoding names are.
pub fn offers_codec(sdp: &str, codec: &str) -> bool {
    sdp.lines().any(|line| {
        line.strip_prefix("a=rtpmap:")
            .and_then(|rest| rest.split_whitespace().nth(1))
            .and_then(|enc| enc.split('/').next())
            .is_some_and(|name| name.eq_ignore_ascii_case(codec))
    })
}

/// The session attribute naming the offer an answer answers. Every viewer in a room sees
/// every answer and the relay forwards nothing but the SDP, so the name rides inside it;
/// browsers ignore unknown attributes, and campeer's own page uses it to pick its answer.
pub const ANSWERS_ATTRIBUTE: &str = "x-campeer-answers";

/// `sdp` with `a=x-campeer-answers:<offer's ufrag>` added at session level.
pub fn tag_answer(sdp: &str, offer_ufrag: &str) -> String {
    let line = format!("a={ANSWERS_ATTRIBUTE}:{offer_ufrag}\r\n");
    // Session-level attributes follow the t= line, before the first m= section.
    match sdp
        .find("\r\nt=")
        .and_then(|t| sdp[t + 2..].find("\r\n").map(|e| t + 2 + e + 2))
    {
        Some(at) => format!("{}{line}{}", &sdp[..at], &sdp[at..]),
        None => format!("{sdp}{line}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER_SDP: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=ice-ufrag:AbC1\r\na=ice-pwd:x\r\n";

    #[test]
    fn answers_name_their_offer_at_session_level() {
        let sdp = "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 X 96\r\na=mid:0\r\n";
        let tagged = tag_answer(sdp, "AbC1");
        assert_eq!(
            tagged,
            "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=x-campeer-answers:AbC1\r\nm=video 9 X 96\r\na=mid:0\r\n"
        );
        assert_eq!(attribute(&tagged, ANSWERS_ATTRIBUTE), Some("AbC1"));
    }

    #[test]
    fn codec_offer_is_found_by_name() {
        let sdp = "m=video 9 UDP/TLS/RTP/SAVPF 96 102\r\na=rtpmap:96 vp8/90000\r\na=rtpmap:102 H264/90000\r\n";
        assert!(offers_codec(sdp, "VP8"));
        assert!(offers_codec(sdp, "h264"));
        assert!(!offers_codec(sdp, "VP9"));
        assert!(!offers_codec("a=rtpmap:", "VP8"));
    }

    #[test]
    fn attribute_finds_the_first() {
        assert_eq!(attribute(OFFER_SDP, "ice-ufrag"), Some("AbC1"));
        assert_eq!(attribute(OFFER_SDP, "ice-pwd"), Some("x"));
        assert_eq!(attribute(OFFER_SDP, "mid"), None);
    }
}
