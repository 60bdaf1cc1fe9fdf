//! Bytes → text: gzip, BOMs, UTF-8 / UTF-16 / Windows-1252 / Shift_JIS decisions while streaming.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((text, _)) = revaudit::ingest::decode::decode_all(data) {
        // Whatever came out is valid UTF-8 by construction; touch it.
        let _ = text.lines().count();
    }
});
