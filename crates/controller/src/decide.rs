//! The pure part of a reconcile: spec validation, the snapshot from query results, the runtime's
//! configuration, conditions. Nothing here does I/O or reads a clock.

use std::collections::BTreeMap;

use rlscale_baselines::BaselineConfig;
use rlscale_core::{MetricsSnapshot, SimTime};
use rlscale_runtime::{Guardrails, RuntimeConfig};

use crate::crd::{Condition, Field, RLAutoscalerSpec};
use crate::prom::PromError;

/// A spec the controller cannot act on. The message names the field and the value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("spec.{field}: {message}")]
pub struct SpecError {
    /// The field, as written in YAML (`minReplicas`, `prometheus.serverAddress`, …).
    pub field: String,
    /// What is wrong, with the value.
    pub message: String,
}

fn err(field: &str, message: String) -> SpecError {
    SpecError {
        field: field.into(),
        message,
    }
}

/// Check what the schema cannot (or what a cluster without schema validation let through).
pub fn validate(spec: &RLAutoscalerSpec) -> Result<RuntimeConfig, SpecError> {
    if spec.min_replicas > spec.max_replicas {
        return Err(err(
            "minReplicas",
            format!(
                "minReplicas {} is greater than maxReplicas {}",
                spec.min_replicas, spec.max_replicas
            ),
        ));
    }
    if spec.max_replicas == 0 {
        return Err(err("maxReplicas", "maxReplicas must be at least 1".into()));
    }
    if spec.scale_target_ref.name.is_empty() {
        return Err(err("scaleTargetRef.name", "must not be empty".into()));
    }
    let addr = &spec.prometheus.server_address;
    if !(addr.starts_with("http://") || addr.starts_with("https://")) {
        return Err(err(
            "prometheus.serverAddress",
            format!("{addr:?} is not an http:// or https:// URL"),
        ));
    }
    let t = spec.prometheus.timeout_seconds;
    if !(t.is_finite() && t > 0.0 && t <= 300.0) {
        return Err(err(
            "prometheus.timeoutSeconds",
            format!("{t} is not in (0, 300]"),
        ));
    }
    if spec.interval == 0 {
        return Err(err("interval", "interval must be at least 1 s".into()));
    }
    let p = &spec.service_profile;
    for (name, v) in [
        ("serviceProfile.coldStartSeconds", p.cold_start_seconds),
        ("serviceProfile.capacityRps", p.capacity_rps),
        ("serviceProfile.usdPerGpuHour", p.usd_per_gpu_hour),
        ("serviceProfile.sloLatencySeconds", p.slo_latency_seconds),
    ] {
        let ok = v.is_finite()
            && if name.ends_with("coldStartSeconds") || name.ends_with("usdPerGpuHour") {
                v >= 0.0
            } else {
                v > 0.0
            };
        if !ok {
            return Err(err(
                name,
                format!("{v} is not a valid value (must be positive and finite)"),
            ));
        }
    }
    if p.gpus_per_replica == 0 {
        return Err(err(
            "serviceProfile.gpusPerReplica",
            "gpusPerReplica must be at least 1".into(),
        ));
    }
    let mut cfg = RuntimeConfig::new(spec.min_replicas, spec.max_replicas);
    if let Some(f) = &spec.fallback {
        cfg.fallback = serde_json::from_value::<BaselineConfig>(f.clone())
            .map_err(|e| err("fallback", format!("{e} (in {f})")))?;
    }
    if let Some(g) = &spec.guardrails {
        let d = Guardrails::default();
        cfg.guardrails = Guardrails {
            max_step_up: g.max_step_up.unwrap_or(d.max_step_up),
            max_step_down: g.max_step_down.unwrap_or(d.max_step_down),
            scale_down_stabilization_s: g
                .scale_down_stabilization_seconds
                .unwrap_or(d.scale_down_stabilization_s),
            anti_cascade: g.anti_cascade.unwrap_or(d.anti_cascade),
            cascade_drain_s: g.cascade_drain_seconds.or(d.cascade_drain_s),
            cascade_headroom: g.cascade_headroom.unwrap_or(d.cascade_headroom),
        };
        if let Some(s) = g.max_staleness_seconds {
            cfg.max_staleness_s = s;
        }
    }
    cfg.validate().map_err(|e| {
        // The runtime's field names are snake_case TOML; say where they came from.
        err(
            if spec.fallback.is_some() && e.to_string().contains("fallback") {
                "fallback"
            } else {
                "guardrails"
            },
            e.to_string(),
        )
    })?;
    Ok(cfg)
}

/// One query's outcome.
pub type QueryResult = Result<Option<f64>, PromError>;

/// The snapshot and what went wrong building it.
#[derive(Debug, Clone, PartialEq)]
pub struct Built {
    /// The snapshot. A required field with no usable value is NaN, which the runtime refuses (it then
    /// holds the current target, reason `invalid_input`): no decision is made on made-up numbers.
    pub snapshot: MetricsSnapshot,
    /// Fields whose query failed or returned nothing, with why.
    pub problems: Vec<(Field, String)>,
    /// The first error, for the condition reason and the failure metric.
    pub first_error: Option<PromError>,
    /// A required query answered NaN or ±Inf.
    pub non_finite: bool,
}

impl Built {
    /// The `MetricsAvailable` reason when there are problems: the first query error's, else
    /// `NotANumber` or `NoData`.
    pub fn problem_reason(&self) -> &'static str {
        match &self.first_error {
            Some(e) => e.reason(),
            None if self.non_finite => "NotANumber",
            None => "NoData",
        }
    }
}

/// Build the snapshot from the query results and the target's replica counts.
///
/// - An empty result for a count or a rate is 0 when no replica is ready (no pod exports the metric),
///   and missing otherwise (Prometheus does not scrape the pods: deciding on zeros would scale down).
/// - Latency quantiles may be empty or NaN: no request completed in the window.
pub fn build_snapshot(
    results: &BTreeMap<Field, QueryResult>,
    ready_replicas: u32,
    starting_replicas: u32,
    spec: &RLAutoscalerSpec,
    now: SimTime,
) -> Built {
    let mut problems = Vec::new();
    let mut first_error = None;
    let mut non_finite = false;
    let mut value = |f: Field| -> Option<f64> {
        match results.get(&f) {
            None => {
                problems.push((f, "not queried".into()));
                Some(f64::NAN)
            }
            Some(Ok(Some(v))) if f.optional() && v.is_nan() => None,
            Some(Ok(Some(v))) if !v.is_finite() => {
                // e.g. a ratio of two zero rates: the runtime refuses it, and the condition says why.
                problems.push((f, format!("the query returned {v}")));
                non_finite = true;
                Some(*v)
            }
            Some(Ok(Some(v))) => Some(*v),
            Some(Ok(None)) if f.optional() => None,
            Some(Ok(None)) if ready_replicas == 0 => Some(0.0),
            Some(Ok(None)) => {
                problems.push((f, "no data".into()));
                Some(f64::NAN)
            }
            Some(Err(e)) => {
                problems.push((f, e.to_string()));
                if first_error.is_none() {
                    first_error = Some(e.clone());
                }
                if f.optional() { None } else { Some(f64::NAN) }
            }
        }
    };
    let req = |v: Option<f64>| v.unwrap_or(f64::NAN);
    let snapshot = MetricsSnapshot {
        time: now,
        arrival_rate_1m: req(value(Field::ArrivalRate1m)),
        arrival_rate_5m: req(value(Field::ArrivalRate5m)),
        arrival_rate_peak_15m: value(Field::ArrivalRatePeak15m),
        arrival_rate_peak_1h: value(Field::ArrivalRatePeak1h),
        arrival_rate_1h: value(Field::ArrivalRate1h),
        queue_depth: req(value(Field::QueueDepth)),
        running: req(value(Field::Running)),
        ready_replicas,
        starting_replicas,
        gpu_utilization: req(value(Field::GpuUtilization)),
        kv_cache_usage: req(value(Field::KvCacheUsage)),
        latency_p50_s: value(Field::LatencyP50),
        latency_p95_s: value(Field::LatencyP95),
        latency_p99_s: value(Field::LatencyP99),
        profile: spec.service_profile.to_profile(),
    };
    Built {
        snapshot,
        problems,
        first_error,
        non_finite,
    }
}

/// RFC 3339 (UTC, seconds) of a Unix time.
pub fn rfc3339(unix_s: f64) -> String {
    SimTime(unix_s).rfc3339()
}

/// Set a condition, keeping its `lastTransitionTime` when the status does not change (API conventions).
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: bool,
    reason: &str,
    message: impl Into<String>,
    now_unix_s: f64,
    generation: Option<i64>,
) {
    let status = if status { "True" } else { "False" }.to_string();
    let message = message.into();
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(c) => {
            if c.status != status {
                c.last_transition_time = rfc3339(now_unix_s);
            }
            c.status = status;
            c.reason = reason.into();
            c.message = message;
            c.observed_generation = generation;
        }
        None => conditions.push(Condition {
            type_: type_.into(),
            status,
            reason: reason.into(),
            message,
            last_transition_time: rfc3339(now_unix_s),
            observed_generation: generation,
        }),
    }
}

/// `scale_up` → `ScaleUp`: a decision reason as a condition or Event reason.
pub fn camel(reason: &str) -> String {
    reason
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{Mode, PrometheusSpec, Queries, ScaleTargetRef, ServiceProfileSpec};

    pub(crate) fn spec() -> RLAutoscalerSpec {
        RLAutoscalerSpec {
            scale_target_ref: ScaleTargetRef {
                api_version: "apps/v1".into(),
                kind: "Deployment".into(),
                name: "web".into(),
            },
            min_replicas: 1,
            max_replicas: 10,
            mode: Mode::Shadow,
            model: None,
            prometheus: PrometheusSpec {
                server_address: "http://127.0.0.1:9090".into(),
                timeout_seconds: 5.0,
                queries: Queries::default(),
            },
            service_profile: ServiceProfileSpec {
                cold_start_seconds: 120.0,
                capacity_rps: 4.0,
                gpus_per_replica: 1,
                usd_per_gpu_hour: 0.8,
                slo_latency_seconds: 20.0,
            },
            fallback: None,
            guardrails: None,
            interval: 15,
            hpa_ref: None,
        }
    }

    #[test]
    fn validation_names_field_and_value() {
        let mut s = spec();
        s.min_replicas = 5;
        s.max_replicas = 2;
        let e = validate(&s).unwrap_err();
        assert_eq!(e.field, "minReplicas");
        assert!(
            e.to_string().contains("5") && e.to_string().contains("2"),
            "{e}"
        );

        let mut s = spec();
        s.prometheus.server_address = "prometheus:9090".into();
        assert_eq!(validate(&s).unwrap_err().field, "prometheus.serverAddress");

        let mut s = spec();
        s.service_profile.capacity_rps = 0.0;
        assert_eq!(
            validate(&s).unwrap_err().field,
            "serviceProfile.capacityRps"
        );

        let mut s = spec();
        s.fallback = Some(serde_json::json!({"law": "bogus"}));
        let e = validate(&s).unwrap_err();
        assert_eq!(e.field, "fallback");
        assert!(e.message.contains("bogus"), "{e}");

        let mut s = spec();
        s.fallback = Some(serde_json::json!({"law": "keda"}));
        s.guardrails = Some(crate::crd::GuardrailsSpec {
            max_step_up: Some(2),
            ..Default::default()
        });
        let cfg = validate(&s).unwrap();
        assert_eq!(cfg.fallback.law(), "keda");
        assert_eq!(cfg.guardrails.max_step_up, 2);
        assert_eq!(cfg.guardrails.max_step_down, 4);
    }

    #[test]
    fn snapshot_from_results_marks_missing_data() {
        let s = spec();
        let mut r: BTreeMap<Field, QueryResult> =
            Field::ALL.iter().map(|&f| (f, Ok(Some(1.0)))).collect();
        r.insert(Field::LatencyP99, Ok(Some(f64::NAN)));
        let b = build_snapshot(&r, 2, 1, &s, SimTime(1e9));
        assert!(b.problems.is_empty());
        assert_eq!(b.snapshot.latency_p99_s, None);
        assert_eq!(b.snapshot.current_replicas(), 3);
        assert!(b.snapshot.invalid_fields().is_empty());

        // No data while replicas are ready: missing, refused by the runtime.
        r.insert(Field::QueueDepth, Ok(None));
        let b = build_snapshot(&r, 2, 0, &s, SimTime(1e9));
        assert!(b.snapshot.queue_depth.is_nan());
        assert_eq!(b.problems[0].0, Field::QueueDepth);
        // ... and zero with no replica ready.
        let b = build_snapshot(&r, 0, 1, &s, SimTime(1e9));
        assert_eq!(b.snapshot.queue_depth, 0.0);

        r.insert(
            Field::Running,
            Err(PromError::Timeout {
                server: "x".into(),
                timeout_s: 1.0,
            }),
        );
        let b = build_snapshot(&r, 0, 1, &s, SimTime(1e9));
        assert_eq!(b.first_error.unwrap().label(), "prometheus_timeout");
        assert!(b.snapshot.running.is_nan());
    }

    #[test]
    fn conditions_keep_transition_time_until_status_changes() {
        let mut c = Vec::new();
        set_condition(&mut c, "Ready", true, "Reconciled", "ok", 100.0, Some(1));
        set_condition(
            &mut c,
            "Ready",
            true,
            "Reconciled",
            "ok again",
            200.0,
            Some(1),
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].last_transition_time, rfc3339(100.0));
        assert_eq!(c[0].message, "ok again");
        set_condition(&mut c, "Ready", false, "InvalidSpec", "bad", 300.0, Some(2));
        assert_eq!(c[0].last_transition_time, rfc3339(300.0));
        assert_eq!(c[0].status, "False");
    }

    #[test]
    fn rfc3339_and_camel() {
        assert_eq!(rfc3339(0.0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000.7), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400.0), "2000-02-29T00:00:00Z");
        assert_eq!(camel("scale_down_stabilization"), "ScaleDownStabilization");
        assert_eq!(camel("no_model"), "NoModel");
    }
}
