//! Report writing: the machine-readable contract (`findings.json`, `scores/*.csv`), the charts and
//! the HTML page. Only this module knows output formats and pixels.

pub mod charts;
pub mod fonts;
pub mod html;
pub mod tables;

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use base64::Engine as _;

use crate::analyze::data::AuditData;
use crate::analyze::Analysis;
use crate::findings::Subject;

/// Write everything into `dir` (a temporary folder the caller renames into place).
pub fn write_all(
    dir: &Path,
    file: &tables::FindingsFile,
    a: &Analysis,
    d: &AuditData,
) -> Result<()> {
    tables::write(dir, file, a)?;
    let charts_dir = dir.join("charts");
    std::fs::create_dir_all(&charts_dir)?;
    let index: BTreeMap<&str, usize> = d
        .products
        .iter()
        .enumerate()
        .map(|(i, p)| (p.as_str(), i))
        .collect();
    let day_of = |s: &str| {
        chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .ok()
            .and_then(|x| x.and_hms_opt(0, 0, 0))
            .map(|x| x.and_utc().timestamp().div_euclid(86_400))
    };
    let mut charts = BTreeMap::new();
    for p in html::sections(a) {
        let Some(&pi) = index.get(p.product_id.as_str()) else {
            continue;
        };
        let windows: Vec<(i64, i64)> = file
            .findings
            .iter()
            .filter(|f| f.test == "burst" && f.subject == Subject::Product(p.product_id.clone()))
            .filter_map(|f| {
                f.window
                    .as_ref()
                    .and_then(|w| Some((day_of(&w.from)?, day_of(&w.to)?)))
            })
            .collect();
        let name = format!("daily-{}.png", charts::safe_name(&p.product_id));
        let path = charts_dir.join(&name);
        charts::daily_chart(d, pi, &windows, &path)?;
        let bytes =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        charts.insert(
            p.product_id.clone(),
            (
                name,
                base64::engine::general_purpose::STANDARD.encode(bytes),
            ),
        );
    }
    std::fs::write(dir.join("index.html"), html::render(file, a, d, &charts))?;
    Ok(())
}
