//! The time source a handler reads "now" from: the system clock in production, a fixed instant
//! in tests.

use std::sync::Arc;

use chrono::{DateTime, Utc};

/// The time source (fixed in tests).
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(Utc::now)
}

/// A clock that always says `at`.
pub fn fixed_clock(at: DateTime<Utc>) -> Clock {
    Arc::new(move || at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn fixed_clock_stands_still_and_system_clock_moves_forward() {
        let at = Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap();
        let fixed = fixed_clock(at);
        assert_eq!((fixed)(), at);
        assert_eq!((fixed.clone())(), at);
        let system = system_clock();
        let (a, b) = ((system)(), (system)());
        assert!(a <= b && a > at, "{a} {b}");
    }
}
