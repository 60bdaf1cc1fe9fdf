//! Month over month. Every report folder keeps what it saw: the audited period's reviews are in
//! `scores/reviews.csv`, the others (earlier data that served as baseline) in
//! `snapshot/other_reviews.csv.gz` (review id, product, reviewer, stars, time — no text, personal
//! fields were hashed at load; folders of earlier versions have every review in
//! `snapshot/reviews.csv.gz`, still read), and `snapshot/verdicts.csv` the verdict of each product
//! in this and up to 11 earlier periods. `--previous DIR` reads last month's folder and says which findings are new,
//! persisting or resolved, which reviews disappeared and which ratings changed, and carries the
//! verdict trend forward.
//!
//! Reviews are matched by their source id. Where the source has none (ids `<file stem>#<index>`,
//! which shift when an export grows) they are matched by product, reviewer and time instead. A
//! review of last month's snapshot counts as deleted only if it is not older than the earliest review of this
//! month's exports (an export that starts later simply does not cover it: counted as "outside this
//! export").

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use super::tables::FindingsFile;
use crate::analyze::data::AuditData;
use crate::analyze::Analysis;
use crate::ingest::timestamp::format_utc;
use crate::UsageError;

/// A finding's verdict in a month it was not raised (the subject may still be insufficient).
pub const NOT_FLAGGED: &str = "not flagged";
/// Periods kept in `snapshot/verdicts.csv`.
pub const HISTORY: usize = 12;
/// Longest list of reviews or findings written per kind (totals are always given).
pub const MAX_LISTED: usize = 5000;

/// A review as a snapshot keeps it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SnapReview {
    /// Source id (or `<stem>#<index>`).
    pub review_id: String,
    /// Product.
    pub product_id: String,
    /// Reviewer.
    pub reviewer_id: String,
    /// Stars.
    pub rating: u8,
    /// RFC 3339 UTC.
    pub created_at: String,
}

/// Last month's report folder, read.
#[derive(Debug)]
pub struct Previous {
    /// Its period label, first and last day.
    pub period: (String, String, String),
    /// Its WARN/FAIL findings: key → (id, verdict).
    pub findings: BTreeMap<String, (String, String)>,
    /// Its snapshot of reviews.
    pub reviews: Vec<SnapReview>,
    /// Its verdict history: period labels, then product → verdict per period ("" = not audited).
    pub history: (Vec<String>, BTreeMap<String, Vec<String>>),
}

/// A finding compared with last month.
#[derive(Debug, Clone, Serialize)]
pub struct FindingChange {
    /// `test:subject kind:subject id` — what is compared (windows move from month to month).
    pub key: String,
    /// This month's finding id (or last month's, for resolved findings).
    pub id: String,
    /// Verdict this month (`not flagged` when resolved).
    pub verdict: String,
    /// Verdict last month (`not flagged` when new).
    pub previous_verdict: String,
}

/// A rating that changed.
#[derive(Debug, Clone, Serialize)]
pub struct RatingChange {
    /// Review id (this month's).
    pub review_id: String,
    /// Product.
    pub product_id: String,
    /// Stars last month.
    pub from: u8,
    /// Stars now.
    pub to: u8,
}

/// What changed since last month (`comparison` in findings.json).
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// Last month's period label.
    pub previous_period: String,
    /// Its first and last day.
    pub previous_from: String,
    /// Last day.
    pub previous_to: String,
    /// How reviews were matched: `review_id` or `product, reviewer and time`.
    pub matched_by: String,
    /// Findings (WARN/FAIL) not there last month.
    pub findings_new: Vec<FindingChange>,
    /// Findings there both months.
    pub findings_persisting: Vec<FindingChange>,
    /// Last month's findings that are gone.
    pub findings_resolved: Vec<FindingChange>,
    /// Reviews of last month's snapshot missing now (first `MAX_LISTED`).
    pub reviews_deleted: Vec<SnapReview>,
    /// How many.
    pub reviews_deleted_total: usize,
    /// Reviews whose stars changed (first `MAX_LISTED`).
    pub ratings_changed: Vec<RatingChange>,
    /// How many.
    pub ratings_changed_total: usize,
    /// Last month's reviews older than this month's exports reach (not counted as deleted).
    pub reviews_outside_this_export: usize,
    /// Period labels of the verdict history, oldest first, this period last.
    pub periods: Vec<String>,
    /// Per product: verdict per period ("" = not audited then), for products that warned or failed
    /// in any of them.
    pub verdict_trend: BTreeMap<String, Vec<String>>,
    /// The whole history, every product (what `snapshot/verdicts.csv` keeps).
    #[serde(skip)]
    pub history: History,
}

fn usage(dir: &Path, what: String) -> anyhow::Error {
    UsageError(format!("--previous {}: {what}", dir.display())).into()
}

fn finding_key(test: &str, kind: &str, id: &str) -> String {
    format!("{test}:{kind}:{id}")
}

/// Ids revaudit made up (`<file stem>#<record index>`): not stable across exports.
fn assigned_id(id: &str) -> bool {
    id.rsplit_once('#')
        .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

impl Previous {
    /// Read last month's report folder.
    pub fn load(dir: &Path) -> Result<Previous> {
        if !dir.is_dir() {
            return Err(usage(dir, "is not a report folder".into()));
        }
        let fpath = dir.join("findings.json");
        let text = std::fs::read_to_string(&fpath)
            .map_err(|e| usage(dir, format!("cannot read findings.json: {e}")))?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| usage(dir, format!("findings.json is not valid JSON: {e}")))?;
        if v["schema_version"].as_u64() != Some(super::tables::SCHEMA_VERSION as u64) {
            return Err(usage(
                dir,
                format!(
                    "findings.json has schema_version {} (this revaudit reads {})",
                    v["schema_version"],
                    super::tables::SCHEMA_VERSION
                ),
            ));
        }
        let s = |x: &serde_json::Value| x.as_str().unwrap_or("").to_string();
        let period = (
            s(&v["period"]["label"]),
            s(&v["period"]["from"]),
            s(&v["period"]["to"]),
        );
        let mut findings = BTreeMap::new();
        for f in v["findings"].as_array().into_iter().flatten() {
            let key = finding_key(
                f["test"].as_str().unwrap_or(""),
                f["subject"]["kind"].as_str().unwrap_or(""),
                f["subject"]["id"].as_str().unwrap_or(""),
            );
            let verdict = s(&f["verdict"]);
            // Several windows of one test on one subject: keep the worst.
            let e = findings
                .entry(key)
                .or_insert((s(&f["id"]), verdict.clone()));
            if rank(&verdict) > rank(&e.1) {
                *e = (s(&f["id"]), verdict);
            }
        }
        let snap = dir.join("snapshot");
        let reviews = read_previous_reviews(dir).map_err(|e| usage(dir, format!("{e:#}")))?;
        let history =
            read_history(&snap.join("verdicts.csv")).map_err(|e| usage(dir, format!("{e:#}")))?;
        Ok(Previous {
            period,
            findings,
            reviews,
            history,
        })
    }
}

fn rank(v: &str) -> u8 {
    match v {
        "fail" => 3,
        "warn" => 2,
        "insufficient" => 1,
        _ => 0,
    }
}

/// The snapshot's reviews outside the audited period (`scores/reviews.csv` lists the others).
const OTHER_REVIEWS: &str = "snapshot/other_reviews.csv.gz";
/// Every review, in report folders written before the snapshot left out the scored ones.
const ALL_REVIEWS: &str = "snapshot/reviews.csv.gz";
/// The columns a snapshot of reviews has, in this order.
const SNAPSHOT_COLUMNS: [&str; 5] = [
    "review_id",
    "product_id",
    "reviewer_id",
    "rating",
    "created_at",
];

/// Every review last month's folder saw, in time order: the scored ones from
/// `scores/reviews.csv` (cells neutralised against formulas there are read back as they were),
/// the rest from `OTHER_REVIEWS`; or all from `ALL_REVIEWS` in an older folder.
fn read_previous_reviews(dir: &Path) -> Result<Vec<SnapReview>> {
    let mut out = Vec::new();
    if dir.join(ALL_REVIEWS).is_file() {
        read_reviews(dir, ALL_REVIEWS, true, &mut out)?;
    } else {
        read_reviews(dir, "scores/reviews.csv", false, &mut out)?;
        read_reviews(dir, OTHER_REVIEWS, true, &mut out)?;
    }
    // RFC 3339 UTC times of one format: text order is time order.
    out.sort_by(|a, b| a.created_at.cmp(&b.created_at));
    Ok(out)
}

/// Append the reviews of `dir/name` (gzip-compressed or not) to `out`: the `SNAPSHOT_COLUMNS`,
/// found by name.
fn read_reviews(dir: &Path, name: &str, gz: bool, out: &mut Vec<SnapReview>) -> Result<()> {
    let path = dir.join(name);
    let f = std::fs::File::open(&path).with_context(|| format!("cannot open {name}"))?;
    let input: Box<dyn std::io::Read> = if gz {
        Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(f)))
    } else {
        Box::new(BufReader::new(f))
    };
    let mut r = csv::Reader::from_reader(input);
    let header = r
        .headers()
        .with_context(|| format!("{name} is unreadable"))?;
    let mut at = [0usize; 5];
    for (k, col) in SNAPSHOT_COLUMNS.iter().enumerate() {
        at[k] = header
            .iter()
            .position(|h| h == *col)
            .with_context(|| format!("{name} has no {col} column"))?;
    }
    let unescape = |s: &str| {
        if gz {
            s.to_string()
        } else {
            super::tables::csv_unsafe(s).to_string()
        }
    };
    for (k, rec) in r.records().enumerate() {
        let rec = rec.with_context(|| format!("{name} line {}", k + 2))?;
        let cell = |c: usize| rec.get(at[c]).unwrap_or("");
        let rating: u8 = cell(3)
            .parse()
            .ok()
            .filter(|x| (1..=5).contains(x))
            .with_context(|| format!("{name} line {}: rating '{}' is not 1–5", k + 2, cell(3)))?;
        out.push(SnapReview {
            review_id: unescape(cell(0)),
            product_id: unescape(cell(1)),
            reviewer_id: unescape(cell(2)),
            rating,
            created_at: cell(4).to_string(),
        });
    }
    Ok(())
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

type History = (Vec<String>, BTreeMap<String, Vec<String>>);

fn read_history(path: &Path) -> Result<History> {
    let f = std::fs::File::open(path)
        .with_context(|| format!("cannot open snapshot/{}", file_name(path)))?;
    let mut r = csv::Reader::from_reader(BufReader::new(f));
    let header = r.headers().context("snapshot/verdicts.csv is unreadable")?;
    if header.get(0) != Some("product_id") {
        anyhow::bail!("snapshot/verdicts.csv has an unexpected header");
    }
    let periods: Vec<String> = header.iter().skip(1).map(|s| s.to_string()).collect();
    let mut products = BTreeMap::new();
    for rec in r.records() {
        let rec = rec.context("snapshot/verdicts.csv is unreadable")?;
        let mut v: Vec<String> = rec.iter().skip(1).map(|s| s.to_string()).collect();
        v.resize(periods.len(), String::new());
        products.insert(rec[0].to_string(), v);
    }
    Ok((periods, products))
}

fn push_limited<T>(v: &mut Vec<T>, total: &mut usize, x: T) {
    *total += 1;
    if v.len() < MAX_LISTED {
        v.push(x);
    }
}

/// Compare this month's results with last month's folder.
pub fn compare(prev: &Previous, file: &FindingsFile, a: &Analysis, d: &AuditData) -> Comparison {
    // Findings.
    let mut now: BTreeMap<String, (String, String)> = BTreeMap::new();
    for f in file.findings {
        let (kind, id) = match &f.subject {
            crate::findings::Subject::Product(s) => ("product", s),
            crate::findings::Subject::Group(s) => ("group", s),
            crate::findings::Subject::Catalog(s) => ("catalog", s),
        };
        let key = finding_key(&f.test, kind, id);
        let v = f.verdict.as_str().to_string();
        let e = now.entry(key).or_insert((f.id.clone(), v.clone()));
        if rank(&v) > rank(&e.1) {
            *e = (f.id.clone(), v);
        }
    }
    let mut findings_new = Vec::new();
    let mut findings_persisting = Vec::new();
    let mut findings_resolved = Vec::new();
    for (key, (id, v)) in &now {
        match prev.findings.get(key) {
            Some((_, pv)) => findings_persisting.push(FindingChange {
                key: key.clone(),
                id: id.clone(),
                verdict: v.clone(),
                previous_verdict: pv.clone(),
            }),
            None => findings_new.push(FindingChange {
                key: key.clone(),
                id: id.clone(),
                verdict: v.clone(),
                previous_verdict: NOT_FLAGGED.into(),
            }),
        }
    }
    for (key, (id, pv)) in &prev.findings {
        if !now.contains_key(key) {
            findings_resolved.push(FindingChange {
                key: key.clone(),
                id: id.clone(),
                verdict: NOT_FLAGGED.into(),
                previous_verdict: pv.clone(),
            });
        }
    }
    // Reviews.
    let by_source_id = prev.reviews.iter().all(|r| !assigned_id(&r.review_id))
        && d.reviews.iter().all(|r| !assigned_id(&r.id));
    let key_of = |id: &str, product: &str, reviewer: &str, t: &str| -> String {
        if by_source_id {
            id.to_string()
        } else {
            format!("{product}\u{1f}{reviewer}\u{1f}{t}")
        }
    };
    let current: HashMap<String, (usize, u8)> = d
        .reviews
        .iter()
        .enumerate()
        .map(|(i, r)| {
            (
                key_of(
                    &r.id,
                    &d.products[r.product as usize],
                    &d.reviewers[r.reviewer as usize],
                    &format_utc(r.t),
                ),
                (i, r.rating),
            )
        })
        .collect();
    let earliest = d.reviews.iter().map(|r| r.t).min();
    let mut reviews_deleted = Vec::new();
    let mut reviews_deleted_total = 0;
    let mut ratings_changed = Vec::new();
    let mut ratings_changed_total = 0;
    let mut outside = 0;
    for r in &prev.reviews {
        let k = key_of(&r.review_id, &r.product_id, &r.reviewer_id, &r.created_at);
        match current.get(&k) {
            Some(&(i, rating)) => {
                if rating != r.rating {
                    let cur = &d.reviews[i];
                    push_limited(
                        &mut ratings_changed,
                        &mut ratings_changed_total,
                        RatingChange {
                            review_id: cur.id.to_string(),
                            product_id: d.products[cur.product as usize].clone(),
                            from: r.rating,
                            to: rating,
                        },
                    );
                }
            }
            None => {
                let t = chrono::DateTime::parse_from_rfc3339(&r.created_at)
                    .ok()
                    .map(|x| x.timestamp());
                if matches!((t, earliest), (Some(t), Some(e)) if t >= e) {
                    push_limited(&mut reviews_deleted, &mut reviews_deleted_total, r.clone());
                } else {
                    outside += 1;
                }
            }
        }
    }
    // Verdict trend: the products that warned or failed in any period of the history.
    let history = verdict_history(Some(&prev.history), &file.period.label, a);
    let periods = history.0.clone();
    let verdict_trend = history
        .1
        .iter()
        .filter(|(_, v)| v.iter().any(|x| x == "warn" || x == "fail"))
        .map(|(p, v)| (p.clone(), v.clone()))
        .collect();
    Comparison {
        previous_period: prev.period.0.clone(),
        previous_from: prev.period.1.clone(),
        previous_to: prev.period.2.clone(),
        matched_by: if by_source_id {
            "review_id".into()
        } else {
            "product, reviewer and time".into()
        },
        findings_new: findings_new.into_iter().take(MAX_LISTED).collect(),
        findings_persisting: findings_persisting.into_iter().take(MAX_LISTED).collect(),
        findings_resolved: findings_resolved.into_iter().take(MAX_LISTED).collect(),
        reviews_deleted,
        reviews_deleted_total,
        ratings_changed,
        ratings_changed_total,
        reviews_outside_this_export: outside,
        periods,
        verdict_trend,
        history,
    }
}

/// The verdict history up to this period: last month's (if any) with this period's verdicts
/// appended, at most `HISTORY` periods, products never audited in them dropped.
fn verdict_history(prev: Option<&History>, label: &str, a: &Analysis) -> History {
    let (mut periods, mut hist) = prev.cloned().unwrap_or_default();
    periods.push(label.to_string());
    let width = periods.len();
    for v in hist.values_mut() {
        v.resize(width, String::new());
    }
    for p in &a.products {
        hist.entry(p.product_id.clone())
            .or_insert_with(|| vec![String::new(); width])[width - 1] =
            p.verdict.as_str().to_string();
    }
    trim_history(&mut periods, &mut hist);
    (periods, hist)
}

fn trim_history(periods: &mut Vec<String>, hist: &mut BTreeMap<String, Vec<String>>) {
    if periods.len() > HISTORY {
        let cut = periods.len() - HISTORY;
        periods.drain(..cut);
        for v in hist.values_mut() {
            v.drain(..cut.min(v.len()));
        }
    }
    hist.retain(|_, v| v.iter().any(|x| !x.is_empty()));
}

/// Write `snapshot/` into the report folder.
pub fn write_snapshot(
    dir: &Path,
    file: &FindingsFile,
    a: &Analysis,
    d: &AuditData,
    comparison: Option<&Comparison>,
) -> Result<()> {
    let snap: PathBuf = dir.join("snapshot");
    super::make_subdir(&snap)?;
    let path = dir.join(OTHER_REVIEWS);
    // The reviews outside the audited period (`scores/reviews.csv` has the others), in time
    // order. One gzip member per block of rows, compressed on all cores (gzip readers read the
    // members as one stream). No file name and mtime 0 in the gzip headers: same reviews, same
    // bytes.
    let others: Vec<u32> = (0..d.reviews.len() as u32)
        .filter(|&k| !d.reviews[k as usize].audited)
        .collect();
    let gzip = |csv: Vec<u8>| -> Result<Vec<u8>> {
        let mut gz = flate2::GzBuilder::new().write(
            Vec::with_capacity(csv.len() / 3),
            flate2::Compression::fast(),
        );
        gz.write_all(&csv)?;
        Ok(gz.finish()?)
    };
    let mut head = Vec::new();
    let raw = super::tables::as_is;
    super::tables::put_row(&mut head, SNAPSHOT_COLUMNS, raw);
    let head = gzip(head)?;
    super::tables::write_in_blocks(&path, &head, others.len(), |range| {
        use super::tables::{Cell, Short};
        let mut csv = Vec::with_capacity(range.len() * 90);
        // The reviewer names, scattered over the name table, are requested ahead of the rows.
        let reviewer = |k: usize| d.reviews[others[k] as usize].reviewer as usize;
        let end = |k: usize| d.reviewers.prefetch_end(reviewer(k));
        let name = |k: usize| d.reviewers.prefetch(reviewer(k));
        super::tables::each_read_ahead(range, &[&end, &name], |k| {
            let r = &d.reviews[others[k] as usize];
            super::tables::put_row(
                &mut csv,
                [
                    Cell::Str(r.id.as_str()),
                    Cell::Str(d.products[r.product as usize].as_str()),
                    Cell::Str(&d.reviewers[r.reviewer as usize]),
                    Cell::Short(Short::int(r.rating as u64)),
                    Cell::Short(Short::utc(r.t)),
                ],
                raw,
            );
        });
        gzip(csv)
    })?;
    // Verdict history.
    let (periods, hist) = match comparison {
        Some(c) => c.history.clone(),
        None => verdict_history(None, &file.period.label, a),
    };
    let path = snap.join("verdicts.csv");
    let mut w = csv::Writer::from_path(&path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    let mut header = vec!["product_id".to_string()];
    header.extend(periods.iter().cloned());
    w.write_record(&header)?;
    for (p, v) in &hist {
        let mut row = vec![p.clone()];
        row.extend(v.iter().cloned());
        w.write_record(&row)?;
    }
    w.flush()?;
    Ok(())
}

/// Product ids of `trend` whose last verdict differs from the one before (for the summary).
pub fn changed_verdicts(c: &Comparison) -> BTreeSet<&str> {
    c.verdict_trend
        .iter()
        .filter(|(_, v)| v.len() >= 2 && v[v.len() - 1] != v[v.len() - 2])
        .map(|(p, _)| p.as_str())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assigned_ids_are_recognised() {
        assert!(assigned_id("reviews#12"));
        assert!(assigned_id("my file#0"));
        assert!(!assigned_id("R1ABCDEF"));
        assert!(!assigned_id("reviews#"));
        assert!(!assigned_id("a#b"));
    }

    #[test]
    fn history_keeps_twelve_periods_and_drops_empty_rows() {
        let mut periods: Vec<String> = (1..=14).map(|m| format!("p{m}")).collect();
        let mut hist = BTreeMap::new();
        let mut v = vec![String::new(); 14];
        v[0] = "fail".into();
        hist.insert("gone".to_string(), v);
        hist.insert("kept".to_string(), vec!["pass".to_string(); 14]);
        trim_history(&mut periods, &mut hist);
        assert_eq!(periods.len(), HISTORY);
        assert_eq!(periods[0], "p3");
        assert!(!hist.contains_key("gone"));
        assert_eq!(hist["kept"].len(), HISTORY);
    }

    /// Last month's reviews come from the score table (ids read back as they were before the
    /// formula guard) and the snapshot of the others, in time order; an older folder's full
    /// snapshot is read as it is.
    #[test]
    fn previous_reviews_from_either_folder_layout() {
        use std::io::Write as _;
        let gz = |text: &str| {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(text.as_bytes()).unwrap();
            e.finish().unwrap()
        };
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::create_dir_all(p.join("scores")).unwrap();
        std::fs::create_dir_all(p.join("snapshot")).unwrap();
        std::fs::write(
            p.join("scores/reviews.csv"),
            "review_id,product_id,reviewer_id,created_at,rating,score,reasons\n\
             '=r2,B01,'-bob,2026-09-03T00:00:00Z,1,0.9,burst\n\
             r1,B01,''al,2026-09-02T10:00:00Z,5,0.1,\n",
        )
        .unwrap();
        let snapshot = |name: &str, rows: &str| {
            let head = "review_id,product_id,reviewer_id,rating,created_at\n";
            std::fs::write(p.join(name), gz(&format!("{head}{rows}"))).unwrap();
        };
        snapshot(OTHER_REVIEWS, "r0,B02,cy,4,2026-08-30T08:00:00Z\n");
        let got = read_previous_reviews(p).unwrap();
        let ids: Vec<(&str, &str, u8)> = got
            .iter()
            .map(|r| (r.review_id.as_str(), r.reviewer_id.as_str(), r.rating))
            .collect();
        assert_eq!(ids, [("r0", "cy", 4), ("r1", "'al", 5), ("=r2", "-bob", 1)]);
        // An older folder: every review in snapshot/reviews.csv.gz, the score table not read.
        std::fs::write(p.join("scores/reviews.csv"), "not,a,table\n").unwrap();
        snapshot(ALL_REVIEWS, "x1,B03,dee,2,2026-07-01T00:00:00Z\n");
        let got = read_previous_reviews(p).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].review_id, "x1");
        // A folder whose score table lost a column: the error names the file and the column.
        std::fs::remove_file(p.join(ALL_REVIEWS)).unwrap();
        let e = read_previous_reviews(p).unwrap_err().to_string();
        assert!(
            e.contains("scores/reviews.csv has no review_id column"),
            "{e}"
        );
    }
}
