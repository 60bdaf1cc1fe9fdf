//! The audit engine: pure functions from canonical data + `AuditConfig` to findings and scores.
//!
//! Every family (timing, velocity, orders, overlap, reviewers, text) proposes *candidates*: one
//! subset test per subject with the p-value of the size question (a), the p-value of the rating
//! question (b) where it applies, an effect size and the reviews behind it. This module controls the
//! false discovery rate with Benjamini–Hochberg within each family, turns (a)/(b) into verdicts
//! (both → FAIL, one → WARN, neither → PASS), and hands the results to `scoring`.
//!
//! Must not: do I/O or know file formats.

pub mod data;
pub mod orders;
pub mod overlap;
pub mod reviewers;
pub mod scoring;
pub mod stats;
pub mod text;
pub mod timing;
pub mod velocity;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::AuditConfig;
use crate::findings::{
    Effect, Evidence, Finding, NotRun, ProductScore, ReviewScore, ReviewerScore, Subject, Verdict,
    Window,
};
use data::{day_str, AuditData};

/// One proposed test result, before multiple-testing control.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Family.
    pub family: &'static str,
    /// Test.
    pub test: &'static str,
    /// Subject.
    pub subject: Subject,
    /// Day window (inclusive day numbers).
    pub window: Option<(i64, i64)>,
    /// p of the size question (a).
    pub p: f64,
    /// q, when the family already adjusted it (burst windows are merged after adjustment).
    pub q: Option<f64>,
    /// p of the rating question (b).
    pub p_rating: Option<f64>,
    /// Extra condition on (a), e.g. a minimum effect size.
    pub effect_ok: bool,
    /// Whether (b) alone may warn (share tests) or needs (a) (tests whose subset only exists when
    /// (a) holds).
    pub b_alone_warns: bool,
    /// Worst verdict this test may give (some signals can only warn).
    pub max_verdict: Verdict,
    /// Effect size.
    pub effect: Effect,
    /// Reviews behind it (indices into `AuditData::reviews`).
    pub reviews: Vec<u32>,
    /// Strength with which the subset's reviews inherit the finding in their scores.
    pub review_strength: f64,
    /// Extra reviewer ids (beyond the reviews' authors).
    pub reviewers: Vec<u32>,
    /// One plain sentence.
    pub sentence: String,
}

impl Candidate {
    /// A candidate with neutral defaults.
    pub fn new(
        family: &'static str,
        test: &'static str,
        subject: Subject,
        p: f64,
        effect: Effect,
        sentence: String,
    ) -> Self {
        Candidate {
            family,
            test,
            subject,
            window: None,
            p: if p.is_finite() {
                p.clamp(0.0, 1.0)
            } else {
                1.0
            },
            q: None,
            p_rating: None,
            effect_ok: true,
            b_alone_warns: false,
            max_verdict: Verdict::Fail,
            effect,
            reviews: Vec::new(),
            review_strength: 0.5,
            reviewers: Vec::new(),
            sentence,
        }
    }
}

/// A direct per-review signal (not through a product finding): too fast, near-duplicate, …
#[derive(Debug, Clone)]
pub struct ReviewSignal {
    /// Review index.
    pub review: u32,
    /// Reason and strength (a constant of the test: 16 bytes a signal, where millions of
    /// reviews carry one at scale).
    pub kind: &'static SignalKind,
}

/// What a direct signal says: its reason code and strength.
#[derive(Debug)]
pub struct SignalKind {
    /// Reason code.
    pub reason: &'static str,
    /// Strength in [0, 1].
    pub strength: f64,
}

/// What one family returns.
#[derive(Debug, Default)]
pub struct FamilyOutput {
    /// Proposed tests.
    pub candidates: Vec<Candidate>,
    /// Direct review signals.
    pub signals: Vec<ReviewSignal>,
    /// Tests that could not run.
    pub not_run: Vec<NotRun>,
    /// Reviewer groups found (overlap family).
    pub groups: Vec<GroupInfo>,
    /// Product pairs sharing reviewers (overlap family).
    pub product_pairs: Vec<ProductPair>,
}

impl FamilyOutput {
    /// Add `other`'s outputs after this one's.
    pub fn append(&mut self, other: FamilyOutput) {
        self.candidates.extend(other.candidates);
        self.signals.extend(other.signals);
        self.not_run.extend(other.not_run);
        self.groups.extend(other.groups);
        self.product_pairs.extend(other.product_pairs);
    }
}

/// A reviewer group, for the report.
#[derive(Debug, Clone, Serialize)]
pub struct GroupInfo {
    /// `G1`, `G2`, … in order of evidence.
    pub id: String,
    /// Member reviewer ids.
    pub members: Vec<String>,
    /// Products the group supports.
    pub products: Vec<String>,
    /// Reviews by members on those products.
    pub review_ids: Vec<String>,
    /// First and last day of those reviews.
    pub window: Window,
    /// Days from first to last review.
    pub span_days: f64,
    /// Mean member rating minus mean non-member rating on the same products.
    pub rating_deviation: f64,
    /// Mean pairwise Jaccard similarity of member texts (word 3-shingles), if texts exist.
    pub text_similarity: Option<f64>,
    /// Share of member reviews that are early (SpEagle ETF).
    pub early_share: f64,
    /// FRAUDAR density of the block.
    pub density: f64,
    /// p, q and verdict.
    pub p: f64,
    /// BH q.
    pub q: f64,
    /// Verdict.
    pub verdict: crate::findings::Verdict,
}

/// Two products and the reviewers they share.
#[derive(Debug, Clone, Serialize)]
pub struct ProductPair {
    /// First product.
    pub a: String,
    /// Second product.
    pub b: String,
    /// Shared reviewers.
    pub shared_reviewers: u64,
}

/// A test's tally, for the report's methodology and data-quality sections.
#[derive(Debug, Clone, Serialize, Default)]
pub struct TestTally {
    /// Family.
    pub family: String,
    /// Subjects tested.
    pub tested: u64,
    /// Verdict counts.
    pub warn: u64,
    /// Fails.
    pub fail: u64,
}

/// The whole analysis.
#[derive(Debug)]
pub struct Analysis {
    /// WARN/FAIL findings, sorted by verdict, q, id.
    pub findings: Vec<Finding>,
    /// Tests that could not run.
    pub not_run: Vec<NotRun>,
    /// Per test: subjects tested and verdicts.
    pub tallies: BTreeMap<String, TestTally>,
    /// Reviewer groups.
    pub groups: Vec<GroupInfo>,
    /// Product pairs sharing the most reviewers.
    pub product_pairs: Vec<ProductPair>,
    /// Scores.
    pub reviews: Vec<ReviewScore>,
    /// Reviewer scores.
    pub reviewers: Vec<ReviewerScore>,
    /// Product scores and verdicts.
    pub products: Vec<ProductScore>,
}

/// Run every family, control the FDR per family, decide verdicts, score. Once the families have
/// run, `d` keeps only the texts of the products at risk (`AuditData::keep_texts_of`).
pub fn analyze(d: &mut AuditData, cfg: &AuditConfig, progress: &(dyn Fn(&str) + Sync)) -> Analysis {
    let outputs = run_families(d, cfg, progress);
    decide_and_score(d, cfg, progress, outputs)
}

/// A family: its progress line and how it runs.
type Family = (&'static str, fn(&AuditData, &AuditConfig) -> FamilyOutput);

/// The families other than text, in the order their outputs are combined.
const FAMILIES: [Family; 5] = [
    ("timing statistics", timing::run),
    ("velocity statistics", velocity::run),
    ("order-side statistics", orders::run),
    ("reviewer overlap", overlap::run),
    ("reviewer signals", reviewers::run),
];

/// The order `FAMILIES` are started in: longest first (at ten million reviews), so that the one
/// left running alone at the end is a short one.
const LONGEST_FIRST: [usize; 5] = [3, 0, 2, 1, 4];

/// Every family's output, in a fixed order.
fn run_families(
    d: &AuditData,
    cfg: &AuditConfig,
    progress: &(dyn Fn(&str) + Sync),
) -> Vec<FamilyOutput> {
    // The text family's near-duplicate search runs first, on every core (its signatures are the
    // largest working memory of the analysis); then the other families, two at a time, beside
    // the rest of the text family. Families only read the data, and their outputs are
    // combined in a fixed order, so the result does not depend on timing.
    progress("text statistics (near-duplicate search first, phrase tests alongside)");
    let (text_out, mut rest) = text::run_with(d, cfg, || {
        progress("timing, velocity, order-side statistics; reviewer overlap and signals");
        in_pool(&LONGEST_FIRST, 2, |&k| {
            let (name, run) = FAMILIES[k];
            let out = run(d, cfg);
            progress(&format!("{name} done"));
            (k, out)
        })
    });
    rest.sort_by_key(|r| r.0);
    let mut outputs: Vec<FamilyOutput> = rest.into_iter().map(|r| r.1).collect();
    outputs.push(text_out);
    progress("text statistics done");
    outputs
}

/// FDR control, verdicts and scores from the families' outputs.
fn decide_and_score(
    d: &mut AuditData,
    cfg: &AuditConfig,
    progress: &(dyn Fn(&str) + Sync),
    outputs: Vec<FamilyOutput>,
) -> Analysis {
    progress("verdicts and scores");
    let mut all = FamilyOutput::default();
    for o in outputs {
        all.append(o);
    }
    let FamilyOutput {
        candidates,
        signals,
        mut not_run,
        groups,
        product_pairs,
    } = all;
    let decided = corroborate(decide(candidates, cfg), cfg);
    let mut tallies: BTreeMap<String, TestTally> = BTreeMap::new();
    for (c, v, _) in &decided {
        let t = tallies.entry(c.test.to_string()).or_default();
        t.family = c.family.to_string();
        t.tested += 1;
        match v {
            Verdict::Warn => t.warn += 1,
            Verdict::Fail => t.fail += 1,
            _ => {}
        }
    }
    let flagged: Vec<(Candidate, Verdict, f64)> = decided
        .into_iter()
        .filter(|(_, v, _)| matches!(v, Verdict::Warn | Verdict::Fail))
        .collect();
    // A product is at risk (WARN or FAIL) when a flagged finding is about it: only its reviews'
    // texts are quoted from here on.
    let mut at_risk = vec![false; d.products.len()];
    for (c, _, _) in &flagged {
        if let Subject::Product(p) = &c.subject {
            if let Ok(i) = d.products.binary_search(p) {
                at_risk[i] = true;
            }
        }
    }
    d.keep_texts_of(&at_risk);
    let d: &AuditData = d;
    let (reviews, reviewers, products) = scoring::score(d, cfg, &flagged, signals);
    debug_assert!(products
        .iter()
        .filter(|p| matches!(p.verdict, Verdict::Warn | Verdict::Fail))
        .all(|p| d
            .products
            .binary_search(&p.product_id)
            .is_ok_and(|i| at_risk[i])));
    let mut findings: Vec<Finding> = in_chunks(flagged.len(), 16, |range| {
        flagged[range]
            .iter()
            .map(|(c, v, q)| to_finding(d, c, *v, *q))
            .collect::<Vec<Finding>>()
    })
    .into_iter()
    .flatten()
    .collect();
    // Ids must be unique within a report: a second finding with the same id gets a suffix.
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for f in findings.iter_mut() {
        let n = seen.entry(f.id.clone()).or_default();
        *n += 1;
        if *n > 1 {
            f.id = format!("{}#{}", f.id, n);
        }
    }
    findings.sort_by(|a, b| {
        b.verdict
            .cmp(&a.verdict)
            .then(a.q.total_cmp(&b.q))
            .then(a.id.cmp(&b.id))
    });
    not_run.sort_by(|a, b| (&a.family, &a.test).cmp(&(&b.family, &b.test)));
    not_run.dedup_by(|a, b| a.family == b.family && a.test == b.test);
    Analysis {
        findings,
        not_run,
        tallies,
        groups,
        product_pairs,
        reviews,
        reviewers,
        products,
    }
}

/// BH within each family, then verdicts.
pub fn decide(candidates: Vec<Candidate>, cfg: &AuditConfig) -> Vec<(Candidate, Verdict, f64)> {
    let mut by_family: BTreeMap<&'static str, Vec<usize>> = BTreeMap::new();
    for (i, c) in candidates.iter().enumerate() {
        if c.q.is_none() {
            by_family.entry(c.family).or_default().push(i);
        }
    }
    let mut q = vec![1.0; candidates.len()];
    for (i, c) in candidates.iter().enumerate() {
        if let Some(v) = c.q {
            q[i] = v;
        }
    }
    for idx in by_family.values() {
        let ps: Vec<f64> = idx.iter().map(|&i| candidates[i].p).collect();
        for (k, v) in stats::benjamini_hochberg(&ps).into_iter().enumerate() {
            q[idx[k]] = v;
        }
    }
    candidates
        .into_iter()
        .zip(q)
        .map(|(c, q)| {
            let a = q < cfg.fdr && c.effect_ok;
            let b = c.p_rating.is_some_and(|p| p < cfg.rating_alpha);
            let v = match (a, b) {
                (true, true) => Verdict::Fail,
                (true, false) => Verdict::Warn,
                (false, true) if c.b_alone_warns => Verdict::Warn,
                _ => Verdict::Pass,
            };
            let v = v.min(c.max_verdict);
            (c, v, q)
        })
        .collect()
}

/// Descriptive profile tests: they say "different", not "larger", so they do not corroborate.
pub const PROFILE_TESTS: &[&str] = &[
    "gap_regularity",
    "word_count_profile",
    "hour_profile",
    "lag_distribution",
];

/// Families that must independently answer the size question (a) for one product before the product
/// fails on corroboration alone.
pub const CORROBORATING_FAMILIES: usize = 3;

/// Independent corroboration: when tests of at least three different families each find a
/// significant excess for one product (question (a)), its strongest such finding is raised to FAIL
/// even if no single test's rating question answered yes (a 5-star ring on an already 5-star product
/// does not move the rating, but the accounts, orders and timing still say the same thing).
pub fn corroborate(
    mut decided: Vec<(Candidate, Verdict, f64)>,
    cfg: &AuditConfig,
) -> Vec<(Candidate, Verdict, f64)> {
    let mut families: BTreeMap<String, std::collections::BTreeSet<&'static str>> = BTreeMap::new();
    let mut strongest: BTreeMap<String, (f64, usize)> = BTreeMap::new();
    for (i, (c, v, q)) in decided.iter().enumerate() {
        let Subject::Product(p) = &c.subject else {
            continue;
        };
        let a = *q < cfg.fdr && c.effect_ok;
        if !a || *v < Verdict::Warn || PROFILE_TESTS.contains(&c.test) {
            continue;
        }
        families.entry(p.clone()).or_default().insert(c.family);
        let e = strongest.entry(p.clone()).or_insert((f64::INFINITY, i));
        if *q < e.0 && c.max_verdict == Verdict::Fail {
            *e = (*q, i);
        }
    }
    for (p, fams) in families {
        if fams.len() < CORROBORATING_FAMILIES {
            continue;
        }
        if let Some(&(q, i)) = strongest.get(&p) {
            if q.is_finite() && decided[i].1 == Verdict::Warn {
                decided[i].1 = Verdict::Fail;
                let names: Vec<&str> = fams.iter().copied().collect();
                decided[i].0.sentence.push_str(&format!(
                    " Corroborated by {} test families ({}).",
                    names.len(),
                    names.join(", ")
                ));
            }
        }
    }
    decided
}

fn to_finding(d: &AuditData, c: &Candidate, v: Verdict, q: f64) -> Finding {
    let window = c.window.map(|(a, b)| Window {
        from: day_str(a),
        to: day_str(b),
    });
    let id = match &window {
        Some(w) => format!("{}:{}:{}", c.test, c.subject.id(), w.from),
        None => format!("{}:{}", c.test, c.subject.id()),
    };
    // Distinct indices first (evidence can list hundreds of thousands of reviews), then their
    // ids: the same sorted, de-duplicated lists with one string per distinct review and reviewer.
    let mut reviews: Vec<u32> = c.reviews.clone();
    reviews.sort_unstable();
    reviews.dedup();
    let mut review_ids: Vec<String> = reviews
        .iter()
        .map(|&i| d.reviews[i as usize].id.to_string())
        .collect();
    review_ids.sort();
    review_ids.dedup();
    let mut who: Vec<u32> = reviews
        .iter()
        .map(|&i| d.reviews[i as usize].reviewer)
        .chain(c.reviewers.iter().copied())
        .collect();
    who.sort_unstable();
    who.dedup();
    let mut reviewer_ids: Vec<String> = who
        .iter()
        .map(|&r| d.reviewers[r as usize].to_string())
        .collect();
    reviewer_ids.sort();
    reviewer_ids.dedup();
    let mut days: Vec<i64> = reviews
        .iter()
        .map(|&i| d.reviews[i as usize].day())
        .collect();
    days.sort_unstable();
    days.dedup();
    Finding {
        id,
        family: c.family.to_string(),
        test: c.test.to_string(),
        subject: c.subject.clone(),
        window,
        verdict: v,
        p: round_sig(c.p),
        q: round_sig(q),
        p_rating: c.p_rating.map(round_sig),
        effect: Effect {
            name: c.effect.name.clone(),
            value: round_sig(c.effect.value),
        },
        evidence: Evidence {
            review_ids,
            reviewer_ids,
            days: days.into_iter().map(day_str).collect(),
        },
        sentence: c.sentence.clone(),
    }
}

/// Round to 6 significant digits so outputs are stable across platforms' last-bit differences.
/// Union-find over `0..n` with path compression; the smaller root becomes the root, so every root
/// is its set's smallest element (whatever order the unions come in).
pub struct Dsu(Vec<u32>);

impl Dsu {
    /// `n` singletons.
    pub fn new(n: usize) -> Self {
        Dsu((0..n as u32).collect())
    }
    /// Root of `x`'s set.
    pub fn find(&mut self, x: u32) -> u32 {
        let mut r = x;
        while self.0[r as usize] != r {
            r = self.0[r as usize];
        }
        let mut y = x;
        while self.0[y as usize] != r {
            let n = self.0[y as usize];
            self.0[y as usize] = r;
            y = n;
        }
        r
    }
    /// Join the sets of `a` and `b`.
    pub fn union(&mut self, a: u32, b: u32) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            let (lo, hi) = if ra < rb { (ra, rb) } else { (rb, ra) };
            self.0[hi as usize] = lo;
        }
    }
}

/// The parts joined in order. The first part's vector is grown in place and each later part is
/// freed once moved over, so the whole is not held twice (results of `in_chunks` at scale).
pub fn concat<T>(parts: Vec<Vec<T>>) -> Vec<T> {
    let mut parts = parts.into_iter();
    let mut all = parts.next().unwrap_or_default();
    for mut p in parts {
        all.append(&mut p);
    }
    all
}

/// Threads for work split across cores: the machine's, at most 4.
pub fn worker_threads() -> usize {
    std::thread::available_parallelism()
        .map(|t| t.get())
        .unwrap_or(1)
        .clamp(1, 4)
}

/// Run `f` over consecutive chunks of `0..n` on up to `available_parallelism` threads (at most 4)
/// and return the chunks' results in order, so callers combine them exactly as a single pass
/// would. Inputs under `min_per_thread` items per thread run on the calling thread.
pub fn in_chunks<T: Send>(
    n: usize,
    min_per_thread: usize,
    f: impl Fn(std::ops::Range<usize>) -> T + Sync,
) -> Vec<T> {
    let threads = worker_threads();
    if threads == 1 || n < 2 * min_per_thread.max(1) {
        return vec![f(0..n)];
    }
    let step = n.div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|k| {
                let f = &f;
                s.spawn(move || f(k * step..((k + 1) * step).min(n)))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

/// `f` over every job on `threads` threads, each thread taking the next job not yet taken (put the
/// longest first); results in job order, whatever the timing.
pub fn in_pool<J: Sync, T: Send>(jobs: &[J], threads: usize, f: impl Fn(&J) -> T + Sync) -> Vec<T> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let done: std::sync::Mutex<Vec<(usize, T)>> = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..threads.clamp(1, jobs.len().max(1)) {
            s.spawn(|| loop {
                let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(job) = jobs.get(k) else { break };
                let out = f(job);
                done.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((k, out));
            });
        }
    });
    let mut done = done.into_inner().unwrap_or_else(|e| e.into_inner());
    done.sort_by_key(|x| x.0);
    done.into_iter().map(|x| x.1).collect()
}

/// `f` over `0..n` cut into runs of `per_run` (the last shorter), the runs taken by the worker
/// threads one at a time (`in_pool`: uneven work balances out); results in run order.
pub fn in_runs<T: Send>(
    n: usize,
    per_run: usize,
    f: impl Fn(std::ops::Range<usize>) -> T + Sync,
) -> Vec<T> {
    let runs: Vec<std::ops::Range<usize>> = (0..n)
        .step_by(per_run.max(1))
        .map(|k| k..(k + per_run.max(1)).min(n))
        .collect();
    in_pool(&runs, worker_threads(), |r| f(r.clone()))
}

/// `in_chunks` over `0..n` in rounds of `round` items: each round's chunk results go to `take` in
/// order, and are freed, while the next round is computed (on other threads: `take`, often a copy
/// into a large result, does not leave the cores idle) — at most two rounds' results stand at
/// once, so at scale the results of all chunks never stand beside what `take` builds from them.
/// `f` gets ranges of `0..n`.
pub fn in_rounds<T: Send>(
    n: usize,
    round: usize,
    min_per_thread: usize,
    f: impl Fn(std::ops::Range<usize>) -> T + Sync,
    mut take: impl FnMut(T),
) {
    let round = round.max(1);
    let f = &f;
    let compute = move |start: usize| {
        let len = round.min(n - start);
        in_chunks(len, min_per_thread, |r| f(start + r.start..start + r.end))
    };
    let mut starts = (0..n).step_by(round);
    std::thread::scope(|s| {
        let mut pending = starts.next().map(|start| s.spawn(move || compute(start)));
        while let Some(h) = pending {
            let parts = h.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
            pending = starts.next().map(|start| s.spawn(move || compute(start)));
            for part in parts {
                take(part);
            }
        }
    });
}

pub fn round_sig(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return if x.is_finite() { 0.0 } else { 1.0 };
    }
    let mag = x.abs().log10().floor() as i32;
    let f = 10f64.powi(5 - mag);
    (x * f).round() / f
}

/// Product display helper shared by the families' sentences.
pub fn pname(d: &AuditData, p: usize) -> &str {
    &d.products[p]
}

/// Mean of ratings of the given reviews.
pub fn mean_rating(d: &AuditData, idx: &[u32]) -> f64 {
    if idx.is_empty() {
        return f64::NAN;
    }
    idx.iter()
        .map(|&i| d.reviews[i as usize].rating as f64)
        .sum::<f64>()
        / idx.len() as f64
}

/// Ratings of the given reviews as floats.
pub fn ratings(d: &AuditData, idx: &[u32]) -> Vec<f64> {
    idx.iter()
        .map(|&i| d.reviews[i as usize].rating as f64)
        .collect()
}

/// The rating question (b) of a subset test. Against the rest of the product's audited reviews when
/// there are at least 20 of them: Mann–Whitney, answering yes only when the subset's mean rating
/// differs from the rest's by at least `rating_min_shift` stars (a smaller shift gives p = 1: with
/// tens of thousands of reviews a product's subsets differ "significantly" by a few hundredths of a
/// star, which does not move what a shopper sees). With fewer other reviews there is too little to
/// compare against, so the subset is compared with the catalog: the share of its dominant rating
/// (at least 60% of at least 5 reviews) against that rating's share among the catalog's other
/// reviews (binomial).
pub fn rating_question(
    d: &AuditData,
    cfg: &AuditConfig,
    subset: &[u32],
    rest: &[u32],
) -> Option<f64> {
    if rest.len() >= 20 {
        let p = stats::mann_whitney(&ratings(d, subset), &ratings(d, rest))?;
        let shift = (mean_rating(d, subset) - mean_rating(d, rest)).abs();
        return Some(if shift >= cfg.rating_min_shift {
            p
        } else {
            1.0
        });
    }
    let mut hist = [0u64; 6];
    for &i in subset {
        hist[d.reviews[i as usize].rating as usize] += 1;
    }
    let modal = (1..=5).max_by_key(|&k| (hist[k], k)).unwrap_or(5);
    let k = hist[modal];
    let nc = d.reviews.len() as u64 - subset.len() as u64;
    let kc = d.rating_hist[modal].saturating_sub(k);
    // Too few reviews, or no dominant rating: nothing to compare.
    if nc == 0 || subset.len() < 5 || (k as f64) < 0.6 * subset.len() as f64 {
        return None;
    }
    Some(stats::binomial_upper(
        k,
        subset.len() as u64,
        (kc as f64 + 1.0) / (nc as f64 + 2.0),
    ))
}

/// Split a product's audited reviews into (subset, rest) by a predicate.
pub fn split_audited(
    d: &AuditData,
    p: usize,
    pred: impl Fn(&data::Rev) -> bool,
) -> (Vec<u32>, Vec<u32>) {
    d.audited_of(p).partition(|&i| pred(&d.reviews[i as usize]))
}

/// A share test's candidate: `k` of product `p`'s `n` units have a trait where the rest of the
/// catalog has share `p0`; p is the binomial upper tail and the effect the ratio of shares.
pub fn share_candidate(
    family: &'static str,
    test: &'static str,
    d: &AuditData,
    p: usize,
    (k, n, p0): (u64, u64, f64),
    sentence: String,
) -> Candidate {
    Candidate::new(
        family,
        test,
        Subject::Product(d.products[p].clone()),
        stats::binomial_upper(k, n, p0),
        Effect {
            name: "share / catalog share".into(),
            value: (k as f64 / n.max(1) as f64) / p0,
        },
        sentence,
    )
}

/// The size question's effect floor for profile tests: the observed profile is at least
/// `profile_min_distance` (total variation) from the expected proportions.
pub fn profile_differs(cfg: &AuditConfig, obs: &[u64], expected: &[f64]) -> bool {
    stats::total_variation(obs, expected) >= cfg.profile_min_distance
}

/// A profile test (WARN at most): a product's histogram `obs` against the rest of the catalog's
/// (`cat` minus `obs`, half a count added per bin), chi-square goodness of fit. The sentence gets
/// the statistic and degrees of freedom. The size question also needs the two profiles to differ
/// by `profile_min_distance` (total variation): with thousands of reviews any real-world profile
/// differs "significantly" from the catalog's.
#[allow(clippy::too_many_arguments)]
pub fn profile_candidate(
    family: &'static str,
    test: &'static str,
    d: &AuditData,
    cfg: &AuditConfig,
    p: usize,
    obs: &[u64],
    cat: &[u64],
    sentence: impl FnOnce(f64, usize) -> String,
) -> Option<Candidate> {
    let props: Vec<f64> = obs
        .iter()
        .zip(cat)
        .map(|(o, c)| (c - (*o).min(*c)) as f64 + 0.5)
        .collect();
    let (stat, df, pv) = stats::chi_square_gof(obs, &props)?;
    let mut c = Candidate::new(
        family,
        test,
        Subject::Product(d.products[p].clone()),
        pv,
        Effect {
            name: "chi-square".into(),
            value: stat,
        },
        sentence(stat, df),
    );
    c.max_verdict = Verdict::Warn;
    c.effect_ok = profile_differs(cfg, obs, &props);
    Some(c)
}

/// Leave-one-out catalog share with add-one smoothing: (K − k + 1) / (N − n + 2).
pub fn loo_share(k_total: u64, n_total: u64, k: u64, n: u64) -> f64 {
    (k_total.saturating_sub(k) as f64 + 1.0) / (n_total.saturating_sub(n) as f64 + 2.0)
}

/// A `NotRun`.
pub fn not_run(family: &str, test: &str, reason: &str) -> NotRun {
    NotRun {
        family: family.into(),
        test: test.into(),
        reason: reason.into(),
    }
}

/// Percent with one decimal.
pub fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

#[cfg(test)]
mod decide_tests {
    use super::*;

    /// Rounds hand over every chunk of `0..n` once, in order, whatever the round size.
    #[test]
    fn rounds_cover_the_range_in_order() {
        for (n, round) in [(0, 4), (1, 4), (10, 3), (10, 10), (1000, 7), (1000, 0)] {
            let mut seen = Vec::new();
            in_rounds(n, round, 1, |r| r, |r| seen.extend(r));
            assert_eq!(seen, (0..n).collect::<Vec<_>>(), "n {n}, round {round}");
        }
    }

    fn cand(p: f64, pr: Option<f64>) -> Candidate {
        let mut c = Candidate::new(
            "f",
            "t",
            Subject::Product("P".into()),
            p,
            Effect {
                name: "x".into(),
                value: 1.0,
            },
            String::new(),
        );
        c.p_rating = pr;
        c
    }

    #[test]
    fn verdict_rules() {
        let cfg = AuditConfig::default();
        let out = decide(
            vec![
                cand(1e-9, Some(1e-5)),
                cand(1e-9, Some(0.5)),
                cand(0.5, Some(1e-5)),
                cand(0.5, None),
            ],
            &cfg,
        );
        let v: Vec<Verdict> = out.iter().map(|x| x.1).collect();
        assert_eq!(
            v,
            vec![Verdict::Fail, Verdict::Warn, Verdict::Pass, Verdict::Pass]
        );
        let mut c = cand(0.5, Some(1e-5));
        c.b_alone_warns = true;
        let mut capped = cand(1e-9, Some(1e-9));
        capped.max_verdict = Verdict::Warn;
        let out = decide(vec![c, capped], &cfg);
        assert_eq!(out[0].1, Verdict::Warn);
        assert_eq!(out[1].1, Verdict::Warn);
    }

    #[test]
    fn rounding() {
        assert_eq!(round_sig(0.123456789), 0.123457);
        assert_eq!(round_sig(1.23456789e-12), 1.23457e-12);
        assert_eq!(round_sig(0.0), 0.0);
    }
}
