//! Order-entry frames: client and server decoders; whatever decodes re-encodes to the same bytes.
#![no_main]

#[path = "../../wire/tests/common/mod.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    common::check_client(data);
    common::check_server(data);
});
