//! `revaudit inspect FILE...`: how each file is read — format, kind, encoding, rows, rejects, date
//! range, time resolution, column mapping, mangled ids. Never fails on bad rows (it reports them);
//! exits 2 if any file cannot be read at all.

use std::fmt::Write as _;

use anyhow::Result;
use serde_json::json;

use crate::cli::InspectArgs;
use crate::commands::{emit, load_options};
use crate::ingest::{self, FileReport};
use crate::UsageError;

enum Entry {
    Loaded(Box<FileReport>),
    Skipped { path: String, note: String },
    Failed { path: String, error: String },
}

/// Run `inspect`.
pub fn run(a: InspectArgs) -> Result<()> {
    let opts = load_options(&a.input)?;
    let mut entries = Vec::new();
    for (i, p) in a.files.iter().enumerate() {
        let path = p.display().to_string();
        if let Some(n) = labels_file_attacks(p) {
            let note = format!("revaudit generator labels ({n} attacks), not an export; use it with `revaudit eval --labels`");
            entries.push(Entry::Skipped { path, note });
            continue;
        }
        entries.push(match ingest::load_file(p, i as u32, None, &opts) {
            Ok(load) => Entry::Loaded(Box::new(load.report)),
            Err(e) => Entry::Failed {
                path,
                error: e.to_string(),
            },
        });
    }
    let failed = entries
        .iter()
        .filter(|e| matches!(e, Entry::Failed { .. }))
        .count();
    if a.json {
        let files: Vec<serde_json::Value> = entries
            .iter()
            .map(|e| match e {
                Entry::Loaded(r) => {
                    serde_json::to_value(r).unwrap_or_else(|e| json!({ "error": e.to_string() }))
                }
                Entry::Skipped { path, note } => json!({ "path": path, "skipped": note }),
                Entry::Failed { path, error } => json!({ "path": path, "error": error }),
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "files": files }))?
        );
    } else {
        let mut out = String::new();
        for e in &entries {
            match e {
                Entry::Loaded(r) => render(&mut out, r),
                Entry::Skipped { path, note } => {
                    let _ = writeln!(out, "{path}\n  skipped: {note}\n");
                }
                Entry::Failed { path, error } => {
                    let _ = writeln!(out, "{path}\n  error: {error}\n");
                }
            }
        }
        emit(&out)?;
    }
    if failed > 0 {
        return Err(UsageError(format!(
            "{failed} of {} file(s) could not be read",
            a.files.len()
        ))
        .into());
    }
    Ok(())
}

fn render(out: &mut String, r: &FileReport) {
    let _ = writeln!(out, "{}", r.path);
    let _ = writeln!(out, "  format:      {} ({})", r.format, r.kind.as_str());
    let _ = writeln!(
        out,
        "  encoding:    {}{}{}",
        r.encoding,
        if r.gzip { ", gzip" } else { "" },
        r.delimiter
            .as_ref()
            .map(|d| format!(", {d}-separated"))
            .unwrap_or_default()
    );
    let _ = writeln!(
        out,
        "  rows:        {} ({} accepted, {} rejected)",
        r.rows, r.accepted, r.rejected
    );
    match (&r.first, &r.last) {
        (Some(a), Some(b)) => {
            let _ = writeln!(out, "  date range:  {a} .. {b}");
        }
        _ => {
            let _ = writeln!(out, "  date range:  (no accepted rows)");
        }
    }
    let res = r
        .time_resolution
        .map(|t| format!("{t:?}").to_lowercase())
        .unwrap_or_else(|| "-".into());
    let _ = writeln!(out, "  resolution:  {res}");
    let _ = writeln!(out, "  links:       {}", r.link_by);
    let _ = writeln!(out, "  columns:");
    for (k, v) in &r.column_mapping {
        let _ = writeln!(out, "    {k:<20} <- {v}");
    }
    if !r.unused_columns.is_empty() {
        let _ = writeln!(out, "  unused:      {}", r.unused_columns.join(", "));
    }
    if r.mangled_count > 0 {
        let _ = writeln!(out, "  mangled ids: {} (Excel?)", r.mangled_count);
        for m in &r.mangled_ids {
            let _ = writeln!(out, "    {m}");
        }
    } else {
        let _ = writeln!(out, "  mangled ids: none");
    }
    if r.rejected > 0 {
        let _ = writeln!(out, "  rejected rows (first {}):", r.rejected_rows.len());
        for e in &r.rejected_rows {
            let _ = writeln!(out, "    {e}");
        }
    }
    for w in &r.warnings {
        let _ = writeln!(out, "  warning:     {w}");
    }
    out.push('\n');
}

/// A `labels.json` written by `generate` sits beside the exports it describes: recognise it, so
/// `inspect folder/*` explains it instead of failing on it.
fn labels_file_attacks(p: &std::path::Path) -> Option<usize> {
    if p.extension()?.to_str()? != "json" {
        return None;
    }
    let text = std::fs::read_to_string(p).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.get("review_id_scheme")?;
    Some(v.get("attacks")?.as_array()?.len())
}
