//! A pretraining run's metric history (`metrics.jsonl`), as a table and as loss curves; several
//! runs side by side in one figure.

use std::path::{Path, PathBuf};

use super::display::{emit, figure_html, html_table, short};
use crate::error::{Error, IoContext, Result};
use crate::stats::plots::{Figure, Mark, Panel, Point, Series};
use crate::stats::report::Table;
use crate::train::StepMetrics;

/// The steps logged by one pretraining run.
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    /// The run's name (its folder name).
    pub name: String,
    /// One entry per logged step, in order.
    pub steps: Vec<StepMetrics>,
}

const COLUMNS: [&str; 8] = [
    "step",
    "objective",
    "loss",
    "eval_clm_loss",
    "eval_mlm_loss",
    "lr",
    "grad_norm",
    "tokens_per_s",
];

impl History {
    /// Reads `{run_dir}/metrics.jsonl` (a run folder of `encoderlab pretrain`).
    pub fn load(run_dir: impl AsRef<Path>) -> Result<Self> {
        let dir = run_dir.as_ref();
        let path = dir.join("metrics.jsonl");
        let text = std::fs::read_to_string(&path).at(&path)?;
        let steps = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| serde_json::from_str(l).map_err(|e| Error::data(&path, i + 1, e.to_string())))
            .collect::<Result<Vec<StepMetrics>>>()?;
        let name = dir.file_name().map_or_else(
            || PathBuf::from(dir).display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        Ok(Self { name, steps })
    }

    /// The last `n` logged steps as a table.
    pub fn last(&self, n: usize) -> Table {
        table("metrics", &self.steps[self.steps.len().saturating_sub(n)..])
    }

    /// The steps with a held-out evaluation, as a table.
    pub fn evaluations(&self) -> Table {
        let evaluated = self.steps.iter();
        table(
            "evaluations",
            evaluated.filter(|m| m.eval_clm_loss.is_some() || m.eval_mlm_loss.is_some()),
        )
    }

    /// This run's loss curves ([`compare`] of one run).
    pub fn plot(&self) -> Figure {
        compare(std::slice::from_ref(self))
    }

    /// Shows the last 5 steps and the loss curves.
    pub fn evcxr_display(&self) {
        let t = self.last(5);
        let table = html_table(&self.name, &t.header, &t.rows);
        emit("text/html", &format!("{table}{}", figure_html(&self.plot())));
    }
}

/// `steps` as a table named `name`.
fn table<'a>(name: &'static str, steps: impl IntoIterator<Item = &'a StepMetrics>) -> Table {
    let opt = |v: Option<f64>| v.map_or("-".into(), short);
    Table {
        name,
        header: COLUMNS.to_vec(),
        rows: steps
            .into_iter()
            .map(|m| {
                vec![
                    m.step.to_string(),
                    format!("{:?}", m.objective).to_lowercase(),
                    short(m.loss),
                    opt(m.eval_clm_loss),
                    opt(m.eval_mlm_loss),
                    format!("{:.2e}", m.lr),
                    short(m.grad_norm),
                    format!("{:.0}", m.tokens_per_s),
                ]
            })
            .collect(),
    }
}

/// Loss curves of several runs side by side: the training loss (whatever each step's objective
/// was), the held-out CLM loss and the held-out MLM loss, against the optimizer step.
pub fn compare(runs: &[History]) -> Figure {
    type Pick = fn(&StepMetrics) -> Option<f64>;
    let panels: [(&str, Pick); 3] = [
        ("training loss (the step's objective)", |m| Some(m.loss)),
        ("held-out CLM loss", |m| m.eval_clm_loss),
        ("held-out MLM loss", |m| m.eval_mlm_loss),
    ];
    Figure {
        name: "loss_curves",
        title: "pretraining loss by step".into(),
        legend: runs.iter().map(|r| r.name.clone()).collect(),
        panels: panels
            .iter()
            .map(|(title, pick)| Panel {
                title: title.to_string(),
                x_label: "step".into(),
                y_label: "cross-entropy (nats)".into(),
                x_ticks: None,
                y_ticks: None,
                series: runs
                    .iter()
                    .enumerate()
                    .map(|(i, r)| Series {
                        system: i,
                        mark: Mark::Line,
                        points: r
                            .steps
                            .iter()
                            .filter_map(|m| pick(m).filter(|v| v.is_finite()).map(|v| Point::at(m.step as f64, v)))
                            .collect(),
                    })
                    .collect(),
            })
            .collect(),
        note: "evaluations on the same held-out blocks for every run".into(),
    }
}
