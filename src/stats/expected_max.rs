//! Expected maximum performance as a function of the number of trials (Dodge
//! et al. 2019, "Show Your Work"): trials are drawn i.i.d. with replacement from the N
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

/// The curve for budgets 1..=N of the (NaN-free) `scores`: E\[max\] = Σᵢ wᵢ v₍ᵢ₎ with
/// wᵢ = (i/N)ⁿ − ((i−1)/N)ⁿ over the sorted scores, each power kept from the budget before
/// (one product per i and n) and the sums taken in eight running parts.
pub fn expected_max_curve(scores: &[f64]) -> Vec<ExpectedMax> {
    let v = crate::stats::describe::sorted(scores);
    let big_n = v.len() as f64;
    let base: Vec<f64> = (0..=v.len()).map(|i| i as f64 / big_n).collect();
    // q[i] = (i/N)ⁿ, from n = 0
    let mut q = vec![1.0; v.len() + 1];
    let mut w = vec![0.0; v.len()];
    let mut d = vec![0.0; v.len()];
    (1..=v.len())
        .map(|n| {
            for (q, b) in q.iter_mut().zip(&base) {
                *q *= b;
            }
            for (i, w) in w.iter_mut().enumerate() {
                *w = q[i + 1] - q[i];
            }
            let e = sum8(w.iter().zip(&v).map(|(w, v)| w * v), &mut d);
            let var = sum8(w.iter().zip(&v).map(|(w, v)| w * (v - e) * (v - e)), &mut d);
            ExpectedMax {
                budget: n,
                expected_max: e,
                sd: var.max(0.0).sqrt(),
            }
        })
        .collect()
}

/// The sum of `terms` (written into `buf` first), in eight running parts so that the
/// additions do not wait on each other.
fn sum8(terms: impl Iterator<Item = f64>, buf: &mut [f64]) -> f64 {
    for (slot, t) in buf.iter_mut().zip(terms) {
        *slot = t;
    }
    let chunks = buf.chunks_exact(8);
    let tail: f64 = chunks.remainder().iter().sum();
    let mut acc = [0.0f64; 8];
    for c in chunks {
        for k in 0..8 {
            acc[k] += c[k];
        }
    }
    ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])) + tail
}
