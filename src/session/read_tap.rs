//! An interceptor that only looks at what is read: each inbound packet goes to a
//! [`ReadObserver`], which may mark it (or take RTCP out of it), and everything passes on
//! in order, untouched otherwise. The keyframe-request marker, the TWCC feedback tap and
//! the resend gate are such.

use std::collections::VecDeque;
use std::time::Instant;

use rtc::interceptor::{Interceptor, StreamInfo, TaggedPacket};
use rtc::sansio::Protocol;
use rtc::shared::error::Error;

/// What a [`ReadTap`] does with each packet read.
pub trait ReadObserver: Send + Sync {
    fn observe(&mut self, msg: &mut TaggedPacket);
}

/// Passes everything through, showing what is read to its observer.
pub struct ReadTap<O> {
    observer: O,
    read: VecDeque<TaggedPacket>,
    write: VecDeque<TaggedPacket>,
}

impl<O> ReadTap<O> {
    pub fn new(observer: O) -> Self {
        Self {
            observer,
            read: VecDeque::new(),
            write: VecDeque::new(),
        }
    }
}

impl<O: ReadObserver> Protocol<TaggedPacket, TaggedPacket, ()> for ReadTap<O> {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Error> {
        self.observer.observe(&mut msg);
        self.read.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.read.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Error> {
        self.write.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.write.pop_front()
    }
}

impl<O: ReadObserver> Interceptor for ReadTap<O> {
    fn bind_local_stream(&mut self, _: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _: &StreamInfo) {}
}
