//! The analysis view of a loaded dataset: products and reviewers interned to integers, reviews
//! sorted by time, the audited window, the shop's local-time offset, and what the data allows
//! (orders, links, time of day, text, verified flags).
//!
//! Owns: turning canonical records into compact arrays once. Must not: do I/O.

use std::collections::HashMap;

use chrono::{Offset, TimeZone, Utc};

use crate::config::AuditConfig;
use crate::ingest::timestamp::TimeResolution;
use crate::ingest::Dataset;

/// One review, compact: 64 bytes, aligned to a cache line — the analysis reads reviews by product,
/// reviewer and cluster, scattered over the table, and an unaligned record would cost two cache
/// misses where one does.
#[derive(Debug, Clone)]
#[repr(align(64))]
pub struct Rev {
    /// Source id.
    pub id: crate::ingest::schema::Id,
    /// Product index.
    pub product: u32,
    /// Reviewer index.
    pub reviewer: u32,
    /// Stars.
    pub rating: u8,
    /// Seconds since the epoch, UTC.
    pub t: i64,
    /// Local hour of the week (shop time zone, weekday × 24 + hour, Monday 0), or `NO_TIME` when
    /// the time of day is unknown (`hour()`, `wday()`).
    pub local: u8,
    /// Verified flag.
    pub verified: Option<bool>,
    /// Linked order index.
    pub order: OptIdx,
    /// Identity keys (hashed): email, IP.
    pub email: OptIdx,
    /// Hashed IP.
    pub ip: OptIdx,
    /// Title + body, in `AuditData::texts`.
    pub text: crate::ingest::schema::StrRef,
    /// Inside the audited window.
    pub audited: bool,
}

/// `Rev::local` of a review without a time of day.
pub const NO_TIME: u8 = u8::MAX;

/// One order line, compact (its order id served linking, which is done: no statistic reads it).
#[derive(Debug, Clone)]
pub struct Ord {
    /// Product index (products without reviews are interned too).
    pub product: u32,
    /// Purchase instant.
    pub t: i64,
    /// Counts as shipped.
    pub shipped: bool,
    /// Units.
    pub quantity: u32,
    /// Zero price or fully discounted.
    pub free: bool,
    /// Hashed postal code, interned.
    pub postal: OptIdx,
    /// Hashed buyer key, interned.
    pub buyer: OptIdx,
    /// Hashed street address, interned.
    pub address: OptIdx,
    /// Carries a promotion id / discount code.
    pub promo: bool,
}

impl Rev {
    /// Day number (UTC).
    pub fn day(&self) -> i64 {
        day_of(self.t)
    }

    /// Local hour, when the time of day is known.
    pub fn hour(&self) -> Option<u8> {
        (self.local != NO_TIME).then_some(self.local % 24)
    }

    /// Local weekday (0 = Monday), when the time of day is known.
    pub fn wday(&self) -> Option<u8> {
        (self.local != NO_TIME).then_some(self.local / 24)
    }
}

impl Ord {
    /// Day number (UTC).
    pub fn day(&self) -> i64 {
        day_of(self.t)
    }
}

pub use crate::ingest::schema::OptIdx;

/// Everything the tests read.
#[derive(Debug)]
pub struct AuditData {
    /// Product ids by index, sorted by id (so an id can be binary-searched).
    pub products: Vec<String>,
    /// Product names by index, where an export gave one.
    pub product_names: Vec<Option<String>>,
    /// Reviewer ids by index.
    pub reviewers: Names,
    /// Reviews sorted by time.
    pub reviews: Vec<Rev>,
    /// Orders sorted by time.
    pub orders: Vec<Ord>,
    /// First audited day (inclusive).
    pub from_day: i64,
    /// Last audited day (inclusive).
    pub to_day: i64,
    /// First day with any data.
    pub first_day: i64,
    /// Orders were given.
    pub has_orders: bool,
    /// First day with an order (the order export's start).
    pub first_order_day: Option<i64>,
    /// Reviews per star rating (index 1–5), all reviews up to the end of the window.
    pub rating_hist: [u64; 6],
    /// Some reviews are linked to orders.
    pub has_links: bool,
    /// Every review has a time of day.
    pub second_resolution: bool,
    /// Some reviews have text.
    pub has_text: bool,
    /// Some reviews have a verified flag.
    pub has_verified: bool,
    /// Description of the local time used (zone or inferred offset).
    pub local_time: String,
    /// Reviews per product (indices into `reviews`), in time order.
    pub by_product: Lists,
    /// Reviews per reviewer, in time order.
    pub by_reviewer: Lists,
    /// Orders per product.
    pub orders_by_product: Lists,
    /// `reviews[i].audited` as one bit per review (1.3 MB at ten million reviews, where reading
    /// the flag from the records behind a product's or reviewer's list is a cache miss each).
    audited_bits: Vec<u64>,
    /// The reviews' texts (`Rev::text`, read with `text`).
    texts: crate::ingest::schema::Strings,
}

/// Lists of indices, one per key, in one flat array (`lists[k]` is key k's slice). Ten million
/// reviewers with one review each would otherwise be ten million small allocations.
#[derive(Debug, Default)]
pub struct Lists {
    start: Vec<u32>,
    flat: Vec<u32>,
}

impl Lists {
    /// Group `0..n` by `key(i)` (< `keys`), each list in increasing order: a counting sort.
    pub fn group(keys: usize, n: usize, key: impl Fn(usize) -> Option<u32>) -> Lists {
        let mut start = vec![0u32; keys + 1];
        for i in 0..n {
            if let Some(k) = key(i) {
                start[k as usize + 1] += 1;
            }
        }
        for k in 0..keys {
            start[k + 1] += start[k];
        }
        let mut next = start.clone();
        let mut flat = vec![0u32; start[keys] as usize];
        for i in 0..n {
            if let Some(k) = key(i) {
                let at = &mut next[k as usize];
                flat[*at as usize] = i as u32;
                *at += 1;
            }
        }
        Lists { start, flat }
    }

    /// Number of lists.
    pub fn len(&self) -> usize {
        self.start.len().saturating_sub(1)
    }

    /// No lists.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The lists in key order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &[u32]> + '_ {
        (0..self.len()).map(|k| &self[k])
    }
}

impl std::ops::Index<usize> for Lists {
    type Output = [u32];
    fn index(&self, k: usize) -> &[u32] {
        &self.flat[self.start[k] as usize..self.start[k + 1] as usize]
    }
}

/// Strings by index, in one buffer (ten million reviewer ids as ten million `String`s cost twice
/// their bytes in headers and allocator overhead).
#[derive(Debug, Default, Clone)]
pub struct Names {
    end: Vec<u64>,
    bytes: String,
}

impl Names {
    /// Append a string; its index is the previous `len()`.
    pub fn push(&mut self, s: &str) {
        self.bytes.push_str(s);
        self.end.push(self.bytes.len() as u64);
    }

    /// Number of strings.
    pub fn len(&self) -> usize {
        self.end.len()
    }

    /// No strings.
    pub fn is_empty(&self) -> bool {
        self.end.is_empty()
    }

    /// The strings in index order.
    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        (0..self.len()).map(|i| &self[i])
    }

    /// Request where string `i` starts and ends (`prefetch`), ahead of `Names::prefetch`.
    pub fn prefetch_end(&self, i: usize) {
        for e in self.end.get(i.saturating_sub(1)..=i).into_iter().flatten() {
            prefetch(e);
        }
    }

    /// Request the bytes of string `i` (`prefetch`); reads where it starts and ends, which
    /// `prefetch_end` requested before.
    pub fn prefetch(&self, i: usize) {
        let start = if i == 0 {
            0
        } else {
            self.end.get(i - 1).copied().unwrap_or(0)
        };
        let end = self.end.get(i).copied().unwrap_or(start);
        let b = self.bytes.as_bytes();
        if let Some(x) = b.get(start as usize) {
            prefetch(x);
        }
        if let Some(x) = b.get((end as usize).saturating_sub(1)) {
            prefetch(x);
        }
    }
}

impl std::ops::Index<usize> for Names {
    type Output = str;
    fn index(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.end[i - 1] };
        &self.bytes[start as usize..self.end[i] as usize]
    }
}

/// How many items ahead of their use scattered records are requested (`prefetch`).
pub const AHEAD: usize = 16;

use crate::pages::prefetch;

/// Day number of an instant.
pub fn day_of(t: i64) -> i64 {
    t.div_euclid(86_400)
}

/// YYYY-MM-DD of a day number.
pub fn day_str(day: i64) -> String {
    crate::ingest::timestamp::format_day(day * 86_400)
}

/// Names to dense indices, in first-seen order: a `Seen` table of name hashes (each hit confirmed
/// against the stored name), so every name is stored once.
struct Interner {
    seen: crate::ingest::Seen,
    names: Names,
}

impl Interner {
    /// Room in the table for `n` names.
    fn new(n: usize) -> Self {
        Interner {
            seen: crate::ingest::Seen::with_capacity(n),
            names: Names::default(),
        }
    }
    /// The index of `s`, whose `fast_hash` is `key` (a new index for a new name).
    fn get_hashed(&mut self, key: u64, s: &str) -> u32 {
        if let Some(i) = self.seen.find(key, |i| &self.names[i as usize] == s) {
            return i;
        }
        let i = self.names.len() as u32;
        self.seen.insert(key, i);
        self.names.push(s);
        i
    }
}

impl Interner {
    /// Read the table slots of `keys` and the names they point to before a batch of `get_hashed`
    /// (`ingest::read_ahead`: with millions of names, each lookup otherwise waits for two or three
    /// cache misses in turn).
    fn read_ahead(&self, keys: &[u64]) {
        crate::ingest::read_ahead(&self.seen, keys, |i| self.names.prefetch_end(i as usize));
    }
}

/// Hashed keys to dense indices.
#[derive(Default)]
struct KeyInterner(HashMap<u64, u32, crate::ingest::PreHashed>);

impl KeyInterner {
    fn get(&mut self, k: u64) -> u32 {
        let n = self.0.len() as u32;
        *self.0.entry(k).or_insert(n)
    }

    /// Number `other`'s keys after this interner's: a key both know keeps this interner's number,
    /// the others get `self.len() + their number in other`. Returns other's number → joint number.
    fn joint(&self, other: &KeyInterner) -> Vec<u32> {
        let base = self.0.len() as u32;
        let mut to = vec![0u32; other.0.len()];
        for (k, &i) in &other.0 {
            to[i as usize] = self.0.get(k).copied().unwrap_or(base + i);
        }
        to
    }
}

/// Dense renumbering of interned keys (themselves dense) by first appearance.
#[derive(Default)]
struct KeyRenumber {
    new: Vec<u32>,
    next: u32,
}

impl KeyRenumber {
    fn apply(&mut self, k: &mut OptIdx) {
        if let Some(i) = k.get() {
            let i = i as usize;
            if self.new.len() <= i {
                self.new.resize(i + 1, u32::MAX);
            }
            if self.new[i] == u32::MAX {
                self.new[i] = self.next;
                self.next += 1;
            }
            *k = OptIdx::from(Some(self.new[i]));
        }
    }
}

/// Infer the shop's UTC offset (whole hours) from the quietest five consecutive hours of activity,
/// which organic shopping puts at about 00:00–05:00 local time.
pub fn infer_offset_hours(utc_hours: &[u64; 24]) -> i64 {
    let total: u64 = utc_hours.iter().sum();
    if total < 50 {
        return 0;
    }
    let mut best = (u64::MAX, 0usize);
    for s in 0..24 {
        let c: u64 = (0..5).map(|k| utc_hours[(s + k) % 24]).sum();
        if c < best.0 {
            best = (c, s);
        }
    }
    // local = utc + offset; the quiet block starts at local 00:00.
    let mut off = -(best.1 as i64);
    if off < -12 {
        off += 24;
    }
    off
}

/// What the analysis view needs from one pass over the canonical records of one kind.
struct Scan {
    /// Products some record names (by the dataset's numbering).
    used: Vec<bool>,
    first_day: i64,
    last_day: i64,
    /// UTC hours of the second-resolution instants, and their number.
    hours: [u64; 24],
    n_second: u64,
    /// Every instant has second resolution.
    all_second: bool,
}

impl Scan {
    /// `fields(record)` is (product, instant, resolution).
    fn of<T>(
        records: &[T],
        n_products: usize,
        fields: impl Fn(&T) -> (u32, i64, TimeResolution),
    ) -> Scan {
        let mut s = Scan {
            used: vec![false; n_products],
            first_day: i64::MAX,
            last_day: i64::MIN,
            hours: [0; 24],
            n_second: 0,
            all_second: true,
        };
        for x in records {
            let (p, t, res) = fields(x);
            s.used[p as usize] = true;
            s.first_day = s.first_day.min(day_of(t));
            s.last_day = s.last_day.max(day_of(t));
            if res == TimeResolution::Second {
                s.hours[(t.rem_euclid(86_400) / 3600) as usize] += 1;
                s.n_second += 1;
            } else {
                s.all_second = false;
            }
        }
        s
    }
}

/// The compact order lines of `src` (consumed from the back, its vector shrinking as it goes, so
/// the two never both exist whole), in the same order, and the numbering of their identity keys.
fn compact_orders(
    mut src: Vec<crate::ingest::schema::OrderLine>,
    product_of: &[u32],
) -> (Vec<Ord>, KeyInterner) {
    let mut keys = KeyInterner::default();
    let mut orders = Vec::with_capacity(src.len());
    while let Some(o) = src.pop() {
        orders.push(Ord {
            product: product_of[o.product as usize],
            t: o.purchased_at,
            shipped: o.shipped,
            quantity: o.quantity,
            free: o.free,
            postal: o.postal_key.map(|k| keys.get(k.get())).into(),
            buyer: o.buyer_key.map(|k| keys.get(k.get())).into(),
            address: o.address_key.map(|k| keys.get(k.get())).into(),
            promo: o.promo,
        });
        if src.len().is_multiple_of(1 << 20) {
            src.shrink_to_fit();
        }
    }
    drop(src);
    // ds.orders is sorted by time; links index into it, so keep the order.
    orders.reverse();
    (orders, keys)
}

/// Reviewer numbers in first-seen order for the reviewer ids `refs` (one per review, in review
/// order), and the reviewer table. Runs beside `compact_reviews`, which leaves the numbers to it.
fn intern_reviewers(
    refs: &[crate::ingest::schema::StrRef],
    reviewer_ids: &crate::ingest::schema::Strings,
) -> (Vec<u32>, Interner) {
    // The table sized for half the reviews up front: one growth at most (each a re-insertion of
    // every name so far, on the view's longest line of work) instead of one per doubling from
    // empty. Not for all of them: the view's first second, while the canonical records are still
    // being drained, stands near the run's memory peak (10M: 3.80 GB with half, 3.89 with all).
    let mut reviewers = Interner::new(refs.len() / 2);
    let mut numbers = Vec::with_capacity(refs.len());
    let mut names: Vec<u64> = Vec::with_capacity(crate::ingest::READ_AHEAD);
    // The ids lie in file order, read here in time order: a batch's bytes are requested while
    // the batch before is worked on (`prefetch`; the hashing would wait for each id in turn).
    let touch = |batch: &[crate::ingest::schema::StrRef]| {
        batch.iter().for_each(|&r| reviewer_ids.prefetch(r));
    };
    let mut batches = refs.chunks(crate::ingest::READ_AHEAD).peekable();
    while let Some(batch) = batches.next() {
        if let Some(next) = batches.peek() {
            touch(next);
        }
        names.clear();
        names.extend(
            batch
                .iter()
                .map(|&r| crate::ingest::fast_hash(reviewer_ids.str(r).as_bytes())),
        );
        reviewers.read_ahead(&names);
        for (&r, &name) in batch.iter().zip(&names) {
            numbers.push(reviewers.get_hashed(name, reviewer_ids.str(r)));
        }
    }
    (numbers, reviewers)
}

/// The compact reviews (ids and texts moved out of `src`, which is consumed; reviewers left at 0
/// for `intern_reviewers`' numbers) and the numbering of their identity keys.
fn compact_reviews(
    mut src: Vec<crate::ingest::schema::Review>,
    product_of: &[u32],
    offset_fn: &dyn Fn(i64) -> i64,
    (from_day, to_day): (i64, i64),
) -> (Vec<Rev>, KeyInterner) {
    const BATCH: usize = crate::ingest::READ_AHEAD;
    let mut keys = KeyInterner::default();
    let mut reviews = Vec::with_capacity(src.len());
    let mut batch: Vec<crate::ingest::schema::Review> = Vec::with_capacity(BATCH);
    // Taken from the back of the reversed records (front to back), the buffer shrunk every
    // million records: the canonical and compact records never both stand in full.
    src.reverse();
    let mut shrink_at = src.len().saturating_sub(1 << 20);
    while !src.is_empty() {
        batch.clear();
        batch.extend(src.drain(src.len().saturating_sub(BATCH)..).rev());
        if src.len() <= shrink_at {
            src.shrink_to_fit();
            shrink_at = src.len().saturating_sub(1 << 20);
        }
        for r in batch.iter_mut() {
            let day = day_of(r.created_at);
            // Local instant (1970-01-01 was a Thursday: weekday 3 counting from Monday).
            let local = (r.resolution == TimeResolution::Second)
                .then(|| r.created_at + offset_fn(r.created_at));
            reviews.push(Rev {
                id: std::mem::take(&mut r.review_id),
                product: product_of[r.product as usize],
                reviewer: 0,
                rating: r.rating,
                t: r.created_at,
                local: local.map_or(NO_TIME, |l| {
                    let wday = (l.div_euclid(86_400) + 3).rem_euclid(7) as u8;
                    wday * 24 + (l.rem_euclid(86_400) / 3600) as u8
                }),
                verified: r.verified,
                order: r.linked_order,
                email: r.reviewer_key.map(|k| keys.get(k.get())).into(),
                ip: r.ip_key.map(|k| keys.get(k.get())).into(),
                text: r.text,
                audited: day >= from_day && day <= to_day,
            });
        }
    }
    (reviews, keys)
}

impl AuditData {
    /// Build the analysis view. `from_day..=to_day` is the audited window (None = everything).
    /// Review titles and texts are moved out of `ds` (not copied): the analysis view owns them.
    pub fn build(ds: &mut Dataset, cfg: &AuditConfig, window: Option<(i64, i64)>) -> AuditData {
        // Products in a stable order: by id (those some record names; the dataset's numbering
        // also has products whose only records were dropped as duplicates).
        // One pass over each kind of record (orders on another core) for what follows.
        let n_products = ds.products.len();
        let (order_scan, review_scan) = std::thread::scope(|s| {
            let orders = s.spawn(|| {
                Scan::of(&ds.orders, n_products, |o| {
                    (o.product, o.purchased_at, o.resolution)
                })
            });
            let reviews = Scan::of(&ds.reviews, n_products, |r| {
                (r.product, r.created_at, r.resolution)
            });
            (
                orders
                    .join()
                    .unwrap_or_else(|e| std::panic::resume_unwind(e)),
                reviews,
            )
        });
        let (pids, product_of) = {
            let used: Vec<bool> = order_scan
                .used
                .iter()
                .zip(&review_scan.used)
                .map(|(a, b)| *a || *b)
                .collect();
            let mut sorted: Vec<(&str, u32)> = ds
                .products
                .iter()
                .zip(0u32..)
                .filter(|&(_, k)| used[k as usize])
                .collect();
            sorted.sort_unstable();
            // Dataset product number → position in `pids`.
            let mut product_of = vec![u32::MAX; ds.products.len()];
            for (pos, &(_, k)) in sorted.iter().enumerate() {
                product_of[k as usize] = pos as u32;
            }
            let pids: Vec<String> = sorted.iter().map(|&(p, _)| p.to_string()).collect();
            (pids, product_of)
        };
        let second_resolution = !ds.reviews.is_empty() && review_scan.all_second;
        // Local time.
        let (offset_fn, local_time): (Box<dyn Fn(i64) -> i64>, String) = if cfg.timezone == "auto" {
            let scan = if !ds.orders.is_empty() {
                &order_scan
            } else {
                &review_scan
            };
            let (hist, n) = (scan.hours, scan.n_second);
            let off = infer_offset_hours(&hist);
            (
                Box::new(move |_| off * 3600),
                format!("UTC{off:+} (inferred from the quietest hours of {n} timestamps)"),
            )
        } else {
            let tz: chrono_tz::Tz = cfg.timezone.parse().unwrap_or(chrono_tz::UTC);
            (
                Box::new(move |t| match Utc.timestamp_opt(t, 0).single() {
                    Some(dt) => tz
                        .offset_from_utc_datetime(&dt.naive_utc())
                        .fix()
                        .local_minus_utc() as i64,
                    None => 0,
                }),
                cfg.timezone.clone(),
            )
        };
        // Orders and reviews are converted side by side, each with its own copy of the (complete)
        // product table and its own numbering of identity keys, joined after.
        let (first_day, last_day) = {
            let lo = order_scan.first_day.min(review_scan.first_day);
            let hi = order_scan.last_day.max(review_scan.last_day);
            if lo > hi {
                (0, 0)
            } else {
                (lo, hi)
            }
        };
        let (from_day, to_day) = window.unwrap_or((first_day, last_day));
        let src = std::mem::take(&mut ds.orders);
        let src_reviews = std::mem::take(&mut ds.reviews);
        // Texts move into the view; reviewer ids are numbered and their strings dropped.
        let crate::ingest::schema::ReviewStrings {
            texts,
            reviewer_ids,
        } = std::mem::take(&mut ds.strings);
        // Three lines of work: the orders, the reviewers' numbering (from a copy of the reviews'
        // reviewer references, so it does not wait for the records it reads) and the reviews.
        let refs: Vec<crate::ingest::schema::StrRef> =
            src_reviews.iter().map(|r| r.reviewer_id).collect();
        let (orders, orders_by_product, mut reviews, (numbers, reviewers)) =
            std::thread::scope(|s| {
                let o = s.spawn(|| compact_orders(src, &product_of));
                let n = s.spawn(|| intern_reviewers(&refs, &reviewer_ids));
                let (mut reviews, review_keys) =
                    compact_reviews(src_reviews, &product_of, &offset_fn, (from_day, to_day));
                let (mut orders, order_keys) =
                    o.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
                // While the reviewer numbering (the longest line) finishes: number the identity keys
                // by first appearance front to back (orders, then reviews), as if they had been read
                // in order by one interner.
                let to_joint = order_keys.joint(&review_keys);
                drop((order_keys, review_keys));
                let mut renumber = KeyRenumber::default();
                for o in orders.iter_mut() {
                    renumber.apply(&mut o.postal);
                    renumber.apply(&mut o.buyer);
                    renumber.apply(&mut o.address);
                }
                for r in reviews.iter_mut() {
                    for k in [&mut r.email, &mut r.ip] {
                        *k = k.get().map(|v| to_joint[v as usize]).into();
                        renumber.apply(k);
                    }
                }
                drop((renumber, to_joint));
                // Orders after the audited window are next month's (as reviews, below).
                let orders_by_product = Lists::group(pids.len(), orders.len(), |i| {
                    (orders[i].day() <= to_day).then_some(orders[i].product)
                });
                let numbered = n.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
                (orders, orders_by_product, reviews, numbered)
            });
        drop((refs, reviewer_ids));
        for (r, n) in reviews.iter_mut().zip(numbers) {
            r.reviewer = n;
        }
        // Only data up to the end of the audited window counts (later data is next month's).
        reviews.retain(|r| r.day() <= to_day);
        let has_links = reviews.iter().any(|r| r.order.get().is_some());
        let has_text = reviews.iter().any(|r| !texts.str(r.text).trim().is_empty());
        let has_verified = reviews.iter().any(|r| r.verified.is_some());
        // The reviewer lists (millions of keys, the longest grouping) beside the product lists
        // (the orders' were made while the reviewers were being numbered).
        let (by_product, by_reviewer) = std::thread::scope(|s| {
            let by_reviewer = s.spawn(|| {
                Lists::group(reviewers.names.len(), reviews.len(), |i| {
                    Some(reviews[i].reviewer)
                })
            });
            let by_product = Lists::group(pids.len(), reviews.len(), |i| Some(reviews[i].product));
            let by_reviewer = by_reviewer
                .join()
                .unwrap_or_else(|e| std::panic::resume_unwind(e));
            (by_product, by_reviewer)
        });
        let mut rating_hist = [0u64; 6];
        for r in &reviews {
            rating_hist[r.rating as usize] += 1;
        }
        let product_names = pids
            .iter()
            .map(|p| ds.product_names.get(p.as_str()).cloned())
            .collect();
        let mut audited_bits = vec![0u64; reviews.len().div_ceil(64)];
        for (i, r) in reviews.iter().enumerate() {
            audited_bits[i / 64] |= (r.audited as u64) << (i % 64);
        }
        AuditData {
            audited_bits,
            texts,
            product_names,
            has_orders: !orders.is_empty(),
            first_order_day: orders.iter().map(|o| o.day()).min(),
            rating_hist,
            products: pids,
            reviewers: reviewers.names,
            reviews,
            orders,
            from_day,
            to_day,
            first_day,
            has_links,
            second_resolution,
            has_text,
            has_verified,
            local_time,
            by_product,
            by_reviewer,
            orders_by_product,
        }
    }

    /// Whether review `i` is inside the audited window (`reviews[i].audited`).
    pub fn is_audited(&self, i: u32) -> bool {
        self.audited_bits[i as usize / 64] >> (i % 64) & 1 == 1
    }

    /// The title and body of a review, if it has any (a review of `reviews`).
    pub fn text(&self, r: &Rev) -> Option<&str> {
        self.texts.get(r.text)
    }

    /// Keep the texts of the reviews of the products `keep` marks and drop the others (`text`
    /// then gives `None` for them). For after the families: the text family reads every text,
    /// scoring reads none and the report quotes reviews of the products at risk only — so the
    /// largest array of the view (a gigabyte at ten million reviews) does not stand through
    /// scoring and writing.
    pub fn keep_texts_of(&mut self, keep: &[bool]) {
        let mut kept = crate::ingest::schema::Strings::default();
        for r in &mut self.reviews {
            // The product first: the texts of the others are not read at all.
            let text = match keep.get(r.product as usize) {
                Some(true) => self.texts.get(r.text),
                _ => None,
            };
            r.text = text.map_or(crate::ingest::schema::StrRef::NONE, |t| kept.push(t));
        }
        self.texts = kept;
    }

    /// Audited review indices of a product.
    ///
    /// A product's reviews lie scattered over the view: each one's record is requested from
    /// memory `AHEAD` reviews before it is reached (`prefetch`), so that the callers, which read
    /// them, do not wait for each in turn.
    pub fn audited_of(&self, p: usize) -> impl Iterator<Item = u32> + '_ {
        let list = &self.by_product[p];
        list.iter()
            .enumerate()
            .filter(move |&(k, &i)| {
                if let Some(&j) = list.get(k + AHEAD) {
                    prefetch(&self.reviews[j as usize]);
                }
                self.is_audited(i)
            })
            .map(|(_, &i)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_inference() {
        // Quiet from 05:00 to 10:00 UTC → local night at UTC−5.
        let mut h = [100u64; 24];
        for v in h.iter_mut().take(10).skip(5) {
            *v = 5;
        }
        assert_eq!(infer_offset_hours(&h), -5);
        let mut h = [100u64; 24];
        for k in [15, 16, 17, 18, 19] {
            h[k] = 1;
        }
        assert_eq!(infer_offset_hours(&h), 9);
    }

    /// Tens of millions of rows: a field added to the analysis records should be a decision.
    #[test]
    fn analysis_records_stay_compact() {
        // One cache line each (`Rev`'s alignment keeps it from straddling two).
        assert_eq!(std::mem::size_of::<Rev>(), 64);
        assert!(
            std::mem::size_of::<Ord>() <= 56,
            "{}",
            std::mem::size_of::<Ord>()
        );
        assert_eq!(OptIdx::from(Some(7)).get(), Some(7));
        assert_eq!(OptIdx::from(None).get(), None);
        assert_eq!(OptIdx::NONE.get(), None);
    }
}
