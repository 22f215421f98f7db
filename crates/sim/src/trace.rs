//! Request-arrival traces: CSV `t_s,rps[,mean_input_tokens,mean_output_tokens,...]`.
//!
//! The format is the one of `envs/traces/` (see its README): `t_s` is the start of each interval in seconds,
//! starting at 0, with a fixed interval and no gaps; `rps` is arrivals ÷ interval. When both token columns
//! are present, each row's means drive the size of the requests that arrive in that interval. Other extra
//! columns are ignored. A malformed file is refused with an error that names the file, line and field.
//!
//! A row whose `rps` is empty is a gap: no data for that interval (what `rlscale history` writes where
//! Prometheus has no sample, instead of a zero that would read as "no traffic"). Gaps are bridged by
//! linear interpolation between the rows around them (held at the ends) and counted in
//! [`Trace::gap_rows`]; a trace of gaps only is refused.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A loaded trace.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    /// Where it was read from.
    pub path: PathBuf,
    /// Interval length, seconds.
    pub interval_s: f64,
    /// Arrival rate of each interval, requests/s.
    pub rps: Vec<f64>,
    /// Mean input and output tokens of each interval, when the file has both columns.
    pub tokens: Option<Vec<(f64, f64)>>,
    /// Rows whose `rps` was empty (no data), bridged by interpolation in [`Trace::rps`].
    pub gap_rows: usize,
}

impl Trace {
    /// Duration covered by the trace, seconds.
    pub fn duration_s(&self) -> f64 {
        self.interval_s * self.rps.len() as f64
    }

    /// Expected number of arrivals over the whole trace: Σ rps · interval.
    pub fn expected_arrivals(&self) -> f64 {
        self.rps.iter().sum::<f64>() * self.interval_s
    }

    /// Read and validate a trace file.
    pub fn load(path: &Path) -> Result<Trace> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parse trace text; `path` is only used in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Trace> {
        let err = |line: usize, field: &str, message: String| Error::Trace {
            path: path.to_path_buf(),
            line,
            field: field.to_string(),
            message,
        };
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty());
        let (_, header) = lines.next().ok_or_else(|| {
            err(
                1,
                "header",
                "the file is empty; expected a header `t_s,rps[,...]`".into(),
            )
        })?;
        let cols: Vec<&str> = header.split(',').map(str::trim).collect();
        if cols.len() < 2 || cols[0] != "t_s" || cols[1] != "rps" {
            return Err(err(
                1,
                "header",
                format!("expected the header to start with `t_s,rps`, found `{header}`"),
            ));
        }
        let input_col = cols.iter().position(|c| *c == "mean_input_tokens");
        let output_col = cols.iter().position(|c| *c == "mean_output_tokens");
        let token_cols = match (input_col, output_col) {
            (Some(i), Some(o)) => Some((i, o)),
            (None, None) => None,
            (Some(_), None) => {
                return Err(err(
                    1,
                    "header",
                    "has `mean_input_tokens` but no `mean_output_tokens`".into(),
                ));
            }
            (None, Some(_)) => {
                return Err(err(
                    1,
                    "header",
                    "has `mean_output_tokens` but no `mean_input_tokens`".into(),
                ));
            }
        };

        let mut t_prev: Option<f64> = None;
        let mut interval: Option<f64> = None;
        let mut rps = Vec::new();
        let mut tokens = token_cols.map(|_| Vec::new());
        for (idx, line) in lines {
            let lineno = idx + 1;
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            if fields.len() != cols.len() {
                return Err(err(
                    lineno,
                    "row",
                    format!(
                        "has {} fields, the header has {} (`{line}`)",
                        fields.len(),
                        cols.len()
                    ),
                ));
            }
            let num = |col: usize| -> Result<f64> {
                let v: f64 = fields[col].parse().map_err(|_| {
                    err(
                        lineno,
                        cols[col],
                        format!("`{}` is not a number", fields[col]),
                    )
                })?;
                if !v.is_finite() || v < 0.0 {
                    return Err(err(
                        lineno,
                        cols[col],
                        format!("{v} must be a finite number >= 0"),
                    ));
                }
                Ok(v)
            };
            let t = num(0)?;
            match (t_prev, interval) {
                (None, _) if t != 0.0 => {
                    return Err(err(
                        lineno,
                        "t_s",
                        format!("the first row must have t_s = 0, found {t}"),
                    ));
                }
                (Some(p), None) => {
                    if t <= p {
                        return Err(err(
                            lineno,
                            "t_s",
                            format!("{t} does not increase (previous row: {p})"),
                        ));
                    }
                    interval = Some(t - p);
                }
                (Some(p), Some(dt)) => {
                    let want = p + dt;
                    if (t - want).abs() > 1e-6 * dt.max(1.0) {
                        return Err(err(
                            lineno,
                            "t_s",
                            format!(
                                "{t} breaks the fixed interval of {dt} s (expected {want}); rows must be contiguous"
                            ),
                        ));
                    }
                }
                _ => {}
            }
            t_prev = Some(t);
            rps.push(if fields[1].is_empty() {
                None
            } else {
                Some(num(1)?)
            });
            if let (Some((i, o)), Some(tok)) = (token_cols, tokens.as_mut()) {
                tok.push((num(i)?, num(o)?));
            }
        }
        let interval_s = match interval {
            Some(dt) => dt,
            None => {
                return Err(err(
                    text.lines().count().max(1),
                    "t_s",
                    "a trace needs at least two rows to define its interval".into(),
                ));
            }
        };
        let gap_rows = rps.iter().filter(|r| r.is_none()).count();
        if gap_rows == rps.len() {
            return Err(err(
                2,
                "rps",
                format!(
                    "every one of the {} rows is a gap (empty rps): there is no data to play",
                    rps.len()
                ),
            ));
        }
        Ok(Trace {
            path: path.to_path_buf(),
            interval_s,
            rps: bridge_gaps(&rps),
            tokens,
            gap_rows,
        })
    }
}

/// The rates with each run of gaps replaced by the line between the known rows around it (the
/// nearest known row at either end). At least one row must be known.
fn bridge_gaps(rps: &[Option<f64>]) -> Vec<f64> {
    let known: Vec<(usize, f64)> = rps
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.map(|v| (i, v)))
        .collect();
    let mut out = Vec::with_capacity(rps.len());
    let mut next = 0; // index in `known` of the first known row at or after i
    for (i, r) in rps.iter().enumerate() {
        while next < known.len() && known[next].0 < i {
            next += 1;
        }
        out.push(match r {
            Some(v) => *v,
            None => match (next.checked_sub(1).map(|k| known[k]), known.get(next)) {
                (Some((i0, v0)), Some(&(i1, v1))) => {
                    v0 + (v1 - v0) * (i - i0) as f64 / (i1 - i0) as f64
                }
                (Some((_, v0)), None) => v0,
                (None, Some(&(_, v1))) => v1,
                (None, None) => 0.0,
            },
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Trace> {
        Trace::parse(Path::new("t.csv"), text)
    }

    #[test]
    fn gaps_are_bridged_and_counted_never_read_as_zero() {
        let t = parse("t_s,rps\n0,\n10,2\n20,\n30,\n40,8\n50,\n").unwrap();
        assert_eq!(t.gap_rows, 4);
        assert_eq!(t.rps, vec![2.0, 2.0, 4.0, 6.0, 8.0, 8.0]);
        let e = parse("t_s,rps\n0,\n10,\n").unwrap_err().to_string();
        assert!(e.contains("every one of the 2 rows is a gap"), "{e}");
        let plain = parse("t_s,rps\n0,1\n10,2\n").unwrap();
        assert_eq!(plain.gap_rows, 0);
    }

    #[test]
    fn parses_plain_and_token_traces() {
        let t = parse("t_s,rps\n0,1.5\n10,2\n20,0\n").unwrap();
        assert_eq!(t.interval_s, 10.0);
        assert_eq!(t.rps, vec![1.5, 2.0, 0.0]);
        assert!(t.tokens.is_none());
        assert_eq!(t.duration_s(), 30.0);
        assert_eq!(t.expected_arrivals(), 35.0);
        let t = parse("t_s,rps,mean_input_tokens,mean_output_tokens\n0,1,100,10\n1,0,0.0,0.0\n")
            .unwrap();
        assert_eq!(t.tokens, Some(vec![(100.0, 10.0), (0.0, 0.0)]));
        let t = parse("t_s,rps,mean_exec_time_s\n0,1,30\n60,2,40\n").unwrap();
        assert!(t.tokens.is_none());
        assert_eq!(t.interval_s, 60.0);
    }

    #[test]
    fn malformed_files_name_line_and_field() {
        let cases = [
            ("", "t.csv:1: field `header`"),
            ("time,rps\n0,1\n", "t.csv:1: field `header`"),
            (
                "t_s,rps\n0,1\n10,abc\n",
                "t.csv:3: field `rps`: `abc` is not a number",
            ),
            ("t_s,rps\n0,1\n10,-2\n", "t.csv:3: field `rps`"),
            (
                "t_s,rps\n5,1\n10,2\n",
                "t.csv:2: field `t_s`: the first row must have t_s = 0",
            ),
            (
                "t_s,rps\n0,1\n10,2\n30,2\n",
                "t.csv:4: field `t_s`: 30 breaks the fixed interval",
            ),
            ("t_s,rps\n0,1\n10\n", "t.csv:3: field `row`"),
            (
                "t_s,rps\n0,1\n",
                "field `t_s`: a trace needs at least two rows",
            ),
            (
                "t_s,rps,mean_input_tokens\n0,1,3\n1,1,3\n",
                "no `mean_output_tokens`",
            ),
            (
                "t_s,rps\n0,1\n0,1\n",
                "t.csv:3: field `t_s`: 0 does not increase",
            ),
        ];
        for (text, want) in cases {
            let got = parse(text).unwrap_err().to_string();
            assert!(
                got.contains(want),
                "for {text:?}: got `{got}`, want `{want}`"
            );
        }
    }
}
