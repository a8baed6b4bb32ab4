//! Bounded arbitrary-bytes tests: random bytes and mutated valid messages, records, packets and
//! streams into every decoder. Nothing may panic, and anything that decodes must re-encode to
//! the same bytes (the checks are in `common`, shared with the fuzz targets).

mod common;

use common::{check_all, check_framing, check_packet, check_record, fixed_layouts, make_valid};
use proptest::prelude::*;
use tpx_wire::log_record::{encode_record, Input, LogRecord, RecordMeta};
use tpx_wire::mold::encode_packet;
use tpx_wire::MdMessage;

#[derive(Clone, Debug)]
enum Mutation {
    Set(usize, u8),
    Xor(usize, u8),
    Truncate(usize),
    Append(Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, v)| Mutation::Set(i, v)),
        (any::<usize>(), 1u8..).prop_map(|(i, v)| Mutation::Xor(i, v)),
        any::<usize>().prop_map(Mutation::Truncate),
        proptest::collection::vec(any::<u8>(), 1..16).prop_map(Mutation::Append),
    ]
}

fn apply(bytes: &mut Vec<u8>, muts: &[Mutation]) {
    for m in muts {
        let n = bytes.len().max(1);
        match m {
            Mutation::Set(i, v) => {
                if let Some(b) = bytes.get_mut(i % n) {
                    *b = *v;
                }
            }
            Mutation::Xor(i, v) => {
                if let Some(b) = bytes.get_mut(i % n) {
                    *b ^= *v;
                }
            }
            Mutation::Truncate(i) => bytes.truncate(i % n),
            Mutation::Append(v) => bytes.extend_from_slice(v),
        }
    }
}

/// Recomputes a record's CRC so that mutations behind it reach the body decoder.
fn fix_crc(rec: &mut [u8]) {
    if rec.len() >= 12 {
        let len = usize::from(u16::from_le_bytes([rec[0], rec[1]]))
            .min(rec.len())
            .max(12);
        let crc = crc32c::crc32c_append(crc32c::crc32c(&rec[..8]), &rec[12..len]);
        rec[8..12].copy_from_slice(&crc.to_le_bytes());
    }
}

fn valid_record(idx: usize, entropy: &[u8], seq: u64) -> Vec<u8> {
    let inputs: Vec<_> = fixed_layouts()
        .into_iter()
        .filter(|l| matches!(l.template_id, 16..=19 | 26 | 80..=88 | 90))
        .collect();
    let input = Input::decode(&make_valid(inputs[idx % inputs.len()], entropy)).unwrap();
    let rec = LogRecord {
        meta: RecordMeta {
            seq: seq.max(1),
            term: 1,
            timestamp_ns: 5,
            origin: 2,
            account: 3,
            session: 0,
        },
        input,
    };
    let mut buf = vec![0u8; 256];
    let n = encode_record(&rec, &mut buf).unwrap();
    buf.truncate(n);
    buf
}

fn valid_packet(picks: &[(usize, Vec<u8>)]) -> Vec<u8> {
    let md: Vec<_> = fixed_layouts()
        .into_iter()
        .filter(|l| matches!(l.template_id, 100..=111))
        .collect();
    let msgs: Vec<MdMessage> = picks
        .iter()
        .map(|(i, e)| MdMessage::decode(&make_valid(md[i % md.len()], e)).unwrap())
        .collect();
    let mut buf = vec![0u8; 8192];
    let n = encode_packet(7, 100, &msgs, &mut buf).unwrap();
    buf.truncate(n);
    buf
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3_000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        check_all(&bytes);
    }

    /// Random bytes behind a plausible header, so they get past the first checks.
    #[test]
    fn random_bytes_behind_valid_headers(idx in 0usize..64, body in proptest::collection::vec(any::<u8>(), 0..200)) {
        let layouts = fixed_layouts();
        let l = layouts[idx % layouts.len()];
        let mut bytes = make_valid(l, &[0]);
        bytes.truncate(8);
        bytes.extend_from_slice(&body);
        bytes.resize(l.size, 0);
        check_all(&bytes);
    }

    #[test]
    fn mutated_messages(idx in 0usize..64, entropy in proptest::collection::vec(any::<u8>(), 1..64),
                        muts in proptest::collection::vec(mutation(), 1..4)) {
        let layouts = fixed_layouts();
        let mut bytes = make_valid(layouts[idx % layouts.len()], &entropy);
        check_all(&bytes);
        apply(&mut bytes, &muts);
        check_all(&bytes);
    }

    #[test]
    fn mutated_records(idx in 0usize..16, entropy in proptest::collection::vec(any::<u8>(), 1..64),
                       muts in proptest::collection::vec(mutation(), 1..4), fix in any::<bool>(), seq: u64) {
        let good = valid_record(idx, &entropy, seq);
        prop_assert_eq!(check_record(&good), 1);
        let mut bytes = good.clone();
        apply(&mut bytes, &muts);
        if fix {
            fix_crc(&mut bytes);
        }
        check_all(&bytes);
        // Two good records then the mutated one: the first two always decode.
        let mut log = good.clone();
        log.extend_from_slice(&good);
        log.extend_from_slice(&bytes);
        prop_assert!(check_record(&log) >= 2);
    }

    #[test]
    fn mutated_packets(picks in proptest::collection::vec((0usize..64, proptest::collection::vec(any::<u8>(), 1..32)), 0..8),
                       muts in proptest::collection::vec(mutation(), 1..4)) {
        let mut bytes = valid_packet(&picks);
        prop_assert!(check_packet(&bytes));
        apply(&mut bytes, &muts);
        check_all(&bytes);
    }

    /// A stream of valid frames with damage somewhere, fed in odd-sized chunks.
    #[test]
    fn mutated_streams(frames in proptest::collection::vec((0usize..64, proptest::collection::vec(any::<u8>(), 1..32)), 0..12),
                       muts in proptest::collection::vec(mutation(), 0..3), max in 8usize..300) {
        let layouts = fixed_layouts();
        let mut stream = Vec::new();
        for (i, e) in &frames {
            stream.extend_from_slice(&make_valid(layouts[i % layouts.len()], e));
        }
        apply(&mut stream, &muts);
        check_framing(&stream, max);
    }
}
