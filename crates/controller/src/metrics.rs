//! The controller's own metrics (`/metrics`, OpenMetrics text), prefixed `rlscale_`:
//!
//! | metric | labels | meaning |
//! |---|---|---|
//! | `rlscale_recommended_replicas` | `namespace`, `name`, `source` (`rlscale`, `hpa`, `hpa_recomputed`) | the latest recommendation of each |
//! | `rlscale_decisions_total` | `source` (`model`, `fallback`, `guardrail`), `reason` | decisions made |
//! | `rlscale_fallback_total` | `reason` | decisions the fallback made, by why |
//! | `rlscale_scale_writes_total` | `namespace`, `name` | writes to a scale subresource (active mode) |
//! | `rlscale_reconcile_duration_seconds` | – | reconcile duration, Prometheus time included |
//! | `rlscale_prometheus_duration_seconds` | – | the Prometheus part of one reconcile (its queries run concurrently) |
//! | `rlscale_leader_election_master_status` | `name` (the Lease) | 1 while this process leads (client-go's name) |
//! | `rlscale_leader_election_lost_total` | – | times this process lost the Lease while leading |
//! | `rlscale_reconcile_failures_total` | `error` | reconciles that failed, by error label |
//! | `rlscale_metrics_query_failures_total` | `error` | Prometheus queries that failed |

use std::time::Instant;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

type Labels = Vec<(String, String)>;

/// The controller's metrics and their registry.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// `rlscale_recommended_replicas`
    pub recommended: Family<Labels, Gauge>,
    /// `rlscale_decisions_total`
    pub decisions: Family<Labels, Counter>,
    /// `rlscale_fallback_total`
    pub fallbacks: Family<Labels, Counter>,
    /// `rlscale_scale_writes_total`
    pub scale_writes: Family<Labels, Counter>,
    /// `rlscale_reconcile_duration_seconds`
    pub reconcile_duration: Histogram,
    /// `rlscale_prometheus_duration_seconds`
    pub prometheus_duration: Histogram,
    /// `rlscale_leader_election_master_status`
    pub leader: Family<Labels, Gauge>,
    /// `rlscale_leader_election_lost_total`
    pub leases_lost: Counter,
    /// `rlscale_reconcile_failures_total`
    pub failures: Family<Labels, Counter>,
    /// `rlscale_metrics_query_failures_total`
    pub query_failures: Family<Labels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("rlscale");
        let recommended = Family::<Labels, Gauge>::default();
        let decisions = Family::<Labels, Counter>::default();
        let fallbacks = Family::<Labels, Counter>::default();
        let scale_writes = Family::<Labels, Counter>::default();
        let failures = Family::<Labels, Counter>::default();
        let leader = Family::<Labels, Gauge>::default();
        let leases_lost = Counter::default();
        let query_failures = Family::<Labels, Counter>::default();
        // Fine below 100 ms, where the reconcile goal (p99 ≤ 50 ms without Prometheus) sits, so that a
        // p99 interpolated from the buckets is within a few ms.
        let buckets = [
            0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.075,
            0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ];
        let reconcile_duration = Histogram::new(buckets);
        let prometheus_duration = Histogram::new(buckets);
        registry.register(
            "recommended_replicas",
            "Latest replica recommendation, by source (rlscale, hpa, hpa_recomputed)",
            recommended.clone(),
        );
        registry.register(
            "decisions",
            "Decisions made, by source and reason",
            decisions.clone(),
        );
        registry.register(
            "fallback",
            "Decisions the fallback law made, by reason",
            fallbacks.clone(),
        );
        registry.register(
            "scale_writes",
            "Writes to a target's scale subresource",
            scale_writes.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Duration of one reconcile, Prometheus queries included",
            reconcile_duration.clone(),
        );
        registry.register(
            "prometheus_duration_seconds",
            "Duration of the Prometheus queries of one reconcile (run concurrently)",
            prometheus_duration.clone(),
        );
        registry.register(
            "leader_election_master_status",
            "1 while this process holds the leader Lease, by Lease name",
            leader.clone(),
        );
        registry.register(
            "leader_election_lost",
            "Times this process lost the leader Lease while leading",
            leases_lost.clone(),
        );
        registry.register(
            "reconcile_failures",
            "Reconciles that failed, by error",
            failures.clone(),
        );
        registry.register(
            "metrics_query_failures",
            "Prometheus queries that failed, by error",
            query_failures.clone(),
        );
        Metrics {
            registry,
            recommended,
            decisions,
            fallbacks,
            scale_writes,
            reconcile_duration,
            prometheus_duration,
            leader,
            leases_lost,
            failures,
            query_failures,
        }
    }
}

fn l(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl Metrics {
    /// Whether this process leads (leader election).
    pub fn set_leader(&self, lease: &str, leading: bool) {
        self.leader
            .get_or_create(&l(&[("name", lease)]))
            .set(i64::from(leading));
    }

    /// This process lost the Lease while leading.
    pub fn lease_lost(&self) {
        self.leases_lost.inc();
    }

    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> String {
        let mut s = String::new();
        encode(&mut s, &self.registry).expect("writing to a String cannot fail");
        s
    }

    /// Record a recommendation.
    pub fn recommend(&self, namespace: &str, name: &str, source: &str, replicas: u32) {
        self.recommended
            .get_or_create(&l(&[
                ("namespace", namespace),
                ("name", name),
                ("source", source),
            ]))
            .set(i64::from(replicas));
    }

    /// Count a decision.
    pub fn decision(&self, source: &str, reason: &str) {
        self.decisions
            .get_or_create(&l(&[("source", source), ("reason", reason)]))
            .inc();
    }

    /// Count a fallback decision.
    pub fn fallback(&self, reason: &str) {
        self.fallbacks
            .get_or_create(&l(&[("reason", reason)]))
            .inc();
    }

    /// Count a scale write.
    pub fn scale_write(&self, namespace: &str, name: &str) {
        self.scale_writes
            .get_or_create(&l(&[("namespace", namespace), ("name", name)]))
            .inc();
    }

    /// Count a failed reconcile.
    pub fn failure(&self, error: &str) {
        self.failures.get_or_create(&l(&[("error", error)])).inc();
    }

    /// Count a failed query.
    pub fn query_failure(&self, error: &str) {
        self.query_failures
            .get_or_create(&l(&[("error", error)]))
            .inc();
    }

    /// Forget an object's gauges (it was deleted).
    pub fn forget(&self, namespace: &str, name: &str) {
        for source in ["rlscale", "hpa", "hpa_recomputed"] {
            self.recommended.remove(&l(&[
                ("namespace", namespace),
                ("name", name),
                ("source", source),
            ]));
        }
    }

    /// A timer that observes the reconcile duration when dropped (controller-rs's `ReconcileMeasurer`).
    pub fn time_reconcile(&self) -> ReconcileTimer {
        ReconcileTimer {
            start: Instant::now(),
            hist: self.reconcile_duration.clone(),
        }
    }
}

/// Observes the elapsed time into the reconcile histogram on drop.
#[derive(Debug)]
pub struct ReconcileTimer {
    start: Instant,
    hist: Histogram,
}

impl Drop for ReconcileTimer {
    fn drop(&mut self) {
        self.hist.observe(self.start.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names_are_the_documented_ones() {
        let m = Metrics::default();
        m.recommend("ns", "web", "rlscale", 3);
        m.decision("model", "scale_up");
        m.fallback("no_model");
        m.failure("kube_conflict");
        m.query_failure("prometheus_timeout");
        m.scale_write("ns", "web");
        drop(m.time_reconcile());
        let text = m.encode();
        for needle in [
            r#"rlscale_recommended_replicas{namespace="ns",name="web",source="rlscale"} 3"#,
            r#"rlscale_decisions_total{source="model",reason="scale_up"} 1"#,
            r#"rlscale_fallback_total{reason="no_model"} 1"#,
            r#"rlscale_reconcile_failures_total{error="kube_conflict"} 1"#,
            r#"rlscale_metrics_query_failures_total{error="prometheus_timeout"} 1"#,
            r#"rlscale_scale_writes_total{namespace="ns",name="web"} 1"#,
            "rlscale_reconcile_duration_seconds_count 1",
        ] {
            assert!(text.contains(needle), "{needle} missing from:\n{text}");
        }
        m.forget("ns", "web");
        assert!(!m.encode().contains(r#"name="web",source="rlscale""#));
    }
}
