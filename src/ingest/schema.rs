//! The canonical schema: one order line and one review, whatever export they came from.
//!
//! Owns: the contract between ingest and analyze. Personal fields never reach these types raw: the
//! loader stores keyed hashes (`privacy::Hasher`).

use super::timestamp::TimeResolution;

/// An id or hashed key: up to 24 bytes stored inline (ASINs, Amazon order ids, `h:` keys), longer
/// values on the heap. Tens of millions of rows make one allocation per id the largest memory cost.
pub type Id = compact_str::CompactString;

/// A keyed hash of a personal value (buyer email, street address, postal code, IP): the 64 bits
/// that `privacy::Hasher::hash` prints as `h:` + 16 hex digits. Never 0, so `Option<Key>` takes
/// 8 bytes, not 16 (five of them per record, tens of millions of records).
pub type Key = std::num::NonZeroU64;

/// One order item (Amazon reports carry one row per order item).
///
/// Only what a statistic, the de-duplication or the linking reads is kept, in the form they read
/// it: the line's identity within its order as a hash, status, prices and promotion codes as the
/// three facts the statistics use (shipped, free, promoted). Ship date, currency, ship city / state
/// / country and fulfilment channel are parsed and validated (a bad ship date rejects the row, the
/// country repairs postal codes) but not stored — at ten million rows every byte per row is ten
/// megabytes.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderLine {
    /// Order id as a string (`114-1234567-1234567`, `#1001`).
    pub order_id: Id,
    /// 64-bit hash of the line's identity within its order: the order item id where the report
    /// has one, else product + SKU (`item_key`). Read by the de-duplication only.
    pub item: u64,
    /// Purchase instant, seconds since the epoch, UTC.
    pub purchased_at: i64,
    /// Resolution of `purchased_at`.
    pub resolution: TimeResolution,
    /// Counts as shipped: not cancelled, pending, refunded or voided (see `is_shipped_status`).
    pub shipped: bool,
    /// Zero price, or a discount covering the whole price.
    pub free: bool,
    /// Carries a promotion id / discount code.
    pub promo: bool,
    /// Product key shared with reviews (ASIN; SKU where the report has no ASIN): its index in
    /// the dataset's `Products` (while loading, the file's).
    pub product: u32,
    /// Units; 1 when the report has no quantity column.
    pub quantity: u32,
    /// Line total price; NaN where the report has none (8 bytes where `Option<f64>` takes 16).
    /// Read by the de-duplication only (compare with `same_price`).
    pub item_price: f64,
    /// Keyed hash of the buyer's email (FBA relay address, Shopify email).
    pub buyer_key: Option<Key>,
    /// Keyed hash of the street address / recipient name / phone, for identity overlap.
    pub address_key: Option<Key>,
    /// Keyed hash of the normalised postal code.
    pub postal_key: Option<Key>,
    /// Index of the source file in the load report.
    pub source: u32,
    /// 1-based line in the source file (saturating at u32::MAX: a record index is a u32 anyway).
    pub line: u32,
}

impl OrderLine {
    /// Whether two lines carry the same price (both unpriced counts as the same).
    pub fn same_price(&self, other: &OrderLine) -> bool {
        self.item_price.to_bits() == other.item_price.to_bits()
    }
}

/// A 1-based line number as stored in records.
pub fn record_line(line: u64) -> u32 {
    u32::try_from(line).unwrap_or(u32::MAX)
}

/// An optional index in four bytes (`u32::MAX` is none) — records carry several, tens of millions
/// of times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptIdx(u32);

impl OptIdx {
    /// No index.
    pub const NONE: OptIdx = OptIdx(u32::MAX);

    /// The index, if any.
    pub fn get(self) -> Option<u32> {
        (self.0 != u32::MAX).then_some(self.0)
    }
}

impl From<Option<u32>> for OptIdx {
    fn from(v: Option<u32>) -> Self {
        // Indices count records and keys, so they stay below u32::MAX.
        OptIdx(v.filter(|&i| i != u32::MAX).unwrap_or(u32::MAX))
    }
}

/// Where a string lies in a `Strings` arena: start (low 40 bits) and length (high 24 bits) in
/// eight bytes, `NONE` for no string. Records point into their file's arena instead of each owning
/// an allocation: ten million review texts and 28-character Amazon reviewer ids as separate
/// allocations cost a gigabyte more than their bytes (pointers, allocator headers and rounding, and
/// the freed holes that stay resident while the texts around them live on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StrRef(u64);

const START_BITS: u32 = 40;
const START_MASK: u64 = (1 << START_BITS) - 1;

/// Longest string an arena stores (16 MiB − 1 byte); longer ones are cut at a character boundary.
pub const MAX_STR_LEN: usize = (1 << (64 - START_BITS)) - 1;

impl StrRef {
    /// No string.
    pub const NONE: StrRef = StrRef(u64::MAX);

    /// Whether there is a string.
    pub fn is_some(self) -> bool {
        self != Self::NONE
    }

    /// Its length in bytes (0 for none).
    pub fn len(self) -> usize {
        if self.is_some() {
            (self.0 >> START_BITS) as usize
        } else {
            0
        }
    }

    /// Whether it is none or empty.
    pub fn is_empty(self) -> bool {
        self.len() == 0
    }

    /// Where it starts in its arena (the order strings were stored in; 0 for none).
    pub fn start(self) -> u64 {
        if self.is_some() {
            self.0 & START_MASK
        } else {
            0
        }
    }

    /// The same string after its arena was appended `by` bytes into another (`Strings::append`).
    pub fn shifted(self, by: u64) -> StrRef {
        if self.is_some() {
            StrRef(self.0 + by)
        } else {
            self
        }
    }
}

/// Strings stored end to end in one buffer, each found by its `StrRef`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Strings(String);

impl Strings {
    /// Store a string (cut to `MAX_STR_LEN` bytes).
    pub fn push(&mut self, s: &str) -> StrRef {
        self.push_parts(&[s])
    }

    /// Store the parts as one string (cut to `MAX_STR_LEN` bytes at a character boundary).
    pub fn push_parts(&mut self, parts: &[&str]) -> StrRef {
        let start = self.0.len();
        for p in parts {
            let room = MAX_STR_LEN - (self.0.len() - start);
            if p.len() <= room {
                self.0.push_str(p);
            } else {
                let mut cut = room;
                while !p.is_char_boundary(cut) {
                    cut -= 1;
                }
                self.0.push_str(&p[..cut]);
                break;
            }
        }
        let len = (self.0.len() - start) as u64;
        // A terabyte of strings is far past the memory budget that stops loading.
        debug_assert!((start as u64) < START_MASK);
        StrRef(len << START_BITS | start as u64)
    }

    /// The string, if any.
    pub fn get(&self, r: StrRef) -> Option<&str> {
        r.is_some().then(|| {
            let start = r.start() as usize;
            &self.0[start..start + r.len()]
        })
    }

    /// The string, `""` for none.
    pub fn str(&self, r: StrRef) -> &str {
        self.get(r).unwrap_or("")
    }

    /// Request the first bytes of a string (`pages::prefetch`), which will be read soon.
    pub fn prefetch(&self, r: StrRef) {
        if let Some(b) = self.0.as_bytes().get(r.start() as usize) {
            crate::pages::prefetch(b);
        }
    }

    /// Append `other`'s strings; returns how far its references move (`StrRef::shifted`).
    pub fn append(&mut self, other: Strings) -> u64 {
        if self.0.is_empty() {
            *self = other;
            return 0;
        }
        let by = self.0.len() as u64;
        self.0.push_str(&other.0);
        by
    }
}

/// Product ids numbered in first-seen order. Records carry the number: a catalog has thousands of
/// products and tens of millions of records, each of which held its own 24-byte copy of the id.
#[derive(Debug, Default, Clone)]
pub struct Products {
    ids: Vec<Id>,
    /// Seeded per process (`foldhash`): looked up for every row, where the standard hasher cost a
    /// noticeable share of loading.
    index: std::collections::HashMap<Id, u32, foldhash::fast::RandomState>,
}

impl Products {
    /// The number of `id`, numbering it if it is new.
    pub fn intern(&mut self, id: &str) -> u32 {
        if let Some(&k) = self.index.get(id) {
            return k;
        }
        let k = self.ids.len() as u32;
        self.ids.push(Id::from(id));
        self.index.insert(Id::from(id), k);
        k
    }

    /// The id numbered `k`.
    pub fn id(&self, k: u32) -> &str {
        &self.ids[k as usize]
    }

    /// Number of products.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// No products.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The ids in number order.
    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        self.ids.iter().map(|s| s.as_str())
    }

    /// Number `other`'s products here too: entry k of the result is the number here of `other`'s
    /// product k (the identity when `other` numbers the same products the same way).
    pub fn absorb(&mut self, other: &Products) -> Vec<u32> {
        other.iter().map(|id| self.intern(id)).collect()
    }
}

/// Renumber records' products by `absorb`'s result (nothing to do for the identity).
pub fn renumber_products<T>(records: &mut [T], map: &[u32], product: impl Fn(&mut T) -> &mut u32) {
    if map.iter().enumerate().all(|(k, &m)| k as u32 == m) {
        return;
    }
    for r in records {
        let p = product(r);
        *p = map[*p as usize];
    }
}

/// The strings reviews point to: texts, and reviewer ids (needed until the analysis view has
/// numbered the reviewers, then dropped).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ReviewStrings {
    /// Title and body of each review.
    pub texts: Strings,
    /// Reviewer ids.
    pub reviewer_ids: Strings,
}

impl ReviewStrings {
    /// Append `other`; `Review::shift` the references of `other`'s reviews by the result.
    pub fn append(&mut self, other: ReviewStrings) -> (u64, u64) {
        (
            self.texts.append(other.texts),
            self.reviewer_ids.append(other.reviewer_ids),
        )
    }
}

/// Hash of an order line's identity within its order: the order item id where there is one, else
/// product + SKU.
pub fn item_key(order_item_id: Option<&str>, product_id: &str, sku: Option<&str>) -> u64 {
    match order_item_id {
        Some(id) => super::hash_of(&[id], 0),
        None => super::hash_of(&[product_id, sku.unwrap_or("")], 1),
    }
}

/// Cancelled or not-yet-paid lines do not count as shipped orders (status compared ignoring ASCII
/// case, without a lower-cased copy per row).
pub fn is_shipped_status(status: Option<&str>) -> bool {
    let Some(s) = status else {
        return true;
    };
    let has = |word: &str| {
        s.as_bytes()
            .windows(word.len())
            .any(|w| w.eq_ignore_ascii_case(word.as_bytes()))
    };
    !(has("cancel") || has("pending") || has("refunded") || s.eq_ignore_ascii_case("voided"))
}

/// Zero price or fully discounted (an unpriced line is not free; a zero-priced cancelled one
/// neither).
pub fn is_free(item_price: Option<f64>, discount: Option<f64>, shipped: bool) -> bool {
    match (item_price, discount) {
        (Some(p), Some(d)) => p <= 0.0 || d >= p - 1e-9,
        (Some(p), None) => p <= 0.0 && shipped,
        _ => false,
    }
}

/// One review.
#[derive(Debug, Clone, PartialEq)]
pub struct Review {
    /// The source's id, or `<file stem>#<0-based record index>` where the source has none.
    pub review_id: Id,
    /// Product key (ASIN, Shopify product id, business id): its index in the dataset's
    /// `Products` (while loading, the file's).
    pub product: u32,
    /// Reviewer account id (a keyed hash where the source only has an email or name), in
    /// `ReviewStrings::reviewer_ids`.
    pub reviewer_id: StrRef,
    /// Stars, 1–5.
    pub rating: u8,
    /// Posting instant, seconds since the epoch, UTC.
    pub created_at: i64,
    /// Resolution of `created_at`.
    pub resolution: TimeResolution,
    /// Title and body joined by `. ` (attacker-controlled text), in `ReviewStrings::texts`;
    /// `NONE` where the source has neither.
    pub text: StrRef,
    /// Verified-purchase flag where the source has one.
    pub verified: Option<bool>,
    /// Order reference where the source has one, as `order_key` of it: it only serves linking
    /// (8 bytes where the id took 24).
    pub order_key: Option<Key>,
    /// Keyed hash of the reviewer's email (links to orders' `buyer_key`).
    pub reviewer_key: Option<Key>,
    /// Keyed hash of the reviewer's IP address.
    pub ip_key: Option<Key>,
    /// Index of the source file in the load report.
    pub source: u32,
    /// 1-based line in the source file (saturating at u32::MAX).
    pub line: u32,
    /// Index into the dataset's orders of the order this review was linked to.
    pub linked_order: OptIdx,
    /// `review_id` was assigned by revaudit (the source has none): such a review can come again
    /// under another id in an overlapping download, so it is also de-duplicated by content.
    pub assigned_id: bool,
}

impl Review {
    /// Move the string references by `ReviewStrings::append`'s result.
    pub fn shift(&mut self, (texts, reviewer_ids): (u64, u64)) {
        self.text = self.text.shifted(texts);
        self.reviewer_id = self.reviewer_id.shifted(reviewer_ids);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_store_cut_and_append() {
        let mut a = Strings::default();
        let x = a.push("héllo");
        let y = a.push_parts(&["Title", ". ", "Body"]);
        let e = a.push("");
        assert_eq!(a.get(x), Some("héllo"));
        assert_eq!(a.get(y), Some("Title. Body"));
        assert_eq!(a.get(e), Some(""));
        assert_eq!(a.get(StrRef::NONE), None);
        assert_eq!(a.str(StrRef::NONE), "");
        assert!(e.is_some() && e.is_empty() && !StrRef::NONE.is_some());
        assert!(x.start() < y.start() && y.start() < e.start() + 1);
        let mut b = Strings::default();
        let z = b.push("wörld");
        let by = a.append(b);
        assert_eq!(a.get(z.shifted(by)), Some("wörld"));
        assert_eq!(a.get(x), Some("héllo"));
        assert_eq!(StrRef::NONE.shifted(by), StrRef::NONE);
        // Cut at the limit, on a character boundary (a 2-byte character straddling it is dropped).
        let long = format!("ab{}", "é".repeat(MAX_STR_LEN / 2)); // MAX_STR_LEN + 1 bytes
        let mut c = Strings::default();
        let l = c.push(&long);
        assert_eq!(l.len(), MAX_STR_LEN - 1);
        assert!(c.str(l).ends_with('é'));
        let l2 = c.push_parts(&["xyz", &long]);
        assert_eq!(l2.len(), MAX_STR_LEN);
        assert!(c.str(l2).starts_with("xyzab") && c.str(l2).ends_with('é'));
    }

    /// Statuses are matched ignoring ASCII case, anywhere in the text ("voided" only whole).
    #[test]
    fn shipped_statuses() {
        for s in [
            "Shipped",
            "Unshipped",
            "Shipped - Delivered to Buyer",
            "Expédié",
            "void",
            "",
        ] {
            assert!(is_shipped_status(Some(s)), "{s}");
        }
        let not = [
            "Cancelled",
            "CANCELED",
            "Pending - Waiting for Pick Up",
            "Refunded",
            "VOIDED",
        ];
        for s in not {
            assert!(!is_shipped_status(Some(s)), "{s}");
        }
        assert!(is_shipped_status(Some("voided by seller")) && is_shipped_status(None));
    }

    /// An order item id and a product + SKU never give the same key, nor do parts that only join
    /// to the same text.
    #[test]
    fn item_keys_keep_their_parts_apart() {
        let keys = [
            item_key(Some("B01"), "", None),
            item_key(None, "B01", None),
            item_key(None, "B0", Some("1")),
            item_key(None, "B01", Some("")),
            item_key(None, "B01", Some("X")),
        ];
        assert_eq!(keys[1], keys[3], "no SKU is an empty SKU");
        for (i, a) in keys.iter().enumerate() {
            for (j, b) in keys.iter().enumerate() {
                assert!(
                    i == j || a != b || (i, j) == (1, 3) || (i, j) == (3, 1),
                    "{i} {j}"
                );
            }
        }
        assert_eq!(
            item_key(Some("X1"), "P", None),
            item_key(Some("X1"), "Q", Some("S"))
        );
    }

    /// Every byte of a record is ten megabytes at ten million rows: adding a field should be a
    /// decision (see the type's note), not an accident.
    #[test]
    fn records_stay_compact() {
        assert!(std::mem::size_of::<OrderLine>() <= 96);
        assert!(std::mem::size_of::<Review>() <= 96);
    }

    /// Unpriced lines (NaN) are the same price as each other, not as any priced line.
    #[test]
    fn prices_compare_with_none_as_a_value() {
        let line = |p: f64| OrderLine {
            order_id: "1".into(),
            item: 0,
            purchased_at: 0,
            resolution: TimeResolution::Second,
            shipped: true,
            free: false,
            promo: false,
            product: 0,
            quantity: 1,
            item_price: p,
            buyer_key: None,
            address_key: None,
            postal_key: None,
            source: 0,
            line: record_line(u64::MAX),
        };
        assert!(line(f64::NAN).same_price(&line(f64::NAN)));
        assert!(line(10.0).same_price(&line(10.0)));
        assert!(!line(10.0).same_price(&line(11.0)));
        assert!(!line(f64::NAN).same_price(&line(10.0)));
        assert_eq!(line(0.0).line, u32::MAX);
    }
}
