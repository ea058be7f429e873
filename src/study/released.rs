//! Findings on runs this project did not make: F1 and F3 between a CLM and an MLM model of any
//! runs table (the paper's released 610M runs, `analysis findings`), through the same
//! comparisons, tests and Holm correction as the study's report, F1 with a paired bootstrap over
//! the test instances where per-instance scores are attached. So a reader can check that the
//! machinery agrees with the paper where the paper's data is.

use std::fmt::Write as _;
use std::path::Path;

use super::findings::{f1_f3, system_of, Comparison, Evidence, Finding, Names};
use crate::error::{IoContext, Result};
use crate::fsutil::write_atomic;
use crate::stats::bootstrap::{ci_from_bootstrap_distribution, BootstrapMethod};
use crate::stats::report::{instance_comparisons, ReportConfig, RunsIndex};

/// MLM − CLM on each dataset with per-instance scores: the paired bootstrap over test
/// instances of the two models' instance profiles (their selected runs averaged), raw metric.
pub(crate) fn instance_rows(ix: &RunsIndex, cfg: &ReportConfig, names: &Names) -> Vec<Comparison> {
    let (Some(c), Some(m)) = (system_of(ix, &names.clm), system_of(ix, &names.mlm)) else {
        return Vec::new();
    };
    instance_comparisons(ix, cfg, true)
        .into_iter()
        .filter(|ic| (ic.x, ic.y) == (m, c) || (ic.x, ic.y) == (c, m))
        .map(|ic| {
            // the bootstrap resamples x − y: orient it as MLM − CLM
            let sign = if ic.x == m { 1.0 } else { -1.0 };
            let star: Vec<f64> = ic.bootstrap.star.iter().map(|v| sign * v).collect();
            let estimate = sign * ic.bootstrap.estimate;
            let (lo, hi) =
                ci_from_bootstrap_distribution(estimate, &star, &[], BootstrapMethod::Percentile, cfg.confidence);
            let (score_m, score_c) = if ic.x == m {
                (ic.score_x, ic.score_y)
            } else {
                (ic.score_y, ic.score_x)
            };
            Comparison {
                finding: "F1".into(),
                label: "MLM − CLM, one dataset's test instances".into(),
                a: names.mlm.clone(),
                b: names.clm.clone(),
                scope: ix.datasets[ic.dataset].clone(),
                n: ic.n_instances,
                mean_a: score_m,
                lo_a: f64::NAN,
                hi_a: f64::NAN,
                mean_b: score_c,
                lo_b: f64::NAN,
                hi_b: f64::NAN,
                diff: estimate,
                diff_lo: lo,
                diff_hi: hi,
                test: "paired bootstrap over test instances (seeds averaged)".into(),
                p: ic.bootstrap.p_value(),
                p_holm: f64::NAN,
                expected: 1.0,
                primary: false,
            }
        })
        .collect()
}

/// Evaluates F1 and F3 on `ix` and writes `findings.csv` and `FINDINGS.md` into `out`;
/// `source` names the runs in the text.
pub fn write_findings(
    ix: &RunsIndex,
    cfg: &ReportConfig,
    names: &Names,
    alpha: f64,
    out: &Path,
    source: &str,
) -> Result<Vec<Finding>> {
    let ev = Evidence::new(ix, cfg.confidence, alpha);
    let findings = f1_f3(&ev, names, instance_rows(ix, cfg, names));
    std::fs::create_dir_all(out).at(out)?;
    let rows: Vec<&Comparison> = findings.iter().flat_map(|f| &f.rows).collect();
    write_atomic(
        out.join("findings.csv"),
        crate::artifacts::csv_text(&rows, None)?.as_bytes(),
    )?;
    write_atomic(
        out.join("FINDINGS.md"),
        markdown(&findings, names, source, alpha).as_bytes(),
    )?;
    Ok(findings)
}

fn markdown(findings: &[Finding], names: &Names, source: &str, alpha: f64) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# F1 and F3 on {source}\n\nWritten by `analysis findings` (the study's comparisons, tests and Holm correction, α = {alpha}) with `{}` as the CLM model and `{}` as the MLM model. No positive control gates these verdicts: the models are the paper's own, not CPU-scale ones. Every row: [`findings.csv`](findings.csv).\n\n| finding | claim | verdict |\n|---|---|---|",
        names.clm, names.mlm
    );
    // the models are full-scale: "at this scale" would say the wrong thing
    let word = |f: &Finding| f.verdict.word().trim_end_matches(" at this scale").to_string();
    for f in findings {
        let _ = writeln!(s, "| {} | {} | **{}** |", f.id, f.claim, word(f));
    }
    for f in findings {
        let _ = writeln!(s, "\n## {}\n\n**Comparison.** {}.\n", f.id, f.design);
        let rows: Vec<&Comparison> = f.rows.iter().collect();
        s.push_str(&super::sections::comparison_table(&rows));
        let _ = writeln!(s, "\n**Verdict: {}.** {}", word(f), f.why);
    }
    let _ = writeln!(
        s,
        "\nAcross datasets the means and differences are normalised, (score − chance) / (max − chance); on one dataset they are raw scores. Instance rows have no per-side interval (`n/a`)."
    );
    s
}
