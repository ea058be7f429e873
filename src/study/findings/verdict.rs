//! From a finding's comparisons to its verdict (reproduced, contradicted, inconclusive), and
//! how p-values are shown.

use super::*;

pub(super) fn interval(c: &Comparison) -> String {
    format!("{:+.3} [{:+.3}, {:+.3}]", c.diff, c.diff_lo, c.diff_hi)
}

/// Sets the verdict and its reason.
pub(super) fn decide(f: &mut Finding, ev: &Evidence) {
    let primaries: Vec<&Comparison> = f.rows.iter().filter(|c| c.primary).collect();
    if f.id == "F6" {
        return decide_f6(f, ev);
    }
    if primaries.is_empty() {
        f.verdict = Verdict::NotRun;
        f.why = "the study has no runs for this comparison (an arm it does not train, or one that failed).".into();
        return;
    }
    let verdicts: Vec<Verdict> = primaries.iter().map(|c| ev.verdict(c)).collect();
    let any = |v: Verdict| verdicts.contains(&v);
    f.verdict = if any(Verdict::Reproduced) && !any(Verdict::Contradicted) {
        Verdict::Reproduced
    } else if any(Verdict::Contradicted) && !any(Verdict::Reproduced) {
        Verdict::Contradicted
    } else {
        Verdict::Inconclusive
    };
    let parts: Vec<String> = primaries
        .iter()
        .zip(&verdicts)
        .map(|(c, v)| {
            format!(
                "{} ({} vs {}): difference {} (normalised), Holm p = {} — {}",
                c.label,
                c.a,
                c.b,
                interval(c),
                fmt_p(c.p_holm),
                match v {
                    Verdict::Reproduced => "significant, in the paper's direction",
                    Verdict::Contradicted => "significant, against the paper",
                    Verdict::Inconclusive | Verdict::NotTestable | Verdict::NotRun => "not significant",
                }
            )
        })
        .collect();
    let mixed = any(Verdict::Reproduced) && any(Verdict::Contradicted);
    // F1 also names the families (the paper: largest on SC and QA, CLM strong on TC)
    let families: Vec<String> = f
        .rows
        .iter()
        .filter(|c| f.id == "F1" && c.label.ends_with("one family"))
        .map(|c| format!("{} {} (Holm p {})", c.scope, interval(c), fmt_p(c.p_holm)))
        .collect();
    let by_family = if families.is_empty() {
        String::new()
    } else {
        format!(" By family (MLM − CLM): {}.", families.join("; "))
    };
    f.why = format!(
        "{}.{}{}",
        parts.join("; "),
        if mixed { " The primary tests disagree." } else { "" },
        by_family,
    );
}

/// F6's verdict.
pub(super) fn decide_f6(f: &mut Finding, ev: &Evidence) {
    if f.rows.is_empty() {
        f.verdict = Verdict::NotRun;
        f.why = "the study trains one masking ratio (set `pretrain.other_ratios`, and `pretrain.ratio_sizes` for a second size), or those arms have no runs.".into();
        return;
    }
    // the best ratio at each size: the sign of (main − other) per size
    let sizes: Vec<String> = {
        let mut s: Vec<String> = f.rows.iter().filter(|c| !c.primary).map(|c| c.scope.clone()).collect();
        s.dedup();
        s
    };
    let best: Vec<String> = sizes
        .iter()
        .map(|size| {
            let rows: Vec<&Comparison> = f.rows.iter().filter(|c| !c.primary && c.scope == *size).collect();
            let main_best = rows.iter().all(|c| c.diff >= 0.0);
            let best = if main_best {
                rows.first().map(|c| c.a.clone()).unwrap_or_default()
            } else {
                rows.iter()
                    .min_by(|a, b| a.diff.total_cmp(&b.diff))
                    .map(|c| c.b.clone())
                    .unwrap_or_default()
            };
            format!("{size}: {best}")
        })
        .collect();
    let differences: Vec<String> = f
        .rows
        .iter()
        .filter(|c| !c.primary)
        .map(|c| format!("{} {}", c.label, interval(c)))
        .collect();
    if sizes.len() < 2 {
        f.verdict = Verdict::Inconclusive;
        f.why = format!(
            "one model size only, so a dependence on size cannot be tested; best ratio by mean — {}; {}.",
            best.join(", "),
            differences.join("; ")
        );
        return;
    }
    let interactions: Vec<&Comparison> = f.rows.iter().filter(|c| c.primary).collect();
    let significant: Vec<&&Comparison> = interactions.iter().filter(|c| ev.verdict_any(c)).collect();
    // the claim is that the effect differs between sizes, in either direction: a significant
    // interaction reproduces it; none cannot contradict it (absence of evidence)
    f.verdict = if significant.is_empty() {
        Verdict::Inconclusive
    } else {
        Verdict::Reproduced
    };
    f.why = format!(
        "best ratio by mean — {}; ratio effects (normalised, main ratio − other): {}; interaction{}: {}; {} of {} interaction tests significant after Holm{}.",
        best.join(", "),
        differences.join("; "),
        if interactions.len() == 1 { "" } else { "s" },
        interactions
            .iter()
            .map(|c| format!("{} {} (Holm p {})", c.label, interval(c), fmt_p(c.p_holm)))
            .collect::<Vec<_>>()
            .join("; "),
        significant.len(),
        interactions.len(),
        if interactions.is_empty() { " (no dataset has all four models)" } else { "" },
    );
}
