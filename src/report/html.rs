//! `index.html`: one self-contained, script-free page (CSS inline, charts as base64 PNG, a
//! Content-Security-Policy that forbids every network request). Review text, product and reviewer
//! ids are written by strangers: everything from the data goes through `escape`.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use crate::analyze::data::AuditData;
use crate::analyze::Analysis;
use crate::findings::{Subject, Verdict};

use super::compare::Comparison;
use super::tables::FindingsFile;
use super::{ChartRef, Charts};
use crate::findings::Finding;

/// An inline chart (the same PNG is in `charts/`).
fn img(h: &mut String, c: &ChartRef) {
    let _ = write!(
        h,
        "<figure><img alt=\"{}\" title=\"charts/{}\" src=\"data:image/png;base64,{}\"></figure>",
        escape(&c.alt),
        escape(&c.file),
        c.b64
    );
}

/// A product id, linked to its section when it has one.
fn linked_product(in_sections: &std::collections::BTreeSet<&str>, p: &str) -> String {
    if in_sections.contains(p) {
        format!(
            "<a href=\"#p-{}\">{}</a>",
            super::charts::safe_name(p),
            escape(p)
        )
    } else {
        escape(p)
    }
}

/// Rows shown per list in "Since last month" (findings.json has up to 5000, the totals always).
const CHANGES_SHOWN: usize = 200;

fn verdict_cell(v: &str) -> String {
    match v {
        "pass" | "warn" | "fail" | "insufficient" => format!("<span class=\"v {v}\">{v}</span>"),
        "" => "<span class=\"muted\">–</span>".into(),
        other => escape(other),
    }
}

/// "Since last month": findings new / persisting / resolved, deleted reviews, changed ratings and
/// the verdict trend per product.
fn since(h: &mut String, c: &Comparison, linked: &dyn Fn(&str) -> String) {
    let _ = write!(
        h,
        "<section id=\"since\"><h2>Since last month ({}, {}..{})</h2>",
        escape(&c.previous_period),
        escape(&c.previous_from),
        escape(&c.previous_to)
    );
    let _ = write!(h, "<table><tr><th>what</th><th>count</th></tr>\
<tr><td>new findings (warn or fail now, not last month)</td><td class=\"num\">{}</td></tr>\
<tr><td>persisting findings</td><td class=\"num\">{}</td></tr>\
<tr><td>resolved findings (last month's, gone now)</td><td class=\"num\">{}</td></tr>\
<tr><td>reviews that disappeared</td><td class=\"num\">{}</td></tr>\
<tr><td>reviews whose star rating changed</td><td class=\"num\">{}</td></tr>\
<tr><td>last month's reviews older than this month's exports (not compared)</td><td class=\"num\">{}</td></tr></table>\
<p class=\"muted\">Reviews matched by {}.</p>",
        c.findings_new.len(), c.findings_persisting.len(), c.findings_resolved.len(), c.reviews_deleted_total,
        c.ratings_changed_total, c.reviews_outside_this_export, escape(&c.matched_by));
    // Verdict trend.
    if !c.verdict_trend.is_empty() {
        let changed = super::compare::changed_verdicts(c);
        let mut rows: Vec<(&String, &Vec<String>)> = c.verdict_trend.iter().collect();
        rows.sort_by_key(|(p, v)| {
            let last = v.last().map(|x| x.as_str()).unwrap_or("");
            let sev = match last {
                "fail" => 0,
                "warn" => 1,
                "insufficient" => 3,
                "pass" => 2,
                _ => 4,
            };
            (!changed.contains(p.as_str()), sev, p.to_string())
        });
        h.push_str("<h3>Verdict trend per product</h3><table><tr><th>product</th>");
        for p in &c.periods {
            let _ = write!(h, "<th>{}</th>", escape(p));
        }
        h.push_str("</tr>");
        for (p, v) in rows.iter().take(CHANGES_SHOWN) {
            let _ = write!(h, "<tr><td>{}</td>", linked(p));
            for x in v.iter() {
                let _ = write!(h, "<td>{}</td>", verdict_cell(x));
            }
            h.push_str("</tr>");
        }
        h.push_str("</table>");
        if rows.len() > CHANGES_SHOWN {
            let _ = write!(
                h,
                "<p>{} more products in findings.json.</p>",
                rows.len() - CHANGES_SHOWN
            );
        }
    }
    for (title, list) in [
        ("New findings", &c.findings_new),
        ("Persisting findings", &c.findings_persisting),
        ("Resolved findings", &c.findings_resolved),
    ] {
        if list.is_empty() {
            continue;
        }
        let _ = write!(h, "<h3>{title}</h3><table><tr><th>test</th><th>subject</th><th>last month</th><th>now</th></tr>");
        for x in list.iter().take(CHANGES_SHOWN) {
            let mut parts = x.key.splitn(3, ':');
            let (test, kind, id) = (
                parts.next().unwrap_or(""),
                parts.next().unwrap_or(""),
                parts.next().unwrap_or(""),
            );
            let subject = if kind == "product" {
                linked(id)
            } else {
                format!("{} {}", escape(kind), escape(id))
            };
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{subject}</td><td>{}</td><td>{}</td></tr>",
                escape(test),
                verdict_cell(&x.previous_verdict),
                verdict_cell(&x.verdict)
            );
        }
        h.push_str("</table>");
    }
    if !c.reviews_deleted.is_empty() {
        let _ = write!(h, "<h3>Reviews that disappeared ({})</h3><p>In last month's snapshot, missing from this month's exports although they cover that date: deleted by the platform or the author.</p><table><tr><th>review</th><th>product</th><th>stars</th><th>posted</th></tr>", c.reviews_deleted_total);
        for r in c.reviews_deleted.iter().take(CHANGES_SHOWN) {
            let _ = write!(
                h,
                "<tr><td class=\"ids\">{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
                escape(&r.review_id),
                linked(&r.product_id),
                r.rating,
                escape(&r.created_at)
            );
        }
        h.push_str("</table>");
    }
    if !c.ratings_changed.is_empty() {
        let _ = write!(h, "<h3>Star ratings that changed ({})</h3><table><tr><th>review</th><th>product</th><th>last month</th><th>now</th></tr>", c.ratings_changed_total);
        for r in c.ratings_changed.iter().take(CHANGES_SHOWN) {
            let _ = write!(h, "<tr><td class=\"ids\">{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>", escape(&r.review_id), linked(&r.product_id), r.from, r.to);
        }
        h.push_str("</table>");
    }
    h.push_str("</section>\n");
}

/// Ids shown inline per finding (all of them are in findings.json).
const IDS_SHOWN: usize = 12;

fn id_list(ids: &[String]) -> String {
    let shown: Vec<String> = ids.iter().take(IDS_SHOWN).map(|s| escape(s)).collect();
    let more = ids.len().saturating_sub(IDS_SHOWN);
    if more > 0 {
        format!("{} … and {more} more", shown.join(" "))
    } else {
        shown.join(" ")
    }
}

/// The findings of one subject: verdict, test, sentence, p, q, effect and the evidence (review ids,
/// reviewer ids, days).
fn findings_table(h: &mut String, findings: &[&Finding]) {
    if findings.is_empty() {
        return;
    }
    h.push_str("<table><tr><th>verdict</th><th>test</th><th>finding</th><th>p</th><th>q</th><th>effect</th><th>evidence</th></tr>");
    for x in findings {
        let days = match (x.evidence.days.first(), x.evidence.days.last()) {
            (Some(a), Some(b)) if a != b => format!("days {}..{}", escape(a), escape(b)),
            (Some(a), _) => format!("day {}", escape(a)),
            _ => match &x.window {
                Some(w) => format!("window {}..{}", escape(&w.from), escape(&w.to)),
                None => String::new(),
            },
        };
        let mut ev = String::new();
        if !x.evidence.review_ids.is_empty() {
            let _ = write!(
                ev,
                "<div><span class=\"muted\">reviews:</span> <span class=\"ids\">{}</span></div>",
                id_list(&x.evidence.review_ids)
            );
        }
        if !x.evidence.reviewer_ids.is_empty() {
            let _ = write!(
                ev,
                "<div><span class=\"muted\">reviewers:</span> <span class=\"ids\">{}</span></div>",
                id_list(&x.evidence.reviewer_ids)
            );
        }
        if !days.is_empty() {
            let _ = write!(ev, "<div class=\"muted\">{days}</div>");
        }
        let _ = write!(h, "<tr><td>{}</td><td>{}<br><span class=\"muted\">{}</span></td><td>{}</td><td class=\"num\">{:.2e}</td><td class=\"num\">{:.2e}</td><td class=\"num\">{} {:.3}</td><td>{ev}</td></tr>",
            badge(x.verdict), escape(&x.test), escape(&x.family), escape(&x.sentence), x.p, x.q, escape(&x.effect.name), x.effect.value);
    }
    h.push_str("</table>");
}

/// Escape text for HTML element content and double-quoted attributes.
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => o.push('\u{FFFD}'),
            c => o.push(c),
        }
    }
    o
}

const CSS: &str = "figure{margin:10px 0}.toc a{margin-left:10px}body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#1d2330;background:#f6f7f9}\
main{max-width:1100px;margin:0 auto;padding:16px 24px 64px}header{background:#1d2330;color:#fff;padding:18px 24px}\
header h1{margin:0;font-size:22px}header p{margin:4px 0 0;color:#c9ced8}nav{background:#fff;border:1px solid #dde1e7;padding:10px 16px;margin:16px 0}\
nav a{margin-right:14px}section{background:#fff;border:1px solid #dde1e7;padding:12px 20px;margin:18px 0}\
h2{font-size:19px;border-bottom:1px solid #e4e7ec;padding-bottom:6px}h3{font-size:16px;margin-top:26px}\
table{border-collapse:collapse;width:100%;margin:8px 0;font-size:13px}th,td{border-bottom:1px solid #e8eaee;padding:4px 6px;text-align:left;vertical-align:top}\
th{background:#f0f2f5}td.num{text-align:right;font-variant-numeric:tabular-nums}\
.v{display:inline-block;padding:1px 7px;border-radius:3px;font-weight:600;font-size:12px}.fail{background:#ca0020;color:#fff}\
.warn{background:#f4a582;color:#3b1d10}.pass{background:#92c5de;color:#0b2a3a}.insufficient{background:#d5d8dd;color:#333}\
img{max-width:100%;height:auto;border:1px solid #e4e7ec}.ids{font-family:ui-monospace,monospace;font-size:12px;word-break:break-all}\
.text{white-space:pre-wrap;font-size:13px;background:#f8f9fb;padding:4px 6px}.muted{color:#667085}";

fn badge(v: Verdict) -> String {
    format!("<span class=\"v {0}\">{0}</span>", v.as_str())
}

/// Products that get a full section (and charts): the riskiest `MAX_SECTIONS` of those that warned
/// or failed, FAIL first. The rest are in the all-products table and `scores/products.csv`, so a
/// catalog with thousands of flagged products still gives a page a browser can open.
pub const MAX_SECTIONS: usize = 150;

/// The products with a full section, riskiest first.
pub fn sections(a: &Analysis) -> Vec<&crate::findings::ProductScore> {
    let mut risky: Vec<&crate::findings::ProductScore> = a
        .products
        .iter()
        .filter(|p| matches!(p.verdict, Verdict::Warn | Verdict::Fail))
        .collect();
    risky.sort_by(|x, y| {
        y.verdict
            .cmp(&x.verdict)
            .then(y.score.total_cmp(&x.score))
            .then(x.product_id.cmp(&y.product_id))
    });
    risky.truncate(MAX_SECTIONS);
    risky
}

/// Render the page. `charts` maps product id → (file name, base64 PNG).
pub fn render(
    f: &FindingsFile,
    a: &Analysis,
    d: &AuditData,
    charts: &Charts,
    comparison: Option<&Comparison>,
) -> String {
    let mut h = String::with_capacity(1 << 20);
    let title = format!(
        "revaudit report — {} ({}..{})",
        f.period.label, f.period.from, f.period.to
    );
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{}</title><style>{CSS}</style></head><body>\n\
<header><h1>{}</h1><p>generated {} by revaudit {}</p></header><main>\n",
        escape(&title),
        escape(&title),
        escape(&f.generated_at),
        escape(f.revaudit_version)
    );
    // Products at risk, riskiest first.
    let flagged = a
        .products
        .iter()
        .filter(|p| matches!(p.verdict, Verdict::Warn | Verdict::Fail))
        .count();
    let risky = sections(a);
    let anchor = |id: &str| format!("p-{}", super::charts::safe_name(id));
    let in_sections: std::collections::BTreeSet<&str> =
        risky.iter().map(|p| p.product_id.as_str()).collect();
    let linked = |p: &str| linked_product(&in_sections, p);
    let _ = write!(h, "<nav><strong>Contents</strong>: <a href=\"#summary\">Summary</a>{}<a href=\"#products\">Products at risk</a>\
<a href=\"#groups\">Reviewer groups</a><a href=\"#views\">Catalog-wide views</a><a href=\"#catalog\">All products</a><a href=\"#quality\">Data quality</a><a href=\"#methodology\">Methodology</a></nav>",
        if comparison.is_some() { "<a href=\"#since\">Since last month</a>" } else { "" });
    // Summary.
    let s = &f.summary;
    let _ = write!(h, "<section id=\"summary\"><h2>Summary</h2><p>{} reviews audited from {} to {} ({} products, {} reviewers); {} order lines loaded; {:.1}% of reviews linked to an order.</p>",
        f.data.reviews_audited, escape(&f.period.from), escape(&f.period.to), f.data.products, f.data.reviewers, f.data.load.order_lines, f.data.link_rate * 100.0);
    h.push_str("<table><tr><th>verdict</th><th>products</th></tr>");
    for v in ["fail", "warn", "pass", "insufficient"] {
        let _ = write!(
            h,
            "<tr><td><span class=\"v {v}\">{v}</span></td><td class=\"num\">{}</td></tr>",
            s.product_verdicts.get(v).unwrap_or(&0)
        );
    }
    let _ = write!(h, "</table><p>Mean rating of the audited reviews: <strong>{:.2}</strong>; after down-weighting suspicious reviews: <strong>{:.2}</strong>.</p>", s.original_rating, s.adjusted_rating);
    if !risky.is_empty() {
        h.push_str("<h3>Top risks</h3><table><tr><th>product</th><th>verdict</th><th>score</th><th>reviews</th><th>rating → adjusted</th><th>why</th></tr>");
        for p in risky.iter().take(10) {
            let _ = write!(h, "<tr><td><a href=\"#{}\">{}</a></td><td>{}</td><td class=\"num\">{:.2}</td><td class=\"num\">{}</td><td class=\"num\">{:.2} → {:.2}</td><td>{}</td></tr>",
                anchor(&p.product_id), escape(&p.product_id), badge(p.verdict), p.score, p.n_reviews, p.original_rating, p.adjusted_rating, escape(&p.reasons.replace(';', ", ")));
        }
        h.push_str("</table>");
    }
    h.push_str("</section>\n");
    if let Some(c) = comparison {
        since(&mut h, c, &linked);
    }
    // Per product.
    let mut by_product: BTreeMap<&str, Vec<&crate::findings::Finding>> = BTreeMap::new();
    for x in f.findings {
        if let Subject::Product(p) = &x.subject {
            by_product.entry(p.as_str()).or_default().push(x);
        }
    }
    // Scored reviews of the products that get a section, gathered in one pass.
    let mut scored_of: HashMap<u32, Vec<&crate::findings::ReviewScore>> = risky
        .iter()
        .filter_map(|p| d.products.binary_search(&p.product_id).ok())
        .map(|i| (i as u32, Vec::new()))
        .collect();
    for s in &a.reviews {
        if let Some(v) = scored_of.get_mut(&d.reviews[s.review as usize].product) {
            v.push(s);
        }
    }
    h.push_str("<section id=\"products\"><h2>Products at risk</h2>");
    if flagged > risky.len() {
        let _ = write!(h, "<p>The {} riskiest of {flagged} flagged products have a section here; all of them are in <a href=\"#catalog\">the table of all products</a> and in <code>scores/products.csv</code>.</p>", risky.len());
    }
    if risky.is_empty() {
        h.push_str("<p>No product warned or failed.</p>");
    } else {
        // An index of the sections, riskiest first.
        h.push_str("<p class=\"toc\">");
        for p in &risky {
            let _ = write!(
                h,
                "<a href=\"#{}\">{}</a>&nbsp;<span class=\"v {2}\">{2}</span> ",
                anchor(&p.product_id),
                escape(&p.product_id),
                p.verdict.as_str()
            );
        }
        h.push_str("</p>");
    }
    for p in &risky {
        let _ = write!(h, "<h3 id=\"{}\">{} {}</h3><p>score {:.2} · {} reviews · {} shipped orders · rating {:.2} → adjusted {:.2}</p>",
            anchor(&p.product_id), badge(p.verdict), escape(&p.product_id), p.score, p.n_reviews, p.n_orders, p.original_rating, p.adjusted_rating);
        // The daily chart in view; the other charts folded (a catalog with a hundred flagged
        // products stays scrollable).
        let mine = charts
            .products
            .get(&p.product_id)
            .map(|v| v.as_slice())
            .unwrap_or(&[]);
        if let Some((first, rest)) = mine.split_first() {
            img(&mut h, first);
            if !rest.is_empty() {
                h.push_str("<details><summary>More charts: lag after purchase, hour × weekday, star ratings, weekly signals</summary>");
                for c in rest {
                    img(&mut h, c);
                }
                h.push_str("</details>");
            }
        }
        findings_table(
            &mut h,
            by_product
                .get(p.product_id.as_str())
                .map(|v| v.as_slice())
                .unwrap_or(&[]),
        );
        // The most suspicious reviews of the product, with their text (escaped).
        let mut revs: Vec<&crate::findings::ReviewScore> = d
            .products
            .binary_search(&p.product_id)
            .ok()
            .and_then(|i| scored_of.get(&(i as u32)))
            .map(|v| v.to_vec())
            .unwrap_or_default();
        let id = |s: &crate::findings::ReviewScore| d.reviews[s.review as usize].id.as_str();
        // Only the first eight are shown: picked, then sorted (ids are unique, so the order is
        // total and the eight are those a full sort would put first).
        let by_risk = |x: &&crate::findings::ReviewScore, y: &&crate::findings::ReviewScore| {
            y.score.total_cmp(&x.score).then(id(x).cmp(id(y)))
        };
        if revs.len() > 8 {
            revs.select_nth_unstable_by(8, by_risk);
            revs.truncate(8);
        }
        revs.sort_by(by_risk);
        h.push_str("<details><summary>Most suspicious reviews</summary><table><tr><th>review</th><th>posted</th><th>stars</th><th>score</th><th>reasons</th><th>text</th></tr>");
        for s in revs.iter().take(8) {
            let r = &d.reviews[s.review as usize];
            let short: String = d.text(r).unwrap_or("").chars().take(400).collect();
            let _ = write!(h, "<tr><td class=\"ids\">{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{:.2}</td><td>{}</td><td><div class=\"text\">{}</div></td></tr>",
                escape(&r.id), escape(&crate::ingest::timestamp::format_utc(r.t)), r.rating, s.score, escape(&s.reasons.replace(';', ", ")), escape(&short));
        }
        h.push_str("</table></details>");
    }
    h.push_str("</section>\n");
    // Groups.
    let mut by_group: BTreeMap<&str, Vec<&Finding>> = BTreeMap::new();
    let mut catalog_findings: Vec<&Finding> = Vec::new();
    for x in f.findings {
        match &x.subject {
            Subject::Group(g) => by_group.entry(g.as_str()).or_default().push(x),
            Subject::Catalog(_) => catalog_findings.push(x),
            Subject::Product(_) => {}
        }
    }
    h.push_str("<section id=\"groups\"><h2>Reviewer groups</h2>");
    if f.groups.is_empty() {
        h.push_str("<p>No group of accounts reviewed the same products in lockstep.</p>");
    } else {
        h.push_str("<p>Accounts that reviewed the same products within days of each other, more often than chance allows. Each group's matrix shows who reviewed what and when.</p>");
        h.push_str("<table><tr><th>group</th><th>verdict</th><th>accounts</th><th>products</th><th>window</th><th>rating deviation</th><th>text similarity</th><th>q</th></tr>");
        for g in f.groups {
            let prods: Vec<String> = g.products.iter().map(|p| linked(p)).collect();
            let _ = write!(h, "<tr><td><a href=\"#g-{}\">{}</a></td><td>{}</td><td class=\"num\">{}</td><td>{}</td><td>{}..{}</td><td class=\"num\">{:+.2}</td><td class=\"num\">{}</td><td class=\"num\">{:.2e}</td></tr>",
                super::charts::safe_name(&g.id), escape(&g.id), badge(g.verdict), g.members.len(), prods.join(", "), escape(&g.window.from), escape(&g.window.to), g.rating_deviation,
                g.text_similarity.map(|t| format!("{t:.2}")).unwrap_or_else(|| "–".into()), g.q);
        }
        h.push_str("</table>");
        for g in f.groups.iter().take(super::MAX_GROUP_CHARTS) {
            let _ = write!(
                h,
                "<h3 id=\"g-{}\">Group {} {}</h3><p><span class=\"muted\">accounts:</span> <span class=\"ids\">{}</span></p>",
                super::charts::safe_name(&g.id),
                escape(&g.id),
                badge(g.verdict),
                g.members.iter().map(|m| escape(m)).collect::<Vec<_>>().join(" ")
            );
            if let Some(c) = charts.groups.get(&g.id) {
                img(&mut h, c);
            }
            findings_table(
                &mut h,
                by_group
                    .get(g.id.as_str())
                    .map(|v| v.as_slice())
                    .unwrap_or(&[]),
            );
        }
        if f.groups.len() > super::MAX_GROUP_CHARTS {
            let _ = write!(
                h,
                "<p>The other {} groups are in findings.json.</p>",
                f.groups.len() - super::MAX_GROUP_CHARTS
            );
        }
    }
    h.push_str("</section>\n");
    // Catalog-wide views.
    h.push_str("<section id=\"views\"><h2>Catalog-wide views</h2>");
    if !catalog_findings.is_empty() {
        h.push_str("<h3>Catalog-wide findings</h3>");
        findings_table(&mut h, &catalog_findings);
    }
    for c in &charts.catalog {
        img(&mut h, c);
    }
    if !f.product_pairs.is_empty() {
        h.push_str("<h3>Product pairs sharing the most reviewers</h3><table><tr><th>product</th><th>product</th><th>shared reviewers</th></tr>");
        for pp in f.product_pairs.iter().take(20) {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td></tr>",
                linked(&pp.a),
                linked(&pp.b),
                pp.shared_reviewers
            );
        }
        h.push_str("</table>");
    }
    h.push_str("</section>\n");
    // All products (risk order, no JavaScript needed).
    let mut all: Vec<&crate::findings::ProductScore> = a.products.iter().collect();
    all.sort_by(|x, y| {
        y.verdict
            .cmp(&x.verdict)
            .then(y.score.total_cmp(&x.score))
            .then(x.product_id.cmp(&y.product_id))
    });
    h.push_str("<section id=\"catalog\"><h2>All products, riskiest first</h2><table><tr><th>product</th><th>verdict</th><th>score</th><th>reviews</th><th>orders</th><th>rating</th><th>adjusted</th></tr>");
    for p in all {
        let name = linked(&p.product_id);
        let _ = write!(h, "<tr><td>{name}</td><td>{}</td><td class=\"num\">{:.2}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{:.2}</td><td class=\"num\">{:.2}</td></tr>",
            badge(p.verdict), p.score, p.n_reviews, p.n_orders, p.original_rating, p.adjusted_rating);
    }
    h.push_str("</table></section>\n");
    // Data quality.
    h.push_str("<section id=\"quality\"><h2>Data quality</h2><table><tr><th>file</th><th>format</th><th>encoding</th><th>rows</th><th>rejected</th><th>dates</th><th>time</th></tr>");
    for file in &f.data.load.files {
        let _ = write!(h, "<tr><td class=\"ids\">{}</td><td>{} ({})</td><td>{}{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}..{}</td><td>{}</td></tr>",
            escape(&file.path), escape(&file.format), file.kind.as_str(), escape(&file.encoding), if file.gzip { ", gzip" } else { "" }, file.rows, file.rejected,
            escape(file.first.as_deref().unwrap_or("")), escape(file.last.as_deref().unwrap_or("")),
            file.time_resolution.map(|t| format!("{t:?}").to_lowercase()).unwrap_or_default());
    }
    h.push_str("</table>");
    for file in f
        .data
        .load
        .files
        .iter()
        .filter(|x| !x.rejected_rows.is_empty())
    {
        let _ = write!(h, "<h3>Rejected rows of {}</h3><table><tr><th>line</th><th>column</th><th>problem</th><th>value</th></tr>", escape(&file.path));
        for e in &file.rejected_rows {
            let _ = write!(
                h,
                "<tr><td class=\"num\">{}</td><td>{}</td><td>{}</td><td class=\"ids\">{}</td></tr>",
                e.line,
                escape(&e.column),
                escape(&e.problem),
                escape(&e.value)
            );
        }
        h.push_str("</table>");
    }
    let l = &f.data.load;
    if l.duplicate_order_lines + l.duplicate_reviews > 0 {
        let _ = write!(h, "<p>Duplicates dropped (same id in several files or twice in one): {} order lines, {} reviews; {} of them with conflicting content (the first copy is kept).</p>",
            l.duplicate_order_lines, l.duplicate_reviews, l.conflicting_duplicates);
        if !l.conflicts.is_empty() {
            h.push_str("<ul>");
            for c in &l.conflicts {
                let _ = write!(h, "<li>{}</li>", escape(c));
            }
            h.push_str("</ul>");
        }
    }
    let _ = write!(h, "<p>Reviews linked to orders: {:.1}%. Review time resolution: {}. Local time for hour-of-day tests: {}. Order→review lag model: {}.</p>",
        f.data.link_rate * 100.0, escape(&f.data.review_time_resolution), escape(&f.data.local_time), escape(&f.data.lag_model));
    if !f.tests_not_run.is_empty() {
        h.push_str("<h3>Tests that could not run</h3><table><tr><th>family</th><th>test</th><th>why</th></tr>");
        for t in f.tests_not_run {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&t.family),
                escape(&t.test),
                escape(&t.reason)
            );
        }
        h.push_str("</table>");
    }
    h.push_str("</section>\n");
    // Methodology.
    h.push_str("<section id=\"methodology\"><h2>Methodology</h2><p>Every test asks two questions of a subset of reviews: (a) is it larger than expected against a baseline (Benjamini–Hochberg within each family), and (b) does its rating differ from the rest? Both → FAIL, one → WARN, neither → PASS; too few reviews → INSUFFICIENT. Expected reviews follow shipped orders, so a burst after an order surge is not a finding. Three families answering (a) for one product corroborate each other and FAIL it.</p>\
<table><tr><th>test</th><th>family</th><th>subjects tested</th><th>warn</th><th>fail</th></tr>");
    for (name, t) in f.tests {
        let _ = write!(h, "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>", escape(name), escape(&t.family), t.tested, t.warn, t.fail);
    }
    h.push_str("</table><h3>Thresholds used</h3><table>");
    if let Ok(serde_json::Value::Object(m)) = serde_json::to_value(f.config) {
        for (k, v) in m {
            let _ = write!(
                h,
                "<tr><td>{}</td><td class=\"ids\">{}</td></tr>",
                escape(&k),
                escape(&v.to_string())
            );
        }
    }
    h.push_str("</table><p class=\"muted\">Methods: ReviewMeta subset tests; SpEagle (Rayana &amp; Akoglu 2015) behavioural features and prior; BIRDNEST inter-arrival buckets; CopyCatch lockstep; FRAUDAR greedy peeling; GSRank group indicators (Mukherjee et al. 2012); Ye, Kumar &amp; Akoglu (2016) temporal multi-signal; He et al. (PNAS 2022) product overlap.</p></section>\n");
    let _ = writeln!(h, "<p class=\"muted\">Personal data (emails, names, phones, addresses, IPs, postal codes) appears only as keyed hashes. Report generated {}.</p></main></body></html>", escape(&f.generated_at));
    h
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape("<script>alert('x')</script>"),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"
        );
        assert_eq!(
            escape("<img src=x onerror=\"y\">"),
            "&lt;img src=x onerror=&quot;y&quot;&gt;"
        );
        assert_eq!(escape("a & b"), "a &amp; b");
    }
}
