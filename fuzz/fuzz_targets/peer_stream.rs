//! Bytes on a replication or witness connection (`tpx node`'s `[replication] listen`, `tpx
//! witness`): split into frames as `TcpTransport` splits them, the first checked as the hello,
//! the rest decoded as replication messages; see `sequencer/tests/checks/peer_stream.rs`.
#![no_main]

#[path = "../../sequencer/tests/checks/peer_stream.rs"]
mod peer_stream;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    peer_stream::check_peer_stream(data);
});
