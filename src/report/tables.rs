//! `findings.json` (versioned schema) and `scores/{reviews,reviewers,products}.csv`.
//!
//! CSV cells that a spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`, tab or
//! carriage return) get a leading apostrophe: review text and ids are attacker-controlled.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::analyze::data::AuditData;
use crate::analyze::{Analysis, GroupInfo, ProductPair, TestTally};
use crate::config::AuditConfig;
use crate::findings::{Finding, NotRun, Verdict};
use crate::ingest::LoadReport;
use crate::pages::prefetch;

/// Version of the findings.json layout.
pub const SCHEMA_VERSION: u32 = 1;

/// The audited period.
#[derive(Debug, Clone, Serialize)]
pub struct Period {
    /// Folder name / label (`2026-10`, `sample`, `all`).
    pub label: String,
    /// First audited day.
    pub from: String,
    /// Last audited day.
    pub to: String,
}

/// What was analysed.
#[derive(Debug, Clone, Serialize)]
pub struct DataSummary {
    /// The ingest report: files, encodings, rejected rows, de-duplication, link rate.
    pub load: LoadReport,
    /// Reviews in the audited period.
    pub reviews_audited: usize,
    /// Products with reviews or orders in the period.
    pub products: usize,
    /// Reviewers in the period.
    pub reviewers: usize,
    /// Orders were given.
    pub orders_available: bool,
    /// Share of reviews linked to an order.
    pub link_rate: f64,
    /// `second` or `day`.
    pub review_time_resolution: String,
    /// Local time used for hour-of-day statistics.
    pub local_time: String,
    /// Order→review lag model used to scale expected reviews by orders.
    pub lag_model: String,
}

/// Headline numbers.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Products per verdict.
    pub product_verdicts: BTreeMap<String, usize>,
    /// Findings per verdict.
    pub findings: BTreeMap<String, usize>,
    /// The riskiest products (score order).
    pub top_risks: Vec<String>,
    /// Mean rating of audited reviews.
    pub original_rating: f64,
    /// Mean after down-weighting suspicious reviews.
    pub adjusted_rating: f64,
}

/// findings.json.
#[derive(Debug, Serialize)]
pub struct FindingsFile<'a> {
    /// Layout version.
    pub schema_version: u32,
    /// revaudit version.
    pub revaudit_version: &'static str,
    /// RFC 3339; honours SOURCE_DATE_EPOCH.
    pub generated_at: String,
    /// Period.
    pub period: Period,
    /// Thresholds used.
    pub config: &'a AuditConfig,
    /// Data summary.
    pub data: DataSummary,
    /// Headline numbers.
    pub summary: Summary,
    /// Per test: subjects tested and verdict counts.
    pub tests: &'a BTreeMap<String, TestTally>,
    /// Tests that could not run and why.
    pub tests_not_run: &'a [NotRun],
    /// WARN and FAIL findings.
    pub findings: &'a [Finding],
    /// Reviewer groups.
    pub groups: &'a [GroupInfo],
    /// Product pairs sharing the most reviewers.
    pub product_pairs: &'a [ProductPair],
    /// What changed since last month's report (with `--previous`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comparison: Option<&'a super::compare::Comparison>,
}

/// `generated_at`: SOURCE_DATE_EPOCH when set (reproducible builds), else now.
pub fn generated_at() -> String {
    let secs = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.trim().parse::<i64>().ok())
        .unwrap_or_else(|| chrono::Utc::now().timestamp());
    crate::ingest::timestamp::format_utc(secs)
}

/// Neutralise a CSV cell a spreadsheet would evaluate: a leading apostrophe. A cell that starts
/// with an apostrophe itself gets one more, so the change can be undone (`csv_unsafe`: next
/// month's `--previous` reads the ids of `scores/reviews.csv` back).
pub fn csv_safe(s: &str) -> std::borrow::Cow<'_, str> {
    match s.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r' | '\'') => format!("'{s}").into(),
        _ => s.into(),
    }
}

/// A cell as it was before `csv_safe`.
pub fn csv_unsafe(s: &str) -> &str {
    s.strip_prefix('\'').unwrap_or(s)
}

/// Rows per block of `write_in_blocks`.
const BLOCK_ROWS: usize = 1 << 17;

/// Write `n` rows to `path`: `head`, then the bytes `block(range)` makes for each block of
/// `BLOCK_ROWS` rows. Blocks are made on all cores a few at a time (memory stays a few blocks) and
/// written in row order; block boundaries do not depend on the number of cores, so the bytes do not
/// either. Tables of millions of rows are formatted (and compressed) this way.
pub fn write_in_blocks(
    path: &Path,
    head: &[u8],
    n: usize,
    block: impl Fn(std::ops::Range<usize>) -> Result<Vec<u8>> + Sync,
) -> Result<()> {
    let mut f = super::bigfile::BigFile::create(path)?;
    f.write_all(head)?;
    let threads = crate::analyze::worker_threads();
    // Batches of `threads` blocks; the next batch is made while the current one is written.
    let mut batches = (0..n).step_by(threads * BLOCK_ROWS).map(|start| {
        let end = (start + threads * BLOCK_ROWS).min(n);
        (start..end)
            .step_by(BLOCK_ROWS)
            .map(|b| b..(b + BLOCK_ROWS).min(end))
            .collect::<Vec<_>>()
    });
    std::thread::scope(|s| -> Result<()> {
        let block = &block;
        let spawn = |ranges: Vec<std::ops::Range<usize>>| -> Vec<_> {
            ranges
                .into_iter()
                .map(|r| s.spawn(move || block(r)))
                .collect()
        };
        let mut pending = batches.next().map(spawn);
        while let Some(handles) = pending {
            pending = batches.next().map(spawn);
            for h in handles {
                let b = h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))?;
                f.write_all(&b)?;
            }
        }
        Ok(())
    })?;
    f.finish()
}

/// A cell written as it is (for `put_row`).
pub fn as_is(s: &str) -> std::borrow::Cow<'_, str> {
    s.into()
}

/// One CSV field as the `csv` crate writes it (quoted only when it holds a comma, quote, CR or
/// LF; quotes doubled). Checked against the crate by the `fast_rows_match_the_csv_crate` test.
pub fn put_field(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    if b.iter().any(|&c| matches!(c, b',' | b'"' | b'\n' | b'\r')) {
        out.push(b'"');
        for &c in b {
            if c == b'"' {
                out.push(b'"');
            }
            out.push(c);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(b);
    }
}

/// One CSV record of `cells` as the `csv` crate writes it, each cell passed through `cell` first.
/// A record of one empty field is written `""` (an empty line would be no record).
pub fn put_row<C: AsRef<str>>(
    out: &mut Vec<u8>,
    cells: impl IntoIterator<Item = C>,
    cell: impl Fn(&str) -> std::borrow::Cow<'_, str>,
) {
    let start = out.len();
    let mut n = 0;
    for c in cells {
        if n > 0 {
            out.push(b',');
        }
        put_field(out, &cell(c.as_ref()));
        n += 1;
    }
    if n == 1 && out.len() == start {
        out.extend_from_slice(b"\"\"");
    }
    out.push(b'\n');
}

/// Rows whose memory `write_csv_blocks` reads ahead before formatting them.
const READ_AHEAD: usize = 256;

/// A CSV table of `n` rows written with `write_in_blocks`: the header, then `row(k)`'s cells for
/// every k, each cell neutralised — the bytes the `csv` crate would write (`put_row`), formatted
/// directly (the crate's writer was most of the time spent on tables of millions of rows). Every
/// score table is written this way.
///
/// Rows in score order read records scattered over gigabytes, and formatting one row takes long
/// enough that the processor never has the next row's reads in flight: `stages` run over
/// `READ_AHEAD` rows first, each only requesting memory (`pages::prefetch`, which does not wait
/// for it), so the requests of many rows are in flight at once, and the rows are then formatted
/// from cache. Each stage follows pointers the stage before brought in.
fn write_csv_blocks<R, C>(
    path: &Path,
    header: &[&str],
    n: usize,
    stages: &[&(dyn Fn(usize) + Sync)],
    row: impl Fn(usize) -> R + Sync,
) -> Result<()>
where
    R: IntoIterator<Item = C>,
    C: AsRef<str>,
{
    let mut head = Vec::new();
    put_row(&mut head, header, as_is);
    write_in_blocks(path, &head, n, |range| {
        let mut out = Vec::with_capacity(range.len() * 112);
        each_read_ahead(range, stages, |k| put_row(&mut out, row(k), csv_safe));
        Ok(out)
    })
}

/// Run `row(k)` for every k of `range` in order, `READ_AHEAD` rows at a time, after the prefetch
/// `stages` over those rows (see `write_csv_blocks`).
pub fn each_read_ahead(
    range: std::ops::Range<usize>,
    stages: &[&(dyn Fn(usize) + Sync)],
    mut row: impl FnMut(usize),
) {
    let mut start = range.start;
    while start < range.end {
        let ahead = start..(start + READ_AHEAD).min(range.end);
        for stage in stages {
            ahead.clone().for_each(stage);
        }
        ahead.clone().for_each(&mut row);
        start = ahead.end;
    }
}

/// `x` with six decimals, trailing zeros (and a trailing point) removed.
fn num_cell(x: f64) -> Cell<'static> {
    if let Some(s) = fixed6(x) {
        return Cell::Short(s);
    }
    let trim = |s: &str| s.trim_end_matches('0').trim_end_matches('.').len();
    let mut s = Short::default();
    if write!(s, "{x:.6}").is_ok() {
        s.len = trim(s.as_ref()) as u8;
        Cell::Short(s)
    } else {
        // Huge values: written out in full.
        let mut t = format!("{x:.6}");
        t.truncate(trim(&t));
        Cell::Owned(t)
    }
}

/// `num_cell` of a finite non-negative `x` below 2^40 (scores, ratings: tens of millions of cells)
/// in integer arithmetic: what `{x:.6}` writes — the exact binary value rounded to six decimals,
/// ties to even — without the general float formatting. `None` for anything else.
fn fixed6(x: f64) -> Option<Short> {
    if !(0.0..1_099_511_627_776.0).contains(&x) || x.is_sign_negative() {
        return None;
    }
    let bits = x.to_bits();
    let (exp, frac) = ((bits >> 52) as i32, bits & ((1 << 52) - 1));
    // x = m × 2^e exactly.
    let (m, e) = if exp == 0 {
        (frac, -1074)
    } else {
        (frac | 1 << 52, exp - 1075)
    };
    let p = m as u128 * 1_000_000;
    let n = if e >= 0 {
        p << e
    } else if -e >= 128 {
        0
    } else {
        let shift = (-e) as u32;
        let (q, r, half) = (p >> shift, p & ((1 << shift) - 1), 1u128 << (shift - 1));
        q + (r > half || (r == half && q & 1 == 1)) as u128
    };
    let (whole, mut part) = ((n / 1_000_000) as u64, (n % 1_000_000) as u32);
    // At most 13 digits, a point and 6 decimals: within the 32-byte buffer.
    let mut s = Short::default();
    let digits = whole.checked_ilog10().unwrap_or(0) as usize + 1;
    let mut w = whole;
    for d in s.buf[..digits].iter_mut().rev() {
        *d = b'0' + (w % 10) as u8;
        w /= 10;
    }
    let mut len = digits;
    if part > 0 {
        let mut places = 6;
        while part % 10 == 0 {
            part /= 10;
            places -= 1;
        }
        s.buf[len] = b'.';
        for d in s.buf[len + 1..len + 1 + places].iter_mut().rev() {
            *d = b'0' + (part % 10) as u8;
            part /= 10;
        }
        len += 1 + places;
    }
    s.len = len as u8;
    Some(s)
}

/// A short cell (number, timestamp) formatted into an inline buffer: tables of tens of millions of
/// rows would otherwise allocate a string per cell.
#[derive(Default)]
pub struct Short {
    buf: [u8; 32],
    len: u8,
}

impl std::fmt::Write for Short {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let start = self.len as usize;
        let end = start + s.len();
        if end > self.buf.len() {
            return Err(std::fmt::Error);
        }
        self.buf[start..end].copy_from_slice(s.as_bytes());
        self.len = end as u8;
        Ok(())
    }
}

impl AsRef<str> for Short {
    fn as_ref(&self) -> &str {
        // Only whole `str`s are appended and only ASCII is cut off the end: always UTF-8.
        std::str::from_utf8(&self.buf[..self.len as usize]).unwrap_or_default()
    }
}

impl Short {
    /// `format_utc(secs)` (at most 23 characters).
    pub fn utc(secs: i64) -> Short {
        let mut s = Short::default();
        let _ = crate::ingest::timestamp::write_utc(&mut s, secs);
        s
    }

    /// A whole number.
    pub fn int(n: u64) -> Short {
        let mut s = Short::default();
        let _ = write!(s, "{n}");
        s
    }
}

/// One cell of a row written by `put_row`.
pub enum Cell<'a> {
    /// Text held elsewhere (ids, reasons).
    Str(&'a str),
    /// A number or timestamp formatted in place.
    Short(Short),
    /// Anything longer.
    Owned(String),
}

impl AsRef<str> for Cell<'_> {
    fn as_ref(&self) -> &str {
        match self {
            Cell::Str(s) => s,
            Cell::Short(s) => s.as_ref(),
            Cell::Owned(s) => s,
        }
    }
}

/// Build the summary.
pub fn summary(a: &Analysis) -> Summary {
    let mut product_verdicts = BTreeMap::new();
    for v in [
        Verdict::Pass,
        Verdict::Warn,
        Verdict::Fail,
        Verdict::Insufficient,
    ] {
        product_verdicts.insert(
            v.as_str().to_string(),
            a.products.iter().filter(|p| p.verdict == v).count(),
        );
    }
    let mut findings = BTreeMap::new();
    for v in [Verdict::Warn, Verdict::Fail] {
        findings.insert(
            v.as_str().to_string(),
            a.findings.iter().filter(|f| f.verdict == v).count(),
        );
    }
    let mut ranked: Vec<&crate::findings::ProductScore> = a
        .products
        .iter()
        .filter(|p| matches!(p.verdict, Verdict::Warn | Verdict::Fail))
        .collect();
    ranked.sort_by(|x, y| {
        y.verdict
            .cmp(&x.verdict)
            .then(y.score.total_cmp(&x.score))
            .then(x.product_id.cmp(&y.product_id))
    });
    let n: usize = a.products.iter().map(|p| p.n_reviews).sum();
    let w = |f: &dyn Fn(&crate::findings::ProductScore) -> f64| -> f64 {
        if n == 0 {
            0.0
        } else {
            crate::analyze::round_sig(
                a.products
                    .iter()
                    .map(|p| f(p) * p.n_reviews as f64)
                    .sum::<f64>()
                    / n as f64,
            )
        }
    };
    Summary {
        product_verdicts,
        findings,
        top_risks: ranked
            .iter()
            .take(10)
            .map(|p| p.product_id.clone())
            .collect(),
        original_rating: w(&|p| p.original_rating),
        adjusted_rating: w(&|p| p.adjusted_rating),
    }
}

/// Positions of `items` sorted by score (highest first), then id. The comparisons run on compact
/// keys (score, the id's first 16 bytes, position) rather than on the records, which at millions
/// of rows sit all over memory; only ids sharing those 16 bytes are compared in full. Rows are
/// then read through the positions (no sorted copy of the table).
fn order_by_score_then_id<'a, T>(
    items: &'a [T],
    score: impl Fn(&'a T) -> f64,
    id: impl Fn(&'a T) -> &'a str,
) -> Vec<u32> {
    // Keys compared as integers, no call per comparison: the score as a u64 that sorts high
    // scores first (`f64::total_cmp` reversed), the id's first 16 bytes as two big-endian words.
    let mut keys: Vec<(u64, u64, u64, u32)> = items
        .iter()
        .enumerate()
        .map(|(k, x)| {
            let mut prefix = [0u8; 16];
            let b = id(x).as_bytes();
            let m = b.len().min(16);
            prefix[..m].copy_from_slice(&b[..m]);
            let word =
                |i: usize| u64::from_be_bytes(prefix[i..i + 8].try_into().unwrap_or_default());
            (!total_order_bits(score(x)), word(0), word(8), k as u32)
        })
        .collect();
    keys.sort_unstable_by(|a, b| {
        (a.0, a.1, a.2)
            .cmp(&(b.0, b.1, b.2))
            .then_with(|| id(&items[a.3 as usize]).cmp(id(&items[b.3 as usize])))
            .then(a.3.cmp(&b.3))
    });
    keys.iter().map(|k| k.3).collect()
}

/// `x`'s bits as a u64 whose order is `f64::total_cmp`'s: negative values (sign bit set) have all
/// bits flipped, others just the sign bit.
fn total_order_bits(x: f64) -> u64 {
    let b = x.to_bits();
    if b >> 63 == 1 {
        !b
    } else {
        b | 1 << 63
    }
}

/// Write findings.json and the three score tables into `dir` (findings.json alongside the tables).
pub fn write(dir: &Path, file: &FindingsFile, a: &Analysis, d: &AuditData) -> Result<()> {
    std::thread::scope(|s| {
        let json = s.spawn(|| write_findings_json(dir, file));
        let tables = write_scores(dir, a, d);
        json.join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e))
            .and(tables)
    })
}

fn write_findings_json(dir: &Path, file: &FindingsFile) -> Result<()> {
    // Streamed to the file (hundreds of megabytes at scale), not built in memory first.
    let path = dir.join("findings.json");
    let mut w = std::io::BufWriter::new(
        std::fs::File::create(&path).with_context(|| format!("cannot write {}", path.display()))?,
    );
    serde_json::to_writer_pretty(&mut w, file)?;
    std::io::Write::write_all(&mut w, b"\n")?;
    std::io::Write::flush(&mut w)?;
    Ok(())
}

fn write_scores(dir: &Path, a: &Analysis, d: &AuditData) -> Result<()> {
    let scores = dir.join("scores");
    super::make_subdir(&scores)?;
    // The reviewers' table (its order a sort of millions of keys) is made beside the reviews':
    // each file's writes (copies into the page cache) wait for one thread, so two files written at
    // once keep both cores busy where one left a core idle.
    std::thread::scope(|s| {
        let reviewers_written = s.spawn(|| {
            let order = order_by_score_then_id(
                &a.reviewers,
                |r| r.score,
                |r| &d.reviewers[r.reviewer as usize],
            );
            write_reviewer_scores(&scores, a, d, order)
        });
        let reviews_written = write_review_scores(&scores, a, d);
        let reviewers_written = reviewers_written
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e));
        reviews_written.and(reviewers_written)
    })?;
    write_product_scores(&scores, a)
}

fn write_review_scores(scores: &Path, a: &Analysis, d: &AuditData) -> Result<()> {
    // Read in sorted order through positions (no copy of the table); ids and times come from
    // the analysis view.
    let order = order_by_score_then_id(
        &a.reviews,
        |r| r.score,
        |r| d.reviews[r.review as usize].id.as_str(),
    );
    let reviews = |k: usize| &a.reviews[order[k] as usize];
    write_csv_blocks(
        &scores.join("reviews.csv"),
        &[
            "review_id",
            "product_id",
            "reviewer_id",
            "created_at",
            "rating",
            "score",
            "reasons",
        ],
        order.len(),
        &[
            &|k| prefetch(reviews(k)),
            &|k| prefetch(&d.reviews[reviews(k).review as usize]),
            &|k| {
                d.reviewers
                    .prefetch_end(d.reviews[reviews(k).review as usize].reviewer as usize)
            },
            &|k| {
                d.reviewers
                    .prefetch(d.reviews[reviews(k).review as usize].reviewer as usize)
            },
        ],
        |k| {
            let s = reviews(k);
            let r = &d.reviews[s.review as usize];
            [
                Cell::Str(r.id.as_str()),
                Cell::Str(d.products[r.product as usize].as_str()),
                Cell::Str(&d.reviewers[r.reviewer as usize]),
                Cell::Short(Short::utc(r.t)),
                Cell::Short(Short::int(r.rating as u64)),
                num_cell(s.score),
                Cell::Str(&s.reasons),
            ]
        },
    )
}

fn write_reviewer_scores(
    scores: &Path,
    a: &Analysis,
    d: &AuditData,
    order: Vec<u32>,
) -> Result<()> {
    let reviewers = |k: usize| &a.reviewers[order[k] as usize];
    write_csv_blocks(
        &scores.join("reviewers.csv"),
        &["reviewer_id", "n_reviews", "score", "reasons"],
        order.len(),
        &[
            &|k| prefetch(reviewers(k)),
            &|k| d.reviewers.prefetch_end(reviewers(k).reviewer as usize),
            &|k| d.reviewers.prefetch(reviewers(k).reviewer as usize),
        ],
        |k| {
            let r = reviewers(k);
            [
                Cell::Str(&d.reviewers[r.reviewer as usize]),
                Cell::Short(Short::int(r.n_reviews as u64)),
                num_cell(r.score),
                Cell::Str(&r.reasons),
            ]
        },
    )
}

fn write_product_scores(scores: &Path, a: &Analysis) -> Result<()> {
    let mut products = a.products.clone();
    products.sort_by(|x, y| {
        y.verdict
            .cmp(&x.verdict)
            .then(y.score.total_cmp(&x.score))
            .then(x.product_id.cmp(&y.product_id))
    });
    write_csv_blocks(
        &scores.join("products.csv"),
        &[
            "product_id",
            "n_reviews",
            "n_orders",
            "score",
            "verdict",
            "adjusted_rating",
            "reasons",
        ],
        products.len(),
        &[],
        |k| {
            let p = &products[k];
            [
                Cell::Str(&p.product_id),
                Cell::Short(Short::int(p.n_reviews as u64)),
                Cell::Short(Short::int(p.n_orders)),
                num_cell(p.score),
                Cell::Str(p.verdict.as_str()),
                num_cell(p.adjusted_rating),
                Cell::Str(&p.reasons),
            ]
        },
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Numbers exactly halfway between two six-decimal values (k/128 and neighbours), whole
    /// numbers, zeros and the edges of the integer path read as the plain formatting would.
    #[test]
    fn fixed_decimals_round_ties_to_even_like_the_plain_formatting() {
        let plain = |x: f64| {
            format!("{x:.6}")
                .trim_end_matches('0')
                .trim_end_matches('.')
                .to_string()
        };
        let mut xs: Vec<f64> = (0..=1 << 16).map(|k| k as f64 / 65_536.0).collect();
        xs.extend((0..=4096).map(|k| k as f64 * 0.5e-6));
        xs.extend([
            0.0,
            -0.0,
            1.0,
            2.5,
            1e-300,
            5e-324,
            999_999.999_999_5,
            1_099_511_627_775.5,
        ]);
        xs.extend([
            1_099_511_627_776.0,
            1e15,
            -1e-9,
            -2.5,
            f64::NAN,
            f64::INFINITY,
        ]);
        for x in xs {
            assert_eq!(num_cell(x).as_ref(), plain(x), "{x:e}");
        }
    }

    proptest! {
        /// Cells formatted in place read exactly as the plain formatting would.
        #[test]
        fn short_cells_match_plain_formatting(
            x in any::<f64>(),
            small in 0.0f64..1.0,
            secs in prop_oneof![any::<i64>(), -400_000_000_000i64..8_210_266_876_799],
            n in any::<u64>(),
        ) {
            let plain = |x: f64| format!("{x:.6}").trim_end_matches('0').trim_end_matches('.').to_string();
            prop_assert_eq!(num_cell(x).as_ref().to_string(), plain(x));
            prop_assert_eq!(num_cell(small).as_ref().to_string(), plain(small));
            let big = small * 2e12;
            prop_assert_eq!(num_cell(big).as_ref().to_string(), plain(big));
            let sig = crate::analyze::round_sig(small);
            prop_assert_eq!(num_cell(sig).as_ref().to_string(), plain(sig));
            let stamp = match chrono::TimeZone::timestamp_opt(&chrono::Utc, secs, 0).single() {
                Some(dt) => dt.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                None => secs.to_string(),
            };
            prop_assert_eq!(Short::utc(secs).as_ref().to_string(), stamp);
            prop_assert_eq!(Short::int(n).as_ref().to_string(), n.to_string());
        }

        /// Whatever a review or id contains (quotes, commas, newlines, formulas), the CSV reads back
        /// as the neutralised cell, one record per row, and `csv_unsafe` gives the cell back.
        #[test]
        fn csv_cells_round_trip(cells in proptest::collection::vec("\\PC{0,30}|[=+@'-][^\n]{0,10}|[\",\n]{1,4}", 1..6)) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("t.csv");
            let header: Vec<String> = (0..cells.len()).map(|i| format!("c{i}")).collect();
            let header_refs: Vec<&str> = header.iter().map(|s| s.as_str()).collect();
            write_csv_blocks(&path, &header_refs, 1, &[], |_| cells.clone()).unwrap();
            let mut r = csv::Reader::from_path(&path).unwrap();
            let rows: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
            prop_assert_eq!(rows.len(), 1);
            let got: Vec<String> = rows[0].iter().map(str::to_string).collect();
            let want: Vec<String> = cells.iter().map(|c| csv_safe(c).into_owned()).collect();
            prop_assert_eq!(&got, &want);
            let back: Vec<&str> = got.iter().map(|c| csv_unsafe(c)).collect();
            prop_assert_eq!(back, cells.iter().map(|c| c.as_str()).collect::<Vec<_>>());
        }
    }

    proptest! {
        /// The direct CSV formatting gives the `csv` crate's bytes, whatever the cells hold.
        #[test]
        fn fast_rows_match_the_csv_crate(rows in proptest::collection::vec(
            proptest::collection::vec("\\PC{0,12}|[=+@-][^\n]{0,6}|[\",\r\n ]{1,4}|", 1..5), 1..4)) {
            let mut want = csv::WriterBuilder::new().flexible(true).from_writer(Vec::new());
            let mut got = Vec::new();
            for r in &rows {
                let safe: Vec<String> = r.iter().map(|c| csv_safe(c).into_owned()).collect();
                want.write_record(&safe).unwrap();
                put_row(&mut got, r, csv_safe);
            }
            let want = want.into_inner().unwrap();
            prop_assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(&want));
        }

        /// Rows come in the order of a plain sort: score high to low (`total_cmp`), then id, then
        /// position — whatever the scores (ties, signs, NaN) and ids (shared 16-byte prefixes).
        #[test]
        fn score_order_matches_a_plain_sort(items in proptest::collection::vec((
            prop_oneof![Just(0.5f64), Just(-0.0), Just(0.0), Just(f64::NAN), any::<f64>()],
            "(abcdefghijklmnop)?[a-c]{0,3}",
        ), 0..40)) {
            let mut want: Vec<u32> = (0..items.len() as u32).collect();
            want.sort_by(|&a, &b| {
                let (x, y) = (&items[a as usize], &items[b as usize]);
                y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)).then(a.cmp(&b))
            });
            prop_assert_eq!(order_by_score_then_id(&items, |x| x.0, |x| &x.1), want);
        }
    }

    #[test]
    fn formulas_are_neutralised() {
        assert_eq!(csv_safe("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(csv_safe("+1"), "'+1");
        assert_eq!(csv_safe("-2"), "'-2");
        assert_eq!(csv_safe("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_safe("B00X"), "B00X");
        assert_eq!(csv_safe("'quoted"), "''quoted");
        for x in ["=1", "'=1", "''", "'", "", "B00X", "-", "\tx"] {
            assert_eq!(csv_unsafe(&csv_safe(x)), x);
        }
    }
}
