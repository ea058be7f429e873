//! The model: a Llama/EuroBERT-style transformer written for training on candle (every op has
//! a backward), with HF Llama field and weight names so checkpoints interoperate.

pub mod attention;
mod attention_kernel;
pub mod block;
pub mod config;
pub mod cpu;
pub mod fused;
pub mod fused_attention;
pub mod fused_block;
pub mod fused_mlp;
pub mod fused_norm;
pub mod fused_swiglu;
pub mod gemm;
pub mod init;
pub mod linear;
pub mod mask;
pub mod mlp;
pub mod norm;
pub mod rope;
pub mod transformer;
pub mod vmath;

pub use config::{AttentionMode, ModelConfig};
pub use init::{init_weights, parameter_shapes, sorted_vars};
pub use transformer::{LanguageModel, Transformer};
