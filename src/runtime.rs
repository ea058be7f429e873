//! The run-time plumbing every journey shares (pretraining, fine-tuning, sweeps, interop): the
//! device a config names, the CPU threads of a process, and the progress bar of a long loop.

use candle_core::Device;
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};

use crate::error::{Error, Result};

/// The device named `cpu` or `cuda:N` (`cuda` is `cuda:0`).
pub fn device(name: &str) -> Result<Device> {
    if name == "cpu" {
        return Ok(Device::Cpu);
    }
    let ordinal = name
        .strip_prefix("cuda:")
        .or_else(|| (name == "cuda").then_some("0"))
        .and_then(|n| n.parse::<usize>().ok())
        .ok_or_else(|| Error::config("train.device", format!("`{name}`: use cpu or cuda:N")))?;
    if !candle_core::utils::cuda_is_available() {
        return Err(Error::config(
            "train.device",
            format!("`{name}`: this build has no CUDA (build with --features cuda)"),
        ));
    }
    Ok(Device::new_cuda(ordinal)?)
}

/// Runs this process's CPU work on `threads` threads (all cores when `None`). Call it before any
/// tensor work: candle's CPU kernels read `RAYON_NUM_THREADS`, and rayon's global pool is built
/// once.
pub fn set_threads(threads: Option<usize>) {
    if let Some(n) = threads {
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
        rayon::ThreadPoolBuilder::new().num_threads(n).build_global().ok();
    }
}

/// The environment variable that asks for progress as lines (see [`progress_as_lines`]): an
/// environment variable, not a static, because evcxr links a copy of the library into every
/// cell, so a static set in one cell is not the one the next cell reads.
pub const PROGRESS_LINES_ENV: &str = "ENCODERLAB_PROGRESS_LINES";

/// Seconds between two progress lines.
const LINE_EVERY_S: u64 = 10;

/// Where stderr is no terminal (a Jupyter kernel hides it), show progress as plain lines on
/// stdout, one every 10 seconds and one when the loop ends, instead of not at all: what a
/// notebook's first cell turns on ([`crate::notebook::notebook_setup`]), so that a long cell
/// shows how far it is while it runs.
pub fn progress_as_lines(on: bool) {
    match on {
        true => std::env::set_var(PROGRESS_LINES_ENV, "1"),
        false => std::env::remove_var(PROGRESS_LINES_ENV),
    }
}

/// A draw target that prints the bar's text as a line at most every [`LINE_EVERY_S`] seconds,
/// and the last text when the bar goes away.
#[derive(Debug, Default, Clone)]
struct Lines {
    state: Arc<Mutex<LineState>>,
}

#[derive(Debug, Default)]
struct LineState {
    /// When a line was last printed.
    printed_at: Option<Instant>,
    /// The latest text.
    text: String,
    /// Whether `text` was printed.
    printed: bool,
}

impl Lines {
    fn text(&self, s: &str) {
        if s.trim().is_empty() {
            return;
        }
        let Ok(mut state) = self.state.lock() else { return };
        let due = state.printed_at.is_none_or(|t| t.elapsed().as_secs() >= LINE_EVERY_S);
        state.text = s.trim_end().to_string();
        state.printed = due;
        if due {
            state.printed_at = Some(Instant::now());
            println!("{}", state.text);
        }
    }
}

impl Drop for Lines {
    fn drop(&mut self) {
        if let Ok(mut state) = self.state.lock() {
            if !state.printed && !state.text.is_empty() {
                println!("{}", state.text);
                state.printed = true;
            }
        }
    }
}

impl TermLike for Lines {
    fn width(&self) -> u16 {
        120
    }
    fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn write_line(&self, s: &str) -> std::io::Result<()> {
        self.text(s);
        Ok(())
    }
    fn write_str(&self, s: &str) -> std::io::Result<()> {
        self.text(s);
        Ok(())
    }
    fn clear_line(&self) -> std::io::Result<()> {
        Ok(())
    }
    fn flush(&self) -> std::io::Result<()> {
        std::io::stdout().flush()
    }
}

/// A progress line's template: the message last, so that a loop without one leaves no empty slot.
fn line_template(unit: &str) -> String {
    format!("{{pos}}/{{len}} {unit} ({{elapsed}} so far, ETA {{eta}}) {{msg}}")
}

/// The progress bar of a loop over `total` units (`steps`, `runs`), positioned at `at`, when
/// `show`: drawn on stderr where it is a terminal, else as lines on stdout after
/// [`progress_as_lines`], else not at all.
pub fn progress_bar(show: bool, total: usize, at: usize, unit: &str) -> ProgressBar {
    let lines = show && !std::io::stderr().is_terminal() && std::env::var_os(PROGRESS_LINES_ENV).is_some();
    let target = match (show, lines) {
        (false, _) => ProgressDrawTarget::hidden(),
        (true, true) => ProgressDrawTarget::term_like(Box::new(Lines::default())),
        (true, false) => ProgressDrawTarget::stderr(),
    };
    let bar = ProgressBar::with_draw_target(Some(total as u64), target);
    let template = match lines {
        true => line_template(unit),
        false => format!("{{bar:30}} {{pos}}/{{len}} {unit}, {{msg}}, ETA {{eta}}"),
    };
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style);
    }
    bar.set_position(at as u64);
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A progress line is printed at once, the next ones at most every 10 s; the last text, if
    /// not printed yet, is printed when the bar goes away.
    #[test]
    fn lines_are_throttled_and_the_last_one_kept() {
        let lines = Lines::default();
        lines.text("1/10 steps");
        assert!(lines.state.lock().unwrap().printed);
        lines.text("2/10 steps");
        let state = lines.state.lock().unwrap();
        assert_eq!((state.text.as_str(), state.printed), ("2/10 steps", false));
        drop(state);
        lines.text("   ");
        assert_eq!(
            lines.state.lock().unwrap().text,
            "2/10 steps",
            "blank frames are ignored"
        );
    }

    /// A bar drawn as lines: a loop without a message leaves no empty slot in its line, and a
    /// message comes after the counts.
    #[test]
    fn a_line_has_no_empty_message_slot() {
        for (message, ending) in [("", ")"), ("loss 0.5", ") loss 0.5")] {
            let lines = Lines::default();
            let bar = ProgressBar::with_draw_target(Some(10), ProgressDrawTarget::term_like(Box::new(lines.clone())));
            bar.set_style(ProgressStyle::with_template(&line_template("runs")).unwrap());
            bar.set_message(message);
            bar.set_position(3);
            bar.abandon();
            let text = lines.state.lock().unwrap().text.clone();
            assert!(text.starts_with("3/10 runs (") && text.ends_with(ending), "{text:?}");
            assert!(!text.contains(", ,") && !text.contains(" ,"), "{text:?}");
        }
    }
}
