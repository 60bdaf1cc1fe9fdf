//! The canonical schema: one order line and one review, whatever export they came from.
//!
//! Owns: the contract between ingest and analyze. Personal fields never reach these types raw: the
//! loader stores keyed hashes (`privacy::Hasher`).

use super::timestamp::TimeResolution;

/// A low-cardinality text value shared between rows (currency, status, city, …): one allocation
/// per distinct value instead of one per row.
pub type Shared = std::sync::Arc<str>;

/// An id or hashed key: up to 24 bytes stored inline (ASINs, Amazon order ids, `h:` keys), longer
/// values on the heap. Tens of millions of rows make one allocation per id the largest memory cost.
pub type Id = compact_str::CompactString;

/// One order item (Amazon reports carry one row per order item).
///
/// Only what a statistic, the de-duplication or the linking reads is kept: ship date, currency,
/// ship city / state / country and fulfilment channel are parsed and validated (a bad ship date
/// rejects the row, the country repairs postal codes) but not stored — at ten million rows every
/// field costs hundreds of megabytes.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderLine {
    /// Order id as a string (`114-1234567-1234567`, `#1001`).
    pub order_id: Id,
    /// Order item id where the report has one.
    pub order_item_id: Option<Id>,
    /// Purchase instant, seconds since the epoch, UTC.
    pub purchased_at: i64,
    /// Resolution of `purchased_at`.
    pub resolution: TimeResolution,
    /// Product key shared with reviews (ASIN; SKU where the report has no ASIN).
    pub product_id: Id,
    /// Seller SKU.
    pub sku: Option<Id>,
    /// Units; 1 when the report has no quantity column.
    pub quantity: u32,
    /// Line total price.
    pub item_price: Option<f64>,
    /// Promotion discount on the line (positive number).
    pub discount: Option<f64>,
    /// Order status as exported (Shipped, Cancelled, paid, …).
    pub status: Option<Shared>,
    /// Keyed hash of the buyer's email (FBA relay address, Shopify email).
    pub buyer_key: Option<Id>,
    /// Keyed hash of the street address / recipient name / phone, for identity overlap.
    pub address_key: Option<Id>,
    /// Keyed hash of the normalised postal code.
    pub postal_key: Option<Id>,
    /// Promotion ids / discount codes.
    pub promotion_ids: Option<Id>,
    /// Index of the source file in the load report.
    pub source: u32,
    /// 1-based line in the source file.
    pub line: u64,
}

impl OrderLine {
    /// Cancelled or not-yet-paid lines do not count as shipped orders.
    pub fn is_shipped(&self) -> bool {
        match &self.status {
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
    /// Review title (attacker-controlled text).
    pub title: Option<String>,
    /// Review body (attacker-controlled text).
    pub text: Option<String>,
    /// Verified-purchase flag where the source has one.
    pub verified: Option<bool>,
    /// Order reference where the source has one.
    pub order_id: Option<Id>,
    /// Keyed hash of the reviewer's email (links to orders' `buyer_key`).
    pub reviewer_key: Option<Id>,
    /// Keyed hash of the reviewer's IP address.
    pub ip_key: Option<Id>,
    /// Helpful votes.
    pub helpful_votes: Option<u32>,
    /// Index of the source file in the load report.
    pub source: u32,
    /// 1-based line in the source file.
    pub line: u64,
    /// Index into the dataset's orders of the order this review was linked to.
    pub linked_order: Option<u32>,
}
