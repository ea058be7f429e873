//! TensorBoard event files beside `metrics.jsonl`, so that TensorBoard (or a W&B / MLflow sync
//! of TensorBoard logs) shows a run's curves while it goes: scalars, the resolved config as
//! text, and a restart marker when a run resumes from an earlier step.
//!
//! The format is TensorFlow's: a file of TFRecords (length, masked CRC-32C of the length, the
//! bytes, masked CRC-32C of the bytes), each an `Event` protocol buffer. The few messages we
//! write are encoded here by hand (a dozen fields), which keeps protobuf code generation out of
//! the build; `tests/tensorboard.rs` reads the files back with TensorBoard's own Python reader.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::artifacts::{FinetuneStepMetrics, RunResult, StepMetrics};
use crate::error::{Error, IoContext, Result};

/// The folder of a run's event files.
pub const TENSORBOARD_DIR: &str = "tensorboard";

/// CRC-32C (Castagnoli), as TFRecord frames use it.
pub fn crc32c(bytes: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 == 1 { (c >> 1) ^ 0x82F6_3B78 } else { c >> 1 };
                k += 1;
            }
            table[i] = c;
            i += 1;
        }
        table
    };
    !bytes
        .iter()
        .fold(!0u32, |c, &b| TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8))
}

fn masked_crc(bytes: &[u8]) -> u32 {
    let c = crc32c(bytes);
    c.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// A protocol-buffer message being encoded.
#[derive(Default)]
struct Message(Vec<u8>);

impl Message {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn key(&mut self, field: u64, wire: u64) {
        self.varint((field << 3) | wire);
    }

    fn uint(mut self, field: u64, v: u64) -> Self {
        self.key(field, 0);
        self.varint(v);
        self
    }

    fn double(mut self, field: u64, v: f64) -> Self {
        self.key(field, 1);
        self.0.extend(v.to_le_bytes());
        self
    }

    fn float(mut self, field: u64, v: f32) -> Self {
        self.key(field, 5);
        self.0.extend(v.to_le_bytes());
        self
    }

    fn bytes(mut self, field: u64, v: &[u8]) -> Self {
        self.key(field, 2);
        self.varint(v.len() as u64);
        self.0.extend_from_slice(v);
        self
    }

    fn message(self, field: u64, m: Message) -> Self {
        self.bytes(field, &m.0)
    }
}

/// Encoded events not yet written: each a TFRecord.
#[derive(Default)]
pub struct Events(Vec<u8>);

impl Events {
    /// A new file's events: its version record first, as every event file starts.
    pub fn new() -> Self {
        let mut e = Self::default();
        e.push(Message::default().bytes(3, b"brain.Event:2"));
        e
    }

    /// Appends one event (`wall_time` now) to the records.
    fn push(&mut self, event: Message) {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let event = Message::default()
            .double(1, wall)
            .0
            .into_iter()
            .chain(event.0)
            .collect::<Vec<u8>>();
        let len = (event.len() as u64).to_le_bytes();
        self.0.extend_from_slice(&len);
        self.0.extend(masked_crc(&len).to_le_bytes());
        self.0.extend_from_slice(&event);
        self.0.extend(masked_crc(&event).to_le_bytes());
    }

    /// Scalars at `step` (non-finite values are skipped: TensorBoard draws them as gaps anyway).
    pub fn scalars(&mut self, step: u64, values: &[(&str, f64)]) {
        let summary = values
            .iter()
            .filter(|(_, v)| v.is_finite())
            .fold(Message::default(), |s, (tag, v)| {
                s.message(1, Message::default().bytes(1, tag.as_bytes()).float(2, *v as f32))
            });
        self.push(Message::default().uint(2, step).message(5, summary));
    }

    /// A text (markdown) at `step`, shown by TensorBoard's text plugin.
    pub fn text(&mut self, step: u64, tag: &str, text: &str) {
        // Value { tag, tensor: TensorProto { dtype: DT_STRING (7), tensor_shape: scalar,
        // string_val }, metadata: SummaryMetadata { plugin_data { plugin_name: "text" } } }
        let metadata = Message::default().message(1, Message::default().bytes(1, b"text"));
        let tensor = Message::default()
            .uint(1, 7)
            .message(2, Message::default())
            .bytes(8, text.as_bytes());
        let value = Message::default()
            .bytes(1, tag.as_bytes())
            .message(8, tensor)
            .message(9, metadata);
        self.push(
            Message::default()
                .uint(2, step)
                .message(5, Message::default().message(1, value)),
        );
    }

    /// A restart at `step` (Event field 7, SessionLog { status: START }): TensorBoard then drops
    /// what it read before with a step ≥ `step`, as a resumed run writes those steps again.
    pub fn restart(&mut self, step: u64) {
        self.push(
            Message::default()
                .uint(2, step)
                .message(7, Message::default().uint(1, 1)),
        );
    }

    /// One pretraining step's metrics, under `train/` and (at evaluation steps) `eval/`.
    pub fn pretraining_step(&mut self, m: &StepMetrics) {
        let mut values = vec![
            ("train/loss", m.loss),
            ("train/lr", m.lr),
            ("train/grad_norm", m.grad_norm),
            ("train/tokens_per_s", m.tokens_per_s),
            ("train/tokens_seen", m.tokens_seen as f64),
            ("train/phase", m.phase as f64),
        ];
        values.extend(m.eval_clm_loss.map(|v| ("eval/clm_loss", v)));
        values.extend(m.eval_mlm_loss.map(|v| ("eval/mlm_loss", v)));
        self.scalars(m.step as u64, &values);
    }

    /// One fine-tuning step's metrics, under `train/`.
    pub fn finetuning_step(&mut self, m: &FinetuneStepMetrics) {
        let values = [
            ("train/loss", m.loss),
            ("train/lr", m.lr),
            ("train/grad_norm", m.grad_norm),
            ("train/examples_per_s", m.examples_per_s),
        ];
        self.scalars(m.step as u64, &values);
    }

    /// The encoded records, emptied.
    pub fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.0)
    }
}

/// A new event file's name in the form TensorBoard looks for (`events.out.tfevents.…`): the
/// start time and the process id keep two starts of one run apart.
pub fn event_file_name() -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    format!(
        "events.out.tfevents.{}.{:09}.encoderlab.{}",
        now.as_secs(),
        now.subsec_nanos(),
        std::process::id()
    )
}

/// An event file a running job appends to (pretraining: each step as it is done).
pub struct EventFile {
    path: PathBuf,
    file: std::fs::File,
    events: Events,
}

impl EventFile {
    /// A new event file in `dir` (created), beginning with its version record.
    pub fn create(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).at(dir)?;
        let path = dir.join(event_file_name());
        let file = std::fs::File::create(&path).at(&path)?;
        Ok(Self {
            path,
            file,
            events: Events::new(),
        })
    }

    /// The events to write at the next [`EventFile::flush`].
    pub fn events(&mut self) -> &mut Events {
        &mut self.events
    }

    /// Writes the pending events to the file (whole records: a reader never sees half of one
    /// unless a kill falls inside this call, and TensorBoard skips a truncated last record).
    pub fn flush(&mut self) -> Result<()> {
        let bytes = self.events.take();
        self.file.write_all(&bytes).at(&self.path)?;
        self.file.flush().at(&self.path)
    }
}

/// A resolved config as the markdown of a text summary (a JSON code block).
fn config_markdown(config: &impl Serialize) -> Result<String> {
    let json = serde_json::to_string_pretty(config).map_err(|e| Error::config("config", e.to_string()))?;
    Ok(format!("```json\n{json}\n```"))
}

/// The event file of a pretraining run starting at step 0 or resuming from a checkpoint at
/// `step`, in `run_dir`: when resuming, a restart marker at the first step run again
/// (TensorBoard then drops what an earlier file holds from that step on, so the steps a killed
/// run did after its checkpoint are not shown twice); then the resolved `config` as text.
pub fn start_pretraining(run_dir: &Path, config: &impl Serialize, step: u64) -> Result<EventFile> {
    let mut file = EventFile::create(&run_dir.join(TENSORBOARD_DIR))?;
    if step > 0 {
        file.events().restart(step + 1);
    }
    file.events().text(step, "config", &config_markdown(config)?);
    file.flush()?;
    Ok(file)
}

/// The event file of a fine-tuning run (written with its record): the resolved `config` as
/// text, the training `curve` (the lines of its `metrics.jsonl`), and every score of `result` at
/// its last step (`validation/accuracy`, `test/f1`, …).
pub fn finetuning_events(
    config: &impl Serialize,
    curve: &[FinetuneStepMetrics],
    result: &RunResult,
) -> Result<Vec<u8>> {
    let mut events = Events::new();
    events.text(0, "config", &config_markdown(config)?);
    for m in curve {
        events.finetuning_step(m);
    }
    let scores: Vec<(String, f64)> = result
        .all_scores
        .iter()
        .map(|(split, metric, v)| (format!("{split}/{metric}"), *v))
        .collect();
    let tagged: Vec<(&str, f64)> = scores.iter().map(|(t, v)| (t.as_str(), *v)).collect();
    events.scalars(result.steps as u64, &tagged);
    Ok(events.take())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_its_check_value() {
        // the CRC-32C check value (RFC 3720, B.4): "123456789" → 0xE3069283
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(b""), 0);
    }

    #[test]
    fn a_record_frames_its_bytes() {
        let mut e = Events::default();
        e.push(Message::default().uint(2, 300));
        let b = e.take();
        let len = u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
        assert_eq!(b.len(), 8 + 4 + len + 4);
        assert_eq!(u32::from_le_bytes(b[8..12].try_into().unwrap()), masked_crc(&b[..8]));
        // wall_time (field 1, fixed64) then step = 300 (field 2, varint 0xac 0x02)
        assert_eq!(b[12], 0x09);
        assert_eq!(&b[12 + 9..12 + len], &[0x10, 0xac, 0x02]);
    }
}
