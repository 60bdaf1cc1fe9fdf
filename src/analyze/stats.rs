//! Statistical tests and helpers statrs lacks (Benjamini–Hochberg, binomial and Poisson tails via
//! statrs distributions, robust z, Fisher's combination, entropy, ECDF tails, KS of a subset against
//! its pool, an O(n log n) Mann–Whitney U) and chi-square goodness of fit on statrs' distribution.
//!
//! Owns: numbers only. Every function returns `None` rather than a guess when its input is too small.

use statrs::distribution::{Binomial, ChiSquared, ContinuousCDF, DiscreteCDF, Normal, Poisson};

/// A probability that is never NaN: special functions can return NaN far in their tails, and a NaN
/// p-value would poison every comparison after it. NaN → 1 (no evidence), else clamped to [0, 1].
pub fn sane(p: f64) -> f64 {
    if p.is_nan() {
        1.0
    } else {
        p.clamp(0.0, 1.0)
    }
}

/// Benjamini–Hochberg adjusted p-values (q-values), in input order.
pub fn benjamini_hochberg(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    if m == 0 {
        return Vec::new();
    }
    let mut idx: Vec<usize> = (0..m).collect();
    idx.sort_by(|&a, &b| p[a].total_cmp(&p[b]).then(a.cmp(&b)));
    let mut q = vec![1.0; m];
    let mut running = 1.0f64;
    for (rank, &i) in idx.iter().enumerate().rev() {
        let v = (p[i] * m as f64 / (rank + 1) as f64).min(1.0);
        running = running.min(v);
        q[i] = running;
    }
    q
}

/// P(X ≥ x) for X ~ Poisson(λ).
pub fn poisson_upper(x: u64, lambda: f64) -> f64 {
    if x == 0 {
        return 1.0;
    }
    if lambda <= 0.0 {
        return 0.0;
    }
    match Poisson::new(lambda) {
        Ok(d) => sane(d.sf(x - 1)),
        Err(_) => 1.0,
    }
}

/// P(X ≥ k) for X ~ Binomial(n, p).
pub fn binomial_upper(k: u64, n: u64, p: f64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if k > n {
        return 0.0;
    }
    let p = if p.is_nan() { 1.0 } else { p.clamp(0.0, 1.0) };
    match Binomial::new(p, n) {
        Ok(d) => sane(d.sf(k - 1)),
        Err(_) => 1.0,
    }
}

/// Two-sided Mann–Whitney U p-value: normal approximation with tie and continuity correction (as
/// scipy's `method="asymptotic"`). `None` when either side has fewer than 3 values.
///
/// Our own O(n log n) implementation: statrs 0.19's `mannwhitneyu` checks comparability of every
/// pair of values first, which is quadratic and stalls on a best seller's 50,000 ratings. A unit
/// test pins it to statrs on small samples.
pub fn mann_whitney(x: &[f64], y: &[f64]) -> Option<f64> {
    let (n1, n2) = (x.len(), y.len());
    if n1 < 3 || n2 < 3 {
        return None;
    }
    let mut all: Vec<(f64, bool)> = x
        .iter()
        .map(|v| (*v, true))
        .chain(y.iter().map(|v| (*v, false)))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let n = all.len();
    let (mut r1, mut ties) = (0.0f64, 0.0f64);
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        let t = (j - i + 1) as f64;
        ties += t * t * t - t;
        r1 += rank * all[i..=j].iter().filter(|v| v.1).count() as f64;
        i = j + 1;
    }
    let (n1f, n2f, nf) = (n1 as f64, n2 as f64, n as f64);
    let u1 = r1 - n1f * (n1f + 1.0) / 2.0;
    let u = u1.max(n1f * n2f - u1);
    let mu = n1f * n2f / 2.0;
    let var = n1f * n2f / 12.0 * ((nf + 1.0) - ties / (nf * (nf - 1.0)));
    if var <= 0.0 {
        return Some(1.0);
    }
    let z = (u - mu - 0.5) / var.sqrt();
    let sf = Normal::new(0.0, 1.0).map(|d| d.sf(z)).unwrap_or(1.0);
    Some(sane(2.0 * sf))
}

/// Kolmogorov's limiting distribution: P(K > λ) = 2 Σ (−1)^(k−1) e^(−2k²λ²).
pub fn kolmogorov_sf(lambda: f64) -> f64 {
    if lambda <= 0.0 {
        return 1.0;
    }
    if lambda < 0.2 {
        return 1.0;
    }
    let mut s = 0.0;
    for k in 1..=100 {
        let k = k as f64;
        let term = (-2.0 * k * k * lambda * lambda).exp();
        s += if k as i64 % 2 == 1 { term } else { -term };
        if term < 1e-16 {
            break;
        }
    }
    sane(2.0 * s)
}

/// Two-sample KS of a subset against the rest of a pool it belongs to: the subset's values `sub`
/// (sorted, not NaN), their pool ranks (`ranks[k]` = (pool values ≤ sub[k], pool values <
/// sub[k])) and the pool's size `n_all`; the rest is the pool minus `sub`. Callers rank the whole pool with one
/// sort. Returns (D, asymptotic p) with the usual effective size n·m/(n+m).
pub fn ks_against_pool_ranked(
    n_all: usize,
    sub: &[f64],
    ranks: &[(u32, u32)],
) -> Option<(f64, f64)> {
    let n = sub.len();
    if n < 5 || n_all < n + 5 || ranks.len() != n {
        return None;
    }
    debug_assert!(sub.windows(2).all(|w| w[0] <= w[1]), "unsorted subset");
    let m = (n_all - n) as f64;
    let mut d: f64 = 0.0;
    // `sub` is sorted: the values ≤ and < x are the ends of x's run of equal values, found by
    // walking the runs (a binary search per value was most of the time at millions of values).
    let mut start = 0;
    while start < n {
        let x = sub[start];
        let end = start + sub[start..].iter().take_while(|&&y| y <= x).count();
        let (le_sub, lt_sub) = (end as f64, start as f64);
        for &(le_pool, lt_pool) in &ranks[start..end] {
            // At x (right-continuous) and just before x: the extremes of |F_sub − F_rest| between
            // jumps.
            let f_sub = le_sub / n as f64;
            let f_rest = (le_pool as f64 - le_sub) / m;
            let f_sub_before = lt_sub / n as f64;
            let f_rest_before = (lt_pool as f64 - lt_sub) / m;
            d = d
                .max((f_sub - f_rest).abs())
                .max((f_sub_before - f_rest_before).abs());
        }
        start = end.max(start + 1);
    }
    let en = (n as f64 * m / (n as f64 + m)).sqrt();
    Some((d, kolmogorov_sf((en + 0.12 + 0.11 / en) * d)))
}

/// Total variation distance between observed counts and expected proportions (both normalised):
/// half the summed absolute difference of shares, in [0, 1]; the share of mass that sits in other
/// bins than expected. 0 for empty input.
pub fn total_variation(observed: &[u64], proportions: &[f64]) -> f64 {
    let n: u64 = observed.iter().sum();
    let total_p: f64 = proportions.iter().sum();
    if n == 0 || total_p <= 0.0 {
        return 0.0;
    }
    0.5 * observed
        .iter()
        .zip(proportions)
        .map(|(&o, &q)| (o as f64 / n as f64 - q / total_p).abs())
        .sum::<f64>()
}

/// Chi-square goodness of fit of observed counts to expected proportions. Bins whose expected count
/// is below 1 are pooled into their neighbour. Returns (statistic, df, p).
pub fn chi_square_gof(observed: &[u64], proportions: &[f64]) -> Option<(f64, usize, f64)> {
    let n: u64 = observed.iter().sum();
    let total_p: f64 = proportions.iter().sum();
    if n == 0 || observed.len() != proportions.len() || total_p <= 0.0 {
        return None;
    }
    // Pool adjacent bins until each expected count is at least 1.
    let mut obs = Vec::new();
    let mut exp = Vec::new();
    let (mut o_acc, mut e_acc) = (0u64, 0.0f64);
    for (o, p) in observed.iter().zip(proportions) {
        o_acc += o;
        e_acc += p / total_p * n as f64;
        if e_acc >= 1.0 {
            obs.push(o_acc);
            exp.push(e_acc);
            o_acc = 0;
            e_acc = 0.0;
        }
    }
    if e_acc > 0.0 || o_acc > 0 {
        match (obs.last_mut(), exp.last_mut()) {
            (Some(lo), Some(le)) => {
                *lo += o_acc;
                *le += e_acc;
            }
            _ => {
                obs.push(o_acc);
                exp.push(e_acc);
            }
        }
    }
    if obs.len() < 2 {
        return None;
    }
    let stat: f64 = obs
        .iter()
        .zip(&exp)
        .map(|(o, e)| (*o as f64 - e).powi(2) / e)
        .sum();
    let df = obs.len() - 1;
    let p = ChiSquared::new(df as f64).ok()?.sf(stat);
    Some((stat, df, sane(p)))
}

/// Median of a slice (NaN-free); `None` when empty.
pub fn median(v: &[f64]) -> Option<f64> {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    median_of_sorted(&s)
}

/// Median of an already sorted slice (no copy).
pub fn median_of_sorted(s: &[f64]) -> Option<f64> {
    median_of_sorted_by(s.len(), |i| s[i])
}

/// `median_of_sorted` of `n` sorted values read through `at` (a column of a sorted table).
pub fn median_of_sorted_by(n: usize, at: impl Fn(usize) -> f64) -> Option<f64> {
    if n == 0 {
        return None;
    }
    let m = n / 2;
    Some(if n.is_multiple_of(2) {
        (at(m - 1) + at(m)) / 2.0
    } else {
        at(m)
    })
}

/// Robust z-scores: (x − median) / (1.4826 · MAD), with the MAD floored at `mad_floor`.
pub fn robust_z(v: &[f64], mad_floor: f64) -> Vec<f64> {
    let Some(med) = median(v) else {
        return Vec::new();
    };
    let dev: Vec<f64> = v.iter().map(|x| (x - med).abs()).collect();
    let mad = median(&dev).unwrap_or(0.0).max(mad_floor);
    v.iter().map(|x| (x - med) / (1.4826 * mad)).collect()
}

/// Fisher's method: combine independent p-values.
pub fn fisher_combine(ps: &[f64]) -> f64 {
    if ps.is_empty() {
        return 1.0;
    }
    let stat: f64 = ps.iter().map(|p| -2.0 * p.max(1e-300).ln()).sum();
    sane(
        ChiSquared::new(2.0 * ps.len() as f64)
            .map(|d| d.sf(stat))
            .unwrap_or(1.0),
    )
}

/// Shannon entropy (bits) of a histogram.
pub fn entropy(counts: &[u64]) -> f64 {
    let n: u64 = counts.iter().sum();
    if n == 0 {
        return 0.0;
    }
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n as f64;
            -p * p.log2()
        })
        .sum()
}

/// Upper-tail ECDF probabilities: for each value, the share of values ≥ it (ties share the tail).
/// Used by the SpEagle-style prior, where a small tail probability means "extreme".
pub fn ecdf_upper_tail(v: &[f64]) -> Vec<f64> {
    let mut t = v.to_vec();
    ecdf_upper_tail_in_place(&mut t);
    t
}

/// `ecdf_upper_tail` written over the values (a column of ten million values is 85 MB; its tails
/// need no second one).
pub fn ecdf_upper_tail_in_place(v: &mut [f64]) {
    if !ecdf_counted(v) {
        ecdf_sorted(v);
    }
}

/// Distinct values up to which `ecdf_counted` counts instead of sorting.
const ECDF_MAX_DISTINCT: usize = 64;

/// `ecdf_sorted`'s result for columns of at most `ECDF_MAX_DISTINCT` distinct values (flags, small
/// counts: half of the prior's features), from counts instead of a sort of millions of values,
/// written over the values; false (values untouched) for other columns.
fn ecdf_counted(v: &mut [f64]) -> bool {
    let n = v.len();
    // Distinct values, by `==` (neither is below the other; -0.0 and 0.0 are one value). NaN is
    // left out before any comparison.
    let same = |a: f64, b: f64| a == b;
    let mut distinct: Vec<f64> = Vec::new();
    let mut last: Option<f64> = None;
    for &x in v.iter() {
        if x.is_nan() || last.is_some_and(|l| same(x, l)) {
            continue;
        }
        last = Some(x);
        if !distinct.iter().any(|&d| same(d, x)) {
            if distinct.len() == ECDF_MAX_DISTINCT {
                return false;
            }
            distinct.push(x);
        }
    }
    distinct.sort_unstable_by(|a, b| a.total_cmp(b));
    // Position of a value among the sorted distinct values (by `<`, as above).
    let slot = |x: f64| distinct.partition_point(|&d| d < x);
    let mut count = vec![0usize; distinct.len()];
    for &x in v.iter().filter(|x| !x.is_nan()) {
        count[slot(x)] += 1;
    }
    // Tail of each distinct value: the share of values not below it.
    let mut tail = Vec::with_capacity(distinct.len());
    let mut below = 0usize;
    for c in &count {
        tail.push((n - below) as f64 / n as f64);
        below += c;
    }
    for x in v.iter_mut() {
        *x = if x.is_nan() { 1.0 } else { tail[slot(*x)] };
    }
    true
}

/// Upper-tail ECDF probabilities by one sort of the column (any number of distinct values),
/// written over the values.
fn ecdf_sorted(v: &mut [f64]) {
    let n = v.len();
    if n == 0 {
        return;
    }
    // Ranks from one sort of (value, index) pairs: values equal under `<` share the count of
    // values below them. (A binary search per value would jump around millions of values.)
    // NaN is below nothing and nothing is below it (its tail is 1).
    let mut order: Vec<(f64, u32)> = v
        .iter()
        .enumerate()
        .filter(|(_, x)| !x.is_nan())
        .map(|(i, &x)| (x, i as u32))
        .collect();
    order.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    // NaN positions (not in `order`) get tail 1; every other position is written below.
    for x in v.iter_mut().filter(|x| x.is_nan()) {
        *x = 1.0;
    }
    let out = v;
    let mut below = 0usize;
    for k in 0..order.len() {
        // `y < x`, not the total order: -0.0 and 0.0 count as equal.
        if k > 0 && order[k - 1].0 < order[k].0 {
            below = k;
        }
        out[order[k].1 as usize] = (n - below) as f64 / n as f64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Counting gives the sort's tails bit for bit on columns of few distinct values, with
        /// NaN, -0.0 and 0.0 among them; columns of many values go to the sort.
        #[test]
        fn ecdf_counted_matches_sorted(codes in proptest::collection::vec(0u8..12, 0..300)) {
            let pick = [0.0, -0.0, 1.0, 0.5, f64::NAN, 2.0, -1.0, 0.25, 1.0 / 3.0, 7.0, 0.5, 1e-9];
            let v: Vec<f64> = codes.iter().map(|&c| pick[c as usize]).collect();
            let (mut a, mut b) = (v.clone(), v.clone());
            prop_assert!(ecdf_counted(&mut a));
            ecdf_sorted(&mut b);
            prop_assert_eq!(
                a.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                b.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn ecdf_many_values_are_sorted() {
        let v: Vec<f64> = (0..200).map(|i| ((i * 37) % 200) as f64).collect();
        assert!(!ecdf_counted(&mut v.clone()));
        let t = ecdf_upper_tail(&v);
        assert_eq!(t[0], 1.0); // value 0: every value is ≥ it
        assert_eq!(t[1], (200.0 - 37.0) / 200.0);
    }
    use statrs::stats_tests::ks_test::{ks_twosample, KSTwoSampleAlternativeMethod};
    use statrs::stats_tests::NaNPolicy;

    /// statrs' two-sample KS, the reference `ks_against_pool` is checked against.
    fn ks_two_sample(x: &[f64], y: &[f64]) -> Option<(f64, f64)> {
        if x.len() < 5 || y.len() < 5 {
            return None;
        }
        ks_twosample(
            x.to_vec(),
            y.to_vec(),
            KSTwoSampleAlternativeMethod::TwoSidedAsymptotic,
            NaNPolicy::Emit,
        )
        .ok()
        .map(|(d, p)| (d, sane(p)))
    }

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs().max(1e-300)
    }

    #[test]
    fn bh_matches_hand_computation() {
        // p = [0.01, 0.04, 0.03, 0.005], m = 4:
        // sorted 0.005(1) 0.01(2) 0.03(3) 0.04(4) → 0.02, 0.02, 0.04, 0.04
        let q = benjamini_hochberg(&[0.01, 0.04, 0.03, 0.005]);
        let want = [0.02, 0.04, 0.04, 0.02];
        for (a, b) in q.iter().zip(want) {
            assert!((a - b).abs() < 1e-12, "{q:?}");
        }
        assert!(benjamini_hochberg(&[]).is_empty());
    }

    #[test]
    fn total_variation_is_half_the_share_difference() {
        assert_eq!(total_variation(&[5, 5], &[1.0, 1.0]), 0.0);
        assert!((total_variation(&[10, 0], &[1.0, 1.0]) - 0.5).abs() < 1e-12);
        // Shares 0.6/0.3/0.1 against 0.2/0.3/0.5: (0.4 + 0 + 0.4) / 2.
        assert!((total_variation(&[6, 3, 1], &[2.0, 3.0, 5.0]) - 0.4).abs() < 1e-12);
        assert_eq!(total_variation(&[], &[]), 0.0);
    }

    #[test]
    fn poisson_and_binomial_tails() {
        // Exact sums (Python: 1 - Σ_{k<10} e^-2 2^k/k!, Σ_{k≥10} C(20,k) .2^k .8^(20-k)).
        assert!(
            close(poisson_upper(10, 2.0), 4.6498075017109564e-05, 1e-6),
            "{}",
            poisson_upper(10, 2.0)
        );
        assert!(close(
            binomial_upper(10, 20, 0.2),
            0.0025948274006740205,
            1e-6
        ));
        assert!(close(
            binomial_upper(12, 100, 0.05),
            0.004274182466365898,
            1e-6
        ));
        assert_eq!(poisson_upper(0, 3.0), 1.0);
        assert_eq!(binomial_upper(5, 4, 0.5), 0.0);
    }

    #[test]
    fn tails_are_never_nan() {
        for &(x, l) in &[
            (3_000_000u64, 2_000_000.0),
            (1, 1e-300),
            (50, 1e9),
            (u32::MAX as u64, 1.0),
        ] {
            let p = poisson_upper(x, l);
            assert!((0.0..=1.0).contains(&p), "poisson {x} {l}: {p}");
        }
        for &(k, n, q) in &[
            (9_000_000u64, 10_000_000u64, 0.9),
            (1, 10_000_000, 1e-12),
            (5, 5, 1.0),
        ] {
            let p = binomial_upper(k, n, q);
            assert!((0.0..=1.0).contains(&p), "binomial {k} {n} {q}: {p}");
        }
        assert_eq!(sane(f64::NAN), 1.0);
        assert!((0.0..=1.0).contains(&fisher_combine(&[0.0, 1.0, f64::NAN])));
    }

    #[test]
    fn chi_square_matches_scipy_example() {
        // scipy.stats.chisquare([16, 18, 16, 14, 12, 12]) → statistic 2.0, p 0.84914503608460956
        let (s, df, p) = chi_square_gof(&[16, 18, 16, 14, 12, 12], &[1.0; 6]).unwrap();
        assert!((s - 2.0).abs() < 1e-12);
        assert_eq!(df, 5);
        assert!(close(p, 0.849_145_036_084_609_6, 1e-9), "{p}");
    }

    #[test]
    fn chi_square_pools_sparse_bins() {
        let (_, df, _) = chi_square_gof(&[5, 0, 0, 5], &[0.49, 0.01, 0.01, 0.49]).unwrap();
        assert_eq!(df, 1);
    }

    #[test]
    fn mann_whitney_hand_value() {
        // x = 1..=5, y = 6..=10: U = 0; normal approximation with continuity correction:
        // μ = 12.5, σ = sqrt(25·11/12) = 4.7871; z = (0 + 0.5 − 12.5)/σ = −2.5067; p = 2Φ(z) = 0.012186
        let x = [1.0, 2.0, 3.0, 4.0, 5.0];
        let y = [6.0, 7.0, 8.0, 9.0, 10.0];
        let p = mann_whitney(&x, &y).unwrap();
        assert!(close(p, 0.012186, 1e-3), "{p}");
        assert_eq!(mann_whitney(&[5.0; 4], &[5.0; 4]), Some(1.0));
        assert_eq!(mann_whitney(&[1.0], &[2.0, 3.0, 4.0]), None);
    }

    #[test]
    fn mann_whitney_matches_statrs_with_ties() {
        use statrs::stats_tests::mannwhitneyu::{mannwhitneyu, MannWhitneyUMethod};
        use statrs::stats_tests::Alternative;
        let x = [5.0, 5.0, 4.0, 5.0, 3.0, 5.0, 5.0, 1.0];
        let y = [4.0, 3.0, 5.0, 2.0, 4.0, 3.0, 1.0, 4.0, 5.0, 2.0];
        let (_, want) = mannwhitneyu(
            &x,
            &y,
            MannWhitneyUMethod::AsymptoticInclContinuityCorrection,
            Alternative::TwoSided,
        )
        .unwrap();
        let got = mann_whitney(&x, &y).unwrap();
        assert!((got - want).abs() < 1e-12, "{got} vs statrs {want}");
    }

    #[test]
    fn ks_statistic() {
        let x: Vec<f64> = (0..50).map(|i| i as f64).collect();
        let y: Vec<f64> = (25..75).map(|i| i as f64).collect();
        let (d, p) = ks_two_sample(&x, &y).unwrap();
        assert!((d - 0.5).abs() < 1e-12, "{d}");
        // Asymptotic Kolmogorov tail at λ = 0.5·sqrt(25) = 2.5: 2Σ(−1)^(k−1) e^(−2k²λ²) ≈ 7.45e-6.
        assert!(p < 1e-4 && p > 1e-7, "{p}");
    }

    /// Each of `sub`'s pool ranks (values ≤, values <) by binary search in the sorted `pool`.
    fn pool_ranks(pool: &[f64], sub: &[f64]) -> Vec<(u32, u32)> {
        sub.iter()
            .map(|&x| {
                (
                    pool.partition_point(|y| *y <= x) as u32,
                    pool.partition_point(|y| *y < x) as u32,
                )
            })
            .collect()
    }

    /// The pool ranks by binary search (callers rank the whole pool with one sort).
    fn ks_against_pool(pool: &[f64], sub: &[f64]) -> Option<(f64, f64)> {
        ks_against_pool_ranked(pool.len(), sub, &pool_ranks(pool, sub))
    }

    /// The walk over runs of equal values gives what a binary search per value gave, bit for bit
    /// (subsets drawn from few values: long runs of ties, within the subset and with the rest).
    #[test]
    fn ks_against_pool_walk_matches_binary_searches() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        for round in 0..200 {
            let levels = 1 + round % 12;
            let mut pool: Vec<f64> = (0..rng.random_range(12..300))
                .map(|_| rng.random_range(0..levels) as f64 * 0.5 - 1.0)
                .collect();
            pool.sort_by(f64::total_cmp);
            let mut sub: Vec<f64> = pool
                .iter()
                .copied()
                .filter(|_| rng.random_bool(0.3))
                .collect();
            sub.truncate(pool.len() - 5);
            let ranks = pool_ranks(&pool, &sub);
            // The former computation: the subset's own counts by binary search at every value.
            let want = (sub.len() >= 5).then(|| {
                let (n, m) = (sub.len() as f64, (pool.len() - sub.len()) as f64);
                let le = |x: f64| sub.partition_point(|y| *y <= x) as f64;
                let lt = |x: f64| sub.partition_point(|y| *y < x) as f64;
                let d = sub.iter().zip(&ranks).fold(0.0f64, |d, (&x, &(lp, tp))| {
                    d.max((le(x) / n - (lp as f64 - le(x)) / m).abs())
                        .max((lt(x) / n - (tp as f64 - lt(x)) / m).abs())
                });
                let en = (n * m / (n + m)).sqrt();
                (d, kolmogorov_sf((en + 0.12 + 0.11 / en) * d))
            });
            let got = ks_against_pool_ranked(pool.len(), &sub, &ranks);
            assert_eq!(
                got.map(|(d, p)| (d.to_bits(), p.to_bits())),
                want.map(|(d, p)| (d.to_bits(), p.to_bits())),
                "round {round}"
            );
        }
    }

    #[test]
    fn ks_against_pool_matches_two_sample() {
        let x: Vec<f64> = (0..50).map(|i| i as f64).collect();
        let y: Vec<f64> = (25..75).map(|i| i as f64 + 0.5).collect();
        let mut pool: Vec<f64> = x.iter().chain(y.iter()).copied().collect();
        pool.sort_by(f64::total_cmp);
        let (d1, p1) = ks_two_sample(&x, &y).unwrap();
        let (d2, p2) = ks_against_pool(&pool, &x).unwrap();
        assert!((d1 - d2).abs() < 1e-12, "{d1} vs {d2}");
        assert!(p2 < 1e-3 && p1 < 1e-3, "{p1} {p2}");
        // Ties between the subset and the rest (the pool of lags has many).
        let x: Vec<f64> = (0..40).map(|i| (i / 4) as f64).collect();
        let y: Vec<f64> = (0..60).map(|i| (i / 5) as f64 + 3.0).collect();
        let mut pool: Vec<f64> = x.iter().chain(y.iter()).copied().collect();
        pool.sort_by(f64::total_cmp);
        let (d1, _) = ks_two_sample(&x, &y).unwrap();
        let (d2, _) = ks_against_pool(&pool, &x).unwrap();
        assert!((d1 - d2).abs() < 1e-12, "{d1} vs {d2}");
        // Q(1.0) = 0.26999967 (Kolmogorov distribution table).
        assert!((kolmogorov_sf(1.0) - 0.269_999_67).abs() < 1e-6);
    }

    #[test]
    fn robust_z_and_entropy() {
        let z = robust_z(&[1.0, 1.0, 2.0, 2.0, 10.0], 0.5);
        // median 2, MAD = median(1,1,0,0,8) = 1 → z(10) = 8/1.4826
        assert!((z[4] - 8.0 / 1.4826).abs() < 1e-9);
        assert!((entropy(&[1, 1, 1, 1]) - 2.0).abs() < 1e-12);
        assert_eq!(entropy(&[7]), 0.0);
        let t = ecdf_upper_tail(&[1.0, 2.0, 2.0, 3.0]);
        assert_eq!(t, vec![1.0, 0.75, 0.75, 0.25]);
        assert!(fisher_combine(&[0.01, 0.01]) < 0.01);
    }
}
