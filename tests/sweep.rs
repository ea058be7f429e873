//! Sweeps: expansion of the axes, the local executor (parallel, skipping finished runs,
//! recording a run whose process died), collection into the runs table, and a real `kill -9`
//! of a running sweep followed by a rerun: every run exactly once, no corrupt record.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{shared_data, tiny_checkpoint, write};
use encoderlab::stats::runs::read_runs;
use encoderlab::sweep::{plan, SweepConfig};

/// The base fine-tuning config of the sweeps here (the tiny checkpoint on `dataset`, `steps`
/// steps), written to `dir/base.toml`.
fn base_file(dir: &Path, ckpt: &Path, data: &Path, dataset: &str, steps: usize) -> PathBuf {
    write(
        dir,
        "base.toml",
        &format!(
            r#"
[model]
checkpoint = "{}"
[task]
dataset = "{dataset}"
data_dir = "{}"
max_length = 32
max_train_examples = 64
max_eval_examples = 16
[train]
learning_rate = 1e-3
batch_size = 8
max_steps = {steps}
"#,
            ckpt.display(),
            data.display()
        ),
    )
}

/// A base fine-tuning config (tiny checkpoint, SST-2, `steps` steps) and a sweep over
/// learning rates × seeds (`lrs` × `seeds`) in `dir`; returns the sweep file.
fn sweep_files(dir: &Path, ckpt: &Path, data: &Path, steps: usize, lrs: &str, seeds: &str) -> PathBuf {
    base_file(dir, ckpt, data, "sst2", steps);
    write(
        dir,
        "sweep.toml",
        &format!(
            r#"
name = "grid"
base = "{}"
out_dir = "{}"
set = ["task.max_eval_examples=12"]
[[axes]]
key = "train.learning_rate"
values = {lrs}
[[axes]]
key = "train.seed"
values = {seeds}
"#,
            dir.join("base.toml").display(),
            dir.join("sweeps").display()
        ),
    )
}

fn encoderlab(args: &[&str], sweep: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_encoderlab"))
        .args(args)
        .arg("--config")
        .arg(sweep)
        .output()
        .unwrap()
}

/// The record folders under `runs` (hidden staging folders are not records).
fn records(runs: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(runs) else {
        return Vec::new();
    };
    rd.flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir() && !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect()
}

#[test]
fn axes_expand_to_the_product_once_per_distinct_config() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let ckpt = dir.path().join("ckpt");
    let sweep = sweep_files(dir.path(), &ckpt, Path::new("data"), 3, "[1e-4, 2e-4, 1e-4]", "[0, 1]");
    let cfg = SweepConfig::load(&sweep)?;
    let specs = cfg.expand()?;
    // 3 × 2 points, the repeated learning rate resolves to configs already seen
    assert_eq!(specs.len(), 4);
    let got: Vec<(f64, u64)> = specs
        .iter()
        .map(|s| (s.config.train.learning_rate, s.config.train.seed))
        .collect();
    assert_eq!(got, vec![(1e-4, 0), (1e-4, 1), (2e-4, 0), (2e-4, 1)]);
    for (i, s) in specs.iter().enumerate() {
        assert_eq!(s.index, i);
        assert_eq!(s.run_id, s.config.run_id()?);
        assert_eq!(s.config.task.max_eval_examples, 12, "the sweep's `set` applies");
        assert_eq!(s.config.train.out_dir, cfg.runs_dir());
    }
    // keys that move together
    let text = std::fs::read_to_string(&sweep)?.replace(
        "[[axes]]\nkey = \"train.seed\"\nvalues = [0, 1]",
        "[[axes]]\nvalues = [{ \"task.dataset\" = \"sst2\" }, { \"task.dataset\" = \"conll2003\", \"train.epochs\" = 1 }]",
    );
    let paired = write(dir.path(), "paired.toml", &text);
    let specs = SweepConfig::load(&paired)?.expand()?;
    assert_eq!(specs.len(), 4);
    assert_eq!(specs[1].config.task.dataset, "conll2003");
    assert_eq!(
        (specs[1].config.train.epochs, specs[0].config.train.epochs),
        (Some(1), None)
    );
    // exclusions leave out the points whose every listed key takes a listed value
    let excl = write(
        dir.path(),
        "excl.toml",
        &format!(
            "{text}\n[[exclude]]\n\"train.learning_rate\" = [2e-4]\n\"task.dataset\" = [\"conll2003\", \"rte\"]\n"
        ),
    );
    let kept: Vec<(f64, String)> = SweepConfig::load(&excl)?
        .expand()?
        .iter()
        .map(|s| (s.config.train.learning_rate, s.config.task.dataset.clone()))
        .collect();
    assert_eq!(
        kept,
        vec![(1e-4, "sst2".into()), (1e-4, "conll2003".into()), (2e-4, "sst2".into())]
    );
    for (rule, field) in [
        ("\"train.lr\" = [2e-4]", "exclude[0].\"train.lr\""),
        ("\"train.learning_rate\" = 2e-4", "exclude[0].\"train.learning_rate\""),
    ] {
        let bad = write(dir.path(), "bad_excl.toml", &format!("{text}\n[[exclude]]\n{rule}\n"));
        let err = SweepConfig::load(&bad).unwrap_err().to_string();
        assert!(err.contains(field), "{err}");
    }
    // the time estimate counts each pending run at its own dataset's pace once one has finished
    let cfg = SweepConfig::load(&paired)?;
    let finish = |spec: &encoderlab::sweep::RunSpec, seconds: f64| -> anyhow::Result<()> {
        encoderlab::finetune::record::failed_record(&spec.config, "stand-in")?;
        let path = cfg.runs_dir().join(&spec.run_id).join("result.json");
        let mut r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
        r["status"] = "ok".into();
        r["wall_seconds"] = seconds.into();
        std::fs::write(&path, r.to_string())?;
        Ok(())
    };
    finish(&specs[0], 10.0)?; // sst2
    let p = plan(&specs, &cfg.runs_dir(), 2);
    assert_eq!((p.ok, p.pending, p.unmeasured_pending), (1, 3, 2));
    assert_eq!(p.remaining_seconds, Some(15.0));
    finish(&specs[1], 30.0)?; // conll2003
    let p = plan(&specs, &cfg.runs_dir(), 2);
    assert_eq!(
        (p.pending, p.unmeasured_pending, p.mean_run_seconds),
        (2, 0, Some(20.0))
    );
    assert_eq!(p.remaining_seconds, Some(20.0), "(10 + 30) / 2 workers");
    // errors name the field
    let bad = write(
        dir.path(),
        "bad.toml",
        &text.replace("\"train.epochs\" = 1", "\"train.epoch\" = 1"),
    );
    let err = SweepConfig::load(&bad)?.expand().unwrap_err().to_string();
    assert!(err.contains("epoch"), "{err}");
    let bad = write(
        dir.path(),
        "bad2.toml",
        &text.replace("values = [{ \"task.dataset\" = \"sst2\" }, ", "values = [3, "),
    );
    let err = SweepConfig::load(&bad).unwrap_err().to_string();
    assert!(err.contains("axes[1]"), "{err}");
    Ok(())
}

#[test]
fn local_sweep_runs_in_parallel_skips_finished_runs_and_collects() -> anyhow::Result<()> {
    let Some(data) = shared_data() else { return Ok(()) };
    let dir = tempfile::tempdir()?;
    let ckpt = tiny_checkpoint(dir.path())?;
    let sweep = sweep_files(dir.path(), &ckpt, &data, 3, "[1e-3, 3e-3]", "[0, 1]");
    let cfg = SweepConfig::load(&sweep)?;
    let specs = cfg.expand()?;
    assert_eq!(plan(&specs, &cfg.runs_dir(), 2).pending, 4);
    let out = Command::new(env!("CARGO_BIN_EXE_encoderlab"))
        .args([
            "sweep",
            "run",
            "--workers",
            "2",
            "--threads-per-worker",
            "1",
            "--config",
        ])
        .arg(&sweep)
        .output()?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(
        (summary["started"].as_u64(), summary["done"].as_u64()),
        (Some(4), Some(4))
    );
    let p = plan(&specs, &cfg.runs_dir(), 2);
    assert_eq!((p.ok, p.pending), (4, 0));
    assert!(p.mean_run_seconds.unwrap() > 0.0);
    // a second call has nothing to do
    let mtime = std::fs::metadata(cfg.runs_dir().join(&specs[0].run_id).join("result.json"))?.modified()?;
    let out = encoderlab(&["sweep", "run", "--workers", "2"], &sweep);
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(
        (summary["started"].as_u64(), summary["skipped"].as_u64()),
        (Some(0), Some(4))
    );
    assert_eq!(
        std::fs::metadata(cfg.runs_dir().join(&specs[0].run_id).join("result.json"))?.modified()?,
        mtime
    );
    // the runs table, as the analysis reads it
    let table = dir.path().join("runs.csv");
    let out = Command::new(env!("CARGO_BIN_EXE_encoderlab"))
        .args(["sweep", "collect", "--out"])
        .arg(&table)
        .arg("--config")
        .arg(&sweep)
        .output()?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows = read_runs(&table)?;
    assert_eq!(rows.len(), 8);
    let header = std::fs::read_to_string(&table)?;
    assert!(header.starts_with(
        "model,objective,family,dataset,learning_rate,pretrain_seed,seed,split,metric,score,status,run_id,steps,wall_seconds"
    ));
    let plan_out = encoderlab(&["sweep", "plan", "--workers", "2"], &sweep);
    assert!(String::from_utf8_lossy(&plan_out.stdout).contains("4 runs: 4 ok, 0 diverged, 0 failed, 0 pending"));
    // the same table as Parquet, typed, reads back to the same runs
    #[cfg(feature = "polars")]
    {
        let parquet = dir.path().join("runs.parquet");
        let out = encoderlab(&["sweep", "collect", "--out", parquet.to_str().unwrap()], &sweep);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(read_runs(&parquet)?, rows);
        let frame = encoderlab::data::parquet::read_frame(&parquet)?;
        let dtype = |c: &str| frame.column(c).unwrap().dtype().to_string();
        assert_eq!(
            ["learning_rate", "seed", "score", "steps", "run_id"].map(dtype),
            ["f64", "i64", "f64", "i64", "str"]
        );
    }
    let out = encoderlab(&["sweep", "collect", "--out", "runs.xlsx"], &sweep);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains(".csv or .parquet"));
    Ok(())
}

#[test]
fn a_run_whose_setup_fails_is_recorded_failed_and_the_sweep_goes_on() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    // no checkpoint there: every run fails during setup, before it could write anything; its
    // worker records it `failed` with the error (a worker that dies: the test after the next)
    let sweep = sweep_files(
        dir.path(),
        &dir.path().join("missing"),
        Path::new("data"),
        3,
        "[1e-3]",
        "[0, 1]",
    );
    let out = encoderlab(&["sweep", "run", "--workers", "2"], &sweep);
    assert!(
        out.status.success(),
        "the sweep goes on: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cfg = SweepConfig::load(&sweep)?;
    let specs = cfg.expand()?;
    let p = plan(&specs, &cfg.runs_dir(), 1);
    assert_eq!((p.failed, p.pending), (2, 0));
    let result: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(
        cfg.runs_dir().join(&specs[0].run_id).join("result.json"),
    )?)?;
    assert_eq!(result["status"], "failed");
    assert!(result["reason"].as_str().unwrap().contains("config.json"), "{result}");
    // failed runs are skipped unless retried
    let out = encoderlab(&["sweep", "run"], &sweep);
    let s: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(s["started"].as_u64(), Some(0));
    let out = encoderlab(&["sweep", "run", "--retry-failed"], &sweep);
    let s: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!((s["started"].as_u64(), s["failed"].as_u64()), (Some(2), Some(2)));
    // failed runs are in the table with an empty score (a null in Parquet): NaN to the analysis
    for name in ["runs.csv", "runs.parquet"] {
        if name.ends_with("parquet") && !cfg!(feature = "polars") {
            continue;
        }
        let table = dir.path().join(name);
        encoderlab::sweep::collect(&specs, &cfg.runs_dir(), &table)?;
        let rows = read_runs(&table)?;
        assert_eq!(rows.len(), 4, "{name}: validation and test of 2 runs");
        assert!(rows.iter().all(|r| r.score.is_nan()), "{name}");
    }
    Ok(())
}

#[test]
fn kill_9_then_rerun_loses_nothing_and_duplicates_nothing() -> anyhow::Result<()> {
    let Some(data) = shared_data() else { return Ok(()) };
    let dir = tempfile::tempdir()?;
    let ckpt = tiny_checkpoint(dir.path())?;
    let sweep = sweep_files(dir.path(), &ckpt, &data, 40, "[1e-3, 2e-3, 3e-3]", "[0, 1]");
    let cfg = SweepConfig::load(&sweep)?;
    let specs = cfg.expand()?;
    let mut child = Command::new(env!("CARGO_BIN_EXE_encoderlab"))
        .args([
            "sweep",
            "run",
            "--workers",
            "2",
            "--threads-per-worker",
            "1",
            "--config",
        ])
        .arg(&sweep)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    // kill it once some runs are done and others are under way
    let start = Instant::now();
    while records(&cfg.runs_dir()).len() < 2 && start.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let done_at_kill = records(&cfg.runs_dir()).len();
    Command::new("kill").args(["-9", &child.id().to_string()]).status()?;
    child.wait()?;
    assert!(
        done_at_kill < specs.len(),
        "the sweep finished before the kill; make the runs longer"
    );
    // its run processes die with it: nothing changes afterwards
    std::thread::sleep(Duration::from_millis(500));
    let after = records(&cfg.runs_dir()).len();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(records(&cfg.runs_dir()).len(), after, "a run went on after the kill");
    // every record present is whole
    for r in records(&cfg.runs_dir()) {
        for f in [
            "config.json",
            "result.json",
            "instances.jsonl",
            "metrics.jsonl",
            "runs.csv",
        ] {
            assert!(r.join(f).exists(), "{} lacks {f}", r.display());
        }
    }
    let out = encoderlab(&["sweep", "run", "--workers", "2"], &sweep);
    assert!(out.status.success());
    let table = dir.path().join("runs.csv");
    let n = encoderlab::sweep::collect(&specs, &cfg.runs_dir(), &table)?;
    assert_eq!(n, specs.len());
    let rows = read_runs(&table)?; // also refuses duplicate (model, objective, dataset, lr, seed, split)
    assert_eq!(rows.len(), 2 * specs.len());
    assert_eq!(records(&cfg.runs_dir()).len(), specs.len());
    assert!(rows.iter().all(|r| r.score.is_finite()));
    Ok(())
}

#[test]
fn encodeval_results_import_into_the_runs_table() -> anyhow::Result<()> {
    use encoderlab::sweep::encodeval::{objective_of, parse_config};
    // the objective rule agrees with the paper's own labels in the released slice
    if let Some(data) = shared_data() {
        for r in read_runs(&data.join("paper_runs/runs.csv"))? {
            assert_eq!(objective_of(&r.model), r.objective, "{}", r.model);
        }
    }
    assert_eq!(
        parse_config("msmarco_pairs_lr1e-04_sd3"),
        Some((Some("msmarco_pairs".into()), 1e-4, 3))
    );
    assert_eq!(parse_config("lr5e-05_sd0"), Some((None, 5e-5, 0)));
    assert_eq!(parse_config("lr_sd0"), None);
    let dir = tempfile::tempdir()?;
    let tree = dir.path().join("EncodEval/results");
    write(
        &tree,
        "610m-clm-42k/SC/sst2/lr1e-04_sd0/results.json",
        r#"{"validation": {"score": 0.85, "scores_i": [1, 0]}, "test": {"score": 0.9, "scores_i": [1]}}"#,
    );
    write(
        &tree,
        "610m-clm-10k-mlm40-42k/IR/msmarco/msmarco_pairs_lr5e-05_sd2/results.json",
        r#"{"validation": {"score": 0.31}}"#,
    );
    write(
        &tree,
        "610m-mlm40-42k/TC/conll2003_en/lr2e-04_sd1/results.json",
        r#"{"validation": {"score": null}}"#,
    );
    let out = dir.path().join("paper.csv");
    let run = |root: &Path| {
        Command::new(env!("CARGO_BIN_EXE_encoderlab"))
            .args(["import", "encodeval"])
            .arg(root)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap()
    };
    let o = run(&dir.path().join("EncodEval"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rows = read_runs(&out)?;
    let got: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{} {} {} {} {} {} {}",
                r.model,
                r.objective,
                r.family.as_deref().unwrap_or("-"),
                r.dataset,
                r.learning_rate,
                r.seed,
                r.split
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            "610m-clm-10k-mlm40-42k clm10k-mlm40 IR msmarco/msmarco_pairs 0.00005 2 validation",
            "610m-clm-42k clm SC sst2 0.0001 0 validation",
            "610m-clm-42k clm SC sst2 0.0001 0 test",
            "610m-mlm40-42k mlm40 TC conll2003_en 0.0002 1 validation",
        ]
    );
    assert_eq!(rows[1].score, 0.85);
    assert!(rows[3].score.is_nan(), "a split without a score is a failed run");
    // bad trees are refused naming the folder or file
    write(
        &tree,
        "610m-clm-42k/SC/sst2/lr1e-04_sd1/results.json",
        "{\"validation\": ",
    );
    let o = run(&tree);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("lr1e-04_sd1/results.json:1"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    std::fs::remove_dir_all(tree.join("610m-clm-42k/SC/sst2/lr1e-04_sd1"))?;
    write(&tree, "610m-clm-42k/SC/sst2/best/results.json", "{}");
    let o = run(&tree);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("sst2/best"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = run(dir.path());
    assert!(String::from_utf8_lossy(&o.stderr).contains("not an EncodEval results tree"));
    Ok(())
}

/// Whether a Slurm controller answers (`scripts/slurm.sh start` runs one).
fn slurm_running() -> bool {
    let up = Command::new("sinfo")
        .args(["-h", "-o", "%T"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !up {
        eprintln!("SKIPPED: no Slurm answers (start one with scripts/slurm.sh start)");
    }
    up
}

/// Waits until no task of the sweep's array is queued or running.
fn wait_for_slurm(cfg: &SweepConfig, limit: Duration) {
    let start = Instant::now();
    while !encoderlab::sweep::slurm::active_indices(cfg).unwrap().is_empty() {
        assert!(start.elapsed() < limit, "the Slurm array did not finish in {limit:?}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The runs table without the columns that differ between two executions of the same runs.
fn table_without_ids(path: &Path) -> Vec<String> {
    let mut rows: Vec<String> = csv::Reader::from_path(path)
        .unwrap()
        .deserialize::<encoderlab::artifacts::RunRow>()
        .map(|r| {
            let r = r.unwrap();
            let kept = encoderlab::artifacts::RunRow {
                status: None,
                run_id: None,
                steps: None,
                wall_seconds: None,
                ..r
            };
            format!("{kept:?}")
        })
        .collect();
    rows.sort();
    rows
}

#[test]
fn slurm_arrays_match_the_local_executor_and_cancelled_tasks_are_rerun() -> anyhow::Result<()> {
    let Some(data) = shared_data() else { return Ok(()) };
    if !slurm_running() {
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let ckpt = tiny_checkpoint(dir.path())?;
    let local = sweep_files(
        dir.path(),
        &ckpt,
        &data,
        3,
        "[1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4]",
        "[0, 1]",
    );
    let text = std::fs::read_to_string(&local)?;
    let slurm = write(
        dir.path(),
        "slurm.toml",
        &text.replace("name = \"grid\"", "name = \"slurm-grid\""),
    );
    // the same 12 runs locally (2 × 1 thread) and through sbatch (1 CPU per task)
    let out = encoderlab(&["sweep", "run", "--workers", "2", "--threads-per-worker", "1"], &local);
    assert!(out.status.success());
    let out = encoderlab(&["sweep", "slurm", "--cpus-per-task", "1"], &slurm);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("(12 runs)"));
    // resubmitting while it runs submits nothing
    let again = encoderlab(&["sweep", "slurm", "--cpus-per-task", "1"], &slurm);
    assert!(String::from_utf8_lossy(&again.stdout).contains("nothing to submit"));
    let cfg = SweepConfig::load(&slurm)?;
    wait_for_slurm(&cfg, Duration::from_secs(300));
    let specs = cfg.expand()?;
    assert_eq!(plan(&specs, &cfg.runs_dir(), 1).ok, 12);
    let (a, b) = (dir.path().join("local.csv"), dir.path().join("slurm.csv"));
    encoderlab::sweep::collect(
        &SweepConfig::load(&local)?.expand()?,
        &SweepConfig::load(&local)?.runs_dir(),
        &a,
    )?;
    encoderlab::sweep::collect(&specs, &cfg.runs_dir(), &b)?;
    assert_eq!(table_without_ids(&a), table_without_ids(&b));
    assert_eq!(
        std::fs::read_dir(cfg.dir().join("slurm/logs"))?.count(),
        12,
        "a log per task"
    );

    // a cancelled array: its tasks are recorded failed, and a resubmission reruns them
    let long = write(
        dir.path(),
        "long.toml",
        &text
            .replace("name = \"grid\"", "name = \"cancelled\"")
            .replace("values = [1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4]", "values = [1e-3]")
            .replace("set = [", "set = [\"train.max_steps=400\", "),
    );
    let cfg = SweepConfig::load(&long)?;
    let out = encoderlab(&["sweep", "slurm", "--cpus-per-task", "1"], &long);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let start = Instant::now();
    loop {
        let running = Command::new("squeue")
            .args(["-h", "-r", "-t", "R", "--name", "encoderlab-cancelled", "-o", "%K"])
            .output()?;
        if String::from_utf8_lossy(&running.stdout).lines().count() == 2 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "the tasks did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    Command::new("scancel")
        .args(["--name", "encoderlab-cancelled"])
        .status()?;
    wait_for_slurm(&cfg, Duration::from_secs(30));
    let specs = cfg.expand()?;
    // the batch script records the run after its process ended
    let start = Instant::now();
    while plan(&specs, &cfg.runs_dir(), 1).failed < 2 && start.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let p = plan(&specs, &cfg.runs_dir(), 1);
    assert_eq!((p.failed, p.ok), (2, 0), "cancelled tasks are recorded failed");
    let reason = std::fs::read_to_string(cfg.runs_dir().join(&specs[0].run_id).join("result.json"))?;
    assert!(reason.contains("Slurm task"), "{reason}");
    let out = encoderlab(&["sweep", "slurm"], &long);
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing to submit"));
    let out = encoderlab(&["sweep", "slurm", "--retry-failed"], &long);
    assert!(String::from_utf8_lossy(&out.stdout).contains("(2 runs)"));
    wait_for_slurm(&cfg, Duration::from_secs(300));
    assert_eq!(plan(&specs, &cfg.runs_dir(), 1).ok, 2);
    Ok(())
}

/// Issue 18, item 9: sweep records are checked, not trusted. A truncated or `{}` `result.json`
/// and a record folder without `instances.jsonl` are reported as damaged (naming the file) by
/// `plan` and `sweep run`, and `collect` refuses rather than leave them out; a sweep being run
/// holds a lock that a second executor is refused on.
#[test]
fn damaged_records_are_reported_and_a_sweep_runs_once_at_a_time() -> anyhow::Result<()> {
    use encoderlab::finetune::record::failed_record;
    use encoderlab::sweep::{run_local, state, LocalOptions, RunState, SweepLock};
    let dir = tempfile::tempdir()?;
    let ckpt = tiny_checkpoint(dir.path())?;
    let sweep = sweep_files(dir.path(), &ckpt, dir.path(), 1, "[1e-3, 3e-3]", "[0, 1]");
    let cfg = SweepConfig::load(&sweep)?;
    let specs = cfg.expand()?;
    for s in &specs {
        failed_record(&s.config, "made by the test")?;
    }
    let runs = cfg.runs_dir();
    let record = |i: usize| runs.join(&specs[i].run_id);
    let table = dir.path().join("runs.csv");
    assert_eq!(encoderlab::sweep::collect(&specs, &runs, &table)?, 4);

    let result = std::fs::read_to_string(record(0).join("result.json"))?;
    std::fs::write(record(0).join("result.json"), &result[..result.len() / 2])?;
    std::fs::write(record(1).join("result.json"), "{}")?;
    std::fs::remove_file(record(2).join("instances.jsonl"))?;
    for (i, spec) in specs.iter().take(3).enumerate() {
        assert_eq!(state(spec, &runs), RunState::Corrupt, "record {i}");
    }
    assert_eq!(state(&specs[3], &runs), RunState::Failed);
    let p = plan(&specs, &runs, 1);
    assert_eq!((p.failed, p.pending, p.corrupt.len()), (1, 0, 3));
    assert!(
        p.corrupt[0].contains(&record(0).join("result.json").display().to_string()),
        "{:?}",
        p.corrupt
    );
    assert!(p.corrupt[2].contains("instances.jsonl is missing"), "{:?}", p.corrupt);
    let err = encoderlab::sweep::collect(&specs, &runs, &table)
        .unwrap_err()
        .to_string();
    assert!(err.contains("result.json") && err.contains("--retry-failed"), "{err}");
    let out = encoderlab(&["sweep", "plan"], &sweep);
    assert!(String::from_utf8_lossy(&out.stdout).contains("3 damaged"));

    // one executor at a time: a second is refused while the first holds the sweep
    let held = SweepLock::acquire(&cfg.dir(), "sweep run")?;
    let opts = LocalOptions {
        sweep_file: sweep.clone(),
        exe: PathBuf::from(env!("CARGO_BIN_EXE_encoderlab")),
        workers: 1,
        threads_per_worker: 1,
        retry_failed: false,
        progress: false,
    };
    let err = run_local(&cfg, &specs, &opts).unwrap_err().to_string();
    assert!(err.contains("another executor is running this sweep"), "{err}");
    let out = encoderlab(&["sweep", "run"], &sweep);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("another executor"));
    drop(held);
    // released: the run goes on, reporting the damaged records it skips
    let summary = run_local(&cfg, &specs, &opts)?;
    assert_eq!((summary.started, summary.skipped, summary.corrupt.len()), (0, 4, 3));
    Ok(())
}

/// Issue 20, item 4: one worker takes run after run, reusing the encoded dataset and the
/// checkpoint's weights, and each record is the one the run writes alone (`sweep run-one`, a
/// process per run): the same scores per instance, the same losses and gradient norms.
#[test]
fn a_worker_reuses_what_it_loaded_and_writes_the_records_of_runs_alone() -> anyhow::Result<()> {
    let Some(data) = shared_data() else { return Ok(()) };
    let dir = tempfile::tempdir()?;
    let ckpt = tiny_checkpoint(dir.path())?;
    let sweep = sweep_files(dir.path(), &ckpt, &data, 3, "[1e-3, 3e-3]", "[0, 1]");
    let cfg = SweepConfig::load(&sweep)?;
    let specs = cfg.expand()?;
    let out = encoderlab(&["sweep", "run", "--workers", "1", "--threads-per-worker", "1"], &sweep);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let log = std::fs::read_to_string(cfg.dir().join("logs").join("worker-0.log"))?;
    // 2 seeds: the dataset encoded at most once per seed, the checkpoint read once
    assert!(
        log.contains("reused what earlier runs loaded: 2 of 4 encoded tasks, 3 of 4 checkpoints")
            || log.contains("reused what earlier runs loaded: 3 of 4 encoded tasks, 3 of 4 checkpoints"),
        "{log}"
    );
    assert_eq!(log.matches(": Ok in ").count(), 4, "{log}");
    // (instances.jsonl, (loss, grad_norm) per logged step, result.json without its timings)
    type Record = (String, Vec<(f64, f64)>, serde_json::Value);
    let what = |run: &Path| -> anyhow::Result<Record> {
        let instances = std::fs::read_to_string(run.join("instances.jsonl"))?;
        let steps = std::fs::read_to_string(run.join("metrics.jsonl"))?
            .lines()
            .map(|l| {
                let m: encoderlab::artifacts::FinetuneStepMetrics = serde_json::from_str(l).unwrap();
                (m.loss, m.grad_norm)
            })
            .collect();
        let mut result: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("result.json"))?)?;
        for timing in ["wall_seconds", "train_examples_per_s", "eval_examples_per_s"] {
            result.as_object_mut().unwrap().remove(timing);
        }
        Ok((instances, steps, result))
    };
    let by_worker: Vec<_> = specs
        .iter()
        .map(|s| what(&cfg.runs_dir().join(&s.run_id)))
        .collect::<anyhow::Result<_>>()?;
    std::fs::remove_dir_all(cfg.runs_dir())?;
    for (spec, worker) in specs.iter().zip(&by_worker) {
        let i = spec.index.to_string();
        let out = encoderlab(&["sweep", "run-one", "--index", &i, "--threads", "1"], &sweep);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let alone = what(&cfg.runs_dir().join(&spec.run_id))?;
        assert!(!alone.0.is_empty() && !alone.1.is_empty());
        assert_eq!(&alone, worker, "run {i}: a worker's record differs from the run alone");
    }
    Ok(())
}

/// A worker that dies mid-sweep: the run it held is recorded `failed` with the worker's exit
/// status and the end of its log, a new worker takes the next run, and the sweep ends. The
/// "worker" here is a script that dies on its first run, as a real one killed by the
/// out-of-memory killer would.
#[cfg(unix)]
#[test]
fn a_worker_that_dies_fails_its_run_and_is_replaced() -> anyhow::Result<()> {
    use encoderlab::sweep::{run_local, LocalOptions};
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir()?;
    let sweep = sweep_files(
        dir.path(),
        &dir.path().join("ckpt"),
        Path::new("data"),
        1,
        "[1e-3, 3e-3]",
        "[0, 1]",
    );
    let cfg = SweepConfig::load(&sweep)?;
    let specs = cfg.expand()?;
    let exe = dir.path().join("dying-worker.sh");
    std::fs::write(
        &exe,
        "#!/bin/sh\nread index\necho \"out of luck on run $index\" >&2\nexit 3\n",
    )?;
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755))?;
    let opts = LocalOptions {
        sweep_file: sweep.clone(),
        exe,
        workers: 2,
        threads_per_worker: 1,
        retry_failed: false,
        progress: false,
    };
    let summary = run_local(&cfg, &specs, &opts)?;
    assert_eq!((summary.started, summary.done, summary.failed), (4, 0, 4));
    for spec in &specs {
        let result: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(
            cfg.runs_dir().join(&spec.run_id).join("result.json"),
        )?)?;
        assert_eq!(result["status"], "failed");
        let reason = result["reason"].as_str().unwrap();
        assert!(reason.contains("exit status: 3"), "{reason}");
        assert!(reason.contains("out of luck on run"), "{reason}");
    }
    Ok(())
}

/// A sweep over a dataset of the user's own registry: `sweep run --registry FILE` passes it to
/// every worker process (each run's saved config names it), the sweep file's `registry` key
/// does the same, a Slurm script passes it to each task, and a registry that is not there is
/// refused before anything runs.
#[test]
fn a_sweep_finds_its_dataset_in_the_users_registry() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let ckpt = tiny_checkpoint(dir.path())?;
    let (registry, data, _) = common::own_dataset(dir.path())?;
    base_file(dir.path(), &ckpt, &data, "my_reviews", 3);
    let sweep_text = |name: &str, registry_line: &str| {
        format!(
            r#"
name = "{name}"
base = "{}"
out_dir = "{}"
{registry_line}
[[axes]]
key = "train.seed"
values = [0, 1]
"#,
            dir.path().join("base.toml").display(),
            dir.path().join("sweeps").display()
        )
    };
    let sweep = write(dir.path(), "sweep.toml", &sweep_text("own", ""));
    let out = Command::new(env!("CARGO_BIN_EXE_encoderlab"))
        .args(["sweep", "run", "--workers", "2", "--config"])
        .arg(&sweep)
        .arg("--registry")
        .arg(&registry)
        .output()?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let runs = records(&dir.path().join("sweeps/own/runs"));
    assert_eq!(runs.len(), 2);
    for run in &runs {
        let result: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("result.json"))?)?;
        assert_eq!(
            (result["status"].as_str(), result["dataset"].as_str()),
            (Some("ok"), Some("my_reviews"))
        );
        let config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("config.json"))?)?;
        assert_eq!(config["task"]["registry"].as_str(), registry.to_str());
    }
    // the sweep file's key: the same runs (the same ids), so nothing is pending
    let keyed = write(
        dir.path(),
        "sweep.toml",
        &sweep_text("own", &format!("registry = \"{}\"", registry.display())),
    );
    let cfg = SweepConfig::load(&keyed)?;
    let specs = cfg.expand()?;
    assert!(specs
        .iter()
        .all(|s| s.config.task.registry.as_deref() == Some(registry.as_path())));
    assert_eq!(plan(&specs, &cfg.runs_dir(), 1).pending, 0);
    // a Slurm task gets it too (a sweep of its own, whose runs are pending)
    let other = write(dir.path(), "other.toml", &sweep_text("own_slurm", ""));
    let out = Command::new(env!("CARGO_BIN_EXE_encoderlab"))
        .args(["sweep", "slurm", "--dry-run", "--config"])
        .arg(&other)
        .arg("--registry")
        .arg(&registry)
        .output()?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let quoted = format!("--registry '{}'", registry.display());
    assert_eq!(text.matches(&quoted).count(), 2, "run-one and mark-failed: {text}");
    // a registry file that is not there: named, before any run
    let missing = write(
        dir.path(),
        "sweep.toml",
        &sweep_text("own", "registry = \"nowhere.toml\""),
    );
    let e = SweepConfig::load(&missing).unwrap_err().to_string();
    assert!(e.contains("registry") && e.contains("nowhere.toml"), "{e}");
    Ok(())
}
