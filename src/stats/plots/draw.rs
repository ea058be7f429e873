//! Drawing a [`Figure`] with plotters: one generic function for both backends, PNG encoded in
//! memory (so files are written atomically by the caller), DejaVu Sans registered once.

use std::fmt::Display;
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontStyle, RGBAColor};

use super::{Figure, Mark, Panel, Series};
use crate::error::{Error, Result};

const FONT: &str = "sans-serif";
const PANEL_W: u32 = 520;
const PANEL_H: u32 = 380;
const TITLE_H: u32 = 44;
const LEGEND_ROW: u32 = 22;
const NOTE_H: u32 = 30;
const COLUMNS: usize = 3;

/// Tableau 10: distinct, and readable by most colour-blind readers.
const PALETTE: [(u8, u8, u8); 10] = [
    (78, 121, 167),
    (242, 142, 43),
    (225, 87, 89),
    (118, 183, 178),
    (89, 161, 79),
    (237, 201, 72),
    (176, 122, 161),
    (255, 157, 167),
    (156, 117, 95),
    (186, 176, 172),
];

/// The colour of system `i`: the palette, then hues spaced by the golden angle.
fn colour(i: usize) -> RGBAColor {
    match PALETTE.get(i) {
        Some(&(r, g, b)) => RGBColor(r, g, b).to_rgba(),
        None => HSLColor((i as f64 * 0.618_034).fract(), 0.55, 0.45).to_rgba(),
    }
}

fn err(name: &str) -> impl Fn(&dyn Display) -> Error + '_ {
    move |e| Error::Plot {
        name: name.to_string(),
        reason: e.to_string(),
    }
}

/// Registers the embedded DejaVu Sans as plotters' `sans-serif` (once per process).
fn register_fonts() -> Result<()> {
    static DONE: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        for (style, bytes) in [
            (FontStyle::Normal, dejavu::sans::regular()),
            (FontStyle::Bold, dejavu::sans::bold()),
        ] {
            plotters::style::register_font(FONT, style, bytes)
                .map_err(|_| "the embedded DejaVu Sans could not be parsed".to_string())?;
        }
        Ok(())
    })
    .clone()
    .map_err(|reason| Error::Plot {
        name: "fonts".into(),
        reason,
    })
}

fn text_width(text: &str, size: f64) -> u32 {
    FontDesc::new(FontFamily::Name(FONT), size, FontStyle::Normal)
        .box_size(text)
        .map_or(text.len() as u32 * 8, |(w, _)| w)
}

/// Pixel sizes of a figure, computed before drawing.
struct Geometry {
    width: u32,
    height: u32,
    panel_w: u32,
    panel_h: u32,
    legend_h: u32,
    /// Width of the y-label area of panels with named y ticks.
    tick_area: u32,
}

fn geometry(fig: &Figure) -> Geometry {
    let n = fig.panels.len().max(1);
    let cols = n.min(COLUMNS);
    let rows = n.div_ceil(cols);
    let widest = fig
        .panels
        .iter()
        .flat_map(|p| p.y_ticks.iter().flatten())
        .map(|(_, t)| text_width(t, 12.0))
        .max();
    let tick_area = widest.map_or(64, |w| w + 16);
    let most = fig.panels.iter().filter_map(|p| p.y_ticks.as_ref().map(Vec::len)).max();
    let panel_w = if widest.is_some() { 300 + tick_area } else { PANEL_W };
    let panel_h = most.map_or(PANEL_H, |k| (110 + 26 * k as u32).max(200));
    let width = (cols as u32 * panel_w).max(text_width(&fig.note, 12.0) + 40).max(640);
    // panels share out any extra width (a single panel under a long note)
    let panel_w = panel_w.max(width / cols as u32);
    let legend_rows = legend_layout(fig, width).last().map_or(0, |e| e.1 + 1);
    let legend_h = legend_rows * LEGEND_ROW + 8;
    Geometry {
        width,
        height: TITLE_H + legend_h + rows as u32 * panel_h + NOTE_H,
        panel_w,
        panel_h,
        legend_h,
        tick_area,
    }
}

/// (x, row) of each legend entry, wrapped at the figure width.
fn legend_layout(fig: &Figure, width: u32) -> Vec<(u32, u32)> {
    let (mut x, mut row) = (20, 0);
    let mut out = Vec::new();
    for label in &fig.legend {
        let w = 30 + text_width(label, 13.0) + 22;
        if x + w > width.saturating_sub(10) && x > 20 {
            x = 20;
            row += 1;
        }
        out.push((x, row));
        x += w;
    }
    out
}

/// The figure as PNG bytes.
pub fn render_png(fig: &Figure) -> Result<Vec<u8>> {
    register_fonts()?;
    let g = geometry(fig);
    let mut rgb = vec![255u8; (g.width * g.height * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (g.width, g.height)).into_drawing_area();
        draw_figure(&root, fig, &g)?;
        root.present().map_err(|e| err(fig.name)(&e))?;
    }
    let mut png_bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut png_bytes, g.width, g.height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Default);
    encoder.set_adaptive_filter(png::AdaptiveFilterType::Adaptive);
    let mut writer = encoder.write_header().map_err(|e| err(fig.name)(&e))?;
    writer.write_image_data(&rgb).map_err(|e| err(fig.name)(&e))?;
    writer.finish().map_err(|e| err(fig.name)(&e))?;
    Ok(png_bytes)
}

/// The figure as an SVG document.
pub fn render_svg(fig: &Figure) -> Result<String> {
    register_fonts()?;
    let g = geometry(fig);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (g.width, g.height)).into_drawing_area();
        draw_figure(&root, fig, &g)?;
        root.present().map_err(|e| err(fig.name)(&e))?;
    }
    Ok(svg)
}

fn draw_figure<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, fig: &Figure, g: &Geometry) -> Result<()> {
    let e = err(fig.name);
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let title = FontDesc::new(FontFamily::Name(FONT), 22.0, FontStyle::Bold)
        .color(&BLACK)
        .pos(Pos::new(HPos::Center, VPos::Center));
    root.draw_text(&fig.title, &title, (g.width as i32 / 2, TITLE_H as i32 / 2))
        .map_err(|x| e(&x))?;
    let label = (FONT, 13)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Left, VPos::Center));
    for ((x, row), (i, text)) in legend_layout(fig, g.width)
        .into_iter()
        .zip(fig.legend.iter().enumerate())
    {
        let y = (TITLE_H + row * LEGEND_ROW + LEGEND_ROW / 2) as i32;
        let (x, c) = (x as i32, colour(i));
        root.draw(&PathElement::new(vec![(x, y), (x + 24, y)], c.stroke_width(3)))
            .map_err(|x| e(&x))?;
        root.draw(&Circle::new((x + 12, y), 4, c.filled())).map_err(|x| e(&x))?;
        root.draw_text(text, &label, (x + 30, y)).map_err(|x| e(&x))?;
    }
    let top = (TITLE_H + g.legend_h) as i32;
    let n = fig.panels.len().max(1);
    let cols = n.min(COLUMNS);
    for (k, panel) in fig.panels.iter().enumerate() {
        let (r, c) = ((k / cols) as i32, (k % cols) as i32);
        let x0 = c * g.panel_w as i32;
        let y0 = top + r * g.panel_h as i32;
        let area = root.clone().shrink((x0, y0), (g.panel_w, g.panel_h));
        draw_panel(root, &area, panel, g).map_err(|x| e(&x))?;
    }
    let note = (FONT, 12)
        .into_font()
        .color(&RGBColor(80, 80, 80))
        .pos(Pos::new(HPos::Left, VPos::Center));
    root.draw_text(&fig.note, &note, (16, g.height as i32 - NOTE_H as i32 / 2))
        .map_err(|x| e(&x))?;
    Ok(())
}

/// The data range of a panel, padded; ticks count as data.
fn ranges(panel: &Panel) -> ((f64, f64), (f64, f64)) {
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for s in &panel.series {
        for p in &s.points {
            xs.push(p.x);
            ys.push(p.y);
            match s.mark {
                Mark::Line => ys.extend([p.lo, p.hi]),
                Mark::Whisker => xs.extend([p.lo, p.hi]),
            }
        }
    }
    xs.extend(panel.x_ticks.iter().flatten().map(|t| t.0));
    ys.extend(panel.y_ticks.iter().flatten().map(|t| t.0));
    let pad = |v: Vec<f64>, frac: f64| {
        let v: Vec<f64> = v.into_iter().filter(|x| x.is_finite()).collect();
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if !lo.is_finite() {
            return (0.0, 1.0);
        }
        let span = if hi > lo { hi - lo } else { lo.abs().max(1.0) * 0.02 };
        (lo - frac * span, hi + frac * span)
    };
    let mut y = pad(ys, 0.06);
    if panel.y_ticks.is_some() {
        let (lo, hi) = y;
        y = (lo.min(-0.6), hi.max(0.6));
    }
    (pad(xs, 0.05), y)
}

/// An automatic tick label: at most six decimals, trailing zeros dropped (`5`, `0.925`).
fn tick_label(v: &f64) -> String {
    if *v != 0.0 && v.abs() < 1e-4 {
        return format!("{v:e}");
    }
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.into()
    }
}

/// Runs of consecutive points for which `ok` holds.
fn runs<'a, T>(points: &'a [T], ok: impl Fn(&T) -> bool + 'a) -> impl Iterator<Item = &'a [T]> + 'a {
    points.split(move |p| !ok(p)).filter(|r| !r.is_empty())
}

fn draw_panel<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    area: &DrawingArea<DB, Shift>,
    panel: &Panel,
    g: &Geometry,
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let ((x0, x1), (y0, y1)) = ranges(panel);
    let y_area = if panel.y_ticks.is_some() { g.tick_area } else { 70 };
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, (FONT, 16))
        .margin(10)
        .margin_right(22)
        .x_label_area_size(46)
        .y_label_area_size(y_area)
        .build_cartesian_2d(x0..x1, y0..y1)?;
    let blank = |_: &f64| String::new();
    let mut mesh = chart.configure_mesh();
    mesh.label_style((FONT, 12))
        .axis_desc_style((FONT, 13))
        .x_desc(panel.x_label.as_str())
        .y_desc(panel.y_label.as_str())
        .x_labels(6)
        .y_labels(8)
        .x_label_formatter(&tick_label)
        .y_label_formatter(&tick_label)
        .bold_line_style(RGBColor(225, 225, 225))
        .max_light_lines(0);
    if panel.x_ticks.is_some() {
        mesh.disable_x_mesh()
            .x_label_formatter(&blank)
            .set_tick_mark_size(LabelAreaPosition::Bottom, 0);
    }
    if panel.y_ticks.is_some() {
        mesh.disable_y_mesh()
            .y_label_formatter(&blank)
            .set_tick_mark_size(LabelAreaPosition::Left, 0);
    }
    mesh.draw()?;
    let grid = RGBColor(225, 225, 225);
    let tick = (FONT, 12).into_font().color(&BLACK);
    for &(x, ref text) in panel.x_ticks.iter().flatten() {
        chart.draw_series(std::iter::once(PathElement::new(vec![(x, y0), (x, y1)], grid)))?;
        let (px, py) = chart.backend_coord(&(x, y0));
        root.draw_text(text, &tick.pos(Pos::new(HPos::Center, VPos::Top)), (px, py + 6))?;
    }
    for &(y, ref text) in panel.y_ticks.iter().flatten() {
        chart.draw_series(std::iter::once(PathElement::new(vec![(x0, y), (x1, y)], grid)))?;
        let (px, py) = chart.backend_coord(&(x0, y));
        root.draw_text(text, &tick.pos(Pos::new(HPos::Right, VPos::Center)), (px - 6, py))?;
    }
    for s in panel.series.iter().filter(|s| s.mark == Mark::Line) {
        let band = colour(s.system).mix(0.16).filled();
        for r in runs(&s.points, |p| p.lo.is_finite() && p.hi.is_finite()) {
            if r.len() > 1 {
                let mut outline: Vec<(f64, f64)> = r.iter().map(|p| (p.x, p.hi)).collect();
                outline.extend(r.iter().rev().map(|p| (p.x, p.lo)));
                chart.draw_series(std::iter::once(Polygon::new(outline, band)))?;
            }
        }
    }
    for s in &panel.series {
        draw_series(&mut chart, s, 0.18)?;
    }
    Ok(())
}

fn draw_series<DB: DrawingBackend>(
    chart: &mut ChartContext<
        DB,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
    s: &Series,
    cap: f64,
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let c = colour(s.system);
    let finite = |p: &super::Point| p.x.is_finite() && p.y.is_finite();
    match s.mark {
        Mark::Line => {
            for r in runs(&s.points, finite) {
                let line: Vec<(f64, f64)> = r.iter().map(|p| (p.x, p.y)).collect();
                chart.draw_series(std::iter::once(PathElement::new(line, c.stroke_width(2))))?;
            }
        }
        Mark::Whisker => {
            for p in s.points.iter().filter(|p| p.lo.is_finite() && p.hi.is_finite()) {
                let st = c.stroke_width(2);
                chart.draw_series([
                    PathElement::new(vec![(p.lo, p.y), (p.hi, p.y)], st),
                    PathElement::new(vec![(p.lo, p.y - cap), (p.lo, p.y + cap)], st),
                    PathElement::new(vec![(p.hi, p.y - cap), (p.hi, p.y + cap)], st),
                ])?;
            }
        }
    }
    for p in s.points.iter().filter(|p| finite(p)) {
        chart.draw_series(std::iter::once(Circle::new((p.x, p.y), 3, c.filled())))?;
        if p.emphasis || s.mark == Mark::Whisker {
            chart.draw_series(std::iter::once(Circle::new((p.x, p.y), 6, c.stroke_width(2))))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{Panel, Point, Series};
    use super::*;

    #[test]
    fn tick_labels_are_short() {
        let labels: Vec<String> = [5.0, 0.925, 0.1 + 0.2, -0.0, 2.5e-5, 30.0]
            .iter()
            .map(tick_label)
            .collect();
        assert_eq!(labels, ["5", "0.925", "0.3", "0", "2.5e-5", "30"]);
    }

    fn panel(series: Vec<Series>) -> Panel {
        Panel {
            title: String::new(),
            x_label: String::new(),
            y_label: String::new(),
            x_ticks: None,
            y_ticks: None,
            series,
        }
    }

    #[test]
    fn ranges_cover_points_and_bands_and_survive_nan_and_constants() {
        let line = |points| Series {
            system: 0,
            mark: Mark::Line,
            points,
        };
        let p = Point {
            lo: 0.5,
            hi: 0.9,
            ..Point::at(1.0, 0.8)
        };
        let ((x0, x1), (y0, y1)) = ranges(&panel(vec![line(vec![p, Point::at(3.0, f64::NAN)])]));
        assert!(x0 < 1.0 && x1 > 3.0 && y0 < 0.5 && y1 > 0.9);
        // one value: a small range around it, never empty
        let ((x0, x1), (y0, y1)) = ranges(&panel(vec![line(vec![Point::at(2.0, 0.7)])]));
        assert!(x0 < 2.0 && 2.0 < x1 && y0 < 0.7 && 0.7 < y1);
        // nothing finite: the unit square
        assert_eq!(
            ranges(&panel(vec![line(vec![Point::at(f64::NAN, f64::NAN)])])),
            ((0.0, 1.0), (0.0, 1.0))
        );
        assert_eq!(runs(&[1, 0, 2, 3, 0], |v| *v != 0).count(), 2);
    }
}
