//! Report writing: the machine-readable contract (`findings.json`, `scores/*.csv`), the snapshot
//! next month's run compares against, the charts and the HTML page. Only this module knows output
//! formats and pixels.

mod bigfile;
pub mod charts;
pub mod compare;
pub mod fonts;
pub mod html;
pub mod tables;

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use base64::Engine as _;

use crate::analyze::data::AuditData;
use crate::analyze::{Analysis, GroupInfo};
use crate::findings::{Finding, Subject};

/// A chart as the page shows it.
#[derive(Debug, Clone)]
pub struct ChartRef {
    /// File name inside `charts/`.
    pub file: String,
    /// Alt text.
    pub alt: String,
    /// The PNG, base64.
    pub b64: String,
}

/// Every chart of a report, by where it goes on the page.
#[derive(Debug, Default)]
pub struct Charts {
    /// Per product id, in page order.
    pub products: BTreeMap<String, Vec<ChartRef>>,
    /// Per group id.
    pub groups: BTreeMap<String, ChartRef>,
    /// Catalog-wide views.
    pub catalog: Vec<ChartRef>,
}

/// Groups that get a matrix chart (the first ones, in id order).
pub const MAX_GROUP_CHARTS: usize = 50;

enum Job<'a> {
    Daily(Option<usize>, Vec<(i64, i64)>),
    Lag(Option<usize>),
    Hours(Option<usize>),
    Ratings(Option<usize>),
    Weekly(usize, Vec<(i64, i64)>),
    Group(&'a GroupInfo),
    Pairs,
}

enum Place {
    Product(String),
    Group(String),
    Catalog,
}

struct Spec<'a> {
    place: Place,
    file: String,
    alt: String,
    job: Job<'a>,
}

fn windows_of(findings: &[Finding], product: &str, test: &str) -> Vec<(i64, i64)> {
    let day_of = |s: &str| {
        chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .ok()
            .and_then(|x| x.and_hms_opt(0, 0, 0))
            .map(|x| x.and_utc().timestamp().div_euclid(86_400))
    };
    findings
        .iter()
        .filter(|f| f.test == test && matches!(&f.subject, Subject::Product(p) if p == product))
        .filter_map(|f| {
            f.window
                .as_ref()
                .and_then(|w| Some((day_of(&w.from)?, day_of(&w.to)?)))
        })
        .collect()
}

fn plan<'a>(file: &tables::FindingsFile, a: &'a Analysis, d: &AuditData) -> Vec<Spec<'a>> {
    let index: BTreeMap<&str, usize> = d
        .products
        .iter()
        .enumerate()
        .map(|(i, p)| (p.as_str(), i))
        .collect();
    let mut specs = Vec::new();
    let mut add = |place: Place, file: String, alt: String, job: Job<'a>| {
        specs.push(Spec {
            place,
            file,
            alt,
            job,
        })
    };
    let catalog = [
        (
            "catalog-daily",
            "Daily reviews by star rating and shipped orders, all products",
        ),
        (
            "catalog-lag",
            "Time from purchase to review, all linked reviews",
        ),
        (
            "catalog-hours",
            "Reviews by local hour and weekday, all products",
        ),
        ("catalog-ratings", "Star ratings of all audited reviews"),
        ("product-pairs", "Products that share reviewers"),
    ];
    for (k, (name, alt)) in catalog.into_iter().enumerate() {
        let job = match k {
            0 => Job::Daily(None, Vec::new()),
            1 => Job::Lag(None),
            2 => Job::Hours(None),
            3 => Job::Ratings(None),
            _ => Job::Pairs,
        };
        add(Place::Catalog, format!("{name}.png"), alt.into(), job);
    }
    for p in html::sections(a) {
        let Some(&pi) = index.get(p.product_id.as_str()) else {
            continue;
        };
        let id = &p.product_id;
        let safe = charts::safe_name(id);
        let bursts = windows_of(file.findings, id, "burst");
        let weeks = windows_of(file.findings, id, "weekly_trend");
        let jobs = [
            (
                "daily",
                "Daily reviews by star rating and shipped orders",
                Job::Daily(Some(pi), bursts),
            ),
            (
                "lag",
                "Time from purchase to review against the catalog",
                Job::Lag(Some(pi)),
            ),
            (
                "hours",
                "Reviews by local hour and weekday against the catalog",
                Job::Hours(Some(pi)),
            ),
            (
                "ratings",
                "Star ratings against the catalog",
                Job::Ratings(Some(pi)),
            ),
            ("weekly", "Weekly signals", Job::Weekly(pi, weeks)),
        ];
        for (kind, alt, job) in jobs {
            add(
                Place::Product(id.clone()),
                format!("{kind}-{safe}.png"),
                format!("{alt} of {id}"),
                job,
            );
        }
    }
    for g in a.groups.iter().take(MAX_GROUP_CHARTS) {
        add(
            Place::Group(g.id.clone()),
            format!("group-{}.png", charts::safe_name(&g.id)),
            format!("Reviewer × product matrix of group {}", g.id),
            Job::Group(g),
        );
    }
    specs
}

fn draw(job: &Job, d: &AuditData, base: &charts::Baselines) -> Result<Option<Vec<u8>>> {
    match job {
        Job::Daily(p, w) => charts::daily(d, *p, w).map(Some),
        Job::Lag(p) => charts::lag(d, *p, base),
        Job::Hours(p) => charts::hours(d, *p, &d.local_time, base),
        Job::Ratings(p) => charts::ratings(d, *p, base).map(Some),
        Job::Weekly(p, w) => charts::weekly(d, *p, w, base),
        Job::Group(g) => charts::group_matrix(d, g).map(Some),
        Job::Pairs => charts::product_pairs(d),
    }
}

/// A drawn chart's PNG (`None`: not enough data for it).
type Drawn = Result<Option<Vec<u8>>>;

/// Draw every chart (on all cores; the result does not depend on the thread count) and write the
/// PNG files into `charts_dir`.
fn draw_all(specs: &[Spec], d: &AuditData, charts_dir: &Path) -> Result<Charts> {
    let base = charts::Baselines::new(d);
    let threads = crate::analyze::worker_threads();
    let results: Vec<Drawn> = crate::analyze::in_pool(specs, threads, |spec| {
        draw(&spec.job, d, &base).with_context(|| format!("cannot draw {}", spec.file))
    });
    let mut out = Charts::default();
    for (spec, r) in specs.iter().zip(results) {
        let Some(png) = r? else { continue };
        let path = charts_dir.join(&spec.file);
        std::fs::write(&path, &png).with_context(|| format!("cannot write {}", path.display()))?;
        let c = ChartRef {
            file: spec.file.clone(),
            alt: spec.alt.clone(),
            b64: base64::engine::general_purpose::STANDARD.encode(&png),
        };
        match &spec.place {
            Place::Product(p) => out.products.entry(p.clone()).or_default().push(c),
            Place::Group(g) => {
                out.groups.insert(g.clone(), c);
            }
            Place::Catalog => out.catalog.push(c),
        }
    }
    Ok(out)
}

/// Create one folder inside the report's temporary folder. Never creates parents: if the temporary
/// folder has been removed (an interrupt), writers fail instead of re-creating it half-written.
pub fn make_subdir(p: &Path) -> std::io::Result<()> {
    match std::fs::create_dir(p) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        r => r,
    }
}

/// Write everything into `dir` (a temporary folder the caller renames into place).
pub fn write_all(
    dir: &Path,
    file: &tables::FindingsFile,
    a: &Analysis,
    d: &AuditData,
    comparison: Option<&compare::Comparison>,
) -> Result<()> {
    // The score tables, the snapshot and the charts with the page are independent files: made side
    // by side (the charts and the page, drawn last, left a core idle at scale). Errors are
    // reported in that order.
    let (tables, snapshot, page) = std::thread::scope(|s| {
        let t = s.spawn(|| tables::write(dir, file, a, d));
        let snap = s.spawn(|| compare::write_snapshot(dir, file, a, d, comparison));
        let page = write_page(dir, file, a, d, comparison);
        (t.join(), snap.join(), page)
    });
    for r in [tables, snapshot] {
        match r {
            Ok(r) => r?,
            Err(e) => std::panic::resume_unwind(e),
        }
    }
    page
}

/// `charts/*.png` and `index.html`, which shows them.
fn write_page(
    dir: &Path,
    file: &tables::FindingsFile,
    a: &Analysis,
    d: &AuditData,
    comparison: Option<&compare::Comparison>,
) -> Result<()> {
    let charts_dir = dir.join("charts");
    make_subdir(&charts_dir)?;
    let specs = plan(file, a, d);
    let charts = draw_all(&specs, d, &charts_dir)?;
    std::fs::write(
        dir.join("index.html"),
        html::render(file, a, d, &charts, comparison),
    )?;
    Ok(())
}
