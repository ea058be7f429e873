//! Weight initialisation from our own seeded generator (candle's CPU RNG cannot be seeded):
//! every matrix N(0, 0.02), every norm weight 1, drawn in a fixed order of names so the same
//! seed gives the same weights on every machine.

use candle_core::{DType, Device, Result, Tensor, Var};
use candle_nn::VarMap;
use rand::RngCore;

use super::config::ModelConfig;
use crate::rng::unit;

/// Standard deviation of the initial weights (the paper's, as Llama's `initializer_range`).
pub const INIT_STD: f64 = 0.02;

/// Every parameter of the model: HF name and shape, in the order they are drawn.
pub fn parameter_shapes(cfg: &ModelConfig) -> Vec<(String, Vec<usize>)> {
    let (h, v, i, hd) = (cfg.hidden_size, cfg.vocab_size, cfg.intermediate_size, cfg.head_dim());
    let (q, kv) = (cfg.num_attention_heads * hd, cfg.num_key_value_heads * hd);
    let mut out = vec![("model.embed_tokens.weight".to_string(), vec![v, h])];
    for l in 0..cfg.num_hidden_layers {
        let p = format!("model.layers.{l}");
        out.extend([
            (format!("{p}.input_layernorm.weight"), vec![h]),
            (format!("{p}.self_attn.q_proj.weight"), vec![q, h]),
            (format!("{p}.self_attn.k_proj.weight"), vec![kv, h]),
            (format!("{p}.self_attn.v_proj.weight"), vec![kv, h]),
            (format!("{p}.self_attn.o_proj.weight"), vec![h, q]),
            (format!("{p}.post_attention_layernorm.weight"), vec![h]),
            (format!("{p}.mlp.gate_proj.weight"), vec![i, h]),
            (format!("{p}.mlp.up_proj.weight"), vec![i, h]),
            (format!("{p}.mlp.down_proj.weight"), vec![h, i]),
        ]);
    }
    out.push(("model.norm.weight".to_string(), vec![h]));
    if !cfg.tie_word_embeddings {
        out.push(("lm_head.weight".to_string(), vec![v, h]));
    }
    out
}

/// A standard normal draw (Box–Muller on two uniforms; the second value is discarded so each
/// draw uses a fixed amount of the stream).
pub fn normal(rng: &mut impl RngCore) -> f64 {
    let u1 = 1.0 - unit(rng); // (0, 1]
    let u2 = unit(rng);
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A (rows, …) tensor of N(0, std) values in f32.
pub fn normal_tensor(shape: &[usize], std: f64, rng: &mut impl RngCore, device: &Device) -> Result<Tensor> {
    let n: usize = shape.iter().product();
    let values: Vec<f32> = (0..n).map(|_| (normal(rng) * std) as f32).collect();
    Tensor::from_vec(values, shape, device)
}

/// The initial value of parameter `name`: norm weights 1, biases 0, everything else
/// N(0, 0.02) drawn from `rng` (f32).
pub(crate) fn initial_tensor(name: &str, shape: &[usize], rng: &mut impl RngCore, device: &Device) -> Result<Tensor> {
    if name.ends_with("norm.weight") {
        Tensor::ones(shape, DType::F32, device)
    } else if name.ends_with(".bias") {
        Tensor::zeros(shape, DType::F32, device)
    } else {
        normal_tensor(shape, INIT_STD, rng, device)
    }
}

/// The RNG stream of a run's initial weights (with the run's seed).
pub const INIT_STREAM: u64 = 1;

/// A variable map holding freshly initialised weights for `cfg` (f32, on `device`).
pub fn init_weights(cfg: &ModelConfig, rng: &mut impl RngCore, device: &Device) -> Result<VarMap> {
    let map = VarMap::new();
    {
        let mut data = map.data().lock().map_err(|e| candle_core::Error::Msg(e.to_string()))?;
        for (name, shape) in parameter_shapes(cfg) {
            let tensor = initial_tensor(&name, &shape, rng, device)?;
            data.insert(name, Var::from_tensor(&tensor)?);
        }
    }
    Ok(map)
}

/// The variables of `map` sorted by name: a fixed order for the optimizer and for reductions
/// over all parameters (a `HashMap`'s order changes from run to run).
pub fn sorted_vars(map: &VarMap) -> Result<Vec<(String, Var)>> {
    let data = map.data().lock().map_err(|e| candle_core::Error::Msg(e.to_string()))?;
    let mut vars: Vec<(String, Var)> = data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(vars)
}
