//! The `analysis` command line: statistics over fine-tuning runs (confidence intervals,
//! stability metrics, significance tests). Its reports arrive with the analysis issue; for now
//! it prints its help.

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "analysis",
    version,
    about = "Turn a table of fine-tuning runs into confidence intervals, stability metrics and significance tests",
    long_about = "Turn a table of fine-tuning runs (model, objective, dataset, learning_rate, seed, split, score) \
into CSV reports and plots. The report commands are not built yet: this binary only prints its help."
)]
struct Cli {}

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let _ = Cli::parse();
    let mut cmd = <Cli as clap::CommandFactory>::command();
    let _ = cmd.print_long_help();
}
