//! Arbitrary bytes on a replication or witness connection (bounded; the `peer_stream` fuzz
//! target runs the same check unbounded): see `checks/peer_stream.rs`.

#[path = "checks/peer_stream.rs"]
mod peer_stream;

use proptest::prelude::*;
use tpx_sequencer::proto::Msg;

/// A frame as the transport sends one.
fn frame(body: &[u8]) -> Vec<u8> {
    let mut f = (body.len() as u32).to_le_bytes().to_vec();
    f.extend_from_slice(body);
    f
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn arbitrary_bytes_never_panic_the_reader(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        peer_stream::check_peer_stream(&data);
    }

    /// Past a valid hello, arbitrary frames (mostly well-formed lengths) reach the decoder.
    #[test]
    fn arbitrary_messages_after_a_valid_hello(
        bodies in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..80), 0..8),
        kinds in proptest::collection::vec(1u8..16, 8),
    ) {
        let mut hello = vec![0u8; 64];
        hello[0..4].copy_from_slice(&0x4858_5054u32.to_le_bytes());
        hello[4..8].copy_from_slice(&1u32.to_le_bytes());
        hello[8..12].copy_from_slice(&2u32.to_le_bytes());
        hello[16..24].copy_from_slice(&7u64.to_le_bytes());
        let mut data = vec![0u8]; // no secret, digest 0
        data.extend(frame(&hello));
        for (b, k) in bodies.iter().zip(&kinds) {
            let mut b = b.clone();
            if let Some(first) = b.first_mut() {
                *first = *k;
            }
            data.extend(frame(&b));
        }
        peer_stream::check_peer_stream(&data);
    }
}

/// The check itself can fail: a message the decoder reads differently after re-encoding would
/// be caught (here: a `Heartbeat` decodes, and re-encodes to a decodable frame).
#[test]
fn a_well_formed_heartbeat_decodes_and_round_trips() {
    let mut out = Vec::new();
    let m = Msg::Heartbeat {
        term: 3,
        last_seq: 10,
        commit_seq: 9,
    };
    m.encode(&mut out);
    assert_eq!(Msg::decode(&out), Some(m));
}
