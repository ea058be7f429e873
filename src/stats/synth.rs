//! A synthetic runs table shaped like the paper's sweeps (systems × datasets × learning rates ×
//! seeds), for benchmarks and scale tests: each system has an ability, each dataset a
//! difficulty and chance level, the learning rate a sweet spot, seeds add noise, and a few
//! high-learning-rate runs diverge to chance or fail outright.

use std::collections::BTreeMap;

use crate::artifacts::{csv_text, RunRow, TaskMetaRow};
use crate::rng::{seeded, unit};
use crate::stats::instances::{InstanceValues, Instances, RunInstances, RunKey};
use crate::stats::runs::{Run, TaskMeta};

/// The paper's fine-tuning learning rates.
pub const PAPER_LRS: [f64; 6] = [1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4];

fn normal(rng: &mut crate::rng::Rng) -> f64 {
    // Box-Muller on our own uniform draws
    let (u1, u2) = (unit(rng).max(1e-300), unit(rng));
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// `systems × datasets × lrs × seeds` validation runs and their metadata (0-1 scale).
pub fn synthetic_runs(
    systems: usize,
    datasets: usize,
    lrs: &[f64],
    seeds: usize,
    seed: u64,
) -> (Vec<Run>, BTreeMap<String, TaskMeta>) {
    let mut rng = seeded(seed, 0x5e7);
    let ability: Vec<f64> = (0..systems).map(|_| 0.05 * normal(&mut rng)).collect();
    let chance: Vec<f64> = (0..datasets)
        .map(|d| if d % 3 == 2 { 0.0 } else { 0.3 + 0.2 * unit(&mut rng) })
        .collect();
    let ceiling: Vec<f64> = (0..datasets).map(|_| 0.75 + 0.2 * unit(&mut rng)).collect();
    let sweet: Vec<f64> = (0..systems).map(|_| 2.0 + 1.5 * unit(&mut rng)).collect();
    let mut runs = Vec::with_capacity(systems * datasets * lrs.len() * seeds);
    let mut line = 1;
    for s in 0..systems {
        for d in 0..datasets {
            for (k, &lr) in lrs.iter().enumerate() {
                for sd in 0..seeds {
                    line += 1;
                    let off = k as f64 - sweet[s];
                    let mean = (ceiling[d] + ability[s] - 0.02 * off * off).clamp(chance[d], 1.0);
                    let diverge = k + 2 >= lrs.len() && unit(&mut rng) < 0.08;
                    let failed = unit(&mut rng) < 0.005;
                    let score = if failed {
                        f64::NAN
                    } else if diverge {
                        chance[d]
                    } else {
                        (mean + 0.01 * normal(&mut rng)).clamp(0.0, 1.0)
                    };
                    runs.push(Run {
                        model: format!("model{s:02}"),
                        objective: ["clm", "mlm", "clm-mlm"][s % 3].to_string(),
                        family: None,
                        dataset: format!("task{d:02}"),
                        learning_rate: lr,
                        pretrain_seed: 0,
                        seed: sd as i64,
                        split: "validation".into(),
                        metric: None,
                        score,
                        line,
                    });
                }
            }
        }
    }
    let meta = (0..datasets)
        .map(|d| {
            let m = TaskMeta {
                family: "synthetic".into(),
                metric_name: "accuracy".into(),
                chance_score: chance[d],
                max_score: 1.0,
                higher_is_better: true,
                worst_score: None,
            };
            (format!("task{d:02}"), m)
        })
        .collect();
    (runs, meta)
}

/// The runs as a CSV table in the analysis' input schema ([`RunRow`]s).
pub fn runs_csv(runs: &[Run]) -> crate::error::Result<String> {
    let rows: Vec<RunRow> = runs
        .iter()
        .map(|r| RunRow {
            model: r.model.clone(),
            objective: r.objective.clone(),
            dataset: r.dataset.clone(),
            learning_rate: r.learning_rate,
            pretrain_seed: Some(r.pretrain_seed),
            seed: r.seed,
            split: r.split.clone(),
            score: (!r.score.is_nan()).then_some(r.score),
            status: Some(if r.score.is_nan() { "failed" } else { "ok" }.to_string()),
            ..RunRow::template(false)
        })
        .collect();
    csv_text(&rows, Some(&RunRow::template(false)))
}

/// The metadata as a CSV table ([`TaskMetaRow`]s).
pub fn meta_csv(meta: &BTreeMap<String, TaskMeta>) -> crate::error::Result<String> {
    let rows: Vec<TaskMetaRow> = meta.iter().map(|(name, m)| m.row(name)).collect();
    csv_text(&rows, Some(&TaskMetaRow::template()))
}

/// Per-instance 0/1 scores for `runs`, `n` per run, and each run's score replaced by the mean
/// of its instances so that the table and the instances agree: instance i of a dataset has its
/// own difficulty (shared by every run), and a run gets it right with probability its score
/// shifted by that difficulty. Failed runs get none.
pub fn synthetic_instances(runs: &mut [Run], n: usize, seed: u64) -> crate::error::Result<Instances> {
    let mut rng = seeded(seed, 0x1257);
    let mut difficulty: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let ids: Vec<String> = (0..n).map(|i| format!("i{i}")).collect();
    let mut out = Instances::default();
    for run in runs.iter_mut() {
        if run.score.is_nan() {
            continue;
        }
        let offsets = difficulty
            .entry(run.dataset.clone())
            .or_insert_with(|| (0..n).map(|_| 0.15 * normal(&mut rng)).collect());
        let values: Vec<f64> = offsets
            .iter()
            .map(|o| f64::from(u8::from(unit(&mut rng) < run.score + o)))
            .collect();
        let values = InstanceValues::Mean(values);
        run.score = values.score();
        let key = (
            run.model.clone(),
            run.objective.clone(),
            run.dataset.clone(),
            run.learning_rate.to_bits(),
            run.pretrain_seed,
            run.seed,
            run.split.clone(),
        );
        let source = format!("synthetic run at line {}", run.line);
        out.insert(key, ids.clone(), RunInstances { source, values })?;
    }
    Ok(out)
}

/// The instances as a CSV table in the `--instances` schema (0/1 scores).
pub fn instances_csv(instances: &Instances) -> String {
    let mut keys: Vec<&RunKey> = instances.runs.keys().collect();
    keys.sort();
    let mut out = String::from("model,objective,dataset,learning_rate,pretrain_seed,seed,split,instance,score\n");
    for key in keys {
        let run = &instances.runs[key];
        let ids = &instances.ids[&(key.2.clone(), key.6.clone())];
        let lr = f64::from_bits(key.3);
        for (id, v) in ids.iter().zip(run.values.per_instance()) {
            out.push_str(&format!(
                "{},{},{},{lr:e},{},{},{},{id},{v}\n",
                key.0, key.1, key.2, key.4, key.5, key.6
            ));
        }
    }
    out
}
