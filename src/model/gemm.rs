//! Row-major f32 products on the CPU through the `gemm` crate (the kernel candle's own CPU
//! matmul calls), with explicit strides, so that fused ops multiply transposed views without
//! copying them.

/// A strided operand: (data, row stride, column stride).
pub type Operand<'a> = (&'a [f32], usize, usize);

/// Whether a rows × cols operand with these strides lies inside its data.
fn fits((data, rs, cs): Operand, rows: usize, cols: usize) -> bool {
    rows == 0 || cols == 0 || (rows - 1) * rs + (cols - 1) * cs < data.len()
}

/// dst (m×n, row-major) = lhs (m×k) · rhs (k×n), on all threads; an error when an operand
/// does not hold the elements its shape and strides address.
pub fn par_matmul(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    lhs: Operand,
    rhs: Operand,
) -> candle_core::Result<()> {
    if dst.len() < m * n || !fits(lhs, m, k) || !fits(rhs, k, n) {
        candle_core::bail!("matmul ({m}×{k}) · ({k}×{n}): an operand is smaller than its shape");
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 {
        dst[..m * n].fill(0.0);
        return Ok(());
    }
    let threads = candle_core::utils::get_num_threads();
    let parallelism = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: checked above: every element the shapes and strides address lies inside its
    // slice; dst is exclusively borrowed.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            false,
            lhs.0.as_ptr(),
            lhs.2 as isize,
            lhs.1 as isize,
            rhs.0.as_ptr(),
            rhs.2 as isize,
            rhs.1 as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        )
    }
    Ok(())
}
