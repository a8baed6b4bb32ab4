//! Input-log records: a segment of records (and a bare input body); whatever decodes
//! re-encodes to the same bytes, errors are either truncated or corrupt.
#![no_main]

#[path = "../../wire/tests/common/mod.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    common::check_record(data);
    common::check_input(data);
});
