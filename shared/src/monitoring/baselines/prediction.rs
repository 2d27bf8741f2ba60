//! Prediction drift's baseline: the model output's distribution on a reference window, from the
//! environment, the served package's metadata or its data-quality statistics
//! ([`resolve_prediction_baseline`]).

use serde::Serialize;

use super::{Baselines, get_text};
use crate::error::AwsError;
use crate::metrics::BaselineStatistics;
use crate::metrics::dq::baseline::{BaselineFeatureStats, MonitoringConfig};
use crate::storage::ObjectStore;

/// The model package's `CustomerMetadataProperties` key whose value is the S3 URI of its
/// prediction baseline: a Model-Monitor-shaped `statistics.json` holding the model output's
/// distribution on a reference window (the `prediction_statistics.json` of `driftloop-metrics run
/// --prediction-drift`). Metadata for the same reasons as [`CALIBRATION_METADATA_KEY`]: it follows
/// the served model, and no `DriftCheckBaselines` slot holds an output distribution.
pub const PREDICTION_BASELINE_METADATA_KEY: &str = "driftloop:prediction-baseline";

/// Where a run's prediction baseline comes from ([`resolve_prediction_baseline`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum PredictionSource {
    /// `PREDICTION_BASELINE_S3_URI`: one file for every package.
    Environment,
    /// The package's [`PREDICTION_BASELINE_METADATA_KEY`].
    Package,
    /// The `PREDICTION_FEATURE` column of the package's data-quality `statistics.json`.
    DataQualityBaseline,
}

/// The model output's baseline for prediction drift, and the config its drift is checked with.
#[derive(Debug, Clone)]
pub struct PredictionBaseline {
    pub source: PredictionSource,
    /// The file it was read from.
    pub uri: String,
    pub feature: BaselineFeatureStats,
    /// The data-quality constraints' `monitoring_config` (with the overrides of a feature named
    /// like this one), else the defaults.
    pub config: MonitoringConfig,
}

/// Prediction drift's baseline, the first of:
/// 1. `env_uri` (`PREDICTION_BASELINE_S3_URI`): one file whatever the package;
/// 2. the file the package names in [`PREDICTION_BASELINE_METADATA_KEY`] (it follows the served
///    model, as the calibration does);
/// 3. with `feature` set (`PREDICTION_FEATURE`), that column of the package's data-quality
///    `statistics.json` (a Model Monitor baseline whose dataset started with the model output).
///
/// In a file, the model output is the feature `feature`, else `prediction`, else the file's only
/// feature ([`BaselineStatistics::prediction_feature`]). A baseline that cannot be used is
/// reported in `problems` and left out; only a retryable AWS error fails the run.
pub async fn resolve_prediction_baseline(
    store: &dyn ObjectStore,
    b: &mut Baselines,
    env_uri: Option<&str>,
    feature: Option<&str>,
) -> Result<(), AwsError> {
    let (source, uri) = match (env_uri, b.prediction_uri.clone()) {
        (Some(u), _) => (PredictionSource::Environment, Some(u.to_owned())),
        (None, Some(u)) => (PredictionSource::Package, Some(u)),
        (None, None) if feature.is_some() => (PredictionSource::DataQualityBaseline, None),
        (None, None) => return Ok(()),
    };
    let problem = |b: &mut Baselines, p: String| {
        tracing::warn!(problem = p, "prediction baseline not used");
        b.problems.push(p);
    };
    let (stats, uri) = match uri {
        Some(uri) => {
            if source == PredictionSource::Package {
                b.uris.push(uri.clone());
            }
            match get_text(store, &uri)
                .await?
                .and_then(|t| BaselineStatistics::parse(&t))
            {
                Ok(s) => (s, uri),
                Err(e) => {
                    let whose = match source {
                        PredictionSource::Environment => "PREDICTION_BASELINE_S3_URI",
                        _ => PREDICTION_BASELINE_METADATA_KEY,
                    };
                    problem(b, format!("prediction baseline {uri} ({whose}): {e}"));
                    return Ok(());
                }
            }
        }
        None => match (b.dq_statistics.clone(), b.dq_statistics_uri.clone()) {
            (Some(s), Some(uri)) => (s, uri),
            _ => {
                problem(
                    b,
                    format!(
                        "PREDICTION_FEATURE={:?}: the package has no data-quality statistics to take the prediction baseline from",
                        feature.unwrap_or_default()
                    ),
                );
                return Ok(());
            }
        },
    };
    let f = match stats.prediction_feature(feature) {
        Ok(f) => f.clone(),
        Err(e) => {
            let hint = if feature.is_some() {
                ""
            } else {
                " (set PREDICTION_FEATURE)"
            };
            problem(b, format!("prediction baseline {uri}: {e}{hint}"));
            return Ok(());
        }
    };
    let config = b
        .dq_constraints
        .as_ref()
        .map_or_else(MonitoringConfig::default, |c| c.config_of(&f.name));
    b.prediction = Some(PredictionBaseline {
        source,
        uri,
        feature: f,
        config,
    });
    Ok(())
}
