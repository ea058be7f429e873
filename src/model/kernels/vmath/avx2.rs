//! The AVX2 forms of [`super`]'s kernels: the scalar code's operations lane by lane, in the
//! same order (no fused multiply-add), so both give the same bits.

use std::arch::x86_64::*;

use super::*;

#[inline]
#[target_feature(enable = "avx2")]
unsafe fn splat(v: f32) -> __m256 {
    _mm256_set1_ps(v)
}

/// [`super::exp`] on eight lanes.
#[inline]
#[target_feature(enable = "avx2")]
pub(super) unsafe fn exp8(x: __m256) -> __m256 {
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
pub(super) unsafe fn sigmoid8(x: __m256) -> __m256 {
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
