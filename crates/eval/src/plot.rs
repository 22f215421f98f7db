//! Plots of evaluation results, each written as both a PNG and an SVG file.
//!
//! - [`timeline`]: arrival rate over an episode (top panel) and each policy's replica count as
//!   step lines with the "needed" replicas as a dashed grey line (bottom panel).
//! - [`cost_vs_slo`]: GPU cost against SLO attainment, one colour and marker per policy, with
//!   the SLO target as a dashed horizontal line, and error bars (± one standard deviation over
//!   seeds around the mean) per policy and scenario with two or more seeds.
//!
//! Text is drawn with DejaVu Sans, embedded in the binary (`assets/DejaVuSans.ttf`, licence in
//! `assets/LICENSE-DejaVu.txt`) and registered with plotters' `ab_glyph` font table, so the
//! plots never look up system fonts (no fontconfig or freetype at build or run time). The SVG
//! files name the `sans-serif` family and leave the font to the viewer.
//!
//! Colours: policies get colours from a fixed palette of 12 in the order in which they first
//! appear in the input (`series` for [`timeline`], `points` for [`cost_vs_slo`]); pass the
//! policies in the same order to both functions and each policy keeps its colour across plots.
//! Past 12 policies the colours repeat with another line style (dashed, then dotted) in the
//! timeline and another marker in the scatter, so no two policies look alike up to 36.
//!
//! Long series are decimated before drawing (at most 2 000 points per series,
//! keeping each bucket's first, minimum, maximum and last sample), so an 80 000-sample episode
//! draws quickly and its single-sample spikes stay visible. Non-finite samples are skipped;
//! a panel without data shows its axes and a "no data" note.

use std::error::Error;
use std::path::{Path, PathBuf};
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::element::{DashedPathElement, DynElement};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontStyle, register_font};

/// One policy's replica count over an episode.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicaSeries {
    /// Policy name, shown in the legend; also picks the colour (see the module docs).
    pub policy: String,
    /// Sample times in hours since the episode start, non-decreasing.
    pub t_h: Vec<f64>,
    /// Replica count at each sample time (drawn as a step line: held until the next sample).
    /// Pairs past the shorter of `t_h` and `replicas` are ignored.
    pub replicas: Vec<f64>,
}

/// Demand and replicas over time for one scenario: the top panel shows the arrival rate (req/s)
/// over time; the bottom panel the replicas of each policy as step lines, plus the "needed"
/// replicas (arrival rate / capacity per replica) as a dashed grey line. x axis hours since the
/// episode start.
#[derive(Debug, Clone, Copy)]
pub struct TimelinePlot<'a> {
    /// Figure title, e.g. the scenario name.
    pub title: &'a str,
    /// Sample times (hours since the episode start) of `arrival_rps` and `needed_replicas`.
    pub t_h: &'a [f64],
    /// Arrival rate in requests per second at each time of `t_h`.
    pub arrival_rps: &'a [f64],
    /// Replicas needed at each time of `t_h` (arrival rate / capacity per replica).
    pub needed_replicas: &'a [f64],
    /// One replica series per policy, each with its own sample times.
    pub series: &'a [ReplicaSeries],
}

/// One point of the cost vs SLO scatter.
#[derive(Debug, Clone, PartialEq)]
pub struct ScatterPoint {
    /// Policy name, shown in the legend; also picks the colour and marker.
    pub policy: String,
    /// Scenario the point was measured on (not drawn: the title should say which scenarios).
    pub scenario: String,
    /// GPU cost of the episode in US dollars.
    pub cost_usd: f64,
    /// SLO attainment in percent (0–100), like the simulator's `slo_attainment_pct`.
    pub slo_attainment: f64,
    /// When the point is a mean over seeds: the standard deviations of the cost and of the
    /// attainment, drawn as error bars. Points without it that share a policy and a scenario get
    /// their bars from their own spread.
    pub spread: Option<(f64, f64)>,
}

/// Errors: which file could not be written and why.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// The file could not be created or written.
    #[error("cannot write plot {}: {source}", path.display())]
    Io {
        /// The file that could not be written.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Drawing or encoding the image failed (for a PNG this includes failing to save it).
    #[error("cannot render plot {}: {message}", path.display())]
    Render {
        /// The file that was being drawn.
        path: PathBuf,
        /// The drawing backend's error message.
        message: String,
    },
}

/// Width of the images in pixels.
const WIDTH: u32 = 1200;
/// Height of the images in pixels.
const HEIGHT: u32 = 700;
/// At most this many points of one series are drawn (see [`decimate`]).
pub(crate) const MAX_DRAW_POINTS: usize = 2000;

/// Font family the embedded font is registered under; plotters' default text styles use it.
const FONT: &str = "sans-serif";
static DEJAVU_SANS: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

const TITLE_SIZE: f64 = 26.0;
const AXIS_DESC_SIZE: f64 = 18.0;
const TICK_LABEL_SIZE: f64 = 15.0;
const LEGEND_SIZE: f64 = 16.0;
const NOTE_SIZE: f64 = 20.0;
/// Width of the left label area (tick labels and rotated axis description).
const Y_LABEL_AREA: u32 = 80;
/// Height of the bottom label area.
const X_LABEL_AREA: u32 = 50;

/// A fixed palette of 12 distinguishable colours (Tableau 10 without its grey, which is kept
/// for the "needed" line, plus dark indigo, black and plum).
const PALETTE: [RGBColor; 12] = [
    RGBColor(31, 119, 180),  // blue
    RGBColor(255, 127, 14),  // orange
    RGBColor(44, 160, 44),   // green
    RGBColor(214, 39, 40),   // red
    RGBColor(148, 103, 189), // purple
    RGBColor(140, 86, 75),   // brown
    RGBColor(227, 119, 194), // pink
    RGBColor(188, 189, 34),  // olive
    RGBColor(23, 190, 207),  // cyan
    RGBColor(57, 59, 121),   // dark indigo
    RGBColor(0, 0, 0),       // black
    RGBColor(123, 65, 115),  // plum
];
/// The "needed replicas" reference line.
const NEEDED_COLOUR: RGBColor = RGBColor(110, 110, 110);
/// The arrival rate line of the timeline's top panel.
const ARRIVAL_COLOUR: RGBColor = RGBColor(40, 80, 140);
/// The SLO target line.
const TARGET_COLOUR: RGBColor = RGBColor(60, 60, 60);

/// Number of marker shapes of the scatter.
const MARKERS: usize = 4;

type DrawResult<T = ()> = Result<T, Box<dyn Error>>;

/// Writes `{stem}.png` and `{stem}.svg`; returns the two paths.
///
/// See [`TimelinePlot`] for what is drawn. Series longer than 2 000 points are decimated for
/// drawing, keeping spikes; NaN samples are skipped; a panel without data says "no data".
pub fn timeline(stem: &Path, plot: &TimelinePlot) -> Result<[PathBuf; 2], PlotError> {
    write_figure(stem, &Timeline::new(plot))
}

/// Cost ($, x axis, log scale if the range spans more than 20x, else linear) against SLO
/// attainment (% on y axis) for every point, one colour+marker per policy with a legend, a
/// horizontal dashed line at the SLO target (e.g. 99 %). Points of one scenario or many.
/// Writes `{stem}.png` and `{stem}.svg`.
///
/// [`ScatterPoint::slo_attainment`] and `slo_target_pct` are percentages. Points with a
/// non-finite cost or attainment are skipped, and so are non-positive costs on a log axis.
pub fn cost_vs_slo(
    stem: &Path,
    title: &str,
    points: &[ScatterPoint],
    slo_target_pct: f64,
) -> Result<[PathBuf; 2], PlotError> {
    write_figure(stem, &Scatter::new(title, points, slo_target_pct))
}

// ---------------------------------------------------------------------------------------------
// Output

/// A figure that can be drawn on any plotters backend.
trait Figure {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static;
}

/// `stem` with `.{ext}` appended (not replacing an extension: `a.v2` gives `a.v2.png`).
fn with_suffix(stem: &Path, ext: &str) -> PathBuf {
    let mut s = stem.as_os_str().to_owned();
    s.push(".");
    s.push(ext);
    PathBuf::from(s)
}

fn write_figure(stem: &Path, figure: &impl Figure) -> Result<[PathBuf; 2], PlotError> {
    let png = with_suffix(stem, "png");
    let svg = with_suffix(stem, "svg");
    let render_err = |path: &Path, e: &dyn std::fmt::Display| PlotError::Render {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    if !ensure_font() {
        return Err(render_err(&png, &"the embedded font could not be loaded"));
    }

    // Creating the file first reports a missing directory or a permission problem as a plain
    // I/O error; plotters then overwrites it.
    std::fs::File::create(&png).map_err(|source| PlotError::Io {
        path: png.clone(),
        source,
    })?;
    {
        let root = BitMapBackend::new(&png, (WIDTH, HEIGHT)).into_drawing_area();
        figure.draw(&root).map_err(|e| render_err(&png, &e))?;
        root.present().map_err(|e| render_err(&png, &e))?;
    }

    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, (WIDTH, HEIGHT)).into_drawing_area();
        figure.draw(&root).map_err(|e| render_err(&svg, &e))?;
        root.present().map_err(|e| render_err(&svg, &e))?;
    }
    std::fs::write(&svg, text).map_err(|source| PlotError::Io {
        path: svg.clone(),
        source,
    })?;
    Ok([png, svg])
}

/// Registers the embedded DejaVu Sans with plotters once; false if that failed.
fn ensure_font() -> bool {
    static REGISTER: Once = Once::new();
    static REGISTERED: AtomicBool = AtomicBool::new(false);
    REGISTER.call_once(|| {
        // Bold and the other styles fall back to the normal face.
        let ok = register_font(FONT, FontStyle::Normal, DEJAVU_SANS).is_ok();
        REGISTERED.store(ok, Ordering::Release);
    });
    REGISTERED.load(Ordering::Acquire)
}

// ---------------------------------------------------------------------------------------------
// Data preparation

/// The finite `(x, y)` pairs of `xs` and `ys`, decimated to at most `max_points` (at least 4)
/// points: the pairs are cut into `max_points / 4` buckets of consecutive samples and each
/// bucket keeps its first, minimum, maximum and last sample, in their original order. So the
/// min/max envelope is kept and a single-sample spike survives. Fewer pairs than `max_points`
/// are returned unchanged (less the non-finite ones).
pub(crate) fn decimate(xs: &[f64], ys: &[f64], max_points: usize) -> Vec<(f64, f64)> {
    let pts: Vec<(f64, f64)> = xs
        .iter()
        .zip(ys)
        .map(|(&x, &y)| (x, y))
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    let max_points = max_points.max(4);
    if pts.len() <= max_points {
        return pts;
    }
    let buckets = max_points / 4;
    let n = pts.len();
    let mut out = Vec::with_capacity(buckets * 4);
    for b in 0..buckets {
        let (lo, hi) = (b * n / buckets, (b + 1) * n / buckets);
        if lo >= hi {
            continue;
        }
        let (mut imin, mut imax) = (lo, lo);
        for i in lo..hi {
            if pts[i].1 < pts[imin].1 {
                imin = i;
            }
            if pts[i].1 > pts[imax].1 {
                imax = i;
            }
        }
        let mut idx = [lo, imin, imax, hi - 1];
        idx.sort_unstable();
        let mut last = usize::MAX;
        for i in idx {
            if i != last {
                out.push(pts[i]);
                last = i;
            }
        }
    }
    out
}

/// A step line through `pts`: each value is held until the next sample's time.
fn steps(pts: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(pts.len() * 2);
    for (i, &(x, y)) in pts.iter().enumerate() {
        out.push((x, y));
        if let Some(&(next_x, _)) = pts.get(i + 1) {
            out.push((next_x, y));
        }
    }
    out
}

/// Min and max of the finite values, or `None`.
fn finite_range<'a>(values: impl IntoIterator<Item = &'a f64>) -> Option<(f64, f64)> {
    values
        .into_iter()
        .filter(|v| v.is_finite())
        .fold(None, |acc, &v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })
}

fn merge(a: Option<(f64, f64)>, b: Option<(f64, f64)>) -> Option<(f64, f64)> {
    match (a, b) {
        (Some((a0, a1)), Some((b0, b1))) => Some((a0.min(b0), a1.max(b1))),
        (a, None) => a,
        (None, b) => b,
    }
}

/// A y range from 0 (or the minimum, if negative) to a little above the maximum.
fn zero_based(range: Option<(f64, f64)>, min_top: f64) -> (f64, f64) {
    let (lo, hi) = range.unwrap_or((0.0, min_top));
    let lo = lo.min(0.0);
    let hi = hi.max(min_top);
    let pad = (hi - lo) * 0.06;
    (if lo < 0.0 { lo - pad } else { 0.0 }, hi + pad)
}

/// Distinct policy names in order of first appearance; the position is the palette index.
fn colour_order<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let mut order: Vec<&str> = Vec::new();
    for name in names {
        if !order.contains(&name) {
            order.push(name);
        }
    }
    order
}

fn colour(index: usize) -> RGBColor {
    PALETTE[index % PALETTE.len()]
}

/// Line style of the series at `index`: solid for the first round of the palette, then dashed,
/// then dotted, so that two series never share both colour and style (up to 36 of them).
/// `None` is solid; `Some((dash, gap))` in pixels.
fn dash(index: usize) -> Option<(u32, u32)> {
    match (index / PALETTE.len()) % 3 {
        0 => None,
        1 => Some((9, 5)),
        _ => Some((2, 4)),
    }
}

/// Marker shape of the policy at `index`: cycles through the shapes, shifted after each full
/// round of the palette so that policies sharing a colour get different markers.
fn marker_kind(index: usize) -> usize {
    (index + index / PALETTE.len()) % MARKERS
}

/// A marker centred on `at`.
fn marker<'a, DB: DrawingBackend + 'a, C: Clone + 'a>(
    kind: usize,
    at: C,
    colour: RGBColor,
) -> DynElement<'a, DB, C> {
    let fill = colour.mix(0.85).filled();
    let edge = ShapeStyle::from(&WHITE).stroke_width(1);
    match kind {
        0 => (EmptyElement::at(at) + Circle::new((0, 0), 6, fill) + Circle::new((0, 0), 6, edge))
            .into_dyn(),
        1 => (EmptyElement::at(at)
            + Polygon::new(vec![(0, -8), (7, 5), (-7, 5)], fill)
            + PathElement::new(vec![(0, -8), (7, 5), (-7, 5), (0, -8)], edge))
        .into_dyn(),
        2 => (EmptyElement::at(at)
            + Rectangle::new([(-5, -5), (5, 5)], fill)
            + Rectangle::new([(-5, -5), (5, 5)], edge))
        .into_dyn(),
        _ => (EmptyElement::at(at)
            + Polygon::new(vec![(0, -7), (7, 0), (0, 7), (-7, 0)], fill)
            + PathElement::new(vec![(0, -7), (7, 0), (0, 7), (-7, 0), (0, -7)], edge))
        .into_dyn(),
    }
}

/// A tick label: at most 3 decimals, trailing zeros dropped, thousands as "k".
fn fmt_number(v: f64) -> String {
    let a = v.abs();
    if a >= 10_000.0 {
        return format!("{}k", fmt_number(v / 1000.0));
    }
    let decimals = if a >= 100.0 {
        0
    } else if a >= 10.0 {
        1
    } else if a >= 1.0 {
        2
    } else {
        3
    };
    let s = format!("{v:.decimals$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    if s == "-0" { "0".to_string() } else { s }
}

fn fmt_usd(v: f64) -> String {
    if v < 0.0 {
        format!("-${}", fmt_number(-v))
    } else {
        format!("${}", fmt_number(v))
    }
}

/// "Nice" linear ticks (steps of 1, 2, 2.5 or 5 × 10^k) in `[lo, hi]`, about `target` of them.
fn linear_ticks(lo: f64, hi: f64, target: usize) -> Vec<f64> {
    let span = hi - lo;
    if span.is_nan() || span <= 0.0 || span.is_infinite() {
        return vec![lo];
    }
    let raw = span / target.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).map(|k| k as f64 * step).collect()
}

/// Ticks of a log axis over `[lo, hi]` (both > 0): 1-2-5 (or 1-2-3-5 over short ranges, or
/// only powers of ten over long ones) times powers of ten.
fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let decades = (hi / lo).log10();
    let mantissas: &[f64] = if decades <= 1.5 {
        &[1.0, 2.0, 3.0, 5.0]
    } else if decades <= 3.5 {
        &[1.0, 2.0, 5.0]
    } else {
        &[1.0]
    };
    let (d0, d1) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    let mut out = Vec::new();
    for d in d0..=d1 {
        for m in mantissas {
            let v = m * 10f64.powi(d);
            if v >= lo * (1.0 - 1e-9) && v <= hi * (1.0 + 1e-9) {
                out.push(v);
            }
        }
    }
    out
}

/// Minor ticks of a log axis over `[lo, hi]`: 1..9 times powers of ten.
fn log_minor_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let (d0, d1) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    let mut out = Vec::new();
    for d in d0..=d1 {
        for m in 1..10 {
            let v = f64::from(m) * 10f64.powi(d);
            if v >= lo && v <= hi {
                out.push(v);
            }
        }
    }
    out
}

/// `text` shortened with an ellipsis to at most `max_chars` characters.
fn truncate(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        text.to_string()
    } else {
        let mut s: String = text.chars().take(max_chars.saturating_sub(1)).collect();
        s.push('…');
        s
    }
}

/// A linear axis over `lo..hi` with the tick positions given (`bold` get a label and a grid
/// line, `light` only a faint grid line); the scatter's x axis, in cost or log10(cost).
#[derive(Debug, Clone)]
struct TickAxis {
    lo: f64,
    hi: f64,
    bold: Vec<f64>,
    light: Vec<f64>,
}

impl Ranged for TickAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let span = self.hi - self.lo;
        if span == 0.0 || !span.is_finite() {
            return (limit.0 + limit.1) / 2;
        }
        let frac = ((value - self.lo) / span).clamp(-10.0, 10.0);
        let len = f64::from(limit.1 - limit.0);
        limit.0 + (len * frac).round() as i32
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            self.light.clone()
        } else {
            self.bold.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi
    }
}

// ---------------------------------------------------------------------------------------------
// Drawing helpers

fn font(size: f64) -> TextStyle<'static> {
    TextStyle::from((FONT, size).into_font()).color(&BLACK)
}

/// What a legend entry shows beside its text.
enum Swatch {
    /// A policy's line: its colour and [`dash`].
    Styled(RGBColor, Option<(u32, u32)>),
    Dashed(RGBColor),
    Marker(usize, RGBColor),
}

/// The longest legend entry accepted before names are cut with an ellipsis.
const LEGEND_MAX_CHARS: usize = 40;

/// Width in pixels of a legend listing `names` (clamped to 170..=420).
fn legend_width<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, names: &[String]) -> u32 {
    let style = font(LEGEND_SIZE);
    let text_w = names
        .iter()
        .filter_map(|n| root.estimate_text_size(n, &style).ok())
        .map(|(w, _)| w)
        .max()
        .unwrap_or(0);
    (text_w + 84).clamp(170, 420)
}

/// Draws a legend in `area`: one row per entry from the top, with a swatch and the text.
fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[(String, Swatch)],
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let row = 26;
    let (x0, y0) = (12, 16);
    let style = font(LEGEND_SIZE).pos(Pos::new(HPos::Left, VPos::Center));
    for (i, (text, swatch)) in entries.iter().enumerate() {
        let y = y0 + row * i as i32;
        match swatch {
            Swatch::Styled(c, None) => {
                area.draw(&PathElement::new(
                    vec![(x0, y), (x0 + 32, y)],
                    c.stroke_width(3),
                ))?;
            }
            Swatch::Styled(c, Some((size, gap))) => {
                area.draw(&DashedPathElement::new(
                    vec![(x0, y), (x0 + 32, y)],
                    *size,
                    *gap,
                    c.stroke_width(3),
                ))?;
            }
            Swatch::Dashed(c) => {
                area.draw(&DashedPathElement::new(
                    vec![(x0, y), (x0 + 32, y)],
                    6,
                    4,
                    c.stroke_width(2),
                ))?;
            }
            Swatch::Marker(kind, c) => {
                area.draw(&marker::<DB, _>(*kind, (x0 + 16, y), *c))?;
            }
        }
        area.draw(&Text::new(text.clone(), (x0 + 42, y), style.clone()))?;
    }
    Ok(())
}

/// Writes "no data" in the middle of a chart's plotting area.
fn no_data_note<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let (w, h) = area.dim_in_pixel();
    let style = font(NOTE_SIZE)
        .color(&RGBColor(120, 120, 120))
        .pos(Pos::new(HPos::Center, VPos::Center));
    area.draw(&Text::new("no data", (w as i32 / 2, h as i32 / 2), style))?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Timeline

struct Timeline<'a> {
    plot: &'a TimelinePlot<'a>,
    arrival: Vec<(f64, f64)>,
    needed: Vec<(f64, f64)>,
    /// Per series: its step-line points and palette index.
    replicas: Vec<(Vec<(f64, f64)>, usize)>,
    /// Legend: policies in order of first appearance.
    policies: Vec<&'a str>,
    x_range: (f64, f64),
    arrival_range: Option<(f64, f64)>,
    replica_range: Option<(f64, f64)>,
}

impl<'a> Timeline<'a> {
    fn new(plot: &'a TimelinePlot<'a>) -> Self {
        let policies = colour_order(plot.series.iter().map(|s| s.policy.as_str()));
        let arrival = decimate(plot.t_h, plot.arrival_rps, MAX_DRAW_POINTS);
        let needed = decimate(plot.t_h, plot.needed_replicas, MAX_DRAW_POINTS);
        let replicas: Vec<_> = plot
            .series
            .iter()
            .map(|s| {
                let idx = policies.iter().position(|p| *p == s.policy).unwrap_or(0);
                (steps(&decimate(&s.t_h, &s.replicas, MAX_DRAW_POINTS)), idx)
            })
            .collect();
        let xs = |pts: &[(f64, f64)]| finite_range(pts.iter().map(|p| &p.0));
        let ys = |pts: &[(f64, f64)]| finite_range(pts.iter().map(|p| &p.1));
        let mut x_range = merge(xs(&arrival), xs(&needed));
        let mut replica_range = ys(&needed);
        for (pts, _) in &replicas {
            x_range = merge(x_range, xs(pts));
            replica_range = merge(replica_range, ys(pts));
        }
        let x_range = match x_range {
            None => (0.0, 1.0),
            Some((lo, hi)) if hi - lo < 1e-9 => (lo - 0.5, hi + 0.5),
            Some(r) => r,
        };
        Self {
            plot,
            arrival_range: ys(&arrival),
            arrival,
            needed,
            replicas,
            policies,
            x_range,
            replica_range,
        }
    }
}

impl Figure for Timeline<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE)?;
        let body = root
            .margin(8, 0, 0, 0)
            .titled(self.plot.title, font(TITLE_SIZE))?;

        let mut legend: Vec<(String, Swatch)> = self
            .policies
            .iter()
            .enumerate()
            .map(|(i, p)| {
                (
                    truncate(p, LEGEND_MAX_CHARS),
                    Swatch::Styled(colour(i), dash(i)),
                )
            })
            .collect();
        legend.push((
            "needed (arrivals / capacity)".to_string(),
            Swatch::Dashed(NEEDED_COLOUR),
        ));
        let names: Vec<String> = legend.iter().map(|(n, _)| n.clone()).collect();
        let legend_w = legend_width(root, &names);
        let (charts, legend_area) = body.split_horizontally(WIDTH - legend_w);
        let (top, bottom) = charts.split_vertically((33).percent_height());
        let (_, legend_area) = legend_area.split_vertically((33).percent_height());

        let (x0, x1) = self.x_range;
        let x_fmt = |v: &f64| fmt_number(*v);
        let y_fmt = |v: &f64| fmt_number(*v);

        // Top panel: arrival rate.
        let (a0, a1) = zero_based(self.arrival_range, 1.0);
        let mut chart = ChartBuilder::on(&top)
            .margin_left(10)
            .margin_right(10)
            .margin_top(5)
            .x_label_area_size(30)
            .y_label_area_size(Y_LABEL_AREA)
            .build_cartesian_2d(x0..x1, a0..a1)?;
        chart
            .configure_mesh()
            .x_labels(12)
            .y_labels(5)
            .x_label_formatter(&x_fmt)
            .y_label_formatter(&y_fmt)
            .y_desc("arrivals (req/s)")
            .label_style(font(TICK_LABEL_SIZE))
            .axis_desc_style(font(AXIS_DESC_SIZE))
            .draw()?;
        if self.arrival.is_empty() {
            no_data_note(&chart.plotting_area().strip_coord_spec())?;
        } else {
            chart.draw_series(LineSeries::new(
                self.arrival.iter().copied(),
                ARRIVAL_COLOUR.stroke_width(1),
            ))?;
        }

        // Bottom panel: replicas.
        let (r0, r1) = zero_based(self.replica_range, 1.0);
        let mut chart = ChartBuilder::on(&bottom)
            .margin_left(10)
            .margin_right(10)
            .margin_top(15)
            .margin_bottom(5)
            .x_label_area_size(X_LABEL_AREA)
            .y_label_area_size(Y_LABEL_AREA)
            .build_cartesian_2d(x0..x1, r0..r1)?;
        chart
            .configure_mesh()
            .x_labels(12)
            .y_labels(8)
            .x_label_formatter(&x_fmt)
            .y_label_formatter(&y_fmt)
            .x_desc("time since episode start (h)")
            .y_desc("replicas")
            .label_style(font(TICK_LABEL_SIZE))
            .axis_desc_style(font(AXIS_DESC_SIZE))
            .draw()?;
        if self.needed.is_empty() && self.replicas.iter().all(|(p, _)| p.is_empty()) {
            no_data_note(&chart.plotting_area().strip_coord_spec())?;
        }
        // The reference first: the policies' lines stay visible where they meet it.
        if !self.needed.is_empty() {
            chart.draw_series(DashedLineSeries::new(
                self.needed.iter().copied(),
                8,
                5,
                NEEDED_COLOUR.stroke_width(1),
            ))?;
        }
        for (pts, idx) in &self.replicas {
            let style = colour(*idx).stroke_width(2);
            match dash(*idx) {
                None => {
                    chart.draw_series(LineSeries::new(pts.iter().copied(), style))?;
                }
                Some((size, gap)) => {
                    chart.draw_series(DashedLineSeries::new(
                        pts.iter().copied(),
                        size,
                        gap,
                        style,
                    ))?;
                }
            }
        }

        draw_legend(&legend_area, &legend)?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Cost vs SLO scatter

struct Scatter<'a> {
    title: &'a str,
    target: f64,
    policies: Vec<&'a str>,
    /// Drawable points: cost, attainment, policy index.
    points: Vec<(f64, f64, usize)>,
    /// Per policy and scenario with two or more points: policy index, mean and sd of the cost,
    /// mean and sd of the attainment (the error bars).
    bars: Vec<ErrorBar>,
    log_x: bool,
}

/// One policy's spread over seeds on one scenario.
#[derive(Debug, Clone, Copy, PartialEq)]
struct ErrorBar {
    idx: usize,
    cost: (f64, f64),
    slo: (f64, f64),
}

/// Mean and sample standard deviation.
fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, var.sqrt())
}

/// The error bars of `points`: one per point that carries its spread, and one per policy and
/// scenario with at least two finite points that do not.
fn error_bars(points: &[ScatterPoint], policies: &[&str]) -> Vec<ErrorBar> {
    let mut bars = Vec::new();
    // (policy index, scenario) → its (cost, attainment) points.
    type Groups<'a> = Vec<((usize, &'a str), Vec<(f64, f64)>)>;
    let mut groups: Groups = Vec::new();
    for p in points
        .iter()
        .filter(|p| p.cost_usd.is_finite() && p.slo_attainment.is_finite())
    {
        let idx = policies.iter().position(|q| *q == p.policy).unwrap_or(0);
        if let Some((cost_sd, slo_sd)) = p.spread {
            if cost_sd.is_finite() && slo_sd.is_finite() {
                bars.push(ErrorBar {
                    idx,
                    cost: (p.cost_usd, cost_sd),
                    slo: (p.slo_attainment, slo_sd),
                });
            }
            continue;
        }
        let key = (idx, p.scenario.as_str());
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push((p.cost_usd, p.slo_attainment)),
            None => groups.push((key, vec![(p.cost_usd, p.slo_attainment)])),
        }
    }
    bars.extend(
        groups
            .into_iter()
            .filter(|(_, v)| v.len() >= 2)
            .map(|((idx, _), v)| {
                let c: Vec<f64> = v.iter().map(|p| p.0).collect();
                let a: Vec<f64> = v.iter().map(|p| p.1).collect();
                ErrorBar {
                    idx,
                    cost: mean_sd(&c),
                    slo: mean_sd(&a),
                }
            }),
    );
    bars
}

impl<'a> Scatter<'a> {
    fn new(title: &'a str, points: &'a [ScatterPoint], target: f64) -> Self {
        let policies = colour_order(points.iter().map(|p| p.policy.as_str()));
        let mut pts: Vec<(f64, f64, usize)> = points
            .iter()
            .filter(|p| p.cost_usd.is_finite() && p.slo_attainment.is_finite())
            .map(|p| {
                let idx = policies.iter().position(|q| *q == p.policy).unwrap_or(0);
                (p.cost_usd, p.slo_attainment, idx)
            })
            .collect();
        let positive = finite_range(pts.iter().filter(|p| p.0 > 0.0).map(|p| &p.0));
        let log_x = matches!(positive, Some((lo, hi)) if hi / lo > 20.0);
        if log_x {
            pts.retain(|p| p.0 > 0.0);
        }
        let bars = error_bars(points, &policies);
        Self {
            title,
            target,
            policies,
            points: pts,
            bars,
            log_x,
        }
    }
}

impl Figure for Scatter<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE)?;
        let body = root
            .margin(8, 0, 0, 0)
            .titled(self.title, font(TITLE_SIZE))?;

        let mut legend: Vec<(String, Swatch)> = self
            .policies
            .iter()
            .enumerate()
            .map(|(i, p)| {
                (
                    truncate(p, LEGEND_MAX_CHARS),
                    Swatch::Marker(marker_kind(i), colour(i)),
                )
            })
            .collect();
        let target = self.target.is_finite().then_some(self.target);
        if let Some(t) = target {
            legend.push((
                format!("SLO target ({} %)", fmt_number(t)),
                Swatch::Dashed(TARGET_COLOUR),
            ));
        }
        let names: Vec<String> = legend.iter().map(|(n, _)| n.clone()).collect();
        let legend_w = legend_width(root, &names);
        let (chart_area, legend_area) = body.split_horizontally(WIDTH - legend_w);

        // x: the cost, or its log10 on a log axis, with ticks chosen here.
        let fwd = |c: f64| if self.log_x { c.log10() } else { c };
        let inv = |u: f64| if self.log_x { 10f64.powf(u) } else { u };
        // The axes hold the error bars too.
        let bar_costs: Vec<f64> = self
            .bars
            .iter()
            .flat_map(|b| {
                let lo = b.cost.0 - b.cost.1;
                [
                    if self.log_x {
                        lo.max(b.cost.0 * 0.01)
                    } else {
                        lo
                    },
                    b.cost.0 + b.cost.1,
                ]
            })
            .collect();
        let bar_slos: Vec<f64> = self
            .bars
            .iter()
            .flat_map(|b| [b.slo.0 - b.slo.1, b.slo.0 + b.slo.1])
            .collect();
        let costs = merge(
            finite_range(self.points.iter().map(|p| &p.0)),
            finite_range(bar_costs.iter()),
        );
        let (c0, c1) = costs.unwrap_or((0.0, 1.0));
        let (u0, u1) = {
            let (u0, u1) = (fwd(c0), fwd(c1));
            if u1 - u0 < 1e-12 {
                let pad = if self.log_x {
                    0.1
                } else {
                    (u0.abs() * 0.1).max(1.0)
                };
                (u0 - pad, u1 + pad)
            } else {
                let pad = (u1 - u0) * 0.06;
                let lo = u0 - pad;
                // No negative costs on a linear axis of non-negative costs.
                (
                    if !self.log_x && c0 >= 0.0 {
                        lo.max(0.0)
                    } else {
                        lo
                    },
                    u1 + pad,
                )
            }
        };
        let axis = if self.log_x {
            let minor = log_minor_ticks(inv(u0), inv(u1));
            TickAxis {
                lo: u0,
                hi: u1,
                bold: log_ticks(inv(u0), inv(u1)).into_iter().map(fwd).collect(),
                light: minor.into_iter().map(fwd).collect(),
            }
        } else {
            TickAxis {
                lo: u0,
                hi: u1,
                bold: linear_ticks(u0, u1, 10),
                light: linear_ticks(u0, u1, 20),
            }
        };

        // y: attainment %, including the target.
        // Without points, 0-100 % (and the target): the "no data" note stays clear of the line.
        let ys = match merge(
            finite_range(self.points.iter().map(|p| &p.1)),
            finite_range(bar_slos.iter()),
        ) {
            None => Some((0.0, 100.0)),
            some => some,
        };
        let ys = merge(ys, target.map(|t| (t, t)));
        let (y0, y1) = match ys {
            None => (0.0, 100.0),
            Some((lo, hi)) => {
                let pad = ((hi - lo) * 0.08).max(0.25);
                (lo - pad, hi + pad)
            }
        };

        let mut chart = ChartBuilder::on(&chart_area)
            .margin_left(10)
            .margin_right(20)
            .margin_top(10)
            .margin_bottom(5)
            .x_label_area_size(X_LABEL_AREA)
            .y_label_area_size(Y_LABEL_AREA)
            .build_cartesian_2d(axis, y0..y1)?;
        let x_fmt = |u: &f64| fmt_usd(inv(*u));
        let y_fmt = |v: &f64| fmt_number(*v);
        let x_desc = if self.log_x {
            "GPU cost (USD, log scale)"
        } else {
            "GPU cost (USD)"
        };
        chart
            .configure_mesh()
            .y_labels(8)
            .x_label_formatter(&x_fmt)
            .y_label_formatter(&y_fmt)
            .x_desc(x_desc)
            .y_desc("SLO attainment (%)")
            .label_style(font(TICK_LABEL_SIZE))
            .axis_desc_style(font(AXIS_DESC_SIZE))
            .draw()?;

        if let Some(t) = target {
            chart.draw_series(DashedLineSeries::new(
                [(u0, t), (u1, t)],
                10,
                6,
                TARGET_COLOUR.stroke_width(2),
            ))?;
        }
        if self.points.is_empty() {
            no_data_note(&chart.plotting_area().strip_coord_spec())?;
        }
        let plotting = chart.plotting_area();
        // Error bars first (± one sd over seeds around the mean, per policy and scenario), so the
        // seeds' markers stay on top.
        for b in &self.bars {
            let style = colour(b.idx).stroke_width(2);
            let (cm, cs) = b.cost;
            let (am, asd) = b.slo;
            let lo = if self.log_x {
                (cm - cs).max(cm * 0.01)
            } else {
                cm - cs
            };
            let cap = (u1 - u0) * 0.006;
            let acap = (y1 - y0) * 0.012;
            let segments = [
                [(fwd(lo), am), (fwd(cm + cs), am)],
                [(fwd(cm), am - asd), (fwd(cm), am + asd)],
                [(fwd(lo), am - acap), (fwd(lo), am + acap)],
                [(fwd(cm + cs), am - acap), (fwd(cm + cs), am + acap)],
                [(fwd(cm) - cap, am - asd), (fwd(cm) + cap, am - asd)],
                [(fwd(cm) - cap, am + asd), (fwd(cm) + cap, am + asd)],
            ];
            for seg in segments {
                plotting.draw(&PathElement::new(seg.to_vec(), style))?;
            }
        }
        for &(c, a, idx) in &self.points {
            plotting.draw(&marker::<DB, _>(marker_kind(idx), (fwd(c), a), colour(idx)))?;
        }

        let (_, legend_area) = legend_area.split_vertically(10);
        draw_legend(&legend_area, &legend)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// A fresh, empty directory under the system temp dir.
    fn temp_dir(name: &str) -> PathBuf {
        use std::sync::atomic::AtomicUsize;
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "rlscale-plot-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn check_png(path: &Path) {
        let bytes = std::fs::read(path).unwrap();
        assert!(
            bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
            "{} is no PNG",
            path.display()
        );
        let img = image::load_from_memory_with_format(&bytes, image::ImageFormat::Png).unwrap();
        assert_eq!((img.width(), img.height()), (WIDTH, HEIGHT));
    }

    fn check_svg(path: &Path, names: &[&str]) {
        let text = std::fs::read_to_string(path).unwrap();
        assert!(text.starts_with("<svg"), "{} is no SVG", path.display());
        assert!(text.trim_end().ends_with("</svg>"));
        let texts = svg_texts(&text);
        for name in names {
            assert!(
                texts.iter().any(|t| t == name),
                "{name} missing from {texts:?}"
            );
        }
    }

    /// The contents of the SVG's `<text>` elements, trimmed.
    fn svg_texts(svg: &str) -> Vec<String> {
        svg.split("<text")
            .skip(1)
            .filter_map(|t| {
                let body = &t[t.find('>')? + 1..];
                Some(body[..body.find("</text>")?].trim().to_string())
            })
            .collect()
    }

    #[test]
    fn no_two_series_share_colour_and_style() {
        let looks: Vec<(RGBColor, Option<(u32, u32)>)> =
            (0..36).map(|i| (colour(i), dash(i))).collect();
        for i in 0..looks.len() {
            for j in i + 1..looks.len() {
                assert_ne!(looks[i], looks[j], "series {i} and {j}");
            }
        }
        // The report's 15-policy timeline: the 13th (index 12) is blue like the first, dashed.
        assert_eq!(colour(12), colour(0));
        assert_eq!((dash(0), dash(12).is_some()), (None, true));
    }

    #[test]
    fn error_bars_are_per_policy_and_scenario() {
        let p = |policy: &str, scenario: &str, cost: f64, slo: f64| ScatterPoint {
            policy: policy.into(),
            scenario: scenario.into(),
            cost_usd: cost,
            slo_attainment: slo,
            spread: None,
        };
        let points = [
            p("hpa", "a", 10.0, 99.0),
            p("hpa", "a", 14.0, 97.0),
            p("hpa", "b", 5.0, 90.0),
            p("model", "a", 8.0, 99.5),
            p("model", "a", 8.0, 99.5),
            p("model", "a", f64::NAN, 99.5),
        ];
        let bars = error_bars(&points, &["hpa", "model"]);
        assert_eq!(bars.len(), 2, "one seed on hpa/b: no bar");
        assert_eq!(bars[0].idx, 0);
        assert_eq!(bars[0].cost.0, 12.0);
        assert!((bars[0].cost.1 - 8f64.sqrt()).abs() < 1e-12);
        assert_eq!(bars[0].slo, (98.0, 2f64.sqrt()));
        assert_eq!(
            (bars[1].idx, bars[1].cost, bars[1].slo),
            (1, (8.0, 0.0), (99.5, 0.0))
        );
    }

    const POLICIES: [&str; 3] = ["hpa", "kpa-tuned", "rl-ppo"];

    fn demo_series(n: usize) -> (Vec<f64>, Vec<f64>, Vec<f64>, Vec<ReplicaSeries>) {
        let t: Vec<f64> = (0..n).map(|i| i as f64 * 24.0 / n as f64).collect();
        let arrivals: Vec<f64> = t
            .iter()
            .map(|h| 40.0 + 30.0 * (h / 24.0 * std::f64::consts::TAU).sin())
            .collect();
        let needed: Vec<f64> = arrivals.iter().map(|a| a / 4.0).collect();
        let series = POLICIES
            .iter()
            .enumerate()
            .map(|(k, p)| ReplicaSeries {
                policy: p.to_string(),
                t_h: t.clone(),
                replicas: needed.iter().map(|r| (r + k as f64).ceil()).collect(),
            })
            .collect();
        (t, arrivals, needed, series)
    }

    fn demo_points() -> Vec<ScatterPoint> {
        let mut pts = Vec::new();
        for (k, p) in POLICIES.iter().enumerate() {
            for s in 0..3 {
                pts.push(ScatterPoint {
                    policy: p.to_string(),
                    scenario: format!("s{s}"),
                    cost_usd: 100.0 + 40.0 * k as f64 + 10.0 * s as f64,
                    slo_attainment: 97.0 + k as f64,
                    spread: None,
                });
            }
        }
        pts
    }

    #[test]
    fn timeline_writes_png_and_svg() {
        let dir = temp_dir("timeline");
        let (t, a, n, s) = demo_series(500);
        let plot = TimelinePlot {
            title: "diurnal",
            t_h: &t,
            arrival_rps: &a,
            needed_replicas: &n,
            series: &s,
        };
        let [png, svg] = timeline(&dir.join("tl"), &plot).unwrap();
        assert_eq!(png, dir.join("tl.png"));
        assert_eq!(svg, dir.join("tl.svg"));
        check_png(&png);
        check_svg(&svg, &POLICIES);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn scatter_writes_png_and_svg() {
        let dir = temp_dir("scatter");
        let [png, svg] = cost_vs_slo(&dir.join("sc"), "cost vs SLO", &demo_points(), 99.0).unwrap();
        check_png(&png);
        check_svg(&svg, &POLICIES);
        check_svg(&svg, &["SLO target (99 %)"]);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn scatter_uses_log_axis_only_beyond_20x() {
        let mk = |cost: f64| ScatterPoint {
            policy: "p".into(),
            scenario: "s".into(),
            cost_usd: cost,
            slo_attainment: 99.0,
            spread: None,
        };
        let wide = [mk(10.0), mk(250.0)];
        let narrow = [mk(10.0), mk(150.0)];
        assert!(Scatter::new("", &wide, 99.0).log_x);
        assert!(!Scatter::new("", &narrow, 99.0).log_x);
        assert_eq!(
            log_ticks(10.0, 250.0),
            vec![10.0, 20.0, 30.0, 50.0, 100.0, 200.0]
        );
        assert_eq!(linear_ticks(0.0, 1.0, 4), vec![0.0, 0.25, 0.5, 0.75, 1.0]);
    }

    #[test]
    fn same_policy_gets_same_colour_in_both_plots() {
        let (_, _, _, s) = demo_series(10);
        let tl = colour_order(s.iter().map(|s| s.policy.as_str()));
        let pts = demo_points();
        let sc = colour_order(pts.iter().map(|p| p.policy.as_str()));
        assert_eq!(tl, POLICIES);
        assert_eq!(sc, POLICIES);
        // 12 distinct colours; policies 1 and 13 share a colour but not a marker.
        for (i, a) in PALETTE.iter().enumerate() {
            assert!(PALETTE[..i].iter().all(|b| b != a), "colour {i} repeats");
        }
        assert_eq!(colour(0), colour(12));
        assert_ne!(marker_kind(0), marker_kind(12));
    }

    #[test]
    fn decimation_keeps_exact_envelope() {
        let xs: Vec<f64> = (0..8).map(f64::from).collect();
        let ys = [1.0, 2.0, 9.0, 3.0, 0.0, 4.0, 5.0, 6.0];
        // One bucket: first, max, min, last in their original order.
        assert_eq!(
            decimate(&xs, &ys, 4),
            vec![(0.0, 1.0), (2.0, 9.0), (4.0, 0.0), (7.0, 6.0)]
        );
        // Short input: unchanged.
        assert_eq!(decimate(&xs[..3], &ys[..3], 4).len(), 3);
    }

    #[test]
    fn decimation_keeps_single_sample_spike() {
        let n = 80_000;
        let xs: Vec<f64> = (0..n).map(|i| i as f64 / 1000.0).collect();
        let mut ys = vec![5.0; n];
        ys[12_345] = 40.0;
        ys[54_321] = 1.0;
        let d = decimate(&xs, &ys, MAX_DRAW_POINTS);
        assert!(d.len() <= MAX_DRAW_POINTS, "{} points", d.len());
        assert!(d.contains(&(12.345, 40.0)));
        assert!(d.contains(&(54.321, 1.0)));
        assert_eq!(d.first(), Some(&(0.0, 5.0)));
        assert_eq!(d.last(), Some(&(79.999, 5.0)));
        assert!(d.windows(2).all(|w| w[0].0 < w[1].0), "order kept");
    }

    #[test]
    fn decimation_skips_nan() {
        let xs = [0.0, 1.0, f64::NAN, 3.0, 4.0];
        let ys = [1.0, f64::NAN, 2.0, f64::INFINITY, 5.0];
        assert_eq!(decimate(&xs, &ys, 100), vec![(0.0, 1.0), (4.0, 5.0)]);
    }

    #[test]
    fn nan_and_empty_inputs_do_not_panic() {
        let dir = temp_dir("nan");
        let nan = [f64::NAN; 4];
        let t = [0.0, 1.0, 2.0, 3.0];
        let series = [
            ReplicaSeries {
                policy: "all-nan".into(),
                t_h: t.to_vec(),
                replicas: nan.to_vec(),
            },
            ReplicaSeries {
                policy: "empty".into(),
                t_h: vec![],
                replicas: vec![],
            },
        ];
        let plot = TimelinePlot {
            title: "nan",
            t_h: &t,
            arrival_rps: &nan,
            needed_replicas: &nan,
            series: &series,
        };
        let [png, svg] = timeline(&dir.join("nan"), &plot).unwrap();
        check_png(&png);
        check_svg(&svg, &["all-nan", "empty", "no data"]);
        let empty = TimelinePlot {
            title: "empty",
            t_h: &[],
            arrival_rps: &[],
            needed_replicas: &[],
            series: &[],
        };
        timeline(&dir.join("empty"), &empty).unwrap();

        let mut pts = demo_points();
        pts[0].cost_usd = f64::NAN;
        pts[1].slo_attainment = f64::NAN;
        pts[2].cost_usd = f64::INFINITY;
        cost_vs_slo(&dir.join("sc-nan"), "nan", &pts, f64::NAN).unwrap();
        let [_, svg] = cost_vs_slo(&dir.join("sc-empty"), "empty", &[], 99.0).unwrap();
        check_svg(&svg, &["no data"]);
        let one = &demo_points()[..1];
        cost_vs_slo(&dir.join("sc-one"), "one", one, 99.0).unwrap();
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn bad_path_names_the_path() {
        let parent = temp_dir("bad");
        let dir = parent.join("does-not-exist");
        let stem = dir.join("plot");
        let (t, a, n, s) = demo_series(20);
        let plot = TimelinePlot {
            title: "x",
            t_h: &t,
            arrival_rps: &a,
            needed_replicas: &n,
            series: &s,
        };
        let err = timeline(&stem, &plot).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, PlotError::Io { .. }), "{err:?}");
        assert!(msg.contains(&stem.display().to_string()), "{msg}");
        let err = cost_vs_slo(&stem, "x", &demo_points(), 99.0).unwrap_err();
        assert!(err.to_string().contains(&stem.display().to_string()));
        assert!(!dir.exists());
        let _ = std::fs::remove_dir_all(parent);
    }

    #[test]
    fn suffix_is_appended_not_replaced() {
        assert_eq!(
            with_suffix(Path::new("a/b.v2"), "png"),
            PathBuf::from("a/b.v2.png")
        );
    }

    #[test]
    fn tick_labels_are_short() {
        assert_eq!(fmt_number(0.30000000000000004), "0.3");
        assert_eq!(fmt_number(12.0), "12");
        assert_eq!(fmt_number(99.5), "99.5");
        assert_eq!(fmt_number(25_000.0), "25k");
        assert_eq!(fmt_number(-0.0), "0");
        assert_eq!(fmt_usd(1234.0), "$1234");
    }

    /// The demo figures to look at, and the time of a large timeline:
    /// `cargo test --release -p rlscale-eval plot::tests::demo -- --ignored --nocapture`.
    #[test]
    #[ignore = "writes /tmp/plot-demo; run by hand"]
    fn demo() {
        let dir = PathBuf::from("/tmp/plot-demo");
        std::fs::create_dir_all(&dir).unwrap();
        let names = [
            "oracle",
            "fixed-peak",
            "hpa",
            "kpa",
            "keda",
            "apa",
            "ray-serve",
            "predictive-seasonal",
            "rl-ppo",
            "rl-ppo-conservative",
        ];
        let n = 80_000;
        // 48 h at ~2.16 s resolution: diurnal demand, noise and a burst.
        let t: Vec<f64> = (0..n).map(|i| i as f64 * 48.0 / n as f64).collect();
        let mut seed = 42u64;
        let mut rnd = move || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 11) as f64 / (1u64 << 53) as f64
        };
        let arrivals: Vec<f64> = t
            .iter()
            .map(|h| {
                let day = 60.0 + 45.0 * ((h - 8.0) / 24.0 * std::f64::consts::TAU).sin();
                let burst = if (30.0..30.5).contains(h) { 80.0 } else { 0.0 };
                (day + burst) * (0.85 + 0.3 * rnd())
            })
            .collect();
        let cap = 6.0;
        let needed: Vec<f64> = arrivals.iter().map(|a| a / cap).collect();
        let series: Vec<ReplicaSeries> = names
            .iter()
            .enumerate()
            .map(|(k, p)| {
                let lag = 200 * k;
                let over = 1.0 + 0.05 * k as f64;
                let mut reps = Vec::with_capacity(n);
                let mut cur = 10.0;
                for i in 0..n {
                    if i % 300 == 0 {
                        let j = i.saturating_sub(lag);
                        let target = (needed[j] * over).ceil().max(1.0);
                        cur = if k == 1 { 40.0 } else { target };
                    }
                    reps.push(cur);
                }
                ReplicaSeries {
                    policy: p.to_string(),
                    t_h: t.clone(),
                    replicas: reps,
                }
            })
            .collect();
        let plot = TimelinePlot {
            title: "diurnal-burst · 48 h · 10 policies",
            t_h: &t,
            arrival_rps: &arrivals,
            needed_replicas: &needed,
            series: &series,
        };
        let start = Instant::now();
        timeline(&dir.join("timeline"), &plot).unwrap();
        println!("timeline 80000 x 10: {:?}", start.elapsed());

        // Scenario sizes spread the costs over more than 20x: a log axis.
        let scenarios = [
            ("steady", 1.0),
            ("diurnal", 3.0),
            ("bursty", 8.0),
            ("flash-crowd", 25.0),
        ];
        let mut pts = Vec::new();
        for (k, p) in names.iter().enumerate() {
            for (s, (sc, size)) in scenarios.iter().enumerate() {
                let cost = 40.0 * size * (0.8 + 0.1 * k as f64) * if k == 1 { 3.0 } else { 1.0 };
                let slo = 100.0 - (0.2 + 0.3 * s as f64) * (1.0 + (k % 4) as f64) * rnd();
                pts.push(ScatterPoint {
                    policy: p.to_string(),
                    scenario: sc.to_string(),
                    cost_usd: cost,
                    slo_attainment: slo,
                    spread: None,
                });
            }
        }
        let start = Instant::now();
        cost_vs_slo(
            &dir.join("scatter"),
            "cost vs SLO attainment · 4 scenarios",
            &pts,
            99.0,
        )
        .unwrap();
        println!("scatter: {:?}", start.elapsed());
        let empty = TimelinePlot {
            title: "empty",
            t_h: &[],
            arrival_rps: &[],
            needed_replicas: &[],
            series: &[],
        };
        timeline(&dir.join("timeline-empty"), &empty).unwrap();
        cost_vs_slo(&dir.join("scatter-empty"), "empty", &[], 99.0).unwrap();
        let one: Vec<ScatterPoint> = pts
            .iter()
            .filter(|p| p.scenario == "diurnal")
            .cloned()
            .collect();
        cost_vs_slo(
            &dir.join("scatter-one"),
            "cost vs SLO attainment · diurnal",
            &one,
            99.0,
        )
        .unwrap();
    }
}
