//! Names of positional columns: how a headerless CSV record (or a JSON array) is matched to a
//! header-named baseline.
//!
//! Captured CSV has no header, so Model Monitor matches the captured columns to the baseline's
//! features **by position**: the model-output columns, then the request's columns
//! (`output_columns_position='START'`, its default), or the other way round (`END`). driftloop does
//! the same:
//!
//! 1. **The names.** `feature_names` (custom-metrics `FEATURE_NAMES`, the CLI's `--feature-names`)
//!    when given, else the baseline's features in their order (`constraints.json`, else
//!    `statistics.json`), else none (`_c0`, `_c1`, ...). Position `i` of the laid-out record gets
//!    name `i`; positions beyond the names get `_c{i}`.
//! 2. **The layout.** A record's output columns come first (`Start`) or last (`End`,
//!    [`crate::metrics::OutputColumnsPosition`]), then the names apply. A baseline whose output
//!    column is not where the capture puts it (e.g. the label last but the capture's output first)
//!    is served by naming the columns explicitly in capture order: `FEATURE_NAMES=medv,crim,zn,...`
//!    (the output's name first) — matching to the baseline is by name after that.
//! 3. **Output columns or not.** With `E` names, a record with `N` request columns and `k > 0`
//!    output columns leaves its output out when `N == E` (a baseline without output columns, e.g.
//!    one suggested from the training features only), and includes it otherwise (`N + k == E` is
//!    the usual case; anything else is a mismatch, below). Without names, output columns are
//!    always included (Model Monitor's layout). `dq_include_output = false` (the CLI's
//!    `--no-output-columns`) never includes them.
//! 4. **A column count that disagrees** with the names (`N + k != E` and `N != E`) is what Model
//!    Monitor reports as `missing_column_check` (fewer columns: the last baseline features get no
//!    value) or `extra_column_check` (more: the extra columns are `_c{i}`), with the current and
//!    baseline column counts in the description. Such records are counted in
//!    `data_quality_column_mismatch` and sampled with both counts.
//!
//! JSON objects keep matching by key; names apply only to positional values.

use super::baseline::{BaselineConstraints, BaselineStatistics};

/// Where the names came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamesSource {
    /// `feature_names` (`FEATURE_NAMES`, `--feature-names`).
    Explicit,
    /// The baseline's features.
    Baseline,
}

/// The names of positional columns, and the rule of output columns (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnNames {
    pub names: Vec<String>,
    pub source: NamesSource,
}

impl ColumnNames {
    /// Explicit names, else the constraints' features, else the statistics' features.
    pub fn resolve(
        explicit: Option<&[String]>,
        constraints: Option<&BaselineConstraints>,
        statistics: Option<&BaselineStatistics>,
    ) -> Option<ColumnNames> {
        if let Some(n) = explicit.filter(|n| !n.is_empty()) {
            return Some(ColumnNames {
                names: n.to_vec(),
                source: NamesSource::Explicit,
            });
        }
        let names: Vec<String> = match (constraints, statistics) {
            (Some(c), _) if !c.features.is_empty() => {
                c.features.iter().map(|f| f.name.clone()).collect()
            }
            (_, Some(s)) if !s.features.is_empty() => {
                s.features.iter().map(|f| f.name.clone()).collect()
            }
            _ => return None,
        };
        Some(ColumnNames {
            names,
            source: NamesSource::Baseline,
        })
    }

    /// How many positional columns a record should have.
    pub fn expected(&self) -> usize {
        self.names.len()
    }

    /// Whether a record with `inputs` request columns and `outputs` output columns includes its
    /// output columns (rule 3).
    pub fn include_output(&self, inputs: usize, outputs: usize) -> bool {
        outputs == 0 || inputs != self.names.len()
    }

    /// The names as the slice the statistics take.
    pub fn as_slice(&self) -> &[String] {
        &self.names
    }
}

/// Parses a comma-separated name list (`FEATURE_NAMES`, `--feature-names`): names are trimmed,
/// must be non-empty and distinct.
pub fn parse_feature_names(s: &str) -> Result<Vec<String>, String> {
    let names: Vec<String> = s.split(',').map(|n| n.trim().to_owned()).collect();
    if names.iter().any(String::is_empty) {
        return Err("expected comma-separated column names without empty names".into());
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(d) = names.iter().find(|n| !seen.insert(n.as_str())) {
        return Err(format!("column name {d:?} appears twice"));
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_columns_follow_the_column_count() {
        let n = ColumnNames {
            names: vec!["y".into(), "a".into(), "b".into()],
            source: NamesSource::Baseline,
        };
        assert!(n.include_output(2, 1), "N + k == E: output included");
        assert!(
            !n.include_output(3, 1),
            "N == E: the baseline has no output column"
        );
        assert!(n.include_output(3, 0), "no output to leave out");
        assert!(
            n.include_output(4, 1),
            "mismatch: laid out as Model Monitor does"
        );
    }

    #[test]
    fn explicit_names_win_and_are_checked() {
        assert_eq!(parse_feature_names(" a, b ,c").unwrap(), ["a", "b", "c"]);
        assert!(parse_feature_names("a,,b").is_err());
        assert!(parse_feature_names("a,b,a").unwrap_err().contains("\"a\""));
        let explicit = vec!["x".to_string()];
        let c = BaselineConstraints::parse(
            r#"{"version":0.0,"features":[{"name":"f","inferred_type":"Integral"}]}"#,
        )
        .unwrap();
        let got = ColumnNames::resolve(Some(&explicit), Some(&c), None).unwrap();
        assert_eq!((got.names, got.source), (explicit, NamesSource::Explicit));
        let got = ColumnNames::resolve(None, Some(&c), None).unwrap();
        assert_eq!(
            (got.names, got.source),
            (vec!["f".to_string()], NamesSource::Baseline)
        );
        assert!(ColumnNames::resolve(None, None, None).is_none());
    }
}
