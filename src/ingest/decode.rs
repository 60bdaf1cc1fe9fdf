//! Bytes → text: gzip, BOMs, UTF-8 / UTF-16 / Windows-1252 / Shift_JIS, and the files that are not
//! data at all (zip archives, HTML error pages, binary garbage, Parquet).
//!
//! Owns: the decision of what a file's bytes are and the record of that decision (`Encoding`).
//! Must not: know about export formats or columns.

use std::cell::RefCell;
use std::io::{BufRead, Read};
use std::path::Path;
use std::rc::Rc;

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

/// How the text of a file is being decoded; final once the stream has been read to its end (a UTF-8
/// guess falls back to Windows-1252 when the first invalid byte comes before any non-ASCII UTF-8).
#[derive(Debug, Clone, Copy)]
pub struct TextStats {
    /// The encoding.
    pub encoding: Encoding,
    /// Characters that could not be decoded and became U+FFFD.
    pub replaced: usize,
}

/// A file opened for reading.
pub enum Opened {
    /// Text, decoded to UTF-8 as it is read (never held whole in memory).
    Text {
        /// The decoded stream.
        reader: std::io::BufReader<TextReader>,
        /// The input was gzip.
        gzip: bool,
        /// Filled in while reading.
        stats: Rc<RefCell<TextStats>>,
    },
    /// Raw Parquet bytes (a columnar file is read whole).
    Parquet {
        /// The bytes.
        bytes: Vec<u8>,
        /// The input was gzip.
        gzip: bool,
    },
}

/// Capacity of the decoded stream's buffer (`Opened::Text`).
pub const TEXT_BUFFER: usize = 1 << 16;

fn max_input_bytes() -> u64 {
    std::env::var("REVAUDIT_MAX_INPUT_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_MAX_INPUT_BYTES)
}

/// Marker text of the error a stream gives past the input limit.
pub const LIMIT_MARK: &str = "input limit";

/// A reader that fails once more than `left` bytes have come through.
struct Limit<R> {
    inner: R,
    left: u64,
    limit: u64,
}

impl<R: Read> Read for Limit<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n as u64 > self.left {
            return Err(std::io::Error::other(format!(
                "decompresses to more than the {}-byte {LIMIT_MARK} (set REVAUDIT_MAX_INPUT_BYTES to raise it)",
                self.limit
            )));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Open a file for streaming: gzip (detected by content) is decompressed on the fly, the encoding
/// is decided from the first 64 KiB. Errors name the file and say what it is instead of data.
pub fn open_file(path: &Path) -> Result<Opened, IngestError> {
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
            "is {} bytes, more than the {limit}-byte {LIMIT_MARK} (set REVAUDIT_MAX_INPUT_BYTES to raise it)",
            meta.len()
        )));
    }
    let f = std::fs::File::open(path).map_err(|e| file_err(format!("cannot open: {e}")))?;
    let named_gz = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"));
    open_reader(Box::new(f), named_gz, limit).map_err(file_err)
}

/// Open any byte stream (a file, or bytes in memory for tests and fuzzing). `named_gz`: the name
/// promises gzip. The error is a bare message; the caller adds the path.
pub fn open_reader(inner: Box<dyn Read>, named_gz: bool, limit: u64) -> Result<Opened, String> {
    let mut br = std::io::BufReader::with_capacity(1 << 16, inner);
    let magic = br
        .fill_buf()
        .map_err(|e| format!("cannot read: {e}"))?
        .starts_with(&[0x1f, 0x8b]);
    let gzip = magic;
    if named_gz && !magic {
        return Err("is named .gz but is not gzip data".into());
    }
    let raw: Box<dyn Read> = if gzip {
        Box::new(flate2::read::MultiGzDecoder::new(br))
    } else {
        Box::new(br)
    };
    let mut raw = Limit {
        inner: raw,
        left: limit,
        limit,
    };
    let io_msg = |e: std::io::Error| -> String {
        let m = e.to_string();
        if m.contains(LIMIT_MARK) {
            m
        } else if gzip {
            format!("gzip data is corrupt or truncated ({m}); download the report again")
        } else {
            format!("cannot read: {m}")
        }
    };
    // The first 64 KiB decide what this is.
    let mut prefix = Vec::with_capacity(1 << 16);
    (&mut raw)
        .take(1 << 16)
        .read_to_end(&mut prefix)
        .map_err(io_msg)?;
    if prefix.is_empty() || prefix.iter().all(|b| b.is_ascii_whitespace()) && prefix.len() < 1 << 16
    {
        return Err("is empty".into());
    }
    if prefix.starts_with(b"PAR1") {
        let mut bytes = prefix;
        raw.read_to_end(&mut bytes).map_err(io_msg)?;
        return Ok(Opened::Parquet { bytes, gzip });
    }
    if prefix.starts_with(b"PK\x03\x04") || prefix.starts_with(b"PK\x05\x06") {
        return Err("is a zip archive, not a CSV/TSV/JSON file; extract it first".into());
    }
    let decoder =
        |enc: &'static encoding_rs::Encoding| Mode::Decoder(enc.new_decoder_without_bom_handling());
    let (mode, encoding, skip) = if prefix.starts_with(&[0xFF, 0xFE]) {
        (decoder(encoding_rs::UTF_16LE), Encoding::Utf16Le, 2)
    } else if prefix.starts_with(&[0xFE, 0xFF]) {
        (decoder(encoding_rs::UTF_16BE), Encoding::Utf16Be, 2)
    } else if let Some(le) = utf16_without_bom(&prefix) {
        if le {
            (decoder(encoding_rs::UTF_16LE), Encoding::Utf16Le, 0)
        } else {
            (decoder(encoding_rs::UTF_16BE), Encoding::Utf16Be, 0)
        }
    } else {
        let nul = prefix.iter().filter(|&&b| b == 0).count();
        let control = prefix
            .iter()
            .filter(|&&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0c))
            .count();
        if nul > 16 || control * 20 > prefix.len() {
            return Err("looks like binary data, not a text export".into());
        }
        let bom = prefix.starts_with(&[0xEF, 0xBB, 0xBF]);
        let body = if bom { 3 } else { 0 };
        let start = String::from_utf8_lossy(&prefix[body..prefix.len().min(body + 2048)])
            .to_ascii_lowercase();
        let t = start.trim_start();
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
        // Valid UTF-8, or cut in the middle of a character at the 64 KiB boundary.
        let utf8 = match std::str::from_utf8(&prefix[body..]) {
            Ok(_) => true,
            Err(e) => e.error_len().is_none(),
        };
        let utf8_label = if bom {
            Encoding::Utf8Bom
        } else {
            Encoding::Utf8
        };
        if utf8 {
            (Mode::Utf8, utf8_label, body)
        } else if looks_shift_jis(&prefix[body..]) {
            (decoder(encoding_rs::SHIFT_JIS), Encoding::ShiftJis, body)
        } else {
            (
                decoder(encoding_rs::WINDOWS_1252),
                Encoding::Windows1252,
                body,
            )
        }
    };
    let stats = Rc::new(RefCell::new(TextStats {
        encoding,
        replaced: 0,
    }));
    prefix.drain(..skip);
    let reader = TextReader {
        inner: Box::new(raw),
        pending: prefix,
        eof: false,
        out: Vec::new(),
        out_pos: 0,
        mode,
        seen_non_ascii: false,
        stats: Rc::clone(&stats),
    };
    Ok(Opened::Text {
        reader: std::io::BufReader::with_capacity(TEXT_BUFFER, reader),
        gzip,
        stats,
    })
}

/// UTF-16 without BOM: every other byte NUL in an ASCII-heavy start. `Some(true)` = little endian.
fn utf16_without_bom(prefix: &[u8]) -> Option<bool> {
    let head = &prefix[..prefix.len().min(512)];
    if head.len() < 4 {
        return None;
    }
    let even_nul = head.iter().step_by(2).filter(|&&b| b == 0).count();
    let odd_nul = head.iter().skip(1).step_by(2).filter(|&&b| b == 0).count();
    let half = head.len() / 2;
    if odd_nul * 10 >= half * 9 && even_nul == 0 {
        Some(true)
    } else if even_nul * 10 >= half * 9 && odd_nul == 0 {
        Some(false)
    } else {
        None
    }
}

enum Mode {
    Utf8,
    Decoder(encoding_rs::Decoder),
}

/// Decodes a byte stream to UTF-8 chunk by chunk.
pub struct TextReader {
    inner: Box<dyn Read>,
    pending: Vec<u8>,
    eof: bool,
    out: Vec<u8>,
    out_pos: usize,
    mode: Mode,
    seen_non_ascii: bool,
    stats: Rc<RefCell<TextStats>>,
}

const CHUNK: usize = 1 << 16;

impl TextReader {
    /// Decode what is pending into `out`. Returns false at the end of the stream.
    fn refill(&mut self) -> std::io::Result<bool> {
        self.out.clear();
        self.out_pos = 0;
        while self.out.is_empty() {
            if !self.eof && self.pending.len() < CHUNK {
                let start = self.pending.len();
                self.pending.resize(start + CHUNK, 0);
                let n = self.inner.read(&mut self.pending[start..]);
                let n = match n {
                    Ok(n) => n,
                    Err(e) => {
                        self.pending.truncate(start);
                        return Err(e);
                    }
                };
                self.pending.truncate(start + n);
                if n == 0 {
                    self.eof = true;
                }
            }
            if self.pending.is_empty() && self.eof {
                return Ok(false);
            }
            self.decode_pending();
            if self.out.is_empty() && self.eof && self.pending.is_empty() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn decode_pending(&mut self) {
        match &mut self.mode {
            Mode::Utf8 => match std::str::from_utf8(&self.pending) {
                Ok(_) => {
                    if !self.seen_non_ascii {
                        self.seen_non_ascii = !self.pending.is_ascii();
                    }
                    std::mem::swap(&mut self.out, &mut self.pending);
                    self.pending.clear();
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    if !self.seen_non_ascii {
                        self.seen_non_ascii = !self.pending[..valid].is_ascii();
                    }
                    self.out.extend_from_slice(&self.pending[..valid]);
                    match e.error_len() {
                        None if !self.eof => {
                            // An incomplete character at the end: wait for the rest.
                            self.pending.drain(..valid);
                        }
                        None => {
                            self.out.extend_from_slice("\u{FFFD}".as_bytes());
                            self.stats.borrow_mut().replaced += 1;
                            self.pending.clear();
                        }
                        Some(_) if !self.seen_non_ascii => {
                            // Everything so far was ASCII: this is a single-byte code page.
                            self.mode = Mode::Decoder(
                                encoding_rs::WINDOWS_1252.new_decoder_without_bom_handling(),
                            );
                            self.stats.borrow_mut().encoding = Encoding::Windows1252;
                            self.pending.drain(..valid);
                            let mut more = Vec::new();
                            std::mem::swap(&mut more, &mut self.out);
                            self.decode_pending();
                            more.extend_from_slice(&self.out);
                            self.out = more;
                        }
                        Some(bad) => {
                            self.out.extend_from_slice("\u{FFFD}".as_bytes());
                            self.stats.borrow_mut().replaced += 1;
                            self.pending.drain(..valid + bad);
                        }
                    }
                }
            },
            Mode::Decoder(dec) => {
                let cap = dec
                    .max_utf8_buffer_length(self.pending.len())
                    .unwrap_or(self.pending.len() * 3 + 16);
                let mut s = String::with_capacity(cap);
                let (_, read, replaced) = dec.decode_to_string(&self.pending, &mut s, self.eof);
                if replaced {
                    self.stats.borrow_mut().replaced += s.matches('\u{FFFD}').count();
                }
                self.pending.drain(..read);
                self.out.extend_from_slice(s.as_bytes());
            }
        }
    }
}

impl Read for TextReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.out_pos >= self.out.len() && !self.refill()? {
            return Ok(0);
        }
        let n = buf.len().min(self.out.len() - self.out_pos);
        buf[..n].copy_from_slice(&self.out[self.out_pos..self.out_pos + n]);
        self.out_pos += n;
        Ok(n)
    }
}

/// Decode bytes in memory to a string (tests, fuzzing).
pub fn decode_all(raw: &[u8]) -> Result<(String, TextStats), String> {
    match open_reader(
        Box::new(std::io::Cursor::new(raw.to_vec())),
        false,
        u64::MAX,
    )? {
        Opened::Text {
            mut reader, stats, ..
        } => {
            let mut s = String::new();
            reader
                .read_to_string(&mut s)
                .map_err(|e| format!("cannot read: {e}"))?;
            let st = *stats.borrow();
            Ok((s, st))
        }
        Opened::Parquet { .. } => Err("parquet".into()),
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

    fn text(raw: &[u8]) -> (String, Encoding) {
        let (t, st) = decode_all(raw).unwrap();
        (t, st.encoding)
    }

    #[test]
    fn strips_utf8_bom() {
        let (t, e) = text(b"\xEF\xBB\xBFa\tb\n");
        assert_eq!(t, "a\tb\n");
        assert_eq!(e, Encoding::Utf8Bom);
    }

    #[test]
    fn windows_1252_fallback() {
        let (t, e) = text(b"name\nCaf\xE9 cr\xE8me\n");
        assert_eq!(t, "name\nCaf\u{e9} cr\u{e8}me\n");
        assert_eq!(e, Encoding::Windows1252);
    }

    #[test]
    fn windows_1252_found_late_in_a_stream() {
        // 200 KB of ASCII, then one Windows-1252 byte: decided while streaming, nothing lost.
        let mut raw = b"name\n".to_vec();
        for _ in 0..20_000 {
            raw.extend_from_slice(b"plain text\n");
        }
        raw.extend_from_slice(b"Caf\xE9\n");
        let (t, e) = text(&raw);
        assert_eq!(e, Encoding::Windows1252);
        assert!(t.ends_with("Caf\u{e9}\n"));
        // After real UTF-8 text, a stray byte is replaced and counted instead.
        let mut raw = "name\nCafé\n".as_bytes().to_vec();
        for _ in 0..20_000 {
            raw.extend_from_slice(b"plain text\n");
        }
        raw.extend_from_slice(b"bad \xFF byte\n");
        let (t, st) = decode_all(&raw).unwrap();
        assert_eq!(st.encoding, Encoding::Utf8);
        assert_eq!(st.replaced, 1);
        assert!(t.ends_with("bad \u{FFFD} byte\n"));
    }

    #[test]
    fn multibyte_characters_across_chunk_boundaries() {
        let mut s = String::from("name\n");
        while s.len() < 3 * CHUNK {
            s.push_str("Grüße 商品 ");
        }
        let (t, e) = text(s.as_bytes());
        assert_eq!(t, s);
        assert_eq!(e, Encoding::Utf8);
    }

    #[test]
    fn shift_jis_detected() {
        let (bytes, _, _) = encoding_rs::SHIFT_JIS.encode("商品名\tレビュー本文です\n");
        let (t, e) = text(&bytes);
        assert_eq!(e, Encoding::ShiftJis);
        assert!(t.contains("レビュー"));
    }

    #[test]
    fn utf16_with_and_without_bom() {
        let mut le = vec![0xFF, 0xFE];
        for u in "id\tx\n1\t2\n".encode_utf16() {
            le.extend_from_slice(&u.to_le_bytes());
        }
        let (t, e) = text(&le);
        assert_eq!((t.as_str(), e), ("id\tx\n1\t2\n", Encoding::Utf16Le));
        let (t, e) = text(&le[2..]);
        assert_eq!((t.as_str(), e), ("id\tx\n1\t2\n", Encoding::Utf16Le));
    }

    #[test]
    fn gzip_streams_and_truncation_is_an_error() {
        use std::io::Write as _;
        let body: String = (0..50_000).map(|i| format!("{i},x\n")).collect();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(body.as_bytes()).unwrap();
        let gz = gz.finish().unwrap();
        let (t, _) = text(&gz);
        assert_eq!(t, body);
        let cut = &gz[..gz.len() / 2];
        let err = match open_reader(Box::new(std::io::Cursor::new(cut.to_vec())), true, u64::MAX) {
            Ok(Opened::Text { mut reader, .. }) => {
                let mut s = String::new();
                reader.read_to_string(&mut s).unwrap_err().to_string()
            }
            Ok(_) => panic!("parquet"),
            Err(e) => e,
        };
        assert!(!err.is_empty());
        // Past the input limit: a clear error, not a huge allocation.
        let err = match open_reader(Box::new(std::io::Cursor::new(gz)), true, 10_000) {
            Ok(Opened::Text { mut reader, .. }) => {
                let mut s = String::new();
                reader.read_to_string(&mut s).unwrap_err().to_string()
            }
            Ok(_) => panic!("parquet"),
            Err(e) => e,
        };
        assert!(err.contains(LIMIT_MARK), "{err}");
    }

    #[test]
    fn rejects_non_data() {
        let err = |raw: &[u8]| decode_all(raw).unwrap_err();
        assert!(err(b"").contains("empty"));
        assert!(err(b"PK\x03\x04rest").contains("zip"));
        assert!(err(b"<!DOCTYPE html><html>").contains("HTML"));
        let garbage: Vec<u8> = (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect();
        assert!(err(&garbage).contains("binary"));
    }
}
