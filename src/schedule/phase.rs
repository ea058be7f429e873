//! The phase list of a pretraining run: `[{objective = "clm", steps = 3000}, {objective = "mlm",
//! ratio = 0.4, steps = 9000}]` is a 25/75 biphasic run; one phase is plain CLM or MLM. Pure
//! lookups from the optimizer step.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::objectives::mlm::check_ratio;
use crate::objectives::Objective;

/// One phase.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    /// The objective of the phase.
    pub objective: Objective,
    /// Optimizer steps in the phase.
    pub steps: usize,
    /// Masking ratio (MLM only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratio: Option<f64>,
}

/// Checks a phase list: at least one phase, every phase at least one step, a masking ratio in
/// (0, 1) for MLM phases and none for CLM phases.
pub fn validate_phases(phases: &[Phase]) -> Result<()> {
    if phases.is_empty() {
        return Err(Error::config("phases", "at least one phase is needed"));
    }
    for (i, p) in phases.iter().enumerate() {
        let field = |f: &str| format!("phases[{i}].{f}");
        if p.steps == 0 {
            return Err(Error::config(field("steps"), "a phase needs at least 1 step"));
        }
        match (p.objective, p.ratio) {
            (Objective::Mlm, Some(r)) => check_ratio(&field("ratio"), r)?,
            (Objective::Mlm, None) => {
                return Err(Error::config(
                    field("ratio"),
                    "an MLM phase needs a masking ratio, e.g. 0.4",
                ))
            }
            (Objective::Clm, Some(_)) => return Err(Error::config(field("ratio"), "a CLM phase has no masking ratio")),
            (Objective::Clm, None) => {}
        }
    }
    Ok(())
}

/// Steps of all phases.
pub fn total_steps(phases: &[Phase]) -> usize {
    phases.iter().map(|p| p.steps).sum()
}

/// The index of the phase that optimizer step `step` belongs to (the last one past the end).
pub fn phase_at(phases: &[Phase], step: usize) -> usize {
    let mut end = 0;
    for (i, p) in phases.iter().enumerate() {
        end += p.steps;
        if step < end {
            return i;
        }
    }
    phases.len().saturating_sub(1)
}

/// The first step of phase `index`.
pub fn phase_start(phases: &[Phase], index: usize) -> usize {
    phases.iter().take(index).map(|p| p.steps).sum()
}
