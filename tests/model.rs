//! The model: golden logits against PyTorch (and transformers' Llama), gradients reach every
//! weight, causal and bidirectional attention, padding, configuration errors.

use candle_core::{DType, Device, Module, Tensor, Var, D};
use candle_nn::{VarBuilder, VarMap};
use encoderlab::model::{init_weights, parameter_shapes, sorted_vars, AttentionMode, LanguageModel, ModelConfig};
use encoderlab::rng::seeded;

/// The tiny model with weights from a closed formula that the Python reference repeats.
fn formula_model() -> anyhow::Result<(VarMap, LanguageModel)> {
    let cfg = ModelConfig::tiny();
    let map = VarMap::new();
    {
        let mut data = map.data().lock().unwrap();
        for (k, (name, shape)) in parameter_shapes(&cfg).into_iter().enumerate() {
            let n: usize = shape.iter().product();
            let values: Vec<f32> = (0..n)
                .map(|i| {
                    let i = i as f64;
                    if name.ends_with("norm.weight") {
                        (1.0 + 0.1 * (0.7 * i + k as f64).sin()) as f32
                    } else {
                        (0.05 * (0.37 * i + 1.3 * k as f64 + 0.1).sin()) as f32
                    }
                })
                .collect();
            data.insert(name, Var::from_tensor(&Tensor::from_vec(values, shape, &Device::Cpu)?)?);
        }
    }
    let model = LanguageModel::new(&cfg, VarBuilder::from_varmap(&map, DType::F32, &Device::Cpu))?;
    Ok((map, model))
}

fn ids(values: &[u32]) -> anyhow::Result<Tensor> {
    Ok(Tensor::new(values, &Device::Cpu)?.unsqueeze(0)?)
}

// Golden values: a plain PyTorch implementation of the same model, itself checked against
// transformers' LlamaForCausalLM in causal mode (torch 2.15, transformers 5.24):
//
// import math, torch
// from transformers import LlamaConfig, LlamaForCausalLM
// torch.set_grad_enabled(False)
// V, H, L, NH, NKV, I, P = 256, 64, 2, 4, 2, 128, 128
// HD = H // NH
// shapes = [("model.embed_tokens.weight", (V, H))]
// for l in range(L):
//     p = f"model.layers.{l}"
//     shapes += [(f"{p}.input_layernorm.weight", (H,)), (f"{p}.self_attn.q_proj.weight", (NH*HD, H)),
//                (f"{p}.self_attn.k_proj.weight", (NKV*HD, H)), (f"{p}.self_attn.v_proj.weight", (NKV*HD, H)),
//                (f"{p}.self_attn.o_proj.weight", (H, NH*HD)), (f"{p}.post_attention_layernorm.weight", (H,)),
//                (f"{p}.mlp.gate_proj.weight", (I, H)), (f"{p}.mlp.up_proj.weight", (I, H)), (f"{p}.mlp.down_proj.weight", (H, I))]
// shapes += [("model.norm.weight", (H,)), ("lm_head.weight", (V, H))]
// W = {}
// for k, (name, shape) in enumerate(shapes):
//     i = torch.arange(math.prod(shape), dtype=torch.float64)
//     if name.endswith("norm.weight"):
//         w = 1 + 0.1 * torch.sin(0.7 * i + k)
//     else:
//         w = 0.05 * torch.sin(0.37 * i + 1.3 * k + 0.1)
//     W[name] = w.reshape(shape).float()
// ids = torch.tensor([[3, 17, 42, 255, 0, 99, 128, 7]])
// T = ids.shape[1]
//
// def rms(x, w): return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5))
// inv = 1.0 / (10000.0 ** (torch.arange(0, HD, 2).float() / HD))
// ang = torch.outer(torch.arange(T).float(), inv); emb = torch.cat([ang, ang], -1)
// cos, sin = emb.cos(), emb.sin()
// def rot(x): return torch.cat([-x[..., HD//2:], x[..., :HD//2]], -1)
// def forward(causal):
//     x = W["model.embed_tokens.weight"][ids]
//     for l in range(L):
//         p = f"model.layers.{l}"
//         h = rms(x, W[f"{p}.input_layernorm.weight"])
//         q = (h @ W[f"{p}.self_attn.q_proj.weight"].T).view(1, T, NH, HD).transpose(1, 2)
//         k = (h @ W[f"{p}.self_attn.k_proj.weight"].T).view(1, T, NKV, HD).transpose(1, 2)
//         v = (h @ W[f"{p}.self_attn.v_proj.weight"].T).view(1, T, NKV, HD).transpose(1, 2)
//         q, k = q * cos + rot(q) * sin, k * cos + rot(k) * sin
//         k, v = k.repeat_interleave(NH // NKV, 1), v.repeat_interleave(NH // NKV, 1)
//         s = q @ k.transpose(-1, -2) / math.sqrt(HD)
//         if causal: s = s.masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool), 1), float("-inf"))
//         a = (s.softmax(-1) @ v).transpose(1, 2).reshape(1, T, H) @ W[f"{p}.self_attn.o_proj.weight"].T
//         x = x + a
//         h = rms(x, W[f"{p}.post_attention_layernorm.weight"])
//         g = torch.nn.functional.silu(h @ W[f"{p}.mlp.gate_proj.weight"].T) * (h @ W[f"{p}.mlp.up_proj.weight"].T)
//         x = x + g @ W[f"{p}.mlp.down_proj.weight"].T
//     return rms(x, W["model.norm.weight"]) @ W["lm_head.weight"].T
// # provenance: the causal forward is transformers' LlamaForCausalLM with the same weights
// hf = LlamaForCausalLM(LlamaConfig(vocab_size=V, hidden_size=H, num_hidden_layers=L, num_attention_heads=NH,
//     num_key_value_heads=NKV, intermediate_size=I, max_position_embeddings=P, rms_norm_eps=1e-5,
//     rope_theta=10000.0, tie_word_embeddings=False, attention_bias=False, mlp_bias=False)).eval()
// hf.load_state_dict(W, strict=True)
// assert torch.allclose(hf(ids).logits, forward(True), atol=1e-5)
// for causal in (True, False):
//     z = forward(causal)[0]
//     print("causal" if causal else "bidirectional")
//     print("first8 =", [round(v, 6) for v in z[:, :8].flatten().tolist()])
//     print("lse =", [round(v, 6) for v in torch.logsumexp(z, -1).tolist()])
#[test]
fn logits_match_pytorch_in_both_modes() -> anyhow::Result<()> {
    let (_, model) = formula_model()?;
    let input = ids(&[3, 17, 42, 255, 0, 99, 128, 7])?;
    let golden = [
        (
            AttentionMode::Causal,
            vec![
                0.227129, -0.288416, -0.295068, 0.218909, 0.346635, -0.137255, -0.378967, 0.047985, 0.569972, 0.286774,
                -0.502418, -0.405125, 0.406986, 0.500996, -0.288971, -0.569066, 0.420936, -0.472437, -0.532224,
                0.347065, 0.61398, -0.202434, -0.661665, 0.046571, 0.576526, 0.400162, -0.482263, -0.513765, 0.361239,
                0.59886, -0.220171, -0.650723, 0.414036, 0.428882, -0.313008, -0.502615, 0.194611, 0.548458, -0.065415,
                -0.563867, 1.100188, 0.314944, -1.025999, -0.55663, 0.894878, 0.76743, -0.714101, -0.935645, -0.163266,
                -1.150929, -0.10785, 1.125523, 0.37298, -1.037663, -0.617414, 0.892224, 0.019316, -1.188544, -0.299292,
                1.118042, 0.56266, -0.9855, -0.794807, 0.798274,
            ],
            vec![
                5.583744, 5.638396, 5.656983, 5.655042, 5.624203, 5.839164, 5.851595, 5.876251,
            ],
        ),
        (
            AttentionMode::Bidirectional,
            vec![
                0.610813, -0.936163, -0.831337, 0.740332, 1.005731, -0.50342, -1.124318, 0.238573, 0.484669, 0.244095,
                -0.42717, -0.34472, 0.345967, 0.426216, -0.245567, -0.484063, 0.709101, -0.817711, -0.901723, 0.6053,
                1.044309, -0.3593, -1.128946, 0.093363, 0.478435, 0.329596, -0.400794, -0.424008, 0.300914, 0.494892,
                -0.184337, -0.538314, 0.336644, 0.337372, -0.257171, -0.397952, 0.163429, 0.43645, -0.060618,
                -0.450729, 1.089461, 0.329947, -1.011738, -0.568274, 0.877874, 0.775068, -0.695297, -0.938854,
                -0.136316, -0.998995, -0.099009, 0.975672, 0.328841, -0.89821, -0.540425, 0.770906, 0.029038,
                -1.045796, -0.275388, 0.980925, 0.506457, -0.861623, -0.709422, 0.69451,
            ],
            vec![
                5.870923, 5.613247, 5.854878, 5.62138, 5.596259, 5.835363, 5.77997, 5.806715,
            ],
        ),
    ];
    for (mode, first8, lse) in golden {
        let logits = model.forward_t(&input, None, mode, false)?.squeeze(0)?; // (T, V)
        let got: Vec<f32> = logits.narrow(1, 0, 8)?.flatten_all()?.to_vec1()?;
        for (i, (g, e)) in got.iter().zip(&first8).enumerate() {
            assert!((*g as f64 - e).abs() < 1e-5, "{mode:?} logit {i}: {g} vs {e}");
        }
        let max = logits.max_keepdim(D::Minus1)?;
        let got_lse: Vec<f32> = (logits.broadcast_sub(&max)?.exp()?.sum_keepdim(D::Minus1)?.log()? + &max)?
            .flatten_all()?
            .to_vec1()?;
        for (i, (g, e)) in got_lse.iter().zip(&lse).enumerate() {
            assert!((*g as f64 - e).abs() < 1e-5, "{mode:?} logsumexp {i}: {g} vs {e}");
        }
    }
    Ok(())
}

fn tiny(seed: u64) -> anyhow::Result<(VarMap, LanguageModel)> {
    let cfg = ModelConfig::tiny();
    let map = init_weights(&cfg, &mut seeded(seed, 0), &Device::Cpu)?;
    let model = LanguageModel::new(&cfg, VarBuilder::from_varmap(&map, DType::F32, &Device::Cpu))?;
    Ok((map, model))
}

#[test]
fn every_weight_receives_a_gradient_in_both_modes() -> anyhow::Result<()> {
    let (map, model) = tiny(0)?;
    let input = Tensor::new(&[[5u32, 9, 200, 31, 7, 64], [1, 2, 3, 4, 5, 6]], &Device::Cpu)?;
    let targets = Tensor::new(&[[9u32, 200, 31, 7, 64, 2], [2, 3, 4, 5, 6, 7]], &Device::Cpu)?;
    let vars = sorted_vars(&map)?;
    assert_eq!(vars.len(), parameter_shapes(&ModelConfig::tiny()).len());
    for mode in [AttentionMode::Causal, AttentionMode::Bidirectional] {
        let logits = model.forward_t(&input, None, mode, true)?;
        let loss = candle_nn::loss::cross_entropy(&logits.flatten_to(1)?, &targets.flatten_all()?)?;
        let grads = loss.backward()?;
        for (name, var) in &vars {
            let g = grads
                .get(var.as_tensor())
                .unwrap_or_else(|| panic!("{mode:?}: no gradient for {name}"));
            let norm = g.sqr()?.sum_all()?.to_scalar::<f32>()?;
            assert!(norm > 0.0 && norm.is_finite(), "{mode:?}: gradient of {name} is {norm}");
        }
    }
    Ok(())
}

/// Issue 24, item 4: activation checkpointing recomputes each block in the backward and gives
/// the very logits and gradients of the plain forward, on the fused CPU block (f32) and on the
/// composed ops (bf16 compute), in both attention modes.
#[test]
fn activation_checkpointing_gives_the_same_bits() -> anyhow::Result<()> {
    let input = Tensor::new(&[[5u32, 9, 200, 31, 7, 64], [1, 2, 3, 4, 5, 6]], &Device::Cpu)?;
    let targets = Tensor::new(&[[9u32, 200, 31, 7, 64, 2], [2, 3, 4, 5, 6, 7]], &Device::Cpu)?;
    for dtype in [DType::F32, DType::BF16] {
        for mode in [AttentionMode::Causal, AttentionMode::Bidirectional] {
            let mut runs = Vec::new();
            for checkpoint in [false, true] {
                let (map, model) = tiny(3)?;
                let model = model
                    .with_compute_dtype(dtype)
                    .with_activation_checkpointing(checkpoint);
                let logits = model.forward_t(&input, None, mode, true)?.to_dtype(DType::F32)?;
                let loss = candle_nn::loss::cross_entropy(&logits.flatten_to(1)?, &targets.flatten_all()?)?;
                let grads = loss.backward()?;
                let mut all = vec![logits.flatten_all()?.to_vec1::<f32>()?];
                for (name, var) in sorted_vars(&map)? {
                    let g = grads
                        .get(var.as_tensor())
                        .unwrap_or_else(|| panic!("no gradient for {name} (checkpointing {checkpoint})"));
                    all.push(g.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?);
                }
                runs.push(all);
            }
            assert!(
                runs[0] == runs[1],
                "{dtype:?} {mode:?}: checkpointing changed the logits or a gradient"
            );
        }
    }
    Ok(())
}

#[test]
fn causal_outputs_ignore_later_tokens_and_bidirectional_ones_do_not() -> anyhow::Result<()> {
    let (_, model) = tiny(1)?;
    let a = ids(&[10, 20, 30, 40, 50, 60, 70])?;
    let b = ids(&[10, 20, 30, 41, 50, 60, 70])?; // token 3 changed
    for (mode, changes_before) in [(AttentionMode::Causal, false), (AttentionMode::Bidirectional, true)] {
        let ya = model.forward_t(&a, None, mode, false)?;
        let yb = model.forward_t(&b, None, mode, false)?;
        let before = (ya.narrow(1, 0, 3)? - yb.narrow(1, 0, 3)?)?
            .abs()?
            .max_all()?
            .to_scalar::<f32>()?;
        let after = (ya.narrow(1, 3, 4)? - yb.narrow(1, 3, 4)?)?
            .abs()?
            .max_all()?
            .to_scalar::<f32>()?;
        assert!(after > 1e-4, "{mode:?}: the changed position and later ones move");
        if changes_before {
            assert!(
                before > 1e-4,
                "bidirectional: earlier positions see the change ({before})"
            );
        } else {
            assert_eq!(before, 0.0, "causal: earlier positions are untouched");
        }
    }
    Ok(())
}

#[test]
fn padding_leaves_the_real_tokens_unchanged() -> anyhow::Result<()> {
    let (_, model) = tiny(2)?;
    let short = ids(&[11, 12, 13, 14, 15])?;
    let padded = Tensor::new(
        &[[11u32, 12, 13, 14, 15, 2, 2, 2], [21, 22, 23, 24, 25, 26, 27, 28]],
        &Device::Cpu,
    )?;
    let mask = Tensor::new(&[[1u8, 1, 1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1, 1, 1]], &Device::Cpu)?;
    for mode in [AttentionMode::Causal, AttentionMode::Bidirectional] {
        let alone = model.forward_t(&short, None, mode, false)?;
        let batched = model
            .forward_t(&padded, Some(&mask), mode, false)?
            .narrow(0, 0, 1)?
            .narrow(1, 0, 5)?;
        let diff = (alone - batched)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(diff < 1e-5, "{mode:?}: padding changed real outputs by {diff}");
    }
    // without the mask, bidirectional outputs do see the padding
    let unmasked = model
        .forward_t(&padded, None, AttentionMode::Bidirectional, false)?
        .narrow(0, 0, 1)?
        .narrow(1, 0, 5)?;
    let alone = model.forward_t(&short, None, AttentionMode::Bidirectional, false)?;
    assert!((alone - unmasked)?.abs()?.max_all()?.to_scalar::<f32>()? > 1e-4);
    Ok(())
}

#[test]
fn same_seed_same_weights_other_seed_other_weights() -> anyhow::Result<()> {
    let flat = |map: &VarMap| -> anyhow::Result<Vec<f32>> {
        let mut out = Vec::new();
        for (_, v) in sorted_vars(map)? {
            out.extend(v.as_tensor().flatten_all()?.to_vec1::<f32>()?);
        }
        Ok(out)
    };
    let (a, b, c) = (tiny(3)?.0, tiny(3)?.0, tiny(4)?.0);
    assert_eq!(flat(&a)?, flat(&b)?);
    assert_ne!(flat(&a)?, flat(&c)?);
    // N(0, 0.02): the embedding's std is close to 0.02
    let emb = sorted_vars(&a)?
        .into_iter()
        .find(|(n, _)| n == "model.embed_tokens.weight")
        .unwrap()
        .1;
    let std = emb.as_tensor().sqr()?.mean_all()?.sqrt()?.to_scalar::<f32>()?;
    assert!((std - 0.02).abs() < 0.001, "{std}");
    Ok(())
}

#[test]
fn presets_and_configuration_errors() -> anyhow::Result<()> {
    assert!(ModelConfig::tiny().num_parameters() < 1_000_000);
    for cfg in [ModelConfig::tiny(), ModelConfig::small(), ModelConfig::paper_610m()] {
        let counted: usize = parameter_shapes(&cfg)
            .iter()
            .map(|(_, s)| s.iter().product::<usize>())
            .sum();
        assert_eq!(counted, cfg.num_parameters());
    }
    for name in ["tiny", "small", "210m", "610m", "1b"] {
        ModelConfig::preset(name)?.validate()?;
    }
    // the paper's names count the parameters without the (untied) LM head: 212 M, 608 M, 1.19 B
    let millions = |c: ModelConfig| (c.num_parameters() - c.vocab_size * c.hidden_size) as f64 / 1e6;
    assert!((millions(ModelConfig::paper_210m()) - 210.0).abs() < 5.0);
    assert!((millions(ModelConfig::paper_610m()) - 610.0).abs() < 5.0);
    assert!((950.0..1250.0).contains(&millions(ModelConfig::paper_1b())));
    let err = |f: &dyn Fn(&mut ModelConfig)| {
        let mut c = ModelConfig::tiny();
        f(&mut c);
        c.validate().unwrap_err().to_string()
    };
    assert!(err(&|c| c.num_attention_heads = 3).contains("model.num_attention_heads"));
    assert!(err(&|c| c.num_key_value_heads = 3).contains("model.num_key_value_heads"));
    assert!(err(&|c| c.hidden_size = 0).contains("model.hidden_size"));
    assert!(err(&|c| c.rope_theta = -1.0).contains("model.rope_theta"));
    assert!(ModelConfig::preset("2b")
        .unwrap_err()
        .to_string()
        .contains("unknown preset"));
    // unknown keys in TOML are refused, with the key named
    let text = "vocab_size = 256\nhidden_size = 64\nnum_hidden_layers = 2\nnum_attention_heads = 4\nnum_key_value_heads = 2\nintermediate_size = 128\nmax_position_embeddings = 128\nhiden_size = 3\n";
    let e = encoderlab::config::parse_toml::<ModelConfig>(text, "m.toml".as_ref()).unwrap_err();
    assert!(e.to_string().contains("hiden_size"), "{e}");
    Ok(())
}

#[test]
fn hf_config_json_round_trip() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut cfg = ModelConfig::paper_610m();
    cfg.attention = AttentionMode::Causal;
    let path = dir.path().join("config.json");
    std::fs::write(&path, serde_json::to_string_pretty(&cfg.to_hf_json())?)?;
    assert_eq!(ModelConfig::from_hf_json(&path)?, cfg);
    // a plain HF Llama config (no `attention`, other keys): read, bidirectional by default
    let hf = r#"{"architectures":["LlamaForCausalLM"],"vocab_size":256,"hidden_size":64,"num_hidden_layers":2,
        "num_attention_heads":4,"intermediate_size":128,"max_position_embeddings":128,"bos_token_id":1}"#;
    std::fs::write(&path, hf)?;
    let read = ModelConfig::from_hf_json(&path)?;
    assert_eq!(
        (read.num_key_value_heads, read.attention),
        (4, AttentionMode::Bidirectional)
    );
    std::fs::write(
        &path,
        hf.replace("\"num_attention_heads\":4", "\"num_attention_heads\":5"),
    )?;
    let e = ModelConfig::from_hf_json(&path).unwrap_err().to_string();
    assert!(e.contains("config.json") && e.contains("num_attention_heads"), "{e}");
    Ok(())
}

/// The fused CPU kernels compute what the composed ops compute, forward and backward: for each,
/// y = f(x) and the gradient of Σ y·c (c fixed) agree to 1e-5 on random input.
#[test]
fn fused_kernels_match_the_composed_ops_forward_and_backward() -> anyhow::Result<()> {
    use encoderlab::model::kernels::fused::*;
    use encoderlab::model::rope::RotaryEmbedding;
    let dev = Device::Cpu;
    let rand = |shape: &[usize], seed: u64, scale: f64| -> anyhow::Result<Tensor> {
        Ok(encoderlab::model::init::normal_tensor(
            shape,
            scale,
            &mut seeded(seed, 0),
            &dev,
        )?)
    };
    let rope_tables = RotaryEmbedding::new(16, 32, 10_000.0, &dev)?;
    let (cos, sin) = rope_tables.tables();
    type Op<'a> = Box<dyn Fn(&Tensor) -> candle_core::Result<Tensor> + 'a>;
    let cases: Vec<(&str, Vec<usize>, Op, Op)> = vec![
        (
            "softmax",
            vec![3, 4, 9, 9],
            Box::new(softmax_last_dim),
            Box::new(softmax_composed),
        ),
        (
            "rope",
            vec![2, 3, 11, 16],
            Box::new(|x| rope_tables.apply(x)),
            Box::new(|x| rope_composed(x, cos, sin)),
        ),
    ];
    for (name, shape, fused, composed) in cases {
        let x = Var::from_tensor(&rand(&shape, 1, 2.0)?)?;
        let c = rand(&shape, 2, 1.0)?;
        let mut outs = Vec::new();
        for f in [&fused, &composed] {
            let y = f(x.as_tensor())?;
            let grads = (&y * &c)?.sum_all()?.backward()?;
            let g = grads.get(x.as_tensor()).expect("a gradient").clone();
            outs.push((y.flatten_all()?.to_vec1::<f32>()?, g.flatten_all()?.to_vec1::<f32>()?));
        }
        for (what, a, b) in [
            ("forward", &outs[0].0, &outs[1].0),
            ("backward", &outs[0].1, &outs[1].1),
        ] {
            let worst = a.iter().zip(b).map(|(p, q)| (p - q).abs()).fold(0f32, f32::max);
            assert!(worst < 1e-5, "{name} {what}: differs by {worst}");
            assert!(a.iter().any(|v| v.abs() > 1e-3), "{name} {what}: not trivially zero");
        }
    }
    Ok(())
}

/// The fused CPU attention computes what the composed ops compute, forward and backward (the
/// gradients of q, k and v), with grouped-query heads, in both modes, with and without padding.
#[test]
fn fused_attention_matches_the_composed_ops_forward_and_backward() -> anyhow::Result<()> {
    let dev = Device::Cpu;
    // short sequences, and ones past the causal blocks (64 rows: 64 + 64 + 22) with a head
    // whose half is not a whole number of 16-lane chunks (20)
    for (t, hd) in [(11, 16), (150, 40)] {
        attention_matches(&dev, t, hd)?;
    }
    Ok(())
}

fn attention_matches(dev: &Device, t: usize, hd: usize) -> anyhow::Result<()> {
    use encoderlab::model::attention::attend_composed;
    use encoderlab::model::kernels::fused_attention::{fused_attention, AttentionSpec};
    use encoderlab::model::mask::AttentionMask;
    use encoderlab::model::rope::RotaryEmbedding;
    let (b, nh, nkv) = (2, 4, 2);
    let rand = |shape: &[usize], seed: u64| -> anyhow::Result<Tensor> {
        Ok(encoderlab::model::init::normal_tensor(
            shape,
            1.0,
            &mut seeded(seed, 0),
            dev,
        )?)
    };
    let rope = RotaryEmbedding::new(hd, 160, 10_000.0, dev)?;
    // the second sequence ends in three padding tokens
    let keep: Vec<u32> = (0..b * t).map(|i| u32::from(i < t || i % t < t - 3)).collect();
    let padding = Tensor::from_vec(keep, (b, t), dev)?;
    let c = rand(&[b, t, nh * hd], 4)?;
    for mode in [AttentionMode::Causal, AttentionMode::Bidirectional] {
        for pad in [None, Some(&padding)] {
            let mask = AttentionMask::new(mode, pad, t, dev)?;
            let spec = AttentionSpec {
                heads: nh,
                kv_heads: nkv,
                head_dim: hd,
                causal: mask.causal,
                key_bias: mask.key_bias.clone(),
                tables: rope.fused_tables().clone(),
            };
            let q = Var::from_tensor(&rand(&[b, t, nh * hd], 1)?)?;
            let k = Var::from_tensor(&rand(&[b, t, nkv * hd], 2)?)?;
            let v = Var::from_tensor(&rand(&[b, t, nkv * hd], 3)?)?;
            let mut outs = Vec::new();
            for fused in [true, false] {
                let y = if fused {
                    fused_attention(&q, &k, &v, &spec)?
                } else {
                    attend_composed(&q, &k, &v, (nh, nkv), &rope, mask.bias.as_ref())?
                };
                let grads = (&y * &c)?.sum_all()?.backward()?;
                let mut out = vec![y.flatten_all()?.to_vec1::<f32>()?];
                for x in [&q, &k, &v] {
                    out.push(grads.get(x.as_tensor()).expect("a gradient").flatten_all()?.to_vec1()?);
                }
                outs.push(out);
            }
            for (what, (a, b)) in ["y", "dq", "dk", "dv"].iter().zip(outs[0].iter().zip(&outs[1])) {
                let worst = a.iter().zip(b).map(|(p, q)| (p - q).abs()).fold(0f32, f32::max);
                assert!(
                    worst < 1e-5,
                    "T = {t}, hd = {hd}, {mode:?} padding {}: {what} differs by {worst}",
                    pad.is_some()
                );
                assert!(a.iter().any(|v| v.abs() > 1e-3), "{what}: not trivially zero");
            }
        }
    }
    Ok(())
}

/// The whole block as one fused op (norms, stacked q/k/v, attention, output projection,
/// residuals, stacked gate/up, down) computes what the composed ops compute, forward and
/// backward (the input's and all nine weights' gradients), in both modes, with padding, past
/// the causal blocks.
#[test]
fn fused_block_matches_the_composed_ops_forward_and_backward() -> anyhow::Result<()> {
    use encoderlab::model::attention::attend_composed;
    use encoderlab::model::kernels::fused_attention::AttentionSpec;
    use encoderlab::model::kernels::fused_block::{block, BlockSpec, BlockWeights};
    use encoderlab::model::kernels::fused_linear::linear_composed;
    use encoderlab::model::kernels::fused_mlp::mlp_composed;
    use encoderlab::model::kernels::fused_norm::rms_norm_composed;
    use encoderlab::model::mask::AttentionMask;
    use encoderlab::model::rope::RotaryEmbedding;
    let dev = Device::Cpu;
    let (b, t, h, nh, nkv, hd, inter, eps) = (2, 150, 24, 4, 2, 8, 40, 1e-5);
    let var = |shape: &[usize], std: f64, mean: f64, seed: u64| -> anyhow::Result<Var> {
        let x = encoderlab::model::init::normal_tensor(shape, std, &mut seeded(seed, 0), &dev)?;
        Ok(Var::from_tensor(&(x + mean)?)?)
    };
    let rope = RotaryEmbedding::new(hd, 160, 10_000.0, &dev)?;
    let keep: Vec<u32> = (0..b * t).map(|i| u32::from(i < t || i % t < t - 5)).collect();
    let padding = Tensor::from_vec(keep, (b, t), &dev)?;
    let x = var(&[b, t, h], 1.0, 0.0, 1)?;
    let (n1, n2) = (var(&[h], 0.1, 1.0, 2)?, var(&[h], 0.1, 1.0, 3)?);
    let (wq, wk) = (var(&[nh * hd, h], 0.3, 0.0, 4)?, var(&[nkv * hd, h], 0.3, 0.0, 5)?);
    let (wv, wo) = (var(&[nkv * hd, h], 0.3, 0.0, 6)?, var(&[h, nh * hd], 0.3, 0.0, 7)?);
    let (gate, up) = (var(&[inter, h], 0.3, 0.0, 8)?, var(&[inter, h], 0.3, 0.0, 9)?);
    let down = var(&[h, inter], 0.3, 0.0, 10)?;
    let c = encoderlab::model::init::normal_tensor(&[b, t, h], 1.0, &mut seeded(11, 0), &dev)?;
    let all = [&x, &n1, &wq, &wk, &wv, &wo, &n2, &gate, &up, &down];
    for mode in [AttentionMode::Causal, AttentionMode::Bidirectional] {
        for pad in [None, Some(&padding)] {
            let mask = AttentionMask::new(mode, pad, t, &dev)?;
            let mut outs = Vec::new();
            for fused in [true, false] {
                let y = if fused {
                    let spec = BlockSpec {
                        attention: AttentionSpec {
                            heads: nh,
                            kv_heads: nkv,
                            head_dim: hd,
                            causal: mask.causal,
                            key_bias: mask.key_bias.clone(),
                            tables: rope.fused_tables().clone(),
                        },
                        intermediate: inter,
                        eps: eps as f32,
                    };
                    let weights = BlockWeights {
                        norm1: &n1,
                        attention: [&wq, &wk, &wv, &wo].map(|w| w.as_tensor()),
                        norm2: &n2,
                        mlp: [&gate, &up, &down].map(|w| w.as_tensor()),
                    };
                    block(&x, &weights, &spec)?
                } else {
                    let h1 = rms_norm_composed(&x, &n1, eps)?;
                    let (q, k, v) = (
                        linear_composed(&h1, &wq)?,
                        linear_composed(&h1, &wk)?,
                        linear_composed(&h1, &wv)?,
                    );
                    let a = attend_composed(&q, &k, &v, (nh, nkv), &rope, mask.bias.as_ref())?;
                    let x2 = (x.as_tensor() + linear_composed(&a, &wo)?)?;
                    (&x2 + mlp_composed(&rms_norm_composed(&x2, &n2, eps)?, &gate, &up, &down)?)?
                };
                let grads = (&y * &c)?.sum_all()?.backward()?;
                let mut out = vec![y.flatten_all()?.to_vec1::<f32>()?];
                for w in all {
                    out.push(grads.get(w.as_tensor()).expect("a gradient").flatten_all()?.to_vec1()?);
                }
                outs.push(out);
            }
            let names = [
                "y", "dx", "dn1", "dWq", "dWk", "dWv", "dWo", "dn2", "dWgate", "dWup", "dWdown",
            ];
            for (what, (a, b)) in names.iter().zip(outs[0].iter().zip(&outs[1])) {
                let size = b.iter().fold(0f32, |m, v| m.max(v.abs()));
                let worst = a.iter().zip(b).map(|(p, q)| (p - q).abs()).fold(0f32, f32::max);
                assert!(size > 1e-2, "{what}: not trivially zero");
                assert!(
                    worst <= 1e-4 * size.max(1.0),
                    "{mode:?} padding {}: {what} differs by {worst} (largest value {size})",
                    pad.is_some()
                );
            }
        }
    }
    Ok(())
}

/// The fused two-input CPU kernels (RMSNorm with its weight, SwiGLU's gate, the linear
/// projection) compute what the
/// composed ops compute, forward and backward (both inputs' gradients), to 1e-5.
#[test]
fn fused_norm_and_swiglu_match_the_composed_ops() -> anyhow::Result<()> {
    use encoderlab::model::kernels::fused_linear::linear_composed;
    use encoderlab::model::kernels::fused_norm::{rms_norm, rms_norm_composed};
    use encoderlab::model::kernels::fused_swiglu::{swiglu, swiglu_composed};
    use encoderlab::model::linear::Linear;
    let dev = Device::Cpu;
    let rand = |shape: &[usize], seed: u64| -> anyhow::Result<Var> {
        Ok(Var::from_tensor(&encoderlab::model::init::normal_tensor(
            shape,
            1.5,
            &mut seeded(seed, 0),
            &dev,
        )?)?)
    };
    type Op2<'a> = Box<dyn Fn(&Tensor, &Tensor) -> candle_core::Result<Tensor> + 'a>;
    // 150 rows: more than two of the norm's 64-row blocks, the last one partial
    type Case<'a> = (&'a str, Vec<usize>, Vec<usize>, Op2<'a>, Op2<'a>);
    let cases: Vec<Case> = vec![
        (
            "rms_norm",
            vec![3, 50, 24],
            vec![24],
            Box::new(|x, w| rms_norm(x, w, 1e-5)),
            Box::new(|x, w| rms_norm_composed(x, w, 1e-5)),
        ),
        (
            "swiglu",
            vec![2, 7, 40],
            vec![2, 7, 40],
            Box::new(swiglu),
            Box::new(swiglu_composed),
        ),
        (
            "linear",
            vec![3, 5, 24],
            vec![10, 24],
            Box::new(|x, w| Linear::new(w.clone()).forward(x)),
            Box::new(linear_composed),
        ),
    ];
    for (name, shape_a, shape_b, fused, composed) in cases {
        let (a, b) = (rand(&shape_a, 1)?, rand(&shape_b, 2)?);
        let mut outs = Vec::new();
        for f in [&fused, &composed] {
            let y = f(a.as_tensor(), b.as_tensor())?;
            let c = rand(y.dims(), 3)?;
            let grads = (&y * c.as_tensor())?.sum_all()?.backward()?;
            let mut out = vec![y.flatten_all()?.to_vec1::<f32>()?];
            for x in [&a, &b] {
                out.push(grads.get(x.as_tensor()).expect("a gradient").flatten_all()?.to_vec1()?);
            }
            outs.push(out);
        }
        for (what, (p, q)) in ["forward", "grad a", "grad b"].iter().zip(outs[0].iter().zip(&outs[1])) {
            let worst = p.iter().zip(q).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
            let size = q.iter().map(|v| v.abs()).fold(1f32, f32::max);
            assert!(worst < 1e-5 * size, "{name} {what}: differs by {worst}");
            assert!(p.iter().any(|v| v.abs() > 1e-3), "{name} {what}: trivially zero");
        }
    }
    Ok(())
}

/// candle's fused forward kernels with our analytic backward (`device_fused.rs`, what a GPU
/// runs for RMSNorm, RoPE and the attention's softmax) train like the composed ops: in f32, output
/// and gradients to 1e-5 relative of the composed ops'; with a bf16 input to the norm, as close
/// to the f32 result of the same inputs as the composed bf16 ops are (or within 1e-2 relative:
/// the backward runs in f32), here on candle's CPU versions of the same ops.
#[test]
fn candles_fused_forwards_train_like_the_composed_ops() -> anyhow::Result<()> {
    use encoderlab::model::kernels::device_fused;
    use encoderlab::model::kernels::fused::softmax_composed;
    use encoderlab::model::kernels::fused_norm::rms_norm_composed;
    let dev = Device::Cpu;
    let rand = |shape: &[usize], seed: u64, dtype: DType| -> anyhow::Result<Var> {
        let t = encoderlab::model::init::normal_tensor(shape, 1.5, &mut seeded(seed, 0), &dev)?;
        Ok(Var::from_tensor(&t.to_dtype(dtype)?)?)
    };
    // norm, softmax of the norm, the gradients of x and w, by the candle-fused ops or the
    // composed ones, with x in `dtype`
    let run = |fused: bool, dtype: DType| -> anyhow::Result<Vec<Vec<f32>>> {
        let x = Var::from_tensor(&rand(&[3, 50, 24], 1, DType::BF16)?.as_tensor().to_dtype(dtype)?)?;
        let w = rand(&[24], 2, DType::F32)?;
        let y = match fused {
            true => device_fused::rms_norm(x.as_tensor(), w.as_tensor(), 1e-5)?,
            false => rms_norm_composed(x.as_tensor(), w.as_tensor(), 1e-5)?,
        };
        // the attention's softmax runs in f32 whatever the compute dtype
        let s = match fused {
            true => device_fused::softmax_last_dim(&y.to_dtype(DType::F32)?)?,
            false => softmax_composed(&y.to_dtype(DType::F32)?)?,
        };
        // and RoPE of the norm's output seen as (B = 3, 2 heads, T = 25, 24)
        let heads = y.reshape((3, 25, 2, 24))?.transpose(1, 2)?;
        let rope = encoderlab::model::rope::RotaryEmbedding::new(24, 64, 10_000.0, &dev)?;
        let (cos, sin) = rope.tables();
        let r = match fused {
            true => device_fused::rope(&heads, cos, sin)?,
            false => encoderlab::model::kernels::fused::rope_composed(&heads, cos, sin)?,
        };
        let c = rand(s.dims(), 3, DType::F32)?;
        let c2 = rand(r.dims(), 4, DType::F32)?;
        let loss = (((&y.to_dtype(DType::F32)? + &s.to_dtype(DType::F32)?)? * c.as_tensor())?.sum_all()?
            + (r.to_dtype(DType::F32)? * c2.as_tensor())?.sum_all()?)?;
        let grads = loss.backward()?;
        let mut out = Vec::new();
        for t in [
            &y,
            &s,
            &r,
            grads.get(x.as_tensor()).expect("a gradient"),
            grads.get(w.as_tensor()).expect("a gradient"),
        ] {
            out.push(t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?);
        }
        Ok(out)
    };
    let worst = |p: &[f32], q: &[f32]| p.iter().zip(q).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    let parts = ["norm", "softmax", "rope", "grad x", "grad w"];
    let truth = run(false, DType::F32)?;
    let fused32 = run(true, DType::F32)?;
    let (fused16, composed16) = (run(true, DType::BF16)?, run(false, DType::BF16)?);
    for (k, what) in parts.iter().enumerate() {
        let size = truth[k].iter().map(|v| v.abs()).fold(1f32, f32::max);
        let d = worst(&fused32[k], &truth[k]);
        assert!(d < 1e-5 * size, "f32 {what}: differs by {d} (size {size})");
        assert!(truth[k].iter().any(|v| v.abs() > 1e-3), "{what}: trivially zero");
        let (ours, theirs) = (worst(&fused16[k], &truth[k]), worst(&composed16[k], &truth[k]));
        eprintln!("{what}: f32 {d:.2e}; bf16 input: {ours:.2e} from f32 (composed ops: {theirs:.2e}), size {size:.1}");
        assert!(
            ours <= theirs.max(1e-2 * size),
            "bf16 {what}: {ours} from f32, the composed ops {theirs}"
        );
    }
    Ok(())
}

/// The fused MLP (one op for gate, up, SwiGLU and down) computes what the composed ops compute:
/// the output and the gradients of the input and of all three weights, to 1e-5 relative; a
/// second backward through the same graph gives the same gradients (the op keeps its gate/up
/// product for the backward).
#[test]
fn fused_mlp_matches_the_composed_ops_forward_and_backward() -> anyhow::Result<()> {
    use encoderlab::model::kernels::fused_mlp::{mlp, mlp_composed};
    let dev = Device::Cpu;
    let rand = |shape: &[usize], seed: u64| -> anyhow::Result<Var> {
        Ok(Var::from_tensor(&encoderlab::model::init::normal_tensor(
            shape,
            0.5,
            &mut seeded(seed, 0),
            &dev,
        )?)?)
    };
    let (h, i) = (24, 40);
    let x = rand(&[3, 7, h], 1)?;
    let (gate, up, down) = (rand(&[i, h], 2)?, rand(&[i, h], 3)?, rand(&[h, i], 4)?);
    let vars = [&x, &gate, &up, &down];
    let c = rand(&[3, 7, h], 5)?;
    let mut outs: Vec<Vec<Vec<f32>>> = Vec::new();
    type Mlp = fn(&Tensor, &Tensor, &Tensor, &Tensor) -> candle_core::Result<Tensor>;
    for (f, backwards) in [(mlp as Mlp, 2), (mlp_composed as Mlp, 1)] {
        let y = f(x.as_tensor(), gate.as_tensor(), up.as_tensor(), down.as_tensor())?;
        let loss = (&y * c.as_tensor())?.sum_all()?;
        for _ in 0..backwards {
            let grads = loss.backward()?;
            let mut out = vec![y.flatten_all()?.to_vec1::<f32>()?];
            for v in vars {
                out.push(grads.get(v.as_tensor()).expect("a gradient").flatten_all()?.to_vec1()?);
            }
            outs.push(out);
        }
    }
    let composed = &outs[2];
    for fused in &outs[..2] {
        for (what, (p, q)) in ["forward", "grad x", "grad gate", "grad up", "grad down"]
            .iter()
            .zip(fused.iter().zip(composed))
        {
            assert_eq!(p.len(), q.len(), "{what}");
            let worst = p.iter().zip(q).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            let size = q.iter().map(|v| v.abs()).fold(1f32, f32::max);
            assert!(worst < 1e-5 * size, "mlp {what}: differs by {worst}");
            assert!(p.iter().any(|v| v.abs() > 1e-3), "mlp {what}: trivially zero");
        }
    }
    // bf16 inputs take the composed path (weights cast at use)
    let xb = x.as_tensor().to_dtype(DType::BF16)?;
    let yb = mlp(&xb, gate.as_tensor(), up.as_tensor(), down.as_tensor())?;
    assert_eq!(yb.dtype(), DType::BF16);
    Ok(())
}

/// The kernels' vectorisable exp stays within 2e-7 (relative) of the exact value over the
/// range softmax and sigmoid use, gives exactly 0 far below it, and propagates NaN; the slice
/// form agrees with the scalar one bit for bit (whatever vector width the CPU runs).
#[test]
fn vectorised_exp_is_accurate_and_propagates_nan() {
    use encoderlab::model::kernels::vmath;
    let mut worst = 0f64;
    for i in 0..=200_000 {
        let x = -87.0 + 175.0 * f64::from(i) / 200_000.0;
        let got = f64::from(vmath::exp(x as f32));
        let want = (f64::from(x as f32)).exp();
        worst = worst.max(((got - want) / want).abs());
    }
    assert!(worst < 2e-7, "relative error {worst}");
    assert_eq!(vmath::exp(-1e9), 0.0);
    assert_eq!(vmath::exp(0.0), 1.0);
    assert!(vmath::exp(f32::NAN).is_nan());
    assert!(vmath::exp(1e9).is_finite());
    let mut row: Vec<f32> = (0..37).map(|i| (i as f32 * 0.37).sin() * 5.0).collect();
    let scalar: Vec<f32> = row.iter().map(|v| vmath::exp(v - 1.5)).collect();
    vmath::exp_shift_sum(&mut row, 1.5);
    assert_eq!(row, scalar);
}

/// Flash attention's path (`kernels/flash.rs`: on the CPU its forward by query tiles, the
/// backward by tiles on every device) computes the composed attention, forward and gradients of
/// q, k and v, to 1e-5 in f32: both modes, grouped-query heads, no padding, right padding (the
/// kernel's packed form on a GPU) and padding elsewhere, one tile, tiles of 5 rows and of 1.
/// Padded query rows are 0 on this path (the kernel does not compute them), so the composed
/// output is compared with those rows zeroed.
#[test]
fn flash_attention_path_matches_the_composed_attention_both_ways() -> anyhow::Result<()> {
    use encoderlab::model::attention::{attend_composed, attend_flash};
    use encoderlab::model::mask::AttentionMask;
    use encoderlab::model::rope::RotaryEmbedding;
    let dev = Device::Cpu;
    let (b, t, nh, nkv, hd) = (3, 13, 4, 2, 8);
    let rand = |shape: &[usize], seed: u64| -> anyhow::Result<Var> {
        let x = encoderlab::model::init::normal_tensor(shape, 1.0, &mut seeded(seed, 0), &dev)?;
        Ok(Var::from_tensor(&x)?)
    };
    let rope = RotaryEmbedding::new(hd, 32, 10_000.0, &dev)?;
    // right: sequences of 13, 9 and 4 tokens; elsewhere: a left-padded sequence and a gap
    let right: Vec<u32> = (0..b * t).map(|i| u32::from(i % t < [13, 9, 4][i / t])).collect();
    let holes: Vec<u32> = (0..b * t)
        .map(|i| u32::from(!(i / t == 1 && i % t < 3 || i == 2 * t + 6)))
        .collect();
    let right = Tensor::from_vec(right, (b, t), &dev)?;
    let holes = Tensor::from_vec(holes, (b, t), &dev)?;
    let (q, k, v) = (
        rand(&[b, t, nh * hd], 1)?,
        rand(&[b, t, nkv * hd], 2)?,
        rand(&[b, t, nkv * hd], 3)?,
    );
    let c = rand(&[b, t, nh * hd], 4)?;
    for mode in [AttentionMode::Causal, AttentionMode::Bidirectional] {
        for (pad_name, pad) in [("none", None), ("right", Some(&right)), ("holes", Some(&holes))] {
            let mask = AttentionMask::new(mode, pad, t, &dev)?;
            let lengths = mask.padding.as_ref().map(|p| p.lengths.is_some());
            assert_eq!(
                lengths,
                pad.map(|_| pad_name == "right"),
                "{pad_name}: right padding is told apart"
            );
            let row_keep = match pad {
                Some(p) => p.to_dtype(DType::F32)?.unsqueeze(2)?,
                None => Tensor::ones((b, t, 1), DType::F32, &dev)?,
            };
            let run = |tile: Option<usize>| -> anyhow::Result<Vec<Vec<f32>>> {
                let y = match tile {
                    Some(rows) => attend_flash(&q, &k, &v, (nh, nkv), &rope, &mask, Some(rows))?,
                    None => {
                        attend_composed(&q, &k, &v, (nh, nkv), &rope, mask.bias.as_ref())?.broadcast_mul(&row_keep)?
                    }
                };
                let grads = (&y * c.as_tensor())?.sum_all()?.backward()?;
                let mut out = vec![y.flatten_all()?.to_vec1::<f32>()?];
                for x in [&q, &k, &v] {
                    out.push(grads.get(x.as_tensor()).expect("a gradient").flatten_all()?.to_vec1()?);
                }
                Ok(out)
            };
            let truth = run(None)?;
            for tile in [t, 5, 1] {
                let ours = run(Some(tile))?;
                for (what, (a, e)) in ["y", "dq", "dk", "dv"].iter().zip(ours.iter().zip(&truth)) {
                    let worst = a.iter().zip(e).map(|(p, q)| (p - q).abs()).fold(0f32, f32::max);
                    assert!(
                        worst < 1e-5,
                        "{mode:?}, padding {pad_name}, tiles of {tile}: {what} differs by {worst}"
                    );
                    assert!(e.iter().any(|v| v.abs() > 1e-3), "{what}: trivially zero");
                }
            }
        }
    }
    Ok(())
}

/// In bf16 (what a GPU trains in), flash attention's path is as close to the f32 attention as
/// the composed bf16 ops are, or within 2e-2 relative: forward and gradients, causal with right
/// padding, two tiles.
#[test]
fn flash_attention_path_in_bf16_is_as_close_as_the_composed_ops() -> anyhow::Result<()> {
    use encoderlab::model::attention::{attend_composed, attend_flash};
    use encoderlab::model::mask::AttentionMask;
    use encoderlab::model::rope::RotaryEmbedding;
    let dev = Device::Cpu;
    let (b, t, nh, nkv, hd) = (2, 40, 4, 2, 16);
    let rope = RotaryEmbedding::new(hd, 64, 10_000.0, &dev)?;
    let keep: Vec<u32> = (0..b * t).map(|i| u32::from(i < t || i % t < 31)).collect();
    let pad = Tensor::from_vec(keep, (b, t), &dev)?;
    let mask = AttentionMask::new(AttentionMode::Causal, Some(&pad), t, &dev)?;
    let row_keep = pad.to_dtype(DType::F32)?.unsqueeze(2)?;
    let normal = |shape: &[usize], seed: u64| -> anyhow::Result<Tensor> {
        Ok(encoderlab::model::init::normal_tensor(
            shape,
            1.0,
            &mut seeded(seed, 0),
            &dev,
        )?)
    };
    let inputs = [
        normal(&[b, t, nh * hd], 1)?,
        normal(&[b, t, nkv * hd], 2)?,
        normal(&[b, t, nkv * hd], 3)?,
    ];
    let c = normal(&[b, t, nh * hd], 4)?;
    let run = |flash: bool, dtype: DType| -> anyhow::Result<Vec<Vec<f32>>> {
        let vars: Vec<Var> = inputs
            .iter()
            .map(|x| Var::from_tensor(&x.to_dtype(dtype)?))
            .collect::<candle_core::Result<_>>()?;
        let [q, k, v] = [&vars[0], &vars[1], &vars[2]].map(|v| v.as_tensor());
        let y = match flash {
            true => attend_flash(q, k, v, (nh, nkv), &rope, &mask, Some(24))?,
            false => attend_composed(q, k, v, (nh, nkv), &rope, mask.bias.as_ref())?,
        }
        .to_dtype(DType::F32)?
        .broadcast_mul(&row_keep)?;
        let grads = (&y * &c)?.sum_all()?.backward()?;
        let mut out = vec![y.flatten_all()?.to_vec1::<f32>()?];
        for x in [q, k, v] {
            let g = grads.get(x).expect("a gradient").to_dtype(DType::F32)?;
            out.push(g.flatten_all()?.to_vec1()?);
        }
        Ok(out)
    };
    let truth = run(false, DType::F32)?;
    let (ours, theirs) = (run(true, DType::BF16)?, run(false, DType::BF16)?);
    let worst = |p: &[f32], q: &[f32]| p.iter().zip(q).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    for (i, what) in ["y", "dq", "dk", "dv"].iter().enumerate() {
        let size = truth[i].iter().map(|v| v.abs()).fold(1f32, f32::max);
        let (d_ours, d_theirs) = (worst(&ours[i], &truth[i]), worst(&theirs[i], &truth[i]));
        eprintln!("{what}: bf16 flash path {d_ours:.2e} from f32, composed bf16 {d_theirs:.2e}, size {size:.1}");
        assert!(
            d_ours <= d_theirs.max(2e-2 * size),
            "{what}: {d_ours} from f32, the composed ops {d_theirs}"
        );
    }
    Ok(())
}
