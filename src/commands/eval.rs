//! `revaudit eval`: quality of an audit report against generator labels.

use anyhow::Result;

use crate::cli::EvalArgs;
use crate::eval::evaluate;
use crate::UsageError;

/// Run `eval`.
pub fn run(a: EvalArgs) -> Result<()> {
    if !a.labels.is_file() {
        return Err(UsageError(format!("{}: labels file not found", a.labels.display())).into());
    }
    if !a.report.join("scores").join("reviews.csv").is_file() {
        return Err(UsageError(format!("{}: not a report folder (no scores/reviews.csv)", a.report.display())).into());
    }
    let r = evaluate(&a.labels, &a.report)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    println!("reviews scored: {} ({} labelled fake)", r.reviews, r.fake_reviews);
    println!("review-level   ROC-AUC {:.3}  average precision {:.3}", r.review_roc_auc, r.review_average_precision);
    println!("reviewer-level ROC-AUC {:.3}  average precision {:.3}", r.reviewer_roc_auc, r.reviewer_average_precision);
    println!(
        "attacked products: {:.0}% at fail, {:.0}% at warn|fail",
        r.attacked_recall_fail * 100.0,
        r.attacked_recall_warn_or_fail * 100.0
    );
    for a in &r.attacks {
        let v: Vec<&str> = a.verdicts.values().map(|s| s.as_str()).collect();
        println!("  {:<22} expected {:<4}  verdicts: {}", a.kind, a.expected, v.join(", "));
    }
    println!("clean products failed: {:.1}% {:?}", r.clean_fail_rate * 100.0, r.clean_failed);
    println!("promotion product: {} ({})", r.promotion_verdict, if r.promotion_failed { "FAILED" } else { "not failed" });
    Ok(())
}
