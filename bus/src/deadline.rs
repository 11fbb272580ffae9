//! A query's deadline, carried from stage to stage in the
//! [`HEADER_DEADLINE`] header as milliseconds since the Unix epoch.
//!
//! Wall-clock time is what two processes (or two machines of a fleet, whose
//! clocks NTP keeps within milliseconds) can agree on; within a process the
//! remaining time is turned into a monotonic timer at once. A stage that
//! receives work whose deadline has passed answers `timeout` without doing
//! it: its caller has given up already.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::HeaderMap;
use vidseek_protocol::subjects::HEADER_DEADLINE;
use vidseek_protocol::{ErrorBody, ErrorCode};

/// The moment by which a query must be answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Deadline {
    unix_ms: u64,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Deadline {
    /// `budget` from now.
    pub fn after(budget: Duration) -> Deadline {
        Deadline {
            unix_ms: now_ms().saturating_add(budget.as_millis() as u64),
        }
    }

    pub fn from_unix_ms(unix_ms: u64) -> Deadline {
        Deadline { unix_ms }
    }

    pub fn unix_ms(self) -> u64 {
        self.unix_ms
    }

    /// The deadline a message carries; `None` without a readable header.
    pub fn of(headers: Option<&HeaderMap>) -> Option<Deadline> {
        headers?
            .get(HEADER_DEADLINE)?
            .as_str()
            .trim()
            .parse()
            .ok()
            .map(Deadline::from_unix_ms)
    }

    /// Adds the deadline to outgoing headers.
    pub fn insert_into(self, headers: &mut HeaderMap) {
        headers.insert(HEADER_DEADLINE, self.unix_ms.to_string().as_str());
    }

    /// Time left; zero once passed.
    pub fn remaining(self) -> Duration {
        Duration::from_millis(self.unix_ms.saturating_sub(now_ms()))
    }

    pub fn expired(self) -> bool {
        self.remaining().is_zero()
    }

    /// The same moment on tokio's clock, for `timeout_at`.
    pub fn instant(self) -> tokio::time::Instant {
        tokio::time::Instant::now() + self.remaining()
    }

    /// The `timeout` answer for work that arrived or would finish too late.
    pub fn exceeded(self, what: &str) -> ErrorBody {
        ErrorBody::new(
            ErrorCode::Timeout,
            format!("{what}: the query's deadline has passed; nothing was done"),
        )
    }

    /// `Err(timeout)` once the deadline has passed.
    pub fn check(self, what: &str) -> Result<(), ErrorBody> {
        if self.expired() {
            Err(self.exceeded(what))
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_round_trips_and_garbage_is_no_deadline() {
        let deadline = Deadline::after(Duration::from_secs(5));
        let mut headers = HeaderMap::new();
        deadline.insert_into(&mut headers);
        assert_eq!(Deadline::of(Some(&headers)), Some(deadline));
        assert!(!deadline.expired());
        assert!(deadline.remaining() > Duration::from_secs(4));

        let mut garbage = HeaderMap::new();
        garbage.insert(HEADER_DEADLINE, "soon");
        assert_eq!(Deadline::of(Some(&garbage)), None);
        assert_eq!(Deadline::of(None), None);
    }

    #[test]
    fn a_past_deadline_is_expired_with_nothing_left() {
        let past = Deadline::from_unix_ms(now_ms() - 1000);
        assert!(past.expired());
        assert_eq!(past.remaining(), Duration::ZERO);
        assert_eq!(
            past.check("rank").unwrap_err().error.code,
            ErrorCode::Timeout
        );
    }
}
