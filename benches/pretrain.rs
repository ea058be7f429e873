//! One full pretraining step (forward, backward, AdamW) of a preset at fixed shapes, timed:
//! tokens/s and achieved GFLOP/s, beside a large f32 matmul on the same threads (the practical
//! peak). `cargo bench --bench pretrain [-- PRESET BATCH SEQ STEPS OBJECTIVES]` (default: small 16 128
//! 6 clm,mlm);
//! `python3 benches/torch_reference.py` runs the same model and shapes in PyTorch eager. Prints
//! figures; asserts nothing about speed. On a GPU (a `cuda` build, `-- --device cuda:0`), the
//! peak is a bf16 8192³ matmul and `clm-bf16,mlm-bf16` are the paper-shaped runs
//! (`benches/gpu_side_by_side.sh` runs both sides). `attention-paths` times the attention's
//! flash and composed paths and prints how far each is from the f32 attention (on a GPU: how
//! the flash kernel is checked).

use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use encoderlab::model::{init_weights, sorted_vars, LanguageModel, ModelConfig};
use encoderlab::objectives::{clm_batch, loss, mlm_batch, MaskTokens, MaskingConfig};
use encoderlab::rng::{below, seeded};
use encoderlab::train::{AdamW, OptimConfig};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Training FLOPs per input token: 6 per weight used in a matmul (embedding lookups excluded)
/// plus attention's score and value products (forward 4·T·H per layer, ×3 with backward); the
/// LM head's share scaled by `head_rows`, the fraction of positions it runs on (MLM: the
/// masked ones).
fn flops_per_token(cfg: &ModelConfig, t: usize, head_rows: f64) -> f64 {
    let head = (cfg.vocab_size * cfg.hidden_size) as f64;
    // every parameter but the input embedding (a lookup), the norm weights and the head; a
    // tied head still multiplies by the embedding
    let lookup = if cfg.tie_word_embeddings { 0.0 } else { head };
    let norms = (cfg.hidden_size * (2 * cfg.num_hidden_layers + 1)) as f64;
    let body = cfg.num_parameters() as f64 - lookup - norms - head;
    6.0 * (body + head * head_rows) + 12.0 * (cfg.num_hidden_layers * t * cfg.hidden_size) as f64
}

/// The median of column `k`.
fn median_of(times: &[[f64; 4]], k: usize) -> f64 {
    let mut v: Vec<f64> = times.iter().map(|t| t[k]).collect();
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() -> anyhow::Result<()> {
    encoderlab::alloc::keep_freed_memory();
    let all: Vec<String> = std::env::args().skip(1).collect();
    let device_name = all
        .iter()
        .position(|a| a == "--device")
        .and_then(|i| all.get(i + 1).cloned())
        .unwrap_or_else(|| "cpu".into());
    let args: Vec<String> = all
        .iter()
        .filter(|a| !a.starts_with("--") && **a != device_name)
        .cloned()
        .collect();
    let preset = args.first().map_or("small", String::as_str);
    let batch: usize = args.get(1).map_or(Ok(16), |a| a.parse())?;
    let seq: usize = args.get(2).map_or(Ok(128), |a| a.parse())?;
    let steps: usize = args.get(3).map_or(Ok(6), |a| a.parse())?;
    let objectives = args.get(4).map_or("clm,mlm", String::as_str);
    let dev = encoderlab::runtime::device(&device_name)?;
    let threads = candle_core::utils::get_num_threads();

    // the practical peak: a 1024³ f32 matmul (on a GPU: 8192³ in bf16)
    let (n, peak_dtype) = if dev.is_cuda() {
        (8192, DType::BF16)
    } else {
        (1024, DType::F32)
    };
    let a = Tensor::ones((n, n), peak_dtype, &dev)?;
    let _ = a.matmul(&a)?;
    dev.synchronize()?;
    let t = Instant::now();
    for _ in 0..10 {
        let _ = a.matmul(&a)?;
    }
    dev.synchronize()?;
    let peak = 10.0 * 2.0 * (n as f64).powi(3) / t.elapsed().as_secs_f64() / 1e9;

    let cfg = ModelConfig::preset(preset)?;
    let map = init_weights(&cfg, &mut seeded(0, 1), &dev)?;
    let model = LanguageModel::new(&cfg, VarBuilder::from_varmap(&map, DType::F32, &dev))?;
    let mut opt = AdamW::new(sorted_vars(&map)?, &OptimConfig::default())?;
    let mut rng = seeded(0, 2);
    let blocks: Vec<Vec<u32>> = (0..batch)
        .map(|_| {
            (0..seq)
                .map(|_| 4 + below(&mut rng, cfg.vocab_size as u64 - 4) as u32)
                .collect()
        })
        .collect();
    let tokens = MaskTokens {
        mask_id: 3,
        special: vec![0, 1, 2, 3],
        vocab_size: cfg.vocab_size as u32,
    };
    println!("CPU: {}", encoderlab::model::kernels::vmath::cpu_summary());
    let isa = encoderlab::model::kernels::vmath::isa_summary();
    // the device beside the CPU's ISA (on a GPU, forward and backward times are launch times:
    // the step is timed after a synchronisation)
    let cpu = match dev.is_cuda() {
        true => format!(
            "{device_name}, bf16 peak, {}; CPU {isa}",
            encoderlab::model::kernels::flash::gpu_attention()
        ),
        false => isa,
    };
    println!(
        "{preset}: {:.1} M parameters, batch {batch} x {seq} tokens, {threads} threads; f32 matmul 1024^3: {peak:.0} GFLOP/s [{cpu}]",
        cfg.num_parameters() as f64 / 1e6
    );
    // bf16 mixed precision (f32 weights, bf16 compute: `train.dtype = "bf16"`) runs the composed
    // candle ops, not the fused f32 kernels; opt-in (`clm-bf16`), as it is far slower on a CPU
    let half = model.clone().with_compute_dtype(DType::BF16);
    for (name, batch) in [
        ("clm", clm_batch(&blocks)),
        (
            "mlm",
            mlm_batch(&blocks, 0.4, &MaskingConfig::default(), &tokens, &mut rng),
        ),
        ("clm-bf16", clm_batch(&blocks)),
        (
            "mlm-bf16",
            mlm_batch(&blocks, 0.4, &MaskingConfig::default(), &tokens, &mut seeded(0, 3)),
        ),
    ] {
        if !objectives.split(',').any(|o| o == name) {
            continue;
        }
        let model = if name.ends_with("bf16") { &half } else { &model };
        // (step, forward, backward, optimizer) seconds
        let mut times = Vec::new();
        for step in 0..steps + 1 {
            let t = Instant::now();
            let l = loss(model, &batch, &dev, true)?;
            let forward = t.elapsed().as_secs_f64();
            let grads = opt.grads(&l.backward()?)?;
            let backward = t.elapsed().as_secs_f64() - forward;
            let norm = AdamW::grad_norm(&grads)?;
            opt.step(&grads, norm, 1e-4)?;
            dev.synchronize()?;
            let total = t.elapsed().as_secs_f64();
            if step > 0 {
                times.push([total, forward, backward, total - forward - backward]);
            }
        }
        let median = median_of(&times, 0);
        let tok_s = (batch.shape.0 * seq) as f64 / median;
        let head_rows = batch.weights.iter().filter(|w| **w > 0.0).count() as f64 / batch.weights.len() as f64;
        let gflops = tok_s * flops_per_token(&cfg, seq, head_rows) / 1e9;
        println!(
            "  {name}: step {:.0} ms (median of {steps}), {tok_s:.0} tokens/s, {gflops:.1} GFLOP/s = {:.0} % of the matmul peak ({peak:.0} GFLOP/s) [{cpu}]",
            median * 1e3,
            100.0 * gflops / peak
        );
        println!(
            "       forward {:.0} ms, backward {:.0} ms, optimizer {:.0} ms (medians)",
            median_of(&times, 1) * 1e3,
            median_of(&times, 2) * 1e3,
            median_of(&times, 3) * 1e3
        );
    }
    if objectives.split(',').any(|o| o == "attention") {
        attention(&cfg, batch, seq, steps, peak, &cpu)?;
    }
    if objectives.split(',').any(|o| o == "attention-paths") {
        attention_paths(&cfg, batch, seq, steps, &dev, &cpu)?;
    }
    Ok(())
}

/// The attention's two paths off the CPU's fused kernel, at the preset's shapes, in bf16 (f32
/// on the CPU): flash attention (`kernels/flash.rs`: the kernel's forward where the build has
/// it, else by tiles; the tiled backward) and the composed ops. For each, forward + backward
/// time, and the largest difference of the output and of the q, k, v gradients from the
/// composed attention in f32, relative to the largest value: how a GPU checks the kernel.
fn attention_paths(
    cfg: &ModelConfig,
    batch: usize,
    seq: usize,
    steps: usize,
    dev: &Device,
    cpu: &str,
) -> anyhow::Result<()> {
    use candle_core::Var;
    use encoderlab::model::attention::{attend_composed, attend_flash};
    use encoderlab::model::mask::AttentionMask;
    use encoderlab::model::rope::RotaryEmbedding;
    use encoderlab::model::AttentionMode;
    let (nh, nkv, hd) = (cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim());
    let rope = RotaryEmbedding::new(hd, seq, cfg.rope_theta, dev)?;
    let dtype = if dev.is_cuda() { DType::BF16 } else { DType::F32 };
    let inputs = [nh, nkv, nkv, nh].map(|heads| Tensor::randn(0f32, 1.0, (batch, seq, heads * hd), dev));
    let [q, k, v, c] = inputs;
    let (q, k, v, c) = (q?, k?, v?, c?);
    for mode in [AttentionMode::Causal, AttentionMode::Bidirectional] {
        let mask = AttentionMask::new(mode, None, seq, dev)?;
        // (output, dq, dk, dv) in f32 and the seconds of one forward + backward
        let run = |flash: bool, dtype: DType| -> anyhow::Result<(Vec<Tensor>, f64)> {
            let vars = [&q, &k, &v].map(|x| x.to_dtype(dtype).and_then(|x| Var::from_tensor(&x)));
            let [q, k, v] = vars;
            let (q, k, v) = (q?, k?, v?);
            dev.synchronize()?;
            let t = Instant::now();
            let y = match flash {
                true => attend_flash(&q, &k, &v, (nh, nkv), &rope, &mask, None)?,
                false => attend_composed(&q, &k, &v, (nh, nkv), &rope, mask.bias.as_ref())?,
            };
            let grads = (y.to_dtype(DType::F32)? * &c)?.sum_all()?.backward()?;
            dev.synchronize()?;
            let seconds = t.elapsed().as_secs_f64();
            let mut out = vec![y.to_dtype(DType::F32)?];
            for x in [&q, &k, &v] {
                out.push(grads.get(x).expect("a gradient").to_dtype(DType::F32)?);
            }
            Ok((out, seconds))
        };
        let (truth, _) = run(false, DType::F32)?;
        for (name, flash) in [("flash", true), ("composed", false)] {
            let mut times = Vec::new();
            let mut last = Vec::new();
            for _ in 0..steps.max(1) + 1 {
                let (out, seconds) = run(flash, dtype)?;
                times.push([seconds, 0.0, 0.0, 0.0]);
                last = out;
            }
            times.remove(0);
            let mut errors = Vec::new();
            for (ours, exact) in last.iter().zip(&truth) {
                let scale = exact.abs()?.max_all()?.to_scalar::<f32>()?.max(1e-12);
                let worst = (ours - exact)?.abs()?.max_all()?.to_scalar::<f32>()?;
                errors.push(format!("{:.1e}", worst / scale));
            }
            println!(
                "  attention-paths {name} ({mode:?}, {dtype:?}, {batch} x {seq}, {nh}/{nkv} heads of {hd}): forward + backward {:.1} ms; from f32 composed, relative: y {}, dq {}, dk {}, dv {} [{cpu}]",
                median_of(&times, 0) * 1e3,
                errors[0],
                errors[1],
                errors[2],
                errors[3]
            );
        }
    }
    Ok(())
}

/// Attention alone (the fused op, forward and backward) at the preset's shapes, causal and
/// bidirectional, against the matmul peak: its per-(sequence, head) products are small (T × hd).
/// FLOPs: forward 4·T²·hd per head (scores, values), backward 10·T²·hd (the recomputed scores
/// and four products).
fn attention(cfg: &ModelConfig, batch: usize, seq: usize, steps: usize, peak: f64, cpu: &str) -> anyhow::Result<()> {
    use candle_core::Var;
    use encoderlab::model::kernels::fused::RopeTables;
    use encoderlab::model::kernels::fused_attention::{fused_attention, AttentionSpec};
    let (nh, nkv, hd) = (cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim());
    let dev = Device::Cpu;
    let angles: Vec<f32> = (0..seq * hd).map(|i| i as f32 * 1e-3).collect();
    let tables = RopeTables::new(
        angles.iter().map(|a| a.cos()).collect(),
        angles.iter().map(|a| a.sin()).collect(),
        hd,
    );
    let q = Var::from_tensor(&Tensor::randn(0f32, 1.0, (batch, seq, nh * hd), &dev)?)?;
    let k = Var::from_tensor(&Tensor::randn(0f32, 1.0, (batch, seq, nkv * hd), &dev)?)?;
    let v = Var::from_tensor(&Tensor::randn(0f32, 1.0, (batch, seq, nkv * hd), &dev)?)?;
    let flops = 14.0 * (batch * nh * seq * seq * hd) as f64;
    for causal in [true, false] {
        let spec = AttentionSpec {
            heads: nh,
            kv_heads: nkv,
            head_dim: hd,
            causal,
            key_bias: None,
            tables: tables.clone(),
        };
        let mut times = Vec::new();
        for step in 0..steps + 1 {
            let t = Instant::now();
            let y = fused_attention(q.as_tensor(), k.as_tensor(), v.as_tensor(), &spec)?;
            let forward = t.elapsed().as_secs_f64();
            let _ = y.sum_all()?.backward()?;
            if step > 0 {
                let total = t.elapsed().as_secs_f64();
                times.push([total, forward, total - forward, 0.0]);
            }
        }
        let median = median_of(&times, 0);
        let gflops = flops / median / 1e9;
        println!(
            "  attention ({}, {batch} x {seq}, {nh}/{nkv} heads of {hd}): forward + backward {:.1} ms (forward {:.1}), {gflops:.1} GFLOP/s = {:.0} % of the matmul peak ({peak:.0} GFLOP/s) [{cpu}]",
            if causal { "causal" } else { "bidirectional" },
            median * 1e3,
            median_of(&times, 1) * 1e3,
            100.0 * gflops / peak
        );
    }
    Ok(())
}
