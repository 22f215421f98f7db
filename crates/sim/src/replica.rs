//! One GPU replica: its lifecycle phase and its processor-sharing service.
//!
//! Service is processor sharing over the replica's batch slots: with `n` requests in flight, each receives
//! `speed[n] = throughput(n) / n` units of work per second. It is simulated with a virtual clock `vtime`
//! that advances at `speed[n]`: a request admitted at virtual time `v` with work `w` finishes when `vtime`
//! reaches `v + w`, so the next departure is the smallest tag in a min-heap and only the head needs
//! attention when `n` changes (O(log n) per arrival or departure, no per-request updates).

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Lifecycle phase of a replica: Pending → Provisioning → Loading → Ready → Draining → (gone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Requested, waiting for a GPU (capacity limit or stockout). Not billed.
    Pending,
    /// A node is being provisioned. Billed.
    Provisioning,
    /// Image pull and model load. Billed.
    Loading,
    /// Serving. Billed.
    Ready,
    /// Scaled down: serves its in-flight requests, takes no new ones, then is gone. Billed.
    Draining,
}

/// A request in service.
#[derive(Debug, Clone, Copy)]
pub struct Job {
    /// Virtual finish time.
    pub tag: f64,
    /// Arrival time, simulated seconds.
    pub arrival: f64,
    /// Time to first token, seconds (wait + prefill at admission speed).
    pub ttft: f64,
}

impl PartialEq for Job {
    fn eq(&self, other: &Self) -> bool {
        self.tag.total_cmp(&other.tag) == Ordering::Equal
    }
}
impl Eq for Job {}
impl PartialOrd for Job {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Job {
    /// Reversed, so that `BinaryHeap` (a max-heap) pops the smallest tag first.
    fn cmp(&self, other: &Self) -> Ordering {
        other.tag.total_cmp(&self.tag)
    }
}

/// One replica.
#[derive(Debug, Clone)]
pub struct Replica {
    /// Creation order, unique within an episode.
    pub id: u64,
    /// Current phase.
    pub phase: Phase,
    /// End of the current Provisioning or Loading phase, simulated seconds.
    pub phase_until: f64,
    /// Image pull + model load duration, drawn when the replica starts.
    pub load_s: f64,
    /// Billed up to this time (None while Pending).
    pub billed_until: Option<f64>,
    /// Requests in service.
    pub jobs: BinaryHeap<Job>,
    /// Virtual clock of the processor-sharing server.
    pub vtime: f64,
    /// Time up to which `vtime` and the integrals are current.
    pub last_t: f64,
    /// Seconds with at least one request in service since the last scrape.
    pub busy_s: f64,
    /// ∫ n dt since the last scrape (request-seconds in service).
    pub conc_s: f64,
    /// Seconds spent Ready or Draining since the last scrape.
    pub serving_s: f64,
}

impl Replica {
    /// A new replica in `phase` at time `t`.
    pub fn new(id: u64, phase: Phase, t: f64) -> Self {
        Replica {
            id,
            phase,
            phase_until: f64::INFINITY,
            load_s: 0.0,
            billed_until: None,
            jobs: BinaryHeap::new(),
            vtime: 0.0,
            last_t: t,
            busy_s: 0.0,
            conc_s: 0.0,
            serving_s: 0.0,
        }
    }

    /// Requests in service.
    #[inline]
    pub fn n(&self) -> usize {
        self.jobs.len()
    }

    /// Bring the virtual clock and the integrals up to `t`.
    #[inline]
    pub fn advance(&mut self, t: f64, speed: &[f64]) {
        let dt = t - self.last_t;
        if dt > 0.0 {
            let n = self.jobs.len();
            if n > 0 {
                self.vtime += dt * speed[n];
                self.busy_s += dt;
                self.conc_s += dt * n as f64;
            }
            if matches!(self.phase, Phase::Ready | Phase::Draining) {
                self.serving_s += dt;
            }
            self.last_t = t;
        }
    }

    /// Time of the next event of this replica: a phase change while starting, else the next departure.
    #[inline]
    pub fn next_event(&self, speed: &[f64]) -> f64 {
        match self.phase {
            Phase::Provisioning | Phase::Loading => self.phase_until,
            Phase::Pending => f64::INFINITY,
            Phase::Ready | Phase::Draining => match self.jobs.peek() {
                Some(j) => self.last_t + ((j.tag - self.vtime).max(0.0)) / speed[self.jobs.len()],
                None => f64::INFINITY,
            },
        }
    }

    /// Admit a request with `work` at time `t` (the replica must have been advanced to `t`). Returns the
    /// per-request speed at admission (work units/s).
    #[inline]
    pub fn admit(&mut self, arrival: f64, work: f64, prefill: f64, t: f64, speed: &[f64]) -> f64 {
        let s = speed[self.jobs.len() + 1];
        self.jobs.push(Job {
            tag: self.vtime + work,
            arrival,
            ttft: (t - arrival) + prefill / s,
        });
        s
    }

    /// Remove the request that finishes first (the replica must have been advanced to its finish time).
    #[inline]
    pub fn depart(&mut self) -> Option<Job> {
        let j = self.jobs.pop()?;
        // Snap the clock to the tag: removes the rounding drift of `advance`.
        if j.tag > self.vtime {
            self.vtime = j.tag;
        }
        Some(j)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processor_sharing_two_jobs() {
        // Constant throughput 1 req/s whatever n: speed[n] = 1/n.
        let speed = [0.0, 1.0, 0.5, 1.0 / 3.0];
        let mut r = Replica::new(0, Phase::Ready, 0.0);
        r.admit(0.0, 1.0, 0.0, 0.0, &speed);
        r.advance(0.5, &speed); // first job half done
        r.admit(0.5, 1.0, 0.0, 0.5, &speed);
        // Two jobs share: the first needs 0.5 more at speed 0.5 → finishes at 1.5.
        assert!((r.next_event(&speed) - 1.5).abs() < 1e-12);
        r.advance(1.5, &speed);
        let j = r.depart().unwrap();
        assert_eq!(j.arrival, 0.0);
        // The second has 0.5 left, alone at speed 1 → 2.0.
        assert!((r.next_event(&speed) - 2.0).abs() < 1e-12);
        assert!((r.busy_s - 1.5).abs() < 1e-12);
        assert!((r.conc_s - 2.5).abs() < 1e-12);
    }
}
