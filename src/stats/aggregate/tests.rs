//! The shared-resample bootstraps against the direct ones.

use super::*;
use crate::rng::{below_u32, seeded};

/// The shared-resample bootstraps give the resample-and-compare ones' values bit for bit
/// (same draws, same integer 2U), ties, signed zeros, NaN, unequal sizes and systems with
/// different tasks included; the profile's one set of resamples gives each threshold the
/// values of its own bootstrap from the same stream.
#[test]
fn shared_resample_bootstraps_equal_the_direct_ones() {
    let mut rng = seeded(7, 0);
    let mut column = |n: usize| -> Vec<f64> {
        (0..n)
            .map(|i| match i % 11 {
                0 => 0.5,
                1 => -0.0,
                2 => 0.0,
                3 if n > 5 => f64::NAN,
                _ => (below_u32(&mut rng, 20) as f64) / 20.0,
            })
            .collect()
    };
    let systems = vec![
        (
            vec![0, 1, 2, 3],
            TaskScores {
                columns: vec![column(7), column(1), column(30), column(12)],
            },
        ),
        (
            vec![0, 1, 2, 3],
            TaskScores {
                columns: vec![column(5), column(9), column(30), column(3)],
            },
        ),
        (
            vec![3, 4, 1],
            TaskScores {
                columns: vec![column(6), column(2), column(8)],
            },
        ),
        (
            vec![7],
            TaskScores {
                columns: vec![column(4)],
            },
        ),
    ];
    let pairs = [(0, 1), (1, 0), (0, 2), (2, 1), (0, 3)];
    let reps = 75; // more than two blocks, the last one short
    let streams = || (0..systems.len() as u64).map(|k| seeded(1, k)).collect::<Vec<_>>();
    let shared = poi_bootstrap_pairs(&systems, &pairs, reps, &mut streams());
    let bits = |v: &[f64]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
    for (p, &(i, j)) in pairs.iter().enumerate() {
        let (mut sx, mut sy) = (streams().remove(i), streams().remove(j));
        let (mut fx, mut fy) = (Fast::from_stream(&mut sx), Fast::from_stream(&mut sy));
        let (tx, ty) = (&systems[i].0, &systems[j].0);
        let common: Vec<(usize, usize)> = tx
            .iter()
            .enumerate()
            .filter_map(|(a, t)| ty.iter().position(|u| u == t).map(|b| (a, b)))
            .collect();
        let direct: Vec<f64> = (0..reps)
            .map(|_| {
                let xs = stratified_resample(&systems[i].1, false, &mut fx);
                let ys = stratified_resample(&systems[j].1, false, &mut fy);
                let pick = |s: &TaskScores, second: bool| TaskScores {
                    columns: common
                        .iter()
                        .map(|&(a, b)| s.columns[if second { b } else { a }].clone())
                        .collect(),
                };
                probability_of_improvement(&pick(&xs, false), &pick(&ys, true))
            })
            .collect();
        assert_eq!(bits(&direct), bits(&shared[p]), "pair {i} {j}");
        assert_eq!(direct.iter().all(|v| v.is_nan()), common.is_empty());
    }
    let x = &systems[0].1;
    let taus = [0.0, 0.5, 0.73, f64::NAN];
    let profile = fraction_above_bootstrap(x, &taus, 200, &mut seeded(3, 4));
    for (tau, counted) in taus.iter().zip(&profile) {
        let direct = stratified_bootstrap(x, |s| fraction_above(s, *tau), 200, false, &mut seeded(3, 4));
        assert_eq!(bits(&direct), bits(counted), "tau {tau}");
    }
    assert!(profile[0].iter().any(|&v| v != profile[0][0]));
}

/// Past 2·nₓ·n_y = 2³² the block sums in 64-bit lanes: still the direct value, bit for bit
/// (here from sorted counts, since the direct double loop would take 2·10⁹ comparisons).
#[test]
fn shared_resample_bootstraps_hold_past_32_bits() {
    let n: usize = 46_500; // 2·n² = 4,324,500,000 > u32::MAX
    let mut rng = seeded(8, 0);
    // x almost always above y (a few ties at 0.5), so that 2U comes near 2·n²
    let mut column = |from: f64| -> Vec<f64> {
        (0..n)
            .map(|_| from + f64::from(below_u32(&mut rng, 51)) / 100.0)
            .collect()
    };
    let systems = vec![
        (
            vec![0],
            TaskScores {
                columns: vec![column(0.5)],
            },
        ),
        (
            vec![0],
            TaskScores {
                columns: vec![column(0.0)],
            },
        ),
    ];
    let streams = || vec![seeded(2, 0), seeded(2, 1)];
    let shared = poi_bootstrap_pairs(&systems, &[(0, 1)], 3, &mut streams());
    let (mut sx, mut sy) = (streams().remove(0), streams().remove(1));
    let (mut fx, mut fy) = (Fast::from_stream(&mut sx), Fast::from_stream(&mut sy));
    for value in &shared[0] {
        let x = stratified_resample(&systems[0].1, false, &mut fx).columns.remove(0);
        let mut y = stratified_resample(&systems[1].1, false, &mut fy).columns.remove(0);
        y.sort_by(f64::total_cmp);
        let twice_u: u64 = x
            .iter()
            .map(|&v| (y.partition_point(|&w| w < v) + y.partition_point(|&w| w <= v)) as u64)
            .sum();
        assert!(twice_u > u64::from(u32::MAX), "the case must not fit a 32-bit lane");
        let direct = twice_u as f64 / 2.0 / (n * n) as f64;
        assert_eq!(direct.to_bits(), value.to_bits());
    }
}
