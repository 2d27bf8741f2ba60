//! Line generators and record views shared by the tests of every parsing tier: random capture
//! and ground-truth records printed with perturbations (whitespace, escapes, shuffled and
//! duplicated keys, truncation, a changed byte), and comparable views of parsed records.

use super::record::{CaptureRecord, GroundTruthRecord, Payload};
use crate::metrics::util::SplitMix64;
use proptest::prelude::*;
use std::borrow::Cow;

pub(crate) type P = Option<(String, Option<String>, Option<String>)>;

fn payload_view(p: &Option<Payload<'_>>) -> P {
    p.as_ref().map(|p| {
        (
            p.data.to_string(),
            p.encoding.as_deref().map(str::to_string),
            p.content_type.as_deref().map(str::to_string),
        )
    })
}

pub(crate) type CapView = (Option<String>, Option<String>, Option<String>, P, P);

pub(crate) fn cap_view(r: &CaptureRecord<'_>) -> CapView {
    let s = |c: &Option<Cow<'_, str>>| c.as_deref().map(str::to_string);
    (
        s(&r.event_id),
        s(&r.inference_id),
        s(&r.inference_time),
        payload_view(&r.input),
        payload_view(&r.output),
    )
}

pub(crate) fn gt_view(r: &GroundTruthRecord<'_>) -> (String, P) {
    (r.event_id.to_string(), payload_view(&Some(r.data.clone())))
}

/// A JSON value to print with random perturbations.
#[derive(Clone, Debug)]
pub(crate) enum J {
    S(String),
    Raw(String),
    A(Vec<J>),
    O(Vec<(String, J)>),
}

/// Perturbation knobs (each a probability in 1/256) and the RNG driving them.
struct Printer {
    rng: SplitMix64,
    ws: u64,
    escape: u64,
    shuffle: u64,
    dup: u64,
}

impl Printer {
    fn chance(&mut self, p: u64) -> bool {
        self.rng.next_u64() % 256 < p
    }
    fn ws(&mut self, out: &mut String) {
        while self.chance(self.ws) {
            out.push([' ', '\t', '\n', '\r'][(self.rng.next_u64() % 4) as usize]);
        }
    }
    fn string(&mut self, s: &str, out: &mut String) {
        out.push('"');
        for c in s.chars() {
            let esc = self.chance(self.escape);
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                '/' if esc => out.push_str("\\/"),
                c if esc => {
                    let mut buf = [0u16; 2];
                    for u in c.encode_utf16(&mut buf) {
                        if self.chance(128) {
                            out.push_str(&format!("\\u{:04X}", u));
                        } else {
                            out.push_str(&format!("\\u{:04x}", u));
                        }
                    }
                }
                c => out.push(c),
            }
        }
        out.push('"');
    }
    fn value(&mut self, v: &J, out: &mut String) {
        self.ws(out);
        match v {
            J::S(s) => self.string(s, out),
            J::Raw(r) => out.push_str(r),
            J::A(items) => {
                out.push('[');
                for (i, x) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    self.value(x, out);
                }
                self.ws(out);
                out.push(']');
            }
            J::O(members) => {
                let mut m = members.clone();
                if self.chance(self.shuffle) {
                    for i in (1..m.len()).rev() {
                        let j = (self.rng.next_u64() % (i as u64 + 1)) as usize;
                        m.swap(i, j);
                    }
                }
                if !m.is_empty() && self.chance(self.dup) {
                    let i = (self.rng.next_u64() % m.len() as u64) as usize;
                    let d = m[i].clone();
                    m.push(d);
                }
                out.push('{');
                for (i, (k, x)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    self.ws(out);
                    self.string(k, out);
                    self.ws(out);
                    out.push(':');
                    self.value(x, out);
                    self.ws(out);
                }
                if m.is_empty() {
                    self.ws(out);
                }
                out.push('}');
            }
        }
    }
}

pub(crate) const UUIDS: [&str; 3] = [
    "47526757-130f-4f52-981c-e1ff0e4ae394",
    "de4431fa-3c80-4b06-b7e9-671c45376d5d",
    "DE4431FA-3C80-4B06-B7E9-671C45376D5D",
];
pub(crate) const TEXTS: [&str; 16] = [
    "",
    "e1",
    "0.082561",
    "1",
    "0",
    "64,61071.69,3",
    "CSV",
    "csv",
    "JSON",
    "BASE64",
    "text/csv; charset=utf-8",
    "application/json",
    "2024-01-01T00:10:00Z",
    "{\"score\":0.3,\"label\":\"1\"}",
    "uni ✓ é 🎉 \u{7f}",
    "q\"b\\s/t\tn\n",
];
const RAWS: [&str; 12] = [
    "null",
    "true",
    "false",
    "0",
    "-1",
    "12.5e-3",
    "1E+2",
    "-0.0",
    "[]",
    "{}",
    "[1,[2,{}]]",
    "{\"a\":[null,\"x\"]}",
];

/// A random field value: usually a string, sometimes another JSON type.
fn field(rng: &mut SplitMix64, other_types: u64) -> J {
    let r = rng.next_u64();
    if r % 256 < other_types {
        return J::Raw(RAWS[(r >> 8) as usize % RAWS.len()].to_string());
    }
    if (r >> 16).is_multiple_of(3) {
        J::S(UUIDS[(r >> 20) as usize % UUIDS.len()].to_string())
    } else {
        J::S(TEXTS[(r >> 24) as usize % TEXTS.len()].to_string())
    }
}

fn extra(rng: &mut SplitMix64) -> (String, J) {
    // Unknown keys, including near misses of the known ones.
    let names = [
        "mode",
        "eventVersion",
        "x",
        "é",
        "data2",
        "Data",
        "dat",
        "inferenceTim",
        "eventID",
        "encodingX",
        "captureDat",
        "endpointOutpu",
        "eventMetadataa",
    ];
    let name = names[(rng.next_u64() % names.len() as u64) as usize].to_string();
    let v = match rng.next_u64() % 4 {
        0 => J::Raw(RAWS[(rng.next_u64() % RAWS.len() as u64) as usize].to_string()),
        1 => J::A(vec![J::S("a".into()), J::Raw("1".into()), J::O(vec![])]),
        2 => J::O(vec![("k".into(), J::S("v\"".into()))]),
        _ => J::S(TEXTS[(rng.next_u64() % TEXTS.len() as u64) as usize].to_string()),
    };
    (name, v)
}

/// Members of an object: each known field present with probability `keep`/256, plus extras.
fn object(rng: &mut SplitMix64, fields: &[(&str, J)], keep: u64, extras: u64) -> J {
    let mut m = Vec::new();
    for (k, v) in fields {
        if rng.next_u64() % 256 < keep {
            m.push((k.to_string(), v.clone()));
        }
    }
    for _ in 0..extras {
        m.push(extra(rng));
    }
    J::O(m)
}

pub(crate) fn capture_value(rng: &mut SplitMix64, keep: u64, other: u64) -> J {
    let payload = |rng: &mut SplitMix64| {
        let fields = [
            ("observedContentType", field(rng, other)),
            ("mode", J::S("OUTPUT".into())),
            ("data", field(rng, other)),
            ("encoding", field(rng, other)),
        ];
        let extras = rng.next_u64() % 2;
        object(rng, &fields, keep, extras)
    };
    let input = payload(rng);
    let output = payload(rng);
    let cd = {
        let extras = rng.next_u64() % 2;
        object(
            rng,
            &[("endpointInput", input), ("endpointOutput", output)],
            keep,
            extras,
        )
    };
    let meta = {
        let fields = [
            ("eventId", field(rng, other)),
            ("inferenceId", field(rng, other)),
            ("inferenceTime", field(rng, other)),
        ];
        let extras = rng.next_u64() % 2;
        object(rng, &fields, keep, extras)
    };
    let top = [
        ("captureData", cd),
        ("eventMetadata", meta),
        ("eventVersion", J::S("0".into())),
        ("SageMakerInferenceId", field(rng, other)),
        ("SageMakerInferenceTime", field(rng, other)),
    ];
    let mut t = object(rng, &top[..3], keep.max(200), 0);
    if let J::O(m) = &mut t
        && rng.next_u64().is_multiple_of(8)
    {
        m.push((top[3].0.to_string(), top[3].1.clone()));
        m.push((top[4].0.to_string(), top[4].1.clone()));
    }
    t
}

pub(crate) fn ground_truth_value(rng: &mut SplitMix64, keep: u64, other: u64) -> J {
    let data = {
        let fields = [("data", field(rng, other)), ("encoding", field(rng, other))];
        let keep = keep.max(240);
        let extras = rng.next_u64() % 2;
        object(rng, &fields, keep, extras)
    };
    let meta = {
        let id = if rng.next_u64().is_multiple_of(4) {
            field(rng, other)
        } else {
            J::S(UUIDS[(rng.next_u64() % 3) as usize].to_string())
        };
        let fields = [
            ("eventId", id),
            ("inferenceId", field(rng, other)),
            ("inferenceTime", field(rng, other)),
        ];
        let extras = rng.next_u64() % 2;
        object(rng, &fields, keep, extras)
    };
    let extras = rng.next_u64() % 2;
    object(
        rng,
        &[
            ("groundTruthData", data),
            ("eventMetadata", meta),
            ("eventVersion", J::S("0".into())),
        ],
        keep.max(200),
        extras,
    )
}

/// Prints `v` with the knobs, then maybe truncates it or changes one byte.
pub(crate) fn render(v: &J, seed: u64, knobs: [u64; 6]) -> String {
    let mut p = Printer {
        rng: SplitMix64(seed),
        ws: knobs[0],
        escape: knobs[1],
        shuffle: knobs[2],
        dup: knobs[3],
    };
    let mut out = String::new();
    p.value(v, &mut out);
    p.ws(&mut out);
    let mut bytes = out.into_bytes();
    if p.chance(knobs[4]) && !bytes.is_empty() {
        let cut = (p.rng.next_u64() % bytes.len() as u64) as usize;
        bytes.truncate(cut);
    }
    if p.chance(knobs[5]) && !bytes.is_empty() {
        let i = (p.rng.next_u64() % bytes.len() as u64) as usize;
        let subst = b"\"\\{}[],: \t0-eE.nx\x01\x7f";
        bytes[i] = subst[(p.rng.next_u64() % subst.len() as u64) as usize];
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

pub(crate) fn knobs() -> impl Strategy<Value = [u64; 6]> {
    // whitespace, escapes, shuffled keys, duplicated key, truncation, mutated byte
    prop::array::uniform6(prop_oneof![3 => Just(0u64), 1 => Just(20u64), 1 => 0u64..256])
}
