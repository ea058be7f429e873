//! Learning-rate schedules, phase lists and AdamW (against PyTorch).

use candle_core::{Device, Tensor, Var};
use encoderlab::schedule::{lr_at, phase_at, phase_start, total_steps, validate_phases, LrConfig, LrSchedule, Phase};
use encoderlab::train::{AdamW, Grads, OptimConfig};

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12 * b.abs().max(1.0)
}

#[test]
fn wsd_warms_up_holds_and_decays_to_zero() {
    let cfg = LrConfig {
        peak: 1e-3,
        warmup_steps: 10,
        schedule: LrSchedule::Wsd { decay_steps: 20 },
    };
    cfg.validate(100).unwrap();
    let at = |s| lr_at(&cfg, s, 100);
    assert!(close(at(0), 1e-4));
    assert!(close(at(4), 5e-4));
    assert!(close(at(9), 1e-3));
    assert!(close(at(10), 1e-3));
    assert!(close(at(79), 1e-3));
    assert!(close(at(80), 1e-3)); // first decay step: 20 of 20 left
    assert!(close(at(90), 5e-4));
    assert!(close(at(99), 5e-5));
    assert_eq!(at(100), 0.0);
    // the paper's 42k-step shape: ~1% warmup, decay over the last 2k steps
    let paper = LrConfig {
        peak: 3.6e-4,
        warmup_steps: 420,
        schedule: LrSchedule::Wsd { decay_steps: 2000 },
    };
    assert!(close(lr_at(&paper, 21_000, 42_000), 3.6e-4));
    assert!(close(lr_at(&paper, 41_000, 42_000), 1.8e-4));
}

#[test]
fn cosine_linear_and_constant() {
    let mk = |schedule| LrConfig {
        peak: 1.0,
        warmup_steps: 0,
        schedule,
    };
    let cos = mk(LrSchedule::Cosine { min_ratio: 0.1 });
    assert!(close(lr_at(&cos, 0, 11), 1.0));
    assert!(close(lr_at(&cos, 5, 11), 0.55));
    assert!(close(lr_at(&cos, 10, 11), 0.1));
    let lin = mk(LrSchedule::Linear);
    assert!(close(lr_at(&lin, 0, 10), 1.0));
    assert!(close(lr_at(&lin, 5, 10), 0.5));
    assert!(close(lr_at(&mk(LrSchedule::Constant), 7, 10), 1.0));
    // errors name the field
    let bad = LrConfig {
        peak: 1.0,
        warmup_steps: 90,
        schedule: LrSchedule::Wsd { decay_steps: 20 },
    };
    assert!(bad
        .validate(100)
        .unwrap_err()
        .to_string()
        .contains("lr.schedule.decay_steps"));
    assert!(LrConfig {
        peak: 0.0,
        ..bad.clone()
    }
    .validate(100)
    .unwrap_err()
    .to_string()
    .contains("lr.peak"));
    assert!(LrConfig {
        warmup_steps: 101,
        ..bad
    }
    .validate(100)
    .unwrap_err()
    .to_string()
    .contains("lr.warmup_steps"));
}

#[test]
fn phases_switch_at_the_exact_step() {
    let phases: Vec<Phase> = toml::from_str::<toml::Table>(
        r#"phases = [{ objective = "clm", steps = 3000 }, { objective = "mlm", ratio = 0.4, steps = 9000 }]"#,
    )
    .unwrap()["phases"]
        .clone()
        .try_into()
        .unwrap();
    validate_phases(&phases).unwrap();
    assert_eq!(total_steps(&phases), 12_000);
    assert_eq!(phase_at(&phases, 0), 0);
    assert_eq!(phase_at(&phases, 2999), 0);
    assert_eq!(phase_at(&phases, 3000), 1);
    assert_eq!(phase_at(&phases, 11_999), 1);
    assert_eq!(phase_start(&phases, 1), 3000);
    let err = |p: Vec<Phase>| validate_phases(&p).unwrap_err().to_string();
    let clm = |steps| Phase {
        objective: encoderlab::objectives::Objective::Clm,
        steps,
        ratio: None,
    };
    assert!(err(vec![]).contains("phases"));
    assert!(err(vec![clm(0)]).contains("phases[0].steps"));
    let mut mlm = clm(5);
    mlm.objective = encoderlab::objectives::Objective::Mlm;
    assert!(err(vec![clm(5), mlm.clone()]).contains("phases[1].ratio"));
    mlm.ratio = Some(1.5);
    assert!(err(vec![mlm]).contains("phases[0].ratio"));
    let mut c = clm(5);
    c.ratio = Some(0.3);
    assert!(err(vec![c]).contains("no masking ratio"));
}

// import torch
// w = torch.nn.Parameter(torch.tensor([[0.5, -0.2, 0.1], [0.3, 0.8, -0.6]]))
// n = torch.nn.Parameter(torch.tensor([1.0, 0.9, 1.1]))
// opt = torch.optim.AdamW([{"params": [w], "weight_decay": 0.1}, {"params": [n], "weight_decay": 0.0}],
//                         lr=1e-2, betas=(0.9, 0.95), eps=1e-5)
// for step, lr in enumerate([1e-2, 5e-3, 2e-3]):
//     k = step + 1
//     w.grad = torch.tensor([[0.1 * k, -0.3, 0.2], [0.05, 0.4 * k, -0.1]])
//     n.grad = torch.tensor([0.2, -0.1 * k, 0.3])
//     norm = torch.nn.utils.clip_grad_norm_([w, n], 1.0)
//     for g in opt.param_groups: g["lr"] = lr
//     opt.step()
//     print(f"norm{k} =", norm.item())
// print("w =", w.detach().flatten().tolist())
// print("n =", n.detach().flatten().tolist())
// # norm1 = 0.6726812124252319, norm2 = 0.9962430000305176, norm3 = 1.375681757926941 (clipped)
// # w = [0.4824281632900238, -0.18270020186901093, 0.08287040144205093, 0.2825331389904022, 0.78191739320755, -0.5820217132568359]
// # n = [0.9830322861671448, 0.9167301654815674, 1.0830320119857788]
#[test]
fn adamw_with_clipping_and_a_no_decay_group_matches_pytorch() -> anyhow::Result<()> {
    let dev = Device::Cpu;
    let w = Var::from_tensor(&Tensor::new(&[[0.5f32, -0.2, 0.1], [0.3, 0.8, -0.6]], &dev)?)?;
    let n = Var::from_tensor(&Tensor::new(&[1.0f32, 0.9, 1.1], &dev)?)?;
    let vars = vec![
        ("a.mlp.weight".to_string(), w.clone()),
        ("b.norm.weight".to_string(), n.clone()),
    ];
    let mut opt = AdamW::new(vars, &OptimConfig::default())?;
    let norms = [0.6726812124252319, 0.9962430000305176, 1.375681757926941];
    for (step, lr) in [1e-2, 5e-3, 2e-3].into_iter().enumerate() {
        let k = (step + 1) as f32;
        let grads = Grads(vec![
            Tensor::new(&[[0.1 * k, -0.3, 0.2], [0.05, 0.4 * k, -0.1]], &dev)?,
            Tensor::new(&[0.2, -0.1 * k, 0.3], &dev)?,
        ]);
        let norm = AdamW::grad_norm(&grads)?;
        assert!((norm - norms[step]).abs() < 1e-6, "{norm}");
        opt.step(&grads, norm, lr)?;
    }
    let expect_w = [
        0.4824281632900238,
        -0.18270020186901093,
        0.08287040144205093,
        0.2825331389904022,
        0.78191739320755,
        -0.5820217132568359,
    ];
    let expect_n = [0.9830322861671448, 0.9167301654815674, 1.0830320119857788];
    for (got, want) in [(w.as_tensor(), &expect_w[..]), (n.as_tensor(), &expect_n[..])] {
        for (g, e) in got.flatten_all()?.to_vec1::<f32>()?.iter().zip(want) {
            assert!((*g as f64 - e).abs() < 2e-7, "{g} vs {e}");
        }
    }
    // the state round trip: save, restore into a fresh optimizer, same next update
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("optimizer.safetensors");
    candle_core::safetensors::save(&opt.state()?, &path)?;
    let w2 = Var::from_tensor(&w.as_tensor().copy()?)?;
    let n2 = Var::from_tensor(&n.as_tensor().copy()?)?;
    let mut restored = AdamW::new(
        vec![
            ("a.mlp.weight".to_string(), w2.clone()),
            ("b.norm.weight".to_string(), n2.clone()),
        ],
        &OptimConfig::default(),
    )?;
    restored.load_state(&path, opt.step, &dev)?;
    let g = || -> anyhow::Result<Grads> {
        Ok(Grads(vec![
            Tensor::new(&[[0.3f32, 0.1, -0.2], [0.0, 0.2, 0.1]], &dev)?,
            Tensor::new(&[0.1f32, 0.1, -0.1], &dev)?,
        ]))
    };
    opt.step(&g()?, 0.5, 1e-3)?;
    restored.step(&g()?, 0.5, 1e-3)?;
    assert_eq!(w.as_tensor().to_vec2::<f32>()?, w2.as_tensor().to_vec2::<f32>()?);
    assert_eq!(n.as_tensor().to_vec1::<f32>()?, n2.as_tensor().to_vec1::<f32>()?);
    Ok(())
}
