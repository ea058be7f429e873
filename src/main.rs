//! The `encoderlab` command line: data, tokenizer, pretraining, fine-tuning, sweeps, the study
//! and interop. Each command group lives in `cli/` and calls the library.

mod cli;

use clap::Parser;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    encoderlab::alloc::keep_freed_memory();
    cli::run(cli::Cli::parse())
}
