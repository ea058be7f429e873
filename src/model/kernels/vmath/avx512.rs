//! The AVX-512 forms of [`super`]'s kernels: the scalar code's operations on sixteen lanes, in
//! the same order (no fused multiply-add), so they give the scalar and AVX2 forms' bits. A sum
//! keeps the AVX2 form's eight partial sums: each 16-lane chunk adds its low half, then its high
//! half, into them, as the 8-lane form adds two consecutive chunks; what is left after the
//! 16-lane chunks goes through the AVX2 form's steps.

use std::arch::x86_64::*;

use super::avx2::{exp8, sigmoid8};
use super::*;

#[inline]
#[target_feature(enable = "avx512f")]
fn splat(v: f32) -> __m512 {
    _mm512_set1_ps(v)
}

/// [`super::exp`] on sixteen lanes.
#[inline]
#[target_feature(enable = "avx512f")]
fn exp16(x: __m512) -> __m512 {
    let below = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, splat(LO));
    let above = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(x, splat(HI));
    let xc = _mm512_mask_blend_ps(below, _mm512_mask_blend_ps(above, x, splat(HI)), splat(LO));
    let t = _mm512_add_ps(_mm512_mul_ps(xc, splat(LOG2E)), splat(ROUND));
    let n = _mm512_sub_ps(t, splat(ROUND));
    let r = _mm512_sub_ps(
        _mm512_sub_ps(xc, _mm512_mul_ps(n, splat(LN2_HI))),
        _mm512_mul_ps(n, splat(LN2_LO)),
    );
    let z = _mm512_mul_ps(r, r);
    let mut p = splat(P[0]);
    for c in &P[1..] {
        p = _mm512_add_ps(_mm512_mul_ps(p, r), splat(*c));
    }
    let p = _mm512_add_ps(_mm512_add_ps(_mm512_mul_ps(p, z), r), splat(1.0));
    let k = _mm512_sub_epi32(_mm512_castps_si512(t), _mm512_set1_epi32(ROUND.to_bits() as i32));
    let scale = _mm512_castsi512_ps(_mm512_slli_epi32::<23>(_mm512_add_epi32(k, _mm512_set1_epi32(127))));
    _mm512_mask_blend_ps(below, _mm512_mul_ps(p, scale), _mm512_setzero_ps())
}

#[inline]
#[target_feature(enable = "avx512f")]
fn sigmoid16(x: __m512) -> __m512 {
    let e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), x));
    _mm512_div_ps(splat(1.0), _mm512_add_ps(splat(1.0), e))
}

/// The low and high eight lanes.
#[inline]
#[target_feature(enable = "avx512f,avx2")]
fn halves(v: __m512) -> (__m256, __m256) {
    (
        _mm512_castps512_ps256(v),
        _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(v))),
    )
}

#[target_feature(enable = "avx512f,avx2")]
pub unsafe fn exp_shift_sum(row: &mut [f32], shift: f32) -> f32 {
    let mut acc = _mm256_setzero_ps();
    let mut chunks = row.chunks_exact_mut(16);
    for c in &mut chunks {
        // SAFETY: `c` holds 16 floats.
        let e = exp16(_mm512_sub_ps(unsafe { _mm512_loadu_ps(c.as_ptr()) }, splat(shift)));
        unsafe { _mm512_storeu_ps(c.as_mut_ptr(), e) };
        let (lo, hi) = halves(e);
        acc = _mm256_add_ps(_mm256_add_ps(acc, lo), hi);
    }
    let rest = chunks.into_remainder();
    let mut eights = rest.chunks_exact_mut(8);
    for c in &mut eights {
        // SAFETY: `c` holds 8 floats.
        let e = exp8(_mm256_sub_ps(
            unsafe { _mm256_loadu_ps(c.as_ptr()) },
            _mm256_set1_ps(shift),
        ));
        unsafe { _mm256_storeu_ps(c.as_mut_ptr(), e) };
        acc = _mm256_add_ps(acc, e);
    }
    let mut lanes = [0f32; 8];
    // SAFETY: `lanes` holds 8 floats.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), acc) };
    for (v, a) in eights.into_remainder().iter_mut().zip(lanes.iter_mut()) {
        *v = exp(*v - shift);
        *a += *v;
    }
    lanes_sum(&lanes)
}

#[target_feature(enable = "avx512f,avx2")]
pub unsafe fn swiglu(out: &mut [f32], g: &[f32], u: &[f32]) {
    let n = out.len().min(g.len()).min(u.len());
    let whole = n - n % 16;
    for i in (0..whole).step_by(16) {
        // SAFETY: i + 16 ≤ n, the length of all three.
        unsafe {
            let gv = _mm512_loadu_ps(g.as_ptr().add(i));
            let uv = _mm512_loadu_ps(u.as_ptr().add(i));
            let y = _mm512_mul_ps(_mm512_mul_ps(gv, sigmoid16(gv)), uv);
            _mm512_storeu_ps(out.as_mut_ptr().add(i), y);
        }
    }
    let eights = whole + (n - whole) / 8 * 8;
    for i in (whole..eights).step_by(8) {
        // SAFETY: i + 8 ≤ n.
        unsafe {
            let gv = _mm256_loadu_ps(g.as_ptr().add(i));
            let uv = _mm256_loadu_ps(u.as_ptr().add(i));
            let y = _mm256_mul_ps(_mm256_mul_ps(gv, sigmoid8(gv)), uv);
            _mm256_storeu_ps(out.as_mut_ptr().add(i), y);
        }
    }
    super::swiglu_scalar(&mut out[eights..n], &g[eights..n], &u[eights..n]);
}

#[target_feature(enable = "avx512f,avx2")]
pub unsafe fn swiglu_grad(dg: &mut [f32], du: &mut [f32], g: &[f32], u: &[f32], dy: &[f32]) {
    let n = dg.len().min(du.len()).min(g.len()).min(u.len()).min(dy.len());
    let whole = n - n % 16;
    let one = splat(1.0);
    for i in (0..whole).step_by(16) {
        // SAFETY: i + 16 ≤ n, the length of all five.
        unsafe {
            let gv = _mm512_loadu_ps(g.as_ptr().add(i));
            let uv = _mm512_loadu_ps(u.as_ptr().add(i));
            let dyv = _mm512_loadu_ps(dy.as_ptr().add(i));
            let s = sigmoid16(gv);
            let slope = _mm512_add_ps(one, _mm512_mul_ps(gv, _mm512_sub_ps(one, s)));
            let dgv = _mm512_mul_ps(_mm512_mul_ps(_mm512_mul_ps(dyv, uv), s), slope);
            let duv = _mm512_mul_ps(_mm512_mul_ps(dyv, gv), s);
            _mm512_storeu_ps(dg.as_mut_ptr().add(i), dgv);
            _mm512_storeu_ps(du.as_mut_ptr().add(i), duv);
        }
    }
    // the rest as the AVX2 form does it (elementwise: the same bits whichever form)
    // SAFETY: the CPU has AVX2 (this function's features include it).
    unsafe {
        super::avx2::swiglu_grad(
            &mut dg[whole..n],
            &mut du[whole..n],
            &g[whole..n],
            &u[whole..n],
            &dy[whole..n],
        )
    }
}

#[target_feature(enable = "avx512f,avx2")]
pub unsafe fn max(row: &[f32]) -> f32 {
    let mut acc = splat(f32::NEG_INFINITY);
    let mut chunks = row.chunks_exact(16);
    for c in &mut chunks {
        // maxps(v, a) = v > a ? v : a, NaN in v ignored as the scalar form does
        // SAFETY: `c` holds 16 floats.
        acc = _mm512_max_ps(unsafe { _mm512_loadu_ps(c.as_ptr()) }, acc);
    }
    let mut lanes = [0f32; 16];
    // SAFETY: `lanes` holds 16 floats.
    unsafe { _mm512_storeu_ps(lanes.as_mut_ptr(), acc) };
    for (v, a) in chunks.remainder().iter().zip(lanes.iter_mut()) {
        *a = if *v > *a { *v } else { *a };
    }
    lanes.iter().copied().fold(f32::NEG_INFINITY, f32::max)
}
