//! Pretraining end to end on a tiny pack: CLM and MLM overfit a batch, the phase switch, bit-
//! identical resume, checkpoints, continued pretraining, divergence, configuration errors.

mod common;

use std::path::Path;

use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use common::{checkpoint_weights as weights, metrics, tiny_pack};
use encoderlab::model::{init_weights, sorted_vars, LanguageModel, ModelConfig};
use encoderlab::objectives::{clm_batch, loss, mlm_batch, MaskTokens, MaskingConfig, Objective};
use encoderlab::rng::seeded;
use encoderlab::train::checkpoint::{checkpoint_dir, list_checkpoints, load_weights};
use encoderlab::train::{pretrain, AdamW, OptimConfig, PretrainConfig, RunOptions};

/// A tiny-model config over `pack`, 4 CLM then 4 MLM steps, runs under `out`.
fn config(pack: &Path, out: &Path, extra: &[&str]) -> anyhow::Result<PretrainConfig> {
    let text = format!(
        r#"
name = "tiny"
[model]
preset = "tiny"
[data]
pack = "{}"
batch_size = 4
grad_accum = 2
eval_blocks = 4
[train]
seed = 3
phases = [{{ objective = "clm", steps = 4 }}, {{ objective = "mlm", ratio = 0.4, steps = 4 }}]
eval_every_steps = 4
checkpoint_every_steps = 3
keep_last = 1
milestones = [4]
out_dir = "{}"
[lr]
peak = 3e-3
warmup_steps = 2
schedule = {{ kind = "wsd", decay_steps = 3 }}
"#,
        pack.display(),
        out.display()
    );
    let path = out.join("tiny.toml");
    std::fs::create_dir_all(out)?;
    std::fs::write(&path, text)?;
    let sets: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    Ok(PretrainConfig::load(&path, &sets)?)
}

#[test]
fn clm_and_mlm_each_overfit_one_batch() -> anyhow::Result<()> {
    let cfg = ModelConfig::tiny();
    let dev = Device::Cpu;
    let blocks: Vec<Vec<u32>> = (0..4)
        .map(|b| (0..24).map(|i| 4 + ((b * 31 + i * 7) % 250) as u32).collect())
        .collect();
    let tokens = MaskTokens {
        mask_id: 3,
        special: vec![0, 1, 2, 3],
        vocab_size: 256,
    };
    for objective in [Objective::Clm, Objective::Mlm] {
        let map = init_weights(&cfg, &mut seeded(0, 1), &dev)?;
        let model = LanguageModel::new(&cfg, VarBuilder::from_varmap(&map, DType::F32, &dev))?;
        let mut opt = AdamW::new(sorted_vars(&map)?, &OptimConfig::default())?;
        let batch = match objective {
            Objective::Clm => clm_batch(&blocks),
            Objective::Mlm => mlm_batch(&blocks, 0.4, &MaskingConfig::default(), &tokens, &mut seeded(0, 2)),
        };
        let first = loss(&model, &batch, &dev, true)?.to_scalar::<f32>()?;
        let mut last = first;
        for _ in 0..80 {
            let l = loss(&model, &batch, &dev, true)?;
            last = l.to_scalar::<f32>()?;
            let grads = opt.grads(&l.backward()?)?;
            let norm = AdamW::grad_norm(&grads)?;
            opt.step(&grads, norm, 1e-2)?;
        }
        assert!(first > 5.0 && last < 0.5, "{objective:?}: loss {first} -> {last}");
    }
    Ok(())
}

#[test]
fn phases_checkpoints_and_bit_identical_resume() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let pack = tiny_pack(dir.path())?;
    // uninterrupted
    let full_cfg = config(&pack, &dir.path().join("full"), &[])?;
    let full = pretrain(&full_cfg, &RunOptions::default())?;
    assert_eq!((full.status.as_str(), full.steps), ("completed", 8));
    let run = full_cfg.run_dir();
    let m = metrics(&run);
    assert_eq!(m.len(), 8);
    // the switch happens at the exact step
    let objectives: Vec<Objective> = m.iter().map(|r| r.objective).collect();
    assert_eq!(objectives[..4], [Objective::Clm; 4]);
    assert_eq!(objectives[4..], [Objective::Mlm; 4]);
    // evaluations at steps 4 and 8, both losses
    assert!(m.iter().all(|r| r.eval_clm_loss.is_some() == (r.step % 4 == 0)));
    assert!(m[3].eval_mlm_loss.is_some() && m[7].eval_clm_loss.is_some());
    assert_eq!(m[7].tokens_seen, 8 * 4 * 2 * 32);
    // checkpoints: the last periodic one (keep_last = 1), the milestone and the final one
    assert_eq!(list_checkpoints(&run)?, [4, 8]);
    let last = checkpoint_dir(&run, 8);
    for f in [
        "model.safetensors",
        "config.json",
        "tokenizer.json",
        "optimizer.safetensors",
        "trainer_state.json",
    ] {
        assert!(last.join(f).exists(), "{f}");
    }
    let hf: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(last.join("config.json"))?)?;
    assert_eq!(hf["attention"], "bidirectional");
    assert_eq!(hf["num_key_value_heads"], 2);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(
            checkpoint_dir(&run, 4).join("config.json")
        )?)?["attention"],
        "causal"
    );

    // interrupted after 5 steps (one past the switch), then resumed
    let part_cfg = config(&pack, &dir.path().join("part"), &[])?;
    let stopped = pretrain(
        &part_cfg,
        &RunOptions {
            stop_after: Some(5),
            ..RunOptions::default()
        },
    )?;
    assert_eq!((stopped.status.as_str(), stopped.steps), ("stopped", 5));
    let resumed = pretrain(
        &part_cfg,
        &RunOptions {
            resume: Some(checkpoint_dir(&part_cfg.run_dir(), 5)),
            ..RunOptions::default()
        },
    )?;
    assert_eq!((resumed.status.as_str(), resumed.steps), ("completed", 8));
    assert_eq!(
        weights(&checkpoint_dir(&part_cfg.run_dir(), 8))?,
        weights(&last)?,
        "resumed weights must be bit-identical"
    );
    let (a, b) = (metrics(&part_cfg.run_dir()), m);
    assert_eq!(a.len(), 8);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(
            (x.step, x.loss.to_bits(), x.grad_norm.to_bits()),
            (y.step, y.loss.to_bits(), y.grad_norm.to_bits())
        );
    }
    // the training loss fell over the CLM phase (tiny model, high LR)
    assert!(b[3].loss < b[0].loss, "{} -> {}", b[0].loss, b[3].loss);

    // a checkpoint loads back into a fresh model, identical
    let cfg = ModelConfig::from_hf_json(&last.join("config.json"))?;
    let map = init_weights(&cfg, &mut seeded(99, 0), &Device::Cpu)?;
    load_weights(&last, &map, &Device::Cpu)?;
    let reloaded: Vec<(String, Vec<f32>)> = sorted_vars(&map)?
        .into_iter()
        .map(|(n, v)| (n, v.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap()))
        .collect();
    assert_eq!(reloaded, weights(&last)?);

    // a resume under another configuration is refused
    let other = config(&pack, &dir.path().join("part"), &["train.seed=4"])?;
    let e = pretrain(
        &other,
        &RunOptions {
            resume: Some(checkpoint_dir(&part_cfg.run_dir(), 8)),
            ..RunOptions::default()
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("another configuration"), "{e}");
    Ok(())
}

#[test]
fn continued_pretraining_starts_from_trained_weights() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let pack = tiny_pack(dir.path())?;
    let clm = config(
        &pack,
        &dir.path().join("clm"),
        &[
            "train.phases=[{objective=\"clm\", steps=3}]",
            "lr.schedule.decay_steps=1",
            "train.milestones=[]",
        ],
    )?;
    pretrain(&clm, &RunOptions::default())?;
    let from = checkpoint_dir(&clm.run_dir(), 3);
    let cont = config(
        &pack,
        &dir.path().join("cont"),
        &[
            "train.phases=[{objective=\"mlm\", ratio=0.4, steps=2}]",
            "lr.schedule.decay_steps=1",
            "lr.warmup_steps=0",
            "train.milestones=[]",
            &format!("train.init_from=\"{}\"", from.display()),
        ],
    )?;
    let one_step = RunOptions {
        stop_after: Some(1),
        ..RunOptions::default()
    };
    assert_eq!(pretrain(&cont, &one_step)?.steps, 1);
    let m = metrics(&cont.run_dir());
    assert_eq!(m[0].objective, Objective::Mlm);
    // weights moved from the CLM checkpoint, not from a fresh draw: the first gradient norm
    // differs from a fresh model's
    let fresh = config(
        &pack,
        &dir.path().join("fresh"),
        &[
            "train.phases=[{objective=\"mlm\", ratio=0.4, steps=2}]",
            "lr.schedule.decay_steps=1",
            "lr.warmup_steps=0",
            "train.milestones=[]",
        ],
    )?;
    pretrain(&fresh, &one_step)?;
    assert_ne!(metrics(&fresh.run_dir())[0].grad_norm, m[0].grad_norm);
    // another architecture cannot continue from it
    let wide = config(
        &pack,
        &dir.path().join("wide"),
        &[
            "model.hidden_size=128",
            &format!("train.init_from=\"{}\"", from.display()),
        ],
    )?;
    let e = pretrain(&wide, &RunOptions::default()).unwrap_err();
    assert!(
        e.to_string().contains("train.init_from") && e.to_string().contains("hidden_size: 128 here, 64 there"),
        "{e}"
    );
    Ok(())
}

#[test]
fn divergence_stops_cleanly_and_keeps_the_last_checkpoint() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let pack = tiny_pack(dir.path())?;
    let cfg = config(
        &pack,
        &dir.path().join("div"),
        &[
            "lr.peak=1e30",
            "train.checkpoint_every_steps=1",
            "train.keep_last=5",
            "lr.warmup_steps=0",
        ],
    )?;
    let s = pretrain(&cfg, &RunOptions::default())?;
    assert_eq!(s.status, "diverged");
    let at = s.diverged_at.unwrap();
    assert!((2..=8).contains(&at), "{at}");
    assert_eq!(s.steps, at - 1);
    // the checkpoints written before are intact and loadable; none after
    let steps = list_checkpoints(&cfg.run_dir())?;
    assert_eq!(steps.last(), Some(&(at - 1)));
    weights(&checkpoint_dir(&cfg.run_dir(), at - 1))?;
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cfg.run_dir().join("summary.json"))?)?;
    assert_eq!(summary["status"], "diverged");
    Ok(())
}

#[test]
fn configuration_errors_name_the_field() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let pack = dir.path().join("pack");
    let err = |extra: &[&str]| config(&pack, &dir.path().join("e"), extra).unwrap_err().to_string();
    assert!(err(&["train.phases=[]"]).contains("phases"));
    assert!(err(&["train.phases=[{objective=\"mlm\", steps=4}]"]).contains("phases[0].ratio"));
    assert!(err(&["train.eval_every_steps=0"]).contains("train.eval_every_steps"));
    assert!(err(&["train.milestones=[100]"]).contains("train.milestones"));
    assert!(err(&["lr.warmup_steps=50"]).contains("lr.warmup_steps"));
    assert!(err(&["masking.mask=0.5"]).contains("mask + random + keep"));
    assert!(err(&["train.batchsize=3"]).contains("batchsize"));
    assert!(err(&["model.preset=\"huge\""]).contains("unknown preset"));
    // the model's own rules, once the vocabulary is known
    let cfg = config(&pack, &dir.path().join("e"), &["model.num_attention_heads=3"])?;
    assert!(cfg
        .resolve_model(300)
        .unwrap_err()
        .to_string()
        .contains("model.num_attention_heads"));
    let cfg = config(&pack, &dir.path().join("e"), &["model.num_key_value_heads=3"])?;
    assert!(cfg
        .resolve_model(300)
        .unwrap_err()
        .to_string()
        .contains("model.num_key_value_heads"));
    let cfg = config(&pack, &dir.path().join("e"), &["model.vocab_size=100"])?;
    assert!(cfg
        .resolve_model(300)
        .unwrap_err()
        .to_string()
        .contains("model.vocab_size"));
    Ok(())
}

/// `train.dtype = "bf16"`: the loss of a bf16 forward is within bf16 rounding of the f32 one,
/// every weight gets an f32 gradient through the bf16 graph, and a run trains with f32
/// weights in its checkpoint and a falling loss.
#[test]
fn bf16_mixed_precision_trains_with_f32_weights() -> anyhow::Result<()> {
    let dev = Device::Cpu;
    let cfg = ModelConfig::tiny();
    let map = init_weights(&cfg, &mut seeded(4, 1), &dev)?;
    let model = LanguageModel::new(&cfg, VarBuilder::from_varmap(&map, DType::F32, &dev))?;
    let blocks: Vec<Vec<u32>> = (0..4u32)
        .map(|b| (0..16).map(|i| 4 + (b * 31 + i * 7) % 250).collect())
        .collect();
    let batch = clm_batch(&blocks);
    let full = loss(&model, &batch, &dev, true)?.to_scalar::<f32>()?;
    let half_model = model.clone().with_compute_dtype(DType::BF16);
    let half = loss(&half_model, &batch, &dev, true)?;
    assert_eq!(half.dtype(), DType::F32);
    let gap = (half.to_scalar::<f32>()? - full).abs();
    assert!(gap < 0.02 * full && gap > 0.0, "f32 loss {full}, bf16 differs by {gap}");
    let grads = half.backward()?;
    for (name, var) in sorted_vars(&map)? {
        let g = grads
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("{name}: no gradient"));
        assert_eq!(g.dtype(), DType::F32, "{name}");
        assert!(g.abs()?.sum_all()?.to_scalar::<f32>()? > 0.0, "{name}: zero gradient");
    }

    let dir = tempfile::tempdir()?;
    let pack = tiny_pack(dir.path())?;
    let run = config(
        &pack,
        &dir.path().join("bf16"),
        &["train.dtype=\"bf16\"", "train.milestones=[]"],
    )?;
    let summary = pretrain(&run, &RunOptions::default())?;
    assert_eq!(summary.steps, 8);
    let m = metrics(&run.run_dir());
    assert!(m.iter().all(|s| s.loss.is_finite()));
    assert!(
        m[3].loss < m[0].loss,
        "CLM loss did not fall: {:?}",
        m.iter().map(|s| s.loss).collect::<Vec<_>>()
    );
    let last = checkpoint_dir(&run.run_dir(), 8);
    let saved = candle_core::safetensors::load(last.join("model.safetensors"), &dev)?;
    assert!(saved.values().all(|t| t.dtype() == DType::F32));
    Ok(())
}

#[test]
fn a_completed_run_is_returned_not_redone_and_a_different_one_is_refused() -> anyhow::Result<()> {
    use encoderlab::train::{pretrain, PretrainConfig, RunOptions, RunSummary};
    let dir = tempfile::tempdir()?;
    common::tiny_checkpoint(dir.path())?;
    let run = dir.path().join("runs/tinyclm");
    let read = |f: &str| std::fs::read_to_string(run.join(f));
    let (metrics, config) = (read("metrics.jsonl")?, read("config.json")?);
    let first: RunSummary = serde_json::from_str(&read("summary.json")?)?;
    let cfg = PretrainConfig::load(dir.path().join("pretrain.toml"), &[])?;
    let again = pretrain(&cfg, &RunOptions::default())?;
    assert_eq!(again, first);
    assert_eq!(read("metrics.jsonl")?, metrics, "not retrained");
    let other = PretrainConfig::load(dir.path().join("pretrain.toml"), &["train.seed=7".into()])?;
    let err = pretrain(&other, &RunOptions::default()).unwrap_err().to_string();
    assert!(err.contains("already holds checkpoints"), "{err}");
    assert_eq!(
        read("config.json")?,
        config,
        "a refused call leaves the folder as it was"
    );
    Ok(())
}

/// Issue 18, items 2, 3, 11 and 13: a refused resume (a damaged checkpoint) leaves the run's
/// log as it was and says which file of which checkpoint is damaged; what a kill left of a
/// checkpoint being written is removed on the next start; `--continue` on a damaged last
/// checkpoint advises the last intact one; a pack with ids beyond the model's vocabulary is
/// refused naming its file before the run folder exists; `name = ".."` is refused.
#[test]
fn damaged_checkpoints_and_packs_are_refused_without_touching_the_run() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let pack = tiny_pack(dir.path())?;
    let cfg = config(&pack, &dir.path().join("runs"), &[])?;
    pretrain(&cfg, &RunOptions::default())?;
    let run = cfg.run_dir();
    let log = std::fs::read_to_string(run.join("metrics.jsonl"))?;
    assert_eq!(log.lines().count(), 8);
    let ck4 = checkpoint_dir(&run, 4);
    let resume4 = RunOptions {
        resume: Some(ck4.clone()),
        ..RunOptions::default()
    };
    for (file, what) in [
        ("model.safetensors", "the model's weights"),
        ("optimizer.safetensors", "the optimizer's moments"),
    ] {
        let path = ck4.join(file);
        let intact = std::fs::read(&path)?;
        std::fs::write(&path, &intact[..40])?; // a torn write
        let err = pretrain(&cfg, &resume4).unwrap_err().to_string();
        assert!(err.contains(&path.display().to_string()) && err.contains(what), "{err}");
        assert_eq!(
            std::fs::read_to_string(run.join("metrics.jsonl"))?,
            log,
            "a refused resume keeps the log"
        );
        std::fs::write(&path, intact)?;
    }

    // what a kill during a checkpoint write leaves, removed when the run starts again
    let torn = run.join("checkpoints/.step-0000006.tmp-AbC123");
    std::fs::create_dir_all(&torn)?;
    std::fs::write(torn.join("model.safetensors"), b"half")?;
    let done = pretrain(&cfg, &resume4)?;
    assert_eq!(done.steps, 8);
    assert!(!torn.exists(), "the interrupted checkpoint's folder is left behind");
    assert_eq!(std::fs::read_to_string(run.join("metrics.jsonl"))?.lines().count(), 8);

    // a damaged trainer_state.json in the last checkpoint: the advice names the intact one
    std::fs::write(checkpoint_dir(&run, 8).join("trainer_state.json"), "{\"step\": 8,")?;
    let err = encoderlab::train::pretrain_resumable(&cfg, false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("step-0000008/trainer_state.json"), "{err}");
    assert!(err.contains(&format!("--resume {}", ck4.display())), "{err}");

    // ids beyond the vocabulary: refused naming the token file, no run folder made
    let meta_path = pack.join("meta.json");
    let mut meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&meta_path)?)?;
    meta["tokenizer"]["vocab_size"] = 100.into();
    std::fs::write(&meta_path, serde_json::to_string(&meta)?)?;
    let small = config(&pack, &dir.path().join("other"), &[])?;
    let err = pretrain(&small, &RunOptions::default()).unwrap_err().to_string();
    assert!(err.contains("train.bin") && err.contains("vocabulary of 100"), "{err}");
    assert!(!small.run_dir().exists(), "the run folder was made before the refusal");

    // a name that leaves out_dir
    for name in ["..", ".", ""] {
        let err = config(&pack, &dir.path().join("x"), &[&format!("name=\"{name}\"")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("name") && err.contains("plain folder name"),
            "{name:?}: {err}"
        );
    }
    Ok(())
}

/// Issue 20, items 1 and 2: the same bits whatever the number of threads (`gemm`'s kernels,
/// ours, the parallel loops) and whatever vector path our kernels take (`ENCODERLAB_SIMD`:
/// AVX-512 or AVX2, and plain scalar code): the losses, gradient norms and final weights of the
/// tiny run, each in its own process (the thread pool and the path are per process).
#[test]
fn the_same_bits_on_any_thread_count_and_vector_path() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let pack = tiny_pack(dir.path())?;
    let mut runs = Vec::new();
    for (threads, simd) in [("1", ""), ("2", ""), ("1", "scalar"), ("2", "avx2")] {
        let out = dir.path().join(format!("threads{threads}{simd}"));
        config(&pack, &out, &[])?;
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_encoderlab"))
            .args(["pretrain", "--config"])
            .arg(out.join("tiny.toml"))
            .args(["--set", "data.batch_size=16", "--threads", threads])
            .env("ENCODERLAB_SIMD", simd)
            .output()?;
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let run = out.join("tiny");
        let steps: Vec<(u64, u64)> = metrics(&run)
            .iter()
            .map(|m| (m.loss.to_bits(), m.grad_norm.to_bits()))
            .collect();
        let last = *list_checkpoints(&run)?.last().expect("a checkpoint");
        runs.push((
            format!("{threads} thread(s), path {simd:?}"),
            steps,
            weights(&checkpoint_dir(&run, last))?,
        ));
    }
    assert_eq!(runs[0].1.len(), 8);
    for (what, steps, weights) in &runs[1..] {
        assert!(*steps == runs[0].1, "the losses differ on {what} from {}", runs[0].0);
        assert!(*weights == runs[0].2, "the weights differ on {what} from {}", runs[0].0);
    }
    Ok(())
}

#[test]
fn the_unigram_floor_is_the_frequency_model_of_the_training_blocks() -> anyhow::Result<()> {
    use encoderlab::data::tokens::{PackedDataset, Split};
    use encoderlab::train::unigram::unigram_nll;
    // by hand: counts + 1 = [2, 3, 4, 1] of 10; −ln(0.2), −ln(0.3), −ln(0.4), −ln(0.1)
    let nll = unigram_nll(&[0, 1, 1, 2, 2, 2, 9], 4);
    let want = [
        1.6094379124341003,
        1.2039728043259361,
        0.916290731874155,
        std::f64::consts::LN_10,
    ];
    for (a, b) in nll.iter().zip(want) {
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }
    // the run's summary holds the CLM floor of its evaluation blocks: every next token of the
    // first 4 validation blocks under the training blocks' frequencies
    let dir = tempfile::tempdir()?;
    let pack = tiny_pack(dir.path())?;
    let cfg = config(
        &pack,
        &dir.path().join("runs"),
        &[
            "train.phases=[{objective=\"clm\", steps=2}]",
            "train.milestones=[]",
            "lr.warmup_steps=0",
            "lr.schedule={kind=\"wsd\", decay_steps=1}",
        ],
    )?;
    let s = pretrain(&cfg, &RunOptions::default())?;
    let data = PackedDataset::open(&pack)?;
    let vocab = data.meta().tokenizer.vocab_size;
    let train = data.file(Split::Train);
    let nll = unigram_nll(&train.tokens(0, train.len())?, vocab);
    let (mut sum, mut n) = (0.0, 0.0);
    for i in 0..4u64.min(data.blocks(Split::Validation)) {
        for t in &data.block(Split::Validation, i)?[1..] {
            sum += nll[*t as usize];
            n += 1.0;
        }
    }
    let floor = s.unigram_clm_loss.expect("floor");
    assert!((floor - sum / n).abs() < 1e-9, "{floor} vs {}", sum / n);
    assert!(floor > 0.0 && floor < (vocab as f64).ln());
    let mlm = s.unigram_mlm_loss.expect("floor");
    assert!(mlm > 0.0 && mlm < (vocab as f64).ln() + 1.0);
    Ok(())
}
