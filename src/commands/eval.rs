//! `revaudit eval`: quality of an audit against generator labels. The scoring engine is the audit
//! engine issue's work; until it lands this command says so instead of printing invented numbers.

use anyhow::Result;

use crate::cli::EvalArgs;
use crate::UsageError;

/// Run `eval`.
pub fn run(a: EvalArgs) -> Result<()> {
    if !a.labels.is_file() {
        return Err(UsageError(format!("{}: labels file not found", a.labels.display())).into());
    }
    let scores = a.report.join("scores").join("reviews.csv");
    if !scores.is_file() {
        return Err(UsageError(format!(
            "{}: no review scores in this report folder (the scoring engine is not implemented yet)",
            scores.display()
        ))
        .into());
    }
    Err(anyhow::anyhow!("eval is not implemented yet"))
}
