//! The decision pipeline: one function from a [`MetricsSnapshot`] and the time to a [`Decision`].
//!
//! ```text
//! snapshot, now
//!   1. inputs      NaN / infinite / negative counts → fallback (hold)   reason invalid_input
//!                  older than max_staleness_s (or from the future)       reason stale_metrics
//!   2. features    rlscale_core::features (the one function training used)
//!   3. OOD         a feature outside the model's training range (± range_margin × span), or beyond
//!                  max_abs_z σ of its normalisation                      → fallback law, out_of_distribution
//!                  no model loaded                                       → fallback law, no_model
//!   4. policy      the model's logits
//!   5. mask        masked argmax over the actions valid at [min, max] (ties: lowest index)
//!   6. guardrails  scale-down stabilization, anti-cascade, max step up/down, min/max replicas
//! ```
//!
//! The runtime never returns an error for bad inputs: it returns a decision whose [`Source`] says who
//! decided (`model`, `fallback` with the reason, or `guardrail` with the rule that clipped it), and an
//! [`Outcome`] carries the whole reason chain for logs and `rlscale decide`.
//!
//! On invalid or stale inputs the fallback holds the current target: the fallback law is not fed
//! garbage, and holding is what the Kubernetes HPA does when it cannot read its metrics. On a missing
//! model or out-of-distribution features (valid inputs the model cannot be trusted with) the fallback
//! law decides. The fallback law sees every valid snapshot, so its windows are warm when it takes over.
//!
//! Time is an argument: nothing here reads a clock.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

use rlscale_baselines::{Baseline, BaselineConfig, Bounds, ConfigError};
use rlscale_core::{
    ActionSpace, ActionSpec, ActionTable, Decision, FEATURE_NAMES, MetricsSnapshot, Policy, Reason,
    SimTime, Source, features,
};
use serde::{Deserialize, Serialize};

use crate::model::{ModelFile, PreparedActor};

/// Out-of-distribution limits.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OodConfig {
    /// A feature may lie this fraction of its training span outside the training range.
    pub range_margin: f64,
    /// ... and at most this many standard deviations (of the model's normalisation) from the mean.
    pub max_abs_z: f64,
}

impl Default for OodConfig {
    fn default() -> Self {
        OodConfig {
            range_margin: 0.25,
            max_abs_z: 10.0,
        }
    }
}

/// The guardrails applied to every decision, the model's and the fallback's.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Guardrails {
    /// Most replicas added per decision.
    pub max_step_up: u32,
    /// Most replicas removed per decision.
    pub max_step_down: u32,
    /// A scale-down goes no lower than the highest proposal of this many past seconds (HPA's
    /// `scaleDown.stabilizationWindowSeconds`); 0 turns it off.
    pub scale_down_stabilization_s: f64,
    /// While replicas are starting, scale up only as far as the demand justifies:
    /// `ceil(cascade_headroom × (arrival_rate_1m + queue_depth / drain) / capacity_rps)`.
    pub anti_cascade: bool,
    /// Seconds in which the queue should drain, for the anti-cascade rule (`drain` above). Absent:
    /// the SLO latency of the snapshot's service profile (at least 1 s), since a queue that takes
    /// longer than the SLO to drain is already violating it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cascade_drain_s: Option<f64>,
    /// Headroom over the demand, for the anti-cascade rule.
    pub cascade_headroom: f64,
}

impl Default for Guardrails {
    fn default() -> Self {
        Guardrails {
            max_step_up: 8,
            max_step_down: 4,
            scale_down_stabilization_s: 60.0,
            anti_cascade: true,
            cascade_drain_s: None,
            cascade_headroom: 1.25,
        }
    }
}

impl Guardrails {
    /// Check every field; the error names the field (as `guardrails.FIELD`, the table it sits in
    /// in a runtime or training config) and the value.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (field, v, positive) in [
            (
                "guardrails.scale_down_stabilization_s",
                self.scale_down_stabilization_s,
                false,
            ),
            (
                "guardrails.cascade_drain_s",
                self.cascade_drain_s.unwrap_or(1.0),
                true,
            ),
            ("guardrails.cascade_headroom", self.cascade_headroom, true),
        ] {
            check_number(field, v, positive)?;
        }
        if self.scale_down_stabilization_s > 86_400.0 {
            return Err(ConfigError::new(
                "guardrails.scale_down_stabilization_s",
                self.scale_down_stabilization_s,
                "must be at most 86400 (one day)",
            ));
        }
        if self.max_step_up == 0 {
            return Err(ConfigError::new(
                "guardrails.max_step_up",
                0,
                "must be >= 1 (or the target could never grow)",
            ));
        }
        if self.max_step_down == 0 {
            return Err(ConfigError::new(
                "guardrails.max_step_down",
                0,
                "must be >= 1 (or the target could never shrink)",
            ));
        }
        Ok(())
    }
}

/// `v` must be finite and >= 0 (> 0 when `positive`).
fn check_number(field: &str, v: f64, positive: bool) -> Result<(), ConfigError> {
    if !(v.is_finite() && v >= 0.0) || (positive && v == 0.0) {
        let want = if positive { "> 0" } else { ">= 0" };
        return Err(ConfigError::new(
            field,
            v,
            format!("must be a finite number {want}"),
        ));
    }
    Ok(())
}

/// Everything the runtime needs besides the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Fewest replicas.
    pub min_replicas: u32,
    /// Most replicas.
    pub max_replicas: u32,
    /// A snapshot older than this (seconds, by its own `time` against `now`) is stale.
    #[serde(default = "default_staleness")]
    pub max_staleness_s: f64,
    /// Out-of-distribution limits.
    #[serde(default)]
    pub ood: OodConfig,
    /// Guardrails.
    #[serde(default)]
    pub guardrails: Guardrails,
    /// The fallback law (`law = "hpa"` plus its table, as in `configs/baselines/`); default HPA.
    #[serde(default = "default_fallback")]
    pub fallback: BaselineConfig,
}

fn default_staleness() -> f64 {
    60.0
}

fn default_fallback() -> BaselineConfig {
    BaselineConfig::default_for("hpa").expect("hpa is a law")
}

impl RuntimeConfig {
    /// Defaults for a target bounded by `[min, max]`.
    pub fn new(min_replicas: u32, max_replicas: u32) -> Self {
        RuntimeConfig {
            min_replicas,
            max_replicas,
            max_staleness_s: default_staleness(),
            ood: OodConfig::default(),
            guardrails: Guardrails::default(),
            fallback: default_fallback(),
        }
    }

    /// Check every field; the error names the field and the value.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.min_replicas > self.max_replicas {
            return Err(ConfigError::new(
                "min_replicas",
                self.min_replicas,
                format!("must be <= max_replicas ({})", self.max_replicas),
            ));
        }
        if self.max_replicas == 0 {
            return Err(ConfigError::new("max_replicas", 0, "must be >= 1"));
        }
        for (field, v, positive) in [
            ("max_staleness_s", self.max_staleness_s, true),
            ("ood.range_margin", self.ood.range_margin, false),
            ("ood.max_abs_z", self.ood.max_abs_z, true),
        ] {
            check_number(field, v, positive)?;
        }
        self.guardrails.validate()?;
        self.fallback.validate().map_err(|e| ConfigError {
            field: format!("fallback.{}", e.field),
            ..e
        })
    }
}

/// One step of the reason chain.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Note {
    /// A field of the snapshot is NaN, infinite or a negative count.
    InvalidInput {
        /// The first such field.
        field: &'static str,
    },
    /// The snapshot is too old (or from the future: a negative age).
    Stale {
        /// `now − snapshot.time`, seconds.
        age_s: f64,
        /// The limit.
        limit_s: f64,
    },
    /// No model is loaded.
    NoModel {
        /// Why (the load error, or "none configured").
        why: String,
    },
    /// A feature outside the model's training range.
    OutOfRange {
        /// The feature.
        feature: &'static str,
        /// Its value.
        value: f32,
        /// The allowed range (training range widened by the margin).
        min: f32,
        /// Upper end.
        max: f32,
    },
    /// A feature too many standard deviations from the training mean.
    OutOfSigma {
        /// The feature.
        feature: &'static str,
        /// Its z-score.
        z: f32,
        /// The limit.
        limit: f32,
    },
    /// The model chose an action.
    Model {
        /// Action index.
        action: usize,
        /// What it does (a replica delta, or a target utilization of the arrival rate).
        spec: ActionSpec,
        /// Target before.
        from: u32,
        /// Target after (masked at the bounds).
        to: u32,
    },
    /// The fallback law decided.
    FallbackLaw {
        /// The law (`hpa`, `keda`, ...).
        law: &'static str,
        /// Target before.
        from: u32,
        /// Its recommendation.
        to: u32,
    },
    /// The fallback held the current target (inputs unusable).
    Hold {
        /// The target kept.
        replicas: u32,
    },
    /// A guardrail changed the proposal.
    Guardrail {
        /// The rule.
        rule: Reason,
        /// Before the rule.
        from: u32,
        /// After it.
        to: u32,
    },
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Note::InvalidInput { field } => {
                write!(f, "input: {field} is NaN, infinite or negative → fallback")
            }
            Note::Stale { age_s, limit_s } => write!(
                f,
                "input: snapshot age {age_s:.1} s outside [0, {limit_s}] s → fallback"
            ),
            Note::NoModel { why } => write!(f, "model: not loaded ({why}) → fallback law"),
            Note::OutOfRange {
                feature,
                value,
                min,
                max,
            } => write!(
                f,
                "ood: {feature} = {value} outside [{min}, {max}] (training range + margin) → fallback law"
            ),
            Note::OutOfSigma { feature, z, limit } => write!(
                f,
                "ood: {feature} is {z:.1} σ from the training mean (limit {limit}) → fallback law"
            ),
            Note::Model {
                action,
                spec,
                from,
                to,
            } => write!(f, "model: action {action} ({spec}) → {from} → {to}"),
            Note::FallbackLaw { law, from, to } => write!(f, "fallback: {law} → {from} → {to}"),
            Note::Hold { replicas } => write!(f, "fallback: hold at {replicas}"),
            Note::Guardrail { rule, from, to } => write!(f, "guardrail {rule}: {from} → {to}"),
        }
    }
}

/// A decision with its reason chain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    /// The decision: replicas, who decided, why.
    pub decision: Decision,
    /// The target before this decision.
    pub from: u32,
    /// What the model or the fallback proposed, before the guardrails.
    pub proposed: u32,
    /// Why the fallback decided, when it did.
    pub fallback_reason: Option<Reason>,
    /// Every step, in order.
    pub chain: Vec<Note>,
}

/// The runtime: model, fallback law and guardrails, with the little state they need (the last target,
/// recent proposals for the stabilization window, the fallback law's own windows).
#[derive(Debug, Clone)]
pub struct Runtime {
    model: Result<Arc<ModelFile>, Arc<str>>,
    actor: Option<PreparedActor>,
    /// The model's action table (the delta table without a model; unused then).
    table: ActionTable,
    cfg: RuntimeConfig,
    space: ActionSpace,
    fallback: Baseline,
    target: Option<u32>,
    guard: Guard,
    /// Per-feature allowed `[lo, hi]` and `(mean, 1/std)`, precomputed from the model.
    ood: Vec<FeatureLimits>,
    name: String,
}

#[derive(Debug, Clone, Copy)]
struct FeatureLimits {
    lo: f32,
    hi: f32,
    mean: f64,
    inv_std: f64,
}

impl Runtime {
    /// A runtime over `model` (or the reason there is none: the fallback law then always decides).
    /// A bad configuration is an error here, at startup; bad inputs later never are.
    pub fn new(
        model: Result<Arc<ModelFile>, String>,
        cfg: RuntimeConfig,
        name: impl Into<String>,
    ) -> Result<Self, ConfigError> {
        cfg.validate()?;
        let bounds = Bounds {
            min: cfg.min_replicas,
            max: cfg.max_replicas,
        };
        let fallback = cfg.fallback.build(bounds, cfg.min_replicas)?;
        let ood = match &model {
            Ok(m) => limits(m, &cfg.ood),
            Err(_) => Vec::new(),
        };
        let guard = Guard::new(cfg.guardrails, cfg.min_replicas, cfg.max_replicas);
        Ok(Runtime {
            actor: model.as_ref().ok().map(|m| PreparedActor::new(m.clone())),
            table: model
                .as_ref()
                .map_or_else(|_| ActionTable::deltas(), |m| m.action_table()),
            model: model.map_err(Arc::from),
            space: ActionSpace::new(cfg.min_replicas, cfg.max_replicas),
            cfg,
            fallback,
            target: None,
            guard,
            ood,
            name: name.into(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &RuntimeConfig {
        &self.cfg
    }

    /// Whether a model is loaded.
    pub fn has_model(&self) -> bool {
        self.model.is_ok()
    }

    /// Set the target the next decision starts from (e.g. the Deployment's `spec.replicas` read by a
    /// controller that just started).
    pub fn set_target(&mut self, replicas: u32) {
        self.target = Some(self.space.clamp(replicas));
    }

    /// Decide, with the reason chain.
    pub fn decide_explained(&mut self, snapshot: &MetricsSnapshot, now: SimTime) -> Outcome {
        let from = self
            .space
            .clamp(self.target.unwrap_or_else(|| snapshot.current_replicas()));
        let mut chain = Vec::with_capacity(4);

        // 1. Inputs.
        let mut reject = None;
        if let Some(field) = snapshot.invalid_fields().first() {
            chain.push(Note::InvalidInput { field });
            reject = Some(Reason::InvalidInput);
        } else {
            let age_s = now.0 - snapshot.time.0;
            // A little slack for clocks: a snapshot a second "from the future" is not garbage.
            if !(age_s.is_finite() && age_s >= -1.0 && age_s <= self.cfg.max_staleness_s) {
                chain.push(Note::Stale {
                    age_s,
                    limit_s: self.cfg.max_staleness_s,
                });
                reject = Some(Reason::StaleMetrics);
            }
        }
        if let Some(reason) = reject {
            // Hold: no guardrail can move a held target, except the bounds (already applied).
            chain.push(Note::Hold { replicas: from });
            self.target = Some(from);
            return Outcome {
                decision: Decision {
                    replicas: from,
                    source: Source::Fallback,
                    reason,
                },
                from,
                proposed: from,
                fallback_reason: Some(reason),
                chain,
            };
        }

        // The fallback law sees every valid snapshot, so its windows are warm when it takes over. It
        // starts each decision from the real target, as the HPA reads `spec.replicas` each sync: not
        // from its own last recommendation, which the model, the guardrails or another writer may not
        // have followed (it would drift, and jump when it takes over).
        self.fallback.observe_current(from);
        let law = self.fallback.decide(snapshot, now).replicas;

        // 2.–5. Features, OOD, policy, mask.
        let mut fallback_reason = None;
        let proposed = match &self.model {
            Err(why) => {
                chain.push(Note::NoModel {
                    why: why.to_string(),
                });
                fallback_reason = Some(Reason::NoModel);
                None
            }
            Ok(m) if snapshot.missing_for_schema(m.obs_schema_version).is_some() => {
                // A schema-2 model needs the hour-scale rates; a source that cannot give them (an
                // older log, a failed subquery) gets the fallback law, not a guess.
                let field = snapshot
                    .missing_for_schema(m.obs_schema_version)
                    .expect("checked in the guard");
                chain.push(Note::InvalidInput { field });
                fallback_reason = Some(Reason::InvalidInput);
                None
            }
            Ok(m) => {
                let obs = features(snapshot);
                let obs = &obs.0[..m.n_features()];
                match ood_check(&self.ood, obs, self.cfg.ood.max_abs_z) {
                    Some(note) => {
                        chain.push(note);
                        fallback_reason = Some(Reason::OutOfDistribution);
                        None
                    }
                    None => {
                        let actor = self.actor.as_mut().expect("prepared with the model");
                        let logits = actor.logits(obs);
                        let mask = self.table.mask(&self.space, from);
                        let action = masked_argmax(logits, &mask);
                        let to = self.table.apply(&self.space, from, action, snapshot);
                        chain.push(Note::Model {
                            action,
                            spec: self.table.0[action],
                            from,
                            to,
                        });
                        Some(to)
                    }
                }
            }
        };
        let (proposed, source, reason) = match proposed {
            Some(to) => (to, Source::Model, direction(from, to)),
            None => {
                let to = self.space.clamp(law);
                chain.push(Note::FallbackLaw {
                    law: self.cfg.fallback.law(),
                    from,
                    to,
                });
                (
                    to,
                    Source::Fallback,
                    fallback_reason.unwrap_or(Reason::NoModel),
                )
            }
        };

        // 6. Guardrails.
        let (replicas, rule) = self.guard.apply(snapshot, now, from, proposed, &mut chain);
        self.target = Some(replicas);
        let decision = match rule {
            Some(rule) => Decision {
                replicas,
                source: Source::Guardrail,
                reason: rule,
            },
            None => Decision {
                replicas,
                source,
                reason,
            },
        };
        Outcome {
            decision,
            from,
            proposed,
            fallback_reason,
            chain,
        }
    }
}

/// The guardrails with the state they need (recent proposals for the stabilization window). The
/// runtime applies them to every decision, and the trainer applies the same ones to the policy's
/// actions, so that a model learns under the rules it will run under.
#[derive(Debug, Clone)]
pub struct Guard {
    rails: Guardrails,
    min: u32,
    max: u32,
    /// `(time, proposal)` of the last `scale_down_stabilization_s`.
    proposals: VecDeque<(f64, u32)>,
}

impl Guard {
    /// Guardrails for a target bounded by `[min, max]`.
    pub fn new(rails: Guardrails, min: u32, max: u32) -> Self {
        Guard {
            rails,
            min,
            max: max.max(min),
            proposals: VecDeque::new(),
        }
    }

    /// Forget the window, as at the start of an episode.
    pub fn reset(&mut self) {
        self.proposals.clear();
    }

    /// Apply the guardrails to `proposed`; returns the result and the last rule that changed it.
    pub fn apply(
        &mut self,
        s: &MetricsSnapshot,
        now: SimTime,
        from: u32,
        proposed: u32,
        chain: &mut Vec<Note>,
    ) -> (u32, Option<Reason>) {
        let g = self.rails;
        let mut x = proposed;
        let mut last = None;
        let mut apply = |rule: Reason, to: u32, x: &mut u32, chain: &mut Vec<Note>| {
            if to != *x {
                chain.push(Note::Guardrail { rule, from: *x, to });
                *x = to;
                last = Some(rule);
            }
        };
        // Scale-down stabilization: no lower than the highest proposal in the window.
        let window = g.scale_down_stabilization_s;
        while self
            .proposals
            .front()
            .is_some_and(|&(t, _)| !(t > now.0 - window && t <= now.0))
        {
            self.proposals.pop_front();
        }
        if window > 0.0 {
            self.proposals.push_back((now.0, proposed));
            if x < from {
                let floor = self.proposals.iter().map(|p| p.1).max().unwrap_or(x);
                apply(
                    Reason::ScaleDownStabilization,
                    x.max(floor).min(from),
                    &mut x,
                    chain,
                );
            }
        }
        // Anti-cascade: while replicas start, grow only as far as the demand justifies.
        if g.anti_cascade && x > from && s.starting_replicas > 0 {
            let cap = s.profile.capacity_rps;
            let drain = g
                .cascade_drain_s
                .unwrap_or_else(|| s.profile.slo_latency_s.max(1.0));
            let demand = s.arrival_rate_1m + s.queue_depth / drain;
            let justified = if cap > 0.0 {
                (g.cascade_headroom * demand / cap)
                    .ceil()
                    .min(f64::from(u32::MAX)) as u32
            } else {
                u32::MAX
            };
            apply(
                Reason::AntiCascade,
                x.min(justified.max(from)),
                &mut x,
                chain,
            );
        }
        // Step limits.
        if x > from {
            apply(
                Reason::MaxStepUp,
                x.min(from.saturating_add(g.max_step_up)),
                &mut x,
                chain,
            );
        } else if x < from {
            apply(
                Reason::MaxStepDown,
                x.max(from.saturating_sub(g.max_step_down)),
                &mut x,
                chain,
            );
        }
        // Bounds (already respected by the mask and the law's clamp; a last line of defence).
        apply(Reason::MinReplicas, x.max(self.min), &mut x, chain);
        apply(Reason::MaxReplicas, x.min(self.max), &mut x, chain);
        (x, last)
    }
}

fn direction(from: u32, to: u32) -> Reason {
    match to.cmp(&from) {
        std::cmp::Ordering::Greater => Reason::ScaleUp,
        std::cmp::Ordering::Less => Reason::ScaleDown,
        std::cmp::Ordering::Equal => Reason::Hold,
    }
}

/// The index of the largest logit among the allowed actions; ties and NaN go to the lowest index, and
/// with nothing allowed (never: hold always is) the hold action.
pub fn masked_argmax(logits: &[f32], mask: &[bool]) -> usize {
    let mut best = rlscale_core::action::HOLD;
    let mut best_l = f32::NEG_INFINITY;
    let mut found = false;
    for (a, (&l, &ok)) in logits.iter().zip(mask).enumerate() {
        if ok && (!found || l > best_l) {
            best = a;
            best_l = l;
            found = true;
        }
    }
    best
}

fn limits(m: &ModelFile, c: &OodConfig) -> Vec<FeatureLimits> {
    let n = &m.obs_norm;
    (0..m.n_features())
        .map(|i| {
            let (lo, hi) = (m.feature_ranges.min[i], m.feature_ranges.max[i]);
            let span = if lo <= hi { hi - lo } else { 0.0 };
            let margin = (c.range_margin as f32) * span;
            FeatureLimits {
                lo: lo - margin,
                hi: hi + margin,
                mean: n.mean[i],
                inv_std: 1.0 / (n.var[i] + n.epsilon).sqrt(),
            }
        })
        .collect()
}

fn ood_check(limits: &[FeatureLimits], x: &[f32], max_abs_z: f64) -> Option<Note> {
    for (i, (l, &v)) in limits.iter().zip(x).enumerate() {
        if !(v >= l.lo && v <= l.hi) {
            return Some(Note::OutOfRange {
                feature: FEATURE_NAMES[i],
                value: v,
                min: l.lo,
                max: l.hi,
            });
        }
        let z = (f64::from(v) - l.mean) * l.inv_std;
        if z.is_nan() || z.abs() > max_abs_z {
            return Some(Note::OutOfSigma {
                feature: FEATURE_NAMES[i],
                z: z as f32,
                limit: max_abs_z as f32,
            });
        }
    }
    None
}

impl Policy for Runtime {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn decide(&mut self, snapshot: &MetricsSnapshot, now: SimTime) -> Decision {
        self.decide_explained(snapshot, now).decision
    }

    fn reset(&mut self) {
        self.target = None;
        self.guard.reset();
        self.fallback.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rlscale_core::{N_ACTIONS, N_FEATURES, ServiceProfile};

    fn profile() -> ServiceProfile {
        ServiceProfile {
            cold_start_s: 135.0,
            capacity_rps: 3.0,
            gpus_per_replica: 1,
            usd_per_gpu_hour: 0.8,
            slo_latency_s: 10.0,
        }
    }

    const T0: f64 = 1.7e9;

    fn snap(ready: u32, starting: u32) -> MetricsSnapshot {
        let mut s = MetricsSnapshot::idle(SimTime(T0), ready, profile());
        s.starting_replicas = starting;
        s.arrival_rate_1m = 3.0 * f64::from(ready);
        s.arrival_rate_5m = s.arrival_rate_1m;
        s.running = 10.0 * f64::from(ready);
        s.gpu_utilization = 0.6;
        s
    }

    /// `ready` replicas under a load every law scales up from.
    fn heavy(ready: u32) -> MetricsSnapshot {
        let mut s = snap(ready, 0);
        s.running = 200.0;
        s.queue_depth = 100.0;
        s.gpu_utilization = 1.0;
        s
    }

    /// A standalone copy of `cfg`'s fallback law, to compare the runtime's decisions with.
    fn fallback_law(cfg: &RuntimeConfig) -> Baseline {
        cfg.fallback
            .build(
                Bounds {
                    min: cfg.min_replicas,
                    max: cfg.max_replicas,
                },
                cfg.min_replicas,
            )
            .unwrap()
    }

    fn model(weight: Vec<f32>, bias: Vec<f32>) -> ModelFile {
        ModelFile::one_layer(weight, bias)
    }

    fn always(action: usize) -> ModelFile {
        ModelFile::always(action)
    }

    fn runtime(m: ModelFile, cfg: RuntimeConfig) -> Runtime {
        let m = m.validate(std::path::Path::new("t.json")).map(|()| m);
        Runtime::new(m.map(Arc::new).map_err(|e| e.to_string()), cfg, "t").unwrap()
    }

    fn free() -> RuntimeConfig {
        let mut c = RuntimeConfig::new(1, 20);
        c.guardrails.anti_cascade = false;
        c.guardrails.scale_down_stabilization_s = 0.0;
        c
    }

    const UP1: usize = 4;
    const UP8: usize = 7;
    const DOWN4: usize = 0;

    #[test]
    fn the_model_decides_on_good_inputs() {
        let mut r = runtime(always(UP1), free());
        let o = r.decide_explained(&snap(4, 0), SimTime(T0 + 5.0));
        assert_eq!(o.decision.replicas, 5);
        assert_eq!(o.decision.source, Source::Model);
        assert_eq!(o.decision.reason, Reason::ScaleUp);
        assert_eq!(o.chain.len(), 1, "{:?}", o.chain);
        // The next decision starts from the last target, not from the snapshot.
        let o = r.decide_explained(&snap(4, 0), SimTime(T0 + 5.0));
        assert_eq!((o.from, o.decision.replicas), (5, 6));
    }

    /// A model trained on the demand-relative table is applied with that table: "the 1-minute rate at
    /// utilization u" from the snapshot, not a delta, and the chain says which action it was.
    #[test]
    fn a_utilization_model_sizes_to_the_arrival_rate() {
        let mut m = always(0);
        m.set_action_table(&ActionTable::utilization());
        let mut r = runtime(m, free());
        let mut s = snap(4, 0);
        s.arrival_rate_1m = 3.0 * profile().capacity_rps * 0.95 * 3.0 + 0.1;
        let o = r.decide_explained(&s, SimTime(T0 + 5.0));
        // ceil(rate / (capacity · 0.95)) = ceil(9 + ε) = 10, from 4.
        assert_eq!((o.from, o.decision.replicas), (4, 10));
        assert_eq!(o.decision.source, Source::Model);
        assert_eq!(
            o.chain[0],
            Note::Model {
                action: 0,
                spec: ActionSpec::TargetUtilization(0.95),
                from: 4,
                to: 10
            }
        );
        assert!(
            o.chain[0].to_string().contains("utilization 0.95"),
            "{}",
            o.chain[0]
        );
        // The same network with the delta table would have moved by −4.
        let mut d = runtime(always(0), free());
        assert_eq!(
            d.decide_explained(&s, SimTime(T0 + 5.0)).decision.replicas,
            1
        );
    }

    #[test]
    fn bad_inputs_hold_with_the_reason() {
        let mut r = runtime(always(UP8), free());
        r.set_target(6);
        let mut s = snap(4, 0);
        s.queue_depth = f64::NAN;
        let o = r.decide_explained(&s, SimTime(T0));
        assert_eq!(
            o.decision,
            Decision {
                replicas: 6,
                source: Source::Fallback,
                reason: Reason::InvalidInput
            }
        );
        assert_eq!(
            o.chain[0],
            Note::InvalidInput {
                field: "queue_depth"
            }
        );
        s.queue_depth = 0.0;
        s.ready_replicas = 4;
        for now in [T0 + 61.0, T0 - 5.0, f64::NAN] {
            let o = r.decide_explained(&s, SimTime(now));
            assert_eq!(o.decision.reason, Reason::StaleMetrics, "now {now}");
            assert_eq!(o.decision.replicas, 6);
        }
        // Within the limit the model decides again.
        let o = r.decide_explained(&s, SimTime(T0 + 59.0));
        assert_eq!(o.decision.source, Source::Model);
    }

    /// A schema-2 model reads the hour-scale rates; a snapshot without them (an older log, a failed
    /// subquery) goes to the fallback law, naming the field. A schema-1 model (the prefix) does not
    /// need them, and decides on the same first 22 features whatever the hour-scale rates say.
    #[test]
    fn each_schema_reads_its_own_features() {
        let cfg = free();
        let mut law = fallback_law(&cfg);
        let mut s = snap(2, 0);
        s.arrival_rate_peak_15m = None;
        let mut r = runtime(always(UP1), cfg.clone());
        let o = r.decide_explained(&s, SimTime(T0));
        assert_eq!(
            o.fallback_reason,
            Some(Reason::InvalidInput),
            "{:?}",
            o.chain
        );
        assert!(
            o.chain.iter().any(|n| matches!(
                n,
                Note::InvalidInput {
                    field: "arrival_rate_peak_15m"
                }
            )),
            "{:?}",
            o.chain
        );
        assert_eq!(o.decision.replicas, law.decide(&s, SimTime(T0)).replicas);

        // The same weights on schema 1: the model decides, and the hour-scale features (which weigh
        // heavily toward DOWN4 in schema 2) are not read.
        let mut w = vec![0.0f32; N_FEATURES * N_ACTIONS];
        let peak = rlscale_core::FEATURE_NAMES
            .iter()
            .position(|n| *n == "log_load_peak_1h")
            .unwrap();
        w[peak * N_ACTIONS + DOWN4] = 100.0;
        let mut bias = vec![0.0f32; N_ACTIONS];
        bias[UP1] = 1.0;
        let mut v1 = model(
            w[..rlscale_core::N_FEATURES_V1 * N_ACTIONS].to_vec(),
            bias.clone(),
        );
        v1.obs_schema_version = 1;
        v1.feature_names.truncate(rlscale_core::N_FEATURES_V1);
        v1.obs_norm.mean.truncate(rlscale_core::N_FEATURES_V1);
        v1.obs_norm.var.truncate(rlscale_core::N_FEATURES_V1);
        v1.feature_ranges.min.truncate(rlscale_core::N_FEATURES_V1);
        v1.feature_ranges.max.truncate(rlscale_core::N_FEATURES_V1);
        v1.critic[0].d_in = rlscale_core::N_FEATURES_V1;
        v1.critic[0].weight.truncate(rlscale_core::N_FEATURES_V1);
        v1.actor[0].d_in = rlscale_core::N_FEATURES_V1;
        let mut r1 = runtime(v1, cfg.clone());
        assert!(r1.has_model());
        s.arrival_rate_peak_15m = None;
        s.arrival_rate_peak_1h = Some(60.0);
        let o = r1.decide_explained(&s, SimTime(T0));
        assert_eq!((o.decision.source, o.decision.replicas), (Source::Model, 3));
        // Schema 2 reads the hourly peak and follows it.
        s.arrival_rate_peak_15m = Some(60.0);
        let mut r2 = runtime(model(w, bias), cfg);
        let o = r2.decide_explained(&s, SimTime(T0));
        assert_eq!(o.decision.source, Source::Model, "{:?}", o.chain);
        assert_eq!(o.decision.replicas, 1);
    }

    #[test]
    fn without_a_model_the_fallback_law_decides() {
        let cfg = free();
        let mut r = Runtime::new(Err("m.json: no such file".into()), cfg.clone(), "t").unwrap();
        let mut hpa = fallback_law(&cfg);
        // A heavy load: HPA scales up, and the runtime with it.
        let s = heavy(2);
        let o = r.decide_explained(&s, SimTime(T0));
        let want = hpa.decide(&s, SimTime(T0)).replicas;
        assert!(want > 2, "the test load makes HPA scale up: {want}");
        assert_eq!(o.decision.replicas, want.min(2 + 8));
        assert_eq!(o.fallback_reason, Some(Reason::NoModel));
        assert!(matches!(&o.chain[0], Note::NoModel { why } if why.contains("m.json")));
        assert!(
            o.chain
                .iter()
                .any(|n| matches!(n, Note::FallbackLaw { law: "hpa", .. }))
        );
    }

    #[test]
    fn the_fallback_law_starts_from_the_real_target_not_its_own_last_recommendation() {
        // No model: the fallback law decides, but the guardrails clip it (+1 per decision), so its own
        // recommendation and the real target part ways.
        let mut cfg = free();
        cfg.guardrails.max_step_up = 1;
        let mut r = Runtime::new(Err("none".into()), cfg.clone(), "t").unwrap();
        let mut hpa = fallback_law(&cfg);
        let heavy = heavy(2);
        let o = r.decide_explained(&heavy, SimTime(T0));
        let wanted = hpa.decide(&heavy, SimTime(T0)).replicas;
        assert!(
            wanted > 3,
            "the law wants more than the guardrail allows: {wanted}"
        );
        assert_eq!(o.decision.replicas, 3, "clipped to +1");

        // Next sync at the real size, 3. The law must start from 3, not from its own `wanted`.
        let s = snap(3, 0);
        let t = SimTime(T0 + 15.0);
        let mut drifted = hpa.clone();
        let drifted = drifted.decide(&s, t).replicas;
        hpa.observe_current(3);
        let right = hpa.decide(&s, t).replicas;
        assert_ne!(drifted, right, "the test separates the two starting points");
        let o = r.decide_explained(&s, t);
        assert_eq!(o.fallback_reason, Some(Reason::NoModel));
        assert_eq!(o.proposed, right, "{:?}", o.chain);
        assert_eq!(o.decision.replicas, right.clamp(1, 3 + 1), "{:?}", o.chain);
    }

    #[test]
    fn a_queue_based_fallback_is_configured_like_a_baseline_file() {
        let c = RuntimeConfig {
            fallback: BaselineConfig::default_for("keda").unwrap(),
            ..RuntimeConfig::new(1, 30)
        };
        // The TOML users write: [fallback] with law = "keda" and KEDA's table.
        let text = toml::to_string(&c).unwrap();
        assert!(
            text.contains("[fallback]") && text.contains("law = \"keda\""),
            "{text}"
        );
        let back: RuntimeConfig = toml::from_str(&text).unwrap();
        assert_eq!(back, c);
        let mut r = Runtime::new(Err("none".into()), back, "t").unwrap();
        let mut s = snap(2, 0);
        s.queue_depth = 200.0;
        let o = r.decide_explained(&s, SimTime(T0));
        assert!(
            o.chain
                .iter()
                .any(|n| matches!(n, Note::FallbackLaw { law: "keda", .. })),
            "{:?}",
            o.chain
        );
        assert!(
            o.decision.replicas > 2,
            "a deep queue scales KEDA up: {o:?}"
        );
    }

    #[test]
    fn out_of_distribution_inputs_go_to_the_fallback() {
        let mut m = always(UP1);
        let q = FEATURE_NAMES
            .iter()
            .position(|f| *f == "log_queue")
            .unwrap();
        m.feature_ranges.min[q] = 0.0;
        m.feature_ranges.max[q] = 1.0;
        let mut r = runtime(m.clone(), free());
        let mut s = snap(4, 0);
        s.queue_depth = 3.0 * 20.0; // ln(1 + 20) ≈ 3.04 > 1 + 0.25
        let o = r.decide_explained(&s, SimTime(T0));
        assert_eq!(o.fallback_reason, Some(Reason::OutOfDistribution));
        assert!(
            matches!(
                o.chain[0],
                Note::OutOfRange {
                    feature: "log_queue",
                    ..
                }
            ),
            "{:?}",
            o.chain
        );
        // Within range but 12 σ from the mean.
        m.feature_ranges.max[q] = 10.0;
        m.obs_norm.var[q] = 0.0625; // σ = 0.25: 3.04 / 0.25 ≈ 12 σ
        let mut r = runtime(m, free());
        let o = r.decide_explained(&s, SimTime(T0));
        assert!(
            matches!(
                o.chain[0],
                Note::OutOfSigma {
                    feature: "log_queue",
                    ..
                }
            ),
            "{:?}",
            o.chain
        );
        assert_eq!(o.decision.source, Source::Fallback);
    }

    #[test]
    fn guardrails_clip_and_say_which_rule() {
        // Step up.
        let mut c = free();
        c.guardrails.max_step_up = 2;
        let mut r = runtime(always(UP8), c);
        let o = r.decide_explained(&snap(4, 0), SimTime(T0));
        assert_eq!(o.proposed, 12);
        assert_eq!(
            o.decision,
            Decision {
                replicas: 6,
                source: Source::Guardrail,
                reason: Reason::MaxStepUp
            }
        );
        // Step down.
        let mut c = free();
        c.guardrails.max_step_down = 1;
        let mut r = runtime(always(DOWN4), c);
        let o = r.decide_explained(&snap(8, 0), SimTime(T0));
        assert_eq!(
            (o.decision.replicas, o.decision.reason),
            (7, Reason::MaxStepDown)
        );
        // Max replicas: the mask keeps the model inside, the bound holds for the fallback too.
        let mut r = runtime(
            always(UP8),
            RuntimeConfig {
                max_replicas: 10,
                ..free()
            },
        );
        assert_eq!(
            r.decide_explained(&snap(9, 0), SimTime(T0))
                .decision
                .replicas,
            10
        );
    }

    #[test]
    fn scale_down_waits_for_the_stabilization_window() {
        let mut c = free();
        c.guardrails.scale_down_stabilization_s = 60.0;
        // Up first (proposal 9 at t0), then the model wants down every 15 s.
        let mut up = runtime(always(UP1), c.clone());
        let mut down = runtime(always(DOWN4), c);
        let o = up.decide_explained(&snap(8, 0), SimTime(T0));
        assert_eq!(o.decision.replicas, 9);
        down.set_target(9);
        down.guard = up.guard.clone();
        let mut got = Vec::new();
        for k in 1..=6 {
            let now = SimTime(T0 + 15.0 * f64::from(k));
            let mut s = snap(9, 0);
            s.time = now;
            let o = down.decide_explained(&s, now);
            got.push((o.decision.replicas, o.decision.reason));
        }
        // Held at 9 while the proposal of 9 is in the window (t0 + 15 .. t0 + 45), then down by 4.
        // (A fresh runtime with the up-runtime's proposals, to start from a known window.)
        assert_eq!(
            got,
            [
                (9, Reason::ScaleDownStabilization),
                (9, Reason::ScaleDownStabilization),
                (9, Reason::ScaleDownStabilization),
                (5, Reason::ScaleDown),
                // The proposals of 5 (t0 + 30 .. t0 + 60) now hold the next step down, as in HPA.
                (5, Reason::ScaleDownStabilization),
                (5, Reason::ScaleDownStabilization),
            ]
        );
    }

    #[test]
    fn no_cascade_while_replicas_start_unless_the_queue_justifies_it() {
        let mut c = free();
        c.guardrails.anti_cascade = true;
        let mut r = runtime(always(UP8), c.clone());
        // 4 ready + 4 starting for a load of 12 req/s = 4 replicas' worth: no more.
        let s = snap(4, 4);
        let o = r.decide_explained(&s, SimTime(T0));
        assert_eq!(
            (o.decision.replicas, o.decision.reason),
            (8, Reason::AntiCascade),
            "{:?}",
            o.chain
        );
        // A queue justifies more: it should drain within the SLO (10 s), so
        // 1.25 × (12 + 120 / 10) / 3 = 10.
        let mut r = runtime(always(UP8), c.clone());
        let mut s = snap(4, 4);
        s.queue_depth = 120.0;
        let o = r.decide_explained(&s, SimTime(T0));
        assert_eq!(
            (o.decision.replicas, o.decision.reason),
            (10, Reason::AntiCascade)
        );
        // With an explicit drain time: 1.25 × (12 + 1200 / 60) / 3 = 13.3 → 14. (A model trained on
        // wide queues, so that this one is in distribution.)
        let mut wide = always(UP8);
        wide.obs_norm.var = vec![1e4; N_FEATURES];
        c.guardrails.cascade_drain_s = Some(60.0);
        let mut r = runtime(wide, c);
        s.queue_depth = 1200.0;
        let o = r.decide_explained(&s, SimTime(T0));
        assert_eq!(
            (o.decision.replicas, o.decision.reason),
            (14, Reason::AntiCascade)
        );
        // Nothing starting: no clip.
        let mut r = runtime(always(UP8), {
            let mut c = free();
            c.guardrails.anti_cascade = true;
            c
        });
        assert_eq!(
            r.decide_explained(&snap(4, 0), SimTime(T0))
                .decision
                .replicas,
            12
        );
    }

    #[test]
    fn config_errors_name_the_field() {
        let mut c = RuntimeConfig::new(5, 2);
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .starts_with("min_replicas = 5")
        );
        c = RuntimeConfig::new(1, 4);
        c.guardrails.max_step_down = 0;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .starts_with("guardrails.max_step_down = 0")
        );
        c = RuntimeConfig::new(1, 4);
        c.max_staleness_s = f64::NAN;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .starts_with("max_staleness_s = NaN")
        );
        let text = "min_replicas = 1\nmax_replicas = 4\n[guardrails]\nmax_step_upp = 3\n";
        let e = toml::from_str::<RuntimeConfig>(text)
            .unwrap_err()
            .to_string();
        assert!(e.contains("max_step_upp"), "{e}");
    }

    fn any_f64() -> impl Strategy<Value = f64> {
        prop_oneof![
            3 => 0.0..1e4f64,
            1 => any::<f64>(),
            1 => Just(f64::NAN),
            1 => Just(f64::INFINITY),
            1 => -1e3..0.0f64,
        ]
    }

    prop_compose! {
        fn any_snapshot()(
            dt in prop_oneof![4 => 0.0..30.0f64, 1 => -1e3..1e4f64],
            rate in any_f64(), rate5 in any_f64(), queue in any_f64(), running in any_f64(),
            ready in prop_oneof![3 => 0u32..40, 1 => any::<u32>()],
            starting in prop_oneof![3 => 0u32..10, 1 => any::<u32>()],
            util in any_f64(), kv in any_f64(),
            p99 in proptest::option::of(any_f64()),
            cap in prop_oneof![4 => Just(3.0f64), 1 => any_f64()],
        ) -> (f64, MetricsSnapshot) {
            let mut s = MetricsSnapshot::idle(SimTime(T0), ready, profile());
            s.starting_replicas = starting;
            s.arrival_rate_1m = rate;
            s.arrival_rate_5m = rate5;
            s.queue_depth = queue;
            s.running = running;
            s.gpu_utilization = util;
            s.kv_cache_usage = kv;
            s.latency_p99_s = p99;
            s.profile.capacity_rps = cap;
            (dt, s)
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Any snapshots, garbage included, and any model: every decision lies in [min, max], moves by
        /// at most the step limits, never goes below the stabilization floor, and holds on bad inputs.
        #[test]
        fn any_snapshot_gives_a_guarded_decision(
            seq in proptest::collection::vec(any_snapshot(), 1..30),
            weights in proptest::collection::vec(-2.0f32..2.0, N_FEATURES * N_ACTIONS),
            has_model in any::<bool>(),
            min in 0u32..5, span in 0u32..30,
            up in 1u32..6, down in 1u32..6,
            window in prop_oneof![Just(0.0f64), Just(45.0), Just(300.0)],
        ) {
            let mut c = RuntimeConfig::new(min, (min + span).max(1));
            c.guardrails.max_step_up = up;
            c.guardrails.max_step_down = down;
            c.guardrails.scale_down_stabilization_s = window;
            let m = model(weights, vec![0.0; N_ACTIONS]);
            let m = if has_model { Ok(Arc::new(m)) } else { Err("none".to_string()) };
            let mut r = Runtime::new(m, c.clone(), "p").unwrap();
            let mut now = T0;
            let mut proposals: Vec<(f64, u32)> = Vec::new();
            for (dt, mut s) in seq {
                now += 15.0;
                s.time = SimTime(now - dt);
                let o = r.decide_explained(&s, SimTime(now));
                let n = o.decision.replicas;
                prop_assert!(n >= c.min_replicas && n <= c.max_replicas, "{n} outside bounds");
                prop_assert!(n <= o.from.saturating_add(up), "{} → {n} beyond +{up}", o.from);
                prop_assert!(n >= o.from.saturating_sub(down), "{} → {n} beyond -{down}", o.from);
                if !s.invalid_fields().is_empty() {
                    prop_assert_eq!(n, o.from);
                    prop_assert_eq!(o.decision.reason, Reason::InvalidInput);
                } else if o.decision.reason == Reason::StaleMetrics {
                    prop_assert_eq!(n, o.from);
                } else {
                    proposals.push((now, o.proposed));
                    if n < o.from && window > 0.0 {
                        let floor = proposals
                            .iter()
                            .filter(|p| p.0 > now - window)
                            .map(|p| p.1)
                            .max()
                            .unwrap();
                        prop_assert!(
                            n >= floor.min(o.from),
                            "{} → {n} below the window's highest proposal {floor}",
                            o.from
                        );
                    }
                }
                let shown = o.chain.iter().map(|n| n.to_string()).collect::<Vec<_>>();
                prop_assert!(!shown.is_empty());
            }
        }
    }
}
