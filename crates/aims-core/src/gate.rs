//! [`RateGate`]: lets an event through at most once per interval, so that a warning a
//! caller can trigger at will (a refused connection, a full table) cannot flood the log.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// At most one admitted event per interval; the ones held back are counted and reported
/// with the next admitted one.
#[derive(Debug)]
pub struct RateGate {
    interval: Duration,
    state: Mutex<GateState>,
}

#[derive(Debug)]
struct GateState {
    last: Option<Instant>,
    held_back: u64,
}

impl RateGate {
    /// A gate admitting one event per `interval`.
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            state: Mutex::new(GateState {
                last: None,
                held_back: 0,
            }),
        }
    }

    /// `Some(n)` when this event may be reported, `n` being how many were held back since
    /// the last one; `None` when it is held back.
    pub fn admit(&self) -> Option<u64> {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        if s.last
            .is_some_and(|l| now.duration_since(l) < self.interval)
        {
            s.held_back = s.held_back.saturating_add(1);
            return None;
        }
        s.last = Some(now);
        Some(std::mem::take(&mut s.held_back))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn one_event_per_interval_and_a_count_of_the_rest() {
        let g = RateGate::new(Duration::from_millis(200));
        assert_eq!(g.admit(), Some(0));
        for _ in 0..5 {
            assert_eq!(g.admit(), None);
        }
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(g.admit(), Some(5));
        assert_eq!(g.admit(), None);
    }
}
