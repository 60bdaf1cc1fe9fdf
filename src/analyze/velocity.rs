//! Velocity: burst days and windows against a trailing baseline scaled by shipped orders (Poisson
//! tail), review rate per order against the catalog, and the weekly multi-signal trend (robust z on
//! count and rating series).
//!
//! Expected reviews follow orders: `e[d] = Σ_k orders[d−k] · lag_pmf[k]` (the catalog's linked
//! order→review lags, or a log-normal with the configured median when nothing is linked), times the
//! product's trailing review rate per expected order, shrunk toward the catalog rate. A burst that
//! follows an order surge (promotion, ads) is therefore expected, not a finding.

use statrs::distribution::{ContinuousCDF, Normal};

use crate::config::AuditConfig;
use crate::findings::{Effect, Subject, Verdict};

use super::data::{day_str, AuditData, AHEAD};
use super::stats::{benjamini_hochberg, poisson_upper, robust_z};
use super::{not_run, rating_question, Candidate, FamilyOutput, ReviewSignal, SignalKind};
use crate::pages::prefetch;

const FAMILY: &str = "velocity";
/// Longest order→review lag modelled (days).
pub const MAX_LAG_DAYS: usize = 90;
const FLOOR_PER_DAY: f64 = 0.02;

/// Lag distribution (days) used to turn orders into expected reviews.
pub fn lag_pmf(d: &AuditData, cfg: &AuditConfig) -> (Vec<f64>, String) {
    // Counted in chunks of reviews on all cores (whole counts: the sum does not depend on them).
    let parts = super::in_chunks(d.reviews.len(), 100_000, |range| {
        let mut counts = vec![0u64; MAX_LAG_DAYS + 1];
        for r in &d.reviews[range] {
            if let Some(o) = r.order.get() {
                let k = r.day() - d.orders[o as usize].day();
                if (0..=MAX_LAG_DAYS as i64).contains(&k) {
                    counts[k as usize] += 1;
                }
            }
        }
        counts
    });
    let mut counts = vec![0.0; MAX_LAG_DAYS + 1];
    for part in parts {
        for (c, k) in counts.iter_mut().zip(part) {
            *c += k as f64;
        }
    }
    let n = counts.iter().sum::<f64>() as usize;
    if n >= 50 {
        // Light smoothing so empty days keep some mass.
        let total: f64 = counts.iter().sum::<f64>() + 0.01 * counts.len() as f64;
        return (
            counts.iter().map(|c| (c + 0.01) / total).collect(),
            format!("empirical, from {n} linked reviews"),
        );
    }
    let mu = cfg.assumed_lag_median_days.max(0.5).ln();
    let sigma = 0.8f64;
    let norm = Normal::new(0.0, 1.0).ok();
    let cdf = |x: f64| -> f64 {
        if x <= 0.0 {
            0.0
        } else {
            norm.as_ref()
                .map(|n| n.cdf((x.ln() - mu) / sigma))
                .unwrap_or(0.0)
        }
    };
    let v: Vec<f64> = (0..=MAX_LAG_DAYS)
        .map(|k| cdf(k as f64 + 1.0) - cdf(k as f64))
        .collect();
    let s: f64 = v.iter().sum();
    (
        v.iter().map(|x| x / s).collect(),
        format!(
            "assumed log-normal, median {:.0} days (no linked reviews)",
            cfg.assumed_lag_median_days
        ),
    )
}

/// Per-product daily series on days `first_day..=to_day`.
pub struct Series {
    /// Reviews per day.
    pub reviews: Vec<u64>,
    /// Shipped order lines per day.
    pub orders: Vec<u64>,
    /// Reviews expected from orders per day (before the rate), `None` without orders.
    pub expected: Option<Vec<f64>>,
}

/// Build a product's series.
pub fn series(d: &AuditData, p: usize, pmf: &[f64]) -> Series {
    let len = (d.to_day - d.first_day + 1).max(1) as usize;
    let mut reviews = vec![0u64; len];
    let list = &d.by_product[p];
    for (n, &i) in list.iter().enumerate() {
        if let Some(&j) = list.get(n + AHEAD) {
            prefetch(&d.reviews[j as usize]);
        }
        let k = (d.reviews[i as usize].day() - d.first_day) as usize;
        if k < len {
            reviews[k] += 1;
        }
    }
    let mut orders = vec![0u64; len];
    let list = &d.orders_by_product[p];
    for (n, &o) in list.iter().enumerate() {
        if let Some(&j) = list.get(n + AHEAD) {
            prefetch(&d.orders[j as usize]);
        }
        let o = &d.orders[o as usize];
        let k = o.day() - d.first_day;
        if o.shipped && k >= 0 && (k as usize) < len {
            orders[k as usize] += 1;
        }
    }
    let expected = if d.has_orders && orders.iter().sum::<u64>() > 0 {
        let first_order = d.first_order_day.unwrap_or(d.first_day) - d.first_day;
        let mut e = vec![0.0; len];
        for (day, slot) in e.iter_mut().enumerate() {
            let (mut acc, mut mass) = (0.0, 0.0);
            for (k, w) in pmf.iter().enumerate() {
                let src = day as i64 - k as i64;
                if src < first_order {
                    continue; // before the order export starts: unknown, rescaled below
                }
                mass += w;
                acc += orders[src as usize] as f64 * w;
            }
            *slot = if mass >= 0.2 { acc / mass } else { f64::NAN };
        }
        Some(e)
    } else {
        None
    };
    Series {
        reviews,
        orders,
        expected,
    }
}

/// Products per thread below which a per-product pass runs on one thread.
const PRODUCTS_PER_THREAD: usize = 64;

/// Every burst window of product `p` (series `s`) with at least one review, tested, appended to
/// `raw` in window-length then start order.
fn windows_of(
    d: &AuditData,
    cfg: &AuditConfig,
    p: usize,
    s: &Series,
    r_cat: f64,
    raw: &mut Vec<RawWindow>,
) {
    let off = |day: i64| (day - d.first_day) as usize;
    let n_days = s.reviews.len();
    for &w in &cfg.burst_windows {
        let w = w as usize;
        let mut start = d.from_day;
        while start <= d.to_day {
            let st = off(start);
            let end = (st + w).min(n_days);
            let x: u64 = s.reviews[st..end].iter().sum();
            if x > 0 {
                let lambda =
                    lambda_at_window(d, s, start, start + (end - st) as i64 - 1, cfg, r_cat);
                raw.push(RawWindow {
                    product: p,
                    start,
                    len: (end - st) as i64,
                    x,
                    lambda,
                    p: poisson_upper(x, lambda),
                });
            }
            start += 1;
        }
    }
}

struct RawWindow {
    product: usize,
    start: i64,
    len: i64,
    x: u64,
    lambda: f64,
    p: f64,
}

/// Run the velocity family.
pub fn run(d: &AuditData, cfg: &AuditConfig) -> FamilyOutput {
    let mut out = FamilyOutput::default();
    if d.reviews.is_empty() {
        return out;
    }
    let (pmf, _) = lag_pmf(d, cfg);
    // Per product on all cores (each product's values are its own), joined in product order.
    let all: Vec<Series> = super::in_chunks(d.products.len(), PRODUCTS_PER_THREAD, |range| {
        range.map(|p| series(d, p, &pmf)).collect::<Vec<_>>()
    })
    .into_iter()
    .flatten()
    .collect();
    // Catalog review rate per expected order.
    let (mut r_sum, mut e_sum) = (0.0, 0.0);
    for s in &all {
        if let Some(e) = &s.expected {
            for (x, ev) in s.reviews.iter().zip(e) {
                if ev.is_finite() {
                    r_sum += *x as f64;
                    e_sum += ev;
                }
            }
        }
    }
    let r_cat = if e_sum > 0.0 {
        (r_sum / e_sum).max(1e-4)
    } else {
        f64::NAN
    };
    if !d.has_orders {
        out.not_run
            .push(not_run(FAMILY, "review_rate", "no orders were given"));
    }
    let off = |day: i64| (day - d.first_day) as usize;
    let raw: Vec<RawWindow> = super::in_chunks(all.len(), PRODUCTS_PER_THREAD, |range| {
        let mut raw = Vec::new();
        for p in range {
            windows_of(d, cfg, p, &all[p], r_cat, &mut raw);
        }
        raw
    })
    .into_iter()
    .flatten()
    .collect();
    let q = benjamini_hochberg(&raw.iter().map(|r| r.p).collect::<Vec<_>>());
    // Merge significant windows per product.
    let mut sig: Vec<(usize, i64, i64, f64, f64, u64, f64)> = Vec::new(); // product, from, to, p, q, x, λ
    for (r, q) in raw.iter().zip(q) {
        if q < cfg.fdr
            && r.x >= cfg.burst_min_reviews
            && r.x as f64 >= cfg.burst_min_ratio * r.lambda
        {
            sig.push((
                r.product,
                r.start,
                r.start + r.len - 1,
                r.p,
                q,
                r.x,
                r.lambda,
            ));
        }
    }
    sig.sort_by_key(|a| (a.0, a.1));
    let mut merged: Vec<(usize, i64, i64, f64, f64, f64)> = Vec::new(); // product, from, to, p, q, best ratio
    for (p, from, to, pv, qv, x, l) in sig {
        match merged.last_mut() {
            Some(m) if m.0 == p && from <= m.2 + 1 => {
                m.2 = m.2.max(to);
                m.3 = m.3.min(pv);
                m.4 = m.4.min(qv);
                m.5 = m.5.max(x as f64 / l);
            }
            _ => merged.push((p, from, to, pv, qv, x as f64 / l)),
        }
    }
    for (p, from, to, pv, qv, _) in merged {
        // Trim the merged window to the days that carry the excess (a 7-day window around a one-day
        // burst is significant too, but the burst is the day).
        let s = &all[p];
        let excess = |day: i64| {
            let x = s.reviews[off(day)];
            x >= 2 && x as f64 >= cfg.burst_min_ratio * lambda_at_window(d, s, day, day, cfg, r_cat)
        };
        let (from, to) = match (
            (from..=to).find(|&x| excess(x)),
            (from..=to).rev().find(|&x| excess(x)),
        ) {
            (Some(a), Some(b))
                if s.reviews[off(a)..=off(b)].iter().sum::<u64>() >= cfg.burst_min_reviews =>
            {
                (a, b)
            }
            _ => (from, to),
        };
        let inside: Vec<u32> = d.by_product[p]
            .iter()
            .copied()
            .filter(|&i| (from..=to).contains(&d.reviews[i as usize].day()))
            .collect();
        let outside: Vec<u32> = d.by_product[p]
            .iter()
            .copied()
            .filter(|&i| !(from..=to).contains(&d.reviews[i as usize].day()))
            .collect();
        let x = inside.len() as u64;
        let lambda = lambda_at_window(d, s, from, to, cfg, r_cat);
        let mut hist = [0usize; 6];
        for &i in &inside {
            hist[d.reviews[i as usize].rating as usize] += 1;
        }
        let modal = (1..=5).max_by_key(|&k| (hist[k], k)).unwrap_or(5);
        let orders_in: u64 = s.orders[off(from)..=off(to).min(s.orders.len() - 1)]
            .iter()
            .sum();
        let basis = if s.expected.is_some() {
            "given orders"
        } else {
            "given the trailing baseline"
        };
        let mut c = Candidate::new(
            FAMILY,
            "burst",
            Subject::Product(d.products[p].clone()),
            pv,
            Effect { name: "observed / expected".into(), value: x as f64 / lambda.max(1e-9) },
            format!(
                "{x} reviews of {} on {}..{} ({} {}-star), {:.1}x the expected {:.1} {basis} ({orders_in} shipped orders in the window).",
                d.products[p],
                day_str(from),
                day_str(to),
                hist[modal],
                modal,
                x as f64 / lambda.max(1e-9),
                lambda
            ),
        );
        c.q = Some(qv);
        c.window = Some((from, to));
        c.p_rating = rating_question(d, cfg, &inside, &outside);
        for &i in &inside {
            if d.reviews[i as usize].rating as usize == modal {
                out.signals.push(ReviewSignal {
                    review: i,
                    kind: &SignalKind {
                        reason: "burst",
                        strength: 0.85,
                    },
                });
            }
        }
        c.reviews = inside;
        c.review_strength = 0.4;
        out.candidates.push(c);
    }
    // Review rate per order.
    if d.has_orders && r_cat.is_finite() {
        let (mut rr_all, mut ee_all) = (0.0, 0.0);
        let per: Vec<(f64, f64, u64)> = all
            .iter()
            .map(|s| {
                let (mut rr, mut ee) = (0.0, 0.0);
                let mut orders = 0;
                if let Some(e) = &s.expected {
                    for day in d.from_day..=d.to_day {
                        let k = off(day);
                        if k < e.len() && e[k].is_finite() {
                            rr += s.reviews[k] as f64;
                            ee += e[k];
                        }
                        orders += s.orders.get(k).copied().unwrap_or(0);
                    }
                }
                rr_all += rr;
                ee_all += ee;
                (rr, ee, orders)
            })
            .collect();
        for (p, (rr, ee, orders)) in per.into_iter().enumerate() {
            if orders < cfg.rate_min_orders || ee <= 0.0 {
                continue;
            }
            let rate = ((rr_all - rr) / (ee_all - ee).max(1e-9)).max(1e-4);
            let lambda = rate * ee;
            let ratio = rr / lambda;
            let mut c = Candidate::new(
                FAMILY,
                "review_rate",
                Subject::Product(d.products[p].clone()),
                poisson_upper(rr as u64, lambda),
                Effect { name: "reviews / expected from orders".into(), value: ratio },
                format!(
                    "{} got {rr:.0} reviews where its {orders} shipped orders predict {lambda:.1} at the catalog's review rate ({ratio:.1}x).",
                    d.products[p]
                ),
            );
            c.effect_ok = ratio >= cfg.rate_min_ratio;
            c.max_verdict = Verdict::Warn;
            out.candidates.push(c);
        }
    }
    trend(d, cfg, &mut out);
    out
}

/// Expected reviews in days `from..=to`: order-scaled when the product's expected-from-orders series
/// covers the window, else from the trailing (at the start of the data: following) baseline.
fn lambda_at_window(
    d: &AuditData,
    s: &Series,
    from: i64,
    to: i64,
    cfg: &AuditConfig,
    r_cat: f64,
) -> f64 {
    let start = (from - d.first_day) as usize;
    let n_days = s.reviews.len();
    let end = ((to - d.first_day + 1) as usize).min(n_days);
    let len = end.saturating_sub(start).max(1);
    let b = cfg.burst_baseline_days.max(7) as usize;
    if let (Some(e), true) = (&s.expected, r_cat.is_finite()) {
        if e[start..end].iter().all(|v| v.is_finite()) {
            let t0 = start.saturating_sub(2 * b);
            let (mut rr, mut ee) = (0.0, 0.0);
            for (x, ev) in s.reviews[t0..start].iter().zip(&e[t0..start]) {
                if ev.is_finite() {
                    rr += *x as f64;
                    ee += ev;
                }
            }
            let rate = (rr + 5.0) / (ee + 5.0 / r_cat);
            let ew: f64 = e[start..end].iter().sum();
            return (rate * ew).max(FLOOR_PER_DAY * len as f64);
        }
    }
    let overall_mean = s.reviews.iter().sum::<u64>() as f64 / n_days as f64;
    let (lo, hi) = if start >= b / 2 {
        (start.saturating_sub(b), start)
    } else {
        (end, (end + b).min(n_days))
    };
    let rr: u64 = s.reviews[lo..hi].iter().sum();
    ((rr as f64 + overall_mean * 7.0) / ((hi - lo) as f64 + 7.0) * len as f64)
        .max(FLOOR_PER_DAY * len as f64)
}

fn trend(d: &AuditData, cfg: &AuditConfig, out: &mut FamilyOutput) {
    let weeks = ((d.to_day - d.from_day + 1) / 7) as usize;
    if weeks < cfg.trend_min_weeks {
        out.not_run.push(not_run(
            FAMILY,
            "weekly_trend",
            &format!(
                "the audited period has {weeks} full weeks; the trend test needs {}",
                cfg.trend_min_weeks
            ),
        ));
        return;
    }
    // First review of each reviewer in the catalog (for the new-reviewer share).
    let first_of: Vec<u32> = d
        .by_reviewer
        .iter()
        .map(|v| v.first().copied().unwrap_or(u32::MAX))
        .collect();
    let normal = Normal::new(0.0, 1.0).ok();
    // Per product on all cores, joined in product order.
    let parts = super::in_chunks(d.products.len(), PRODUCTS_PER_THREAD, |range| {
        range
            .filter_map(|p| week_candidate(d, cfg, p, weeks, &first_of, normal.as_ref()))
            .collect::<Vec<_>>()
    });
    out.candidates.extend(parts.into_iter().flatten());
}

/// The weekly-trend candidate of product `p`: its most extreme week where the review count and
/// the rating mix both moved (robust z), if any. `first_of`: each reviewer's first review.
fn week_candidate(
    d: &AuditData,
    cfg: &AuditConfig,
    p: usize,
    weeks: usize,
    first_of: &[u32],
    normal: Option<&Normal>,
) -> Option<Candidate> {
    let mut buckets: Vec<Vec<u32>> = vec![Vec::new(); weeks];
    for i in d.audited_of(p) {
        let w = ((d.reviews[i as usize].day() - d.from_day) / 7) as usize;
        if w < weeks {
            buckets[w].push(i);
        }
    }
    let active = buckets.iter().filter(|b| !b.is_empty()).count();
    if active < cfg.trend_min_weeks {
        return None;
    }
    let count: Vec<f64> = buckets.iter().map(|b| b.len() as f64).collect();
    let zc = robust_z(&count, 1.0);
    let series = |f: &dyn Fn(&[u32]) -> f64| -> Vec<f64> {
        buckets
            .iter()
            .map(|b| if b.len() >= 3 { f(b) } else { f64::NAN })
            .collect()
    };
    let mean = series(&|b| super::mean_rating(d, b));
    let s5 = series(&|b| {
        b.iter()
            .filter(|&&i| d.reviews[i as usize].rating == 5)
            .count() as f64
            / b.len() as f64
    });
    let s1 = series(&|b| {
        b.iter()
            .filter(|&&i| d.reviews[i as usize].rating == 1)
            .count() as f64
            / b.len() as f64
    });
    let newr = series(&|b| {
        b.iter()
            .filter(|&&i| first_of[d.reviews[i as usize].reviewer as usize] == i)
            .count() as f64
            / b.len() as f64
    });
    let zs: Vec<Vec<f64>> = [(&mean, 0.5), (&s5, 0.15), (&s1, 0.15), (&newr, 0.15)]
        .iter()
        .map(|(v, floor)| {
            let finite: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
            let zf = robust_z(&finite, *floor);
            let mut it = zf.into_iter();
            v.iter()
                .map(|x| {
                    if x.is_finite() {
                        it.next().unwrap_or(0.0)
                    } else {
                        0.0
                    }
                })
                .collect()
        })
        .collect();
    let mut best: Option<(usize, f64)> = None;
    for w in 0..weeks {
        if zc[w] <= cfg.trend_z {
            continue;
        }
        let zr = zs.iter().map(|z| z[w].abs()).fold(0.0, f64::max);
        if zr > cfg.trend_z {
            let m = zc[w].min(zr);
            if best.is_none_or(|(_, b)| m > b) {
                best = Some((w, m));
            }
        }
    }
    let (w, m) = best?;
    let pv = (2.0 * normal.map(|n| n.sf(m)).unwrap_or(1.0) * weeks as f64).min(1.0);
    let from = d.from_day + 7 * w as i64;
    let mut c = Candidate::new(
        FAMILY,
        "weekly_trend",
        Subject::Product(d.products[p].clone()),
        pv,
        Effect { name: "robust z".into(), value: m },
        format!(
            "In the week of {} {} had {} reviews (robust z {:.1}) and its rating mix moved at the same time.",
            day_str(from),
            d.products[p],
            buckets[w].len(),
            zc[w]
        ),
    );
    c.window = Some((from, from + 6));
    c.max_verdict = Verdict::Warn;
    c.reviews = buckets[w].clone();
    c.review_strength = 0.3;
    Some(c)
}
