//! The data the report renders: findings, verdicts, evidence and scores.
//!
//! Owns: the output contract's types. Must not: compute statistics or know file formats.

use serde::{Deserialize, Serialize};

/// A verdict. Ordered: Pass < Insufficient < Warn < Fail (worst wins when combining).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Nothing unusual.
    Pass,
    /// Too little data to test.
    Insufficient,
    /// One of the two subset-test questions answered yes.
    Warn,
    /// Both answered yes.
    Fail,
}

impl Verdict {
    /// `pass|warn|fail|insufficient`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Insufficient => "insufficient",
            Verdict::Warn => "warn",
            Verdict::Fail => "fail",
        }
    }
}

/// What a finding is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "id")]
pub enum Subject {
    /// One product.
    Product(String),
    /// One reviewer group (id `G1`, `G2`, …).
    Group(String),
    /// The whole catalog.
    Catalog(String),
}

impl Subject {
    /// The id part.
    pub fn id(&self) -> &str {
        match self {
            Subject::Product(s) | Subject::Group(s) | Subject::Catalog(s) => s,
        }
    }
}

/// A time window (UTC days, inclusive).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// First day, YYYY-MM-DD.
    pub from: String,
    /// Last day.
    pub to: String,
}

/// An effect size with its name (ratio, difference, statistic).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Effect {
    /// What it measures.
    pub name: String,
    /// Value.
    pub value: f64,
}

/// What a person can check.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// Review ids behind the finding.
    pub review_ids: Vec<String>,
    /// Reviewer ids.
    pub reviewer_ids: Vec<String>,
    /// Days (YYYY-MM-DD).
    pub days: Vec<String>,
}

/// One result of one test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable id: `<test>:<subject>[:<window start>]`, the same next month for the same thing.
    pub id: String,
    /// Test family: timing, velocity, overlap, reviewers, text, orders.
    pub family: String,
    /// Test name.
    pub test: String,
    /// What it is about.
    pub subject: Subject,
    /// When.
    pub window: Option<Window>,
    /// Verdict.
    pub verdict: Verdict,
    /// p-value of the size question (a).
    pub p: f64,
    /// Benjamini–Hochberg q-value within the family.
    pub q: f64,
    /// p-value of the rating question (b), if asked.
    pub p_rating: Option<f64>,
    /// Effect size.
    pub effect: Effect,
    /// Ids and days behind it.
    pub evidence: Evidence,
    /// One plain sentence a seller understands.
    pub sentence: String,
}

/// A test that could not run, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotRun {
    /// Family.
    pub family: String,
    /// Test.
    pub test: String,
    /// Why.
    pub reason: String,
}

/// Per-review score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReviewScore {
    /// Index of the review in the analysis view (`AuditData::reviews`): its id, product, reviewer,
    /// time and stars are read from there when the table is written (tens of millions of rows
    /// would otherwise hold four more strings each).
    pub review: u32,
    /// Suspicion in [0, 1].
    pub score: f64,
    /// Reason codes, `;`-separated.
    pub reasons: Reasons,
}

/// Reason codes, `;`-separated. Millions of score rows share a few hundred distinct lists, so each
/// distinct list is one shared string (`ReasonTable`), not an allocation per row; empty is none.
/// A thin pointer (8 bytes, where `Arc<str>` takes 16): one per score row.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Reasons(Option<std::sync::Arc<String>>);

impl std::ops::Deref for Reasons {
    type Target = str;
    fn deref(&self) -> &str {
        self.0.as_deref().map_or("", String::as_str)
    }
}

impl Serialize for Reasons {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self)
    }
}

/// The distinct reason lists seen so far (one table per thread of scoring; looked up once per
/// review, so with the fast Fx hash: the lists are revaudit's own codes, not attacker input).
#[derive(Default)]
pub struct ReasonTable(rustc_hash::FxHashSet<std::sync::Arc<String>>);

impl ReasonTable {
    /// The reason list of `codes` joined by `;`, shared with every earlier equal list.
    pub fn get<'a>(
        &mut self,
        codes: impl IntoIterator<Item = &'a str>,
        buf: &mut String,
    ) -> Reasons {
        buf.clear();
        for (k, c) in codes.into_iter().enumerate() {
            if k > 0 {
                buf.push(';');
            }
            buf.push_str(c);
        }
        if buf.is_empty() {
            return Reasons(None);
        }
        if let Some(r) = self.0.get(&*buf) {
            return Reasons(Some(r.clone()));
        }
        let r = std::sync::Arc::new(buf.clone());
        self.0.insert(r.clone());
        Reasons(Some(r))
    }
}

/// Per-reviewer score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReviewerScore {
    /// Reviewer index in the analysis view (its id is `AuditData::reviewers[reviewer]`): millions of
    /// rows at scale, so the id is not copied.
    pub reviewer: u32,
    /// Reviews in the audited period.
    pub n_reviews: u32,
    /// Suspicion in [0, 1].
    pub score: f64,
    /// Reason codes.
    pub reasons: Reasons,
}

/// Per-product score and verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProductScore {
    /// Product id.
    pub product_id: String,
    /// Reviews in the audited period.
    pub n_reviews: usize,
    /// Shipped order lines in the audited period.
    pub n_orders: u64,
    /// Suspicion in [0, 1].
    pub score: f64,
    /// Verdict.
    pub verdict: Verdict,
    /// Mean rating of the audited reviews.
    pub original_rating: f64,
    /// Mean rating after down-weighting suspicious reviews.
    pub adjusted_rating: f64,
    /// Reason codes (tests that warned or failed).
    pub reasons: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One score row per review and per reviewer: tens of millions at scale.
    #[test]
    fn score_rows_stay_compact_and_share_reasons() {
        assert!(std::mem::size_of::<ReviewScore>() <= 24);
        assert!(std::mem::size_of::<ReviewerScore>() <= 24);
        let (mut table, mut buf) = (ReasonTable::default(), String::new());
        let a = table.get(["burst", "too_fast"], &mut buf);
        let b = table.get(["burst", "too_fast"], &mut buf);
        assert_eq!(&*a, "burst;too_fast");
        assert!(matches!((&a.0, &b.0), (Some(x), Some(y)) if std::sync::Arc::ptr_eq(x, y)));
        assert_eq!(&*table.get([], &mut buf), "");
    }
}
