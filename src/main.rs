//! The `encoderlab` command line: data, tokenizer, pretraining, fine-tuning, sweeps, the study
//! and interop. Each command group lives in `cli/` and calls the library.

mod cli;

use clap::Parser;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    encoderlab::alloc::keep_freed_memory();
    let result = cli::run(cli::Cli::parse());
    match &result {
        Ok(()) => encoderlab::dist::finish()?,
        // one process of several (mpirun, srun): say why, then end the others, which would
        // otherwise wait for this one until their collective timeout
        Err(e) => {
            if let Some(world) = encoderlab::dist::joined().filter(|w| w.size() > 1) {
                eprintln!("Error (rank {} of {}): {e}", world.rank(), world.size());
                encoderlab::dist::abort_job(1);
            }
        }
    }
    result
}
