//! TURN messages on a byte stream (RFC 8656 §12.5, RFC 5766 §11.7): over TCP and TLS a
//! TURN client and server send the same STUN and ChannelData messages as over UDP, one
//! after another, each telling its own length; ChannelData is padded to a multiple of
//! four bytes there. Pure: the bridge (`bridge.rs`) reads and writes, this part cuts.

use bytes::{Buf, Bytes, BytesMut};

/// STUN's fixed header; its length field counts the attributes after it.
const STUN_HEADER: usize = 20;
/// RFC 5389's magic cookie, at bytes 4..8 of every STUN message webrtc-rs and coturn send.
const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
/// ChannelData's header: channel number and length.
const CHANNEL_HEADER: usize = 4;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    #[error("not a STUN or ChannelData message (first byte {0:#04x})")]
    UnknownKind(u8),
    #[error("a STUN message without the magic cookie")]
    NoCookie,
    #[error("a STUN message length {0} that is not a multiple of 4")]
    UnalignedStun(usize),
    #[error("a datagram of {got} bytes for a message of {wants}")]
    Truncated { got: usize, wants: usize },
}

/// Where one message ends: its own bytes, and the padding after it on a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Extent {
    message: usize,
    padding: usize,
}

impl Extent {
    fn on_stream(self) -> usize {
        self.message + self.padding
    }
}

/// The extent of the message `head` starts, once enough of it is there to tell
/// (`Ok(None)` before that).
fn extent(head: &[u8]) -> Result<Option<Extent>, FramingError> {
    let Some(&first) = head.first() else {
        return Ok(None);
    };
    match first >> 6 {
        0b00 => {
            // Refused at the first byte that is not the cookie's: a TLS alert is shorter
            // than a STUN header.
            let cookie = head.get(4..).unwrap_or_default();
            let n = cookie.len().min(MAGIC_COOKIE.len());
            if cookie[..n] != MAGIC_COOKIE[..n] {
                return Err(FramingError::NoCookie);
            }
            if head.len() < 8 {
                return Ok(None);
            }
            let length = usize::from(u16::from_be_bytes([head[2], head[3]]));
            if length % 4 != 0 {
                return Err(FramingError::UnalignedStun(length));
            }
            Ok(Some(Extent {
                message: STUN_HEADER + length,
                padding: 0,
            }))
        }
        // RFC 8656 §12: channel numbers are 0x4000..=0x4FFF; the rest of 0b01… is
        // reserved. (Text starting with `@`..`O` looks like ChannelData: it waits for
        // its length, at most 64 KB, like any message.)
        0b01 if first <= 0x4F => {
            if head.len() < CHANNEL_HEADER {
                return Ok(None);
            }
            let message = CHANNEL_HEADER + usize::from(u16::from_be_bytes([head[2], head[3]]));
            Ok(Some(Extent {
                message,
                padding: message.next_multiple_of(4) - message,
            }))
        }
        _ => Err(FramingError::UnknownKind(first)),
    }
}

/// The bytes a datagram from webrtc-rs takes on the stream: the message it holds (a UDP
/// datagram may carry ChannelData's padding or not) and the padding the stream needs.
pub fn to_stream(datagram: &[u8]) -> Result<(&[u8], &'static [u8]), FramingError> {
    const ZEROS: [u8; 3] = [0; 3];
    let wants = extent(datagram)?.ok_or(FramingError::Truncated {
        got: datagram.len(),
        wants: STUN_HEADER,
    })?;
    if datagram.len() < wants.message {
        return Err(FramingError::Truncated {
            got: datagram.len(),
            wants: wants.message,
        });
    }
    Ok((&datagram[..wants.message], &ZEROS[..wants.padding]))
}

/// Cuts what a TURN server sends on a stream back into datagrams, however the reads
/// split it.
#[derive(Debug, Default)]
pub struct Deframer {
    buf: BytesMut,
}

impl Deframer {
    /// The most one message takes: a 65535-byte body, its header and padding.
    pub const MAX_MESSAGE: usize = STUN_HEADER + u16::MAX as usize + 3;

    /// Where the next read goes: the buffer, with room for at least one more message.
    pub fn buffer(&mut self) -> &mut BytesMut {
        self.buf.reserve(Self::MAX_MESSAGE);
        &mut self.buf
    }

    /// The next whole message, without its padding; `Ok(None)` until one has come. An
    /// error means the stream is not TURN: nothing after it can be trusted.
    pub fn next_message(&mut self) -> Result<Option<Bytes>, FramingError> {
        let Some(wants) = extent(&self.buf)? else {
            return Ok(None);
        };
        if self.buf.len() < wants.on_stream() {
            return Ok(None);
        }
        let message = self.buf.split_to(wants.message).freeze();
        self.buf.advance(wants.padding);
        Ok(Some(message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A STUN Binding request with `attrs` bytes of attributes.
    fn stun(attrs: usize) -> Vec<u8> {
        let mut m = vec![0x00, 0x01];
        m.extend((attrs as u16).to_be_bytes());
        m.extend(MAGIC_COOKIE);
        m.extend([7; 12]);
        m.extend(std::iter::repeat_n(0xAB, attrs));
        m
    }

    fn channel_data(payload: usize) -> Vec<u8> {
        let mut m = vec![0x40, 0x01];
        m.extend((payload as u16).to_be_bytes());
        m.extend(std::iter::repeat_n(0xCD, payload));
        m
    }

    fn stream_of(datagrams: &[Vec<u8>]) -> Vec<u8> {
        datagrams
            .iter()
            .flat_map(|d| {
                let (message, padding) = to_stream(d).unwrap();
                [message, padding].concat()
            })
            .collect()
    }

    fn feed(deframer: &mut Deframer, bytes: &[u8]) -> Result<Vec<Vec<u8>>, FramingError> {
        deframer.buffer().extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(m) = deframer.next_message()? {
            out.push(m.to_vec());
        }
        Ok(out)
    }

    #[test]
    fn channel_data_is_padded_on_the_stream_and_stun_is_not() {
        let lengths = |datagram: Vec<u8>| {
            let (m, pad) = to_stream(&datagram).unwrap();
            assert!(pad.iter().all(|&b| b == 0));
            (m.len(), pad.len())
        };
        assert_eq!(lengths(channel_data(5)), (9, 3));
        assert_eq!(lengths(channel_data(4)), (8, 0));
        assert_eq!(lengths(stun(8)), (28, 0));
    }

    #[test]
    fn padding_a_udp_datagram_already_carries_is_not_doubled() {
        let mut padded = channel_data(5);
        padded.extend([0; 3]);
        let (m, pad) = to_stream(&padded).unwrap();
        assert_eq!((m.len(), pad.len()), (9, 3));
    }

    #[test]
    fn a_stream_splits_back_into_the_datagrams_without_padding() {
        let sent = vec![
            stun(8),
            channel_data(5),
            channel_data(0),
            stun(0),
            channel_data(1200),
        ];
        let mut d = Deframer::default();
        assert_eq!(feed(&mut d, &stream_of(&sent)).unwrap(), sent);
    }

    #[test]
    fn any_split_of_the_reads_gives_the_same_datagrams() {
        let sent = vec![channel_data(3), stun(12), channel_data(6)];
        let stream = stream_of(&sent);
        for chunk in 1..=stream.len() {
            let mut d = Deframer::default();
            let mut got = Vec::new();
            for piece in stream.chunks(chunk) {
                got.extend(feed(&mut d, piece).unwrap());
            }
            assert_eq!(got, sent, "reads of {chunk} bytes");
        }
    }

    #[test]
    fn a_message_waits_for_its_padding() {
        let mut d = Deframer::default();
        let stream = stream_of(&[channel_data(5)]);
        assert!(feed(&mut d, &stream[..9]).unwrap().is_empty());
        assert_eq!(feed(&mut d, &stream[9..]).unwrap(), vec![channel_data(5)]);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let tls_alert = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28];
        assert_eq!(
            feed(&mut Deframer::default(), &tls_alert),
            Err(FramingError::NoCookie)
        );
        assert_eq!(
            feed(&mut Deframer::default(), b"SSH-2.0-OpenSSH"),
            Err(FramingError::UnknownKind(b'S'))
        );
        let mut no_cookie = stun(4);
        no_cookie[5] = 0;
        assert_eq!(
            feed(&mut Deframer::default(), &no_cookie),
            Err(FramingError::NoCookie)
        );
        let mut unaligned = stun(4);
        unaligned[3] = 5;
        assert_eq!(
            feed(&mut Deframer::default(), &unaligned),
            Err(FramingError::UnalignedStun(5))
        );
        for bytes in [&[0xFFu8][..], &[0x80, 0, 0, 0], &[0x50, 0, 0, 0], &[]] {
            assert!(to_stream(bytes).is_err(), "{bytes:?}");
        }
        assert_eq!(
            to_stream(&channel_data(8)[..6]),
            Err(FramingError::Truncated { got: 6, wants: 12 })
        );
    }

    #[test]
    fn the_largest_message_fits_the_buffer_it_asks_for() {
        let mut d = Deframer::default();
        let big = channel_data(u16::MAX as usize);
        let got = feed(&mut d, &stream_of(std::slice::from_ref(&big))).unwrap();
        assert_eq!(got, vec![big]);
        assert!(d.buffer().capacity() >= Deframer::MAX_MESSAGE);
    }
}
