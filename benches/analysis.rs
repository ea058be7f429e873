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
    let (runs, meta) = synthetic_runs(50, 10, &PAPER_LRS, 5, 0);
    std::fs::write(dir.join("runs.csv"), runs_csv(&runs))?;
    std::fs::write(dir.join("meta.csv"), meta_csv(&meta))?;
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
        let time = |name: &str, f: &dyn Fn() -> r::Table| {
            let t = Instant::now();
            let table = f();
            println!(
                "  {name:<22} {:>6.2} s ({} rows)",
                t.elapsed().as_secs_f64(),
                table.rows.len()
            );
        };
        time("group_stats", &|| r::group_stats(&ix, &cfg));
        time("best_lr", &|| r::best_lr_table(&ix, &cfg));
        time("expected_max", &|| r::expected_max_table(&ix));
        time("bootstrap_ci", &|| r::bootstrap_table(&ix, &cfg));
        time("tests_unpaired", &|| r::tests_unpaired(&ix, &cfg));
        time("tests_paired", &|| r::tests_paired(&ix, &cfg));
        time("ranks", &|| r::ranks_table(&ix));
        time("aggregate", &|| r::aggregate_table(&ix, &cfg));
        time("poi", &|| r::poi_table(&ix, &cfg));
        time("performance_profile", &|| r::profile_table(&ix, &cfg));
    }
    for round in 0..3 {
        let started = Instant::now();
        let runs = read_runs(&dir.join("runs.csv"))?;
        let meta = read_meta(&dir.join("meta.csv"))?;
        check_meta(&runs, &meta, &dir.join("runs.csv"), &dir.join("meta.csv"))?;
        let read = started.elapsed().as_secs_f64();
        let index = RunsIndex::new(&runs, &meta, NanPolicy::ImputeChance);
        let cfg = ReportConfig::default();
        let tables = build_tables(&index, &cfg);
        let built = started.elapsed().as_secs_f64();
        #[cfg(feature = "plots")]
        let plots = encoderlab::stats::plots::plot_tables(&tables)?;
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
    Ok(())
}
