//! `AuditConfig`: every threshold of every test, with its default (METHODS.md), overridable from a
//! TOML file (`--config`). The report prints the values used.
//!
//! Owns: defaults and validation. Must not: compute anything.

use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// All thresholds. Unknown keys in the TOML file are errors (a typo must not silently fall back to
/// a default).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// False discovery rate for Benjamini–Hochberg within each test family.
    pub fdr: f64,
    /// p-value threshold for the rating question (b) of a subset test.
    pub rating_alpha: f64,
    /// The rating question answers yes only when the subset's mean rating differs from the rest's
    /// by at least this many stars.
    pub rating_min_shift: f64,
    /// Shop time zone (IANA name) for hour-of-day statistics, or "auto" to infer the UTC offset from
    /// the catalog's quietest hours.
    pub timezone: String,
    /// Local hours counted as night (start inclusive, end exclusive).
    pub night_hours: [u32; 2],
    /// Minimum reviews of a product for any product-level test (else INSUFFICIENT).
    pub min_reviews: usize,
    /// Delivery floor: a linked review sooner than this after its purchase is "too fast" (hours).
    pub delivery_floor_hours: f64,
    /// Minimum linked reviews for the lag tests.
    pub min_linked_reviews: usize,
    /// Minimum reviews with time of day for the hour-of-day test.
    pub min_hourly_reviews: usize,
    /// Trailing baseline for burst days (days).
    pub burst_baseline_days: i64,
    /// Smallest review count in a burst day or window.
    pub burst_min_reviews: u64,
    /// Smallest ratio observed / expected for a burst.
    pub burst_min_ratio: f64,
    /// Lengths of the sliding windows tested for bursts (days).
    pub burst_windows: Vec<i64>,
    /// Median order→review lag assumed when no reviews are linked (days).
    pub assumed_lag_median_days: f64,
    /// Smallest ratio of reviews per order to the catalog rate for the review-rate test.
    pub rate_min_ratio: f64,
    /// Minimum shipped orders for the review-rate test.
    pub rate_min_orders: u64,
    /// Robust z threshold for the weekly trend test.
    pub trend_z: f64,
    /// Minimum weeks with reviews for the weekly trend test.
    pub trend_min_weeks: usize,
    /// Profile tests (hour, word count, gap regularity) also need this total variation distance
    /// between the product's profile and the expected one.
    pub profile_min_distance: f64,
    /// Lockstep: minimum shared products per reviewer pair.
    pub lockstep_min_products: usize,
    /// Lockstep: co-reviews must fall within this many days.
    pub lockstep_window_days: f64,
    /// Lockstep: windows busier than this many reviews are skipped (organic crowds).
    pub lockstep_max_window_reviews: usize,
    /// Lockstep: a pair is kept when its in-window co-reviews are this improbable for two accounts
    /// of their volume (Poisson tail), divided by the larger number of candidate partners.
    pub lockstep_pair_alpha: f64,
    /// Minimum members of a reviewer group.
    pub group_min_members: usize,
    /// Rating deviation (stars) of a group from non-members that answers the rating question.
    pub group_rating_deviation: f64,
    /// Share of its products' reviews a group must have written to answer the rating question
    /// (GSRank's group size ratio).
    pub group_size_ratio: f64,
    /// Burstiness window τ (days) for reviewers and groups.
    pub burstiness_tau_days: f64,
    /// Near-duplicate text: Jaccard threshold on word 3-shingles.
    pub near_duplicate_jaccard: f64,
    /// Near-duplicate text: minimum words for a review to take part.
    pub near_duplicate_min_words: usize,
    /// Phrase repetition: minimum reviews of a product sharing a phrase.
    pub phrase_min_reviews: usize,
    /// Phrase repetition: minimum share of the product's reviews containing the phrase.
    pub phrase_min_share: f64,
    /// Order side: minimum orders of a product for concentration tests.
    pub orders_min: u64,
    /// Early review: 1 − Δdays/210 above this counts as early (SpEagle ETF).
    pub early_threshold: f64,
    /// Rating deviation DEV threshold (SpEagle).
    pub dev_threshold: f64,
    /// Review score: weight of the unsupervised behavioural prior.
    pub prior_weight: f64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            fdr: 0.01,
            rating_alpha: 0.01,
            rating_min_shift: 0.25,
            timezone: "auto".into(),
            night_hours: [0, 5],
            min_reviews: 8,
            delivery_floor_hours: 24.0,
            min_linked_reviews: 5,
            min_hourly_reviews: 25,
            burst_baseline_days: 28,
            burst_min_reviews: 5,
            burst_min_ratio: 3.0,
            burst_windows: vec![1, 3, 7],
            assumed_lag_median_days: 12.0,
            rate_min_ratio: 2.0,
            rate_min_orders: 50,
            trend_z: 3.0,
            trend_min_weeks: 8,
            profile_min_distance: 0.1,
            lockstep_min_products: 3,
            lockstep_window_days: 7.0,
            lockstep_max_window_reviews: 200,
            lockstep_pair_alpha: 0.1,
            group_min_members: 3,
            group_rating_deviation: 0.5,
            group_size_ratio: 0.3,
            burstiness_tau_days: 28.0,
            near_duplicate_jaccard: 0.7,
            near_duplicate_min_words: 12,
            phrase_min_reviews: 5,
            phrase_min_share: 0.2,
            orders_min: 30,
            early_threshold: 0.69,
            dev_threshold: 0.63,
            prior_weight: 0.35,
        }
    }
}

impl AuditConfig {
    /// Read a TOML file over the defaults and validate it.
    pub fn load(path: &Path) -> Result<AuditConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config {}", path.display()))?;
        let c: AuditConfig = toml::from_str(&text)
            .with_context(|| format!("config {} is not valid", path.display()))?;
        c.validate()
            .map_err(|m| crate::UsageError(format!("config {}: {m}", path.display())))?;
        Ok(c)
    }

    /// Check ranges.
    pub fn validate(&self) -> Result<(), String> {
        let unit = |v: f64, name: &str| {
            if (0.0..=1.0).contains(&v) && v > 0.0 {
                Ok(())
            } else {
                Err(format!("{name} must be in (0, 1]"))
            }
        };
        unit(self.fdr, "fdr")?;
        unit(self.rating_alpha, "rating_alpha")?;
        unit(self.near_duplicate_jaccard, "near_duplicate_jaccard")?;
        unit(self.phrase_min_share, "phrase_min_share")?;
        unit(self.lockstep_pair_alpha, "lockstep_pair_alpha")?;
        unit(self.profile_min_distance, "profile_min_distance")?;
        if self.night_hours[0] >= 24
            || self.night_hours[1] > 24
            || self.night_hours[0] >= self.night_hours[1]
        {
            return Err("night_hours must be [start, end) within 0..24".into());
        }
        if self.burst_windows.is_empty() || self.burst_windows.iter().any(|w| *w < 1 || *w > 31) {
            return Err("burst_windows must be 1..31 days".into());
        }
        if !(0.0..=4.0).contains(&self.rating_min_shift) {
            return Err("rating_min_shift must be within 0..4 stars".into());
        }
        if self.lockstep_min_products < 2 {
            return Err("lockstep_min_products must be at least 2".into());
        }
        if self.timezone != "auto" && self.timezone.parse::<chrono_tz::Tz>().is_err() {
            return Err(format!(
                "timezone '{}' is not an IANA time zone name (or \"auto\")",
                self.timezone
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_is_the_defaults() {
        let text = include_str!("../notebooks-data/audit-config.toml");
        let c: AuditConfig = toml::from_str(text).expect("example parses");
        assert_eq!(c, AuditConfig::default());
        assert!(c.validate().is_ok());
    }

    #[test]
    fn typos_and_bad_ranges_are_errors() {
        assert!(toml::from_str::<AuditConfig>("fdr_typo = 0.1").is_err());
        let c: AuditConfig = toml::from_str("fdr = 2.0").unwrap();
        assert!(c.validate().is_err());
        let c: AuditConfig = toml::from_str("timezone = \"Mars/Olympus\"").unwrap();
        assert!(c.validate().is_err());
        let c: AuditConfig = toml::from_str("timezone = \"Asia/Tokyo\"\nfdr = 0.05").unwrap();
        assert_eq!((c.fdr, c.min_reviews), (0.05, 8));
    }
}
