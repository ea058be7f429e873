//! TensorBoard event files, read back with TensorBoard's own reader
//! (`scripts/tensorboard_read.py`, its `EventAccumulator`): every scalar of `metrics.jsonl`
//! with its step and value, held-out losses, the resolved config as text, a resumed run's
//! steps once each, a fine-tuning run's curve and scores, and `--no-tensorboard`.

mod common;

use std::path::Path;
use std::process::Command;

use common::{metrics, tiny_checkpoint};
use encoderlab::artifacts::{FinetuneStepMetrics, RunResult, StepMetrics};
use encoderlab::train::{pretrain, PretrainConfig, RunOptions};
use serde_json::Value;

/// What TensorBoard reads from `dir`; `None` (and SKIPPED) where its Python package is missing.
fn tensorboard_reads(dir: &Path) -> Option<Value> {
    let present = Command::new("python3")
        .args(["-c", "import tensorboard"])
        .status()
        .is_ok_and(|s| s.success());
    if !present {
        eprintln!("SKIPPED: TensorBoard's reader is not installed (pip install tensorboard)");
        return None;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/tensorboard_read.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(dir)
        .output()
        .expect("python3 runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    Some(serde_json::from_slice(&out.stdout).expect("JSON"))
}

/// A scalar series as (step, value).
fn series(tb: &Value, tag: &str) -> Vec<(u64, f64)> {
    tb["scalars"][tag]
        .as_array()
        .unwrap_or_else(|| panic!("no scalar `{tag}` in {}", tb["scalars"]))
        .iter()
        .map(|p| (p[0].as_u64().unwrap(), p[1].as_f64().unwrap()))
        .collect()
}

/// `v` as TensorBoard stores it (a 32-bit float).
fn f32_of(v: f64) -> f64 {
    v as f32 as f64
}

#[test]
fn pretraining_scalars_and_config_are_what_tensorboard_reads() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    tiny_checkpoint(dir.path())?;
    let run = dir.path().join("runs/tinyclm");
    let m = metrics(&run);
    assert_eq!(m.len(), 2);
    let files: Vec<_> = std::fs::read_dir(run.join("tensorboard"))?.collect();
    assert_eq!(files.len(), 1, "one event file for one start");
    let Some(tb) = tensorboard_reads(&run.join("tensorboard")) else {
        return Ok(());
    };
    type Field = fn(&StepMetrics) -> f64;
    let fields: [(&str, Field); 6] = [
        ("train/loss", |m| m.loss),
        ("train/lr", |m| m.lr),
        ("train/grad_norm", |m| m.grad_norm),
        ("train/tokens_per_s", |m| m.tokens_per_s),
        ("train/tokens_seen", |m| m.tokens_seen as f64),
        ("train/phase", |m| m.phase as f64),
    ];
    for (tag, field) in fields {
        let expected: Vec<(u64, f64)> = m.iter().map(|s| (s.step as u64, f32_of(field(s)))).collect();
        assert_eq!(series(&tb, tag), expected, "{tag}");
    }
    // held-out losses at the evaluation step only (every 2 steps)
    for (tag, value) in [
        ("eval/clm_loss", m[1].eval_clm_loss),
        ("eval/mlm_loss", m[1].eval_mlm_loss),
    ] {
        assert_eq!(series(&tb, tag), [(2, f32_of(value.unwrap()))], "{tag}");
    }
    // the resolved config, as text
    let config = tb["texts"]["config"][0][1].as_str().unwrap();
    assert!(
        config.contains("\"name\": \"tinyclm\"") && config.contains("\"eval_every_steps\": 2"),
        "{config}"
    );
    Ok(())
}

#[test]
fn a_resumed_run_shows_each_step_once_and_no_tensorboard_writes_none() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    tiny_checkpoint(dir.path())?;
    let toml = dir.path().join("pretrain.toml");
    // two steps, a checkpoint after each; then resumed from the first: step 2 is run again
    let cfg = PretrainConfig::load(&toml, &["name=again".into(), "train.checkpoint_every_steps=1".into()])?;
    pretrain(&cfg, &RunOptions::default())?;
    let run = dir.path().join("runs/again");
    let resume = RunOptions {
        resume: Some(run.join("checkpoints/step-0000001")),
        ..RunOptions::default()
    };
    pretrain(&cfg, &resume)?;
    assert_eq!(
        std::fs::read_dir(run.join("tensorboard"))?.count(),
        2,
        "one file per start"
    );
    let m = metrics(&run);
    if let Some(tb) = tensorboard_reads(&run.join("tensorboard")) {
        let loss = series(&tb, "train/loss");
        let expected: Vec<(u64, f64)> = m.iter().map(|s| (s.step as u64, f32_of(s.loss))).collect();
        assert_eq!(loss, expected, "steps 1 and 2 once each, step 2 from the resumed run");
    }
    // turned off: no event file, and the same run (id) as with it on
    let off = PretrainConfig::load(&toml, &["name=off".into(), "train.tensorboard=false".into()])?;
    pretrain(&off, &RunOptions::default())?;
    assert!(!dir.path().join("runs/off/tensorboard").exists());
    let on = PretrainConfig::load(&toml, &["name=off".into()])?;
    assert_eq!(off.run_id()?, on.run_id()?);
    Ok(())
}

#[test]
fn a_finetuning_run_logs_its_curve_and_scores() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let curve: Vec<FinetuneStepMetrics> = (1..=3)
        .map(|step| FinetuneStepMetrics {
            step,
            loss: 1.0 / step as f64,
            lr: 1e-4 * step as f64,
            grad_norm: 0.5,
            examples_per_s: 100.25,
        })
        .collect();
    let result: RunResult = serde_json::from_value(serde_json::json!({
        "run_id": "r", "model": "m", "objective": "clm", "family": "SC", "dataset": "d",
        "learning_rate": 1e-4, "pretrain_seed": 0, "seed": 0, "metric": "accuracy",
        "validation": 0.75, "test": 0.5,
        "all_scores": [["validation", "accuracy", 0.75], ["test", "accuracy", 0.5], ["test", "macro_f1", 0.25]],
        "status": "ok", "reason": null, "steps": 3, "examples": 12,
        "train_examples_per_s": 1.0, "eval_examples_per_s": 1.0, "wall_seconds": 1.0
    }))?;
    let config = serde_json::json!({"train": {"learning_rate": 1e-4}});
    let bytes = encoderlab::tensorboard::finetuning_events(&config, &curve, &result)?;
    std::fs::write(dir.path().join(encoderlab::tensorboard::event_file_name()), bytes)?;
    let Some(tb) = tensorboard_reads(dir.path()) else {
        return Ok(());
    };
    let loss: Vec<(u64, f64)> = curve.iter().map(|m| (m.step as u64, f32_of(m.loss))).collect();
    assert_eq!(series(&tb, "train/loss"), loss);
    assert_eq!(series(&tb, "train/lr")[2], (3, f32_of(3e-4)));
    assert_eq!(series(&tb, "validation/accuracy"), [(3, 0.75)]);
    assert_eq!(series(&tb, "test/macro_f1"), [(3, 0.25)]);
    assert!(tb["texts"]["config"][0][1]
        .as_str()
        .unwrap()
        .contains("\"learning_rate\""));
    Ok(())
}
