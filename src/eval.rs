//! Quality against labels: review- and reviewer-level ROC-AUC and average precision, attacked-product
//! recall at FAIL and at WARN|FAIL per attack kind, the FAIL rate on clean products, and whether the
//! benign promotion failed. Labels come from `generate` (labels.json).
//!
//! Camouflage reviews (honest-looking reviews that ring accounts write on best sellers) are left out
//! of the review-level metrics: they are neither the attack nor organic. Their accounts count as
//! positives at the reviewer level.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// Labels as `generate` writes them (the parts eval reads).
#[derive(Debug, Deserialize)]
pub struct LabelsIn {
    /// Attacks.
    pub attacks: Vec<AttackIn>,
    /// Promotion.
    pub promotion: PromotionIn,
    /// Clean products.
    pub clean_products: Vec<String>,
}

/// One attack.
#[derive(Debug, Deserialize)]
pub struct AttackIn {
    /// Kind.
    pub kind: String,
    /// Products.
    pub products: Vec<String>,
    /// Accounts.
    pub reviewers: Vec<String>,
    /// Fake reviews.
    pub review_ids: Vec<String>,
    /// Camouflage reviews.
    #[serde(default)]
    pub camouflage_review_ids: Vec<String>,
    /// Expected verdict.
    pub expected_verdict: String,
}

/// The promotion.
#[derive(Debug, Deserialize)]
pub struct PromotionIn {
    /// Product.
    pub product: String,
}

/// Per attack kind.
#[derive(Debug, Serialize)]
pub struct AttackResult {
    /// Kind.
    pub kind: String,
    /// Expected verdict.
    pub expected: String,
    /// Verdict per attacked product.
    pub verdicts: BTreeMap<String, String>,
    /// Share of its products at FAIL.
    pub recall_fail: f64,
    /// Share at WARN or FAIL.
    pub recall_warn_or_fail: f64,
}

/// All metrics.
#[derive(Debug, Serialize)]
pub struct EvalResult {
    /// Reviews scored and labelled fake.
    pub reviews: usize,
    /// Fake among them.
    pub fake_reviews: usize,
    /// Review-level ROC-AUC.
    pub review_roc_auc: f64,
    /// Review-level average precision.
    pub review_average_precision: f64,
    /// Reviewer-level ROC-AUC.
    pub reviewer_roc_auc: f64,
    /// Reviewer-level average precision.
    pub reviewer_average_precision: f64,
    /// Attacked products at FAIL / all attacked.
    pub attacked_recall_fail: f64,
    /// Attacked products at WARN|FAIL / all attacked.
    pub attacked_recall_warn_or_fail: f64,
    /// Clean products at FAIL / clean products.
    pub clean_fail_rate: f64,
    /// Clean products at FAIL.
    pub clean_failed: Vec<String>,
    /// The promotion product's verdict.
    pub promotion_verdict: String,
    /// Whether the promotion product failed.
    pub promotion_failed: bool,
    /// Per attack kind.
    pub attacks: Vec<AttackResult>,
}

/// ROC-AUC by ranks (ties get average ranks).
pub fn roc_auc(scores: &[f64], labels: &[bool]) -> f64 {
    let pos = labels.iter().filter(|&&l| l).count();
    let neg = labels.len() - pos;
    if pos == 0 || neg == 0 {
        return f64::NAN;
    }
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut ranks = vec![0.0; scores.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && scores[idx[j + 1]] == scores[idx[i]] {
            j += 1;
        }
        let r = (i + j) as f64 / 2.0 + 1.0;
        for k in i..=j {
            ranks[idx[k]] = r;
        }
        i = j + 1;
    }
    let sum_pos: f64 = ranks
        .iter()
        .zip(labels)
        .filter(|(_, &l)| l)
        .map(|(r, _)| r)
        .sum();
    (sum_pos - (pos * (pos + 1)) as f64 / 2.0) / (pos * neg) as f64
}

/// Average precision over score thresholds (tied scores enter together).
pub fn average_precision(scores: &[f64], labels: &[bool]) -> f64 {
    let pos = labels.iter().filter(|&&l| l).count();
    if pos == 0 {
        return f64::NAN;
    }
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut tp, mut fp, mut ap, mut last_recall) = (0usize, 0usize, 0.0, 0.0);
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j < idx.len() && scores[idx[j]] == scores[idx[i]] {
            if labels[idx[j]] {
                tp += 1;
            } else {
                fp += 1;
            }
            j += 1;
        }
        let recall = tp as f64 / pos as f64;
        let precision = tp as f64 / (tp + fp) as f64;
        ap += (recall - last_recall) * precision;
        last_recall = recall;
        i = j;
    }
    ap
}

fn read_scores(path: &Path, id_col: &str) -> Result<Vec<(String, f64)>> {
    let mut rdr =
        csv::Reader::from_path(path).with_context(|| format!("cannot read {}", path.display()))?;
    let h = rdr.headers()?.clone();
    let ic = h
        .iter()
        .position(|c| c == id_col)
        .with_context(|| format!("{}: no {id_col} column", path.display()))?;
    let sc = h
        .iter()
        .position(|c| c == "score")
        .with_context(|| format!("{}: no score column", path.display()))?;
    let mut v = Vec::new();
    for r in rdr.records() {
        let r = r?;
        let score: f64 = r[sc]
            .parse()
            .with_context(|| format!("{}: bad score '{}'", path.display(), &r[sc]))?;
        v.push((r[ic].trim_start_matches('\'').to_string(), score));
    }
    Ok(v)
}

/// Evaluate a report folder against labels.
pub fn evaluate(labels_path: &Path, report: &Path) -> Result<EvalResult> {
    let labels: LabelsIn = serde_json::from_str(
        &std::fs::read_to_string(labels_path)
            .with_context(|| format!("cannot read {}", labels_path.display()))?,
    )
    .with_context(|| format!("{} is not a revaudit labels file", labels_path.display()))?;
    let fake: HashSet<&str> = labels
        .attacks
        .iter()
        .flat_map(|a| a.review_ids.iter().map(|s| s.as_str()))
        .collect();
    let camo: HashSet<&str> = labels
        .attacks
        .iter()
        .flat_map(|a| a.camouflage_review_ids.iter().map(|s| s.as_str()))
        .collect();
    let fake_accounts: HashSet<&str> = labels
        .attacks
        .iter()
        .flat_map(|a| a.reviewers.iter().map(|s| s.as_str()))
        .collect();
    let reviews = read_scores(&report.join("scores").join("reviews.csv"), "review_id")?;
    let (mut rs, mut rl) = (Vec::new(), Vec::new());
    for (id, s) in &reviews {
        if camo.contains(id.as_str()) {
            continue;
        }
        rs.push(*s);
        rl.push(fake.contains(id.as_str()));
    }
    let reviewers = read_scores(&report.join("scores").join("reviewers.csv"), "reviewer_id")?;
    let us: Vec<f64> = reviewers.iter().map(|x| x.1).collect();
    let ul: Vec<bool> = reviewers
        .iter()
        .map(|x| fake_accounts.contains(x.0.as_str()))
        .collect();
    // Product verdicts.
    let mut rdr = csv::Reader::from_path(report.join("scores").join("products.csv"))?;
    let h = rdr.headers()?.clone();
    let pc = h
        .iter()
        .position(|c| c == "product_id")
        .context("products.csv: no product_id")?;
    let vc = h
        .iter()
        .position(|c| c == "verdict")
        .context("products.csv: no verdict")?;
    let mut verdict: HashMap<String, String> = HashMap::new();
    for r in rdr.records() {
        let r = r?;
        verdict.insert(r[pc].to_string(), r[vc].to_string());
    }
    let v_of = |p: &str| verdict.get(p).cloned().unwrap_or_else(|| "absent".into());
    let mut attacks = Vec::new();
    let (mut n_att, mut n_fail, mut n_wf) = (0usize, 0usize, 0usize);
    for a in &labels.attacks {
        let verdicts: BTreeMap<String, String> =
            a.products.iter().map(|p| (p.clone(), v_of(p))).collect();
        let f = verdicts.values().filter(|v| *v == "fail").count();
        let wf = verdicts
            .values()
            .filter(|v| *v == "fail" || *v == "warn")
            .count();
        n_att += verdicts.len();
        n_fail += f;
        n_wf += wf;
        let n = verdicts.len().max(1) as f64;
        attacks.push(AttackResult {
            kind: a.kind.clone(),
            expected: a.expected_verdict.clone(),
            verdicts,
            recall_fail: f as f64 / n,
            recall_warn_or_fail: wf as f64 / n,
        });
    }
    let attacked: HashSet<&str> = labels
        .attacks
        .iter()
        .flat_map(|a| a.products.iter().map(|s| s.as_str()))
        .collect();
    let clean: Vec<&String> = labels
        .clean_products
        .iter()
        .filter(|p| !attacked.contains(p.as_str()))
        .collect();
    let clean_failed: Vec<String> = clean
        .iter()
        .filter(|p| v_of(p) == "fail")
        .map(|p| p.to_string())
        .collect();
    let pv = v_of(&labels.promotion.product);
    Ok(EvalResult {
        reviews: rs.len(),
        fake_reviews: rl.iter().filter(|&&l| l).count(),
        review_roc_auc: roc_auc(&rs, &rl),
        review_average_precision: average_precision(&rs, &rl),
        reviewer_roc_auc: roc_auc(&us, &ul),
        reviewer_average_precision: average_precision(&us, &ul),
        attacked_recall_fail: n_fail as f64 / n_att.max(1) as f64,
        attacked_recall_warn_or_fail: n_wf as f64 / n_att.max(1) as f64,
        clean_fail_rate: clean_failed.len() as f64 / clean.len().max(1) as f64,
        clean_failed,
        promotion_failed: pv == "fail",
        promotion_verdict: pv,
        attacks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_and_ap_hand_values() {
        // Perfect ranking.
        assert_eq!(roc_auc(&[0.9, 0.8, 0.1], &[true, true, false]), 1.0);
        assert_eq!(
            average_precision(&[0.9, 0.8, 0.1], &[true, true, false]),
            1.0
        );
        // scores .9(+) .8(−) .7(+): AUC = 1/2 of pairs correct… pos ranks 3 and 1 → (4 − 3)/2 = 0.5
        assert_eq!(roc_auc(&[0.9, 0.8, 0.7], &[true, false, true]), 0.5);
        // AP = 1·0.5 + (2/3)·0.5 = 0.8333…
        assert!(
            (average_precision(&[0.9, 0.8, 0.7], &[true, false, true]) - (0.5 + 1.0 / 3.0)).abs()
                < 1e-12
        );
        // Ties count half.
        assert_eq!(roc_auc(&[0.5, 0.5], &[true, false]), 0.5);
    }
}
