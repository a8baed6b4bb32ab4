//! The TCP frame accumulator fed in data-driven chunk sizes agrees with a one-shot split.
#![no_main]

#[path = "../../wire/tests/common/mod.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // The first byte picks the maximum frame length (8..=263), the rest is the stream.
    if let Some((&m, stream)) = data.split_first() {
        common::check_framing(stream, 8 + usize::from(m));
    }
});
