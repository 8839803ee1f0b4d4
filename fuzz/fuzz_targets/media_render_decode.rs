//! The local renderer's decoder of input images (PNG, GIF): never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = generation::render::decode_frames(data);
});
