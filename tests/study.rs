//! The one-command study: presets, arms and configs, the findings' statistics and verdicts on
//! runs made to order, the cost estimate, and a whole (miniature) study on real data run twice
//! (the second call redoes nothing), whose report's numbers are recomputed from `runs.csv`.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::shared_data;
use encoderlab::config::save_toml;
use encoderlab::stats::report::{NanPolicy, RunsIndex};
use encoderlab::stats::runs::{read_runs, Run, TaskMeta};
use encoderlab::study::arms::{arms, models, with_baselines, ArmKind, Model, Role};
use encoderlab::study::configs::{pretrain_config, pretrain_header};
use encoderlab::study::control::{positive_control, Control};
use encoderlab::study::findings::{evaluate, Evidence, Verdict};
use encoderlab::study::{paper, run_study, StudyConfig, StudyOptions};
use encoderlab::train::PretrainConfig;

#[test]
fn presets_parse_and_every_generated_pretraining_config_loads() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    for name in ["demo", "standard", "paper"] {
        let cfg = StudyConfig::preset(name)?;
        assert_eq!(cfg.name, name);
        for arm in arms(&cfg) {
            let path = dir.path().join(format!("{name}-{}.toml", arm.name));
            save_toml(&pretrain_config(&cfg, &arm), &path, &pretrain_header(&cfg, &arm))?;
            let pc = PretrainConfig::load(&path, &[])?;
            assert_eq!(
                pc,
                pretrain_config(&cfg, &arm),
                "a generated config reads back as built"
            );
            assert_eq!(pc.total_steps(), arm.steps, "{name}/{}", arm.name);
            if let ArmKind::Biphasic { share } = arm.kind {
                let clm = pc.train.phases[0].steps as f64;
                assert_eq!(clm, (share * arm.steps as f64).round());
            }
            assert_eq!(
                pc.train.init_from.is_some(),
                matches!(arm.kind, ArmKind::Continued { .. })
            );
        }
    }
    // the paper's switch points, exactly
    let paper = StudyConfig::preset("paper")?;
    let switches: Vec<usize> = arms(&paper)
        .iter()
        .filter_map(|a| match a.kind {
            ArmKind::Biphasic { share } => Some((share * a.steps as f64).round() as usize),
            _ => None,
        })
        .collect();
    assert_eq!(switches, [10_000, 21_000, 32_000]);
    assert!(StudyConfig::preset("nope").is_err());
    Ok(())
}

#[test]
fn bad_study_files_are_refused_with_the_field() -> anyhow::Result<()> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/study/demo.toml"))?;
    for (from, to, field) in [
        ("steps = 6000", "steps = 6000\nsurprise = 1", "surprise"),
        ("clm_shares = [0.5]", "clm_shares = [1.0]", "pretrain.clm_shares"),
        ("intermediate = []", "intermediate = [6000]", "pretrain.intermediate"),
        (
            "intermediate = []",
            "intermediate = [10]\nintermediate_seeds = [7]",
            "pretrain.intermediate_seeds",
        ),
        (
            "other_ratios = []",
            "other_ratios = [0.2]\nratio_seeds = [7]",
            "pretrain.ratio_seeds",
        ),
        (
            "other_ratios = []",
            "other_ratios = []\nsize_peak_lr = { mini = 3e-3 }",
            "pretrain.size_peak_lr.mini",
        ),
        (
            "ratio_sizes = []",
            "ratio_sizes = [\"mini\"]\nsize_peak_lr = { mini = -1.0 }",
            "pretrain.size_peak_lr.mini",
        ),
        ("seeds = [0, 1, 2]", "seeds = [0]", "finetune.seeds"),
        (
            "{ dataset = \"bbc_news\", max_length = 64,",
            "{ dataset = \"bbc_news\", max_length = 256,",
            "finetune.datasets",
        ),
        ("size = \"tiny\"", "size = \"huge\"", "pretrain.size"),
    ] {
        assert!(text.contains(from), "{from}");
        let err = StudyConfig::parse(&text.replacen(from, to, 1), Path::new("bad.toml")).unwrap_err();
        assert!(err.to_string().contains(field), "{field}: {err}");
    }
    Ok(())
}

#[test]
fn the_grid_holds_every_arm_intermediate_checkpoints_and_the_random_baseline() -> anyhow::Result<()> {
    let cfg = StudyConfig::preset("standard")?;
    let m = models(&cfg);
    let names: Vec<&str> = m.iter().map(|m| m.name.as_str()).collect();
    for want in [
        "clm",
        "mlm40",
        "clm@500",
        "mlm40@1000",
        "clm@2000",
        "mlm40@4000",
        "clm50-mlm40",
        "clm+mlm40",
        "mlm40+mlm40",
        "random",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    // every main arm, and the baseline, at every pretraining seed (at least three: issue 21);
    // F2's checkpoints at the first only
    assert!(cfg.pretrain.seeds.len() >= 3, "{:?}", cfg.pretrain.seeds);
    for arm in ["clm", "mlm40", "clm50-mlm40", "clm+mlm40", "mlm40+mlm40", "random"] {
        let seeds: Vec<u64> = m.iter().filter(|m| m.name == arm).map(|m| m.pretrain_seed).collect();
        assert_eq!(seeds, cfg.pretrain.seeds, "{arm}");
    }
    let f2: Vec<u64> = m
        .iter()
        .filter(|m| m.name.contains('@'))
        .map(|m| m.pretrain_seed)
        .collect();
    assert_eq!(f2, [0; 8]);
    let random = m.iter().find(|m| m.role == Role::Random).expect("baseline");
    assert!(random.checkpoint.ends_with("pretrain/clm/checkpoints/step-0006000"));
    // continued arms start from the parents' decayed final checkpoints
    let cont = arms(&cfg).into_iter().find(|a| a.name == "clm+mlm40").expect("arm");
    assert_eq!(
        pretrain_config(&cfg, &cont).train.init_from,
        Some(Path::new("runs/study/standard/pretrain/clm/checkpoints/step-0006000").to_path_buf())
    );
    Ok(())
}

/// The study's fine-tuning grid over `models`, written as the study writes it (base config and
/// sweep file in `dir`) and expanded.
fn grid_of(cfg: &StudyConfig, models: &[Model], dir: &Path) -> anyhow::Result<Vec<encoderlab::sweep::RunSpec>> {
    use encoderlab::study::configs::{finetune_base, sweep_config, sweep_header, FINETUNE_BASE_HEADER};
    let base = dir.join("base.toml");
    save_toml(&finetune_base(cfg, &models[0]), &base, FINETUNE_BASE_HEADER)?;
    let sweep = dir.join("sweep.toml");
    save_toml(
        &sweep_config(cfg, models, &base, &dir.join("runs")),
        &sweep,
        &sweep_header(cfg),
    )?;
    Ok(encoderlab::sweep::SweepConfig::load(&sweep)?.expand()?)
}

/// A study can name a registry of the user's own: every run of its grid reads it
/// (`task.registry`), and a registry that is not there is refused when the config is read.
#[test]
fn a_study_grid_reads_the_users_registry() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (registry, _, _) = common::own_dataset(dir.path())?;
    let mut cfg = StudyConfig::preset("demo")?;
    cfg.out = dir.path().join("study");
    cfg.registry = Some(registry.clone());
    cfg.finetune.datasets.truncate(1);
    cfg.finetune.datasets[0].dataset = "my_reviews".into();
    // as the study saves and reads it back
    let cfg = StudyConfig::parse(&toml::to_string(&cfg)?, Path::new("study.toml"))?;
    assert_eq!(cfg.registry()?.get("my_reviews")?.description, "my own reviews");
    let specs = grid_of(&cfg, &models(&cfg), dir.path())?;
    assert!(!specs.is_empty());
    assert!(specs.iter().all(
        |s| s.config.task.registry.as_deref() == Some(registry.as_path()) && s.config.task.dataset == "my_reviews"
    ));
    let mut missing = cfg.clone();
    missing.registry = Some("nowhere.toml".into());
    let e = StudyConfig::parse(&toml::to_string(&missing)?, Path::new("study.toml"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("registry") && e.contains("nowhere.toml"), "{e}");
    Ok(())
}

#[test]
fn each_dataset_runs_its_own_learning_rates_steps_and_example_limits() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut cfg = StudyConfig::preset("demo")?;
    cfg.out = dir.path().to_path_buf();
    cfg.finetune.learning_rates = vec![1e-4, 1e-3];
    cfg.finetune.probe = None;
    for d in &mut cfg.finetune.datasets {
        d.learning_rates = None;
    }
    cfg.finetune.datasets[0].learning_rates = Some(vec![3e-3, 1e-3, 1e-2]);
    cfg.finetune.datasets[0].steps = Some(50);
    cfg.finetune.datasets[1].max_train_examples = Some(100);
    cfg.finetune.datasets[1].max_eval_examples = Some(0);
    cfg.finetune.max_eval_examples = 7;
    let all = models(&cfg);
    let specs = grid_of(&cfg, &all, dir.path())?;
    let seeds = cfg.finetune.seeds.len();
    assert_eq!(specs.len(), all.len() * (3 + 2 + 2) * seeds);
    assert_eq!(specs.len(), all.len() * cfg.finetune.runs_per_model(false));
    let of = |d: &String| -> Vec<&encoderlab::sweep::RunSpec> {
        specs.iter().filter(|s| s.config.task.dataset == *d).collect()
    };
    let first = &cfg.finetune.datasets[0].dataset;
    let mut lrs: Vec<f64> = of(first).iter().map(|s| s.config.train.learning_rate).collect();
    lrs.sort_by(f64::total_cmp);
    lrs.dedup();
    assert_eq!(lrs, [1e-3, 3e-3, 1e-2]);
    assert!(of(first)
        .iter()
        .all(|s| s.config.train.max_steps == 50 && s.config.task.max_eval_examples == 7));
    let second = &cfg.finetune.datasets[1].dataset;
    assert!(of(second).iter().all(|s| s.config.train.max_steps == cfg.finetune.steps
        && s.config.task.max_train_examples == 100
        && s.config.task.max_eval_examples == 0
        && [1e-4, 1e-3].contains(&s.config.train.learning_rate)));
    // a grid with a bad rate is refused, naming the dataset
    let mut bad = StudyConfig::preset("demo")?;
    bad.finetune.datasets[2].learning_rates = Some(vec![0.0]);
    let text = toml::to_string(&bad)?;
    let err = StudyConfig::parse(&text, Path::new("bad.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("finetune.datasets") && err.contains(&bad.finetune.datasets[2].dataset),
        "{err}"
    );
    let mut twice = StudyConfig::preset("demo")?;
    twice.finetune.datasets.push(twice.finetune.datasets[0].clone());
    let err = StudyConfig::parse(&toml::to_string(&twice)?, Path::new("twice.toml")).unwrap_err();
    assert!(err.to_string().contains("listed twice"), "{err}");
    Ok(())
}

#[test]
fn every_arm_is_trained_once_per_pretraining_seed_and_the_baseline_replicates_with_them() -> anyhow::Result<()> {
    let mut cfg = StudyConfig::preset("demo")?;
    cfg.pretrain.seeds = vec![0, 1, 2];
    let runs = arms(&cfg);
    let per_seed = runs.len() / 3;
    assert_eq!(runs.len(), 3 * per_seed);
    for (i, seed) in [0u64, 1, 2].iter().enumerate() {
        for arm in &runs[i * per_seed..(i + 1) * per_seed] {
            assert_eq!(arm.seed, *seed);
            let want = if *seed == 0 {
                arm.name.clone()
            } else {
                format!("{}-s{seed}", arm.name)
            };
            assert_eq!(arm.run, want);
            let pc = pretrain_config(&cfg, arm);
            assert_eq!(pc.train.seed, *seed);
            assert_eq!(pc.name, arm.run);
            if let ArmKind::Continued { from } = &arm.kind {
                // from the parent of the same seed
                let parent = if *seed == 0 {
                    from.clone()
                } else {
                    format!("{from}-s{seed}")
                };
                let init = pc.train.init_from.as_ref().map(|p| p.to_string_lossy().into_owned());
                assert!(
                    init.as_deref()
                        .is_some_and(|p| p.contains(&format!("pretrain/{parent}/checkpoints/"))),
                    "{init:?}"
                );
            }
        }
    }
    let m = models(&cfg);
    let random: Vec<_> = m.iter().filter(|m| m.role == Role::Random).collect();
    assert_eq!(random.iter().map(|r| r.pretrain_seed).collect::<Vec<_>>(), [0, 1, 2]);
    assert!(random[2].checkpoint.to_string_lossy().contains("pretrain/clm-s2/"));
    assert_eq!(m.iter().filter(|m| m.name == "mlm40").count(), 3);
    let mut twice = cfg.clone();
    twice.pretrain.seeds = vec![1, 1];
    let err = StudyConfig::parse(&toml::to_string(&twice)?, Path::new("s.toml")).unwrap_err();
    assert!(err.to_string().contains("pretrain.seeds"), "{err}");
    Ok(())
}

#[test]
fn with_several_pretraining_runs_the_findings_pair_runs_not_rows() -> anyhow::Result<()> {
    let cfg = StudyConfig::preset("demo")?;
    let meta = meta();
    let mut table = Vec::new();
    for p in 0..3i64 {
        let shift = [0.0, 0.04, -0.04][p as usize];
        for mut r in runs(&[("clm", 0.70 + shift), ("mlm40", 0.78 + shift), ("random", 0.55)]) {
            r.pretrain_seed = p;
            table.push(r);
        }
    }
    let ix = RunsIndex::new(&table, &meta, NanPolicy::ImputeChance);
    let ev = Evidence::new(&ix, 0.95, 0.05);
    let control = control_of(&ix, &models(&cfg));
    let findings = evaluate(&cfg, &ev, &control);
    let f1 = findings[0].rows.iter().find(|c| c.primary).expect("primary");
    // 3 datasets × 3 pretraining runs, each the mean over its 5 fine-tuning seeds
    assert_eq!(f1.n, 9);
    assert_eq!(f1.test, "paired t (dataset × pretraining run)");
    assert!((f1.diff - 2.0 * 0.08).abs() < 1e-12, "{}", f1.diff);
    let one = findings[0]
        .rows
        .iter()
        .find(|c| c.label == "MLM − CLM, one dataset")
        .expect("row");
    assert_eq!((one.test.as_str(), one.n), ("Welch t (pretraining runs)", 3));
    Ok(())
}

#[test]
fn the_gpu_hour_estimate_is_six_n_t_plus_attention_over_the_throughput() -> anyhow::Result<()> {
    // one 210M arm: N = parameters without the input embedding, T = 42k × 1152 × 2048 tokens
    let mut cfg = StudyConfig::preset("paper")?;
    cfg.pretrain.size = "210m".into();
    cfg.pretrain.other_ratios.clear();
    cfg.pretrain.ratio_sizes.clear();
    cfg.pretrain.clm_shares.clear();
    cfg.pretrain.continued_steps = 0;
    let e = paper::estimate(&cfg)?;
    let pre = &e.lines[0];
    assert_eq!(pre.runs, 2); // clm and mlm40
    let m = encoderlab::model::ModelConfig::paper_210m();
    let n = (m.num_parameters() - 128_256 * 768) as f64;
    let t = 42_000.0 * 1152.0 * 2048.0;
    let per_token = 6.0 * n + 6.0 * (12 * 2048 * 768) as f64;
    assert_eq!(pre.tokens, 2.0 * t);
    assert!((pre.flops / (2.0 * t * per_token) - 1.0).abs() < 1e-12);
    assert!((pre.gpu_hours - pre.flops / (989e12 * 0.4) / 3600.0).abs() < 1e-9);
    let text = paper::describe(&cfg)?;
    assert!(text.contains("GPU-hours") && text.contains("fine-tuning"));
    Ok(())
}

fn meta() -> BTreeMap<String, TaskMeta> {
    ["a", "b", "c"]
        .iter()
        .map(|d| {
            (
                d.to_string(),
                TaskMeta {
                    family: format!("family_{d}"),
                    metric_name: "accuracy".into(),
                    chance_score: 0.5,
                    max_score: 1.0,
                    higher_is_better: true,
                    worst_score: None,
                },
            )
        })
        .collect()
}

/// Extra seed noise of the `clm` model (mean 0), so that its differences from others vary.
const CLM_JITTER: [f64; 5] = [0.02, -0.02, 0.01, -0.01, 0.0];

/// Runs of `models` on three datasets: score = base(model) + noise(seed), validation = test.
fn runs(models: &[(&str, f64)]) -> Vec<Run> {
    let mut v = Vec::new();
    for (model, base) in models {
        for d in ["a", "b", "c"] {
            for (li, lr) in [1e-4, 5e-4].iter().enumerate() {
                for seed in 0..5i64 {
                    // the same seed noise for every model (paired units), a worse low LR
                    let noise = [0.01, -0.02, 0.015, -0.005, 0.0][seed as usize] + if li == 0 { -0.05 } else { 0.0 };
                    for split in ["validation", "test"] {
                        v.push(Run {
                            model: model.to_string(),
                            objective: model.to_string(),
                            family: None,
                            dataset: d.into(),
                            learning_rate: *lr,
                            pretrain_seed: 0,
                            seed,
                            split: split.into(),
                            metric: None,
                            score: base
                                + noise
                                + if *model == "clm" {
                                    CLM_JITTER[seed as usize]
                                } else {
                                    0.0
                                },
                            line: 0,
                        });
                    }
                }
            }
        }
    }
    v
}

#[test]
fn verdicts_follow_the_data_in_both_directions_and_say_inconclusive_otherwise() -> anyhow::Result<()> {
    let cfg = StudyConfig::preset("demo")?;
    let all = models(&cfg);
    let meta = meta();
    for (mlm, want) in [
        (0.80, Verdict::Reproduced),
        (0.60, Verdict::Contradicted),
        (0.70, Verdict::Inconclusive),
    ] {
        let table = runs(&[("clm", 0.70), ("mlm40", mlm), ("random", 0.55)]);
        let ix = RunsIndex::new(&table, &meta, NanPolicy::ImputeChance);
        let ev = Evidence::new(&ix, 0.95, 0.05);
        let control = control_of(&ix, &all);
        let findings = evaluate(&cfg, &ev, &control);
        let f1 = &findings[0];
        assert_eq!(f1.id, "F1");
        assert_eq!(f1.verdict, want, "mlm {mlm}: {}", f1.why);
        let primary = f1.rows.iter().find(|c| c.primary).expect("primary row");
        // normalised: (x − 0.5) / 0.5, so the difference is 2 × (mlm − clm)
        let expected = 2.0 * (mlm - 0.70);
        assert!(
            (primary.diff - expected).abs() < 1e-12,
            "{} vs {expected}",
            primary.diff
        );
        assert_eq!(primary.n, 15);
        // arms absent from these runs: their findings say so, never a verdict
        assert_eq!(findings[3].verdict, Verdict::NotRun);
        assert!(findings[3].rows.is_empty());
        // both models beat random init on every dataset
        for m in ["clm", "mlm40"] {
            let g = &control.gates[m];
            assert!(g.passed && g.wins == 3 && g.losses == 0, "{g:?}");
        }
    }
    Ok(())
}

/// The positive control of every final model of `all` on `ix`, each against the baseline of
/// its size.
fn control_of(ix: &RunsIndex, all: &[encoderlab::study::arms::Model]) -> Control {
    let demo = StudyConfig::preset("demo").expect("demo preset");
    let finals = with_baselines(&demo, all.iter().filter(|m| m.role == Role::Final));
    positive_control(ix, &finals, 0.95, 0.05, 2000, 0)
}

#[test]
fn a_finding_whose_models_do_not_beat_random_init_is_not_testable() -> anyhow::Result<()> {
    let cfg = StudyConfig::preset("demo")?;
    let all = models(&cfg);
    let meta = meta();
    // random init at 0.55: both pass; at 0.90: both lose everywhere; at 0.75: clm loses, mlm wins
    for (random, want) in [
        (0.55, Verdict::Reproduced),
        (0.90, Verdict::NotTestable),
        (0.75, Verdict::NotTestable),
    ] {
        let table = runs(&[("clm", 0.70), ("mlm40", 0.80), ("random", random)]);
        let ix = RunsIndex::new(&table, &meta, NanPolicy::ImputeChance);
        let ev = Evidence::new(&ix, 0.95, 0.05);
        let control = control_of(&ix, &all);
        let findings = evaluate(&cfg, &ev, &control);
        let f1 = &findings[0];
        assert_eq!(f1.verdict, want, "random {random}: {}", f1.why);
        if want == Verdict::NotTestable {
            // the numbers that say why, and what the comparison alone would have said
            assert!(
                f1.why.contains("beats random init significantly on 0 of 3 datasets"),
                "{}",
                f1.why
            );
            assert!(f1.why.contains("would read \"reproduced\""), "{}", f1.why);
        }
    }
    // per dataset: Welch over fine-tuning seeds (one pretraining run each), then the two
    // across-dataset rows; the difference is the normalised one, 2 × (0.70 − 0.55)
    let table = runs(&[("clm", 0.70), ("mlm40", 0.80), ("random", 0.55)]);
    let ix = RunsIndex::new(&table, &meta, NanPolicy::ImputeChance);
    let control = control_of(&ix, &all);
    let clm: Vec<_> = control.rows.iter().filter(|r| r.model == "clm").collect();
    assert_eq!(clm.len(), 5);
    assert!(clm[0].test.starts_with("Welch t (fine-tuning seeds"));
    assert_eq!((clm[0].n_model, clm[0].n_random), (5, 5));
    assert!((clm[3].diff - 0.30).abs() < 1e-12 && clm[3].test.starts_with("hierarchical"));
    assert!(clm[4].test == "paired t (datasets)" && clm[4].n_model == 3);
    Ok(())
}

#[test]
fn pretraining_runs_are_the_units_when_both_sides_have_several() -> anyhow::Result<()> {
    let meta = meta();
    // three pretraining runs per side, the second one much worse for clm: its mean over the
    // runs is what the test sees, three units per side
    let mut table = Vec::new();
    for p in 0..3i64 {
        for mut r in runs(&[("clm", [0.75, 0.62, 0.74][p as usize]), ("random", 0.55)]) {
            r.pretrain_seed = p;
            table.push(r);
        }
    }
    let ix = RunsIndex::new(&table, &meta, NanPolicy::ImputeChance);
    let control = positive_control(&ix, &[("clm".to_string(), "random".to_string())], 0.95, 0.05, 2000, 0);
    let a = &control.rows[0];
    assert_eq!(a.test, "Welch t (pretraining runs)");
    assert_eq!((a.n_model, a.n_random, a.pretrain_seeds), (3, 3, 3));
    // the test is Welch's t (golden-tested against scipy's `ttest_ind(equal_var=False)` in
    // tests/stats_golden.rs) on the per-run means of dataset `a`, rebuilt here from the same runs
    let norm = |v: f64| (v - 0.5) / 0.5;
    let best = |base: f64| {
        // the best LR is the larger one; mean seed noise at it is 0 (clm jitter too)
        let noise = [0.01, -0.02, 0.015, -0.005, 0.0];
        noise.iter().map(|n| norm(base + n)).sum::<f64>() / 5.0
    };
    let x: Vec<f64> = [0.75, 0.62, 0.74].iter().map(|b| best(*b)).collect();
    let y = vec![best(0.55); 3];
    let t = encoderlab::stats::ttest::welch(&x, &y, 0.95);
    assert!((a.p - t.p).abs() < 1e-12 && (a.diff - (x.iter().sum::<f64>() / 3.0 - y[0])).abs() < 1e-12);
    Ok(())
}

/// F6's verdict on runs of the four ratio arms with these base scores, each (model, dataset)
/// shifted a little so that the per-dataset effects vary as real ones do.
fn f6_verdict(cfg: &StudyConfig, scores: [f64; 4]) -> anyhow::Result<(Verdict, String)> {
    let names = ["mlm40", "mlm20", "micro-mlm40", "micro-mlm20"];
    let arms: Vec<(&str, f64)> = names.iter().copied().zip(scores).collect();
    let mut table = runs(&arms);
    for r in &mut table {
        let k = names.iter().position(|n| *n == r.model).unwrap_or(0);
        let d = ["a", "b", "c"].iter().position(|d| *d == r.dataset).unwrap_or(0);
        r.score += 0.004 * (((d * 3 + k * 7) % 5) as f64 - 2.0);
    }
    let ix = RunsIndex::new(&table, &meta(), NanPolicy::ImputeChance);
    let ev = Evidence::new(&ix, 0.95, 0.05);
    // a control that every arm passes (the baselines of both sizes far below them)
    table.extend(runs(&[("random", 0.2), ("micro-random", 0.2)]));
    let ix2 = RunsIndex::new(&table, &meta(), NanPolicy::ImputeChance);
    let control = control_of(&ix2, &models(cfg));
    let findings = evaluate(cfg, &ev, &control);
    let f6 = findings.into_iter().find(|f| f.id == "F6").expect("F6");
    Ok((f6.verdict, f6.why))
}

#[test]
fn the_masking_ratio_finding_is_an_interaction_between_two_sizes() -> anyhow::Result<()> {
    let mut one_size = StudyConfig::preset("demo")?;
    one_size.pretrain.other_ratios = vec![0.2];
    let mut cfg = one_size.clone();
    cfg.pretrain.ratio_sizes = vec!["micro".into()];
    // at `tiny` 40 % is better by 0.1, at `micro` 20 % by 0.1: the effect differs by 0.4
    // normalised, consistently over the datasets, so the interaction is significant
    let (v, why) = f6_verdict(&cfg, [0.80, 0.70, 0.60, 0.70])?;
    assert_eq!(v, Verdict::Reproduced, "{why}");
    assert!(
        why.contains("interaction: ratio 40 − 20 at tiny minus at micro +0.4"),
        "{why}"
    );
    // the same gain of 40 % over 20 % at both sizes, each significant on its own: no
    // interaction, so nothing says the best ratio depends on size (nor that it does not)
    let (v, why) = f6_verdict(&cfg, [0.80, 0.70, 0.75, 0.65])?;
    assert_eq!(v, Verdict::Inconclusive, "{why}");
    assert!(why.contains("0 of 1 interaction tests significant"), "{why}");
    // one size: cannot be tested
    let (v, why) = f6_verdict(&one_size, [0.80, 0.70, 0.60, 0.70])?;
    assert_eq!(v, Verdict::Inconclusive);
    assert!(why.contains("one model size"), "{why}");
    // one ratio: not run, and the report says which fields would run it
    let (v, why) = f6_verdict(&StudyConfig::preset("demo")?, [0.80, 0.70, 0.60, 0.70])?;
    assert_eq!(v, Verdict::NotRun);
    assert!(why.contains("pretrain.other_ratios"), "{why}");
    Ok(())
}

#[test]
fn each_size_has_its_own_random_init_baseline_and_f6_runs_at_its_seeds() -> anyhow::Result<()> {
    let mut cfg = StudyConfig::preset("demo")?;
    let p = &mut cfg.pretrain;
    p.seeds = vec![0, 1, 2];
    p.other_ratios = vec![0.2];
    p.ratio_sizes = vec!["micro".into()];
    p.ratio_seeds = vec![0, 1];
    // the main arms at every seed, F6's (mlm20, micro-mlm40, micro-mlm20) at seeds 0 and 1
    let runs_of = |arm: &str| -> Vec<u64> { arms(&cfg).iter().filter(|a| a.name == arm).map(|a| a.seed).collect() };
    assert_eq!(runs_of("clm"), [0, 1, 2]);
    for f6 in ["mlm20", "micro-mlm40", "micro-mlm20"] {
        assert_eq!(runs_of(f6), [0, 1], "{f6}");
    }
    // another size may have its own peak learning rate
    cfg.pretrain.size_peak_lr = [("micro".to_string(), 3e-3)].into();
    for a in arms(&cfg).iter().filter(|a| a.seed == 0) {
        let peak = if a.size == "micro" { 0.003 } else { 0.01 };
        assert_eq!(pretrain_config(&cfg, a).lr.peak, peak, "{}", a.run);
    }
    // a baseline per size: `random` from each CLM run, `micro-random` from micro-mlm40's
    let all = models(&cfg);
    let baseline = |name: &str| -> Vec<(u64, String, String)> {
        all.iter()
            .filter(|m| m.name == name)
            .map(|m| (m.pretrain_seed, m.arm.clone(), m.size.clone()))
            .collect()
    };
    assert!(all
        .iter()
        .filter(|m| m.name.ends_with("random"))
        .all(|m| m.role == Role::Random));
    assert_eq!(
        baseline("random"),
        [(0, "clm", "tiny"), (1, "clm-s1", "tiny"), (2, "clm-s2", "tiny")].map(|(s, a, z)| (s, a.into(), z.into()))
    );
    assert_eq!(
        baseline("micro-random"),
        [(0, "micro-mlm40", "micro"), (1, "micro-mlm40-s1", "micro")].map(|(s, a, z)| (s, a.into(), z.into()))
    );
    let pairs = with_baselines(&cfg, all.iter().filter(|m| m.role == Role::Final));
    assert!(pairs.contains(&("mlm20".into(), "random".into())));
    assert!(pairs.contains(&("micro-mlm20".into(), "micro-random".into())));
    // the control compares micro models with micro random init: above tiny's random init but
    // below their own, they fail it
    let table = runs(&[("micro-mlm40", 0.70), ("random", 0.55), ("micro-random", 0.80)]);
    let ix = RunsIndex::new(&table, &meta(), NanPolicy::ImputeChance);
    let control = positive_control(&ix, &pairs, 0.95, 0.05, 2000, 0);
    let gate = &control.gates["micro-mlm40"];
    assert_eq!((gate.wins, gate.losses, gate.passed), (0, 3, false));
    assert!(control.rows.iter().all(|r| r.baseline == "micro-random"));
    // `finetune.ratio_datasets`: F6's models (mlm20 and every micro model) on those datasets
    // only, the others on all
    let first = cfg.finetune.datasets[0].dataset.clone();
    cfg.finetune.ratio_datasets = vec![first.clone()];
    cfg.finetune.probe = None;
    let dir = tempfile::tempdir()?;
    let specs = grid_of(&cfg, &all, dir.path())?;
    let datasets_of = |model: &str| -> std::collections::BTreeSet<String> {
        specs
            .iter()
            .filter(|s| s.config.model.name.as_deref() == Some(model))
            .map(|s| s.config.task.dataset.clone())
            .collect()
    };
    for f6 in ["mlm20", "micro-mlm40", "micro-mlm20", "micro-random"] {
        assert_eq!(datasets_of(f6), [first.clone()].into(), "{f6}");
    }
    for main in ["clm", "mlm40", "random"] {
        assert_eq!(datasets_of(main).len(), cfg.finetune.datasets.len(), "{main}");
    }
    let f6 = all.iter().filter(|m| encoderlab::study::arms::is_f6(&cfg, m)).count();
    assert_eq!(
        specs.len(),
        f6 * cfg.finetune.runs_per_model(true) + (all.len() - f6) * cfg.finetune.runs_per_model(false)
    );
    // a dataset outside the grid is refused, naming the field
    cfg.finetune.ratio_datasets = vec!["sst3".into()];
    let err = StudyConfig::parse(&toml::to_string(&cfg)?, Path::new("r.toml")).unwrap_err();
    assert!(err.to_string().contains("finetune.ratio_datasets"), "{err}");
    Ok(())
}

/// A study small enough for a test: `micro` models, 20 steps, two shared datasets.
fn miniature(data: &Path, out: &Path) -> anyhow::Result<StudyConfig> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/study/demo.toml"))?;
    let mut cfg = StudyConfig::parse(&text, Path::new("demo.toml"))?;
    cfg.name = "miniature".into();
    cfg.data_dir = data.to_path_buf();
    cfg.fetch = false;
    cfg.out = out.to_path_buf();
    cfg.tokenizer.vocab_size = 512;
    cfg.tokenizer.seq_len = 32;
    cfg.tokenizer.datasets = vec!["nltk_inaugural".into()];
    let p = &mut cfg.pretrain;
    p.size = "micro".into();
    p.steps = 20;
    p.batch_size = 4;
    p.warmup_steps = 2;
    p.decay_steps = 4;
    p.clm_shares = vec![0.5];
    p.intermediate = vec![10];
    p.other_ratios = vec![0.2];
    p.continued_steps = 6;
    p.eval_every_steps = 10;
    let f = &mut cfg.finetune;
    f.datasets = vec![
        toml::from_str("dataset = \"sst2\"\nmax_length = 32")?,
        toml::from_str("dataset = \"conll2003\"\nmax_length = 32")?,
    ];
    f.learning_rates = vec![1e-4, 1e-3];
    f.probe = None;
    f.seeds = vec![0, 1];
    f.steps = 3;
    f.batch_size = 8;
    f.max_train_examples = 24;
    f.max_eval_examples = 16;
    f.workers = 1;
    cfg.analysis.bootstrap_resamples = 200;
    cfg.analysis.aggregate_reps = 200;
    Ok(cfg)
}

#[test]
fn a_whole_study_runs_resumes_without_redoing_anything_and_its_numbers_come_from_runs_csv() -> anyhow::Result<()> {
    let Some(data) = shared_data() else { return Ok(()) };
    let dir = tempfile::tempdir()?;
    let cfg = miniature(&data, &dir.path().join("study"))?;
    let opts = StudyOptions::default(); // in process, one run after another
    let first = run_study(&cfg, &opts)?;
    // 9 models (clm, clm@10, mlm40, mlm40@10, mlm20, clm50-mlm40, 2 continued, random) × 2 × 2 × 2
    assert_eq!(first.finetune_runs, 72);
    assert_eq!(first.pretrain_runs_started, 6);
    assert_eq!(first.finetune_runs_started, 72);
    assert!(first.arms_failed.is_empty());
    let out = &cfg.out;
    let report = std::fs::read_to_string(out.join("REPORT.md"))?;
    for needle in [
        "## F1",
        "## F2",
        "## F3",
        "## F4",
        "## F5",
        "## F6",
        "Holm p",
        "**Verdict:",
        "## Positive control",
        "## Fine-tuning: did the learning-rate grid reach the optimum?",
        "the curves cross ",
    ] {
        assert!(report.contains(needle), "REPORT.md lacks {needle}");
    }
    for file in [
        "runs.csv",
        "meta.csv",
        "findings.csv",
        "models.csv",
        "study.toml",
        "analysis/best_lr.csv",
    ] {
        assert!(out.join(file).exists(), "{file}");
    }
    #[cfg(feature = "plots")]
    for fig in ["models", "f1", "f2", "f2_curve", "f3", "f4", "f5", "control"] {
        assert!(out.join("figures").join(format!("{fig}.png")).exists(), "{fig}.png");
    }
    // F1's primary difference, recomputed from runs.csv alone: best LR on validation (ties to
    // the smaller LR), normalised test scores, paired by (dataset, seed)
    let rows = read_runs(&out.join("runs.csv"))?;
    let meta = encoderlab::stats::runs::read_meta(&out.join("meta.csv"))?;
    let chance = |d: &str| meta[d].chance_score;
    let norm = |model: &str| -> BTreeMap<(String, i64), f64> {
        let mut best: BTreeMap<String, (f64, f64)> = BTreeMap::new();
        for d in ["sst2", "conll2003"] {
            for lr in [1e-4, 1e-3] {
                let v: Vec<f64> = rows
                    .iter()
                    .filter(|r| r.model == model && r.dataset == d && r.learning_rate == lr && r.split == "validation")
                    .map(|r| if r.score.is_nan() { chance(d) } else { r.score })
                    .collect();
                let m = v.iter().sum::<f64>() / v.len() as f64;
                if best.get(d).is_none_or(|b| m > b.1) {
                    best.insert(d.to_string(), (lr, m));
                }
            }
        }
        rows.iter()
            .filter(|r| r.model == model && r.split == "test" && r.learning_rate == best[&r.dataset].0)
            .map(|r| {
                let c = chance(&r.dataset);
                let s = if r.score.is_nan() { c } else { r.score };
                ((r.dataset.clone(), r.seed), (s - c) / (1.0 - c))
            })
            .collect()
    };
    let (mlm, clm) = (norm("mlm40"), norm("clm"));
    let diff = mlm.iter().map(|(k, v)| v - clm[k]).sum::<f64>() / mlm.len() as f64;
    let f1 = csv::Reader::from_path(out.join("findings.csv"))?
        .deserialize::<encoderlab::study::findings::Comparison>()
        .map(|r| r.expect("row"))
        .find(|c| c.finding == "F1" && c.primary)
        .expect("F1 primary row");
    assert!((f1.diff - diff).abs() < 1e-12, "{} vs {diff}", f1.diff);
    assert_eq!(f1.n, 4);

    // published for committing: the report and everything it links to
    let published = dir.path().join("published");
    encoderlab::study::report::publish(out, &published)?;
    let report = std::fs::read_to_string(published.join("REPORT.md"))?;
    let links: Vec<&str> = report
        .split("](")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
        .filter(|l| !l.starts_with('#'))
        .collect();
    assert!(links.len() >= 3, "{links:?}");
    for link in links {
        #[cfg(not(feature = "plots"))]
        if link.ends_with(".png") {
            continue;
        }
        assert!(
            published.join(link).exists(),
            "REPORT.md links to {link}, not published"
        );
    }
    assert!(!published.join("sweeps").exists() && !published.join("pretrain").exists());

    // again: nothing is redone, the report is the same
    let findings_before = std::fs::read_to_string(out.join("findings.csv"))?;
    let second = run_study(&cfg, &opts)?;
    assert_eq!(second.pretrain_runs_started, 0);
    assert_eq!(second.finetune_runs_started, 0);
    assert_eq!(std::fs::read_to_string(out.join("findings.csv"))?, findings_before);
    let timings = std::fs::read_to_string(out.join("timings.jsonl"))?;
    assert_eq!(timings.lines().count(), 2);
    Ok(())
}

#[test]
fn an_interrupted_arm_resumes_from_its_last_checkpoint() -> anyhow::Result<()> {
    let Some(data) = shared_data() else { return Ok(()) };
    let dir = tempfile::tempdir()?;
    let cfg = miniature(&data, &dir.path().join("study"))?;
    let written = encoderlab::study::run::write_pretrain_configs(&cfg)?;
    encoderlab::data::prepare::prepare_pretraining_data(&encoderlab::data::prepare::PrepareOptions {
        vocab_size: 512,
        seq_len: 32,
        datasets: vec!["nltk_inaugural".into()],
        ..encoderlab::data::prepare::PrepareOptions::new(&data, &cfg.out)
    })?;
    let pc = PretrainConfig::load(&written[0].path, &[])?;
    // stopped after 7 of 20 steps (with a checkpoint there)
    let stopped = encoderlab::train::pretrain(
        &pc,
        &encoderlab::train::RunOptions {
            stop_after: Some(7),
            ..Default::default()
        },
    )?;
    assert_eq!(stopped.status, "stopped");
    let (done, ran) = encoderlab::train::pretrain_resumable(&pc, false)?;
    assert!(ran);
    assert_eq!((done.status.as_str(), done.steps), ("completed", 20));
    let (again, ran) = encoderlab::train::pretrain_resumable(&pc, false)?;
    assert!(!ran);
    assert_eq!(
        (again.status, again.steps, again.checkpoint),
        (done.status, done.steps, done.checkpoint)
    );
    Ok(())
}

#[test]
fn the_paper_preset_emits_rerunnable_slurm_jobs_and_a_sweep_that_expands() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut cfg = StudyConfig::preset("paper")?;
    cfg.out = dir.path().join("paper");
    let files = paper::emit(&cfg, Path::new("/opt/encoderlab"))?;
    let all = arms(&cfg);
    assert_eq!(
        files
            .iter()
            .filter(|f| f.extension().is_some_and(|e| e == "toml"))
            .count(),
        all.len() + 3
    );
    let first = std::fs::read_to_string(cfg.out.join("slurm/pretrain.sbatch"))?;
    let independent = all
        .iter()
        .filter(|a| !matches!(a.kind, ArmKind::Continued { .. }))
        .count();
    assert!(
        first.contains(&format!("#SBATCH --array=0-{}", independent - 1)),
        "{first}"
    );
    assert!(first.contains("pretrain --continue --config"));
    // each arm is a data-parallel job of one 8-GPU node, a rank per GPU, started through PMIx
    for line in [
        "#SBATCH --nodes=1\n",
        "#SBATCH --ntasks-per-node=8\n",
        "#SBATCH --gpus-per-task=1\n",
        "srun --mpi=pmix",
    ] {
        assert!(first.contains(line), "{line} not in {first}");
    }
    let submit = std::fs::read_to_string(cfg.out.join("slurm/submit.sh"))?;
    assert!(submit.contains("--dependency=afterok:$p "), "{submit}");
    assert!(submit.contains("sweep slurm --config"));
    let sweep = encoderlab::sweep::SweepConfig::load(cfg.out.join("configs/finetune_sweep.toml"))?;
    let runs = sweep.expand()?;
    assert_eq!(runs.len(), models(&cfg).len() * 13 * 6 * 5);
    // every paper-sized arm config loads, with 1,152 sequences of 2,048 tokens per step
    let pc = PretrainConfig::load(cfg.out.join("configs/pretrain/clm.toml"), &[])?;
    assert_eq!(pc.data.batch_size * pc.data.grad_accum, 1152);
    assert_eq!(pc.train.device, "cuda:0");
    Ok(())
}

#[test]
fn pretraining_workers_run_arms_side_by_side_and_continued_arms_after_their_parents() -> anyhow::Result<()> {
    let Some(data) = shared_data() else { return Ok(()) };
    let dir = tempfile::tempdir()?;
    let mut cfg = miniature(&data, &dir.path().join("study"))?;
    cfg.pretrain.workers = 2;
    cfg.pretrain.seeds = vec![0, 1];
    cfg.finetune.datasets.truncate(1);
    cfg.finetune.seeds = vec![0, 1];
    // and a linear probe beside full fine-tuning
    cfg.finetune.probe = Some(encoderlab::study::config::ProbePlan {
        learning_rates: vec![1e-2],
        steps: Some(3),
    });
    let opts = StudyOptions {
        exe: Some(env!("CARGO_BIN_EXE_encoderlab").into()),
        progress: false,
    };
    let first = run_study(&cfg, &opts)?;
    // 6 arms × 2 seeds, every one completed, each continued arm from its own seed's parent
    assert_eq!(first.pretrain_runs_started, 12);
    assert!(first.arms_failed.is_empty(), "{:?}", first.arms_failed);
    for arm in arms(&cfg) {
        let run = cfg.out.join("pretrain").join(&arm.run);
        let summary: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("summary.json"))?)?;
        assert_eq!(summary["status"], "completed", "{}", arm.run);
        assert!(cfg.out.join("pretrain/logs").join(format!("{}.log", arm.run)).exists());
    }
    let report = std::fs::read_to_string(cfg.out.join("REPORT.md"))?;
    assert!(report.contains("## Pretraining: did the models learn beyond token frequencies?"));
    assert!(
        report.contains("## Linear probe: what the frozen features hold"),
        "{report}"
    );
    let runs = read_runs(&cfg.out.join("runs.csv"))?;
    for probe in ["clm:probe", "random:probe", "mlm40:probe"] {
        // every model's probe, at both pretraining seeds
        let seeds: std::collections::BTreeSet<i64> = runs
            .iter()
            .filter(|r| r.model == probe)
            .map(|r| r.pretrain_seed)
            .collect();
        assert_eq!(seeds.into_iter().collect::<Vec<_>>(), [0, 1], "{probe}");
    }
    let probe = std::fs::read_to_string(cfg.out.join("probe.csv"))?;
    assert!(probe.lines().any(|l| l.starts_with("clm,sst2,")), "{probe}");
    let losses = std::fs::read_to_string(cfg.out.join("pretraining_losses.csv"))?;
    // the runs' evaluations with the unigram floor beside them
    assert!(
        losses.lines().count() > 12 && losses.starts_with("arm,seed,step,"),
        "{losses}"
    );
    // again: nothing to do
    let second = run_study(&cfg, &opts)?;
    assert_eq!((second.pretrain_runs_started, second.finetune_runs_started), (0, 0));
    Ok(())
}

#[test]
fn a_pretraining_seed_a_model_was_never_trained_at_is_not_a_failed_run() -> anyhow::Result<()> {
    // `clm` at pretraining seeds 0–2, its checkpoint `clm@500` at seed 0 only (F2's
    // checkpoints, F6's arms): `clm@500` has no missing runs, and its score is its own
    let mut table = Vec::new();
    for p in 0..3i64 {
        for mut r in runs(&[("clm", 0.70)]) {
            r.pretrain_seed = p;
            table.push(r);
        }
    }
    table.extend(runs(&[("clm@500", 0.80)]));
    let ix = RunsIndex::new(&table, &meta(), NanPolicy::ImputeChance);
    let s = encoderlab::study::findings::system_of(&ix, "clm@500").expect("system");
    for d in 0..ix.datasets.len() {
        let g = ix.selected(s, d).expect("group");
        assert!(g.missing.is_empty(), "{:?}", g.missing);
        assert_eq!(g.scores.len(), 5, "its 5 fine-tuning seeds at pretraining seed 0");
    }
    // a run it should have had (seed 0, fine-tuning seed 4, everywhere) is still missing
    let dropped: Vec<_> = table
        .into_iter()
        .filter(|r| !(r.model == "clm@500" && r.seed == 4))
        .collect();
    let ix = RunsIndex::new(&dropped, &meta(), NanPolicy::ImputeChance);
    let s = encoderlab::study::findings::system_of(&ix, "clm@500").expect("system");
    assert_eq!(ix.selected(s, 0).expect("group").missing, [(0, 4)]);
    Ok(())
}
