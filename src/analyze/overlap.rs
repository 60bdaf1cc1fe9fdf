//! Reviewer overlap: lockstep pairs (CopyCatch: ≥ m shared products, each co-reviewed within Δt),
//! groups (components of the lockstep graph, then the densest reviewer×product block by greedy
//! peeling with 1/log(d+5) weights, FRAUDAR), the product×product shared-reviewer matrix, and
//! identity overlap (several reviewer ids behind one hashed IP, email, street address, buyer or
//! postal code).
//!
//! Co-review counting is bounded: pairs are only formed inside Δt windows of one product, and windows
//! busier than `lockstep_max_window_reviews` are skipped (organic crowds on best sellers).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::config::AuditConfig;
use crate::findings::{Effect, Subject, Verdict, Window};

use super::data::{day_str, AuditData};
use super::stats::{benjamini_hochberg, fisher_combine, poisson_upper};
use super::text::{jaccard, shingle_set};
use super::{
    loo_share, not_run, pct, ratings, share_candidate, Candidate, FamilyOutput, GroupInfo,
    ProductPair, ReviewSignal, SignalKind,
};

const FAMILY: &str = "overlap";

/// Lockstep pairs: the (reviewer a < reviewer b) pairs that co-reviewed at least
/// `lockstep_min_products` products within Δt, sorted.
pub fn lockstep_pairs(d: &AuditData, cfg: &AuditConfig) -> Vec<(u32, u32)> {
    let dt = (cfg.lockstep_window_days * 86_400.0) as i64;
    // Only reviewers with enough distinct products can share `lockstep_min_products` with anyone:
    // everyone else (most accounts) is skipped before any pair is formed.
    // (Accounts with fewer reviews than that are skipped without reading their reviews.) The
    // eligible accounts' distinct products are kept (sorted, one flat array) for the volume screen.
    let mut scratch: Vec<u32> = Vec::new();
    let mut prod_range: rustc_hash::FxHashMap<u32, (u32, u32)> = Default::default();
    let mut prod_flat: Vec<(u32, u32)> = Vec::new();
    let eligible: Vec<bool> = d
        .by_reviewer
        .iter()
        .enumerate()
        .map(|(u, v)| {
            if v.len() < cfg.lockstep_min_products {
                return false;
            }
            scratch.clear();
            scratch.extend(v.iter().map(|&i| d.reviews[i as usize].product));
            scratch.sort_unstable();
            let start = prod_flat.len();
            for &p in &scratch {
                match prod_flat[start..].last_mut() {
                    Some((q, c)) if *q == p => *c += 1,
                    _ => prod_flat.push((p, 1)),
                }
            }
            if prod_flat.len() - start < cfg.lockstep_min_products {
                prod_flat.truncate(start);
                return false;
            }
            prod_range.insert(u as u32, (start as u32, prod_flat.len() as u32));
            true
        })
        .collect();
    // Per pair: (last product counted + 1, distinct products). Products are walked in increasing
    // order, so a product is new for a pair exactly when it differs from the last one counted.
    let mut pairs: rustc_hash::FxHashMap<(u32, u32), (u32, u32)> = Default::default();
    for (p, revs) in d.by_product.iter().enumerate() {
        // The product's review times (contiguous), and its eligible reviews only: windows walk
        // the short eligible list instead of every review (at millions of reviews a window holds
        // hundreds of one-off accounts).
        let times: Vec<i64> = revs.iter().map(|&i| d.reviews[i as usize].t).collect();
        let elig: Vec<(usize, u32, i64)> = revs
            .iter()
            .enumerate()
            .map(|(k, &i)| (k, d.reviews[i as usize].reviewer, times[k]))
            .filter(|&(_, u, _)| eligible[u as usize])
            .collect();
        let (mut lo_all, mut lo) = (0usize, 0usize);
        for (e, &(k, u, t)) in elig.iter().enumerate() {
            while times[lo_all] < t - dt {
                lo_all += 1;
            }
            while elig[lo].2 < t - dt {
                lo += 1;
            }
            // The window's size counts every review in it, eligible or not.
            if k - lo_all > cfg.lockstep_max_window_reviews {
                continue;
            }
            for &(_, v, _) in &elig[lo..e] {
                if v != u {
                    let e = pairs.entry((u.min(v), u.max(v))).or_default();
                    if e.0 != p as u32 + 1 {
                        *e = (p as u32 + 1, e.1 + 1);
                    }
                }
            }
        }
    }
    let mut counted: Vec<((u32, u32), u32)> = pairs
        .into_iter()
        .filter(|(_, (_, n))| *n as usize >= cfg.lockstep_min_products)
        .map(|(k, (_, n))| (k, n))
        .collect();
    counted.sort_unstable();
    // Volume screen. Two busy accounts (regular customers with hundreds of reviews) share many
    // products, and some of their co-reviews fall within Δt by chance. Under independence the
    // number of in-window co-reviews is about Poisson with mean λ = Σ over the pair's shared
    // products of the chance that their reviews of it meet within Δt (see `shared_sum`), where
    // q(p) is the chance for two reviews placed uniformly over the time the product could be
    // reviewed: from its first order or review to the end of the data (not its review span, which
    // a ring's own reviews can make a few days long). A pair is kept when P(X ≥ k | λ) ≤
    // lockstep_pair_alpha divided by the larger number of candidate partners of its two accounts
    // (a Bonferroni share per account: an account with a thousand candidate partners gets a
    // thousand tries).
    let end = (d.to_day + 1) * 86_400;
    let q: Vec<f64> = (0..d.by_product.len())
        .map(|p| {
            let first_review = d.by_product[p].first().map(|&i| d.reviews[i as usize].t);
            let first_order = d.orders_by_product[p]
                .first()
                .map(|&i| d.orders[i as usize].t);
            let last_review = d.by_product[p].last().map(|&i| d.reviews[i as usize].t);
            let Some(start) = first_review.into_iter().chain(first_order).min() else {
                return 1.0;
            };
            let span = (end.max(last_review.unwrap_or(end)) - start) as f64 + 86_400.0;
            let x = dt as f64 / span;
            if x >= 1.0 {
                1.0
            } else {
                2.0 * x - x * x
            }
        })
        .collect();
    let mut partners: Vec<u32> = vec![0; d.by_reviewer.len()];
    for &((a, b), _) in &counted {
        partners[a as usize] += 1;
        partners[b as usize] += 1;
    }
    let products_of = |u: u32| -> &[(u32, u32)] {
        let (s, e) = prod_range.get(&u).copied().unwrap_or((0, 0));
        &prod_flat[s as usize..e as usize]
    };
    let sets = ProductSets::new(
        d.by_product.len(),
        prod_range
            .iter()
            .map(|(&u, &(s, e))| (u, &prod_flat[s as usize..e as usize])),
    );
    let keep: Vec<Vec<bool>> = super::in_chunks(counted.len(), 4096, |range| {
        counted[range]
            .iter()
            .map(|&((a, b), k)| {
                let lambda = sets.shared_sum((a, b), &products_of, &q);
                let tries = partners[a as usize].max(partners[b as usize]).max(1) as f64;
                poisson_upper(k as u64, lambda) <= cfg.lockstep_pair_alpha / tries
            })
            .collect()
    });
    counted
        .iter()
        .zip(keep.into_iter().flatten())
        .filter(|(_, k)| *k)
        .map(|(&(pair, _), _)| pair)
        .collect()
}

/// The eligible accounts' product sets as bitsets (one bit per product), with each account's
/// reviews per product, where they fit `PRODUCT_SETS_BYTES`: a pair's shared products are then
/// found a word of 64 products at a time, where walking the two sorted lists took a step per
/// product of either (busy accounts review hundreds of products, and at scale hundreds of
/// thousands of their pairs are screened). Each pair is summed by whichever way takes fewer steps;
/// both add the same terms in the same (product) order, so λ is the same to the bit.
struct ProductSets {
    products: usize,
    words: usize,
    /// Account → its row in `bits` and `reviews`.
    row: rustc_hash::FxHashMap<u32, u32>,
    bits: Vec<u64>,
    reviews: Vec<u32>,
}

/// Memory the sets of `ProductSets` may take; beyond it (catalogs of very many products with
/// very many busy accounts) pairs are summed from the sorted lists only.
const PRODUCT_SETS_BYTES: usize = 64 << 20;

impl ProductSets {
    /// The sets of `accounts` (account, its sorted (product, reviews) list) in a catalog of
    /// `products`; none when they would not fit `PRODUCT_SETS_BYTES`.
    fn new<'a>(
        products: usize,
        accounts: impl ExactSizeIterator<Item = (u32, &'a [(u32, u32)])>,
    ) -> Self {
        let words = products.div_ceil(64);
        let mut sets = ProductSets {
            products,
            words,
            row: Default::default(),
            bits: Vec::new(),
            reviews: Vec::new(),
        };
        let per_account = words * 8 + products * 4;
        if accounts.len().saturating_mul(per_account) > PRODUCT_SETS_BYTES {
            return sets;
        }
        sets.bits = vec![0; accounts.len() * words];
        sets.reviews = vec![0; accounts.len() * products];
        for (k, (u, list)) in accounts.enumerate() {
            sets.row.insert(u, k as u32);
            for &(p, n) in list {
                sets.bits[k * words + p as usize / 64] |= 1 << (p % 64);
                sets.reviews[k * products + p as usize] = n;
            }
        }
        sets
    }

    /// `shared_sum` of accounts `a` and `b`, whose lists `products_of` gives.
    fn shared_sum<'a>(
        &self,
        (a, b): (u32, u32),
        products_of: &impl Fn(u32) -> &'a [(u32, u32)],
        q: &[f64],
    ) -> f64 {
        let (la, lb) = (products_of(a), products_of(b));
        let rows = self.row.get(&a).zip(self.row.get(&b));
        let Some((&ra, &rb)) = rows.filter(|_| self.words < la.len() + lb.len()) else {
            return shared_sum(la, lb, q);
        };
        let (ra, rb) = (ra as usize, rb as usize);
        let (words, products) = (self.words, self.products);
        let bits = |r: usize| &self.bits[r * words..(r + 1) * words];
        let reviews = |r: usize| &self.reviews[r * products..(r + 1) * products];
        let (ba, bb, na, nb) = (bits(ra), bits(rb), reviews(ra), reviews(rb));
        let mut s = 0.0;
        for (w, (x, y)) in ba.iter().zip(bb).enumerate() {
            let mut shared = x & y;
            while shared != 0 {
                let p = w * 64 + shared.trailing_zeros() as usize;
                shared &= shared - 1;
                s += shared_term(q[p], na[p].saturating_mul(nb[p]));
            }
        }
        s
    }
}

/// λ of a pair: over the products two accounts share (sorted (product, reviews) lists), the chance
/// that some review of one falls within Δt of some review of the other, `1 − (1 − q)^(a·b)` for
/// `a` and `b` reviews of a product whose two-review chance is `q`.
fn shared_sum(a: &[(u32, u32)], b: &[(u32, u32)], q: &[f64]) -> f64 {
    let (mut i, mut j, mut s) = (0, 0, 0.0);
    while i < a.len() && j < b.len() {
        match a[i].0.cmp(&b[j].0) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                s += shared_term(q[a[i].0 as usize], a[i].1.saturating_mul(b[j].1));
                i += 1;
                j += 1;
            }
        }
    }
    s
}

/// One shared product's part of λ: `1 − (1 − q)^n` for `n` pairs of reviews.
fn shared_term(q: f64, n: u32) -> f64 {
    let n = n.min(1 << 20) as i32;
    // Nearly always one review each: `powi(1)` is the value itself (an out-of-line call
    // otherwise, for millions of pairs).
    1.0 - if n == 1 { 1.0 - q } else { (1.0 - q).powi(n) }
}

/// A node of the reviewer×product graph: (0, reviewer) or (1, product).
type Node = (u8, u32);

/// Greedy peeling (FRAUDAR) of a bipartite block; returns (members kept, products kept, density).
/// A heap with lazy deletion keeps it O(E log V).
pub fn densest_block(edges: &[(u32, u32, f64)]) -> (Vec<u32>, Vec<u32>, f64) {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    let mut index: BTreeMap<Node, usize> = BTreeMap::new();
    for &(u, p, _) in edges {
        for node in [(0u8, u), (1u8, p)] {
            let n = index.len();
            index.entry(node).or_insert(n);
        }
    }
    let mut nodes = vec![(0u8, 0u32); index.len()];
    for (k, &i) in &index {
        nodes[i] = *k;
    }
    let mut weight = vec![0.0f64; nodes.len()];
    let mut adj: Vec<Vec<(usize, f64)>> = vec![Vec::new(); nodes.len()];
    let mut total = 0.0;
    for &(u, p, w) in edges {
        let (a, b) = (index[&(0, u)], index[&(1, p)]);
        weight[a] += w;
        weight[b] += w;
        adj[a].push((b, w));
        adj[b].push((a, w));
        total += w;
    }
    // Non-negative weights order like their bit patterns; ties go by node id (deterministic).
    type Entry = (Reverse<(u64, Node)>, usize);
    let key = |w: f64, i: usize| Reverse((w.max(0.0).to_bits(), nodes[i]));
    let mut heap: BinaryHeap<Entry> = (0..nodes.len()).map(|i| (key(weight[i], i), i)).collect();
    let mut alive = vec![true; nodes.len()];
    let mut n_alive = nodes.len();
    let mut removed: Vec<usize> = Vec::new();
    let mut best = (total / n_alive.max(1) as f64, 0usize); // density, removals at the best point
    while n_alive > 2 {
        let Some((Reverse((bits, _)), v)) = heap.pop() else {
            break;
        };
        if !alive[v] || bits != weight[v].max(0.0).to_bits() {
            continue; // stale entry
        }
        alive[v] = false;
        n_alive -= 1;
        removed.push(v);
        total -= weight[v];
        for &(nb, w) in &adj[v] {
            if alive[nb] {
                weight[nb] -= w;
                heap.push((key(weight[nb], nb), nb));
            }
        }
        let g = total / n_alive as f64;
        if g > best.0 + 1e-12 {
            best = (g, removed.len());
        }
    }
    let gone: BTreeSet<usize> = removed[..best.1].iter().copied().collect();
    let keep: Vec<Node> = (0..nodes.len())
        .filter(|i| !gone.contains(i))
        .map(|i| nodes[i])
        .collect();
    let mut members: Vec<u32> = keep.iter().filter(|k| k.0 == 0).map(|k| k.1).collect();
    let mut products: Vec<u32> = keep.iter().filter(|k| k.0 == 1).map(|k| k.1).collect();
    members.sort_unstable();
    products.sort_unstable();
    (members, products, best.0)
}

/// Run the overlap family.
pub fn run(d: &AuditData, cfg: &AuditConfig) -> FamilyOutput {
    let mut out = FamilyOutput::default();
    let pairs = lockstep_pairs(d, cfg);
    groups(d, cfg, &pairs, &mut out);
    product_overlap(d, cfg, &mut out);
    identity(d, cfg, &mut out);
    out
}

fn groups(d: &AuditData, cfg: &AuditConfig, pairs: &[(u32, u32)], out: &mut FamilyOutput) {
    let mut dsu = super::Dsu::new(d.reviewers.len());
    for &(a, b) in pairs {
        dsu.union(a, b);
    }
    let mut comps: BTreeMap<u32, BTreeSet<u32>> = BTreeMap::new();
    for &(a, b) in pairs {
        let r = dsu.find(a);
        comps.entry(r).or_default().insert(a);
        comps.entry(r).or_default().insert(b);
    }
    let mut scratch: Vec<u32> = Vec::new();
    let degree: Vec<usize> = d
        .by_product
        .iter()
        .map(|v| {
            scratch.clear();
            scratch.extend(v.iter().map(|&i| d.reviews[i as usize].reviewer));
            scratch.sort_unstable();
            scratch.dedup();
            scratch.len()
        })
        .collect();
    struct Raw {
        members: Vec<u32>,
        products: Vec<u32>,
        reviews: Vec<u32>,
        density: f64,
        p: f64,
    }
    let mut raws = Vec::new();
    for members in comps.values().filter(|m| m.len() >= cfg.group_min_members) {
        let mut edges = Vec::new();
        for &u in members {
            let prods: BTreeSet<u32> = d.by_reviewer[u as usize]
                .iter()
                .map(|&i| d.reviews[i as usize].product)
                .collect();
            for p in prods {
                edges.push((u, p, 1.0 / ((degree[p as usize] as f64) + 5.0).ln()));
            }
        }
        let (m, prods, density) = densest_block(&edges);
        // Keep products that at least two block members co-reviewed. The members' reviews are
        // read from their own (short) lists, not from the products' (long) ones; review indices
        // are in time order, like the products' lists.
        let mut members_reviews: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
        for &u in &m {
            for &i in &d.by_reviewer[u as usize] {
                members_reviews
                    .entry(d.reviews[i as usize].product)
                    .or_default()
                    .push(i);
            }
        }
        let mut supported = Vec::new();
        let mut reviews = Vec::new();
        let mut p_parts = Vec::new();
        for &p in &prods {
            let mut sub: Vec<u32> = members_reviews.remove(&p).unwrap_or_default();
            sub.sort_unstable();
            if sub.len() < 2 {
                continue;
            }
            let t: Vec<i64> = sub.iter().map(|&i| d.reviews[i as usize].t).collect();
            let w = ((t.iter().max().unwrap_or(&0) - t.iter().min().unwrap_or(&0)) as f64
                / 86_400.0)
                .max(1.0);
            // Null: the members' reviews of this product fall anywhere in the data's span.
            let span = ((d.to_day - d.first_day + 1) as f64).max(w);
            // P(m reviews placed uniformly over the product's span all fall within w days).
            let m_p = sub.len() as f64;
            let p_p = (m_p * (w / span).powf(m_p - 1.0)).min(1.0);
            // Members who review a product at unrelated times (camouflage on best sellers) do not
            // make it a product the group supports.
            if p_p > 0.01 {
                continue;
            }
            p_parts.push(p_p);
            supported.push(p);
            reviews.extend(sub);
        }
        if m.len() < cfg.group_min_members || supported.len() < cfg.lockstep_min_products {
            continue;
        }
        if !reviews.iter().any(|&i| d.is_audited(i)) {
            continue;
        }
        raws.push(Raw {
            members: m,
            products: supported,
            reviews,
            density,
            p: fisher_combine(&p_parts),
        });
    }
    // Order groups by evidence for stable ids.
    raws.sort_by(|a, b| a.p.total_cmp(&b.p).then(a.members.cmp(&b.members)));
    let qs = benjamini_hochberg(&raws.iter().map(|r| r.p).collect::<Vec<_>>());
    for (n, (g, q)) in raws.into_iter().zip(qs).enumerate() {
        let id = format!("G{}", n + 1);
        let mset: BTreeSet<u32> = g.members.iter().copied().collect();
        let pset: BTreeSet<u32> = g.products.iter().copied().collect();
        let others: Vec<u32> = g
            .products
            .iter()
            .flat_map(|&p| d.by_product[p as usize].iter().copied())
            .filter(|&i| !mset.contains(&d.reviews[i as usize].reviewer))
            .collect();
        let dev = super::mean_rating(d, &g.reviews) - super::mean_rating(d, &others);
        let dev = if dev.is_finite() { dev } else { 0.0 };
        let p_rating = super::stats::mann_whitney(&ratings(d, &g.reviews), &ratings(d, &others));
        let text_similarity = group_text_similarity(d, &g.reviews);
        let t: Vec<i64> = g.reviews.iter().map(|&i| d.reviews[i as usize].t).collect();
        let (t0, t1) = (*t.iter().min().unwrap_or(&0), *t.iter().max().unwrap_or(&0));
        let early = g
            .reviews
            .iter()
            .filter(|&&i| {
                let r = &d.reviews[i as usize];
                let first = d.reviews[d.by_product[r.product as usize][0] as usize].day();
                1.0 - (r.day() - first) as f64 / 210.0 > cfg.early_threshold
            })
            .count() as f64
            / g.reviews.len() as f64;
        let shared = shared_identities(d, &g.members);
        let a = q < cfg.fdr;
        // The second question for a group (GSRank indicators): its rating deviates from everyone
        // else's, or its texts are alike, or its accounts are tied together outside reviewing
        // (one IP, email, street address or buyer; or one postal code for three or more).
        // GSRank's group size ratio: the share of the supported products' reviews the group wrote.
        let size_ratio = g.reviews.len() as f64 / (g.reviews.len() + others.len()).max(1) as f64;
        let b = dev.abs() >= cfg.group_rating_deviation
            || size_ratio >= cfg.group_size_ratio
                && p_rating.is_some_and(|p| p < cfg.rating_alpha * 5.0)
            || text_similarity.is_some_and(|s| s >= 0.5)
            || shared > 0;
        let verdict = match (a, b) {
            (true, true) => Verdict::Fail,
            (true, false) => Verdict::Warn,
            _ => Verdict::Pass,
        };
        let members: Vec<String> = g
            .members
            .iter()
            .map(|&u| d.reviewers[u as usize].to_string())
            .collect();
        let products: Vec<String> = g
            .products
            .iter()
            .map(|&p| d.products[p as usize].clone())
            .collect();
        let mut review_ids: Vec<String> = g
            .reviews
            .iter()
            .map(|&i| d.reviews[i as usize].id.to_string())
            .collect();
        review_ids.sort();
        let window = Window {
            from: day_str(t0.div_euclid(86_400)),
            to: day_str(t1.div_euclid(86_400)),
        };
        let sentence = format!(
            "{} accounts reviewed the same {} products within days of each other ({} reviews, {}..{}), rating {:+.2} stars against other reviewers{}{}{}.",
            members.len(),
            products.len(),
            g.reviews.len(),
            window.from,
            window.to,
            dev,
            text_similarity.map(|s| format!(", text similarity {s:.2}")).unwrap_or_default(),
            format_args!(", writing {:.0}% of those products' reviews", size_ratio * 100.0),
            if shared > 0 { format!("; {shared} identity value(s) (IP, email, address, buyer or postal code) are shared among them") } else { String::new() }
        );
        // Catalog-level group finding plus one per supported product.
        let mut c = Candidate::new(
            FAMILY,
            "lockstep_group",
            Subject::Group(id.clone()),
            g.p,
            Effect {
                name: "members".into(),
                value: members.len() as f64,
            },
            sentence.clone(),
        );
        c.q = Some(q);
        c.window = Some((t0.div_euclid(86_400), t1.div_euclid(86_400)));
        c.effect_ok = true;
        c.p_rating = if b { Some(0.0) } else { Some(1.0) };
        c.reviews = g.reviews.clone();
        c.review_strength = 0.0;
        out.candidates.push(c);
        // The group's reviews per product, in the group's order (one pass; a group can hold
        // hundreds of thousands of reviews over hundreds of products).
        let mut by_product: HashMap<u32, Vec<u32>> = HashMap::new();
        for &i in &g.reviews {
            by_product
                .entry(d.reviews[i as usize].product)
                .or_default()
                .push(i);
        }
        for &p in &g.products {
            let sub: Vec<u32> = by_product.remove(&p).unwrap_or_default();
            let mut c = Candidate::new(
                FAMILY,
                "lockstep_group_product",
                Subject::Product(d.products[p as usize].clone()),
                g.p,
                Effect {
                    name: "group reviews".into(),
                    value: sub.len() as f64,
                },
                format!(
                    "{} of its reviews come from reviewer group {id}: {sentence}",
                    sub.len()
                ),
            );
            c.q = Some(q);
            c.window = Some((t0.div_euclid(86_400), t1.div_euclid(86_400)));
            c.p_rating = if b { Some(0.0) } else { Some(1.0) };
            c.reviews = sub;
            c.review_strength = 0.0;
            out.candidates.push(c);
        }
        if verdict != Verdict::Pass {
            for &i in &g.reviews {
                if pset.contains(&d.reviews[i as usize].product) {
                    out.signals.push(ReviewSignal {
                        review: i,
                        kind: if verdict == Verdict::Fail {
                            &SignalKind {
                                reason: "lockstep_group",
                                strength: 0.9,
                            }
                        } else {
                            &SignalKind {
                                reason: "lockstep_group",
                                strength: 0.6,
                            }
                        },
                    });
                }
            }
        }
        out.groups.push(GroupInfo {
            id,
            members,
            products,
            review_ids,
            window,
            span_days: (t1 - t0) as f64 / 86_400.0,
            rating_deviation: super::round_sig(dev),
            text_similarity: text_similarity.map(super::round_sig),
            early_share: super::round_sig(early),
            density: super::round_sig(g.density),
            p: super::round_sig(g.p),
            q: super::round_sig(q),
            verdict,
        });
    }
}

/// How many identity values (hashed IP, email, linked order's street address, buyer or postal
/// code) are shared by two or more members (three or more for postal codes).
fn shared_identities(d: &AuditData, members: &[u32]) -> usize {
    let mut owners: BTreeMap<(u8, u32), BTreeSet<u32>> = BTreeMap::new();
    for &u in members {
        for &i in &d.by_reviewer[u as usize] {
            let r = &d.reviews[i as usize];
            let mut add = |kind: u8, k: Option<u32>| {
                if let Some(k) = k {
                    owners.entry((kind, k)).or_default().insert(u);
                }
            };
            add(0, r.ip.get());
            add(1, r.email.get());
            if let Some(o) = r.order.get() {
                let o = &d.orders[o as usize];
                add(2, o.address.get());
                add(3, o.buyer.get());
                add(4, o.postal.get());
            }
        }
    }
    owners
        .iter()
        .filter(|((kind, _), who)| who.len() >= if *kind == 4 { 3 } else { 2 })
        .count()
}

fn group_text_similarity(d: &AuditData, reviews: &[u32]) -> Option<f64> {
    let sets: Vec<Vec<u64>> = reviews
        .iter()
        .filter_map(|&i| d.text(&d.reviews[i as usize]))
        .map(shingle_set)
        .filter(|s| !s.is_empty())
        .take(60)
        .collect();
    if sets.len() < 2 {
        return None;
    }
    let mut sum = 0.0;
    let mut n = 0;
    for a in 0..sets.len() {
        for b in a + 1..sets.len() {
            sum += jaccard(&sets[a], &sets[b]);
            n += 1;
        }
    }
    Some(sum / n as f64)
}

/// Accounts with more distinct products than this are not counted by the product-overlap test.
const MAX_SHARING_PRODUCTS: usize = 50;

fn product_overlap(d: &AuditData, cfg: &AuditConfig, out: &mut FamilyOutput) {
    // Co-review counts of product pairs: a dense triangle for catalogs up to a few thousand
    // products (tens of millions of increments at scale), a map beyond.
    let np = d.products.len();
    let dense = np <= 4096;
    let mut tri: Vec<u32> = if dense {
        vec![0; np * np.saturating_sub(1) / 2]
    } else {
        Vec::new()
    };
    let tri_index = |a: usize, b: usize| a * (2 * np - a - 1) / 2 + (b - a - 1);
    let mut sparse: HashMap<(u32, u32), u64> = HashMap::new();
    let mut multi = vec![false; d.reviewers.len()];
    let mut prods: Vec<u32> = Vec::new();
    for (u, revs) in d.by_reviewer.iter().enumerate() {
        // One review: one product, no pair (most accounts; their reviews are not read).
        if revs.len() < 2 {
            continue;
        }
        prods.clear();
        prods.extend(revs.iter().map(|&i| d.reviews[i as usize].product));
        prods.sort_unstable();
        prods.dedup();
        // An account with dozens of products (a regular customer of a big catalog) ties no
        // particular products together: it counts neither for pairs nor as a shared reviewer.
        if prods.len() < 2 || prods.len() > MAX_SHARING_PRODUCTS {
            continue;
        }
        multi[u] = true;
        for a in 0..prods.len() {
            for b in a + 1..prods.len() {
                if dense {
                    tri[tri_index(prods[a] as usize, prods[b] as usize)] += 1;
                } else {
                    *sparse.entry((prods[a], prods[b])).or_default() += 1;
                }
            }
        }
    }
    let mut top: Vec<((u32, u32), u64)> = if dense {
        let mut v = Vec::new();
        for a in 0..np {
            for b in a + 1..np {
                let c = tri[tri_index(a, b)] as u64;
                if c >= 2 {
                    v.push(((a as u32, b as u32), c));
                }
            }
        }
        v
    } else {
        sparse.into_iter().filter(|(_, c)| *c >= 2).collect()
    };
    drop(tri);
    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    out.product_pairs = top
        .iter()
        .take(200)
        .map(|((a, b), c)| ProductPair {
            a: d.products[*a as usize].clone(),
            b: d.products[*b as usize].clone(),
            shared_reviewers: *c,
        })
        .collect();
    // Share of a product's reviewers who also reviewed other catalog products.
    // Per product on all cores (joined in product order), a reviewer counted once per product by
    // marking it with the product's number (one array per thread, no set per product).
    let per: Vec<(u64, u64, Vec<u32>)> = super::in_chunks(d.products.len(), 64, |range| {
        let mut mark = vec![u32::MAX; d.reviewers.len()];
        range
            .map(|p| {
                let (mut n, mut sub) = (0u64, Vec::new());
                for i in d.audited_of(p) {
                    let u = d.reviews[i as usize].reviewer as usize;
                    if mark[u] != p as u32 {
                        mark[u] = p as u32;
                        n += 1;
                        if multi[u] {
                            sub.push(i);
                        }
                    }
                }
                (sub.len() as u64, n, sub)
            })
            .collect::<Vec<_>>()
    })
    .into_iter()
    .flatten()
    .collect();
    let k_all: u64 = per.iter().map(|x| x.0).sum();
    let n_all: u64 = per.iter().map(|x| x.1).sum();
    for (p, (k, n, sub)) in per.into_iter().enumerate() {
        if n < cfg.min_reviews as u64 {
            continue;
        }
        let p0 = loo_share(k_all, n_all, k, n);
        let mut c = share_candidate(
            FAMILY,
            "shared_reviewers",
            d,
            p,
            (k, n, p0),
            format!(
                "{k} of {n} reviewers of {} also reviewed other products of this catalog ({} vs {}).",
                d.products[p],
                pct(k as f64 / n as f64),
                pct(p0)
            ),
        );
        c.effect_ok = k >= 4 && (k as f64 / n as f64) >= 2.0 * p0;
        c.max_verdict = Verdict::Warn;
        c.reviews = sub;
        c.review_strength = 0.3;
        out.candidates.push(c);
    }
}

/// An identity key behind several accounts: its chance p-value, the (review, product, reviewer)
/// of its reviews, and its number of accounts.
type Hit = (f64, Vec<(u32, u32, u32)>, usize);

fn identity(d: &AuditData, cfg: &AuditConfig, out: &mut FamilyOutput) {
    let linked = d
        .reviews
        .iter()
        .filter(|r| r.audited && r.order.get().is_some())
        .count() as f64;
    let mut postal_freq: HashMap<u32, u64> = HashMap::new();
    for o in &d.orders {
        if let Some(k) = o.postal.get() {
            *postal_freq.entry(k).or_default() += 1;
        }
    }
    let n_orders = d.orders.len().max(1) as f64;
    let mut any_kind = false;
    // One kind at a time (alphabetical, as reported): (key, reviewer, review) of every audited
    // review carrying that kind of key, sorted — runs of one key, within it runs of one reviewer.
    for kind in ["address", "buyer", "email", "ip", "postal"] {
        let key_of = |r: &super::data::Rev| -> Option<u32> {
            match kind {
                "ip" => r.ip.get(),
                "email" => r.email.get(),
                _ => {
                    let o = &d.orders[r.order.get()? as usize];
                    match kind {
                        "address" => o.address.get(),
                        "buyer" => o.buyer.get(),
                        _ => o.postal.get(),
                    }
                }
            }
        };
        // A kind no record carries (exports without buyer or address columns, reviews without
        // IPs) has no rows: settled by a sequential look at the records, not by reading the
        // linked order of every review.
        let carried = match kind {
            "ip" => d.reviews.iter().any(|r| r.ip.get().is_some()),
            "email" => d.reviews.iter().any(|r| r.email.get().is_some()),
            "address" => d.orders.iter().any(|o| o.address.get().is_some()),
            "buyer" => d.orders.iter().any(|o| o.buyer.get().is_some()),
            _ => d.orders.iter().any(|o| o.postal.get().is_some()),
        };
        if !carried {
            continue;
        }
        // In blocks whose linked orders (scattered over the order table) are read first:
        // independent reads the processor overlaps, where each key would wait for its own.
        // (key, reviewer, review, product): the product is at hand here, where reading it back
        // per review later meant a scattered read of millions of reviews.
        let mut rows: Vec<(u32, u32, u32, u32)> = Vec::new();
        for (b, block) in d.reviews.chunks(crate::ingest::READ_AHEAD).enumerate() {
            if !matches!(kind, "ip" | "email") {
                let touched = block
                    .iter()
                    .filter_map(|r| r.order.get())
                    .fold(0i64, |acc, o| acc ^ d.orders[o as usize].t);
                std::hint::black_box(touched);
            }
            let first = b * crate::ingest::READ_AHEAD;
            rows.extend(
                block
                    .iter()
                    .zip(first as u32..)
                    .filter(|(r, _)| r.audited)
                    .filter_map(|(r, i)| key_of(r).map(|k| (k, r.reviewer, i, r.product))),
            );
        }
        if rows.is_empty() {
            continue;
        }
        any_kind = true;
        rows.sort_unstable();
        let test: &'static str = match kind {
            "ip" => "shared_ip",
            "email" => "shared_email",
            "address" => "shared_address",
            "buyer" => "shared_buyer",
            _ => "shared_postal",
        };
        // Keys behind several accounts, with their chance p-value.
        let mut hits: Vec<Hit> = Vec::new();
        let mut n_distinct_keys = 0usize;
        for run in rows.chunk_by(|a, b| a.0 == b.0) {
            n_distinct_keys += 1;
            let key = run[0].0;
            let accounts = run.chunk_by(|a, b| a.1 == b.1).count();
            let (pv, min_accounts) = if kind == "postal" {
                // Chance: linked reviewers landing on this postal code by its order frequency.
                let lambda = linked * (*postal_freq.get(&key).unwrap_or(&1) as f64 / n_orders);
                (poisson_upper(accounts as u64, lambda), 3)
            } else {
                // Distinct accounts behind one IP/email/address: a rule, no chance model.
                (0.0, 2)
            };
            if accounts < min_accounts {
                continue;
            }
            hits.push((pv, run.iter().map(|x| (x.2, x.3, x.1)).collect(), accounts));
        }
        drop(rows);
        if hits.is_empty() {
            continue;
        }
        let n_keys = n_distinct_keys as f64;
        let p_best = hits.iter().map(|h| h.0).fold(1.0, f64::min);
        let p_cat = if kind == "postal" {
            (p_best * n_keys).min(1.0)
        } else {
            0.0
        };
        let all: Vec<u32> = hits.iter().flat_map(|h| h.1.iter().map(|x| x.0)).collect();
        let accounts: usize = hits.iter().map(|h| h.2).sum();
        let mut c = Candidate::new(
            FAMILY,
            test,
            Subject::Catalog(kind.to_string()),
            p_cat,
            Effect { name: "accounts sharing".into(), value: accounts as f64 },
            format!("{} hashed {kind} value(s) are each shared by several reviewer accounts ({accounts} accounts in all).", hits.len()),
        );
        c.max_verdict = Verdict::Warn;
        c.reviews = all.clone();
        c.review_strength = 0.5;
        out.candidates.push(c);
        // Per product: accounts behind one identity that reviewed the same product.
        // (accounts, reviews, best p) per product; accounts sorted and de-duplicated at the end.
        let mut per_product: BTreeMap<u32, (Vec<u32>, Vec<u32>, f64)> = BTreeMap::new();
        // One key's reviews as (product, position in the key's run, review, reviewer): sorted,
        // runs of one product in the key's order (postal codes can be shared by thousands).
        let mut by_p: Vec<(u32, u32, u32, u32)> = Vec::new();
        let mut who: Vec<u32> = Vec::new();
        for (pv, revs, _) in &hits {
            by_p.clear();
            by_p.extend(
                revs.iter()
                    .enumerate()
                    .map(|(k, &(i, product, reviewer))| (product, k as u32, i, reviewer)),
            );
            by_p.sort_unstable();
            for run in by_p.chunk_by(|a, b| a.0 == b.0) {
                who.clear();
                who.extend(run.iter().map(|x| x.3));
                who.sort_unstable();
                who.dedup();
                if who.len() < 2 {
                    continue;
                }
                let e = per_product
                    .entry(run[0].0)
                    .or_insert_with(|| (Vec::new(), Vec::new(), 1.0));
                e.0.extend_from_slice(&who);
                e.1.extend(run.iter().map(|x| x.2));
                e.2 = e.2.min(*pv);
            }
        }
        for (p, (mut who, revs, pv)) in per_product {
            who.sort_unstable();
            who.dedup();
            let pv = if kind == "postal" {
                (pv * n_keys).min(1.0)
            } else {
                0.0
            };
            let mut c = Candidate::new(
                FAMILY,
                test,
                Subject::Product(d.products[p as usize].clone()),
                pv,
                Effect {
                    name: "accounts".into(),
                    value: who.len() as f64,
                },
                format!(
                    "{} accounts that share a hashed {kind} with another account reviewed {}.",
                    who.len(),
                    d.products[p as usize]
                ),
            );
            c.p_rating = if kind == "postal" { None } else { Some(0.0) };
            c.max_verdict = if kind == "postal" {
                Verdict::Warn
            } else {
                Verdict::Fail
            };
            c.reviews = revs;
            c.review_strength = 0.7;
            out.candidates.push(c);
        }
    }
    if !any_kind {
        out.not_run.push(not_run(
            FAMILY,
            "identity_overlap",
            "no reviewer IP, email or linked order address/buyer/postal code to compare",
        ));
    }
    let _ = cfg;
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// The bitset sum of a pair is the sorted lists' sum to the bit, accounts with one review of
    /// each product or several, lists dense or sparse (both ways of summing), and pairs of an
    /// account outside the sets fall back to the lists.
    #[test]
    fn product_sets_sum_as_the_sorted_lists() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let products = 300;
        let q: Vec<f64> = (0..products).map(|_| rng.random_range(0.0..0.5)).collect();
        let mut lists: Vec<Vec<(u32, u32)>> = Vec::new();
        for k in 0..40 {
            let share = [0.02, 0.3, 0.9][k % 3];
            let mut list = Vec::new();
            for p in 0..products as u32 {
                if rng.random_bool(share) {
                    let n = if rng.random_bool(0.3) {
                        rng.random_range(2..5)
                    } else {
                        1
                    };
                    list.push((p, n));
                }
            }
            lists.push(list);
        }
        let products_of = |u: u32| lists[u as usize].as_slice();
        let sets = ProductSets::new(
            products,
            (0..35u32).map(|u| (u, lists[u as usize].as_slice())),
        );
        assert_eq!(sets.row.len(), 35);
        let mut by_bits = 0;
        for a in 0..40u32 {
            for b in a + 1..40 {
                let want = shared_sum(products_of(a), products_of(b), &q);
                let got = sets.shared_sum((a, b), &products_of, &q);
                assert_eq!(got.to_bits(), want.to_bits(), "pair {a} {b}");
                by_bits +=
                    usize::from(b < 35 && sets.words < products_of(a).len() + products_of(b).len());
            }
        }
        assert!(by_bits > 100, "{by_bits} pairs summed by the sets");
        // Too many accounts for the budget: no sets, every pair from the lists.
        let none = ProductSets::new(
            1 << 20,
            (0..40u32).map(|u| (u, lists[u as usize].as_slice())),
        );
        assert!(none.row.is_empty() && none.bits.is_empty());
        let got = none.shared_sum((0, 1), &products_of, &q);
        assert_eq!(
            got.to_bits(),
            shared_sum(products_of(0), products_of(1), &q).to_bits()
        );
    }
}
