//! A sweep worker (`encoderlab sweep worker`): one long-lived process that runs the runs whose
//! indices it reads, one per line, one after another, reusing what earlier runs loaded (the
//! encoded dataset, the checkpoint's weights: [`Reuse`]). Each run writes its own record
//! atomically, as a run alone does, and is then answered with `done {index}` on a line of its
//! own. A run whose setup fails is recorded `failed` with the error, and the worker goes on.
//! The local executor keeps `--workers` of these busy ([`super::local`]).

use std::io::{BufRead, Write};

use super::config::RunSpec;
use crate::error::{Error, Result};
use crate::finetune::record::failed_record;
use crate::finetune::reuse::ReuseCounts;
use crate::finetune::{finetune_reusing, FinetuneOptions, Reuse, RunResult};

/// The answer to a finished run.
pub(crate) fn done_line(index: usize) -> String {
    format!("done {index}")
}

/// The run index of an answer line, if it is one.
pub(crate) fn parse_done(line: &str) -> Option<usize> {
    line.trim().strip_prefix("done ")?.parse().ok()
}

/// Runs `spec` ([`finetune_reusing`]); a run whose setup fails is recorded `failed` with the
/// error, so that one bad run never stops a sweep. Errs only when that record cannot be written.
pub(crate) fn run_recorded(spec: &RunSpec, reuse: &mut Reuse) -> Result<RunResult> {
    match finetune_reusing(&spec.config, &FinetuneOptions::default(), reuse) {
        Ok(r) => Ok(r),
        Err(e) => failed_record(&spec.config, &e.to_string()),
    }
}

/// Runs the runs of `specs` whose indices arrive on `input` until it ends; answers each on
/// `output` and says what it did on `log` (a line a run). An index outside the sweep is an
/// error: the executor and the worker disagree on the sweep.
pub fn serve(
    specs: &[RunSpec],
    input: impl BufRead,
    mut output: impl Write,
    mut log: impl Write,
) -> Result<ReuseCounts> {
    let mut reuse = Reuse::default();
    for line in input.lines() {
        let line = line.map_err(|e| Error::config("sweep worker", format!("cannot read its input: {e}")))?;
        let index: usize = line.trim().parse().map_err(|_| {
            Error::config(
                "sweep worker",
                format!("expected a run index on each input line, found `{line}`"),
            )
        })?;
        let spec = specs.get(index).ok_or_else(|| {
            Error::config(
                "sweep worker",
                format!("run index {index} is outside the sweep's {} runs", specs.len()),
            )
        })?;
        let result = run_recorded(spec, &mut reuse)?;
        let reason = result.reason.as_deref().map_or(String::new(), |r| format!(": {r}"));
        // the log is for people; a full disk there must not lose the run's answer
        let _ = writeln!(
            log,
            "run {index} ({}): {:?} in {:.2} s{reason}",
            spec.run_id, result.status, result.wall_seconds
        );
        let _ = log.flush();
        writeln!(output, "{}", done_line(index))
            .and_then(|()| output.flush())
            .map_err(|e| Error::config("sweep worker", format!("cannot answer the executor: {e}")))?;
    }
    let c = reuse.counts();
    if c.tasks.0 + c.tasks.1 > 0 {
        let _ = writeln!(
            log,
            "reused what earlier runs loaded: {} of {} encoded tasks, {} of {} checkpoints",
            c.tasks.0,
            c.tasks.0 + c.tasks.1,
            c.weights.0,
            c.weights.0 + c.weights.1
        );
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_read_back() {
        assert_eq!(parse_done(&done_line(42)), Some(42));
        assert_eq!(parse_done("done 7\n"), Some(7));
        for bad in ["", "done", "done x", "ok 3", "3"] {
            assert_eq!(parse_done(bad), None, "{bad}");
        }
    }

    #[test]
    fn bad_input_is_refused_by_what_it_is() {
        let err = serve(&[], "3\n".as_bytes(), Vec::new(), Vec::new())
            .unwrap_err()
            .to_string();
        assert!(err.contains("outside the sweep's 0 runs"), "{err}");
        let err = serve(&[], "three\n".as_bytes(), Vec::new(), Vec::new())
            .unwrap_err()
            .to_string();
        assert!(err.contains("found `three`"), "{err}");
        assert_eq!(
            serve(&[], "".as_bytes(), Vec::new(), Vec::new()).unwrap(),
            ReuseCounts::default()
        );
    }
}
