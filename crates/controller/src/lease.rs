//! Leader election over a `coordination.k8s.io/v1` Lease, with client-go's `leaderelection` semantics,
//! so that of several controller replicas exactly one reconciles (and writes) at a time.
//!
//! - A candidate reads the Lease. It takes it when the Lease does not exist (create), when it has no
//!   holder, or when its record has not changed for `leaseDurationSeconds` **as observed locally**
//!   (client-go's rule: expiry is measured on the candidate's own monotonic clock from the moment it
//!   saw the record change, never by comparing the holder's `renewTime` with our wall clock, so clock
//!   skew between nodes cannot cause two leaders). Takeovers increment `leaseTransitions`.
//! - Every write is an update (PUT) carrying the `resourceVersion` that was read: of two candidates
//!   racing for an expired Lease the API server lets one win and answers the other 409.
//! - The leader renews every `retry_period`. When no renewal has succeeded for `renew_deadline`
//!   (< `lease_duration`), it stops leading before any other candidate can consider the Lease expired.
//! - On shutdown the leader releases the Lease as client-go does (`holderIdentity: ""`,
//!   `leaseDurationSeconds: 1`), so a standby takes over at its next retry instead of after a full
//!   lease duration.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::PostParams;
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

/// How to elect a leader.
#[derive(Debug, Clone, PartialEq)]
pub struct LeaseConfig {
    /// The Lease's name (`--leader-election-id`).
    pub name: String,
    /// The Lease's namespace.
    pub namespace: String,
    /// This candidate's identity (`holderIdentity`): the pod name in a cluster.
    pub identity: String,
    /// How long a Lease holds without renewal before others may take it.
    pub lease_duration: Duration,
    /// How long the leader keeps trying to renew before it gives up leading.
    pub renew_deadline: Duration,
    /// How often candidates try to acquire, and the leader renews.
    pub retry_period: Duration,
}

impl LeaseConfig {
    /// client-go's defaults: 15 s, 10 s, 2 s.
    pub fn new(name: &str, namespace: &str, identity: &str) -> Self {
        LeaseConfig {
            name: name.into(),
            namespace: namespace.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }

    /// client-go's checks: `lease_duration > renew_deadline > retry_period > 0`, names non-empty.
    pub fn validate(&self) -> Result<(), String> {
        if self.name.is_empty() || self.namespace.is_empty() || self.identity.is_empty() {
            return Err(format!(
                "leader election: the lease name ({:?}), namespace ({:?}) and identity ({:?}) must not be empty",
                self.name, self.namespace, self.identity
            ));
        }
        if self.retry_period.is_zero() {
            return Err("leader election: --retry-period must be > 0".into());
        }
        if self.renew_deadline <= self.retry_period {
            return Err(format!(
                "leader election: --renew-deadline ({:?}) must be greater than --retry-period ({:?})",
                self.renew_deadline, self.retry_period
            ));
        }
        if self.lease_duration <= self.renew_deadline {
            return Err(format!(
                "leader election: --lease-duration ({:?}) must be greater than --renew-deadline ({:?})",
                self.lease_duration, self.renew_deadline
            ));
        }
        if self.lease_duration.as_secs() > i32::MAX as u64 || self.lease_duration.as_secs() == 0 {
            return Err(format!(
                "leader election: --lease-duration ({:?}) must be between 1 s and i32::MAX s",
                self.lease_duration
            ));
        }
        Ok(())
    }
}

/// The advice logged, once, when the API server forbids the Lease (403): without
/// `--leader-election-namespace` or `$POD_NAMESPACE` the Lease goes to `default`, where the shipped
/// RBAC (`deploy/rbac.yaml`: Leases in the controller's own namespace only) refuses it, and a candidate
/// would otherwise retry with a 403 every `retry_period`, forever.
pub fn forbidden_advice(cfg: &LeaseConfig) -> String {
    format!(
        "the API server forbids this controller the Lease {ns}/{name} (403), so it cannot lead and \
         reconciles nothing. The shipped RBAC (deploy/rbac.yaml) grants Leases in the controller's own \
         namespace (rlscale-system) only: run with --leader-election-namespace=<that namespace>, or set the \
         POD_NAMESPACE environment variable (deploy/deployment.yaml sets it from the pod's \
         metadata.namespace), or grant Leases in namespace {ns:?}. Retrying every {retry:?}; further \
         403s are logged at DEBUG only",
        ns = cfg.namespace,
        name = cfg.name,
        retry = cfg.retry_period,
    )
}

/// Why an attempt failed.
#[derive(Debug)]
enum Failure {
    /// The API answered with an error, or could not be reached.
    Kube(kube::Error),
    /// No answer within the limit.
    Timeout(Duration),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Kube(e) => e.fmt(f),
            Failure::Timeout(limit) => write!(f, "no answer within {limit:?}"),
        }
    }
}

impl Failure {
    fn forbidden(&self) -> bool {
        matches!(self, Failure::Kube(kube::Error::Api(s)) if s.code == 403)
    }
}

/// What one attempt found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// We hold the Lease now (acquired or renewed).
    Held,
    /// Someone else holds it and it has not expired (their identity), or we lost a race (409).
    Other(String),
}

/// The part of a Lease record whose change proves its holder alive.
type Record = (
    Option<String>,
    Option<Timestamp>,
    Option<Timestamp>,
    Option<i32>,
);

fn record(spec: &LeaseSpec) -> Record {
    (
        spec.holder_identity.clone(),
        spec.renew_time.as_ref().map(|t| t.0),
        spec.acquire_time.as_ref().map(|t| t.0),
        spec.lease_transitions,
    )
}

/// One candidate.
pub struct LeaderElector {
    api: Api<Lease>,
    cfg: LeaseConfig,
    /// Wall-clock time (Unix seconds) for the Lease's timestamps; expiry uses the monotonic clock.
    clock: Arc<dyn Fn() -> f64 + Send + Sync>,
    observed: Option<(Record, Instant)>,
    leading: bool,
    /// Whether a 403 has been logged (with [`forbidden_advice`]); later ones are not.
    forbidden_logged: bool,
}

impl std::fmt::Debug for LeaderElector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaderElector")
            .field("cfg", &self.cfg)
            .field("leading", &self.leading)
            .finish()
    }
}

fn micro(unix_s: f64) -> MicroTime {
    let us = (unix_s * 1e6).round() as i64;
    MicroTime(Timestamp::from_microsecond(us).unwrap_or(Timestamp::UNIX_EPOCH))
}

impl LeaderElector {
    /// A candidate for `cfg` (validate it first) using `client`.
    pub fn new(
        client: kube::Client,
        cfg: LeaseConfig,
        clock: Arc<dyn Fn() -> f64 + Send + Sync>,
    ) -> Self {
        LeaderElector {
            api: Api::namespaced(client, &cfg.namespace),
            cfg,
            clock,
            observed: None,
            leading: false,
            forbidden_logged: false,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &LeaseConfig {
        &self.cfg
    }

    /// Whether the last attempt left us holding the Lease.
    pub fn is_leading(&self) -> bool {
        self.leading
    }

    /// One acquire-or-renew attempt (client-go's `tryAcquireOrRenew`).
    pub async fn try_acquire_or_renew(&mut self) -> Result<Attempt, kube::Error> {
        let now = (self.clock)();
        let me = self.cfg.identity.clone();
        let duration_s = self.cfg.lease_duration.as_secs() as i32;
        let Some(mut lease) = self.api.get_opt(&self.cfg.name).await? else {
            let spec = LeaseSpec {
                holder_identity: Some(me.clone()),
                lease_duration_seconds: Some(duration_s),
                acquire_time: Some(micro(now)),
                renew_time: Some(micro(now)),
                lease_transitions: Some(0),
                ..Default::default()
            };
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.cfg.name.clone()),
                    namespace: Some(self.cfg.namespace.clone()),
                    ..Default::default()
                },
                spec: Some(spec.clone()),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => {
                    self.observed = Some((record(&spec), Instant::now()));
                    self.leading = true;
                    Ok(Attempt::Held)
                }
                Err(kube::Error::Api(s)) if s.code == 409 => {
                    self.leading = false;
                    Ok(Attempt::Other("(created concurrently)".into()))
                }
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let rec = record(&spec);
        let seen_at = match &self.observed {
            Some((r, at)) if *r == rec => *at,
            _ => {
                let at = Instant::now();
                self.observed = Some((rec, at));
                at
            }
        };
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let held_by_me = holder.as_deref() == Some(me.as_str());
        if let Some(other) = holder.as_ref().filter(|_| !held_by_me) {
            let their_duration = Duration::from_secs(
                spec.lease_duration_seconds.unwrap_or(duration_s).max(1) as u64,
            );
            if seen_at + their_duration > Instant::now() {
                self.leading = false;
                return Ok(Attempt::Other(other.clone()));
            }
        }
        let mut new = spec.clone();
        new.holder_identity = Some(me.clone());
        new.lease_duration_seconds = Some(duration_s);
        new.renew_time = Some(micro(now));
        if !held_by_me {
            new.acquire_time = Some(micro(now));
            new.lease_transitions = Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
        }
        lease.spec = Some(new.clone());
        match self
            .api
            .replace(&self.cfg.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => {
                if !held_by_me {
                    info!(lease = %self.cfg.name, previous = ?holder, identity = %me, "acquired the leader lease");
                }
                self.observed = Some((record(&new), Instant::now()));
                self.leading = true;
                Ok(Attempt::Held)
            }
            Err(kube::Error::Api(s)) if s.code == 409 => {
                // Someone wrote the Lease since we read it.
                self.leading = false;
                Ok(Attempt::Other(
                    holder.unwrap_or_else(|| "(updated concurrently)".into()),
                ))
            }
            Err(e) => Err(e),
        }
    }

    /// One attempt bounded by `limit` (a hung API server counts as a failed attempt).
    async fn attempt(&mut self, limit: Duration) -> Result<Attempt, Failure> {
        match tokio::time::timeout(limit, self.try_acquire_or_renew()).await {
            Ok(Ok(a)) => Ok(a),
            Ok(Err(e)) => Err(Failure::Kube(e)),
            Err(_) => Err(Failure::Timeout(limit)),
        }
    }

    /// Log a failed attempt (`what`: "cannot acquire …"). A 403 will not go away by retrying: the
    /// first is logged at ERROR with [`forbidden_advice`], the rest at DEBUG.
    fn log_failure(&mut self, what: &str, e: &Failure) {
        let lease = format!("{}/{}", self.cfg.namespace, self.cfg.name);
        if e.forbidden() {
            if !self.forbidden_logged {
                self.forbidden_logged = true;
                error!(%lease, error = %e, "{}", forbidden_advice(&self.cfg));
            } else {
                debug!(%lease, error = %e, "{what}");
            }
            return;
        }
        warn!(%lease, error = %e, "{what}");
    }

    /// Try every `retry_period` until we lead (true) or `stop` fires (false).
    pub async fn acquire(&mut self, mut stop: tokio::sync::watch::Receiver<bool>) -> bool {
        let mut last_other = None;
        loop {
            if *stop.borrow() {
                return false;
            }
            match self.attempt(self.cfg.renew_deadline).await {
                Ok(Attempt::Held) => return true,
                Ok(Attempt::Other(who)) => {
                    if last_other.as_ref() != Some(&who) {
                        info!(lease = %self.cfg.name, holder = %who, "standing by: the leader lease is held");
                        last_other = Some(who);
                    }
                }
                Err(e) => self.log_failure("cannot acquire the leader lease", &e),
            }
            tokio::select! {
                _ = tokio::time::sleep(self.cfg.retry_period) => {}
                _ = stop.wait_for(|s| *s) => return false,
            }
        }
    }

    /// Renew every `retry_period` while we lead; returns why leadership was lost.
    pub async fn hold(&mut self) -> String {
        let mut last_renew = Instant::now();
        loop {
            tokio::time::sleep(self.cfg.retry_period).await;
            let left =
                (last_renew + self.cfg.renew_deadline).saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.leading = false;
                return format!(
                    "no renewal succeeded within --renew-deadline ({:?})",
                    self.cfg.renew_deadline
                );
            }
            match self.attempt(left).await {
                Ok(Attempt::Held) => last_renew = Instant::now(),
                Ok(Attempt::Other(who)) => {
                    self.leading = false;
                    return format!("the lease is now held by {who}");
                }
                Err(e) => self.log_failure("cannot renew the leader lease", &e),
            }
        }
    }

    /// Give the Lease up (client-go's release): only if we still hold it.
    pub async fn release(&mut self) {
        if !self.leading {
            return;
        }
        self.leading = false;
        let limit = self.cfg.renew_deadline;
        let result = tokio::time::timeout(limit, async {
            let Some(mut lease) = self.api.get_opt(&self.cfg.name).await? else {
                return Ok::<_, kube::Error>(false);
            };
            let spec = lease.spec.clone().unwrap_or_default();
            if spec.holder_identity.as_deref() != Some(self.cfg.identity.as_str()) {
                return Ok(false);
            }
            let now = micro((self.clock)());
            lease.spec = Some(LeaseSpec {
                holder_identity: Some(String::new()),
                lease_duration_seconds: Some(1),
                acquire_time: Some(now.clone()),
                renew_time: Some(now),
                ..spec
            });
            self.api
                .replace(&self.cfg.name, &PostParams::default(), &lease)
                .await?;
            Ok(true)
        })
        .await;
        match result {
            Ok(Ok(true)) => info!(lease = %self.cfg.name, "released the leader lease"),
            Ok(Ok(false)) => {}
            Ok(Err(e)) => {
                warn!(lease = %self.cfg.name, error = %e, "cannot release the leader lease")
            }
            Err(_) => {
                warn!(lease = %self.cfg.name, "cannot release the leader lease: no answer in time")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rlscale_testenv::{Fault, TestApiServer};
    use std::sync::Mutex;

    /// Log output captured in memory.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Captured {
            self.clone()
        }
    }

    /// Issue 18: without `POD_NAMESPACE` or `--leader-election-namespace` the Lease goes to `default`,
    /// where the shipped RBAC answers 403 forever. The candidate keeps trying, and says so once, at
    /// ERROR, naming the Lease, the flag and the variable to set.
    #[tokio::test]
    async fn a_forbidden_lease_is_logged_once_with_what_to_set() {
        let logs = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(logs.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let api = TestApiServer::start().await.unwrap();
        api.inject(Fault::status("/leases", 403));
        let client = kube::Client::try_from(kube::Config::new(api.url().parse().unwrap())).unwrap();
        let mut cfg = LeaseConfig::new("rlscale-controller", "default", "me");
        cfg.retry_period = Duration::from_millis(20);
        cfg.renew_deadline = Duration::from_millis(500);
        cfg.lease_duration = Duration::from_secs(1);
        let mut elector = LeaderElector::new(client, cfg, Arc::new(|| 1.7e9));
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let stopper = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(400)).await;
            let _ = stop.send(true);
        });
        assert!(!elector.acquire(stopped).await, "a 403 never leads");
        stopper.await.unwrap();
        let refused = api
            .requests()
            .iter()
            .filter(|r| r.resource == "leases" && r.status == 403)
            .count();
        assert!(refused >= 3, "it kept trying: {refused} attempts");
        let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
        let about_the_lease: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("default/rlscale-controller"))
            .collect();
        assert_eq!(about_the_lease.len(), 1, "logged once:\n{text}");
        let line = about_the_lease[0];
        for needle in [
            "ERROR",
            "403",
            "--leader-election-namespace",
            "POD_NAMESPACE",
            "deploy/rbac.yaml",
        ] {
            assert!(line.contains(needle), "{needle} missing: {line}");
        }
    }
}
