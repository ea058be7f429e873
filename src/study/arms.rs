//! From a study to its runs: the pretraining arms (each a `configs/pretrain`-style TOML file)
//! and the models the fine-tuning grid covers (final, intermediate and continued checkpoints,
//! and a random-init baseline), with the fine-tuning sweep file over all of them.

use std::path::PathBuf;

use serde::Serialize;

use super::config::StudyConfig;
use crate::train::checkpoint::checkpoint_dir;

/// What an arm trains.
#[derive(Serialize, Debug, Clone, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ArmKind {
    /// 100 % CLM.
    Clm,
    /// 100 % MLM at `ratio`.
    Mlm {
        /// Masking ratio.
        ratio: f64,
    },
    /// CLM for `share` of the steps, then MLM at the study's ratio.
    Biphasic {
        /// Share of the steps done with CLM.
        share: f64,
    },
    /// MLM continued from the decayed final checkpoint of arm `from`.
    Continued {
        /// The arm it starts from.
        from: String,
    },
}

/// One pretraining run: an arm at one pretraining seed.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct Arm {
    /// The arm (the `model` of its runs, the same for every seed).
    pub name: String,
    /// Run name (its folder under `<out>/pretrain/`): the arm's name at the first seed,
    /// `{name}-s{seed}` at the others.
    pub run: String,
    /// Pretraining seed.
    pub seed: u64,
    /// Model preset.
    pub size: String,
    /// What it trains.
    pub kind: ArmKind,
    /// Optimizer steps.
    pub steps: usize,
    /// Steps whose checkpoints are fine-tuned besides the final one.
    pub intermediate: Vec<usize>,
}

/// The role of a fine-tuned model in the findings.
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The final checkpoint of an arm.
    Final,
    /// An undecayed checkpoint of the CLM or MLM arm (F2).
    Intermediate,
    /// Fresh weights (the baseline).
    Random,
}

/// One model of the fine-tuning grid: a `model` of the runs table.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct Model {
    /// The runs table's `model`.
    pub name: String,
    /// The runs table's `objective`.
    pub objective: String,
    /// The pretraining run it comes from (its folder under `<out>/pretrain/`).
    pub arm: String,
    /// Its pretraining seed (the random baseline: the seed its weights are drawn with).
    pub pretrain_seed: u64,
    /// Model preset.
    pub size: String,
    /// Its role.
    pub role: Role,
    /// Pretraining steps behind it (0 for the random baseline).
    pub step: usize,
    /// The checkpoint folder (the random baseline takes its architecture from the CLM arm, or
    /// at another size from its main MLM arm).
    pub checkpoint: PathBuf,
}

/// `0.4` → `40`.
pub(crate) fn percent(x: f64) -> String {
    format!("{}", (x * 100.0).round() as i64)
}

/// The run name of arm `name` at pretraining seed `seed`.
pub(crate) fn run_name(cfg: &StudyConfig, name: &str, seed: u64) -> String {
    if cfg.pretrain_seeds().first() == Some(&seed) {
        name.to_string()
    } else {
        format!("{name}-s{seed}")
    }
}

/// The pretraining runs of a study, in the order they run: every arm at the first seed, then
/// at the next, continued arms after their parents.
pub fn arms(cfg: &StudyConfig) -> Vec<Arm> {
    cfg.pretrain_seeds()
        .into_iter()
        .flat_map(|seed| arms_at(cfg, seed))
        .collect()
}

fn arms_at(cfg: &StudyConfig, seed: u64) -> Vec<Arm> {
    let p = &cfg.pretrain;
    let main = percent(p.mlm_ratio);
    let kept = if p.intermediate_seeds.is_empty() || p.intermediate_seeds.contains(&seed) {
        p.intermediate.clone()
    } else {
        vec![]
    };
    let arm = |name: String, size: &str, kind: ArmKind, steps: usize, intermediate: Vec<usize>| Arm {
        run: run_name(cfg, &name, seed),
        seed,
        name,
        size: size.to_string(),
        kind,
        steps,
        intermediate,
    };
    let mut v = vec![
        arm("clm".into(), &p.size, ArmKind::Clm, p.steps, kept.clone()),
        arm(
            format!("mlm{main}"),
            &p.size,
            ArmKind::Mlm { ratio: p.mlm_ratio },
            p.steps,
            kept,
        ),
    ];
    let f6 = cfg.ratio_seeds().contains(&seed);
    for r in cfg.ratios().into_iter().skip(1).filter(|_| f6) {
        v.push(arm(
            format!("mlm{}", percent(r)),
            &p.size,
            ArmKind::Mlm { ratio: r },
            p.steps,
            vec![],
        ));
    }
    for s in &p.clm_shares {
        v.push(arm(
            format!("clm{}-mlm{main}", percent(*s)),
            &p.size,
            ArmKind::Biphasic { share: *s },
            p.steps,
            vec![],
        ));
    }
    if p.continued_steps > 0 {
        for from in ["clm".to_string(), format!("mlm{main}")] {
            v.push(arm(
                format!("{from}+mlm{main}"),
                &p.size,
                ArmKind::Continued { from },
                p.continued_steps,
                vec![],
            ));
        }
    }
    for size in cfg.sizes().into_iter().skip(1).filter(|_| f6) {
        for r in cfg.ratios() {
            v.push(arm(
                format!("{size}-mlm{}", percent(r)),
                &size,
                ArmKind::Mlm { ratio: r },
                p.steps,
                vec![],
            ));
        }
    }
    v
}

/// Where the study's pretraining runs go.
pub(crate) fn pretrain_dir(cfg: &StudyConfig) -> PathBuf {
    cfg.out.join("pretrain")
}

/// The pack of the study.
pub fn pack_dir(cfg: &StudyConfig) -> PathBuf {
    cfg.out.join("pretrain_data")
}

/// The run folder of an arm.
pub(crate) fn arm_dir(cfg: &StudyConfig, arm: &str) -> PathBuf {
    pretrain_dir(cfg).join(arm)
}

/// Every model of the fine-tuning grid, in a fixed order.
pub fn models(cfg: &StudyConfig) -> Vec<Model> {
    let mut v = Vec::new();
    let arms = arms(cfg);
    for arm in &arms {
        let objective = match &arm.kind {
            ArmKind::Clm => "clm".to_string(),
            ArmKind::Mlm { ratio } => format!("mlm{}", percent(*ratio)),
            ArmKind::Biphasic { share } => format!("clm{}-mlm{}", percent(*share), percent(cfg.pretrain.mlm_ratio)),
            ArmKind::Continued { from } => format!("{from}+mlm{}", percent(cfg.pretrain.mlm_ratio)),
        };
        let dir = arm_dir(cfg, &arm.run);
        v.push(Model {
            name: arm.name.clone(),
            objective: objective.clone(),
            arm: arm.run.clone(),
            pretrain_seed: arm.seed,
            size: arm.size.clone(),
            role: Role::Final,
            step: arm.steps,
            checkpoint: checkpoint_dir(&dir, arm.steps),
        });
        for s in &arm.intermediate {
            v.push(Model {
                name: format!("{}@{s}", arm.name),
                objective: objective.clone(),
                arm: arm.run.clone(),
                pretrain_seed: arm.seed,
                size: arm.size.clone(),
                role: Role::Intermediate,
                step: *s,
                checkpoint: checkpoint_dir(&dir, *s),
            });
        }
    }
    // the baseline of each size, once per pretraining seed of that size: the architecture of
    // that seed's CLM run (another size's main MLM run), fresh weights drawn from (its
    // pretraining seed, each run's seed)
    let main = format!("mlm{}", percent(cfg.pretrain.mlm_ratio));
    for size in cfg.sizes() {
        let (from, seeds) = if size == cfg.pretrain.size {
            ("clm".to_string(), cfg.pretrain_seeds())
        } else {
            (format!("{size}-{main}"), cfg.ratio_seeds())
        };
        for seed in seeds {
            let run = run_name(cfg, &from, seed);
            v.push(Model {
                name: baseline_name(cfg, &size),
                objective: "random".into(),
                checkpoint: checkpoint_dir(&arm_dir(cfg, &run), cfg.pretrain.steps),
                arm: run,
                pretrain_seed: seed,
                size: size.clone(),
                role: Role::Random,
                step: 0,
            });
        }
    }
    v
}

/// Whether `m` is one of F6's models: another masking ratio at the study's size, or any model
/// (its random-init baseline included) of another size.
pub fn is_f6(cfg: &StudyConfig, m: &Model) -> bool {
    m.size != cfg.pretrain.size
        || (m.role == Role::Final
            && cfg
                .ratios()
                .iter()
                .skip(1)
                .any(|r| m.name == format!("mlm{}", percent(*r))))
}

/// The names of F6's models among `models`, once each, in order.
pub(crate) fn f6_names(cfg: &StudyConfig, models: &[Model]) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for m in models.iter().filter(|m| is_f6(cfg, m)) {
        if !v.contains(&m.name) {
            v.push(m.name.clone());
        }
    }
    v
}

/// The random-init baseline of models of `size`: `random` at the study's size,
/// `{size}-random` at F6's other sizes.
pub(crate) fn baseline_name(cfg: &StudyConfig, size: &str) -> String {
    if size == cfg.pretrain.size {
        "random".into()
    } else {
        format!("{size}-random")
    }
}

/// Each model of `models` with the random-init baseline of its size, once, in order.
pub fn with_baselines<'a>(cfg: &StudyConfig, models: impl Iterator<Item = &'a Model>) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = Vec::new();
    for m in models {
        if !v.iter().any(|(n, _)| *n == m.name) {
            v.push((m.name.clone(), baseline_name(cfg, &m.size)));
        }
    }
    v
}

/// The name serde gives a unit variant (`bidirectional`, `mean`, `bf16`).
pub(crate) fn variant_name<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}
