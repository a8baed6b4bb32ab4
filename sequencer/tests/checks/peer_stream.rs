//! Bytes as a replication or witness connection's stream, read as `TcpTransport` reads one:
//! frames split as it splits them (`split_frame`: a first frame longer than a hello refused
//! at its length, later ones up to `MAX_FRAME`), the first checked as the hello
//! (`check_hello`), the rest decoded as messages (`Msg::decode`). Nothing panics; a refused
//! hello ends the stream, as it drops the connection; a message that decodes re-encodes to
//! bytes that decode to the same message; a `Hello`'s terms are whole `(term, first seq)`
//! pairs. Shared by the `peer_stream` fuzz target (`fuzz/fuzz_targets/peer_stream.rs`, by
//! path) and the bounded proptest in `tests/peer_bytes.rs`.

use tpx_sequencer::proto::{term_pairs, Msg};
use tpx_sequencer::transport::{check_hello, split_frame, Handshake, HELLO_BYTES, MAX_FRAME};

/// The handshake the stream is checked against: the first byte of `data` picks whether the
/// hello must carry a secret (odd) or none (even, all zeros), so both paths are reachable.
pub fn check_peer_stream(data: &[u8]) {
    let Some((&pick, mut rest)) = data.split_first() else {
        return;
    };
    let h = Handshake {
        cluster_id: 7,
        secret: if pick & 1 == 1 { [0x42; 32] } else { [0; 32] },
        config_digest: u64::from(pick >> 1),
        who: "peer_stream",
    };
    let mut verified = false;
    let mut out = Vec::new();
    loop {
        let max = if verified { MAX_FRAME } else { HELLO_BYTES };
        let (frame, used) = match split_frame(rest, max) {
            Ok(Some(f)) => f,
            Ok(None) => return,
            Err(e) => {
                assert!(e.len > e.max, "{e:?}");
                return;
            }
        };
        assert!(used == frame.len() + 4 && frame.len() <= max);
        rest = &rest[used..];
        if !verified {
            match check_hello(frame, &h) {
                Ok(_) => verified = true,
                Err(_) => return,
            }
            continue;
        }
        let Some(m) = Msg::decode(frame) else {
            continue;
        };
        m.encode(&mut out);
        assert_eq!(Msg::decode(&out), Some(m), "re-encoded {m:?}");
        if let Msg::Hello { terms, .. } = m {
            assert_eq!(term_pairs(terms).count() * 16, terms.len());
        }
    }
}
