//! Text: near-duplicates across reviewers (MinHash + LSH on word 3-shingles, verified by Jaccard),
//! phrase repetition within a product against the catalog, word-count profile (chi-square) and
//! incentive disclaimers. Nothing here is quadratic in reviews: LSH buckets bound the comparisons.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::config::AuditConfig;
use crate::findings::{Effect, Subject, Verdict};

use super::data::AuditData;
use super::stats::{binomial_upper, chi_square_gof, poisson_upper};
use super::{loo_share, not_run, pct, rating_question, Candidate, FamilyOutput, ReviewSignal};

const FAMILY: &str = "text";
const PERMS: usize = 64;
const BANDS: usize = 16;
const ROWS: usize = PERMS / BANDS;
const BUCKET_CAP: usize = 500;

/// Lower-case word tokens (letters and digits).
pub fn tokens(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.to_lowercase())
        .collect()
}

fn fnv(s: &str) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in s.as_bytes() {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
    z ^ (z >> 31)
}

/// Sorted, de-duplicated hashes of word 3-shingles.
pub fn shingle_set(text: &str) -> Vec<u64> {
    let t = tokens(text);
    let mut v: Vec<u64> = t.windows(3).map(|w| fnv(&w.join(" "))).collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Jaccard similarity of two sorted sets.
pub fn jaccard(a: &[u64], b: &[u64]) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 0.0;
    }
    let (mut i, mut j, mut inter) = (0, 0, 0usize);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                inter += 1;
                i += 1;
                j += 1;
            }
        }
    }
    inter as f64 / (a.len() + b.len() - inter) as f64
}

fn minhash(set: &[u64]) -> [u64; PERMS] {
    let mut sig = [u64::MAX; PERMS];
    for &s in set {
        for (k, slot) in sig.iter_mut().enumerate() {
            let h = mix(s ^ mix(k as u64 + 1));
            if h < *slot {
                *slot = h;
            }
        }
    }
    sig
}

/// Near-duplicate clusters: review index → cluster id, for reviews whose cluster spans at least two
/// reviewers. Returns (cluster of review, reviewers per cluster).
pub fn near_duplicates(
    d: &AuditData,
    cfg: &AuditConfig,
) -> (HashMap<u32, u32>, HashMap<u32, usize>) {
    let mut sets: Vec<(u32, Vec<u64>)> = Vec::new();
    for (i, r) in d.reviews.iter().enumerate() {
        if let Some(t) = &r.text {
            if tokens(t).len() >= cfg.near_duplicate_min_words {
                sets.push((i as u32, shingle_set(t)));
            }
        }
    }
    let sigs: Vec<[u64; PERMS]> = sets.iter().map(|(_, s)| minhash(s)).collect();
    let mut parent: Vec<usize> = (0..sets.len()).collect();
    fn find(p: &mut [usize], x: usize) -> usize {
        let mut r = x;
        while p[r] != r {
            r = p[r];
        }
        let mut y = x;
        while p[y] != r {
            let n = p[y];
            p[y] = r;
            y = n;
        }
        r
    }
    for band in 0..BANDS {
        let mut buckets: HashMap<u64, Vec<usize>> = HashMap::new();
        for (k, sig) in sigs.iter().enumerate() {
            let mut h = band as u64;
            for r in 0..ROWS {
                h = mix(h ^ sig[band * ROWS + r]);
            }
            buckets.entry(h).or_default().push(k);
        }
        let mut keys: Vec<u64> = buckets.keys().copied().collect();
        keys.sort_unstable();
        for key in keys {
            let b = &buckets[&key];
            if b.len() < 2 {
                continue;
            }
            // Big buckets: compare each member with a bounded number of earlier members.
            for x in 1..b.len() {
                let lo = x.saturating_sub(if b.len() > BUCKET_CAP { 3 } else { x });
                for y in lo..x {
                    let (i, j) = (b[x], b[y]);
                    if find(&mut parent, i) == find(&mut parent, j) {
                        continue;
                    }
                    if d.reviews[sets[i].0 as usize].reviewer
                        == d.reviews[sets[j].0 as usize].reviewer
                    {
                        continue;
                    }
                    if jaccard(&sets[i].1, &sets[j].1) >= cfg.near_duplicate_jaccard {
                        let (ri, rj) = (find(&mut parent, i), find(&mut parent, j));
                        let (lo, hi) = if ri < rj { (ri, rj) } else { (rj, ri) };
                        parent[hi] = lo;
                    }
                }
            }
        }
    }
    let mut members: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for k in 0..sets.len() {
        let r = find(&mut parent, k);
        members.entry(r).or_default().push(k);
    }
    let mut cluster = HashMap::new();
    let mut reviewers = HashMap::new();
    for (root, m) in members {
        if m.len() < 2 {
            continue;
        }
        let who: BTreeSet<u32> = m
            .iter()
            .map(|&k| d.reviews[sets[k].0 as usize].reviewer)
            .collect();
        if who.len() < 2 {
            continue;
        }
        reviewers.insert(root as u32, who.len());
        for k in m {
            cluster.insert(sets[k].0, root as u32);
        }
    }
    (cluster, reviewers)
}

const STOP: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "from", "had", "has", "have",
    "i", "in", "is", "it", "its", "it's", "me", "my", "of", "on", "or", "so", "that", "the",
    "this", "to", "was", "we", "were", "with", "you", "your", "s", "t", "very", "just", "not",
    "no", "all", "one", "they", "them", "our", "did", "do", "if", "than", "then",
];

const INCENTIVE: &[&str] = &[
    "in exchange for",
    "honest review",
    "unbiased review",
    "received this product free",
    "received this item free",
    "received this for free",
    "received it for free",
    "free of charge",
    "at a discount in exchange",
    "discounted price",
    "provided by the seller",
    "sent to me for review",
];

/// Run the text family.
pub fn run(d: &AuditData, cfg: &AuditConfig) -> FamilyOutput {
    let mut out = FamilyOutput::default();
    if !d.has_text {
        for t in [
            "near_duplicates",
            "phrase_repetition",
            "word_count_profile",
            "incentive_disclaimer",
        ] {
            out.not_run
                .push(not_run(FAMILY, t, "the reviews have no text"));
        }
        return out;
    }
    let toks: Vec<Option<Vec<String>>> = d
        .reviews
        .iter()
        .map(|r| r.text.as_deref().map(tokens))
        .collect();
    duplicates(d, cfg, &mut out);
    phrases(d, cfg, &toks, &mut out);
    word_counts(d, cfg, &toks, &mut out);
    incentives(d, cfg, &mut out);
    out
}

fn duplicates(d: &AuditData, cfg: &AuditConfig, out: &mut FamilyOutput) {
    let (cluster, reviewers) = near_duplicates(d, cfg);
    let eligible = |i: u32| {
        d.reviews[i as usize]
            .text
            .as_deref()
            .is_some_and(|t| tokens(t).len() >= cfg.near_duplicate_min_words)
    };
    for (&i, c) in &cluster {
        let n = reviewers.get(c).copied().unwrap_or(0);
        out.signals.push(ReviewSignal {
            review: i,
            reason: "near_duplicate_text",
            strength: if n >= 3 { 0.85 } else { 0.5 },
        });
    }
    let (mut k_all, mut n_all) = (0u64, 0u64);
    let per: Vec<(Vec<u32>, Vec<u32>)> = (0..d.products.len())
        .map(|p| {
            let el: Vec<u32> = d.audited_of(p).filter(|&i| eligible(i)).collect();
            let (dup, rest): (Vec<u32>, Vec<u32>) =
                el.into_iter().partition(|i| cluster.contains_key(i));
            k_all += dup.len() as u64;
            n_all += (dup.len() + rest.len()) as u64;
            (dup, rest)
        })
        .collect();
    for (p, (dup, rest)) in per.into_iter().enumerate() {
        let n = (dup.len() + rest.len()) as u64;
        if n < cfg.min_reviews as u64 {
            continue;
        }
        let k = dup.len() as u64;
        let p0 = loo_share(k_all, n_all, k, n).max(0.002);
        let mut c = Candidate::new(
            FAMILY,
            "near_duplicates",
            Subject::Product(d.products[p].clone()),
            binomial_upper(k, n, p0),
            Effect { name: "share / catalog share".into(), value: (k as f64 / n as f64) / p0 },
            format!(
                "{k} of {n} reviews of {} nearly repeat another account's text (Jaccard ≥ {:.1} on word triples; catalog: {}).",
                d.products[p],
                cfg.near_duplicate_jaccard,
                pct(p0)
            ),
        );
        c.effect_ok = k >= 3;
        c.p_rating = rating_question(d, &dup, &rest);
        c.reviews = dup;
        c.review_strength = 0.5;
        out.candidates.push(c);
    }
}

fn phrases(d: &AuditData, cfg: &AuditConfig, toks: &[Option<Vec<String>>], out: &mut FamilyOutput) {
    // Phrase → number of reviews containing it, catalog-wide and per product.
    let phrase_set = |t: &[String]| -> BTreeSet<String> {
        t.windows(3)
            .filter(|w| w.iter().any(|x| !STOP.contains(&x.as_str())))
            .map(|w| w.join(" "))
            .collect()
    };
    // Catalog document frequency per phrase and star rating: a phrase is compared with how often
    // reviews of the same ratings use it elsewhere, so a mediocre product's complaints are not
    // "repetition" just because complaints share words.
    let mut catalog: HashMap<String, [u64; 6]> = HashMap::new();
    let mut n_cat = [0u64; 6];
    let sets: Vec<Option<BTreeSet<String>>> = d
        .reviews
        .iter()
        .zip(toks)
        .map(|(r, t)| {
            if r.audited {
                t.as_deref().map(phrase_set)
            } else {
                None
            }
        })
        .collect();
    for (i, s) in sets.iter().enumerate() {
        let Some(s) = s else { continue };
        let r = d.reviews[i].rating as usize;
        n_cat[r] += 1;
        for ph in s {
            catalog.entry(ph.clone()).or_default()[r] += 1;
        }
    }
    for p in 0..d.products.len() {
        let revs: Vec<u32> = d
            .audited_of(p)
            .filter(|&i| sets[i as usize].is_some())
            .collect();
        let n = revs.len() as u64;
        if n < cfg.min_reviews as u64 {
            continue;
        }
        let mut local: BTreeMap<&str, [u64; 6]> = BTreeMap::new();
        let mut mix = [0u64; 6];
        for &i in &revs {
            let r = d.reviews[i as usize].rating as usize;
            mix[r] += 1;
            for ph in sets[i as usize].iter().flatten() {
                local.entry(ph.as_str()).or_default()[r] += 1;
            }
        }
        // Expected reviews of this product using a phrase, given its rating mix and the rest of
        // the catalog's use of the phrase at each rating.
        let expected = |ph: &str, here: &[u64; 6]| -> f64 {
            let cat = catalog.get(ph).copied().unwrap_or_default();
            (1..=5)
                .map(|r| {
                    let other_k = cat[r].saturating_sub(here[r]) as f64;
                    let other_n = n_cat[r].saturating_sub(mix[r]) as f64;
                    mix[r] as f64 * (other_k + 0.5) / (other_n + 1.0)
                })
                .sum()
        };
        // Words in most of this product's reviews are the product's own name: not substantive.
        let mut word_df: HashMap<&str, u64> = HashMap::new();
        for &i in &revs {
            let words: BTreeSet<&str> = toks[i as usize]
                .iter()
                .flatten()
                .map(|s| s.as_str())
                .collect();
            for w in words {
                *word_df.entry(w).or_default() += 1;
            }
        }
        let name_like = |ph: &str| {
            ph.split(' ').any(|w| {
                !STOP.contains(&w) && word_df.get(w).copied().unwrap_or(0) as f64 > 0.5 * n as f64
            })
        };
        let mut best: Option<(&str, u64, f64, f64)> = None;
        let tested = local.len().max(1) as f64;
        for (&ph, here) in &local {
            let k: u64 = here.iter().sum();
            if k < cfg.phrase_min_reviews as u64
                || (k as f64) < cfg.phrase_min_share * n as f64
                || name_like(ph)
            {
                continue;
            }
            let lambda = expected(ph, here);
            let pv = (poisson_upper(k, lambda) * tested).min(1.0);
            if best.is_none_or(|b| pv < b.2) {
                best = Some((ph, k, pv, lambda));
            }
        }
        let Some((ph, k, pv, lambda)) = best else {
            continue;
        };
        let (sub, rest): (Vec<u32>, Vec<u32>) = revs
            .iter()
            .partition(|&&i| sets[i as usize].as_ref().is_some_and(|s| s.contains(ph)));
        let mut c = Candidate::new(
            FAMILY,
            "phrase_repetition",
            Subject::Product(d.products[p].clone()),
            pv,
            Effect {
                name: "observed / expected".into(),
                value: k as f64 / lambda.max(1e-9),
            },
            format!(
                "\"{ph}\" appears in {k} of {n} reviews of {}, where reviews with the same ratings elsewhere in the catalog predict {lambda:.1}.",
                d.products[p]
            ),
        );
        c.p_rating = rating_question(d, &sub, &rest);
        c.reviews = sub;
        c.review_strength = 0.5;
        out.candidates.push(c);
    }
}

/// Word-count bins: 0–4, 5–9, 10–19, 20–39, 40–79, 80+.
pub fn word_bin(n: usize) -> usize {
    match n {
        0..=4 => 0,
        5..=9 => 1,
        10..=19 => 2,
        20..=39 => 3,
        40..=79 => 4,
        _ => 5,
    }
}

fn word_counts(
    d: &AuditData,
    cfg: &AuditConfig,
    toks: &[Option<Vec<String>>],
    out: &mut FamilyOutput,
) {
    let mut cat = [0u64; 6];
    for (r, t) in d.reviews.iter().zip(toks) {
        if let (true, Some(t)) = (r.audited, t) {
            cat[word_bin(t.len())] += 1;
        }
    }
    for p in 0..d.products.len() {
        let mut obs = [0u64; 6];
        for i in d.audited_of(p) {
            if let Some(t) = &toks[i as usize] {
                obs[word_bin(t.len())] += 1;
            }
        }
        if obs.iter().sum::<u64>() < cfg.min_hourly_reviews as u64 {
            continue;
        }
        let props: Vec<f64> = (0..6)
            .map(|b| (cat[b] - obs[b].min(cat[b])) as f64 + 0.5)
            .collect();
        if let Some((stat, df, pv)) = chi_square_gof(&obs, &props) {
            let mut c = Candidate::new(
                FAMILY,
                "word_count_profile",
                Subject::Product(d.products[p].clone()),
                pv,
                Effect { name: "chi-square".into(), value: stat },
                format!("Review lengths of {} differ from the catalog's (chi-square {stat:.1}, {df} df).", d.products[p]),
            );
            c.max_verdict = Verdict::Warn;
            out.candidates.push(c);
        }
    }
}

fn incentives(d: &AuditData, cfg: &AuditConfig, out: &mut FamilyOutput) {
    let hit = |i: u32| -> bool {
        d.reviews[i as usize].text.as_deref().is_some_and(|t| {
            let l = t.to_lowercase();
            INCENTIVE.iter().any(|k| l.contains(k))
        })
    };
    let (mut k_all, mut n_all) = (0u64, 0u64);
    let per: Vec<Vec<u32>> = (0..d.products.len())
        .map(|p| {
            let all: Vec<u32> = d.audited_of(p).collect();
            n_all += all.len() as u64;
            let h: Vec<u32> = all.into_iter().filter(|&i| hit(i)).collect();
            k_all += h.len() as u64;
            h
        })
        .collect();
    for (p, hits) in per.into_iter().enumerate() {
        let n = d.audited_of(p).count() as u64;
        let k = hits.len() as u64;
        if k < 2 || n < cfg.min_reviews as u64 {
            continue;
        }
        let p0 = loo_share(k_all, n_all, k, n).max(0.002);
        for &i in &hits {
            out.signals.push(ReviewSignal {
                review: i,
                reason: "incentive_disclaimer",
                strength: 0.6,
            });
        }
        let mut c = Candidate::new(
            FAMILY,
            "incentive_disclaimer",
            Subject::Product(d.products[p].clone()),
            binomial_upper(k, n, p0),
            Effect {
                name: "reviews".into(),
                value: k as f64,
            },
            format!(
                "{k} reviews of {} say the product was free, discounted or given for a review.",
                d.products[p]
            ),
        );
        c.max_verdict = Verdict::Warn;
        c.reviews = hits;
        out.candidates.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shingles_and_jaccard() {
        let a = shingle_set("The quick brown fox jumps");
        let b = shingle_set("the quick brown fox sleeps");
        // triples: {the quick brown, quick brown fox, brown fox jumps} vs {…, brown fox sleeps}
        assert_eq!(a.len(), 3);
        assert!((jaccard(&a, &b) - 0.5).abs() < 1e-12);
        assert_eq!(jaccard(&a, &a), 1.0);
    }

    #[test]
    fn minhash_estimates_jaccard() {
        let t1: String = (0..60).map(|i| format!("w{i} ")).collect();
        let t2: String = (0..60)
            .map(|i| {
                if i % 10 == 0 {
                    format!("x{i} ")
                } else {
                    format!("w{i} ")
                }
            })
            .collect();
        let (a, b) = (shingle_set(&t1), shingle_set(&t2));
        let (sa, sb) = (minhash(&a), minhash(&b));
        let est = sa.iter().zip(sb.iter()).filter(|(x, y)| x == y).count() as f64 / PERMS as f64;
        let exact = jaccard(&a, &b);
        assert!((est - exact).abs() < 0.2, "{est} vs {exact}");
    }
}
