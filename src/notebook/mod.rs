//! Notebook support (`notebook` feature): evcxr's rich display on the result types (tables as
//! HTML, plots as inline PNG), pretraining histories and loss curves, the attention-mask
//! demonstration, and the analysis report as a value.

pub mod attention;
pub mod display;
pub mod history;
pub mod report;

pub use attention::{attention_demo, MaskDemo};
pub use display::{Html, Png};
pub use history::{compare, History};
pub use report::{results_table, Report};
