//! Row-major f32 products on the CPU through the `gemm` crate (the kernel candle's own CPU
//! matmul calls), with explicit strides, so that fused ops multiply transposed views without
//! copying them.

/// A strided operand: (data, row stride, column stride).
pub type Operand<'a> = (&'a [f32], usize, usize);

/// Whether a rows × cols operand with these strides lies inside its data.
fn fits((data, rs, cs): Operand, rows: usize, cols: usize) -> bool {
    rows == 0 || cols == 0 || (rows - 1) * rs + (cols - 1) * cs < data.len()
}

/// One product lhs (m×k) · rhs (k×n).
#[derive(Clone, Copy)]
pub struct Product<'a> {
    /// Rows of the result and of `lhs`.
    pub m: usize,
    /// Columns of the result and of `rhs`.
    pub n: usize,
    /// The summed dimension: columns of `lhs`, rows of `rhs`.
    pub k: usize,
    /// The left factor, m×k.
    pub lhs: Operand<'a>,
    /// The right factor, k×n.
    pub rhs: Operand<'a>,
}

/// A new buffer holding `products` end to end, each m×n row-major, computed on all threads;
/// an error when an operand does not hold the elements its shape and strides address. The
/// buffer is not zeroed first (every value is written by its product), which saves a serial
/// pass over memory as large as the result.
pub(crate) fn par_matmuls(products: &[Product]) -> candle_core::Result<Vec<f32>> {
    for p in products {
        if !fits(p.lhs, p.m, p.k) || !fits(p.rhs, p.k, p.n) {
            candle_core::bail!(
                "matmul ({}×{}) · ({}×{}): an operand is smaller than its shape",
                p.m,
                p.k,
                p.k,
                p.n
            );
        }
    }
    let total: usize = products.iter().map(|p| p.m * p.n).sum();
    let threads = candle_core::utils::get_num_threads();
    let parallelism = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    let mut out: Vec<f32> = Vec::with_capacity(total);
    let mut offset = 0;
    for p in products {
        let dst = &mut out.spare_capacity_mut()[offset..offset + p.m * p.n];
        offset += p.m * p.n;
        if p.m == 0 || p.n == 0 {
            continue;
        }
        if p.k == 0 {
            dst.fill(std::mem::MaybeUninit::new(0.0));
            continue;
        }
        // SAFETY: the operands were checked above: every element their shapes and strides
        // address lies inside their slices; dst is m·n exclusively borrowed values, and gemm
        // with read_dst = false only writes them.
        unsafe {
            gemm::gemm(
                p.m,
                p.n,
                p.k,
                dst.as_mut_ptr().cast::<f32>(),
                1,
                p.n as isize,
                false,
                p.lhs.0.as_ptr(),
                p.lhs.2 as isize,
                p.lhs.1 as isize,
                p.rhs.0.as_ptr(),
                p.rhs.2 as isize,
                p.rhs.1 as isize,
                1.0,
                1.0,
                false,
                false,
                false,
                parallelism,
            )
        }
    }
    // SAFETY: every one of the `total` values was written above (a product per m·n range, an
    // empty range for m or n = 0, zeros for k = 0).
    unsafe { out.set_len(total) };
    Ok(out)
}
