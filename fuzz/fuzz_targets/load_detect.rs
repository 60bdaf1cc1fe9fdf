//! Whole-file loading as `revaudit inspect` does it: gzip, encoding, format detection by header,
//! then whichever parser the detection picks. Any input must give a load or an error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let opts = revaudit::ingest::fuzz_options();
    for want in [None, Some(revaudit::ingest::formats::Kind::Reviews)] {
        let _ = revaudit::ingest::load_bytes("input.csv", data, want, &opts);
    }
});
