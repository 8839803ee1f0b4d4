//! PNG: `probe` as a PNG (IHDR size).
//! Never a panic; every probe fits the asset columns. The stable, bounded run of the
//! same parsers is `crates/generation/tests/media_fuzz.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "media_check.rs"]
mod media_check;

fuzz_target!(|data: &[u8]| {
    media_check::sniff_and_probe(data, Some("image/png"));
});
