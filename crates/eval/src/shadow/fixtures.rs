//! Test-only builders of decision-log text (controller-rs `fixtures.rs` style).

use std::fmt::Write as _;

/// A decision log being written, line by line.
#[derive(Debug, Clone, Default)]
pub struct LogText {
    pub text: String,
    ns: String,
    name: String,
}

/// One decision's values.
#[derive(Debug, Clone, Copy)]
pub struct D {
    pub t: f64,
    pub ours: u32,
    pub hpa: Option<u32>,
    pub recomputed: Option<u32>,
    pub rate: Option<f64>,
}

impl LogText {
    /// A log for `ns/name`.
    pub fn new(ns: &str, name: &str) -> Self {
        LogText {
            text: String::new(),
            ns: ns.into(),
            name: name.into(),
        }
    }

    /// Continue with another object.
    pub fn object(mut self, ns: &str, name: &str) -> Self {
        self.ns = ns.into();
        self.name = name.into();
        self
    }

    /// A config line with `model` and default runtime settings in `[1, 10]`.
    pub fn config(mut self, t: f64, model: Option<&str>) -> Self {
        let model = model.map_or("null".to_string(), |m| format!("\"{m}\""));
        let _ = writeln!(
            self.text,
            r#"{{"kind":"config","time":{t},"namespace":"{}","name":"{}","generation":1,"model":{model},"runtime":{{"min_replicas":1,"max_replicas":10,"guardrails":{{"anti_cascade":false,"scale_down_stabilization_s":0.0}}}}}}"#,
            self.ns, self.name
        );
        self
    }

    /// A shadow decision.
    pub fn decision(mut self, d: D) -> Self {
        let o = |v: Option<u32>| v.map_or("null".to_string(), |v| v.to_string());
        let rate = d.rate.map_or("null".to_string(), |r| r.to_string());
        let _ = writeln!(
            self.text,
            r#"{{"kind":"decision","time":{t},"namespace":"{ns}","name":"{name}","mode":"Shadow","current_replicas":3,"desired_replicas":{ours},"source":"model","reason":"hold","hpa_desired_replicas":{hpa},"hpa_recomputed_replicas":{rec},"scaled":false,"model":null,"min_replicas":1,"max_replicas":10,"interval_s":15,"snapshot":{{"time":{t},"arrival_rate_1m":{rate},"arrival_rate_5m":6.0,"queue_depth":0.0,"running":12.0,"ready_replicas":3,"starting_replicas":0,"gpu_utilization":0.5,"kv_cache_usage":0.2,"latency_p50_s":1.0,"latency_p95_s":2.0,"latency_p99_s":null,"profile":{{"cold_start_s":135.0,"capacity_rps":3.0,"gpus_per_replica":1,"usd_per_gpu_hour":0.8,"slo_latency_s":10.0}}}}}}"#,
            t = d.t,
            ns = self.ns,
            name = self.name,
            ours = d.ours,
            hpa = o(d.hpa),
            rec = o(d.recomputed),
        );
        self
    }

    /// `n` decisions every 15 s from `t0` with `f(i)` giving each one's values.
    pub fn decisions(
        mut self,
        t0: f64,
        n: usize,
        f: impl Fn(usize) -> (u32, Option<u32>, Option<u32>, f64),
    ) -> Self {
        for i in 0..n {
            let (ours, hpa, recomputed, rate) = f(i);
            self = self.decision(D {
                t: t0 + 15.0 * i as f64,
                ours,
                hpa,
                recomputed,
                rate: Some(rate),
            });
        }
        self
    }

    /// The same decision line in active mode.
    pub fn active(mut self, t: f64) -> Self {
        let before = self.text.len();
        self = self.decision(D {
            t,
            ours: 3,
            hpa: None,
            recomputed: None,
            rate: Some(1.0),
        });
        let line = self.text.split_off(before);
        self.text
            .push_str(&line.replace("\"mode\":\"Shadow\"", "\"mode\":\"Active\""));
        self
    }
}
