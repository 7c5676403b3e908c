//! The clock a source without its own (the test pattern, the tone, "no signal") runs on.

use std::time::{Duration, Instant};

/// Sleeps until `next`, then returns the following deadline. A fixed schedule does not
/// drift with the work done each period; after a long stall it restarts from now
/// instead of bursting to catch up.
pub fn pace(next: Instant, period: Duration) -> Instant {
    let next = next + period;
    let now = Instant::now();
    if next > now {
        std::thread::sleep(next - now);
        next
    } else if now - next > period {
        now
    } else {
        next
    }
}
