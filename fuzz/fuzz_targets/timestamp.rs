//! Every timestamp shape: any string, each epoch unit, any local offset.
#![no_main]
use libfuzzer_sys::fuzz_target;
use revaudit::ingest::timestamp::{parse_timestamp, parse_with_format, EpochUnit};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let now = 1_800_000_000;
    for unit in [EpochUnit::Auto, EpochUnit::Seconds, EpochUnit::Millis] {
        for off in [0, -5 * 3600, 9 * 3600 + 1800] {
            let _ = parse_timestamp(s, unit, off, now);
        }
    }
    if let Some((fmt, value)) = s.split_once('\u{1f}') {
        let _ = parse_with_format(value, fmt, 0, now);
    }
});
