//! The time rules are evaluated at: the system clock, shifted for tests.
//!
//! **Test-only:** when the environment variable `INFOLEDGER_TEST_CLOCK_FILE` names a file, the
//! daemon adds the whole number of seconds written in it (e.g. `172800`, or `-3600`) to the
//! system time whenever it evaluates rules, and reads the file again on every tick (every
//! 200 ms), so a test can let an asset's deadline pass while the agent runs, without touching
//! any watched file. A missing or unreadable file counts as 0. Nothing else uses the shifted
//! time: request signatures and event timestamps keep the system clock, which the collector
//! checks. Production deployments never set the variable; the daemon logs a warning when it is.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// The environment variable naming the test clock's offset file.
pub const TEST_CLOCK_ENV: &str = "INFOLEDGER_TEST_CLOCK_FILE";

/// The clock rules are judged by.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_file: Option<PathBuf>,
}

impl Clock {
    /// The system clock, or the test clock when [`TEST_CLOCK_ENV`] is set.
    pub fn from_env() -> Clock {
        Clock {
            offset_file: std::env::var_os(TEST_CLOCK_ENV).map(PathBuf::from),
        }
    }

    /// A clock shifted by the seconds in `file` (for tests).
    pub fn with_offset_file(file: PathBuf) -> Clock {
        Clock {
            offset_file: Some(file),
        }
    }

    /// Whether this is the test clock.
    pub fn is_test_clock(&self) -> bool {
        self.offset_file.is_some()
    }

    /// How often the run loop must look at the clock: the test clock can jump at any moment; the
    /// system clock's date is watched by computing the next midnight instead.
    pub fn poll_interval(&self) -> Option<Duration> {
        self.offset_file
            .as_ref()
            .map(|_| Duration::from_millis(200))
    }

    /// Now, for evaluating rules.
    pub fn now(&self) -> DateTime<Utc> {
        let now = Utc::now();
        let Some(file) = &self.offset_file else {
            return now;
        };
        let offset = std::fs::read_to_string(file)
            .ok()
            .and_then(|t| t.trim().parse::<i64>().ok())
            .unwrap_or(0);
        now + chrono::Duration::seconds(offset)
    }
}

/// How long from `now` until the next UTC midnight (plus a second, so the date has changed).
pub fn until_next_utc_day(now: DateTime<Utc>) -> Duration {
    let next = now
        .date_naive()
        .succ_opt()
        .and_then(|d| d.and_hms_opt(0, 0, 1))
        .map(|t| t.and_utc());
    next.and_then(|t| (t - now).to_std().ok())
        .unwrap_or(Duration::from_secs(3600))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_offset_file_shifts_the_clock_and_is_reread() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("offset");
        let clock = Clock::with_offset_file(file.clone());
        let drift = |c: &Clock| (c.now() - Utc::now()).num_seconds();
        assert_eq!(drift(&clock), 0, "a missing file counts as 0");
        std::fs::write(&file, "172800\n").unwrap();
        assert!((172_799..=172_800).contains(&drift(&clock)));
        std::fs::write(&file, "-60").unwrap();
        assert!((-61..=-60).contains(&drift(&clock)));
        assert_eq!(clock.poll_interval(), Some(Duration::from_millis(200)));
        assert_eq!(Clock::default().poll_interval(), None);
    }

    #[test]
    fn next_midnight_is_computed_in_utc() {
        let t: DateTime<Utc> = "2026-05-01T23:59:00Z".parse().unwrap();
        assert_eq!(until_next_utc_day(t), Duration::from_secs(61));
    }
}
