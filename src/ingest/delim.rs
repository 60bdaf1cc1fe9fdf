//! Delimited text (CSV, TSV) split into rows of fields, with the `csv` crate's reading rules as
//! revaudit configures them (delimiter, `"` quoting on or off, doubled quotes inside quoted fields,
//! `\r`, `\n` and `\r\n` each ending a record, blank lines skipped, rows of any length) — and the
//! line a row starts on.
//!
//! Exports are gigabytes of short lines, most without a quote: such a line is split where it lies
//! in the buffer (a vectorised search for its end, then one pass of eight bytes at a time for
//! delimiters, quotes and `\r`), no copy. Lines with quotes or a lone `\r` are copied field by
//! field (whole runs up to the next quote, delimiter or line end).

use std::io::Read;

/// First size of the input buffer; it grows for a row longer than that.
const BUFFER: usize = 1 << 20;

/// A delimited stream read row by row.
pub struct Rows<R> {
    rd: R,
    buf: Vec<u8>,
    /// Start of the unread bytes in `buf`.
    pos: usize,
    /// End of the bytes read into `buf`.
    len: usize,
    eof: bool,
    delim: u8,
    quoting: bool,
    /// 1-based line of the byte at `pos`.
    line: u64,
    /// Field bounds of the current row, in `buf` (plain rows) or `scratch` (the others).
    bounds: Vec<(usize, usize)>,
    /// Unquoted field contents of a row that needed the byte-by-byte rules.
    scratch: Vec<u8>,
}

/// One row: its fields and the line it starts on.
pub struct Row<'a> {
    data: &'a str,
    bounds: &'a [(usize, usize)],
    /// 1-based line of the row's first byte.
    pub line: u64,
}

impl<'a> Row<'a> {
    /// Number of fields.
    pub fn len(&self) -> usize {
        self.bounds.len()
    }

    /// No fields (a row always has at least one, maybe empty).
    pub fn is_empty(&self) -> bool {
        self.bounds.is_empty()
    }

    /// Field `i`.
    pub fn get(&self, i: usize) -> Option<&'a str> {
        let &(s, e) = self.bounds.get(i)?;
        self.data.get(s..e)
    }

    /// The fields in order.
    pub fn iter(&self) -> impl Iterator<Item = &'a str> + '_ {
        (0..self.len()).filter_map(|i| self.get(i))
    }

    /// Whether some field contains a NUL byte.
    pub fn has_nul(&self) -> bool {
        let (Some(first), Some(last)) = (self.bounds.first(), self.bounds.last()) else {
            return false;
        };
        memchr::memchr(0, &self.data.as_bytes()[first.0..last.1]).is_some()
    }

    /// Bytes of all fields together (no delimiters, quotes unescaped).
    pub fn field_bytes(&self) -> usize {
        self.bounds.iter().map(|(s, e)| e - s).sum()
    }
}

/// Bytes of `w` equal to `b`: their high bits set, exactly (no carry between bytes).
fn bytes_equal(w: u64, b: u8) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let x = w ^ (0x0101_0101_0101_0101 * b as u64);
    !(((x & LOW7) + LOW7) | x) & !LOW7
}

/// Split a line (without its `\n`) at every `delim` into `bounds`, in one pass of eight bytes at a
/// time, when it is plain: no quote (with `quoting`) and no `\r` but a last one. Returns the
/// length without that `\r`; `None` (bounds unspecified) when the line is not plain.
fn split_plain(
    bounds: &mut Vec<(usize, usize)>,
    line: &[u8],
    delim: u8,
    quoting: bool,
) -> Option<usize> {
    let cut = match line.last() {
        Some(b'\r') => line.len() - 1,
        _ => line.len(),
    };
    let text = &line[..cut];
    bounds.clear();
    let mut start = 0;
    let words = text.chunks_exact(8);
    let tail = words.remainder();
    for (n, word) in words.enumerate() {
        let w = u64::from_le_bytes(word.try_into().unwrap_or_default());
        let mut special = bytes_equal(w, b'\r');
        if quoting {
            special |= bytes_equal(w, b'"');
        }
        if special != 0 {
            return None;
        }
        let mut hits = bytes_equal(w, delim);
        while hits != 0 {
            let k = n * 8 + (hits.trailing_zeros() / 8) as usize;
            bounds.push((start, k));
            start = k + 1;
            hits &= hits - 1;
        }
    }
    for (i, &b) in tail.iter().enumerate() {
        let k = cut - tail.len() + i;
        if b == b'\r' || (quoting && b == b'"') {
            return None;
        }
        if b == delim {
            bounds.push((start, k));
            start = k + 1;
        }
    }
    bounds.push((start, cut));
    Some(cut)
}

impl<R: Read> Rows<R> {
    /// Rows of `rd`, fields split at `delim`; `quoting`: `"` starts a quoted field.
    pub fn new(rd: R, delim: u8, quoting: bool) -> Self {
        Rows {
            rd,
            buf: vec![0; BUFFER],
            pos: 0,
            len: 0,
            eof: false,
            delim,
            quoting,
            line: 1,
            bounds: Vec::new(),
            scratch: Vec::new(),
        }
    }

    /// Move the unread bytes to the front (growing the buffer when they fill it) and read more.
    /// False at the end of the stream.
    fn refill(&mut self) -> std::io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.len, 0);
            self.len -= self.pos;
            self.pos = 0;
        }
        if self.len == self.buf.len() {
            self.buf.resize(self.buf.len() * 2, 0);
        }
        loop {
            match self.rd.read(&mut self.buf[self.len..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.len += n;
                    return Ok(true);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// The next row; `None` at the end.
    pub fn next_row(&mut self) -> std::io::Result<Option<Row<'_>>> {
        // Blank lines (and the `\n` of a `\r\n` ending the previous row) are skipped.
        loop {
            if self.pos == self.len && !self.refill()? {
                return Ok(None);
            }
            match self.buf[self.pos] {
                b'\n' => self.line += 1,
                b'\r' => {}
                _ => break,
            }
            self.pos += 1;
        }
        let line = self.line;
        // The whole line in the buffer.
        let mut scanned = 0;
        let end = loop {
            if let Some(k) = memchr::memchr(b'\n', &self.buf[self.pos + scanned..self.len]) {
                break self.pos + scanned + k;
            }
            scanned = self.len - self.pos;
            if !self.refill()? {
                break self.len;
            }
        };
        let plain = split_plain(
            &mut self.bounds,
            &self.buf[self.pos..end],
            self.delim,
            self.quoting,
        );
        let Some(cut) = plain else {
            return self.slow_row(line);
        };
        let start = self.pos;
        if end < self.len {
            self.pos = end + 1;
            self.line += 1;
        } else {
            self.pos = end;
        }
        let text = &self.buf[start..start + cut];
        // The stream is UTF-8 (`decode::TextReader` makes it so), checked once per line; the
        // delimiters are ASCII, so every field of a valid line is valid.
        let data = match simdutf8::basic::from_utf8(text) {
            Ok(data) => data,
            Err(_) => {
                self.scratch.clear();
                self.scratch
                    .extend_from_slice(String::from_utf8_lossy(text).as_bytes());
                let data = std::str::from_utf8(&self.scratch).unwrap_or_default();
                split_plain(&mut self.bounds, data.as_bytes(), self.delim, false);
                data
            }
        };
        Ok(Some(Row {
            data,
            bounds: &self.bounds,
            line,
        }))
    }

    /// The byte at `pos`, reading more when needed; `None` at the end of the stream.
    fn peek(&mut self) -> std::io::Result<Option<u8>> {
        if self.pos == self.len && !self.refill()? {
            return Ok(None);
        }
        Ok(Some(self.buf[self.pos]))
    }

    /// A row with quotes or a lone `\r` (it may span lines), field by field: a quoted field's runs
    /// up to the next quote and an unquoted field's bytes up to the next delimiter or line end are
    /// copied whole.
    fn slow_row(&mut self, line: u64) -> std::io::Result<Option<Row<'_>>> {
        self.bounds.clear();
        self.scratch.clear();
        'fields: loop {
            let field = self.scratch.len();
            if self.quoting && self.peek()? == Some(b'"') {
                self.pos += 1;
                loop {
                    // Inside quotes: everything up to the next quote is the field's, line ends
                    // included.
                    let rest = &self.buf[self.pos..self.len];
                    let run = memchr::memchr(b'"', rest).unwrap_or(rest.len());
                    self.scratch.extend_from_slice(&rest[..run]);
                    self.line += memchr::memchr_iter(b'\n', &rest[..run]).count() as u64;
                    self.pos += run;
                    if self.pos == self.len {
                        if self.refill()? {
                            continue;
                        }
                        // Unterminated quote: the field ends with the stream.
                        self.bounds.push((field, self.scratch.len()));
                        break 'fields;
                    }
                    self.pos += 1; // the quote
                    match self.peek()? {
                        Some(b'"') => {
                            // A doubled quote is a quote.
                            self.scratch.push(b'"');
                            self.pos += 1;
                        }
                        _ => break,
                    }
                }
            }
            // Unquoted (or after the closing quote, where a quote is a plain character): up to
            // the next delimiter or line end.
            loop {
                let rest = &self.buf[self.pos..self.len];
                match memchr::memchr3(self.delim, b'\r', b'\n', rest) {
                    Some(k) => {
                        self.scratch.extend_from_slice(&rest[..k]);
                        let hit = rest[k];
                        self.pos += k;
                        self.bounds.push((field, self.scratch.len()));
                        if hit == self.delim {
                            self.pos += 1;
                            continue 'fields;
                        }
                        // The line end is left for the blank-line skip of the next row.
                        break 'fields;
                    }
                    None => {
                        self.scratch.extend_from_slice(rest);
                        self.pos = self.len;
                        if !self.refill()? {
                            self.bounds.push((field, self.scratch.len()));
                            break 'fields;
                        }
                    }
                }
            }
        }
        if std::str::from_utf8(&self.scratch).is_err() {
            // Not from a `TextReader`: each field made valid on its own (U+FFFD).
            let mut valid = Vec::with_capacity(self.scratch.len());
            for b in self.bounds.iter_mut() {
                let start = valid.len();
                valid
                    .extend_from_slice(String::from_utf8_lossy(&self.scratch[b.0..b.1]).as_bytes());
                *b = (start, valid.len());
            }
            self.scratch = valid;
        }
        Ok(Some(Row {
            data: std::str::from_utf8(&self.scratch).unwrap_or_default(),
            bounds: &self.bounds,
            line,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(input: &[u8], delim: u8, quoting: bool) -> Vec<(u64, Vec<String>)> {
        // A one-byte reader: every row crosses refills.
        struct Slow<'a>(&'a [u8]);
        impl Read for Slow<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = buf.len().min(self.0.len()).min(1);
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut fast = Rows::new(input, delim, quoting);
        let mut slow = Rows::new(Slow(input), delim, quoting);
        slow.buf = vec![0; 1];
        let mut out = Vec::new();
        while let Some(r) = fast.next_row().unwrap() {
            out.push((r.line, r.iter().map(str::to_string).collect::<Vec<_>>()));
        }
        let mut again = Vec::new();
        while let Some(r) = slow.next_row().unwrap() {
            again.push((r.line, r.iter().map(str::to_string).collect::<Vec<_>>()));
        }
        assert_eq!(out, again, "a one-byte buffer reads the same rows");
        out
    }

    fn by_csv(input: &[u8], delim: u8, quoting: bool) -> Vec<Vec<String>> {
        let mut rdr = csv::ReaderBuilder::new()
            .delimiter(delim)
            .has_headers(false)
            .flexible(true)
            .quoting(quoting)
            .from_reader(input);
        rdr.byte_records()
            .map(|r| {
                r.unwrap()
                    .iter()
                    .map(|f| String::from_utf8_lossy(f).into_owned())
                    .collect()
            })
            .collect()
    }

    #[test]
    fn rows_lines_and_quotes() {
        let got = rows(
            b"h1,h2\r\na,\"b,\"\"c\"\"\nd\"\r\n\n  \ne,f\rg\"x\"y,\"z\"w\n\"open",
            b',',
            true,
        );
        let want: Vec<(u64, Vec<String>)> = vec![
            (1, vec!["h1".into(), "h2".into()]),
            (2, vec!["a".into(), "b,\"c\"\nd".into()]),
            (5, vec!["  ".into()]),
            (6, vec!["e".into(), "f".into()]),
            (6, vec!["g\"x\"y".into(), "zw".into()]),
            (7, vec!["open".into()]),
        ];
        assert_eq!(got, want);
        // Tabs without quoting: quotes are plain characters.
        let got = rows(b"a\t\"b\tc\"\n\t\n", b'\t', false);
        assert_eq!(
            got,
            vec![
                (1, vec!["a".into(), "\"b".into(), "c\"".into()]),
                (2, vec![String::new(), String::new()]),
            ]
        );
    }

    proptest::proptest! {
        /// The fields are the `csv` crate's, whatever the bytes (the line numbers are checked
        /// above: `csv` gives a row after blank lines or a `\r\n` the line before it).
        #[test]
        fn fields_match_the_csv_crate(
            input in proptest::collection::vec(
                proptest::sample::select(vec![b'a', b'b', b',', b'\t', b'"', b'\n', b'\r', b' ']),
                0..60,
            ),
            tab in proptest::bool::ANY,
            quoting in proptest::bool::ANY,
        ) {
            let delim = if tab { b'\t' } else { b',' };
            let got: Vec<Vec<String>> =
                rows(&input, delim, quoting).into_iter().map(|r| r.1).collect();
            proptest::prop_assert_eq!(got, by_csv(&input, delim, quoting));
        }
    }
}
