//! Small helpers shared by the engine, by subject: [`numeric`] (compensated sums, float parsing,
//! floats in JSON), [`hash`] (mixer, seeded hash, PRNG), [`text`] (CSV fields, JSON paths, labels)
//! and [`time`] (timestamps). Everything is re-exported here (`metrics::util::X`).

pub mod hash;
pub mod numeric;
pub mod text;
pub mod time;

pub use hash::{SplitMix64, hash_bytes, mix64};
pub use numeric::{KahanSum, json_f64, parse_f64, parse_float, value_f64};
pub use text::{
    CsvFields, JsonPath, PathSeg, canonical_label, csv_field, json_scalar_text, split_csv,
};
pub use time::{format_time_millis, parse_time_millis};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_sums() {
        assert_eq!(canonical_label(" 1.0 "), "1");
        assert_eq!(canonical_label("cat"), "cat");
        let mut k = KahanSum::default();
        for _ in 0..10 {
            k.add(0.1);
        }
        assert_eq!(k.value(), 1.0);
        assert_ne!(hash_bytes(1, b"abc"), hash_bytes(2, b"abc"));
    }
}
