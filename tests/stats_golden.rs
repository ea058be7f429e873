//! Golden tests of the statistics against their reference implementations (scipy 1.17.1,
//! statsmodels 0.15.0, numpy 2). The Python that produced each expected value is pasted above
//! its test; run it in any environment with those packages to check a number.

use encoderlab::artifacts::report::DatasetTestRow;
use encoderlab::stats::describe::{iqm, mean, quantile, sem, std, t_interval};
use encoderlab::stats::expected_max::expected_max_curve;
use encoderlab::stats::multitest::{adjust, Correction};
use encoderlab::stats::proportion::{is_failed, wilson_interval};
use encoderlab::stats::ttest::{paired, welch};

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= tol * b.abs().max(1.0)
}

#[track_caller]
fn assert_close(a: f64, b: f64, tol: f64) {
    assert!(close(a, b, tol), "{a} != {b} (tol {tol})");
}

// Seven SST-2-like scores with one diverged run, and five others.
const X: [f64; 7] = [0.912, 0.905, 0.921, 0.899, 0.915, 0.760, 0.918];
const Y: [f64; 5] = [0.887, 0.893, 0.881, 0.902, 0.879];

// import numpy as np, scipy.stats as st
// x = np.array([0.912, 0.905, 0.921, 0.899, 0.915, 0.760, 0.918])
// y = np.array([0.887, 0.893, 0.881, 0.902, 0.879])
// np.mean(x), np.std(x, ddof=1), st.sem(x)            # 0.89, 0.057821564604681304, 0.021854497194377355
// [np.quantile(x, p) for p in (0.25, 0.5, 0.75)]      # 0.902, 0.912, 0.9165000000000001
// st.trim_mean(x, 0.25), st.trim_mean(y, 0.25), st.trim_mean(x[:3], 0.25)   # 0.9098, 0.887, 0.9126666666666668
#[test]
fn descriptive_statistics_match_numpy_and_scipy() {
    assert_close(mean(&X), 0.89, 1e-15);
    assert_close(std(&X), 0.057821564604681304, 1e-14);
    assert_close(sem(&X), 0.021854497194377355, 1e-14);
    assert_close(quantile(&X, 0.25), 0.902, 1e-15);
    assert_close(quantile(&X, 0.5), 0.912, 1e-15);
    assert_close(quantile(&X, 0.75), 0.9165000000000001, 1e-15);
    assert_close(iqm(&X), 0.9098, 1e-14);
    assert_close(iqm(&Y), 0.887, 1e-14);
    assert_close(iqm(&X[..3]), 0.9126666666666668, 1e-14);
    assert_eq!(iqm(&X[..3]), mean(&X[..3]), "IQM = mean for n < 4");
}

// st.t.interval(0.95, len(x)-1, loc=np.mean(x), scale=st.sem(x))   # (0.8365239718142634, 0.9434760281857366)
// st.t.interval(0.90, len(y)-1, loc=np.mean(y), scale=st.sem(y))   # (0.8794665698721198, 0.8973334301278804)
#[test]
fn t_interval_matches_scipy() {
    let (lo, hi) = t_interval(&X, 0.95);
    assert_close(lo, 0.8365239718142634, 1e-9);
    assert_close(hi, 0.9434760281857366, 1e-9);
    let (lo, hi) = t_interval(&Y, 0.90);
    assert_close(lo, 0.8794665698721198, 1e-9);
    assert_close(hi, 0.8973334301278804, 1e-9);
}

#[test]
fn constant_and_tiny_samples() {
    let c = [0.885; 3];
    assert_eq!(mean(&c), 0.885, "exactly the value, not 0.8850000000000001");
    assert_eq!(std(&c), 0.0);
    assert!(t_interval(&c, 0.95).0.is_nan() && t_interval(&c, 0.95).1.is_nan());
    assert!(std(&[0.9]).is_nan() && t_interval(&[0.9], 0.95).0.is_nan());
    assert!(mean(&[]).is_nan() && quantile(&[], 0.5).is_nan());
}

// r = st.ttest_ind(x, y, equal_var=False); ci = r.confidence_interval(0.95)
// r.statistic, r.df, r.pvalue, ci.low, ci.high
// # 0.07190164931408541 6.436248756737053 0.9448629163954673 -0.051967967248724226 0.055167967248724095
#[test]
fn welch_matches_scipy() {
    let r = welch(&X, &Y, 0.95);
    assert_close(r.t, 0.07190164931408541, 1e-12);
    assert_close(r.df, 6.436248756737053, 1e-12);
    assert_close(r.p, 0.9448629163954673, 1e-10);
    assert_close(r.ci_low, -0.051967967248724226, 1e-9);
    assert_close(r.ci_high, 0.055167967248724095, 1e-9);
    let constant = welch(&[0.9, 0.9], &[0.8, 0.8], 0.95);
    assert!(
        constant.t.is_nan() && constant.df.is_nan() && constant.ci_low.is_nan(),
        "SE = 0: NaN, not scipy's df=1 artefact"
    );
    assert_close(constant.mean_diff, 0.1, 1e-12);
    assert!(welch(&[0.9], &Y, 0.95).p.is_nan());
}

// a = np.array([0.91, 0.88, 0.93, 0.90, 0.87]); b = np.array([0.89, 0.88, 0.90, 0.91, 0.84])
// r = st.ttest_rel(a, b); ci = r.confidence_interval(0.95)
// # 1.723280873710658 4 0.15993479883742162 -0.008555946662990414 0.03655594666299044
#[test]
fn paired_t_matches_scipy() {
    let a = [0.91, 0.88, 0.93, 0.90, 0.87];
    let b = [0.89, 0.88, 0.90, 0.91, 0.84];
    let r = paired(&a, &b, 0.95);
    assert_close(r.t, 1.723280873710658, 1e-12);
    assert_eq!(r.df, 4.0);
    assert_close(r.p, 0.15993479883742162, 1e-10);
    assert_close(r.ci_low, -0.008555946662990414, 1e-9);
    assert_close(r.ci_high, 0.03655594666299044, 1e-9);
    let zero = paired(&a, &a, 0.95);
    assert!(zero.t.is_nan() && zero.p.is_nan());
    let shifted: Vec<f64> = a.iter().map(|v| v - 0.5).collect();
    let inf = paired(&a, &shifted, 0.95);
    assert_eq!((inf.t, inf.p), (f64::INFINITY, 0.0));
}

// from statsmodels.stats.proportion import proportion_confint
// [proportion_confint(k, n, alpha=0.05, method='wilson') for k, n in [(0, 5), (1, 5), (4, 4), (3, 30)]]
// # (0.0, 0.43448246478317487) (0.036224108632430196, 0.6244653702374748)
// # (0.5101091635454025, 1.0) (0.03459988874733416, 0.25621082579184085)
#[test]
fn wilson_matches_statsmodels() {
    let cases = [
        ((0, 5), (0.0, 0.43448246478317487)),
        ((1, 5), (0.036224108632430196, 0.6244653702374748)),
        ((4, 4), (0.5101091635454025, 1.0)),
        ((3, 30), (0.03459988874733416, 0.25621082579184085)),
    ];
    for ((k, n), (lo, hi)) in cases {
        let (a, b) = wilson_interval(k, n, 0.95);
        assert_close(a, lo, 1e-9);
        assert_close(b, hi, 1e-9);
    }
    assert_eq!(wilson_interval(0, 5, 0.95).0, 0.0, "exactly 0 at k = 0");
    assert_eq!(wilson_interval(4, 4, 0.95).1, 1.0, "exactly 1 at k = n");
    assert!(wilson_interval(0, 0, 0.95).0.is_nan());
    assert!(is_failed(f64::NAN, 0.5) && is_failed(0.5, 0.5) && !is_failed(0.51, 0.5));
}

// from statsmodels.stats.multitest import multipletests
// p = [0.01, 0.04, 0.03, 0.20, 0.005]          # plus a NaN, left out of the family
// [multipletests(p, alpha=0.05, method=m)[1] for m in ('holm', 'fdr_bh', 'bonferroni', 'fdr_by')]
// # holm       [0.04, 0.09, 0.09, 0.2, 0.025]
// # fdr_bh     [0.024999999999999998, 0.049999999999999996, 0.049999999999999996, 0.2, 0.024999999999999998]
// # bonferroni [0.05, 0.2, 0.15, 1.0, 0.025]
// # fdr_by     [0.05708333333333333, 0.11416666666666667, 0.11416666666666665, 0.45666666666666667, 0.05708333333333333]
#[test]
fn corrections_match_statsmodels() {
    let p = [0.01, 0.04, 0.03, f64::NAN, 0.20, 0.005];
    let expect = [
        (Correction::Holm, [0.04, 0.09, 0.09, 0.2, 0.025]),
        (
            Correction::BenjaminiHochberg,
            [
                0.024999999999999998,
                0.049999999999999996,
                0.049999999999999996,
                0.2,
                0.024999999999999998,
            ],
        ),
        (Correction::Bonferroni, [0.05, 0.2, 0.15, 1.0, 0.025]),
        (
            Correction::BenjaminiYekutieli,
            [
                0.05708333333333333,
                0.11416666666666667,
                0.11416666666666665,
                0.45666666666666667,
                0.05708333333333333,
            ],
        ),
    ];
    for (method, want) in expect {
        let got = adjust(&p, method);
        assert!(got[3].is_nan(), "{method:?}: NaN stays NaN");
        let got: Vec<f64> = got.into_iter().filter(|v| !v.is_nan()).collect();
        for (g, w) in got.iter().zip(want) {
            assert_close(*g, w, 1e-12);
        }
    }
}

#[test]
fn corrections_are_monotone_and_never_below_raw() {
    let p: [f64; 7] = [0.001, 0.2, 0.04, 0.04, 0.5, 0.0101, 0.9];
    let mut order: Vec<usize> = (0..p.len()).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    for method in [
        Correction::Holm,
        Correction::BenjaminiHochberg,
        Correction::Bonferroni,
        Correction::BenjaminiYekutieli,
    ] {
        let adj = adjust(&p, method);
        for w in order.windows(2) {
            assert!(adj[w[0]] <= adj[w[1]], "{method:?} not monotone");
        }
        assert!(adj.iter().zip(&p).all(|(a, r)| a >= r && *a <= 1.0), "{method:?}");
    }
}

// Dodge et al. 2019 (show_your_work, expected_max_performance.samplemax), as its formula:
// def samplemax(v):
//     v = np.sort(np.asarray(v, dtype=float)); N = len(v); i = np.arange(1, N + 1)
//     out = []
//     for n in range(1, N + 1):
//         w = (i / N) ** n - ((i - 1) / N) ** n
//         e = (w * v).sum(); sd = np.sqrt((w * (v - e) ** 2).sum())
//         out.append((e, sd))
//     return out
// samplemax([0.912, 0.905, 0.921, 0.899, 0.915, 0.760, 0.918])
#[test]
fn expected_max_matches_show_your_work() {
    let want = [
        (0.8900000000000001, 0.05353236671131108),
        (0.9116734693877552, 0.02275906435713754),
        (0.9163615160349854, 0.009779667729970945),
        (0.9179458558933778, 0.005037260634157665),
        (0.9187505206164099, 0.0033680177169574032),
        (0.9192595942166955, 0.002667826042933943),
        (0.9196162823313416, 0.0022654415046573805),
    ];
    let curve = expected_max_curve(&X);
    assert_eq!(curve.len(), 7);
    for (point, (e, sd)) in curve.iter().zip(want) {
        assert_close(point.expected_max, e, 1e-13);
        assert_close(point.sd, sd, 1e-12);
    }
    assert_close(curve[0].expected_max, mean(&X), 1e-15);
    assert!(curve.last().unwrap().expected_max <= 0.921);
    assert!(curve.windows(2).all(|w| w[0].expected_max <= w[1].expected_max));
}

// st.rankdata([3, 1, 4, 1, 5, 9, 2, 6, 5, 3], method='average')
// # [4.5, 1.5, 6.0, 1.5, 7.5, 10.0, 3.0, 9.0, 7.5, 4.5]
#[test]
fn average_ranks_match_scipy() {
    let r = encoderlab::stats::rank::rank_average(&[3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0, 5.0, 3.0]);
    assert_eq!(r, [4.5, 1.5, 6.0, 1.5, 7.5, 10.0, 3.0, 9.0, 7.5, 4.5]);
}

// for a, b in [(x, y), ([1,2,3,4,5], [6,7,8,9,10]), (list(range(1, 11)), [v + 0.5 for v in range(3, 13)]),
//              ([0.9, 0.9, 0.8, 0.85], [0.8, 0.9, 0.7, 0.75, 0.7])]:
//     r = st.mannwhitneyu(a, b, alternative='two-sided'); print(r.statistic, r.pvalue)
// # 29.0 0.07323232323232323        (exact, 7 vs 5)
// # 0.0 0.007936507936507936        (exact, 5 vs 5: statrs says 1.0 here)
// # 28.0 0.10410988966022681        (asymptotic, 10 vs 10)
// # 16.5 0.13158676028118635        (asymptotic, ties)
#[test]
fn mann_whitney_matches_scipy() {
    use encoderlab::stats::rank::{mann_whitney, PMethod};
    let r = mann_whitney(&X, &Y);
    assert_eq!((r.u1, r.method), (29.0, PMethod::Exact));
    assert_close(r.p, 0.07323232323232323, 1e-12);
    let r = mann_whitney(&[1.0, 2.0, 3.0, 4.0, 5.0], &[6.0, 7.0, 8.0, 9.0, 10.0]);
    assert_eq!(r.u1, 0.0);
    assert_close(r.p, 0.007936507936507936, 1e-12);
    let a: Vec<f64> = (1..=10).map(f64::from).collect();
    let b: Vec<f64> = (3..=12).map(|v| f64::from(v) + 0.5).collect();
    let r = mann_whitney(&a, &b);
    assert_eq!((r.u1, r.method), (28.0, PMethod::Asymptotic));
    assert_close(r.p, 0.10410988966022681, 1e-9);
    let r = mann_whitney(&[0.9, 0.9, 0.8, 0.85], &[0.8, 0.9, 0.7, 0.75, 0.7]);
    assert_eq!((r.u1, r.method), (16.5, PMethod::Asymptotic));
    assert_close(r.p, 0.13158676028118635, 1e-9);
}

// a = [0.91, 0.88, 0.93, 0.90, 0.87, 0.95, 0.89]; b = [0.89, 0.885, 0.90, 0.91, 0.842, 0.925, 0.851]
// c = [0.91, 0.88, 0.93, 0.90, 0.87, 0.95];       d = [0.89, 0.88, 0.90, 0.92, 0.85, 0.93]
// e = np.round(np.random.default_rng(0).normal(0, 1, 60), 2); f = np.zeros(60)
// [st.wilcoxon(p, q) for p, q in [(a, b), (c, d), (e, f)]]
// # (3.0, 0.078125) exact (no ties, no zeros); (3.0, 0.3125) zeros and ties, n <= 13: sign flips; (790.5, 0.47563405942538806) n > 50
#[test]
fn wilcoxon_matches_scipy() {
    use encoderlab::stats::rank::{wilcoxon, PMethod};
    let a = [0.91, 0.88, 0.93, 0.90, 0.87, 0.95, 0.89];
    let b = [0.89, 0.885, 0.90, 0.91, 0.842, 0.925, 0.851];
    let r = wilcoxon(&a, &b);
    assert_eq!((r.statistic, r.method), (3.0, PMethod::Exact));
    assert_eq!(r.r_plus + r.r_minus, 28.0);
    assert_close(r.p, 0.078125, 1e-12);
    let c = [0.91, 0.88, 0.93, 0.90, 0.87, 0.95];
    let d = [0.89, 0.88, 0.90, 0.92, 0.85, 0.93];
    let r = wilcoxon(&c, &d);
    assert_eq!((r.statistic, r.method), (3.0, PMethod::Permutation));
    assert_close(r.p, 0.3125, 1e-12);
    let e = [
        0.13, -0.13, 0.64, 0.1, -0.54, 0.36, 1.3, 0.95, -0.7, -1.27, -0.62, 0.04, -2.33, -0.22, -1.25, -0.73, -0.54,
        -0.32, 0.41, 1.04, -0.13, 1.37, -0.67, 0.35, 0.9, 0.09, -0.74, -0.92, -0.46, 0.22, -1.01, -0.21, -0.16, 0.54,
        0.21, 0.36, -0.65, -0.13, 0.78, 1.49, -1.26, 1.51, 1.35, 0.78, 0.26, -0.31, 1.46, 1.96, 1.8, 1.32, 0.36, -1.21,
        -0.0, 0.66, -1.29, 0.4, 0.43, 0.7, -1.18, -0.66,
    ];
    let r = wilcoxon(&e, &[0.0; 60]);
    assert_eq!((r.statistic, r.method), (790.5, PMethod::Asymptotic));
    assert_close(r.p, 0.47563405942538806, 1e-9);
    // four tasks can never reject at 0.05 (smallest two-sided p is 0.125)
    assert_close(wilcoxon(&[0.9, 0.8, 0.7, 0.6], &[0.1, 0.1, 0.1, 0.1]).p, 0.125, 1e-12);
}

// blocks = [[0.91, 0.89, 0.85], [0.80, 0.82, 0.79], [0.70, 0.70, 0.65], [0.95, 0.93, 0.94]]
// st.friedmanchisquare(*np.array(blocks).T)     # 4.133333333333334 0.12660710278908355
#[test]
fn friedman_matches_scipy() {
    let blocks = vec![
        vec![0.91, 0.89, 0.85],
        vec![0.80, 0.82, 0.79],
        vec![0.70, 0.70, 0.65],
        vec![0.95, 0.93, 0.94],
    ];
    let (chi2, p) = encoderlab::stats::rank::friedman(&blocks);
    assert_close(chi2, 4.133333333333334, 1e-12);
    assert_close(p, 0.12660710278908355, 1e-10);
    assert!(
        encoderlab::stats::rank::friedman(&[vec![0.1, 0.2], vec![0.3, 0.4]])
            .0
            .is_nan(),
        "k < 3"
    );
}

// The fixture tests/golden/bootstrap_mean_199.json holds x, scipy's own resample indices and
// its three intervals:
// x = np.array([0.912, 0.905, 0.921, 0.899, 0.915, 0.760, 0.918])
// idx = np.random.default_rng(42).integers(0, len(x), (199, len(x)))     # what bootstrap() draws
// for m in ["percentile", "basic", "BCa"]:
//     r = st.bootstrap((x,), np.mean, method=m, n_resamples=199, confidence_level=0.95,
//                      rng=np.random.default_rng(42))
// # percentile [0.8435428571428571, 0.9157142857142857]  basic [0.8642857142857143, 0.9364571428571429]
// # BCa [0.8275360570598603, 0.914938497720848]
#[test]
fn bootstrap_intervals_match_scipy_on_its_resamples() -> anyhow::Result<()> {
    use encoderlab::stats::bootstrap::{ci_from_bootstrap_distribution, jackknife, BootstrapMethod};
    let fixture: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/golden/bootstrap_mean_199.json"
    ))?)?;
    let x: Vec<f64> = serde_json::from_value(fixture["x"].clone())?;
    let idx: Vec<Vec<usize>> = serde_json::from_value(fixture["indices"].clone())?;
    let theta_star: Vec<f64> = idx
        .iter()
        .map(|row| mean(&row.iter().map(|&i| x[i]).collect::<Vec<_>>()))
        .collect();
    let jack = jackknife(&x, mean);
    for method in [
        BootstrapMethod::Percentile,
        BootstrapMethod::Basic,
        BootstrapMethod::BCa,
    ] {
        let want: Vec<f64> = serde_json::from_value(fixture[method.name()].clone())?;
        let (lo, hi) = ci_from_bootstrap_distribution(mean(&x), &theta_star, &jack, method, 0.95);
        assert_close(lo, want[0], 1e-12);
        assert_close(hi, want[1], 1e-12);
        assert!(lo <= mean(&x) + 1e-12 || method == BootstrapMethod::Basic, "{method:?}");
    }
    Ok(())
}

#[test]
fn bootstrap_degenerate_and_end_to_end() {
    use encoderlab::rng::seeded;
    use encoderlab::stats::bootstrap::{bootstrap_ci, BootstrapMethod};
    let c = [0.885; 5];
    let (lo, hi) = bootstrap_ci(&c, mean, BootstrapMethod::Percentile, 0.95, 999, &mut seeded(0, 0));
    assert_eq!((lo, hi), (0.885, 0.885), "percentile of a constant sample is [c, c]");
    let (lo, hi) = bootstrap_ci(&c, mean, BootstrapMethod::BCa, 0.95, 999, &mut seeded(0, 0));
    assert!(lo.is_nan() && hi.is_nan(), "BCa is NaN on degenerate data");
    assert!(
        bootstrap_ci(&[0.9], mean, BootstrapMethod::Percentile, 0.95, 99, &mut seeded(0, 0))
            .0
            .is_nan()
    );
    // end to end, within Monte-Carlo tolerance of scipy's 9999-resample intervals
    // st.bootstrap((x,), np.mean, method=m, n_resamples=9999, rng=np.random.default_rng(0)).confidence_interval
    // # percentile (0.8452857142857143, 0.9157142857142857)  BCa (0.8227142857142856, 0.9138571428571429)
    for (method, want) in [
        (BootstrapMethod::Percentile, (0.8452857142857143, 0.9157142857142857)),
        (BootstrapMethod::BCa, (0.8227142857142856, 0.9138571428571429)),
    ] {
        let a = bootstrap_ci(&X, mean, method, 0.95, 9999, &mut seeded(7, 1));
        let b = bootstrap_ci(&X, mean, method, 0.95, 9999, &mut seeded(7, 1));
        assert_eq!(a, b, "same seed, same interval");
        assert!(
            (a.0 - want.0).abs() < 0.004 && (a.1 - want.1).abs() < 0.004,
            "{method:?}: {a:?} vs {want:?}"
        );
    }
}

// rliable 1.2 (pip install rliable "pandas<3"):
// from rliable import library as rly, metrics
// X = np.array([[0.82, 0.61, 0.95], [0.79, 0.64, 0.97], [0.85, 0.10, 0.96], [0.80, 0.62, 0.94], [0.83, 0.66, 0.99]])
// Y = np.array([[0.78, 0.65, 0.93], [0.81, 0.63, 0.95], [0.77, 0.66, 0.96], [0.80, 0.60, 0.92], [0.79, 0.62, 0.97]])
// metrics.aggregate_iqm(X), metrics.aggregate_mean(X), metrics.aggregate_median(X), metrics.aggregate_optimality_gap(X)
// # 0.8088888888888889 0.7686666666666667 0.818 0.2313333333333334
// metrics.probability_of_improvement(X, Y), metrics.probability_of_improvement(Y, X)   # 0.6466666666666666 0.35333333333333333
// rly.create_performance_profile({"x": X}, np.array([0.5, 0.8, 0.95]), reps=2000)[0]["x"]  # 0.9333.., 0.5333.., 0.2
// np.random.seed(0); rly.get_interval_estimates({"x": X}, agg, reps=50000)  # agg = the four aggregates
// # iqm [0.7955555555555556, 0.8200000000000001] mean [0.6960000000000001, 0.8113333333333334]
// # median [0.8, 0.836] optimality_gap [0.18866666666666665, 0.30400000000000016]
// np.random.seed(0); rly.get_interval_estimates({"x,y": (X, Y)}, metrics.probability_of_improvement, reps=2000)
// # [0.4533333333333333, 0.8201666666666657]
// performance-profile CIs (reps=2000): [0.8, 1.0] [0.4, 0.6666666666666666] [0.06666666666666667, 0.3333333333333333]
fn rliable_matrices() -> (
    encoderlab::stats::aggregate::TaskScores,
    encoderlab::stats::aggregate::TaskScores,
) {
    let rows_x = [
        [0.82, 0.61, 0.95],
        [0.79, 0.64, 0.97],
        [0.85, 0.10, 0.96],
        [0.80, 0.62, 0.94],
        [0.83, 0.66, 0.99],
    ];
    let rows_y = [
        [0.78, 0.65, 0.93],
        [0.81, 0.63, 0.95],
        [0.77, 0.66, 0.96],
        [0.80, 0.60, 0.92],
        [0.79, 0.62, 0.97],
    ];
    let by_task = |rows: &[[f64; 3]; 5]| encoderlab::stats::aggregate::TaskScores {
        columns: (0..3).map(|t| rows.iter().map(|r| r[t]).collect()).collect(),
    };
    (by_task(&rows_x), by_task(&rows_y))
}

#[test]
fn rliable_aggregates_match() {
    use encoderlab::stats::aggregate::{fraction_above, probability_of_improvement, Aggregate};
    let (x, y) = rliable_matrices();
    assert_close(Aggregate::Iqm.of(&x), 0.8088888888888889, 1e-14);
    assert_close(Aggregate::Mean.of(&x), 0.7686666666666667, 1e-14);
    assert_close(Aggregate::Median.of(&x), 0.818, 1e-14);
    assert_close(Aggregate::OptimalityGap(1.0).of(&x), 0.2313333333333334, 1e-14);
    let (pxy, pyx) = (probability_of_improvement(&x, &y), probability_of_improvement(&y, &x));
    assert_close(pxy, 0.6466666666666666, 1e-14);
    assert_close(pyx, 0.35333333333333333, 1e-14);
    assert_close(pxy + pyx, 1.0, 1e-14);
    assert_close(probability_of_improvement(&x, &x), 0.5, 1e-15);
    for (tau, want) in [(0.5, 0.9333333333333333), (0.8, 0.5333333333333333), (0.95, 0.2)] {
        assert_close(fraction_above(&x, tau), want, 1e-15);
    }
}

#[test]
fn stratified_bootstrap_intervals_agree_with_rliable_within_monte_carlo_error() {
    use encoderlab::rng::seeded;
    use encoderlab::stats::aggregate::{
        fraction_above, paired_stratified_bootstrap, probability_of_improvement, stratified_bootstrap, Aggregate,
    };
    use encoderlab::stats::bootstrap::{ci_from_bootstrap_distribution, BootstrapMethod};
    let (x, y) = rliable_matrices();
    let pct =
        |theta: f64, star: &[f64]| ci_from_bootstrap_distribution(theta, star, &[], BootstrapMethod::Percentile, 0.95);
    let want = [
        (Aggregate::Iqm, (0.7955555555555556, 0.8200000000000001)),
        (Aggregate::Mean, (0.6960000000000001, 0.8113333333333334)),
        (Aggregate::Median, (0.8, 0.836)),
        (
            Aggregate::OptimalityGap(1.0),
            (0.18866666666666665, 0.30400000000000016),
        ),
    ];
    for (k, (agg, (lo, hi))) in want.into_iter().enumerate() {
        let star = stratified_bootstrap(&x, |s| agg.of(s), 50_000, false, &mut seeded(0, k as u64));
        let (a, b) = pct(agg.of(&x), &star);
        assert!(
            (a - lo).abs() < 0.01 && (b - hi).abs() < 0.01,
            "{}: [{a}, {b}] vs [{lo}, {hi}]",
            agg.name()
        );
        assert!(a <= agg.of(&x) && agg.of(&x) <= b);
    }
    let star = paired_stratified_bootstrap(&x, &y, probability_of_improvement, 2000, &mut seeded(0, 9));
    let (a, b) = pct(probability_of_improvement(&x, &y), &star);
    assert!(
        (a - 0.4533333333333333).abs() < 0.03 && (b - 0.8201666666666657).abs() < 0.03,
        "PoI [{a}, {b}]"
    );
    for (tau, (lo, hi)) in [
        (0.5, (0.8, 1.0)),
        (0.8, (0.4, 0.6666666666666666)),
        (0.95, (0.06666666666666667, 0.3333333333333333)),
    ] {
        let star = stratified_bootstrap(&x, |s| fraction_above(s, tau), 2000, false, &mut seeded(0, 10));
        let (a, b) = pct(fraction_above(&x, tau), &star);
        assert!(
            (a - lo).abs() < 0.07 && (b - hi).abs() < 0.07,
            "profile {tau}: [{a}, {b}]"
        );
    }
    // task bootstrap widens the interval
    let narrow = pct(
        Aggregate::Iqm.of(&x),
        &stratified_bootstrap(&x, |s| Aggregate::Iqm.of(s), 5000, false, &mut seeded(1, 0)),
    );
    let wide = pct(
        Aggregate::Iqm.of(&x),
        &stratified_bootstrap(&x, |s| Aggregate::Iqm.of(s), 5000, true, &mut seeded(1, 0)),
    );
    assert!(wide.1 - wide.0 > narrow.1 - narrow.0);
}

/// Four tasks of unequal sizes with ties, a constant task and values beyond [0, 1], and the
/// four aggregates (optimality gap at 0.8, inside the values): the aggregate bootstraps' cases.
fn four_tasks_four_aggregates() -> (
    encoderlab::stats::aggregate::TaskScores,
    [encoderlab::stats::aggregate::Aggregate; 4],
) {
    use encoderlab::stats::aggregate::{Aggregate, TaskScores};
    let x = TaskScores {
        columns: vec![
            vec![0.61, 0.72, 0.72, 0.55, 0.9],
            vec![0.3, 0.3, 0.3],
            vec![0.81, 0.79, 0.95, 0.88, 0.6, 0.7, 0.71],
            vec![1.02, -0.1],
        ],
    };
    let aggs = [
        Aggregate::Iqm,
        Aggregate::Mean,
        Aggregate::Median,
        Aggregate::OptimalityGap(0.8),
    ];
    (x, aggs)
}

/// The report's aggregate bootstrap (resamples kept as run counts, one resample for every
/// aggregate) draws the same resamples as `stratified_bootstrap` and gives the same values as
/// `Aggregate::of` on them (to rounding: its sums are taken in another order), with and
/// without the task bootstrap, ties and a constant task included.
#[test]
fn counted_aggregate_bootstrap_equals_the_plain_one() {
    use encoderlab::rng::seeded;
    use encoderlab::stats::aggregate::{stratified_bootstrap, stratified_bootstrap_aggregates, Aggregate, TaskScores};
    use encoderlab::stats::describe::mean;
    let (x, aggs) = four_tasks_four_aggregates();
    for task_bootstrap in [false, true] {
        let counted = stratified_bootstrap_aggregates(&x, &aggs, 300, task_bootstrap, &mut seeded(7, 1));
        for (agg, dist) in aggs.iter().zip(&counted) {
            let plain = stratified_bootstrap(&x, |s| agg.of(s), 300, task_bootstrap, &mut seeded(7, 1));
            for (a, b) in dist.iter().zip(&plain) {
                assert!(
                    (a - b).abs() < 1e-12,
                    "{agg:?} task_bootstrap={task_bootstrap}: {a} vs {b}"
                );
            }
            // a constant task's resampled mean is its value exactly, whatever the draws
            if *agg == Aggregate::Mean && !task_bootstrap {
                let constant = TaskScores {
                    columns: vec![vec![0.3; 3], vec![0.1; 7]],
                };
                let star = stratified_bootstrap_aggregates(&constant, &[*agg], 50, false, &mut seeded(7, 2));
                assert!(star[0].iter().all(|&v| v == mean(&[0.3, 0.1])), "{:?}", star[0]);
            }
        }
    }
}

/// The aggregate table's joint pass: its runs bootstrap is `stratified_bootstrap_aggregates`
/// bit for bit; its task bootstrap equals resampling by hand (the tasks from the tasks stream;
/// a task's first draw in a replicate is that replicate's resample of the task's runs, a
/// repeated draw is drawn anew from the tasks stream) and evaluating `Aggregate::of`, to
/// rounding. A task drawn twice must not repeat its first resample (the test's tasks are
/// drawn twice in most replicates).
#[test]
fn joint_aggregate_bootstraps_equal_resampling_by_hand() {
    use encoderlab::rng::{below_u32, seeded, Fast};
    use encoderlab::stats::aggregate::{
        stratified_bootstrap_aggregates, stratified_bootstrap_aggregates_both, stratified_resample, TaskScores,
    };
    let (x, aggs) = four_tasks_four_aggregates();
    let reps = 400;
    let (runs, tasks) =
        stratified_bootstrap_aggregates_both(&x, &aggs, &aggs, reps, &mut seeded(7, 1), &mut seeded(7, 2));
    let alone = stratified_bootstrap_aggregates(&x, &aggs, reps, false, &mut seeded(7, 1));
    let bits = |v: &[f64]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
    for (a, b) in runs.iter().zip(&alone) {
        assert_eq!(bits(a), bits(b));
    }
    let (mut fr, mut ft) = (
        Fast::from_stream(&mut seeded(7, 1)),
        Fast::from_stream(&mut seeded(7, 2)),
    );
    let m = x.columns.len();
    let mut repeats = 0;
    for r in 0..reps {
        let within = stratified_resample(&x, false, &mut fr);
        let mut seen = vec![false; m];
        let columns = (0..m)
            .map(|_| {
                let t = below_u32(&mut ft, m as u32) as usize;
                if std::mem::replace(&mut seen[t], true) {
                    repeats += 1;
                    let c = &x.columns[t];
                    (0..c.len())
                        .map(|_| c[below_u32(&mut ft, c.len() as u32) as usize])
                        .collect()
                } else {
                    within.columns[t].clone()
                }
            })
            .collect();
        let by_hand = TaskScores { columns };
        for (agg, dist) in aggs.iter().zip(&tasks) {
            let (a, b) = (dist[r], agg.of(&by_hand));
            assert!((a - b).abs() < 1e-12, "{agg:?} replicate {r}: {a} vs {b}");
        }
    }
    assert!(repeats > reps, "the case must draw tasks twice");
}

/// Percentiles found by selection are the sorted sample's type-7 quantiles, bit for bit.
#[test]
fn quantiles_by_selection_equal_sorted_quantiles() {
    use encoderlab::rng::{seeded, unit};
    use encoderlab::stats::bootstrap::quantile_select;
    use encoderlab::stats::describe::{quantile_sorted, sorted};
    let mut rng = seeded(3, 0);
    for n in [1usize, 2, 3, 10, 101, 4000] {
        // with ties: values on a coarse grid
        let x: Vec<f64> = (0..n).map(|_| (unit(&mut rng) * 50.0).floor() / 7.0).collect();
        let s = sorted(&x);
        for p in [0.0, 0.025, 0.05, 0.3, 0.5, 0.95, 0.975, 1.0] {
            let mut buf = x.clone();
            assert_eq!(
                quantile_select(&mut buf, p).to_bits(),
                quantile_sorted(&s, p).to_bits(),
                "n={n} p={p}"
            );
        }
    }
}

/// The report's three intervals from one distribution equal three separate calls, bit for
/// bit: skewed and tied distributions, a constant one, one with NaN, and a jackknife too short
/// for BCa.
#[test]
fn all_methods_at_once_equal_each_method_alone() {
    use encoderlab::rng::{seeded, unit};
    use encoderlab::stats::bootstrap::{ci_all_methods, ci_from_bootstrap_distribution, BootstrapMethod};
    let mut rng = seeded(5, 0);
    let skewed: Vec<f64> = (0..9999).map(|_| unit(&mut rng).powi(3)).collect();
    let tied: Vec<f64> = (0..2000).map(|_| (unit(&mut rng) * 7.0).floor() / 7.0).collect();
    let jack: Vec<f64> = (0..12).map(|_| 0.2 + 0.1 * unit(&mut rng)).collect();
    let cases: Vec<(Vec<f64>, Vec<f64>)> = vec![
        (skewed, jack.clone()),
        (tied, jack.clone()),
        (vec![0.5; 100], jack.clone()),
        (vec![0.1, f64::NAN, 0.3], jack.clone()),
        (vec![0.1, 0.2, 0.3, 0.9], vec![0.4]),
        (Vec::new(), jack),
    ];
    let bits = |(a, b): (f64, f64)| (a.to_bits(), b.to_bits());
    for (k, (star, jack)) in cases.iter().enumerate() {
        for confidence in [0.9, 0.95] {
            let all = ci_all_methods(0.21, star, jack, confidence);
            let methods = [
                BootstrapMethod::Percentile,
                BootstrapMethod::Basic,
                BootstrapMethod::BCa,
            ];
            for (m, got) in methods.into_iter().zip(all) {
                let alone = ci_from_bootstrap_distribution(0.21, star, jack, m, confidence);
                assert_eq!(bits(got), bits(alone), "case {k} {m:?} {confidence}");
            }
        }
    }
}

/// The exact sign test against scipy's `binomtest(k, n, 0.5)` (two-sided), zeros dropped.
/// ```python
/// from scipy.stats import binomtest   # scipy 1.17.1
/// for k, n in [(0,1),(1,1),(0,5),(1,5),(2,5),(3,8),(4,8),(0,20),(7,20),(13,40),(0,1100),(480,1000),(520,1000),(6,12)]:
///     print(k, n, binomtest(k, n, 0.5).pvalue)
/// ```
#[test]
fn sign_test_matches_scipy_binomtest() {
    use encoderlab::stats::sign::sign_test;
    let expected = [
        (0, 1, 1.0),
        (1, 1, 1.0),
        (0, 5, 0.0625),
        (1, 5, 0.375),
        (2, 5, 1.0),
        (3, 8, 0.7265625),
        (4, 8, 1.0),
        (0, 20, 1.9073486328125e-06),
        (7, 20, 0.26317596435546875),
        (13, 40, 0.03847730828420026),
        (0, 1100, 0.0),
        (480, 1000, 0.2174482932041415),
        (520, 1000, 0.2174482932041415),
        (6, 12, 1.0),
    ];
    for (k, n, p) in expected {
        // k positive differences, n − k negative, and two zeros (dropped) and a NaN pair
        let mut x: Vec<f64> = (0..n).map(|i| if i < k { 1.0 } else { -1.0 }).collect();
        x.extend([0.5, 0.5, f64::NAN]);
        let y: Vec<f64> = (0..n).map(|_| 0.0).chain([0.5, 0.5, 0.0]).collect();
        let t = sign_test(&x, &y);
        assert_eq!((t.positive, t.negative), (k, n - k));
        assert!((t.p - p).abs() <= 1e-12 * p.max(1e-300), "k={k} n={n}: {} vs {p}", t.p);
    }
    assert!(
        sign_test(&[1.0, 2.0], &[1.0, 2.0]).p.is_nan(),
        "no non-zero difference: no test"
    );
}

/// `tests_datasets.csv` against scipy and statsmodels on the same per-dataset means: 3 systems
/// × 7 datasets × 3 seeds, one learning rate, chance 0.5 and max 1 (so a dataset's normalised
/// score is (mean − 0.5) / 0.5).
/// ```python
/// import numpy as np   # scipy 1.17.1, statsmodels 0.15.0
/// from scipy.stats import ttest_rel, wilcoxon, binomtest
/// from statsmodels.stats.multitest import multipletests
/// def score(k, d, seed): return (500 + 37*d + (d*(k+3)*7) % 23 + 4*seed*(k+1) + 9*k*(d%4)) / 1000
/// means = {k: np.array([(np.mean([score(k, d, s) for s in range(3)]) - 0.5) / 0.5 for d in range(7)]) for k in range(3)}
/// rows, ps = [], []
/// for i in range(3):
///     for j in range(i+1, 3):
///         x, y = means[i], means[j]
///         t = ttest_rel(x, y); ci = t.confidence_interval(0.95)
///         d = x - y; k = int((d > 0).sum()); n = int((d != 0).sum())
///         rows.append((float(np.mean(d)), ci.low, ci.high, t.statistic, t.pvalue, wilcoxon(x, y).pvalue,
///                      binomtest(k, n, 0.5).pvalue, k, n - k)); ps.append(t.pvalue)
/// holm = multipletests(ps, method="holm")[1]; bh = multipletests(ps, method="fdr_bh")[1]
/// ```
#[test]
fn dataset_level_tests_match_scipy() {
    use encoderlab::stats::report::{tests_datasets, NanPolicy, ReportConfig, RunsIndex};
    use encoderlab::stats::runs::{Run, TaskMeta};
    let systems = [("a", "clm"), ("b", "mlm"), ("c", "mlm20")];
    let mut runs = Vec::new();
    for (k, (model, objective)) in systems.iter().enumerate() {
        for d in 0..7 {
            for seed in 0..3 {
                let milli = 500 + 37 * d + (d * (k + 3) * 7) % 23 + 4 * seed * (k + 1) + 9 * k * (d % 4);
                runs.push(Run {
                    model: model.to_string(),
                    objective: objective.to_string(),
                    family: None,
                    dataset: format!("d{d}"),
                    learning_rate: 1e-5,
                    pretrain_seed: 0,
                    seed: seed as i64,
                    split: "test".into(),
                    metric: None,
                    score: milli as f64 / 1000.0,
                    line: 0,
                });
            }
        }
    }
    let meta = (0..7)
        .map(|d| {
            let m = TaskMeta {
                family: "SC".into(),
                metric_name: "accuracy".into(),
                chance_score: 0.5,
                max_score: 1.0,
                higher_is_better: true,
                worst_score: None,
            };
            (format!("d{d}"), m)
        })
        .collect();
    let ix = RunsIndex::new(&runs, &meta, NanPolicy::ImputeChance);
    let table = tests_datasets(&ix, &ReportConfig::default()).unwrap();
    assert_eq!(
        table.header[..14],
        [
            "model_x",
            "objective_x",
            "model_y",
            "objective_y",
            "n_datasets",
            "mean_diff",
            "ci_low",
            "ci_high",
            "ttest_t",
            "ttest_p",
            "wilcoxon_p",
            "sign_p",
            "ttest_p_holm",
            "ttest_p_bh"
        ]
    );
    // mean_diff, ci_low, ci_high, t, p, wilcoxon p, sign p, Holm, BH, positives, negatives
    let expected = [
        (
            [
                -0.020571428571428622,
                -0.04059924845346835,
                -0.0005436086893888976,
                -2.513327594460302,
                0.04569722880366989,
                0.046875,
                0.125,
                0.09139445760733977,
                0.049338997381934736,
            ],
            (1, 6),
        ),
        (
            [
                -0.047714285714285695,
                -0.08515898296315937,
                -0.010269588465412025,
                -3.1180022743197666,
                0.020637345376510564,
                0.03125,
                0.125,
                0.061912036129531695,
                0.049338997381934736,
            ],
            (1, 6),
        ),
        (
            [
                -0.027142857142857073,
                -0.054177416001594314,
                -0.00010829828411982809,
                -2.456713984638488,
                0.049338997381934736,
                0.078125,
                0.125,
                0.09139445760733977,
                0.049338997381934736,
            ],
            (1, 6),
        ),
    ];
    let rows: Vec<DatasetTestRow> = table.rows_of().unwrap();
    assert_eq!(rows.len(), 3);
    for (row, (values, (pos, neg))) in rows.iter().zip(expected) {
        assert_eq!(row.n_datasets, 7);
        let got = [
            row.mean_diff,
            row.ci_low,
            row.ci_high,
            row.ttest_t,
            row.ttest_p,
            row.wilcoxon_p,
            row.sign_p,
            row.ttest_p_holm,
            row.ttest_p_bh,
        ];
        for (g, e) in got.iter().zip(values) {
            assert!((g - e).abs() <= 1e-10 * e.abs().max(1e-3), "{row:?}: {g} vs {e}");
        }
        assert_eq!((row.sign_positive, row.sign_negative), (pos, neg));
    }
    assert_eq!((rows[0].model_x.as_str(), rows[0].objective_y.as_str()), ("a", "mlm"));
}

/// The hierarchical bootstrap against known answers (issue 19, item 3): a level with no
/// variance contributes none, the other levels their textbook variance (the bootstrap variance
/// of a mean of k draws is the population variance over k), and pseudo-replication — a
/// system's runs pooled as if from one pretraining run — gives a narrower interval than the
/// design does.
#[test]
fn hierarchical_bootstrap_known_answers() {
    use encoderlab::rng::seeded;
    use encoderlab::stats::bootstrap::{ci_from_bootstrap_distribution, BootstrapMethod};
    use encoderlab::stats::describe::mean;
    use encoderlab::stats::hierarchical::{hierarchical_bootstrap_diff, Nested};
    let var_pop = |v: &[f64]| {
        let m = mean(v);
        v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / v.len() as f64
    };
    let sd_star = |s: &[f64]| var_pop(s).sqrt();
    let reps = 20_000;
    let zero: Vec<Nested> = vec![vec![vec![0.0; 4]]];
    // fine-tuning seeds constant within each pretraining seed: only the pretraining level
    let pretrain = [0.1, 0.4, 0.5, 0.9];
    let x: Vec<Nested> = vec![pretrain.iter().map(|&v| vec![v; 5]).collect()];
    let b = hierarchical_bootstrap_diff(&x, &zero, false, reps, &mut seeded(11, 0));
    assert_eq!(b.levels.name(), "pretrain_seeds+finetune_seeds");
    let expected = (var_pop(&pretrain) / 4.0).sqrt();
    assert!(
        (sd_star(&b.star) / expected - 1.0).abs() < 0.03,
        "{} vs {expected}",
        sd_star(&b.star)
    );
    // pretraining seeds identical: only the fine-tuning level, each drawn seed resampled anew
    let runs = vec![0.2, 0.3, 0.35, 0.6, 0.8];
    let x: Vec<Nested> = vec![vec![runs.clone(); 3]];
    let b = hierarchical_bootstrap_diff(&x, &zero, false, reps, &mut seeded(11, 1));
    let expected = (var_pop(&runs) / 5.0 / 3.0).sqrt();
    assert!(
        (sd_star(&b.star) / expected - 1.0).abs() < 0.03,
        "{} vs {expected}",
        sd_star(&b.star)
    );
    // datasets: one dataset's offset varies, the rest is constant
    let ds: Vec<Nested> = [0.0, 0.2, 0.7].iter().map(|&v| vec![vec![v; 2]; 2]).collect();
    let zeros: Vec<Nested> = vec![vec![vec![0.0; 2]; 2]; 3];
    let within = hierarchical_bootstrap_diff(&ds, &zeros, false, reps, &mut seeded(11, 2));
    assert!(
        within.star.iter().all(|&v| (v - 0.3).abs() < 1e-12),
        "no variance within datasets"
    );
    assert_eq!(within.levels.name(), "pretrain_seeds+finetune_seeds");
    let across = hierarchical_bootstrap_diff(&ds, &zeros, true, reps, &mut seeded(11, 3));
    assert_eq!(across.levels.name(), "datasets+pretrain_seeds+finetune_seeds");
    let expected = (var_pop(&[0.0, 0.2, 0.7]) / 3.0).sqrt();
    assert!((sd_star(&across.star) / expected - 1.0).abs() < 0.03);
    // the p-value of a difference no resample crosses: 2 / (B + 1)
    assert_eq!(within.p_value(), 2.0 / (reps as f64 + 1.0));
    // pseudo-replication: 4 pretraining runs × 5 seeds with a strong pretraining effect,
    // against the same 20 runs pooled as one pretraining run
    let mut rng = seeded(11, 4);
    let design: Nested = pretrain
        .iter()
        .map(|&p| (0..5).map(|_| p + 0.02 * encoderlab::rng::unit(&mut rng)).collect())
        .collect();
    let pooled: Nested = vec![design.concat()];
    let width = |x: Nested, k: u64| {
        let b = hierarchical_bootstrap_diff(&[x], &zero, false, reps, &mut seeded(11, k));
        let (lo, hi) =
            ci_from_bootstrap_distribution(b.estimate, &b.star, &b.jackknife, BootstrapMethod::Percentile, 0.95);
        assert!(lo <= b.estimate && b.estimate <= hi);
        hi - lo
    };
    let (w_design, w_pooled) = (width(design, 5), width(pooled, 6));
    assert!(w_design > 1.8 * w_pooled, "design {w_design} vs pooled {w_pooled}");
}

/// The hierarchical bootstrap against a Python implementation of the same design (issue 19,
/// item 3), within Monte-Carlo tolerance: design A resamples datasets (or not), pretraining
/// seeds and fine-tuning seeds; design B resamples the test instances of one dataset (one
/// resample shared by every run), then the seeds. The reference, with 100,000 replicates:
/// ```python
/// import numpy as np
/// rng = np.random.default_rng(0)
/// def resample(n):
///     P = len(n); tot = 0.0
///     for p in rng.integers(0, P, P):
///         runs = n[p]; F = len(runs)
///         tot += np.mean([runs[i] for i in rng.integers(0, F, F)])
///     return tot / P
/// x = [[[0.1*d + 0.05*p + 0.01*((7*f + 3*p + d) % 5) for f in range(4)] for p in range(3)] for d in range(3)]
/// y = [[[0.08*d + 0.03*p + 0.012*((5*f + p + 2*d) % 7) for f in range(5)] for p in range(2)] for d in range(3)]
/// for datasets in (False, True):
///     B = 100000; star = np.empty(B)
///     for b in range(B):
///         ds = rng.integers(0, 3, 3) if datasets else range(3)
///         star[b] = np.mean([resample(x[d]) - resample(y[d]) for d in ds])
///     print("A", datasets, star.std(), np.quantile(star, [0.025, 0.975]))
/// n = 40
/// def inst(k): return np.array([1.0 if ((i * (k + 3) + k) % 7) < 4 + (k % 2) else 0.0 for i in range(n)])
/// xi = [[inst(0), inst(1)], [inst(2), inst(3)]]
/// yi = [[inst(4), inst(5), inst(6)]]
/// B = 100000; star = np.empty(B)
/// for b in range(B):
///     w = np.bincount(rng.integers(0, n, n), minlength=n)
///     xs = [[(r * w).sum() / n for r in p] for p in xi]
///     ys = [[(r * w).sum() / n for r in p] for p in yi]
///     star[b] = resample(xs) - resample(ys)
/// print("B", star.std(), np.quantile(star, [0.025, 0.975]))
/// # A False 0.0165105539431093 [0.00761111 0.07195556]
/// # A True 0.018838408599702507 [0.00345556 0.07692222]
/// # B 0.19638834241382205 [-0.1375   0.63125]
/// ```
#[test]
fn hierarchical_bootstrap_matches_python_same_design() {
    use encoderlab::rng::seeded;
    use encoderlab::stats::describe::{mean, quantile};
    use encoderlab::stats::hierarchical::{
        hierarchical_bootstrap_diff, hierarchical_bootstrap_pairs, InstanceLevel, Nested, NestedIx, Stratum,
    };
    use encoderlab::stats::instances::InstanceValues;
    let sd = |s: &[f64]| {
        let m = mean(s);
        (s.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / s.len() as f64).sqrt()
    };
    let reps = 20_000;
    let x: Vec<Nested> = (0..3)
        .map(|d| {
            (0..3)
                .map(|p| {
                    (0..4)
                        .map(|f| 0.1 * d as f64 + 0.05 * p as f64 + 0.01 * ((7 * f + 3 * p + d) % 5) as f64)
                        .collect()
                })
                .collect()
        })
        .collect();
    let y: Vec<Nested> = (0..3)
        .map(|d| {
            (0..2)
                .map(|p| {
                    (0..5)
                        .map(|f| 0.08 * d as f64 + 0.03 * p as f64 + 0.012 * ((5 * f + p + 2 * d) % 7) as f64)
                        .collect()
                })
                .collect()
        })
        .collect();
    for (datasets, want_sd, lo, hi) in [
        (false, 0.0165105539431093, 0.00761111, 0.07195556),
        (true, 0.018838408599702507, 0.00345556, 0.07692222),
    ] {
        let b = hierarchical_bootstrap_diff(&x, &y, datasets, reps, &mut seeded(3, u64::from(datasets)));
        assert!(
            (sd(&b.star) / want_sd - 1.0).abs() < 0.03,
            "{datasets}: sd {}",
            sd(&b.star)
        );
        let mut sorted = b.star.clone();
        sorted.sort_by(f64::total_cmp);
        let (ql, qh) = (quantile(&sorted, 0.025), quantile(&sorted, 0.975));
        assert!(
            (ql - lo).abs() < 0.002 && (qh - hi).abs() < 0.002,
            "{datasets}: {ql} {qh}"
        );
    }
    // design B: instances
    let n = 40;
    let inst = |k: usize| -> InstanceValues {
        InstanceValues::Mean(
            (0..n)
                .map(|i| if (i * (k + 3) + k) % 7 < 4 + (k % 2) { 1.0 } else { 0.0 })
                .collect(),
        )
    };
    let runs: Vec<InstanceValues> = (0..7).map(inst).collect();
    let stratum = Stratum {
        scores: runs.iter().map(InstanceValues::score).collect(),
        instances: Some(InstanceLevel {
            runs: runs.iter().map(Some).collect(),
            scale: 1.0,
            shift: 0.0,
        }),
    };
    let xs: NestedIx = vec![vec![0, 1], vec![2, 3]];
    let ys: NestedIx = vec![vec![4, 5, 6]];
    let b = hierarchical_bootstrap_pairs(
        &[stratum],
        &[vec![xs], vec![ys]],
        &[(0, 1)],
        false,
        reps,
        &mut seeded(3, 2),
    );
    let b = &b[0];
    assert_eq!(b.levels.name(), "pretrain_seeds+finetune_seeds+instances");
    assert!((b.estimate - 0.225).abs() < 1e-12);
    assert!(
        (sd(&b.star) / 0.19638834241382205 - 1.0).abs() < 0.03,
        "sd {}",
        sd(&b.star)
    );
    let mut sorted = b.star.clone();
    sorted.sort_by(f64::total_cmp);
    let (ql, qh) = (quantile(&sorted, 0.025), quantile(&sorted, 0.975));
    assert!((ql + 0.1375).abs() < 0.02 && (qh - 0.63125).abs() < 0.02, "{ql} {qh}");
}

/// A corpus F1 on a resample of the test set is the F1 of the resample's summed counts (never
/// the mean of per-sentence F1s), and equals the F1 of the instances listed with repetition.
#[test]
fn instance_counts_recompute_corpus_f1() {
    use encoderlab::eval::Counts;
    use encoderlab::stats::instances::InstanceValues;
    let c = |tp, predicted, gold| Counts { tp, predicted, gold };
    let counts = vec![c(2, 3, 2), c(0, 1, 0), c(1, 1, 4), c(0, 0, 0)];
    let v = InstanceValues::Counts(counts.clone());
    // 2·3 / (5 + 6)
    assert!((v.score() - 6.0 / 11.0).abs() < 1e-15);
    let weights = [0.0, 2.0, 1.0, 1.0];
    let expanded: Vec<Counts> = counts
        .iter()
        .zip(weights)
        .flat_map(|(c, w)| std::iter::repeat_n(*c, w as usize))
        .collect();
    assert_eq!(v.weighted(&weights), InstanceValues::Counts(expanded).score());
    // 2·1 / (3 + 4), not the mean of per-instance F1s
    assert!((v.weighted(&weights) - 2.0 / 7.0).abs() < 1e-15);
    let mean = InstanceValues::Mean(vec![1.0, 0.0, 1.0, 1.0]);
    assert_eq!(mean.weighted(&[2.0, 2.0, 0.0, 0.0]), 0.5);
}

/// The noncentral t and the paired t-test's power against scipy and statsmodels (issue 19,
/// item 7):
/// ```python
/// from scipy import stats
/// from statsmodels.stats.power import TTestPower
/// for t, df, nc in [(1.5,7,0.8),(-0.5,3,1.2),(2.3,20,3.0),(0.0,5,-1.0),(-2.0,9,-3.5),(4.0,2,6.0)]:
///     print(stats.nct.cdf(t, df, nc))
/// P = TTestPower()
/// for d, n in [(0.5,10),(1.0,5),(0.3,40),(1.2,3)]:
///     print(P.power(effect_size=d, nobs=n, alpha=0.05, alternative='two-sided'))
/// # solve_power's own root finder stops at ~1e-6; the same roots to 1e-12 with brentq:
/// from scipy.optimize import brentq
/// for n, hi in [(5, 3), (8, 2.5), (20, 1.5)]:
///     print(brentq(lambda d: P.power(effect_size=d, nobs=n, alpha=0.05) - 0.8, 0.01, hi, xtol=1e-14))
/// for d, hi in [(0.5, 100), (1.0, 100), (1.5, 20)]:
///     print(brentq(lambda n: P.power(effect_size=d, nobs=n, alpha=0.05) - 0.8, 2, hi, xtol=1e-12))
/// # (P.solve_power(nobs=8, power=0.8) gives 1.156035271959959, within 5e-7)
/// ```
#[test]
fn power_matches_statsmodels() {
    use encoderlab::stats::power::{minimum_detectable_effect, nct_cdf, ttest_power, units_needed};
    let close = |a: f64, b: f64, tol: f64| assert!((a - b).abs() <= tol * b.abs().max(1e-300), "{a} vs {b}");
    for (t, df, nc, want) in [
        (1.5, 7.0, 0.8, 0.7261200965734327),
        (-0.5, 3.0, 1.2, 0.05143667518874677),
        (2.3, 20.0, 3.0, 0.2464303738027192),
        (0.0, 5.0, -1.0, 0.8413447460685429),
        (-2.0, 9.0, -3.5, 0.920273997911732),
        (4.0, 2.0, 6.0, 0.1275953286835506),
    ] {
        close(nct_cdf(t, df, nc), want, 1e-9);
    }
    for (d, n, want) in [
        (0.5, 10.0, 0.2931756065140767),
        (1.0, 5.0, 0.4013899173717948),
        (0.3, 40.0, 0.4565221127061356),
        (1.2, 3.0, 0.230406860766337),
    ] {
        close(ttest_power(d, n, 0.05), want, 1e-9);
    }
    for (n, want) in [
        (5.0, 1.6819969659555554),
        (8.0, 1.156034677994734),
        (20.0, 0.6604416546230266),
    ] {
        close(minimum_detectable_effect(n, 0.8, 0.05), want, 1e-9);
    }
    for (d, want) in [
        (0.5, 33.367128953330834),
        (1.0, 9.93784993782441),
        (1.5, 5.686142097794313),
    ] {
        close(units_needed(d, 0.8, 0.05), want, 1e-9);
    }
    assert_eq!(units_needed(0.0, 0.8, 0.05), f64::INFINITY);
    assert!(minimum_detectable_effect(1.0, 0.8, 0.05).is_nan());
}

/// Variance components of a balanced nested design (2 learning rates × 3 pretraining seeds ×
/// 4 fine-tuning seeds) against the method-of-moments formulas in numpy, and the first-order
/// test-sampling variances (issue 19, item 6):
/// ```python
/// import numpy as np
/// x = np.array([[[0.50 + 0.02*p + 0.01*((3*f + p) % 4) for f in range(4)] for p in range(3)],
///               [[0.60 + 0.03*p + 0.012*((5*f + 2*p) % 4) for f in range(4)] for p in range(3)]])
/// L, P, F = x.shape
/// within = ((x - x.mean(axis=2, keepdims=True))**2).sum() / (L*P*(F-1))
/// pm = x.mean(axis=2)
/// var_p = max(0.0, np.mean([np.var(pm[l], ddof=1) for l in range(L)]) - within / F)
/// var_lr = max(0.0, np.var(pm.mean(axis=1), ddof=1) - var_p / P - within / (P*F))
/// print(var_lr, var_p, within)   # 0.0061678333333333325 0.0005991666666666661 0.00020333333333333369
/// v = np.array([1,0,1,1,0,1,1,1.0]); print(v.var(ddof=1)/len(v))   # 0.026785714285714284
/// tp = np.array([2,0,1,3,1.0]); pr = np.array([3,1,1,3,2.0]); go = np.array([2,0,4,3,1.0])
/// a, b = 2*tp, pr+go; n = len(a); Fh = a.sum()/b.sum()
/// print(n/(n-1)*((a-Fh*b)**2).sum()/b.sum()**2)   # 0.019500000000000007
/// ```
#[test]
fn variance_components_match_numpy() {
    use encoderlab::eval::Counts;
    use encoderlab::stats::instances::InstanceValues;
    use encoderlab::stats::report::variance_components;
    let cells: Vec<Vec<Vec<f64>>> = (0..2)
        .map(|l| {
            (0..3)
                .map(|p| {
                    (0..4)
                        .map(|f| {
                            if l == 0 {
                                0.50 + 0.02 * p as f64 + 0.01 * ((3 * f + p) % 4) as f64
                            } else {
                                0.60 + 0.03 * p as f64 + 0.012 * ((5 * f + 2 * p) % 4) as f64
                            }
                        })
                        .collect()
                })
                .collect()
        })
        .collect();
    let c = variance_components(&cells, &[0.01, 0.03]);
    let close = |a: f64, b: f64| assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    close(c.lr, 0.0061678333333333325);
    close(c.pretrain_seed, 0.0005991666666666661);
    close(c.finetune_seed, 0.00020333333333333369);
    close(c.test_sampling, 0.02);
    close(c.shares().iter().sum::<f64>(), 1.0);
    // one pretraining seed per learning rate: that component is not estimable
    let single: Vec<Vec<Vec<f64>>> = cells.iter().map(|l| vec![l[0].clone()]).collect();
    assert!(variance_components(&single, &[]).pretrain_seed.is_nan());
    let mean = InstanceValues::Mean(vec![1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0]);
    close(mean.sampling_variance(), 0.026785714285714284);
    let c = |tp, predicted, gold| Counts { tp, predicted, gold };
    let f1 = InstanceValues::Counts(vec![c(2, 3, 2), c(0, 1, 0), c(1, 1, 4), c(3, 3, 3), c(1, 2, 1)]);
    close(f1.sampling_variance(), 0.019500000000000007);
}

/// A system's aggregates under the hierarchical bootstrap (issue 19, item 3, "of any
/// aggregate"): the four aggregates on known data (scipy `trim_mean(x, 0.25)` for the IQM of
/// the pooled runs: `trim_mean([0.1, 0.2, 0.4, 0.9, 0.8, 0.7], 0.25)` = 0.525), a level without
/// variance adds none, the pretraining level its textbook variance, and pseudo-replication
/// (every run its own pretraining run) narrows the interval.
#[test]
fn hierarchical_aggregates_known_answers() {
    use encoderlab::rng::seeded;
    use encoderlab::stats::describe::mean;
    use encoderlab::stats::hierarchical::{NestedIx, Stratum};
    use encoderlab::stats::hierarchical_aggregate::{aggregates, hierarchical_bootstrap_aggregates};
    let a = aggregates(&[vec![vec![0.1, 0.2], vec![0.4]], vec![vec![0.9, 0.8, 0.7]]]);
    let want = [0.5375, 0.5375, 0.525, 1.0 - 3.1 / 6.0];
    for (got, want) in a.iter().zip(want) {
        assert!((got - want).abs() < 1e-12, "{a:?}");
    }
    let sd = |s: &[f64]| {
        let m = mean(s);
        (s.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / s.len() as f64).sqrt()
    };
    // one task: 4 pretraining seeds (0.1, 0.4, 0.5, 0.9), 5 identical fine-tuning runs each
    let pretrain = [0.1, 0.4, 0.5, 0.9];
    let scores: Vec<f64> = pretrain.iter().flat_map(|&v| [v; 5]).collect();
    let design: NestedIx = (0..4).map(|p| (0..5).map(|f| (5 * p + f) as u32).collect()).collect();
    let pooled: NestedIx = (0..20).map(|r| vec![r as u32]).collect();
    let stratum = Stratum {
        scores,
        instances: None,
    };
    let b = hierarchical_bootstrap_aggregates(
        std::slice::from_ref(&stratum),
        &[vec![design], vec![pooled]],
        false,
        20_000,
        &mut seeded(5, 0),
    );
    assert_eq!(b[0].levels.name(), "pretrain_seeds+finetune_seeds");
    let var_pop = {
        let m = mean(&pretrain);
        pretrain.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / 4.0
    };
    // the mean: var_pop / 4 over the pretraining seeds, nothing from the identical runs
    assert!((sd(&b[0].star[0]) / (var_pop / 4.0).sqrt() - 1.0).abs() < 0.03);
    // pooled: var_pop / 20, as if 20 pretraining runs
    assert!((sd(&b[1].star[0]) / (var_pop / 20.0).sqrt() - 1.0).abs() < 0.03);
    for (x, y) in b[0].estimates.iter().zip(b[1].estimates) {
        assert!((x - y).abs() < 1e-12);
    }
    // a system whose runs are all equal: every resample is its estimate
    let flat = Stratum {
        scores: vec![0.3; 6],
        instances: None,
    };
    let c = hierarchical_bootstrap_aggregates(
        &[flat],
        &[vec![vec![vec![0, 1, 2], vec![3, 4, 5]]]],
        false,
        500,
        &mut seeded(5, 1),
    );
    for a in 0..4 {
        assert!(c[0].star[a].iter().all(|&v| (v - c[0].estimates[a]).abs() < 1e-12));
    }
}
