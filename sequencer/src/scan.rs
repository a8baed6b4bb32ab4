//! The fast path over log bytes: frame checks (length, header, reserved, CRC32C) without
//! decoding the body, a run of frame-checked records with the seq/term rules, and the body
//! decode of a record already checked.
//!
//! Written by hand because it runs once per record at every start (recovery scan) and every
//! replay: one bounds check per record (the header is read as a fixed `[u8; 48]`), the CRC
//! with the hardware instruction (the `crc32c` crate, SSE4.2 / ARMv8 CRC), no allocation, and
//! the precise error (`decode_record`'s) computed only on the slow path, for the record that
//! failed. It must agree with `tpx_wire::log_record::decode_record` on which records are
//! valid frames (tested below, byte flips and cuts included).

use tpx_wire::header::{schema, template, SCHEMA_VERSION};
use tpx_wire::log_record::{
    decode_record, Input, LogRecord, RecordMeta, MAX_RECORD_LEN, RECORD_HEADER_LEN,
};
use tpx_wire::HEADER_LEN;

// Offsets in the record header (see `tpx_wire::log_record::RECORD_LAYOUT`; a test checks them).
const OFF_CRC: usize = 8;
const OFF_ORIGIN: usize = 12;
const OFF_SEQ: usize = 16;
const OFF_TERM: usize = 24;
const OFF_TS: usize = 32;
const OFF_ACCOUNT: usize = 40;
const OFF_RESERVED: usize = 44;

/// Bytes 2..8 of every record header: template, schema, version (little endian).
const HEADER_TAIL: [u8; 6] = {
    let t = template::LOG_RECORD.to_le_bytes();
    let s = schema::INPUT_LOG.to_le_bytes();
    let v = SCHEMA_VERSION.to_le_bytes();
    [t[0], t[1], s[0], s[1], v[0], v[1]]
};

const MIN_RECORD_LEN: usize = RECORD_HEADER_LEN + HEADER_LEN;

fn u64_at(h: &[u8; RECORD_HEADER_LEN], off: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&h[off..off + 8]);
    u64::from_le_bytes(b)
}

fn u32_at(h: &[u8; RECORD_HEADER_LEN], off: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&h[off..off + 4]);
    u32::from_le_bytes(b)
}

/// The length of the record at the front of `rest` if it is a whole, intact frame: a record
/// header of this version, a possible length, all its bytes present, reserved bytes zero and
/// the CRC32C matching. `None` otherwise (then `decode_record` says why).
#[inline]
pub(crate) fn check_frame(rest: &[u8]) -> Option<usize> {
    let h: &[u8; RECORD_HEADER_LEN] = rest.get(..RECORD_HEADER_LEN)?.try_into().ok()?;
    let len = usize::from(u16::from_le_bytes([h[0], h[1]]));
    if !(MIN_RECORD_LEN..=MAX_RECORD_LEN).contains(&len)
        || h[2..8] != HEADER_TAIL
        || u32_at(h, OFF_RESERVED) != 0
    {
        return None;
    }
    let rec = rest.get(..len)?;
    let crc = crc32c::crc32c_append(crc32c::crc32c(&rec[..OFF_CRC]), &rec[OFF_ORIGIN..]);
    (crc == u32_at(h, OFF_CRC)).then_some(len)
}

/// The header fields of a frame-checked record.
#[inline]
pub(crate) fn meta_of(rec: &[u8]) -> RecordMeta {
    let mut h = [0u8; RECORD_HEADER_LEN];
    h.copy_from_slice(&rec[..RECORD_HEADER_LEN]);
    RecordMeta {
        seq: u64_at(&h, OFF_SEQ),
        term: u64_at(&h, OFF_TERM),
        timestamp_ns: u64_at(&h, OFF_TS),
        origin: u32_at(&h, OFF_ORIGIN),
        account: u32_at(&h, OFF_ACCOUNT),
    }
}

/// `(seq, term)` of a frame-checked record.
#[inline]
pub(crate) fn seq_term(h: &[u8]) -> (u64, u64) {
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[OFF_SEQ..OFF_SEQ + 16]);
    let [s0, s1, s2, s3, s4, s5, s6, s7, t0, t1, t2, t3, t4, t5, t6, t7] = b;
    (
        u64::from_le_bytes([s0, s1, s2, s3, s4, s5, s6, s7]),
        u64::from_le_bytes([t0, t1, t2, t3, t4, t5, t6, t7]),
    )
}

/// Decodes a record whose frame [`check_frame`] accepted (`rec` is exactly the record): the
/// header fields and the body. The CRC is not computed again.
#[inline]
pub(crate) fn decode_checked(rec: &[u8]) -> Result<LogRecord, String> {
    let meta = meta_of(rec);
    match Input::decode(&rec[RECORD_HEADER_LEN..]) {
        Ok(input) if meta.seq != 0 => Ok(LogRecord { meta, input }),
        _ => Err(reason(rec)),
    }
}

/// Why the bytes at the front of `rest` are not a valid record (the slow path).
#[cold]
pub(crate) fn reason(rest: &[u8]) -> String {
    match decode_record(rest) {
        Err(e) => e.to_string(),
        Ok(_) => "not a record".to_string(),
    }
}

/// Whether every byte is zero (64 bytes at a time, which the compiler vectorises).
pub(crate) fn all_zero(b: &[u8]) -> bool {
    let chunks = b.chunks_exact(64);
    let tail = chunks.remainder();
    chunks
        .map(|c| c.iter().fold(0u8, |a, &x| a | x))
        .all(|x| x == 0)
        && tail.iter().all(|&x| x == 0)
}

/// Why a run of records stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    /// Fewer than `MAX_RECORD_LEN` bytes are left and more may come: read more.
    NeedMore,
    /// Zero bytes (or the end of the bytes) where the next record would start: the end of the
    /// records (whether the rest is all zeros is the caller's question).
    Zero,
    /// Bytes that are not the next record: `reason`.
    Bad(String),
}

/// The position of a run of records: the seq the next record must have, the last term, and
/// the term history (`(term, first seq)` for each term change, as the log keeps it).
#[derive(Clone, Debug)]
pub(crate) struct Cursor {
    pub next_seq: u64,
    pub last_term: u64,
    /// Whether any record was seen yet (the first one always starts a term entry).
    pub seen: bool,
    pub terms: Vec<(u64, u64)>,
}

impl Cursor {
    pub fn new(next_seq: u64, last_term: u64) -> Cursor {
        Cursor {
            next_seq,
            last_term,
            seen: false,
            terms: Vec::new(),
        }
    }
}

/// Frame-checks the records at the front of `bytes`, each of which must have the cursor's next
/// seq and a term not below the last one; advances the cursor. `eof`: no bytes follow `bytes`
/// (otherwise the run stops with `NeedMore` once fewer than `MAX_RECORD_LEN` bytes are left, so
/// a record cut by the end of a read is never judged). Returns the bytes consumed (whole
/// records) and why it stopped.
pub(crate) fn check_run(bytes: &[u8], eof: bool, cur: &mut Cursor) -> (usize, Stop) {
    let mut off = 0;
    loop {
        let rest = &bytes[off..];
        if !eof && rest.len() < MAX_RECORD_LEN {
            return (off, Stop::NeedMore);
        }
        if rest.len() < 8 || rest[..8] == [0u8; 8] {
            return (off, Stop::Zero);
        }
        let Some(len) = check_frame(rest) else {
            return (off, Stop::Bad(reason(rest)));
        };
        let (seq, term) = seq_term(rest);
        if seq != cur.next_seq {
            return (off, Stop::Bad(format!("record has seq {seq}")));
        }
        if term < cur.last_term {
            return (off, Stop::Bad(format!("record term {term} went back")));
        }
        if !cur.seen || term != cur.last_term {
            cur.terms.push((term, seq));
            cur.seen = true;
        }
        cur.last_term = term;
        cur.next_seq += 1;
        off += len;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tpx_wire::log_record::{encode_record, RECORD_LAYOUT};
    use tpx_wire::order_entry::{CancelOrder, EnterOrder};
    use tpx_wire::{OrderKind, Side, StpMode, TimeInForce};

    fn records() -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for seq in 1..=6u64 {
            let input = if seq % 2 == 0 {
                Input::CancelOrder(CancelOrder {
                    cl_ord_id: seq,
                    remaining_qty: 7,
                })
            } else {
                Input::EnterOrder(EnterOrder {
                    cl_ord_id: seq,
                    price: 100 + seq as i64,
                    qty: 5,
                    instrument: 1,
                    side: Side::Buy,
                    kind: OrderKind::Limit,
                    tif: TimeInForce::Gtc,
                    stp: StpMode::None,
                    post_only: false,
                    reduce_only: false,
                })
            };
            let r = LogRecord {
                meta: RecordMeta {
                    seq,
                    term: 1 + seq / 4,
                    timestamp_ns: 1_000 * seq,
                    origin: 9,
                    account: 11,
                },
                input,
            };
            let mut b = vec![0u8; 1024];
            let n = encode_record(&r, &mut b).unwrap();
            b.truncate(n);
            out.push(b);
        }
        out
    }

    #[test]
    fn offsets_match_the_wire_layout() {
        let off = |name: &str| {
            RECORD_LAYOUT
                .fields
                .iter()
                .find(|f| f.name == name)
                .unwrap()
                .offset
        };
        assert_eq!(off("crc32c"), OFF_CRC);
        assert_eq!(off("origin"), OFF_ORIGIN);
        assert_eq!(off("seq"), OFF_SEQ);
        assert_eq!(off("term"), OFF_TERM);
        assert_eq!(off("timestamp_ns"), OFF_TS);
        assert_eq!(off("account"), OFF_ACCOUNT);
        assert_eq!(RECORD_LAYOUT.reserved, &[(OFF_RESERVED, 4)]);
    }

    #[test]
    fn fast_decode_equals_decode_record() {
        for b in records() {
            let (want, n) = decode_record(&b).unwrap();
            assert_eq!(check_frame(&b), Some(n));
            assert_eq!(decode_checked(&b[..n]).unwrap(), want);
        }
    }

    #[test]
    fn frame_check_agrees_with_decode_record_on_every_flip_and_cut() {
        for b in records() {
            for i in 0..b.len() {
                for bit in [0x01u8, 0x10, 0x80] {
                    let mut x = b.clone();
                    x[i] ^= bit;
                    // A frame check passes only where decode_record's frame checks pass; a
                    // single flipped bit is always caught (by the CRC if nothing else).
                    assert_eq!(check_frame(&x), None, "flip at {i}");
                    assert!(decode_record(&x).is_err());
                }
            }
            for cut in 0..b.len() {
                assert_eq!(check_frame(&b[..cut]), None, "cut at {cut}");
            }
        }
    }

    #[test]
    fn runs_stop_at_zeros_bad_bytes_and_gaps() {
        let recs = records();
        let mut bytes: Vec<u8> = recs.concat();
        let total = bytes.len();
        bytes.resize(total + 2048, 0);
        let mut cur = Cursor::new(1, 0);
        assert_eq!(check_run(&bytes, true, &mut cur), (total, Stop::Zero));
        assert_eq!(cur.next_seq, 7);
        assert_eq!(cur.terms, vec![(1, 1), (2, 4)]);
        assert_eq!(cur.last_term, 2);

        // Not at eof: stops short of the last MAX_RECORD_LEN bytes.
        let mut cur = Cursor::new(1, 0);
        let (n, stop) = check_run(&bytes[..total], false, &mut cur);
        assert_eq!(stop, Stop::NeedMore);
        assert!(n < total && total - n < MAX_RECORD_LEN + recs[0].len());

        // A flipped byte in record 3: stops there, naming the CRC.
        let mut bad = bytes.clone();
        let at = recs[0].len() + recs[1].len();
        bad[at + 50] ^= 4;
        let mut cur = Cursor::new(1, 0);
        let (n, stop) = check_run(&bad, true, &mut cur);
        assert_eq!(n, at);
        assert_eq!(cur.next_seq, 3);
        assert!(
            matches!(stop, Stop::Bad(ref r) if r.contains("crc32c mismatch")),
            "{stop:?}"
        );

        // A gap: record 2 missing.
        let gap = [recs[0].clone(), recs[2].clone()].concat();
        let mut cur = Cursor::new(1, 0);
        let (n, stop) = check_run(&gap, true, &mut cur);
        assert_eq!(n, recs[0].len());
        assert_eq!(stop, Stop::Bad("record has seq 3".into()));
    }

    #[test]
    fn all_zero_finds_any_byte() {
        let mut b = vec![0u8; 1000];
        assert!(all_zero(&b));
        for i in [0, 63, 64, 500, 959, 960, 999] {
            b[i] = 1;
            assert!(!all_zero(&b), "{i}");
            b[i] = 0;
        }
    }
}
