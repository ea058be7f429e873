//! The retrieval training loss: in-batch negatives. Query i's positive is document i; every
//! other document of the batch is a negative, except those that are the same document as
//! query i's positive (a duplicate positive), which are masked out rather than counted as
//! negatives. Similarities are dot products of unit vectors divided by a temperature.

use candle_core::{Result, Tensor};

/// Mean cross entropy of each query over the batch's documents.
///
/// # Shapes
/// `queries`, `docs`: (B, H), unit rows; `doc_ids`: B ids (equal ids = the same document).
pub fn in_batch_loss(queries: &Tensor, docs: &Tensor, doc_ids: &[u64], temperature: f64) -> Result<Tensor> {
    let b = queries.dim(0)?;
    if docs.dim(0)? != b || doc_ids.len() != b {
        candle_core::bail!(
            "in_batch_loss: {b} queries, {} documents, {} ids",
            docs.dim(0)?,
            doc_ids.len()
        );
    }
    if temperature.is_nan() || temperature <= 0.0 {
        candle_core::bail!("in_batch_loss: temperature {temperature} must be positive");
    }
    let scores = (queries.matmul(&docs.t()?)? / temperature)?;
    // −∞ (a large negative) where j ≠ i shares i's document
    let mask: Vec<f32> = (0..b * b)
        .map(|k| {
            let (i, j) = (k / b, k % b);
            if i != j && doc_ids[i] == doc_ids[j] {
                -1e9
            } else {
                0.0
            }
        })
        .collect();
    let scores = (scores + Tensor::from_vec(mask, (b, b), queries.device())?.to_dtype(queries.dtype())?)?;
    let (targets, weights) = (
        Tensor::arange(0u32, b as u32, queries.device())?,
        Tensor::ones(b, candle_core::DType::F32, queries.device())?,
    );
    crate::objectives::loss::masked_cross_entropy(
        &scores.to_dtype(candle_core::DType::F32)?.contiguous()?,
        &targets,
        &weights,
    )
}
