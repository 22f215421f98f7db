//! Reading the controller's JSONL decision log (`rlscale controller --decision-log FILE`).
//!
//! Two kinds of line, [`rlscale_runtime::decision_log::LogLine`], the one definition the controller
//! writes with:
//!
//! - `{"kind":"config", "time", "namespace", "name", "generation", "model", "runtime"}`: written when
//!   an object's decision pipeline is (re)built; `runtime` is a [`rlscale_runtime::RuntimeConfig`].
//! - `{"kind":"decision", "time", "namespace", "name", "mode", "current_replicas",
//!   "desired_replicas", "source", "reason", "hpa_desired_replicas", "hpa_recomputed_replicas",
//!   "scaled", "model", "min_replicas", "max_replicas", "interval_s", "snapshot"}`; `snapshot` is a
//!   [`MetricsSnapshot`].
//!
//! Every field is checked by serde; an error names the file, the 1-based line and the field's dotted
//! path (`default.jsonl:57: field `snapshot.queue_depth`: invalid type: string "x", expected f64`).
//! Unknown top-level fields are ignored (a newer controller may add some); the snapshot and the
//! runtime configuration keep their own `deny_unknown_fields`.
//!
//! NB: the controller logs a failed Prometheus query as NaN, and serde_json writes NaN as `null`. So
//! `null` is accepted for the snapshot's required rates and gauges, read back as NaN (what the
//! controller saw), and the field is listed in [`DecisionRecord::missing`].
//!
//! A last line without its newline that does not parse is skipped with a note: the controller may be
//! writing it while the report is made. Anywhere else a malformed line is an error.

use std::path::{Path, PathBuf};

use rlscale_core::MetricsSnapshot;
use rlscale_runtime::decision_log::{ConfigLine, DecisionLine};
use serde_json::Value;

use super::ShadowError;

/// The "field" of an error about the whole line (not JSON, truncated, a missing field).
pub const WHOLE_LINE: &str = "(the line)";

/// Snapshot fields the controller fills from a Prometheus query that may fail (logged as `null`).
const NULLABLE: [&str; 6] = [
    "arrival_rate_1m",
    "arrival_rate_5m",
    "queue_depth",
    "running",
    "gpu_utilization",
    "kv_cache_usage",
];

/// A `config` line ([`ConfigLine`]'s fields, by `Deref`) and where it was.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigRecord {
    /// 1-based line number.
    pub line: usize,
    /// The line as the controller wrote it.
    pub config: ConfigLine,
}

impl std::ops::Deref for ConfigRecord {
    type Target = ConfigLine;
    fn deref(&self) -> &ConfigLine {
        &self.config
    }
}

/// A `decision` line ([`DecisionLine`]'s fields, by `Deref`; its snapshot holds NaN where a query
/// failed), where it was, and which snapshot fields were `null`.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionRecord {
    /// 1-based line number.
    pub line: usize,
    /// The line as the controller wrote it, with NaN for each `null` snapshot field.
    pub decision: DecisionLine,
    /// Snapshot fields logged as `null` (a failed query).
    pub missing: Vec<&'static str>,
}

impl std::ops::Deref for DecisionRecord {
    type Target = DecisionLine;
    fn deref(&self) -> &DecisionLine {
        &self.decision
    }
}

impl DecisionRecord {
    /// `namespace/name`.
    pub fn object(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// Whether the decision was made in shadow mode.
    pub fn is_shadow(&self) -> bool {
        self.mode == "Shadow"
    }
}

/// A parsed decision log.
#[derive(Debug, Clone, Default)]
pub struct DecisionLog {
    /// The file.
    pub path: PathBuf,
    /// Lines read (non-empty).
    pub lines: usize,
    /// Config lines, in file order.
    pub configs: Vec<ConfigRecord>,
    /// Decision lines, in file order.
    pub decisions: Vec<DecisionRecord>,
    /// What was skipped and why.
    pub notes: Vec<String>,
}

impl DecisionLog {
    /// Read and parse `path`.
    pub fn read(path: &Path) -> Result<DecisionLog, ShadowError> {
        let text = std::fs::read_to_string(path).map_err(|source| ShadowError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parse log text; `path` is used in errors only.
    pub fn parse(path: &Path, text: &str) -> Result<DecisionLog, ShadowError> {
        let mut log = DecisionLog {
            path: path.to_path_buf(),
            ..DecisionLog::default()
        };
        let all: Vec<&str> = text.split('\n').collect();
        // `split` gives a last empty piece when the text ends with a newline.
        let unterminated = !text.is_empty() && !text.ends_with('\n');
        for (idx, raw) in all.iter().enumerate() {
            let line = raw.strip_suffix('\r').unwrap_or(raw);
            if line.trim().is_empty() {
                continue;
            }
            let lineno = idx + 1;
            log.lines += 1;
            match parse_line(path, lineno, line) {
                Ok(Parsed::Config(c)) => log.configs.push(*c),
                Ok(Parsed::Decision(d)) => log.decisions.push(*d),
                Err(e) if unterminated && idx + 1 == all.len() && is_json_syntax(&e) => {
                    log.lines -= 1;
                    log.notes.push(format!(
                        "line {lineno} has no newline and is not complete JSON (the controller may be writing it): skipped"
                    ));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(log)
    }
}

enum Parsed {
    Config(Box<ConfigRecord>),
    Decision(Box<DecisionRecord>),
}

fn is_json_syntax(e: &ShadowError) -> bool {
    matches!(e, ShadowError::Line { field, .. } if field == WHOLE_LINE)
}

fn line_err(
    path: &Path,
    line: usize,
    field: impl Into<String>,
    message: impl Into<String>,
) -> ShadowError {
    ShadowError::Line {
        path: path.to_path_buf(),
        line,
        field: field.into(),
        message: message.into(),
    }
}

fn parse_line(path: &Path, lineno: usize, line: &str) -> Result<Parsed, ShadowError> {
    let mut value: Value = serde_json::from_str(line).map_err(|e| {
        let what = if e.is_eof() {
            "the line ends before its JSON object does (truncated?)".to_string()
        } else {
            "not valid JSON".to_string()
        };
        line_err(
            path,
            lineno,
            WHOLE_LINE,
            format!("{what}: {} at column {}", strip_position(&e), e.column()),
        )
    })?;
    let Some(obj) = value.as_object_mut() else {
        return Err(line_err(
            path,
            lineno,
            WHOLE_LINE,
            "expected a JSON object, one per line",
        ));
    };
    let kind = match obj.get("kind") {
        Some(Value::String(k)) => k.clone(),
        Some(other) => {
            return Err(line_err(
                path,
                lineno,
                "kind",
                format!("expected \"config\" or \"decision\", found {other}"),
            ));
        }
        None => {
            return Err(line_err(
                path,
                lineno,
                "kind",
                "missing; every line of the decision log has \"kind\": \"config\" or \"decision\" (a log written before the controller gained config lines cannot be read: collect a new one)",
            ));
        }
    };
    let deserialize_err = |e: serde_path_to_error::Error<serde_json::Error>| {
        let field = e.path().to_string();
        let field = if field == "." || field.is_empty() {
            WHOLE_LINE.to_string()
        } else {
            field
        };
        let msg = strip_position(e.inner());
        line_err(path, lineno, field, msg)
    };
    match kind.as_str() {
        "config" => {
            let raw: ConfigLine =
                serde_path_to_error::deserialize(value).map_err(deserialize_err)?;
            if !raw.time.is_finite() {
                return Err(line_err(
                    path,
                    lineno,
                    "time",
                    "must be finite Unix seconds",
                ));
            }
            Ok(Parsed::Config(Box::new(ConfigRecord {
                line: lineno,
                config: raw,
            })))
        }
        "decision" => {
            let mut missing = Vec::new();
            if let Some(Value::Object(snap)) = obj.get_mut("snapshot") {
                for f in NULLABLE {
                    if matches!(snap.get(f), Some(Value::Null)) {
                        snap.insert(f.to_string(), Value::from(0.0));
                        missing.push(f);
                    }
                }
            }
            let raw: DecisionLine =
                serde_path_to_error::deserialize(value).map_err(deserialize_err)?;
            let mut snapshot = raw.snapshot;
            for f in &missing {
                *snapshot_field(&mut snapshot, f) = f64::NAN;
            }
            if !raw.time.is_finite() {
                return Err(line_err(
                    path,
                    lineno,
                    "time",
                    "must be finite Unix seconds",
                ));
            }
            if raw.interval_s == 0 {
                return Err(line_err(
                    path,
                    lineno,
                    "interval_s",
                    "0: must be >= 1 second",
                ));
            }
            if raw.min_replicas > raw.max_replicas {
                return Err(line_err(
                    path,
                    lineno,
                    "min_replicas",
                    format!(
                        "{} is above max_replicas ({})",
                        raw.min_replicas, raw.max_replicas
                    ),
                ));
            }
            Ok(Parsed::Decision(Box::new(DecisionRecord {
                line: lineno,
                decision: DecisionLine { snapshot, ..raw },
                missing,
            })))
        }
        other => Err(line_err(
            path,
            lineno,
            "kind",
            format!("unknown kind \"{other}\" (expected \"config\" or \"decision\")"),
        )),
    }
}

/// A snapshot as the controller logs it: a field whose query failed is `null` there, read here as
/// missing (NaN, which the runtime refuses as invalid input and holds on), and returned by name.
pub fn snapshot_from_json(
    mut v: Value,
) -> Result<(MetricsSnapshot, Vec<&'static str>), serde_json::Error> {
    let mut missing = Vec::new();
    if let Value::Object(snap) = &mut v {
        for f in NULLABLE {
            if matches!(snap.get(f), Some(Value::Null)) {
                snap.insert(f.to_string(), Value::from(0.0));
                missing.push(f);
            }
        }
    }
    let mut s: MetricsSnapshot = serde_json::from_value(v)?;
    for f in &missing {
        *snapshot_field(&mut s, f) = f64::NAN;
    }
    Ok((s, missing))
}

fn snapshot_field<'a>(s: &'a mut MetricsSnapshot, name: &str) -> &'a mut f64 {
    match name {
        "arrival_rate_1m" => &mut s.arrival_rate_1m,
        "arrival_rate_5m" => &mut s.arrival_rate_5m,
        "queue_depth" => &mut s.queue_depth,
        "running" => &mut s.running,
        "gpu_utilization" => &mut s.gpu_utilization,
        _ => &mut s.kv_cache_usage,
    }
}

/// serde_json's message without its " at line L column C" suffix (the line is ours, the column is
/// given separately or meaningless inside a re-parsed value).
fn strip_position(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Parse a time given on the command line: Unix seconds (`1714953600`, `1714953600.5`) or RFC 3339
/// (`2024-05-06T00:00:00Z`, `2024-05-06T02:00:00.250+02:00`; `t`/`z` in lower case and a space instead
/// of `T` are accepted, as RFC 3339 allows).
pub fn parse_time(s: &str) -> Result<f64, String> {
    let s = s.trim();
    if let Ok(v) = s.parse::<f64>() {
        return if v.is_finite() {
            Ok(v)
        } else {
            Err(format!("`{s}` is not a finite number of Unix seconds"))
        };
    }
    let bad = || {
        format!(
            "`{s}` is neither Unix seconds nor an RFC 3339 time such as 2024-05-06T09:30:00Z or 2024-05-06T11:30:00+02:00"
        )
    };
    let b = s.as_bytes();
    if b.len() < 20 || !matches!(b[10], b'T' | b't' | b' ') {
        return Err(bad());
    }
    let (date, rest) = (&s[..10], &s[11..]);
    if rest.len() < 8 {
        return Err(bad());
    }
    let (hms, mut rest) = rest.split_at(8);
    let mut frac = 0.0;
    if let Some(r) = rest.strip_prefix('.') {
        let digits = r.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        frac = format!("0.{}", &r[..digits]).parse().map_err(|_| bad())?;
        rest = &r[digits..];
    }
    let offset_s = match rest {
        "Z" | "z" => 0.0,
        _ => {
            let (sign, hm) = match rest.as_bytes().first() {
                Some(b'+') => (1.0, &rest[1..]),
                Some(b'-') => (-1.0, &rest[1..]),
                _ => return Err(bad()),
            };
            let (h, m) = hm.split_once(':').ok_or_else(bad)?;
            if h.len() != 2 || m.len() != 2 {
                return Err(bad());
            }
            let h: u32 = h.parse().map_err(|_| bad())?;
            let m: u32 = m.parse().map_err(|_| bad())?;
            if h > 23 || m > 59 {
                return Err(bad());
            }
            sign * f64::from(h * 3600 + m * 60)
        }
    };
    let whole = rlscale_sim::config::parse_utc(&format!("{date}T{hms}Z")).ok_or_else(bad)?;
    Ok(whole + frac - offset_s)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn snapshot_json(t: f64, rate: &str) -> String {
        format!(
            r#"{{"time":{t},"arrival_rate_1m":{rate},"arrival_rate_5m":10.0,"queue_depth":0.0,"running":5.0,"ready_replicas":3,"starting_replicas":0,"gpu_utilization":0.5,"kv_cache_usage":0.1,"latency_p50_s":null,"latency_p95_s":1.5,"latency_p99_s":null,"profile":{{"cold_start_s":135.0,"capacity_rps":3.0,"gpus_per_replica":1,"usd_per_gpu_hour":0.8,"slo_latency_s":10.0}}}}"#
        )
    }

    fn decision(t: f64, rate: &str) -> String {
        format!(
            r#"{{"kind":"decision","time":{t},"namespace":"ns","name":"web","mode":"Shadow","current_replicas":3,"desired_replicas":4,"source":"model","reason":"scale_up","hpa_desired_replicas":null,"hpa_recomputed_replicas":3,"scaled":false,"model":"/m.json","min_replicas":1,"max_replicas":10,"interval_s":15,"snapshot":{}}}"#,
            snapshot_json(t, rate)
        )
    }

    const CONFIG: &str = r#"{"kind":"config","time":100.0,"namespace":"ns","name":"web","generation":1,"model":"/m.json","runtime":{"min_replicas":1,"max_replicas":10}}"#;

    fn parse(text: &str) -> Result<DecisionLog, ShadowError> {
        DecisionLog::parse(Path::new("d.jsonl"), text)
    }

    #[test]
    fn reads_both_kinds_and_nulls_as_missing() {
        let text = format!(
            "{CONFIG}\n{}\n\n{}\n",
            decision(100.0, "12.5"),
            decision(115.0, "null")
        );
        let log = parse(&text).unwrap();
        assert_eq!(log.lines, 3);
        assert_eq!(log.configs.len(), 1);
        assert_eq!(log.configs[0].runtime.max_replicas, 10);
        assert_eq!(log.decisions.len(), 2);
        let (a, b) = (&log.decisions[0], &log.decisions[1]);
        assert_eq!(a.line, 2);
        assert_eq!(b.line, 4);
        assert_eq!(a.snapshot.arrival_rate_1m, 12.5);
        assert!(a.missing.is_empty());
        assert!(b.snapshot.arrival_rate_1m.is_nan());
        assert_eq!(b.missing, vec!["arrival_rate_1m"]);
        assert_eq!(a.hpa_desired_replicas, None);
        assert_eq!(a.hpa_recomputed_replicas, Some(3));
        assert_eq!(a.object(), "ns/web");
        assert!(a.is_shadow());
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let good = decision(100.0, "1.0");
        let cases: Vec<(String, &str)> = vec![
            (
                format!("{CONFIG}\n{}\n", &good[..good.len() / 2]),
                "d.jsonl:2: the line ends before its JSON object does",
            ),
            (
                format!(
                    "{CONFIG}\n{}\n",
                    good.replace("\"desired_replicas\":4", "\"desired_replicas\":\"4\"")
                ),
                "d.jsonl:2: field `desired_replicas`: invalid type: string \"4\", expected u32",
            ),
            (
                format!(
                    "{}\n",
                    good.replace("\"queue_depth\":0.0", "\"queue_depth\":\"x\"")
                ),
                "d.jsonl:1: field `snapshot.queue_depth`: invalid type: string",
            ),
            (
                format!("{}\n", good.replace("\"running\":5.0", "\"runing\":5.0")),
                "d.jsonl:1: field `snapshot.runing`: unknown field `runing`",
            ),
            (
                format!("{}\n", good.replace("\"kind\":\"decision\",", "")),
                "d.jsonl:1: field `kind`: missing",
            ),
            (
                format!(
                    "{}\n",
                    good.replace("\"kind\":\"decision\"", "\"kind\":\"other\"")
                ),
                "d.jsonl:1: field `kind`: unknown kind \"other\"",
            ),
            (
                format!(
                    "{}\n",
                    good.replace("\"interval_s\":15", "\"interval_s\":0")
                ),
                "d.jsonl:1: field `interval_s`",
            ),
            (
                format!(
                    "{}\n",
                    CONFIG.replace("\"max_replicas\":10", "\"max_replicas\":-1")
                ),
                "d.jsonl:1: field `runtime.max_replicas`: invalid value: integer `-1`",
            ),
            (
                format!("{}\n", good.replace(",\"scaled\":false", "")),
                "d.jsonl:1: missing field `scaled`",
            ),
            ("[1,2]\n".to_string(), "d.jsonl:1: expected a JSON object"),
        ];
        for (text, want) in cases {
            let got = parse(&text).unwrap_err().to_string();
            assert!(got.contains(want), "got `{got}`, want `{want}`");
            assert!(parse(&text).unwrap_err().is_bad_input());
        }
    }

    #[test]
    fn an_unterminated_last_line_is_skipped_with_a_note() {
        let good = decision(100.0, "1.0");
        let text = format!("{CONFIG}\n{good}\n{}", &good[..40]);
        let log = parse(&text).unwrap();
        assert_eq!(log.decisions.len(), 1);
        assert!(
            log.notes[0].contains("line 3 has no newline"),
            "{:?}",
            log.notes
        );
        // With its newline it is an error.
        assert!(parse(&format!("{text}\n")).is_err());
    }

    #[test]
    fn times_in_unix_seconds_or_rfc3339() {
        assert_eq!(parse_time("1714953600"), Ok(1_714_953_600.0));
        assert_eq!(parse_time(" 1714953600.5 "), Ok(1_714_953_600.5));
        assert_eq!(parse_time("2024-05-06T00:00:00Z"), Ok(1_714_953_600.0));
        assert_eq!(parse_time("2024-05-06t00:00:00z"), Ok(1_714_953_600.0));
        assert_eq!(
            parse_time("2024-05-06 02:00:00.25+02:00"),
            Ok(1_714_953_600.25)
        );
        assert_eq!(parse_time("2024-05-05T19:30:00-04:30"), Ok(1_714_953_600.0));
        for bad in [
            "yesterday",
            "2024-05-06",
            "2024-05-06T00:00:00",
            "2024-13-06T00:00:00Z",
            "2024-05-06T00:00:00+2:00",
            "2024-05-06T00:00:00.Z",
            "NaN",
            "inf",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }
}
