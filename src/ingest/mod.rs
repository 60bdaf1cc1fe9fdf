//! Ingest: detect each export's format by its header, decode it, map every record to the canonical
//! schema, and say exactly what was read, rejected and decided (`LoadReport`).
//!
//! Owns: everything that knows about file formats. Must not: compute statistics. Personal fields are
//! replaced by keyed hashes here, before any other module sees a record.

pub mod decode;
pub mod delim;
pub mod formats;
pub mod mapping;
pub mod schema;
pub mod timestamp;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::privacy::Hasher;
use schema::{Id, OptIdx};
use std::cell::RefCell;
use std::io::{BufRead, Read};
use std::rc::Rc;

use decode::{Encoding, Opened};
use formats::{Container, FormatSpec, Kind};
use mapping::Mapping;
use schema::{OrderLine, Review};
use timestamp::{format_utc, Instant, TimeResolution};

/// A file-level problem: the file cannot be used at all.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// Missing, unreadable, empty, not data, unrecognised, missing columns.
    #[error("{}: {msg}", .path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
    /// Too many bad rows for the chosen policy.
    #[error("{}: {rejected} of {rows} rows rejected, more than --on-bad-rows allows ({policy}); first problems:\n{list}",
        .path.display())]
    TooManyBadRows {
        /// The file.
        path: PathBuf,
        /// Rejected rows.
        rejected: u64,
        /// Data rows.
        rows: u64,
        /// Policy description.
        policy: String,
        /// First problems, one per line.
        list: String,
    },
}

/// One rejected row: where, which column, which value, what is wrong.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RowError {
    /// 1-based line in the file (the header is line 1 of delimited files).
    pub line: u64,
    /// Source column name (or `-` for whole-row problems).
    pub column: String,
    /// The offending value, shortened and with control characters escaped.
    pub value: String,
    /// What is wrong.
    pub problem: String,
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.column == "-" {
            write!(f, "line {}: {}", self.line, self.problem)
        } else {
            write!(
                f,
                "line {}, column '{}': {} (value '{}')",
                self.line, self.column, self.problem, self.value
            )
        }
    }
}

fn short_value(v: &str) -> String {
    let mut out: String = v.chars().take(60).flat_map(|c| c.escape_debug()).collect();
    if v.chars().count() > 60 {
        out.push('…');
    }
    out
}

/// What to do with rows that cannot be parsed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BadRowPolicy {
    /// Any bad row fails the load.
    Fail,
    /// Skip every bad row (listed in the report).
    Skip,
    /// Skip up to the given share of a file's rows, fail above it.
    SkipUpTo(f64),
}

impl BadRowPolicy {
    fn describe(self) -> String {
        match self {
            BadRowPolicy::Fail => "fail: no bad rows allowed".into(),
            BadRowPolicy::Skip => "skip".into(),
            BadRowPolicy::SkipUpTo(s) => format!("skip up to {:.1}% of rows", s * 100.0),
        }
    }
}

/// Settings for a load.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Force the orders format (a name from `formats::format_names`).
    pub orders_format: Option<String>,
    /// Force the reviews format.
    pub reviews_format: Option<String>,
    /// Generic mapping files.
    pub mappings: Vec<Mapping>,
    /// Bad-row policy.
    pub on_bad_rows: BadRowPolicy,
    /// Keyed hasher for personal fields.
    pub hasher: Hasher,
    /// "Now", seconds since the epoch: later timestamps are rejected as future dates.
    pub now: i64,
}

/// Options for fuzzing and in-memory tests: detection, no forced formats, a fixed key and clock.
pub fn fuzz_options() -> LoadOptions {
    LoadOptions {
        orders_format: None,
        reviews_format: None,
        mappings: Vec::new(),
        on_bad_rows: BadRowPolicy::Skip,
        hasher: crate::privacy::Hasher::with_key([7; 32]),
        now: 1_800_000_000,
    }
}

/// How many rejected rows a file report lists.
pub const REJECTED_LISTED: usize = 20;

/// Product names kept per file at most (a name per product; catalogs are far smaller).
const MAX_PRODUCT_NAMES: usize = 1_000_000;

/// Everything decided about one file.
#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    /// Path as given.
    pub path: String,
    /// Detected (or forced) format.
    pub format: String,
    /// Orders or reviews.
    pub kind: Kind,
    /// Encoding decision.
    pub encoding: String,
    /// Whether the file was gzip-compressed.
    pub gzip: bool,
    /// Field delimiter for delimited files.
    pub delimiter: Option<String>,
    /// Data records (header and blank lines excluded).
    pub rows: u64,
    /// Records accepted.
    pub accepted: u64,
    /// Records rejected.
    pub rejected: u64,
    /// The first rejected records with reasons.
    pub rejected_rows: Vec<RowError>,
    /// Earliest accepted instant (RFC 3339 UTC).
    pub first: Option<String>,
    /// Latest accepted instant.
    pub last: Option<String>,
    /// `second` if every accepted timestamp has a time of day, else `day`.
    pub time_resolution: Option<TimeResolution>,
    /// Canonical field → source column.
    pub column_mapping: BTreeMap<String, String>,
    /// Source columns not used.
    pub unused_columns: Vec<String>,
    /// Ids or postal codes that look mangled by Excel (first few, with line).
    pub mangled_ids: Vec<String>,
    /// How many values looked mangled.
    pub mangled_count: u64,
    /// How reviews from this file can be linked to orders.
    pub link_by: String,
    /// Other things worth knowing.
    pub warnings: Vec<String>,
}

/// One loaded file.
#[derive(Debug)]
pub struct FileLoad {
    /// What was decided.
    pub report: FileReport,
    /// Order lines (orders files).
    pub orders: Vec<OrderLine>,
    /// Reviews (reviews files).
    pub reviews: Vec<Review>,
    /// The strings the reviews point to.
    pub strings: schema::ReviewStrings,
    /// The products the records point to.
    pub products: schema::Products,
    /// Product names the file gives (first seen per product, bounded).
    pub product_names: HashMap<Id, String>,
}

/// The whole load: every file, de-duplication and linking.
#[derive(Debug, Clone, Serialize, Default)]
pub struct LoadReport {
    /// Per-file reports, orders files first.
    pub files: Vec<FileReport>,
    /// Order lines kept after de-duplication.
    pub order_lines: u64,
    /// Reviews kept after de-duplication.
    pub reviews: u64,
    /// Duplicate order lines dropped (same order id and item).
    pub duplicate_order_lines: u64,
    /// Duplicate reviews dropped (same review id).
    pub duplicate_reviews: u64,
    /// Duplicates whose content differed (first copy kept).
    pub conflicting_duplicates: u64,
    /// The first of them, each saying which lines of which files disagree and how.
    pub conflicts: Vec<String>,
    /// Reviews linked to an order.
    pub linked_reviews: u64,
    /// linked_reviews / reviews.
    pub link_rate: f64,
    /// How the links were made.
    pub link_methods: BTreeMap<String, u64>,
    /// `second` when every review has time of day.
    pub review_time_resolution: Option<TimeResolution>,
}

/// Canonical data ready for analysis.
#[derive(Debug, Default)]
pub struct Dataset {
    /// Order lines.
    pub orders: Vec<OrderLine>,
    /// Reviews.
    pub reviews: Vec<Review>,
    /// The reviews' texts and reviewer ids.
    pub strings: schema::ReviewStrings,
    /// The products the records point to (numbered orders first, then reviews).
    pub products: schema::Products,
    /// Product names where an export gives them (Amazon `product-name`, Shopify `Lineitem name`,
    /// `product_title`): the first file's name wins. The text family does not count a product's
    /// own name as a repeated phrase.
    pub product_names: HashMap<Id, String>,
    /// What happened while loading.
    pub report: LoadReport,
}

/// The canonical fields records are read by, numbered (`Field`): a record's columns are found by
/// number, where a lookup by name for every cell of every row was a tenth of an order line's parse.
const FIELD_NAMES: [&str; 28] = [
    "order_id",
    "order_item_id",
    "purchased_at",
    "shipped_at",
    "product_id",
    "product_name",
    "sku",
    "quantity",
    "item_price",
    "discount",
    "ship_postal_code",
    "ship_country",
    "ship_address",
    "status",
    "promotion_ids",
    "buyer_key",
    "buyer_email",
    "review_id",
    "reviewer_id",
    "reviewer_email",
    "reviewer_name",
    "reviewer_ip",
    "rating",
    "created_at",
    "helpful_votes",
    "title",
    "text",
    "verified",
];

/// A canonical field by its position in `FIELD_NAMES`; made at compile time by `field!`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Field(u8);

impl Field {
    /// The field named `name`; a name that is not in `FIELD_NAMES` is a compile error in `field!`.
    const fn named(name: &str) -> Field {
        let mut k = 0;
        while k < FIELD_NAMES.len() {
            if const_eq(FIELD_NAMES[k], name) {
                return Field(k as u8);
            }
            k += 1;
        }
        panic!("not a canonical field")
    }

    /// The field named `name`, if it is one of `FIELD_NAMES`.
    fn lookup(name: &str) -> Option<Field> {
        FIELD_NAMES
            .iter()
            .position(|f| *f == name)
            .map(|k| Field(k as u8))
    }

    fn name(self) -> &'static str {
        FIELD_NAMES[self.0 as usize]
    }

    /// Ids an Excel round trip can damage (`is_excel_mangled`): `ID_FIELDS`, as a table.
    fn is_id(self) -> bool {
        const IDS: [bool; FIELD_NAMES.len()] = {
            let mut t = [false; FIELD_NAMES.len()];
            let mut k = 0;
            while k < FIELD_NAMES.len() {
                let mut j = 0;
                while j < ID_FIELDS.len() {
                    t[k] |= const_eq(FIELD_NAMES[k], ID_FIELDS[j]);
                    j += 1;
                }
                k += 1;
            }
            t
        };
        IDS[self.0 as usize]
    }
}

/// `a == b`, in a constant.
const fn const_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// The `Field` named by a string literal, resolved at compile time.
macro_rules! field {
    ($name:literal) => {{
        const F: Field = Field::named($name);
        F
    }};
}

/// Canonical field → source column indices (first non-empty wins): by name (set-up, checks), and
/// by `Field` for the fields records are read by.
#[derive(Debug, Default)]
pub struct FieldIndex {
    entries: Vec<(String, Vec<usize>)>,
    by_field: [Vec<usize>; FIELD_NAMES.len()],
}

impl FieldIndex {
    /// Columns of a field.
    pub fn get(&self, field: &str) -> Option<&Vec<usize>> {
        self.entries
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, c)| c)
    }

    /// Columns of a numbered field (empty when the header has none).
    fn cols(&self, f: Field) -> &[usize] {
        &self.by_field[f.0 as usize]
    }

    fn push(&mut self, field: &str, col: usize) {
        match self.entries.iter_mut().find(|(f, _)| f == field) {
            Some((_, c)) => c.push(col),
            None => self.entries.push((field.to_string(), vec![col])),
        }
        if let Some(f) = Field::lookup(field) {
            self.by_field[f.0 as usize].push(col);
        }
    }
    fn contains_key(&self, field: &str) -> bool {
        self.get(field).is_some()
    }
}

/// Access to one record's cells by canonical field.
trait Record {
    fn get(&self, field: Field) -> Option<&str>;
}

/// A row's cells: the CSV reader's record as it is (no vector per row), or collected values.
enum Cells<'a> {
    Csv(&'a delim::Row<'a>),
    Values(Vec<&'a str>),
}

impl<'a> Cells<'a> {
    fn get(&self, i: usize) -> Option<&'a str> {
        match self {
            Cells::Csv(r) => r.get(i),
            Cells::Values(v) => v.get(i).copied(),
        }
    }
}

struct DelimRecord<'a> {
    cells: Cells<'a>,
    index: &'a FieldIndex,
    filled: &'a HashMap<String, String>,
}

impl Record for DelimRecord<'_> {
    fn get(&self, field: Field) -> Option<&str> {
        // First non-empty value among the field's aliases present in the header.
        let v = self
            .index
            .cols(field)
            .iter()
            .filter_map(|&i| self.cells.get(i))
            .map(trim_cell)
            .find(|s| !s.is_empty());
        match v {
            Some(s) => Some(s),
            // Mostly nothing is filled: no hash of the field name per absent cell then.
            None if self.filled.is_empty() => None,
            None => self.filled.get(field.name()).map(|s| s.as_str()),
        }
    }
}

/// `s.trim()`, without the scan for Unicode white space when the cell starts and ends with a
/// visible ASCII character (nearly every cell of an export).
fn trim_cell(s: &str) -> &str {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(f), Some(l)) if f.is_ascii_graphic() && l.is_ascii_graphic() => s,
        _ => s.trim(),
    }
}

struct JsonRecord {
    values: HashMap<String, String>,
}

impl Record for JsonRecord {
    fn get(&self, field: Field) -> Option<&str> {
        self.values
            .get(field.name())
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
    }
}

/// File stem used for generated review ids: `reviews.jsonl.gz` → `reviews`.
pub fn file_stem(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = name
        .strip_suffix(".gz")
        .or_else(|| name.strip_suffix(".GZ"))
        .unwrap_or(&name);
    match name.rsplit_once('.') {
        Some((stem, _)) if !stem.is_empty() => stem.to_string(),
        _ => name.to_string(),
    }
}

fn sniff_delimiter(first_line: &str) -> u8 {
    let count = |c: char| first_line.matches(c).count();
    let (tabs, commas, semis) = (count('\t'), count(','), count(';'));
    if tabs > 0 && tabs >= commas && tabs >= semis {
        b'\t'
    } else if semis > commas {
        b';'
    } else {
        b','
    }
}

fn is_excel_mangled(v: &str) -> bool {
    // 5.80293E+13, 1.23e+15: a long numeric id Excel turned into scientific notation.
    let v = v.trim();
    if !v.as_bytes().first().is_some_and(u8::is_ascii_digit) {
        return false;
    }
    let Some(at) = v.bytes().position(|b| b == b'E' || b == b'e') else {
        return false;
    };
    let (mant, exp) = (&v[..at], &v[at + 1..]);
    let exp = exp.strip_prefix('+').unwrap_or(exp);
    !mant.is_empty()
        && mant.chars().all(|c| c.is_ascii_digit() || c == '.')
        && mant.chars().next().is_some_and(|c| c.is_ascii_digit())
        && !exp.is_empty()
        && exp.chars().all(|c| c.is_ascii_digit())
}

/// Conflicting duplicates listed in the load report (all are counted).
const MAX_CONFLICTS_LISTED: usize = 20;

/// Rows longer than this get a warning (kept).
const LONG_ROW_BYTES: usize = 1 << 20;

const ID_FIELDS: &[&str] = &[
    "order_id",
    "order_item_id",
    "product_id",
    "review_id",
    "reviewer_id",
    "sku",
];

/// Values parsed from one record before building the canonical type.
struct Ctx<'a> {
    spec: &'a FormatSpec,
    col_name: &'a HashMap<String, String>,
    opts: &'a LoadOptions,
    line: u64,
}

impl Ctx<'_> {
    fn err(&self, field: &str, value: &str, problem: impl Into<String>) -> RowError {
        RowError {
            line: self.line,
            column: self
                .col_name
                .get(field)
                .cloned()
                .unwrap_or_else(|| field.to_string()),
            value: short_value(value),
            problem: problem.into(),
        }
    }

    fn required<'r>(&self, rec: &'r dyn Record, f: Field) -> Result<&'r str, RowError> {
        let field = f.name();
        match rec.get(f) {
            Some(v) => {
                if f.is_id() && is_excel_mangled(v) {
                    return Err(self.err(
                        field,
                        v,
                        "id looks mangled by Excel (scientific notation); export again without opening it in Excel",
                    ));
                }
                Ok(v)
            }
            None => Err(self.err(field, "", format!("required value is empty ({field})"))),
        }
    }

    fn optional_id(&self, rec: &dyn Record, f: Field) -> Result<Option<Id>, RowError> {
        match rec.get(f) {
            Some(v) if f.is_id() && is_excel_mangled(v) => Err(self.err(
                f.name(),
                v,
                "id looks mangled by Excel (scientific notation); export again without opening it in Excel",
            )),
            v => Ok(v.map(Id::from)),
        }
    }

    fn instant(&self, field: &str, v: &str) -> Result<Instant, RowError> {
        let parsed = match &self.spec.timestamp_format {
            Some(fmt) => {
                timestamp::parse_with_format(v, fmt, self.spec.naive_offset_secs, self.opts.now)
            }
            None => timestamp::parse_timestamp(
                v,
                self.spec.epoch_unit,
                self.spec.naive_offset_secs,
                self.opts.now,
            ),
        };
        let mut inst = parsed.map_err(|e| self.err(field, v, format!("unparseable date: {e}")))?;
        if self.spec.day_resolution {
            inst = Instant {
                secs: inst.secs.div_euclid(86_400) * 86_400,
                resolution: TimeResolution::Day,
            };
        }
        Ok(inst)
    }

    fn number(&self, field: &str, v: &str) -> Result<f64, RowError> {
        // The common case, a plain number, allocates nothing.
        if let Ok(x) = v.parse::<f64>() {
            if x.is_finite() {
                return Ok(x);
            }
        }
        let cleaned: String = v
            .chars()
            .filter(|c| !matches!(c, '$' | '€' | '£' | '¥' | ' '))
            .collect();
        let cleaned = if cleaned.contains(',') && !cleaned.contains('.') {
            cleaned.replace(',', ".")
        } else {
            cleaned.replace(',', "")
        };
        cleaned
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite())
            .ok_or_else(|| self.err(field, v, "not a number"))
    }
}

fn parse_bool(v: &str) -> Option<bool> {
    // Compared without case and without a lower-case copy (one per review at scale).
    const YES: &[&str] = &[
        "true",
        "t",
        "y",
        "yes",
        "1",
        "verified purchase",
        "verified",
    ];
    const NO: &[&str] = &["false", "f", "n", "no", "0", "unverified", "not verified"];
    let v = v.trim();
    let is = |words: &[&str]| words.iter().any(|w| w.eq_ignore_ascii_case(v));
    if is(YES) {
        Some(true)
    } else if is(NO) {
        Some(false)
    } else {
        None
    }
}

fn build_review(
    rec: &dyn Record,
    c: &Ctx,
    record_index: u64,
    stem: &str,
    source: u32,
    strings: &mut schema::ReviewStrings,
    products: &mut schema::Products,
) -> Result<Review, RowError> {
    let h = &c.opts.hasher;
    let product_id = c.required(rec, field!("product_id"))?;
    let email_key = rec
        .get(field!("reviewer_email"))
        .and_then(|v| h.key("email", v));
    let name_key = rec
        .get(field!("reviewer_name"))
        .and_then(|v| h.key("name", v));
    let reviewer_id = match c.optional_id(rec, field!("reviewer_id"))? {
        // An email or IP used as the reviewer id is personal data: hashed like the email column, so
        // the same person still matches.
        Some(id) => match crate::privacy::Hasher::personal_kind(&id) {
            Some(kind) => h.hash(kind, &id).unwrap_or(id),
            None => id,
        },
        None => match (email_key, name_key) {
            (Some(k), _) | (None, Some(k)) => compact_str::format_compact!("h:{k:016x}"),
            (None, None) => return Err(c.err("reviewer_id", "", "no reviewer id, email or name")),
        },
    };
    let rating_raw = c.required(rec, field!("rating"))?;
    let rating_f = c.number("rating", rating_raw)?;
    if !(1.0..=5.0).contains(&rating_f) || rating_f.fract() != 0.0 {
        return Err(c.err(
            "rating",
            rating_raw,
            "rating must be a whole number from 1 to 5",
        ));
    }
    let created_raw = c.required(rec, field!("created_at"))?;
    let created = c.instant("created_at", created_raw)?;
    // Validated (a broken count rejects the row), not kept: no statistic reads it.
    if let Some(v) = rec.get(field!("helpful_votes")) {
        v.replace(',', "")
            .parse::<f64>()
            .ok()
            .filter(|x| *x >= 0.0 && x.is_finite())
            .ok_or_else(|| c.err("helpful_votes", v, "not a non-negative number"))?;
    }
    let source_id = c.optional_id(rec, field!("review_id"))?;
    let assigned_id = source_id.is_none();
    let review_id =
        source_id.unwrap_or_else(|| compact_str::format_compact!("{stem}#{record_index}"));
    let order_key = c
        .optional_id(rec, field!("order_id"))?
        .map(|id| order_key(&id));
    // Nothing fails after this point: the strings and the product are stored only for a review
    // that is kept.
    Ok(Review {
        review_id,
        product: products.intern(product_id),
        reviewer_id: strings.reviewer_ids.push(&reviewer_id),
        rating: rating_f as u8,
        created_at: created.secs,
        resolution: created.resolution,
        text: match (rec.get(field!("title")), rec.get(field!("text"))) {
            (None, None) => schema::StrRef::NONE,
            (Some(a), None) | (None, Some(a)) => strings.texts.push(a),
            (Some(a), Some(b)) => strings.texts.push_parts(&[a, ". ", b]),
        },
        verified: rec.get(field!("verified")).and_then(parse_bool),
        order_key,
        reviewer_key: email_key,
        ip_key: rec.get(field!("reviewer_ip")).and_then(|v| h.key("ip", v)),
        source,
        line: schema::record_line(c.line),
        linked_order: schema::OptIdx::NONE,
        assigned_id,
    })
}

/// Postal code repair and Excel damage: `400081.0` → `400081`; a US ZIP that lost its leading zero
/// (`2134` → `02134`); scientific notation (`2.1345E+4`) cannot be repaired but is flagged.
fn clean_postal<'a>(v: &'a str, country: Option<&str>) -> (std::borrow::Cow<'a, str>, bool) {
    let t = v.trim();
    if let Some(body) = t.strip_suffix(".0") {
        if !body.is_empty() && body.chars().all(|c| c.is_ascii_digit()) {
            return (body.into(), true);
        }
    }
    let us = country.is_some_and(|c| matches!(c.trim(), "US" | "USA" | "us" | "United States"));
    if us && (3..=4).contains(&t.len()) && t.chars().all(|c| c.is_ascii_digit()) {
        return (format!("{t:0>5}").into(), true);
    }
    (t.into(), is_excel_mangled(t))
}

fn build_order(
    rec: &dyn Record,
    c: &Ctx,
    source: u32,
    mangled: &mut Vec<String>,
    postal_keys: &mut rustc_hash::FxHashMap<String, Option<schema::Key>>,
    products: &mut schema::Products,
) -> Result<OrderLine, RowError> {
    let h = &c.opts.hasher;
    let order_id = Id::from(c.required(rec, field!("order_id"))?);
    let purchased_raw = c.required(rec, field!("purchased_at"))?;
    let purchased = c.instant("purchased_at", purchased_raw)?;
    let product_id = c.required(rec, field!("product_id"))?;
    // Validated (a broken ship date rejects the row), not kept.
    if let Some(v) = rec.get(field!("shipped_at")) {
        c.instant("shipped_at", v)?;
    }
    let quantity = match rec.get(field!("quantity")) {
        Some(v) => {
            let q = c
                .number("quantity", v)
                .map_err(|_| c.err("quantity", v, "quantity is not a number"))?;
            if q < 0.0 || q.fract() != 0.0 || q > 1e6 {
                return Err(c.err("quantity", v, "quantity must be a whole number ≥ 0"));
            }
            q as u32
        }
        None => 1,
    };
    let item_price = match rec.get(field!("item_price")) {
        Some(v) => Some(c.number("item_price", v)?),
        None => None,
    };
    let discount = match rec.get(field!("discount")) {
        Some(v) => Some(c.number("discount", v)?.abs()),
        None => None,
    };
    let postal_key = rec.get(field!("ship_postal_code")).and_then(|v| {
        let (p, was_mangled) = clean_postal(v, rec.get(field!("ship_country")));
        if was_mangled {
            mangled.push(format!("line {}: postal code '{}'", c.line, short_value(v)));
        }
        // ZIP+4 → ZIP5 so one area is one key.
        let p: &str = match p.split_once('-') {
            Some((zip, plus4)) if zip.len() == 5 && plus4.len() == 4 => zip,
            _ => &p,
        };
        match postal_keys.get(p) {
            Some(k) => *k,
            None => {
                let k = h.key("postal", p);
                if postal_keys.len() < 200_000 {
                    postal_keys.insert(p.to_string(), k);
                }
                k
            }
        }
    });
    let address_key = rec.get(field!("ship_address")).and_then(|a| {
        h.key(
            "address",
            &format!("{a}|{}", rec.get(field!("ship_postal_code")).unwrap_or("")),
        )
    });
    let item = schema::item_key(
        c.optional_id(rec, field!("order_item_id"))?.as_deref(),
        product_id,
        c.optional_id(rec, field!("sku"))?.as_deref(),
    );
    let shipped = schema::is_shipped_status(rec.get(field!("status")));
    Ok(OrderLine {
        order_id,
        item,
        purchased_at: purchased.secs,
        resolution: purchased.resolution,
        shipped,
        free: schema::is_free(item_price, discount, shipped),
        promo: rec
            .get(field!("promotion_ids"))
            .is_some_and(|s| !s.trim().is_empty()),
        product: products.intern(product_id),
        quantity,
        item_price: item_price.unwrap_or(f64::NAN),
        buyer_key: match rec.get(field!("buyer_key")) {
            Some(v) => h.key_of_column(v),
            None => rec
                .get(field!("buyer_email"))
                .and_then(|v| h.key("email", v)),
        },
        address_key,
        postal_key,
        source,
        line: schema::record_line(c.line),
    })
}

/// Resident bytes per estimated record byte. Loading itself measured 1.2× (1M and 10M rows, compact
/// records); 2 keeps room for the analysis view built right after loading (peak 1.15× the load's).
const RSS_PER_ESTIMATED_BYTE: u64 = 2;

/// Estimated bytes held by accepted records in this process (all files of a run).
static HELD_BYTES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How much memory loading may use: `REVAUDIT_MEMORY_LIMIT` (bytes), else 75% of the memory
/// available when the run started. `u64::MAX` when neither is known.
pub fn memory_budget() -> u64 {
    static BUDGET: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *BUDGET.get_or_init(|| {
        if let Some(v) = std::env::var("REVAUDIT_MEMORY_LIMIT")
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
        {
            return v;
        }
        std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines()
                    .find(|l| l.starts_with("MemAvailable:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|kb| kb.parse::<u64>().ok())
            })
            .map(|kb| kb * 1024 / 100 * 75)
            .unwrap_or(u64::MAX)
    })
}

/// Heap bytes of an id (0 when it is stored inline).
fn heap_len(s: &Id) -> usize {
    if s.is_heap_allocated() {
        s.len()
    } else {
        0
    }
}

fn review_bytes(r: &Review) -> u64 {
    (std::mem::size_of::<Review>() + heap_len(&r.review_id) + r.reviewer_id.len() + r.text.len())
        as u64
}

fn order_bytes(o: &OrderLine) -> u64 {
    (std::mem::size_of::<OrderLine>() + heap_len(&o.order_id)) as u64
}

/// Accumulates accepted records and rejections for one file.
struct Sink {
    kind: Kind,
    /// Set when the records no longer fit the memory budget (the loaders stop with an error).
    over_budget: Option<String>,
    /// Bytes of accepted records not yet added to `HELD_BYTES`.
    unheld: u64,
    orders: Vec<OrderLine>,
    reviews: Vec<Review>,
    strings: schema::ReviewStrings,
    /// The file's products (records carry their numbers).
    products: schema::Products,
    rows: u64,
    rejected: u64,
    rejected_rows: Vec<RowError>,
    min: i64,
    max: i64,
    any_day: bool,
    any_second: bool,
    mangled: Vec<String>,
    mangled_count: u64,
    /// Hashed postal codes of this file (codes repeat across orders; a keyed hash per row costs
    /// more than a lookup). Bounded.
    postal_keys: rustc_hash::FxHashMap<String, Option<schema::Key>>,
    /// Product names of this file, first seen per product. Bounded.
    product_names: HashMap<Id, String>,
    /// By product number: has its name (checked per row, where a lookup by id hashed the id).
    named: Vec<bool>,
}

impl Sink {
    fn hold(&mut self, bytes: u64) {
        use std::sync::atomic::Ordering;
        // Added to the shared count once per 1024 rows (where the budget is checked), not per
        // row: files load on several threads, and one counter written by all of them per row
        // passes its cache line back and forth. `finish` adds what is left.
        self.unheld += bytes;
        if !self.rows.is_multiple_of(1024) {
            return;
        }
        let bytes = std::mem::take(&mut self.unheld);
        let held = HELD_BYTES.fetch_add(bytes, Ordering::Relaxed) + bytes;
        // Resident memory while loading is about 1.2× the records' estimated bytes (allocator
        // overhead, vectors growing, de-duplication tables); the factor leaves room for the
        // analysis view that follows.
        let held = held.saturating_mul(RSS_PER_ESTIMATED_BYTE);
        if self.over_budget.is_none() && held > memory_budget() {
            self.over_budget = Some(format!(
                "the records loaded so far (line {}) need about {:.1} GB of memory, more than this machine can hold \
                 ({:.1} GB budget, 75% of the memory available at start); audit a shorter date range or a \
                 smaller export, or use a machine with more memory (REVAUDIT_MEMORY_LIMIT sets the budget in bytes)",
                self.rows + 1,
                held as f64 / 1e9,
                memory_budget() as f64 / 1e9
            ));
        }
    }

    fn new(kind: Kind) -> Self {
        Sink {
            kind,
            over_budget: None,
            unheld: 0,
            orders: Vec::new(),
            reviews: Vec::new(),
            strings: schema::ReviewStrings::default(),
            products: schema::Products::default(),
            rows: 0,
            rejected: 0,
            rejected_rows: Vec::new(),
            min: i64::MAX,
            max: i64::MIN,
            any_day: false,
            any_second: false,
            mangled: Vec::new(),
            mangled_count: 0,
            postal_keys: Default::default(),
            product_names: HashMap::new(),
            named: Vec::new(),
        }
    }

    /// Note the row's product name, if it has one and the product has none yet.
    fn note_product_name(&mut self, rec: &dyn Record, product: u32) {
        let k = product as usize;
        if self.named.get(k).copied().unwrap_or(false) {
            return;
        }
        let Some(name) = rec.get(field!("product_name")).map(str::trim) else {
            return;
        };
        if name.is_empty() || self.product_names.len() >= MAX_PRODUCT_NAMES {
            return;
        }
        self.product_names
            .entry(Id::from(self.products.id(product)))
            .or_insert_with(|| name.chars().take(300).collect());
        if self.named.len() <= k {
            self.named.resize(k + 1, false);
        }
        self.named[k] = true;
    }

    fn reject(&mut self, e: RowError) {
        self.rejected += 1;
        if e.problem.contains("mangled") {
            self.mangled_count += 1;
            if self.mangled.len() < REJECTED_LISTED {
                self.mangled
                    .push(format!("line {}: {} '{}'", e.line, e.column, e.value));
            }
        }
        if self.rejected_rows.len() < REJECTED_LISTED {
            self.rejected_rows.push(e);
        }
    }

    fn accept_time(&mut self, secs: i64, res: TimeResolution) {
        self.min = self.min.min(secs);
        self.max = self.max.max(secs);
        match res {
            TimeResolution::Day => self.any_day = true,
            TimeResolution::Second => self.any_second = true,
        }
    }

    fn record(&mut self, rec: &dyn Record, c: &Ctx, record_index: u64, stem: &str, source: u32) {
        self.rows += 1;
        match self.kind {
            Kind::Reviews => {
                match build_review(
                    rec,
                    c,
                    record_index,
                    stem,
                    source,
                    &mut self.strings,
                    &mut self.products,
                ) {
                    Ok(r) => {
                        self.accept_time(r.created_at, r.resolution);
                        self.hold(review_bytes(&r));
                        self.note_product_name(rec, r.product);
                        self.reviews.push(r);
                    }
                    Err(e) => self.reject(e),
                }
            }
            Kind::Orders => {
                let mut m = Vec::new();
                let res = build_order(
                    rec,
                    c,
                    source,
                    &mut m,
                    &mut self.postal_keys,
                    &mut self.products,
                );
                self.mangled_count += m.len() as u64;
                for x in m {
                    if self.mangled.len() < REJECTED_LISTED {
                        self.mangled.push(x);
                    }
                }
                match res {
                    Ok(o) => {
                        self.accept_time(o.purchased_at, o.resolution);
                        self.hold(order_bytes(&o));
                        self.note_product_name(rec, o.product);
                        self.orders.push(o);
                    }
                    Err(e) => self.reject(e),
                }
            }
        }
    }
}

/// Pick the format for a header: forced name, else a mapping file that fits, else detection.
fn choose_spec(
    path: &Path,
    header_norm: &[String],
    container: Container,
    want: Option<Kind>,
    opts: &LoadOptions,
) -> Result<FormatSpec, IngestError> {
    let file_err = |msg: String| IngestError::File {
        path: path.to_path_buf(),
        msg,
    };
    let forced = match want {
        Some(Kind::Orders) => opts.orders_format.as_deref(),
        Some(Kind::Reviews) => opts.reviews_format.as_deref(),
        None => None,
    };
    let fitting_mapping = || {
        opts.mappings
            .iter()
            .filter(|m| want.is_none_or(|k| k == m.kind))
            .map(|m| m.spec())
            .find(|s| formats::matches(s, header_norm))
    };
    if let Some(name) = forced {
        if name == "generic" {
            if let Some(s) = fitting_mapping() {
                return Ok(s);
            }
            let kind = want.unwrap_or(Kind::Reviews);
            let s = formats::generic_spec(kind, None, None, 0);
            check_signature(&s, header_norm).map_err(file_err)?;
            return Ok(s);
        }
        let s = formats::by_name(name)
            .ok_or_else(|| file_err(format!("unknown format '{name}'")))?
            .clone();
        check_signature(&s, header_norm).map_err(file_err)?;
        return Ok(s);
    }
    if let Some(s) = formats::detect(header_norm, container, want) {
        return Ok(s);
    }
    if let Some(s) = fitting_mapping() {
        return Ok(s);
    }
    if let Some(k) = want {
        if let Some(other) = formats::detect(header_norm, container, None).filter(|s| s.kind != k) {
            return Err(file_err(format!(
                "is {} {} export ({}), but was given as {}; pass it with --{}",
                if other.kind == Kind::Orders {
                    "an"
                } else {
                    "a"
                },
                other.kind.as_str(),
                other.name,
                k.as_str(),
                other.kind.as_str()
            )));
        }
    }
    // Explain the nearest miss: which built-in format has most of its columns, and what lacks.
    let nearest = formats::FORMATS
        .iter()
        .map(|f| {
            let missing: Vec<&str> = f
                .signature
                .iter()
                .filter(|g| !g.iter().any(|a| header_norm.contains(a)))
                .map(|g| g[0].as_str())
                .collect();
            (f.signature.len() - missing.len(), f, missing)
        })
        .filter(|(hit, _, _)| *hit >= 2)
        .max_by_key(|(hit, _, _)| *hit);
    let shown: Vec<&str> = header_norm.iter().take(8).map(|s| s.as_str()).collect();
    let mut msg = format!(
        "unrecognised {} layout (first columns: {})",
        want.map(Kind::as_str).unwrap_or("export"),
        shown.join(", ")
    );
    if let Some((_, f, missing)) = nearest {
        msg.push_str(&format!(
            "; closest format is {} but required column(s) are missing: {}",
            f.name,
            missing.join(", ")
        ));
    }
    msg.push_str("; name the format with --orders-format/--reviews-format or describe the layout with --mapping FILE");
    Err(file_err(msg))
}

fn check_signature(s: &FormatSpec, header_norm: &[String]) -> Result<(), String> {
    let missing: Vec<&str> = s
        .signature
        .iter()
        .filter(|g| !g.iter().any(|a| header_norm.contains(a)))
        .map(|g| g[0].as_str())
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "missing required column(s) for format {}: {}",
            s.name,
            missing.join(", ")
        ))
    }
}

/// Resolve canonical field → (column index, original column name) for a header.
fn resolve_columns(
    spec: &FormatSpec,
    header: &[String],
    header_norm: &[String],
) -> (FieldIndex, HashMap<String, String>) {
    let mut index = FieldIndex::default();
    let mut names = HashMap::new();
    for (field, aliases) in &spec.fields {
        for a in aliases {
            if let Some(i) = header_norm.iter().position(|h| h == a) {
                index.push(field, i);
                names
                    .entry(field.clone())
                    .or_insert_with(|| header[i].trim().to_string());
            }
        }
    }
    (index, names)
}

fn required_fields(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Reviews => &["product_id", "rating", "created_at"],
        Kind::Orders => formats::ORDER_REQUIRED,
    }
}

/// Load one file. `want` is the side it was given for (`--orders` / `--reviews`), or `None` for
/// `inspect`, which takes either.
pub fn load_file(
    path: &Path,
    source: u32,
    want: Option<Kind>,
    opts: &LoadOptions,
) -> Result<FileLoad, IngestError> {
    load_opened(path, decode::open_file(path)?, source, want, opts)
}

/// Load bytes already in memory as if they were the file `name` (tests and fuzzing: the same
/// detection and parsers as `load_file`).
pub fn load_bytes(
    name: &str,
    bytes: &[u8],
    want: Option<Kind>,
    opts: &LoadOptions,
) -> Result<FileLoad, IngestError> {
    let path = Path::new(name);
    let named_gz = name.ends_with(".gz");
    let opened = decode::open_reader(
        Box::new(std::io::Cursor::new(bytes.to_vec())),
        named_gz,
        u64::MAX,
    )
    .map_err(|msg| IngestError::File {
        path: path.to_path_buf(),
        msg,
    })?;
    load_opened(path, opened, 0, want, opts)
}

fn load_opened(
    path: &Path,
    opened: Opened,
    source: u32,
    want: Option<Kind>,
    opts: &LoadOptions,
) -> Result<FileLoad, IngestError> {
    let file_err = |msg: String| IngestError::File {
        path: path.to_path_buf(),
        msg,
    };
    let stem = file_stem(path);
    let (mut reader, gzip, stats) = match opened {
        Opened::Text {
            reader,
            gzip,
            stats,
        } => (reader, gzip, stats),
        Opened::Parquet { bytes, gzip } => {
            let (header, rows) = mapping::parquet_rows(bytes)
                .map_err(|e| file_err(format!("cannot read Parquet: {e}")))?;
            return load_rows(
                path,
                source,
                want,
                opts,
                header,
                rows,
                Encoding::Parquet,
                gzip,
                &stem,
            );
        }
    };
    let io_err = |e: std::io::Error| file_err(stream_error(&e, gzip));
    // The first non-blank line says what kind of text this is.
    let mut first_line = String::new();
    let mut blank = 0u64;
    loop {
        first_line.clear();
        if reader.read_line(&mut first_line).map_err(io_err)? == 0 || !first_line.trim().is_empty()
        {
            break;
        }
        blank += 1;
    }
    let first_char = first_line.trim_start().chars().next().unwrap_or(' ');
    if first_char == '[' {
        return Err(file_err(
            "is a JSON array; revaudit reads JSON Lines (one object per line)".into(),
        ));
    }
    if first_char == '{' {
        return load_jsonl(
            path,
            source,
            want,
            opts,
            (blank + 1, first_line),
            reader,
            (gzip, stats),
            &stem,
        );
    }
    if blank > 0 || first_line.trim().is_empty() {
        return Err(file_err("has no header line (first line is empty)".into()));
    }
    let mut warnings = Vec::new();
    // Delimited.
    let header_line = first_line.trim_end_matches(['\n', '\r']);
    let delim = sniff_delimiter(header_line);
    // The header is split by the same reader as the rows (quoting on, as in every export).
    let header: Vec<String> = match delim::Rows::new(header_line.as_bytes(), delim, true).next_row()
    {
        Ok(Some(r)) => r.iter().map(str::to_string).collect(),
        _ => return Err(file_err("has no readable header line".into())),
    };
    let header_norm: Vec<String> = header.iter().map(|h| formats::norm_header(h)).collect();
    if header_norm.iter().any(|h| h.is_empty())
        && header_norm.iter().filter(|h| !h.is_empty()).count() < 2
    {
        return Err(file_err("has no header line (first line is empty)".into()));
    }
    if header.iter().any(|h| h != h.trim()) {
        warnings
            .push("header cells have surrounding spaces (file re-saved in Excel?); trimmed".into());
    }
    let spec = choose_spec(path, &header_norm, Container::Delimited, want, opts)?;
    let (index, names) = resolve_columns(&spec, &header, &header_norm);
    if let Some(miss) = required_fields(spec.kind)
        .iter()
        .find(|f| !index.contains_key(f))
    {
        return Err(file_err(format!(
            "missing required column for {miss} (format {})",
            spec.name
        )));
    }
    let quoting = spec.quoting || delim != b'\t';
    let mut rdr = delim::Rows::new(
        std::io::Cursor::new(first_line.clone().into_bytes()).chain(reader),
        delim,
        quoting,
    );
    let mut sink = Sink::new(spec.kind);
    let n_cols = header.len();
    let mut first = true;
    let mut record_index: u64 = 0;
    let mut long_rows = 0;
    let mut filled: HashMap<String, String> = HashMap::new();
    let mut last_order: Option<String> = None;
    const FILL: &[&str] = &[
        "purchased_at",
        "buyer_email",
        "buyer_name",
        "ship_postal_code",
        "ship_city",
        "ship_state",
        "ship_country",
        "currency",
        "status",
        "shipped_at",
        "promotion_ids",
        "ship_address",
    ];
    while let Some(record) = rdr
        .next_row()
        .map_err(|e| file_err(stream_error(&e, gzip)))?
    {
        if first {
            first = false;
            continue;
        }
        let line = record.line;
        if record.len() == 1 && record.get(0).is_some_and(|s| s.trim().is_empty()) {
            continue; // blank line
        }
        if record.len() != n_cols {
            sink.rows += 1;
            sink.reject(RowError {
                line,
                column: "-".into(),
                value: String::new(),
                problem: format!(
                    "wrong number of fields: expected {n_cols}, found {}{}",
                    record.len(),
                    if record.len() > n_cols && delim == b'\t' {
                        " (a tab inside a text field?)"
                    } else {
                        ""
                    }
                ),
            });
            record_index += 1;
            continue;
        }
        let nul = record
            .has_nul()
            .then(|| record.iter().position(|c| c.contains('\0')))
            .flatten();
        if let Some(k) = nul {
            sink.rows += 1;
            sink.reject(RowError {
                line,
                column: header.get(k).cloned().unwrap_or_else(|| "-".into()),
                value: short_value(&record.get(k).unwrap_or("").replace('\0', "\\0")),
                problem: "contains a NUL byte (damaged download?)".into(),
            });
            record_index += 1;
            continue;
        }
        if record.field_bytes() > LONG_ROW_BYTES && long_rows < 5 {
            long_rows += 1;
            warnings.push(format!(
                "line {line} is {:.1} MB long (kept; a review text this long is unusual)",
                record.field_bytes() as f64 / 1e6
            ));
        }
        let cells = Cells::Csv(&record);
        if spec.fill_forward_by_order {
            // Per row: the order id's column by number (`FieldIndex::cols`), not by name.
            let oid = index
                .cols(field!("order_id"))
                .first()
                .and_then(|&c| cells.get(c))
                .map(|s| s.trim().to_string());
            if oid.is_none() || oid != last_order {
                filled.clear();
                for f in FILL {
                    if let Some(v) = index
                        .get(f)
                        .and_then(|c| cells.get(c[0]))
                        .map(|s| s.trim())
                        .filter(|s| !s.is_empty())
                    {
                        filled.insert(f.to_string(), v.to_string());
                    }
                }
                last_order = oid;
            }
        }
        let empty = HashMap::new();
        let rec = DelimRecord {
            cells,
            index: &index,
            filled: if spec.fill_forward_by_order {
                &filled
            } else {
                &empty
            },
        };
        let ctx = Ctx {
            spec: &spec,
            col_name: &names,
            opts,
            line,
        };
        sink.record(&rec, &ctx, record_index, &stem, source);
        record_index += 1;
        if let Some(msg) = sink.over_budget.take() {
            return Err(IngestError::File {
                path: path.to_path_buf(),
                msg,
            });
        }
    }
    let delimiter = Some(match delim {
        b'\t' => "tab".to_string(),
        b';' => "semicolon".to_string(),
        _ => "comma".to_string(),
    });
    let encoding = text_encoding(&stats, &mut warnings);
    Ok(finish(
        path, spec, encoding, gzip, delimiter, sink, &header, &names, warnings,
    ))
}

/// The encoding a text stream turned out to have, with a warning for undecodable characters.
fn text_encoding(stats: &Rc<RefCell<decode::TextStats>>, warnings: &mut Vec<String>) -> Encoding {
    let st = *stats.borrow();
    if st.replaced > 0 {
        warnings.push(format!(
            "{} characters could not be decoded and were replaced",
            st.replaced
        ));
    }
    st.encoding
}

/// A read error in the middle of a stream: the input limit, a damaged gzip file, or I/O.
fn stream_error(e: &std::io::Error, gzip: bool) -> String {
    let m = e.to_string();
    if m.contains(decode::LIMIT_MARK) {
        m
    } else if gzip {
        format!("gzip data is corrupt or truncated ({m}); download the report again")
    } else {
        format!("cannot read: {m}")
    }
}

#[allow(clippy::too_many_arguments)]
fn load_jsonl(
    path: &Path,
    source: u32,
    want: Option<Kind>,
    opts: &LoadOptions,
    first: (u64, String),
    mut reader: std::io::BufReader<decode::TextReader>,
    (gzip, stats): (bool, Rc<RefCell<decode::TextStats>>),
    stem: &str,
) -> Result<FileLoad, IngestError> {
    let io_err = |e: std::io::Error| IngestError::File {
        path: path.to_path_buf(),
        msg: stream_error(&e, gzip),
    };
    // The first 50 non-blank lines are read ahead: their keys decide the format.
    let mut ahead: std::collections::VecDeque<(u64, String)> = std::collections::VecDeque::new();
    let mut lineno = first.0;
    ahead.push_back(first);
    while ahead.len() < 50 {
        let mut l = String::new();
        if reader.read_line(&mut l).map_err(io_err)? == 0 {
            break;
        }
        lineno += 1;
        if !l.trim().is_empty() {
            ahead.push_back((lineno, l));
        }
    }
    let mut warnings = Vec::new();
    // The key set: union of the first 50 parseable lines (optional keys are often absent).
    let mut keys: Vec<String> = Vec::new();
    let mut seen = HashSet::new();
    for (_, line) in ahead.iter() {
        if let Ok(serde_json::Value::Object(m)) = serde_json::from_str::<serde_json::Value>(line) {
            for k in m.keys() {
                if seen.insert(k.to_lowercase()) {
                    keys.push(k.clone());
                }
            }
        }
    }
    if keys.is_empty() {
        return Err(IngestError::File {
            path: path.to_path_buf(),
            msg: "starts like JSON but its first lines are not valid JSON objects".into(),
        });
    }
    let keys_norm: Vec<String> = keys.iter().map(|k| k.to_lowercase()).collect();
    let spec = choose_spec(path, &keys_norm, Container::JsonLines, want, opts)?;
    let (index, names) = resolve_columns(&spec, &keys, &keys_norm);
    if let Some(miss) = required_fields(spec.kind)
        .iter()
        .find(|f| !index.contains_key(f))
    {
        return Err(IngestError::File {
            path: path.to_path_buf(),
            msg: format!("missing required key for {miss} (format {})", spec.name),
        });
    }
    // canonical field → (lower-case key, optional array index)
    let mut field_keys: Vec<(String, String, Option<usize>)> = Vec::new();
    for (field, aliases) in &spec.fields {
        for a in aliases {
            let (base, idx) = match a.split_once('[') {
                Some((b, rest)) => (
                    b.to_string(),
                    rest.trim_end_matches(']').parse::<usize>().ok(),
                ),
                None => (a.clone(), None),
            };
            if keys_norm.contains(&base) {
                field_keys.push((field.clone(), base, idx));
                break;
            }
        }
    }
    let mut sink = Sink::new(spec.kind);
    let mut record_index: u64 = 0;
    let mut next_line = |buf: &mut String| -> Result<Option<u64>, IngestError> {
        if let Some((n, l)) = ahead.pop_front() {
            *buf = l;
            return Ok(Some(n));
        }
        buf.clear();
        if reader.read_line(buf).map_err(io_err)? == 0 {
            return Ok(None);
        }
        lineno += 1;
        Ok(Some(lineno))
    };
    let mut line = String::new();
    let mut long_rows = 0;
    while let Some(lineno) = next_line(&mut line)? {
        if line.trim().is_empty() {
            continue;
        }
        if line.len() > LONG_ROW_BYTES && long_rows < 5 {
            long_rows += 1;
            warnings.push(format!(
                "line {lineno} is {:.1} MB long (kept; a review text this long is unusual)",
                line.len() as f64 / 1e6
            ));
        }
        let obj = match serde_json::from_str::<serde_json::Value>(&line) {
            Ok(serde_json::Value::Object(m)) => m,
            Ok(_) => {
                sink.rows += 1;
                sink.reject(RowError {
                    line: lineno,
                    column: "-".into(),
                    value: String::new(),
                    problem: "line is JSON but not an object".into(),
                });
                record_index += 1;
                continue;
            }
            Err(e) => {
                sink.rows += 1;
                sink.reject(RowError {
                    line: lineno,
                    column: "-".into(),
                    value: String::new(),
                    problem: format!("malformed JSON: {e}"),
                });
                record_index += 1;
                continue;
            }
        };
        let lower: HashMap<String, &serde_json::Value> =
            obj.iter().map(|(k, v)| (k.to_lowercase(), v)).collect();
        let mut values = HashMap::new();
        for (field, key, idx) in &field_keys {
            let v = match (lower.get(key), idx) {
                (Some(serde_json::Value::Array(a)), Some(i)) => a.get(*i),
                (Some(v), None) => Some(*v),
                _ => None,
            };
            let s = match v {
                Some(serde_json::Value::String(s)) => Some(s.clone()),
                Some(serde_json::Value::Number(n)) => Some(n.to_string()),
                Some(serde_json::Value::Bool(b)) => Some(b.to_string()),
                _ => None,
            };
            if let Some(s) = s {
                values.insert(field.clone(), s);
            }
        }
        let rec = JsonRecord { values };
        let ctx = Ctx {
            spec: &spec,
            col_name: &names,
            opts,
            line: lineno,
        };
        sink.record(&rec, &ctx, record_index, stem, source);
        record_index += 1;
        if let Some(msg) = sink.over_budget.take() {
            return Err(IngestError::File {
                path: path.to_path_buf(),
                msg,
            });
        }
    }
    let _ = index;
    let encoding = text_encoding(&stats, &mut warnings);
    Ok(finish(
        path, spec, encoding, gzip, None, sink, &keys, &names, warnings,
    ))
}

#[allow(clippy::too_many_arguments)]
fn load_rows(
    path: &Path,
    source: u32,
    want: Option<Kind>,
    opts: &LoadOptions,
    header: Vec<String>,
    rows: Vec<mapping::Row>,
    encoding: Encoding,
    gzip: bool,
    stem: &str,
) -> Result<FileLoad, IngestError> {
    let header_norm: Vec<String> = header.iter().map(|h| formats::norm_header(h)).collect();
    let spec = choose_spec(path, &header_norm, Container::Any, want, opts)?;
    let (index, names) = resolve_columns(&spec, &header, &header_norm);
    if let Some(miss) = required_fields(spec.kind)
        .iter()
        .find(|f| !index.contains_key(f))
    {
        return Err(IngestError::File {
            path: path.to_path_buf(),
            msg: format!("missing required column for {miss} (format {})", spec.name),
        });
    }
    let mut sink = Sink::new(spec.kind);
    let empty = HashMap::new();
    for (i, row) in rows.iter().enumerate() {
        let cells: Vec<&str> = row.iter().map(|c| c.as_deref().unwrap_or("")).collect();
        let rec = DelimRecord {
            cells: Cells::Values(cells),
            index: &index,
            filled: &empty,
        };
        // Parquet has no lines: "line" is the 1-based row number.
        let ctx = Ctx {
            spec: &spec,
            col_name: &names,
            opts,
            line: i as u64 + 1,
        };
        sink.record(&rec, &ctx, i as u64, stem, source);
        if let Some(msg) = sink.over_budget.take() {
            return Err(IngestError::File {
                path: path.to_path_buf(),
                msg,
            });
        }
    }
    Ok(finish(
        path,
        spec,
        encoding,
        gzip,
        None,
        sink,
        &header,
        &names,
        Vec::new(),
    ))
}

#[allow(clippy::too_many_arguments)]
fn finish(
    path: &Path,
    spec: FormatSpec,
    encoding: Encoding,
    gzip: bool,
    delimiter: Option<String>,
    sink: Sink,
    header: &[String],
    names: &HashMap<String, String>,
    mut warnings: Vec<String>,
) -> FileLoad {
    HELD_BYTES.fetch_add(sink.unheld, std::sync::atomic::Ordering::Relaxed);
    let used: HashSet<&str> = names.values().map(|s| s.as_str()).collect();
    let unused_columns: Vec<String> = header
        .iter()
        .map(|h| h.trim().to_string())
        .filter(|h| !used.contains(h.as_str()))
        .collect();
    if sink.rows == 0 {
        warnings.push("no data rows (header only)".into());
    }
    let accepted = sink.rows - sink.rejected;
    let time_resolution = match (sink.any_second, sink.any_day) {
        (false, false) => None,
        (true, false) => Some(TimeResolution::Second),
        _ => Some(TimeResolution::Day),
    };
    if sink.any_second && sink.any_day {
        warnings.push(
            "mixed time resolution: some values have only a date; treated as day resolution".into(),
        );
    }
    let report = FileReport {
        path: path.display().to_string(),
        format: spec.name.clone(),
        kind: spec.kind,
        encoding: encoding.label().to_string(),
        gzip,
        delimiter,
        rows: sink.rows,
        accepted,
        rejected: sink.rejected,
        rejected_rows: sink.rejected_rows,
        first: (accepted > 0).then(|| format_utc(sink.min)),
        last: (accepted > 0).then(|| format_utc(sink.max)),
        time_resolution,
        column_mapping: names.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        unused_columns,
        mangled_ids: sink.mangled,
        mangled_count: sink.mangled_count,
        link_by: spec.link_by.to_string(),
        warnings,
    };
    FileLoad {
        report,
        orders: sink.orders,
        reviews: sink.reviews,
        strings: sink.strings,
        products: sink.products,
        product_names: sink.product_names,
    }
}

/// Apply the bad-row policy to a loaded file.
pub fn check_bad_rows(load: &FileLoad, policy: BadRowPolicy) -> Result<(), IngestError> {
    let r = &load.report;
    let too_many = match policy {
        BadRowPolicy::Fail => r.rejected > 0,
        BadRowPolicy::Skip => false,
        BadRowPolicy::SkipUpTo(share) => r.rejected as f64 > share * r.rows as f64,
    };
    if !too_many {
        return Ok(());
    }
    let list = r
        .rejected_rows
        .iter()
        .take(10)
        .map(|e| format!("  {e}"))
        .collect::<Vec<_>>()
        .join("\n");
    Err(IngestError::TooManyBadRows {
        path: PathBuf::from(&r.path),
        rejected: r.rejected,
        rows: r.rows,
        policy: policy.describe(),
        list,
    })
}

/// Load every orders and reviews file, apply the bad-row policy, concatenate, de-duplicate by id and
/// link reviews to orders.
pub fn load_dataset(
    orders: &[PathBuf],
    reviews: &[PathBuf],
    opts: &LoadOptions,
) -> Result<Dataset, IngestError> {
    let mut ds = Dataset::default();
    let all_paths: Vec<&PathBuf> = orders.iter().chain(reviews).collect();
    let path_of = |source: u32| {
        all_paths
            .get(source as usize)
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    };
    // Files are parsed two at a time (orders and reviews exports are independent), then merged in
    // the order given, so the result and the first error reported do not depend on timing.
    let jobs: Vec<(&PathBuf, Kind)> = orders
        .iter()
        .map(|p| (p, Kind::Orders))
        .chain(reviews.iter().map(|p| (p, Kind::Reviews)))
        .collect();
    let (loads, merged_orders, merged_reviews) = load_parallel(&jobs, opts, &path_of);
    // Errors in file order: a file that failed, or one with too many bad rows.
    let mut order_parts: Vec<OrderPart> = Vec::new();
    let mut review_parts: Vec<ReviewPart> = Vec::new();
    for load in loads {
        let mut load = load?;
        check_bad_rows(&load, opts.on_bad_rows)?;
        order_parts.push(take_orders(&mut load));
        review_parts.push(take_reviews(&mut load));
        for (id, name) in load.product_names {
            ds.product_names.entry(id).or_insert(name);
        }
        ds.report.files.push(load.report);
    }
    // Each kind was normally merged by the thread that loaded its last file; a kind without
    // files is merged (empty) here.
    let (orders, mut products, order_report) =
        merged_orders.unwrap_or_else(|| merge_orders(order_parts, &path_of));
    let (mut reviews, strings, review_products, review_report) =
        merged_reviews.unwrap_or_else(|| merge_reviews(review_parts, &path_of));
    // One numbering for both: the orders', then the products only reviews name.
    let map = products.absorb(&review_products);
    schema::renumber_products(&mut reviews, &map, |r| &mut r.product);
    ds.orders = orders;
    ds.reviews = reviews;
    ds.strings = strings;
    ds.products = products;
    for part in [order_report, review_report] {
        ds.report.duplicate_order_lines += part.duplicate_order_lines;
        ds.report.duplicate_reviews += part.duplicate_reviews;
        ds.report.conflicting_duplicates += part.conflicting_duplicates;
        let room = MAX_CONFLICTS_LISTED.saturating_sub(ds.report.conflicts.len());
        ds.report
            .conflicts
            .extend(part.conflicts.into_iter().take(room));
    }
    link_reviews(&mut ds);
    ds.report.order_lines = ds.orders.len() as u64;
    ds.report.reviews = ds.reviews.len() as u64;
    let any_day = ds
        .reviews
        .iter()
        .any(|r| r.resolution == TimeResolution::Day);
    ds.report.review_time_resolution = (!ds.reviews.is_empty()).then_some(if any_day {
        TimeResolution::Day
    } else {
        TimeResolution::Second
    });
    Ok(ds)
}

/// All order lines of the files, in file order, de-duplicated by (order id, item) — the first copy
/// is kept, differing copies are noted — and sorted by time. Records are moved, never copied: the
/// first file's vector becomes the result. Duplicates are marked, then removed at once.
fn merge_orders(
    parts: Vec<OrderPart>,
    path_of: &(dyn Fn(u32) -> String + Sync),
) -> (Vec<OrderLine>, schema::Products, LoadReport) {
    let mut report = LoadReport::default();
    let mut orders: Vec<OrderLine> = Vec::new();
    let mut products = schema::Products::default();
    for (mut part, part_products) in parts {
        let map = products.absorb(&part_products);
        schema::renumber_products(&mut part, &map, |o| &mut o.product);
        append(&mut orders, part);
    }
    // De-duplication keys are 64-bit hashes of the identifying fields (no string copies per row);
    // a hash match is confirmed against the stored record before anything is dropped.
    let key = |i: usize| hash_of(&[&orders[i].order_id], orders[i].item as i64);
    let one_at_a_time = DEDUPLICATING.lock().unwrap_or_else(|e| e.into_inner());
    let copies = copies_in_halves(
        orders.len(),
        key,
        |i, j| {
            let (o, p) = (&orders[i], &orders[j as usize]);
            p.order_id == o.order_id && p.item == o.item
        },
        |j| crate::pages::prefetch_all(&orders[j as usize]),
    );
    drop(one_at_a_time);
    let mut dup = vec![false; if copies.is_empty() { 0 } else { orders.len() }];
    for (i, j) in copies {
        dup[i as usize] = true;
        report.duplicate_order_lines += 1;
        let (o, prev) = (&orders[i as usize], &orders[j as usize]);
        let what = if prev.quantity != o.quantity {
            Some(format!("quantity {} vs {}", o.quantity, prev.quantity))
        } else if prev.purchased_at != o.purchased_at {
            Some("purchase date".to_string())
        } else if !prev.same_price(o) {
            Some("item price".to_string())
        } else {
            None
        };
        note_conflict(
            &mut report,
            what,
            format!("order '{}'", short_value(&o.order_id)),
            (o.line.into(), path_of(o.source)),
            (prev.line.into(), path_of(prev.source)),
        );
    }
    remove_marked(&mut orders, &dup);
    drop(dup);
    // Deterministic order regardless of file order quirks: by time, then id.
    sort_records(
        &mut orders,
        |o| o.purchased_at,
        |x, y| {
            (&x.order_id, products.id(x.product), x.source, x.line).cmp(&(
                &y.order_id,
                products.id(y.product),
                y.source,
                y.line,
            ))
        },
    );
    (orders, products, report)
}

/// Pairs (later copy, first copy) among items `0..n`, ascending: items with equal `key(i)` (a
/// 64-bit hash of the identifying fields) confirmed equal by `same(i, earlier)`, each later copy
/// paired with the first. The keys are split in two halves by their lowest bit, each half
/// de-duplicated on its own core: all copies of an item fall in one half and are met there in
/// order, so the pairs are those of one pass. `touch` requests an item's memory (read ahead).
fn copies_in_halves(
    n: usize,
    key: impl Fn(usize) -> u64 + Sync,
    same: impl Fn(usize, u32) -> bool + Sync,
    touch: impl Fn(u32) + Sync,
) -> Vec<(u32, u32)> {
    let halves = crate::analyze::in_chunks(2, 1, |halves| {
        let mut seen = Seen::with_capacity(n * halves.len() / 2 + 1);
        let mut copies: Vec<(u32, u32)> = Vec::new();
        let in_halves = (0..n)
            .map(|i| (i, key(i)))
            .filter(|&(_, k)| halves.contains(&((k & 1) as usize)));
        each_read_ahead(&mut seen, in_halves, &touch, |seen, i, k| {
            match seen.find(k, |j| same(i, j)) {
                Some(j) => copies.push((i as u32, j)),
                None => seen.insert(k, i as u32),
            }
        });
        copies
    });
    let mut copies = crate::analyze::concat(halves);
    copies.sort_unstable();
    copies
}

/// Held by a merge of one kind of records while it de-duplicates, so that the de-duplication tables
/// of orders and reviews never stand side by side: beside every record and text loaded, both at
/// once were the memory peak of a run at scale (10M: 3.88 GB, 134 MB over one).
static DEDUPLICATING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// All reviews of the files, in file order, de-duplicated by review id (and, for reviews whose
/// id revaudit assigned, by product, reviewer and time) and sorted by time; as `merge_orders`.
fn merge_reviews(
    parts: Vec<ReviewPart>,
    path_of: &(dyn Fn(u32) -> String + Sync),
) -> (
    Vec<Review>,
    schema::ReviewStrings,
    schema::Products,
    LoadReport,
) {
    // Sources without ids: the same review in two overlapping downloads (only needed when some
    // review id was assigned by revaudit).
    let any_assigned = parts.iter().any(|v| v.0.iter().any(|r| r.assigned_id));
    let mut report = LoadReport::default();
    let mut reviews: Vec<Review> = Vec::new();
    let mut strings = schema::ReviewStrings::default();
    let mut products = schema::Products::default();
    for (mut part, part_strings, part_products) in parts {
        let by = strings.append(part_strings);
        if by != (0, 0) {
            part.iter_mut().for_each(|r| r.shift(by));
        }
        let map = products.absorb(&part_products);
        schema::renumber_products(&mut part, &map, |r| &mut r.product);
        append(&mut reviews, part);
    }
    let n = reviews.len();
    let mut dup = vec![false; n];
    // A later copy of review `j` under the same id, dropped and noted (with what differs).
    let note_copy = |report: &mut LoadReport, dup: &mut [bool], i: usize, j: u32| {
        dup[i] = true;
        report.duplicate_reviews += 1;
        let (r, prev) = (&reviews[i], &reviews[j as usize]);
        let what = if prev.rating != r.rating {
            Some(format!("rating {} vs {}", r.rating, prev.rating))
        } else if prev.created_at != r.created_at {
            Some("date".to_string())
        } else if prev.product != r.product {
            Some("product".to_string())
        } else if strings.texts.get(prev.text) != strings.texts.get(r.text) {
            Some("text".to_string())
        } else {
            None
        };
        note_conflict(
            report,
            what,
            format!("review '{}'", short_value(&r.review_id)),
            (r.line.into(), path_of(r.source)),
            (prev.line.into(), path_of(prev.source)),
        );
    };
    let key = |i: usize| hash_of(&[&reviews[i].review_id], 0);
    let same_id = |i: usize, j: u32| reviews[j as usize].review_id == reviews[i].review_id;
    let touch = |j: u32| crate::pages::prefetch_all(&reviews[j as usize]);
    let one_at_a_time = DEDUPLICATING.lock().unwrap_or_else(|e| e.into_inner());
    if any_assigned {
        // One pass in file order: whether a review with an assigned id is a copy by content
        // depends on the reviews kept before it, whatever their ids.
        let mut seen_ids = Seen::with_capacity(n);
        let mut seen_content = Seen::with_capacity(n);
        let ids = &strings.reviewer_ids;
        each_read_ahead(
            &mut seen_ids,
            (0..n).map(|i| (i, key(i))),
            touch,
            |seen_ids, i, id_key| {
                if let Some(j) = seen_ids.find(id_key, |j| same_id(i, j)) {
                    note_copy(&mut report, &mut dup, i, j);
                    return;
                }
                let r = &reviews[i];
                let reviewer = ids.str(r.reviewer_id);
                let content_key = hash_of(&[products.id(r.product), reviewer], r.created_at);
                let same_content = |j: u32| {
                    let q = &reviews[j as usize];
                    q.product == r.product
                        && ids.str(q.reviewer_id) == reviewer
                        && q.created_at == r.created_at
                };
                if r.assigned_id && seen_content.find(content_key, same_content).is_some() {
                    dup[i] = true;
                    report.duplicate_reviews += 1;
                    return;
                }
                seen_content.insert(content_key, i as u32);
                seen_ids.insert(id_key, i as u32);
            },
        );
    } else {
        for (i, j) in copies_in_halves(n, key, same_id, touch) {
            note_copy(&mut report, &mut dup, i as usize, j);
        }
    }
    drop(one_at_a_time);
    remove_marked(&mut reviews, &dup);
    drop(dup);
    sort_records(
        &mut reviews,
        |r| r.created_at,
        |x, y| (&x.review_id, x.source, x.line).cmp(&(&y.review_id, y.source, y.line)),
    );
    (reviews, strings, products, report)
}

/// Sort records by `time`, ties by `tie`. Exports are usually in time order already: that is
/// checked in one sequential pass. Otherwise (time, index) keys are sorted — compact and
/// cache-friendly, where comparing the records themselves would jump around gigabytes — ties are
/// ordered within their (short) runs, and the permutation is applied in place.
fn sort_records<T: Send>(
    v: &mut [T],
    time: impl Fn(&T) -> i64,
    tie: impl Fn(&T, &T) -> std::cmp::Ordering,
) {
    let in_order = v.windows(2).all(|w| {
        time(&w[0])
            .cmp(&time(&w[1]))
            .then_with(|| tie(&w[0], &w[1]))
            != std::cmp::Ordering::Greater
    });
    if in_order {
        return;
    }
    let mut perm = sorted_indices(
        || v.iter().map(&time).zip(0u32..),
        |a, b| tie(&v[a as usize], &v[b as usize]),
        |i| crate::pages::prefetch_all(&v[i as usize]),
    );
    permute_in_place(v, perm.as_mut_slice());
}

/// A permutation's positions, two to a 64-bit word: the sort keys they come from (one word each)
/// become them in place and shrink to half, with no second vector beside the keys at the loading
/// peak.
struct Perm {
    words: Vec<u64>,
    len: usize,
}

impl Perm {
    /// Narrow sorted `(key << 32 | position)` words to their positions, in place.
    fn from_keys(mut keys: Vec<u64>) -> Perm {
        let len = keys.len();
        let halves: &mut [u32] = bytemuck::cast_slice_mut(&mut keys);
        let low = usize::from(cfg!(target_endian = "big"));
        // Word j's position goes to half j, which lies in word j / 2: read before written over.
        for j in 0..len {
            halves[j] = halves[2 * j + low];
        }
        keys.truncate(len.div_ceil(2));
        keys.shrink_to_fit();
        Perm { words: keys, len }
    }

    fn as_mut_slice(&mut self) -> &mut [u32] {
        &mut bytemuck::cast_slice_mut(&mut self.words)[..self.len]
    }
}

/// The indices of `items()` — (key, index) pairs — in key order, indices of equal keys ordered by
/// `tie` (`order_ties`, `touch` requesting an index's record). Sorted as one u64 each,
/// `(key − least) << 32 | index`, when the keys span less than 2^32 (half the memory of pairs:
/// tens of millions of them at the loading peak), as pairs otherwise. `items` is called up to
/// twice.
fn sorted_indices<I: Iterator<Item = (i64, u32)>>(
    items: impl Fn() -> I,
    tie: impl Fn(u32, u32) -> std::cmp::Ordering,
    touch: impl Fn(u32),
) -> Perm {
    let (lo, hi) = items().fold((i64::MAX, i64::MIN), |(lo, hi), (k, _)| {
        (lo.min(k), hi.max(k))
    });
    let (lo, hi) = if lo > hi { (0, 0) } else { (lo, hi) };
    if hi.abs_diff(lo) < 1 << 32 {
        let mut keys: Vec<u64> = items()
            .map(|(k, i)| (k.abs_diff(lo)) << 32 | i as u64)
            .collect();
        keys.sort_unstable();
        order_ties(&mut keys, |x| x >> 32, |x| x as u32, tie, touch);
        Perm::from_keys(keys)
    } else {
        let mut keys: Vec<(i64, u32)> = items().collect();
        keys.sort_unstable();
        order_ties(&mut keys, |x| x.0 as u64, |x| x.1, tie, touch);
        Perm::from_keys(keys.iter().map(|k| k.1 as u64).collect())
    }
}

/// Order each run of equal `key`s of `sorted` by `tie` of their `index`es. Exports put many
/// records in the same second (the lines of one order always), and `tie` reads the records, which
/// lie scattered over gigabytes: the records of the run members `TIES_AHEAD` places on are
/// requested first (`touch`), so that the comparisons do not wait for each record in turn.
fn order_ties<T: Copy>(
    sorted: &mut [T],
    key: impl Fn(T) -> u64,
    index: impl Fn(T) -> u32,
    tie: impl Fn(u32, u32) -> std::cmp::Ordering,
    touch: impl Fn(u32),
) {
    const TIES_AHEAD: usize = 32;
    let n = sorted.len();
    let (mut start, mut ahead) = (0, 0);
    while start < n {
        let mut end = start + 1;
        while end < n && key(sorted[end]) == key(sorted[start]) {
            end += 1;
        }
        while ahead < (end + TIES_AHEAD).min(n) {
            let k = key(sorted[ahead]);
            let before = ahead > 0 && key(sorted[ahead - 1]) == k;
            if before || sorted.get(ahead + 1).is_some_and(|&x| key(x) == k) {
                touch(index(sorted[ahead]));
            }
            ahead += 1;
        }
        if end - start > 1 {
            sorted[start..end].sort_unstable_by(|&a, &b| tie(index(a), index(b)));
        }
        start = end;
    }
}

/// Move `more` onto the end of `v` (no copy when `v` is empty).
fn append<T>(v: &mut Vec<T>, mut more: Vec<T>) {
    if v.is_empty() {
        *v = more;
    } else {
        v.append(&mut more);
    }
}

/// Drop the elements whose mark is set, keeping the order of the rest.
fn remove_marked<T>(v: &mut Vec<T>, marked: &[bool]) {
    if !marked.iter().any(|&m| m) {
        return;
    }
    let mut k = 0;
    v.retain(|_| {
        k += 1;
        !marked[k - 1]
    });
}

/// Indices of records by 64-bit key: an open-addressing table (linear probing) of 8-byte slots,
/// each the key's upper 32 bits and a record index — half the size of a map of (key, index) pairs,
/// which at tens of millions of records is hundreds of megabytes at the loading peak. The home
/// slot is the key's top bits, so a slot's stored bits are enough to move it when the table
/// grows. A slot whose key bits match is only a candidate: callers confirm it against the record
/// (`same`). Records under one key stay in insertion order along its probe run (nothing is ever
/// removed).
pub(crate) struct Seen {
    /// In 2 MB pages where the system grants them: every lookup is a random read.
    slots: crate::pages::PageVec<u64>,
    len: usize,
}

/// A fast 64-bit hash of a short byte string (ids), eight bytes at a time. Not keyed: for tables
/// whose hits are always confirmed against the stored value.
pub fn fast_hash(bytes: &[u8]) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut h = (bytes.len() as u64).wrapping_mul(K);
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        h = (h ^ w).wrapping_mul(K).rotate_left(29);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut t = [0u8; 8];
        t[..rest.len()].copy_from_slice(rest);
        h = (h ^ u64::from_le_bytes(t)).wrapping_mul(K).rotate_left(29);
    }
    // Final avalanche, so the table's low and high bits both vary.
    avalanche(h)
}

/// The splitmix64 finaliser: every input bit flips about half of the output bits.
pub fn avalanche(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// For maps keyed by values that already are 64-bit hashes: used as they are, not hashed again.
#[derive(Default, Clone, Copy)]
pub struct PreHashed;

impl std::hash::BuildHasher for PreHashed {
    type Hasher = PreHasher;
    fn build_hasher(&self) -> PreHasher {
        PreHasher(0)
    }
}

/// See `PreHashed`.
#[derive(Default)]
pub struct PreHasher(u64);

impl std::hash::Hasher for PreHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Not used for u64 keys; a plain FNV-1a keeps it correct for anything else.
        for b in bytes {
            self.0 = (self.0 ^ *b as u64).wrapping_mul(0x100000001b3);
        }
    }
    fn write_u64(&mut self, x: u64) {
        self.0 = x;
    }
}

impl Seen {
    const EMPTY: u64 = u64::MAX;

    pub(crate) fn with_capacity(n: usize) -> Self {
        Seen {
            slots: crate::pages::PageVec::filled(Self::slots_for(n), Self::EMPTY),
            len: 0,
        }
    }

    /// The first empty slot of `key`'s probe run.
    fn free_slot(&self, key: u64) -> usize {
        let slots = self.slots.as_slice();
        let mask = slots.len() - 1;
        let mut at = self.home(key);
        while slots[at] != Self::EMPTY {
            at = (at + 1) & mask;
        }
        at
    }

    /// Table size for `n` records: a power of two at most 7/8 full.
    fn slots_for(n: usize) -> usize {
        (n + n / 7 + 1).next_power_of_two().max(16)
    }

    /// Home slot of a key: its top bits (the table has 2^bits slots, at most 2^32).
    fn home(&self, key: u64) -> usize {
        (key >> (64 - self.slots.len().trailing_zeros())) as usize
    }

    /// Slot values of the probe run of `key` whose key bits match, in insertion order.
    fn candidates(&self, key: u64) -> impl Iterator<Item = u32> + '_ {
        let slots = self.slots.as_slice();
        let mask = slots.len() - 1;
        let tag = key >> 32;
        let start = self.home(key);
        (0..slots.len())
            .map(move |k| slots[(start + k) & mask])
            .take_while(|&v| v != Self::EMPTY)
            .filter(move |&v| v >> 32 == tag)
            .map(|v| v as u32)
    }

    /// The first record under `key` for which `same` holds.
    pub(crate) fn find(&self, key: u64, mut same: impl FnMut(u32) -> bool) -> Option<u32> {
        self.candidates(key).find(|&i| same(i))
    }

    /// Every record under `key` for which `same` holds, in insertion order.
    fn all<'s>(
        &'s self,
        key: u64,
        same: impl Fn(u32) -> bool + 's,
    ) -> impl Iterator<Item = u32> + 's {
        self.candidates(key).filter(move |&j| same(j))
    }

    /// Request the home slot of `key` (`pages::prefetch`) ahead of a lookup.
    fn prefetch(&self, key: u64) {
        if let Some(slot) = self.slots.as_slice().get(self.home(key)) {
            crate::pages::prefetch(slot);
        }
    }

    /// The first candidate under `key`, unconfirmed: for reading a table slot (and what it points
    /// to) ahead of the real lookup, so that many such reads are in flight at once.
    pub(crate) fn peek(&self, key: u64) -> Option<u32> {
        self.candidates(key).next()
    }

    pub(crate) fn insert(&mut self, key: u64, i: u32) {
        if (self.len + 1) * 8 > self.slots.len() * 7 {
            self.grow();
        }
        let at = self.free_slot(key);
        self.slots.as_mut_slice()[at] = (key & !0xFFFF_FFFF) | i as u64;
        self.len += 1;
    }

    /// Double the table. Slots are re-inserted starting after an empty one, so every probe run is
    /// walked front to back and records under one key keep their order.
    fn grow(&mut self) {
        let bigger = crate::pages::PageVec::filled((self.slots.len() * 2).max(16), Self::EMPTY);
        let old = std::mem::replace(&mut self.slots, bigger);
        let old = old.as_slice();
        let start = old.iter().position(|&v| v == Self::EMPTY).unwrap_or(0);
        for k in 1..=old.len() {
            let v = old[(start + k) % old.len()];
            if v == Self::EMPTY {
                continue;
            }
            // The stored upper bits hold the new home (the key's top bits).
            let at = self.free_slot(v);
            self.slots.as_mut_slice()[at] = v;
        }
    }
}

/// Records looked up per batch by `read_ahead`.
pub(crate) const READ_AHEAD: usize = 256;

/// Run `body(seen, i, key)` for every `(i, key)` of `items`, in order, a batch of `READ_AHEAD` at a
/// time whose keys' table slots (and, through `touch`, the records they point to) are requested
/// first (see `read_ahead`).
fn each_read_ahead(
    seen: &mut Seen,
    items: impl Iterator<Item = (usize, u64)>,
    touch: impl Fn(u32),
    mut body: impl FnMut(&mut Seen, usize, u64),
) {
    let mut items = items;
    let mut batch: Vec<(usize, u64)> = Vec::with_capacity(READ_AHEAD);
    let mut keys: Vec<u64> = Vec::with_capacity(READ_AHEAD);
    loop {
        batch.clear();
        batch.extend(items.by_ref().take(READ_AHEAD));
        if batch.is_empty() {
            return;
        }
        keys.clear();
        keys.extend(batch.iter().map(|b| b.1));
        read_ahead(seen, &keys, &touch);
        for &(i, k) in &batch {
            body(seen, i, k);
        }
    }
}

/// Request the table slots of `keys`, then (through `touch`, which requests memory with
/// `pages::prefetch`) the records their first candidates point to, before a batch of lookups: a
/// request does not wait for its memory, so the cache misses of the whole batch are in flight at
/// once, where the lookups themselves (each followed by work on its result) would wait for them
/// one by one. With tens of millions of records the tables and records are gigabytes: this is most
/// of the time of de-duplication, linking and reviewer numbering.
pub(crate) fn read_ahead(seen: &Seen, keys: &[u64], touch: impl Fn(u32)) {
    read_ahead_in(|_| seen, keys, touch)
}

/// `read_ahead` where each key has its table (`OrderRuns`).
fn read_ahead_in<'a>(table: impl Fn(u64) -> &'a Seen, keys: &[u64], touch: impl Fn(u32)) {
    for &k in keys {
        table(k).prefetch(k);
    }
    for &k in keys {
        if let Some(j) = table(k).peek(k) {
            touch(j);
        }
    }
}

/// Count a duplicate whose content differs (`what`: how) and list the first few with both places.
fn note_conflict(
    report: &mut LoadReport,
    what: Option<String>,
    subject: String,
    (line, file): (u64, String),
    (prev_line, prev_file): (u64, String),
) {
    let Some(what) = what else { return };
    report.conflicting_duplicates += 1;
    if report.conflicts.len() < MAX_CONFLICTS_LISTED {
        report.conflicts.push(format!(
            "{subject}: line {line} of {file} differs from line {prev_line} of {prev_file} ({what}); the first is kept"
        ));
    }
}

/// One file's order lines and the products they point to.
type OrderPart = (Vec<OrderLine>, schema::Products);

/// Move a file's order lines and their products out of its load.
fn take_orders(load: &mut FileLoad) -> OrderPart {
    (
        std::mem::take(&mut load.orders),
        std::mem::take(&mut load.products),
    )
}

/// One file's reviews and the strings and products they point to.
type ReviewPart = (Vec<Review>, schema::ReviewStrings, schema::Products);

/// Move a file's reviews and their strings and products out of its load.
fn take_reviews(load: &mut FileLoad) -> ReviewPart {
    (
        std::mem::take(&mut load.reviews),
        std::mem::take(&mut load.strings),
        std::mem::take(&mut load.products),
    )
}

/// Reviews merged by `merge_reviews`, with their strings, products and report.
type MergedReviews = Option<(
    Vec<Review>,
    schema::ReviewStrings,
    schema::Products,
    LoadReport,
)>;

/// Order lines merged by `merge_orders`, with their products and report.
type MergedOrders = Option<(Vec<OrderLine>, schema::Products, LoadReport)>;

/// Load files on up to two threads; results in the order of `jobs`. The thread that finishes the
/// last file of a kind merges that kind's records right away (the order lines are merged while the
/// reviews are still being read, or the other way round) when every file of the kind loaded and
/// passed `check_bad_rows`; otherwise that kind is left unmerged (`None`) and its records stay in
/// the loads. The merge reads the files' records in file order, so the result does not depend on
/// which thread did what.
fn load_parallel(
    jobs: &[(&PathBuf, Kind)],
    opts: &LoadOptions,
    path_of: &(dyn Fn(u32) -> String + Sync),
) -> (
    Vec<Result<FileLoad, IngestError>>,
    MergedOrders,
    MergedReviews,
) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    let next = AtomicUsize::new(0);
    let done: Mutex<Vec<(usize, Result<FileLoad, IngestError>)>> = Mutex::new(Vec::new());
    let left = |kind: Kind| jobs.iter().filter(|j| j.1 == kind).count();
    let orders_left = AtomicUsize::new(left(Kind::Orders));
    let reviews_left = AtomicUsize::new(left(Kind::Reviews));
    let merged_orders: Mutex<MergedOrders> = Mutex::new(None);
    let merged_reviews: Mutex<MergedReviews> = Mutex::new(None);
    let threads = jobs.len().clamp(1, 2);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((p, kind)) = jobs.get(i) else { break };
                let r = load_file(p, i as u32, Some(*kind), opts);
                let last = {
                    let mut d = done.lock().unwrap_or_else(|e| e.into_inner());
                    d.push((i, r));
                    // Decided under the lock: the last of a kind sees every file of it in `done`.
                    match kind {
                        Kind::Orders => orders_left.fetch_sub(1, Ordering::Relaxed) == 1,
                        Kind::Reviews => reviews_left.fetch_sub(1, Ordering::Relaxed) == 1,
                    }
                };
                if !last {
                    continue;
                }
                let policy = opts.on_bad_rows;
                match kind {
                    Kind::Orders => merge_kind(
                        &done,
                        jobs,
                        *kind,
                        policy,
                        take_orders,
                        |parts| merge_orders(parts, path_of),
                        &merged_orders,
                    ),
                    Kind::Reviews => merge_kind(
                        &done,
                        jobs,
                        *kind,
                        policy,
                        take_reviews,
                        |parts| merge_reviews(parts, path_of),
                        &merged_reviews,
                    ),
                }
            });
        }
    });
    let mut v = done.into_inner().unwrap_or_else(|e| e.into_inner());
    v.sort_by_key(|x| x.0);
    (
        v.into_iter().map(|x| x.1).collect(),
        merged_orders
            .into_inner()
            .unwrap_or_else(|e| e.into_inner()),
        merged_reviews
            .into_inner()
            .unwrap_or_else(|e| e.into_inner()),
    )
}

/// Merge `kind` into `slot` when every file of it loaded and passed `check_bad_rows`: the records
/// of its files are moved out of the loads in file order (`pick`) and merged (`merge`) outside the
/// lock. Otherwise nothing is taken: the caller reports the first failing file, in file order.
fn merge_kind<P, M>(
    done: &std::sync::Mutex<Vec<(usize, Result<FileLoad, IngestError>)>>,
    jobs: &[(&PathBuf, Kind)],
    kind: Kind,
    policy: BadRowPolicy,
    pick: impl Fn(&mut FileLoad) -> P,
    merge: impl FnOnce(Vec<P>) -> M,
    slot: &std::sync::Mutex<Option<M>>,
) {
    let parts: Option<Vec<P>> = {
        let mut done = done.lock().unwrap_or_else(|e| e.into_inner());
        done.sort_by_key(|x| x.0);
        let mut of_kind: Vec<&mut (usize, Result<FileLoad, IngestError>)> =
            done.iter_mut().filter(|x| jobs[x.0].1 == kind).collect();
        let clean = of_kind
            .iter()
            .all(|x| matches!(&x.1, Ok(l) if check_bad_rows(l, policy).is_ok()));
        clean.then(|| {
            of_kind
                .iter_mut()
                .filter_map(|x| x.1.as_mut().ok().map(&pick))
                .collect()
        })
    };
    if let Some(parts) = parts {
        let merged = merge(parts);
        *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(merged);
    }
}

/// The key reviews link to orders by: a 64-bit hash of the order id (reviews keep only this; a
/// false match between two different ids of one audit is a one-in-a-billion-billions event).
pub fn order_key(order_id: &str) -> schema::Key {
    schema::Key::new(hash_of(&[order_id], 0) | 1).unwrap_or(schema::Key::MIN)
}

/// A 64-bit hash of some strings and a number (de-duplication keys; always confirmed by comparing
/// the records themselves, so a fast unkeyed hash will do).
fn hash_of(parts: &[&str], n: i64) -> u64 {
    parts.iter().fold(avalanche(n as u64), |h, p| {
        avalanche(h.rotate_left(23) ^ fast_hash(p.as_bytes()))
    })
}

/// Reorder `v` in place so that element k of the result is the old `v[perm[k]]`: each cycle of the
/// permutation is followed with swaps, so no second vector of records is ever allocated.
///
/// Exports are often nearly in time order (sorted by day, shuffled within it): the permutation
/// then falls into segments that each stay within themselves (a position k where the first k
/// records are exactly the first k of the result). The two halves of the vector, cut at the
/// segment boundary nearest the middle, are permuted on two cores; the cycles, all inside one
/// segment, are walked within a few megabytes rather than over the whole vector. Where no boundary
/// lies near the middle (an export grouped by product), the records in the wrong half are first
/// swapped pairwise into the right one (`balance_halves`), which makes the middle a boundary.
fn permute_in_place<T: Send>(v: &mut [T], perm: &mut [u32]) {
    let n = v.len();
    let mut mid = 0usize;
    let mut reach = 0;
    for (k, &p) in perm.iter().enumerate() {
        reach = reach.max(p as usize);
        // Positions ..=k hold exactly the records they receive: a segment boundary after k.
        if reach == k && (k + 1).abs_diff(n / 2) < mid.abs_diff(n / 2) {
            mid = k + 1;
        }
    }
    if mid.abs_diff(n / 2) > n / 8 && n >= 1 << 16 {
        // (Not a permutation, were it ever: one walk over the whole vector, as with no boundary.)
        mid = if balance_halves(v, perm, n / 2) {
            n / 2
        } else {
            0
        };
    }
    let (v_lo, v_hi) = v.split_at_mut(mid);
    let (p_lo, p_hi) = perm.split_at_mut(mid);
    if mid == 0 || mid == n || n < 1 << 16 {
        permute_part(v_lo, p_lo, 0);
        permute_part(v_hi, p_hi, mid);
        return;
    }
    std::thread::scope(|s| {
        s.spawn(|| permute_part(v_lo, p_lo, 0));
        permute_part(v_hi, p_hi, mid);
    });
}

/// Make `..mid` and `mid..` of the permutation hold their own records: each position before `mid`
/// whose record lies after it is paired with the next position after `mid` whose record lies
/// before it, and the two records are swapped (then each is in its destination's half). The
/// swaps are independent of each other, so their scattered reads overlap. Every swap keeps
/// `perm` describing the same result. False if `perm` turns out not to be a permutation.
fn balance_halves<T>(v: &mut [T], perm: &mut [u32], mid: usize) -> bool {
    let mut b = mid;
    for a in 0..mid {
        let from_a = perm[a] as usize;
        if from_a < mid {
            continue;
        }
        while perm.get(b).is_some_and(|&p| p as usize >= mid) {
            b += 1;
        }
        let Some(&from_b) = perm.get(b) else {
            return false;
        };
        if from_a >= v.len() {
            return false;
        }
        v.swap(from_a, from_b as usize);
        perm[a] = from_b;
        perm[b] = from_a as u32;
        b += 1;
    }
    true
}

/// `permute_in_place` of a part of the vector that starts at position `base` of it and holds
/// every record its positions receive (`perm` values are positions in the whole vector).
fn permute_part<T>(v: &mut [T], perm: &mut [u32], base: usize) {
    const DONE: u32 = u32::MAX;
    for start in 0..v.len() {
        if perm[start] == DONE {
            continue;
        }
        // Walk the cycle through `start`: position k receives the element at perm[k].
        let mut k = start;
        loop {
            let from = perm[k] as usize - base;
            perm[k] = DONE;
            if from == start {
                break;
            }
            v.swap(k, from);
            k = from;
        }
    }
}

/// The order-id index of linking: the lines of one order sit next to each other (orders are
/// sorted by time, then id), so the first line of each run of equal ids is indexed, by a hash of
/// the id. The index is two tables, split by a bit of the hash, each built on its own core from
/// the runs in order (so the runs under one key keep their order, as in one table); together they
/// take the memory of one.
struct OrderRuns([Seen; 2]);

impl OrderRuns {
    fn new(orders: &[OrderLine]) -> Self {
        let per_half = orders.len() / 2 + orders.len() / 64 + 16;
        let build = |half: usize| {
            let mut runs = Seen::with_capacity(per_half);
            // Inserted a batch at a time, the batch's home slots requested first
            // (`each_read_ahead`): each insert is otherwise a cache miss waited for alone.
            let starts = (0..orders.len())
                .filter(|&i| i == 0 || orders[i - 1].order_id != orders[i].order_id)
                .map(|i| (i, order_key(&orders[i].order_id).get()))
                .filter(|&(_, key)| Self::half(key) == half);
            each_read_ahead(
                &mut runs,
                starts,
                |_| (),
                |runs, i, key| runs.insert(key, i as u32),
            );
            runs
        };
        std::thread::scope(|s| {
            let second = s.spawn(|| build(1));
            let first = build(0);
            OrderRuns([
                first,
                second
                    .join()
                    .unwrap_or_else(|e| std::panic::resume_unwind(e)),
            ])
        })
    }

    /// Which table a key is in (bit 1: bit 0 of an order key is always set).
    fn half(key: u64) -> usize {
        (key >> 1 & 1) as usize
    }

    fn of(&self, key: u64) -> &Seen {
        &self.0[Self::half(key)]
    }
}

/// Link each review to an order: by order id where the review carries one, else by buyer key +
/// product to the nearest earlier order. The order-id index is built here, once every file is
/// merged (built earlier, by the thread that merged the orders, it stood beside the reviews'
/// de-duplication tables at the loading peak).
pub fn link_reviews(ds: &mut Dataset) {
    let orders = &ds.orders;
    let mut links: Vec<OptIdx> = vec![OptIdx::NONE; ds.reviews.len()];
    let mut methods: BTreeMap<String, u64> = BTreeMap::new();
    if ds.reviews.iter().any(|r| r.order_key.is_some()) {
        let runs = OrderRuns::new(orders);
        // Reviews are looked up on all cores (the index is only read), results joined in order.
        let found = crate::analyze::in_chunks(ds.reviews.len(), 50_000, |range| {
            let mut part: Vec<OptIdx> = Vec::with_capacity(range.len());
            let mut keys: Vec<u64> = Vec::with_capacity(READ_AHEAD);
            for batch in ds.reviews[range].chunks(READ_AHEAD) {
                keys.clear();
                keys.extend(batch.iter().map(|r| r.order_key.map_or(0, |k| k.get())));
                let touch = |j: u32| crate::pages::prefetch_all(&orders[j as usize]);
                read_ahead_in(|key| runs.of(key), &keys, touch);
                for (r, &key) in batch.iter().zip(&keys) {
                    let Some(want) = r.order_key else {
                        part.push(OptIdx::NONE);
                        continue;
                    };
                    let mut first = None;
                    let mut same_product = None;
                    let starts = runs
                        .of(key)
                        .all(key, |j| order_key(&orders[j as usize].order_id) == want);
                    'runs: for start in starts {
                        let oid = &orders[start as usize].order_id;
                        for (k, o) in orders.iter().enumerate().skip(start as usize) {
                            if o.order_id != *oid {
                                break;
                            }
                            first.get_or_insert(k as u32);
                            if o.product == r.product {
                                same_product = Some(k as u32);
                                break 'runs;
                            }
                        }
                    }
                    part.push(same_product.or(first).into());
                }
            }
            part
        });
        drop(runs);
        links = crate::analyze::concat(found);
        let n = links.iter().filter(|l| l.get().is_some()).count() as u64;
        if n > 0 {
            methods.insert("order id".into(), n);
        }
    }
    let by_buyer_needed = ds
        .reviews
        .iter()
        .zip(&links)
        .any(|(r, l)| l.get().is_none() && r.reviewer_key.is_some());
    if by_buyer_needed {
        let mut by_buyer: HashMap<(schema::Key, u32), Vec<(i64, u32)>> = HashMap::new();
        for (i, o) in orders.iter().enumerate() {
            if let Some(k) = o.buyer_key {
                by_buyer
                    .entry((k, o.product))
                    .or_default()
                    .push((o.purchased_at, i as u32));
            }
        }
        for (r, link) in ds.reviews.iter().zip(links.iter_mut()) {
            if link.get().is_some() {
                continue;
            }
            let Some(k) = r.reviewer_key else { continue };
            let Some(cands) = by_buyer.get(&(k, r.product)) else {
                continue;
            };
            // A day-resolution review may come later the same day as the purchase.
            let limit = if r.resolution == TimeResolution::Day {
                r.created_at + 86_399
            } else {
                r.created_at
            };
            if let Some(&(_, i)) = cands
                .iter()
                .filter(|(t, _)| *t <= limit)
                .max_by_key(|(t, _)| *t)
            {
                *link = Some(i).into();
                *methods.entry("buyer key + product".into()).or_default() += 1;
            }
        }
    }
    let linked = links.iter().filter(|l| l.get().is_some()).count() as u64;
    for (r, l) in ds.reviews.iter_mut().zip(links) {
        r.linked_order = l;
    }
    ds.report.linked_reviews = linked;
    ds.report.link_rate = if ds.reviews.is_empty() {
        0.0
    } else {
        linked as f64 / ds.reviews.len() as f64
    };
    ds.report.link_methods = methods;
}

#[cfg(test)]
mod tests {
    proptest::proptest! {
        /// The quick trim agrees with the plain one.
        #[test]
        fn cells_trim_as_plainly(
            cell in "[ \t\u{3000}\u{a0}]{0,2}\\PC{0,8}[ \t\u{3000}\u{85}]{0,2}",
        ) {
            proptest::prop_assert_eq!(super::trim_cell(&cell), cell.trim());
        }
    }

    proptest::proptest! {
        /// De-duplication in halves pairs every later copy with the first, as one pass in order
        /// would; keys shared by different values (hash collisions) are told apart by `same`.
        #[test]
        fn copies_in_halves_pair_later_copies_with_the_first(
            values in proptest::collection::vec(0u32..40, 0..400),
        ) {
            let key = |i: usize| super::avalanche((values[i] % 7) as u64);
            let got = super::copies_in_halves(
                values.len(),
                key,
                |i, j| values[i] == values[j as usize],
                |_| {},
            );
            let want: Vec<(u32, u32)> = (0..values.len())
                .filter_map(|i| {
                    let first = values.iter().position(|&v| v == values[i])?;
                    (first < i).then_some((i as u32, first as u32))
                })
                .collect();
            proptest::prop_assert_eq!(got, want);
        }
    }

    /// Equal keys are ordered by the tie rule, in both key forms (narrow span and wide), and only
    /// members of a run of equal keys have their records requested.
    #[test]
    fn ties_are_ordered_by_the_tie_rule() {
        let names = ["d", "b", "a", "c", "e"];
        for times in [[5i64, 5, 1, 5, 2], [5 << 40, 5 << 40, -1, 5 << 40, 0]] {
            let touched = std::cell::RefCell::new(Vec::new());
            let mut perm = super::sorted_indices(
                || times.iter().copied().zip(0u32..),
                |a, b| names[a as usize].cmp(names[b as usize]),
                |i| touched.borrow_mut().push(i),
            );
            assert_eq!(perm.as_mut_slice(), [2, 4, 1, 3, 0], "{times:?}");
            let mut touched = touched.into_inner();
            touched.sort_unstable();
            assert_eq!(touched, [0, 1, 3], "{times:?}");
        }
    }

    /// Every canonical field a record is read by has a number, found from its name; no two share one.
    #[test]
    fn canonical_fields_are_numbered() {
        use super::{Field, FIELD_NAMES};
        for (k, name) in FIELD_NAMES.iter().enumerate() {
            assert_eq!(Field::lookup(name), Some(Field(k as u8)), "{name}");
            assert_eq!(Field::named(name).name(), *name);
        }
        assert_eq!(Field::lookup("ship_city"), None);
        assert_eq!(field!("order_id"), Field(0));
        assert!(field!("sku").is_id() && !field!("rating").is_id());
        let read = crate::ingest::formats::REVIEW_REQUIRED
            .iter()
            .chain(crate::ingest::formats::REVIEW_OPTIONAL)
            .chain(crate::ingest::formats::ORDER_REQUIRED);
        for name in read {
            assert!(Field::lookup(name).is_some(), "{name} has no number");
        }
    }

    #[test]
    fn verified_flags_read_without_case() {
        use super::parse_bool;
        for (v, want) in [
            ("Verified Purchase", Some(true)),
            (" YES ", Some(true)),
            ("1", Some(true)),
            ("Not Verified", Some(false)),
            ("FALSE", Some(false)),
            ("maybe", None),
            ("", None),
            ("ÿes", None),
        ] {
            assert_eq!(parse_bool(v), want, "{v:?}");
        }
    }

    /// Order lines de-duplicated in two key halves: the lines kept, the counts and the conflicts
    /// listed (with their order) are those of one pass keeping each line's first copy.
    #[test]
    fn order_deduplication_matches_one_pass() {
        use super::*;
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let mut line = 0u32;
        let mut part = |n: usize, source: u32| -> OrderPart {
            let mut products = schema::Products::default();
            let p = products.intern("B000TEST01");
            let orders = (0..n)
                .map(|_| {
                    line += 1;
                    OrderLine {
                        order_id: format!("o{}", rng.random_range(0..300)).into(),
                        item: rng.random_range(0..3),
                        purchased_at: 1_700_000_000 + rng.random_range(0..2) * 60,
                        resolution: TimeResolution::Second,
                        shipped: true,
                        free: false,
                        promo: false,
                        product: p,
                        quantity: rng.random_range(1..3),
                        item_price: [9.5, 10.0][rng.random_range(0..2)],
                        buyer_key: None,
                        address_key: None,
                        postal_key: None,
                        source,
                        line,
                    }
                })
                .collect();
            (orders, products)
        };
        let parts = vec![part(700, 0), part(500, 1)];
        let all: Vec<OrderLine> = parts.iter().flat_map(|p| p.0.clone()).collect();
        let path_of = |s: u32| format!("file{s}");
        let (merged, _, report) = merge_orders(parts, &path_of);
        // One pass: the first copy of each (order id, item) is kept.
        let mut first: HashMap<(String, u64), usize> = HashMap::new();
        let (mut kept, mut dups, mut conflicting, mut listed) = (Vec::new(), 0, 0, Vec::new());
        for (i, o) in all.iter().enumerate() {
            match first.get(&(o.order_id.to_string(), o.item)) {
                None => {
                    first.insert((o.order_id.to_string(), o.item), i);
                    kept.push((o.source, o.line));
                }
                Some(&j) => {
                    dups += 1;
                    let p = &all[j];
                    if p.quantity != o.quantity
                        || p.purchased_at != o.purchased_at
                        || !p.same_price(o)
                    {
                        conflicting += 1;
                        listed.push((o.line, p.line));
                    }
                }
            }
        }
        let mut got: Vec<(u32, u32)> = merged.iter().map(|o| (o.source, o.line)).collect();
        got.sort_unstable();
        kept.sort_unstable();
        assert_eq!(got, kept);
        assert!(dups > 500 && conflicting > 100, "{dups} {conflicting}");
        assert_eq!(report.duplicate_order_lines, dups);
        assert_eq!(report.conflicting_duplicates, conflicting);
        assert_eq!(report.conflicts.len(), MAX_CONFLICTS_LISTED);
        for (text, (l, pl)) in report.conflicts.iter().zip(&listed) {
            assert!(text.contains(&format!("line {l} of ")), "{text}");
            assert!(text.contains(&format!("from line {pl} of ")), "{text}");
        }
    }

    /// Inputs saved from the fuzzing corpora (`fuzz/regressions/<target>/`), replayed through the
    /// same calls as the fuzz targets: any future panic on them fails here, without nightly.
    #[test]
    fn fuzz_regressions_replay() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
        let files = |t: &str| -> Vec<Vec<u8>> {
            let mut v: Vec<_> = std::fs::read_dir(root.join(t))
                .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
                .unwrap_or_default();
            v.sort();
            v.iter().filter_map(|p| std::fs::read(p).ok()).collect()
        };
        let opts = fuzz_options();
        let mut n = 0;
        for data in files("load_detect") {
            for want in [None, Some(Kind::Reviews)] {
                let _ = load_bytes("input.csv", &data, want, &opts);
            }
            n += 1;
        }
        let names = formats::format_names();
        for data in files("load_forced") {
            let Some((&pick, body)) = data.split_first() else {
                continue;
            };
            let name = names[pick as usize % names.len()];
            let Some(spec) = formats::by_name(name) else {
                continue;
            };
            let mut o = fuzz_options();
            match spec.kind {
                Kind::Orders => o.orders_format = Some(name.to_string()),
                Kind::Reviews => o.reviews_format = Some(name.to_string()),
            }
            let _ = load_bytes("input.txt", body, Some(spec.kind), &o);
            n += 1;
        }
        for data in files("decode") {
            let _ = decode::decode_all(&data);
            n += 1;
        }
        for data in files("timestamp") {
            if let Ok(s) = std::str::from_utf8(&data) {
                for unit in [
                    timestamp::EpochUnit::Auto,
                    timestamp::EpochUnit::Seconds,
                    timestamp::EpochUnit::Millis,
                ] {
                    let _ = timestamp::parse_timestamp(s, unit, 0, 1_800_000_000);
                }
            }
            n += 1;
        }
        assert!(n >= 50, "only {n} saved fuzz inputs found");
    }

    use super::*;

    /// The slot table against a map of vectors: records under a key come back in insertion order
    /// through many doublings (from the smallest table), keys sharing their upper bits (one stored
    /// tag) are told apart by the confirmation, and absent keys are not found.
    #[test]
    fn seen_keeps_every_record_in_insertion_order() {
        let mut seen = Seen::with_capacity(0);
        let mut want: BTreeMap<u64, Vec<u32>> = BTreeMap::new();
        let mut key_of: Vec<u64> = Vec::new();
        for i in 0..20_000u32 {
            // Few distinct keys among the first records (long runs of one key), then a pair of
            // keys differing only in their lower half, then mostly distinct keys.
            let key = match i {
                0..=999 => avalanche((i % 7) as u64),
                1000..=1999 => (0xABCD_EF01u64 << 32) | (i % 2) as u64,
                _ => avalanche(i as u64 / 3 + 100),
            };
            seen.insert(key, i);
            key_of.push(key);
            want.entry(key).or_default().push(i);
        }
        for (&key, idx) in &want {
            let same = |j: u32| key_of[j as usize] == key;
            assert_eq!(seen.all(key, same).collect::<Vec<_>>(), *idx);
            assert_eq!(seen.find(key, same), idx.first().copied());
        }
        for k in 0..1000u64 {
            let key = avalanche(k + 1_000_000);
            assert_eq!(seen.find(key, |j| key_of[j as usize] == key), None);
        }
    }

    /// Reviews whose ids revaudit assigned (no id in the source) are also de-duplicated by
    /// product, reviewer and time — the same review in two overlapping downloads gets two ids;
    /// reviews with source ids are told apart by their ids alone.
    #[test]
    fn content_deduplication_only_for_assigned_ids() {
        // Each file's reviewer ids and texts are in its own arena, at different offsets, and
        // each file numbers its products its own way.
        type Part = (schema::ReviewStrings, schema::Products);
        let review = |id: &str, assigned: bool, line: u32, (s, p): &mut Part| Review {
            review_id: id.into(),
            product: p.intern("P1"),
            reviewer_id: s.reviewer_ids.push("U1"),
            rating: 5,
            created_at: 1_700_000_000,
            resolution: TimeResolution::Second,
            text: s.texts.push(&format!("text of {id}")),
            verified: None,
            order_key: None,
            reviewer_key: None,
            ip_key: None,
            source: 0,
            line,
            linked_order: schema::OptIdx::NONE,
            assigned_id: assigned,
        };
        let path_of = |_: u32| String::from("f");
        let (mut a, mut b) = (Part::default(), Part::default());
        let first = vec![review("a#0", true, 2, &mut a)];
        b.0.reviewer_ids.push("someone else");
        b.0.texts.push("another text");
        b.1.intern("P0");
        let second = vec![
            review("b#0", true, 2, &mut b),
            review("c#1", true, 3, &mut b),
        ];
        let parts = vec![(first, a.0, a.1), (second, b.0, b.1)];
        let (kept, strings, _, report) = merge_reviews(parts, &path_of);
        assert_eq!((kept.len(), report.duplicate_reviews), (1, 2));
        assert_eq!(strings.texts.get(kept[0].text), Some("text of a#0"));
        let mut s = Part::default();
        let part = vec![
            review("R1", false, 2, &mut s),
            review("R2", false, 3, &mut s),
        ];
        let (kept, strings, _, report) = merge_reviews(vec![(part, s.0, s.1)], &path_of);
        assert_eq!((kept.len(), report.duplicate_reviews), (2, 0));
        assert_eq!(strings.reviewer_ids.str(kept[1].reviewer_id), "U1");
    }

    /// The later files' strings are appended to the first's and their reviews point to them;
    /// each file numbers its products its own way, the merge renumbers them.
    #[test]
    fn merged_reviews_point_to_their_own_strings_and_products() {
        let path_of = |_: u32| String::from("f");
        let parts: Vec<ReviewPart> = (0..3)
            .map(|f| {
                let mut s = schema::ReviewStrings::default();
                let mut products = schema::Products::default();
                let reviews = (0..2)
                    .map(|k| Review {
                        review_id: format!("R{f}-{k}").into(),
                        // File 0 names P0 first, file 1 P1 first, …
                        product: products.intern(&format!("P{}", (f + k) % 2)),
                        reviewer_id: s.reviewer_ids.push(&format!("U{f}-{k}")),
                        rating: 4,
                        created_at: 1_700_000_000 + 10 * k + f,
                        resolution: TimeResolution::Second,
                        text: if k == 0 {
                            s.texts.push(&format!("Title {f}. Body {f}"))
                        } else {
                            schema::StrRef::NONE
                        },
                        verified: None,
                        order_key: None,
                        reviewer_key: None,
                        ip_key: None,
                        source: f as u32,
                        line: 2 + k as u32,
                        linked_order: schema::OptIdx::NONE,
                        assigned_id: false,
                    })
                    .collect();
                (reviews, s, products)
            })
            .collect();
        let (kept, strings, products, _) = merge_reviews(parts, &path_of);
        assert_eq!((kept.len(), products.len()), (6, 2));
        for r in &kept {
            let (f, k) = (r.source, r.line - 2);
            assert_eq!(r.review_id, format!("R{f}-{k}"));
            assert_eq!(products.id(r.product), format!("P{}", (f + k) % 2));
            assert_eq!(strings.reviewer_ids.str(r.reviewer_id), format!("U{f}-{k}"));
            let text = strings.texts.get(r.text).map(str::to_string);
            assert_eq!(text, (k == 0).then(|| format!("Title {f}. Body {f}")));
        }
    }

    /// A fixed stream of well-mixed 64-bit values from `seed`.
    fn stream(mut state: u64) -> impl FnMut() -> u64 {
        move || {
            state = avalanche(state);
            state
        }
    }

    /// Records come out ordered by time, then tie, whichever key layout the time span picks.
    #[test]
    fn records_sort_by_time_then_tie() {
        let mut next = stream(7);
        // Both key widths, an even and an odd number of records (positions packed two a word).
        for (span, n) in [(1_000i64, 2000), (1_000, 2001), (1 << 40, 2001)] {
            let mut v: Vec<(i64, u32)> = (0..n)
                .map(|_| {
                    (
                        (next() % 50) as i64 * (span / 50) - span / 2,
                        (next() % 7) as u32,
                    )
                })
                .collect();
            let mut want = v.clone();
            want.sort();
            sort_records(&mut v, |x| x.0, |x, y| x.1.cmp(&y.1));
            assert_eq!(v, want, "span {span}");
        }
    }

    /// Permutations nearly in order (shuffled within blocks: split into two halves on two cores
    /// at a block boundary) and shuffled whole or in blocks far from the middle (halves balanced by
    /// swaps first) give the reordering a plain gather gives.
    #[test]
    fn permutations_apply_whole_or_in_halves() {
        let mut next = stream(11);
        let n = 200_000usize;
        for block in [1usize, 1000, 70_001, n] {
            let mut perm: Vec<u32> = (0..n as u32).collect();
            for chunk in perm.chunks_mut(block) {
                for i in (1..chunk.len()).rev() {
                    chunk.swap(i, (next() % (i as u64 + 1)) as usize);
                }
            }
            let v: Vec<u64> = (0..n as u64).map(|x| x * 3).collect();
            let want: Vec<u64> = perm.iter().map(|&p| v[p as usize]).collect();
            let mut got = v.clone();
            permute_in_place(&mut got, &mut perm);
            assert!(got == want, "block {block}");
        }
    }

    #[test]
    fn excel_mangled_ids() {
        assert!(is_excel_mangled("5.80293E+13"));
        assert!(is_excel_mangled("1e+15"));
        assert!(!is_excel_mangled("B00YQ6X8EO"));
        assert!(!is_excel_mangled("114-1234567-1234567"));
        assert!(!is_excel_mangled("E+13"));
    }

    #[test]
    fn stems() {
        assert_eq!(file_stem(Path::new("/x/reviews.jsonl.gz")), "reviews");
        assert_eq!(file_stem(Path::new("orders.tsv")), "orders");
        assert_eq!(file_stem(Path::new("noext")), "noext");
    }

    /// A rejected row is named by the line it is on, in files saved with `\r\n` line ends (Excel)
    /// and after blank lines (the `csv` crate named the line before it).
    #[test]
    fn rejected_rows_name_their_own_line() {
        let opts = fuzz_options();
        for (data, line) in [
            (
                "review_id,product_id,reviewer_id,rating,created_at,title,text\r\n\
                 r1,B0000001,A1,5,2026-01-01T00:00:00Z,t,x\r\n\
                 r2,B0000001,A2,9,2026-01-01T00:00:00Z,t,x\r\n",
                3,
            ),
            (
                "review_id,product_id,reviewer_id,rating,created_at,title,text\n\
                 r1,B0000001,A1,5,2026-01-01T00:00:00Z,t,\"two\nlines\"\n\n\n\
                 r2,B0000001,A2,9,2026-01-01T00:00:00Z,t,x\n",
                6,
            ),
        ] {
            let load = load_bytes("r.csv", data.as_bytes(), Some(Kind::Reviews), &opts).unwrap();
            assert_eq!(load.report.accepted, 1);
            let lines: Vec<u64> = load.report.rejected_rows.iter().map(|r| r.line).collect();
            assert_eq!(lines, vec![line], "{:?}", load.report.rejected_rows);
        }
    }

    #[test]
    fn delimiter_sniffing() {
        assert_eq!(sniff_delimiter("a\tb\tc"), b'\t');
        assert_eq!(sniff_delimiter("a;b;c"), b';');
        assert_eq!(sniff_delimiter("a,b,\"c;d\""), b',');
    }
}
