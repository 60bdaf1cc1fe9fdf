//! `revaudit audit`: load the exports and write the report folder atomically (built in a temporary
//! folder beside the target, then renamed into place).
//!
//! Today it writes the load report (`load_report.json`); the statistics engine is the next issue.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::cli::AuditArgs;
use crate::commands::load_options;
use crate::ingest::{self, file_stem};
use crate::UsageError;

/// Folder with the bundled sample.
pub const SAMPLE_DIR: &str = "notebooks-data/sample";

fn sample_inputs() -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let dir = Path::new(SAMPLE_DIR);
    let find = |stem: &str| -> Option<PathBuf> {
        std::fs::read_dir(dir)
            .ok()?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .find(|p| file_stem(p) == stem)
    };
    match (find("orders"), find("reviews")) {
        (Some(o), Some(r)) => Ok((vec![o], vec![r])),
        _ => Err(UsageError(format!(
            "no input flags given and the bundled sample ({SAMPLE_DIR}/orders.*, reviews.*) was not found; \
             run from the repository folder or pass --reviews FILE"
        ))
        .into()),
    }
}

/// Run `audit`.
pub fn run(a: AuditArgs) -> Result<()> {
    let opts = load_options(&a.input)?;
    let sample = a.orders.is_empty() && a.reviews.is_empty();
    let (orders, reviews) = if sample {
        sample_inputs()?
    } else {
        (a.orders.clone(), a.reviews.clone())
    };
    if reviews.is_empty() {
        return Err(
            UsageError("--reviews is required (orders alone cannot be audited)".into()).into(),
        );
    }
    let out = match (&a.out, sample) {
        (Some(o), _) => o.clone(),
        (None, true) => PathBuf::from("reports/sample"),
        (None, false) => {
            PathBuf::from("reports").join(a.period.clone().unwrap_or_else(|| "all".into()))
        }
    };
    if out.exists() && !a.force {
        return Err(UsageError(format!(
            "{} already exists; pass --force to replace it",
            out.display()
        ))
        .into());
    }
    let progress = |msg: &str| {
        if !a.quiet {
            eprintln!("revaudit: {msg}");
        }
    };
    progress(&format!(
        "loading {} orders file(s), {} reviews file(s)",
        orders.len(),
        reviews.len()
    ));
    let ds = ingest::load_dataset(&orders, &reviews, &opts)?;
    progress(&format!(
        "loaded {} order lines, {} reviews (link rate {:.1}%)",
        ds.report.order_lines,
        ds.report.reviews,
        ds.report.link_rate * 100.0
    ));
    let json = serde_json::to_string_pretty(&ds.report)?;
    write_atomically(&out, a.force, |tmp| {
        std::fs::write(tmp.join("load_report.json"), format!("{json}\n"))?;
        Ok(())
    })?;
    progress(&format!("wrote {}", out.display()));
    Ok(())
}

/// Build a folder's content in a temporary sibling, then rename it into place. On error the
/// temporary folder is removed and an existing report is left untouched.
pub fn write_atomically(
    out: &Path,
    force: bool,
    build: impl FnOnce(&Path) -> Result<()>,
) -> Result<()> {
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)
        .with_context(|| format!("cannot create {}", parent.display()))?;
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "report".into());
    let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    if let Err(e) = build(&tmp) {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    if out.exists() {
        if !force {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(UsageError(format!(
                "{} already exists; pass --force to replace it",
                out.display()
            ))
            .into());
        }
        let old = parent.join(format!(".{name}.old-{}", std::process::id()));
        std::fs::rename(out, &old)
            .with_context(|| format!("cannot move old {} aside", out.display()))?;
        std::fs::rename(&tmp, out)
            .with_context(|| format!("cannot rename into {}", out.display()))?;
        let _ = std::fs::remove_dir_all(&old);
    } else {
        std::fs::rename(&tmp, out)
            .with_context(|| format!("cannot rename into {}", out.display()))?;
    }
    Ok(())
}
