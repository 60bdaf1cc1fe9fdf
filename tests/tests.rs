//! The one integration-test binary: runs the real `revaudit` executable on fixtures in the exact
//! real export layouts (tests/fixtures), broken files, generated data and the bundled sample.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

mod browser;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixtures")
        .join(name)
}

/// A scratch folder with its own hashing key, so tests never touch the user's config.
struct Work {
    dir: tempfile::TempDir,
}

impl Work {
    fn new() -> Work {
        Work {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, bytes).expect("write fixture");
        p
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_revaudit"))
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("REVAUDIT_KEY_FILE", self.path("hash.key"))
            .env_remove("XDG_CONFIG_HOME")
            .output()
            .expect("run revaudit")
    }

    fn inspect_json(&self, files: &[&Path], extra: &[&str]) -> (Value, Output) {
        let mut args = vec!["inspect", "--json"];
        args.extend_from_slice(extra);
        let owned: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
        args.extend(owned.iter().map(|s| s.as_str()));
        let out = self.run(&args);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "inspect --json output is not JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        });
        (v, out)
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn file0(v: &Value) -> &Value {
    &v["files"][0]
}

// ---------------------------------------------------------------- CLI

#[test]
fn cli_definition_is_consistent() {
    use clap::CommandFactory;
    revaudit::cli::Cli::command().debug_assert();
}

#[test]
fn help_version_and_usage_errors() {
    let w = Work::new();
    let help = w.run(&["--help"]);
    assert!(help.status.success());
    for sub in ["audit", "inspect", "generate", "eval"] {
        assert!(stdout(&help).contains(sub), "help lists {sub}");
    }
    let v = w.run(&["--version"]);
    assert!(v.status.success());
    assert!(stdout(&v).starts_with("revaudit "));
    let bad = w.run(&["frobnicate"]);
    assert_eq!(bad.status.code(), Some(2));
    let bad_fmt = w.run(&[
        "inspect",
        "--reviews-format",
        "nope",
        fixture("yelp.jsonl").to_str().unwrap(),
    ]);
    assert_eq!(bad_fmt.status.code(), Some(2));
    assert!(
        stderr(&bad_fmt).contains("unknown format 'nope'"),
        "{}",
        stderr(&bad_fmt)
    );
}

// ---------------------------------------------------------------- formats

#[test]
fn every_format_is_detected_by_header() {
    let w = Work::new();
    let cases = [
        ("amazon-all-orders.tsv", "amazon-all-orders", "orders", 4),
        (
            "amazon-all-orders-legacy.tsv",
            "amazon-all-orders",
            "orders",
            2,
        ),
        (
            "amazon-fba-shipments.tsv",
            "amazon-fba-shipments",
            "orders",
            2,
        ),
        (
            "amazon-fba-shipments-titlecase.tsv",
            "amazon-fba-shipments",
            "orders",
            1,
        ),
        ("shopify-orders.csv", "shopify-orders", "orders", 3),
        (
            "amazon-reviews-2023.jsonl",
            "amazon-reviews-2023",
            "reviews",
            3,
        ),
        (
            "amazon-reviews-2018.jsonl",
            "amazon-reviews-2018",
            "reviews",
            2,
        ),
        (
            "amazon-reviews-2014.jsonl",
            "amazon-reviews-2014",
            "reviews",
            2,
        ),
        (
            "amazon-customer-reviews.tsv",
            "amazon-customer-reviews",
            "reviews",
            2,
        ),
        ("trustpilot.csv", "trustpilot", "reviews", 2),
        ("judgeme.csv", "judgeme", "reviews", 2),
        ("yelp.jsonl", "yelp", "reviews", 2),
        ("generic-reviews.csv", "generic", "reviews", 3),
    ];
    for (file, format, kind, rows) in cases {
        let (v, out) = w.inspect_json(&[&fixture(file)], &[]);
        assert!(out.status.success(), "{file}: {}", stderr(&out));
        let f = file0(&v);
        assert_eq!(f["format"], format, "{file}");
        assert_eq!(f["kind"], kind, "{file}");
        assert_eq!(f["rows"], rows, "{file}");
        assert_eq!(f["rejected"], 0, "{file}: {}", f["rejected_rows"]);
    }
}

#[test]
fn offsets_become_utc_instants() {
    let w = Work::new();
    let (v, _) = w.inspect_json(&[&fixture("amazon-all-orders.tsv")], &[]);
    // 2024-03-01T23:30:00-05:00 is 2024-03-02T04:30:00Z.
    assert_eq!(file0(&v)["first"], "2024-03-02T04:30:00Z");
    assert_eq!(file0(&v)["time_resolution"], "second");
    let (v, _) = w.inspect_json(&[&fixture("shopify-orders.csv")], &[]);
    assert_eq!(file0(&v)["first"], "2024-01-05T15:22:13Z");
    let (v, _) = w.inspect_json(&[&fixture("amazon-reviews-2018.jsonl")], &[]);
    assert_eq!(file0(&v)["first"], "2004-08-09T00:00:00Z");
    assert_eq!(file0(&v)["time_resolution"], "day");
}

#[test]
fn forced_format_and_missing_columns() {
    let w = Work::new();
    let (v, out) = w.inspect_json(
        &[&fixture("generic-reviews.csv")],
        &["--reviews-format", "generic"],
    );
    assert!(out.status.success());
    assert_eq!(file0(&v)["format"], "generic");
    // Forcing a format the header does not fit names the missing columns.
    let out = w.run(&[
        "audit",
        "--reviews",
        fixture("yelp.jsonl").to_str().unwrap(),
        "--reviews-format",
        "trustpilot",
        "--out",
        w.path("r").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("missing required column(s) for format trustpilot"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn generic_mapping_file() {
    let w = Work::new();
    let (v, out) = w.inspect_json(
        &[&fixture("custom-reviews.csv")],
        &[
            "--mapping",
            fixture("custom-mapping.toml").to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let f = file0(&v);
    assert_eq!(f["format"], "generic");
    assert_eq!(f["delimiter"], "semicolon");
    assert_eq!(f["rows"], 2);
    // 02/03/2024 14:05 at +01:00 is 13:05Z.
    assert_eq!(f["first"], "2024-03-02T13:05:00Z");
    assert_eq!(f["column_mapping"]["product_id"], "Item");
    // The example shipped in notebooks-data works too.
    let (v, out) = w.inspect_json(
        &[Path::new("notebooks-data/mapping-example-reviews.csv")],
        &["--mapping", "notebooks-data/mapping-example.toml"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(file0(&v)["rows"], 2);
    // A mapping naming a field that does not exist is a usage error.
    let bad = w.write(
        "bad.toml",
        b"kind = \"reviews\"\n[columns]\nproduct = \"Item\"\n",
    );
    let out = w.run(&[
        "inspect",
        "--mapping",
        bad.to_str().unwrap(),
        fixture("custom-reviews.csv").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("'product' is not a canonical reviews field"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn gzip_inputs_and_truncated_gzip() {
    let w = Work::new();
    let raw = std::fs::read(fixture("amazon-reviews-2023.jsonl")).unwrap();
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(&raw).unwrap();
    let gz = enc.finish().unwrap();
    let p = w.write("reviews.jsonl.gz", &gz);
    let (v, out) = w.inspect_json(&[&p], &[]);
    assert!(out.status.success());
    assert_eq!(file0(&v)["gzip"], true);
    assert_eq!(file0(&v)["rows"], 3);
    let t = w.write("truncated.jsonl.gz", &gz[..gz.len() / 2]);
    let out = w.run(&["inspect", t.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stdout(&out).contains("corrupt or truncated"),
        "{}",
        stdout(&out)
    );
    let fake = w.write("fake.tsv.gz", b"amazon-order-id\tpurchase-date\n");
    let out = w.run(&["inspect", fake.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stdout(&out).contains("not gzip data"));
}

#[test]
fn encodings_are_decoded_and_reported() {
    let w = Work::new();
    let text = "review_id,product_id,reviewer_id,rating,created_at,text\nr1,P1,U1,5,2024-01-02,Caf\u{e9} cr\u{e8}me\n";
    // Windows-1252.
    let (cp, _, _) = encoding_rs::WINDOWS_1252.encode(text);
    let p = w.write("cp1252.csv", &cp);
    let (v, _) = w.inspect_json(&[&p], &[]);
    assert!(file0(&v)["encoding"]
        .as_str()
        .unwrap()
        .starts_with("windows-1252"));
    assert_eq!(file0(&v)["rows"], 1);
    // UTF-16 LE with BOM (Excel "Unicode text", tab-separated).
    let mut u16 = vec![0xFF, 0xFE];
    for u in text.replace(',', "\t").encode_utf16() {
        u16.extend_from_slice(&u.to_le_bytes());
    }
    let p = w.write("unicode.txt", &u16);
    let (v, _) = w.inspect_json(&[&p], &[]);
    assert_eq!(file0(&v)["encoding"], "utf-16le");
    assert_eq!(file0(&v)["rows"], 1);
    // UTF-8 with BOM.
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend_from_slice(text.as_bytes());
    let p = w.write("bom.csv", &bom);
    let (v, _) = w.inspect_json(&[&p], &[]);
    assert_eq!(file0(&v)["encoding"], "utf-8 (BOM stripped)");
    assert_eq!(file0(&v)["format"], "generic");
}

#[test]
fn parquet_is_read_as_generic() {
    use polars::prelude::*;
    let w = Work::new();
    let mut df = df!(
        "review_id" => ["a", "b"],
        "product_id" => ["P1", "P1"],
        "reviewer_id" => ["U1", "U2"],
        "rating" => [5i64, 3],
        "created_at" => ["2024-02-01T10:00:00Z", "2024-02-02T11:00:00+01:00"],
    )
    .unwrap();
    let p = w.path("reviews.parquet");
    let f = std::fs::File::create(&p).unwrap();
    ParquetWriter::new(f).finish(&mut df).unwrap();
    let (v, out) = w.inspect_json(&[&p], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(file0(&v)["format"], "generic");
    assert_eq!(file0(&v)["encoding"], "parquet");
    assert_eq!(file0(&v)["rows"], 2);
    assert_eq!(file0(&v)["last"], "2024-02-02T10:00:00Z");
}

// ---------------------------------------------------------------- bad input

fn rejected_row(w: &Work, name: &str) -> Value {
    let (v, out) = w.inspect_json(&[&fixture(name)], &[]);
    assert!(
        out.status.success(),
        "{name}: inspect reports bad rows without failing"
    );
    assert_eq!(file0(&v)["rejected"], 1, "{name}: {v}");
    file0(&v)["rejected_rows"][0].clone()
}

#[test]
fn bad_rows_name_line_column_and_value() {
    let w = Work::new();
    let r = rejected_row(&w, "bad/bad-date.tsv");
    assert_eq!(
        (
            r["line"].as_u64(),
            r["column"].as_str(),
            r["value"].as_str()
        ),
        (Some(3), Some("purchase-date"), Some("yesterday-ish"))
    );
    assert!(r["problem"].as_str().unwrap().contains("unparseable date"));
    let r = rejected_row(&w, "bad/nonnumeric-quantity.tsv");
    assert_eq!(
        (
            r["line"].as_u64(),
            r["column"].as_str(),
            r["value"].as_str()
        ),
        (Some(3), Some("quantity"), Some("two"))
    );
    let r = rejected_row(&w, "bad/wrong-field-count.tsv");
    assert_eq!(r["line"], 3);
    assert!(r["problem"]
        .as_str()
        .unwrap()
        .contains("expected 32, found 33"));
    let r = rejected_row(&w, "bad/rating-out-of-range.jsonl");
    assert_eq!(
        (
            r["line"].as_u64(),
            r["column"].as_str(),
            r["value"].as_str()
        ),
        (Some(1), Some("rating"), Some("6.0"))
    );
    let r = rejected_row(&w, "bad/excel-mangled.csv");
    assert_eq!(
        (
            r["line"].as_u64(),
            r["column"].as_str(),
            r["value"].as_str()
        ),
        (Some(2), Some("review_id"), Some("5.80293E+13"))
    );
    assert!(r["problem"].as_str().unwrap().contains("Excel"));
    let r = rejected_row(&w, "bad/malformed-line.jsonl");
    assert_eq!(r["line"], 2);
    assert!(r["problem"].as_str().unwrap().contains("malformed JSON"));
    let (v, _) = w.inspect_json(&[&fixture("bad/excel-mangled.csv")], &[]);
    assert_eq!(file0(&v)["mangled_count"], 1);
}

#[test]
fn unusable_files_get_one_clear_line_and_exit_2() {
    let w = Work::new();
    let garbage: Vec<u8> = (0..5000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 7) as u8)
        .collect();
    let g = w.write("garbage.csv", &garbage);
    let cases: Vec<(PathBuf, &str)> = vec![
        (fixture("bad/empty.tsv"), "is empty"),
        (fixture("bad/html-error-page.tsv"), "HTML"),
        (fixture("bad/zip-named.csv"), "zip archive"),
        (
            fixture("bad/missing-column.tsv"),
            "required column(s) are missing: asin",
        ),
        (fixture("bad/unknown-layout.csv"), "unrecognised"),
        (w.path("does-not-exist.tsv"), "cannot read"),
        (fixture("bad"), "is a directory"),
        (g, "binary"),
    ];
    let wrong_side = w.run(&[
        "audit",
        "-q",
        "--reviews",
        fixture("amazon-all-orders.tsv").to_str().unwrap(),
    ]);
    assert_eq!(wrong_side.status.code(), Some(2));
    assert!(stderr(&wrong_side).contains("is an orders export (amazon-all-orders), but was given as reviews; pass it with --orders"), "{}", stderr(&wrong_side));
    for (p, want) in cases {
        let out = w.run(&[
            "audit",
            "-q",
            "--reviews",
            p.to_str().unwrap(),
            "--out",
            w.path("rep").to_str().unwrap(),
        ]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{}: {}",
            p.display(),
            stderr(&out)
        );
        let err = stderr(&out);
        assert!(
            err.contains(want),
            "{}: wanted '{want}' in: {err}",
            p.display()
        );
        assert!(
            err.contains(p.file_name().unwrap().to_str().unwrap()),
            "error names the file: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(!w.path("rep").exists(), "nothing written on error");
    }
}

/// What a broken file must produce.
enum Expect {
    /// The file cannot be used: exit 2, and the message says this.
    FileError(&'static str),
    /// Loaded, with exactly this many rows rejected, each listed with its line; one says this.
    Rejected(u64, &'static str),
    /// Loaded with a warning (or a mangled-value note) saying this.
    Warning(&'static str),
    /// Loaded cleanly: an unusual but valid file.
    Clean,
}

#[test]
fn broken_input_corpus() {
    use Expect::*;
    let cases: &[(&str, Expect)] = &[
        ("a-directory.csv", FileError("is a directory")),
        ("bad-date.tsv", Rejected(1, "unparseable date")),
        ("duplicate-conflicting-ids.csv", Clean), // conflicts are a dataset matter: see below
        ("empty.tsv", FileError("is empty")),
        ("epochs-micro-negative.jsonl", Rejected(1, "negative epoch")),
        ("excel-mangled.csv", Rejected(1, "mangled by Excel")),
        ("excel-postal-codes.tsv", Warning("postal code '2.1345E+4'")),
        ("future-and-ancient-dates.csv", Rejected(2, "date")),
        ("header-only.tsv", Warning("no data rows")),
        ("html-error-page.tsv", FileError("HTML")),
        ("json-array.json", FileError("JSON array")),
        ("malformed-line.jsonl", Rejected(1, "malformed JSON")),
        (
            "missing-column.tsv",
            FileError("required column(s) are missing: asin"),
        ),
        (
            "nonnumeric-quantity.tsv",
            Rejected(1, "quantity is not a number"),
        ),
        ("not-gzip.tsv.gz", FileError("not gzip")),
        ("nul-byte.csv", Rejected(1, "NUL byte")),
        ("rating-out-of-range.jsonl", Rejected(1, "rating must be")),
        ("reviews export März ünïcode.csv", Clean),
        ("semicolon-european.csv", Clean),
        (
            "tab-in-product-name.tsv",
            Rejected(1, "a tab inside a text field"),
        ),
        ("truncated.tsv.gz", FileError("corrupt or truncated")),
        ("two-megabyte-line.csv.gz", Warning("MB long")),
        (
            "unknown-layout.csv",
            FileError("unrecognised export layout"),
        ),
        ("utf16-excel-unicode.txt", Clean),
        ("windows-1252.csv", Clean),
        (
            "wrong-field-count.tsv",
            Rejected(1, "wrong number of fields"),
        ),
        ("zip-named.csv", FileError("zip archive")),
    ];
    assert!(cases.len() >= 25);
    // Every file in the corpus has an expectation.
    let mut on_disk: Vec<String> = std::fs::read_dir(fixture("bad"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = cases.iter().map(|c| c.0.to_string()).collect();
    listed.sort();
    assert_eq!(on_disk, listed);
    let w = Work::new();
    let good_reviews = fixture("generic-reviews.csv");
    let good_orders = fixture("amazon-all-orders.tsv");
    for (name, expect) in cases {
        let path = fixture(&format!("bad/{name}"));
        let (v, out) = w.inspect_json(&[&path], &[]);
        let err = stderr(&out);
        assert!(!err.contains("panicked"), "{name}: {err}");
        let f = file0(&v);
        match expect {
            FileError(msg) => {
                assert_eq!(out.status.code(), Some(2), "{name}");
                let e = f["error"].as_str().unwrap_or_else(|| panic!("{name}: {f}"));
                assert!(e.contains(msg), "{name}: {e}");
            }
            Rejected(n, msg) => {
                assert!(out.status.success(), "{name}: {err}");
                assert_eq!(f["rejected"].as_u64(), Some(*n), "{name}: {f}");
                let rows = f["rejected_rows"].as_array().unwrap();
                assert_eq!(rows.len() as u64, *n, "{name}");
                assert!(
                    rows.iter().all(|r| r["line"].as_u64().unwrap() >= 1),
                    "{name}"
                );
                assert!(
                    rows.iter()
                        .any(|r| r["problem"].as_str().unwrap().contains(msg)),
                    "{name}: {rows:?}"
                );
            }
            Warning(msg) => {
                assert!(out.status.success(), "{name}: {err}");
                let notes = format!("{} {}", f["warnings"], f["mangled_ids"]);
                assert!(notes.contains(msg), "{name}: {notes}");
            }
            Clean => {
                assert!(out.status.success(), "{name}: {err}");
                assert_eq!(f["rejected"].as_u64(), Some(0), "{name}: {f}");
                assert!(f["rows"].as_u64().unwrap() >= 2, "{name}: {f}");
            }
        }
        // The audit on the same file: a clean exit or exit 2 naming the file, never a panic.
        let kind = f["kind"].as_str().unwrap_or("reviews");
        let rep = w.path(&format!("rep-{}", name.replace(' ', "_")));
        let mut args = vec![
            "audit",
            "-q",
            "--on-bad-rows",
            "skip",
            "--out",
            rep.to_str().unwrap(),
        ];
        let p = path.to_str().unwrap();
        if kind == "orders" {
            args.extend(["--orders", p, "--reviews", good_reviews.to_str().unwrap()]);
        } else {
            args.extend(["--orders", good_orders.to_str().unwrap(), "--reviews", p]);
        }
        let out = w.run(&args);
        let err = stderr(&out);
        assert!(!err.contains("panicked"), "{name}: {err}");
        match out.status.code() {
            Some(0) => assert!(rep.join("findings.json").is_file(), "{name}"),
            Some(2) => {
                assert!(
                    err.contains(name),
                    "{name}: the error names the file: {err}"
                );
                assert_eq!(err.trim().lines().count(), 1, "{name}: one line: {err}");
                assert!(!rep.exists(), "{name}: nothing written");
            }
            c => panic!("{name}: exit {c:?}: {err}"),
        }
    }
    // Duplicate ids with conflicting content: the first copy is kept and the conflict is listed
    // with both lines.
    let rep = w.path("rep-dup");
    let out = w.run(&[
        "audit",
        "-q",
        "--out",
        rep.to_str().unwrap(),
        "--reviews",
        fixture("bad/duplicate-conflicting-ids.csv")
            .to_str()
            .unwrap(),
    ]);
    assert!(
        out.status.success() || out.status.code() == Some(2),
        "{}",
        stderr(&out)
    );
    let load: Value = serde_json::from_str(
        &std::fs::read_to_string(if rep.exists() {
            rep.join("load_report.json")
        } else {
            panic!("{}", stderr(&out))
        })
        .unwrap(),
    )
    .unwrap();
    assert_eq!(load["duplicate_reviews"], 1);
    assert_eq!(load["conflicting_duplicates"], 1);
    let c = load["conflicts"][0].as_str().unwrap();
    assert!(
        c.contains("'r1'")
            && c.contains("line 3")
            && c.contains("line 2")
            && c.contains("rating 1 vs 5"),
        "{c}"
    );
}

#[test]
fn inputs_larger_than_memory_get_a_clear_error() {
    let w = Work::new();
    let out_dir = w.path("rep");
    // A tiny memory budget stands in for an export far larger than the machine.
    let out = Command::new(env!("CARGO_BIN_EXE_revaudit"))
        .args(["audit", "-q", "--out", out_dir.to_str().unwrap()])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("REVAUDIT_KEY_FILE", w.path("hash.key"))
        .env("REVAUDIT_MEMORY_LIMIT", "300000")
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("more than this machine can hold"), "{err}");
    assert!(err.contains("orders.tsv.gz"), "names the file: {err}");
    assert!(!out_dir.exists());
    // The input size limit (decompressed bytes) works on gzip streams too.
    let out = Command::new(env!("CARGO_BIN_EXE_revaudit"))
        .args(["inspect", "notebooks-data/sample/orders.tsv.gz"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("REVAUDIT_KEY_FILE", w.path("hash.key"))
        .env("REVAUDIT_MAX_INPUT_BYTES", "1000000")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stdout(&out).contains("input limit"), "{}", stdout(&out));
}

#[test]
fn bad_row_policy() {
    let w = Work::new();
    let f = fixture("bad/rating-out-of-range.jsonl");
    let out_dir = w.path("rep");
    // Default: 1 bad row of 2 is above 1% → fail, listing the row.
    let out = w.run(&[
        "audit",
        "--reviews",
        f.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
        "-q",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("line 1, column 'rating'"),
        "{}",
        stderr(&out)
    );
    assert!(!out_dir.exists());
    let out = w.run(&[
        "audit",
        "--reviews",
        f.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
        "-q",
        "--on-bad-rows",
        "skip",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("load_report.json")).unwrap())
            .unwrap();
    assert_eq!(report["reviews"], 1);
    assert_eq!(report["files"][0]["rejected"], 1);
    // An existing report is not overwritten without --force.
    let again = w.run(&[
        "audit",
        "--reviews",
        f.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
        "-q",
        "--on-bad-rows",
        "skip",
    ]);
    assert_eq!(again.status.code(), Some(2));
    assert!(stderr(&again).contains("--force"));
    let out = w.run(&[
        "audit",
        "--reviews",
        f.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
        "-q",
        "--on-bad-rows",
        "skip",
        "--max-bad-share",
        "0.6",
    ]);
    assert_eq!(out.status.code(), Some(2), "still refuses to overwrite");
}

// ---------------------------------------------------------------- load, link, privacy

fn audit_load_report(w: &Work, args: &[&str]) -> Value {
    let out_dir = w.path(&format!("rep{}", args.len()));
    let mut a = vec!["audit", "-q", "--out", out_dir.to_str().unwrap()];
    a.extend_from_slice(args);
    let out = w.run(&a);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str(&std::fs::read_to_string(out_dir.join("load_report.json")).unwrap())
        .unwrap()
}

#[test]
fn several_files_are_concatenated_and_deduplicated() {
    let w = Work::new();
    let o = fixture("amazon-all-orders.tsv");
    let legacy = fixture("amazon-all-orders-legacy.tsv");
    let r = fixture("trustpilot.csv");
    let rep = audit_load_report(
        &w,
        &[
            "--orders",
            o.to_str().unwrap(),
            legacy.to_str().unwrap(),
            "--reviews",
            r.to_str().unwrap(),
            r.to_str().unwrap(),
        ],
    );
    assert_eq!(rep["order_lines"], 4, "{rep}");
    assert_eq!(rep["duplicate_order_lines"], 2);
    assert_eq!(rep["reviews"], 2);
    assert_eq!(rep["duplicate_reviews"], 2);
    // Trustpilot's Reference Id is the Amazon order id of the first review.
    assert_eq!(rep["linked_reviews"], 1);
    assert_eq!(rep["link_rate"], 0.5);
    assert_eq!(rep["link_methods"]["order id"], 1);
}

/// Each kind is merged by the thread that loads its last file, so a kind can be merged before
/// another file fails: the error reported is still the first failing file in command-line order
/// (orders files before reviews files), and no report is written.
#[test]
fn the_first_failing_file_is_reported_in_file_order() {
    let w = Work::new();
    let missing = fixture("bad/missing-column.tsv");
    let empty = fixture("bad/empty.tsv");
    let orders = fixture("amazon-all-orders.tsv");
    let reviews = fixture("trustpilot.csv");
    let cases: [(&[&Path], &[&Path], &Path); 3] = [
        (&[&missing], &[&reviews, &reviews], &missing),
        (&[&orders], &[&reviews, &empty], &empty),
        (&[&orders, &missing], &[&empty], &missing),
    ];
    for (o, r, culprit) in cases {
        let out_dir = w.path("rep");
        let mut args: Vec<String> = vec!["audit".into(), "-q".into(), "--orders".into()];
        args.extend(o.iter().map(|p| p.display().to_string()));
        args.push("--reviews".into());
        args.extend(r.iter().map(|p| p.display().to_string()));
        args.extend(["--out".into(), out_dir.display().to_string()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = w.run(&args);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        let name = culprit.file_name().unwrap().to_str().unwrap();
        assert!(stderr(&out).contains(name), "{name}: {}", stderr(&out));
        for other in [&missing, &empty]
            .into_iter()
            .filter(|p| p.as_path() != culprit)
        {
            let other = other.file_name().unwrap().to_str().unwrap();
            assert!(!stderr(&out).contains(other), "{other}: {}", stderr(&out));
        }
        assert!(!out_dir.exists());
    }
}

#[test]
fn reviews_link_by_buyer_key_and_product() {
    let w = Work::new();
    let reviews = w.write(
        "app.csv",
        b"review_id,product_id,reviewer_email,rating,created_at\nq1,TEA-1,X7KQ2LMNB9@marketplace.amazon.com,5,2024-03-10T12:00:00Z\nq2,TEA-2,someone@else.example,4,2024-03-10T12:00:00Z\nq3,TEA-1,x7kq2lmnb9@marketplace.amazon.com,5,2024-02-01T12:00:00Z\n",
    );
    let rep = audit_load_report(
        &w,
        &[
            "--orders",
            fixture("amazon-fba-shipments.tsv").to_str().unwrap(),
            "--reviews",
            reviews.to_str().unwrap(),
        ],
    );
    // q1 links (same buyer, product, after purchase); q2 other buyer; q3 is before the purchase.
    assert_eq!(rep["linked_reviews"], 1, "{rep}");
    assert_eq!(rep["link_methods"]["buyer key + product"], 1);
}

#[test]
fn personal_data_is_hashed_at_load() {
    let w = Work::new();
    // A review app that exports the buyer's email (or IP) as the reviewer id.
    let app = w.write(
        "app.csv",
        b"review_id,product_id,reviewer_id,rating,created_at\n\
a1,P9,carol.reviewer@example.net,5,2025-03-02T10:00:00Z\n\
a2,P9,192.0.2.55,4,2025-03-03T10:00:00Z\n\
a3,P9,plain-id-7,3,2025-03-04T10:00:00Z\n",
    );
    let out_dir = w.path("rep");
    let out = w.run(&[
        "audit",
        "--out",
        out_dir.to_str().unwrap(),
        "--orders",
        fixture("amazon-fba-shipments.tsv").to_str().unwrap(),
        fixture("shopify-orders.csv").to_str().unwrap(),
        "--reviews",
        fixture("judgeme.csv").to_str().unwrap(),
        fixture("trustpilot.csv").to_str().unwrap(),
        app.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let inspect = w.run(&[
        "inspect",
        "--json",
        fixture("judgeme.csv").to_str().unwrap(),
        fixture("amazon-fba-shipments.tsv").to_str().unwrap(),
    ]);
    // Every file of the report (gzip files decompressed), the logs and inspect's output.
    let mut everything = String::new();
    let mut stack = vec![out_dir.clone()];
    let mut files = 0;
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            files += 1;
            let bytes = std::fs::read(&p).unwrap();
            if p.extension().is_some_and(|x| x == "gz") {
                use std::io::Read as _;
                let mut s = String::new();
                flate2::read::MultiGzDecoder::new(&bytes[..])
                    .read_to_string(&mut s)
                    .unwrap();
                everything.push_str(&s);
            } else {
                everything.push_str(&String::from_utf8_lossy(&bytes));
            }
        }
    }
    assert!(files >= 8, "{files} files");
    assert!(
        everything.contains("review_id,product_id,reviewer_id"),
        "snapshot read"
    );
    everything.push_str(&stdout(&out));
    everything.push_str(&stderr(&out));
    everything.push_str(&stdout(&inspect));
    for raw in [
        "buyer.one@example.com",
        "second@example.org",
        "203.0.113.7",
        "198.51.100.23",
        "x7kq2lmnb9@marketplace",
        "Jane Buyer",
        "Buyer One",
        "Second Person",
        "carol.reviewer@example.net",
        "192.0.2.55",
        "12 Pine Street",
        "555 0100",
    ] {
        assert!(!everything.contains(raw), "raw personal value {raw} leaked");
    }
    // The key file was created on first run and is reused.
    let key = std::fs::read_to_string(w.path("hash.key")).unwrap();
    assert_eq!(key.trim().len(), 64);
}

// ---------------------------------------------------------------- generator and sample

fn gen(w: &Work, name: &str, seed: &str) -> PathBuf {
    let dir = w.path(name);
    let out = w.run(&[
        "generate",
        "--out",
        dir.to_str().unwrap(),
        "--seed",
        seed,
        "--products",
        "40",
        "--days",
        "120",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    dir
}

#[test]
fn generate_is_deterministic_per_seed() {
    let w = Work::new();
    let a = gen(&w, "a", "3");
    let b = gen(&w, "b", "3");
    let c = gen(&w, "c", "4");
    for f in [
        "orders.tsv",
        "reviews.jsonl",
        "reviews_linked.csv",
        "labels.json",
    ] {
        let fa = std::fs::read(a.join(f)).unwrap();
        assert_eq!(
            fa,
            std::fs::read(b.join(f)).unwrap(),
            "{f} differs for the same seed"
        );
        assert_ne!(
            fa,
            std::fs::read(c.join(f)).unwrap(),
            "{f} identical for different seeds"
        );
    }
    let again = w.run(&["generate", "--out", a.to_str().unwrap(), "--seed", "3"]);
    assert_eq!(
        again.status.code(),
        Some(2),
        "refuses to overwrite without --force"
    );
}

#[derive(Debug)]
struct Rev {
    id: String,
    product: String,
    reviewer: String,
    rating: u8,
    at: i64,
    order: Option<String>,
}

fn read_linked(dir: &Path) -> Vec<Rev> {
    let mut rdr = csv::Reader::from_path(dir.join("reviews_linked.csv")).unwrap();
    rdr.records()
        .map(|r| {
            let r = r.unwrap();
            Rev {
                id: r[0].to_string(),
                product: r[1].to_string(),
                reviewer: r[2].to_string(),
                rating: r[3].parse().unwrap(),
                at: chrono::DateTime::parse_from_rfc3339(&r[4])
                    .unwrap()
                    .timestamp(),
                order: Some(r[8].to_string()).filter(|s| !s.is_empty()),
            }
        })
        .collect()
}

#[test]
fn generated_data_is_realistic_and_labelled() {
    let w = Work::new();
    let dir = gen(&w, "g", "11");
    let labels: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("labels.json")).unwrap()).unwrap();
    let kinds: Vec<&str> = labels["attacks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "review_ring",
            "burst",
            "fast_after_purchase",
            "night_posting",
            "near_duplicate_text",
            "camouflaged_ring",
            "slow_drip",
            "one_star_bombing"
        ]
    );
    let fake: std::collections::HashSet<String> = labels["attacks"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|a| {
            a["review_ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_str().unwrap().to_string())
        })
        .collect();
    let reviews = read_linked(&dir);
    assert!(
        fake.iter().all(|id| reviews.iter().any(|r| &r.id == id)),
        "labelled ids exist"
    );
    // Orders: the exact All Orders header, a row per item.
    let orders_text = std::fs::read_to_string(dir.join("orders.tsv")).unwrap();
    let mut lines = orders_text.lines();
    assert!(lines
        .next()
        .unwrap()
        .starts_with("amazon-order-id\tmerchant-order-id\tpurchase-date"));
    let order_times: std::collections::HashMap<String, i64> = lines
        .map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            (
                c[0].to_string(),
                chrono::DateTime::parse_from_rfc3339(c[2])
                    .unwrap()
                    .timestamp(),
            )
        })
        .collect();
    let organic: Vec<&Rev> = reviews.iter().filter(|r| !fake.contains(&r.id)).collect();
    // Review probability of a few percent.
    let rate =
        organic.iter().filter(|r| r.order.is_some()).count() as f64 / order_times.len() as f64;
    assert!((0.015..0.08).contains(&rate), "organic review rate {rate}");
    // Days-to-weeks lag: median between 5 and 30 days, none under a day.
    let mut lags: Vec<f64> = organic
        .iter()
        .filter_map(|r| {
            r.order
                .as_ref()
                .map(|o| (r.at - order_times[o]) as f64 / 86_400.0)
        })
        .collect();
    lags.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let median = lags[lags.len() / 2];
    assert!((5.0..30.0).contains(&median), "median lag {median} days");
    assert!(lags[0] >= 1.0, "organic reviews come after delivery");
    // J-shaped ratings: 5 most common, 1 more common than 2.
    let count = |k: u8| organic.iter().filter(|r| r.rating == k).count();
    assert!(
        count(5) > count(4) && count(4) > count(2) && count(1) > count(2),
        "J shape: {:?}",
        (1..=5).map(count).collect::<Vec<_>>()
    );
    // Popularity skew: the top product has many times the median product's reviews.
    let mut per: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for r in &organic {
        *per.entry(r.product.as_str()).or_default() += 1;
    }
    let mut counts: Vec<usize> = per.values().copied().collect();
    counts.sort();
    assert!(
        counts[counts.len() - 1] >= 5 * counts[counts.len() / 2].max(1),
        "skew {counts:?}"
    );
    // Some organic repeat reviewers.
    let mut by_reviewer: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for r in &organic {
        *by_reviewer.entry(r.reviewer.as_str()).or_default() += 1;
    }
    assert!(
        by_reviewer.values().filter(|&&n| n >= 2).count() >= 3,
        "repeat reviewers"
    );
    // Daily cycle in local time (UTC-4/-5): fewer orders between 2 and 5 am local than 6 and 9 pm.
    let hour = |t: i64| ((t - 4 * 3600).rem_euclid(86_400) / 3600) as u32;
    let night = order_times
        .values()
        .filter(|&&t| (2..5).contains(&hour(t)))
        .count();
    let evening = order_times
        .values()
        .filter(|&&t| (18..21).contains(&hour(t)))
        .count();
    assert!(
        evening > 5 * night,
        "daily cycle: night {night}, evening {evening}"
    );
    // The promotion product's orders jump in its window.
    assert!(labels["promotion"]["product"].is_string());
    // Reviews hours after purchase really are hours after purchase.
    let fast = labels["attacks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == "fast_after_purchase")
        .unwrap();
    for id in fast["review_ids"].as_array().unwrap() {
        let r = reviews
            .iter()
            .find(|r| r.id == id.as_str().unwrap())
            .unwrap();
        let lag = r.at - order_times[r.order.as_ref().unwrap()];
        assert!((3600..9 * 3600).contains(&lag), "fast review lag {lag}s");
    }
    // Everything generated loads without a rejected row.
    let (v, out) = w.inspect_json(
        &[
            &dir.join("orders.tsv"),
            &dir.join("reviews.jsonl"),
            &dir.join("reviews_linked.csv"),
        ],
        &[],
    );
    assert!(out.status.success());
    for f in v["files"].as_array().unwrap() {
        assert_eq!(f["rejected"], 0, "{f}");
    }
    assert_eq!(v["files"][1]["format"], "amazon-reviews-2023");
}

#[test]
fn bundled_sample_inspects_and_loads() {
    let w = Work::new();
    let files: Vec<PathBuf> = std::fs::read_dir("notebooks-data/sample")
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let refs: Vec<&Path> = files.iter().map(|p| p.as_path()).collect();
    let (v, out) = w.inspect_json(&refs, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let formats: Vec<&str> = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["format"].as_str())
        .collect();
    for want in ["amazon-all-orders", "amazon-reviews-2023", "generic"] {
        assert!(formats.contains(&want), "{formats:?}");
    }
    // `revaudit audit` with no input flags reads the sample.
    let out_dir = w.path("sample-report");
    let out = w.run(&["audit", "-q", "--out", out_dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rep: Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("load_report.json")).unwrap())
            .unwrap();
    assert!(rep["reviews"].as_u64().unwrap() > 1000);
    assert!(rep["order_lines"].as_u64().unwrap() > 10_000);
    let f: Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("findings.json")).unwrap())
            .unwrap();
    assert_eq!(f["period"]["label"], "sample");
    assert!(
        f["summary"]["product_verdicts"]["fail"].as_u64().unwrap() >= 8,
        "{}",
        f["summary"]
    );
    full_report_is_there(&out_dir, &f);
}

/// The sample report carries every kind of chart, as a PNG file and inline, and every section.
fn full_report_is_there(dir: &Path, f: &Value) {
    let html = std::fs::read_to_string(dir.join("index.html")).unwrap();
    let files: Vec<String> = std::fs::read_dir(dir.join("charts"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for name in [
        "catalog-daily.png",
        "catalog-lag.png",
        "catalog-hours.png",
        "catalog-ratings.png",
        "product-pairs.png",
    ] {
        assert!(files.iter().any(|f| f == name), "{name} missing: {files:?}");
    }
    // Every flagged product (the sample has fewer than the section cap) has its section and its
    // daily, lag, hour × weekday, rating and weekly charts.
    let products = read_csv(&dir.join("scores/products.csv"));
    let flagged: Vec<&Vec<String>> = products
        .1
        .iter()
        .filter(|r| r[4] == "warn" || r[4] == "fail")
        .collect();
    assert!(flagged.len() >= 10);
    for r in &flagged {
        let n: u64 = r[1].parse().unwrap();
        for kind in ["daily", "lag", "hours", "ratings", "weekly"] {
            // Hour heatmaps need a minimum of reviews; lag histograms need reviews linked to an
            // order (counted below).
            if kind == "hours" && n < revaudit::report::charts::MIN_HOUR_REVIEWS || kind == "lag" {
                continue;
            }
            let prefix = format!("{kind}-{}-", r[0]);
            assert!(
                files.iter().any(|f| f.starts_with(&prefix)),
                "{prefix} missing"
            );
        }
        assert!(
            html.contains(&format!(">{}</h3>", r[0]))
                || html.contains(&format!("</span> {}</h3>", r[0])),
            "section of {}",
            r[0]
        );
    }
    let lag = flagged
        .iter()
        .filter(|r| {
            files
                .iter()
                .any(|f| f.starts_with(&format!("lag-{}-", r[0])))
        })
        .count();
    assert!(
        lag * 4 >= flagged.len() * 3,
        "{lag} of {} have a lag chart",
        flagged.len()
    );
    let groups = f["groups"].as_array().unwrap();
    assert!(!groups.is_empty());
    for g in groups {
        let prefix = format!("group-{}-", g["id"].as_str().unwrap());
        assert!(
            files.iter().any(|f| f.starts_with(&prefix)),
            "{prefix} missing"
        );
    }
    // Each PNG decodes, and the same bytes are inline in the page.
    let mut inline = 0;
    for name in &files {
        let bytes = std::fs::read(dir.join("charts").join(name)).unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(&bytes));
        let reader = decoder
            .read_info()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let info = reader.info();
        assert!(info.width >= 600 && info.height >= 300, "{name}");
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
        if html.contains(&b64) {
            inline += 1;
        }
    }
    assert_eq!(inline, files.len(), "every chart is inline");
    for id in [
        "summary",
        "products",
        "groups",
        "views",
        "catalog",
        "quality",
        "methodology",
    ] {
        assert!(
            html.contains(&format!("<section id=\"{id}\">")),
            "section {id}"
        );
    }
    // Evidence: each finding's first review id and its sentence are on the page.
    for x in f["findings"].as_array().unwrap() {
        let subject_shown = match x["subject"]["kind"].as_str().unwrap() {
            "product" => flagged
                .iter()
                .any(|r| r[0] == x["subject"]["id"].as_str().unwrap()),
            _ => true,
        };
        if !subject_shown {
            continue;
        }
        let sentence = x["sentence"].as_str().unwrap();
        assert!(
            html.contains(&revaudit::report::html::escape(sentence)),
            "sentence missing: {sentence}"
        );
        if let Some(id) = x["evidence"]["review_ids"][0].as_str() {
            assert!(html.contains(id), "evidence {id} missing");
        }
    }
    // Rendered in a real browser: no console errors, no requests, every image decoded.
    if let Some(pages) = browser::check(&[&dir.join("index.html")]) {
        let page = &pages[0];
        assert!(page.errors.is_empty(), "console errors: {:?}", page.errors);
        assert!(page.requests.is_empty(), "requests: {:?}", page.requests);
        assert_eq!(page.images.len(), files.len());
        assert!(
            page.images.iter().all(|&(ok, w, _)| ok && w >= 600),
            "{:?}",
            page.images
        );
    }
}

#[test]
fn month_over_month() {
    use std::io::Read as _;
    let w = Work::new();
    let mut text = String::new();
    flate2::read::GzDecoder::new(
        std::fs::File::open("notebooks-data/sample/reviews_linked.csv.gz").unwrap(),
    )
    .read_to_string(&mut text)
    .unwrap();
    let orders = "notebooks-data/sample/orders.tsv.gz";
    let sep = w.write("reviews-sep.csv", text.as_bytes());
    let prev = w.path("2026-09");
    let month = |reviews: &Path, period: &str, out: &Path, extra: &[&str]| {
        let mut args = vec![
            "audit",
            "-q",
            "--orders",
            orders,
            "--reviews",
            reviews.to_str().unwrap(),
            "--period",
            period,
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        w.run(&args)
    };
    let out = month(&sep, "2026-09", &prev, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(prev.join("snapshot/other_reviews.csv.gz").is_file());
    assert!(prev.join("snapshot/verdicts.csv").is_file());
    // October's export: three September reviews are gone and one changed its rating.
    let mut lines: Vec<String> = text.lines().map(|l| l.to_string()).collect();
    let september: Vec<usize> = (1..lines.len())
        .filter(|&i| {
            lines[i]
                .split(',')
                .nth(4)
                .is_some_and(|t| t.starts_with("2026-09"))
        })
        .collect();
    let deleted: Vec<String> = september[..3]
        .iter()
        .map(|&i| lines[i].split(',').next().unwrap().to_string())
        .collect();
    let changed = september[10];
    let mut cells: Vec<String> = lines[changed].split(',').map(|c| c.to_string()).collect();
    let old_rating = cells[3].clone();
    cells[3] = if old_rating == "1" {
        "5".into()
    } else {
        "1".into()
    };
    lines[changed] = cells.join(",");
    let changed_id = cells[0].clone();
    let kept: Vec<&String> = lines
        .iter()
        .enumerate()
        .filter(|(i, _)| !september[..3].contains(i))
        .map(|(_, l)| l)
        .collect();
    let oct = w.write(
        "reviews-oct.csv",
        (kept
            .iter()
            .map(|l| l.as_str())
            .collect::<Vec<_>>()
            .join("\n")
            + "\n")
            .as_bytes(),
    );
    let cur = w.path("2026-10");
    let out = month(
        &oct,
        "2026-10",
        &cur,
        &["--previous", prev.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let read = |d: &Path| -> Value {
        serde_json::from_str(&std::fs::read_to_string(d.join("findings.json")).unwrap()).unwrap()
    };
    let (p, c) = (read(&prev), read(&cur));
    let cmp = &c["comparison"];
    assert_eq!(cmp["previous_period"], "2026-09");
    // The sample's ids look like revaudit's own `<stem>#<index>` ids, which shift when an export
    // grows: matched by content.
    assert_eq!(cmp["matched_by"], "product, reviewer and time");
    assert_eq!(cmp["reviews_deleted_total"], 3, "{cmp}");
    let mut del: Vec<&str> = cmp["reviews_deleted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["review_id"].as_str().unwrap())
        .collect();
    del.sort();
    let mut deleted_sorted = deleted.clone();
    deleted_sorted.sort();
    assert_eq!(del, deleted_sorted);
    assert_eq!(cmp["ratings_changed_total"], 1);
    assert_eq!(cmp["ratings_changed"][0]["review_id"], changed_id.as_str());
    assert_eq!(cmp["ratings_changed"][0]["from"].to_string(), old_rating);
    // Findings: new ∪ persisting = this month's keys; resolved ∪ persisting = last month's.
    let keys = |f: &Value| -> std::collections::BTreeSet<String> {
        f["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| {
                format!(
                    "{}:{}:{}",
                    x["test"].as_str().unwrap(),
                    x["subject"]["kind"].as_str().unwrap(),
                    x["subject"]["id"].as_str().unwrap()
                )
            })
            .collect()
    };
    let list = |name: &str| -> std::collections::BTreeSet<String> {
        cmp[name]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["key"].as_str().unwrap().to_string())
            .collect()
    };
    let (kp, kc) = (keys(&p), keys(&c));
    assert_eq!(
        list("findings_persisting"),
        kp.intersection(&kc).cloned().collect()
    );
    assert_eq!(list("findings_new"), kc.difference(&kp).cloned().collect());
    assert_eq!(
        list("findings_resolved"),
        kp.difference(&kc).cloned().collect()
    );
    assert!(!list("findings_persisting").is_empty());
    // Verdict trend over both months, and the next snapshot carries it on.
    assert_eq!(cmp["periods"], serde_json::json!(["2026-09", "2026-10"]));
    let trend = cmp["verdict_trend"].as_object().unwrap();
    assert!(!trend.is_empty());
    for (_, v) in trend {
        assert_eq!(v.as_array().unwrap().len(), 2);
    }
    let verdicts = std::fs::read_to_string(cur.join("snapshot/verdicts.csv")).unwrap();
    assert!(
        verdicts.starts_with("product_id,2026-09,2026-10\n"),
        "{verdicts:.80}"
    );
    let html = std::fs::read_to_string(cur.join("index.html")).unwrap();
    assert!(html.contains("<section id=\"since\">"));
    for id in &deleted {
        assert!(html.contains(id.as_str()), "{id} listed");
    }
    // No snapshot of personal data: the snapshot has ids, product, reviewer, stars, time only.
    let mut snap = String::new();
    flate2::read::MultiGzDecoder::new(
        std::fs::File::open(cur.join("snapshot/other_reviews.csv.gz")).unwrap(),
    )
    .read_to_string(&mut snap)
    .unwrap();
    assert!(snap.starts_with("review_id,product_id,reviewer_id,rating,created_at\n"));
    // A folder that is not a report: exit 2 with the reason, nothing written.
    let bad = w.path("2026-11");
    let out = w.run(&[
        "audit",
        "-q",
        "--orders",
        orders,
        "--reviews",
        oct.to_str().unwrap(),
        "--out",
        bad.to_str().unwrap(),
        "--previous",
        w.path("nothing").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--previous"), "{}", stderr(&out));
    assert!(!bad.exists());
}

// ---------------------------------------------------------------- audit engine

fn audit(w: &Work, out: &Path, args: &[&str]) -> Output {
    let mut a = vec!["audit", "-q", "--force", "--out", out.to_str().unwrap()];
    a.extend_from_slice(args);
    let o = Command::new(env!("CARGO_BIN_EXE_revaudit"))
        .args(&a)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("REVAUDIT_KEY_FILE", w.path("hash.key"))
        .env("SOURCE_DATE_EPOCH", "1767225600")
        .output()
        .expect("run revaudit");
    assert!(o.status.success(), "{}", stderr(&o));
    o
}

fn read_csv(p: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_path(p).unwrap();
    let h = r.headers().unwrap().iter().map(str::to_string).collect();
    let rows = r
        .records()
        .map(|x| x.unwrap().iter().map(str::to_string).collect())
        .collect();
    (h, rows)
}

#[test]
fn audit_output_contract_and_quality_on_generated_data() {
    let w = Work::new();
    let g = w.path("g");
    let out = w.run(&["generate", "--out", g.to_str().unwrap(), "--seed", "1"]);
    assert!(out.status.success());
    let rep = w.path("rep");
    audit(
        &w,
        &rep,
        &[
            "--orders",
            g.join("orders.tsv").to_str().unwrap(),
            "--reviews",
            g.join("reviews_linked.csv").to_str().unwrap(),
        ],
    );
    // findings.json contract.
    let f: Value =
        serde_json::from_str(&std::fs::read_to_string(rep.join("findings.json")).unwrap()).unwrap();
    assert_eq!(f["schema_version"], 1);
    assert_eq!(f["generated_at"], "2026-01-01T00:00:00Z");
    for k in [
        "config",
        "data",
        "summary",
        "tests",
        "tests_not_run",
        "findings",
        "groups",
        "period",
    ] {
        assert!(!f[k].is_null(), "findings.json has {k}");
    }
    assert!(f["data"]["link_rate"].as_f64().unwrap() > 0.5);
    assert!(f["data"]["load"]["files"].as_array().unwrap().len() == 2);
    let findings = f["findings"].as_array().unwrap();
    assert!(!findings.is_empty());
    let mut ids = std::collections::HashSet::new();
    for x in findings {
        for k in [
            "id", "family", "test", "subject", "verdict", "p", "q", "effect", "evidence",
            "sentence",
        ] {
            assert!(!x[k].is_null(), "finding has {k}: {x}");
        }
        assert!(
            ids.insert(x["id"].as_str().unwrap().to_string()),
            "unique id {}",
            x["id"]
        );
        assert!(["warn", "fail"].contains(&x["verdict"].as_str().unwrap()));
        let (p, q) = (x["p"].as_f64().unwrap(), x["q"].as_f64().unwrap());
        assert!(
            (0.0..=1.0).contains(&p) && (0.0..=1.0).contains(&q) && q >= p - 1e-12,
            "{x}"
        );
    }
    // Score tables.
    let (h, rows) = read_csv(&rep.join("scores/reviews.csv"));
    assert_eq!(
        h,
        [
            "review_id",
            "product_id",
            "reviewer_id",
            "created_at",
            "rating",
            "score",
            "reasons"
        ]
    );
    assert!(rows
        .iter()
        .all(|r| (0.0..=1.0).contains(&r[5].parse::<f64>().unwrap())));
    assert!(rows.iter().all(|r| r[0].starts_with("reviews#")));
    let (h, _) = read_csv(&rep.join("scores/reviewers.csv"));
    assert_eq!(h, ["reviewer_id", "n_reviews", "score", "reasons"]);
    let (h, prows) = read_csv(&rep.join("scores/products.csv"));
    assert_eq!(
        h,
        [
            "product_id",
            "n_reviews",
            "n_orders",
            "score",
            "verdict",
            "adjusted_rating",
            "reasons"
        ]
    );
    assert!(prows
        .iter()
        .all(|r| ["pass", "warn", "fail", "insufficient"].contains(&r[4].as_str())));
    // Quality against the labels.
    let e = w.run(&[
        "eval",
        "--json",
        "--labels",
        g.join("labels.json").to_str().unwrap(),
        "--report",
        rep.to_str().unwrap(),
    ]);
    assert!(e.status.success(), "{}", stderr(&e));
    let m: Value = serde_json::from_slice(&e.stdout).unwrap();
    assert!(
        m["review_average_precision"].as_f64().unwrap() >= 0.9,
        "{m}"
    );
    assert!(m["review_roc_auc"].as_f64().unwrap() >= 0.95, "{m}");
    assert!(m["clean_fail_rate"].as_f64().unwrap() <= 0.02, "{m}");
    assert_eq!(m["promotion_failed"], false);
    for a in m["attacks"].as_array().unwrap() {
        assert_eq!(a["recall_warn_or_fail"], 1.0, "{a}");
        if a["kind"] != "slow_drip" {
            assert_eq!(a["recall_fail"], 1.0, "{a}");
        }
    }
}

/// Start an audit of the bundled sample into `out`, wait until it is writing its temporary folder,
/// send `signal` (`INT`, `TERM`), and return its exit code and stderr.
fn interrupt_while_writing(
    w: &Work,
    out: &Path,
    extra: &[&str],
    signal: &str,
) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_revaudit"))
        .args(["audit", "-q", "--out", out.to_str().unwrap()])
        .args(extra)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("REVAUDIT_KEY_FILE", w.path("hash.key"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let tmp = out.parent().unwrap().join(format!(
        ".{}.tmp-{}",
        out.file_name().unwrap().to_str().unwrap(),
        child.id()
    ));
    let start = std::time::Instant::now();
    while !tmp.join("findings.json").exists() {
        assert!(
            start.elapsed().as_secs() < 120,
            "the audit never started writing"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the audit ended before it could be interrupted"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let kill = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    assert!(!tmp.exists(), "temporary folder left behind");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn interrupted_audit_leaves_nothing_half_written() {
    let w = Work::new();
    // No report yet: none afterwards.
    let fresh = w.path("fresh");
    let (code, err) = interrupt_while_writing(&w, &fresh, &[], "INT");
    assert_eq!(code, Some(130), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    assert!(!fresh.exists());
    // An existing report replaced with --force, stopped by SIGTERM (a CI job cancelled, a
    // container stopped): still the old one afterwards.
    let old = w.path("old");
    std::fs::create_dir_all(&old).unwrap();
    std::fs::write(old.join("findings.json"), "last month").unwrap();
    let (code, err) = interrupt_while_writing(&w, &old, &["--force"], "TERM");
    assert_eq!(code, Some(130), "{err}");
    assert_eq!(
        std::fs::read_to_string(old.join("findings.json")).unwrap(),
        "last month"
    );
    let leftovers: Vec<String> = std::fs::read_dir(w.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn audit_is_deterministic() {
    let w = Work::new();
    let g = gen(&w, "g", "5");
    let args = [
        "--orders",
        g.join("orders.tsv").to_str().unwrap().to_string().leak(),
        "--reviews",
        g.join("reviews.jsonl").to_str().unwrap().to_string().leak(),
    ];
    let (a, b) = (w.path("a"), w.path("b"));
    audit(&w, &a, &args);
    audit(&w, &b, &args);
    // With SOURCE_DATE_EPOCH set (the audit helper sets it) every file is byte-identical: the
    // contract files, the charts, the snapshot and the page.
    let list = |d: &Path| -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut stack = vec![d.to_path_buf()];
        while let Some(x) = stack.pop() {
            for e in std::fs::read_dir(&x).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    out.push(p.strip_prefix(d).unwrap().to_path_buf());
                }
            }
        }
        out.sort();
        out
    };
    let files = list(&a);
    assert_eq!(files, list(&b));
    for want in [
        "findings.json",
        "scores/reviews.csv",
        "index.html",
        "snapshot/other_reviews.csv.gz",
    ] {
        assert!(files.contains(&PathBuf::from(want)), "{want}");
    }
    assert!(files.iter().filter(|f| f.starts_with("charts")).count() >= 5);
    for f in &files {
        let x = std::fs::read(a.join(f)).unwrap();
        let y = std::fs::read(b.join(f)).unwrap();
        assert!(x == y, "{} differs between two runs", f.display());
    }
}

#[test]
fn audit_reviews_only_and_a_period() {
    let w = Work::new();
    let g = gen(&w, "g", "6");
    let rep = w.path("rep");
    audit(
        &w,
        &rep,
        &[
            "--reviews",
            g.join("reviews.jsonl").to_str().unwrap(),
            "--period",
            "2026-07",
        ],
    );
    let f: Value =
        serde_json::from_str(&std::fs::read_to_string(rep.join("findings.json")).unwrap()).unwrap();
    assert_eq!(f["period"]["from"], "2026-07-01");
    assert_eq!(f["period"]["to"], "2026-07-31");
    assert_eq!(f["data"]["orders_available"], false);
    let not_run: Vec<&str> = f["tests_not_run"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["test"].as_str().unwrap())
        .collect();
    assert!(
        not_run.contains(&"review_rate") && not_run.contains(&"lag_too_fast"),
        "{not_run:?}"
    );
    let (_, rows) = read_csv(&rep.join("scores/reviews.csv"));
    assert!(!rows.is_empty());
    assert!(
        rows.iter().all(|r| r[3].starts_with("2026-07")),
        "only July is scored"
    );
    // Bad period flags are usage errors.
    let bad = w.run(&[
        "audit",
        "-q",
        "--reviews",
        g.join("reviews.jsonl").to_str().unwrap(),
        "--period",
        "July",
        "--out",
        w.path("x").to_str().unwrap(),
    ]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn csv_outputs_neutralise_formulas() {
    let w = Work::new();
    let mut text = String::from("review_id,product_id,reviewer_id,rating,created_at,text\n");
    for i in 0..12 {
        text.push_str(&format!(
            "=HYPERLINK(\"http://x\";\"{i}\"),@P1,+U{i},5,2024-01-{:02},\"=1+1\"\n",
            i + 1
        ));
    }
    let p = w.write("evil.csv", text.as_bytes());
    let rep = w.path("rep");
    audit(&w, &rep, &["--reviews", p.to_str().unwrap()]);
    let raw = std::fs::read_to_string(rep.join("scores/reviews.csv")).unwrap();
    for line in raw.lines().skip(1) {
        assert!(
            line.starts_with("\"'=HYPERLINK") || line.starts_with("'=HYPERLINK"),
            "{line}"
        );
        assert!(line.contains(",'@P1,") && line.contains(",'+U"), "{line}");
    }
}

// ---------------------------------------------------------------- report

#[test]
fn html_report_is_self_contained_and_inert() {
    let w = Work::new();
    let mut text = String::from("review_id,product_id,reviewer_id,rating,created_at,text\n");
    let evil = [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(2)>",
        "<a href=\"javascript:alert(3)\">click</a>",
        "</td></tr></table><h1>broken",
    ];
    for i in 0..60 {
        text.push_str(&format!(
            "r{i},../../etc/passwd,u{i},5,2024-03-{:02}T10:00:00Z,\"{}\"\n",
            i % 28 + 1,
            evil[i % 4].replace('"', "\"\"")
        ));
    }
    // A burst so the product is flagged and gets a section with its reviews' text.
    for i in 0..30 {
        text.push_str(&format!(
            "b{i},../../etc/passwd,burst{i},5,2024-04-02T1{}:00:00Z,\"{}\"\n",
            i % 10,
            evil[i % 4].replace('"', "\"\"")
        ));
    }
    for i in 0..80 {
        text.push_str(&format!(
            "o{i},OTHER,v{i},{},2024-03-{:02}T12:00:00Z,fine\n",
            1 + i % 5,
            i % 28 + 1
        ));
    }
    let p = w.write("evil.csv", text.as_bytes());
    let rep = w.path("rep");
    audit(&w, &rep, &["--reviews", p.to_str().unwrap()]);
    let html = std::fs::read_to_string(rep.join("index.html")).unwrap();
    let lower = html.to_lowercase();
    assert!(!lower.contains("<script"), "no script element");
    assert!(
        lower.contains("&lt;img src=x onerror=alert(2)&gt;"),
        "review text shown, escaped"
    );
    assert!(
        !lower.contains("<img src=x"),
        "no live image from review text"
    );
    assert!(!lower.contains("href=\"javascript"), "no javascript: link");
    assert!(!lower.contains("<h1>broken"), "broken markup stays text");
    assert!(lower.contains("content-security-policy") && lower.contains("default-src 'none'"));
    // Every image is one of our charts: alt text, then the chart file it was drawn into.
    for (i, _) in lower.match_indices("<img") {
        let tag = &lower[i..i + lower[i..].find('>').unwrap()];
        assert!(tag.starts_with("<img alt=\""), "{tag:.80}");
        let file = tag
            .split("title=\"charts/")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert!(
            rep.join("charts").join(file).is_file()
                || std::fs::read_dir(rep.join("charts")).unwrap().any(|e| e
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .to_lowercase()
                    == file),
            "{file}"
        );
    }
    for (i, _) in lower.match_indices(" src=\"") {
        assert!(
            lower[i + 6..].starts_with("data:image/png;base64,"),
            "images are inline"
        );
    }
    assert!(
        !lower.contains("<link") && !lower.contains("@import") && !lower.contains("url("),
        "nothing loads from elsewhere"
    );
    // Chart files exist, are PNGs, and their names are safe.
    let charts: Vec<PathBuf> = std::fs::read_dir(rep.join("charts"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(!charts.is_empty());
    for c in &charts {
        let name = c.file_name().unwrap().to_str().unwrap();
        assert!(name.ends_with(".png"), "{name}");
        assert!(
            name.chars()
                .all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch)),
            "{name}"
        );
        assert!(std::fs::read(c).unwrap().starts_with(b"\x89PNG"));
    }
    // In a real browser: nothing runs, nothing is requested, every chart decodes. A control page
    // that does request, log an error and carry a broken image proves the check can fail.
    let control = w.write(
        "control.html",
        b"<!DOCTYPE html><html><head><title>control</title></head><body>\
<img src=\"http://127.0.0.1:9/x.png\"><img src=\"data:image/png;base64,AAAA\">\
<script>console.error('boom')</script></body></html>",
    );
    let Some(pages) = browser::check(&[&rep.join("index.html"), &control]) else {
        return;
    };
    let (page, ctl) = (&pages[0], &pages[1]);
    assert!(page.errors.is_empty(), "console errors: {:?}", page.errors);
    assert!(page.requests.is_empty(), "requests: {:?}", page.requests);
    assert_eq!(page.images.len(), lower.matches("<img").count());
    assert!(
        page.images
            .iter()
            .all(|&(ok, w, h)| ok && w > 100 && h > 100),
        "{:?}",
        page.images
    );
    assert!(page.title.starts_with("revaudit report"), "{}", page.title);
    assert!(
        ctl.requests
            .iter()
            .any(|u| u.starts_with("http://127.0.0.1:9/")),
        "{ctl:?}"
    );
    assert!(!ctl.errors.is_empty(), "{ctl:?}");
    assert!(ctl.images.iter().any(|&(ok, _, _)| !ok), "{ctl:?}");
}
