//! Organising a runs table for the report: systems and datasets in order of first appearance,
//! the learning-rate × seed grid of every (dataset, split), missing cells, the NaN policy, and
//! the selection/report split protocol.

use std::collections::{BTreeMap, BTreeSet};

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::stats::describe::mean;
use crate::stats::instances::{describe, InstanceValues, Instances};
use crate::stats::runs::{Run, TaskMeta};
use crate::stats::stability::best_lr;

/// What to do with a failed run (NaN score, or a status other than `ok`).
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum NanPolicy {
    /// Replace it by the task's chance score (the default).
    ImputeChance,
    /// Leave it out.
    Drop,
}

/// A system: (model, objective).
pub type System = (String, String);

/// Each dataset's score range (low, high), by name.
pub type ScoreRanges = BTreeMap<String, (f64, f64)>;

/// A replicate of a cell: (pretraining seed, fine-tuning seed). Every replicate of a system
/// counts alike in the run-level tables; the tables that respect the design group them by
/// pretraining seed.
pub type Replicate = (i64, i64);

/// One cell group: the replicates of one (system, dataset, learning rate, split).
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// Replicate → raw score (NaN = failed or missing).
    pub scores: BTreeMap<Replicate, f64>,
    /// Replicates of the grid with no row.
    pub missing: Vec<Replicate>,
}

/// The runs table, organised.
#[derive(Debug, Clone)]
pub struct RunsIndex {
    /// Systems in order of first appearance.
    pub systems: Vec<System>,
    /// Datasets in order of first appearance.
    pub datasets: Vec<String>,
    /// (system index, dataset index, split, learning-rate bits) → group.
    pub groups: BTreeMap<(usize, usize, String, u64), Group>,
    /// Metadata by dataset (lower-is-better metrics already negated).
    pub meta: BTreeMap<String, TaskMeta>,
    /// The NaN policy.
    pub policy: NanPolicy,
    /// (system, dataset) → (selection split, report split), computed once.
    protocols: BTreeMap<(usize, usize), (String, String)>,
    /// (system, dataset) → (best learning rate, selection mean), computed once.
    bests: BTreeMap<(usize, usize), (f64, f64)>,
    /// Per-instance values of runs, where given ([`RunsIndex::attach_instances`]).
    instances: HashMap<InstanceCell, InstanceValues>,
}

/// A run of the index: (system, dataset, split, learning-rate bits, replicate).
type InstanceCell = (usize, usize, String, u64, Replicate);

/// What [`RunsIndex::attach_instances`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstanceMatch {
    /// Runs of the table that now have per-instance values.
    pub attached: usize,
    /// Runs with instances that the table does not have (or has as failed): left out.
    pub unused: usize,
}

impl RunsIndex {
    /// Organises `runs`; every dataset must be in `meta` (see `runs::check_meta`). Scores of
    /// lower-is-better metrics are negated here, and negated back when written.
    pub fn new(runs: &[Run], meta: &BTreeMap<String, TaskMeta>, policy: NanPolicy) -> Self {
        let mut systems = Vec::new();
        let mut datasets = Vec::new();
        let mut groups: BTreeMap<(usize, usize, String, u64), Group> = BTreeMap::new();
        let mut lrs: BTreeMap<(usize, String), BTreeSet<u64>> = BTreeMap::new();
        let mut seeds: BTreeMap<(usize, String), BTreeSet<Replicate>> = BTreeMap::new();
        let mut pairs: BTreeSet<(usize, usize, String)> = BTreeSet::new();
        // each system's pretraining seeds: the only ones its missing runs are filled at
        let mut trained_at: BTreeMap<usize, BTreeSet<i64>> = BTreeMap::new();
        // positions by name: a hash lookup per run, not a search of every name seen
        let mut system_ix: std::collections::HashMap<(&str, &str), usize> = std::collections::HashMap::new();
        let mut dataset_ix: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        for run in runs {
            let s = *system_ix.entry((&run.model, &run.objective)).or_insert_with(|| {
                systems.push((run.model.clone(), run.objective.clone()));
                systems.len() - 1
            });
            let d = *dataset_ix.entry(&run.dataset).or_insert_with(|| {
                datasets.push(run.dataset.clone());
                datasets.len() - 1
            });
            let sign = if meta.get(&run.dataset).is_some_and(|m| !m.higher_is_better) {
                -1.0
            } else {
                1.0
            };
            let key = (s, d, run.split.clone(), run.learning_rate.to_bits());
            groups
                .entry(key)
                .or_insert_with(|| Group {
                    scores: BTreeMap::new(),
                    missing: Vec::new(),
                })
                .scores
                .insert((run.pretrain_seed, run.seed), sign * run.score);
            lrs.entry((d, run.split.clone()))
                .or_default()
                .insert(run.learning_rate.to_bits());
            seeds
                .entry((d, run.split.clone()))
                .or_default()
                .insert((run.pretrain_seed, run.seed));
            pairs.insert((s, d, run.split.clone()));
            trained_at.entry(s).or_default().insert(run.pretrain_seed);
        }
        let mut grids = BTreeMap::new();
        for (key, lr_bits) in &lrs {
            let mut lr: Vec<f64> = lr_bits.iter().map(|b| f64::from_bits(*b)).collect();
            lr.sort_by(|a, b| a.total_cmp(b));
            grids.insert(key.clone(), (lr, seeds[key].iter().copied().collect::<Vec<_>>()));
        }
        // absent cells of the grid become missing (NaN) runs, at the pretraining seeds the
        // system was trained at (a seed it never had is no failed run of it)
        for (s, d, split) in &pairs {
            let (grid_lrs, grid_seeds) = &grids[&(*d, split.clone())];
            let own = &trained_at[s];
            for lr in grid_lrs {
                let group = groups
                    .entry((*s, *d, split.clone(), lr.to_bits()))
                    .or_insert_with(|| Group {
                        scores: BTreeMap::new(),
                        missing: Vec::new(),
                    });
                for seed in grid_seeds.iter().filter(|(p, _)| own.contains(p)) {
                    if !group.scores.contains_key(seed) {
                        group.scores.insert(*seed, f64::NAN);
                        group.missing.push(*seed);
                    }
                }
            }
        }
        let meta = meta
            .iter()
            .map(|(k, m)| {
                let mut m = m.clone();
                if !m.higher_is_better {
                    m.chance_score = -m.chance_score;
                    m.max_score = -m.max_score;
                }
                (k.clone(), m)
            })
            .collect();
        let mut ix = Self {
            systems,
            datasets,
            groups,
            meta,
            policy,
            protocols: BTreeMap::new(),
            bests: BTreeMap::new(),
            instances: HashMap::new(),
        };
        for s in 0..ix.systems.len() {
            for d in 0..ix.datasets.len() {
                if let Some(p) = ix.compute_protocol(s, d) {
                    ix.protocols.insert((s, d), p);
                }
            }
        }
        let keys: Vec<(usize, usize)> = ix.protocols.keys().copied().collect();
        for (s, d) in keys {
            if let Some(b) = ix.compute_best(s, d) {
                ix.bests.insert((s, d), b);
            }
        }
        ix
    }

    /// The range a score of each dataset lies in ([`TaskMeta::score_range`]), by name: what
    /// the plots clip intervals to.
    pub fn score_ranges(&self) -> ScoreRanges {
        (0..self.datasets.len())
            .map(|d| (self.datasets[d].clone(), self.meta_of(d).score_range()))
            .collect()
    }

    /// The metadata of dataset `d`.
    pub fn meta_of(&self, d: usize) -> &TaskMeta {
        &self.meta[&self.datasets[d]]
    }

    /// +1, or −1 for a lower-is-better dataset (to write values back in their sign).
    pub fn sign(&self, d: usize) -> f64 {
        if self.meta_of(d).higher_is_better {
            1.0
        } else {
            -1.0
        }
    }

    /// The splits that system `s` has on dataset `d`.
    pub fn splits(&self, s: usize, d: usize) -> Vec<String> {
        // the groups are ordered by (s, d, split, lr): a range, not a scan of the whole table
        let set: BTreeSet<String> = self
            .groups
            .range((s, d, String::new(), 0)..)
            .take_while(|(k, _)| k.0 == s && k.1 == d)
            .map(|(k, _)| k.2.clone())
            .collect();
        set.into_iter().collect()
    }

    /// (selection split, report split): validation → test when both exist, else the one split.
    pub fn protocol(&self, s: usize, d: usize) -> Option<(String, String)> {
        self.protocols.get(&(s, d)).cloned()
    }

    fn compute_protocol(&self, s: usize, d: usize) -> Option<(String, String)> {
        let splits = self.splits(s, d);
        if splits.is_empty() {
            return None;
        }
        let has = |x: &str| splits.iter().any(|v| v == x);
        if has("validation") && has("test") {
            return Some(("validation".into(), "test".into()));
        }
        let only = if has("validation") {
            "validation".to_string()
        } else {
            splits.first()?.clone()
        };
        Some((only.clone(), only))
    }

    /// The learning rates of (s, d, split) that have a group, ascending.
    pub fn lrs(&self, s: usize, d: usize, split: &str) -> Vec<f64> {
        let mut v: Vec<f64> = self
            .groups
            .range((s, d, split.to_string(), 0)..=(s, d, split.to_string(), u64::MAX))
            .map(|(k, _)| f64::from_bits(k.3))
            .collect();
        v.sort_by(|a, b| a.total_cmp(b));
        v
    }

    /// The group of (s, d, split, lr), if any.
    pub fn group(&self, s: usize, d: usize, split: &str, lr: f64) -> Option<&Group> {
        self.groups.get(&(s, d, split.to_string(), lr.to_bits()))
    }

    /// System `s`'s replicates on dataset `d` at its selected learning rate on the report split.
    pub fn selected(&self, s: usize, d: usize) -> Option<&Group> {
        let ((_, report), (lr, _)) = (self.protocol(s, d)?, self.best(s, d)?);
        self.group(s, d, &report, lr)
    }

    /// A score of dataset `d` after the NaN policy: a failed run imputed with chance, or
    /// dropped (`None`).
    pub fn kept(&self, d: usize, v: f64) -> Option<f64> {
        match (v.is_nan(), self.policy) {
            (false, _) => Some(v),
            (true, NanPolicy::ImputeChance) => Some(self.meta_of(d).chance_score),
            (true, NanPolicy::Drop) => None,
        }
    }

    /// The scores of a group after the NaN policy (imputed with chance, or dropped).
    pub fn values(&self, d: usize, group: &Group) -> Vec<f64> {
        group.scores.values().filter_map(|&v| self.kept(d, v)).collect()
    }

    /// The scores of a group with failed runs always imputed (aggregates across tasks).
    pub fn imputed(&self, d: usize, group: &Group) -> Vec<f64> {
        let chance = self.meta_of(d).chance_score;
        group
            .scores
            .values()
            .map(|&v| if v.is_nan() { chance } else { v })
            .collect()
    }

    /// The best learning rate of (s, d) on its selection split and its selection mean.
    pub fn best(&self, s: usize, d: usize) -> Option<(f64, f64)> {
        self.bests.get(&(s, d)).copied()
    }

    fn compute_best(&self, s: usize, d: usize) -> Option<(f64, f64)> {
        let (select, _) = self.compute_protocol(s, d)?;
        let means: Vec<(f64, f64)> = self
            .lrs(s, d, &select)
            .into_iter()
            .map(|lr| {
                (
                    lr,
                    self.group(s, d, &select, lr)
                        .map_or(f64::NAN, |g| mean(&self.values(d, g))),
                )
            })
            .collect();
        best_lr(&means)
    }

    /// Attaches per-instance values to the runs they belong to, checking that each run's
    /// score recomputed from its instances is the score the runs table has (to 1e-9): a
    /// mismatch means the two files do not describe the same runs, and is refused by name.
    /// Runs the table lacks, or has as failed, are counted in `unused` and left out.
    pub fn attach_instances(&mut self, instances: Instances) -> Result<InstanceMatch> {
        let system_ix: HashMap<(&str, &str), usize> = self
            .systems
            .iter()
            .enumerate()
            .map(|(i, (m, o))| ((m.as_str(), o.as_str()), i))
            .collect();
        let dataset_ix: HashMap<&str, usize> = self.datasets.iter().enumerate().map(|(i, d)| (d.as_str(), i)).collect();
        let mut found = HashMap::new();
        let mut unused = 0;
        for (key, run) in instances.runs {
            let (Some(&s), Some(&d)) = (
                system_ix.get(&(key.0.as_str(), key.1.as_str())),
                dataset_ix.get(key.2.as_str()),
            ) else {
                unused += 1;
                continue;
            };
            let replicate = (key.4, key.5);
            let Some(&table) = self
                .group(s, d, &key.6, f64::from_bits(key.3))
                .and_then(|g| g.scores.get(&replicate))
            else {
                unused += 1;
                continue;
            };
            if table.is_nan() {
                unused += 1;
                continue;
            }
            let own = self.sign(d) * run.values.score();
            if (own - table).abs() > 1e-9 * table.abs().max(1.0) {
                return Err(Error::data(
                    &run.source,
                    0,
                    format!(
                        "run {}: its {} instances give a score of {} but the runs table has {}; the instances and the runs table must describe the same runs",
                        describe(&key),
                        run.values.len(),
                        self.sign(d) * own,
                        self.sign(d) * table
                    ),
                ));
            }
            found.insert((s, d, key.6.clone(), key.3, replicate), run.values);
        }
        let attached = found.len();
        self.instances = found;
        Ok(InstanceMatch { attached, unused })
    }

    /// The index of the system written `MODEL/OBJECTIVE` (the model may itself hold slashes:
    /// the objective is what follows the last one).
    pub fn system_named(&self, name: &str) -> Option<usize> {
        let (model, objective) = name.rsplit_once('/')?;
        self.systems.iter().position(|(m, o)| m == model && o == objective)
    }

    /// Whether any run has per-instance values.
    pub fn has_instances(&self) -> bool {
        !self.instances.is_empty()
    }

    /// The per-instance values of a run, if attached.
    pub fn instances_of(
        &self,
        s: usize,
        d: usize,
        split: &str,
        lr: f64,
        replicate: Replicate,
    ) -> Option<&InstanceValues> {
        self.instances.get(&(s, d, split.to_string(), lr.to_bits(), replicate))
    }
}
