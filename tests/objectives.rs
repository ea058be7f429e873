//! Objectives: the ignore-index loss against PyTorch, CLM targets, MLM masking statistics and
//! reproducible evaluation masks.

use candle_core::{Device, Tensor};
use encoderlab::model::AttentionMode;
use encoderlab::objectives::{clm_batch, masked_cross_entropy, mlm_batch, mlm_eval_batch, MaskTokens, MaskingConfig};
use encoderlab::rng::seeded;

// import torch
// logits = torch.tensor([[0.5 * ((i * 7 + j * 3) % 11) - 2.0 for j in range(6)] for i in range(5)])
// targets = torch.tensor([2, -100, 5, 0, -100])
// print(torch.nn.functional.cross_entropy(logits, targets, ignore_index=-100).item())
// # 1.2629318237304688
#[test]
fn masked_cross_entropy_matches_pytorch_ignore_index() -> anyhow::Result<()> {
    let values: Vec<f32> = (0..5)
        .flat_map(|i| (0..6).map(move |j| 0.5 * ((i * 7 + j * 3) % 11) as f32 - 2.0))
        .collect();
    let logits = Tensor::from_vec(values, (5, 6), &Device::Cpu)?;
    // ignored positions carry any valid id and weight 0
    let targets = Tensor::new(&[2u32, 4, 5, 0, 1], &Device::Cpu)?;
    let weights = Tensor::new(&[1f32, 0., 1., 1., 0.], &Device::Cpu)?;
    let loss = masked_cross_entropy(&logits, &targets, &weights)?.to_scalar::<f32>()?;
    assert!((loss - 1.262_931_8).abs() < 1e-6, "{loss}");
    // nothing scored: 0, not NaN
    let none = Tensor::zeros(5, candle_core::DType::F32, &Device::Cpu)?;
    assert_eq!(masked_cross_entropy(&logits, &targets, &none)?.to_scalar::<f32>()?, 0.0);
    Ok(())
}

#[test]
fn clm_predicts_the_next_token_everywhere_but_the_last_position() {
    let b = clm_batch(&[vec![5, 6, 7, 8], vec![9, 10, 11, 12]]);
    assert_eq!(b.shape, (2, 4));
    assert_eq!(b.mode, AttentionMode::Causal);
    assert_eq!(b.inputs, [5, 6, 7, 8, 9, 10, 11, 12]);
    assert_eq!(&b.targets[..3], &[6, 7, 8]);
    assert_eq!(&b.targets[4..7], &[10, 11, 12]);
    assert_eq!(b.weights, [1., 1., 1., 0., 1., 1., 1., 0.]);
}

fn tokens() -> MaskTokens {
    MaskTokens {
        mask_id: 3,
        special: vec![0, 1, 2, 3],
        vocab_size: 1000,
    }
}

#[test]
fn masking_statistics_follow_the_configuration() -> anyhow::Result<()> {
    // 100k tokens, 1 in 10 an end-of-text (special: never masked)
    let blocks: Vec<Vec<u32>> = (0..400)
        .map(|b| {
            (0..250)
                .map(|i| {
                    if i % 10 == 9 {
                        1
                    } else {
                        4 + ((b * 250 + i) % 990) as u32
                    }
                })
                .collect()
        })
        .collect();
    let cfg = MaskingConfig {
        mask: 0.8,
        random: 0.1,
        keep: 0.1,
        ..MaskingConfig::default()
    };
    cfg.validate()?;
    for ratio in [0.15, 0.4] {
        let batch = mlm_batch(&blocks, ratio, &cfg, &tokens(), &mut seeded(0, 0));
        assert_eq!(batch.mode, AttentionMode::Bidirectional);
        let eligible = batch.targets.iter().filter(|&&t| t != 1).count();
        let selected: Vec<usize> = (0..batch.weights.len()).filter(|&i| batch.weights[i] > 0.0).collect();
        let share = |n: usize| n as f64 / selected.len() as f64;
        assert!((selected.len() as f64 / eligible as f64 - ratio).abs() < 0.01);
        assert!(selected.iter().all(|&i| batch.targets[i] != 1), "specials never masked");
        let masked = selected.iter().filter(|&&i| batch.inputs[i] == 3).count();
        let kept = selected
            .iter()
            .filter(|&&i| batch.inputs[i] == batch.targets[i])
            .count();
        let random = selected.len() - masked - kept;
        assert!((share(masked) - 0.8).abs() < 0.01, "{}", share(masked));
        // a random replacement equal to the original counts as kept (p ≈ 0.001)
        assert!((share(kept) - 0.1).abs() < 0.01, "{}", share(kept));
        assert!((share(random) - 0.1).abs() < 0.01, "{}", share(random));
        // unselected positions are untouched and unscored
        assert!((0..batch.inputs.len())
            .filter(|i| batch.weights[*i] == 0.0)
            .all(|i| batch.inputs[i] == batch.targets[i]));
        // random replacements are never special
        assert!(selected.iter().all(|&i| batch.inputs[i] >= 3));
    }
    // the paper's default: every selected token becomes the mask token
    let batch = mlm_batch(&blocks, 0.3, &MaskingConfig::default(), &tokens(), &mut seeded(1, 0));
    assert!((0..batch.inputs.len())
        .filter(|i| batch.weights[*i] > 0.0)
        .all(|i| batch.inputs[i] == 3));
    Ok(())
}

#[test]
fn evaluation_masks_depend_on_the_block_only() {
    let cfg = MaskingConfig::default();
    let blocks = vec![(10..74).collect::<Vec<u32>>(), (100..164).collect()];
    let a = mlm_eval_batch(&blocks, &[7, 8], &cfg, &tokens());
    let b = mlm_eval_batch(&blocks[1..], &[8], &cfg, &tokens());
    assert_eq!(
        &a.inputs[64..],
        &b.inputs[..],
        "block 8 masked alike, alone or in a batch"
    );
    assert_ne!(a.weights[..64], a.weights[64..]);
    let other = MaskingConfig { eval_seed: 1, ..cfg };
    assert_ne!(mlm_eval_batch(&blocks, &[7, 8], &other, &tokens()).weights, a.weights);
}

#[test]
fn masking_configuration_errors_name_the_field() {
    let bad = MaskingConfig {
        mask: 0.8,
        random: 0.1,
        keep: 0.0,
        ..MaskingConfig::default()
    };
    assert!(bad.validate().unwrap_err().to_string().contains("mask + random + keep"));
    let bad = MaskingConfig {
        mask: 1.2,
        ..MaskingConfig::default()
    };
    assert!(bad.validate().unwrap_err().to_string().contains("masking.mask"));
    let bad = MaskingConfig {
        eval_ratio: 1.0,
        ..MaskingConfig::default()
    };
    assert!(bad.validate().unwrap_err().to_string().contains("masking.eval_ratio"));
}

/// The fused cross entropy equals the composed one, forward and backward.
#[test]
fn fused_cross_entropy_matches_the_composed_one() -> anyhow::Result<()> {
    use candle_core::Var;
    use encoderlab::objectives::loss::row_loss_composed;
    let dev = Device::Cpu;
    let logits = encoderlab::model::init::normal_tensor(&[13, 37], 3.0, &mut seeded(5, 0), &dev)?;
    let targets = Tensor::new(&[1u32, 36, 0, 5, 5, 9, 12, 30, 2, 3, 4, 7, 8], &dev)?;
    let weights = Tensor::new(&[1f32, 1., 0., 1., 1., 0., 1., 1., 1., 0., 1., 1., 1.], &dev)?;
    let x = Var::from_tensor(&logits)?;
    let fused = masked_cross_entropy(x.as_tensor(), &targets, &weights)?;
    let g_fused = fused
        .backward()?
        .get(x.as_tensor())
        .unwrap()
        .flatten_all()?
        .to_vec1::<f32>()?;
    let composed = (row_loss_composed(x.as_tensor(), &targets, &weights)?.sum_all()? / 10.0)?;
    let g_composed = composed
        .backward()?
        .get(x.as_tensor())
        .unwrap()
        .flatten_all()?
        .to_vec1::<f32>()?;
    assert!((fused.to_scalar::<f32>()? - composed.to_scalar::<f32>()?).abs() < 1e-5);
    let worst = g_fused
        .iter()
        .zip(&g_composed)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(worst < 1e-6, "gradients differ by {worst}");
    // ignored rows get no gradient
    assert!(g_fused[2 * 37..3 * 37].iter().all(|v| *v == 0.0));
    Ok(())
}

/// The training loss (scored rows only, LM head in chunks) equals the dense computation: all
/// logits, then the weighted cross entropy; gradients too.
#[test]
fn sparse_chunked_loss_equals_the_dense_one() -> anyhow::Result<()> {
    use candle_nn::VarBuilder;
    use encoderlab::model::{init_weights, sorted_vars, LanguageModel, ModelConfig};
    use encoderlab::objectives::loss_in_chunks;
    let dev = Device::Cpu;
    let cfg = ModelConfig::tiny();
    let map = init_weights(&cfg, &mut seeded(1, 1), &dev)?;
    let model = LanguageModel::new(&cfg, VarBuilder::from_varmap(&map, candle_core::DType::F32, &dev))?;
    let blocks: Vec<Vec<u32>> = (0..3)
        .map(|b| (0..20).map(|i| 4 + ((b * 13 + i * 5) % 250) as u32).collect())
        .collect();
    let embed = sorted_vars(&map)?
        .into_iter()
        .find(|(n, _)| n == "lm_head.weight")
        .unwrap()
        .1;
    for batch in [
        clm_batch(&blocks),
        mlm_batch(&blocks, 0.3, &MaskingConfig::default(), &tokens(), &mut seeded(2, 0)),
    ] {
        let (b, t) = batch.shape;
        let inputs = Tensor::from_slice(&batch.inputs, (b, t), &dev)?;
        let logits = model.forward_t(&inputs, None, batch.mode, true)?.flatten_to(1)?;
        let dense = masked_cross_entropy(
            &logits,
            &Tensor::from_slice(&batch.targets, b * t, &dev)?,
            &Tensor::from_slice(&batch.weights, b * t, &dev)?,
        )?;
        let g_dense = dense
            .backward()?
            .get(embed.as_tensor())
            .unwrap()
            .flatten_all()?
            .to_vec1::<f32>()?;
        for chunk in [7, 1000] {
            let l = loss_in_chunks(&model, &batch, &dev, true, chunk)?;
            assert!(
                (l.to_scalar::<f32>()? - dense.to_scalar::<f32>()?).abs() < 1e-5,
                "{:?} chunk {chunk}",
                batch.mode
            );
            let g = l
                .backward()?
                .get(embed.as_tensor())
                .unwrap()
                .flatten_all()?
                .to_vec1::<f32>()?;
            let worst = g.iter().zip(&g_dense).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            assert!(
                worst < 1e-6,
                "{:?} chunk {chunk}: head gradient differs by {worst}",
                batch.mode
            );
        }
    }
    Ok(())
}

/// The fused head + cross entropy computes what `hidden · Wᵀ` then the cross entropy of the
/// composed ops computes: the summed loss and the gradients of the hidden states and of W (with
/// ignored rows), and a second backward over the same graph (which recomputes the softmax the
/// first one consumed) gives the same gradients.
#[test]
fn fused_head_cross_entropy_matches_the_composed_head_and_loss() -> anyhow::Result<()> {
    use candle_core::Var;
    use encoderlab::objectives::fused_head_cross_entropy;
    use encoderlab::objectives::loss::row_loss_composed;
    let dev = Device::Cpu;
    let (n, h, v) = (13, 16, 37);
    let rand = |shape: &[usize], seed: u64| -> anyhow::Result<Tensor> {
        Ok(encoderlab::model::init::normal_tensor(
            shape,
            1.0,
            &mut seeded(seed, 0),
            &dev,
        )?)
    };
    let hidden = Var::from_tensor(&rand(&[n, h], 1)?)?;
    let weight = Var::from_tensor(&rand(&[v, h], 2)?)?;
    let targets: Vec<u32> = (0..n as u32).map(|i| (i * 11 + 5) % v as u32).collect();
    let weights: Vec<f32> = (0..n).map(|i| if i % 4 == 3 { 0.0 } else { 1.0 }).collect();
    let fused = fused_head_cross_entropy(&hidden, &weight, &targets, &weights)?;
    let logits = hidden.matmul(&weight.t()?)?;
    let composed = row_loss_composed(
        &logits,
        &Tensor::new(targets.as_slice(), &dev)?,
        &Tensor::new(weights.as_slice(), &dev)?,
    )?
    .sum_all()?;
    let close = |a: &Tensor, b: &Tensor, what: &str| -> anyhow::Result<()> {
        let (a, b) = (a.flatten_all()?.to_vec1::<f32>()?, b.flatten_all()?.to_vec1::<f32>()?);
        let worst = a.iter().zip(&b).map(|(p, q)| (p - q).abs()).fold(0f32, f32::max);
        assert!(worst < 1e-4, "{what} differs by {worst}");
        assert!(a.iter().any(|x| x.abs() > 1e-3), "{what}: trivially zero");
        Ok(())
    };
    close(&fused, &composed, "loss")?;
    let (gf, gc) = ((&fused * 0.5)?.backward()?, (&composed * 0.5)?.backward()?);
    for (x, what) in [(&hidden, "d hidden"), (&weight, "d W")] {
        close(gf.get(x).expect("grad"), gc.get(x).expect("grad"), what)?;
    }
    let again = (&fused * 0.5)?.backward()?;
    assert_eq!(
        again.get(&weight).expect("grad").flatten_all()?.to_vec1::<f32>()?,
        gf.get(&weight).expect("grad").flatten_all()?.to_vec1::<f32>()?
    );
    Ok(())
}
