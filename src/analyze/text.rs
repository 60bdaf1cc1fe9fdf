//! Text: near-duplicates across reviewers (MinHash + LSH on word 3-shingles, verified by Jaccard),
//! phrase repetition within a product against the catalog, word-count profile (chi-square) and
//! incentive disclaimers. Nothing here is quadratic in reviews: LSH buckets bound the comparisons.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;

use crate::config::AuditConfig;
use crate::findings::{Effect, Subject, Verdict};
use crate::ingest::avalanche as mix;

use super::data::AuditData;
use super::stats::{binomial_upper, poisson_upper};
use super::{
    loo_share, not_run, pct, profile_candidate, rating_question, share_candidate, Candidate,
    FamilyOutput, ReviewSignal, SignalKind,
};
use crate::pages::PageVec;

const FAMILY: &str = "text";
const PERMS: usize = 64;
const BANDS: usize = 16;
const ROWS: usize = PERMS / BANDS;
// A band's values (8 bits each) are its bucket key, the upper half of a u64.
const _: () = assert!(ROWS * 8 <= 32);
/// How many earlier members of an LSH bucket each review is compared with.
const COMPARE_BACK: usize = 3;
/// A set of identical signatures from several reviewers, in the near-duplicate search.
const MANY: u32 = u32::MAX;

/// Lower-case word tokens (letters and digits).
pub fn tokens(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.to_lowercase())
        .collect()
}

/// Hash of one lower-case word: its UTF-8 bytes in chunks of eight (little-endian, the last
/// zero-padded — word bytes are never 0, so the padding cannot be mistaken for a byte), each
/// chunk mixed into the state. One mix per eight bytes instead of a multiply per byte, and the
/// same value as `ascii_word`, which reads the eight bytes at once.
fn word_hash(s: &str) -> u64 {
    let mut h = WORD_SEED;
    for chunk in s.as_bytes().chunks(8) {
        let mut b = [0u8; 8];
        b[..chunk.len()].copy_from_slice(chunk);
        h = mix(h ^ u64::from_le_bytes(b));
    }
    h
}

const WORD_SEED: u64 = 0xcbf2_9ce4_8422_2325;

/// An ASCII letter or digit (a word character): `is_ascii_alphanumeric` as two range tests, which
/// the compiler runs on many bytes at once.
#[inline(always)]
fn is_word_byte(b: u8) -> bool {
    (b.wrapping_sub(b'0') < 10) | ((b | 0x20).wrapping_sub(b'a') < 26)
}

/// Bit k set: byte k of `block` (at most 64 bytes) is a word character. A full block is tested
/// into a byte array first (a loop the compiler vectorises), then packed.
#[inline(always)]
fn word_mask(block: &[u8]) -> u64 {
    match <&[u8; 64]>::try_from(block) {
        Ok(full) => {
            let mut bits = [0u8; 64];
            for (bit, &b) in bits.iter_mut().zip(full) {
                *bit = is_word_byte(b) as u8;
            }
            bits.iter()
                .enumerate()
                .fold(0, |m, (k, &bit)| m | (bit as u64) << k)
        }
        Err(_) => block
            .iter()
            .enumerate()
            .fold(0, |m, (k, &b)| m | (is_word_byte(b) as u64) << k),
    }
}

/// Hashes of a text's lower-case words, in order — the same values as `word_hash` of each of
/// `tokens(text)` (except that characters are lower-cased one by one: a word-final Greek capital
/// sigma becomes σ, not ς), without allocating a string per word.
pub fn word_hashes(text: &str) -> Vec<u64> {
    let mut out = Vec::with_capacity(text.len() / 6 + 1);
    word_hashes_into(text, &mut out);
    out
}

/// `word_hashes` into a buffer the caller reuses (cleared first): millions of texts, no vector
/// allocated per text. ASCII texts (nearly all) take `ascii_word_hashes`.
fn word_hashes_into(text: &str, out: &mut Vec<u64>) {
    out.clear();
    if text.is_ascii() {
        ascii_word_hashes(text.as_bytes(), out);
        return;
    }
    // Other texts: each word lower-cased into a reused buffer, then hashed.
    let mut word = String::new();
    for c in text.chars() {
        if c.is_alphanumeric() {
            word.extend(c.to_lowercase());
        } else if !word.is_empty() {
            out.push(word_hash(&word));
            word.clear();
        }
    }
    if !word.is_empty() {
        out.push(word_hash(&word));
    }
}

/// `word_hashes_into` for ASCII text without a branch per byte: for each block of 64 bytes a bit
/// per byte marks letters and digits, the set bits of `m ^ (m << 1)` are where words start and
/// end (visited with trailing-zero counts), and each word is read eight bytes at a time.
///
/// Where the processor has AVX2 the same code is compiled for it (the byte tests run 32 at a time):
/// the same hashes, in less time.
fn ascii_word_hashes(bytes: &[u8], out: &mut Vec<u64>) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the processor supports AVX2 (checked just above; the answer is cached).
        return unsafe { ascii_word_hashes_avx2(bytes, out) };
    }
    ascii_word_hashes_portable(bytes, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn ascii_word_hashes_avx2(bytes: &[u8], out: &mut Vec<u64>) {
    ascii_word_hashes_portable(bytes, out)
}

/// `ascii_word_hashes` for any processor (inlined into `ascii_word_hashes_avx2`).
#[inline(always)]
fn ascii_word_hashes_portable(bytes: &[u8], out: &mut Vec<u64>) {
    let (mut in_word, mut start, mut carry) = (false, 0usize, 0u64);
    for (w, block) in bytes.chunks(64).enumerate() {
        let m = word_mask(block);
        // Bit k set: byte k starts or ends a word (bit 0 compares with the previous block's last
        // byte; a word reaching the end of a short last block ends at bit `block.len()`).
        let mut edges = m ^ ((m << 1) | carry);
        carry = m >> 63;
        while edges != 0 {
            let at = w * 64 + edges.trailing_zeros() as usize;
            edges &= edges - 1;
            if in_word {
                out.push(ascii_word(bytes, start, at));
            } else {
                start = at;
            }
            in_word = !in_word;
        }
    }
    if in_word {
        out.push(ascii_word(bytes, start, bytes.len()));
    }
}

/// `word_hash` of the ASCII word `bytes[start..end]` (letters and digits, any case). Each piece of
/// up to eight bytes is one unaligned load from the text (the last eight bytes of the text when
/// the word ends nearer than eight bytes before its end), masked to the word.
fn ascii_word(bytes: &[u8], start: usize, end: usize) -> u64 {
    let mut h = WORD_SEED;
    let mut p = start;
    while p < end {
        let take = (end - p).min(8);
        let mut b = [0u8; 8];
        let x = if p + 8 <= bytes.len() {
            b.copy_from_slice(&bytes[p..p + 8]);
            u64::from_le_bytes(b)
        } else if bytes.len() >= 8 {
            let q = bytes.len() - 8;
            b.copy_from_slice(&bytes[q..]);
            u64::from_le_bytes(b) >> (8 * (p - q))
        } else {
            b[..bytes.len() - p].copy_from_slice(&bytes[p..]);
            u64::from_le_bytes(b)
        };
        let keep = u64::MAX >> (8 * (8 - take));
        // Bit 5 set in every byte of the word: lower case for ASCII letters and digits.
        h = mix(h ^ ((x | 0x2020_2020_2020_2020) & keep));
        p += 8;
    }
    h
}

/// Sorted, de-duplicated hashes of word 3-shingles.
pub fn shingle_set(text: &str) -> Vec<u64> {
    shingles_of(&word_hashes(text))
}

/// Sorted, de-duplicated hashes of the 3-shingles of a text's word hashes.
fn shingles_of(words: &[u64]) -> Vec<u64> {
    let mut v = Vec::new();
    shingles_into(words, &mut v);
    v
}

/// `shingles_of` into a buffer the caller reuses (cleared first).
fn shingles_into(words: &[u64], v: &mut Vec<u64>) {
    v.clear();
    v.extend(words.windows(3).map(|t| mix(t[0] ^ mix(t[1] ^ mix(t[2])))));
    v.sort_unstable();
    v.dedup();
}

/// Jaccard similarity of two sorted sets.
pub fn jaccard(a: &[u64], b: &[u64]) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 0.0;
    }
    let (mut i, mut j, mut inter) = (0, 0, 0usize);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                inter += 1;
                i += 1;
                j += 1;
            }
        }
    }
    inter as f64 / (a.len() + b.len() - inter) as f64
}

/// The 64 hash functions of the MinHash: h_k(x) = a_k·x + b_k (mod 2^32) on the upper half of
/// the already mixed shingle hash, with odd a_k — one multiply-add per function and shingle, in
/// 32-bit lanes the compiler runs four at a time.
static PERM_COEFFS: std::sync::LazyLock<([u32; PERMS], [u32; PERMS])> =
    std::sync::LazyLock::new(|| {
        let (mut a, mut b) = ([0u32; PERMS], [0u32; PERMS]);
        for k in 0..PERMS {
            a[k] = (mix(2 * k as u64 + 1) >> 32) as u32 | 1;
            b[k] = (mix(2 * k as u64 + 2) >> 32) as u32;
        }
        (a, b)
    });

/// The MinHash of a shingle set. Where the processor has AVX2 the same arithmetic runs eight
/// 32-bit lanes at a time with one multiply instruction (x86-64's baseline, SSE2, has no 32-bit
/// lane multiply and emulates it): the same values, a fraction of the time.
fn minhash(set: &[u64]) -> [u32; PERMS] {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the processor supports AVX2 (checked just above; the answer is cached).
        return unsafe { minhash_avx2(set) };
    }
    minhash_portable(set)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn minhash_avx2(set: &[u64]) -> [u32; PERMS] {
    minhash_portable(set)
}

/// `minhash` for any processor (inlined into `minhash_avx2`, which compiles it for AVX2).
#[inline(always)]
fn minhash_portable(set: &[u64]) -> [u32; PERMS] {
    let (a, b) = &*PERM_COEFFS;
    let mut sig = [u32::MAX; PERMS];
    for &s in set {
        let x = (s >> 32) as u32;
        for k in 0..PERMS {
            sig[k] = sig[k].min(x.wrapping_mul(a[k]).wrapping_add(b[k]));
        }
    }
    sig
}

/// One MinHash value cut to 8 bits: its lowest (b-bit MinHash). The low bits of two different
/// minima agree by chance once in 256, which `estimate` takes out; the top bits would not do — a
/// minimum is small, so its top byte is near 0 for every text, chance agreement is many times
/// 1/256, and LSH band keys made of such bytes put most reviews into a few huge buckets.
fn cut(h: u32) -> u8 {
    h as u8
}

/// Signature of a text for the near-duplicate search: 64 MinHash values over its word 3-shingles,
/// each `cut` to 8 bits — 64 bytes a review, one cache line.
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C, align(64))]
struct Signature([u8; PERMS]);

/// `shingles` is a buffer the caller reuses.
fn signature(words: &[u64], shingles: &mut Vec<u64>) -> Signature {
    shingles_into(words, shingles);
    Signature(minhash(shingles).map(cut))
}

/// Number of positions where two signature parts agree.
fn agreeing(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).filter(|(x, y)| x == y).count()
}

/// Jaccard similarity estimated from the number of agreeing signature values: the agreeing share
/// is J + (1 − J)/256 (8-bit values of different minima agree by chance), so J is that share less
/// the chance agreement, rescaled.
fn estimate(agree: usize) -> f64 {
    const CHANCE: f64 = 1.0 / 256.0;
    (agree as f64 / PERMS as f64 - CHANCE) / (1.0 - CHANCE)
}

/// Whether the estimated Jaccard similarity of two signatures reaches `threshold`. The second half
/// is only compared when the first leaves it possible.
fn estimate_reaches(a: &Signature, b: &Signature, threshold: f64) -> bool {
    const HALF: usize = PERMS / 2;
    let first = agreeing(&a.0[..HALF], &b.0[..HALF]);
    // Even with every value of the second half agreeing the estimate stays below the threshold.
    if estimate(first + (PERMS - HALF)) < threshold {
        return false;
    }
    estimate(first + agreeing(&a.0[HALF..], &b.0[HALF..])) >= threshold
}

/// Candidate pairs gathered before their reads are issued (see `near_duplicates`).
const PAIR_BATCH: usize = 256;

/// Key ranges each band's buckets are split into (see `near_duplicates`): a thread walks one range
/// of a group of bands at a time, so only that range's keys are held.
const KEY_PARTS: usize = 2;

/// Bands whose keys one scan of the signatures gathers (`band_keys_sorted`): each scan reads every
/// signature's cache line for four bytes of it, so a scan per band read the signatures sixteen
/// times; a group of bands shares one read, at the cost of a key vector per band of the group.
const BANDS_PER_SCAN: usize = 4;
const _: () = assert!(BANDS.is_multiple_of(BANDS_PER_SCAN));

/// For each band of `bands` (`BANDS_PER_SCAN` of them), `band values << 32 | position` for the
/// signatures at positions `at` (ascending) whose band key falls in `part` of `KEY_PARTS` key
/// ranges, sorted: buckets are runs of equal upper halves listing their members by position —
/// time order, as the signatures are in review order. A bucket lies in one range.
fn band_keys_sorted<'b>(
    buf: &'b mut BandKeys,
    sigs: &[Signature],
    at: &[u32],
    bands: std::ops::Range<usize>,
    part: usize,
) -> &'b [Vec<u64>; BANDS_PER_SCAN] {
    for keyed in buf.keyed.iter_mut() {
        keyed.clear();
    }
    for &k in at {
        let sig = &sigs[k as usize];
        for (g, band) in bands.clone().enumerate() {
            // The band's four 8-bit values themselves are the key (no hash, no collisions).
            let mut h = 0u64;
            for r in 0..ROWS {
                h = (h << 8) | sig.0[band * ROWS + r] as u64;
            }
            if (h * KEY_PARTS as u64) >> 32 == part as u64 {
                buf.keyed[g].push((h << 32) | k as u64);
            }
        }
    }
    // The positions are ascending already: sorted by key alone, stably.
    for keyed in buf.keyed.iter_mut() {
        sort_by_upper_half(keyed, &mut buf.spare);
    }
    &buf.keyed
}

/// The buffers of `band_keys_sorted` (tens of megabytes each at scale), made once per thread of
/// the band walk and reused for every group of bands, not allocated (and faulted in) afresh each
/// time.
#[derive(Default)]
struct BandKeys {
    keyed: [Vec<u64>; BANDS_PER_SCAN],
    spare: Vec<u64>,
}

/// Sort values by their upper 32 bits, keeping the order of values whose upper halves are equal
/// (a least-significant-digit radix sort, three passes of 11 bits; a pass whose digit is the same
/// for every value is skipped). Where the lower halves are ascending already, the result is that
/// of sorting the whole values, in a fraction of a comparison sort's time at millions of values.
fn sort_by_upper_half(v: &mut Vec<u64>, spare: &mut Vec<u64>) {
    const BITS: u32 = 11;
    const DIGITS: usize = 1 << BITS;
    spare.clear();
    spare.resize(v.len(), 0);
    for pass in 0..3 {
        let shift = 32 + pass * BITS;
        let digit = |x: u64| ((x >> shift) as usize) & (DIGITS - 1);
        let mut at = vec![0usize; DIGITS];
        for &x in v.iter() {
            at[digit(x)] += 1;
        }
        if at.contains(&v.len()) {
            continue;
        }
        let mut sum = 0;
        for c in at.iter_mut() {
            (*c, sum) = (sum, sum + *c);
        }
        for &x in v.iter() {
            let d = digit(x);
            spare[at[d]] = x;
            at[d] += 1;
        }
        std::mem::swap(v, spare);
    }
}

/// For every signature, the first position holding the same 64 values (its own if none earlier
/// does). Found through a sort by a 32-bit hash of the values (positions ascending within a hash),
/// every match confirmed on the values. Equal values have equal hashes: the hashes are split by
/// their value into one share per core, each sorted and searched on its own (each share hashes
/// every signature and keeps its own: no table of all hashes stands beside the signatures).
fn identical_firsts(sigs: &[Signature]) -> Vec<u32> {
    let hash = |s: &Signature| crate::ingest::fast_hash(&s.0) >> 32;
    let shares = super::worker_threads() as u64;
    let later: Vec<Vec<(u32, u32)>> = super::in_pool(
        &(0..shares).collect::<Vec<u64>>(),
        shares as usize,
        |&share| {
            let mut keyed: Vec<u64> = sigs
                .iter()
                .zip(0u32..)
                .map(|(s, k)| (hash(s), k))
                .filter(|&(h, _)| h % shares == share)
                .map(|(h, k)| h << 32 | k as u64)
                .collect();
            sort_by_upper_half(&mut keyed, &mut Vec::new());
            // (position, its first) of every signature that has an earlier equal one.
            let mut later = Vec::new();
            let mut heads: Vec<u32> = Vec::new();
            for run in keyed
                .chunk_by(|x, y| x >> 32 == y >> 32)
                .filter(|r| r.len() >= 2)
            {
                // Positions ascending: the first of each distinct value in the run is its head.
                heads.clear();
                for &x in run {
                    let k = x as u32;
                    match heads
                        .iter()
                        .find(|&&h| sigs[h as usize].0 == sigs[k as usize].0)
                    {
                        Some(&h) => later.push((k, h)),
                        None => heads.push(k),
                    }
                }
            }
            later
        },
    );
    let mut first: Vec<u32> = (0..sigs.len() as u32).collect();
    for (k, h) in later.into_iter().flatten() {
        first[k as usize] = h;
    }
    first
}

/// Union-find shared by the threads of the near-duplicate search. Each slot holds its member's
/// parent (low 32 bits) and reviewer (high 32 bits: read with the parent, one cache miss for
/// both). Roots are linked larger index under smaller by compare-and-swap and paths are halved
/// towards ancestors only, so whatever the interleaving, every set ends with its smallest index as
/// root: the partition and roots of a single-threaded walk.
struct SharedDsu(Vec<std::sync::atomic::AtomicU64>);

impl SharedDsu {
    const PARENT: u64 = u32::MAX as u64;

    /// Members with these (reviewer, parent) pairs; a parent is never a later member than its
    /// child (singletons: their own parent).
    fn new(members: impl Iterator<Item = (u32, u32)>) -> Self {
        SharedDsu(
            members
                .map(|(r, p)| std::sync::atomic::AtomicU64::new((r as u64) << 32 | p as u64))
                .collect(),
        )
    }

    fn slot(&self, x: u32) -> u64 {
        self.0[x as usize].load(std::sync::atomic::Ordering::Relaxed)
    }

    fn reviewer(&self, x: u32) -> u32 {
        (self.slot(x) >> 32) as u32
    }

    /// Set `x`'s parent from `old` (its whole slot) to `to`, unless another thread changed it.
    fn relink(&self, x: u32, old: u64, to: u32) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        self.0[x as usize]
            .compare_exchange(old, (old & !Self::PARENT) | to as u64, Relaxed, Relaxed)
            .is_ok()
    }

    fn find(&self, mut x: u32) -> u32 {
        loop {
            let v = self.slot(x);
            let p = v as u32;
            if p == x {
                return x;
            }
            let gp = self.slot(p) as u32;
            if gp != p {
                // Path halving: the grandparent is an ancestor for good (sets only merge).
                self.relink(x, v, gp);
            }
            x = gp;
        }
    }

    fn union(&self, a: u32, b: u32) {
        loop {
            let (ra, rb) = (self.find(a), self.find(b));
            if ra == rb {
                return;
            }
            let (lo, hi) = if ra < rb { (ra, rb) } else { (rb, ra) };
            let v = self.slot(hi);
            // Still a root (another thread may have linked it meanwhile): link it, else retry.
            if v as u32 == hi && self.relink(hi, v, lo) {
                return;
            }
        }
    }
}

/// What one pass over every text gives: each review's word count, the signatures of the reviews
/// long enough for the near-duplicate search, in review order (the reviews with a text and at
/// least `near_duplicate_min_words` words: `near_duplicate_ids`), and the catalog's counts of the
/// candidate phrases (`PhraseCounter`) per star rating, with the number of audited texts per star
/// rating.
struct TextPass {
    words: Vec<u32>,
    sigs: PageVec<Signature>,
    catalog: FxHashMap<Phrase, [u64; 6]>,
    n_cat: [u64; 6],
}

/// Whether review `i` takes part in the near-duplicate search: a text of at least
/// `near_duplicate_min_words` words (`words`: each review's word count).
fn near_duplicate_eligible(d: &AuditData, cfg: &AuditConfig, words: &[u32], i: u32) -> bool {
    d.reviews[i as usize].text.is_some()
        && words[i as usize] as usize >= cfg.near_duplicate_min_words
}

/// The reviews eligible for the near-duplicate search, ascending.
fn near_duplicate_ids<'a>(
    d: &'a AuditData,
    cfg: &'a AuditConfig,
    words: &'a [u32],
) -> impl Iterator<Item = u32> + 'a {
    (0..d.reviews.len() as u32).filter(move |&i| near_duplicate_eligible(d, cfg, words, i))
}

/// The reviews that have a text, in review (time) order. Their texts lie in file order, which
/// need not be time order: passes over them read ahead (`touch_texts`).
fn with_text(d: &AuditData) -> Vec<u32> {
    (0..d.reviews.len() as u32)
        .filter(|&i| d.reviews[i as usize].text.is_some())
        .collect()
}

/// Texts per round of `text_pass` (`in_rounds`): the signatures are not held twice, once in the
/// threads' parts and once in the whole, at scale.
const TEXT_ROUND: usize = 1 << 20;

/// Each text is read and split into words once for its word count, its signature (when long
/// enough) and, for audited reviews, the catalog counts of the candidate phrases (`counter`, when
/// there are candidates). `order` is ascending (`with_text`), so the signatures come in review
/// order: a signature's position orders bucket members by time.
fn text_pass(
    d: &AuditData,
    cfg: &AuditConfig,
    order: &[u32],
    counter: Option<&PhraseCounter>,
) -> TextPass {
    let mut words = vec![0; d.reviews.len()];
    // Room for every text up front, in 2 MB pages (the band walk reads the signatures at random):
    // no growth either, where a vector of 64-byte-aligned values grows by copying into a new
    // block and would hold both at once. Room no signature fills is never touched.
    let mut sigs = PageVec::with_capacity(order.len());
    let mut catalog: FxHashMap<Phrase, [u64; 6]> =
        counter.map(|c| c.empty.clone()).unwrap_or_default();
    let mut n_cat = [0u64; 6];
    super::in_rounds(
        order.len(),
        TEXT_ROUND,
        25_000,
        |range| {
            let mut part_words = Vec::with_capacity(range.len());
            let mut sigs = Vec::new();
            let mut part_catalog = counter.map(|c| c.empty.clone()).unwrap_or_default();
            let mut part_n = [0u64; 6];
            let (mut w, mut shingles, mut hits) = (Vec::new(), Vec::new(), Vec::new());
            for batch in order[range.clone()].chunks(TEXTS_AHEAD) {
                touch_texts(d, batch);
                for &i in batch {
                    let r = &d.reviews[i as usize];
                    word_hashes_into(d.text(r).unwrap_or(""), &mut w);
                    part_words.push(w.len() as u32);
                    if w.len() >= cfg.near_duplicate_min_words {
                        sigs.push(signature(&w, &mut shingles));
                    }
                    if let (Some(c), true) = (counter, r.audited) {
                        part_n[r.rating as usize] += 1;
                        c.count(&mut part_catalog, &mut hits, &w, r.rating);
                    }
                }
            }
            (range, part_words, sigs, part_catalog, part_n)
        },
        |(range, part_words, part_sigs, part_catalog, part_n)| {
            for (&i, n) in order[range].iter().zip(part_words) {
                words[i as usize] = n;
            }
            sigs.extend_from_slice(&part_sigs);
            for (ph, counts) in part_catalog {
                if let Some(c) = catalog.get_mut(&ph) {
                    for (x, y) in c.iter_mut().zip(counts) {
                        *x += y;
                    }
                }
            }
            for (x, y) in n_cat.iter_mut().zip(part_n) {
                *x += y;
            }
        },
    );
    TextPass {
        words,
        sigs,
        catalog,
        n_cat,
    }
}

/// Near-duplicate clusters: for every review, the number of reviewers in its cluster when the
/// cluster spans at least two reviewers, else 0. `sigs` are the MinHash signatures of the
/// eligible reviews (`near_duplicate_ids`, in that order); Jaccard is estimated from signature
/// agreement, so no text is re-read for candidate pairs.
fn near_duplicates(
    d: &AuditData,
    cfg: &AuditConfig,
    words: &[u32],
    signatures: PageVec<Signature>,
    searched: impl FnOnce(),
) -> Vec<u32> {
    let sigs = signatures.as_slice();
    let n = sigs.len();
    let reviewer_of: Vec<u32> = near_duplicate_ids(d, cfg, words)
        .map(|i| d.reviews[i as usize].reviewer)
        .collect();
    // Identical signatures (copied texts, at scale a large share of all) are near-duplicates of
    // each other at any threshold: each set of them starts joined under its first member, and only
    // first members are searched — against another member, any of the set would have been
    // compared the same. For the rule that a reviewer's own texts are not joined to each other, a
    // set speaks for its members' one reviewer, or for `MANY` (joinable to anyone).
    let first = identical_firsts(sigs);
    let mut search_as = reviewer_of.clone();
    for (k, &f) in first.iter().enumerate() {
        if reviewer_of[k] != reviewer_of[f as usize] {
            search_as[f as usize] = MANY;
        }
    }
    let dsu = SharedDsu::new(search_as.into_iter().zip(first.iter().copied()));
    let firsts: Vec<u32> = (0..n as u32).filter(|&k| first[k as usize] == k).collect();
    drop(first);
    // Every band's buckets are walked in KEY_PARTS key ranges, the ranges split between threads,
    // all joining pairs into one shared union-find. A pair is only skipped when its two reviews
    // are already joined, so the clusters are exactly those of one pass over all bands in order.
    let threshold = cfg.near_duplicate_jaccard;
    super::in_chunks(KEY_PARTS, 1, |parts| {
        // Candidate pairs are compared in batches, in the order a plain walk would take them: the
        // members' union-find slots (with their reviewers) and signatures, scattered over
        // gigabytes at scale, are read for the whole batch first — independent loads the
        // processor overlaps, where the comparisons would wait for each miss in turn.
        let mut batch: Vec<(u32, u32)> = Vec::with_capacity(PAIR_BATCH + COMPARE_BACK);
        let compare = |batch: &mut Vec<(u32, u32)>| {
            let mut touched = 0u64;
            for &(i, j) in batch.iter() {
                touched ^= dsu.slot(i)
                    ^ dsu.slot(j)
                    ^ sigs[i as usize].0[0] as u64
                    ^ sigs[j as usize].0[0] as u64;
            }
            std::hint::black_box(touched);
            for &(i, j) in batch.iter() {
                let (ri, rj) = (dsu.reviewer(i), dsu.reviewer(j));
                if (ri == rj && ri != MANY) || dsu.find(i) == dsu.find(j) {
                    continue;
                }
                if estimate_reaches(&sigs[i as usize], &sigs[j as usize], threshold) {
                    dsu.union(i, j);
                }
            }
            batch.clear();
        };
        let mut buf = BandKeys::default();
        for part in parts {
            for bands in (0..BANDS).step_by(BANDS_PER_SCAN) {
                // Buckets as runs of a sorted (band key, review) list: no per-bucket allocation.
                let keyed_bands =
                    band_keys_sorted(&mut buf, sigs, &firsts, bands..bands + BANDS_PER_SCAN, part);
                for keyed in keyed_bands {
                    // Each member is compared with at most COMPARE_BACK earlier members of
                    // the bucket: near-duplicates chain through union-find, so a cluster still
                    // joins up, and a bucket of thousands of copies costs linear work.
                    for bucket in keyed
                        .chunk_by(|x, y| x >> 32 == y >> 32)
                        .filter(|b| b.len() >= 2)
                    {
                        for x in 1..bucket.len() {
                            let i = bucket[x] as u32;
                            for &j in &bucket[x.saturating_sub(COMPARE_BACK)..x] {
                                batch.push((i, j as u32));
                            }
                            if batch.len() >= PAIR_BATCH {
                                compare(&mut batch);
                            }
                        }
                    }
                    compare(&mut batch);
                }
            }
        }
    });
    // The signatures (hundreds of megabytes at scale) are not needed for what follows.
    drop(signatures);
    searched();
    // Per cluster root: members, then distinct reviewers (clusters of two or more members only;
    // almost every review is its own root).
    drop(firsts);
    let roots: Vec<u32> = (0..n as u32).map(|k| dsu.find(k)).collect();
    drop(dsu);
    let mut size = vec![0u32; n];
    for &r in &roots {
        size[r as usize] += 1;
    }
    let mut who: Vec<(u32, u32)> = (0..n)
        .filter(|&k| size[roots[k] as usize] >= 2)
        .map(|k| (roots[k], reviewer_of[k]))
        .collect();
    drop((size, reviewer_of));
    who.sort_unstable();
    who.dedup();
    let mut reviewers = vec![0u32; n];
    for &(r, _) in &who {
        reviewers[r as usize] += 1;
    }
    drop(who);
    let mut of_review = vec![0u32; d.reviews.len()];
    for (&r, i) in roots.iter().zip(near_duplicate_ids(d, cfg, words)) {
        let who = reviewers[r as usize];
        if who >= 2 {
            of_review[i as usize] = who;
        }
    }
    of_review
}

const STOP: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "from", "had", "has", "have",
    "i", "in", "is", "it", "its", "it's", "me", "my", "of", "on", "or", "so", "that", "the",
    "this", "to", "was", "we", "were", "with", "you", "your", "s", "t", "very", "just", "not",
    "no", "all", "one", "they", "them", "our", "did", "do", "if", "than", "then",
];

const INCENTIVE: &[&str] = &[
    "in exchange for",
    "honest review",
    "unbiased review",
    "received this product free",
    "received this item free",
    "received this for free",
    "received it for free",
    "free of charge",
    "at a discount in exchange",
    "discounted price",
    "provided by the seller",
    "sent to me for review",
];

/// Run the text family, and `beside` on another thread once the near-duplicate search is done: the
/// search's signatures (hundreds of megabytes at scale) are freed before `beside` starts, so what
/// `beside` allocates never stands beside them, and the rest of the text family runs alongside.
/// Returns the family's output and `beside`'s result.
pub fn run_with<T: Send>(
    d: &AuditData,
    cfg: &AuditConfig,
    beside: impl FnOnce() -> T + Send,
) -> (FamilyOutput, T) {
    let mut out = FamilyOutput::default();
    if !d.has_text {
        for t in [
            "near_duplicates",
            "phrase_repetition",
            "word_count_profile",
            "incentive_disclaimer",
        ] {
            out.not_run
                .push(not_run(FAMILY, t, "the reviews have no text"));
        }
        return (out, beside());
    }
    // Every text is read twice: per product (phrase candidates, disclaimers), then in review order
    // (word counts, signatures, the catalog's use of the candidates), each pass on every core.
    // Then two lines of work side by side: the phrase and disclaimer findings on their own thread,
    // and here the near-duplicate search and word-count test, `beside` starting on a third as soon
    // as the search is done. Outputs are joined in a fixed order.
    let per_product = product_pass(d, cfg);
    let counter = (!per_product.cands.is_empty()).then(|| PhraseCounter::new(&per_product.cands));
    let order = with_text(d);
    let TextPass {
        words,
        sigs,
        catalog,
        n_cat,
    } = text_pass(d, cfg, &order, counter.as_ref());
    drop((order, counter));
    let ProductPass {
        cands,
        mixes,
        incentive,
    } = per_product;
    let (phrase_out, incentive_out, other) = std::thread::scope(|s| {
        let other = s.spawn(|| {
            let mut phrase_out = FamilyOutput::default();
            phrase_findings(d, cfg, (&cands, &mixes), (&catalog, n_cat), &mut phrase_out);
            let mut incentive_out = FamilyOutput::default();
            incentive_findings(d, cfg, incentive, &mut incentive_out);
            (phrase_out, incentive_out)
        });
        // `beside` waits for the search to say it is done (or to drop its end of the channel).
        let (done, searched) = std::sync::mpsc::channel::<()>();
        let started = s.spawn(move || {
            let _ = searched.recv();
            beside()
        });
        duplicates(d, cfg, &words, sigs, &mut out, move || {
            let _ = done.send(());
        });
        let mut word_out = FamilyOutput::default();
        word_counts(d, cfg, &words, &mut word_out);
        drop(words);
        let beside_out = started
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e));
        let (phrase_out, incentive_out) = other
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e));
        (
            {
                let mut o = phrase_out;
                o.append(word_out);
                o
            },
            incentive_out,
            beside_out,
        )
    });
    out.append(phrase_out);
    out.append(incentive_out);
    (out, other)
}

/// The near-duplicate test; `searched` runs once the search is done and its signatures are freed.
fn duplicates(
    d: &AuditData,
    cfg: &AuditConfig,
    words: &[u32],
    sigs: PageVec<Signature>,
    out: &mut FamilyOutput,
    searched: impl FnOnce(),
) {
    let cluster_reviewers = near_duplicates(d, cfg, words, sigs, searched);
    let eligible = |i: u32| near_duplicate_eligible(d, cfg, words, i);
    for (i, &n) in cluster_reviewers.iter().enumerate() {
        if n > 0 {
            out.signals.push(ReviewSignal {
                review: i as u32,
                kind: if n >= 3 {
                    &SignalKind {
                        reason: "near_duplicate_text",
                        strength: 0.85,
                    }
                } else {
                    &SignalKind {
                        reason: "near_duplicate_text",
                        strength: 0.5,
                    }
                },
            });
        }
    }
    let (mut k_all, mut n_all) = (0u64, 0u64);
    let per: Vec<(Vec<u32>, Vec<u32>)> = (0..d.products.len())
        .map(|p| {
            let el: Vec<u32> = d.audited_of(p).filter(|&i| eligible(i)).collect();
            let (dup, rest): (Vec<u32>, Vec<u32>) = el
                .into_iter()
                .partition(|&i| cluster_reviewers[i as usize] > 0);
            k_all += dup.len() as u64;
            n_all += (dup.len() + rest.len()) as u64;
            (dup, rest)
        })
        .collect();
    for (p, (dup, rest)) in per.into_iter().enumerate() {
        let n = (dup.len() + rest.len()) as u64;
        if n < cfg.min_reviews as u64 {
            continue;
        }
        let k = dup.len() as u64;
        let p0 = loo_share(k_all, n_all, k, n).max(0.002);
        let mut c = share_candidate(
            FAMILY,
            "near_duplicates",
            d,
            p,
            (k, n, p0),
            format!(
                "{k} of {n} reviews of {} nearly repeat another account's text (Jaccard ≥ {:.1} on word triples; catalog: {}).",
                d.products[p],
                cfg.near_duplicate_jaccard,
                pct(p0)
            ),
        );
        // At least 1.5 times the catalog's share: where most of the catalog's texts repeat each
        // other (templated reviews), a product that repeats a little more is not distinctive.
        c.effect_ok = k >= 3 && (k as f64 / n as f64) >= 1.5 * p0;
        c.p_rating = rating_question(d, cfg, &dup, &rest);
        c.reviews = dup;
        c.review_strength = 0.5;
        out.candidates.push(c);
    }
}

/// A phrase: the hashes of its three words.
type Phrase = (u64, u64, u64);

// Word and phrase keys are already hashes: maps over them use the fast Fx hasher (SipHash was a
// fifth of the phrase passes at 10M reviews). Their iteration order is never used.
static STOP_HASHES: std::sync::LazyLock<StopWords> =
    std::sync::LazyLock::new(|| StopWords::new(STOP.iter().map(|w| word_hash(w))));

/// A set of a few word hashes asked about for every word of every text: a 64K-bit table on the
/// hashes' top 16 bits (8 KB, stays in the first-level cache) answers "no" for nearly every word
/// at once; a set bit is confirmed in the sorted hashes.
struct StopWords {
    bits: Vec<u64>,
    hashes: Vec<u64>,
}

impl StopWords {
    fn new(hashes: impl Iterator<Item = u64>) -> Self {
        let mut hashes: Vec<u64> = hashes.collect();
        hashes.sort_unstable();
        hashes.dedup();
        let mut bits = vec![0u64; (1 << 16) / 64];
        for &h in &hashes {
            let k = (h >> 48) as usize;
            bits[k / 64] |= 1 << (k % 64);
        }
        StopWords { bits, hashes }
    }

    fn contains(&self, h: &u64) -> bool {
        let k = (h >> 48) as usize;
        self.bits[k / 64] >> (k % 64) & 1 == 1 && self.hashes.binary_search(h).is_ok()
    }
}

/// Whether a 3-word window of a text is a substantive phrase: not all stop words.
fn substantive(window: &[u64]) -> bool {
    window.iter().any(|x| !STOP_HASHES.contains(x))
}

/// The substantive 3-word phrases of a text's words, sorted and de-duplicated.
#[cfg(test)]
fn phrase_set(words: &[u64]) -> Vec<Phrase> {
    let mut v: Vec<Phrase> = words
        .windows(3)
        .filter(|w| substantive(w))
        .map(|w| (w[0], w[1], w[2]))
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// The text of a phrase, recovered from a review that contains it.
fn phrase_text(text: &str, ph: Phrase) -> Option<String> {
    let t = tokens(text);
    t.windows(3)
        .find(|w| (word_hash(&w[0]), word_hash(&w[1]), word_hash(&w[2])) == ph)
        .map(|w| w.join(" "))
}

/// Reviews whose records and texts `touch_texts` reads ahead.
const TEXTS_AHEAD: usize = 64;

/// Read the records of `reviews`, then a byte of every cache line of each one's text, before they
/// are worked on: a product's reviews lie scattered over the view (and their texts over a gigabyte at
/// scale), and these reads, independent of each other, overlap — where the work would wait for
/// each review's two cache misses in turn (most of a per-product text pass's time, measured).
fn touch_texts(d: &AuditData, reviews: &[u32]) {
    let texts = reviews
        .iter()
        .fold(0u64, |acc, &i| acc ^ d.reviews[i as usize].text.start());
    let lines = reviews.iter().fold(0u64, |acc, &i| {
        let t = d.text(&d.reviews[i as usize]).unwrap_or("");
        t.as_bytes()
            .iter()
            .step_by(64)
            .fold(acc, |acc, &b| acc ^ b as u64)
    });
    std::hint::black_box(texts ^ lines);
}

/// A product's candidate phrase: its word hashes and count per star rating.
struct PhraseCandidate {
    product: usize,
    phrase: Phrase,
    here: [u64; 6],
}

/// The per-product pass for one product: its audited reviews whose text carries an incentive
/// disclaimer (`incentive`) and its number of audited reviews; and when enough of them have a
/// text, its star mix and the phrases repeated by enough of its reviews (the product's own name —
/// words in most of its reviews — is not substantive).
fn product_phrases(
    d: &AuditData,
    cfg: &AuditConfig,
    p: usize,
    mix: &mut [u64; 6],
    cands: &mut Vec<PhraseCandidate>,
    incentive: &(dyn Fn(&str) -> bool + Sync),
) -> (Vec<u32>, u64) {
    let mut audited = 0u64;
    let revs: Vec<u32> = d
        .audited_of(p)
        .inspect(|_| audited += 1)
        .filter(|&i| d.reviews[i as usize].text.is_some())
        .collect();
    let n = revs.len() as u64;
    let phrases_here = n >= cfg.min_reviews as u64;
    let mut hits: Vec<u32> = Vec::new();
    // Counts per star rating as u32 (a product has far fewer reviews): smaller entries, fewer
    // cache misses on a map of every phrase of the product. Each entry also holds the last review
    // that counted it, so a phrase (or word) is counted once per review without sorting the
    // review's phrases first.
    let mut local: FxHashMap<Phrase, ([u32; 6], u32)> = FxHashMap::default();
    let mut word_df: FxHashMap<u64, (u64, u32)> = FxHashMap::default();
    let mut w = Vec::new();
    for batch in revs.chunks(TEXTS_AHEAD) {
        touch_texts(d, batch);
        for &i in batch {
            let r = &d.reviews[i as usize];
            let text = d.text(r).unwrap_or("");
            if incentive(text) {
                hits.push(i);
            }
            if !phrases_here {
                continue;
            }
            mix[r.rating as usize] += 1;
            word_hashes_into(text, &mut w);
            for win in w.windows(3).filter(|win| substantive(win)) {
                let e = local
                    .entry((win[0], win[1], win[2]))
                    .or_insert(([0; 6], u32::MAX));
                if e.1 != i {
                    e.1 = i;
                    e.0[r.rating as usize] += 1;
                }
            }
            for &x in &w {
                let e = word_df.entry(x).or_insert((0, u32::MAX));
                if e.1 != i {
                    e.1 = i;
                    e.0 += 1;
                }
            }
        }
    }
    if !phrases_here {
        return (hits, audited);
    }
    // The product's name, where an export gives it: a phrase with one of its words ("garlic press
    // for") is how shoppers name the product, not a repeated message.
    let name_words: Vec<u64> = d.product_names[p]
        .as_deref()
        .map(word_hashes)
        .unwrap_or_default()
        .into_iter()
        .filter(|w| !STOP_HASHES.contains(w))
        .collect();
    let name_like = |ph: Phrase| {
        [ph.0, ph.1, ph.2].iter().any(|w| {
            !STOP_HASHES.contains(w)
                && (name_words.contains(w)
                    || word_df.get(w).map_or(0, |e| e.0) as f64 > 0.5 * n as f64)
        })
    };
    // Those repeated by enough reviews, sorted, so candidates (and ties between them) come out
    // the same every run.
    let repeated =
        |k: u64| k >= cfg.phrase_min_reviews as u64 && k as f64 >= cfg.phrase_min_share * n as f64;
    let mut local: Vec<(Phrase, [u64; 6])> = local
        .into_iter()
        .map(|(phrase, (here, _))| (phrase, here.map(u64::from)))
        .filter(|(_, here)| repeated(here.iter().sum()))
        .collect();
    local.sort_unstable_by_key(|x| x.0);
    for (phrase, here) in local {
        if !name_like(phrase) {
            cands.push(PhraseCandidate {
                product: p,
                phrase,
                here,
            });
        }
    }
    (hits, audited)
}

/// What the per-product pass gives: the candidate phrases (pass 1 of the phrase test), each
/// product's star mix, and per product its reviews with an incentive disclaimer and its number of
/// audited reviews.
struct ProductPass {
    cands: Vec<PhraseCandidate>,
    mixes: Vec<[u64; 6]>,
    incentive: Vec<(Vec<u32>, u64)>,
}

/// Products per job of `product_pass`: products differ in size by orders of magnitude, so the
/// threads take small runs of them in turn rather than half the catalog each.
const PRODUCTS_PER_JOB: usize = 16;

/// Each product's texts read once for the phrase candidates and the incentive disclaimers.
/// Products are independent: taken by the threads a run at a time, joined back in product order.
fn product_pass(d: &AuditData, cfg: &AuditConfig) -> ProductPass {
    // ASCII texts (almost all) are lower-cased into a buffer and searched for every disclaimer at
    // once (a case-sensitive search can use the vectorised prefilter, which an ASCII-case-blind
    // one cannot); others are lower-cased as Unicode first. The disclaimers are lower-case ASCII,
    // so both find the same matches.
    let lower_case = aho_corasick::packed::Searcher::new(INCENTIVE);
    thread_local! {
        static LOWER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let incentive = |t: &str| match (&lower_case, t.is_ascii()) {
        (Some(ac), true) => LOWER.with_borrow_mut(|b| {
            b.clear();
            b.extend(t.bytes().map(|c| c.to_ascii_lowercase()));
            ac.find(b.as_slice()).is_some()
        }),
        _ => {
            let l = t.to_lowercase();
            INCENTIVE.iter().any(|k| l.contains(k))
        }
    };
    let mut pass = ProductPass {
        cands: Vec::new(),
        mixes: Vec::with_capacity(d.products.len()),
        incentive: Vec::with_capacity(d.products.len()),
    };
    for (cands, mixes, incentive) in super::in_runs(d.products.len(), PRODUCTS_PER_JOB, |range| {
        let mut cands: Vec<PhraseCandidate> = Vec::new();
        let mut mixes: Vec<[u64; 6]> = vec![[0; 6]; range.len()];
        let per: Vec<(Vec<u32>, u64)> = range
            .clone()
            .zip(mixes.iter_mut())
            .map(|(p, mix)| product_phrases(d, cfg, p, mix, &mut cands, &incentive))
            .collect();
        (cands, mixes, per)
    }) {
        pass.cands.extend(cands);
        pass.mixes.extend(mixes);
        pass.incentive.extend(incentive);
    }
    pass
}

/// Pass 2 of the phrase test: the catalog's use of the candidate phrases per star rating (only
/// those phrases are counted, so memory does not grow with the vocabulary), in `text_pass`.
struct PhraseCounter {
    /// Every candidate phrase with zero counts: each part of the pass starts from a copy.
    empty: FxHashMap<Phrase, [u64; 6]>,
    /// The candidates' first words as a bit per value of a word hash's top 16 bits: most windows
    /// start with no candidate's first word and are passed over without a map lookup.
    first_words: Vec<u64>,
}

impl PhraseCounter {
    fn new(cands: &[PhraseCandidate]) -> Self {
        let mut first_words = vec![0u64; 1 << 10];
        for c in cands {
            let b = (c.phrase.0 >> 48) as usize;
            first_words[b >> 6] |= 1 << (b & 63);
        }
        PhraseCounter {
            empty: cands.iter().map(|c| (c.phrase, [0u64; 6])).collect(),
            first_words,
        }
    }

    fn may_start(&self, w: u64) -> bool {
        self.first_words[(w >> 54) as usize] >> ((w >> 48) & 63) & 1 == 1
    }

    /// Count the candidate phrases of one text (its word hashes `w`), each once, under its star
    /// rating. `hits` is a buffer the caller reuses.
    fn count(
        &self,
        catalog: &mut FxHashMap<Phrase, [u64; 6]>,
        hits: &mut Vec<Phrase>,
        w: &[u64],
        rating: u8,
    ) {
        hits.clear();
        hits.extend(
            w.windows(3)
                .filter(|w| self.may_start(w[0]))
                .map(|w| (w[0], w[1], w[2]))
                .filter(|ph| catalog.contains_key(ph)),
        );
        hits.sort_unstable();
        hits.dedup();
        for ph in hits.iter() {
            if let Some(c) = catalog.get_mut(ph) {
                c[rating as usize] += 1;
            }
        }
    }
}

/// Pass 3 of the phrase test: per product, its most surprising candidate phrase against its
/// rating mix (`cands` and `mixes` from `product_pass`; `catalog` and `n_cat` from `text_pass`).
fn phrase_findings(
    d: &AuditData,
    cfg: &AuditConfig,
    (cands, mixes): (&[PhraseCandidate], &[[u64; 6]]),
    (catalog, n_cat): (&FxHashMap<Phrase, [u64; 6]>, [u64; 6]),
    out: &mut FamilyOutput,
) {
    // Pass 3: per product, the most surprising candidate against its rating mix.
    let mut best: BTreeMap<usize, (f64, usize, f64)> = BTreeMap::new(); // product → (p, cand, λ)
    let mut tested: BTreeMap<usize, f64> = BTreeMap::new();
    for (ci, c) in cands.iter().enumerate() {
        *tested.entry(c.product).or_default() += 1.0;
        let mix = mixes[c.product];
        let cat = catalog.get(&c.phrase).copied().unwrap_or_default();
        let lambda: f64 = (1..=5)
            .map(|r| {
                let other_k = cat[r].saturating_sub(c.here[r]) as f64;
                let other_n = n_cat[r].saturating_sub(mix[r]) as f64;
                mix[r] as f64 * (other_k + 0.5) / (other_n + 1.0)
            })
            .sum();
        let k: u64 = c.here.iter().sum();
        let pv = poisson_upper(k, lambda);
        if best.get(&c.product).is_none_or(|b| pv < b.0) {
            best.insert(c.product, (pv, ci, lambda));
        }
    }
    // Per product with a candidate: its reviews with and without the phrase (texts read again;
    // products split between threads, results in product order).
    let best: Vec<(usize, (f64, usize, f64))> = best.into_iter().collect();
    let found = super::in_chunks(best.len(), 8, |range| {
        let mut found: Vec<Candidate> = Vec::new();
        for &(p, (pv, ci, lambda)) in &best[range] {
            let c = &cands[ci];
            let k: u64 = c.here.iter().sum();
            let revs: Vec<u32> = d
                .audited_of(p)
                .filter(|&i| d.reviews[i as usize].text.is_some())
                .collect();
            let n = revs.len();
            let text_of = |i: u32| d.text(&d.reviews[i as usize]).unwrap_or("");
            let (sub, rest): (Vec<u32>, Vec<u32>) = revs.iter().partition(|&&i| {
                word_hashes(text_of(i))
                    .windows(3)
                    .any(|w| (w[0], w[1], w[2]) == c.phrase)
            });
            let shown = sub
                .first()
                .and_then(|&i| phrase_text(text_of(i), c.phrase))
                .unwrap_or_default();
            let mut cand = Candidate::new(
            FAMILY,
            "phrase_repetition",
            Subject::Product(d.products[p].clone()),
            (pv * tested.get(&p).copied().unwrap_or(1.0)).min(1.0),
            Effect { name: "observed / expected".into(), value: k as f64 / lambda.max(1e-9) },
            format!(
                "\"{shown}\" appears in {k} of {n} reviews of {}, where reviews with the same ratings elsewhere in the catalog predict {lambda:.1}.",
                d.products[p]
            ),
        );
            // At least twice what the catalog predicts (with millions of reviews a phrase used
            // 30% more often than elsewhere is "significant" and means nothing).
            cand.effect_ok = k as f64 >= 2.0 * lambda;
            cand.p_rating = rating_question(d, cfg, &sub, &rest);
            cand.reviews = sub;
            cand.review_strength = 0.5;
            found.push(cand);
        }
        found
    });
    out.candidates.extend(found.into_iter().flatten());
}

/// Word-count bins: 0–4, 5–9, 10–19, 20–39, 40–79, 80+.
pub fn word_bin(n: usize) -> usize {
    match n {
        0..=4 => 0,
        5..=9 => 1,
        10..=19 => 2,
        20..=39 => 3,
        40..=79 => 4,
        _ => 5,
    }
}

fn word_counts(d: &AuditData, cfg: &AuditConfig, words: &[u32], out: &mut FamilyOutput) {
    // Each review's bin in a byte (`NO_TEXT` without text), and the catalog's counts, in one pass.
    const NO_TEXT: u8 = u8::MAX;
    let mut cat = [0u64; 6];
    let bins: Vec<u8> = d
        .reviews
        .iter()
        .zip(words)
        .map(|(r, &w)| {
            if !r.text.is_some() {
                return NO_TEXT;
            }
            let b = word_bin(w as usize);
            if r.audited {
                cat[b] += 1;
            }
            b as u8
        })
        .collect();
    for p in 0..d.products.len() {
        let mut obs = [0u64; 6];
        for i in d.audited_of(p) {
            let b = bins[i as usize];
            if b != NO_TEXT {
                obs[b as usize] += 1;
            }
        }
        if obs.iter().sum::<u64>() < cfg.min_hourly_reviews as u64 {
            continue;
        }
        let sentence = |stat: f64, df: usize| {
            format!(
                "Review lengths of {} differ from the catalog's (chi-square {stat:.1}, {df} df).",
                d.products[p]
            )
        };
        out.candidates.extend(profile_candidate(
            FAMILY,
            "word_count_profile",
            d,
            cfg,
            p,
            &obs,
            &cat,
            sentence,
        ));
    }
}

/// The incentive-disclaimer test from `product_pass`'s results: per product (in product order),
/// its audited reviews with a disclaimer and its number of audited reviews.
fn incentive_findings(
    d: &AuditData,
    cfg: &AuditConfig,
    per: Vec<(Vec<u32>, u64)>,
    out: &mut FamilyOutput,
) {
    let k_all: u64 = per.iter().map(|x| x.0.len() as u64).sum();
    let n_all: u64 = per.iter().map(|x| x.1).sum();
    for (p, (hits, n)) in per.into_iter().enumerate() {
        let k = hits.len() as u64;
        if k < 2 || n < cfg.min_reviews as u64 {
            continue;
        }
        let p0 = loo_share(k_all, n_all, k, n).max(0.002);
        for &i in &hits {
            out.signals.push(ReviewSignal {
                review: i,
                kind: &SignalKind {
                    reason: "incentive_disclaimer",
                    strength: 0.6,
                },
            });
        }
        let mut c = Candidate::new(
            FAMILY,
            "incentive_disclaimer",
            Subject::Product(d.products[p].clone()),
            binomial_upper(k, n, p0),
            Effect {
                name: "reviews".into(),
                value: k as f64,
            },
            format!(
                "{k} reviews of {} say the product was free, discounted or given for a review.",
                d.products[p]
            ),
        );
        c.max_verdict = Verdict::Warn;
        c.reviews = hits;
        out.candidates.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn shingles_and_jaccard() {
        let a = shingle_set("The quick brown fox jumps");
        let b = shingle_set("the quick brown fox sleeps");
        // triples: {the quick brown, quick brown fox, brown fox jumps} vs {…, brown fox sleeps}
        assert_eq!(a.len(), 3);
        assert!((jaccard(&a, &b) - 0.5).abs() < 1e-12);
        assert_eq!(jaccard(&a, &a), 1.0);
    }

    /// Reference for `word_hashes`: the words of `tokens`, each lower-cased character by character.
    fn word_hashes_reference(text: &str) -> Vec<u64> {
        text.split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(|w| word_hash(&w.chars().flat_map(char::to_lowercase).collect::<String>()))
            .collect()
    }

    proptest::proptest! {
        #[test]
        fn word_hashes_match_the_reference(t in "(?s)[a-zA-Z0-9 .,!'\\-ÇçÉéßİıΣσ日本\u{301}\u{1F600}\t\n]{0,80}") {
            proptest::prop_assert_eq!(word_hashes(&t), word_hashes_reference(&t));
        }

        /// ASCII texts take the bit-mask path: words across 64-byte blocks, at either end, longer
        /// than eight bytes.
        #[test]
        fn ascii_word_hashes_match_the_reference(t in "[a-zA-Z0-9 .,!'\\-]{0,300}|([a-zA-Z]{1,20}[ ,.]{1,2}){0,30}|[ -~]{0,200}") {
            proptest::prop_assert!(t.is_ascii());
            proptest::prop_assert_eq!(word_hashes(&t), word_hashes_reference(&t));
            let mut portable = Vec::new();
            ascii_word_hashes_portable(t.as_bytes(), &mut portable);
            proptest::prop_assert_eq!(word_hashes(&t), portable);
        }
    }

    /// The early exit on the first half never changes the decision of the full estimate: every
    /// split of agreements between the halves, at thresholds on and between the steps of 1/64.
    #[test]
    fn estimate_reaches_matches_the_full_estimate() {
        let half = PERMS / 2;
        for first in 0..=half {
            for second in 0..=half {
                let x = Signature([7; PERMS]);
                let mut y = x;
                for k in 0..PERMS {
                    let agree = if k < half {
                        k < first
                    } else {
                        k - half < second
                    };
                    if !agree {
                        y.0[k] = 8;
                    }
                }
                let full = estimate(first + second);
                for t in (0..=130).map(|s| s as f64 / 128.0).chain([0.7]) {
                    assert_eq!(
                        estimate_reaches(&x, &y, t),
                        full >= t,
                        "{first}+{second} at {t}"
                    );
                }
            }
        }
    }

    #[test]
    fn word_hashes_match_tokens() {
        let t = "Ça marche: GREAT value, 10/10!";
        let want: Vec<u64> = tokens(t).iter().map(|w| word_hash(w)).collect();
        assert_eq!(word_hashes(t), want);
        assert_eq!(tokens(t), ["ça", "marche", "great", "value", "10", "10"]);
        let w = word_hashes("the quick brown fox");
        let ph = phrase_set(&w);
        let texts: BTreeSet<String> = ph
            .iter()
            .filter_map(|p| phrase_text("The quick brown fox", *p))
            .collect();
        assert_eq!(
            texts,
            BTreeSet::from(["quick brown fox".to_string(), "the quick brown".to_string()])
        );
    }

    #[test]
    fn word_bytes_are_ascii_letters_and_digits() {
        for b in 0..=255u8 {
            assert_eq!(is_word_byte(b), b.is_ascii_alphanumeric(), "{b}");
        }
    }

    /// The stop-word test answers as a plain set does, for the stop words and for other words.
    #[test]
    fn stop_words_are_recognised_exactly() {
        let set: std::collections::HashSet<u64> = STOP.iter().map(|w| word_hash(w)).collect();
        for w in STOP {
            assert!(STOP_HASHES.contains(&word_hash(w)), "{w}");
        }
        for k in 0..100_000u64 {
            let h = mix(k);
            assert_eq!(STOP_HASHES.contains(&h), set.contains(&h));
        }
        // A hash sharing a stop word's top bits but not the word: confirmed, not taken.
        let h = word_hash("the") ^ 1;
        assert!(!STOP_HASHES.contains(&h));
        for w in ["theme", "garlic", "press", "The"] {
            assert_eq!(
                STOP_HASHES.contains(&word_hash(w)),
                set.contains(&word_hash(w))
            );
        }
    }

    /// The AVX2 build of the MinHash gives the portable one's values (where the processor has
    /// AVX2; elsewhere both calls are the portable code).
    #[test]
    fn minhash_is_the_same_on_every_processor() {
        for n in [0usize, 1, 3, 17, 64, 250] {
            let set: Vec<u64> = (0..n as u64).map(|i| mix(i * 7919 + n as u64)).collect();
            assert_eq!(minhash(&set), minhash_portable(&set), "{n} shingles");
        }
    }

    #[test]
    fn minhash_estimates_jaccard() {
        let t1: String = (0..60).map(|i| format!("w{i} ")).collect();
        let t2: String = (0..60)
            .map(|i| {
                if i % 10 == 0 {
                    format!("x{i} ")
                } else {
                    format!("w{i} ")
                }
            })
            .collect();
        let (a, b) = (shingle_set(&t1), shingle_set(&t2));
        let (sa, sb) = (minhash(&a), minhash(&b));
        let est = sa.iter().zip(sb.iter()).filter(|(x, y)| x == y).count() as f64 / PERMS as f64;
        let exact = jaccard(&a, &b);
        assert!((est - exact).abs() < 0.2, "{est} vs {exact}");
    }

    /// A reproducible stream of well-mixed 64-bit values (shingle hashes for the tests).
    fn mixed_stream(seed: u64) -> impl FnMut() -> u64 {
        let mut state = seed;
        move || {
            state = mix(state.wrapping_add(0x9E37_79B9_7F4A_7C15));
            state
        }
    }

    /// Signatures of unrelated texts agree by chance once in 256 values (what `estimate` takes
    /// out), and their LSH band keys almost never meet: 2000 random sets of 20 shingles, chance
    /// agreement under 2/256, no two sharing a band-0 key (expected pairs: 2000²/2 / 2^32 ≈ 0.0005).
    #[test]
    fn unrelated_signatures_agree_only_by_chance() {
        let mut next = mixed_stream(777);
        let sigs: Vec<Signature> = (0..2000)
            .map(|_| {
                let words: Vec<u64> = (0..22).map(|_| next()).collect();
                signature(&words, &mut Vec::new())
            })
            .collect();
        let agree: usize = sigs.windows(2).map(|w| agreeing(&w[0].0, &w[1].0)).sum();
        let share = agree as f64 / ((sigs.len() - 1) * PERMS) as f64;
        assert!(share < 2.0 / 256.0, "chance agreement {share}");
        let all: Vec<u32> = (0..sigs.len() as u32).collect();
        let mut buf = BandKeys::default();
        let mut keys: Vec<u64> =
            band_keys_sorted(&mut buf, &sigs, &all, 0..BANDS_PER_SCAN, 0)[0].to_vec();
        keys.extend(&band_keys_sorted(&mut buf, &sigs, &all, 0..BANDS_PER_SCAN, 1)[0]);
        let mut keys: Vec<u64> = keys.iter().map(|k| k >> 32).collect();
        keys.sort_unstable();
        let n = keys.len();
        keys.dedup();
        assert_eq!(keys.len(), n, "band keys of unrelated texts met");
    }

    /// One scan gathers a group of bands' keys: each band's, over its key ranges, are exactly its
    /// four signature values and position for every signature asked for, sorted by key, then
    /// position (signatures drawn from few values, so buckets hold many members).
    #[test]
    fn grouped_band_keys_are_each_bands_own() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let sigs: Vec<Signature> = (0..3000)
            .map(|_| {
                let mut s = Signature([0; PERMS]);
                for v in s.0.iter_mut() {
                    *v = rng.random_range(0..3) * 100;
                }
                s
            })
            .collect();
        let at: Vec<u32> = (0..sigs.len() as u32).filter(|k| k % 3 != 1).collect();
        let mut buf = BandKeys::default();
        for first in (0..BANDS).step_by(BANDS_PER_SCAN) {
            let mut got = vec![Vec::<u64>::new(); BANDS_PER_SCAN];
            for part in 0..KEY_PARTS {
                let keyed =
                    band_keys_sorted(&mut buf, &sigs, &at, first..first + BANDS_PER_SCAN, part);
                for (g, keys) in keyed.iter().enumerate() {
                    assert!(
                        keys.windows(2).all(|w| w[0] <= w[1]),
                        "band {} part {part}",
                        first + g
                    );
                    got[g].extend(keys);
                }
            }
            for (g, got) in got.iter_mut().enumerate() {
                let band = first + g;
                let mut want: Vec<u64> = at
                    .iter()
                    .map(|&k| {
                        let v = &sigs[k as usize].0[band * ROWS..(band + 1) * ROWS];
                        (u32::from_be_bytes([v[0], v[1], v[2], v[3]]) as u64) << 32 | k as u64
                    })
                    .collect();
                want.sort_unstable();
                got.sort_unstable();
                assert_eq!(*got, want, "band {band}");
            }
        }
    }

    /// The 8-bit signatures estimate Jaccard without bias around the threshold: 400 random pairs
    /// of shingle sets at Jaccard 0.7 (14 shared, 3 own each), mean agreement within 0.02.
    #[test]
    fn signatures_estimate_jaccard_without_bias() {
        let mut next = mixed_stream(12345);
        let (mut est, mut exact, n) = (0.0, 0.0, 400);
        for _ in 0..n {
            let shared: Vec<u64> = (0..14).map(|_| next()).collect();
            let (mut a, mut b) = (shared.clone(), shared);
            a.extend((0..3).map(|_| next()));
            b.extend((0..3).map(|_| next()));
            a.sort_unstable();
            b.sort_unstable();
            let (sa, sb) = (minhash(&a).map(cut), minhash(&b).map(cut));
            est += estimate(agreeing(&sa, &sb));
            exact += jaccard(&a, &b);
        }
        let (est, exact) = (est / n as f64, exact / n as f64);
        assert!((est - exact).abs() < 0.02, "{est} vs {exact}");
    }

    proptest::proptest! {
        /// The radix sort by upper halves gives a full sort's order when lower halves ascend.
        #[test]
        fn radix_sort_matches_a_full_sort(
            uppers in proptest::collection::vec(
                proptest::prop_oneof![0u64..4, 0u64..5000, 0u64..(1 << 32)],
                0..3000,
            )
        ) {
            let mut v: Vec<u64> = uppers.iter().zip(0u64..).map(|(&u, k)| u << 32 | k).collect();
            let mut want = v.clone();
            want.sort_unstable();
            sort_by_upper_half(&mut v, &mut vec![7; 5]);
            proptest::prop_assert_eq!(v, want);
        }
    }

    /// Identical signatures are grouped under their first position, exactly as a comparison of
    /// every pair would group them (values drawn from a few, so most have copies).
    #[test]
    fn identical_signatures_are_grouped_under_the_first() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let sigs: Vec<Signature> = (0..600)
            .map(|_| {
                let mut s = Signature([0; PERMS]);
                s.0[rng.random_range(1..4)] = rng.random_range(0..4);
                s.0[0] = rng.random_range(0..3);
                s
            })
            .collect();
        let first = identical_firsts(&sigs);
        for (k, &f) in first.iter().enumerate() {
            let want = (0..sigs.len()).find(|&j| sigs[j].0 == sigs[k].0).unwrap();
            assert_eq!(f as usize, want, "signature {k}");
        }
        assert!(
            first
                .iter()
                .enumerate()
                .filter(|&(k, &f)| f as usize != k)
                .count()
                > 300
        );
    }

    /// The union-find the near-duplicate threads share gives the partition and roots (smallest
    /// index) of the single-threaded one, whatever the interleaving: edges of a random graph
    /// joined from two threads, each in its own shuffled order, against `Dsu` fed them in order.
    #[test]
    fn shared_union_find_matches_the_sequential_one() {
        use rand::{Rng, SeedableRng};
        let n = 3000u32;
        for seed in 0..4u64 {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let edges: Vec<(u32, u32)> = (0..2500)
                .map(|_| (rng.random_range(0..n), rng.random_range(0..n)))
                .collect();
            let mut seq = super::super::Dsu::new(n as usize);
            for &(a, b) in &edges {
                seq.union(a, b);
            }
            let shared = SharedDsu::new((0..n).map(|k| (k % 7, k)));
            let (first, second) = edges.split_at(edges.len() / 2);
            std::thread::scope(|s| {
                s.spawn(|| first.iter().rev().for_each(|&(a, b)| shared.union(a, b)));
                second.iter().for_each(|&(a, b)| shared.union(a, b));
            });
            for k in 0..n {
                assert_eq!(shared.find(k), seq.find(k), "seed {seed}, member {k}");
                assert_eq!(shared.reviewer(k), k % 7);
            }
        }
    }
}
