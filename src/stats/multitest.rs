//! Multiple-comparison corrections, as statsmodels' `multipletests`:
//! Holm (the default), Benjamini-Hochberg, Bonferroni and Benjamini-Yekutieli. NaN p-values are
//! left out of the family and stay NaN.

/// A correction method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Correction {
    /// Holm's step-down (family-wise error).
    Holm,
    /// Benjamini-Hochberg (false discovery rate).
    BenjaminiHochberg,
    /// Bonferroni.
    Bonferroni,
    /// Benjamini-Yekutieli (false discovery rate under any dependence).
    BenjaminiYekutieli,
}

/// Adjusted p-values, in the order of `p`.
pub fn adjust(p: &[f64], method: Correction) -> Vec<f64> {
    let mut order: Vec<usize> = (0..p.len()).filter(|&i| !p[i].is_nan()).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let m = order.len() as f64;
    let mut out = vec![f64::NAN; p.len()];
    match method {
        Correction::Bonferroni => {
            for &i in &order {
                out[i] = (m * p[i]).min(1.0);
            }
        }
        Correction::Holm => {
            let mut running = 0.0f64;
            for (rank, &i) in order.iter().enumerate() {
                running = running.max(((m - rank as f64) * p[i]).min(1.0));
                out[i] = running;
            }
        }
        Correction::BenjaminiHochberg | Correction::BenjaminiYekutieli => {
            let c = if method == Correction::BenjaminiYekutieli {
                (1..=order.len()).map(|k| 1.0 / k as f64).sum::<f64>()
            } else {
                1.0
            };
            let mut running = 1.0f64;
            for (rank, &i) in order.iter().enumerate().rev() {
                running = running.min((m * c * p[i] / (rank + 1) as f64).min(1.0));
                out[i] = running;
            }
        }
    }
    out
}

/// A p-value for a report: 3 significant digits, or `< 1e-4`.
pub fn fmt_p(p: f64) -> String {
    if p.is_nan() {
        "n/a".into()
    } else if p < 1e-4 {
        "< 1e-4".into()
    } else {
        format!("{p:.4}")
    }
}
