//! Scores: per review, per reviewer and per product, each in [0, 1] with reason codes, plus the
//! product verdict and adjusted rating.
//!
//! A review's score combines (1) the findings it is evidence for and direct signals (too fast,
//! near-duplicate, lockstep group, burst) as independent strengths, `1 − Π(1 − s)`, and (2) an
//! unsupervised behavioural prior in the style of SpEagle, `1 − sqrt(mean of squared ECDF tail
//! probabilities)` over reviewer singleton-ness, extreme rating, rating deviation, MNR, burstiness,
//! earliness, unverified and night posting, weighted by `prior_weight`. The prior ranks reviews that
//! no test flagged; it alone cannot push a review above `prior_weight`.

use std::collections::BTreeMap;

use crate::config::AuditConfig;
use crate::findings::{ProductScore, ReasonTable, ReviewScore, ReviewerScore, Subject, Verdict};

use super::data::AuditData;
use super::reviewers::{features, product_means};
use super::stats::ecdf_upper_tail_in_place;
use super::{round_sig, Candidate, ReviewSignal};

/// Behavioural prior of every review (all reviews up to the end of the window).
pub fn prior(d: &AuditData, cfg: &AuditConfig) -> Vec<f64> {
    let means = product_means(d);
    let feats = features(d, cfg);
    let first_day: Vec<i64> = d
        .by_product
        .iter()
        .map(|v| v.first().map(|&i| d.reviews[i as usize].day()).unwrap_or(0))
        .collect();
    let n = d.reviews.len();
    // One feature at a time (its column, its tail probabilities, then the running sum of squares):
    // three numbers per review in memory instead of sixteen.
    let feature = |k: usize, r: &super::data::Rev| -> f64 {
        let f = &feats[r.reviewer as usize];
        match k {
            0 => 1.0 / f.n as f64,
            1 => {
                if r.rating == 1 || r.rating == 5 {
                    1.0
                } else {
                    0.0
                }
            }
            2 => (r.rating as f64 - means[r.product as usize]).abs() / 4.0,
            3 => f.mnr as f64,
            4 => f.bst,
            5 => (1.0 - (r.day() - first_day[r.product as usize]) as f64 / 210.0).max(0.0),
            6 => {
                if r.verified == Some(false) {
                    1.0
                } else {
                    0.0
                }
            }
            _ => {
                let night = r
                    .hour()
                    .map(|h| (cfg.night_hours[0]..cfg.night_hours[1]).contains(&(h as u32)));
                if night == Some(true) {
                    1.0
                } else {
                    0.0
                }
            }
        }
    };
    let mut sum_sq = vec![0.0f64; n];
    let mut used = 0usize;
    // The tail probabilities of one feature; None when it does not vary (e.g. no verified flags),
    // so it carries no information.
    let tail_of = |k: usize| -> Option<Vec<f64>> {
        let mut col: Vec<f64> = d.reviews.iter().map(|r| feature(k, r)).collect();
        let varies = col.iter().any(|v| (v - col[0]).abs() > 1e-12);
        varies.then(|| {
            ecdf_upper_tail_in_place(&mut col);
            col
        })
    };
    // Two features at a time on two threads (each a sort of every review at worst), summed in
    // feature order as before.
    for pair in [0, 2, 4, 6] {
        let (a, b) = std::thread::scope(|s| {
            let b = s.spawn(|| tail_of(pair + 1));
            let a = tail_of(pair);
            (a, b.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
        });
        for tail in [a, b].into_iter().flatten() {
            for (acc, t) in sum_sq.iter_mut().zip(&tail) {
                *acc += t * t;
            }
            used += 1;
        }
    }
    if used == 0 {
        return vec![0.0; n];
    }
    for acc in sum_sq.iter_mut() {
        *acc = 1.0 - (*acc / used as f64).sqrt();
    }
    sum_sq
}

fn verdict_weight(v: Verdict) -> f64 {
    match v {
        Verdict::Fail => 1.0,
        Verdict::Warn => 0.6,
        _ => 0.0,
    }
}

/// Each review's strongest strength per reason (signal or test), in reason-name order: one flat
/// table sorted by (review, reason) instead of a map per review (millions of reviews carry one).
struct Strengths {
    names: Vec<&'static str>,
    /// `start[i]..start[i + 1]` indexes `items` for review `i`.
    start: Vec<u32>,
    items: Vec<(u16, f64)>,
}

impl Strengths {
    /// `signals` are consumed: at ten million reviews they are a hundred megabytes and more; their
    /// buffer becomes the (review, reason, strength) entries.
    fn new(n: usize, flagged: &[(Candidate, Verdict, f64)], signals: Vec<ReviewSignal>) -> Self {
        let mut names: Vec<&'static str> = signals
            .iter()
            .map(|s| s.kind.reason)
            .chain(flagged.iter().map(|(c, _, _)| c.test))
            .collect();
        names.sort_unstable();
        names.dedup();
        let rank = |name: &str| names.binary_search(&name).unwrap_or(0) as u16;
        // Made in the signals' own buffer (same size: the collect reuses it), not beside it.
        let mut entries: Vec<(u32, u16, f64)> = signals
            .into_iter()
            .map(|s| (s.review, rank(s.kind.reason), s.kind.strength))
            .collect();
        for (c, v, _) in flagged {
            let s = c.review_strength * verdict_weight(*v);
            if s <= 0.0 {
                continue;
            }
            let r = rank(c.test);
            entries.extend(c.reviews.iter().map(|&i| (i, r, s)));
        }
        entries.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)).then(a.2.total_cmp(&b.2)));
        let mut start = vec![0u32; n + 1];
        let mut items: Vec<(u16, f64)> = Vec::new();
        for run in entries.chunk_by(|a, b| (a.0, a.1) == (b.0, b.1)) {
            // Strongest of the run, never below 0 (as the map's default was).
            let s = run.iter().map(|e| e.2).fold(0.0, f64::max);
            start[run[0].0 as usize + 1] += 1;
            items.push((run[0].1, s));
        }
        for i in 1..start.len() {
            start[i] += start[i - 1];
        }
        Strengths {
            names,
            start,
            items,
        }
    }

    /// (reason, strength) of review `i`, in reason-name order.
    fn of(&self, i: usize) -> impl Iterator<Item = (&'static str, f64)> + '_ {
        let (a, b) = (self.start[i] as usize, self.start[i + 1] as usize);
        self.items[a..b]
            .iter()
            .map(|&(r, s)| (self.names[r as usize], s))
    }
}

/// Reviews per round of scoring (`in_rounds`).
const SCORE_ROUND: usize = 1 << 20;

/// Score reviews, reviewers and products from the flagged candidates and direct signals.
pub fn score(
    d: &AuditData,
    cfg: &AuditConfig,
    flagged: &[(Candidate, Verdict, f64)],
    signals: Vec<ReviewSignal>,
) -> (Vec<ReviewScore>, Vec<ReviewerScore>, Vec<ProductScore>) {
    let n = d.reviews.len();
    // The strengths (a sort of every signal) are made beside the prior.
    let (strengths, pri) = std::thread::scope(|s| {
        let strengths = s.spawn(|| Strengths::new(n, flagged, signals));
        let pri = prior(d, cfg);
        (
            strengths
                .join()
                .unwrap_or_else(|e| std::panic::resume_unwind(e)),
            pri,
        )
    });
    // Reviews, then reviewers: each chunk on its own thread, joined back in order (every value is
    // computed from its own review or reviewer alone). Reviews go in rounds (`in_rounds`): the
    // parts and the whole never stand in full together.
    let (mut review_scores, mut out_reviews): (Vec<f64>, Vec<ReviewScore>) =
        (Vec::new(), Vec::new());
    super::in_rounds(
        n,
        SCORE_ROUND,
        100_000,
        |range| {
            let mut scores: Vec<f64> = Vec::with_capacity(range.len());
            let mut out: Vec<ReviewScore> = Vec::new();
            let (mut table, mut buf) = (ReasonTable::default(), String::new());
            let mut codes: Vec<&str> = Vec::new();
            for i in range {
                let keep: f64 = strengths.of(i).map(|(_, s)| 1.0 - s).product();
                let prior_i = if pri[i].is_finite() { pri[i] } else { 0.0 };
                let score = 1.0 - keep * (1.0 - cfg.prior_weight * prior_i);
                scores.push(score);
                if !d.reviews[i].audited {
                    continue;
                }
                codes.clear();
                codes.extend(strengths.of(i).filter(|(_, s)| *s > 0.0).map(|(k, _)| k));
                if codes.is_empty() && prior_i >= 0.8 {
                    codes.push("behaviour_prior");
                }
                out.push(ReviewScore {
                    review: i as u32,
                    score: round_sig(score),
                    reasons: table.get(codes.iter().copied(), &mut buf),
                });
            }
            (scores, out)
        },
        |(scores, out)| {
            review_scores.extend(scores);
            out_reviews.extend(out);
        },
    );
    drop(pri);
    // Reviewers: their strongest review, tempered by their average.
    let review_scores = &review_scores;
    let out_reviewers = super::concat(super::in_chunks(d.by_reviewer.len(), 100_000, |range| {
        let mut out: Vec<ReviewerScore> = Vec::new();
        let (mut table, mut buf) = (ReasonTable::default(), String::new());
        let mut codes: Vec<&str> = Vec::new();
        for u in range {
            let audited = || {
                d.by_reviewer[u]
                    .iter()
                    .copied()
                    .filter(|&i| d.is_audited(i))
            };
            let n_aud = audited().count();
            if n_aud == 0 {
                continue;
            }
            let mx = audited()
                .map(|i| review_scores[i as usize])
                .fold(0.0, f64::max);
            let mean = audited().map(|i| review_scores[i as usize]).sum::<f64>() / n_aud as f64;
            // Distinct codes in code order.
            codes.clear();
            codes.extend(audited().flat_map(|i| strengths.of(i as usize).map(|(k, _)| k)));
            codes.sort_unstable();
            codes.dedup();
            out.push(ReviewerScore {
                reviewer: u as u32,
                n_reviews: n_aud as u32,
                score: round_sig(0.7 * mx + 0.3 * mean),
                reasons: table.get(codes.iter().copied(), &mut buf),
            });
        }
        out
    }));
    // Products.
    let mut per_product: BTreeMap<&str, Vec<(Verdict, &str)>> = BTreeMap::new();
    for (c, v, _) in flagged {
        if let Subject::Product(p) = &c.subject {
            per_product
                .entry(p.as_str())
                .or_default()
                .push((*v, c.test));
        }
    }
    // Products are independent (each reads its own reviews and orders): split between threads,
    // joined back in product order.
    let out_products = super::concat(super::in_chunks(d.products.len(), 8, |range| {
        let mut out_products = Vec::new();
        for p in range {
            let name = &d.products[p];
            let aud: Vec<u32> = d.audited_of(p).collect();
            let n_orders = d.orders_by_product[p]
                .iter()
                .filter(|&&o| {
                    let o = &d.orders[o as usize];
                    o.shipped && o.day() >= d.from_day && o.day() <= d.to_day
                })
                .count() as u64;
            if aud.is_empty() && n_orders == 0 {
                continue;
            }
            let fl = per_product.get(name.as_str()).cloned().unwrap_or_default();
            let mut verdict = fl.iter().map(|x| x.0).max().unwrap_or(Verdict::Pass);
            if fl.is_empty() && aud.len() < cfg.min_reviews {
                verdict = Verdict::Insufficient;
            }
            let keep: f64 = fl
                .iter()
                .map(|(v, _)| 1.0 - if *v == Verdict::Fail { 0.6 } else { 0.25 })
                .product();
            let susp = if aud.is_empty() {
                0.0
            } else {
                aud.iter()
                    .filter(|&&i| review_scores[i as usize] >= 0.5)
                    .count() as f64
                    / aud.len() as f64
            };
            let score = 1.0 - keep * (1.0 - 0.5 * susp);
            let original = super::mean_rating(d, &aud);
            let adjusted = adjusted_rating(d, &aud, review_scores);
            let mut reasons: Vec<String> = fl
                .iter()
                .map(|(v, t)| format!("{t}:{}", v.as_str()))
                .collect();
            reasons.sort();
            reasons.dedup();
            out_products.push(ProductScore {
                product_id: name.clone(),
                n_reviews: aud.len(),
                n_orders,
                score: round_sig(score),
                verdict,
                original_rating: if original.is_finite() {
                    round_sig(original)
                } else {
                    0.0
                },
                adjusted_rating: if adjusted.is_finite() {
                    round_sig(adjusted)
                } else {
                    0.0
                },
                reasons: reasons.join(";"),
            });
        }
        out_products
    }));
    (out_reviews, out_reviewers, out_products)
}

/// Mean rating with weights (1 − score)², kept between the genuine reviews' mean (score < 0.5) and
/// the original mean, so down-weighting never claims more than the genuine reviews support.
pub fn adjusted_rating(d: &AuditData, idx: &[u32], scores: &[f64]) -> f64 {
    if idx.is_empty() {
        return f64::NAN;
    }
    let (mut num, mut den) = (0.0, 0.0);
    for &i in idx {
        let w = (1.0 - scores[i as usize]).powi(2);
        num += w * d.reviews[i as usize].rating as f64;
        den += w;
    }
    let original = super::mean_rating(d, idx);
    let genuine: Vec<u32> = idx
        .iter()
        .copied()
        .filter(|&i| scores[i as usize] < 0.5)
        .collect();
    let adj = if den > 0.0 { num / den } else { original };
    if genuine.is_empty() {
        return adj;
    }
    let g = super::mean_rating(d, &genuine);
    let (lo, hi) = if g < original {
        (g, original)
    } else {
        (original, g)
    };
    adj.clamp(lo, hi)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::SignalKind;

    /// A direct signal is 16 bytes (millions at scale), the size and alignment of a strength
    /// entry, so `Strengths::new` turns the signals into entries in their own buffer.
    #[test]
    fn signals_are_entry_sized() {
        use std::mem::{align_of, size_of};
        assert_eq!(size_of::<ReviewSignal>(), 16);
        assert_eq!(size_of::<ReviewSignal>(), size_of::<(u32, u16, f64)>());
        assert_eq!(align_of::<ReviewSignal>(), align_of::<(u32, u16, f64)>());
        let kind = &SignalKind {
            reason: "burst",
            strength: 0.85,
        };
        let signals = vec![ReviewSignal { review: 7, kind }; 3];
        let s = Strengths::new(8, &[], signals);
        assert_eq!(s.of(7).collect::<Vec<_>>(), vec![("burst", 0.85)]);
        assert_eq!(s.of(6).count(), 0);
    }
}
