//! Where things are in S3.
//!
//! * Real-time capture: `{capture}/{endpoint}/{variant}/yyyy/mm/dd/hh/{MM}-{SS}-{mmm}-{uuid}.jsonl`
//!   (SageMaker's layout; the folder and name give the time the file was started, and a file holds
//!   records from then on, so the files started shortly before a window are read too —
//!   [`lookback_hours`], [`capture_file_start`] — and the engine keeps the records inside it).
//! * Batch-transform capture: manifests under `{capture}/input/yyyy/mm/dd/hh/` and
//!   `{capture}/output/yyyy/mm/dd/hh/` (see [`super::manifest`]).
//! * Ground truth: `{ground_truth}/yyyy/mm/dd/hh/*.jsonl` (the hour the labels were collected).
//! * Reports: one folder per monitored target and window,
//!   `{report}/{endpoint}/{variant}/{schedule}/yyyy/mm/dd/hh/{window id}/` with
//!   `statistics.json`, `constraint_violations.json` and `summary.json` (batch transform:
//!   `{report}/batch-transform/{schedule}/...`). The key depends only on the target and the window,
//!   so a re-run overwrites and never duplicates.
//!
//! Folder lists are minimal: a day whose 24 hours are all needed is listed with one day prefix.

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Timelike, Utc};

use super::window::{Window, floor_hour};
use crate::storage::S3Uri;

/// What is being monitored: a real-time endpoint variant or batch transforms.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "mode", rename_all = "camelCase")]
pub enum Target {
    #[serde(rename_all = "camelCase")]
    Endpoint {
        endpoint_name: String,
        variant_name: String,
    },
    BatchTransform,
}

fn hour_path(h: DateTime<Utc>) -> String {
    h.format("%Y/%m/%d/%H/").to_string()
}

fn day_path(d: NaiveDate) -> String {
    d.format("%Y/%m/%d/").to_string()
}

/// The prefixes under `base` (a `.../` folder of `yyyy/mm/dd/hh/` hours) covering `[from, to)`:
/// whole days as day prefixes, other hours one by one. In time order.
pub fn hour_prefixes(base: &S3Uri, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<S3Uri> {
    let hours = Window::hours_between(from, to);
    let mut out = Vec::new();
    let mut i = 0;
    while i < hours.len() {
        let h = hours[i];
        let whole_day = h.hour() == 0
            && hours
                .get(i + 23)
                .is_some_and(|last| Some(*last) == h.checked_add_signed(Duration::hours(23)));
        if whole_day {
            out.push(base.join(&day_path(h.date_naive())));
            i += 24;
        } else {
            out.push(base.join(&hour_path(h)));
            i += 1;
        }
    }
    out
}

/// `{capture}/{endpoint}/{variant}/` (real-time) or `{capture}/output/` (batch manifests).
pub fn capture_base(capture: &S3Uri, target: &Target) -> S3Uri {
    match target {
        Target::Endpoint {
            endpoint_name,
            variant_name,
        } => capture.join(&format!("{endpoint_name}/{variant_name}/")),
        Target::BatchTransform => capture.join("output/"),
    }
}

/// `{capture}/input/`: batch-transform input manifests.
pub fn batch_input_base(capture: &S3Uri) -> S3Uri {
    capture.join("input/")
}

/// `{ground_truth}/` as a folder.
pub fn folder(uri: &S3Uri) -> S3Uri {
    let mut f = uri.clone();
    if !f.key.is_empty() && !f.key.ends_with('/') {
        f.key.push('/');
    }
    f
}

/// The UTC hour of an object under `base` laid out as `yyyy/mm/dd/hh/...`.
pub fn hour_of_key(base: &S3Uri, object: &S3Uri) -> Option<DateTime<Utc>> {
    let base = folder(base);
    if object.bucket != base.bucket {
        return None;
    }
    let rest = object.key.strip_prefix(&base.key)?;
    let mut parts = rest.split('/');
    let mut num = |len: usize| {
        parts
            .next()
            .filter(|p| p.len() == len && p.bytes().all(|b| b.is_ascii_digit()))?
            .parse::<u32>()
            .ok()
    };
    let (y, m, d, h) = (num(4)?, num(2)?, num(2)?, num(2)?);
    let t = Utc.with_ymd_and_hms(y as i32, m, d, h, 0, 0).single()?;
    // A file must follow the hour folder.
    parts.next().filter(|f| !f.is_empty())?;
    Some(t)
}

/// When a real-time capture file was started: its hour folder plus the `{MM}-{SS}-{mmm}` its
/// name begins with (SageMaker's `{MM}-{SS}-{mmm}-{uuid}.jsonl`).
pub fn capture_file_start(base: &S3Uri, object: &S3Uri) -> Option<DateTime<Utc>> {
    let hour = hour_of_key(base, object)?;
    let name = object.key.rsplit('/').next()?;
    let mut parts = name.splitn(4, '-');
    let mut num = |max: u32, len: usize| {
        parts
            .next()
            .filter(|p| p.len() == len)
            .and_then(|p| p.parse::<u32>().ok())
            .filter(|v| *v <= max)
    };
    let (m, s, ms) = (num(59, 2)?, num(59, 2)?, num(999, 3)?);
    hour.checked_add_signed(Duration::milliseconds(i64::from(
        m * 60_000 + s * 1000 + ms,
    )))
}

/// A capture file started shortly before a window can still hold records of its first moments
/// (SageMaker buffers records into a file and names it after its start): the hours of
/// `[start - lookback, start)` outside the window's own hours, to be listed and filtered with
/// [`capture_file_start`] `>= start - lookback`.
pub fn lookback_hours(window: &Window, lookback: Duration) -> Vec<DateTime<Utc>> {
    let own = floor_hour(window.start);
    let from = window
        .start
        .checked_sub_signed(lookback)
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    Window::hours_between(from, window.start)
        .into_iter()
        .filter(|h| *h < own)
        .collect()
}

/// True when `object` is inside the folder `base`.
pub fn is_under(base: &S3Uri, object: &S3Uri) -> bool {
    let base = folder(base);
    object.bucket == base.bucket
        && object.key.starts_with(&base.key)
        && object.key.len() > base.key.len()
}

/// The three report objects of a window.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportUris {
    pub statistics: S3Uri,
    pub constraint_violations: S3Uri,
    pub summary: S3Uri,
}

impl ReportUris {
    pub fn as_strings(&self) -> serde_json::Value {
        serde_json::json!({
            "statistics": self.statistics.to_string(),
            "constraintViolations": self.constraint_violations.to_string(),
            "summary": self.summary.to_string(),
        })
    }
}

/// The deterministic report folder of a target, schedule and window.
pub fn report_folder(report: &S3Uri, target: &Target, schedule: &str, window: &Window) -> S3Uri {
    let who = match target {
        Target::Endpoint {
            endpoint_name,
            variant_name,
        } => format!("{endpoint_name}/{variant_name}"),
        Target::BatchTransform => "batch-transform".to_owned(),
    };
    report.join(&format!(
        "{who}/{schedule}/{}{}/",
        hour_path(floor_hour(window.start)),
        window.id()
    ))
}

/// The record of what a window's CloudWatch stream (`final`, `provisional`) holds, beside its
/// reports: `cloudwatch-<stream>.json` ([`super::publication`]).
pub fn cloudwatch_record(uris: &ReportUris, stream: &str) -> S3Uri {
    let folder = uris
        .summary
        .key
        .strip_suffix("summary.json")
        .unwrap_or(&uris.summary.key);
    S3Uri {
        bucket: uris.summary.bucket.clone(),
        key: format!("{folder}cloudwatch-{stream}.json"),
    }
}

pub fn report_uris(report: &S3Uri, target: &Target, schedule: &str, window: &Window) -> ReportUris {
    let f = report_folder(report, target, schedule, window);
    ReportUris {
        statistics: f.join("statistics.json"),
        constraint_violations: f.join("constraint_violations.json"),
        summary: f.join("summary.json"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn capture_and_ground_truth_prefixes() {
        let cap = S3Uri::parse("s3://bkt/capture").unwrap();
        let target = Target::Endpoint {
            endpoint_name: "churn".into(),
            variant_name: "AllTraffic".into(),
        };
        let base = capture_base(&cap, &target);
        let p = hour_prefixes(&base, t("2024-05-01T09:00:00Z"), t("2024-05-01T11:00:00Z"));
        let keys: Vec<_> = p.iter().map(ToString::to_string).collect();
        assert_eq!(
            keys,
            [
                "s3://bkt/capture/churn/AllTraffic/2024/05/01/09/",
                "s3://bkt/capture/churn/AllTraffic/2024/05/01/10/"
            ]
        );
        let gt = S3Uri::parse("s3://bkt/gt/").unwrap();
        let p = hour_prefixes(
            &folder(&gt),
            t("2024-04-30T23:00:00Z"),
            t("2024-05-02T01:00:00Z"),
        );
        let keys: Vec<_> = p.iter().map(ToString::to_string).collect();
        assert_eq!(
            keys,
            [
                "s3://bkt/gt/2024/04/30/23/",
                "s3://bkt/gt/2024/05/01/",
                "s3://bkt/gt/2024/05/02/00/"
            ]
        );
        assert_eq!(
            capture_base(&cap, &Target::BatchTransform).to_string(),
            "s3://bkt/capture/output/"
        );
        assert_eq!(
            batch_input_base(&cap).to_string(),
            "s3://bkt/capture/input/"
        );
    }

    #[test]
    fn hour_of_ground_truth_keys() {
        let gt = S3Uri::parse("s3://bkt/gt").unwrap();
        let o = S3Uri::parse("s3://bkt/gt/2024/05/01/10/labels-1.jsonl").unwrap();
        assert_eq!(hour_of_key(&gt, &o), Some(t("2024-05-01T10:00:00Z")));
        assert!(is_under(&gt, &o));
        for bad in [
            "s3://bkt/gt/2024/05/01/labels.jsonl",
            "s3://bkt/gt/2024/13/01/10/x",
            "s3://other/gt/2024/05/01/10/x",
            "s3://bkt/gt/2024/05/01/10/",
        ] {
            assert_eq!(hour_of_key(&gt, &S3Uri::parse(bad).unwrap()), None, "{bad}");
        }
        assert!(!is_under(
            &gt,
            &S3Uri::parse("s3://bkt/gtx/2024/05/01/10/a").unwrap()
        ));
    }

    #[test]
    fn capture_file_start_times_and_lookback() {
        let base = S3Uri::parse("s3://bkt/capture/ep/AllTraffic/").unwrap();
        let f =
            S3Uri::parse("s3://bkt/capture/ep/AllTraffic/2024/05/01/09/59-50-123-0f1e2d3c.jsonl")
                .unwrap();
        assert_eq!(
            capture_file_start(&base, &f),
            Some(t("2024-05-01T09:59:50.123Z"))
        );
        let odd =
            S3Uri::parse("s3://bkt/capture/ep/AllTraffic/2024/05/01/09/custom-name.jsonl").unwrap();
        assert_eq!(capture_file_start(&base, &odd), None);
        let w = Window::new(t("2024-05-01T10:00:00Z"), t("2024-05-01T11:00:00Z")).unwrap();
        assert_eq!(
            lookback_hours(&w, Duration::minutes(5)),
            [t("2024-05-01T09:00:00Z")]
        );
        let mid = Window::new(t("2024-05-01T10:30:00Z"), t("2024-05-01T11:00:00Z")).unwrap();
        assert!(
            lookback_hours(&mid, Duration::minutes(5)).is_empty(),
            "its own first hour is read anyway"
        );
        assert!(lookback_hours(&w, Duration::zero()).is_empty());
    }

    #[test]
    fn report_keys_are_deterministic_per_target_and_window() {
        let r = S3Uri::parse("s3://reports/monitoring").unwrap();
        let target = Target::Endpoint {
            endpoint_name: "churn".into(),
            variant_name: "AllTraffic".into(),
        };
        let w = Window::new(t("2024-05-01T09:00:00Z"), t("2024-05-01T10:00:00Z")).unwrap();
        let u = report_uris(&r, &target, "churn-quality", &w);
        assert_eq!(
            u.statistics.to_string(),
            "s3://reports/monitoring/churn/AllTraffic/churn-quality/2024/05/01/09/20240501T0900Z-20240501T1000Z/statistics.json"
        );
        assert_eq!(u, report_uris(&r, &target, "churn-quality", &w));
        assert_eq!(
            cloudwatch_record(&u, "final").key,
            u.summary
                .key
                .replace("summary.json", "cloudwatch-final.json")
        );
        assert!(
            u.constraint_violations
                .key
                .ends_with("/constraint_violations.json")
        );
        let b = report_uris(&r, &Target::BatchTransform, "s", &w);
        assert!(
            b.summary
                .key
                .starts_with("monitoring/batch-transform/s/2024/05/01/09/"),
            "{}",
            b.summary
        );
    }
}
