//! The actor-critic network: two tanh MLPs (cleanrl's `Agent` for discrete actions), initialised as
//! cleanrl's `layer_init` does (orthogonal weights, zero biases; gain √2 for hidden layers, 0.01 for the
//! policy head, 1 for the value head).
//!
//! The initial weights come from a ChaCha8 stream of the run's seed, not burn's global RNG, so the same
//! seed gives the same network whatever else runs in the process.

use burn::module::Param;
use burn::nn::Linear;
use burn::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution as _, StandardNormal};
pub use rlscale_runtime::Dense;

/// A tanh MLP: tanh after every layer but the last.
#[derive(Module, Debug)]
pub struct Mlp {
    layers: Vec<Linear>,
}

impl Mlp {
    /// Apply the MLP to `[batch, d_in]`.
    pub fn forward(&self, mut x: Tensor<2>) -> Tensor<2> {
        let last = self.layers.len().saturating_sub(1);
        for (i, l) in self.layers.iter().enumerate() {
            x = l.forward(x);
            if i < last {
                x = x.tanh();
            }
        }
        x
    }

    /// Build from plain layers on `device`.
    pub fn from_dense(layers: &[Dense], device: &Device) -> Self {
        let layers = layers
            .iter()
            .map(|d| Linear {
                weight: Param::from_tensor(Tensor::from_data(
                    TensorData::new(d.weight.clone(), [d.d_in, d.d_out]),
                    device,
                )),
                bias: Some(Param::from_tensor(Tensor::from_data(
                    TensorData::new(d.bias.clone(), [d.d_out]),
                    device,
                ))),
            })
            .collect();
        Mlp { layers }
    }

    /// The layers as plain numbers.
    pub fn to_dense(&self) -> Vec<Dense> {
        self.layers
            .iter()
            .map(|l| {
                let w = l.weight.val();
                let [d_in, d_out] = w.dims();
                let weight = w.into_data().try_to_vec::<f32>().expect("f32 weights");
                let bias = match &l.bias {
                    Some(b) => b.val().into_data().try_to_vec::<f32>().expect("f32 bias"),
                    None => vec![0.0; d_out],
                };
                Dense {
                    d_in,
                    d_out,
                    weight,
                    bias,
                }
            })
            .collect()
    }
}

/// Policy (logits) and value heads.
#[derive(Module, Debug)]
pub struct ActorCritic {
    /// Observation → action logits.
    pub actor: Mlp,
    /// Observation → state value.
    pub critic: Mlp,
}

impl ActorCritic {
    /// A fresh network for `obs_dim` inputs, `hidden` layer sizes and `n_actions` outputs, with one
    /// value head, from `seed`.
    pub fn new(
        obs_dim: usize,
        hidden: &[usize],
        n_actions: usize,
        seed: u64,
        device: &Device,
    ) -> Self {
        Self::with_value_heads(obs_dim, hidden, n_actions, 1, seed, device)
    }

    /// As [`ActorCritic::new`], with `value_heads` outputs on the critic (2 for a split critic: GPU
    /// cost and SLO violations, each its own return).
    pub fn with_value_heads(
        obs_dim: usize,
        hidden: &[usize],
        n_actions: usize,
        value_heads: usize,
        seed: u64,
        device: &Device,
    ) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut mlp = |out: usize, out_gain: f64| {
            let mut sizes = vec![obs_dim];
            sizes.extend_from_slice(hidden);
            sizes.push(out);
            let n = sizes.len() - 1;
            let layers: Vec<Dense> = (0..n)
                .map(|i| {
                    let gain = if i + 1 == n { out_gain } else { 2f64.sqrt() };
                    orthogonal(sizes[i], sizes[i + 1], gain, &mut rng)
                })
                .collect();
            Mlp::from_dense(&layers, device)
        };
        let actor = mlp(n_actions, 0.01);
        let critic = mlp(value_heads, 1.0);
        ActorCritic { actor, critic }
    }

    /// Logits `[batch, n_actions]`.
    pub fn logits(&self, obs: Tensor<2>) -> Tensor<2> {
        self.actor.forward(obs)
    }

    /// Values `[batch]` (the first head's).
    pub fn value(&self, obs: Tensor<2>) -> Tensor<1> {
        let v = self.values(obs);
        let [b, _] = v.dims();
        v.narrow(1, 0, 1).reshape([b])
    }

    /// Every value head, `[batch, heads]`.
    pub fn values(&self, obs: Tensor<2>) -> Tensor<2> {
        self.critic.forward(obs)
    }
}

/// A `[d_in → d_out]` layer with orthogonal weights scaled by `gain` and zero bias, as
/// `torch.nn.init.orthogonal_` makes it: QR (here Gram–Schmidt) of a Gaussian matrix of the larger
/// dimension by the smaller, so the rows or the columns are orthonormal, whichever there are fewer of.
pub fn orthogonal(d_in: usize, d_out: usize, gain: f64, rng: &mut ChaCha8Rng) -> Dense {
    let (m, k) = (d_in.max(d_out), d_in.min(d_out));
    // Columns of an m×k Gaussian matrix, orthonormalised in turn (modified Gram–Schmidt).
    let mut cols: Vec<Vec<f64>> = Vec::with_capacity(k);
    while cols.len() < k {
        let mut v: Vec<f64> = (0..m).map(|_| StandardNormal.sample(&mut *rng)).collect();
        for c in &cols {
            let dot: f64 = v.iter().zip(c).map(|(a, b)| a * b).sum();
            for (a, b) in v.iter_mut().zip(c) {
                *a -= dot * b;
            }
        }
        let norm = v.iter().map(|a| a * a).sum::<f64>().sqrt();
        if norm > 1e-6 {
            v.iter_mut().for_each(|a| *a /= norm);
            cols.push(v);
        }
    }
    let mut weight = vec![0.0f32; d_in * d_out];
    for i in 0..d_in {
        for o in 0..d_out {
            // torch's weight is [out, in]; with out ≥ in it is Q (m = out), else Qᵀ (m = in).
            let q = if d_out >= d_in {
                cols[i][o]
            } else {
                cols[o][i]
            };
            weight[i * d_out + o] = (gain * q) as f32;
        }
    }
    Dense {
        d_in,
        d_out,
        weight,
        bias: vec![0.0; d_out],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orthogonal_layers_have_orthonormal_rows_or_columns() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for (d_in, d_out) in [(22, 64), (64, 64), (64, 8), (4, 2)] {
            let l = orthogonal(d_in, d_out, 1.0, &mut rng);
            let w = |i: usize, o: usize| f64::from(l.weight[i * d_out + o]);
            // The smaller side is orthonormal: columns (per output) if d_out ≤ d_in, else rows.
            let (n, len) = if d_out <= d_in {
                (d_out, d_in)
            } else {
                (d_in, d_out)
            };
            let vec_of = |a: usize, t: usize| if d_out <= d_in { w(t, a) } else { w(a, t) };
            for a in 0..n {
                for b in 0..n {
                    let dot: f64 = (0..len).map(|t| vec_of(a, t) * vec_of(b, t)).sum();
                    let want = if a == b { 1.0 } else { 0.0 };
                    assert!((dot - want).abs() < 1e-5, "{d_in}x{d_out} {a},{b}: {dot}");
                }
            }
            assert!(l.bias.iter().all(|&b| b == 0.0));
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_network_and_dense_round_trips() {
        let dev = Device::default();
        let a = ActorCritic::new(4, &[64, 64], 2, 7, &dev);
        let b = ActorCritic::new(4, &[64, 64], 2, 7, &dev);
        let c = ActorCritic::new(4, &[64, 64], 2, 8, &dev);
        assert_eq!(a.actor.to_dense(), b.actor.to_dense());
        assert_ne!(a.actor.to_dense(), c.actor.to_dense());
        let again = Mlp::from_dense(&a.critic.to_dense(), &dev);
        assert_eq!(again.to_dense(), a.critic.to_dense());
        let x =
            Tensor::<2>::from_data(TensorData::new(vec![0.1f32, -0.2, 0.3, 0.05], [1, 4]), &dev);
        let l = a.logits(x.clone()).into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(l.len(), 2);
        // Policy head gain 0.01: near-uniform logits at the start.
        assert!(l.iter().all(|v| v.abs() < 0.1), "{l:?}");
        assert_eq!(a.value(x).dims(), [1]);
    }
}
