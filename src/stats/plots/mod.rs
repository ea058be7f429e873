//! Plots of the analysis report, drawn with plotters as PNG and SVG next to the CSVs.
//!
//! Two steps, kept apart: [`figures`] turns the report's rows ([`PlotTables`]: the very numbers
//! written to the CSVs) into [`Figure`]s, plain data that tests can check; [`render_png`] and [`render_svg`]
//! draw any figure. DejaVu Sans is embedded, so drawing needs no system font and gives the same
//! bytes on every machine.

mod draw;
mod figures;

use rayon::prelude::*;

use crate::error::Result;
use crate::stats::report::{ScoreRanges, Table};

pub use draw::{render_png, render_svg};
pub use figures::{figures, PlotTables, MAX_PAIRS, MAX_PANELS};

/// One picture: a title, a shared legend of systems and a grid of panels (one per dataset).
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// File stem: the plot is written as `{name}.png` and `{name}.svg`.
    pub name: &'static str,
    /// Title drawn at the top.
    pub title: String,
    /// Legend labels; a series' `system` indexes this list (and picks its colour).
    pub legend: Vec<String>,
    /// Panels, laid out three to a row.
    pub panels: Vec<Panel>,
    /// A line under the panels saying what the marks mean.
    pub note: String,
}

/// One chart of a figure.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    /// Caption above the chart.
    pub title: String,
    /// Description of the x axis.
    pub x_label: String,
    /// Description of the y axis.
    pub y_label: String,
    /// Ticks at exactly these x values with these labels (e.g. a learning-rate grid on a log
    /// axis, whose x values are then log10 of the rate); `None`: automatic ticks.
    pub x_ticks: Option<Vec<(f64, String)>>,
    /// Same for the y axis (e.g. system names of a dot plot).
    pub y_ticks: Option<Vec<(f64, String)>>,
    /// The data.
    pub series: Vec<Series>,
}

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// Points joined by a line, with a shaded band from `lo` to `hi` (in y).
    Line,
    /// A dot with a horizontal whisker from `lo` to `hi` (in x).
    Whisker,
}

/// The points of one system in one panel.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Index into the figure's legend.
    pub system: usize,
    /// How to draw it.
    pub mark: Mark,
    /// The points, in drawing order.
    pub points: Vec<Point>,
}

/// A point and its interval (NaN bounds: no interval; a NaN coordinate breaks the line).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// x coordinate.
    pub x: f64,
    /// y coordinate.
    pub y: f64,
    /// Lower end of the interval.
    pub lo: f64,
    /// Upper end of the interval.
    pub hi: f64,
    /// Drawn larger (e.g. the selected learning rate).
    pub emphasis: bool,
}

impl Point {
    /// A point without interval.
    pub fn at(x: f64, y: f64) -> Self {
        Self {
            x,
            y,
            lo: f64::NAN,
            hi: f64::NAN,
            emphasis: false,
        }
    }
}

/// Every figure drawn as `(file name, bytes)`: a PNG and an SVG each, rendered in parallel.
pub fn render_all(figs: &[Figure]) -> Result<Vec<(String, Vec<u8>)>> {
    let files: Vec<Vec<(String, Vec<u8>)>> = figs
        .par_iter()
        .map(|f| {
            Ok(vec![
                (format!("{}.png", f.name), render_png(f)?),
                (format!("{}.svg", f.name), render_svg(f)?.into_bytes()),
            ])
        })
        .collect::<Result<_>>()?;
    Ok(files.into_iter().flatten().collect())
}

/// The plot files of a report's tables, intervals drawn within each dataset's score range.
pub fn plot_tables(tables: &[Table], ranges: &ScoreRanges) -> Result<Vec<(String, Vec<u8>)>> {
    render_all(&figures(&PlotTables::of(tables, ranges.clone())?))
}
