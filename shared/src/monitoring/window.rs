//! Evaluation windows and their arithmetic.
//!
//! A window is a half-open UTC interval `[start, end)` of `inferenceTime`. Scheduled and S3-event
//! runs use *aligned* windows: `minutes` long, starting at a multiple of `minutes` since the Unix
//! epoch (hourly windows start on the hour, daily ones at 00:00 UTC). Explicit windows (direct
//! invocations) may be any interval.
//!
//! Late labels (Model Monitor's `StartTimeOffset`/`EndTimeOffset`):
//! * a scheduled run at time `t` evaluates the last aligned window that ended at or before
//!   `t - offset` — with an hourly schedule and `offset = 60`, the run at 10:05 evaluates
//!   `[08:00, 09:00)`, like Model Monitor with `StartTimeOffset=-PT2H`, `EndTimeOffset=-PT1H`;
//! * the labels of a window are read from the ground-truth hour folders of
//!   `[start, end + ground_truth_delay)` (the delay defaults to the offset): a label collected up to
//!   `delay` after the window closed still counts;
//! * a window is *due* once `end + offset <= now`: its scheduled run, the final one. S3-event runs
//!   evaluate every window that has ended, due or not, provisionally ([`super::publication`]).

use chrono::{DateTime, Duration, DurationRound, TimeZone, Utc};
use serde::{Deserialize, Serialize};

/// At most this many windows are recomputed for one ground-truth upload, or evaluated by one
/// backfill invocation (a Lambda invocation lasts at most 15 minutes).
pub const MAX_WINDOWS_PER_INVOCATION: usize = 168;

/// `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Window {
    #[serde(with = "crate::events::flexible_time")]
    pub start: DateTime<Utc>,
    #[serde(with = "crate::events::flexible_time")]
    pub end: DateTime<Utc>,
}

impl Window {
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Window, String> {
        if end <= start {
            return Err(format!(
                "window end {} is not after its start {}",
                iso(end),
                iso(start)
            ));
        }
        if end - start > Duration::days(31) {
            return Err(format!(
                "window {} .. {} is longer than 31 days",
                iso(start),
                iso(end)
            ));
        }
        Ok(Window { start, end })
    }

    pub fn duration(&self) -> Duration {
        self.end - self.start
    }

    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.start <= t && t < self.end
    }

    /// A stable, path-safe id: `20240501T1000Z-20240501T1100Z` (seconds added when not whole
    /// minutes).
    pub fn id(&self) -> String {
        format!("{}-{}", compact(self.start), compact(self.end))
    }

    /// Start of every UTC hour that overlaps `[from, to)`.
    pub fn hours_between(from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let mut out = Vec::new();
        let mut h = floor_hour(from);
        while h < to {
            out.push(h);
            h += Duration::hours(1);
        }
        out
    }

    /// Hours of `inferenceTime` this window covers (the capture folders to read).
    pub fn hours(&self) -> Vec<DateTime<Utc>> {
        Self::hours_between(self.start, self.end)
    }

    /// `start` and `end` as epoch milliseconds, the engine's window filter.
    pub fn millis(&self) -> (i64, i64) {
        (self.start.timestamp_millis(), self.end.timestamp_millis())
    }
}

impl std::fmt::Display for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}, {})", iso(self.start), iso(self.end))
    }
}

pub fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn compact(t: DateTime<Utc>) -> String {
    if t.timestamp() % 60 == 0 && t.timestamp_subsec_nanos() == 0 {
        t.format("%Y%m%dT%H%MZ").to_string()
    } else {
        t.format("%Y%m%dT%H%M%SZ").to_string()
    }
}

pub fn floor_hour(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(Duration::hours(1)).unwrap_or(t)
}

/// How windows are cut and how late labels are waited for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WindowRule {
    /// Window length; divides a day (1440) or is a whole number of days.
    pub minutes: u32,
    /// Delay between a window's end and its evaluation.
    pub offset_minutes: u32,
    /// How long after a window's end its labels may be collected (ground-truth folders read).
    pub ground_truth_delay_minutes: u32,
}

impl Default for WindowRule {
    fn default() -> Self {
        WindowRule {
            minutes: 60,
            offset_minutes: 0,
            ground_truth_delay_minutes: 0,
        }
    }
}

impl WindowRule {
    /// Checks `minutes` (1 minute .. 31 days; divides a day or is whole days).
    pub fn validate_minutes(minutes: u32) -> Result<u32, String> {
        if minutes == 0 || minutes > 31 * 1440 {
            return Err("must be 1 to 44640 (31 days)".into());
        }
        if !1440u32.is_multiple_of(minutes) && !minutes.is_multiple_of(1440) {
            return Err(
                "must divide a day (e.g. 15, 60, 360, 1440) or be a whole number of days".into(),
            );
        }
        Ok(minutes)
    }

    fn len(&self) -> Duration {
        Duration::minutes(i64::from(self.minutes))
    }

    fn offset(&self) -> Duration {
        Duration::minutes(i64::from(self.offset_minutes))
    }

    fn delay(&self) -> Duration {
        Duration::minutes(i64::from(self.ground_truth_delay_minutes))
    }

    /// The aligned window that contains `t`.
    pub fn containing(&self, t: DateTime<Utc>) -> Window {
        let len = self.len().num_seconds();
        let secs = t.timestamp().div_euclid(len) * len;
        let start = Utc.timestamp_opt(secs, 0).single().unwrap_or(t);
        Window {
            start,
            end: start + self.len(),
        }
    }

    /// The last aligned window that ended at or before `at - offset` (the scheduled run's window).
    pub fn last_complete(&self, at: DateTime<Utc>) -> Window {
        let shifted = at - self.offset();
        let current = self.containing(shifted);
        // `current` contains `shifted`, so it is not complete unless it starts exactly there.
        let end = current.start;
        Window {
            start: end - self.len(),
            end,
        }
    }

    /// The labels of `w` are read from the ground-truth folders of `[start, end + delay)`.
    pub fn ground_truth_range(&self, w: &Window) -> (DateTime<Utc>, DateTime<Utc>) {
        (w.start, w.end + self.delay())
    }

    /// True once the window's scheduled run is due (`end + offset <= now`).
    pub fn is_due(&self, w: &Window, now: DateTime<Utc>) -> bool {
        w.end + self.offset() <= now
    }

    /// Aligned windows whose ground-truth range overlaps the hour folder starting at `hour`: the
    /// windows a label uploaded into that folder can change. Oldest first, at most
    /// [`MAX_WINDOWS_PER_INVOCATION`] (the newest ones).
    pub fn windows_reading_ground_truth_hour(&self, hour: DateTime<Utc>) -> Vec<Window> {
        let hour = floor_hour(hour);
        let hour_end = hour + Duration::hours(1);
        // Overlap of [s, s + len + delay) and [hour, hour_end): hour - len - delay < s < hour_end.
        let mut w = self.containing(hour - self.len() - self.delay());
        let mut out = Vec::new();
        while w.start < hour_end {
            let (gs, ge) = self.ground_truth_range(&w);
            if gs < hour_end && ge > hour {
                out.push(w);
            }
            w = Window {
                start: w.end,
                end: w.end + self.len(),
            };
        }
        if out.len() > MAX_WINDOWS_PER_INVOCATION {
            out.drain(..out.len() - MAX_WINDOWS_PER_INVOCATION);
        }
        out
    }

    /// `[start, end)` cut into consecutive windows of `minutes` from `start` (the last one may be
    /// shorter). Errors past [`MAX_WINDOWS_PER_INVOCATION`] windows.
    pub fn split(
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        minutes: u32,
    ) -> Result<Vec<Window>, String> {
        let whole = Window::new(start, end).or_else(|e| {
            if end > start {
                Ok(Window { start, end })
            } else {
                Err(e)
            }
        })?;
        if minutes == 0 {
            return Err("split minutes must be at least 1".into());
        }
        let step = Duration::minutes(i64::from(minutes));
        let n = (whole.duration().num_seconds() + step.num_seconds() - 1) / step.num_seconds();
        if n as usize > MAX_WINDOWS_PER_INVOCATION {
            return Err(format!(
                "{} .. {} in {minutes}-minute windows is {n} windows; one invocation evaluates at most {MAX_WINDOWS_PER_INVOCATION}",
                iso(start),
                iso(end)
            ));
        }
        let mut out = Vec::new();
        let mut s = start;
        while s < end {
            let e = (s + step).min(end);
            out.push(Window { start: s, end: e });
            s = e;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn last_complete_hourly_with_and_without_offset() {
        let hourly = WindowRule::default();
        let w = hourly.last_complete(t("2024-05-01T10:05:00Z"));
        assert_eq!(
            (w.start, w.end),
            (t("2024-05-01T09:00:00Z"), t("2024-05-01T10:00:00Z"))
        );
        // Exactly on the boundary: the window that just ended.
        let w = hourly.last_complete(t("2024-05-01T10:00:00Z"));
        assert_eq!(w.start, t("2024-05-01T09:00:00Z"));
        // Model Monitor's StartTimeOffset=-PT2H / EndTimeOffset=-PT1H.
        let late = WindowRule {
            offset_minutes: 60,
            ..hourly
        };
        let w = late.last_complete(t("2024-05-01T10:05:00Z"));
        assert_eq!(
            (w.start, w.end),
            (t("2024-05-01T08:00:00Z"), t("2024-05-01T09:00:00Z"))
        );
        assert_eq!(w.id(), "20240501T0800Z-20240501T0900Z");
        // Across midnight.
        let w = hourly.last_complete(t("2024-05-02T00:00:30Z"));
        assert_eq!(w.start, t("2024-05-01T23:00:00Z"));
    }

    #[test]
    fn daily_and_quarter_hour_windows_align() {
        let daily = WindowRule {
            minutes: 1440,
            offset_minutes: 180,
            ground_truth_delay_minutes: 0,
        };
        let w = daily.last_complete(t("2024-05-02T02:00:00Z"));
        assert_eq!(
            (w.start, w.end),
            (t("2024-04-30T00:00:00Z"), t("2024-05-01T00:00:00Z"))
        );
        assert_eq!(w.hours().len(), 24);
        let q = WindowRule {
            minutes: 15,
            ..Default::default()
        };
        assert_eq!(
            q.containing(t("2024-05-01T10:44:59Z")).start,
            t("2024-05-01T10:30:00Z")
        );
        assert!(WindowRule::validate_minutes(50).is_err());
        assert!(WindowRule::validate_minutes(0).is_err());
        assert_eq!(WindowRule::validate_minutes(2880), Ok(2880));
    }

    #[test]
    fn ground_truth_upload_affects_windows_within_the_delay() {
        let rule = WindowRule {
            minutes: 60,
            offset_minutes: 120,
            ground_truth_delay_minutes: 120,
        };
        let ws = rule.windows_reading_ground_truth_hour(t("2024-05-01T10:20:00Z"));
        let starts: Vec<_> = ws.iter().map(|w| w.start).collect();
        // Labels collected 10:00-11:00 can belong to inferences of 08:00, 09:00 and 10:00.
        assert_eq!(
            starts,
            vec![
                t("2024-05-01T08:00:00Z"),
                t("2024-05-01T09:00:00Z"),
                t("2024-05-01T10:00:00Z")
            ]
        );
        let none = WindowRule::default();
        assert_eq!(
            none.windows_reading_ground_truth_hour(t("2024-05-01T10:59:00Z"))
                .len(),
            1
        );
        assert!(rule.is_due(&ws[0], t("2024-05-01T11:00:00Z")));
        assert!(!rule.is_due(&ws[1], t("2024-05-01T11:00:00Z")));
        let (gs, ge) = rule.ground_truth_range(&ws[0]);
        assert_eq!(Window::hours_between(gs, ge).len(), 3);
    }

    #[test]
    fn split_and_invalid_windows() {
        let ws =
            WindowRule::split(t("2024-05-01T00:00:00Z"), t("2024-05-01T02:30:00Z"), 60).unwrap();
        assert_eq!(ws.len(), 3);
        assert_eq!(ws[2].duration(), Duration::minutes(30));
        assert!(
            WindowRule::split(t("2024-05-01T00:00:00Z"), t("2024-06-01T00:00:00Z"), 60)
                .unwrap_err()
                .contains("at most")
        );
        assert!(Window::new(t("2024-05-01T01:00:00Z"), t("2024-05-01T01:00:00Z")).is_err());
        let odd = Window::new(t("2024-05-01T01:00:30Z"), t("2024-05-01T01:10:00Z")).unwrap();
        assert_eq!(odd.id(), "20240501T010030Z-20240501T0110Z");
        assert_eq!(odd.hours(), vec![t("2024-05-01T01:00:00Z")]);
    }
}
