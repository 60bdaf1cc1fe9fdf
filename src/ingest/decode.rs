//! Bytes → text: gzip, BOMs, UTF-8 / UTF-16 / Windows-1252 / Shift_JIS, and the files that are not
//! data at all (zip archives, HTML error pages, binary garbage, Parquet).
//!
//! Owns: the decision of what a file's bytes are and the record of that decision (`Encoding`).
//! Must not: know about export formats or columns.

use std::io::Read;
use std::path::Path;

use serde::Serialize;

use super::IngestError;

/// Largest decompressed input accepted, in bytes. Larger inputs get a clear error rather than an
/// out-of-memory kill; the limit can be raised with `REVAUDIT_MAX_INPUT_BYTES`.
pub const DEFAULT_MAX_INPUT_BYTES: u64 = 8 * 1024 * 1024 * 1024;

/// What the bytes of a file turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Encoding {
    /// Valid UTF-8.
    Utf8,
    /// Valid UTF-8 after stripping a byte-order mark.
    Utf8Bom,
    /// UTF-16 little endian (Excel "Unicode text").
    Utf16Le,
    /// UTF-16 big endian.
    Utf16Be,
    /// Not UTF-8; decoded as Windows-1252.
    Windows1252,
    /// Not UTF-8; clearly Japanese Shift_JIS (CP932).
    ShiftJis,
    /// Apache Parquet (binary columnar; no text decoding).
    Parquet,
}

impl Encoding {
    /// Human-readable name used by `inspect`.
    pub fn label(self) -> &'static str {
        match self {
            Encoding::Utf8 => "utf-8",
            Encoding::Utf8Bom => "utf-8 (BOM stripped)",
            Encoding::Utf16Le => "utf-16le",
            Encoding::Utf16Be => "utf-16be",
            Encoding::Windows1252 => "windows-1252 (not valid utf-8)",
            Encoding::ShiftJis => "shift_jis (not valid utf-8)",
            Encoding::Parquet => "parquet",
        }
    }
}

/// A file read into memory.
#[derive(Debug)]
pub enum Decoded {
    /// Text content (BOM removed) and how it was decoded.
    Text {
        text: String,
        encoding: Encoding,
        gzip: bool,
        replaced_chars: usize,
    },
    /// Raw Parquet bytes.
    Parquet { bytes: Vec<u8>, gzip: bool },
}

fn max_input_bytes() -> u64 {
    std::env::var("REVAUDIT_MAX_INPUT_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_MAX_INPUT_BYTES)
}

/// Read and decode a file. Errors name the file and say what it is instead of data.
pub fn read_file(path: &Path) -> Result<Decoded, IngestError> {
    let file_err = |msg: String| IngestError::File {
        path: path.to_path_buf(),
        msg,
    };
    let meta = std::fs::metadata(path).map_err(|e| file_err(format!("cannot read: {e}")))?;
    if meta.is_dir() {
        return Err(file_err("is a directory, not a file".into()));
    }
    let limit = max_input_bytes();
    if meta.len() > limit {
        return Err(file_err(format!(
            "is {} bytes, more than the {limit}-byte input limit (set REVAUDIT_MAX_INPUT_BYTES to raise it)",
            meta.len()
        )));
    }
    let f = std::fs::File::open(path).map_err(|e| file_err(format!("cannot open: {e}")))?;
    let mut raw = Vec::with_capacity(meta.len() as usize);
    f.take(limit + 1)
        .read_to_end(&mut raw)
        .map_err(|e| file_err(format!("cannot read: {e}")))?;
    let mut gzip = false;
    if raw.starts_with(&[0x1f, 0x8b]) {
        gzip = true;
        let mut out = Vec::new();
        let dec = flate2::read::MultiGzDecoder::new(&raw[..]);
        dec.take(limit + 1).read_to_end(&mut out).map_err(|e| {
            file_err(format!(
                "gzip data is corrupt or truncated ({e}); download the report again"
            ))
        })?;
        if out.len() as u64 > limit {
            return Err(file_err(format!(
                "decompresses to more than the {limit}-byte input limit (set REVAUDIT_MAX_INPUT_BYTES to raise it)"
            )));
        }
        raw = out;
    } else if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"))
    {
        return Err(file_err("is named .gz but is not gzip data".into()));
    }
    decode_bytes(raw, gzip).map_err(file_err)
}

/// Decode bytes already in memory (after gzip). The error is a bare message; the caller adds the path.
pub fn decode_bytes(raw: Vec<u8>, gzip: bool) -> Result<Decoded, String> {
    if raw.is_empty() || raw.iter().all(|b| b.is_ascii_whitespace()) {
        return Err("is empty".into());
    }
    if raw.starts_with(b"PAR1") {
        return Ok(Decoded::Parquet { bytes: raw, gzip });
    }
    if raw.starts_with(b"PK\x03\x04") || raw.starts_with(b"PK\x05\x06") {
        return Err("is a zip archive, not a CSV/TSV/JSON file; extract it first".into());
    }
    if raw.starts_with(&[0xFF, 0xFE]) {
        return Ok(utf16(&raw[2..], true, gzip));
    }
    if raw.starts_with(&[0xFE, 0xFF]) {
        return Ok(utf16(&raw[2..], false, gzip));
    }
    // UTF-16 without BOM: every other byte NUL in an ASCII-heavy header.
    let head = &raw[..raw.len().min(512)];
    if head.len() >= 4 {
        let even_nul = head.iter().step_by(2).filter(|&&b| b == 0).count();
        let odd_nul = head.iter().skip(1).step_by(2).filter(|&&b| b == 0).count();
        let half = head.len() / 2;
        if odd_nul * 10 >= half * 9 && even_nul == 0 {
            return Ok(utf16(&raw, true, gzip));
        }
        if even_nul * 10 >= half * 9 && odd_nul == 0 {
            return Ok(utf16(&raw, false, gzip));
        }
    }
    let sample = &raw[..raw.len().min(64 * 1024)];
    let nul = sample.iter().filter(|&&b| b == 0).count();
    let control = sample
        .iter()
        .filter(|&&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0c))
        .count();
    if nul > 16 || control * 20 > sample.len() {
        return Err("looks like binary data, not a text export".into());
    }
    let (bom, body) = if raw.starts_with(&[0xEF, 0xBB, 0xBF]) {
        (true, 3)
    } else {
        (false, 0)
    };
    let text_start =
        String::from_utf8_lossy(&raw[body..raw.len().min(body + 2048)]).to_ascii_lowercase();
    let t = text_start.trim_start();
    if t.starts_with("<!doctype html")
        || t.starts_with("<html")
        || t.starts_with("<?xml")
        || t.starts_with("<head")
    {
        return Err(
            "is an HTML/XML page (probably a login or error page saved instead of the report), not an export"
                .into(),
        );
    }
    let mut raw = raw;
    if body > 0 {
        raw.drain(..body);
    }
    match String::from_utf8(raw) {
        Ok(text) => Ok(Decoded::Text {
            text,
            encoding: if bom {
                Encoding::Utf8Bom
            } else {
                Encoding::Utf8
            },
            gzip,
            replaced_chars: 0,
        }),
        Err(e) => {
            let raw = e.into_bytes();
            if looks_shift_jis(&raw) {
                let (cow, _, _) = encoding_rs::SHIFT_JIS.decode(&raw);
                return Ok(Decoded::Text {
                    text: cow.into_owned(),
                    encoding: Encoding::ShiftJis,
                    gzip,
                    replaced_chars: 0,
                });
            }
            let (cow, _, _) = encoding_rs::WINDOWS_1252.decode(&raw);
            Ok(Decoded::Text {
                text: cow.into_owned(),
                encoding: Encoding::Windows1252,
                gzip,
                replaced_chars: 0,
            })
        }
    }
}

fn utf16(body: &[u8], le: bool, gzip: bool) -> Decoded {
    let enc = if le {
        encoding_rs::UTF_16LE
    } else {
        encoding_rs::UTF_16BE
    };
    let (cow, _) = enc.decode_without_bom_handling(body);
    let replaced = cow.chars().filter(|&c| c == '\u{FFFD}').count();
    let text = cow
        .strip_prefix('\u{FEFF}')
        .map(str::to_owned)
        .unwrap_or_else(|| cow.into_owned());
    Decoded::Text {
        text,
        encoding: if le {
            Encoding::Utf16Le
        } else {
            Encoding::Utf16Be
        },
        gzip,
        replaced_chars: replaced,
    }
}

/// Shift_JIS "clearly": decodes without errors and most non-ASCII characters are Japanese script.
fn looks_shift_jis(raw: &[u8]) -> bool {
    let (cow, _, had_errors) = encoding_rs::SHIFT_JIS.decode(raw);
    if had_errors {
        return false;
    }
    let mut jp = 0usize;
    let mut other = 0usize;
    for c in cow.chars().filter(|c| !c.is_ascii()) {
        let u = c as u32;
        let japanese = (0x3040..=0x30FF).contains(&u) // hiragana, katakana
            || (0x4E00..=0x9FFF).contains(&u) // CJK ideographs
            || (0xFF00..=0xFFEF).contains(&u) // full/half-width forms
            || (0x3000..=0x303F).contains(&u); // CJK punctuation
        if japanese {
            jp += 1;
        } else {
            other += 1;
        }
    }
    jp >= 4 && other * 10 <= jp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(d: Decoded) -> (String, Encoding) {
        match d {
            Decoded::Text { text, encoding, .. } => (text, encoding),
            Decoded::Parquet { .. } => panic!("parquet"),
        }
    }

    #[test]
    fn strips_utf8_bom() {
        let (t, e) = text(decode_bytes(b"\xEF\xBB\xBFa\tb\n".to_vec(), false).unwrap());
        assert_eq!(t, "a\tb\n");
        assert_eq!(e, Encoding::Utf8Bom);
    }

    #[test]
    fn windows_1252_fallback() {
        let (t, e) = text(decode_bytes(b"name\nCaf\xE9 cr\xE8me\n".to_vec(), false).unwrap());
        assert_eq!(t, "name\nCaf\u{e9} cr\u{e8}me\n");
        assert_eq!(e, Encoding::Windows1252);
    }

    #[test]
    fn shift_jis_detected() {
        let (bytes, _, _) = encoding_rs::SHIFT_JIS.encode("商品名\tレビュー本文です\n");
        let (t, e) = text(decode_bytes(bytes.into_owned(), false).unwrap());
        assert_eq!(e, Encoding::ShiftJis);
        assert!(t.contains("レビュー"));
    }

    #[test]
    fn utf16_with_and_without_bom() {
        let mut le = vec![0xFF, 0xFE];
        for u in "id\tx\n1\t2\n".encode_utf16() {
            le.extend_from_slice(&u.to_le_bytes());
        }
        let (t, e) = text(decode_bytes(le.clone(), false).unwrap());
        assert_eq!((t.as_str(), e), ("id\tx\n1\t2\n", Encoding::Utf16Le));
        let (t, e) = text(decode_bytes(le[2..].to_vec(), false).unwrap());
        assert_eq!((t.as_str(), e), ("id\tx\n1\t2\n", Encoding::Utf16Le));
    }

    #[test]
    fn rejects_non_data() {
        assert!(decode_bytes(Vec::new(), false)
            .unwrap_err()
            .contains("empty"));
        assert!(decode_bytes(b"PK\x03\x04rest".to_vec(), false)
            .unwrap_err()
            .contains("zip"));
        assert!(decode_bytes(b"<!DOCTYPE html><html>".to_vec(), false)
            .unwrap_err()
            .contains("HTML"));
        let garbage: Vec<u8> = (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect();
        assert!(decode_bytes(garbage, false).unwrap_err().contains("binary"));
    }
}
