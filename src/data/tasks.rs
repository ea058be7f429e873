//! Typed fine-tuning datasets in Hugging Face / BEIR layouts: sequence classification, token
//! classification, extractive QA (the `squad` schema) and retrieval (BEIR folders). Every reader
//! checks what later code relies on and names `file:line` and the field when something is off.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::path::Path;

use serde_json::Value;

use crate::data::records::{kind, read_records, JsonLines, Record};
use crate::error::{Error, IoContext, Result};

/// One example of sequence classification (single text or text pair).
#[derive(Debug, Clone, PartialEq)]
pub struct ClassificationExample {
    /// The row's id (`idx` or `id` field, else its line number).
    pub id: String,
    /// The text (or the first text of a pair).
    pub text: String,
    /// The second text of a pair (premise/hypothesis, question/passage).
    pub text_pair: Option<String>,
    /// Index into the label list.
    pub label: usize,
}

/// One sentence of token classification, with one tag id per word.
#[derive(Debug, Clone, PartialEq)]
pub struct TaggingExample {
    /// The row's id.
    pub id: String,
    /// The words.
    pub tokens: Vec<String>,
    /// Index into the label list, one per word.
    pub tags: Vec<usize>,
}

/// One reference answer of extractive QA: its text and character offset in the context.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The answer text.
    pub text: String,
    /// Offset of the answer's first character in the context, in Unicode scalar values (as
    /// Python's `str` indexes; what HF `squad` stores).
    pub start_char: usize,
}

/// One question of extractive QA (HF `squad` schema).
#[derive(Debug, Clone, PartialEq)]
pub struct QaExample {
    /// Question id.
    pub id: String,
    /// Article title (empty when absent).
    pub title: String,
    /// The passage.
    pub context: String,
    /// The question.
    pub question: String,
    /// Reference answers (several in dev sets; none for unanswerable questions).
    pub answers: Vec<Answer>,
}

/// A document of a retrieval corpus.
#[derive(Debug, Clone, PartialEq)]
pub struct RetrievalDoc {
    /// Document id.
    pub id: String,
    /// Title (empty when absent).
    pub title: String,
    /// Body text.
    pub text: String,
}

/// A query of a retrieval task.
#[derive(Debug, Clone, PartialEq)]
pub struct RetrievalQuery {
    /// Query id.
    pub id: String,
    /// Query text.
    pub text: String,
}

/// A BEIR retrieval task: corpus, queries and graded relevance judgements for one split.
#[derive(Debug, Clone, PartialEq)]
pub struct RetrievalCorpus {
    /// The documents, in file order.
    pub docs: Vec<RetrievalDoc>,
    /// The queries that have at least one judgement, in file order.
    pub queries: Vec<RetrievalQuery>,
    /// query id → (document id → relevance score > 0).
    pub qrels: BTreeMap<String, BTreeMap<String, i64>>,
}

/// Reads a `labels.json`: a list of names, or (with `key`) an object of lists such as TREC's
/// `{"coarse_label": [...], "fine_label": [...]}`.
pub fn read_labels(path: &Path, key: Option<&str>) -> Result<Vec<String>> {
    let text = fs::read_to_string(path).at(path)?;
    let value: Value =
        serde_json::from_str(&text).map_err(|e| Error::data(path, e.line(), format!("malformed JSON: {e}")))?;
    let list = match (key, &value) {
        (None, Value::Array(_)) => &value,
        (Some(k), Value::Object(map)) => map.get(k).ok_or_else(|| {
            let keys: Vec<&str> = map.keys().map(String::as_str).collect();
            Error::data(path, 0, format!("no label list `{k}` (keys: {})", keys.join(", ")))
        })?,
        (None, Value::Object(map)) => {
            let keys: Vec<&str> = map.keys().map(String::as_str).collect();
            return Err(Error::data(
                path,
                0,
                format!(
                    "holds several label lists ({}): set `labels_key` in the registry",
                    keys.join(", ")
                ),
            ));
        }
        (_, other) => {
            return Err(Error::data(
                path,
                0,
                format!("expected a list of label names, found {}", kind(other)),
            ))
        }
    };
    let names: Vec<String> = match list {
        Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect::<Option<_>>()
            .ok_or_else(|| Error::data(path, 0, "every label name must be a string"))?,
        other => {
            return Err(Error::data(
                path,
                0,
                format!("expected a list of label names, found {}", kind(other)),
            ))
        }
    };
    if names.is_empty() {
        return Err(Error::data(path, 0, "empty label list"));
    }
    let unique: HashSet<&String> = names.iter().collect();
    if unique.len() != names.len() {
        return Err(Error::data(path, 0, "label names repeat"));
    }
    Ok(names)
}

/// Field names of a classification table.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassificationFields<'a> {
    /// The text column (e.g. `sentence`, `premise`).
    pub text: &'a str,
    /// The second text column of a pair (e.g. `hypothesis`).
    pub text_pair: Option<&'a str>,
    /// The integer (or label-name) column.
    pub label: &'a str,
}

fn row_id(rec: &Record, path: &Path) -> Result<String> {
    for key in ["idx", "id", "_id"] {
        if rec.fields.contains_key(key) {
            return rec.id(path, key);
        }
    }
    Ok(rec.line.to_string())
}

/// A label given as an integer id or as a name of `labels`.
fn label_id(rec: &Record, path: &Path, field: &str, value: &Value, labels: &[String]) -> Result<usize> {
    let id = match value {
        Value::Number(n) => n.as_u64().map(|v| v as usize),
        Value::String(s) => labels.iter().position(|l| l == s),
        _ => None,
    };
    match id {
        Some(i) if i < labels.len() => Ok(i),
        _ => Err(rec.error(
            path,
            format!(
                "field `{field}` = {value} is outside labels.json ({} labels: {})",
                labels.len(),
                labels.join(", ")
            ),
        )),
    }
}

/// `examples`, or an error naming `path` when it holds none: an empty split can be neither
/// trained nor evaluated on (a run would report a score from 0 examples).
fn nonempty<T>(path: &Path, examples: Vec<T>) -> Result<Vec<T>> {
    if examples.is_empty() {
        return Err(Error::data(
            path,
            0,
            "holds no example: an empty split can be neither trained nor evaluated on; check the file (or the dataset's split names)",
        ));
    }
    Ok(examples)
}

/// Reads a sequence-classification split.
pub fn read_classification(
    path: &Path,
    fields: &ClassificationFields,
    labels: &[String],
) -> Result<Vec<ClassificationExample>> {
    let examples = read_records(path)?
        .iter()
        .map(|rec| {
            Ok(ClassificationExample {
                id: row_id(rec, path)?,
                text: rec.str(path, fields.text)?.to_string(),
                text_pair: match fields.text_pair {
                    Some(f) => Some(rec.str(path, f)?.to_string()),
                    None => None,
                },
                label: label_id(rec, path, fields.label, rec.field(path, fields.label)?, labels)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    nonempty(path, examples)
}

/// Reads a token-classification split: a word list and a tag list (names or ids) per row.
pub fn read_tagging(
    path: &Path,
    tokens_field: &str,
    tags_field: &str,
    labels: &[String],
) -> Result<Vec<TaggingExample>> {
    let examples = read_records(path)?
        .iter()
        .map(|rec| {
            let tokens = rec.strings(path, tokens_field)?;
            let Value::Array(raw) = rec.field(path, tags_field)? else {
                return Err(rec.wrong(path, tags_field, "an array of tags", rec.field(path, tags_field)?));
            };
            if raw.len() != tokens.len() {
                return Err(rec.error(
                    path,
                    format!("{} tokens but {} tags in `{tags_field}`", tokens.len(), raw.len()),
                ));
            }
            let tags = raw
                .iter()
                .enumerate()
                .map(|(i, v)| label_id(rec, path, &format!("{tags_field}[{i}]"), v, labels))
                .collect::<Result<_>>()?;
            Ok(TaggingExample {
                id: row_id(rec, path)?,
                tokens,
                tags,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    nonempty(path, examples)
}

/// Reads an extractive-QA split in the HF `squad` schema, checking that every answer's text
/// stands at its `answer_start` in the context.
pub fn read_qa(path: &Path) -> Result<Vec<QaExample>> {
    let examples = read_records(path)?
        .iter()
        .map(|rec| qa_example(rec, path))
        .collect::<Result<Vec<_>>>()?;
    nonempty(path, examples)
}

fn qa_example(rec: &Record, path: &Path) -> Result<QaExample> {
    let context = rec.str(path, "context")?.to_string();
    let answers_value = rec.field(path, "answers")?;
    let Value::Object(answers) = answers_value else {
        return Err(rec.wrong(
            path,
            "answers",
            "an object {text: [...], answer_start: [...]}",
            answers_value,
        ));
    };
    let sub = |name: &str| -> Result<&Vec<Value>> {
        match answers.get(name) {
            Some(Value::Array(a)) => Ok(a),
            Some(other) => Err(rec.wrong(path, &format!("answers.{name}"), "an array", other)),
            None => Err(rec.error(path, format!("missing field `answers.{name}`"))),
        }
    };
    let (texts, starts) = (sub("text")?, sub("answer_start")?);
    if texts.len() != starts.len() {
        return Err(rec.error(
            path,
            format!("{} answer texts but {} answer_start values", texts.len(), starts.len()),
        ));
    }
    let chars: Vec<char> = context.chars().collect();
    let mut out = Vec::with_capacity(texts.len());
    for (i, (t, s)) in texts.iter().zip(starts).enumerate() {
        let text = t
            .as_str()
            .ok_or_else(|| rec.wrong(path, &format!("answers.text[{i}]"), "a string", t))?;
        let start = s
            .as_u64()
            .map(|v| v as usize)
            .ok_or_else(|| rec.wrong(path, &format!("answers.answer_start[{i}]"), "a non-negative integer", s))?;
        let len = text.chars().count();
        let found: String = chars.iter().skip(start).take(len).collect();
        if start + len > chars.len() || found != text {
            return Err(rec.error(
                path,
                format!("answers.text[{i}] = {text:?} does not stand at answer_start {start} of the context (found {found:?})"),
            ));
        }
        out.push(Answer {
            text: text.to_string(),
            start_char: start,
        });
    }
    Ok(QaExample {
        id: rec.id(path, "id")?,
        title: match rec.fields.get("title") {
            Some(Value::String(s)) => s.clone(),
            _ => String::new(),
        },
        context,
        question: rec.str(path, "question")?.to_string(),
        answers: out,
    })
}

/// Reads a BEIR folder: `corpus.jsonl`, `queries.jsonl` and the judgements of one split
/// (`qrels_path`, usually `qrels/test.tsv`, with a `query-id, corpus-id, score` header).
pub fn read_retrieval(dir: &Path, qrels_path: &Path) -> Result<RetrievalCorpus> {
    let corpus_path = dir.join("corpus.jsonl");
    let mut docs = Vec::new();
    let mut doc_ids = HashSet::new();
    for rec in JsonLines::open(&corpus_path)? {
        let rec = rec?;
        let id = rec.id(&corpus_path, "_id")?;
        if !doc_ids.insert(id.clone()) {
            return Err(rec.error(&corpus_path, format!("duplicate document id {id:?}")));
        }
        let title = match rec.fields.get("title") {
            Some(Value::String(s)) => s.clone(),
            _ => String::new(),
        };
        docs.push(RetrievalDoc {
            id,
            title,
            text: rec.str(&corpus_path, "text")?.to_string(),
        });
    }
    let (qrels, qrel_lines) = read_qrels(qrels_path, &doc_ids)?;
    let queries_path = dir.join("queries.jsonl");
    let mut queries = Vec::new();
    let mut query_ids = HashMap::new();
    for rec in JsonLines::open(&queries_path)? {
        let rec = rec?;
        let id = rec.id(&queries_path, "_id")?;
        if query_ids.insert(id.clone(), rec.line).is_some() {
            return Err(rec.error(&queries_path, format!("duplicate query id {id:?}")));
        }
        if qrels.contains_key(&id) {
            queries.push(RetrievalQuery {
                id,
                text: rec.str(&queries_path, "text")?.to_string(),
            });
        }
    }
    if let Some((q, line)) = qrel_lines
        .iter()
        .filter(|(q, _)| qrels.contains_key(*q) && !query_ids.contains_key(*q))
        .min_by_key(|(_, l)| **l)
    {
        return Err(Error::data(
            qrels_path,
            *line,
            format!("query-id {q:?} is not in queries.jsonl ({})", queries_path.display()),
        ));
    }
    if queries.is_empty() {
        return Err(Error::data(qrels_path, 0, "no relevance judgements"));
    }
    Ok(RetrievalCorpus { docs, queries, qrels })
}

type Qrels = BTreeMap<String, BTreeMap<String, i64>>;

/// The judgements, and the first line of each query's (for errors).
fn read_qrels(path: &Path, doc_ids: &HashSet<String>) -> Result<(Qrels, HashMap<String, usize>)> {
    let text = fs::read_to_string(path).at(path)?;
    let mut qrels: Qrels = BTreeMap::new();
    let mut lines: HashMap<String, usize> = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let cols: Vec<&str> = line.split('\t').collect();
        if i == 0 && cols.first() == Some(&"query-id") {
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        let [query, doc, score] = cols[..] else {
            return Err(Error::data(
                path,
                i + 1,
                "expected 3 tab-separated columns: query-id, corpus-id, score",
            ));
        };
        let score: i64 = score
            .trim()
            .parse()
            .map_err(|_| Error::data(path, i + 1, format!("score {score:?} is not an integer")))?;
        if !doc_ids.contains(doc) {
            return Err(Error::data(
                path,
                i + 1,
                format!("corpus-id {doc:?} is not in corpus.jsonl"),
            ));
        }
        lines.entry(query.to_string()).or_insert(i + 1);
        if score > 0 {
            qrels
                .entry(query.to_string())
                .or_default()
                .insert(doc.to_string(), score);
        }
    }
    Ok((qrels, lines))
}
