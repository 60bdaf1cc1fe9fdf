//! Timing: order→review lag (impossible / too fast / KS against the catalog), unverified or
//! unmatched share, hour-of-day profile and night share, and gap regularity (SpEagle ETG bins against
//! a Poisson process of the product's own rate).

use crate::config::AuditConfig;
use crate::findings::{Effect, Subject};

use super::data::AuditData;
use super::stats::{binomial_upper, chi_square_gof, entropy, ks_against_pool_ranked};
use super::{
    loo_share, not_run, pct, profile_candidate, rating_question, share_candidate, split_audited,
    Candidate, FamilyOutput, ReviewSignal, SignalKind,
};

const FAMILY: &str = "timing";

/// SpEagle ETG gap bins in days.
pub const GAP_BINS: [f64; 7] = [0.0, 0.5, 1.0, 4.0, 7.0, 13.0, 33.0];

/// Run the timing family.
pub fn run(d: &AuditData, cfg: &AuditConfig) -> FamilyOutput {
    let mut out = FamilyOutput::default();
    lag(d, cfg, &mut out);
    unverified(d, cfg, &mut out);
    hours(d, cfg, &mut out);
    gaps(d, cfg, &mut out);
    out
}

/// Lag in seconds of a linked review (review time − purchase time).
pub fn lag_secs(d: &AuditData, i: u32) -> Option<i64> {
    let r = &d.reviews[i as usize];
    r.order.get().map(|o| r.t - d.orders[o as usize].t)
}

fn is_fast(d: &AuditData, cfg: &AuditConfig, i: u32) -> Option<bool> {
    let r = &d.reviews[i as usize];
    let o = &d.orders[r.order.get()? as usize];
    Some(if r.hour().is_some() {
        ((r.t - o.t) as f64) < cfg.delivery_floor_hours * 3600.0
    } else {
        r.day() <= o.day() // day resolution: same day or before
    })
}

fn lag(d: &AuditData, cfg: &AuditConfig, out: &mut FamilyOutput) {
    if !d.has_orders {
        out.not_run
            .push(not_run(FAMILY, "lag_too_fast", "no orders were given"));
        out.not_run
            .push(not_run(FAMILY, "lag_distribution", "no orders were given"));
        return;
    }
    if !d.has_links {
        let why = "no review could be linked to an order (the review source has no order ids or buyer keys)";
        out.not_run.push(not_run(FAMILY, "lag_too_fast", why));
        out.not_run.push(not_run(FAMILY, "lag_distribution", why));
        return;
    }
    // Direct signals and catalog totals.
    let (mut k_all, mut n_all) = (0u64, 0u64);
    // (lag in seconds, product) of every audited linked review.
    let mut keyed = SortedLags::Packed(Vec::new());
    for (i, r) in d.reviews.iter().enumerate() {
        let Some(l) = lag_secs(d, i as u32) else {
            continue;
        };
        if !r.audited {
            continue;
        }
        n_all += 1;
        keyed.push(l, r.product);
        if l < 0 {
            out.signals.push(ReviewSignal {
                review: i as u32,
                kind: &SignalKind {
                    reason: "before_purchase",
                    strength: 0.95,
                },
            });
            k_all += 1;
        } else if is_fast(d, cfg, i as u32) == Some(true) {
            out.signals.push(ReviewSignal {
                review: i as u32,
                kind: &SignalKind {
                    reason: "too_fast",
                    strength: 0.8,
                },
            });
            k_all += 1;
        }
    }
    // One sort ranks every lag in the catalog pool; each product's lags come out sorted, with how
    // many pooled lags are ≤ and < each (what the KS test against the pool needs), instead of a
    // binary search of millions of lags per value.
    keyed.sort();
    let days = |k: usize| keyed.get(k).0 as f64 / 86_400.0;
    // Once for the catalog (the pool is millions of lags at scale), not once per product.
    let pooled = keyed.len();
    let catalog_median = super::stats::median_of_sorted_by(pooled, days).unwrap_or(0.0);
    // Per product, in one flat table: the pool ranks (≤, <) of its lags, in lag order (8 bytes a
    // lag, ten million lags at scale). A lag is read back from the pool at its "≤" rank, the end
    // of its run of equal lags.
    let mut start = vec![0u32; d.products.len() + 1];
    for k in 0..pooled {
        start[keyed.get(k).1 as usize + 1] += 1;
    }
    for p in 1..start.len() {
        start[p] += start[p - 1];
    }
    let mut ranks = vec![(0u32, 0u32); pooled];
    let mut next = start.clone();
    let mut run = 0usize;
    while run < pooled {
        let lag = keyed.get(run).0;
        let mut end = run + 1;
        while end < pooled && keyed.get(end).0 == lag {
            end += 1;
        }
        for k in run..end {
            let slot = &mut next[keyed.get(k).1 as usize];
            ranks[*slot as usize] = (end as u32, run as u32);
            *slot += 1;
        }
        run = end;
    }
    drop(next);
    let ranks_of = |p: usize| &ranks[start[p] as usize..start[p + 1] as usize];
    for p in 0..d.products.len() {
        let linked: Vec<u32> = d
            .audited_of(p)
            .filter(|&i| d.reviews[i as usize].order.get().is_some())
            .collect();
        if linked.len() < cfg.min_linked_reviews {
            continue;
        }
        let fast: Vec<u32> = linked
            .iter()
            .copied()
            .filter(|&i| lag_secs(d, i).is_some_and(|l| l < 0) || is_fast(d, cfg, i) == Some(true))
            .collect();
        // `fast` is a subsequence of the product's audited reviews, in their order.
        let mut fast_left = fast.iter().peekable();
        let rest: Vec<u32> = d
            .audited_of(p)
            .filter(|i| fast_left.next_if_eq(&i).is_none())
            .collect();
        let k = fast.len() as u64;
        let n = linked.len() as u64;
        // Organic reviews almost never beat delivery: without enough other linked reviews to
        // measure the catalog's share, assume 1%.
        let p0 = if n_all - n >= 20 {
            loo_share(k_all, n_all, k, n).max(0.005)
        } else {
            0.01
        };
        let pv = binomial_upper(k, n, p0);
        let mut c = Candidate::new(
            FAMILY,
            "lag_too_fast",
            Subject::Product(d.products[p].clone()),
            pv,
            Effect { name: "fast share / catalog share".into(), value: (k as f64 / n as f64) / p0 },
            format!(
                "{k} of {n} linked reviews of {} were posted less than {:.0} h after purchase (catalog: {}).",
                d.products[p],
                cfg.delivery_floor_hours,
                pct(p0)
            ),
        );
        c.effect_ok = k >= 3;
        c.p_rating = rating_question(d, cfg, &fast, &rest);
        c.reviews = fast;
        c.review_strength = 0.8;
        out.candidates.push(c);
        // Lag distribution vs the rest of the catalog.
        let ranks = ranks_of(p);
        if ranks.len() >= 10 && pooled > ranks.len() + 10 {
            let mine: Vec<f64> = ranks.iter().map(|&(le, _)| days(le as usize - 1)).collect();
            if let Some((dstat, pv)) = ks_against_pool_ranked(pooled, &mine, ranks) {
                let med = super::stats::median_of_sorted(&mine).unwrap_or(0.0);
                let cat = catalog_median;
                let mut c = Candidate::new(
                    FAMILY,
                    "lag_distribution",
                    Subject::Product(d.products[p].clone()),
                    pv,
                    Effect { name: "KS D".into(), value: dstat },
                    format!(
                        "Order-to-review lags of {} differ from the catalog's (median {med:.1} days vs {cat:.1}; KS D = {dstat:.2}).",
                        d.products[p]
                    ),
                );
                // Only a shorter lag is suspicious.
                c.effect_ok = med < cat;
                c.max_verdict = crate::findings::Verdict::Warn;
                out.candidates.push(c);
            }
        }
    }
}

/// (lag in seconds, product) pairs, to be sorted by lag: one u64 each — the lag biased by 2^31 in
/// the upper half — while every lag is within ±68 years (always, for real data; half the memory
/// of pairs, ten million of them at scale), pairs from the first lag beyond.
enum SortedLags {
    Packed(Vec<u64>),
    Pairs(Vec<(i64, u32)>),
}

impl SortedLags {
    const BIAS: i64 = 1 << 31;

    fn push(&mut self, lag: i64, product: u32) {
        match self {
            SortedLags::Packed(v) if (-Self::BIAS..Self::BIAS).contains(&lag) => {
                v.push(((lag + Self::BIAS) as u64) << 32 | product as u64)
            }
            SortedLags::Packed(v) => {
                let mut pairs: Vec<(i64, u32)> = (0..v.len()).map(|k| Self::unpack(v[k])).collect();
                pairs.push((lag, product));
                *self = SortedLags::Pairs(pairs);
            }
            SortedLags::Pairs(v) => v.push((lag, product)),
        }
    }

    fn unpack(x: u64) -> (i64, u32) {
        ((x >> 32) as i64 - Self::BIAS, x as u32)
    }

    /// Sort by lag (then product).
    fn sort(&mut self) {
        match self {
            SortedLags::Packed(v) => v.sort_unstable(),
            SortedLags::Pairs(v) => v.sort_unstable(),
        }
    }

    fn len(&self) -> usize {
        match self {
            SortedLags::Packed(v) => v.len(),
            SortedLags::Pairs(v) => v.len(),
        }
    }

    /// The k-th (lag, product) (in lag order once sorted).
    fn get(&self, k: usize) -> (i64, u32) {
        match self {
            SortedLags::Packed(v) => Self::unpack(v[k]),
            SortedLags::Pairs(v) => v[k],
        }
    }
}

fn unverified(d: &AuditData, cfg: &AuditConfig, out: &mut FamilyOutput) {
    if !d.has_verified && !d.has_links {
        out.not_run.push(not_run(
            FAMILY,
            "unverified_share",
            "the review source has neither a verified-purchase flag nor links to orders",
        ));
        return;
    }
    let flag = |r: &super::data::Rev| {
        r.verified == Some(false)
            || (d.has_links && r.order.get().is_none() && r.verified != Some(true))
    };
    let (mut k_all, mut n_all) = (0u64, 0u64);
    for r in d.reviews.iter().filter(|r| r.audited) {
        n_all += 1;
        if flag(r) {
            k_all += 1;
        }
    }
    for p in 0..d.products.len() {
        let (sub, rest) = split_audited(d, p, flag);
        let n = (sub.len() + rest.len()) as u64;
        if n < cfg.min_reviews as u64 {
            continue;
        }
        let k = sub.len() as u64;
        let p0 = loo_share(k_all, n_all, k, n).max(0.01);
        let what = if d.has_links {
            "unverified or matched to no order"
        } else {
            "unverified"
        };
        let mut c = share_candidate(
            FAMILY,
            "unverified_share",
            d,
            p,
            (k, n, p0),
            format!(
                "{k} of {n} reviews of {} are {what} ({} vs {} in the catalog).",
                d.products[p],
                pct(k as f64 / n as f64),
                pct(p0)
            ),
        );
        c.effect_ok = k >= 3 && (k as f64 / n as f64) >= 2.0 * p0;
        c.p_rating = rating_question(d, cfg, &sub, &rest);
        c.b_alone_warns = true;
        c.reviews = sub;
        c.review_strength = 0.55;
        out.candidates.push(c);
    }
}

fn in_night(cfg: &AuditConfig, h: u8) -> bool {
    (cfg.night_hours[0]..cfg.night_hours[1]).contains(&(h as u32))
}

fn hours(d: &AuditData, cfg: &AuditConfig, out: &mut FamilyOutput) {
    if !d.second_resolution {
        let why = "review timestamps carry no time of day (day resolution)";
        out.not_run.push(not_run(FAMILY, "hour_profile", why));
        out.not_run.push(not_run(FAMILY, "night_share", why));
        return;
    }
    // Catalog 3-hour bins (all reviews up to the end of the window) and night totals.
    let mut cat = [0u64; 8];
    let (mut k_all, mut n_all) = (0u64, 0u64);
    for r in &d.reviews {
        if let Some(h) = r.hour() {
            cat[h as usize / 3] += 1;
            if r.audited {
                n_all += 1;
                if in_night(cfg, h) {
                    k_all += 1;
                }
            }
        }
    }
    for p in 0..d.products.len() {
        let mine: Vec<u32> = d
            .audited_of(p)
            .filter(|&i| d.reviews[i as usize].hour().is_some())
            .collect();
        if mine.len() < cfg.min_hourly_reviews {
            continue;
        }
        let mut obs = [0u64; 8];
        for &i in &mine {
            obs[d.reviews[i as usize].hour().unwrap_or(0) as usize / 3] += 1;
        }
        let sentence = |stat: f64, df: usize| {
            format!(
                "Posting hours of {} differ from the catalog's (chi-square {stat:.1}, {df} df, {} reviews; local time {}).",
                d.products[p],
                mine.len(),
                d.local_time
            )
        };
        out.candidates.extend(profile_candidate(
            FAMILY,
            "hour_profile",
            d,
            cfg,
            p,
            &obs,
            &cat,
            sentence,
        ));
        let (night, day) = split_audited(d, p, |r| r.hour().is_some_and(|h| in_night(cfg, h)));
        let k = night.len() as u64;
        let n = mine.len() as u64;
        let p0 = loo_share(k_all, n_all, k, n);
        let mut c = share_candidate(
            FAMILY,
            "night_share",
            d,
            p,
            (k, n, p0),
            format!(
                "{k} of {n} reviews of {} were posted between {:02}:00 and {:02}:00 local time ({} vs {} in the catalog).",
                d.products[p],
                cfg.night_hours[0],
                cfg.night_hours[1],
                pct(k as f64 / n as f64),
                pct(p0)
            ),
        );
        c.effect_ok = k >= 5 && (k as f64 / n as f64) >= 2.0 * p0;
        c.p_rating = rating_question(d, cfg, &night, &day);
        c.reviews = night;
        c.review_strength = 0.6;
        out.candidates.push(c);
    }
}

/// Histogram of gaps (days) in the ETG bins; gaps ≥ 33 days are dropped.
pub fn gap_histogram(times: &[i64]) -> [u64; 6] {
    let mut h = [0u64; 6];
    for w in times.windows(2) {
        let g = (w[1] - w[0]) as f64 / 86_400.0;
        if let Some(b) = (0..6).find(|&b| g >= GAP_BINS[b] && g < GAP_BINS[b + 1]) {
            h[b] += 1;
        }
    }
    h
}

fn gaps(d: &AuditData, cfg: &AuditConfig, out: &mut FamilyOutput) {
    for p in 0..d.products.len() {
        let times: Vec<i64> = d.audited_of(p).map(|i| d.reviews[i as usize].t).collect();
        if times.len() < cfg.min_reviews.max(12) {
            continue;
        }
        let span = ((times[times.len() - 1] - times[0]) as f64 / 86_400.0).max(1.0);
        let rate = (times.len() - 1) as f64 / span; // reviews per day
        let h = gap_histogram(&times);
        // Expected bin shares for exponential gaps at the same rate, renormalised to gaps < 33 d.
        let cdf = |x: f64| 1.0 - (-rate * x).exp();
        let total = cdf(GAP_BINS[6]);
        let props: Vec<f64> = (0..6)
            .map(|b| (cdf(GAP_BINS[b + 1]) - cdf(GAP_BINS[b])) / total)
            .collect();
        if let Some((stat, df, pv)) = chi_square_gof(&h, &props) {
            let ent = entropy(&h);
            let mut c = Candidate::new(
                FAMILY,
                "gap_regularity",
                Subject::Product(d.products[p].clone()),
                pv,
                Effect { name: "gap entropy (bits)".into(), value: ent },
                format!(
                    "Gaps between reviews of {} do not look like independent arrivals at its rate of {rate:.2}/day (chi-square {stat:.1}, {df} df; gap entropy {ent:.2} bits).",
                    d.products[p]
                ),
            );
            c.max_verdict = crate::findings::Verdict::Warn;
            // Daily and weekly cycles alone make thousands of gaps "significantly" non-Poisson.
            c.effect_ok = super::profile_differs(cfg, &h, &props);
            out.candidates.push(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lags come back sorted whether they stay packed or one beyond ±68 years turns them into
    /// pairs midway.
    #[test]
    fn sorted_lags_packed_or_not() {
        let lags: Vec<(i64, u32)> = (0..500)
            .map(|k: i64| (((k * 7919) % 1000 - 300) * 3600, (k % 5) as u32))
            .collect();
        for far in [None, Some(250)] {
            let mut want = lags.clone();
            let mut s = SortedLags::Packed(Vec::new());
            for (k, &(l, p)) in lags.iter().enumerate() {
                s.push(l, p);
                if far == Some(k) {
                    s.push(-(3 << 31), 9);
                    want.push((-(3 << 31), 9));
                }
            }
            assert_eq!(matches!(s, SortedLags::Packed(_)), far.is_none());
            s.sort();
            want.sort();
            let got: Vec<(i64, u32)> = (0..s.len()).map(|k| s.get(k)).collect();
            assert_eq!(got, want);
        }
    }

    #[test]
    fn gap_bins() {
        let day = 86_400;
        let t = [0, day / 4, day, 3 * day, 10 * day, 50 * day];
        // gaps: 0.25 (bin 0), 0.75 (bin 1), 2 (bin 2), 7 (bin 4), 40 (dropped)
        assert_eq!(gap_histogram(&t), [1, 1, 1, 0, 1, 0]);
    }
}
