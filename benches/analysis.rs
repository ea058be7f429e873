//! The full analysis report on a synthetic 15,000-run table (50 systems × 10 datasets × 6
//! learning rates × 5 seeds) with the default resamples. `cargo bench --bench analysis` prints
//! the figures (and writes the table to `target/synthetic_runs/` for the Python comparison in
//! `benches/analysis_reference.py`); it asserts nothing about speed. The report includes its
//! plots (PNG and SVG) when the `plots` feature is on.

use std::time::Instant;

use encoderlab::stats::report::{build_tables, write_report, NanPolicy, ReportConfig, RunsIndex};
use encoderlab::stats::runs::{check_meta, read_meta, read_runs};
use encoderlab::stats::synth::{meta_csv, runs_csv, synthetic_runs, PAPER_LRS};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/synthetic_runs");
    std::fs::create_dir_all(&dir)?;
    // `cargo bench --bench analysis -- instances`: only the per-instance table
    let only_instances = std::env::args().any(|a| a == "instances");
    if only_instances {
        return with_instances(&dir);
    }
    let (runs, meta) = synthetic_runs(50, 10, &PAPER_LRS, 5, 0);
    std::fs::write(dir.join("runs.csv"), runs_csv(&runs)?)?;
    std::fs::write(dir.join("meta.csv"), meta_csv(&meta)?)?;
    println!(
        "synthetic table: {} runs -> {}",
        runs.len(),
        dir.join("runs.csv").display()
    );
    {
        use encoderlab::stats::report as r;
        let runs = read_runs(&dir.join("runs.csv"))?;
        let meta = read_meta(&dir.join("meta.csv"))?;
        let ix = RunsIndex::new(&runs, &meta, NanPolicy::ImputeChance);
        let cfg = ReportConfig::default();
        let time = |name: &str, f: &dyn Fn() -> encoderlab::Result<r::Table>| -> anyhow::Result<()> {
            let t = Instant::now();
            let table = f()?;
            println!(
                "  {name:<22} {:>6.2} s ({} rows)",
                t.elapsed().as_secs_f64(),
                table.rows.len()
            );
            Ok(())
        };
        time("group_stats", &|| r::group_stats(&ix, &cfg))?;
        time("best_lr", &|| r::best_lr_table(&ix, &cfg))?;
        time("expected_max", &|| r::expected_max_table(&ix))?;
        time("bootstrap_ci", &|| r::bootstrap_table(&ix, &cfg))?;
        time("tests_unpaired", &|| r::tests_unpaired(&ix, &cfg))?;
        time("tests_paired", &|| r::tests_paired(&ix, &cfg))?;
        time("ranks", &|| r::ranks_table(&ix))?;
        time("aggregate", &|| r::aggregate_table(&ix, &cfg))?;
        time("poi", &|| r::poi_table(&ix, &cfg))?;
        time("performance_profile", &|| r::profile_table(&ix, &cfg))?;
    }
    for round in 0..3 {
        let started = Instant::now();
        let runs = read_runs(&dir.join("runs.csv"))?;
        let meta = read_meta(&dir.join("meta.csv"))?;
        check_meta(&runs, &meta, &dir.join("runs.csv"), &dir.join("meta.csv"))?;
        let read = started.elapsed().as_secs_f64();
        let index = RunsIndex::new(&runs, &meta, NanPolicy::ImputeChance);
        let cfg = ReportConfig::default();
        let tables = build_tables(&index, &cfg)?;
        let built = started.elapsed().as_secs_f64();
        #[cfg(feature = "plots")]
        let plots = encoderlab::stats::plots::plot_tables(&tables, &index.score_ranges())?;
        #[cfg(not(feature = "plots"))]
        let plots = Vec::new();
        let drawn = started.elapsed().as_secs_f64();
        write_report(&tables, &plots, &dir.join("report"))?;
        let total = started.elapsed().as_secs_f64();
        println!(
            "round {round}: read {read:.2} s, statistics {:.2} s, plots {:.2} s ({} files), write {:.2} s, total {total:.2} s on {} threads",
            built - read,
            drawn - built,
            plots.len(),
            total - drawn,
            rayon::current_num_threads()
        );
    }
    // issue 18's scale, two shapes of about 2 M rows: many seeds per cell, and many datasets
    // with the paper's 5 seeds
    with_instances(&dir)?;
    large_table(&dir, "2m_seeds", 20, 167)?;
    large_table(&dir, "2m_datasets", 667, 5)?;
    Ok(())
}

/// Issue 19's scale: the 15,000-run table with 200 test instances per run (3 M instance
/// scores), the whole report with every instance-level table, as `analysis report --instances`
/// runs it (reading both CSVs included).
fn with_instances(dir: &std::path::Path) -> anyhow::Result<()> {
    use encoderlab::stats::instances::read_instances;
    use encoderlab::stats::synth::{instances_csv, synthetic_instances};
    let (mut runs, meta) = synthetic_runs(50, 10, &PAPER_LRS, 5, 0);
    let instances = synthetic_instances(&mut runs, 200, 0)?;
    let (runs_path, meta_path, inst_path) = (
        dir.join("runs_instances.csv"),
        dir.join("meta_instances.csv"),
        dir.join("instances.csv"),
    );
    std::fs::write(&runs_path, runs_csv(&runs)?)?;
    std::fs::write(&meta_path, meta_csv(&meta)?)?;
    std::fs::write(&inst_path, instances_csv(&instances))?;
    let scores: usize = instances.runs.values().map(|r| r.values.len()).sum();
    println!(
        "with instances: {} runs, {scores} instance scores -> {} ({})",
        runs.len(),
        inst_path.display(),
        encoderlab::model::kernels::vmath::cpu_summary()
    );
    drop(instances);
    for round in 0..2 {
        let started = Instant::now();
        let runs = read_runs(&runs_path)?;
        let meta = read_meta(&meta_path)?;
        check_meta(&runs, &meta, &runs_path, &meta_path)?;
        let mut index = RunsIndex::new(&runs, &meta, NanPolicy::ImputeChance);
        let found = index.attach_instances(read_instances(&inst_path)?)?;
        let read = started.elapsed().as_secs_f64();
        let cfg = ReportConfig::default();
        let mut stages = Vec::new();
        let tables = encoderlab::stats::report::build_tables_with(&index, &cfg, |name| {
            stages.push((name.to_string(), Instant::now()));
        })?;
        let built = started.elapsed().as_secs_f64();
        #[cfg(feature = "plots")]
        let plots = encoderlab::stats::plots::plot_tables(&tables, &index.score_ranges())?;
        #[cfg(not(feature = "plots"))]
        let plots = Vec::new();
        write_report(&tables, &plots, &dir.join("report_instances"))?;
        let total = started.elapsed().as_secs_f64();
        let end = started + std::time::Duration::from_secs_f64(built);
        let slow: Vec<String> = stages
            .iter()
            .enumerate()
            .map(|(k, (name, t))| {
                let next = stages.get(k + 1).map_or(end, |s| s.1);
                (name, next.duration_since(*t).as_secs_f64())
            })
            .filter(|(_, secs)| *secs > 0.2)
            .map(|(name, secs)| format!("{name} {secs:.2} s"))
            .collect();
        println!(
            "round {round}: read + attach {read:.2} s ({} runs with instances), statistics {:.2} s [{}], plots and write {:.2} s, total {total:.2} s on {} threads",
            found.attached,
            built - read,
            slow.join(", "),
            total - built,
            rayon::current_num_threads()
        );
    }
    Ok(())
}

/// Issue 18's scale: a table of about 2 M rows (50 systems × `datasets` × 6 LRs × `seeds` ×
/// validation and test, ≈ 130 bytes a row with the collect columns), the whole report timed
/// stage by stage as `analysis report` runs it.
fn large_table(dir: &std::path::Path, name: &str, datasets: usize, seeds: usize) -> anyhow::Result<()> {
    let path = dir.join(format!("runs_{name}.csv"));
    let meta_path = dir.join(format!("meta_{name}.csv"));
    let (runs, meta) = synthetic_runs(50, datasets, &PAPER_LRS, seeds, 1);
    let mut text = String::from(
        "model,objective,family,dataset,learning_rate,seed,split,metric,score,status,run_id,steps,wall_seconds\n",
    );
    for (i, r) in runs.iter().enumerate() {
        for (split, shift) in [("validation", 0.0), ("test", -0.01)] {
            let (score, status) = if r.score.is_nan() {
                (String::new(), "failed")
            } else {
                (format!("{}", (r.score + shift).max(0.0)), "ok")
            };
            text.push_str(&format!(
                "{}-encoder-610m,{},sequence_classification,{},{:e},{},{split},accuracy,{score},{status},{:016x},1000,{:.3}\n",
                r.model,
                r.objective,
                r.dataset,
                r.learning_rate,
                r.seed,
                (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15),
                12.0 + (i % 97) as f64 / 7.0
            ));
        }
    }
    std::fs::write(&path, &text)?;
    std::fs::write(&meta_path, meta_csv(&meta)?)?;
    println!(
        "large table ({name}: 50 systems × {datasets} datasets × 6 LRs × {seeds} seeds × 2 splits): {} rows, {:.0} MB -> {} ({})",
        2 * runs.len(),
        text.len() as f64 / 1e6,
        path.display(),
        encoderlab::model::kernels::vmath::cpu_summary()
    );
    drop(text);
    let started = Instant::now();
    let runs = read_runs(&path)?;
    let meta = read_meta(&meta_path)?;
    check_meta(&runs, &meta, &path, &meta_path)?;
    let read = started.elapsed().as_secs_f64();
    let index = RunsIndex::new(&runs, &meta, NanPolicy::ImputeChance);
    let indexed = started.elapsed().as_secs_f64();
    let cfg = ReportConfig::default();
    let mut tables = Vec::new();
    for (name, build) in encoderlab::stats::report::TABLES {
        let t = Instant::now();
        tables.push(build(&index, &cfg)?);
        println!("  {name:<26} {:>7.2} s", t.elapsed().as_secs_f64());
    }
    let built = started.elapsed().as_secs_f64();
    #[cfg(feature = "plots")]
    let plots = encoderlab::stats::plots::plot_tables(&tables, &index.score_ranges())?;
    #[cfg(not(feature = "plots"))]
    let plots = Vec::new();
    write_report(&tables, &plots, &dir.join(format!("report_{name}")))?;
    let total = started.elapsed().as_secs_f64();
    println!(
        "large table report: read and validate {read:.2} s, index {:.2} s, statistics {:.2} s, plots and write {:.2} s, total {total:.2} s on {} threads",
        indexed - read,
        built - indexed,
        total - built,
        rayon::current_num_threads()
    );
    Ok(())
}
