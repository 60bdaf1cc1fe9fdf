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
    /// Product key shared with reviews (ASIN; SKU where the report has no ASIN).
    pub product_id: Id,
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

/// Hash of an order line's identity within its order: the order item id where there is one, else
/// product + SKU.
pub fn item_key(order_item_id: Option<&str>, product_id: &str, sku: Option<&str>) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    match order_item_id {
        Some(id) => (0u8, id).hash(&mut h),
        None => (1u8, product_id, sku.unwrap_or("")).hash(&mut h),
    }
    h.finish()
}

/// Cancelled or not-yet-paid lines do not count as shipped orders.
pub fn is_shipped_status(status: Option<&str>) -> bool {
    match status {
        None => true,
        Some(s) => {
            let s = s.to_ascii_lowercase();
            !(s.contains("cancel")
                || s.contains("pending")
                || s.contains("refunded")
                || s == "voided")
        }
    }
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
    /// Product key (ASIN, Shopify product id, business id).
    pub product_id: Id,
    /// Reviewer account id (a keyed hash where the source only has an email or name).
    pub reviewer_id: Id,
    /// Stars, 1–5.
    pub rating: u8,
    /// Posting instant, seconds since the epoch, UTC.
    pub created_at: i64,
    /// Resolution of `created_at`.
    pub resolution: TimeResolution,
    /// Title and body joined by `. ` (attacker-controlled text; one exact-size allocation per
    /// review, no spare capacity).
    pub text: Option<Box<str>>,
    /// Verified-purchase flag where the source has one.
    pub verified: Option<bool>,
    /// Order reference where the source has one.
    pub order_id: Option<Id>,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every byte of a record is ten megabytes at ten million rows: adding a field should be a
    /// decision (see the type's note), not an accident.
    #[test]
    fn records_stay_compact() {
        assert!(std::mem::size_of::<OrderLine>() <= 112);
        assert!(std::mem::size_of::<Review>() <= 152);
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
            product_id: "P".into(),
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
