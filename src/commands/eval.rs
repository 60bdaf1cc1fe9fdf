//! `revaudit eval`: quality of an audit report against generator labels.

use std::fmt::Write as _;

use anyhow::Result;

use crate::commands::emit;

use crate::cli::EvalArgs;
use crate::eval::evaluate;
use crate::UsageError;

/// Run `eval`.
pub fn run(a: EvalArgs) -> Result<()> {
    if !a.labels.is_file() {
        return Err(UsageError(format!("{}: labels file not found", a.labels.display())).into());
    }
    if !a.report.join("scores").join("reviews.csv").is_file() {
        return Err(UsageError(format!(
            "{}: not a report folder (no scores/reviews.csv)",
            a.report.display()
        ))
        .into());
    }
    let r = evaluate(&a.labels, &a.report)?;
    if a.json {
        return emit(&format!("{}\n", serde_json::to_string_pretty(&r)?));
    }
    let mut o = String::new();
    let _ = writeln!(
        o,
        "reviews scored: {} ({} labelled fake)",
        r.reviews, r.fake_reviews
    );
    let _ = writeln!(
        o,
        "review-level   ROC-AUC {:.3}  average precision {:.3}",
        r.review_roc_auc, r.review_average_precision
    );
    let _ = writeln!(
        o,
        "reviewer-level ROC-AUC {:.3}  average precision {:.3}",
        r.reviewer_roc_auc, r.reviewer_average_precision
    );
    let _ = writeln!(
        o,
        "attacked products: {:.0}% at fail, {:.0}% at warn|fail",
        r.attacked_recall_fail * 100.0,
        r.attacked_recall_warn_or_fail * 100.0
    );
    for a in &r.attacks {
        let v: Vec<&str> = a.verdicts.values().map(|s| s.as_str()).collect();
        let _ = writeln!(
            o,
            "  {:<22} expected {:<4}  verdicts: {}",
            a.kind,
            a.expected,
            v.join(", ")
        );
    }
    let _ = writeln!(
        o,
        "clean products failed: {:.1}% {:?}",
        r.clean_fail_rate * 100.0,
        r.clean_failed
    );
    let _ = writeln!(
        o,
        "promotion product: {} ({})",
        r.promotion_verdict,
        if r.promotion_failed {
            "FAILED"
        } else {
            "not failed"
        }
    );
    emit(&o)
}
