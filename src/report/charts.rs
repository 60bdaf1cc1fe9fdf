//! PNG charts drawn with plotters and the embedded font (no system fonts):
//! - per flagged product: daily reviews by star rating with shipped orders and burst windows; the
//!   purchase→review lag histogram against the catalog; local hour × weekday heatmaps against the
//!   catalog; the star-rating distribution against the catalog (and the product's own past); weekly
//!   signals (reviews, orders, mean rating, 5★/1★/new-reviewer shares) with flagged weeks shaded;
//! - per reviewer group: the reviewer × product matrix (cell = star rating, label = date);
//! - catalog-wide: daily reviews and orders, lag histogram, hour × weekday heatmap, rating
//!   distribution, and the product × product shared-reviewer heatmap.
//!
//! Each chart is drawn into an RGB buffer and encoded here (best zlib compression, adaptive
//! filters), so the same data gives the same bytes.

use std::collections::{BTreeMap, HashMap};

use anyhow::{anyhow, Result};
use plotters::coord::Shift;
use plotters::prelude::*;

use super::fonts::{self, FAMILY};
use crate::analyze::data::{day_str, AuditData};
use crate::analyze::GroupInfo;

/// Colours for 1..5 stars (red → blue), readable on white and for common colour-blindness.
pub const RATING_COLOURS: [RGBColor; 5] = [
    RGBColor(202, 0, 32),
    RGBColor(244, 165, 130),
    RGBColor(190, 190, 190),
    RGBColor(146, 197, 222),
    RGBColor(5, 113, 176),
];
/// The subject of a chart (a product) next to its baseline.
const SUBJECT: RGBColor = RGBColor(5, 113, 176);
/// The catalog baseline.
const BASELINE: RGBColor = RGBColor(160, 160, 160);
/// The subject's own earlier reviews.
const EARLIER: RGBColor = RGBColor(120, 84, 160);
/// Shading of flagged windows.
const SHADE: RGBColor = RGBColor(255, 214, 170);
const ORANGE: RGBColor = RGBColor(230, 120, 20);
const RED: RGBColor = RGBColor(202, 0, 32);

/// A drawn chart.
#[derive(Debug, Clone)]
pub struct Chart {
    /// File name inside `charts/`.
    pub file: String,
    /// What it shows (the image's alt text).
    pub alt: String,
    /// PNG bytes.
    pub png: Vec<u8>,
}

type DrawResult = std::result::Result<(), Box<dyn std::error::Error + Send + Sync>>;
type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// A file-name-safe form of an id: `[A-Za-z0-9_-]` kept, anything else `_`, plus a short hash so two
/// ids that clean to the same string stay apart. No path separators, no leading dot.
pub fn safe_name(id: &str) -> String {
    let clean: String = id
        .chars()
        .take(40)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let h = blake3::hash(id.as_bytes()).to_hex();
    format!("{clean}-{}", &h.as_str()[..8])
}

/// Shorten a label to `n` characters (an ellipsis marks the cut).
fn short(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut o: String = s.chars().take(n.saturating_sub(1)).collect();
        o.push('…');
        o
    }
}

/// Draw into a `w`×`h` RGB buffer and encode it as PNG.
fn render(w: u32, h: u32, draw: impl FnOnce(&Area) -> DrawResult) -> Result<Vec<u8>> {
    fonts::register();
    let mut buf = vec![255u8; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        draw(&root).map_err(|e| anyhow!("{e}"))?;
        root.present().map_err(|e| anyhow!("{e}"))?;
    }
    let mut out = Vec::with_capacity(buf.len() / 8);
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_compression(png::Compression::Default);
        enc.set_adaptive_filter(png::AdaptiveFilterType::Adaptive);
        let mut wr = enc.write_header()?;
        wr.write_image_data(&buf)?;
        wr.finish()?;
    }
    Ok(out)
}

fn style(size: u32) -> TextStyle<'static> {
    (FAMILY, size).into_font().color(&BLACK)
}

/// A legend entry: a filled box or a line.
#[derive(Clone, Copy)]
enum Key {
    Fill(RGBColor),
    Line(RGBColor),
    Dashed(RGBColor),
}

/// One row of legend entries above a chart (never on top of the data).
fn legend_row(area: &Area, items: &[(String, Key)]) -> DrawResult {
    let mut x = 70;
    for (label, key) in items {
        match key {
            Key::Fill(c) => {
                area.draw(&Rectangle::new([(x, 5), (x + 14, 17)], c.filled()))?;
            }
            Key::Line(c) => {
                area.draw(&PathElement::new(
                    vec![(x, 11), (x + 16, 11)],
                    c.stroke_width(2),
                ))?;
            }
            Key::Dashed(c) => {
                area.draw(&PathElement::new(
                    vec![(x, 11), (x + 5, 11)],
                    c.stroke_width(2),
                ))?;
                area.draw(&PathElement::new(
                    vec![(x + 10, 11), (x + 16, 11)],
                    c.stroke_width(2),
                ))?;
            }
        }
        area.draw(&Text::new(label.clone(), (x + 22, 4), style(12)))?;
        let (w, _) = area.estimate_text_size(label, &style(12))?;
        x += 22 + w as i32 + 22;
    }
    Ok(())
}

/// Title on top, a legend row under it, the plot below.
fn frame<'a>(
    root: &Area<'a>,
    title: &str,
    legend: &[(String, Key)],
) -> std::result::Result<Area<'a>, Box<dyn std::error::Error + Send + Sync>> {
    root.fill(&WHITE)?;
    let body = root.titled(title, (FAMILY, 18))?;
    let (top, rest) = body.split_vertically(24);
    legend_row(&top, legend)?;
    Ok(rest)
}

/// No light grid lines: they turn into a grey wash at chart sizes.
const NO_LIGHT: ShapeStyle = ShapeStyle {
    color: RGBAColor(0, 0, 0, 0.0),
    filled: false,
    stroke_width: 0,
};

/// Which reviews a chart covers: one product's audited reviews, or all audited reviews.
fn audited(d: &AuditData, p: Option<usize>) -> Vec<u32> {
    match p {
        Some(p) => d.audited_of(p).collect(),
        None => (0..d.reviews.len() as u32)
            .filter(|&i| d.is_audited(i))
            .collect(),
    }
}

fn subject_name(d: &AuditData, p: Option<usize>) -> String {
    match p {
        Some(p) => short(&d.products[p], 40),
        None => "All products".into(),
    }
}

/// The catalog baselines product charts are drawn against, computed once per report.
pub struct Baselines {
    lag: [u64; 11],
    ratings: [u64; 5],
    hours: ([[u64; 24]; 7], u64),
    mean: f64,
}

impl Baselines {
    /// Over all audited reviews, counted in chunks on all cores and summed (counts only: the sum
    /// does not depend on the chunks).
    pub fn new(d: &AuditData) -> Baselines {
        let parts = crate::analyze::in_chunks(d.reviews.len(), 100_000, |range| {
            let all: Vec<u32> = (range.start as u32..range.end as u32)
                .filter(|&i| d.is_audited(i))
                .collect();
            let mut ratings = [0u64; 5];
            let mut sum = 0u64;
            for &i in &all {
                let r = d.reviews[i as usize].rating;
                ratings[(r as usize).clamp(1, 5) - 1] += 1;
                sum += r as u64;
            }
            (
                lag_counts(d, &all),
                ratings,
                hour_grid(d, &all),
                sum,
                all.len(),
            )
        });
        let mut b = Baselines {
            lag: [0; 11],
            ratings: [0; 5],
            hours: ([[0; 24]; 7], 0),
            mean: f64::NAN,
        };
        let (mut sum, mut n) = (0u64, 0usize);
        for (lag, ratings, (grid, hours_n), part_sum, part_n) in parts {
            b.lag.iter_mut().zip(lag).for_each(|(x, y)| *x += y);
            b.ratings.iter_mut().zip(ratings).for_each(|(x, y)| *x += y);
            for (row, part_row) in b.hours.0.iter_mut().zip(grid) {
                row.iter_mut().zip(part_row).for_each(|(x, y)| *x += y);
            }
            b.hours.1 += hours_n;
            sum += part_sum;
            n += part_n;
        }
        if n > 0 {
            b.mean = sum as f64 / n as f64;
        }
        b
    }
}

// ------------------------------------------------------------------ daily reviews and orders

/// Daily reviews (stacked by rating) and shipped orders of product `p` (or the catalog) over the
/// audited period, with `windows` (inclusive day numbers) shaded.
pub fn daily(d: &AuditData, p: Option<usize>, windows: &[(i64, i64)]) -> Result<Vec<u8>> {
    let (from, to) = (d.from_day, d.to_day);
    let n = (to - from + 1).max(1) as usize;
    let mut counts = vec![[0u32; 6]; n];
    for i in audited(d, p) {
        let r = &d.reviews[i as usize];
        counts[(r.day() - from) as usize][r.rating as usize] += 1;
    }
    let mut orders = vec![0u32; n];
    let mut add_order = |o: &crate::analyze::data::Ord| {
        if o.shipped && (from..=to).contains(&o.day()) {
            orders[(o.day() - from) as usize] += 1;
        }
    };
    match p {
        Some(p) => d.orders_by_product[p]
            .iter()
            .for_each(|&o| add_order(&d.orders[o as usize])),
        None => d.orders.iter().for_each(add_order),
    }
    let ymax = counts
        .iter()
        .map(|c| c.iter().sum::<u32>())
        .max()
        .unwrap_or(0)
        .max(1) as f64
        * 1.2;
    let omax = orders.iter().copied().max().unwrap_or(0).max(1) as f64 * 1.2;
    let title = format!("{}: reviews and shipped orders per day", subject_name(d, p));
    let mut legend: Vec<(String, Key)> = (1..=5)
        .map(|r| {
            (
                format!("{r}-star reviews"),
                Key::Fill(RATING_COLOURS[r - 1]),
            )
        })
        .collect();
    if d.has_orders {
        legend.push(("shipped orders (right axis)".into(), Key::Line(BLACK)));
    }
    if !windows.is_empty() {
        legend.push(("burst window".into(), Key::Fill(SHADE)));
    }
    render(960, 400, |root| {
        let area = frame(root, &title, &legend)?;
        let mut chart = ChartBuilder::on(&area)
            .margin(10)
            .x_label_area_size(44)
            .y_label_area_size(56)
            .right_y_label_area_size(if d.has_orders { 56 } else { 0 })
            .build_cartesian_2d(0i64..n as i64, 0f64..ymax)?
            .set_secondary_coord(0i64..n as i64, 0f64..omax);
        let fmt_day = |x: &i64| day_str(from + *x);
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(NO_LIGHT)
            .x_labels(7)
            .x_label_formatter(&fmt_day)
            .x_desc("date (UTC)")
            .y_desc("reviews per day")
            .y_labels(6)
            .y_label_formatter(&int_label)
            .label_style((FAMILY, 12))
            .axis_desc_style((FAMILY, 13))
            .draw()?;
        if d.has_orders {
            chart
                .configure_secondary_axes()
                .y_desc("shipped orders per day")
                .y_labels(6)
                .y_label_formatter(&int_label)
                .label_style((FAMILY, 12))
                .axis_desc_style((FAMILY, 13))
                .draw()?;
        }
        chart.draw_series(windows.iter().map(|&(a, b)| {
            Rectangle::new(
                [
                    ((a - from).max(0), 0.0),
                    ((b - from + 1).min(n as i64), ymax),
                ],
                SHADE.filled(),
            )
        }))?;
        for rating in 1..=5usize {
            let colour = RATING_COLOURS[rating - 1];
            chart.draw_series(
                counts
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| c[rating] > 0)
                    .map(|(day, c)| {
                        let below: u32 = c[1..rating].iter().sum();
                        let x = day as i64;
                        Rectangle::new(
                            [(x, below as f64), (x + 1, (below + c[rating]) as f64)],
                            colour.filled(),
                        )
                    }),
            )?;
        }
        if d.has_orders {
            chart.draw_secondary_series(LineSeries::new(
                orders
                    .iter()
                    .enumerate()
                    .map(|(x, o)| (x as i64, *o as f64)),
                BLACK.stroke_width(1),
            ))?;
        }
        Ok(())
    })
}

/// Integer axis labels: whole numbers only (fractions of a review make no sense on an axis).
fn int_label(v: &f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        String::new()
    }
}

// ------------------------------------------------------------------ grouped bars

struct Bars<'a> {
    title: String,
    x_desc: &'a str,
    y_desc: &'a str,
    categories: Vec<String>,
    /// (legend label, colour, value per category)
    series: Vec<(String, RGBColor, Vec<f64>)>,
}

fn grouped_bars(b: Bars) -> Result<Vec<u8>> {
    let n = b.categories.len();
    let k = b.series.len().max(1);
    let ymax = b
        .series
        .iter()
        .flat_map(|s| s.2.iter().copied())
        .fold(0.0f64, f64::max)
        .max(1.0)
        * 1.1;
    let legend: Vec<(String, Key)> = b
        .series
        .iter()
        .map(|(l, c, _)| (l.clone(), Key::Fill(*c)))
        .collect();
    render(960, 380, |root| {
        let area = frame(root, &b.title, &legend)?;
        let mut chart = ChartBuilder::on(&area)
            .margin(10)
            .x_label_area_size(44)
            .y_label_area_size(56)
            .build_cartesian_2d(-0.5f64..n as f64 - 0.5, 0f64..ymax)?;
        let cats = &b.categories;
        let fmt = |x: &f64| {
            let r = x.round();
            if (x - r).abs() < 1e-6 && r >= 0.0 && (r as usize) < cats.len() {
                cats[r as usize].clone()
            } else {
                String::new()
            }
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(NO_LIGHT)
            .x_labels(n)
            .x_label_formatter(&fmt)
            .x_desc(b.x_desc)
            .y_desc(b.y_desc)
            .y_labels(6)
            .y_label_formatter(&|v| format!("{v:.0}"))
            .label_style((FAMILY, 12))
            .axis_desc_style((FAMILY, 13))
            .draw()?;
        let width = 0.8 / k as f64;
        for (j, (_, colour, values)) in b.series.iter().enumerate() {
            let colour = *colour;
            chart.draw_series(values.iter().enumerate().map(|(i, v)| {
                let x0 = i as f64 - 0.4 + j as f64 * width;
                Rectangle::new([(x0, 0.0), (x0 + width * 0.92, *v)], colour.filled())
            }))?;
        }
        Ok(())
    })
}

fn shares(counts: &[u64]) -> Vec<f64> {
    let total: u64 = counts.iter().sum();
    counts
        .iter()
        .map(|&c| {
            if total == 0 {
                0.0
            } else {
                100.0 * c as f64 / total as f64
            }
        })
        .collect()
}

// ------------------------------------------------------------------ lag

/// Lag buckets: before purchase, then these upper edges in hours.
const LAG_EDGES_H: [f64; 9] = [1.0, 6.0, 24.0, 48.0, 96.0, 168.0, 336.0, 720.0, 1440.0];
const LAG_LABELS: [&str; 11] = [
    "before", "< 1 h", "1–6 h", "6–24 h", "1–2 d", "2–4 d", "4–7 d", "1–2 wk", "2–4 wk", "1–2 mo",
    "> 2 mo",
];

fn lag_bucket(secs: i64) -> usize {
    if secs < 0 {
        0
    } else {
        let h = secs as f64 / 3600.0;
        1 + LAG_EDGES_H.iter().filter(|&&e| h >= e).count()
    }
}

fn lag_counts(d: &AuditData, reviews: &[u32]) -> [u64; 11] {
    let mut c = [0u64; 11];
    for &i in reviews {
        if let Some(l) = crate::analyze::timing::lag_secs(d, i) {
            c[lag_bucket(l)] += 1;
        }
    }
    c
}

/// Minimum linked reviews for a lag histogram of one product.
pub const MIN_LAG_REVIEWS: u64 = 5;

/// Purchase→review lag of product `p` (share of its linked reviews per bucket) against the catalog;
/// `None` when too few of its reviews are linked to an order.
pub fn lag(d: &AuditData, p: Option<usize>, base: &Baselines) -> Result<Option<Vec<u8>>> {
    if !d.has_links {
        return Ok(None);
    }
    let all = base.lag;
    let mine = match p {
        Some(p) => lag_counts(d, &audited(d, Some(p))),
        None => all,
    };
    let n: u64 = mine.iter().sum();
    if n < MIN_LAG_REVIEWS {
        return Ok(None);
    }
    let n_all: u64 = all.iter().sum();
    let mut series = vec![(
        format!("{} (n = {n})", subject_name(d, p)),
        SUBJECT,
        shares(&mine),
    )];
    if p.is_some() {
        series.push((format!("catalog (n = {n_all})"), BASELINE, shares(&all)));
    }
    grouped_bars(Bars {
        title: format!(
            "{}: time from purchase to review, linked reviews",
            subject_name(d, p)
        ),
        x_desc: "time from purchase to review (before = review predates its order)",
        y_desc: "share of linked reviews (%)",
        categories: LAG_LABELS.iter().map(|s| s.to_string()).collect(),
        series,
    })
    .map(Some)
}

// ------------------------------------------------------------------ ratings

/// Star-rating distribution of product `p`'s audited reviews against the catalog and against the
/// product's own reviews before the audited period (when it has at least 10).
pub fn ratings(d: &AuditData, p: Option<usize>, base: &Baselines) -> Result<Vec<u8>> {
    let hist = |rs: &mut dyn Iterator<Item = u32>| {
        let mut c = [0u64; 5];
        for i in rs {
            c[(d.reviews[i as usize].rating as usize).clamp(1, 5) - 1] += 1;
        }
        c
    };
    let mine = hist(&mut audited(d, p).into_iter());
    let n: u64 = mine.iter().sum();
    let mut series = vec![(
        format!("{} (n = {n})", subject_name(d, p)),
        SUBJECT,
        shares(&mine),
    )];
    let earlier = match p {
        Some(p) => hist(
            &mut d.by_product[p]
                .iter()
                .copied()
                .filter(|&i| !d.is_audited(i)),
        ),
        None => hist(&mut (0..d.reviews.len() as u32).filter(|&i| !d.is_audited(i))),
    };
    let n_earlier: u64 = earlier.iter().sum();
    if n_earlier >= 10 {
        series.push((
            format!("before the period (n = {n_earlier})"),
            EARLIER,
            shares(&earlier),
        ));
    }
    if p.is_some() {
        let all = base.ratings;
        let n_all: u64 = all.iter().sum();
        series.push((format!("catalog (n = {n_all})"), BASELINE, shares(&all)));
    }
    grouped_bars(Bars {
        title: format!(
            "{}: star ratings of the audited reviews",
            subject_name(d, p)
        ),
        x_desc: "star rating",
        y_desc: "share of reviews (%)",
        categories: (1..=5)
            .map(|s| format!("{s} star{}", if s == 1 { "" } else { "s" }))
            .collect(),
        series,
    })
}

// ------------------------------------------------------------------ hour × weekday

const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// Minimum reviews with a time of day for a product's heatmap.
pub const MIN_HOUR_REVIEWS: u64 = 10;

fn hour_grid(d: &AuditData, reviews: &[u32]) -> ([[u64; 24]; 7], u64) {
    let mut g = [[0u64; 24]; 7];
    let mut n = 0;
    for &i in reviews {
        let r = &d.reviews[i as usize];
        if let (Some(h), Some(w)) = (r.hour(), r.wday()) {
            g[w as usize % 7][h as usize % 24] += 1;
            n += 1;
        }
    }
    (g, n)
}

/// White → dark blue; `t` in [0, 1].
fn blues(t: f64) -> RGBColor {
    let t = t.clamp(0.0, 1.0);
    let lerp = |a: f64, b: f64| (a + (b - a) * t).round() as u8;
    RGBColor(lerp(247.0, 8.0), lerp(251.0, 48.0), lerp(255.0, 107.0))
}

/// Heat scale maximum: cell share relative to a uniform spread over the 168 hours of a week.
const HEAT_MAX: f64 = 4.0;

fn heat_panel(area: &Area, title: &str, grid: &[[u64; 24]; 7], n: u64) -> DrawResult {
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FAMILY, 14))
        .margin(8)
        .x_label_area_size(40)
        .y_label_area_size(40)
        .build_cartesian_2d(-0.5f64..23.5, -0.5f64..6.5)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(24)
        .x_label_formatter(&|x| {
            let h = x.round() as i64;
            if (x - x.round()).abs() < 1e-6 && h % 3 == 0 {
                format!("{h:02}")
            } else {
                String::new()
            }
        })
        .y_labels(7)
        .y_label_formatter(&|y| {
            let r = y.round();
            if (y - r).abs() < 1e-6 && (0.0..7.0).contains(&r) {
                WEEKDAYS[6 - r as usize].to_string()
            } else {
                String::new()
            }
        })
        .x_desc("local hour of day")
        .label_style((FAMILY, 11))
        .axis_desc_style((FAMILY, 12))
        .draw()?;
    let scale = if n == 0 { 0.0 } else { 168.0 / n as f64 };
    chart.draw_series((0..7).flat_map(|w| {
        (0..24).map(move |h| {
            let v = grid[w][h] as f64 * scale / HEAT_MAX;
            let row = 6 - w as i64;
            Rectangle::new(
                [
                    (h as f64 - 0.5, row as f64 - 0.5),
                    (h as f64 + 0.5, row as f64 + 0.5),
                ],
                blues(v).filled(),
            )
        })
    }))?;
    Ok(())
}

/// Reviews by local hour and weekday of product `p` next to the catalog (each as a share of its
/// reviews, relative to a uniform spread); `None` without times of day or with too few reviews.
pub fn hours(
    d: &AuditData,
    p: Option<usize>,
    local_time: &str,
    base: &Baselines,
) -> Result<Option<Vec<u8>>> {
    let (mine, n) = hour_grid(d, &audited(d, p));
    if n < MIN_HOUR_REVIEWS {
        return Ok(None);
    }
    let other = p.map(|_| base.hours);
    // "UTC-5 (inferred from …)" → "UTC-5, inferred"; a zone name stays as it is.
    let zone = match local_time.split_once(" (") {
        Some((z, rest)) if rest.starts_with("inferred") => format!("{z}, inferred"),
        Some((z, _)) => z.to_string(),
        None => local_time.to_string(),
    };
    let title = format!(
        "{}: reviews by local hour and weekday (shop time {})",
        subject_name(d, p),
        short(&zone, 32)
    );
    let width = if other.is_some() { 1100 } else { 820 };
    render(width, 360, |root| {
        root.fill(&WHITE)?;
        let root = root.titled(&title, (FAMILY, 18))?;
        let (panels, legend) = root.split_vertically(280);
        let cols = if other.is_some() { 2 } else { 1 };
        let areas = panels.split_evenly((1, cols));
        heat_panel(
            &areas[0],
            &format!("{} (n = {n})", subject_name(d, p)),
            &mine,
            n,
        )?;
        if let (Some((g, m)), Some(area)) = (&other, areas.get(1)) {
            heat_panel(area, &format!("catalog (n = {m})"), g, *m)?;
        }
        // Colour scale.
        let (x0, bar_w, y0) = (60, 300, 12);
        for k in 0..bar_w {
            let t = k as f64 / bar_w as f64;
            legend.draw(&Rectangle::new(
                [(x0 + k, y0), (x0 + k + 1, y0 + 14)],
                blues(t).filled(),
            ))?;
        }
        legend.draw(&Rectangle::new(
            [(x0, y0), (x0 + bar_w, y0 + 14)],
            BLACK.mix(0.4),
        ))?;
        for (v, label) in [
            (0.0, "0"),
            (1.0, "1×"),
            (2.0, "2×"),
            (3.0, "3×"),
            (4.0, "≥ 4×"),
        ] {
            let x = x0 + (v / HEAT_MAX * bar_w as f64) as i32;
            legend.draw(&Text::new(label, (x - 6, y0 + 20), style(11)))?;
        }
        legend.draw(&Text::new(
            "reviews in the hour relative to an even spread over the week",
            (x0 + bar_w + 24, y0 + 1),
            style(12),
        ))?;
        Ok(())
    })
    .map(Some)
}

// ------------------------------------------------------------------ weekly signals

/// Minimum full weeks for the weekly chart.
const MIN_WEEKS: usize = 3;

/// Weekly signals of product `p` over the audited period (weeks start on its first day, as in the
/// weekly trend test): reviews and orders, mean rating against the catalog's, and the shares of
/// 5-star, 1-star and first-time reviewers, with `windows` shaded. `None` for fewer than 3 weeks.
pub fn weekly(
    d: &AuditData,
    p: usize,
    windows: &[(i64, i64)],
    base: &Baselines,
) -> Result<Option<Vec<u8>>> {
    let weeks = ((d.to_day - d.from_day + 1) / 7) as usize;
    if weeks < MIN_WEEKS {
        return Ok(None);
    }
    let mut buckets: Vec<Vec<u32>> = vec![Vec::new(); weeks];
    for i in d.audited_of(p) {
        let w = ((d.reviews[i as usize].day() - d.from_day) / 7) as usize;
        if w < weeks {
            buckets[w].push(i);
        }
    }
    let mut orders = vec![0u64; weeks];
    for &o in &d.orders_by_product[p] {
        let o = &d.orders[o as usize];
        let w = (o.day() - d.from_day).div_euclid(7);
        if o.shipped && w >= 0 && (w as usize) < weeks {
            orders[w as usize] += 1;
        }
    }
    let first_of = |reviewer: u32| d.by_reviewer[reviewer as usize].first().copied();
    let share = |b: &[u32], f: &dyn Fn(u32) -> bool| -> Option<f64> {
        (b.len() >= 3).then(|| 100.0 * b.iter().filter(|&&i| f(i)).count() as f64 / b.len() as f64)
    };
    let mean: Vec<Option<f64>> = buckets
        .iter()
        .map(|b| {
            (b.len() >= 3).then(|| {
                b.iter()
                    .map(|&i| d.reviews[i as usize].rating as f64)
                    .sum::<f64>()
                    / b.len() as f64
            })
        })
        .collect();
    let s5: Vec<Option<f64>> = buckets
        .iter()
        .map(|b| share(b, &|i| d.reviews[i as usize].rating == 5))
        .collect();
    let s1: Vec<Option<f64>> = buckets
        .iter()
        .map(|b| share(b, &|i| d.reviews[i as usize].rating == 1))
        .collect();
    let newr: Vec<Option<f64>> = buckets
        .iter()
        .map(|b| share(b, &|i| first_of(d.reviews[i as usize].reviewer) == Some(i)))
        .collect();
    let cat_mean = base.mean;
    let counts: Vec<u64> = buckets.iter().map(|b| b.len() as u64).collect();
    let rmax = counts.iter().copied().max().unwrap_or(0).max(1) as f64 * 1.2;
    let omax = orders.iter().copied().max().unwrap_or(0).max(1) as f64 * 1.2;
    let from = d.from_day;
    let shaded: Vec<(f64, f64)> = windows
        .iter()
        .map(|&(a, b)| {
            (
                ((a - from) as f64 / 7.0).max(0.0),
                ((b - from + 1) as f64 / 7.0).min(weeks as f64),
            )
        })
        .collect();
    let title = format!("{}: weekly signals", subject_name(d, Some(p)));
    let fmt_week = |x: &f64| {
        let r = x.round();
        if (x - r).abs() < 1e-6 {
            day_str(from + 7 * r as i64)
        } else {
            String::new()
        }
    };
    let mut legend: Vec<(String, Key)> = vec![("reviews".into(), Key::Fill(SUBJECT))];
    if d.has_orders {
        legend.push(("shipped orders".into(), Key::Fill(BASELINE)));
    }
    legend.extend([
        ("5-star share".to_string(), Key::Line(SUBJECT)),
        ("1-star share".to_string(), Key::Line(RED)),
        ("first review of the account".to_string(), Key::Line(ORANGE)),
    ]);
    if cat_mean.is_finite() {
        legend.push((format!("catalog mean {cat_mean:.2}"), Key::Dashed(BASELINE)));
    }
    if !shaded.is_empty() {
        legend.push(("flagged week".into(), Key::Fill(SHADE)));
    }
    let n_panels = if d.has_orders { 4 } else { 3 };
    let height = 120 + 150 * n_panels as u32;
    render(960, height, |root| {
        let area = frame(root, &title, &legend)?;
        let panels = area.split_evenly((n_panels, 1));
        let label_every = weeks.div_ceil(8).max(1);
        let axis = WeekAxis {
            weeks,
            x_labels: weeks / label_every + 1,
            fmt_week: &fmt_week,
            shaded: &shaded,
        };
        let mut panel = 0;
        // Bars per week (reviews, then orders).
        let bar_panels: Vec<(&str, &[u64], f64, RGBColor)> = if d.has_orders {
            vec![
                ("reviews / week", &counts[..], rmax, SUBJECT),
                ("orders / week", &orders[..], omax, BASELINE),
            ]
        } else {
            vec![("reviews / week", &counts[..], rmax, SUBJECT)]
        };
        for (desc, values, top, colour) in bar_panels {
            let mut c = week_panel(&panels[panel], &axis, 0f64..top, desc, None)?;
            c.draw_series(values.iter().enumerate().map(|(w, &v)| {
                Rectangle::new(
                    [(w as f64 + 0.1, 0.0), (w as f64 + 0.9, v as f64)],
                    colour.filled(),
                )
            }))?;
            panel += 1;
        }
        // Mean rating against the catalog's.
        let mut c2 = week_panel(&panels[panel], &axis, 1f64..5.2, "mean stars", None)?;
        if cat_mean.is_finite() {
            c2.draw_series(DashedLineSeries::new(
                [(0.0, cat_mean), (weeks as f64, cat_mean)],
                6,
                4,
                BASELINE.stroke_width(2),
            ))?;
        }
        draw_gappy(&mut c2, &mean, SUBJECT)?;
        // Shares.
        let mut c3 = week_panel(
            &panels[panel + 1],
            &axis,
            0f64..105.0,
            "share (%)",
            Some("week starting (UTC); points only for weeks with at least 3 reviews"),
        )?;
        draw_gappy(&mut c3, &newr, ORANGE)?;
        draw_gappy(&mut c3, &s1, RED)?;
        draw_gappy(&mut c3, &s5, SUBJECT)?;
        Ok(())
    })
    .map(Some)
}

/// A weekly chart's panel: x = weeks of the audited period (dates of their first day), y = `y`,
/// no light grid, the flagged weeks shaded.
struct WeekAxis<'f> {
    weeks: usize,
    x_labels: usize,
    fmt_week: &'f dyn Fn(&f64) -> String,
    shaded: &'f [(f64, f64)],
}

type WeekChart<'a, 'b> = ChartContext<
    'a,
    BitMapBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

fn week_panel<'a, 'b>(
    area: &'a Area<'b>,
    axis: &WeekAxis,
    y: std::ops::Range<f64>,
    y_desc: &str,
    x_desc: Option<&str>,
) -> std::result::Result<WeekChart<'a, 'b>, Box<dyn std::error::Error + Send + Sync>> {
    let (lo, hi) = (y.start, y.end);
    let mut c = ChartBuilder::on(area)
        .margin(6)
        .x_label_area_size(if x_desc.is_some() { 40 } else { 22 })
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..axis.weeks as f64, y)?;
    let pct = |v: &f64| format!("{v:.0}");
    let mut mesh = c.configure_mesh();
    mesh.disable_x_mesh()
        .light_line_style(NO_LIGHT)
        .x_labels(axis.x_labels)
        .x_label_formatter(axis.fmt_week)
        .y_desc(y_desc)
        .y_labels(5)
        .label_style((FAMILY, 11))
        .axis_desc_style((FAMILY, 12));
    if hi > 100.0 {
        mesh.y_label_formatter(&pct);
    } else {
        mesh.y_label_formatter(&int_label);
    }
    if let Some(x) = x_desc {
        mesh.x_desc(x);
    }
    mesh.draw()?;
    c.draw_series(
        axis.shaded
            .iter()
            .map(|&(a, b)| Rectangle::new([(a, lo), (b, hi)], SHADE.filled())),
    )?;
    Ok(c)
}

/// A line with points, broken where a week has too few reviews.
fn draw_gappy<DB: DrawingBackend>(
    chart: &mut ChartContext<
        DB,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
    values: &[Option<f64>],
    colour: RGBColor,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
    for (w, v) in values.iter().enumerate() {
        match v {
            Some(v) => runs
                .last_mut()
                .into_iter()
                .for_each(|r| r.push((w as f64 + 0.5, *v))),
            None => runs.push(Vec::new()),
        }
    }
    for run in runs.into_iter().filter(|r| !r.is_empty()) {
        chart.draw_series(LineSeries::new(run.clone(), colour.stroke_width(2)))?;
        chart.draw_series(
            run.into_iter()
                .map(|xy| Circle::new(xy, 3, colour.filled())),
        )?;
    }
    Ok(())
}

// ------------------------------------------------------------------ labelled matrices

/// Most rows and columns a matrix chart shows.
pub const MATRIX_MAX: usize = 30;

struct Matrix {
    title: String,
    note: String,
    rows: Vec<String>,
    cols: Vec<String>,
    /// (row, col, fill, label)
    cells: Vec<(usize, usize, RGBColor, String)>,
    legend: Vec<(String, RGBColor)>,
}

fn matrix(m: Matrix) -> Result<Vec<u8>> {
    const CELL_W: i32 = 62;
    const CELL_H: i32 = 20;
    const LEFT: i32 = 215;
    const TOP: i32 = 92;
    let (nr, nc) = (m.rows.len() as i32, m.cols.len() as i32);
    let w = (LEFT + nc * CELL_W + 30).max(760) as u32;
    let legend_rows = m.legend.len().div_ceil(5) as i32;
    let h = (TOP + nr * CELL_H + 40 + legend_rows * 20) as u32;
    render(w, h, |root| {
        root.fill(&WHITE)?;
        root.draw(&Text::new(m.title.clone(), (12, 10), style(17)))?;
        root.draw(&Text::new(m.note.clone(), (12, 32), style(12)))?;
        // Column labels, staggered over two lines so neighbours never overlap.
        for (c, name) in m.cols.iter().enumerate() {
            let x = LEFT + c as i32 * CELL_W + 3;
            let y = TOP - 34 + (c as i32 % 2) * 15;
            root.draw(&Text::new(short(name, 16), (x, y), style(11)))?;
        }
        for (r, name) in m.rows.iter().enumerate() {
            let y = TOP + r as i32 * CELL_H + 4;
            root.draw(&Text::new(short(name, 28), (12, y), style(11)))?;
        }
        for r in 0..=nr {
            let y = TOP + r * CELL_H;
            root.draw(&PathElement::new(
                vec![(LEFT, y), (LEFT + nc * CELL_W, y)],
                BLACK.mix(0.15),
            ))?;
        }
        for c in 0..=nc {
            let x = LEFT + c * CELL_W;
            root.draw(&PathElement::new(
                vec![(x, TOP), (x, TOP + nr * CELL_H)],
                BLACK.mix(0.15),
            ))?;
        }
        for (r, c, fill, label) in &m.cells {
            let (x, y) = (LEFT + *c as i32 * CELL_W, TOP + *r as i32 * CELL_H);
            root.draw(&Rectangle::new(
                [(x + 1, y + 1), (x + CELL_W, y + CELL_H)],
                fill.filled(),
            ))?;
            let dark = (fill.0 as u32 + fill.1 as u32 + fill.2 as u32) < 330;
            let colour = if dark { WHITE } else { BLACK };
            root.draw(&Text::new(
                label.clone(),
                (x + 6, y + 4),
                (FAMILY, 11).into_font().color(&colour),
            ))?;
        }
        let ly = TOP + nr * CELL_H + 16;
        for (k, (label, colour)) in m.legend.iter().enumerate() {
            let x = 12 + (k as i32 % 5) * 150;
            let y = ly + (k as i32 / 5) * 20;
            root.draw(&Rectangle::new([(x, y), (x + 14, y + 12)], colour.filled()))?;
            root.draw(&Text::new(label.clone(), (x + 20, y), style(11)))?;
        }
        Ok(())
    })
}

/// A reviewer group as a reviewer × product matrix: each cell is a member's review of a product,
/// coloured by its stars and labelled with its date (month-day), so lockstep dates show.
pub fn group_matrix(d: &AuditData, g: &GroupInfo) -> Result<Vec<u8>> {
    let reviewer_ix: HashMap<&str, usize> = g
        .members
        .iter()
        .take(MATRIX_MAX)
        .enumerate()
        .map(|(i, m)| (m.as_str(), i))
        .collect();
    let product_ix: HashMap<&str, usize> = g
        .products
        .iter()
        .take(MATRIX_MAX)
        .enumerate()
        .map(|(i, p)| (p.as_str(), i))
        .collect();
    let wanted: std::collections::HashSet<&str> = g.review_ids.iter().map(|s| s.as_str()).collect();
    // Only the group's products are read (products are interned in id order: binary search).
    let mut cells: BTreeMap<(usize, usize), (u8, i64)> = BTreeMap::new();
    for (&pid, &ci) in &product_ix {
        let Ok(p) = d.products.binary_search_by(|x| x.as_str().cmp(pid)) else {
            continue;
        };
        for &i in &d.by_product[p] {
            let r = &d.reviews[i as usize];
            if !r.audited || !wanted.contains(r.id.as_str()) {
                continue;
            }
            if let Some(&ri) = reviewer_ix.get(&d.reviewers[r.reviewer as usize]) {
                cells.entry((ri, ci)).or_insert((r.rating, r.day()));
            }
        }
    }
    let cut = |n: usize, what: &str| {
        if n > MATRIX_MAX {
            format!("; first {MATRIX_MAX} of {n} {what}")
        } else {
            String::new()
        }
    };
    matrix(Matrix {
        title: format!("Reviewer group {}: who reviewed what, and when", g.id),
        note: format!(
            "{} accounts, {} products, {}..{}; cell = the account's review (colour: stars, label: month-day){}{}",
            g.members.len(),
            g.products.len(),
            g.window.from,
            g.window.to,
            cut(g.members.len(), "accounts"),
            cut(g.products.len(), "products")
        ),
        rows: g.members.iter().take(MATRIX_MAX).cloned().collect(),
        cols: g.products.iter().take(MATRIX_MAX).cloned().collect(),
        cells: cells
            .into_iter()
            .map(|((r, c), (rating, day))| {
                let date = day_str(day);
                (
                    r,
                    c,
                    RATING_COLOURS[(rating as usize).clamp(1, 5) - 1],
                    date.get(5..).unwrap_or(&date).to_string(),
                )
            })
            .collect(),
        legend: (1..=5)
            .map(|s| (format!("{s} star{}", if s == 1 { "" } else { "s" }), RATING_COLOURS[s - 1]))
            .collect(),
    })
}

/// Product × product heatmap: for the (at most 30) products that share the most reviewers with
/// other products, how many accounts reviewed both in the audited period. `None` when no two
/// products share a reviewer.
pub fn product_pairs(d: &AuditData) -> Result<Option<Vec<u8>>> {
    // Shared reviewers per pair, over reviewers with a bounded number of products (the counting
    // is linear in reviews × products per reviewer).
    let mut pair: HashMap<(u32, u32), u64> = HashMap::new();
    for revs in d.by_reviewer.iter() {
        let mut ps: Vec<u32> = revs
            .iter()
            .map(|&i| &d.reviews[i as usize])
            .filter(|r| r.audited)
            .map(|r| r.product)
            .collect();
        ps.sort_unstable();
        ps.dedup();
        if ps.len() < 2 || ps.len() > 50 {
            continue;
        }
        for (k, &a) in ps.iter().enumerate() {
            for &b in &ps[k + 1..] {
                *pair.entry((a, b)).or_insert(0) += 1;
            }
        }
    }
    // Rank products by their strongest overlap, then total overlap.
    let mut strength: HashMap<u32, (u64, u64)> = HashMap::new();
    for (&(a, b), &c) in &pair {
        for p in [a, b] {
            let e = strength.entry(p).or_insert((0, 0));
            e.0 = e.0.max(c);
            e.1 += c;
        }
    }
    let mut ranked: Vec<(u32, (u64, u64))> =
        strength.into_iter().filter(|(_, s)| s.0 >= 2).collect();
    if ranked.len() < 2 {
        return Ok(None);
    }
    ranked.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(&y.0)));
    let total = ranked.len();
    ranked.truncate(MATRIX_MAX);
    let ids = seriate(&ranked.iter().map(|r| r.0).collect::<Vec<_>>(), &pair);
    let max = pair.values().copied().max().unwrap_or(1).max(1) as f64;
    let mut cells = Vec::new();
    for (r, &a) in ids.iter().enumerate() {
        for (c, &b) in ids.iter().enumerate() {
            if a == b {
                continue;
            }
            let key = (a.min(b), a.max(b));
            if let Some(&n) = pair.get(&key) {
                cells.push((r, c, blues((n as f64).ln_1p() / max.ln_1p()), n.to_string()));
            }
        }
    }
    let note = if total > MATRIX_MAX {
        format!("cell = accounts that reviewed both products in the period; the {MATRIX_MAX} of {total} products with the strongest overlap")
    } else {
        "cell = accounts that reviewed both products in the period (products sharing ≥ 2 accounts with another)".to_string()
    };
    let names: Vec<String> = ids
        .iter()
        .map(|&p| d.products[p as usize].clone())
        .collect();
    Ok(Some(matrix(Matrix {
        title: "Products that share reviewers".into(),
        note,
        rows: names.clone(),
        cols: names,
        cells,
        legend: vec![
            ("few shared accounts".into(), blues(2f64.ln() / max.ln_1p())),
            (format!("{max:.0} shared accounts"), blues(1.0)),
        ],
    })?))
}

/// Order products so that those sharing reviewers sit next to each other: start with the first
/// (strongest), then repeatedly take the product sharing the most reviewers with the last few placed.
fn seriate(ids: &[u32], pair: &HashMap<(u32, u32), u64>) -> Vec<u32> {
    let shared = |a: u32, b: u32| pair.get(&(a.min(b), a.max(b))).copied().unwrap_or(0);
    let mut left: Vec<u32> = ids.to_vec();
    let mut out: Vec<u32> = Vec::with_capacity(ids.len());
    while !left.is_empty() {
        let recent = &out[out.len().saturating_sub(3)..];
        let (k, _) = left
            .iter()
            .enumerate()
            .map(|(k, &c)| (k, recent.iter().map(|&r| shared(r, c)).sum::<u64>()))
            .fold((0, 0), |best, x| if x.1 > best.1 { x } else { best });
        out.push(left.remove(k));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_names() {
        assert!(safe_name("B00YQ6X8EO").starts_with("B00YQ6X8EO-"));
        let evil = safe_name("../../etc/passwd");
        assert!(!evil.contains('/') && !evil.starts_with('.'));
        assert_ne!(safe_name("a/b"), safe_name("a_b"));
    }

    #[test]
    fn lag_buckets() {
        assert_eq!(lag_bucket(-5), 0);
        assert_eq!(lag_bucket(0), 1);
        assert_eq!(lag_bucket(1800), 1);
        assert_eq!(lag_bucket(3 * 3600), 2);
        assert_eq!(lag_bucket(30 * 3600), 4);
        assert_eq!(lag_bucket(100 * 86_400), 10);
        assert_eq!(LAG_LABELS.len(), LAG_EDGES_H.len() + 2);
    }

    #[test]
    fn shortened_labels_keep_their_start() {
        assert_eq!(short("abc", 5), "abc");
        assert_eq!(short("abcdefgh", 5), "abcd…");
    }
}
