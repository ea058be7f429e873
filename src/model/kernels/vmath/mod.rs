//! Vectorised exp for the fused CPU kernels: libm's `expf` is scalar and was a tenth of a
//! small-model training step (softmax over the vocabulary and over attention rows, SwiGLU's
//! sigmoid). Cephes' `expf` polynomial (relative error below 2e-7, NaN propagated, exactly 0
//! below −87.3), with AVX2 and AVX-512 forms chosen at run time (`isa()`) that perform the
//! scalar form's IEEE operations lane by lane in the same order (no fused multiply-add), so
//! results do not depend on the CPU. Sums keep eight partial sums combined in a fixed order on
//! every path: the AVX-512 form adds each 16-lane chunk's halves into them in turn, as the
//! 8-lane form adds two consecutive chunks. So the three paths give the same bits (tested on
//! every path the CPU has); `ENCODERLAB_SIMD=scalar|avx2` chooses a narrower one, for
//! comparisons and benchmarks.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
mod isa;

pub(crate) use isa::isa;
pub use isa::{cpu_summary, isa_summary, wide, Isa};

const LOG2E: f32 = std::f32::consts::LOG2_E;
/// 1.5·2²³: adding it rounds to the nearest integer.
const ROUND: f32 = 12_582_912.0;
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
const LO: f32 = -87.336_54;
const HI: f32 = 88.0;
/// Cephes' coefficients of (e^r − 1 − r) / r², highest degree first.
const P: [f32; 6] = [
    1.987_569_1e-4,
    1.398_199_9e-3,
    8.333_452e-3,
    4.166_579_6e-2,
    1.666_666_5e-1,
    0.5,
];

/// e^x.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let xc = x.clamp(LO, HI); // NaN stays NaN
    let t = xc * LOG2E + ROUND;
    let n = t - ROUND;
    let r = xc - n * LN2_HI - n * LN2_LO;
    let z = r * r;
    let mut p = P[0];
    for c in &P[1..] {
        p = p * r + c;
    }
    let p = p * z + r + 1.0;
    let k = t.to_bits().wrapping_sub(ROUND.to_bits()) as i32; // n as an integer
    let scale = f32::from_bits(((k + 127) << 23) as u32);
    if x < LO {
        0.0
    } else {
        p * scale
    }
}

/// 1 / (1 + e^−x).
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// The sum of eight lanes in a fixed order.
fn lanes_sum(acc: &[f32; 8]) -> f32 {
    ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))
}

fn exp_shift_sum_scalar(row: &mut [f32], shift: f32) -> f32 {
    let mut acc = [0f32; 8];
    for (i, v) in row.iter_mut().enumerate() {
        *v = exp(*v - shift);
        acc[i % 8] += *v;
    }
    lanes_sum(&acc)
}

/// `row[i] = e^(row[i] − shift)`; returns their sum.
pub fn exp_shift_sum(row: &mut [f32], shift: f32) -> f32 {
    exp_shift_sum_on(isa(), row, shift)
}

/// [`exp_shift_sum`] on the path `isa` (one this CPU has: [`Isa::available`]).
pub(crate) fn exp_shift_sum_on(isa: Isa, row: &mut [f32], shift: f32) -> f32 {
    match isa {
        // SAFETY: `isa` is one the CPU has.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { avx512::exp_shift_sum(row, shift) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { avx2::exp_shift_sum(row, shift) },
        _ => exp_shift_sum_scalar(row, shift),
    }
}

/// silu(g) · u, elementwise.
pub fn swiglu(out: &mut [f32], g: &[f32], u: &[f32]) {
    swiglu_on(isa(), out, g, u)
}

/// [`swiglu`] on the path `isa` (one this CPU has).
pub(crate) fn swiglu_on(isa: Isa, out: &mut [f32], g: &[f32], u: &[f32]) {
    match isa {
        // SAFETY: `isa` is one the CPU has.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { avx512::swiglu(out, g, u) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { avx2::swiglu(out, g, u) },
        _ => swiglu_scalar(out, g, u),
    }
}

fn swiglu_scalar(out: &mut [f32], g: &[f32], u: &[f32]) {
    for ((o, g), u) in out.iter_mut().zip(g).zip(u) {
        *o = g * sigmoid(*g) * u;
    }
}

/// The gradients of silu(g) · u: dg = dy · u · σ(g)(1 + g(1 − σ(g))), du = dy · g σ(g).
pub(crate) fn swiglu_grad(dg: &mut [f32], du: &mut [f32], g: &[f32], u: &[f32], dy: &[f32]) {
    swiglu_grad_on(isa(), dg, du, g, u, dy)
}

/// [`swiglu_grad`] on the path `isa` (one this CPU has).
pub(crate) fn swiglu_grad_on(isa: Isa, dg: &mut [f32], du: &mut [f32], g: &[f32], u: &[f32], dy: &[f32]) {
    match isa {
        // SAFETY: `isa` is one the CPU has.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { avx512::swiglu_grad(dg, du, g, u, dy) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { avx2::swiglu_grad(dg, du, g, u, dy) },
        _ => swiglu_grad_scalar(dg, du, g, u, dy),
    }
}

fn swiglu_grad_scalar(dg: &mut [f32], du: &mut [f32], g: &[f32], u: &[f32], dy: &[f32]) {
    for ((((dg, du), g), u), dy) in dg.iter_mut().zip(du.iter_mut()).zip(g).zip(u).zip(dy) {
        let s = sigmoid(*g);
        *dg = dy * u * s * (1.0 + g * (1.0 - s));
        *du = dy * g * s;
    }
}

/// The largest value of `row` (NaN ignored, as `f32::max` does; −∞ when empty).
pub fn max(row: &[f32]) -> f32 {
    max_on(isa(), row)
}

/// [`max`] on the path `isa` (one this CPU has).
pub(crate) fn max_on(isa: Isa, row: &[f32]) -> f32 {
    match isa {
        // SAFETY: `isa` is one the CPU has.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { avx512::max(row) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { avx2::max(row) },
        _ => max_scalar(row),
    }
}

fn max_scalar(row: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; 8];
    for (i, v) in row.iter().enumerate() {
        let a = &mut acc[i % 8];
        *a = if *v > *a { *v } else { *a };
    }
    acc.iter().copied().fold(f32::NEG_INFINITY, f32::max)
}

/// `row[i] *= k` (one rounding per element on every path).
pub fn scale(row: &mut [f32], k: f32) {
    wide(
        #[inline(always)]
        || row.iter_mut().for_each(|v| *v *= k),
    )
}

/// Lanes of the fixed-width loops below: whole chunks the compiler turns into one 16-lane (or
/// two 8-lane) operation per line on every head width, where a plain loop over 32 values (a
/// 64-wide head's half) stays scalar.
const LANES: usize = 16;

/// One position of a head rotated by its angles, times `scale`: with `half` = len / 2,
/// `out[j] = scale·(x[j]·cos[j] − sign·x[j+half]·sin[j])` and
/// `out[j+half] = scale·(x[j+half]·cos[j+half] + sign·x[j]·sin[j+half])` (`sign` −1: the inverse
/// rotation). The same bits on every path and in every caller (a scale of 1 changes nothing).
#[inline(always)]
pub(crate) fn rotate_half(out: &mut [f32], x: &[f32], cos: &[f32], sin: &[f32], sign: f32, scale: f32) {
    let half = out.len() / 2;
    let (lo, hi) = out.split_at_mut(half);
    let (x_lo, x_hi) = (&x[..half], &x[half..2 * half]);
    let (c_lo, c_hi) = (&cos[..half], &cos[half..2 * half]);
    let (s_lo, s_hi) = (&sin[..half], &sin[half..2 * half]);
    // a macro, not a closure, so that a span of LANES is a constant the compiler unrolls
    macro_rules! rotate {
        ($from:expr, $n:expr) => {{
            let (from, n) = ($from, $n);
            let (lo, hi) = (&mut lo[from..from + n], &mut hi[from..from + n]);
            let (xl, xh) = (&x_lo[from..from + n], &x_hi[from..from + n]);
            let (cl, ch) = (&c_lo[from..from + n], &c_hi[from..from + n]);
            let (sl, sh) = (&s_lo[from..from + n], &s_hi[from..from + n]);
            for j in 0..n {
                lo[j] = scale * (xl[j] * cl[j] - sign * xh[j] * sl[j]);
                hi[j] = scale * (xh[j] * ch[j] + sign * xl[j] * sh[j]);
            }
        }};
    }
    let whole = half - half % LANES;
    for from in (0..whole).step_by(LANES) {
        rotate!(from, LANES);
    }
    // a half-chunk (a 16-wide head's 8 values), then what is left
    let mut from = whole;
    if half - from >= LANES / 2 {
        rotate!(from, LANES / 2);
        from += LANES / 2;
    }
    rotate!(from, half - from);
}

/// Σ a[i]·b[i], summed in 8 lanes (i mod 8) and then across them: the same bits on every path.
#[inline(always)]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    sum_by_lanes(n, |i| a[i] * b[i])
}

/// Σ term(i) for i < n (f32 or f64), summed in 8 lanes (i mod 8), then across them, then the tail: a
/// reduction the compiler runs 8 lanes wide where a plain sum waits on every addition. The same
/// bits on every path (the order is the code's, not the compiler's).
#[inline(always)]
pub(crate) fn sum_by_lanes<T>(n: usize, term: impl Fn(usize) -> T) -> T
where
    T: Copy + Default + std::ops::Add<Output = T> + std::ops::AddAssign,
{
    let whole = n - n % 8;
    let mut acc = [T::default(); 8];
    for c in (0..whole).step_by(8) {
        for (l, a) in acc.iter_mut().enumerate() {
            *a += term(c + l);
        }
    }
    let mut sum = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for i in whole..n {
        sum += term(i);
    }
    sum
}

/// Softmax of `row` in place, max-shifted; returns (max, sum of the shifted exponentials).
pub(crate) fn softmax_in_place(row: &mut [f32]) -> (f32, f32) {
    let m = max(row);
    let sum = exp_shift_sum(row, m);
    scale(row, 1.0 / sum);
    (m, sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows of every length up to 70 (whole 16- and 8-lane chunks and every remainder) with
    /// ordinary values, values past exp's limits, infinities and NaN.
    fn rows() -> Vec<Vec<f32>> {
        use rand::RngCore;
        let mut rng = crate::rng::Fast::from_state(7);
        let special = [
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            -100.0,
            100.0,
            0.0,
            -0.0,
            -87.5,
            88.5,
        ];
        (0..=70)
            .map(|n| {
                (0..n)
                    .map(|i| {
                        if n > 20 && i % 17 == 3 {
                            special[(i / 17) % special.len()]
                        } else {
                            ((rng.next_u32() >> 8) as f32 / 16_777_216.0 - 0.5) * 40.0
                        }
                    })
                    .collect()
            })
            .collect()
    }

    /// The bits, every NaN as one (a NaN's sign and payload carry nothing).
    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter()
            .map(|x| if x.is_nan() { u32::MAX } else { x.to_bits() })
            .collect()
    }

    #[test]
    fn every_path_gives_the_scalar_bits() {
        let paths = Isa::available();
        assert_eq!(paths[0], Isa::Scalar);
        for isa in &paths[1..] {
            for row in rows() {
                let n = row.len();
                let (mut a, mut b) = (row.clone(), row.clone());
                let (sa, sb) = (
                    exp_shift_sum_on(Isa::Scalar, &mut a, 1.5),
                    exp_shift_sum_on(*isa, &mut b, 1.5),
                );
                assert_eq!(
                    (bits(&a), bits(&[sa])),
                    (bits(&b), bits(&[sb])),
                    "exp_shift_sum, {isa:?}, n = {n}"
                );
                let (ma, mb) = (max_on(Isa::Scalar, &row), max_on(*isa, &row));
                assert!(
                    ma == mb || (ma.is_nan() && mb.is_nan()),
                    "max, {isa:?}, n = {n}: {ma} vs {mb}"
                );
                let u: Vec<f32> = row.iter().rev().copied().collect();
                let (mut oa, mut ob) = (vec![0f32; n], vec![0f32; n]);
                swiglu_on(Isa::Scalar, &mut oa, &row, &u);
                swiglu_on(*isa, &mut ob, &row, &u);
                assert_eq!(bits(&oa), bits(&ob), "swiglu, {isa:?}, n = {n}");
                let dy: Vec<f32> = row.iter().map(|v| v * 0.25 - 1.0).collect();
                let (mut ga, mut ua, mut gb, mut ub) = (vec![0f32; n], vec![0f32; n], vec![0f32; n], vec![0f32; n]);
                swiglu_grad_on(Isa::Scalar, &mut ga, &mut ua, &row, &u, &dy);
                swiglu_grad_on(*isa, &mut gb, &mut ub, &row, &u, &dy);
                assert_eq!(
                    (bits(&ga), bits(&ua)),
                    (bits(&gb), bits(&ub)),
                    "swiglu_grad, {isa:?}, n = {n}"
                );
            }
        }
    }

    #[test]
    fn the_chosen_path_is_one_the_cpu_has() {
        assert!(Isa::available().contains(&isa()));
    }
}
