//! `analysis report` end to end: the real paper runs, exact column sets, determinism, the NaN
//! policies, and bad input leaving no partial report.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use encoderlab::artifacts::report::{
    BestLrRow, BootstrapRow, GroupStatsRow, HierarchicalTestRow, InstanceMissingRow, InstanceTestRow,
    InteractionTestRow, MissingRunRow, ProfileRow, RankingClusterRow,
};

use common::{shared_data, write};

fn analysis(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_analysis"))
        .args(args)
        .output()
        .unwrap()
}

const FILES: [(&str, &str); 20] = [
    ("group_stats.csv", "model,objective,dataset,learning_rate,split,n_runs,n_nan,n_valid,mean,std,sem,median,q25,q75,iqm,min,max,t_ci_low,t_ci_high,failed_count,failed_rate,failed_wilson_low,failed_wilson_high"),
    ("best_lr.csv", "model,objective,dataset,select_split,report_split,n_lr,best_lr,sel_mean_at_best,best_mean,best_std,best_sem,best_n,best_t_ci_low,best_t_ci_high,lr_range,lr_std,lr_regret,lr_regret_norm,seed_std_mean,seed_std_pooled,failed_rate_all_lr"),
    ("expected_max.csv", "model,objective,dataset,split,budget,N,n,expected_max,sd"),
    ("bootstrap_ci.csv", "model,objective,dataset,method,statistic,n,estimate,confidence_level,n_resamples,ci_low,ci_high"),
    ("tests_unpaired.csv", "dataset,model_x,objective_x,model_y,objective_y,n_x,n_y,welch_t,welch_df,welch_p,mean_diff,welch_ci_low,welch_ci_high,mwu_u1,mwu_p,mwu_method,poi_x_gt_y,welch_p_holm,welch_p_bh,mwu_p_holm,mwu_p_bh"),
    ("tests_paired.csv", "level,model_x,objective_x,model_y,objective_y,n_pairs,mean_diff,ttest_rel_t,ttest_rel_df,ttest_rel_p,ttest_rel_ci_low,ttest_rel_ci_high,wilcoxon_stat,wilcoxon_r_plus,wilcoxon_r_minus,wilcoxon_p,wilcoxon_method,ttest_rel_p_holm,ttest_rel_p_bh,wilcoxon_p_holm,wilcoxon_p_bh"),
    ("tests_datasets.csv", "model_x,objective_x,model_y,objective_y,n_datasets,mean_diff,ci_low,ci_high,ttest_t,ttest_p,wilcoxon_p,sign_p,ttest_p_holm,ttest_p_bh,ttest_df,wilcoxon_stat,wilcoxon_method,sign_positive,sign_negative"),
    ("tests_hierarchical.csv", "model_x,objective_x,model_y,objective_y,dataset_bootstrap,levels,n_datasets,n_pretrain_seeds_x,n_pretrain_seeds_y,mean_diff,reps,percentile_low,percentile_high,bca_low,bca_high,p_boot,instance_datasets,naive_low,naive_high"),
    ("tests_interactions.csv", "model_x1,objective_x1,model_y1,objective_y1,model_x2,objective_x2,model_y2,objective_y2,dataset_bootstrap,levels,n_datasets,instance_datasets,interaction,reps,percentile_low,percentile_high,bca_low,bca_high,p_boot"),
    ("variance_components.csv", "model,objective,dataset,split,n_lr,n_pretrain_seeds,n_finetune_seeds,var_lr,var_pretrain_seed,var_finetune_seed,var_test_sampling,share_lr,share_pretrain_seed,share_finetune_seed,share_test_sampling"),
    ("power.csv", "model_x,objective_x,model_y,objective_y,n_datasets,n_pretrain_seeds,n_finetune_seeds,observed_diff,effect,sd_diff,var_datasets,var_seeds,power,mde,datasets_needed,pretrain_seeds_needed,finetune_seeds_needed"),
    ("ranks.csv", "model,objective,dataset,best_mean,rank,mean_rank,friedman_chi2,friedman_p"),
    ("aggregate.csv", "model,objective,aggregate,task_bootstrap,n_runs,n_tasks,estimate,reps,ci_low,ci_high"),
    ("aggregate_hierarchical.csv", "model,objective,aggregate,dataset_bootstrap,levels,n_datasets,n_pretrain_seeds,estimate,reps,ci_low,ci_high"),
    ("poi.csv", "model_x,objective_x,model_y,objective_y,poi,reps,ci_low,ci_high"),
    ("performance_profile.csv", "model,objective,tau,fraction_above,reps,ci_low,ci_high"),
    ("missing_runs.csv", "model,objective,dataset,split,learning_rate,pretrain_seed,seed"),
    ("instance_tests.csv", "dataset,model_x,objective_x,model_y,objective_y,n_instances,metric_kind,score_x,score_y,mean_diff,reps,ci_low,ci_high,p_boot,p_boot_x_better,ttest_t,ttest_p,ttest_p_x_better,p_boot_holm,p_boot_bh"),
    ("ranking_clusters.csv", "dataset,cluster,model,objective,score,test,min_p"),
    ("instances_missing.csv", "model,objective,dataset,learning_rate,pretrain_seed,seed,split"),
];

/// `analysis report` on the paper's runs and their per-instance SST-2 scores (`data` = the
/// shared bundle) into `out` with `seed`.
fn paper_report(data: &Path, out: &Path, seed: &str) -> Output {
    let (runs, meta) = (data.join("paper_runs/runs.csv"), data.join("paper_runs/meta.csv"));
    let instances = data.join("paper_runs/instances_sst2_test.csv");
    analysis(&[
        "report",
        "--runs",
        runs.to_str().unwrap(),
        "--meta",
        meta.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--seed",
        seed,
        "--instances",
        instances.to_str().unwrap(),
    ])
}

/// `analysis report` of `runs` with `meta` into `out`, CSVs only, with few resamples (the
/// tables under test, not their resolution), then `extra` arguments.
fn quick_report(runs: &Path, meta: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "report",
        "--runs",
        runs.to_str().unwrap(),
        "--meta",
        meta.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--no-plots",
        "--bootstrap-resamples",
        "500",
        "--aggregate-reps",
        "200",
        "--poi-reps",
        "2000",
    ];
    args.extend_from_slice(extra);
    analysis(&args)
}

/// The rows of a report file as its row type (columns by name).
fn typed<R: encoderlab::artifacts::ReportRow>(dir: &Path) -> Vec<R> {
    encoderlab::artifacts::read_report(dir).unwrap()
}

#[test]
fn paper_runs_report_is_complete_and_reproducible() -> anyhow::Result<()> {
    let Some(data) = shared_data() else { return Ok(()) };
    let dir = tempfile::tempdir()?;
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for out in [&a, &b] {
        let o = paper_report(&data, out, "3");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    for (name, header) in FILES {
        let text = std::fs::read_to_string(a.join(name))?;
        assert_eq!(text.lines().next(), Some(header), "{name}");
        assert_eq!(
            text,
            std::fs::read_to_string(b.join(name))?,
            "{name}: same seed, same bytes"
        );
    }
    // 3 systems x (sst2 validation 6 LRs + sst2 test 3 LRs) + 2 systems x conll validation 6 LRs
    assert_eq!(typed::<GroupStatsRow>(&a).len(), 3 * 9 + 2 * 6);
    // clm10k-mlm40 has no sst2 test runs at 2e-4: 5 missing cells
    let missing: Vec<MissingRunRow> = typed(&a);
    assert_eq!(missing.len(), 5);
    assert!(missing
        .iter()
        .all(|r| r.objective == "clm10k-mlm40" && r.split == "test" && r.learning_rate == 0.0002));
    // best LR of clm on sst2 is chosen on validation and reported on test
    let best: Vec<BestLrRow> = typed(&a);
    let clm = best
        .iter()
        .find(|r| r.objective == "clm" && r.dataset == "sst2")
        .unwrap();
    assert_eq!(
        (clm.select_split.as_str(), clm.report_split.as_str(), clm.best_lr),
        ("validation", "test", 0.00005)
    );
    // every interval contains its estimate
    for r in typed::<BootstrapRow>(&a) {
        let (est, lo, hi) = (r.estimate, r.ci_low, r.ci_high);
        if r.method != "basic" {
            assert!(lo <= est && est <= hi, "{r:?}");
        }
    }
    // a different seed moves the bootstrap intervals
    let c = dir.path().join("c");
    assert!(paper_report(&data, &c, "4").status.success());
    assert_ne!(
        std::fs::read(a.join("bootstrap_ci.csv"))?,
        std::fs::read(c.join("bootstrap_ci.csv"))?
    );
    assert_eq!(
        std::fs::read(a.join("group_stats.csv"))?,
        std::fs::read(c.join("group_stats.csv"))?
    );
    Ok(())
}

#[test]
fn nan_policies_and_bad_input() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let mut text = String::from("model,objective,dataset,learning_rate,seed,split,score,status\n");
    for (obj, base) in [("clm", 0.85), ("mlm", 0.88)] {
        for lr in ["1e-05", "1e-04"] {
            for seed in 0..4 {
                let score = if obj == "mlm" && lr == "1e-04" && seed == 3 {
                    String::new()
                } else {
                    format!("{}", base + seed as f64 * 0.01)
                };
                text.push_str(&format!("m,{obj},sst2,{lr},{seed},validation,{score},ok\n"));
            }
        }
    }
    let runs = write(d, "runs.csv", &text);
    let out_i = d.join("impute");
    let out_d = d.join("drop");
    assert!(analysis(&[
        "report",
        "--runs",
        runs.to_str().unwrap(),
        "--out",
        out_i.to_str().unwrap()
    ])
    .status
    .success());
    assert!(analysis(&[
        "report",
        "--runs",
        runs.to_str().unwrap(),
        "--out",
        out_d.to_str().unwrap(),
        "--nan-policy",
        "drop"
    ])
    .status
    .success());
    let g = |dir: &Path| {
        typed::<GroupStatsRow>(dir)
            .into_iter()
            .find(|r| r.objective == "mlm" && r.learning_rate == 0.0001)
            .unwrap()
    };
    let (gi, gd) = (g(&out_i), g(&out_d));
    assert_eq!((gi.n_runs, gi.n_nan, gi.n_valid), (4, 1, 3));
    assert_eq!(
        (gi.failed_count, gd.failed_count),
        (1, 1),
        "a NaN run is a failed run under both policies"
    );
    let imputed = gi.mean;
    let dropped = gd.mean;
    assert!(
        (imputed - (0.88 + 0.89 + 0.90 + 0.500823723228995) / 4.0).abs() < 1e-12,
        "{imputed}"
    );
    assert!((dropped - 0.89).abs() < 1e-12, "{dropped}");
    // bad input: a duplicate row; no report folder appears
    let bad = write(d, "bad.csv", &format!("{text}m,clm,sst2,1e-05,0,validation,0.5,ok\n"));
    let out = d.join("never");
    let o = analysis(&[
        "report",
        "--runs",
        bad.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("duplicate run"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!out.exists());
    let o = analysis(&[
        "report",
        "--runs",
        runs.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--confidence",
        "1.5",
    ]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("confidence"));
    assert!(!out.exists());
    Ok(())
}

#[test]
fn summary_and_compare() {
    let Some(data) = shared_data() else { return };
    let (runs, meta) = (data.join("paper_runs/runs.csv"), data.join("paper_runs/meta.csv"));
    let base = ["--runs", runs.to_str().unwrap(), "--meta", meta.to_str().unwrap()];
    let o = analysis(&[&["summary"][..], &base[..]].concat());
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("610m-clm-10k-mlm40-42k") && out.contains("conll2003_en") && out.contains("95% t-CI"),
        "{out}"
    );
    let o = analysis(
        &[
            &["compare"][..],
            &base[..],
            &["--x", "610m-clm-42k/clm", "--y", "610m-mlm40-42k/mlm40"][..],
        ]
        .concat(),
    );
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("sst2") && out.contains("probability of improvement"),
        "{out}"
    );
    let o = analysis(
        &[
            &["compare"][..],
            &base[..],
            &["--x", "nope/clm", "--y", "610m-mlm40-42k/mlm40"][..],
        ]
        .concat(),
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("no system nope/clm") && err.matches("610m-clm-42k/clm").count() == 1,
        "{err}"
    );
}

#[test]
fn same_report_whatever_the_number_of_threads() -> anyhow::Result<()> {
    use encoderlab::stats::synth::{meta_csv, runs_csv, synthetic_runs, PAPER_LRS};
    let dir = tempfile::tempdir()?;
    let (runs, meta) = synthetic_runs(4, 3, &PAPER_LRS, 5, 1);
    let runs_path = write(dir.path(), "runs.csv", &runs_csv(&runs)?);
    let meta_path = write(dir.path(), "meta.csv", &meta_csv(&meta)?);
    let mut outputs = Vec::new();
    for threads in ["1", "2", "3"] {
        let out = dir.path().join(format!("out{threads}"));
        let o = Command::new(env!("CARGO_BIN_EXE_analysis"))
            .env("RAYON_NUM_THREADS", threads)
            .args([
                "report",
                "--runs",
                runs_path.to_str().unwrap(),
                "--meta",
                meta_path.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
                "--seed",
                "5",
            ])
            .output()?;
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        outputs.push(out);
    }
    for name in files(&outputs[0]) {
        let first = std::fs::read(outputs[0].join(&name))?;
        for other in &outputs[1..] {
            assert!(
                first == std::fs::read(other.join(&name))?,
                "{name} differs with the thread count"
            );
        }
    }
    // the synthetic table has failed runs, and they show up as failures
    let failed: u64 = typed::<GroupStatsRow>(&outputs[0]).iter().map(|r| r.failed_count).sum();
    assert!(failed > 0);
    Ok(())
}

/// The names of the files of a folder, sorted.
fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// `analysis/paper_runs/` is what its README's command produces, byte for byte, plots included.
#[test]
fn committed_paper_report_is_reproducible() -> anyhow::Result<()> {
    let Some(data) = shared_data() else { return Ok(()) };
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("paper_runs");
    let o = paper_report(&data, &out, "0");
    assert!(o.status.success());
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("analysis/paper_runs");
    let produced = files(&out);
    assert!(produced.len() >= FILES.len());
    let mut expected = produced.clone();
    expected.push("README.md".into());
    // `analysis findings` writes this folder (checked below)
    expected.push("findings".into());
    expected.sort();
    assert_eq!(
        files(&committed),
        expected,
        "stale or missing files in analysis/paper_runs"
    );
    for name in produced {
        assert!(
            std::fs::read(out.join(&name))? == std::fs::read(committed.join(&name))?,
            "{name}: regenerate analysis/paper_runs with the command in its README"
        );
    }
    // F1 and F3 on the same runs, as its README's second command writes them
    let f = dir.path().join("findings");
    let o = paper_findings(&data, &f);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for name in ["FINDINGS.md", "findings.csv"] {
        assert!(
            std::fs::read(f.join(name))? == std::fs::read(committed.join("findings").join(name))?,
            "findings/{name}: regenerate it with the command in analysis/paper_runs/README.md"
        );
    }
    Ok(())
}

fn paper_findings(data: &Path, out: &Path) -> Output {
    let p = |f: &str| data.join("paper_runs").join(f).display().to_string();
    analysis(&[
        "findings",
        "--runs",
        &p("runs.csv"),
        "--meta",
        &p("meta.csv"),
        "--instances",
        &p("instances_sst2_test.csv"),
        "--clm",
        "610m-clm-42k",
        "--mlm",
        "610m-mlm40-42k",
        "--out",
        &out.display().to_string(),
    ])
}

#[test]
fn findings_on_the_paper_runs_follow_the_runs_and_refuse_unknown_models() -> anyhow::Result<()> {
    let Some(data) = shared_data() else { return Ok(()) };
    let dir = tempfile::tempdir()?;
    let o = paper_findings(&data, &dir.path().join("f"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let found: Vec<encoderlab::study::Comparison> = csv::Reader::from_path(dir.path().join("f/findings.csv"))?
        .deserialize()
        .collect::<Result<_, _>>()?;
    // F1's SST-2 row: MLM − CLM of the test means at each model's selected LR (5 seeds), which
    // the runs table gives directly
    let runs = encoderlab::stats::runs::read_runs(&data.join("paper_runs/runs.csv"))?;
    let mean = |model: &str, lr: f64| {
        let v: Vec<f64> = runs
            .iter()
            .filter(|r| r.model == model && r.dataset == "sst2" && r.split == "test" && r.learning_rate == lr)
            .map(|r| r.score)
            .collect();
        v.iter().sum::<f64>() / v.len() as f64
    };
    // the selected learning rates, from the committed report's best_lr.csv
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("analysis/paper_runs");
    let best: Vec<BestLrRow> = typed(&committed);
    let lr = |model: &str| -> f64 {
        best.iter()
            .find(|r| r.model == model && r.dataset == "sst2")
            .expect("best_lr row")
            .best_lr
    };
    let sst2 = found
        .iter()
        .find(|r| r.finding == "F1" && r.label == "MLM − CLM, one dataset" && r.scope == "sst2")
        .expect("sst2 row");
    let want = mean("610m-mlm40-42k", lr("610m-mlm40-42k")) - mean("610m-clm-42k", lr("610m-clm-42k"));
    let got = sst2.diff;
    assert!((got - want).abs() < 1e-12, "{got} vs {want}");
    // the instance row: 872 sentences, paired bootstrap
    let inst = found
        .iter()
        .find(|r| r.label == "MLM − CLM, one dataset's test instances")
        .expect("instance row");
    assert_eq!(inst.n, 872);
    // an unknown model is refused by name, and nothing is written
    let bad = analysis(&[
        "findings",
        "--runs",
        &data.join("paper_runs/runs.csv").display().to_string(),
        "--meta",
        &data.join("paper_runs/meta.csv").display().to_string(),
        "--clm",
        "nope",
        "--mlm",
        "610m-mlm40-42k",
        "--out",
        &dir.path().join("g").display().to_string(),
    ]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no model `nope`"));
    assert!(!dir.path().join("g").exists());
    Ok(())
}

#[test]
fn missing_metadata_all_failed_groups_and_taus() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let mut text = String::from("model,objective,dataset,learning_rate,seed,split,score,status\n");
    for (obj, lr, base) in [
        ("clm", "1e-05", "0.9"),
        ("clm", "1e-04", ""),
        ("mlm", "1e-05", "0.92"),
        ("mlm", "1e-04", "0.91"),
    ] {
        for seed in 0..3 {
            text.push_str(&format!("m,{obj},sst2,{lr},{seed},validation,{base},ok\n"));
        }
    }
    let runs = write(d, "runs.csv", &text);
    let out = d.join("out");
    let o = analysis(&[
        "report",
        "--runs",
        runs.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--taus",
        "0.1,0.5,0.9",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // the all-failed group: every run failed, imputed to chance, std 0 so its t-interval is NaN
    let g = typed::<GroupStatsRow>(&out)
        .into_iter()
        .find(|r| r.objective == "clm" && r.learning_rate == 0.0001)
        .unwrap();
    assert_eq!((g.n_nan, g.failed_count, g.failed_rate), (3, 3, 1.0));
    assert!(g.std == 0.0 && g.t_ci_low.is_nan() && g.t_ci_high.is_nan(), "{g:?}");
    let taus: Vec<f64> = typed::<ProfileRow>(&out).iter().map(|r| r.tau).collect();
    assert_eq!(taus, [0.1, 0.5, 0.9, 0.1, 0.5, 0.9]);
    // dropped instead: the all-failed group has no score (NaN), and the plots are still drawn
    let dropped = d.join("dropped");
    let o = analysis(&[
        "report",
        "--runs",
        runs.to_str().unwrap(),
        "--out",
        dropped.to_str().unwrap(),
        "--nan-policy",
        "drop",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let g = typed::<GroupStatsRow>(&dropped)
        .into_iter()
        .find(|r| r.objective == "clm" && r.learning_rate == 0.0001)
        .unwrap();
    assert!(g.n_valid == 0 && g.mean.is_nan(), "{g:?}");
    if cfg!(feature = "plots") {
        assert!(std::fs::metadata(dropped.join("lr_curves.png"))?.len() > 1000);
    }
    // a dataset without metadata
    let unknown = write(d, "unknown.csv", &text.replace("sst2", "mystery"));
    let o = analysis(&[
        "report",
        "--runs",
        unknown.to_str().unwrap(),
        "--out",
        d.join("never").to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("unknown.csv:2") && err.contains("`mystery` has no metadata") && err.contains("--meta"),
        "{err}"
    );
    assert!(!d.join("never").exists());
    Ok(())
}

/// A small runs table on `sst2` (built-in metadata): 2 systems × 2 learning rates × 3 seeds ×
/// both splits.
fn small_runs(dir: &Path) -> std::path::PathBuf {
    let mut text = String::from("model,objective,dataset,learning_rate,seed,split,score\n");
    for (m, base) in [("a", 0.7), ("b", 0.6)] {
        for (k, lr) in ["1e-5", "1e-4"].iter().enumerate() {
            for seed in 0..3 {
                for split in ["validation", "test"] {
                    let score = base + 0.05 * k as f64 + 0.01 * seed as f64;
                    text.push_str(&format!("{m},clm,sst2,{lr},{seed},{split},{score}\n"));
                }
            }
        }
    }
    write(dir, "runs.csv", &text)
}

/// Issue 18, item 1: `analysis report --out` removes only what a report wrote. An existing file
/// is refused untouched; a folder holding other files (the input's folder) is refused, the input
/// kept; a report folder is refreshed with unrelated files in it left alone.
#[test]
fn report_out_only_ever_replaces_what_a_report_wrote() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let runs = small_runs(d);
    let report = |out: &Path| {
        analysis(&[
            "report",
            "--no-plots",
            "--runs",
            runs.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
    };
    let listing = || files(d);

    // an existing file
    let file = write(d, "notes.txt", "mine");
    let before = listing();
    let o = report(&file);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("not a folder"), "{err}");
    assert_eq!(std::fs::read_to_string(&file)?, "mine");
    assert_eq!(listing(), before, "nothing written, nothing renamed");

    // the folder holding the input
    let o = report(d);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("did not write") && err.contains("runs.csv"),
        "{err}"
    );
    assert!(runs.exists());
    assert_eq!(listing(), before);

    // a report folder: written, then refreshed with a user's file (and the input) kept
    let out = d.join("report");
    assert!(report(&out).status.success());
    write(&out, "my_notes.md", "keep me");
    std::fs::copy(&runs, out.join("runs.csv"))?;
    let best = std::fs::read(out.join("best_lr.csv"))?;
    std::fs::write(out.join("best_lr.csv"), "stale")?;
    let o = analysis(&[
        "report",
        "--no-plots",
        "--runs",
        out.join("runs.csv").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read_to_string(out.join("my_notes.md"))?, "keep me");
    assert!(
        out.join("runs.csv").exists(),
        "the input inside the report folder is kept"
    );
    assert_eq!(
        std::fs::read(out.join("best_lr.csv"))?,
        best,
        "the report's own file is replaced"
    );
    // a file of a report's name that the report did not write is not replaced
    std::fs::remove_file(out.join("ranks.csv"))?;
    let marker = std::fs::read_to_string(out.join(".encoderlab-owned.json"))?;
    std::fs::write(out.join(".encoderlab-owned.json"), marker.replace("\"ranks.csv\",", ""))?;
    write(&out, "ranks.csv", "my own ranking");
    let o = report(&out);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("ranks.csv"), "{err}");
    assert_eq!(std::fs::read_to_string(out.join("ranks.csv"))?, "my own ranking");
    assert_eq!(std::fs::read(out.join("best_lr.csv"))?, best);
    // no staging folder left anywhere
    assert!(listing().iter().all(|n| !n.contains(".tmp-")), "{:?}", listing());
    Ok(())
}

/// Issue 19, item 1: pretraining seeds are replicates of a system, never systems of their own;
/// a replicate absent from the grid is listed with its pretraining seed.
#[test]
fn pretraining_seeds_are_replicates_of_one_system() -> anyhow::Result<()> {
    use encoderlab::stats::report::{missing_runs, NanPolicy, RunsIndex};
    use encoderlab::stats::runs::{read_meta, read_runs};
    let dir = tempfile::tempdir()?;
    let mut text = String::from("model,objective,dataset,learning_rate,pretrain_seed,seed,split,score\n");
    for pretrain_seed in [0, 1] {
        for seed in 0..3 {
            for split in ["validation", "test"] {
                // m/clm lacks one replicate of the grid: pretraining seed 1, seed 2, test
                if (pretrain_seed, seed, split) != (1, 2, "test") {
                    text.push_str(&format!(
                        "m,clm,sst2,1e-5,{pretrain_seed},{seed},{split},0.{}\n",
                        80 + seed
                    ));
                }
                text.push_str(&format!(
                    "m,mlm,sst2,1e-5,{pretrain_seed},{seed},{split},0.{}\n",
                    70 + seed
                ));
            }
        }
    }
    std::fs::write(dir.path().join("runs.csv"), text)?;
    std::fs::write(
        dir.path().join("meta.csv"),
        "dataset,family,metric_name,chance_score,max_score,higher_is_better\nsst2,SC,accuracy,0.5,1,true\n",
    )?;
    let runs = read_runs(&dir.path().join("runs.csv"))?;
    let meta = read_meta(&dir.path().join("meta.csv"))?;
    let ix = RunsIndex::new(&runs, &meta, NanPolicy::Drop);
    let system = |o: &str| ("m".to_string(), o.to_string());
    assert_eq!(ix.systems, [system("clm"), system("mlm")]);
    let test = ix.group(0, 0, "test", 1e-5).unwrap();
    assert_eq!(test.scores.len(), 6, "2 pretraining seeds × 3 seeds");
    assert_eq!(test.missing, [(1, 2)]);
    let missing = missing_runs(&ix)?;
    assert_eq!(missing.header[5..], ["pretrain_seed", "seed"]);
    let missing: Vec<MissingRunRow> = missing.rows_of()?;
    assert_eq!(missing.len(), 1);
    assert_eq!((missing[0].pretrain_seed, missing[0].seed), (1, 2));
    // the hierarchical difference weighs each pretraining run alike: clm's are 0.81 and 0.805
    // (its absent run dropped), mlm's 0.71 and 0.71; normalised (chance 0.5, max 1): 0.195
    let h: Vec<HierarchicalTestRow> =
        encoderlab::stats::report::tests_hierarchical(&ix, &Default::default())?.rows_of()?;
    assert_eq!(h.len(), 2);
    let row = &h[0];
    assert_eq!(
        (row.dataset_bootstrap.as_str(), row.levels.as_str()),
        ("False", "pretrain_seeds+finetune_seeds")
    );
    assert_eq!((row.n_pretrain_seeds_x, row.n_pretrain_seeds_y), (2, 2));
    assert!((row.mean_diff - 0.195).abs() < 1e-12, "{row:?}");
    assert_eq!(
        h[1].levels, "pretrain_seeds+finetune_seeds",
        "one dataset: no dataset level"
    );
    Ok(())
}

/// The instance-level tables on the paper's own per-sentence SST-2 scores (issue 19, item 5):
/// the paired t-test over each system's seed-averaged profile and EncodEval's confidence-aware
/// ranking, against scipy:
/// ```python
/// import csv, numpy as np
/// from scipy import stats
/// rows = list(csv.DictReader(open('../shared/data/paper_runs/instances_sst2_test.csv')))
/// sel = {'610m-clm-42k': 5e-05, '610m-mlm40-42k': 1e-04, '610m-clm-10k-mlm40-42k': 5e-05}
/// prof = {}
/// for m, lr in sel.items():
///     runs = {}
///     for r in rows:
///         if r['model'] == m and float(r['learning_rate']) == lr:
///             runs.setdefault(r['seed'], []).append(float(r['score']))
///     prof[m] = np.mean([runs[s] for s in sorted(runs)], axis=0)
/// names = list(sel)
/// for i in range(3):
///     for j in range(i + 1, 3):
///         a, b = prof[names[i]], prof[names[j]]
///         print(stats.ttest_rel(a, b).statistic, stats.ttest_rel(a, b).pvalue,
///               stats.ttest_rel(a, b, alternative='greater').pvalue)
/// order = sorted(names, key=lambda m: -prof[m].mean())
/// clusters = [[]]
/// for s in order:
///     cur = clusters[-1]
///     if any(stats.ttest_rel(prof[c], prof[s], alternative='greater').pvalue < 0.05 for c in cur):
///         clusters.append([s])
///     else:
///         cur.append(s)
/// print(clusters)  # [['610m-clm-10k-mlm40-42k', '610m-mlm40-42k'], ['610m-clm-42k']]
/// ```
#[test]
fn instance_tests_and_ranking_on_the_papers_sentences() -> anyhow::Result<()> {
    let Some(data) = shared_data() else { return Ok(()) };
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("r");
    let o = paper_report(&data, &out, "0");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("40 runs"), "{stderr}");
    // CoNLL has no per-instance scores: named, and resampled at run level
    assert!(stderr.contains("resampled at run level"), "{stderr}");
    assert_eq!(typed::<InstanceMissingRow>(&out).len(), 10);
    let tests: Vec<InstanceTestRow> = typed(&out);
    let want = [
        (-1.0554870808952421, 0.2914952917841271, 0.8542523541079364),
        (-1.9428941151560066, 0.05235087180488649, 0.9738245640975568),
        (-1.1510442725085972, 0.2500299053435492, 0.8749850473282255),
    ];
    assert_eq!(tests.len(), 3);
    for (r, (t, p, greater)) in tests.iter().zip(want) {
        assert_eq!(
            (r.dataset.as_str(), r.n_instances, r.metric_kind.as_str()),
            ("sst2", 872, "mean")
        );
        for (k, got, v) in [
            ("t", r.ttest_t, t),
            ("p", r.ttest_p, p),
            ("p(x better)", r.ttest_p_x_better, greater),
        ] {
            assert!((got - v).abs() < 1e-12 * v.abs().max(1.0), "{k}: {got} vs {v}");
        }
        // the bootstrap agrees with the t-test (Monte-Carlo error ≈ 0.01 at 2,000 resamples)
        let boot = r.p_boot;
        assert!((boot - p).abs() < 0.06, "{boot} vs {p}");
    }
    let ranking: Vec<RankingClusterRow> = typed(&out);
    let clusters: Vec<(usize, &str)> = ranking.iter().map(|r| (r.cluster, r.model.as_str())).collect();
    assert_eq!(
        clusters,
        [
            (1, "610m-clm-10k-mlm40-42k"),
            (1, "610m-mlm40-42k"),
            (2, "610m-clm-42k")
        ]
    );
    // the hierarchical bootstrap resamples the sentences of SST-2 (1 of 2 datasets)
    let h: Vec<HierarchicalTestRow> = typed(&out);
    assert_eq!(h[0].levels, "finetune_seeds+instances");
    assert_eq!(h[0].instance_datasets, 1);
    Ok(())
}

/// Bad per-instance input: ids that differ between runs are refused naming both runs; a score
/// that disagrees with the runs table is refused naming the run; runs without instances are
/// listed and their dataset falls back to run level; nothing is written on refusal.
#[test]
fn bad_instances_are_refused_or_named() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let runs = write(
        dir.path(),
        "runs.csv",
        "model,objective,dataset,learning_rate,seed,split,score\n\
         a,clm,d,1e-5,0,test,0.75\na,clm,d,1e-5,1,test,0.5\nb,mlm,d,1e-5,0,test,0.25\nb,mlm,d,1e-5,1,test,0.5\n",
    );
    let meta = write(
        dir.path(),
        "meta.csv",
        "dataset,family,metric_name,chance_score,max_score,higher_is_better\nd,SC,accuracy,0.5,1,true\n",
    );
    let instances = |body: &str| {
        let mut text = String::from("model,objective,dataset,learning_rate,seed,split,instance,score\n");
        text.push_str(body);
        text
    };
    let run = |m: &str, o: &str, seed: u32, ids: [&str; 4], scores: [u8; 4]| -> String {
        ids.iter()
            .zip(scores)
            .map(|(id, s)| format!("{m},{o},d,1e-5,{seed},test,{id},{s}\n"))
            .collect()
    };
    let ids = ["q1", "q2", "q3", "q4"];
    let good = [
        run("a", "clm", 0, ids, [1, 1, 1, 0]),
        run("a", "clm", 1, ids, [1, 0, 1, 0]),
        run("b", "mlm", 0, ids, [0, 0, 1, 0]),
        run("b", "mlm", 1, ids, [1, 0, 1, 0]),
    ];
    let report = |inst: &str, out: &str| {
        let path = write(dir.path(), "inst.csv", inst);
        quick_report(
            &runs,
            &meta,
            &dir.path().join(out),
            &["--instances", path.to_str().unwrap()],
        )
    };
    let o = report(&instances(&good.concat()), "ok");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(typed::<InstanceTestRow>(&dir.path().join("ok")).len(), 1);
    // ids in another order
    let shuffled = run("b", "mlm", 1, ["q2", "q1", "q3", "q4"], [0, 1, 1, 0]);
    let o = report(&instances(&[&good[..3].concat(), shuffled.as_str()].concat()), "ids");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("b/mlm d lr=0.00001 pretrain_seed=0 seed=1 test")
            && err.contains("position 0")
            && err.contains("inst.csv:"),
        "{err}"
    );
    assert!(!dir.path().join("ids").exists(), "nothing written");
    // a score the runs table does not have
    let wrong = run("b", "mlm", 1, ids, [1, 1, 1, 0]);
    let o = report(&instances(&[&good[..3].concat(), wrong.as_str()].concat()), "score");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("give a score of 0.75 but the runs table has 0.5"), "{err}");
    // a run without instances: named, and the dataset is resampled at run level
    let o = report(&instances(&good[..3].concat()), "partial");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = dir.path().join("partial");
    assert_eq!(
        typed::<InstanceMissingRow>(&out),
        [InstanceMissingRow {
            model: "b".into(),
            objective: "mlm".into(),
            dataset: "d".into(),
            learning_rate: 1e-5,
            pretrain_seed: 0,
            seed: 1,
            split: "test".into(),
        }]
    );
    let text = std::fs::read_to_string(out.join("instances_missing.csv"))?;
    assert_eq!(
        text,
        "model,objective,dataset,learning_rate,pretrain_seed,seed,split\nb,mlm,d,0.00001,0,1,test\n"
    );
    assert!(typed::<InstanceTestRow>(&out).is_empty());
    assert_eq!(typed::<HierarchicalTestRow>(&out)[0].instance_datasets, 0);
    assert!(String::from_utf8_lossy(&o.stderr).contains("resampled at run level"));
    Ok(())
}

/// The interaction test (issue 19, item 4): (x₁ − y₁) − (x₂ − y₂) with the hierarchical
/// bootstrap. With the same gain of 40 % over 20 % masking at both sizes the interaction is 0
/// and its interval holds 0; with the gain at one size only, it is that gain, and the
/// bootstrap rejects. A system the table lacks is refused by name.
#[test]
fn interaction_is_a_difference_of_differences() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let meta = write(
        dir.path(),
        "meta.csv",
        "dataset,family,metric_name,chance_score,max_score,higher_is_better\n\
         d0,SC,accuracy,0,1,true\nd1,SC,accuracy,0,1,true\nd2,SC,accuracy,0,1,true\n",
    );
    let table = |gain_small: f64| {
        let mut text = String::from("model,objective,dataset,learning_rate,pretrain_seed,seed,split,score\n");
        for (model, objective, effect) in [
            ("base", "mlm40", 0.10),
            ("base", "mlm20", 0.0),
            ("small", "mlm40", gain_small),
            ("small", "mlm20", 0.0),
        ] {
            for d in 0..3 {
                for p in 0..2 {
                    for s in 0..3 {
                        let noise = 0.01 * (((7 * d + 5 * p + 3 * s + model.len()) % 5) as f64 - 2.0);
                        let score = 0.5 + 0.05 * d as f64 + effect + noise;
                        text.push_str(&format!("{model},{objective},d{d},1e-5,{p},{s},test,{score}\n"));
                    }
                }
            }
        }
        text
    };
    let run = |name: &str, gain_small: f64, spec: &str| {
        let runs = write(dir.path(), &format!("{name}.csv"), &table(gain_small));
        quick_report(&runs, &meta, &dir.path().join(name), &["--interaction", spec])
    };
    let spec = "base/mlm40,base/mlm20,small/mlm40,small/mlm20";
    let o = run("same", 0.10, spec);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: Vec<InteractionTestRow> = typed(&dir.path().join("same"));
    assert_eq!(r.len(), 2);
    assert_eq!(r[1].levels, "datasets+pretrain_seeds+finetune_seeds");
    assert_eq!(r[0].n_datasets, 3);
    let (estimate, lo, hi) = (r[0].interaction, r[0].percentile_low, r[0].percentile_high);
    assert!(estimate.abs() < 0.01 && lo < 0.0 && hi > 0.0, "{:?}", r[0]);
    let o = run("differs", 0.0, spec);
    assert!(o.status.success());
    let r: Vec<InteractionTestRow> = typed(&dir.path().join("differs"));
    assert!((r[0].interaction - 0.10).abs() < 0.01, "{:?}", r[0]);
    assert!(r[0].p_boot < 0.01, "{:?}", r[0]);
    let o = run("bad", 0.0, "base/mlm40,base/mlm20,small/mlm40,tiny/mlm20");
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("no system tiny/mlm20") && err.contains("small/mlm20"),
        "{err}"
    );
    Ok(())
}

/// Per-instance scores read from fine-tuning records (`result.json` + `instances.jsonl`, as
/// `encoderlab finetune` writes them): a corpus F1 kept as `(tp, predicted, gold)` counts, only
/// the run's own metric, failed runs skipped; the instance tables then use the paired bootstrap
/// (a corpus F1 is not a mean of sentences).
#[test]
fn instances_from_run_records_keep_corpus_f1_counts() -> anyhow::Result<()> {
    use encoderlab::eval::Counts;
    use encoderlab::finetune::record::{InstanceRow, RunResult};
    use encoderlab::finetune::Status;
    use encoderlab::stats::instances::{read_instances, InstanceValues};
    let dir = tempfile::tempdir()?;
    let sentences: [[(u64, u64, u64); 3]; 4] = [
        [(1, 1, 1), (0, 1, 2), (2, 2, 2)],
        [(1, 2, 1), (1, 1, 2), (1, 2, 2)],
        [(0, 0, 1), (0, 1, 2), (2, 3, 2)],
        [(1, 1, 1), (2, 2, 2), (0, 0, 2)],
    ];
    let mut runs = String::from("model,objective,dataset,learning_rate,seed,split,score,status\n");
    for (k, counts) in sentences.iter().enumerate() {
        let (model, seed) = (["a", "b"][k / 2], k % 2);
        let total = counts.iter().fold(Counts::default(), |a, &(tp, predicted, gold)| {
            a + Counts { tp, predicted, gold }
        });
        let status = if k == 3 { Status::Failed } else { Status::Ok };
        let result = RunResult {
            run_id: format!("r{k}"),
            model: model.into(),
            objective: "clm".into(),
            family: "TC".into(),
            dataset: "ner".into(),
            learning_rate: 1e-4,
            pretrain_seed: 0,
            seed: seed as u64,
            metric: "entity_f1".into(),
            validation: None,
            test: Some(total.f1()),
            all_scores: Vec::new(),
            status,
            reason: None,
            steps: 1,
            examples: 1,
            train_examples_per_s: 1.0,
            eval_examples_per_s: 1.0,
            wall_seconds: 1.0,
        };
        let run_dir = dir.path().join("runs").join(format!("r{k}"));
        std::fs::create_dir_all(&run_dir)?;
        std::fs::write(run_dir.join("result.json"), serde_json::to_string(&result)?)?;
        let mut lines = String::new();
        for (i, &(tp, predicted, gold)) in counts.iter().enumerate() {
            for (metric, c) in [
                ("entity_f1", Some(Counts { tp, predicted, gold })),
                ("token_accuracy", None),
            ] {
                let row = InstanceRow {
                    split: "test".into(),
                    metric: metric.into(),
                    id: format!("s{i}"),
                    score: 0.5,
                    counts: c,
                };
                lines.push_str(&serde_json::to_string(&row)?);
                lines.push('\n');
            }
        }
        std::fs::write(run_dir.join("instances.jsonl"), lines)?;
        let score = if k == 3 { String::new() } else { total.f1().to_string() };
        let status = if k == 3 { "failed" } else { "ok" };
        runs.push_str(&format!("{model},clm,ner,1e-4,{seed},test,{score},{status}\n"));
    }
    let read = read_instances(&dir.path().join("runs"))?;
    assert_eq!(read.runs.len(), 3, "the failed run is skipped");
    assert!(read
        .runs
        .values()
        .all(|r| matches!(&r.values, InstanceValues::Counts(c) if c.len() == 3)));
    let runs_path = write(dir.path(), "runs.csv", &runs);
    let meta = write(
        dir.path(),
        "meta.csv",
        "dataset,family,metric_name,chance_score,max_score,higher_is_better\nner,TC,entity_f1,0,1,true\n",
    );
    let records = dir.path().join("runs");
    let o = quick_report(
        &runs_path,
        &meta,
        &dir.path().join("out"),
        &["--instances", records.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = dir.path().join("out");
    let tests: Vec<InstanceTestRow> = typed(&out);
    assert_eq!(tests.len(), 1);
    assert_eq!((tests[0].n_instances, tests[0].metric_kind.as_str()), (3, "corpus_f1"));
    assert!(tests[0].ttest_t.is_nan(), "no t-test over sentences for a corpus F1");
    assert_eq!(typed::<RankingClusterRow>(&out)[0].test, "paired_bootstrap");
    assert!(typed::<InstanceMissingRow>(&out).is_empty(), "a failed run needs none");
    assert!(typed::<HierarchicalTestRow>(&out)[0].levels.ends_with("+instances"));
    Ok(())
}

/// `data/paper_runs/` (the paper's released runs shipped with the repository, for notebook 03
/// and the examples) is the shared bundle's copy, file for file.
#[test]
fn the_shipped_paper_runs_are_the_bundles() -> anyhow::Result<()> {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/paper_runs");
    // readable without the bundle: a report of the shipped runs
    let runs = encoderlab::stats::runs::read_runs(&shipped.join("runs.csv"))?;
    assert_eq!(runs.len(), 190);
    let Some(data) = shared_data() else { return Ok(()) };
    for name in ["runs.csv", "meta.csv", "instances_sst2_test.csv"] {
        assert!(
            std::fs::read(shipped.join(name))? == std::fs::read(data.join("paper_runs").join(name))?,
            "data/paper_runs/{name} differs from the shared bundle's"
        );
    }
    Ok(())
}
