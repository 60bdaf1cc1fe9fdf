//! Seeded generator of realistic exports with labelled attacks (`revaudit generate`).
//!
//! Owns: organic shop behaviour (popularity skew, weekly and daily cycles in the shop's local time,
//! a benign promotion, review probability of a few percent with a days-to-weeks lag, J-shaped
//! ratings, repeat reviewers, varied text) and eight kinds of labelled manipulation. Writes
//! `orders.tsv` (amazon-all-orders), `reviews.jsonl` (amazon-reviews-2023), `reviews_linked.csv`
//! (generic, with order ids) and `labels.json`. Everything streams to disk, so scale is bounded by
//! disk, not memory. Must not: read the clock or any global randomness (same seed, same bytes).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// Generator settings.
#[derive(Debug, Clone, Serialize)]
pub struct SynthParams {
    /// Seed.
    pub seed: u64,
    /// Products in the catalog.
    pub products: usize,
    /// Days covered.
    pub days: u32,
    /// Multiplier on organic order volume.
    pub scale: f64,
    /// Multiplier on the organic review probability.
    pub review_rate: f64,
    /// First day.
    pub start: NaiveDate,
    /// Write `.gz` files.
    pub gzip: bool,
}

/// The shop's local time zone (daily and weekly cycles follow it).
pub const SHOP_TZ: Tz = chrono_tz::America::New_York;

/// One labelled attack.
#[derive(Debug, Clone, Serialize)]
pub struct Attack {
    /// review_ring, burst, fast_after_purchase, night_posting, near_duplicate_text,
    /// camouflaged_ring, slow_drip, one_star_bombing.
    pub kind: String,
    /// Attacked products.
    pub products: Vec<String>,
    /// Accounts used.
    pub reviewers: Vec<String>,
    /// Fake reviews on the attacked products.
    pub review_ids: Vec<String>,
    /// Reviews the accounts wrote elsewhere to look normal (camouflage).
    pub camouflage_review_ids: Vec<String>,
    /// Days of the attack (UTC, inclusive).
    pub from: String,
    /// Last day.
    pub to: String,
    /// What a good audit should say about the attacked products: `fail` or `warn`.
    pub expected_verdict: String,
}

/// labels.json.
#[derive(Debug, Serialize)]
pub struct Labels {
    /// Generator settings.
    pub params: SynthParams,
    /// How review ids are formed.
    pub review_id_scheme: String,
    /// The shop's time zone.
    pub shop_time_zone: String,
    /// Labelled attacks.
    pub attacks: Vec<Attack>,
    /// The benign promotion: reviews follow its orders; must not fail.
    pub promotion: Promotion,
    /// Products touched by no attack (camouflage aside).
    pub clean_products: Vec<String>,
    /// Products with a mediocre rating profile (organic).
    pub mediocre_products: Vec<String>,
    /// Counts written.
    pub counts: BTreeMap<String, u64>,
}

/// The benign promotion.
#[derive(Debug, Clone, Serialize)]
pub struct Promotion {
    /// Product.
    pub product: String,
    /// First day.
    pub from: String,
    /// Last day.
    pub to: String,
    /// Order multiplier.
    pub multiplier: f64,
}

struct Product {
    asin: String,
    sku: String,
    name: String,
    price: f64,
    base_rate: f64,
    review_prob: f64,
    rating_weights: [f64; 5],
}

const ADJ: &[&str] = &[
    "Stainless",
    "Bamboo",
    "Compact",
    "Premium",
    "Foldable",
    "Wireless",
    "Ceramic",
    "Silicone",
    "Heavy-Duty",
    "Portable",
    "Adjustable",
    "Magnetic",
    "Insulated",
    "Rechargeable",
    "Vintage",
    "Ergonomic",
];
const NOUN: &[&str] = &[
    "Garlic Press",
    "Cutting Board",
    "Phone Stand",
    "Water Bottle",
    "Desk Lamp",
    "Spice Rack",
    "Yoga Mat",
    "Travel Mug",
    "Cable Organizer",
    "Knife Sharpener",
    "Shower Caddy",
    "Laptop Sleeve",
    "Tea Infuser",
    "Bike Light",
    "Plant Pot",
    "Measuring Cups",
    "Door Stopper",
    "Pill Organizer",
    "Dish Rack",
    "Key Holder",
];
const CITIES: &[(&str, &str)] = &[
    ("NEW YORK", "NY"),
    ("BROOKLYN", "NY"),
    ("AUSTIN", "TX"),
    ("HOUSTON", "TX"),
    ("CHICAGO", "IL"),
    ("SEATTLE", "WA"),
    ("PORTLAND", "OR"),
    ("DENVER", "CO"),
    ("ATLANTA", "GA"),
    ("MIAMI", "FL"),
    ("BOSTON", "MA"),
    ("PHOENIX", "AZ"),
    ("COLUMBUS", "OH"),
    ("MEMPHIS", "TN"),
    ("SAN DIEGO", "CA"),
    ("SACRAMENTO", "CA"),
    ("NEWARK", "NJ"),
    ("RALEIGH", "NC"),
    ("MADISON", "WI"),
    ("TUCSON", "AZ"),
];

/// Writers for the four outputs.
struct Out {
    orders: Box<dyn Write>,
    reviews: Box<dyn Write>,
    linked: csv::Writer<Box<dyn Write>>,
    review_index: u64,
    order_lines: u64,
    next_order: u64,
}

fn open(path: &Path, gzip: bool) -> Result<Box<dyn Write>> {
    let f = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let w = BufWriter::with_capacity(1 << 20, f);
    Ok(if gzip {
        Box::new(flate2::write::GzEncoder::new(
            w,
            flate2::Compression::new(6),
        ))
    } else {
        Box::new(w)
    })
}

const ORDER_HEADER: &str = "amazon-order-id\tmerchant-order-id\tpurchase-date\tlast-updated-date\torder-status\tfulfillment-channel\tsales-channel\torder-channel\tship-service-level\tproduct-name\tsku\tasin\titem-status\tquantity\tcurrency\titem-price\titem-tax\tshipping-price\tshipping-tax\tgift-wrap-price\tgift-wrap-tax\titem-promotion-discount\tship-promotion-discount\tship-city\tship-state\tship-postal-code\tship-country\tpromotion-ids\tcpf\tis-business-order\tpurchase-order-number\tprice-designation";

#[derive(Serialize)]
struct JsonReview<'a> {
    rating: f64,
    title: &'a str,
    text: &'a str,
    images: [u8; 0],
    asin: &'a str,
    parent_asin: &'a str,
    user_id: &'a str,
    timestamp: i64,
    helpful_vote: u32,
    verified_purchase: bool,
}

/// An order placed by the generator.
struct PlacedOrder {
    id: String,
    at: i64,
}

/// A review to write.
struct NewReview<'a> {
    product: &'a Product,
    reviewer: &'a str,
    rating: u8,
    at: i64,
    title: String,
    text: String,
    verified: bool,
    order_id: Option<&'a str>,
}

struct Gen {
    rng: ChaCha8Rng,
    p: SynthParams,
    end_ts: i64,
    zips: Vec<(String, usize)>,
}

impl Gen {
    fn uniform(&mut self) -> f64 {
        self.rng.random::<f64>()
    }

    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.rng.random_range(0..v.len())]
    }

    fn weighted(&mut self, w: &[f64]) -> usize {
        let total: f64 = w.iter().sum();
        let mut x = self.uniform() * total;
        for (i, wi) in w.iter().enumerate() {
            if x < *wi {
                return i;
            }
            x -= wi;
        }
        w.len() - 1
    }

    fn poisson(&mut self, lambda: f64) -> u64 {
        if lambda <= 0.0 {
            return 0;
        }
        if lambda > 40.0 {
            // Normal approximation (Box–Muller).
            let (u1, u2) = (self.uniform().max(1e-12), self.uniform());
            let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
            return (lambda + z * lambda.sqrt()).round().max(0.0) as u64;
        }
        let l = (-lambda).exp();
        let mut k = 0;
        let mut p = 1.0;
        loop {
            p *= self.uniform();
            if p <= l {
                return k;
            }
            k += 1;
        }
    }

    fn normal(&mut self) -> f64 {
        let (u1, u2) = (self.uniform().max(1e-12), self.uniform());
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    fn alnum(&mut self, n: usize) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        (0..n)
            .map(|_| A[self.rng.random_range(0..A.len())] as char)
            .collect()
    }

    fn user_id(&mut self) -> String {
        format!("A{}", self.alnum(27))
    }

    /// An hour of the day in local time, following an online-shopping daily cycle.
    fn local_hour(&mut self) -> u32 {
        const W: [f64; 24] = [
            1.2, 0.7, 0.4, 0.3, 0.3, 0.5, 1.0, 1.8, 2.6, 3.2, 3.6, 3.9, 4.2, 4.1, 3.9, 3.8, 3.9,
            4.2, 4.6, 5.0, 5.2, 4.8, 3.6, 2.2,
        ];
        self.weighted(&W) as u32
    }

    /// A UTC instant on local day `day` (0-based from start) at local hour `hour`.
    fn local_instant(&mut self, day: i64, hour: u32) -> i64 {
        let date = self.p.start + Duration::days(day);
        let secs_in_hour = self.rng.random_range(0..3600);
        let ndt =
            date.and_hms_opt(hour, 0, 0).unwrap_or_default() + Duration::seconds(secs_in_hour);
        local_to_utc(ndt)
    }

    fn order_id(&mut self, out: &mut Out) -> String {
        out.next_order += 1;
        let a = self.rng.random_range(100..999);
        let b = self.rng.random_range(1_000_000..9_999_999);
        format!("{a}-{b}-{:07}", out.next_order % 10_000_000)
    }

    fn zip(&mut self) -> (String, usize) {
        let i = self.rng.random_range(0..self.zips.len());
        self.zips[i].clone()
    }

    #[allow(clippy::too_many_arguments)]
    fn write_order(
        &mut self,
        out: &mut Out,
        prod: &Product,
        at: i64,
        qty: u32,
        zip: Option<(String, usize)>,
        discount_full: bool,
        promotion: Option<&str>,
    ) -> Result<PlacedOrder> {
        let id = self.order_id(out);
        let (zip, city_i) = zip.unwrap_or_else(|| self.zip());
        let (city, state) = CITIES[city_i];
        let cancelled = self.uniform() < 0.02;
        let pending = at > self.end_ts - 2 * 86_400;
        let (status, item_status) = if cancelled {
            ("Cancelled", "Cancelled")
        } else if pending {
            ("Pending", "Unshipped")
        } else {
            ("Shipped", "Shipped")
        };
        let price = prod.price * qty as f64;
        let price_s = if pending {
            String::new()
        } else {
            format!("{price:.2}")
        };
        let tax = format!("{:.2}", price * 0.08);
        let disc = if discount_full {
            format!("-{price:.2}")
        } else {
            "0.00".into()
        };
        let zip_out = if self.uniform() < 0.3 {
            format!("{zip}-{:04}", self.rng.random_range(0..10_000))
        } else {
            zip
        };
        let date = fmt_amazon(at);
        let updated = fmt_amazon(at + self.rng.random_range(3600..3 * 86_400));
        writeln!(
            out.orders,
            "{id}\t\t{date}\t{updated}\t{status}\tAmazon\tAmazon.com\t\tStandard\t{name}\t{sku}\t{asin}\t{item_status}\t{qty}\tUSD\t{price_s}\t{tax}\t0.00\t0.00\t\t\t{disc}\t0.00\t{city}\t{state}\t{zip_out}\tUS\t{promo}\t\tfalse\t\t",
            name = prod.name,
            sku = prod.sku,
            asin = prod.asin,
            promo = promotion.unwrap_or(""),
        )?;
        out.order_lines += 1;
        Ok(PlacedOrder { id, at })
    }

    fn write_review(&mut self, out: &mut Out, r: NewReview) -> Result<String> {
        let id = format!("reviews#{}", out.review_index);
        out.review_index += 1;
        let helpful = if self.uniform() < 0.15 {
            self.rng.random_range(1..20)
        } else {
            0
        };
        let j = JsonReview {
            rating: r.rating as f64,
            title: &r.title,
            text: &r.text,
            images: [],
            asin: &r.product.asin,
            parent_asin: &r.product.asin,
            user_id: r.reviewer,
            timestamp: r.at * 1000 + self.rng.random_range(0..1000),
            helpful_vote: helpful,
            verified_purchase: r.verified,
        };
        serde_json::to_writer(&mut out.reviews, &j)?;
        out.reviews.write_all(b"\n")?;
        out.linked.write_record([
            id.as_str(),
            &r.product.asin,
            r.reviewer,
            &r.rating.to_string(),
            &fmt_rfc3339(r.at),
            &r.title,
            &r.text,
            if r.verified { "true" } else { "false" },
            r.order_id.unwrap_or(""),
        ])?;
        Ok(id)
    }

    fn rating(&mut self, p: &Product) -> u8 {
        self.weighted(&p.rating_weights) as u8 + 1
    }

    fn organic_text(&mut self, p: &Product, rating: u8) -> (String, String) {
        let noun = p
            .name
            .split(' ')
            .skip(1)
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase();
        let good_titles = [
            "Great buy",
            "Does the job",
            "Love it",
            "Exactly what I needed",
            "Solid",
            "Very happy",
            "Nice quality",
            "Recommended",
        ];
        let mid_titles = [
            "It's okay",
            "Decent",
            "Mixed feelings",
            "Not bad, not great",
            "Average",
        ];
        let bad_titles = [
            "Disappointed",
            "Broke quickly",
            "Not as pictured",
            "Returned it",
            "Poor quality",
        ];
        let title = match rating {
            4..=5 => self.pick(&good_titles).to_string(),
            3 => self.pick(&mid_titles).to_string(),
            _ => self.pick(&bad_titles).to_string(),
        };
        let openers = [
            format!(
                "Bought this {noun} for my {}.",
                self.pick(&[
                    "kitchen",
                    "office",
                    "mom",
                    "sister",
                    "dorm",
                    "camper",
                    "new apartment",
                    "husband"
                ])
            ),
            format!(
                "Been using the {noun} for about {} {}.",
                self.rng.random_range(2..9),
                self.pick(&["days", "weeks", "months"])
            ),
            format!("I needed a {noun} and picked this one after reading around."),
            format!("Second {noun} I've owned."),
            "Arrived on time and well packed.".to_string(),
            format!(
                "Ordered on a whim during {}.",
                self.pick(&["a sale", "my lunch break", "a move", "the holidays"])
            ),
        ];
        let good = [
            "Feels sturdy and well made.",
            "Cleans up easily.",
            "Does exactly what it should.",
            "The size is just right for our counter.",
            "Much better than the cheap one I had before.",
            "Color matches the photos.",
            "Setup took two minutes.",
            "My kids use it every day and it still looks new.",
            "Worth the price.",
            "Would buy again.",
            "Light enough to carry around.",
            "No weird smell out of the box.",
            "Instructions were clear enough.",
        ];
        let mid = [
            "Works but feels a bit flimsy.",
            "Smaller than I expected.",
            "Does the job, nothing special.",
            "The finish scratched after a week.",
            "A little overpriced for what it is.",
            "Took a while to figure out.",
        ];
        let bad = [
            "Stopped working after two weeks.",
            "Cheap plastic, snapped on first use.",
            "Nothing like the pictures.",
            "Customer service never answered.",
            "Arrived damaged and missing a piece.",
            "Would not recommend.",
        ];
        let n = match self.uniform() {
            x if x < 0.25 => 1,
            x if x < 0.55 => 2,
            x if x < 0.8 => 3,
            _ => self.rng.random_range(4..8),
        };
        let mut parts = Vec::new();
        if self.uniform() < 0.6 {
            parts.push(self.pick(&openers).clone());
        }
        for _ in 0..n {
            let s = match rating {
                4..=5 => self.pick(&good),
                3 => self.pick(&mid),
                _ => self.pick(&bad),
            };
            if !parts.iter().any(|x| x == s) {
                parts.push(s.to_string());
            }
        }
        if self.uniform() < 0.2 {
            parts.push(format!("{} stars.", rating));
        }
        (title, parts.join(" "))
    }
}

fn local_to_utc(ndt: NaiveDateTime) -> i64 {
    match SHOP_TZ.from_local_datetime(&ndt).earliest() {
        Some(dt) => dt.timestamp(),
        // Skipped hour at the spring DST change: an hour later exists.
        None => SHOP_TZ
            .from_local_datetime(&(ndt + Duration::hours(1)))
            .earliest()
            .map(|d| d.timestamp())
            .unwrap_or_else(|| ndt.and_utc().timestamp()),
    }
}

fn fmt_amazon(secs: i64) -> String {
    Utc.timestamp_opt(secs, 0)
        .single()
        .map(|d| d.format("%Y-%m-%dT%H:%M:%S+00:00").to_string())
        .unwrap_or_default()
}

fn fmt_rfc3339(secs: i64) -> String {
    crate::ingest::timestamp::format_utc(secs)
}

fn day_of(secs: i64, start_ts: i64) -> String {
    crate::ingest::timestamp::format_day(start_ts.max(secs))
}

/// Generate into `dir`. Returns the labels written.
pub fn generate(p: SynthParams, dir: &Path) -> Result<Labels> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let ext = if p.gzip { ".gz" } else { "" };
    let path = |name: &str| -> PathBuf { dir.join(format!("{name}{ext}")) };
    let mut out = Out {
        orders: open(&path("orders.tsv"), p.gzip)?,
        reviews: open(&path("reviews.jsonl"), p.gzip)?,
        linked: csv::WriterBuilder::new().from_writer(open(&path("reviews_linked.csv"), p.gzip)?),
        review_index: 0,
        order_lines: 0,
        next_order: 0,
    };
    writeln!(out.orders, "{ORDER_HEADER}")?;
    out.linked.write_record([
        "review_id",
        "product_id",
        "reviewer_id",
        "rating",
        "created_at",
        "title",
        "text",
        "verified",
        "order_id",
    ])?;
    let start_ts = local_to_utc(p.start.and_hms_opt(0, 0, 0).unwrap_or_default());
    let end_ts = start_ts + p.days as i64 * 86_400;
    let mut g = Gen {
        rng: ChaCha8Rng::seed_from_u64(p.seed),
        p: p.clone(),
        end_ts,
        zips: Vec::new(),
    };
    for _ in 0..4000 {
        let z = format!("{:05}", g.rng.random_range(1000..99_950));
        let c = g.rng.random_range(0..CITIES.len());
        g.zips.push((z, c));
    }

    // Catalog.
    let mut products = Vec::with_capacity(p.products);
    let mut seen = std::collections::HashSet::new();
    for i in 0..p.products {
        let asin = loop {
            let a = format!("B0{}", g.alnum(8));
            if seen.insert(a.clone()) {
                break a;
            }
        };
        let name = format!("{} {}", g.pick(ADJ), g.pick(NOUN));
        let mediocre = i > 3 && g.uniform() < 0.07;
        let rating_weights = if mediocre {
            [0.16, 0.17, 0.27, 0.22, 0.18]
        } else {
            let j = 0.55 + 0.2 * g.uniform();
            [0.07, 0.04, 0.07, (1.0 - j - 0.18f64).max(0.02), j]
        };
        products.push(Product {
            sku: format!("SKU-{:04}-{}", i + 1, g.alnum(3)),
            asin,
            name,
            price: (2.2 + 0.8 * g.normal()).exp().clamp(4.0, 150.0),
            base_rate: p.scale * 25.0 / ((i + 1) as f64).powf(0.9),
            review_prob: (0.02 + 0.04 * g.uniform()) * p.review_rate,
            rating_weights,
        });
    }
    let mediocre_products: Vec<String> = products
        .iter()
        .filter(|pr| pr.rating_weights[0] > 0.1)
        .map(|pr| pr.asin.clone())
        .collect();

    // Which products get what (distinct, mid-popularity; the promotion on a popular one).
    let n = products.len();
    let mut pool: Vec<usize> = (4..n.clamp(4, 60)).collect();
    let mut take = |g: &mut Gen, k: usize| -> Vec<usize> {
        let mut v = Vec::new();
        for _ in 0..k {
            if pool.is_empty() {
                break;
            }
            let i = g.rng.random_range(0..pool.len());
            v.push(pool.swap_remove(i));
        }
        v
    };
    let promo_idx = 1.min(n.saturating_sub(1));
    let ring_targets = take(&mut g, 5);
    let burst_t = take(&mut g, 1);
    let fast_t = take(&mut g, 1);
    let night_t = take(&mut g, 1);
    let dup_t = take(&mut g, 1);
    let camo_t = take(&mut g, 4);
    let drip_t = take(&mut g, 1);
    let bomb_t = take(&mut g, 1);
    let days = p.days as i64;
    let promo_from = (days * 2 / 5).max(0);
    let promo_to = (promo_from + 4).min(days - 1);

    // Organic: day by day.
    const WEEKDAY: [f64; 7] = [1.0, 0.95, 0.95, 1.0, 1.05, 1.15, 1.2];
    let regulars: Vec<String> = (0..(p.products / 2).max(10)).map(|_| g.user_id()).collect();
    // Organic unverified reviews (gifts, bought elsewhere): about 6% of the organic review volume,
    // spread by popularity.
    let extra_daily = 0.06
        * products
            .iter()
            .map(|x| x.base_rate * x.review_prob)
            .sum::<f64>();
    let cum_rate: Vec<f64> = products
        .iter()
        .scan(0.0, |acc, x| {
            *acc += x.base_rate;
            Some(*acc)
        })
        .collect();
    for day in 0..days {
        let date = p.start + Duration::days(day);
        let wd = WEEKDAY[date.weekday().num_days_from_monday() as usize];
        let season = 1.0 + 0.15 * ((day as f64) / 30.0).sin();
        for (pi, prod) in products.iter().enumerate() {
            let promo = pi == promo_idx && (promo_from..=promo_to).contains(&day);
            let lambda = prod.base_rate * wd * season * if promo { 5.0 } else { 1.0 };
            let k = g.poisson(lambda);
            for _ in 0..k {
                let hour = g.local_hour();
                let at = g.local_instant(day, hour);
                let qty = if g.uniform() < 0.9 {
                    1
                } else {
                    g.rng.random_range(2..4)
                };
                let o = g.write_order(
                    &mut out,
                    prod,
                    at,
                    qty,
                    None,
                    false,
                    promo.then_some("PROMO-SPRING"),
                )?;
                if g.uniform() >= prod.review_prob {
                    continue;
                }
                // Lag: delivery (2–5 days) plus a log-normal wait, median about 10 days.
                let lag_days = g.rng.random_range(2.0..5.0) + (2.0 + 0.9 * g.normal()).exp();
                let rday = ((o.at - start_ts) as f64 / 86_400.0 + lag_days) as i64;
                if rday >= days {
                    continue;
                }
                let rh = g.local_hour();
                let rat = g.local_instant(rday, rh).max(o.at + 86_400);
                if rat >= end_ts {
                    continue;
                }
                let reviewer = if g.uniform() < 0.08 {
                    g.pick(&regulars).clone()
                } else {
                    g.user_id()
                };
                let rating = g.rating(prod);
                let (title, text) = g.organic_text(prod, rating);
                let verified = g.uniform() < 0.96;
                g.write_review(
                    &mut out,
                    NewReview {
                        product: prod,
                        reviewer: &reviewer,
                        rating,
                        at: rat,
                        title,
                        text,
                        verified,
                        order_id: Some(&o.id),
                    },
                )?;
            }
        }
        // A few organic unverified reviews (gifts, bought elsewhere).
        for _ in 0..g.poisson(extra_daily) {
            let x = g.uniform() * cum_rate.last().copied().unwrap_or(0.0);
            let pi = cum_rate.partition_point(|c| *c <= x).min(n - 1);
            let prod = &products[pi];
            let h = g.local_hour();
            let at = g.local_instant(day, h);
            let reviewer = g.user_id();
            let rating = g.rating(prod);
            let (title, text) = g.organic_text(prod, rating);
            g.write_review(
                &mut out,
                NewReview {
                    product: prod,
                    reviewer: &reviewer,
                    rating,
                    at,
                    title,
                    text,
                    verified: false,
                    order_id: None,
                },
            )?;
        }
    }

    // Attacks.
    let mut attacks = Vec::new();
    let five_star = |g: &mut Gen, prod: &Product| -> (String, String) {
        let mut r = g.organic_text(prod, 5);
        if g.uniform() < 0.5 {
            r.1 = format!(
                "{} {}",
                r.1,
                g.pick(&[
                    "Highly recommend!",
                    "Best purchase this year!",
                    "Five stars, amazing!",
                    "Love love love it!"
                ])
            );
        }
        r
    };
    let mut attack = |kind: &str,
                      prods: &[usize],
                      reviewers: Vec<String>,
                      ids: Vec<String>,
                      camo: Vec<String>,
                      from: i64,
                      to: i64,
                      verdict: &str| {
        attacks.push(Attack {
            kind: kind.into(),
            products: prods.iter().map(|&i| products[i].asin.clone()).collect(),
            reviewers,
            review_ids: ids,
            camouflage_review_ids: camo,
            from: day_of(from, start_ts),
            to: day_of(to, start_ts),
            expected_verdict: verdict.into(),
        });
    };

    // 1. Review ring: accounts review the same products within days of each other, with brushed
    //    orders shipped to a handful of postal codes, often fully discounted.
    if !ring_targets.is_empty() {
        let members: Vec<String> = (0..12).map(|_| g.user_id()).collect();
        let ring_zips: Vec<(String, usize)> = (0..3).map(|_| g.zip()).collect();
        let mut ids = Vec::new();
        let (mut lo, mut hi) = (i64::MAX, 0);
        for (k, &pi) in ring_targets.iter().enumerate() {
            let wstart = days / 6 + (k as i64) * (days / 8).max(3);
            for m in &members {
                if g.uniform() > 0.85 {
                    continue;
                }
                let rday = (wstart + g.rng.random_range(0..3)).min(days - 1);
                let h = g.local_hour();
                let at = g.local_instant(rday, h);
                let oat = at - g.rng.random_range(2 * 86_400..6 * 86_400);
                let z = g.pick(&ring_zips).clone();
                let full = g.uniform() < 0.6;
                let o = g.write_order(&mut out, &products[pi], oat, 1, Some(z), full, None)?;
                let (title, text) = five_star(&mut g, &products[pi]);
                let rating = if g.uniform() < 0.9 { 5 } else { 4 };
                ids.push(g.write_review(
                    &mut out,
                    NewReview {
                        product: &products[pi],
                        reviewer: m,
                        rating,
                        at,
                        title,
                        text,
                        verified: true,
                        order_id: Some(&o.id),
                    },
                )?);
                lo = lo.min(at);
                hi = hi.max(at);
            }
        }
        attack(
            "review_ring",
            &ring_targets,
            members,
            ids,
            vec![],
            lo,
            hi,
            "fail",
        );
    }

    // 2. Burst: dozens of five-stars in two days, no order surge behind them.
    if let Some(&pi) = burst_t.first() {
        let d0 = days * 3 / 5;
        let mut ids = Vec::new();
        let mut accts = Vec::new();
        for _ in 0..40 {
            let acct = g.user_id();
            let h = g.local_hour();
            let at = {
                let day_ = d0 + g.rng.random_range(0..2);
                g.local_instant(day_, h)
            };
            let (title, text) = five_star(&mut g, &products[pi]);
            let verified = g.uniform() < 0.3;
            ids.push(g.write_review(
                &mut out,
                NewReview {
                    product: &products[pi],
                    reviewer: &acct,
                    rating: 5,
                    at,
                    title,
                    text,
                    verified,
                    order_id: None,
                },
            )?);
            accts.push(acct);
        }
        let s0 = start_ts + d0 * 86_400;
        attack("burst", &[pi], accts, ids, vec![], s0, s0 + 86_400, "fail");
    }

    // 3. Reviews hours after purchase.
    if let Some(&pi) = fast_t.first() {
        let d0 = days / 3;
        let mut ids = Vec::new();
        let mut accts = Vec::new();
        let (mut lo, mut hi) = (i64::MAX, 0);
        for _ in 0..30 {
            let acct = g.user_id();
            let h = g.local_hour();
            let oat = {
                let day_ = d0 + g.rng.random_range(0..21);
                g.local_instant(day_, h)
            };
            let o = g.write_order(&mut out, &products[pi], oat, 1, None, false, None)?;
            let at = o.at + g.rng.random_range(3600..8 * 3600);
            let (title, text) = five_star(&mut g, &products[pi]);
            ids.push(g.write_review(
                &mut out,
                NewReview {
                    product: &products[pi],
                    reviewer: &acct,
                    rating: 5,
                    at,
                    title,
                    text,
                    verified: true,
                    order_id: Some(&o.id),
                },
            )?);
            accts.push(acct);
            lo = lo.min(at);
            hi = hi.max(at);
        }
        attack(
            "fast_after_purchase",
            &[pi],
            accts,
            ids,
            vec![],
            lo,
            hi,
            "fail",
        );
    }

    // 4. Night-time posting (1–4 am in the shop's time zone).
    if let Some(&pi) = night_t.first() {
        let d0 = days / 2;
        let mut ids = Vec::new();
        let mut accts = Vec::new();
        let (mut lo, mut hi) = (i64::MAX, 0);
        for _ in 0..30 {
            let acct = g.user_id();
            let h = g.rng.random_range(1..4);
            let day_ = (d0 + g.rng.random_range(0..42)).min(days - 1);
            let at = g.local_instant(day_, h);
            let (title, text) = five_star(&mut g, &products[pi]);
            let verified_ = g.uniform() < 0.5;
            ids.push(g.write_review(
                &mut out,
                NewReview {
                    product: &products[pi],
                    reviewer: &acct,
                    rating: 5,
                    at,
                    title,
                    text,
                    verified: verified_,
                    order_id: None,
                },
            )?);
            accts.push(acct);
            lo = lo.min(at);
            hi = hi.max(at);
        }
        attack("night_posting", &[pi], accts, ids, vec![], lo, hi, "fail");
    }

    // 5. Near-duplicate text from different accounts.
    if let Some(&pi) = dup_t.first() {
        let d0 = days / 4;
        let noun = products[pi].name.to_lowercase();
        let mut ids = Vec::new();
        let mut accts = Vec::new();
        let (mut lo, mut hi) = (i64::MAX, 0);
        for _ in 0..25 {
            let acct = g.user_id();
            let h = g.local_hour();
            let at = {
                let day_ = d0 + g.rng.random_range(0..21);
                g.local_instant(day_, h)
            };
            let adj = g
                .pick(&["amazing", "excellent", "fantastic", "outstanding"])
                .to_string();
            let adv = g.pick(&["really", "truly", "absolutely"]).to_string();
            let text = format!(
                "This {noun} is {adv} {adj} and exceeded all my expectations. The quality is premium and it arrived quickly. \
                 I have recommended it to all my friends and family and will definitely buy again. Best {noun} on the market!"
            );
            let verified_ = g.uniform() < 0.6;
            ids.push(g.write_review(
                &mut out,
                NewReview {
                    product: &products[pi],
                    reviewer: &acct,
                    rating: 5,
                    at,
                    title: format!("{} product", adj),
                    text,
                    verified: verified_,
                    order_id: None,
                },
            )?);
            accts.push(acct);
            lo = lo.min(at);
            hi = hi.max(at);
        }
        attack(
            "near_duplicate_text",
            &[pi],
            accts,
            ids,
            vec![],
            lo,
            hi,
            "fail",
        );
    }

    // 6. Camouflaged ring: lockstep on small products, plus honest-looking reviews of best sellers.
    if !camo_t.is_empty() {
        let members: Vec<String> = (0..10).map(|_| g.user_id()).collect();
        let mut ids = Vec::new();
        let mut camo = Vec::new();
        let (mut lo, mut hi) = (i64::MAX, 0);
        for (k, &pi) in camo_t.iter().enumerate() {
            let wstart = days / 2 + (k as i64) * (days / 12).max(2);
            for m in &members {
                if g.uniform() > 0.85 {
                    continue;
                }
                let h = g.local_hour();
                let day_ = (wstart + g.rng.random_range(0..4)).min(days - 1);
                let at = g.local_instant(day_, h);
                let (title, text) = five_star(&mut g, &products[pi]);
                let verified_ = g.uniform() < 0.7;
                ids.push(g.write_review(
                    &mut out,
                    NewReview {
                        product: &products[pi],
                        reviewer: m,
                        rating: 5,
                        at,
                        title,
                        text,
                        verified: verified_,
                        order_id: None,
                    },
                )?);
                lo = lo.min(at);
                hi = hi.max(at);
            }
        }
        for m in &members {
            for _ in 0..3 {
                let pi = g.rng.random_range(0..4.min(n));
                let h = g.local_hour();
                let at = {
                    let day_ = g.rng.random_range(0..days);
                    g.local_instant(day_, h)
                };
                let rating = if g.uniform() < 0.6 { 5 } else { 4 };
                let (title, text) = g.organic_text(&products[pi], rating);
                camo.push(g.write_review(
                    &mut out,
                    NewReview {
                        product: &products[pi],
                        reviewer: m,
                        rating,
                        at,
                        title,
                        text,
                        verified: true,
                        order_id: None,
                    },
                )?);
            }
        }
        attack(
            "camouflaged_ring",
            &camo_t,
            members,
            ids,
            camo,
            lo,
            hi,
            "fail",
        );
    }

    // 7. Slow drip of unverified five-stars from one-off accounts, all period long.
    if let Some(&pi) = drip_t.first() {
        let mut ids = Vec::new();
        let mut accts = Vec::new();
        let mut day = g.rng.random_range(0..4);
        while day < days {
            let acct = g.user_id();
            let h = g.local_hour();
            let at = g.local_instant(day, h);
            let (title, text) = five_star(&mut g, &products[pi]);
            ids.push(g.write_review(
                &mut out,
                NewReview {
                    product: &products[pi],
                    reviewer: &acct,
                    rating: 5,
                    at,
                    title,
                    text,
                    verified: false,
                    order_id: None,
                },
            )?);
            accts.push(acct);
            day += g.rng.random_range(2..5);
        }
        attack(
            "slow_drip",
            &[pi],
            accts,
            ids,
            vec![],
            start_ts,
            end_ts - 1,
            "warn",
        );
    }

    // 8. One-star bombing by fresh accounts within two days.
    if let Some(&pi) = bomb_t.first() {
        let d0 = days * 4 / 5;
        let mut ids = Vec::new();
        let mut accts = Vec::new();
        for _ in 0..35 {
            let acct = g.user_id();
            let h = g.local_hour();
            let at = {
                let day_ = d0 + g.rng.random_range(0..2);
                g.local_instant(day_, h)
            };
            let text = g
                .pick(&[
                    "Terrible. Broke immediately.",
                    "Scam product, do not buy.",
                    "Worst purchase ever, total junk.",
                    "Cheap garbage, seller ignores complaints.",
                    "Fake listing. Avoid!",
                ])
                .to_string();
            ids.push(g.write_review(
                &mut out,
                NewReview {
                    product: &products[pi],
                    reviewer: &acct,
                    rating: 1,
                    at,
                    title: "Awful".into(),
                    text,
                    verified: false,
                    order_id: None,
                },
            )?);
            accts.push(acct);
        }
        let s0 = start_ts + d0 * 86_400;
        attack(
            "one_star_bombing",
            &[pi],
            accts,
            ids,
            vec![],
            s0,
            s0 + 86_400,
            "fail",
        );
    }

    out.orders.flush()?;
    out.reviews.flush()?;
    out.linked.flush()?;
    let Out {
        orders,
        reviews,
        linked,
        review_index,
        order_lines,
        ..
    } = out;
    drop(orders);
    drop(reviews);
    drop(
        linked
            .into_inner()
            .map_err(|e| anyhow::anyhow!("cannot finish reviews_linked.csv: {e}"))?,
    );

    let attacked: std::collections::HashSet<&String> =
        attacks.iter().flat_map(|a| a.products.iter()).collect();
    let clean_products = products
        .iter()
        .map(|p| p.asin.clone())
        .filter(|a| !attacked.contains(a))
        .collect();
    let mut counts = BTreeMap::new();
    counts.insert("order_lines".into(), order_lines);
    counts.insert("reviews".into(), review_index);
    counts.insert(
        "fake_reviews".into(),
        attacks.iter().map(|a| a.review_ids.len() as u64).sum(),
    );
    let labels = Labels {
        params: p.clone(),
        review_id_scheme:
            "reviews#<0-based line index in reviews.jsonl>; the same ids are in reviews_linked.csv"
                .into(),
        shop_time_zone: SHOP_TZ.name().into(),
        attacks,
        promotion: Promotion {
            product: products[promo_idx].asin.clone(),
            from: day_of(start_ts + promo_from * 86_400, start_ts),
            to: day_of(start_ts + promo_to * 86_400, start_ts),
            multiplier: 5.0,
        },
        clean_products,
        mediocre_products,
        counts,
    };
    let mut lf = BufWriter::new(File::create(dir.join("labels.json"))?);
    serde_json::to_writer_pretty(&mut lf, &labels)?;
    lf.write_all(b"\n")?;
    lf.flush()?;
    Ok(labels)
}
