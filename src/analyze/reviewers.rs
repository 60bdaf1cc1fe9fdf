//! Reviewer signals within the catalog (a seller sees no platform-wide history): repeaters and
//! singletons, extreme ratings, rating deviation (RD, DEV), maximum reviews per day (MNR),
//! burstiness (BST) and early reviews (ETF) — the behavioural features of SpEagle and Mukherjee et
//! al. They feed the review scores; two product-level subset tests use them directly.

use crate::config::AuditConfig;
use crate::findings::Verdict;

use super::data::AuditData;
use super::{loo_share, pct, rating_question, share_candidate, FamilyOutput};

const FAMILY: &str = "reviewers";

/// Per-reviewer behaviour the scoring prior reads (extreme ratings and rating deviation enter it
/// per review). Sixteen bytes: one per reviewer, millions of reviewers.
#[derive(Debug, Clone, Default)]
pub struct ReviewerFeatures {
    /// Reviews in the catalog (up to the end of the window).
    pub n: u32,
    /// Maximum reviews on one day.
    pub mnr: u32,
    /// Burstiness: 1 − span/τ when the active span ≤ τ, else 0 (0 for single reviews).
    pub bst: f64,
}

/// Product mean ratings (all reviews up to the end of the window).
pub fn product_means(d: &AuditData) -> Vec<f64> {
    // Products on all cores, joined in product order.
    super::concat(super::in_chunks(d.by_product.len(), 8, |range| {
        range
            .map(|p| {
                let v = &d.by_product[p];
                if v.is_empty() {
                    0.0
                } else {
                    v.iter()
                        .map(|&i| d.reviews[i as usize].rating as f64)
                        .sum::<f64>()
                        / v.len() as f64
                }
            })
            .collect::<Vec<_>>()
    }))
}

/// Features of every reviewer.
pub fn features(d: &AuditData, cfg: &AuditConfig) -> Vec<ReviewerFeatures> {
    // Reviewers are independent: chunks on all cores, joined in order.
    super::concat(super::in_chunks(d.by_reviewer.len(), 100_000, |range| {
        range
            .map(|u| reviewer_features(d, cfg, &d.by_reviewer[u]))
            .collect::<Vec<_>>()
    }))
}

/// One reviewer's features from their reviews (in time order).
fn reviewer_features(d: &AuditData, cfg: &AuditConfig, revs: &[u32]) -> ReviewerFeatures {
    let n = revs.len();
    if n == 0 {
        return ReviewerFeatures::default();
    }
    // The reviews are in time order, so reviews of one day are one run of equal days.
    let (mut mnr, mut run, mut last_day) = (0u32, 0u32, None);
    for &i in revs {
        let day = d.reviews[i as usize].day();
        run = if last_day == Some(day) { run + 1 } else { 1 };
        last_day = Some(day);
        mnr = mnr.max(run);
    }
    let span =
        (d.reviews[revs[n - 1] as usize].t - d.reviews[revs[0] as usize].t) as f64 / 86_400.0;
    let bst = if n >= 2 && span <= cfg.burstiness_tau_days {
        1.0 - span / cfg.burstiness_tau_days
    } else {
        0.0
    };
    ReviewerFeatures {
        n: n as u32,
        mnr,
        bst,
    }
}

/// Run the reviewer family's product-level tests.
pub fn run(d: &AuditData, cfg: &AuditConfig) -> FamilyOutput {
    let mut out = FamilyOutput::default();
    let means = product_means(d);
    // Singletons: reviewers with one review in the catalog.
    let single = |i: u32| d.by_reviewer[d.reviews[i as usize].reviewer as usize].len() == 1;
    // DEV: this review deviates from its product's mean by more than dev_threshold · 4 stars.
    let dev = |i: u32| {
        let r = &d.reviews[i as usize];
        (r.rating as f64 - means[r.product as usize]).abs() / 4.0 > cfg.dev_threshold
    };
    for (test, pred, what) in [
        (
            "singleton_share",
            &single as &(dyn Fn(u32) -> bool + Sync),
            "come from accounts with no other review in the catalog",
        ),
        (
            "rating_deviation",
            &dev as &(dyn Fn(u32) -> bool + Sync),
            "deviate from the product's mean rating by more than 2.5 stars",
        ),
    ] {
        // Products are independent: chunks on all cores, joined in product order (the catalog
        // totals first, then each product's candidate against them).
        let mut per: Vec<(Vec<u32>, Vec<u32>)> =
            super::concat(super::in_chunks(d.products.len(), 8, |range| {
                range
                    .map(|p| d.audited_of(p).partition(|&i| pred(i)))
                    .collect::<Vec<_>>()
            }));
        let k_all: u64 = per.iter().map(|(a, _)| a.len() as u64).sum();
        let n_all: u64 = per.iter().map(|(a, b)| (a.len() + b.len()) as u64).sum();
        let found = super::in_chunks(d.products.len(), 8, |range| {
            let mut found = Vec::new();
            for p in range {
                let (sub, rest) = &per[p];
                let n = (sub.len() + rest.len()) as u64;
                if n < cfg.min_reviews as u64 {
                    continue;
                }
                let k = sub.len() as u64;
                let p0 = loo_share(k_all, n_all, k, n);
                let mut c = share_candidate(
                    FAMILY,
                    test,
                    d,
                    p,
                    (k, n, p0),
                    format!(
                        "{k} of {n} reviews of {} {what} ({} vs {} in the catalog).",
                        d.products[p],
                        pct(k as f64 / n as f64),
                        pct(p0)
                    ),
                );
                c.effect_ok = k >= 5 && (k as f64 / n as f64) >= 1.5 * p0;
                if test == "singleton_share" {
                    c.p_rating = rating_question(d, cfg, sub, rest);
                }
                // Reviewer composition alone never fails a product.
                c.max_verdict = Verdict::Warn;
                c.review_strength = 0.25;
                found.push((p, c));
            }
            found
        });
        // The subsets move into their candidates (no copy).
        for (p, mut c) in found.into_iter().flatten() {
            c.reviews = std::mem::take(&mut per[p].0);
            out.candidates.push(c);
        }
    }
    out
}
