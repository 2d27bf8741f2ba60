//! A capture record's prediction as the problem type reads it (score and label, value, class,
//! forecast instances), and its evaluation against a matched label.

use super::super::join::GtLabel;
use super::{Ingest, number_array};
use crate::metrics::parse::record::{
    Attr, CaptureRecord, Decoded, RecordError, finite_number, truncate,
};
use crate::metrics::quality::QualityState;
use crate::metrics::quality::forecast::ForecastInstance;
use crate::metrics::util::{canonical_label, value_f64};

impl Ingest {
    /// The predicted value of a regression record.
    pub(in crate::metrics::engine) fn regression_prediction(
        &self,
        d: &Decoded<'_>,
    ) -> Result<f64, RecordError> {
        let attr = self.inference_attr.as_ref().unwrap_or(&Attr::Whole);
        finite_number(&d.text(attr)?)
    }

    /// The score and predicted label of a binary-classification record.
    pub(in crate::metrics::engine) fn binary_prediction(
        &self,
        d: &Decoded<'_>,
    ) -> Result<(f64, bool), RecordError> {
        let pred_label = match &self.inference_attr {
            Some(a) => {
                let t = d.text(a)?;
                let c = canonical_label(&t);
                if *c == *self.positive {
                    Some(true)
                } else if *c == *self.negative {
                    Some(false)
                } else {
                    return Err(RecordError::InvalidLabel(truncate(&c, 40)));
                }
            }
            None => None,
        };
        let score = match (&self.probability_attr, pred_label) {
            (Some(a), _) => finite_number(&d.text(a)?)?,
            (None, None) => finite_number(&d.text(&Attr::Whole)?)?,
            (None, Some(p)) => f64::from(u8::from(p)),
        };
        Ok((
            score,
            pred_label.unwrap_or(score > self.cfg.probability_threshold),
        ))
    }

    /// Ok(false): record skipped for its label (counted as invalid label).
    pub(super) fn evaluate(
        &mut self,
        rec: &CaptureRecord<'_>,
        label: GtLabel,
        mask: u8,
    ) -> Result<bool, RecordError> {
        let pred = self.predict(rec)?;
        let Some(q) = self.state.quality.as_mut() else {
            return Ok(false);
        };
        let actuals;
        let label = match label {
            GtLabel::Num(y) => LabelRef::Num(y),
            GtLabel::Class(c) => LabelRef::Class(self.gt.class(c)),
            GtLabel::Series(off, len) => {
                actuals = self.gt.actuals(off, len);
                LabelRef::Series(&actuals)
            }
            GtLabel::Invalid => return Ok(false),
        };
        Ok(apply(q, &pred, label, mask))
    }

    /// A capture record's prediction as the problem type reads it.
    pub(in crate::metrics::engine) fn predict(
        &self,
        rec: &CaptureRecord<'_>,
    ) -> Result<Pred, RecordError> {
        let out = rec
            .output
            .as_ref()
            .ok_or(RecordError::Missing("endpointOutput"))?;
        let d = out.decode()?;
        match &self.state.quality {
            Some(QualityState::Regression(_)) => {
                Ok(Pred::Regression(self.regression_prediction(&d)?))
            }
            Some(QualityState::Binary(_)) => {
                let (score, pred) = self.binary_prediction(&d)?;
                Ok(Pred::Binary(score, pred))
            }
            Some(QualityState::Multiclass(_)) => {
                let pred: String = match (&self.inference_attr, &self.probability_attr) {
                    (Some(a), _) => canonical_label(&d.text(a)?).into_owned(),
                    (None, Some(p)) => {
                        let v = d
                            .value(p)
                            .ok_or_else(|| RecordError::Attribute(format!("{p:?}")))?;
                        argmax_label(&v)?
                    }
                    (None, None) => canonical_label(&d.text(&Attr::Whole)?).into_owned(),
                };
                Ok(Pred::Class(pred))
            }
            Some(QualityState::Forecast(s)) => {
                let input = rec.input.as_ref().and_then(|p| p.decode().ok());
                let instances = forecast_instances(&d, input.as_ref(), &s.quantiles)?;
                if instances.is_empty() {
                    return Err(RecordError::Forecast("no predictions".into()));
                }
                Ok(Pred::Forecast(instances))
            }
            None => Err(RecordError::Missing("problem type")),
        }
    }
}

/// A prediction as read.
pub(in crate::metrics::engine) enum Pred {
    Binary(f64, bool),
    Regression(f64),
    Class(String),
    Forecast(Vec<ForecastInstance>),
}

/// A (valid) label for [`apply`].
pub(in crate::metrics::engine) enum LabelRef<'a> {
    Num(f64),
    Class(&'a str),
    Series(&'a [Vec<f64>]),
}

/// Adds a matched record to the model-quality state; false when the label or the prediction
/// does not fit it (outside the class limit, or of another kind).
pub(in crate::metrics::engine) fn apply(
    q: &mut QualityState,
    pred: &Pred,
    label: LabelRef<'_>,
    mask: u8,
) -> bool {
    match (q, pred, label) {
        (QualityState::Regression(s), Pred::Regression(p), LabelRef::Num(y)) => {
            s.push(y, *p, mask);
            true
        }
        (QualityState::Binary(s), Pred::Binary(score, pred), LabelRef::Num(y)) => {
            s.push(*score, y == 1.0, *pred, mask);
            true
        }
        (QualityState::Multiclass(s), Pred::Class(p), LabelRef::Class(a)) => s.push(a, p, mask),
        (QualityState::Forecast(s), Pred::Forecast(inst), LabelRef::Series(actuals)) => {
            s.push(inst, actuals, mask);
            true
        }
        _ => false,
    }
}

fn argmax_label(v: &serde_json::Value) -> Result<String, RecordError> {
    let a = v
        .as_array()
        .ok_or_else(|| RecordError::Attribute("probability vector".into()))?;
    let mut best: Option<(usize, f64)> = None;
    for (i, x) in a.iter().enumerate() {
        let p = value_f64(x).ok_or_else(|| RecordError::NotANumber(x.to_string()))?;
        if !p.is_finite() {
            return Err(RecordError::NonFinite);
        }
        if best.is_none_or(|(_, b)| p > b) {
            best = Some((i, p));
        }
    }
    best.map(|(i, _)| i.to_string())
        .ok_or_else(|| RecordError::Attribute("empty probability vector".into()))
}

fn forecast_instances(
    out: &Decoded<'_>,
    input: Option<&Decoded<'_>>,
    quantiles: &[f64],
) -> Result<Vec<ForecastInstance>, RecordError> {
    let Decoded::Json(v) = out else {
        return Err(RecordError::Forecast("forecast output must be JSON".into()));
    };
    let preds: Vec<&serde_json::Value> = match v.get("predictions").and_then(|p| p.as_array()) {
        Some(a) => a.iter().collect(),
        None => vec![v],
    };
    let histories: Vec<Option<Vec<f64>>> = match input {
        Some(Decoded::Json(iv)) => match iv.get("instances").and_then(|i| i.as_array()) {
            Some(a) => a
                .iter()
                .map(|x| x.get("target").and_then(number_array))
                .collect(),
            None => vec![iv.get("target").and_then(number_array)],
        },
        _ => Vec::new(),
    };
    let mut out = Vec::new();
    for (i, p) in preds.iter().enumerate() {
        let qobj = p.get("quantiles").and_then(|q| q.as_object());
        let qs: Vec<Vec<f64>> = quantiles
            .iter()
            .map(|&q| {
                qobj.and_then(|o| {
                    o.iter()
                        .find(|(k, _)| k.parse::<f64>().is_ok_and(|kq| (kq - q).abs() < 1e-9))
                        .and_then(|(_, v)| number_array(v))
                })
                .unwrap_or_default()
            })
            .collect();
        let point = p
            .get("mean")
            .and_then(number_array)
            .or_else(|| {
                qobj.and_then(|o| {
                    o.iter()
                        .find(|(k, _)| k.parse::<f64>().is_ok_and(|kq| (kq - 0.5).abs() < 1e-9))
                        .and_then(|(_, v)| number_array(v))
                })
            })
            .or_else(|| qs.get(qs.len() / 2).cloned().filter(|v| !v.is_empty()))
            .ok_or_else(|| {
                RecordError::Forecast("prediction has neither mean nor quantiles".into())
            })?;
        out.push(ForecastInstance {
            quantiles: qs,
            point,
            history: histories.get(i).cloned().flatten(),
        });
    }
    Ok(out)
}
