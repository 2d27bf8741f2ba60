//! Batch-transform capture manifests.
//!
//! With data capture on a batch transform job, SageMaker writes manifest files (a JSON array: a
//! `{"prefix": "s3://..."}` object, then keys relative to it) under `{capture}/input/yyyy/mm/dd/hh/`
//! and `{capture}/output/yyyy/mm/dd/hh/`. The output manifests point at the transform's output
//! files; with `GenerateInferenceId=true` each CSV row ends with `<inference id>,<ISO time>` and each
//! JSON row carries `SageMakerInferenceId` / `SageMakerInferenceTime`, which ground truth joins on.
//!
//! ```json
//! [{"prefix": "s3://bucket/transform/output/"}, "part-0.csv.out", "nested/part-1.csv.out"]
//! ```

use serde_json::Value;

use crate::storage::S3Uri;

/// The data files a manifest lists, in manifest order, without duplicates.
pub fn parse_manifest(text: &str) -> Result<Vec<S3Uri>, String> {
    let v: Value = serde_json::from_str(text.trim_start_matches('\u{feff}'))
        .map_err(|e| format!("not JSON: {e}"))?;
    let items = v.as_array().ok_or("a manifest is a JSON array")?;
    let mut prefix: Option<String> = None;
    let mut out: Vec<S3Uri> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match item {
            Value::Object(m) => {
                let p = m
                    .get("prefix")
                    .and_then(Value::as_str)
                    .ok_or_else(|| format!("item {i}: object without \"prefix\""))?;
                S3Uri::parse(p).map_err(|e| format!("item {i}: {e}"))?;
                prefix = Some(p.to_owned());
            }
            Value::String(rel) => {
                let uri = if rel.starts_with("s3://") {
                    S3Uri::parse(rel)
                } else {
                    let p = prefix.as_deref().ok_or_else(|| {
                        format!("item {i}: {rel:?} comes before any {{\"prefix\"}}")
                    })?;
                    // SageMaker concatenates prefix and key.
                    S3Uri::parse(&format!("{p}{rel}"))
                }
                .map_err(|e| format!("item {i}: {e}"))?;
                if !out.contains(&uri) {
                    out.push(uri);
                }
            }
            other => {
                return Err(format!(
                    "item {i}: expected a string or {{\"prefix\"}}, got {}",
                    crate::events::describe_shape(other)
                ));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_then_relative_keys() {
        let m = r#"[{"prefix":"s3://bkt/transform/out/"},"part-0.csv.out","nested/part-1.csv.out","part-0.csv.out"]"#;
        let files: Vec<String> = parse_manifest(m)
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            files,
            [
                "s3://bkt/transform/out/part-0.csv.out",
                "s3://bkt/transform/out/nested/part-1.csv.out"
            ]
        );
        let abs = parse_manifest(r#"["s3://bkt/a.csv"]"#).unwrap();
        assert_eq!(abs[0].key, "a.csv");
    }

    #[test]
    fn bad_manifests_say_why() {
        assert!(parse_manifest("{}").unwrap_err().contains("JSON array"));
        assert!(
            parse_manifest(r#"["a.csv"]"#)
                .unwrap_err()
                .contains("before any")
        );
        assert!(
            parse_manifest(r#"[{"prefix":"http://x/"}]"#)
                .unwrap_err()
                .contains("s3://")
        );
        assert!(parse_manifest(r#"[1]"#).unwrap_err().contains("item 0"));
        assert!(
            parse_manifest("[not json")
                .unwrap_err()
                .contains("not JSON")
        );
    }
}
