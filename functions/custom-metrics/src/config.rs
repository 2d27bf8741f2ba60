//! custom-metrics' configuration from the environment ([`Config::from_env`]).

use driftloop::config::{ConfigError, Env, Lookup};
use driftloop::metrics::CaptureFormat;
use driftloop::monitoring::fanout;
use driftloop::monitoring::scaleout;
use driftloop::monitoring::settings::{
    MAX_FORECAST_SEASONALITY, parse_batch_format, parse_dimensions, parse_feature_names,
    parse_problem, parse_quantiles,
};
use driftloop::monitoring::{CaptureMode, Settings, WindowRule};
use driftloop::storage::S3Uri;

/// Configuration from the environment (validated at init; errors name the variable).
///
/// | variable | meaning | default |
/// |---|---|---|
/// | `CAPTURE_S3_URI` | data capture destination (`DestinationS3Uri`) | required |
/// | `REPORT_S3_URI` | where reports go: `{report}/{endpoint}/{variant}/{schedule}/yyyy/mm/dd/hh/{window}/` | required |
/// | `CAPTURE_MODE` | `realtime` (endpoint capture) or `batchTransform` (capture manifests under `/input`, `/output`) | `realtime` |
/// | `ENDPOINT_NAME` | the monitored endpoint | required in `realtime` mode |
/// | `VARIANT_NAME` | its production variant | `AllTraffic` |
/// | `BATCH_OUTPUT_FORMAT` | batch transform output rows: `csv` (trailing id, time columns) or `json` (`SageMakerInferenceId`) | `csv` |
/// | `GROUND_TRUTH_S3_URI` | ground truth (`{uri}/yyyy/mm/dd/hh/*.jsonl`) | required with `PROBLEM_TYPE` |
/// | `PROBLEM_TYPE` | `Regression`, `BinaryClassification`, `MulticlassClassification`, `Forecast`; unset: data quality only | — |
/// | `INFERENCE_ATTRIBUTE` | predicted label/value: CSV column index or JSON path | engine default (whole output) |
/// | `PROBABILITY_ATTRIBUTE` | score/probability: CSV index or JSON path | — |
/// | `PROBABILITY_THRESHOLD` | binary: positive when score > threshold | `0.5` |
/// | `FORECAST_QUANTILES` | `Forecast`: the quantiles scored (`wQL_<q>`, `mean_wQL`), 1-20 distinct numbers in (0, 1) | `0.1,0.5,0.9` |
/// | `FORECAST_SEASONALITY` | `Forecast`: MASE's seasonality m (1-10000) | `1` |
/// | `GROUND_TRUTH_ATTRIBUTE` | label inside `groundTruthData.data` | column 0 / whole value |
/// | `POSITIVE_LABEL`, `NEGATIVE_LABEL` | binary classes | `1`, `0` |
/// | `DATA_QUALITY` | data-quality statistics and checks: `true`, `false`, `auto` (on with a data-quality baseline or without a problem type) | `auto` |
/// | `MODEL_PACKAGE_GROUP_NAME` | turns baselines on: those of the package the endpoint serves (endpoint → config → model → `ModelPackageName`), else (reported) the group's latest approved package | no baselines |
/// | `METRICS_NAMESPACE` | one custom namespace for all metrics | `aws/sagemaker/Endpoints/model-metrics` + `.../data-metrics` (batch: `aws/sagemaker/ModelMonitoring/...`) |
/// | `METRICS_DIMENSIONS` | extra dimensions `Name=Value,...` | — (always `Endpoint` in real-time mode and `MonitoringSchedule`) |
/// | `MONITORING_SCHEDULE_NAME` | the `MonitoringSchedule` dimension and report folder | `custom-metrics` |
/// | `EVENT_BUS_NAME` | bus of the run's event | the default bus |
/// | `PREDICTION_BASELINE_S3_URI` | prediction drift: the model output's baseline (a `statistics.json`, e.g. the `prediction_statistics.json` of `driftloop-metrics run --prediction-drift`) for every package, overriding the package's `driftloop:prediction-baseline` ([`driftloop::monitoring::baselines::resolve_prediction_baseline`]) | the served package's `driftloop:prediction-baseline`, else none |
/// | `PREDICTION_FEATURE` | the feature of the prediction baseline that holds the model output; without a prediction baseline file, that column of the package's data-quality `statistics.json` (e.g. `_c0`) is the prediction baseline | `prediction`, else the file's only feature |
/// | `FEATURE_NAMES` | data quality: names of the captured CSV columns, comma separated, in capture order (model output first, then the request's columns); overrides the baseline's feature names, which otherwise name headerless columns by position ([`driftloop::metrics::dq::naming`]) | the baseline's features, else `_c0, _c1, ...` |
/// | `WINDOW_MINUTES` | window length (divides a day, or whole days) | `60` |
/// | `WINDOW_OFFSET_MINUTES` | a scheduled run evaluates the last window that ended this long before it | `0` |
/// | `GROUND_TRUTH_DELAY_MINUTES` | labels are read from folders up to this long after the window's end | `WINDOW_OFFSET_MINUTES` |
/// | `DEDUP_QUIET_SECONDS` | S3-event runs wait this long so a burst of uploads settles (0-600) | `20` |
/// | `READ_CONCURRENCY` | objects downloaded ahead of the engine (1-64) | `8` |
/// | `ENGINE_THREADS` | threads parsing objects with the broadcast join: labels into one shared table, capture joined against it on every thread (the one-thread result; used while the threads' extra memory fits in half the ground-truth memory, see `driftloop::monitoring::feed::compute_with`); `0`/`all` = every available core (a 10 GB function has 6 vCPUs) | `1` (two threads: ~4% more instructions, 1.65–1.9x less wall time on idle cores, `docs/scale-out.md`) |
/// | `GROUND_TRUTH_MEMORY_MB` | memory the buffered ground truth may take; past it a window fails with `Permanent.GroundTruthTooLarge` (read at run time, see `driftloop::monitoring::feed`) | half of `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`; unlimited outside Lambda |
/// | `CAPTURE_FILE_LOOKBACK_MINUTES` | real-time capture files started this long before a window are read too (a file holds records after its start time; 0-60) | `5` |
/// | `SCALE_OUT_STATE_MACHINE_ARN` | the scale-out state machine ([`driftloop::monitoring::scaleout`]); unset: every window is computed here | — |
/// | `SCALE_OUT_BYTES` | with the state machine: a window whose listed input (capture + ground truth) exceeds this many bytes is handed to it instead of computed here; `0` or unset: only on a direct request's `"scaleOut": true` | — |
/// | `SCALE_OUT_SLICE_BYTES` | the input bytes of one scale-out worker (at least 1) | `134217728` (128 MiB) |
/// | `CATALOGUE_S3_URI` | the model catalogue (`s3://bucket/key.json`), read once per invocation: the schedule monitors every monitored stage of every model, label uploads go to the model of their prefix, direct requests select with `endpointName` or `group`/`stage` (see the module doc); the variables above stay the environment's own endpoint (monitored too when the catalogue names neither its group nor its endpoint) and give the catalogue models `REPORT_S3_URI`, `VARIANT_NAME`, `METRICS_NAMESPACE`, `METRICS_DIMENSIONS`, `EVENT_BUS_NAME` | — (the environment's endpoint only) |
/// | `FANOUT_CONCURRENCY` | catalogue targets evaluated at the same time (1-64); each running window's ground truth gets `1/n` of `GROUND_TRUTH_MEMORY_MB`'s share | `8` |
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub settings: Settings,
    pub window: WindowRule,
    pub dedup_quiet_seconds: u64,
    pub read_concurrency: usize,
    pub capture_lookback_minutes: u32,
    pub scale_out: ScaleOutConfig,
    /// `CATALOGUE_S3_URI`.
    pub catalogue: Option<S3Uri>,
    /// `FANOUT_CONCURRENCY`: catalogue targets run at the same time.
    pub fanout_concurrency: usize,
}

/// The scale-out mode's configuration (`SCALE_OUT_*`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ScaleOutConfig {
    pub state_machine_arn: Option<String>,
    /// None: only when a direct request asks for it.
    pub threshold_bytes: Option<u64>,
    pub slice_bytes: u64,
}

impl Config {
    pub fn from_env(lookup: &dyn Lookup) -> Result<Self, ConfigError> {
        let env = Env::new(lookup);
        let uri = |var: &str| env.validated(var, S3Uri::parse);
        let capture = uri("CAPTURE_S3_URI")?.ok_or(ConfigError::Missing {
            var: "CAPTURE_S3_URI".into(),
            hint: Some("the data capture destination"),
        })?;
        let report = uri("REPORT_S3_URI")?.ok_or(ConfigError::Missing {
            var: "REPORT_S3_URI".into(),
            hint: Some("where reports are written"),
        })?;
        let minutes = env
            .validated("WINDOW_MINUTES", |v| {
                v.parse::<u32>()
                    .map_err(|e| e.to_string())
                    .and_then(WindowRule::validate_minutes)
            })?
            .unwrap_or(60);
        let days31 = |v: &u32| *v <= 31 * 1440;
        let offset = env.parse_checked(
            "WINDOW_OFFSET_MINUTES",
            0,
            days31,
            "at most 44640 (31 days)",
        )?;
        let delay = env.parse_checked(
            "GROUND_TRUTH_DELAY_MINUTES",
            offset,
            days31,
            "at most 44640 (31 days)",
        )?;
        let quiet =
            env.parse_checked("DEDUP_QUIET_SECONDS", 20u64, |v| *v <= 600, "at most 600")?;
        let concurrency = env.parse_checked(
            "READ_CONCURRENCY",
            8usize,
            |v| (1..=64).contains(v),
            "must be 1-64",
        )?;
        let lookback = env.parse_checked(
            "CAPTURE_FILE_LOOKBACK_MINUTES",
            5u32,
            |v| *v <= 60,
            "at most 60",
        )?;
        let forecast_quantiles = env
            .validated("FORECAST_QUANTILES", parse_quantiles)?
            .unwrap_or_else(|| vec![0.1, 0.5, 0.9]);
        let forecast_seasonality = env.parse_checked(
            "FORECAST_SEASONALITY",
            1usize,
            |v| (1..=MAX_FORECAST_SEASONALITY).contains(v),
            "must be 1-10000",
        )?;
        let data_quality =
            env.validated("DATA_QUALITY", |v| match v.to_ascii_lowercase().as_str() {
                "auto" => Ok(None),
                "true" | "1" | "yes" | "on" => Ok(Some(true)),
                "false" | "0" | "no" | "off" => Ok(Some(false)),
                _ => Err("expected true, false or auto".to_owned()),
            })?;
        let settings = Settings {
            capture_mode: env
                .validated("CAPTURE_MODE", CaptureMode::parse)?
                .unwrap_or(CaptureMode::Realtime),
            endpoint_name: env.optional("ENDPOINT_NAME"),
            variant_name: env
                .optional("VARIANT_NAME")
                .unwrap_or_else(|| "AllTraffic".to_owned()),
            capture,
            ground_truth: uri("GROUND_TRUTH_S3_URI")?,
            report,
            batch_format: env
                .validated("BATCH_OUTPUT_FORMAT", parse_batch_format)?
                .unwrap_or(CaptureFormat::BatchCsv),
            problem_type: env.validated("PROBLEM_TYPE", parse_problem)?,
            inference_attribute: env.optional("INFERENCE_ATTRIBUTE"),
            probability_attribute: env.optional("PROBABILITY_ATTRIBUTE"),
            probability_threshold: env.parse_or("PROBABILITY_THRESHOLD", 0.5)?,
            ground_truth_attribute: env.optional("GROUND_TRUTH_ATTRIBUTE"),
            positive_label: env
                .optional("POSITIVE_LABEL")
                .unwrap_or_else(|| "1".to_owned()),
            negative_label: env
                .optional("NEGATIVE_LABEL")
                .unwrap_or_else(|| "0".to_owned()),
            forecast_quantiles,
            forecast_seasonality,
            data_quality: data_quality.flatten(),
            model_package_group: env.optional("MODEL_PACKAGE_GROUP_NAME"),
            metrics_namespace: env.optional("METRICS_NAMESPACE"),
            metrics_dimensions: env
                .validated("METRICS_DIMENSIONS", parse_dimensions)?
                .unwrap_or_default(),
            schedule_name: env
                .optional("MONITORING_SCHEDULE_NAME")
                .unwrap_or_else(|| "custom-metrics".to_owned()),
            event_bus: env.optional("EVENT_BUS_NAME"),
            feature_names: env.validated("FEATURE_NAMES", parse_feature_names)?,
            prediction_baseline: uri("PREDICTION_BASELINE_S3_URI")?,
            prediction_feature: env.optional("PREDICTION_FEATURE"),
        };
        let scale_out = ScaleOutConfig {
            state_machine_arn: env.optional("SCALE_OUT_STATE_MACHINE_ARN"),
            threshold_bytes: Some(env.parse_or("SCALE_OUT_BYTES", 0u64)?).filter(|b| *b > 0),
            slice_bytes: env.parse_checked(
                "SCALE_OUT_SLICE_BYTES",
                scaleout::DEFAULT_SLICE_BYTES,
                |v| *v >= 1,
                "at least 1",
            )?,
        };
        let settings = settings.check().map_err(|e| {
            let var = e.setting.env_var().to_owned();
            let value = lookup.get(&var).unwrap_or_default();
            if value.trim().is_empty() {
                ConfigError::Missing { var, hint: None }
            } else {
                ConfigError::Invalid {
                    var,
                    value,
                    reason: e.reason,
                }
            }
        })?;
        Ok(Config {
            settings,
            window: WindowRule {
                minutes,
                offset_minutes: offset,
                ground_truth_delay_minutes: delay,
            },
            dedup_quiet_seconds: quiet,
            read_concurrency: concurrency,
            capture_lookback_minutes: lookback,
            scale_out,
            catalogue: uri("CATALOGUE_S3_URI")?,
            fanout_concurrency: env.parse_checked(
                "FANOUT_CONCURRENCY",
                fanout::DEFAULT_CONCURRENCY,
                |v| (1..=fanout::MAX_CONCURRENCY).contains(v),
                "must be 1-64",
            )?,
        })
    }
}
