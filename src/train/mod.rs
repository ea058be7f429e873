//! Training: the optimizer and the pretraining loop.

pub mod optim;

pub use optim::{AdamW, Grads, OptimConfig};
