//! Line stepping over a [`BufRead`]: lines are handed out in place from the reader's buffer, and
//! a line that starts in the buffer may first be offered whole to a reader that needs no line end
//! (the ahead-of-newline path of learned line shapes).

use crate::metrics::parse::find_newline;
use std::io::BufRead;

/// `line` without trailing `\n` / `\r` bytes (as `str::trim_end_matches(['\n', '\r'])`).
#[inline]
pub(super) fn trim_line_break(mut line: &[u8]) -> &[u8] {
    while let [rest @ .., b'\n' | b'\r'] = line {
        line = rest;
    }
    line
}

/// Calls `line(cx, l)` with every line `l` of `reader` including its `\n` (the last may lack it),
/// like repeated `read_until(b'\n')` but without copying lines that lie whole in the reader's
/// buffer; `partial` holds lines that straddle refills. Stops early when `line` (or `too_long`)
/// returns false. On a read error the partial line is dropped, as with `read_until`.
///
/// A line of more than `max_line` bytes (not counting its `\n`) is never buffered whole: its
/// bytes are dropped up to the next `\n` and `too_long(cx, n)` is called instead of `line`, with
/// `n` the bytes seen (at least `max_line + 1`). So `partial` never exceeds `max_line` bytes.
///
/// Before searching for the end of a line that starts in the buffer, `ahead(cx, rest)` may read
/// it from the unread rest of the buffer (at most `max_line + 1` bytes of it): `Some(n)` if it
/// took the first `n` bytes (the line and its `\n`), None to have the line found and passed to
/// `line` as usual.
pub(super) fn for_each_line<R: BufRead, C>(
    reader: &mut R,
    partial: &mut Vec<u8>,
    cx: &mut C,
    max_line: usize,
    mut line: impl FnMut(&mut C, &[u8]) -> bool,
    mut ahead: impl FnMut(&mut C, &[u8]) -> Option<usize>,
    mut too_long: impl FnMut(&mut C, usize) -> bool,
) -> std::io::Result<()> {
    partial.clear();
    // Inside an over-long line: the bytes dropped so far.
    let mut skipping: Option<usize> = None;
    loop {
        let avail = match reader.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if avail.is_empty() {
            if let Some(n) = skipping {
                too_long(cx, n);
            } else if !partial.is_empty() {
                line(cx, partial);
                partial.clear();
            }
            return Ok(());
        }
        let len = avail.len();
        let mut start = 0;
        if let Some(n) = skipping {
            match find_newline(avail) {
                Some(off) => {
                    skipping = None;
                    start = off + 1;
                    if !too_long(cx, n + off) {
                        reader.consume(start);
                        return Ok(());
                    }
                }
                None => {
                    skipping = Some(n + len);
                    reader.consume(len);
                    continue;
                }
            }
        }
        loop {
            if partial.is_empty()
                && let Some(n) = ahead(cx, &avail[start..len.min(start + max_line + 1)])
            {
                start += n;
                continue;
            }
            let Some(off) = find_newline(&avail[start..]) else {
                break;
            };
            let end = start + off + 1;
            let go = if partial.len() + off > max_line {
                let n = partial.len() + off;
                partial.clear();
                too_long(cx, n)
            } else if partial.is_empty() {
                line(cx, &avail[start..end])
            } else {
                partial.extend_from_slice(&avail[start..end]);
                let go = line(cx, partial);
                partial.clear();
                go
            };
            start = end;
            if !go {
                reader.consume(start);
                return Ok(());
            }
        }
        if partial.len() + (len - start) > max_line {
            skipping = Some(partial.len() + (len - start));
            partial.clear();
        } else {
            partial.extend_from_slice(&avail[start..]);
        }
        reader.consume(len);
    }
}

/// Reassembles lines from arbitrary byte chunks (e.g. an S3 body streamed by an async client),
/// so the engine can be fed without a blocking reader.
///
/// No production caller today (the custom-metrics function hands the engine a `BufRead` over its
/// S3 chunks, so `feed_*` does the line stepping). It stays as public API for chunked callers, and
/// because `shared/tests/metrics_props.rs` (`chunked_feeding_equals_reader`) checks that chunked
/// feeding through it equals [`super::Engine::feed_capture`] on a reader:
///
/// ```
/// # use driftloop::metrics::{Engine, MonitorConfig, engine::LineAssembler};
/// let mut engine = Engine::new(MonitorConfig { data_quality: true, ..Default::default() });
/// let mut lines = LineAssembler::default();
/// let chunks: [&[u8]; 2] = [br#"{"captureData":{"endpointInput":{"data":"1,2"#, b"\",\"encoding\":\"CSV\"}}}\n"];
/// for chunk in chunks {
///     lines.push(chunk, |line, n| engine.push_capture_bytes(line, "s3://bucket/key", n));
/// }
/// lines.finish(|line, n| engine.push_capture_bytes(line, "s3://bucket/key", n));
/// assert_eq!(engine.finish().unwrap().counts.data_quality_records, 1);
/// ```
#[derive(Debug, Default, Clone)]
pub struct LineAssembler {
    partial: Vec<u8>,
    line_no: u64,
}

impl LineAssembler {
    /// Calls `f(line, line_no)` for every complete line in `chunk` (line without its `\n`).
    pub fn push(&mut self, mut chunk: &[u8], mut f: impl FnMut(&[u8], u64)) {
        while let Some(i) = find_newline(chunk) {
            self.line_no += 1;
            if self.partial.is_empty() {
                f(&chunk[..i], self.line_no);
            } else {
                self.partial.extend_from_slice(&chunk[..i]);
                f(&self.partial, self.line_no);
                self.partial.clear();
            }
            chunk = &chunk[i + 1..];
        }
        self.partial.extend_from_slice(chunk);
    }
    /// Flushes a last line without a trailing newline.
    pub fn finish(&mut self, mut f: impl FnMut(&[u8], u64)) {
        if !self.partial.is_empty() {
            self.line_no += 1;
            f(&self.partial, self.line_no);
            self.partial.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines (without `\n`) and over-long lines (`Err(bytes seen)`) of `input` read through a
    /// buffer of `cap` bytes with `max` as the maximum.
    fn read(input: &[u8], cap: usize, max: usize) -> Vec<Result<Vec<u8>, usize>> {
        let mut r = std::io::BufReader::with_capacity(cap, input);
        let mut out: Vec<Result<Vec<u8>, usize>> = Vec::new();
        let mut partial = Vec::new();
        for_each_line(
            &mut r,
            &mut partial,
            &mut out,
            max,
            |out, l| {
                assert!(
                    l.len() <= max + 1,
                    "a line longer than the maximum was handed out"
                );
                out.push(Ok(trim_line_break(l).to_vec()));
                true
            },
            |_, _| None,
            |out, n| {
                out.push(Err(n));
                true
            },
        )
        .unwrap();
        assert!(partial.len() <= max);
        out
    }

    #[test]
    fn over_long_lines_are_reported_not_buffered() {
        let long = vec![b'x'; 100];
        let mut input = b"short\n".to_vec();
        input.extend_from_slice(&long);
        input.extend_from_slice(b"\nok\n");
        input.extend_from_slice(&long); // the last line, without a line break
        for cap in [1, 3, 8, 16, 64, 1024] {
            let got = read(&input, cap, 10);
            assert_eq!(got.len(), 4, "cap {cap}: {got:?}");
            assert_eq!(got[0], Ok(b"short".to_vec()), "cap {cap}");
            assert!(
                matches!(got[1], Err(n) if n >= 11),
                "cap {cap}: {:?}",
                got[1]
            );
            assert_eq!(got[2], Ok(b"ok".to_vec()), "cap {cap}");
            assert!(
                matches!(got[3], Err(n) if n >= 11),
                "cap {cap}: {:?}",
                got[3]
            );
            // Exactly the maximum is still a line.
            let at_max = read(b"0123456789\n0123456789", cap, 10);
            assert_eq!(
                at_max,
                vec![Ok(b"0123456789".to_vec()), Ok(b"0123456789".to_vec())],
                "cap {cap}"
            );
        }
    }
}
