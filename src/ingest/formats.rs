//! The registry of supported export formats: how each is recognised by its header and which source
//! column feeds which canonical field (see FORMATS.md).
//!
//! Owns: names, signatures and alias tables. Must not: read files or parse values.

use std::sync::LazyLock;

use serde::Serialize;

use super::timestamp::EpochUnit;

/// Which side of the audit a file feeds.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Order lines.
    Orders,
    /// Reviews.
    Reviews,
}

impl Kind {
    /// `orders` / `reviews`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Orders => "orders",
            Kind::Reviews => "reviews",
        }
    }
}

/// How records are laid out in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    /// CSV / TSV / `;`-separated, delimiter sniffed from the header.
    Delimited,
    /// One JSON object per line.
    JsonLines,
    /// Any of the above or Parquet (generic only).
    Any,
}

/// One export format.
#[derive(Debug, Clone)]
pub struct FormatSpec {
    /// Name used on the command line and in reports.
    pub name: String,
    /// Orders or reviews.
    pub kind: Kind,
    /// Record layout.
    pub container: Container,
    /// Whether `"` quotes fields (Amazon flat files are unquoted).
    pub quoting: bool,
    /// Groups of aliases; every group must be present in the header for the format to match.
    pub signature: Vec<Vec<String>>,
    /// Canonical field → source column aliases (first present wins). `name[0]` takes element 0 of a
    /// JSON array.
    pub fields: Vec<(String, Vec<String>)>,
    /// How numeric timestamps are read.
    pub epoch_unit: EpochUnit,
    /// Timestamps are known only to the day even when numeric (Amazon 2014/2018 `unixReviewTime`).
    pub day_resolution: bool,
    /// Shopify: extra line-item rows leave order-level columns blank; fill them from the order's
    /// first row.
    pub fill_forward_by_order: bool,
    /// Explicit chrono format for timestamp fields (generic mapping files).
    pub timestamp_format: Option<String>,
    /// Offset in seconds east of UTC applied to timestamps without an offset.
    pub naive_offset_secs: i64,
    /// How the file's reviews can be linked to orders, for the load report.
    pub link_by: &'static str,
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn sig(groups: &[&[&str]]) -> Vec<Vec<String>> {
    groups.iter().map(|g| s(g)).collect()
}

fn fields(pairs: &[(&str, &[&str])]) -> Vec<(String, Vec<String>)> {
    pairs.iter().map(|(k, v)| (k.to_string(), s(v))).collect()
}

#[allow(clippy::too_many_arguments)]
fn spec(
    name: &str,
    kind: Kind,
    container: Container,
    quoting: bool,
    signature: Vec<Vec<String>>,
    fields: Vec<(String, Vec<String>)>,
    epoch_unit: EpochUnit,
    link_by: &'static str,
) -> FormatSpec {
    FormatSpec {
        name: name.to_string(),
        kind,
        container,
        quoting,
        signature,
        fields,
        epoch_unit,
        day_resolution: false,
        fill_forward_by_order: false,
        timestamp_format: None,
        naive_offset_secs: 0,
        link_by,
    }
}

/// Canonical review fields (FORMATS.md). Required ones first.
pub const REVIEW_REQUIRED: &[&str] = &["product_id", "reviewer_id", "rating", "created_at"];
/// Optional canonical review fields.
pub const REVIEW_OPTIONAL: &[&str] = &[
    "review_id",
    "title",
    "text",
    "verified",
    "order_id",
    "reviewer_email",
    "reviewer_name",
    "reviewer_ip",
    "helpful_votes",
    "product_name",
];
/// Canonical order fields. Required ones first.
pub const ORDER_REQUIRED: &[&str] = &["order_id", "purchased_at", "product_id"];
/// Optional canonical order fields.
pub const ORDER_OPTIONAL: &[&str] = &[
    "order_item_id",
    "shipped_at",
    "sku",
    "quantity",
    "item_price",
    "discount",
    "currency",
    "status",
    "buyer_key",
    "buyer_email",
    "buyer_name",
    "buyer_phone",
    "ship_address",
    "ship_postal_code",
    "ship_city",
    "ship_state",
    "ship_country",
    "promotion_ids",
    "fulfillment_channel",
    "product_name",
];

/// Every built-in format, in detection priority order.
pub static FORMATS: LazyLock<Vec<FormatSpec>> = LazyLock::new(|| {
    use Container::*;
    use Kind::*;
    let mut v = Vec::new();
    v.push(spec(
        "amazon-all-orders",
        Orders,
        Delimited,
        false,
        sig(&[
            &["amazon-order-id"],
            &["purchase-date"],
            &["order-status"],
            &["asin"],
            &["item-status"],
            &["quantity"],
        ]),
        fields(&[
            ("order_id", &["amazon-order-id"]),
            ("order_item_id", &["order-item-id"]),
            ("purchased_at", &["purchase-date"]),
            ("product_id", &["asin"]),
            ("sku", &["sku"]),
            ("product_name", &["product-name"]),
            ("quantity", &["quantity"]),
            ("item_price", &["item-price"]),
            ("discount", &["item-promotion-discount"]),
            ("currency", &["currency"]),
            ("status", &["order-status"]),
            ("ship_postal_code", &["ship-postal-code"]),
            ("ship_city", &["ship-city"]),
            ("ship_state", &["ship-state"]),
            ("ship_country", &["ship-country"]),
            ("promotion_ids", &["promotion-ids"]),
            ("fulfillment_channel", &["fulfillment-channel"]),
        ]),
        EpochUnit::Auto,
        "none (no buyer identity in this report)",
    ));
    let mut fba = spec(
        "amazon-fba-shipments",
        Orders,
        Delimited,
        false,
        sig(&[
            &["amazon-order-id", "amazon order id"],
            &["shipment-id", "shipment id"],
            &["purchase-date", "purchase date"],
            &["quantity-shipped", "shipped quantity"],
        ]),
        fields(&[
            ("order_id", &["amazon-order-id", "amazon order id"]),
            (
                "order_item_id",
                &[
                    "amazon-order-item-id",
                    "amazon order item id",
                    "shipment-item-id",
                    "shipment item id",
                ],
            ),
            ("purchased_at", &["purchase-date", "purchase date"]),
            ("shipped_at", &["shipment-date", "shipment date"]),
            ("product_id", &["sku", "merchant sku"]),
            ("sku", &["sku", "merchant sku"]),
            ("product_name", &["product-name", "product name"]),
            ("quantity", &["quantity-shipped", "shipped quantity"]),
            ("item_price", &["item-price", "item price"]),
            (
                "discount",
                &[
                    "item-promotion-discount",
                    "item promo discount",
                    "item promotion discount",
                ],
            ),
            ("currency", &["currency"]),
            ("buyer_email", &["buyer-email", "buyer email"]),
            (
                "buyer_name",
                &[
                    "buyer-name",
                    "buyer name",
                    "recipient-name",
                    "recipient name",
                ],
            ),
            (
                "buyer_phone",
                &[
                    "buyer-phone-number",
                    "buyer phone number",
                    "ship-phone-number",
                ],
            ),
            ("ship_address", &["ship-address-1", "shipping address 1"]),
            (
                "ship_postal_code",
                &["ship-postal-code", "shipping postal code"],
            ),
            ("ship_city", &["ship-city", "shipping city"]),
            ("ship_state", &["ship-state", "shipping state"]),
            ("ship_country", &["ship-country", "shipping country code"]),
            (
                "fulfillment_channel",
                &["fulfillment-channel", "fulfillment channel"],
            ),
        ]),
        EpochUnit::Auto,
        "buyer key (hashed buyer-email) + product",
    );
    fba.fill_forward_by_order = false;
    v.push(fba);
    let mut shopify = spec(
        "shopify-orders",
        Orders,
        Delimited,
        true,
        sig(&[
            &["name"],
            &["email"],
            &["financial status"],
            &["created at"],
            &["lineitem quantity"],
            &["lineitem name"],
        ]),
        fields(&[
            ("order_id", &["name"]),
            ("purchased_at", &["created at"]),
            ("shipped_at", &["fulfilled at"]),
            ("product_id", &["lineitem sku", "lineitem name"]),
            ("sku", &["lineitem sku"]),
            ("product_name", &["lineitem name"]),
            ("quantity", &["lineitem quantity"]),
            ("item_price", &["lineitem price"]),
            ("discount", &["lineitem discount"]),
            ("currency", &["currency"]),
            ("status", &["financial status"]),
            ("buyer_email", &["email"]),
            ("buyer_name", &["billing name", "shipping name"]),
            ("buyer_phone", &["phone", "shipping phone", "billing phone"]),
            ("ship_address", &["shipping address1", "shipping street"]),
            ("ship_postal_code", &["shipping zip"]),
            ("ship_city", &["shipping city"]),
            ("ship_state", &["shipping province"]),
            ("ship_country", &["shipping country"]),
            ("promotion_ids", &["discount code"]),
        ]),
        EpochUnit::Auto,
        "buyer key (hashed email) + product",
    );
    shopify.fill_forward_by_order = true;
    v.push(shopify);
    v.push(spec(
        "amazon-reviews-2023",
        Reviews,
        JsonLines,
        true,
        sig(&[&["rating"], &["asin"], &["user_id"], &["timestamp"]]),
        fields(&[
            ("product_id", &["asin"]),
            ("reviewer_id", &["user_id"]),
            ("rating", &["rating"]),
            ("created_at", &["timestamp"]),
            ("title", &["title"]),
            ("text", &["text"]),
            ("verified", &["verified_purchase"]),
            ("helpful_votes", &["helpful_vote"]),
        ]),
        EpochUnit::Millis,
        "product + time only",
    ));
    let mut r2014 = spec(
        "amazon-reviews-2014",
        Reviews,
        JsonLines,
        true,
        sig(&[
            &["reviewerid"],
            &["asin"],
            &["overall"],
            &["unixreviewtime", "reviewtime"],
            &["helpful"],
        ]),
        fields(&[
            ("product_id", &["asin"]),
            ("reviewer_id", &["reviewerid"]),
            ("reviewer_name", &["reviewername"]),
            ("rating", &["overall"]),
            ("created_at", &["unixreviewtime", "reviewtime"]),
            ("title", &["summary"]),
            ("text", &["reviewtext"]),
            ("helpful_votes", &["helpful[0]"]),
        ]),
        EpochUnit::Seconds,
        "product + time only",
    );
    r2014.day_resolution = true;
    v.push(r2014);
    let mut r2018 = spec(
        "amazon-reviews-2018",
        Reviews,
        JsonLines,
        true,
        sig(&[
            &["reviewerid"],
            &["asin"],
            &["overall"],
            &["unixreviewtime", "reviewtime"],
        ]),
        fields(&[
            ("product_id", &["asin"]),
            ("reviewer_id", &["reviewerid"]),
            ("reviewer_name", &["reviewername"]),
            ("rating", &["overall"]),
            ("created_at", &["unixreviewtime", "reviewtime"]),
            ("title", &["summary"]),
            ("text", &["reviewtext"]),
            ("verified", &["verified"]),
            ("helpful_votes", &["vote"]),
        ]),
        EpochUnit::Seconds,
        "product + time only",
    );
    r2018.day_resolution = true;
    v.push(r2018);
    v.push(spec(
        "amazon-customer-reviews",
        Reviews,
        Delimited,
        false,
        sig(&[
            &["customer_id"],
            &["review_id"],
            &["product_id"],
            &["star_rating"],
            &["review_date"],
        ]),
        fields(&[
            ("review_id", &["review_id"]),
            ("product_id", &["product_id"]),
            ("reviewer_id", &["customer_id"]),
            ("rating", &["star_rating"]),
            ("created_at", &["review_date"]),
            ("title", &["review_headline"]),
            ("text", &["review_body"]),
            ("verified", &["verified_purchase"]),
            ("helpful_votes", &["helpful_votes"]),
            ("product_name", &["product_title"]),
        ]),
        EpochUnit::Auto,
        "product + time only",
    ));
    v.push(spec(
        "trustpilot",
        Reviews,
        Delimited,
        true,
        sig(&[
            &["review id"],
            &["review created (utc)"],
            &["review consumer user id"],
            &["review stars"],
        ]),
        fields(&[
            ("review_id", &["review id"]),
            // Service reviews: the business unit / location is the "product".
            (
                "product_id",
                &[
                    "location name",
                    "business unit id",
                    "webshop name",
                    "domain url",
                ],
            ),
            ("reviewer_id", &["review consumer user id"]),
            ("reviewer_name", &["review username"]),
            ("rating", &["review stars"]),
            ("created_at", &["review created (utc)"]),
            ("title", &["review title"]),
            ("text", &["review content"]),
            ("order_id", &["reference id"]),
        ]),
        EpochUnit::Auto,
        "order id (Reference Id)",
    ));
    v.push(spec(
        "judgeme",
        Reviews,
        Delimited,
        true,
        sig(&[
            &["title"],
            &["body"],
            &["rating"],
            &["review_date"],
            &["reviewer_email"],
            &["product_id"],
        ]),
        fields(&[
            ("product_id", &["product_id"]),
            ("reviewer_email", &["reviewer_email"]),
            ("reviewer_name", &["reviewer_name"]),
            ("reviewer_ip", &["ip_address"]),
            ("rating", &["rating"]),
            ("created_at", &["review_date"]),
            ("title", &["title"]),
            ("text", &["body"]),
        ]),
        EpochUnit::Auto,
        "buyer key (hashed reviewer_email) + product",
    ));
    v.push(spec(
        "yelp",
        Reviews,
        JsonLines,
        true,
        sig(&[
            &["review_id"],
            &["user_id"],
            &["business_id"],
            &["stars"],
            &["date"],
        ]),
        fields(&[
            ("review_id", &["review_id"]),
            ("product_id", &["business_id"]),
            ("reviewer_id", &["user_id"]),
            ("rating", &["stars"]),
            ("created_at", &["date"]),
            ("text", &["text"]),
            ("helpful_votes", &["useful"]),
        ]),
        EpochUnit::Auto,
        "product + time only",
    ));
    v
});

/// Names accepted by `--orders-format` / `--reviews-format`.
pub fn format_names() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = FORMATS.iter().map(|f| f.name.as_str()).collect();
    v.push("generic");
    v
}

/// Look a built-in format up by name.
pub fn by_name(name: &str) -> Option<&'static FormatSpec> {
    FORMATS.iter().find(|f| f.name == name)
}

/// Normalise a header cell for matching: trimmed (Excel adds trailing spaces), lower case, BOM gone.
pub fn norm_header(h: &str) -> String {
    h.trim_start_matches('\u{feff}')
        .trim()
        .trim_matches('"')
        .trim()
        .to_lowercase()
}

/// Whether every signature group of `f` is present in `header` (normalised names).
pub fn matches(f: &FormatSpec, header: &[String]) -> bool {
    f.signature
        .iter()
        .all(|g| g.iter().any(|a| header_has(header, a)))
}

fn header_has(header: &[String], alias: &str) -> bool {
    let base = alias.split('[').next().unwrap_or(alias);
    header.iter().any(|h| h == base)
}

/// The generic spec for a header that already uses canonical names, if it does.
pub fn generic_canonical(header: &[String], want: Option<Kind>) -> Option<FormatSpec> {
    let has = |f: &str| header.iter().any(|h| h == f);
    let reviews = ["product_id", "rating", "created_at"]
        .iter()
        .all(|f| has(f))
        && ["reviewer_id", "reviewer_email", "reviewer_name"]
            .iter()
            .any(|f| has(f));
    let orders = ORDER_REQUIRED.iter().all(|f| has(f));
    let kind = match (reviews, orders, want) {
        (true, _, Some(Kind::Reviews)) | (true, false, None) => Kind::Reviews,
        (_, true, Some(Kind::Orders)) | (false, true, None) => Kind::Orders,
        (true, true, None) => Kind::Reviews,
        _ => return None,
    };
    Some(generic_spec(kind, None, None, 0))
}

/// A generic spec: identity mapping of canonical names, or the mapping given.
pub fn generic_spec(
    kind: Kind,
    mapping: Option<&[(String, String)]>,
    timestamp_format: Option<String>,
    naive_offset_secs: i64,
) -> FormatSpec {
    let (req, opt) = match kind {
        Kind::Reviews => (REVIEW_REQUIRED, REVIEW_OPTIONAL),
        Kind::Orders => (ORDER_REQUIRED, ORDER_OPTIONAL),
    };
    let fields: Vec<(String, Vec<String>)> = match mapping {
        Some(m) => m
            .iter()
            .map(|(c, src)| (c.clone(), vec![norm_header(src)]))
            .collect(),
        None => req
            .iter()
            .chain(opt.iter())
            .map(|f| (f.to_string(), vec![f.to_string()]))
            .collect(),
    };
    let alias = |f: &str| fields.iter().find(|(c, _)| c == f).map(|(_, a)| a.clone());
    let signature: Vec<Vec<String>> = match kind {
        // A reviewer can be identified by id, else email, else name.
        Kind::Reviews => {
            let mut sig: Vec<Vec<String>> = ["product_id", "rating", "created_at"]
                .iter()
                .filter_map(|f| alias(f))
                .collect();
            let who: Vec<String> = ["reviewer_id", "reviewer_email", "reviewer_name"]
                .iter()
                .filter_map(|f| alias(f))
                .flatten()
                .collect();
            if !who.is_empty() {
                sig.push(who);
            }
            sig
        }
        Kind::Orders => req.iter().filter_map(|r| alias(r)).collect(),
    };
    FormatSpec {
        name: "generic".into(),
        kind,
        container: Container::Any,
        quoting: true,
        signature,
        fields,
        epoch_unit: EpochUnit::Auto,
        day_resolution: false,
        fill_forward_by_order: false,
        timestamp_format,
        naive_offset_secs,
        link_by: match kind {
            Kind::Reviews => "order id if present, else buyer key + product",
            Kind::Orders => "order id / buyer key",
        },
    }
}

/// Detect a built-in format from a normalised header. The most specific match wins.
pub fn detect(header: &[String], container: Container, want: Option<Kind>) -> Option<FormatSpec> {
    let best = FORMATS
        .iter()
        .filter(|f| f.container == container || f.container == Container::Any)
        .filter(|f| want.is_none_or(|k| k == f.kind))
        .filter(|f| matches(f, header))
        .max_by_key(|f| f.signature.len());
    match best {
        Some(f) => Some(f.clone()),
        None => generic_canonical(header, want),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(cols: &str, sep: char) -> Vec<String> {
        cols.split(sep).map(norm_header).collect()
    }

    #[test]
    fn detects_all_orders_and_legacy_url_layout() {
        let modern = "amazon-order-id\tmerchant-order-id\tpurchase-date\tlast-updated-date\torder-status\tfulfillment-channel\tsales-channel\torder-channel\tship-service-level\tproduct-name\tsku\tasin\titem-status\tquantity\tcurrency\titem-price";
        assert_eq!(
            detect(&h(modern, '\t'), Container::Delimited, None)
                .unwrap()
                .name,
            "amazon-all-orders"
        );
        let legacy = modern.replace("order-channel\t", "order-channel\turl\t");
        assert_eq!(
            detect(&h(&legacy, '\t'), Container::Delimited, None)
                .unwrap()
                .name,
            "amazon-all-orders"
        );
    }

    #[test]
    fn json_2014_vs_2018() {
        let k2018 = h(
            "overall,vote,verified,reviewTime,reviewerID,asin,unixReviewTime",
            ',',
        );
        assert_eq!(
            detect(&k2018, Container::JsonLines, None).unwrap().name,
            "amazon-reviews-2018"
        );
        let k2014 = h("reviewerID,asin,reviewerName,helpful,reviewText,overall,summary,unixReviewTime,reviewTime", ',');
        assert_eq!(
            detect(&k2014, Container::JsonLines, None).unwrap().name,
            "amazon-reviews-2014"
        );
    }

    #[test]
    fn generic_by_canonical_names() {
        let g = detect(
            &h("review_id,product_id,reviewer_id,rating,created_at", ','),
            Container::Delimited,
            None,
        )
        .unwrap();
        assert_eq!((g.name.as_str(), g.kind), ("generic", Kind::Reviews));
        assert!(detect(&h("a,b,c", ','), Container::Delimited, None).is_none());
    }
}
