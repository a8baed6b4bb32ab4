//! Market-data packets, single messages and retransmission datagrams.
#![no_main]

#[path = "../../wire/tests/common/mod.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    common::check_packet(data);
    common::check_md_message(data);
    common::check_retransmit(data);
});
