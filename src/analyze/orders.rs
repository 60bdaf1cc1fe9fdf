//! Order side (fake orders, brushing): order bursts not explained by a promotion, one postal code or
//! buyer key taking an abnormal share of a product's orders against the catalog, and zero-price or
//! fully discounted orders.

use std::collections::HashMap;

use crate::config::AuditConfig;
use crate::findings::{Effect, Subject, Verdict};

use super::data::{day_str, AuditData};
use super::stats::{benjamini_hochberg, binomial_upper, poisson_upper};
use super::{loo_share, not_run, pct, rating_question, share_candidate, Candidate, FamilyOutput};

const FAMILY: &str = "orders";

/// Run the order-side family.
pub fn run(d: &AuditData, cfg: &AuditConfig) -> FamilyOutput {
    let mut out = FamilyOutput::default();
    if !d.has_orders {
        for t in [
            "order_burst",
            "postal_concentration",
            "buyer_concentration",
            "free_orders",
        ] {
            out.not_run.push(not_run(FAMILY, t, "no orders were given"));
        }
        return out;
    }
    let audited = |o: &super::data::Ord| o.day() >= d.from_day && o.day() <= d.to_day;
    let linked = ReviewsOfOrder::new(d);
    // The four tests are independent: run on two threads (longest first), their outputs joined
    // in the fixed order postal, buyer, free, bursts.
    type Part<'a> = (usize, &'a (dyn Fn(&mut FamilyOutput) + Sync));
    let postal = |out: &mut FamilyOutput| {
        let test = ("postal_concentration", "postal code");
        concentration(d, cfg, out, test, |o| o.postal.get(), &audited, &linked)
    };
    let buyer = |out: &mut FamilyOutput| {
        let test = ("buyer_concentration", "buyer");
        concentration(d, cfg, out, test, |o| o.buyer.get(), &audited, &linked)
    };
    let free = |out: &mut FamilyOutput| free_orders(d, cfg, out, &audited);
    let bursts = |out: &mut FamilyOutput| order_bursts(d, cfg, out);
    let parts: [Part; 4] = [(0, &postal), (3, &bursts), (2, &free), (1, &buyer)];
    let mut done = super::in_pool(&parts, 2, |&(k, part)| {
        let mut out = FamilyOutput::default();
        part(&mut out);
        (k, out)
    });
    done.sort_by_key(|x| x.0);
    for (_, part) in done {
        out.append(part);
    }
    out
}

/// Zero-price or fully discounted shipped orders: a product's share against the catalog's.
fn free_orders(
    d: &AuditData,
    cfg: &AuditConfig,
    out: &mut FamilyOutput,
    audited: &(dyn Fn(&super::data::Ord) -> bool + Sync),
) {
    let (mut k_all, mut n_all) = (0u64, 0u64);
    for o in d.orders.iter().filter(|o| audited(o) && o.shipped) {
        n_all += 1;
        k_all += o.free as u64;
    }
    for p in 0..d.products.len() {
        let mine: Vec<&super::data::Ord> = d.orders_by_product[p]
            .iter()
            .map(|&i| &d.orders[i as usize])
            .filter(|o| audited(o) && o.shipped)
            .collect();
        let n = mine.len() as u64;
        if n < cfg.orders_min {
            continue;
        }
        let k = mine.iter().filter(|o| o.free).count() as u64;
        let p0 = loo_share(k_all, n_all, k, n).max(0.002);
        let mut c = share_candidate(
            FAMILY,
            "free_orders",
            d,
            p,
            (k, n, p0),
            format!(
                "{k} of {n} shipped orders of {} were free or fully discounted (catalog: {}).",
                d.products[p],
                pct(p0)
            ),
        );
        c.effect_ok = k >= 3;
        c.max_verdict = Verdict::Warn;
        out.candidates.push(c);
    }
}

/// Audited reviews linked to each order, in review order (one flat table for all orders).
struct ReviewsOfOrder {
    /// `start[o]..start[o + 1]` indexes `reviews` for order `o`.
    start: Vec<u32>,
    reviews: Vec<u32>,
}

impl ReviewsOfOrder {
    fn new(d: &AuditData) -> Self {
        let mut start = vec![0u32; d.orders.len() + 1];
        for r in d.reviews.iter().filter(|r| r.audited) {
            if let Some(o) = r.order.get() {
                start[o as usize + 1] += 1;
            }
        }
        for i in 1..start.len() {
            start[i] += start[i - 1];
        }
        let mut fill = start.clone();
        let mut reviews = vec![0u32; *start.last().unwrap_or(&0) as usize];
        for (i, r) in d.reviews.iter().enumerate().filter(|(_, r)| r.audited) {
            if let Some(o) = r.order.get() {
                reviews[fill[o as usize] as usize] = i as u32;
                fill[o as usize] += 1;
            }
        }
        ReviewsOfOrder { start, reviews }
    }

    fn of(&self, o: u32) -> &[u32] {
        match (self.start.get(o as usize), self.start.get(o as usize + 1)) {
            (Some(&a), Some(&b)) => &self.reviews[a as usize..b as usize],
            _ => &[],
        }
    }
}

fn concentration(
    d: &AuditData,
    cfg: &AuditConfig,
    out: &mut FamilyOutput,
    (test, what): (&'static str, &str),
    key: impl Fn(&super::data::Ord) -> Option<u32> + Sync,
    audited: &(dyn Fn(&super::data::Ord) -> bool + Sync),
    reviews_of_order: &ReviewsOfOrder,
) {
    // Keys are dense indices: counted in a vector, not a map.
    let mut total: Vec<u64> = Vec::new();
    let mut n_keyed = 0u64;
    for o in d.orders.iter().filter(|o| audited(o)) {
        if let Some(k) = key(o) {
            if total.len() <= k as usize {
                total.resize(k as usize + 1, 0);
            }
            total[k as usize] += 1;
            n_keyed += 1;
        }
    }
    if n_keyed == 0 {
        out.not_run.push(not_run(
            FAMILY,
            test,
            &format!("the order export has no {what} column"),
        ));
        return;
    }
    // Products are independent: taken by the threads a run at a time, joined in product order.
    let product = |p: usize| -> Option<Candidate> {
        let mine: Vec<u32> = d.orders_by_product[p]
            .iter()
            .copied()
            .filter(|&i| audited(&d.orders[i as usize]) && key(&d.orders[i as usize]).is_some())
            .collect();
        let n = mine.len() as u64;
        if n < cfg.orders_min {
            return None;
        }
        let mut counts: HashMap<u32, u64> = HashMap::new();
        for &i in &mine {
            if let Some(k) = key(&d.orders[i as usize]) {
                *counts.entry(k).or_default() += 1;
            }
        }
        // The most surprising key (smallest tail), Bonferroni over the product's distinct keys.
        let mut best: Option<(u32, u64, f64, f64)> = None;
        for (&k, &c) in &counts {
            if c < 3 {
                continue;
            }
            let f = loo_share(total.get(k as usize).copied().unwrap_or(0), n_keyed, c, n);
            let pv = binomial_upper(c, n, f);
            if best.is_none_or(|b| (pv, k) < (b.2, b.0)) {
                best = Some((k, c, pv, f));
            }
        }
        let (k, c, pv, f) = best?;
        let pv = (pv * counts.len() as f64).min(1.0);
        let orders_of_key: Vec<u32> = mine
            .iter()
            .copied()
            .filter(|&i| key(&d.orders[i as usize]) == Some(k))
            .collect();
        let subset: Vec<u32> = orders_of_key
            .iter()
            .flat_map(|&o| reviews_of_order.of(o).iter().copied())
            .collect();
        let in_subset: std::collections::HashSet<u32> = subset.iter().copied().collect();
        let rest: Vec<u32> = d.audited_of(p).filter(|i| !in_subset.contains(i)).collect();
        let mut cand = Candidate::new(
            FAMILY,
            test,
            Subject::Product(d.products[p].clone()),
            pv,
            Effect { name: "observed / expected".into(), value: c as f64 / (f * n as f64) },
            format!(
                "{c} of {n} orders of {} went to one {what} (hashed), where the catalog predicts {:.2}; {} linked reviews came from those orders.",
                d.products[p],
                f * n as f64,
                subset.len()
            ),
        );
        cand.effect_ok = c as f64 >= 5.0 * f * n as f64;
        cand.p_rating = rating_question(d, cfg, &subset, &rest);
        cand.reviews = subset;
        cand.review_strength = 0.6;
        Some(cand)
    };
    for part in super::in_runs(d.products.len(), PRODUCTS_PER_JOB, |range| {
        range.filter_map(product).collect::<Vec<_>>()
    }) {
        out.candidates.extend(part);
    }
}

/// Products per job of the per-product concentration test.
const PRODUCTS_PER_JOB: usize = 32;

fn order_bursts(d: &AuditData, cfg: &AuditConfig, out: &mut FamilyOutput) {
    let len = (d.to_day - d.first_day + 1).max(1) as usize;
    let b = cfg.burst_baseline_days.max(7) as usize;
    let mut raw: Vec<(usize, usize, u64, f64, f64, f64)> = Vec::new(); // product, day offset, x, λ, p, promo share
    for p in 0..d.products.len() {
        let mut x = vec![0u64; len];
        let mut promo = vec![0u64; len];
        for &i in &d.orders_by_product[p] {
            let o = &d.orders[i as usize];
            let k = o.day() - d.first_day;
            if k >= 0 && (k as usize) < len {
                x[k as usize] += 1;
                promo[k as usize] += o.promo as u64;
            }
        }
        let total: u64 = x.iter().sum();
        if total < cfg.orders_min {
            continue;
        }
        let mean = total as f64 / len as f64;
        for day in (d.from_day - d.first_day).max(0) as usize..len {
            if x[day] == 0 {
                continue;
            }
            let (lo, hi) = if day >= b / 2 {
                (day.saturating_sub(b), day)
            } else {
                (day + 1, (day + 1 + b).min(len))
            };
            let base: u64 = x[lo..hi].iter().sum();
            let lambda = ((base as f64 + mean * 7.0) / ((hi - lo) as f64 + 7.0)).max(0.05);
            raw.push((
                p,
                day,
                x[day],
                lambda,
                poisson_upper(x[day], lambda),
                promo[day] as f64 / x[day] as f64,
            ));
        }
    }
    let q = benjamini_hochberg(&raw.iter().map(|r| r.4).collect::<Vec<_>>());
    // product, first day, last day, p, q, orders, expected, promotion share
    type Merged = (usize, usize, usize, f64, f64, u64, f64, f64);
    let mut merged: Vec<Merged> = Vec::new();
    for (r, qv) in raw.iter().zip(q) {
        if !(qv < cfg.fdr && r.2 >= 10 && r.2 as f64 >= 3.0 * r.3) {
            continue;
        }
        match merged.last_mut() {
            Some(m) if m.0 == r.0 && r.1 <= m.2 + 1 => {
                m.2 = r.1;
                m.3 = m.3.min(r.4);
                m.4 = m.4.min(qv);
                m.5 += r.2;
                m.6 += r.3;
                m.7 = m.7.max(r.5);
            }
            _ => merged.push((r.0, r.1, r.1, r.4, qv, r.2, r.3, r.5)),
        }
    }
    for (p, from, to, pv, qv, x, lambda, promo) in merged {
        // An order surge carried by a promotion is what promotions do: not a finding.
        if promo >= 0.5 {
            continue;
        }
        let (f, t) = (d.first_day + from as i64, d.first_day + to as i64);
        let mut c = Candidate::new(
            FAMILY,
            "order_burst",
            Subject::Product(d.products[p].clone()),
            pv,
            Effect {
                name: "observed / expected".into(),
                value: x as f64 / lambda,
            },
            format!(
                "{x} orders of {} on {}..{} without a promotion, {:.1}x the usual {:.1}.",
                d.products[p],
                day_str(f),
                day_str(t),
                x as f64 / lambda,
                lambda
            ),
        );
        c.q = Some(qv);
        c.window = Some((f, t));
        c.max_verdict = Verdict::Warn;
        out.candidates.push(c);
    }
}
