//! One file per subcommand: each turns its raw arguments into validated options, then runs.

pub mod audit;
pub mod eval;
pub mod generate;
pub mod inspect;
pub mod progress;

use anyhow::Result;

use crate::cli::{InputArgs, OnBadRows};
use crate::ingest::{formats, mapping::Mapping, BadRowPolicy, LoadOptions};
use crate::privacy::{default_key_path, Hasher};
use crate::UsageError;

/// Validate the input flags shared by `audit` and `inspect`.
pub fn load_options(a: &InputArgs) -> Result<LoadOptions> {
    let names = formats::format_names();
    for f in [&a.orders_format, &a.reviews_format].into_iter().flatten() {
        if !names.contains(&f.as_str()) {
            return Err(UsageError(format!(
                "unknown format '{f}'; known formats: {}",
                names.join(", ")
            ))
            .into());
        }
    }
    if !(0.0..=1.0).contains(&a.max_bad_share) {
        return Err(UsageError("--max-bad-share must be between 0 and 1".into()).into());
    }
    let mappings = a
        .mapping
        .iter()
        .map(|p| Mapping::load(p).map_err(|e| UsageError(format!("{e:#}")).into()))
        .collect::<Result<Vec<_>>>()?;
    let key_path = a.key_file.clone().unwrap_or_else(default_key_path);
    let hasher = Hasher::load_or_create(&key_path)?;
    Ok(LoadOptions {
        orders_format: a.orders_format.clone(),
        reviews_format: a.reviews_format.clone(),
        mappings,
        on_bad_rows: match a.on_bad_rows {
            OnBadRows::Auto => BadRowPolicy::SkipUpTo(a.max_bad_share),
            OnBadRows::Skip => BadRowPolicy::Skip,
            OnBadRows::Fail => BadRowPolicy::Fail,
        },
        hasher,
        now: chrono::Utc::now().timestamp(),
    })
}

/// Write a command's standard output. A closed pipe (`revaudit inspect … | head`) is not an error.
pub fn emit(text: &str) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}
