//! Generic layouts: the TOML mapping file that says which column is which canonical field, and
//! Parquet files (always read as generic).
//!
//! A mapping file looks like this (see `notebooks-data/mapping-example.toml`):
//! ```toml
//! kind = "reviews"                     # or "orders"
//! timestamp_format = "%d/%m/%Y %H:%M"  # optional chrono format; default: every known shape
//! utc_offset = "+01:00"                # optional: offset of timestamps that carry none
//! [columns]                            # canonical field = "source column"
//! product_id = "SKU"
//! reviewer_id = "Customer"
//! rating = "Stars"
//! created_at = "Posted"
//! ```

use std::path::Path;

use anyhow::{bail, Context, Result};
#[cfg(feature = "parquet")]
use polars::prelude::*;
use serde::Deserialize;

use super::formats::{self, FormatSpec, Kind};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MappingFile {
    kind: Kind,
    #[serde(default)]
    timestamp_format: Option<String>,
    #[serde(default)]
    utc_offset: Option<String>,
    columns: std::collections::BTreeMap<String, String>,
}

/// A parsed mapping file.
#[derive(Debug, Clone)]
pub struct Mapping {
    /// Orders or reviews.
    pub kind: Kind,
    /// canonical field → source column.
    pub columns: Vec<(String, String)>,
    /// chrono format for timestamps.
    pub timestamp_format: Option<String>,
    /// Offset (seconds east of UTC) for naive timestamps.
    pub utc_offset_secs: i64,
}

impl Mapping {
    /// Read and validate a mapping file.
    pub fn load(path: &Path) -> Result<Mapping> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read mapping file {}", path.display()))?;
        let m: MappingFile = toml::from_str(&text)
            .with_context(|| format!("mapping file {} is not valid", path.display()))?;
        let (req, opt) = match m.kind {
            Kind::Reviews => (formats::REVIEW_REQUIRED, formats::REVIEW_OPTIONAL),
            Kind::Orders => (formats::ORDER_REQUIRED, formats::ORDER_OPTIONAL),
        };
        for k in m.columns.keys() {
            if !req.contains(&k.as_str()) && !opt.contains(&k.as_str()) {
                bail!(
                    "mapping file {}: '{k}' is not a canonical {} field (known: {})",
                    path.display(),
                    m.kind.as_str(),
                    req.iter()
                        .chain(opt.iter())
                        .copied()
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
        let needed: &[&str] = match m.kind {
            Kind::Reviews => &["product_id", "rating", "created_at"],
            Kind::Orders => req,
        };
        for r in needed {
            if !m.columns.contains_key(*r) {
                bail!(
                    "mapping file {}: [columns] must name the source column for '{r}'",
                    path.display()
                );
            }
        }
        let utc_offset_secs = match &m.utc_offset {
            None => 0,
            Some(s) => parse_offset(s).with_context(|| {
                format!(
                    "mapping file {}: utc_offset '{s}' is not like +01:00",
                    path.display()
                )
            })?,
        };
        Ok(Mapping {
            kind: m.kind,
            columns: m.columns.into_iter().collect(),
            timestamp_format: m.timestamp_format,
            utc_offset_secs,
        })
    }

    /// The format spec this mapping describes.
    pub fn spec(&self) -> FormatSpec {
        formats::generic_spec(
            self.kind,
            Some(&self.columns),
            self.timestamp_format.clone(),
            self.utc_offset_secs,
        )
    }
}

fn parse_offset(s: &str) -> Option<i64> {
    let s = s.trim();
    let (sign, rest) = match s.chars().next()? {
        '+' => (1, &s[1..]),
        '-' => (-1, &s[1..]),
        _ => (1, s),
    };
    let (h, m) = rest.split_once(':').unwrap_or((rest, "0"));
    let h: i64 = h.parse().ok()?;
    let m: i64 = m.parse().ok()?;
    (h <= 14 && m < 60).then_some(sign * (h * 3600 + m * 60))
}

/// One row of string cells (`None` for nulls).
pub type Row = Vec<Option<String>>;

/// Read a Parquet file into a header and string cells (every column cast to text, so the same
/// value parsers serve CSV and Parquet).
#[cfg(feature = "parquet")]
pub fn parquet_rows(bytes: Vec<u8>) -> Result<(Vec<String>, Vec<Row>)> {
    Ok(parquet_frame(bytes)?)
}

/// Without the `parquet` feature (the fuzzing build): a clear error.
#[cfg(not(feature = "parquet"))]
pub fn parquet_rows(_bytes: Vec<u8>) -> Result<(Vec<String>, Vec<Row>)> {
    bail!("this build of revaudit has no Parquet support")
}

#[cfg(feature = "parquet")]
fn parquet_frame(bytes: Vec<u8>) -> PolarsResult<(Vec<String>, Vec<Row>)> {
    let df = ParquetReader::new(std::io::Cursor::new(bytes)).finish()?;
    let header: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut cols = Vec::with_capacity(header.len());
    for c in df.columns() {
        let s = c.as_materialized_series().cast(&DataType::String)?;
        let ca = s.str()?.clone();
        cols.push(ca);
    }
    let n = df.height();
    let mut rows = Vec::with_capacity(n);
    for i in 0..n {
        rows.push(cols.iter().map(|c| c.get(i).map(str::to_string)).collect());
    }
    Ok((header, rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets() {
        assert_eq!(parse_offset("+01:00"), Some(3600));
        assert_eq!(parse_offset("-05:30"), Some(-19800));
        assert_eq!(parse_offset("bogus"), None);
    }
}
