//! The newest-frame slot between a video source and the encoder: capacity one, so video
//! never queues. A frame the encoder did not take in time is displaced, and the source
//! counts it as dropped and reuses its buffer.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use super::frame::I420Frame;

/// The newest raw frame, capacity one: a put replaces what the encoder has not taken.
#[derive(Default)]
pub struct FrameSlot {
    frame: Mutex<Option<I420Frame>>,
    ready: Condvar,
}

impl FrameSlot {
    /// Stores `frame`; returns the one it displaced (a drop), whose buffer the caller reuses.
    pub fn put(&self, frame: I420Frame) -> Option<I420Frame> {
        let old = self.lock().replace(frame);
        self.ready.notify_one();
        old
    }

    /// The newest frame, waiting up to `timeout` for one.
    pub fn take_timeout(&self, timeout: Duration) -> Option<I420Frame> {
        let guard = self.lock();
        let (mut guard, _) = self
            .ready
            .wait_timeout_while(guard, timeout, |f| f.is_none())
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        guard.take()
    }

    fn lock(&self) -> MutexGuard<'_, Option<I420Frame>> {
        // A panic elsewhere cannot leave an Option half-written.
        self.frame.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(first_byte: u8) -> I420Frame {
        let mut f = I420Frame::new(2, 2);
        f.planes_mut().0[0] = first_byte;
        f
    }

    #[test]
    fn slot_keeps_only_the_newest() {
        let slot = FrameSlot::default();
        assert!(slot.put(frame(1)).is_none());
        let dropped = slot.put(frame(2)).expect("the first is displaced");
        assert_eq!(dropped.y()[0], 1);
        assert_eq!(slot.take_timeout(Duration::from_secs(1)).unwrap().y()[0], 2);
        assert!(slot.take_timeout(Duration::from_millis(1)).is_none());
    }
}
