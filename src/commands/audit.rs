//! `revaudit audit`: load the exports and write the report folder atomically (built in a temporary
//! folder beside the target, then renamed into place).
//!
//! Writes `findings.json`, `scores/{reviews,reviewers,products}.csv` and `load_report.json`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use chrono::Datelike;

use crate::analyze::analyze;
use crate::analyze::data::AuditData;
use crate::cli::AuditArgs;
use crate::commands::load_options;
use crate::commands::progress::Progress;
use crate::config::AuditConfig;
use crate::ingest::{self, file_stem};
use crate::report::tables::{self, DataSummary, FindingsFile, Period, SCHEMA_VERSION};
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
    // The review-app export (with order ids) shows every chart; the plain Amazon file is the
    // fallback.
    match (find("orders"), find("reviews_linked").or_else(|| find("reviews"))) {
        (Some(o), Some(r)) => Ok((vec![o], vec![r])),
        _ => Err(UsageError(format!(
            "no input flags given and the bundled sample ({SAMPLE_DIR}/orders.*, reviews.*) was not found; \
             run from the repository folder or pass --reviews FILE"
        ))
        .into()),
    }
}

fn parse_day(s: &str, flag: &str) -> Result<i64> {
    let d = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| UsageError(format!("{flag} '{s}' is not a date like 2026-10-01")))?;
    Ok(d.and_hms_opt(0, 0, 0)
        .map(|x| x.and_utc().timestamp())
        .unwrap_or(0)
        .div_euclid(86_400))
}

/// The audited window (day numbers) and its label, from --period or --from/--to.
/// Inclusive day numbers audited, if limited.
type DayWindow = Option<(i64, i64)>;

fn window(a: &AuditArgs) -> Result<(DayWindow, Option<String>)> {
    if let Some(p) = &a.period {
        let first = chrono::NaiveDate::parse_from_str(&format!("{p}-01"), "%Y-%m-%d")
            .map_err(|_| UsageError(format!("--period '{p}' is not a month like 2026-10")))?;
        let next = if first.month() == 12 {
            chrono::NaiveDate::from_ymd_opt(first.year() + 1, 1, 1)
        } else {
            chrono::NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)
        }
        .ok_or_else(|| UsageError(format!("--period '{p}' is out of range")))?;
        let from = parse_day(&first.to_string(), "--period")?;
        let to = parse_day(&next.to_string(), "--period")? - 1;
        return Ok((Some((from, to)), Some(p.clone())));
    }
    match (&a.from, &a.to) {
        (None, None) => Ok((None, None)),
        (f, t) => {
            let from = f
                .as_deref()
                .map(|s| parse_day(s, "--from"))
                .transpose()?
                .unwrap_or(i64::MIN / 2);
            let to = t
                .as_deref()
                .map(|s| parse_day(s, "--to"))
                .transpose()?
                .unwrap_or(i64::MAX / 2);
            if from > to {
                return Err(UsageError("--from is after --to".into()).into());
            }
            let label = format!(
                "{}_{}",
                f.as_deref().unwrap_or("start"),
                t.as_deref().unwrap_or("end")
            );
            Ok((Some((from, to)), Some(label)))
        }
    }
}

/// Run `audit`.
pub fn run(a: AuditArgs) -> Result<()> {
    install_interrupt_handler();
    let opts = load_options(&a.input)?;
    let cfg = match &a.config {
        Some(p) => AuditConfig::load(p)?,
        None => AuditConfig::default(),
    };
    let (win, label) = window(&a)?;
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
    let label = label.unwrap_or_else(|| {
        if sample {
            "sample".into()
        } else {
            "all".into()
        }
    });
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("reports").join(&label));
    if out.exists() && !a.force {
        return Err(UsageError(format!(
            "{} already exists; pass --force to replace it",
            out.display()
        ))
        .into());
    }
    // Read last month's report first: a wrong folder should not cost a whole analysis.
    let previous = match &a.previous {
        Some(p) => Some(crate::report::compare::Previous::load(p)?),
        None => None,
    };
    let prog = Progress::new(a.quiet);
    let progress = |msg: &str| prog.stage(msg);
    progress(&format!(
        "loading {} orders file(s), {} reviews file(s)",
        orders.len(),
        reviews.len()
    ));
    let mut ds = ingest::load_dataset(&orders, &reviews, &opts)?;
    progress(&format!(
        "loaded {} order lines, {} reviews (link rate {:.1}%)",
        ds.report.order_lines,
        ds.report.reviews,
        ds.report.link_rate * 100.0
    ));
    let window = win.map(|(f, t)| (f.max(i64::MIN / 4), t.min(i64::MAX / 4)));
    let mut data = AuditData::build(&mut ds, &cfg, window);
    // The canonical records are no longer needed: free them before the analysis.
    let load_report = std::mem::take(&mut ds.report);
    drop(ds);
    let n_audited = data.reviews.iter().filter(|r| r.audited).count();
    if n_audited == 0 {
        return Err(UsageError(format!(
            "no reviews fall in the audited period {}..{}",
            crate::analyze::data::day_str(data.from_day),
            crate::analyze::data::day_str(data.to_day)
        ))
        .into());
    }
    let analysis = analyze(&mut data, &cfg, &progress);
    let (_, lag_model) = crate::analyze::velocity::lag_pmf(&data, &cfg);
    let mut file = FindingsFile {
        schema_version: SCHEMA_VERSION,
        revaudit_version: env!("CARGO_PKG_VERSION"),
        generated_at: tables::generated_at(),
        period: Period {
            label: label.clone(),
            from: crate::analyze::data::day_str(data.from_day),
            to: crate::analyze::data::day_str(data.to_day),
        },
        config: &cfg,
        data: DataSummary {
            load: load_report.clone(),
            reviews_audited: n_audited,
            products: analysis.products.len(),
            reviewers: analysis.reviewers.len(),
            orders_available: data.has_orders,
            link_rate: crate::analyze::round_sig(load_report.link_rate),
            review_time_resolution: if data.second_resolution {
                "second".into()
            } else {
                "day".into()
            },
            local_time: data.local_time.clone(),
            lag_model,
        },
        summary: tables::summary(&analysis),
        tests: &analysis.tallies,
        tests_not_run: &analysis.not_run,
        findings: &analysis.findings,
        groups: &analysis.groups,
        product_pairs: &analysis.product_pairs,
        comparison: None,
    };
    let comparison = previous
        .as_ref()
        .map(|p| crate::report::compare::compare(p, &file, &analysis, &data));
    file.comparison = comparison.as_ref();
    progress("writing the report");
    let load_json = serde_json::to_string_pretty(&load_report)?;
    write_atomically(&out, a.force, |tmp| {
        std::fs::write(tmp.join("load_report.json"), format!("{load_json}\n"))?;
        crate::report::write_all(tmp, &file, &analysis, &data, comparison.as_ref())?;
        Ok(())
    })?;
    let s = &file.summary;
    prog.done(&format!(
        "{} products: {} fail, {} warn, {} pass, {} insufficient; {} findings; wrote {}",
        analysis.products.len(),
        s.product_verdicts.get("fail").unwrap_or(&0),
        s.product_verdicts.get("warn").unwrap_or(&0),
        s.product_verdicts.get("pass").unwrap_or(&0),
        s.product_verdicts.get("insufficient").unwrap_or(&0),
        analysis.findings.len(),
        out.display()
    ));
    // The process ends next: handing tens of millions of small allocations back one by one takes
    // seconds at scale, and the operating system reclaims them all at once anyway.
    std::mem::forget(analysis);
    std::mem::forget(data);
    Ok(())
}

/// Temporary folders to remove if the process is interrupted. The lock is also held while a finished
/// report is swapped into place, so an interrupt waits for the swap instead of splitting it.
static IN_FLIGHT: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

/// Install the Ctrl-C / SIGINT / SIGTERM handler: remove unfinished temporary folders, say so, exit
/// 130. Called once by commands that write.
pub fn install_interrupt_handler() {
    let _ = ctrlc::set_handler(|| {
        let guard = IN_FLIGHT.lock().unwrap_or_else(|e| e.into_inner());
        for p in guard.iter() {
            remove_while_written(p);
        }
        eprintln!("revaudit: interrupted; no report was written (an existing one is untouched)");
        std::process::exit(130);
    });
}

/// Remove a folder other threads may still be writing into: move it out of their way first (new
/// files then cannot land in it), delete it, and repeat if a writer recreated the path meanwhile.
fn remove_while_written(p: &Path) {
    for attempt in 0..20 {
        if !p.exists() {
            return;
        }
        let dead = p.with_extension(format!("dead{attempt}"));
        match std::fs::rename(p, &dead) {
            Ok(()) => {
                let _ = std::fs::remove_dir_all(&dead);
            }
            Err(_) => {
                let _ = std::fs::remove_dir_all(p);
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

fn in_flight(p: &Path, add: bool) {
    let mut g = IN_FLIGHT.lock().unwrap_or_else(|e| e.into_inner());
    if add {
        g.push(p.to_path_buf());
    } else {
        g.retain(|x| x != p);
    }
}

/// Build a folder's content in a temporary sibling, then rename it into place. On error or
/// interrupt the temporary folder is removed and an existing report is left untouched.
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
    in_flight(&tmp, true);
    std::fs::create_dir_all(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    let result = build(&tmp).and_then(|()| swap_into_place(&tmp, out, parent, &name, force));
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    in_flight(&tmp, false);
    result
}

fn swap_into_place(tmp: &Path, out: &Path, parent: &Path, name: &str, force: bool) -> Result<()> {
    // Hold the interrupt lock: the two renames happen together or not at all.
    let _guard = IN_FLIGHT.lock().unwrap_or_else(|e| e.into_inner());
    if out.exists() {
        if !force {
            return Err(UsageError(format!(
                "{} already exists; pass --force to replace it",
                out.display()
            ))
            .into());
        }
        let old = parent.join(format!(".{name}.old-{}", std::process::id()));
        std::fs::rename(out, &old)
            .with_context(|| format!("cannot move old {} aside", out.display()))?;
        if let Err(e) = std::fs::rename(tmp, out) {
            // Put the old report back.
            let _ = std::fs::rename(&old, out);
            return Err(
                anyhow::Error::from(e).context(format!("cannot rename into {}", out.display()))
            );
        }
        let _ = std::fs::remove_dir_all(&old);
    } else {
        std::fs::rename(tmp, out)
            .with_context(|| format!("cannot rename into {}", out.display()))?;
    }
    Ok(())
}
