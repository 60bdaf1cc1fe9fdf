//! `revaudit inspect FILE...`: how each file is read — format, kind, encoding, rows, rejects, date
//! range, time resolution, column mapping, mangled ids. Never fails on bad rows (it reports them);
//! exits 2 if any file cannot be read at all.

use std::fmt::Write as _;

use anyhow::Result;
use serde_json::json;

use crate::cli::InspectArgs;
use crate::commands::load_options;
use crate::ingest::{self, FileReport};
use crate::UsageError;

/// Run `inspect`.
pub fn run(a: InspectArgs) -> Result<()> {
    let opts = load_options(&a.input)?;
    let mut entries = Vec::new();
    let mut failed = 0usize;
    for (i, p) in a.files.iter().enumerate() {
        match ingest::load_file(p, i as u32, None, &opts) {
            Ok(load) => entries.push(Ok(load.report)),
            Err(e) => {
                failed += 1;
                entries.push(Err((p.display().to_string(), e.to_string())));
            }
        }
    }
    if a.json {
        let files: Vec<serde_json::Value> = entries
            .iter()
            .map(|e| match e {
                Ok(r) => {
                    serde_json::to_value(r).unwrap_or_else(|e| json!({ "error": e.to_string() }))
                }
                Err((path, msg)) => json!({ "path": path, "error": msg }),
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
                Ok(r) => render(&mut out, r),
                Err((path, msg)) => {
                    let _ = writeln!(out, "{path}\n  error: {msg}\n");
                }
            }
        }
        print!("{out}");
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
