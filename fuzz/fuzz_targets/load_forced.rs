//! Each parser on its own: the first byte picks a format (forced, as with --orders-format /
//! --reviews-format), the rest is the file.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let names = revaudit::ingest::formats::format_names();
    let name = names[pick as usize % names.len()];
    let Some(spec) = revaudit::ingest::formats::by_name(name) else {
        return;
    };
    let mut opts = revaudit::ingest::fuzz_options();
    match spec.kind {
        revaudit::ingest::formats::Kind::Orders => opts.orders_format = Some(name.to_string()),
        revaudit::ingest::formats::Kind::Reviews => opts.reviews_format = Some(name.to_string()),
    }
    let _ = revaudit::ingest::load_bytes("input.txt", body, Some(spec.kind), &opts);
});
