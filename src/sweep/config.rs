//! A sweep (`configs/sweep/*.toml`): a base fine-tuning config and axes over any of its keys
//! (checkpoints, datasets, learning rates, seeds, …), expanded to the Cartesian product of the
//! axes, first axis slowest. Each point is a full fine-tuning config whose `run_id` (the hash of
//! the resolved config) names its record, so a run is never done twice.
//!
//! ```toml
//! name = "small_grid"
//! base = "configs/finetune/sst2_small.toml"
//! out_dir = "runs/sweeps"            # records in {out_dir}/{name}/runs/{run_id}/
//! set = ["task.max_eval_examples=500"]
//! [[axes]]
//! key = "train.learning_rate"
//! values = [1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4]
//! [[axes]]                           # keys that move together: one table per value
//! values = [{ "task.dataset" = "sst2" }, { "task.dataset" = "conll2003", "train.epochs" = 1 }]
//! [[exclude]]                        # points to leave out: each key lists the values it drops
//! "train.learning_rate" = [5e-4]     # (a point is left out when every key's value is listed)
//! "task.dataset" = ["conll2003"]
//! ```

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::parse_toml;
use crate::config::{set_override, set_path};
use crate::error::{Error, IoContext, Result};
use crate::finetune::FinetuneConfig;

/// One axis: a key and its values, or (without `key`) tables of keys that move together.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Axis {
    /// A dotted config path (`train.learning_rate`).
    #[serde(default)]
    pub key: Option<String>,
    /// The values (or tables of dotted path → value).
    pub values: Vec<toml::Value>,
}

/// A sweep file.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SweepConfig {
    /// The sweep's folder name.
    pub name: String,
    /// The fine-tuning config every run starts from.
    pub base: PathBuf,
    /// Sweeps live in `{out_dir}/{name}/`.
    #[serde(default = "out_dir")]
    pub out_dir: PathBuf,
    /// Overrides applied to every run (`key=value`).
    #[serde(default)]
    pub set: Vec<String>,
    /// A dataset registry of your own that every run finds its dataset in (`task.registry`;
    /// `sweep … --registry FILE` sets it too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<PathBuf>,
    /// The axes, first slowest.
    #[serde(default)]
    pub axes: Vec<Axis>,
    /// Points of the product to leave out: each table maps axis keys to the values it drops,
    /// and a point is left out when each of its keys takes one of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<toml::Table>,
}

fn out_dir() -> PathBuf {
    PathBuf::from("runs/sweeps")
}

/// One run of a sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSpec {
    /// Position in the expanded list (the Slurm array index).
    pub index: usize,
    /// The resolved configuration's hash.
    pub run_id: String,
    /// The axis assignments that made it (path, value as TOML).
    pub assignments: Vec<(String, String)>,
    /// The resolved configuration.
    pub config: FinetuneConfig,
}

impl SweepConfig {
    /// Reads and checks a sweep file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        crate::config::load_config(path.as_ref(), &[])
    }

    /// Every key some axis sets.
    fn axis_keys(&self) -> std::collections::BTreeSet<String> {
        let mut keys = std::collections::BTreeSet::new();
        for axis in &self.axes {
            match &axis.key {
                Some(k) => {
                    keys.insert(k.clone());
                }
                None => keys.extend(
                    axis.values
                        .iter()
                        .filter_map(toml::Value::as_table)
                        .flat_map(|t| t.keys().cloned()),
                ),
            }
        }
        keys
    }

    /// Whether an exclusion drops `point`.
    fn excluded(&self, point: &[(String, toml::Value)]) -> bool {
        self.exclude.iter().any(|rule| {
            rule.iter().all(|(k, listed)| {
                let listed = listed.as_array().map_or(&[][..], Vec::as_slice);
                // the value the point resolves to: the last axis that sets the key
                point
                    .iter()
                    .rev()
                    .find(|(pk, _)| pk == k)
                    .is_some_and(|(_, pv)| listed.contains(pv))
            })
        })
    }

    /// The sweep's folder.
    pub fn dir(&self) -> PathBuf {
        self.out_dir.join(&self.name)
    }

    /// Where the run records go.
    pub fn runs_dir(&self) -> PathBuf {
        self.dir().join("runs")
    }

    /// Every run, in order (duplicates — points that resolve to the same config — once).
    pub fn expand(&self) -> Result<Vec<RunSpec>> {
        let text = std::fs::read_to_string(&self.base).at(&self.base)?;
        let mut base: toml::Table = parse_toml(&text, &self.base)?;
        if let Some(registry) = &self.registry {
            let value = toml::Value::String(registry.display().to_string());
            crate::config::set_path(&mut base, "task.registry", value)?;
        }
        for o in &self.set {
            set_override(&mut base, o)?;
        }
        // the Cartesian product, first axis slowest
        let mut points: Vec<Vec<(String, toml::Value)>> = vec![Vec::new()];
        for axis in &self.axes {
            let mut next = Vec::with_capacity(points.len() * axis.values.len());
            for p in &points {
                for v in &axis.values {
                    let mut q = p.clone();
                    match (&axis.key, v) {
                        (Some(k), v) => q.push((k.clone(), v.clone())),
                        (None, toml::Value::Table(t)) => q.extend(t.iter().map(|(k, v)| (k.clone(), v.clone()))),
                        (None, other) => {
                            return Err(Error::config(
                                "axes",
                                format!("without `key`, every value must be a table of dotted keys, found `{other}`"),
                            ))
                        }
                    }
                    next.push(q);
                }
            }
            points = next;
        }
        let mut seen = HashSet::new();
        let mut runs = Vec::with_capacity(points.len());
        for point in points.into_iter().filter(|p| !self.excluded(p)) {
            let mut table = base.clone();
            for (k, v) in &point {
                set_path(&mut table, k, v.clone())?;
            }
            set_path(
                &mut table,
                "train.out_dir",
                toml::Value::String(self.runs_dir().to_string_lossy().into_owned()),
            )?;
            let text = toml::to_string(&table).map_err(|e| Error::config("axes", e.to_string()))?;
            let config = FinetuneConfig::parse(&text, &self.base, &[])?;
            let run_id = config.run_id()?;
            if seen.insert(run_id.clone()) {
                runs.push(RunSpec {
                    index: runs.len(),
                    run_id,
                    assignments: point.iter().map(|(k, v)| (k.clone(), v.to_string())).collect(),
                    config,
                });
            }
        }
        Ok(runs)
    }
}

impl crate::config::ConfigFile for SweepConfig {
    fn validate(&self) -> Result<()> {
        crate::config::check_folder_name("name", &self.name)?;
        crate::data::Registry::check_key("registry", self.registry.as_deref())?;
        for (i, axis) in self.axes.iter().enumerate() {
            if axis.values.is_empty() {
                return Err(Error::config(
                    format!("axes[{i}].values"),
                    "an axis needs at least one value",
                ));
            }
            if axis.key.is_none() && !axis.values.iter().all(toml::Value::is_table) {
                return Err(Error::config(
                    format!("axes[{i}]"),
                    "without `key`, every value must be a table of dotted keys, e.g. { \"task.dataset\" = \"sst2\" }",
                ));
            }
        }
        let keys = self.axis_keys();
        for (i, rule) in self.exclude.iter().enumerate() {
            if rule.is_empty() {
                return Err(Error::config(
                    format!("exclude[{i}]"),
                    "an exclusion needs at least one key",
                ));
            }
            for (k, v) in rule {
                if !keys.contains(k) {
                    return Err(Error::config(
                        format!("exclude[{i}].\"{k}\""),
                        format!(
                            "no axis sets `{k}`; the axes set {}",
                            keys.iter().cloned().collect::<Vec<_>>().join(", ")
                        ),
                    ));
                }
                if v.as_array().is_none_or(|a| a.is_empty()) {
                    return Err(Error::config(
                        format!("exclude[{i}].\"{k}\""),
                        format!("list the values to leave out, e.g. \"{k}\" = [{v}]"),
                    ));
                }
            }
        }
        Ok(())
    }
}
