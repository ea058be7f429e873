//! AdamW as PyTorch computes it (decoupled weight decay, bias-corrected moments), with a
//! no-decay group, global-norm gradient clipping and a state that is saved and restored, so a
//! resumed run continues bit for bit. Parameters are kept in name order, which fixes the order
//! of every reduction over them.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{backprop::GradStore, DType, Device, Tensor, Var};
use serde::{Deserialize, Serialize};

use super::host_adamw::{step_in_place, sum_squares, Update};
use crate::error::{Error, Result};

/// AdamW settings (the paper's by default).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OptimConfig {
    /// β₁.
    #[serde(default = "beta1")]
    pub beta1: f64,
    /// β₂.
    #[serde(default = "beta2")]
    pub beta2: f64,
    /// ε.
    #[serde(default = "eps")]
    pub eps: f64,
    /// Decoupled weight decay.
    #[serde(default = "weight_decay")]
    pub weight_decay: f64,
    /// Also decay the norm weights (default: no, the usual no-decay group).
    #[serde(default)]
    pub decay_norms: bool,
    /// Also decay the embedding (default: yes, as nanoGPT and the paper's code).
    #[serde(default = "yes")]
    pub decay_embeddings: bool,
    /// Clip the global gradient norm to this value (0: no clipping).
    #[serde(default = "clip")]
    pub grad_clip: f64,
}

fn beta1() -> f64 {
    0.9
}
fn beta2() -> f64 {
    0.95
}
fn eps() -> f64 {
    1e-5
}
fn weight_decay() -> f64 {
    0.1
}
fn yes() -> bool {
    true
}
fn clip() -> f64 {
    1.0
}

impl Default for OptimConfig {
    /// The paper's: β = (0.9, 0.95), ε = 1e-5, weight decay 0.1, clipping at 1.0.
    fn default() -> Self {
        Self {
            beta1: beta1(),
            beta2: beta2(),
            eps: eps(),
            weight_decay: weight_decay(),
            decay_norms: false,
            decay_embeddings: true,
            grad_clip: clip(),
        }
    }
}

impl OptimConfig {
    /// Checks the ranges.
    pub fn validate(&self) -> Result<()> {
        for (f, v) in [("optim.beta1", self.beta1), ("optim.beta2", self.beta2)] {
            if !(0.0..1.0).contains(&v) {
                return Err(Error::config(f, format!("{v} is not in [0, 1)")));
            }
        }
        for (f, v) in [
            ("optim.eps", self.eps),
            ("optim.weight_decay", self.weight_decay),
            ("optim.grad_clip", self.grad_clip),
        ] {
            if v.is_nan() || v < 0.0 {
                return Err(Error::config(f, format!("{v} must be ≥ 0")));
            }
        }
        Ok(())
    }

    /// Whether the parameter `name` is decayed.
    pub fn decays(&self, name: &str) -> bool {
        if name.ends_with("norm.weight") {
            self.decay_norms
        } else if name.contains("embed_tokens") {
            self.decay_embeddings
        } else {
            true
        }
    }
}

/// The moments of one parameter: plain vectors updated in one fused loop for f32 CPU
/// parameters, tensors (composed ops) elsewhere.
enum Moments {
    Host { m: Vec<f32>, v: Vec<f32> },
    Device { m: Tensor, v: Tensor },
}

struct Slot {
    name: String,
    var: Var,
    moments: Moments,
    decay: bool,
}

fn zero_moments(var: &Var) -> Result<Moments> {
    let t = var.as_tensor();
    Ok(if t.device().is_cpu() && t.dtype() == DType::F32 {
        Moments::Host {
            m: vec![0.0; t.elem_count()],
            v: vec![0.0; t.elem_count()],
        }
    } else {
        Moments::Device {
            m: t.zeros_like()?,
            v: t.zeros_like()?,
        }
    })
}

/// AdamW over named variables.
pub struct AdamW {
    slots: Vec<Slot>,
    cfg: OptimConfig,
    /// Updates done so far.
    pub step: usize,
}

/// Gradients of the parameters, in the optimizer's order (summed over micro-batches).
pub struct Grads(pub Vec<Tensor>);

impl AdamW {
    /// An optimizer for `vars` (sorted by name, see `model::sorted_vars`), moments at 0.
    pub fn new(vars: Vec<(String, Var)>, cfg: &OptimConfig) -> Result<Self> {
        let slots = vars
            .into_iter()
            .map(|(name, var)| {
                Ok(Slot {
                    decay: cfg.decays(&name),
                    moments: zero_moments(&var)?,
                    name,
                    var,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            slots,
            cfg: cfg.clone(),
            step: 0,
        })
    }

    /// The gradients of every parameter from `store` (an error names a parameter without one:
    /// an op without backward upstream).
    pub fn grads(&self, store: &GradStore) -> Result<Grads> {
        self.slots
            .iter()
            .map(|s| {
                store.get(s.var.as_tensor()).cloned().ok_or_else(|| {
                    Error::config(
                        s.name.clone(),
                        "received no gradient: an op without backward is on its path",
                    )
                })
            })
            .collect::<Result<_>>()
            .map(Grads)
    }

    /// Zero gradients for every parameter (a data-parallel rank that had no rows this step).
    pub fn zero_grads(&self) -> Result<Grads> {
        self.slots
            .iter()
            .map(|s| Ok(s.var.as_tensor().zeros_like()?))
            .collect::<Result<_>>()
            .map(Grads)
    }

    /// Adds `other` to `acc` (gradient accumulation).
    pub fn accumulate(acc: Option<Grads>, other: Grads) -> Result<Grads> {
        match acc {
            None => Ok(other),
            Some(Grads(a)) => Ok(Grads(
                a.iter()
                    .zip(&other.0)
                    .map(|(x, y)| x + y)
                    .collect::<candle_core::Result<_>>()?,
            )),
        }
    }

    /// The global L2 norm of `grads` (sums of squares in f64, combined in a fixed order, so
    /// the result does not depend on the thread count's split).
    pub fn grad_norm(grads: &Grads) -> Result<f64> {
        let mut total = 0.0f64;
        for g in &grads.0 {
            total += if g.device().is_cpu() && g.dtype() == DType::F32 {
                sum_squares(g)?
            } else {
                f64::from(g.to_dtype(DType::F32)?.sqr()?.sum_all()?.to_scalar::<f32>()?)
            };
        }
        Ok(total.sqrt())
    }

    /// One update at learning rate `lr`, after clipping `grads` to the configured global norm
    /// (PyTorch's `clip_grad_norm_`: scale by max / (norm + 1e-6) when above). `norm` is the
    /// norm before clipping.
    pub fn step(&mut self, grads: &Grads, norm: f64, lr: f64) -> Result<()> {
        let c = &self.cfg;
        let scale = if c.grad_clip > 0.0 && norm > c.grad_clip {
            c.grad_clip / (norm + 1e-6)
        } else {
            1.0
        };
        self.step += 1;
        let t = self.step as i32;
        let (bc1, bc2) = (1.0 - c.beta1.powi(t), 1.0 - c.beta2.powi(t));
        let wd = if c.weight_decay > 0.0 { lr * c.weight_decay } else { 0.0 };
        for (slot, g) in self.slots.iter_mut().zip(&grads.0) {
            let decay = if slot.decay { wd } else { 0.0 };
            match &mut slot.moments {
                Moments::Host { m, v } => {
                    let update = Update {
                        beta1: c.beta1 as f32,
                        beta2: c.beta2 as f32,
                        eps: c.eps as f32,
                        keep: (1.0 - decay) as f32,
                        step: (lr / bc1) as f32,
                        sqrt_bc2: bc2.sqrt() as f32,
                        scale: scale as f32,
                    };
                    step_in_place(slot.var.as_tensor(), g, m, v, update)?;
                }
                Moments::Device { m, v } => {
                    let g = if scale == 1.0 { g.clone() } else { (g * scale)? };
                    *m = ((&*m * c.beta1)? + (&g * (1.0 - c.beta1))?)?;
                    *v = ((&*v * c.beta2)? + (g.sqr()? * (1.0 - c.beta2))?)?;
                    let mut theta = slot.var.as_tensor().clone();
                    if decay > 0.0 {
                        theta = (theta * (1.0 - decay))?;
                    }
                    let denom = ((v.sqrt()? / bc2.sqrt())? + c.eps)?;
                    let update = ((&*m / denom)? * (lr / bc1))?;
                    slot.var.set(&(theta - update)?)?;
                }
            }
        }
        Ok(())
    }

    /// Zeroes the moments and the step count (a phase switch with `reset_optimizer`).
    pub fn reset(&mut self) -> Result<()> {
        for slot in &mut self.slots {
            slot.moments = zero_moments(&slot.var)?;
        }
        self.step = 0;
        Ok(())
    }

    /// The moments as named tensors (`{name}.exp_avg`, `{name}.exp_avg_sq`).
    pub fn state(&self) -> Result<HashMap<String, Tensor>> {
        let mut out = HashMap::new();
        for s in &self.slots {
            let t = s.var.as_tensor();
            let (m, v) = match &s.moments {
                Moments::Host { m, v } => (
                    Tensor::from_slice(m, t.shape(), t.device())?,
                    Tensor::from_slice(v, t.shape(), t.device())?,
                ),
                Moments::Device { m, v } => (m.clone(), v.clone()),
            };
            out.insert(format!("{}.exp_avg", s.name), m);
            out.insert(format!("{}.exp_avg_sq", s.name), v);
        }
        Ok(out)
    }

    /// Restores the moments saved by [`AdamW::state`] from `path` and the step count.
    pub fn load_state(&mut self, path: &Path, step: usize, device: &Device) -> Result<()> {
        let tensors = crate::train::checkpoint::read_safetensors(path, device, "the optimizer's moments")?;
        for s in &mut self.slots {
            let mut loaded = Vec::new();
            for suffix in ["exp_avg", "exp_avg_sq"] {
                let key = format!("{}.{suffix}", s.name);
                let t = tensors.get(&key).ok_or_else(|| {
                    Error::data(path, 0, format!("no tensor `{key}`: not this model's optimizer state"))
                })?;
                if t.shape() != s.var.shape() {
                    return Err(Error::data(
                        path,
                        0,
                        format!("`{key}` has shape {:?}, the model {:?}", t.shape(), s.var.shape()),
                    ));
                }
                loaded.push(t.clone());
            }
            let (m, v) = (loaded.remove(0), loaded.remove(0));
            s.moments = match s.moments {
                Moments::Host { .. } => Moments::Host {
                    m: m.flatten_all()?.to_vec1()?,
                    v: v.flatten_all()?.to_vec1()?,
                },
                Moments::Device { .. } => Moments::Device { m, v },
            };
        }
        self.step = step;
        Ok(())
    }
}
