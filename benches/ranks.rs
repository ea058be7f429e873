//! Data-parallel scaling on this machine's CPU: the same pretraining run (same global batch)
//! by one single-threaded process, by one process on every core, and by `mpirun -np N` ranks of
//! one thread each; tokens/s is the median over the steps after the first two of each run's
//! `metrics.jsonl`. `cargo bench --bench ranks [-- PRESET BATCH STEPS RANKS PACK]` (default:
//! tiny 16 30 2, and the demo study's pack `runs/study/pretrain_data` if present, else a pack
//! of generated text). Needs `mpirun` (Debian's openmpi-bin). Prints figures; asserts nothing
//! about speed.

use std::path::{Path, PathBuf};
use std::process::Command;

use encoderlab::data::{pack_corpus, Corpus, PackConfig};
use encoderlab::rng::{below, seeded};
use encoderlab::tokenizer::{save_tokenizer, train_bpe, TextTokenizer};

/// A pack of 128-token blocks of generated sentences under `dir` (when no pack is given).
fn generated_pack(dir: &Path) -> anyhow::Result<PathBuf> {
    let words = [
        "the", "model", "reads", "a", "long", "text", "and", "learns", "which", "word", "comes", "next", "in", "every",
        "sentence", "of", "its", "corpus", "while", "masked", "tokens", "hide", "some", "others",
    ];
    let mut rng = seeded(0, 0);
    let mut lines = String::new();
    for i in 0..3000 {
        let n = 20 + below(&mut rng, 60) as usize;
        let text: Vec<&str> = (0..n)
            .map(|_| words[below(&mut rng, words.len() as u64) as usize])
            .collect();
        lines.push_str(&serde_json::json!({"id": i, "text": text.join(" ")}).to_string());
        lines.push('\n');
    }
    let corpus_path = dir.join("corpus.jsonl");
    std::fs::write(&corpus_path, lines)?;
    let corpus = Corpus::open(&[corpus_path], "text")?;
    let tok_path = dir.join("tokenizer.json");
    save_tokenizer(&train_bpe(&corpus, 2048, 2)?, &tok_path)?;
    let cfg = PackConfig {
        seq_len: 128,
        validation_fraction: 0.02,
        ..PackConfig::default()
    };
    let out = dir.join("pack");
    pack_corpus(&corpus, &TextTokenizer::load(&tok_path)?, &cfg, &out)?;
    Ok(out)
}

/// Median tokens/s over the steps after the first two of a run's metrics.
fn median_tokens_per_s(run: &Path) -> anyhow::Result<f64> {
    let mut v: Vec<f64> = std::fs::read_to_string(run.join("metrics.jsonl"))?
        .lines()
        .skip(2)
        .map(|l| Ok(serde_json::from_str::<encoderlab::train::StepMetrics>(l)?.tokens_per_s))
        .collect::<anyhow::Result<_>>()?;
    anyhow::ensure!(!v.is_empty(), "no step after the first two: run more steps");
    v.sort_by(|a, b| a.total_cmp(b));
    Ok(v[v.len() / 2])
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let preset = args.first().map_or("tiny", String::as_str);
    let batch: usize = args.get(1).map_or(Ok(16), |a| a.parse())?;
    let steps: usize = args.get(2).map_or(Ok(30), |a| a.parse())?;
    let ranks: usize = args.get(3).map_or(Ok(2), |a| a.parse())?;
    let dir = tempfile::tempdir()?;
    let pack = match args.get(4) {
        Some(p) => PathBuf::from(p),
        None if Path::new("runs/study/pretrain_data/meta.json").exists() => PathBuf::from("runs/study/pretrain_data"),
        None => generated_pack(dir.path())?,
    };
    let exe = env!("CARGO_BIN_EXE_encoderlab");
    let config = dir.path().join("bench.toml");
    std::fs::write(
        &config,
        format!(
            r#"
name = "bench"
[model]
preset = "{preset}"
[data]
pack = "{}"
batch_size = {batch}
eval_blocks = 4
[train]
phases = [{{ objective = "mlm", ratio = 0.4, steps = {steps} }}]
eval_every_steps = {steps}
checkpoint_every_steps = {steps}
tensorboard = false
[lr]
peak = 1e-3
warmup_steps = 2
schedule = {{ kind = "constant" }}
"#,
            pack.canonicalize()?.display()
        ),
    )?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("CPU: {}", encoderlab::model::kernels::vmath::cpu_summary());
    let isa = encoderlab::model::kernels::vmath::isa_summary();
    println!(
        "{preset} MLM-40 %, global batch {batch} blocks of {pack}, {steps} steps, {cores} cores [{isa}]",
        pack = pack.display()
    );
    let mut results = Vec::new();
    for (what, launcher, threads) in [
        ("1 process, 1 thread".to_string(), None, 1),
        (format!("1 process, {cores} threads"), None, cores),
        (format!("mpirun -np {ranks}, 1 thread each"), Some(ranks), 1),
    ] {
        let out = dir.path().join(format!("run{}", results.len()));
        let mut cmd = match launcher {
            None => Command::new(exe),
            Some(n) => {
                let mut c = Command::new("mpirun");
                c.args(["-np", &n.to_string(), "--oversubscribe", exe])
                    .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
                    .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
                c
            }
        };
        let o = cmd
            .args(["pretrain", "--config"])
            .arg(&config)
            .args(["--threads", &threads.to_string(), "--set"])
            .arg(format!("train.out_dir={}", out.display()))
            .output()?;
        anyhow::ensure!(o.status.success(), "{what}: {}", String::from_utf8_lossy(&o.stderr));
        let tok_s = median_tokens_per_s(&out.join("bench"))?;
        results.push(tok_s);
        println!(
            "  {what:<28} {tok_s:>9.0} tokens/s  {:.2}x one thread [{isa}]",
            tok_s / results[0]
        );
    }
    Ok(())
}
