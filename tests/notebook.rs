//! Notebook support: the pretraining history and its loss curves, the attention-mask
//! demonstration on a real checkpoint, the analysis report as a value, results over seeds, and
//! a sweep run in process.
#![cfg(feature = "notebook")]

mod common;

use common::{shared_data, tiny_checkpoint, write};
use encoderlab::finetune::{RunResult, Status};
use encoderlab::notebook::{attention_demo, compare, results_table, History, Report};
use encoderlab::sweep::SweepConfig;

#[test]
fn history_reads_the_metrics_and_plots_every_run() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    tiny_checkpoint(dir.path())?;
    let h = History::load(dir.path().join("runs/tinyclm"))?;
    assert_eq!(h.name, "tinyclm");
    assert_eq!(h.steps.iter().map(|m| m.step).collect::<Vec<_>>(), [1, 2]);
    let last = h.last(1);
    assert_eq!(last.rows.len(), 1);
    assert_eq!((last.rows[0][0].as_str(), last.rows[0][1].as_str()), ("2", "clm"));
    assert_eq!(h.evaluations().rows.len(), 1, "evaluated at step 2 only");
    let mut other = h.clone();
    other.name = "again".into();
    let fig = compare(&[h, other]);
    assert_eq!(fig.legend, ["tinyclm", "again"]);
    assert_eq!(fig.panels.len(), 3);
    let points = |p: usize| fig.panels[p].series.iter().map(|s| s.points.len()).collect::<Vec<_>>();
    assert_eq!((points(0), points(1), points(2)), (vec![2, 2], vec![1, 1], vec![1, 1]));
    assert!(fig.png()?.0.starts_with(b"\x89PNG"));
    let err = History::load(dir.path().join("nothing")).unwrap_err().to_string();
    assert!(err.contains("metrics.jsonl"), "{err}");
    Ok(())
}

#[test]
fn under_the_causal_mask_only_positions_after_a_change_move() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let ckpt = tiny_checkpoint(dir.path())?;
    let demo = attention_demo(
        &ckpt,
        "The jury said the election was conducted fairly.",
        "The jury said the election was conducted badly.",
    )?;
    let k = demo.first_change;
    assert!(k > 3 && k < demo.causal_shift.len(), "{k}");
    assert!(
        demo.causal_shift[..k].iter().all(|&d| d == 0.0),
        "{:?}",
        demo.causal_shift
    );
    assert!(demo.causal_shift[k..].iter().all(|&d| d > 0.0));
    assert!(
        demo.bidirectional_shift.iter().all(|&d| d > 0.0),
        "{:?}",
        demo.bidirectional_shift
    );
    assert_eq!(demo.shift_rows().len(), demo.causal_shift.len());
    let causal = demo.mask_html(encoderlab::model::AttentionMode::Causal);
    let n = demo.causal_shift.len();
    assert_eq!(causal.matches("■").count(), n * (n + 1) / 2);
    assert!(demo.plot().png()?.0.starts_with(b"\x89PNG"));
    let same = attention_demo(&ckpt, "The jury said.", "The jury said.").unwrap_err();
    assert!(same.to_string().contains("change a word"), "{same}");
    Ok(())
}

#[test]
fn the_report_of_the_papers_runs_gives_its_tables_and_plots() -> anyhow::Result<()> {
    let Some(data) = shared_data() else { return Ok(()) };
    let report = Report::from_runs(data.join("paper_runs/runs.csv"))?;
    assert!(report.systems.len() >= 2, "{:?}", report.systems);
    let best = report.table("best_lr")?;
    assert_eq!(best.name, "best_lr.csv");
    assert!(!best.rows.is_empty());
    assert_eq!(report.table("best_lr.csv")?, best);
    let err = report.table("nope").unwrap_err().to_string();
    assert!(err.contains("group_stats"), "{err}");
    let fig = report.plot("lr_curves")?;
    assert!(fig.png()?.0.starts_with(b"\x89PNG"));
    assert!(report.plot("nope").unwrap_err().to_string().contains("seed_spread"));
    let out = tempfile::tempdir()?;
    report.save(out.path().join("report"))?;
    assert!(out.path().join("report/best_lr.csv").exists());
    assert!(out.path().join("report/lr_curves.png").exists());
    // with the paper's per-sentence SST-2 scores: the instance tables and the interval figure
    let with = Report::with_instances(
        data.join("paper_runs/runs.csv"),
        Some(&data.join("paper_runs/meta.csv")),
        Some(&data.join("paper_runs/instances_sst2_test.csv")),
        Default::default(),
    )?;
    assert_eq!(with.table("ranking_clusters")?.rows.len(), 3);
    assert_eq!(with.table("instance_tests")?.rows.len(), 3);
    assert!(
        report.table("instance_tests")?.rows.is_empty(),
        "none without instances"
    );
    assert!(with.plot("hierarchical_intervals")?.png()?.0.starts_with(b"\x89PNG"));
    Ok(())
}

fn result(dataset: &str, lr: f64, seed: u64, status: Status, val: f64) -> RunResult {
    RunResult {
        run_id: format!("{dataset}{lr}{seed}"),
        model: "m".into(),
        objective: "clm".into(),
        family: "SC".into(),
        dataset: dataset.into(),
        learning_rate: lr,
        pretrain_seed: 0,
        seed,
        metric: "accuracy".into(),
        validation: Some(val),
        test: Some(val / 2.0),
        all_scores: Vec::new(),
        status,
        reason: None,
        steps: 1,
        examples: 1,
        train_examples_per_s: 1.0,
        eval_examples_per_s: 1.0,
        wall_seconds: 1.0,
    }
}

#[test]
fn results_are_summarised_over_seeds_without_failed_runs() {
    let t = results_table(&[
        result("sst2", 1e-4, 0, Status::Ok, 0.5),
        result("sst2", 1e-4, 1, Status::Ok, 0.7),
        result("sst2", 1e-4, 2, Status::Diverged, 0.0),
        result("sst2", 2e-4, 0, Status::Ok, 0.6),
    ]);
    // python3 -c "import statistics as s; print(s.stdev([0.5, 0.7]), s.stdev([0.25, 0.35]))"
    // 0.14142135623730948 0.07071067811865474
    assert_eq!(
        t.rows,
        [
            ["m", "clm", "sst2", "accuracy", "1e-4", "3", "1", "0.6000", "0.1414", "0.3000", "0.07071"],
            ["m", "clm", "sst2", "accuracy", "2e-4", "1", "0", "0.6000", "NaN", "0.3000", "NaN"],
        ]
    );
}

#[test]
fn a_sweep_runs_in_process_and_reads_back_what_is_done() -> anyhow::Result<()> {
    let Some(data) = shared_data() else { return Ok(()) };
    let dir = tempfile::tempdir()?;
    let ckpt = tiny_checkpoint(dir.path())?;
    write(
        dir.path(),
        "base.toml",
        &format!(
            "[model]\ncheckpoint = \"{}\"\n[task]\ndataset = \"sst2\"\ndata_dir = \"{}\"\nmax_length = 32\n\
             max_train_examples = 32\nmax_eval_examples = 8\n[train]\nlearning_rate = 1e-3\nbatch_size = 8\nmax_steps = 2\n",
            ckpt.display(),
            data.display()
        ),
    );
    let sweep = write(
        dir.path(),
        "sweep.toml",
        &format!(
            "name = \"nb\"\nbase = \"{}\"\nout_dir = \"{}\"\n[[axes]]\nkey = \"train.seed\"\nvalues = [0, 1]\n",
            dir.path().join("base.toml").display(),
            dir.path().join("sweeps").display()
        ),
    );
    let cfg = SweepConfig::load(&sweep)?;
    let first = cfg.run_inline()?;
    assert_eq!(first.iter().map(|r| r.seed).collect::<Vec<_>>(), [0, 1]);
    assert!(first.iter().all(|r| r.status == Status::Ok), "{first:?}");
    let record = cfg.runs_dir().join(&first[0].run_id).join("result.json");
    let written = std::fs::metadata(&record)?.modified()?;
    let again = cfg.run_inline()?;
    // read back from result.json (serde_json's float parsing may differ in the last bit)
    let close = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() <= 1e-12 * a.abs().max(1.0),
        (a, b) => a == b,
    };
    assert_eq!(again.len(), first.len());
    for (a, b) in again.iter().zip(&first) {
        assert_eq!((&a.run_id, a.status, a.steps), (&b.run_id, b.status, b.steps));
        assert!(
            close(a.validation, b.validation) && close(a.test, b.test),
            "{a:?} {b:?}"
        );
    }
    assert_eq!(std::fs::metadata(&record)?.modified()?, written, "read back, not rerun");
    Ok(())
}

/// `notebooks/check_outputs.py` (what fails an executed notebook in CI) has tests of its own:
/// an error line on stdout, a figure not drawn, stderr, an error output and a cell that did not
/// run are each caught, and a clean notebook passes.
#[test]
fn the_notebook_checker_passes_its_own_tests() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new("python3")
        .args(["-m", "unittest", "notebooks/test_check_outputs.py"])
        .current_dir(root)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A notebook's first cell enters the repository, and running it again changes nothing (from
/// `notebooks/` too: the unit test of `repository_above`; this one stays in the repository, as
/// other tests of this binary read paths relative to it at the same time).
#[test]
fn entering_the_repository_can_be_rerun() -> anyhow::Result<()> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).canonicalize()?;
    let first = encoderlab::notebook::enter_repository()?;
    let again = encoderlab::notebook::enter_repository()?;
    assert_eq!(
        (first.canonicalize()?, again.canonicalize()?),
        (root.clone(), root.clone())
    );
    assert_eq!(std::env::current_dir()?.canonicalize()?, root);
    Ok(())
}

/// What notebooks 02 and 03 read needs no `../shared`: notebook 02's grid names fetched datasets
/// only, in `data/` (each family's, retrieval trained on its own pairs), and notebook 03's first
/// report is the paper's runs shipped in `data/paper_runs/` with their metadata beside them.
#[test]
fn notebooks_02_and_03_read_only_fetched_and_shipped_data() -> anyhow::Result<()> {
    use encoderlab::data::registry::Origin;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let registry = encoderlab::data::Registry::builtin()?;
    let sweep = SweepConfig::load(root.join("configs/sweep/notebook_02.toml"))?;
    let specs = std::env::set_current_dir(root).map(|_| sweep.expand())??;
    assert_eq!(specs.len(), 54);
    let mut families = std::collections::BTreeSet::new();
    for s in &specs {
        let task = &s.config.task;
        let spec = registry.get(&task.dataset)?;
        assert_eq!(spec.origin, Origin::Fetched, "{}", task.dataset);
        assert_eq!(task.data_dir, std::path::Path::new("data"), "{}", task.dataset);
        if spec.family == encoderlab::data::TaskFamily::Retrieval {
            assert_eq!(task.train_pairs, task.dataset, "retrieval trains on its own pairs");
        }
        families.insert(spec.family.code());
    }
    assert_eq!(families.into_iter().collect::<Vec<_>>(), ["IR", "SC", "TC"]);
    let paper = Report::from_runs(root.join("data/paper_runs/runs.csv"))?;
    assert_eq!(paper.systems.len(), 3);
    assert_eq!(paper.datasets, ["sst2", "conll2003_en"]);
    Ok(())
}

/// Each notebook's code path on fetched data (`data/`, what `encoderlab data fetch` or the quick
/// start's `study` writes; SKIPPED where it is missing), at a sliver of the notebooks' budgets:
/// notebook 01 packs the fetched pretraining text and pretrains its three configs; notebook 02
/// runs its own grid file (its three fetched datasets, one per family it has) on those
/// checkpoints, then saves one model and exports it; notebook 03 reads the shipped paper runs
/// (`the_report_of_the_papers_runs_gives_its_tables_and_plots`). CI runs the notebooks
/// themselves, at full size, after this.
#[test]
fn the_notebooks_code_paths_run_on_fetched_data() -> anyhow::Result<()> {
    use encoderlab::data::prepare::{prepare_pretraining_data, PrepareOptions, PRETRAINING_DATASETS};
    use encoderlab::train::{pretrain, PretrainConfig, RunOptions};
    let registry = encoderlab::data::Registry::builtin()?;
    let data = std::path::Path::new("data");
    let needed = ["bbc_news", "brown_pos", "bbc_news_retrieval"];
    let missing: Vec<&str> = needed
        .iter()
        .chain(PRETRAINING_DATASETS.iter())
        .copied()
        .filter(|n| registry.get(n).map_or(true, |s| !s.is_present(data)))
        .collect();
    if !missing.is_empty() {
        eprintln!("SKIPPED: {missing:?} not fetched into data/ (encoderlab data fetch)");
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    // notebook 01: the fetched text packed, the three objectives pretrained
    let prepared = prepare_pretraining_data(&PrepareOptions {
        vocab_size: 512,
        seq_len: 32,
        ..PrepareOptions::new("data", dir.path())
    })?;
    let pretrained = dir.path().join("pretrain");
    let mut checkpoints = Vec::new();
    for name in ["tiny_clm", "tiny_mlm40", "tiny_clm50_mlm40"] {
        let mut cfg = PretrainConfig::load(format!("configs/pretrain/{name}.toml"), &[])?;
        cfg.data.pack = prepared.pack.clone();
        cfg.data.eval_blocks = 4;
        for phase in &mut cfg.train.phases {
            phase.steps = 2;
        }
        cfg.train.eval_every_steps = 2;
        cfg.train.checkpoint_every_steps = 2;
        cfg.train.milestones = Vec::new();
        cfg.train.out_dir = pretrained.clone();
        cfg.lr.warmup_steps = 1;
        // the decay fits the shortened run: through the file, so the config is validated
        let text = toml::to_string(&cfg)?.replace("decay_steps = 60", "decay_steps = 1");
        let cfg = PretrainConfig::load(write(dir.path(), &format!("{name}.toml"), &text), &[])?;
        let summary = pretrain(&cfg, &RunOptions::default())?;
        assert_eq!(summary.status, "completed", "{name}");
        let run = pretrained.join(name).join("checkpoints");
        let last = std::fs::read_dir(&run)?
            .flatten()
            .map(|e| e.path())
            .max()
            .expect("a checkpoint");
        checkpoints.push(toml::Value::String(last.display().to_string()));
    }
    // notebook 02: its grid file, on those checkpoints, one learning rate and one seed
    let mut sweep = SweepConfig::load("configs/sweep/notebook_02.toml")?;
    sweep.out_dir = dir.path().join("sweeps");
    sweep.axes[0].values = checkpoints;
    for axis in &mut sweep.axes[2..] {
        axis.values.truncate(1);
    }
    sweep.set.extend(
        [
            "train.max_steps=2",
            "task.max_train_examples=32",
            "task.max_eval_examples=8",
        ]
        .map(String::from),
    );
    let results = sweep.run_inline()?;
    assert_eq!(results.len(), 9);
    assert!(results.iter().all(|r| r.status == Status::Ok), "{results:?}");
    let families: std::collections::BTreeSet<&str> = results.iter().map(|r| r.family.as_str()).collect();
    assert_eq!(families.len(), 3, "{families:?}");
    // its last cell: the first run again with its model saved, exported
    let mut cfg = sweep.expand()?[0].config.clone();
    cfg.train.save_model = true;
    cfg.train.out_dir = dir.path().join("saved");
    let saved = encoderlab::finetune::finetune(&cfg, &Default::default())?;
    // the grid's run again (its record elsewhere), its model kept: the same test score
    assert_eq!(saved.test, results[0].test);
    let report = encoderlab::interop::export::export_hf(
        &cfg.run_dir()?.join(encoderlab::finetune::saved::MODEL_DIR),
        &dir.path().join("exported"),
        &Default::default(),
    )?;
    assert_eq!(report.class, "EncoderlabForSequenceClassification");
    Ok(())
}
