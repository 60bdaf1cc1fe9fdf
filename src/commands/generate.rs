//! `revaudit generate`: validate the flags, run the generator, print what was written.

use anyhow::Result;
use chrono::NaiveDate;

use crate::cli::GenerateArgs;
use crate::synth::{generate, SynthParams};
use crate::UsageError;

/// Run `generate`.
pub fn run(a: GenerateArgs) -> Result<()> {
    let start = NaiveDate::parse_from_str(&a.start, "%Y-%m-%d").map_err(|_| {
        UsageError(format!(
            "--start '{}' is not a date like 2026-05-01",
            a.start
        ))
    })?;
    if a.products < 20 {
        return Err(UsageError(
            "--products must be at least 20 (the labelled attacks need room)".into(),
        )
        .into());
    }
    if a.days < 60 {
        return Err(UsageError("--days must be at least 60".into()).into());
    }
    if !(a.scale > 0.0 && a.scale.is_finite() && a.review_rate > 0.0 && a.review_rate <= 30.0) {
        return Err(UsageError("--scale must be > 0 and --review-rate in (0, 30]".into()).into());
    }
    if a.out.exists()
        && !a.force
        && std::fs::read_dir(&a.out)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(UsageError(format!(
            "{} exists and is not empty; pass --force to overwrite",
            a.out.display()
        ))
        .into());
    }
    // Written into a temporary folder and renamed into place, like a report: an interrupted or
    // failed run leaves no half-written data set.
    crate::commands::audit::install_interrupt_handler();
    let empty_existing = a.out.is_dir()
        && std::fs::read_dir(&a.out)
            .map(|mut d| d.next().is_none())
            .unwrap_or(false);
    let mut labels = None;
    crate::commands::audit::write_atomically(&a.out, a.force || empty_existing, |tmp| {
        labels = Some(generate(
            SynthParams {
                seed: a.seed,
                products: a.products,
                days: a.days,
                scale: a.scale,
                review_rate: a.review_rate,
                start,
                gzip: a.gzip,
            },
            tmp,
        )?);
        Ok(())
    })?;
    let labels = labels.ok_or_else(|| anyhow::anyhow!("the generator wrote nothing"))?;
    eprintln!(
        "wrote {} order lines, {} reviews ({} labelled fake, {} attacks) to {}",
        labels.counts.get("order_lines").copied().unwrap_or(0),
        labels.counts.get("reviews").copied().unwrap_or(0),
        labels.counts.get("fake_reviews").copied().unwrap_or(0),
        labels.attacks.len(),
        a.out.display()
    );
    Ok(())
}
