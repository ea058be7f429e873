//! The model: a Llama/EuroBERT-style transformer written for training on candle (every op has
//! a backward), with HF Llama field and weight names so checkpoints interoperate.

pub mod attention;
pub mod block;
pub(crate) mod checkpointing;
pub mod config;
pub mod init;
pub mod kernels;
pub mod linear;
pub mod mask;
pub mod mlp;
pub mod norm;
pub mod rope;
pub mod transformer;

pub use config::{AttentionMode, ModelConfig};
pub use init::{init_weights, parameter_shapes, sorted_vars};
pub use transformer::{LanguageModel, Transformer};
