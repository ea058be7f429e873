//! The `encoderlab` command line: one file per command group, each parsing its arguments and
//! calling the library.

mod data;
mod interop;
mod study;
mod sweep;
mod train;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// The command line.
#[derive(Parser)]
#[command(
    name = "encoderlab",
    version,
    about = "Pretrain encoders with CLM, MLM or CLM->MLM, fine-tune and analyse them"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Datasets: fetch the defaults, print statistics, pack pretraining text.
    #[command(subcommand)]
    Data(data::DataCommand),
    /// Tokenizers: train a byte-level BPE.
    #[command(subcommand)]
    Tokenizer(data::TokenizerCommand),
    /// The whole study in one command (resumable): data, tokenizer, every pretraining arm, the
    /// fine-tuning grid, the analysis and REPORT.md with a verdict per finding of the paper.
    Study(study::StudyArgs),
    /// Pretrain (CLM, MLM, or phases of both) from a TOML config, or resume a checkpoint.
    Pretrain(train::PretrainArgs),
    /// Fine-tune a checkpoint on one task (one learning rate, one seed) and write its run record.
    Finetune(train::FinetuneArgs),
    /// Grids of fine-tuning runs: plan, run (resumable), status, collect.
    #[command(subcommand)]
    Sweep(sweep::SweepCommand),
    /// Import results made elsewhere into a runs table, or a model (Hugging Face, GGUF) as a
    /// checkpoint.
    #[command(subcommand)]
    Import(interop::ImportCommand),
    /// Export a checkpoint for other tools (Hugging Face transformers).
    #[command(subcommand)]
    Export(interop::ExportCommand),
    /// Score a checkpoint as a language model: held-out perplexity, logits on a batch.
    #[command(subcommand)]
    Eval(interop::EvalCommand),
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Data(c) => data::data(c),
        Command::Tokenizer(c) => data::tokenizer(c),
        Command::Study(a) => study::study(&a),
        Command::Pretrain(a) => train::pretrain(&a),
        Command::Finetune(a) => train::finetune(&a),
        Command::Sweep(c) => sweep::sweep(&c),
        Command::Import(c) => interop::import(&c),
        Command::Export(c) => interop::export(&c),
        Command::Eval(c) => interop::eval(&c),
    }
}
