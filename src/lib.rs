//! revaudit: audits a marketplace seller's own order and review exports for review activity that
//! looks unnatural, and writes a report a person can check.
//!
//! Flow: `ingest` (formats → canonical records, load report) → analysis → report. See README.md.

pub mod analyze;
pub mod cli;
pub mod commands;
pub mod config;
pub mod eval;
pub mod findings;
pub mod ingest;
pub mod pages;
pub mod privacy;
pub mod report;
pub mod synth;

/// A problem with what the user asked for (flags, files): exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Run one parsed command line.
pub fn run(cli: cli::Cli) -> anyhow::Result<()> {
    match cli.command {
        cli::Command::Audit(a) => commands::audit::run(a),
        cli::Command::Inspect(a) => commands::inspect::run(a),
        cli::Command::Generate(a) => commands::generate::run(a),
        cli::Command::Eval(a) => commands::eval::run(a),
    }
}

/// Exit code for an error: 2 for bad input or usage, 1 otherwise.
pub fn exit_code(e: &anyhow::Error) -> i32 {
    let user = e.chain().any(|c| {
        c.is::<ingest::IngestError>() || c.is::<UsageError>() || c.is::<toml::de::Error>()
    });
    if user {
        2
    } else {
        1
    }
}
