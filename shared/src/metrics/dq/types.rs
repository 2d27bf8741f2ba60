//! Deequ's type inference on the string form of a value (hand-written matchers equivalent to
//! Deequ's regexes):
//! * Fractional `^(-|\+)? ?\d+((\.\d+)|((?:\.\d+)?[Ee][-+]?\d+))$`
//! * Integral `^(-|\+)? ?\d+$`
//! * Boolean `^(true|false)$`
//! * else String; null (and, for CSV, the empty field) = Unknown.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DataType {
    Unknown,
    Fractional,
    Integral,
    Boolean,
    String,
}

impl DataType {
    pub fn as_str(self) -> &'static str {
        match self {
            DataType::Unknown => "Unknown",
            DataType::Fractional => "Fractional",
            DataType::Integral => "Integral",
            DataType::Boolean => "Boolean",
            DataType::String => "String",
        }
    }
    pub fn parse(s: &str) -> Option<DataType> {
        Some(match s {
            "Unknown" => DataType::Unknown,
            "Fractional" => DataType::Fractional,
            "Integral" => DataType::Integral,
            "Boolean" => DataType::Boolean,
            "String" => DataType::String,
            _ => return None,
        })
    }
    pub fn is_numeric(self) -> bool {
        matches!(self, DataType::Fractional | DataType::Integral)
    }
}

fn digits(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    i
}

/// Type of a single non-null value's string form.
pub fn infer_value(s: &str) -> DataType {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
        i += 1;
    }
    if i < b.len() && b[i] == b' ' {
        i += 1;
    }
    let j = digits(b, i);
    if j > i {
        if j == b.len() {
            return DataType::Integral;
        }
        let mut k = j;
        let mut had_frac = false;
        if b[k] == b'.' {
            let f = digits(b, k + 1);
            if f > k + 1 {
                had_frac = true;
                k = f;
                if k == b.len() {
                    return DataType::Fractional;
                }
            } else {
                return DataType::String;
            }
        }
        let _ = had_frac;
        if b[k] == b'e' || b[k] == b'E' {
            let mut e = k + 1;
            if e < b.len() && (b[e] == b'-' || b[e] == b'+') {
                e += 1;
            }
            let d = digits(b, e);
            if d > e && d == b.len() {
                return DataType::Fractional;
            }
        }
        return DataType::String;
    }
    if s == "true" || s == "false" {
        return DataType::Boolean;
    }
    DataType::String
}

/// Per-type value counts of a column; the column type follows Deequ's rules.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypeCounts {
    pub unknown: u64,
    pub fractional: u64,
    pub integral: u64,
    pub boolean: u64,
    pub string: u64,
}

impl TypeCounts {
    pub fn add(&mut self, t: DataType) {
        match t {
            DataType::Unknown => self.unknown += 1,
            DataType::Fractional => self.fractional += 1,
            DataType::Integral => self.integral += 1,
            DataType::Boolean => self.boolean += 1,
            DataType::String => self.string += 1,
        }
    }
    pub fn merge(&mut self, o: &TypeCounts) {
        self.unknown += o.unknown;
        self.fractional += o.fractional;
        self.integral += o.integral;
        self.boolean += o.boolean;
        self.string += o.string;
    }
    pub fn non_null(&self) -> u64 {
        self.fractional + self.integral + self.boolean + self.string
    }
    /// All null -> Unknown; any String, or Boolean mixed with numbers -> String; any Fractional ->
    /// Fractional; only Booleans -> Boolean; else Integral.
    pub fn column_type(&self) -> DataType {
        if self.non_null() == 0 {
            DataType::Unknown
        } else if self.string > 0 || (self.boolean > 0 && self.fractional + self.integral > 0) {
            DataType::String
        } else if self.boolean > 0 {
            DataType::Boolean
        } else if self.fractional > 0 {
            DataType::Fractional
        } else {
            DataType::Integral
        }
    }
    /// Non-null values whose type is compatible with `t`: Integral values match Fractional; only
    /// String values match String (Deequ's ratio of the type: Model Monitor reports "Expected data
    /// type: String ... Only 0.0% of data is String" for numeric values of a String baseline
    /// feature, see `shared/tests/conformance.rs`).
    pub fn matching(&self, t: DataType) -> u64 {
        match t {
            DataType::Integral => self.integral,
            DataType::Fractional => self.integral + self.fractional,
            DataType::Boolean => self.boolean,
            DataType::String => self.string,
            DataType::Unknown => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn deequ_patterns() {
        use DataType::*;
        for (s, t) in [
            ("1", Integral),
            ("-12", Integral),
            ("+ 3", Integral),
            ("1.5", Fractional),
            ("-1.5e3", Fractional),
            ("2E-7", Fractional),
            ("1.", String),
            (".5", String),
            ("1e", String),
            ("true", Boolean),
            ("True", String),
            ("abc", String),
            ("", String),
            ("1.2.3", String),
            ("NaN", String),
            ("1 ", String),
        ] {
            assert_eq!(infer_value(s), t, "{s:?}");
        }
        let mut c = TypeCounts::default();
        assert_eq!(c.column_type(), Unknown);
        c.add(Integral);
        assert_eq!(c.column_type(), Integral);
        c.add(Fractional);
        assert_eq!(c.column_type(), Fractional);
        c.add(Boolean);
        assert_eq!(c.column_type(), String);
        assert_eq!(c.matching(Fractional), 2);
    }
}
