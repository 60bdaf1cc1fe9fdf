//! PNG charts drawn with plotters and the embedded font (no system fonts). Today: per flagged
//! product, daily reviews stacked by star rating with shipped orders on a second axis and burst
//! windows shaded.

use std::path::Path;

use anyhow::{anyhow, Result};
use plotters::prelude::*;

use super::fonts::{self, FAMILY};
use crate::analyze::data::{day_str, AuditData};

/// Colours for 1..5 stars (red → green), readable on white and for common colour-blindness.
pub const RATING_COLOURS: [RGBColor; 5] = [
    RGBColor(202, 0, 32),
    RGBColor(244, 165, 130),
    RGBColor(190, 190, 190),
    RGBColor(146, 197, 222),
    RGBColor(5, 113, 176),
];

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

/// Daily reviews (stacked by rating) and shipped orders of product `p` over the audited period,
/// with `windows` (inclusive day numbers) shaded. Writes a PNG to `path`.
pub fn daily_chart(d: &AuditData, p: usize, windows: &[(i64, i64)], path: &Path) -> Result<()> {
    fonts::register();
    let (from, to) = (d.from_day, d.to_day);
    let n = (to - from + 1).max(1) as usize;
    let mut counts = vec![[0u32; 6]; n];
    for i in d.audited_of(p) {
        let r = &d.reviews[i as usize];
        counts[(r.day - from) as usize][r.rating as usize] += 1;
    }
    let mut orders = vec![0u32; n];
    for &o in &d.orders_by_product[p] {
        let o = &d.orders[o as usize];
        if o.shipped && (from..=to).contains(&o.day) {
            orders[(o.day - from) as usize] += 1;
        }
    }
    let ymax = counts
        .iter()
        .map(|c| c.iter().sum::<u32>())
        .max()
        .unwrap_or(0)
        .max(1) as f64
        * 1.15;
    let omax = orders.iter().copied().max().unwrap_or(0).max(1) as f64 * 1.15;
    let err = |e: &dyn std::fmt::Debug| anyhow!("cannot draw chart {}: {e:?}", path.display());
    let root = BitMapBackend::new(path, (960, 380)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("{}: reviews and shipped orders per day", d.products[p]),
            (FAMILY, 18),
        )
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(56)
        .right_y_label_area_size(if d.has_orders { 56 } else { 0 })
        .build_cartesian_2d(0i64..n as i64, 0f64..ymax)
        .map_err(|e| err(&e))?
        .set_secondary_coord(0i64..n as i64, 0f64..omax);
    let fmt_day = |x: &i64| day_str(from + *x);
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(8)
        .x_label_formatter(&fmt_day)
        .x_desc("date (UTC)")
        .y_desc("reviews per day")
        .y_labels((ymax as usize).clamp(2, 10))
        .y_label_formatter(&|v| format!("{v:.0}"))
        .label_style((FAMILY, 12))
        .axis_desc_style((FAMILY, 13))
        .draw()
        .map_err(|e| err(&e))?;
    if d.has_orders {
        chart
            .configure_secondary_axes()
            .y_desc("shipped orders per day")
            .y_labels((omax as usize).clamp(2, 10))
            .y_label_formatter(&|v| format!("{v:.0}"))
            .label_style((FAMILY, 12))
            .axis_desc_style((FAMILY, 13))
            .draw()
            .map_err(|e| err(&e))?;
    }
    // Burst windows behind everything.
    let shade = RGBColor(255, 210, 160);
    if !windows.is_empty() {
        chart
            .draw_series(windows.iter().map(|&(a, b)| {
                Rectangle::new(
                    [
                        ((a - from).max(0), 0.0),
                        ((b - from + 1).min(n as i64), ymax),
                    ],
                    shade.filled(),
                )
            }))
            .map_err(|e| err(&e))?
            .label("burst window")
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], shade.filled()));
    }
    for rating in 1..=5usize {
        let colour = RATING_COLOURS[rating - 1];
        chart
            .draw_series(
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
            )
            .map_err(|e| err(&e))?
            .label(format!("{rating}-star reviews"))
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], colour.filled()));
    }
    if d.has_orders {
        chart
            .draw_secondary_series(LineSeries::new(
                orders
                    .iter()
                    .enumerate()
                    .map(|(x, o)| (x as i64, *o as f64)),
                BLACK.stroke_width(1),
            ))
            .map_err(|e| err(&e))?
            .label("shipped orders (right axis)")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 12, y)], BLACK));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font((FAMILY, 12))
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
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
}
