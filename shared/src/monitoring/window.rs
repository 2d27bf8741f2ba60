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
//!
//! Times outside [`EARLIEST`] .. [`LATEST`] (years 1970 to 9999) are refused where they enter
//! ([`Window::new`], [`crate::events::parse_time_value`]); the arithmetic here is checked all the
//! same, so an out-of-range time gives an error or an empty answer, never a panic.

use chrono::{DateTime, Duration, DurationRound, TimeZone, Utc};
use serde::{Deserialize, Serialize};

/// At most this many windows are recomputed for one ground-truth upload, or evaluated by one
/// backfill invocation (a Lambda invocation lasts at most 15 minutes).
pub const MAX_WINDOWS_PER_INVOCATION: usize = 168;

/// The earliest time a window may start at: 1970-01-01T00:00:00Z.
pub const EARLIEST: DateTime<Utc> = DateTime::UNIX_EPOCH;
/// The latest time a window may end at: 9999-12-31T23:59:59Z (S3 folders are `yyyy/...`).
pub const LATEST: DateTime<Utc> = match DateTime::from_timestamp(253_402_300_799, 0) {
    Some(t) => t,
    None => DateTime::UNIX_EPOCH,
};

/// `t` when it lies in [`EARLIEST`] ..= [`LATEST`], else why not (naming `what`).
pub fn check_time(what: &str, t: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    if (EARLIEST..=LATEST).contains(&t) {
        Ok(t)
    } else {
        Err(format!(
            "{what} {} is outside the supported range {} .. {}",
            iso(t),
            iso(EARLIEST),
            iso(LATEST)
        ))
    }
}

/// `t + d`, or None past chrono's range.
fn add(t: DateTime<Utc>, d: Duration) -> Option<DateTime<Utc>> {
    t.checked_add_signed(d)
}

/// `t - d`, or None past chrono's range.
fn sub(t: DateTime<Utc>, d: Duration) -> Option<DateTime<Utc>> {
    t.checked_sub_signed(d)
}

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
        check_time("window start", start)?;
        check_time("window end", end)?;
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
            match add(h, Duration::hours(1)) {
                Some(next) => h = next,
                None => break,
            }
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

    /// The aligned window that contains `t` (`t`'s bounds clamped to chrono's range: an
    /// out-of-range time gives a window [`Window::new`] would refuse, never a panic).
    pub fn containing(&self, t: DateTime<Utc>) -> Window {
        let len = self.len().num_seconds().max(1);
        let secs = t.timestamp().div_euclid(len) * len;
        let start = Utc.timestamp_opt(secs, 0).single().unwrap_or(t);
        Window {
            start,
            end: add(start, self.len()).unwrap_or(DateTime::<Utc>::MAX_UTC),
        }
    }

    /// The last aligned window that ended at or before `at - offset` (the scheduled run's window).
    /// Saturates at chrono's range; [`WindowRule::try_last_complete`] refuses such times.
    pub fn last_complete(&self, at: DateTime<Utc>) -> Window {
        let shifted = sub(at, self.offset()).unwrap_or(DateTime::<Utc>::MIN_UTC);
        let current = self.containing(shifted);
        // `current` contains `shifted`, so it is not complete unless it starts exactly there.
        let end = current.start;
        Window {
            start: sub(end, self.len()).unwrap_or(DateTime::<Utc>::MIN_UTC),
            end,
        }
    }

    /// [`WindowRule::last_complete`], or why `at` has none in the supported range.
    pub fn try_last_complete(&self, at: DateTime<Utc>) -> Result<Window, String> {
        check_time("time", at)?;
        let w = self.last_complete(at);
        Window::new(w.start, w.end)
    }

    /// The labels of `w` are read from the ground-truth folders of `[start, end + delay)` (the end
    /// saturates at chrono's range).
    pub fn ground_truth_range(&self, w: &Window) -> (DateTime<Utc>, DateTime<Utc>) {
        (
            w.start,
            add(w.end, self.delay()).unwrap_or(DateTime::<Utc>::MAX_UTC),
        )
    }

    /// True once the window's scheduled run is due (`end + offset <= now`).
    pub fn is_due(&self, w: &Window, now: DateTime<Utc>) -> bool {
        add(w.end, self.offset()).is_some_and(|due| due <= now)
    }

    /// Aligned windows whose ground-truth range overlaps the hour folder starting at `hour`: the
    /// windows a label uploaded into that folder can change. Oldest first, at most
    /// [`MAX_WINDOWS_PER_INVOCATION`] (the newest ones).
    /// None for an hour outside the supported range.
    pub fn windows_reading_ground_truth_hour(&self, hour: DateTime<Utc>) -> Vec<Window> {
        let hour = floor_hour(hour);
        if check_time("hour", hour).is_err() {
            return Vec::new();
        }
        let Some(hour_end) = add(hour, Duration::hours(1)) else {
            return Vec::new();
        };
        // Overlap of [s, s + len + delay) and [hour, hour_end): hour - len - delay < s < hour_end.
        let Some(first) = sub(hour, self.len()).and_then(|t| sub(t, self.delay())) else {
            return Vec::new();
        };
        let mut w = self.containing(first);
        let mut out = Vec::new();
        while w.start < hour_end {
            let (gs, ge) = self.ground_truth_range(&w);
            if gs < hour_end && ge > hour {
                out.push(w);
            }
            let Some(end) = add(w.end, self.len()) else {
                break;
            };
            w = Window { start: w.end, end };
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
        check_time("window start", start)?;
        check_time("window end", end)?;
        if minutes == 0 || minutes > 31 * 1440 {
            return Err(format!(
                "split minutes must be 1 to 44640 (31 days), got {minutes}"
            ));
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
            let e = add(s, step).unwrap_or(end).min(end);
            out.push(Window { start: s, end: e });
            s = e;
        }
        Ok(out)
    }
}

/// Plans the windows of an arbitrary event (JSON bytes after a 20-byte header choosing the window
/// rule and `now`) and walks everything a run derives from them: hours, folder prefixes, report
/// keys, lookback and due times. The fuzz target `plan_windows` and its proptest twin (this
/// module's tests) call it; it panics only when an invariant breaks. Returns the windows planned.
#[doc(hidden)]
pub fn exercise_planning(data: &[u8]) -> usize {
    use super::layout;
    use super::trigger::{parse_trigger, plan_windows};
    use crate::storage::S3Uri;
    let byte = |i: usize| data.get(i).copied().unwrap_or(0);
    let u16_at = |i: usize| u16::from_le_bytes([byte(i), byte(i + 1)]);
    let minutes = [1, 5, 15, 60, 360, 1440, 2880, 44640][usize::from(byte(0) % 8)];
    let rule = WindowRule {
        minutes,
        offset_minutes: u32::from(u16_at(1)) % (31 * 1440 + 1),
        ground_truth_delay_minutes: u32::from(u16_at(3)) % (31 * 1440 + 1),
    };
    let mut secs = [0u8; 8];
    for (k, v) in secs.iter_mut().enumerate() {
        *v = byte(5 + k);
    }
    let secs = i64::from_le_bytes(secs);
    // `now` anywhere chrono can represent, often near today.
    let now = if byte(13) & 1 == 0 {
        DateTime::from_timestamp(1_700_000_000 + secs % 1_000_000_000, 0)
    } else {
        DateTime::from_timestamp(secs % 8_210_266_876_799, 0)
    }
    .unwrap_or(DateTime::<Utc>::MAX_UTC);
    let Ok(event) = serde_json::from_slice::<serde_json::Value>(data.get(20..).unwrap_or(&[]))
    else {
        return 0;
    };
    // Direct calls on the rule with `now` itself.
    let _ = rule.last_complete(now);
    if let Ok(w) = rule.try_last_complete(now) {
        assert!(w.start < w.end && w.end <= now, "{w} at {now}");
    }
    assert!(rule.windows_reading_ground_truth_hour(now).len() <= MAX_WINDOWS_PER_INVOCATION);
    let gt = S3Uri::parse("s3://bkt/gt/").expect("a valid URI");
    let report = S3Uri::parse("s3://reports/monitoring").expect("a valid URI");
    let target = layout::Target::Endpoint {
        endpoint_name: "ep".into(),
        variant_name: "AllTraffic".into(),
    };
    let Ok(trigger) = parse_trigger(event) else {
        return 0;
    };
    let Ok(Ok(planned)) = plan_windows(&trigger, &rule, Some(&gt), now) else {
        return 0;
    };
    assert!(planned.len() <= MAX_WINDOWS_PER_INVOCATION);
    for p in &planned {
        let w = p.window;
        assert!(w.start < w.end, "{w}");
        let hours = w.hours();
        assert!(hours.len() <= 31 * 24 + 1, "{w}: {} hours", hours.len());
        let (from, to) = rule.ground_truth_range(&w);
        assert!(from <= to);
        let _ = layout::hour_prefixes(&gt, from, to);
        let _ = layout::hour_prefixes(&gt, w.start, w.end);
        let _ = layout::lookback_hours(&w, Duration::minutes(5));
        let _ = layout::report_uris(&report, &target, "schedule", &w);
        let _ = (w.id(), w.to_string(), w.millis(), rule.is_due(&w, now));
    }
    planned.len()
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
    fn times_at_chronos_extremes_are_errors_not_panics() {
        let max = DateTime::<Utc>::MAX_UTC;
        let min = DateTime::<Utc>::MIN_UTC;
        let rule = WindowRule {
            minutes: 60,
            offset_minutes: 44640,
            ground_truth_delay_minutes: 44640,
        };
        for t in [max, min] {
            assert!(Window::new(t, t).is_err());
            assert!(
                rule.try_last_complete(t)
                    .unwrap_err()
                    .contains("outside the supported")
            );
            let _ = rule.last_complete(t);
            let w = rule.containing(t);
            assert!(Window::new(w.start, w.end).is_err(), "{w}");
            assert!(rule.windows_reading_ground_truth_hour(t).is_empty());
            assert!(!rule.is_due(&Window { start: t, end: t }, t) || t == min);
            let _ = rule.ground_truth_range(&Window { start: t, end: t });
            assert!(WindowRule::split(t, max, 60).is_err());
        }
        assert!(Window::hours_between(max - Duration::hours(3), max).len() >= 3);
        assert!(Window::new(t("1969-12-31T23:00:00Z"), t("1970-01-01T01:00:00Z")).is_err());
        assert!(Window::new(t("9999-12-31T00:00:00Z"), t("9999-12-31T23:00:00Z")).is_ok());
        // splitMinutes beyond 31 days.
        let e = WindowRule::split(t("2024-05-01T00:00:00Z"), t("2024-05-02T00:00:00Z"), 44641)
            .unwrap_err();
        assert!(e.contains("44640"), "{e}");
        assert!(
            WindowRule::split(t("2024-05-01T00:00:00Z"), t("2024-05-02T00:00:00Z"), 44640).is_ok()
        );
    }

    /// The fuzz target `plan_windows`'s inputs as a proptest: adversarial direct requests,
    /// schedules and S3 events (times at and past chrono's range, huge split minutes, odd keys).
    mod planning_props {
        use super::super::exercise_planning;
        use proptest::prelude::*;
        use serde_json::{Value, json};

        fn time() -> impl Strategy<Value = Value> {
            prop_oneof![
                Just(json!("+262143-12-31T23:59:59Z")),
                Just(json!("-262144-01-01T00:00:00Z")),
                Just(json!("9999-12-31T23:59:59Z")),
                Just(json!("0000-01-01T00:00:00Z")),
                Just(json!("1970-01-01T00:00:00Z")),
                Just(json!(i64::MAX)),
                Just(json!(i64::MIN)),
                Just(json!(-1)),
                Just(json!(1e300)),
                Just(json!("2024-05-01T10:00:00Z")),
                (0i64..4_000_000_000_000).prop_map(|ms| json!(ms)),
                any::<i64>().prop_map(|ms| json!(ms.to_string())),
            ]
        }

        fn event() -> impl Strategy<Value = Value> {
            let minutes = prop_oneof![
                Just(json!(0)),
                Just(json!(44641)),
                Just(json!(u32::MAX)),
                Just(json!(-1)),
                (1u32..50_000).prop_map(|m| json!(m))
            ];
            prop_oneof![
                (time(), time(), proptest::option::of(minutes)).prop_map(|(s, e, m)| {
                    let mut v = json!({"window": {"start": s, "end": e}});
                    if let Some(m) = m {
                        v["splitMinutes"] = m;
                    }
                    v
                }),
                time().prop_map(|t| json!({"time": t})),
                time().prop_map(|t| json!({"source": "aws.events", "detail-type": "Scheduled Event", "time": t})),
                (time(), "[0-9/]{0,20}").prop_map(|(t, k)| json!({"source": "aws.s3", "detail-type": "Object Created", "time": t,
                    "detail": {"bucket": {"name": "bkt"}, "object": {"key": format!("gt/{k}/x.jsonl")}}})),
                time().prop_map(|t| json!({"source": "driftloop", "detail-type": "Model Monitoring Requested",
                    "detail": {"window": {"start": t, "end": "2024-05-01T00:00:00Z"}}})),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]
            #[test]
            fn planning_never_panics(header in proptest::collection::vec(any::<u8>(), 20), ev in event()) {
                let mut data = header;
                data.extend(serde_json::to_vec(&ev).unwrap());
                exercise_planning(&data);
            }
        }
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
