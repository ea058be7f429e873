//! From a study to its runs: the pretraining arms (each a `configs/pretrain`-style TOML file)
//! and the models the fine-tuning grid covers (final, intermediate and continued checkpoints,
//! and a random-init baseline), with the fine-tuning sweep file over all of them.

use std::path::{Path, PathBuf};

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
pub fn percent(x: f64) -> String {
    format!("{}", (x * 100.0).round() as i64)
}

/// The run name of arm `name` at pretraining seed `seed`.
pub fn run_name(cfg: &StudyConfig, name: &str, seed: u64) -> String {
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
pub fn pretrain_dir(cfg: &StudyConfig) -> PathBuf {
    cfg.out.join("pretrain")
}

/// The pack of the study.
pub fn pack_dir(cfg: &StudyConfig) -> PathBuf {
    cfg.out.join("pretrain_data")
}

/// The run folder of an arm.
pub fn arm_dir(cfg: &StudyConfig, arm: &str) -> PathBuf {
    pretrain_dir(cfg).join(arm)
}

/// The pretraining config of `arm`, as TOML.
pub fn pretrain_toml(cfg: &StudyConfig, arm: &Arm) -> String {
    let p = &cfg.pretrain;
    let ratio = |r: f64| format!("{{ objective = \"mlm\", ratio = {r:?}, steps = {} }}", arm.steps);
    let (phases, init_from, warmup, decay) = match &arm.kind {
        ArmKind::Clm => (
            format!("[{{ objective = \"clm\", steps = {} }}]", arm.steps),
            None,
            p.warmup_steps,
            p.decay_steps,
        ),
        ArmKind::Mlm { ratio: r } => (format!("[{}]", ratio(*r)), None, p.warmup_steps, p.decay_steps),
        ArmKind::Biphasic { share } => {
            let switch = (share * arm.steps as f64).round() as usize;
            (
                format!(
                    "[{{ objective = \"clm\", steps = {switch} }}, {{ objective = \"mlm\", ratio = {:?}, steps = {} }}]",
                    p.mlm_ratio,
                    arm.steps - switch
                ),
                None,
                p.warmup_steps,
                p.decay_steps,
            )
        }
        ArmKind::Continued { from } => {
            // the same shape as the main schedule, rescaled to the extra steps
            let scale = |x: usize| ((x * arm.steps) as f64 / p.steps as f64).round().max(1.0) as usize;
            (
                format!("[{}]", ratio(p.mlm_ratio)),
                Some(checkpoint_dir(&arm_dir(cfg, &run_name(cfg, from, arm.seed)), p.steps)),
                scale(p.warmup_steps),
                scale(p.decay_steps).min(arm.steps - scale(p.warmup_steps)),
            )
        }
    };
    let every = (arm.steps / 4).max(1);
    let milestones: Vec<String> = arm.intermediate.iter().map(|s| s.to_string()).collect();
    let init = init_from.map_or(String::new(), |d| {
        format!("init_from = {:?}\n", d.display().to_string())
    });
    format!(
        r#"# Arm `{arm}` (pretraining seed {seed}) of the study `{study}` (generated by `encoderlab study`; edit the study, not this file)
name = "{name}"

[model]
preset = "{size}"

[data]
pack = {pack:?}
batch_size = {batch}
grad_accum = {accum}
eval_blocks = 32

[train]
seed = {seed}
phases = {phases}
eval_every_steps = {eval}
checkpoint_every_steps = {every}
keep_last = 1
milestones = [{milestones}]
device = {device:?}
dtype = "{dtype}"
out_dir = {out:?}
{init}
[lr]
peak = {peak:?}
warmup_steps = {warmup}
schedule = {{ kind = "wsd", decay_steps = {decay} }}

[optim]
beta1 = 0.9
beta2 = 0.95
eps = 1e-5
weight_decay = 0.1
grad_clip = 1.0

[masking]
mask = 1.0
random = 0.0
keep = 0.0
eval_ratio = {ratio:?}
"#,
        name = arm.run,
        arm = arm.name,
        study = cfg.name,
        size = arm.size,
        pack = pack_dir(cfg).display().to_string(),
        batch = p.batch_size,
        accum = p.grad_accum,
        seed = arm.seed,
        eval = p.eval_every_steps.min(arm.steps),
        milestones = milestones.join(", "),
        device = p.device,
        dtype = variant_name(&p.dtype),
        out = pretrain_dir(cfg).display().to_string(),
        peak = cfg.peak_lr(&arm.size),
        ratio = p.mlm_ratio,
    )
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
pub fn f6_names(cfg: &StudyConfig, models: &[Model]) -> Vec<String> {
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
pub fn baseline_name(cfg: &StudyConfig, size: &str) -> String {
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

/// The linear probe's entries of the dataset axis: each sequence- or token-classification
/// dataset at each probe learning rate, with a frozen backbone.
fn probe_values(cfg: &StudyConfig) -> Vec<String> {
    use crate::data::registry::TaskFamily;
    let f = &cfg.finetune;
    let (Some(p), Ok(registry)) = (&f.probe, crate::data::Registry::builtin()) else {
        return Vec::new();
    };
    let mut v = Vec::new();
    for d in &f.datasets {
        let probed = registry.get(&d.dataset).is_ok_and(|s| {
            matches!(
                s.family,
                TaskFamily::SequenceClassification | TaskFamily::TokenClassification
            )
        });
        if !probed {
            continue;
        }
        for lr in &p.learning_rates {
            v.push(format!(
                "  {{ \"task.dataset\" = {}, \"task.max_length\" = {}, \"task.max_train_examples\" = {}, \"task.max_eval_examples\" = {}, \"train.max_steps\" = {}, \"train.freeze_backbone\" = true, \"train.learning_rate\" = {lr:?} }},",
                lit(&d.dataset),
                d.max_length,
                d.train_examples(f),
                d.eval_examples(f),
                p.steps.unwrap_or_else(|| d.steps(f)),
            ));
        }
    }
    v
}

/// The name serde gives a unit variant (`bidirectional`, `mean`, `bf16`).
pub fn variant_name<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

/// A TOML string literal.
fn lit(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// The base fine-tuning config of the grid (its first model and dataset; the sweep sets the
/// rest).
pub fn finetune_base_toml(cfg: &StudyConfig, first: &Model) -> String {
    let f = &cfg.finetune;
    let d = &f.datasets[0];
    format!(
        r#"# The base of the study's fine-tuning grid (generated by `encoderlab study`)
[model]
checkpoint = {ckpt}
attention = "{attention}"
pooling = "{pooling}"

[task]
dataset = {dataset}
data_dir = {data}
max_length = {max_length}
max_train_examples = {mt}
max_eval_examples = {me}

[train]
learning_rate = {lr:?}
seed = {seed}
batch_size = {batch}
max_steps = {steps}
device = {device}
"#,
        ckpt = lit(&first.checkpoint.display().to_string()),
        attention = variant_name(&f.attention),
        pooling = variant_name(&f.pooling),
        dataset = lit(&d.dataset),
        data = lit(&cfg.data_dir.display().to_string()),
        max_length = d.max_length,
        mt = f.max_train_examples,
        me = f.max_eval_examples,
        lr = f.learning_rates[0],
        seed = f.seeds[0],
        batch = f.batch_size,
        steps = f.steps,
        device = lit(&f.device),
    )
}

/// The sweep file of the grid: models × (dataset, learning rate) × seeds, each dataset with its
/// own learning rates, steps and example limits.
pub fn sweep_toml(cfg: &StudyConfig, models: &[Model], base: &Path, out_dir: &Path) -> String {
    let f = &cfg.finetune;
    let model_values: Vec<String> = models
        .iter()
        .map(|m| {
            format!(
                "  {{ \"model.checkpoint\" = {}, \"model.name\" = {}, \"model.objective\" = {}, \"model.init\" = \"{}\" }},",
                lit(&m.checkpoint.display().to_string()),
                lit(&m.name),
                lit(&m.objective),
                if m.role == Role::Random { "random" } else { "pretrained" }
            )
        })
        .collect();
    // each dataset with each of its learning rates: the grids may differ between datasets
    let dataset_values: Vec<String> = f
        .datasets
        .iter()
        .flat_map(|d| {
            let mut keys = vec![
                format!("\"task.dataset\" = {}", lit(&d.dataset)),
                format!("\"task.max_length\" = {}", d.max_length),
                format!("\"task.max_train_examples\" = {}", d.train_examples(f)),
                format!("\"task.max_eval_examples\" = {}", d.eval_examples(f)),
                format!("\"train.max_steps\" = {}", d.steps(f)),
            ];
            if let Some(t) = &d.train_pairs {
                keys.push(format!("\"task.train_pairs\" = {}", lit(t)));
            }
            if let Some(e) = d.epochs {
                keys.push(format!("\"train.epochs\" = {e}"));
            }
            d.lrs(f)
                .into_iter()
                .map(move |lr| format!("  {{ {}, \"train.learning_rate\" = {lr:?} }},", keys.join(", ")))
        })
        .chain(probe_values(cfg))
        .collect();
    let seeds: Vec<String> = f.seeds.iter().map(|x| x.to_string()).collect();
    // F6's models on `ratio_datasets` only
    let f6 = f6_names(cfg, models);
    let skipped: Vec<&String> = f
        .datasets
        .iter()
        .filter(|d| !f.datasets_for(true).any(|k| k.dataset == d.dataset))
        .map(|d| &d.dataset)
        .collect();
    let exclude = if f6.is_empty() || skipped.is_empty() {
        String::new()
    } else {
        let list = |v: &[&String]| v.iter().map(|x| lit(x)).collect::<Vec<_>>().join(", ");
        format!(
            "\n# F6's models are fine-tuned on `finetune.ratio_datasets` only\n[[exclude]]\n\"model.name\" = [{}]\n\"task.dataset\" = [{}]\n",
            list(&f6.iter().collect::<Vec<_>>()),
            list(&skipped)
        )
    };
    format!(
        r#"# The fine-tuning grid of the study `{study}` (generated by `encoderlab study`): every model ×
# dataset × learning rate × seed. Also runnable on its own:
#   encoderlab sweep run --config <this file> --workers 2
#   encoderlab sweep slurm --config <this file> --dry-run
name = "finetune"
base = {base}
out_dir = {out}

[[axes]]
values = [
{models}
]

[[axes]]
values = [
{datasets}
]

[[axes]]
key = "train.seed"
values = [{seeds}]
{exclude}"#,
        study = cfg.name,
        base = lit(&base.display().to_string()),
        out = lit(&out_dir.display().to_string()),
        models = model_values.join("\n"),
        datasets = dataset_values.join("\n"),
        seeds = seeds.join(", "),
    )
}
