//! Expected maximum performance as a function of the number of trials (STATISTICS.md row 12;
//! Dodge et al. 2019, "Show Your Work"): trials are drawn i.i.d. with replacement from the N
//! observed scores, for budgets n = 1..N (no extrapolation).

/// One point of the curve.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExpectedMax {
    /// Number of trials.
    pub budget: usize,
    /// Expected best score among `budget` trials.
    pub expected_max: f64,
    /// Standard deviation of that best score.
    pub sd: f64,
}

/// The curve for budgets 1..=N of the (NaN-free) `scores`.
pub fn expected_max_curve(scores: &[f64]) -> Vec<ExpectedMax> {
    let v = crate::stats::describe::sorted(scores);
    let big_n = v.len() as f64;
    let mut q = vec![0.0; v.len() + 1];
    let mut w = vec![0.0; v.len()];
    (1..=v.len())
        .map(|n| {
            // (i/N)^n once per i (each is used twice: in wᵢ and in wᵢ₊₁)
            for (i, q) in q.iter_mut().enumerate() {
                *q = (i as f64 / big_n).powi(n as i32);
            }
            for (i, w) in w.iter_mut().enumerate() {
                *w = q[i + 1] - q[i];
            }
            let e: f64 = w.iter().zip(&v).map(|(w, v)| w * v).sum();
            let var: f64 = w.iter().zip(&v).map(|(w, v)| w * (v - e) * (v - e)).sum();
            ExpectedMax {
                budget: n,
                expected_max: e,
                sd: var.max(0.0).sqrt(),
            }
        })
        .collect()
}
