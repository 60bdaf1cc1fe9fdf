//! Engine tests on small in-memory datasets: each statistic on data built to show (or not show) it.

use crate::config::AuditConfig;
use crate::findings::{Subject, Verdict};
use crate::ingest::schema::{OrderLine, Review};
use crate::ingest::timestamp::TimeResolution;
use crate::ingest::{link_reviews, Dataset};

use super::data::AuditData;
use super::{analyze, Analysis};

const DAY: i64 = 86_400;
const T0: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

struct B {
    ds: Dataset,
    n: u64,
}

impl B {
    fn new() -> B {
        B {
            ds: Dataset::default(),
            n: 0,
        }
    }
    #[allow(clippy::too_many_arguments)]
    fn review(
        &mut self,
        product: &str,
        reviewer: &str,
        rating: u8,
        t: i64,
        text: Option<&str>,
        verified: Option<bool>,
        order: Option<&str>,
    ) {
        self.n += 1;
        self.ds.reviews.push(Review {
            review_id: format!("r{}", self.n).into(),
            product: self.ds.products.intern(product),
            reviewer_id: self.ds.strings.reviewer_ids.push(reviewer),
            rating,
            created_at: t,
            resolution: TimeResolution::Second,
            text: text.map_or(crate::ingest::schema::StrRef::NONE, |t| {
                self.ds.strings.texts.push(t)
            }),
            verified,
            order_key: order.map(crate::ingest::order_key),
            reviewer_key: None,
            ip_key: None,
            source: 0,
            line: crate::ingest::schema::record_line(self.n),
            linked_order: crate::ingest::schema::OptIdx::NONE,
            assigned_id: false,
        });
    }
    fn order(&mut self, id: &str, product: &str, t: i64) {
        self.ds.orders.push(OrderLine {
            order_id: id.into(),
            item: crate::ingest::schema::item_key(None, product, None),
            purchased_at: t,
            resolution: TimeResolution::Second,
            shipped: true,
            free: false,
            promo: false,
            product: self.ds.products.intern(product),
            quantity: 1,
            item_price: 10.0,
            buyer_key: None,
            address_key: None,
            postal_key: None,
            source: 0,
            line: 0,
        });
    }
    fn run(mut self, cfg: &AuditConfig) -> (Analysis, AuditData) {
        self.ds.orders.sort_by_key(|o| o.purchased_at);
        self.ds.reviews.sort_by_key(|r| r.created_at);
        link_reviews(&mut self.ds);
        let mut d = AuditData::build(&mut self.ds, cfg, None);
        (analyze(&mut d, cfg, &|_| {}), d)
    }
}

/// A quiet catalog: `products` products with a steady trickle of mixed organic reviews.
fn background(b: &mut B, products: usize, days: i64) {
    let mut k = 0u64;
    for p in 0..products {
        for d in (0..days).step_by(3) {
            k += 1;
            let rating = [5, 5, 4, 5, 3, 5, 1, 4, 5, 2][(k % 10) as usize];
            let hour = 9 + (k * 7 % 12) as i64;
            b.review(
                &format!("P{p}"),
                &format!("bg{k}"),
                rating,
                T0 + d * DAY + hour * 3600,
                None,
                None,
                None,
            );
        }
    }
}

/// A small deterministic generator (64-bit LCG, upper bits).
fn lcg(seed: u64) -> impl FnMut() -> usize {
    let mut x = seed;
    move || {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (x >> 33) as usize
    }
}

fn verdict_of(a: &Analysis, product: &str) -> Verdict {
    a.products
        .iter()
        .find(|p| p.product_id == product)
        .map(|p| p.verdict)
        .unwrap_or(Verdict::Pass)
}

fn has_finding(a: &Analysis, test: &str, product: &str) -> bool {
    a.findings
        .iter()
        .any(|f| f.test == test && f.subject == Subject::Product(product.into()))
}

#[test]
fn steady_skewed_ratings_pass() {
    let mut b = B::new();
    background(&mut b, 6, 120);
    // A product that really is 95% five-star, steadily.
    // Poisson arrivals, about one a day (exponential gaps from a fixed LCG).
    let (mut x, mut t, mut k) = (11u64, T0 as f64, 0);
    while t < (T0 + 120 * DAY) as f64 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let u = ((x >> 11) as f64 / (1u64 << 53) as f64).max(1e-12);
        t += -u.ln() * DAY as f64;
        k += 1;
        // Same daily cycle as the background.
        let at = (t as i64).div_euclid(DAY) * DAY + (9 + (k * 7 % 12) as i64) * 3600;
        b.review(
            "GOOD",
            &format!("g{k}"),
            if k % 20 == 0 { 4 } else { 5 },
            at,
            None,
            None,
            None,
        );
    }
    let (a, _) = b.run(&AuditConfig::default());
    assert_eq!(
        verdict_of(&a, "GOOD"),
        Verdict::Pass,
        "{:#?}",
        a.findings
            .iter()
            .filter(|f| f.subject.id() == "GOOD")
            .collect::<Vec<_>>()
    );
}

#[test]
fn a_burst_without_orders_fails_and_names_the_days() {
    let mut b = B::new();
    background(&mut b, 6, 120);
    for k in 0..25 {
        b.review(
            "P2",
            &format!("burst{k}"),
            5,
            T0 + 80 * DAY + k * 1800,
            None,
            None,
            None,
        );
    }
    let (a, d) = b.run(&AuditConfig::default());
    let f = a
        .findings
        .iter()
        .find(|f| f.test == "burst" && f.subject.id() == "P2")
        .expect("burst found");
    assert_eq!(
        f.window.as_ref().map(|w| w.from.as_str()),
        Some("2026-03-22")
    );
    assert_eq!(f.evidence.review_ids.len(), 25);
    assert!(f.q < 1e-6);
    assert_eq!(verdict_of(&a, "P2"), Verdict::Fail);
    // The burst reviews carry the reason and score above the background.
    let burst_scores: Vec<f64> = a
        .reviews
        .iter()
        .filter(|r| {
            d.reviewers[d.reviews[r.review as usize].reviewer as usize].starts_with("burst")
        })
        .map(|r| r.score)
        .collect();
    let bg_max = a
        .reviews
        .iter()
        .filter(|r| d.products[d.reviews[r.review as usize].product as usize] == "P0")
        .map(|r| r.score)
        .fold(0.0, f64::max);
    assert!(
        burst_scores.iter().all(|&s| s > bg_max),
        "burst {burst_scores:?} vs background max {bg_max}"
    );
}

#[test]
fn a_review_surge_that_follows_an_order_surge_is_expected() {
    let mut b = B::new();
    background(&mut b, 6, 150);
    // 4 orders a day, 5% reviewed about ten days later; a promotion multiplies orders by 8 for 5 days.
    let mut k = 0;
    for d in 0..150i64 {
        let n = if (70..75).contains(&d) { 32 } else { 4 };
        for j in 0..n {
            k += 1;
            let t = T0 + d * DAY + (8 + j % 12) * 3600;
            let id = format!("o{k}");
            b.order(&id, "PROMO", t);
            if k % 20 == 0 {
                b.review(
                    "PROMO",
                    &format!("buyer{k}"),
                    5,
                    t + (8 + k % 7) * DAY,
                    None,
                    Some(true),
                    Some(&id),
                );
            }
        }
    }
    let (a, _) = b.run(&AuditConfig::default());
    assert!(
        !has_finding(&a, "burst", "PROMO"),
        "{:#?}",
        a.findings
            .iter()
            .filter(|f| f.subject.id() == "PROMO")
            .collect::<Vec<_>>()
    );
    assert_ne!(verdict_of(&a, "PROMO"), Verdict::Fail);
}

#[test]
fn reviews_hours_after_purchase_are_too_fast() {
    let mut b = B::new();
    background(&mut b, 4, 100);
    let mut k = 0;
    for d in 0..100i64 {
        for j in 0..3 {
            k += 1;
            let t = T0 + d * DAY + (9 + j) * 3600;
            let id = format!("o{k}");
            b.order(&id, "FAST", t);
            if k % 10 == 0 {
                b.review(
                    "FAST",
                    &format!("org{k}"),
                    [5, 4, 3, 5, 2][k % 5],
                    t + 12 * DAY,
                    None,
                    Some(true),
                    Some(&id),
                );
            } else if d >= 60 && k % 4 == 1 {
                b.review(
                    "FAST",
                    &format!("fast{k}"),
                    5,
                    t + 2 * 3600,
                    None,
                    Some(true),
                    Some(&id),
                );
            }
        }
    }
    let (a, d) = b.run(&AuditConfig::default());
    let f = a
        .findings
        .iter()
        .find(|f| f.test == "lag_too_fast")
        .expect("too-fast finding");
    assert_eq!(f.subject, Subject::Product("FAST".into()));
    assert!(f
        .evidence
        .reviewer_ids
        .iter()
        .all(|r| r.starts_with("fast")));
    assert!(a
        .reviews
        .iter()
        .filter(|r| d.reviewers[d.reviews[r.review as usize].reviewer as usize].starts_with("fast"))
        .all(|r| r.reasons.contains("too_fast")));
}

#[test]
fn a_lockstep_ring_is_one_group_without_its_camouflage() {
    let mut b = B::new();
    background(&mut b, 8, 150);
    let ring: Vec<String> = (0..6).map(|i| format!("ring{i}")).collect();
    for (k, p) in ["P1", "P3", "P5", "P6"].iter().enumerate() {
        for (i, m) in ring.iter().enumerate() {
            b.review(
                p,
                m,
                5,
                T0 + (20 + 25 * k as i64) * DAY + i as i64 * 7200,
                None,
                None,
                None,
            );
        }
    }
    // Camouflage: the same accounts review P0 at unrelated times.
    for (i, m) in ring.iter().enumerate() {
        b.review("P0", m, 4, T0 + (3 + 23 * i as i64) * DAY, None, None, None);
    }
    let (a, _) = b.run(&AuditConfig::default());
    assert_eq!(a.groups.len(), 1, "{:#?}", a.groups);
    let g = &a.groups[0];
    assert_eq!(g.members, ring);
    assert_eq!(g.products, vec!["P1", "P3", "P5", "P6"]);
    assert!(g.q < 1e-6);
    for p in ["P1", "P3", "P5", "P6"] {
        assert!(has_finding(&a, "lockstep_group_product", p), "{p}");
    }
    assert!(!has_finding(&a, "lockstep_group_product", "P0"));
}

#[test]
fn busy_regular_customers_are_not_a_lockstep_group() {
    // 200 regular customers, 60 reviews each at random times over 180 days on 40 products: any
    // two of them share many products, so some co-reviews fall within a week by chance. Beside
    // them a ring of six accounts reviews four products within hours of each other.
    let mut b = B::new();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for u in 0..200 {
        for _ in 0..60 {
            let p = next() % 40;
            let t = T0 + (next() % (180 * DAY as u64)) as i64;
            b.review(&format!("P{p}"), &format!("reg{u}"), 4, t, None, None, None);
        }
    }
    let ring: Vec<String> = (0..6).map(|i| format!("ring{i}")).collect();
    for (k, p) in ["P1", "P3", "P5", "P6"].iter().enumerate() {
        for (i, m) in ring.iter().enumerate() {
            let t = T0 + (20 + 25 * k as i64) * DAY + i as i64 * 7200;
            b.review(p, m, 5, t, None, None, None);
        }
    }
    let cfg = AuditConfig::default();
    let (a, d) = b.run(&cfg);
    assert_eq!(a.groups.len(), 1, "{:#?}", a.groups);
    assert_eq!(a.groups[0].members, ring);
    // Every ring pair is kept; of the regulars' pairs hardly any.
    let pairs = super::overlap::lockstep_pairs(&d, &cfg);
    let is_ring = |u: u32| d.reviewers[u as usize].starts_with("ring");
    let ring_pairs = pairs
        .iter()
        .filter(|&&(u, v)| is_ring(u) && is_ring(v))
        .count();
    assert_eq!(ring_pairs, 15);
    assert!(pairs.len() - ring_pairs <= 5, "{}", pairs.len());
}

#[test]
fn regular_customers_of_many_products_do_not_tie_products_together() {
    // 600 products, each with 20 one-time reviewers; 30 regular customers each review P0..P9 and
    // 50 of the other 590. A regular with 60 products says nothing about P0..P9 in particular,
    // though they make 60% of those products' reviewers (about 11% elsewhere).
    let mut b = B::new();
    let mut k = 0i64;
    for p in 0..600 {
        for j in 0..20 {
            k += 1;
            let t = T0 + (j * 7 + p % 5) * DAY + (k % 11) * 3600;
            b.review(
                &format!("P{p}"),
                &format!("once{k}"),
                4,
                t,
                None,
                None,
                None,
            );
        }
    }
    for u in 0..30i64 {
        let others = (0..50).map(|j| 10 + (u * 37 + j) % 590);
        for p in (0..10).chain(others) {
            let t = T0 + ((u * 13 + p * 3) % 140) * DAY + 5 * 3600;
            b.review(&format!("P{p}"), &format!("reg{u}"), 4, t, None, None, None);
        }
    }
    let (a, _) = b.run(&AuditConfig::default());
    for p in 0..10 {
        assert!(
            !has_finding(&a, "shared_reviewers", &format!("P{p}")),
            "P{p}"
        );
    }
}

#[test]
fn a_products_own_name_is_not_a_repeated_phrase() {
    // Eight products with varied short texts; a fifth of P1's reviews name it ("garlic press").
    let build = |with_name: bool| {
        let mut b = B::new();
        let words = [
            "sturdy", "light", "handle", "grip", "kitchen", "drawer", "smell", "plastic", "metal",
            "finish", "gift", "sister", "office", "weekend", "battery", "strap", "colour", "shelf",
        ];
        let mut next = lcg(11);
        let mut k = 0;
        for p in 0..8 {
            for day in 0..50 {
                k += 1;
                let mut text: Vec<&str> = (0..6).map(|_| words[next() % words.len()]).collect();
                if p == 1 && day % 5 == 0 {
                    text.extend(["my", "garlic", "press", "arrived"]);
                }
                let rating = [5, 4, 5, 3, 5][day % 5];
                b.review(
                    &format!("P{p}"),
                    &format!("u{k}"),
                    rating,
                    T0 + day as i64 * DAY + (k % 9) as i64 * 3600,
                    Some(&text.join(" ")),
                    None,
                    None,
                );
            }
        }
        if with_name {
            b.ds.product_names
                .insert("P1".into(), "Garlic Press, stainless".into());
        }
        b.run(&AuditConfig::default()).0
    };
    assert!(has_finding(&build(false), "phrase_repetition", "P1"));
    assert!(!has_finding(&build(true), "phrase_repetition", "P1"));
}

#[test]
fn near_duplicate_texts_across_accounts() {
    let mut b = B::new();
    const WORDS: &[&str] = &[
        "hinge",
        "garage",
        "squeaks",
        "colour",
        "shelf",
        "darker",
        "photo",
        "packaging",
        "torn",
        "inside",
        "setup",
        "minutes",
        "sturdy",
        "light",
        "handle",
        "grip",
        "kitchen",
        "drawer",
        "smell",
        "plastic",
        "metal",
        "finish",
        "scratch",
        "gift",
        "sister",
        "office",
        "desk",
        "weekend",
        "camping",
        "rain",
        "winter",
        "battery",
        "charge",
        "button",
        "strap",
        "zipper",
    ];
    let mut next = lcg(7);
    for d in 0..60 {
        for p in 0..3 {
            let text: Vec<&str> = (0..16).map(|_| WORDS[next() % WORDS.len()]).collect();
            b.review(
                &format!("P{p}"),
                &format!("u{d}_{p}"),
                4,
                T0 + d * DAY,
                Some(&text.join(" ")),
                None,
                None,
            );
        }
    }
    let tmpl = "This wonderful product is truly amazing and exceeded all of my expectations, the quality is premium and it arrived very quickly, I recommend it to everyone";
    for k in 0..8 {
        let t = tmpl.replace("truly", ["truly", "really", "simply", "just"][k % 4]);
        b.review(
            "P1",
            &format!("dup{k}"),
            5,
            T0 + (30 + k as i64) * DAY,
            Some(&t),
            None,
            None,
        );
    }
    let (a, _) = b.run(&AuditConfig::default());
    let f = a
        .findings
        .iter()
        .find(|f| f.test == "near_duplicates")
        .expect("near-duplicate finding");
    assert_eq!(f.subject, Subject::Product("P1".into()));
    assert_eq!(f.evidence.reviewer_ids.len(), 8);
    assert!(f.evidence.reviewer_ids.iter().all(|r| r.starts_with("dup")));
}

#[test]
fn degrades_without_orders_time_of_day_or_text() {
    let mut b = B::new();
    background(&mut b, 5, 90);
    for r in b.ds.reviews.iter_mut() {
        r.resolution = TimeResolution::Day;
        r.created_at = r.created_at.div_euclid(DAY) * DAY;
    }
    let (a, d) = b.run(&AuditConfig::default());
    assert!(!d.second_resolution && !d.has_orders && !d.has_text);
    let not_run: Vec<&str> = a.not_run.iter().map(|n| n.test.as_str()).collect();
    for t in [
        "lag_too_fast",
        "hour_profile",
        "night_share",
        "near_duplicates",
        "review_rate",
        "unverified_share",
    ] {
        assert!(
            not_run.contains(&t),
            "{t} should say why it did not run: {not_run:?}"
        );
    }
    assert!(a.not_run.iter().all(|n| !n.reason.is_empty()));
    // The rest still ran and scored every review.
    assert_eq!(a.reviews.len(), d.reviews.len());
    assert!(a.tallies.contains_key("burst") || a.tallies.contains_key("singleton_share"));
}

#[test]
fn the_audited_window_limits_scores_but_keeps_the_baseline() {
    let mut b = B::new();
    background(&mut b, 4, 120);
    let cfg = AuditConfig::default();
    b.ds.orders.sort_by_key(|o| o.purchased_at);
    b.ds.reviews.sort_by_key(|r| r.created_at);
    let from = T0 / DAY + 90;
    let mut d = AuditData::build(&mut b.ds, &cfg, Some((from, from + 29)));
    let a = analyze(&mut d, &cfg, &|_| {});
    assert!(
        a.reviews
            .iter()
            .all(|r| d.reviews[r.review as usize].day() >= from),
        "only the period is scored"
    );
    assert!(
        d.reviews.iter().any(|r| !r.audited),
        "earlier reviews stay as baseline"
    );
}

#[test]
fn incentive_disclaimers_are_found_whatever_the_case_and_script() {
    let mut b = B::new();
    background(&mut b, 6, 60);
    let texts = [
        "I got this AT A DISCOUNT in exchange for my Honest Review.",
        "received this product FREE from the brand",
        "Produkt kostenlos erhalten — my Unbiased Review follows ✓",
        "Free Of Charge sample, works well",
        "Great value, works as described.",
        "ΚΑΛΌ προϊόν, no complaints at all",
    ];
    for (k, t) in texts.iter().cycle().take(24).enumerate() {
        b.review(
            "GIFT",
            &format!("g{k}"),
            5,
            T0 + (k as i64 * 2 + 1) * DAY + 11 * 3600,
            Some(t),
            None,
            None,
        );
    }
    let (a, d) = b.run(&AuditConfig::default());
    let flagged: Vec<&str> = a
        .reviews
        .iter()
        .filter(|r| r.reasons.contains("incentive_disclaimer"))
        .filter_map(|r| d.text(&d.reviews[r.review as usize]))
        .collect();
    // Four of every six texts carry a disclaimer (upper case, mixed case, after non-ASCII text).
    assert_eq!(flagged.len(), 16, "{flagged:?}");
    assert!(flagged
        .iter()
        .all(|t| !t.starts_with("Great") && !t.starts_with("ΚΑΛΌ")));
}

/// Accounts behind one IP that reviewed the same product are reported for that product (and only
/// it), and kinds no record carries (emails, linked orders' buyers) report nothing.
#[test]
fn accounts_sharing_an_ip_are_reported_per_product() {
    let mut b = B::new();
    background(&mut b, 6, 60);
    let ip = crate::ingest::schema::Key::new(42).unwrap();
    for (k, who) in ["ring1", "ring2", "ring3"].iter().enumerate() {
        for (p, day) in [("P2", 10), ("P4", 20 + k as i64 * 9)] {
            b.review(
                p,
                who,
                5,
                T0 + day * DAY + k as i64 * 3600,
                None,
                None,
                None,
            );
            if p == "P2" {
                b.ds.reviews.last_mut().unwrap().ip_key = Some(ip);
            }
        }
    }
    let (a, _) = b.run(&AuditConfig::default());
    assert!(has_finding(&a, "shared_ip", "P2"), "{:?}", a.findings);
    for p in ["P0", "P1", "P3", "P4", "P5"] {
        assert!(!has_finding(&a, "shared_ip", p), "{p}");
    }
    assert!(!a
        .findings
        .iter()
        .any(|f| f.test == "shared_email" || f.test == "shared_buyer"));
}
