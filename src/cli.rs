//! Command-line surface (clap derive). Flags are validated into typed options by each command's
//! module; this file only describes them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Audit a marketplace seller's own order and review exports for review activity that looks
/// unnatural: bursts, brushing, review rings, copy-pasted text, one-star bombing.
#[derive(Debug, Parser)]
#[command(name = "revaudit", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Audit order + review exports and write a report folder (default: the bundled sample).
    Audit(AuditArgs),
    /// Show how revaudit reads each file: format, encoding, rows, rejects, dates, column mapping.
    Inspect(InspectArgs),
    /// Write realistic exports with labelled attacks (for trying revaudit and measuring it).
    Generate(GenerateArgs),
    /// Score an audit report against generator labels (ROC-AUC, average precision, recall).
    Eval(EvalArgs),
}

/// What to do with rows that cannot be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnBadRows {
    /// Skip bad rows up to --max-bad-share of a file's rows, fail above it.
    Auto,
    /// Skip every bad row (they are listed in the load report).
    Skip,
    /// Fail on the first file with a bad row.
    Fail,
}

/// Options shared by every command that reads exports.
#[derive(Debug, Clone, Args)]
pub struct InputArgs {
    /// Force the orders format instead of detecting it from the header.
    #[arg(long, value_name = "FORMAT")]
    pub orders_format: Option<String>,
    /// Force the reviews format instead of detecting it from the header.
    #[arg(long, value_name = "FORMAT")]
    pub reviews_format: Option<String>,
    /// TOML file mapping a custom layout's columns to canonical fields (repeatable).
    #[arg(long, value_name = "FILE")]
    pub mapping: Vec<PathBuf>,
    /// What to do with rows that cannot be parsed.
    #[arg(long, value_enum, default_value_t = OnBadRows::Auto)]
    pub on_bad_rows: OnBadRows,
    /// With --on-bad-rows auto: largest share of a file's rows that may be skipped.
    #[arg(long, default_value_t = 0.01, value_name = "SHARE")]
    pub max_bad_share: f64,
    /// File holding the key for hashing personal data (created on first run).
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
}

/// `revaudit audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Order exports (repeatable; several monthly reports are concatenated and de-duplicated).
    #[arg(long, num_args = 1.., value_name = "FILE")]
    pub orders: Vec<PathBuf>,
    /// Review exports (repeatable).
    #[arg(long, num_args = 1.., value_name = "FILE")]
    pub reviews: Vec<PathBuf>,
    /// Report folder (default: reports/<period>, or reports/sample for the bundled sample).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Audit one calendar month (earlier data serves as baseline).
    #[arg(long, value_name = "YYYY-MM", conflicts_with_all = ["from", "to"])]
    pub period: Option<String>,
    /// First day audited (YYYY-MM-DD).
    #[arg(long, value_name = "DATE")]
    pub from: Option<String>,
    /// Last day audited (YYYY-MM-DD, inclusive).
    #[arg(long, value_name = "DATE")]
    pub to: Option<String>,
    /// TOML file overriding AuditConfig thresholds.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Last month's report folder: say which findings are new, persisting or resolved, which
    /// reviews disappeared or changed their rating, and how each product's verdict evolved.
    #[arg(long, value_name = "DIR")]
    pub previous: Option<PathBuf>,
    /// Replace an existing report folder.
    #[arg(long)]
    pub force: bool,
    /// No progress lines on stderr.
    #[arg(long, short)]
    pub quiet: bool,
    /// Input options.
    #[command(flatten)]
    pub input: InputArgs,
}

/// `revaudit inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Files to inspect (orders or reviews, any supported format).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Input options.
    #[command(flatten)]
    pub input: InputArgs,
}

/// `revaudit generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Output folder (created).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Random seed: the same seed gives the same bytes.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Number of products in the catalog.
    #[arg(long, default_value_t = 100)]
    pub products: usize,
    /// Number of days covered.
    #[arg(long, default_value_t = 184)]
    pub days: u32,
    /// Multiplier on organic order volume.
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
    /// Multiplier on the organic review probability per order (1 = a few percent).
    #[arg(long, default_value_t = 1.0)]
    pub review_rate: f64,
    /// First day (YYYY-MM-DD).
    #[arg(long, default_value = "2026-05-01")]
    pub start: String,
    /// Write gzip-compressed files (`orders.tsv.gz`, …).
    #[arg(long)]
    pub gzip: bool,
    /// Replace files in an existing output folder.
    #[arg(long)]
    pub force: bool,
}

/// `revaudit eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// labels.json written by `generate`.
    #[arg(long, value_name = "FILE")]
    pub labels: PathBuf,
    /// Report folder written by `audit`.
    #[arg(long, value_name = "DIR")]
    pub report: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}
