//! Vectorised exp for the fused CPU kernels: libm's `expf` is scalar and was a tenth of a
//! small-model training step (softmax over the vocabulary and over attention rows, SwiGLU's
//! sigmoid). Cephes' `expf` polynomial (relative error below 2e-7, NaN propagated, exactly 0
//! below −87.3), with an AVX2 form chosen at run time that performs the scalar form's IEEE
//! operations lane by lane in the same order, so results do not depend on the CPU. Sums keep
//! eight partial sums combined in a fixed order, on both paths.

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
    #[cfg(target_arch = "x86_64")]
    if avx2::available() {
        // SAFETY: the CPU has AVX2.
        return unsafe { avx2::exp_shift_sum(row, shift) };
    }
    exp_shift_sum_scalar(row, shift)
}

/// silu(g) · u, elementwise.
pub fn swiglu(out: &mut [f32], g: &[f32], u: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    if avx2::available() {
        // SAFETY: the CPU has AVX2.
        return unsafe { avx2::swiglu(out, g, u) };
    }
    for ((o, g), u) in out.iter_mut().zip(g).zip(u) {
        *o = g * sigmoid(*g) * u;
    }
}

/// The gradients of silu(g) · u: dg = dy · u · σ(g)(1 + g(1 − σ(g))), du = dy · g σ(g).
pub fn swiglu_grad(dg: &mut [f32], du: &mut [f32], g: &[f32], u: &[f32], dy: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    if avx2::available() {
        // SAFETY: the CPU has AVX2.
        return unsafe { avx2::swiglu_grad(dg, du, g, u, dy) };
    }
    swiglu_grad_scalar(dg, du, g, u, dy)
}

fn swiglu_grad_scalar(dg: &mut [f32], du: &mut [f32], g: &[f32], u: &[f32], dy: &[f32]) {
    for ((((dg, du), g), u), dy) in dg.iter_mut().zip(du.iter_mut()).zip(g).zip(u).zip(dy) {
        let s = sigmoid(*g);
        *dg = dy * u * s * (1.0 + g * (1.0 - s));
        *du = dy * g * s;
    }
}

/// The AVX2 forms: the scalar code's operations lane by lane, in the same order (no fused
/// multiply-add), so both give the same bits.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::*;

    pub fn available() -> bool {
        std::arch::is_x86_feature_detected!("avx2")
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn splat(v: f32) -> __m256 {
        _mm256_set1_ps(v)
    }

    /// [`super::exp`] on eight lanes.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn exp8(x: __m256) -> __m256 {
        let below = _mm256_cmp_ps::<_CMP_LT_OQ>(x, splat(LO));
        let above = _mm256_cmp_ps::<_CMP_GT_OQ>(x, splat(HI));
        let xc = _mm256_blendv_ps(_mm256_blendv_ps(x, splat(HI), above), splat(LO), below);
        let t = _mm256_add_ps(_mm256_mul_ps(xc, splat(LOG2E)), splat(ROUND));
        let n = _mm256_sub_ps(t, splat(ROUND));
        let r = _mm256_sub_ps(
            _mm256_sub_ps(xc, _mm256_mul_ps(n, splat(LN2_HI))),
            _mm256_mul_ps(n, splat(LN2_LO)),
        );
        let z = _mm256_mul_ps(r, r);
        let mut p = splat(P[0]);
        for c in &P[1..] {
            p = _mm256_add_ps(_mm256_mul_ps(p, r), splat(*c));
        }
        let p = _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(p, z), r), splat(1.0));
        let k = _mm256_sub_epi32(_mm256_castps_si256(t), _mm256_set1_epi32(ROUND.to_bits() as i32));
        let scale = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(k, _mm256_set1_epi32(127))));
        _mm256_blendv_ps(_mm256_mul_ps(p, scale), _mm256_setzero_ps(), below)
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn sigmoid8(x: __m256) -> __m256 {
        let e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), x));
        _mm256_div_ps(splat(1.0), _mm256_add_ps(splat(1.0), e))
    }

    #[target_feature(enable = "avx2")]
    pub unsafe fn exp_shift_sum(row: &mut [f32], shift: f32) -> f32 {
        let mut acc = _mm256_setzero_ps();
        let mut chunks = row.chunks_exact_mut(8);
        for c in &mut chunks {
            let e = exp8(_mm256_sub_ps(_mm256_loadu_ps(c.as_ptr()), splat(shift)));
            _mm256_storeu_ps(c.as_mut_ptr(), e);
            acc = _mm256_add_ps(acc, e);
        }
        let mut lanes = [0f32; 8];
        _mm256_storeu_ps(lanes.as_mut_ptr(), acc);
        for (v, a) in chunks.into_remainder().iter_mut().zip(lanes.iter_mut()) {
            *v = exp(*v - shift);
            *a += *v;
        }
        lanes_sum(&lanes)
    }

    #[target_feature(enable = "avx2")]
    pub unsafe fn swiglu(out: &mut [f32], g: &[f32], u: &[f32]) {
        let n = out.len().min(g.len()).min(u.len());
        let whole = n - n % 8;
        for i in (0..whole).step_by(8) {
            let gv = _mm256_loadu_ps(g.as_ptr().add(i));
            let uv = _mm256_loadu_ps(u.as_ptr().add(i));
            let y = _mm256_mul_ps(_mm256_mul_ps(gv, sigmoid8(gv)), uv);
            _mm256_storeu_ps(out.as_mut_ptr().add(i), y);
        }
        for i in whole..n {
            out[i] = g[i] * sigmoid(g[i]) * u[i];
        }
    }

    #[target_feature(enable = "avx2")]
    pub unsafe fn swiglu_grad(dg: &mut [f32], du: &mut [f32], g: &[f32], u: &[f32], dy: &[f32]) {
        let n = dg.len().min(du.len()).min(g.len()).min(u.len()).min(dy.len());
        let whole = n - n % 8;
        let one = splat(1.0);
        for i in (0..whole).step_by(8) {
            let gv = _mm256_loadu_ps(g.as_ptr().add(i));
            let uv = _mm256_loadu_ps(u.as_ptr().add(i));
            let dyv = _mm256_loadu_ps(dy.as_ptr().add(i));
            let s = sigmoid8(gv);
            let slope = _mm256_add_ps(one, _mm256_mul_ps(gv, _mm256_sub_ps(one, s)));
            let dgv = _mm256_mul_ps(_mm256_mul_ps(_mm256_mul_ps(dyv, uv), s), slope);
            let duv = _mm256_mul_ps(_mm256_mul_ps(dyv, gv), s);
            _mm256_storeu_ps(dg.as_mut_ptr().add(i), dgv);
            _mm256_storeu_ps(du.as_mut_ptr().add(i), duv);
        }
        super::swiglu_grad_scalar(
            &mut dg[whole..n],
            &mut du[whole..n],
            &g[whole..n],
            &u[whole..n],
            &dy[whole..n],
        );
    }

    #[target_feature(enable = "avx2")]
    pub unsafe fn max(row: &[f32]) -> f32 {
        let mut acc = splat(f32::NEG_INFINITY);
        let mut chunks = row.chunks_exact(8);
        for c in &mut chunks {
            // maxps(v, a) = v > a ? v : a, NaN in v ignored as the scalar form does
            acc = _mm256_max_ps(_mm256_loadu_ps(c.as_ptr()), acc);
        }
        let mut lanes = [0f32; 8];
        _mm256_storeu_ps(lanes.as_mut_ptr(), acc);
        for (v, a) in chunks.remainder().iter().zip(lanes.iter_mut()) {
            *a = if *v > *a { *v } else { *a };
        }
        lanes.iter().copied().fold(f32::NEG_INFINITY, f32::max)
    }
}

/// The largest value of `row` (NaN ignored, as `f32::max` does; −∞ when empty).
pub fn max(row: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if avx2::available() {
        // SAFETY: the CPU has AVX2.
        return unsafe { avx2::max(row) };
    }
    let mut acc = [f32::NEG_INFINITY; 8];
    for (i, v) in row.iter().enumerate() {
        let a = &mut acc[i % 8];
        *a = if *v > *a { *v } else { *a };
    }
    acc.iter().copied().fold(f32::NEG_INFINITY, f32::max)
}

#[inline(always)]
fn scale_body(row: &mut [f32], k: f32) {
    row.iter_mut().for_each(|v| *v *= k);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn scale_avx2(row: &mut [f32], k: f32) {
    scale_body(row, k)
}

/// `row[i] *= k`.
pub fn scale(row: &mut [f32], k: f32) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has the features the function is compiled for.
        return unsafe { scale_avx2(row, k) };
    }
    scale_body(row, k)
}

/// Softmax of `row` in place, max-shifted; returns (max, sum of the shifted exponentials).
pub fn softmax_in_place(row: &mut [f32]) -> (f32, f32) {
    let m = max(row);
    let sum = exp_shift_sum(row, m);
    scale(row, 1.0 / sum);
    (m, sum)
}
