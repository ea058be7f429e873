//! The CPU kernels under the model: fused ops with their own backward (attention, a whole block,
//! the MLP, RMSNorm, SwiGLU, softmax and rotary embeddings), the strided f32 products they
//! multiply with, and vectorised math. The architecture (`model/`) calls them through candle's
//! custom ops when its input is contiguous f32 on the CPU, and composes candle's ops otherwise;
//! they know nothing of the architecture's modules.

mod attention_kernel;
pub mod cpu;
pub mod device_fused;
pub mod flash;
pub mod fused;
pub mod fused_attention;
pub mod fused_block;
pub mod fused_linear;
pub mod fused_mlp;
pub mod fused_norm;
pub mod fused_swiglu;
pub mod gemm;
pub(crate) mod precomputed;
pub mod vmath;
