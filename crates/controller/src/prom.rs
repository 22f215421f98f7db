//! A Prometheus HTTP API client for instant queries (`GET /api/v1/query`) and, for `rlscale
//! history`, range queries (`GET /api/v1/query_range`).
//!
//! Every way a query can fail in a cluster has its own [`PromError`]: the server is unreachable or slower
//! than the timeout, it answers an HTTP error or `"status":"error"` (a bad PromQL gives `bad_data`), the
//! result holds several series where one was meant, or it is not a number. An empty result is not an
//! error: it is `Ok(None)`, and the caller decides what "no data" means for the field.

use std::time::Duration;

use serde::Deserialize;

/// Why a query gave no number.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum PromError {
    /// The server could not be reached (connection refused, DNS, TLS).
    #[error("Prometheus at {server} is unreachable: {detail}")]
    Unreachable {
        /// The server address.
        server: String,
        /// What the HTTP client said.
        detail: String,
    },
    /// No answer within the timeout.
    #[error("Prometheus at {server} did not answer within {timeout_s} s")]
    Timeout {
        /// The server address.
        server: String,
        /// The timeout, seconds.
        timeout_s: f64,
    },
    /// Prometheus refused the query (`"status":"error"`), e.g. a PromQL syntax error (`bad_data`).
    #[error("Prometheus refused the query {query:?}: {error_type}: {error}")]
    Query {
        /// The query.
        query: String,
        /// `errorType`: `bad_data`, `timeout`, `execution`, …
        error_type: String,
        /// `error`.
        error: String,
    },
    /// An HTTP error without a Prometheus error body (a proxy, a wrong address).
    #[error("Prometheus at {server} answered HTTP {status}: {body}")]
    Http {
        /// The server address.
        server: String,
        /// The HTTP status.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// More than one series came back.
    #[error("query {query:?} returned {n} series; aggregate it to one (e.g. sum(...))")]
    SeveralSeries {
        /// The query.
        query: String,
        /// How many series.
        n: usize,
    },
    /// The answer could not be read as a Prometheus API response, or its value is not a number.
    #[error("Prometheus answered something unreadable for {query:?}: {detail}")]
    Malformed {
        /// The query.
        query: String,
        /// What was wrong.
        detail: String,
    },
}

impl PromError {
    /// A low-cardinality label for metrics and condition reasons.
    pub fn label(&self) -> &'static str {
        match self {
            PromError::Unreachable { .. } => "prometheus_unreachable",
            PromError::Timeout { .. } => "prometheus_timeout",
            PromError::Query { .. } => "prometheus_bad_query",
            PromError::Http { .. } => "prometheus_http",
            PromError::SeveralSeries { .. } => "prometheus_several_series",
            PromError::Malformed { .. } => "prometheus_malformed",
        }
    }

    /// The CamelCase reason used in conditions and Events.
    pub fn reason(&self) -> &'static str {
        match self {
            PromError::Unreachable { .. } => "PrometheusUnreachable",
            PromError::Timeout { .. } => "PrometheusTimeout",
            PromError::Query { .. } => "BadQuery",
            PromError::Http { .. } => "PrometheusHttpError",
            PromError::SeveralSeries { .. } => "SeveralSeries",
            PromError::Malformed { .. } => "MalformedResponse",
        }
    }
}

#[derive(Deserialize)]
struct ApiResponse {
    status: String,
    #[serde(default)]
    data: Option<ApiData>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct ApiData {
    #[serde(rename = "resultType")]
    result_type: String,
    result: serde_json::Value,
}

/// A Prometheus server.
#[derive(Debug, Clone)]
pub struct Prometheus {
    http: reqwest::Client,
    base: String,
    timeout: Duration,
}

impl Prometheus {
    /// A client for the server at `base` (e.g. `http://127.0.0.1:9090`), sharing `http`'s connection pool.
    pub fn new(http: reqwest::Client, base: &str, timeout: Duration) -> Self {
        Prometheus {
            http,
            base: base.trim_end_matches('/').to_string(),
            timeout,
        }
    }

    /// The server address.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Run an instant query at the server's current time. One sample → `Some(value)` (NaN included, as
    /// Prometheus returns it); no sample → `None`.
    pub async fn query(&self, query: &str) -> Result<Option<f64>, PromError> {
        let data = self.get("query", query, &[]).await?;
        parse_data(query, &data)
    }

    /// Run a range query: the samples of the one series `query` gives at `start + k·step_s` up to
    /// `end` (Unix seconds), as `(time, value)` pairs in time order. Times without a sample (no data)
    /// are absent; no series at all gives an empty vector. The caller keeps each request under
    /// Prometheus's 11,000 points per series ([`MAX_RANGE_POINTS`]).
    pub async fn query_range(
        &self,
        query: &str,
        start: f64,
        end: f64,
        step_s: f64,
    ) -> Result<Vec<(f64, f64)>, PromError> {
        let params = [
            ("start", format!("{start:.3}")),
            ("end", format!("{end:.3}")),
            ("step", format!("{step_s}")),
        ];
        let data = self.get("query_range", query, &params).await?;
        parse_matrix(query, &data)
    }

    /// `GET /api/v1/<endpoint>?query=…&<params>`: the `data` of a successful answer, or the error.
    async fn get(
        &self,
        endpoint: &str,
        query: &str,
        params: &[(&str, String)],
    ) -> Result<ApiData, PromError> {
        let url = format!("{}/api/v1/{endpoint}", self.base);
        let resp = self
            .http
            .get(&url)
            .query(&[("query", query)])
            .query(params)
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| self.transport(e))?;
        let status = resp.status();
        let body = resp.text().await.map_err(|e| self.transport(e))?;
        match serde_json::from_str::<ApiResponse>(&body) {
            Ok(r) if r.status == "error" => Err(PromError::Query {
                query: query.into(),
                error_type: r.error_type.unwrap_or_default(),
                error: r.error.unwrap_or_default(),
            }),
            Ok(r) if status.is_success() && r.status == "success" => {
                r.data.ok_or_else(|| PromError::Malformed {
                    query: query.into(),
                    detail: "no data".into(),
                })
            }
            _ if !status.is_success() => Err(PromError::Http {
                server: self.base.clone(),
                status: status.as_u16(),
                body: body.chars().take(200).collect(),
            }),
            Ok(r) => Err(PromError::Malformed {
                query: query.into(),
                detail: format!("status {:?}", r.status),
            }),
            Err(e) => Err(PromError::Malformed {
                query: query.into(),
                detail: e.to_string(),
            }),
        }
    }

    fn transport(&self, e: reqwest::Error) -> PromError {
        if e.is_timeout() {
            PromError::Timeout {
                server: self.base.clone(),
                timeout_s: self.timeout.as_secs_f64(),
            }
        } else {
            // The source chain says why ("Connection refused"), the top level only "error sending request".
            let mut detail = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                detail = format!("{detail}: {s}");
                src = s.source();
            }
            PromError::Unreachable {
                server: self.base.clone(),
                detail,
            }
        }
    }
}

/// A sample value: `[<unix time>, "<value>"]`, the value a string that may be `NaN`, `+Inf`, `-Inf`.
fn sample_value(query: &str, v: &serde_json::Value) -> Result<f64, PromError> {
    let bad = |detail: String| PromError::Malformed {
        query: query.into(),
        detail,
    };
    let s = v
        .get(1)
        .and_then(|x| x.as_str())
        .ok_or_else(|| bad(format!("sample {v} is not [time, \"value\"]")))?;
    match s {
        "NaN" => Ok(f64::NAN),
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        _ => s
            .parse::<f64>()
            .map_err(|_| bad(format!("value {s:?} is not a number"))),
    }
}

/// Prometheus refuses a range query whose series would hold more than 11,000 points
/// (`exceeded maximum resolution of 11,000 points per timeseries`); requests stay under this.
pub const MAX_RANGE_POINTS: usize = 10_000;

/// A range query's answer: a matrix of at most one series, as `(time, value)` pairs.
fn parse_matrix(query: &str, d: &ApiData) -> Result<Vec<(f64, f64)>, PromError> {
    let bad = |detail: String| PromError::Malformed {
        query: query.into(),
        detail,
    };
    if d.result_type != "matrix" {
        return Err(bad(format!(
            "result type {:?} where a range query gives a matrix",
            d.result_type
        )));
    }
    let series = d
        .result
        .as_array()
        .ok_or_else(|| bad("matrix result is not an array".into()))?;
    match series.len() {
        0 => Ok(Vec::new()),
        1 => {
            let values = series[0]
                .get("values")
                .and_then(|v| v.as_array())
                .ok_or_else(|| bad("series without values".into()))?;
            values
                .iter()
                .map(|v| {
                    let t = v
                        .get(0)
                        .and_then(|t| t.as_f64())
                        .ok_or_else(|| bad(format!("sample {v} has no time")))?;
                    Ok((t, sample_value(query, v)?))
                })
                .collect()
        }
        n => Err(PromError::SeveralSeries {
            query: query.into(),
            n,
        }),
    }
}

fn parse_data(query: &str, d: &ApiData) -> Result<Option<f64>, PromError> {
    match d.result_type.as_str() {
        "vector" => {
            let items = d.result.as_array().ok_or_else(|| PromError::Malformed {
                query: query.into(),
                detail: "vector result is not an array".into(),
            })?;
            match items.len() {
                0 => Ok(None),
                1 => {
                    let v = items[0].get("value").ok_or_else(|| PromError::Malformed {
                        query: query.into(),
                        detail: "sample without value".into(),
                    })?;
                    sample_value(query, v).map(Some)
                }
                n => Err(PromError::SeveralSeries {
                    query: query.into(),
                    n,
                }),
            }
        }
        "scalar" => sample_value(query, &d.result).map(Some),
        other => Err(PromError::Malformed {
            query: query.into(),
            detail: format!("result type {other:?}; use an instant vector or a scalar"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(t: &str, r: serde_json::Value) -> ApiData {
        ApiData {
            result_type: t.into(),
            result: r,
        }
    }

    #[test]
    fn results_parse_to_one_value_none_or_an_error() {
        let one = serde_json::json!([{"metric": {}, "value": [1.7e9, "3.5"]}]);
        assert_eq!(parse_data("q", &data("vector", one)).unwrap(), Some(3.5));
        assert_eq!(
            parse_data("q", &data("vector", serde_json::json!([]))).unwrap(),
            None
        );
        let nan = serde_json::json!([{"metric": {}, "value": [1.7e9, "NaN"]}]);
        assert!(
            parse_data("q", &data("vector", nan))
                .unwrap()
                .unwrap()
                .is_nan()
        );
        let two = serde_json::json!([{"metric": {"pod": "a"}, "value": [1, "1"]}, {"metric": {"pod": "b"}, "value": [1, "2"]}]);
        assert_eq!(
            parse_data("q", &data("vector", two)),
            Err(PromError::SeveralSeries {
                query: "q".into(),
                n: 2
            })
        );
        assert_eq!(
            parse_data("q", &data("scalar", serde_json::json!([1, "+Inf"]))).unwrap(),
            Some(f64::INFINITY)
        );
        let e = parse_data("q", &data("matrix", serde_json::json!([]))).unwrap_err();
        assert!(e.to_string().contains("matrix"), "{e}");
        let e = parse_data(
            "q",
            &data("vector", serde_json::json!([{"value": [1, "abc"]}])),
        )
        .unwrap_err();
        assert_eq!(e.label(), "prometheus_malformed");
    }

    #[test]
    fn range_results_parse_to_samples_nothing_or_an_error() {
        let one = serde_json::json!([{"metric": {}, "values": [[10, "1.5"], [25, "NaN"]]}]);
        let got = parse_matrix("q", &data("matrix", one)).unwrap();
        assert_eq!(got[0], (10.0, 1.5));
        assert_eq!(got[1].0, 25.0);
        assert!(got[1].1.is_nan());
        assert_eq!(
            parse_matrix("q", &data("matrix", serde_json::json!([]))).unwrap(),
            vec![]
        );
        let two = serde_json::json!([{"values": []}, {"values": []}]);
        assert_eq!(
            parse_matrix("q", &data("matrix", two)).unwrap_err().label(),
            "prometheus_several_series"
        );
        let e = parse_matrix("q", &data("vector", serde_json::json!([]))).unwrap_err();
        assert!(e.to_string().contains("matrix"), "{e}");
        let e = parse_matrix(
            "q",
            &data("matrix", serde_json::json!([{"values": [["x", "1"]]}])),
        )
        .unwrap_err();
        assert!(e.to_string().contains("no time"), "{e}");
    }
}
