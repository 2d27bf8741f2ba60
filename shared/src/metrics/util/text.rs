//! Text: CSV fields (RFC 4180 quoting), JSON paths into payloads, class-label
//! canonicalisation and JSON scalars as label text.

use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// Splits one CSV row into fields (RFC 4180 quoting: `"a,b"` and doubled quotes `""`). Fields
/// without quotes are borrowed. A trailing `\r` is ignored.
pub fn split_csv(line: &str) -> CsvFields<'_> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    CsvFields { rest: Some(line) }
}

pub struct CsvFields<'a> {
    rest: Option<&'a str>,
}

impl<'a> Iterator for CsvFields<'a> {
    type Item = Cow<'a, str>;
    fn next(&mut self) -> Option<Cow<'a, str>> {
        let s = self.rest?;
        if let Some(body) = s.strip_prefix('"') {
            // Quoted field: doubled quotes are an escaped quote; an unterminated quote takes the rest.
            let mut out = String::new();
            let mut rem = body;
            loop {
                match rem.find('"') {
                    None => {
                        out.push_str(rem);
                        self.rest = None;
                        return Some(Cow::Owned(out));
                    }
                    Some(j) => {
                        out.push_str(&rem[..j]);
                        let after = &rem[j + 1..];
                        if let Some(st) = after.strip_prefix('"') {
                            out.push('"');
                            rem = st;
                        } else {
                            self.rest = after.find(',').map(|k| &after[k + 1..]);
                            return Some(Cow::Owned(out));
                        }
                    }
                }
            }
        } else {
            match s.find(',') {
                Some(i) => {
                    self.rest = Some(&s[i + 1..]);
                    Some(Cow::Borrowed(&s[..i]))
                }
                None => {
                    self.rest = None;
                    Some(Cow::Borrowed(s))
                }
            }
        }
    }
}

/// Returns the `idx`-th CSV field of `line` without collecting the others.
pub fn csv_field(line: &str, idx: usize) -> Option<Cow<'_, str>> {
    if !line.contains('"') {
        // Fast path: no quoting.
        let line = line.strip_suffix('\r').unwrap_or(line);
        return line.split(',').nth(idx).map(Cow::Borrowed);
    }
    split_csv(line).nth(idx)
}

/// A location inside a JSON document: `a.b[0].c`, `$.a.b`, `predictions[0].score`, or a bare key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonPath(pub Vec<PathSeg>);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PathSeg {
    Key(String),
    Index(usize),
}

impl JsonPath {
    pub fn parse(s: &str) -> JsonPath {
        let s = s.trim();
        let s = s
            .strip_prefix("$.")
            .or_else(|| s.strip_prefix('$'))
            .unwrap_or(s);
        let mut segs = Vec::new();
        for part in s.split('.') {
            if part.is_empty() {
                continue;
            }
            let (key, mut rest) = match part.find('[') {
                Some(i) => (&part[..i], &part[i..]),
                None => (part, ""),
            };
            if !key.is_empty() {
                if let Ok(i) = key.parse::<usize>() {
                    segs.push(PathSeg::Index(i));
                } else {
                    segs.push(PathSeg::Key(key.to_string()));
                }
            }
            while let Some(r) = rest.strip_prefix('[') {
                match r.find(']') {
                    Some(j) => {
                        let inner = r[..j].trim_matches(|c| c == '\'' || c == '"');
                        match inner.parse::<usize>() {
                            Ok(i) => segs.push(PathSeg::Index(i)),
                            Err(_) => segs.push(PathSeg::Key(inner.to_string())),
                        }
                        rest = &r[j + 1..];
                    }
                    None => break,
                }
            }
        }
        JsonPath(segs)
    }

    pub fn lookup<'v>(&self, mut v: &'v serde_json::Value) -> Option<&'v serde_json::Value> {
        for seg in &self.0 {
            v = match (seg, v) {
                (PathSeg::Key(k), serde_json::Value::Object(m)) => m.get(k)?,
                (PathSeg::Index(i), serde_json::Value::Array(a)) => a.get(*i)?,
                (PathSeg::Key(k), serde_json::Value::Array(a)) => {
                    a.get(k.parse::<usize>().ok()?)?
                }
                _ => return None,
            };
        }
        Some(v)
    }
}

/// Canonical class label: trimmed, surrounding quotes removed, and integral numbers written without
/// a fraction (`1.0` and `1` are the same class). Other text is kept as is.
pub fn canonical_label(s: &str) -> Cow<'_, str> {
    let t = s.trim().trim_matches('"');
    // Fast path: plain integers without leading zeros are already canonical.
    let b = t.as_bytes();
    let digits = b.strip_prefix(b"-").unwrap_or(b);
    if !digits.is_empty()
        && digits.len() < 15
        && digits.iter().all(u8::is_ascii_digit)
        && (digits.len() == 1 || digits[0] != b'0')
        && t != "-0"
    {
        return Cow::Borrowed(t);
    }
    if let Ok(v) = t.parse::<f64>()
        && v.is_finite()
        && v.fract() == 0.0
        && v.abs() < 1e15
    {
        let as_int = format!("{}", v as i64);
        if as_int != t {
            return Cow::Owned(as_int);
        }
    }
    Cow::Borrowed(t)
}

/// JSON value → label text (strings as is, numbers/bools in their JSON form).
pub fn json_scalar_text(v: &serde_json::Value) -> Option<Cow<'_, str>> {
    match v {
        serde_json::Value::String(s) => Some(Cow::Borrowed(s.as_str())),
        serde_json::Value::Number(n) => Some(Cow::Owned(n.to_string())),
        serde_json::Value::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
        serde_json::Value::Array(a) if a.len() == 1 => {
            json_scalar_text(&a[0]).map(|c| Cow::Owned(c.into_owned()))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_split_handles_quotes() {
        let v: Vec<_> = split_csv(r#"1,"a,b",,"x""y",3"#).collect();
        assert_eq!(v, vec!["1", "a,b", "", "x\"y", "3"]);
        assert_eq!(csv_field("0.5,1,2", 1).as_deref(), Some("1"));
        assert_eq!(csv_field(r#""q,1",7"#, 1).as_deref(), Some("7"));
        assert_eq!(split_csv("").collect::<Vec<_>>(), vec![""]);
        assert_eq!(
            split_csv("\"unterminated").collect::<Vec<_>>(),
            vec!["unterminated"]
        );
    }

    #[test]
    fn json_path() {
        let v: serde_json::Value =
            serde_json::from_str(r#"{"predictions":[{"score":0.7}],"label":"a"}"#).unwrap();
        assert_eq!(
            JsonPath::parse("predictions[0].score").lookup(&v),
            Some(&serde_json::json!(0.7))
        );
        assert_eq!(
            JsonPath::parse("$.label").lookup(&v),
            Some(&serde_json::json!("a"))
        );
        assert_eq!(
            JsonPath::parse("predictions.0.score").lookup(&v),
            Some(&serde_json::json!(0.7))
        );
        assert_eq!(JsonPath::parse("nope").lookup(&v), None);
    }
}
