//! The fast path over log bytes: frame checks (length, header, reserved, CRC32C) without
//! decoding the body, a run of frame-checked records and commit trailers with the seq/term and
//! commit rules, and the body decode of a record already checked.
//!
//! Log format 2 (see [`crate::log`]): a segment is a sequence of commits, each starting at a
//! [`crate::storage::BLOCK`] boundary: records back to back, a [`TRAILER_LEN`]-byte commit
//! trailer naming the commit's first and last seq, then padding to the next block boundary
//! (zeros when written; never read).
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
const OFF_SESSION: usize = 44;

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
/// header of this version, a possible length, all its bytes present and
/// the CRC32C matching. `None` otherwise (then `decode_record` says why).
#[inline]
pub(crate) fn check_frame(rest: &[u8]) -> Option<usize> {
    let h: &[u8; RECORD_HEADER_LEN] = rest.get(..RECORD_HEADER_LEN)?.try_into().ok()?;
    let len = usize::from(u16::from_le_bytes([h[0], h[1]]));
    if !(MIN_RECORD_LEN..=MAX_RECORD_LEN).contains(&len) || h[2..8] != HEADER_TAIL {
        return None;
    }
    let rec = rest.get(..len)?;
    let crc = crc32c::crc32c_append(crc32c::crc32c(&rec[..OFF_CRC]), &rec[OFF_ORIGIN..]);
    (crc == u32_at(h, OFF_CRC)).then_some(len)
}

/// `(seq, length)` of the record at the front of `rest` from its header alone (a header of
/// this version, a possible length, all its bytes present), the CRC not computed: for hopping
/// over records nobody reads ([`crate::log::LogReader::seek`]). Bytes that pass here and are
/// not a valid record are refused by whoever reads them.
#[inline]
pub(crate) fn header_hop(rest: &[u8]) -> Option<(u64, usize)> {
    let h: &[u8; RECORD_HEADER_LEN] = rest.get(..RECORD_HEADER_LEN)?.try_into().ok()?;
    let len = usize::from(u16::from_le_bytes([h[0], h[1]]));
    if !(MIN_RECORD_LEN..=MAX_RECORD_LEN).contains(&len) || h[2..8] != HEADER_TAIL {
        return None;
    }
    rest.get(..len)?;
    Some((u64_at(h, OFF_SEQ), len))
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
        session: u32_at(&h, OFF_SESSION),
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

/// Bytes of a commit trailer.
pub(crate) const TRAILER_LEN: usize = 32;
/// The first 8 bytes of a commit trailer (format 2). As a record length, `b"tp"` is 28788:
/// above `MAX_RECORD_LEN`, so a trailer is never taken for a record, nor zeros for a trailer.
pub(crate) const TRAILER_MAGIC: [u8; 8] = *b"tpxcmt02";

/// The commit trailer for records `first..=last`: magic, first seq, last seq (little endian),
/// CRC32C of those 24 bytes, 4 zero bytes.
pub(crate) fn encode_trailer(first: u64, last: u64) -> [u8; TRAILER_LEN] {
    encode_trailer_unacked(first, last, 0)
}

/// The commit trailer of a commit submitted while other commits were still in flight:
/// `unacked` is how many records before `first` were not durable yet (the last 4 bytes, little
/// endian; recovery's rule for a damaged commit followed by this one, see `crate::log`). With
/// `unacked` 0 it is [`encode_trailer`]'s trailer (a writer with one commit in flight); else
/// the CRC32C covers those 4 bytes too.
pub(crate) fn encode_trailer_unacked(first: u64, last: u64, unacked: u32) -> [u8; TRAILER_LEN] {
    let mut t = [0u8; TRAILER_LEN];
    t[..8].copy_from_slice(&TRAILER_MAGIC);
    t[8..16].copy_from_slice(&first.to_le_bytes());
    t[16..24].copy_from_slice(&last.to_le_bytes());
    t[28..32].copy_from_slice(&unacked.to_le_bytes());
    let crc = trailer_crc(&t);
    t[24..28].copy_from_slice(&crc.to_le_bytes());
    t
}

fn trailer_crc(t: &[u8]) -> u32 {
    let crc = crc32c::crc32c(&t[..24]);
    if t[28..32] == [0u8; 4] {
        crc
    } else {
        crc32c::crc32c_append(crc, &t[28..32])
    }
}

/// `(first, last)` of the commit trailer at the front of `rest`, if it is an intact one.
pub(crate) fn parse_trailer(rest: &[u8]) -> Option<(u64, u64)> {
    parse_trailer_unacked(rest).map(|(f, l, _)| (f, l))
}

/// `(first, last, unacked)` of the commit trailer at the front of `rest`, if it is intact.
pub(crate) fn parse_trailer_unacked(rest: &[u8]) -> Option<(u64, u64, u32)> {
    let t = rest.get(..TRAILER_LEN)?;
    if t[..8] != TRAILER_MAGIC {
        return None;
    }
    let crc = u32::from_le_bytes(t[24..28].try_into().ok()?);
    if trailer_crc(t) != crc {
        return None;
    }
    let first = u64::from_le_bytes(t[8..16].try_into().ok()?);
    let last = u64::from_le_bytes(t[16..24].try_into().ok()?);
    let unacked = u32::from_le_bytes(t[28..32].try_into().ok()?);
    (first >= 1 && first <= last && u64::from(unacked) < first).then_some((first, last, unacked))
}

/// Whether the bytes at the front of `rest` start a commit trailer (a cheap test: the magic).
#[inline]
pub(crate) fn is_trailer(rest: &[u8]) -> bool {
    rest.len() >= 8 && rest[..8] == TRAILER_MAGIC
}

/// `off` rounded up to a block boundary.
#[inline]
pub(crate) fn align_up(off: u64) -> u64 {
    off.div_ceil(crate::storage::BLOCK as u64) * crate::storage::BLOCK as u64
}

/// The bytes of a trailer at file offset `at` and the padding after it (to the block boundary).
#[inline]
pub(crate) fn trailer_frame_len(at: u64) -> usize {
    (align_up(at + TRAILER_LEN as u64) - at) as usize
}

/// Why a run of records stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    /// Fewer than `MAX_RECORD_LEN` bytes (or than a trailer and its padding) are left and more
    /// may come: read more.
    NeedMore,
    /// Zero bytes (or the end of the bytes) where the next commit would start: the end of the
    /// commits (whether the rest is all zeros is the caller's question).
    Zero,
    /// Bytes that are not the next record or trailer (or zeros where a commit that has records
    /// has no trailer yet): `reason`. The last complete commit ends at [`Cursor::done`].
    Bad(String),
}

/// The cursor's state at the end of the last complete commit (after its padding).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Done {
    /// File offset of the end of the commit's padding (a block boundary; 0: none yet).
    pub off: u64,
    pub next_seq: u64,
    pub last_term: u64,
    pub seen: bool,
    pub terms_len: usize,
}

/// The position of a run of records: the seq the next record must have, the last term, the
/// term history (`(term, first seq)` for each term change, as the log keeps it), the first seq
/// of the commit being read, and the state at the end of the last complete commit.
#[derive(Clone, Debug)]
pub(crate) struct Cursor {
    pub next_seq: u64,
    pub last_term: u64,
    /// Whether any record was seen yet (the first one always starts a term entry).
    pub seen: bool,
    pub terms: Vec<(u64, u64)>,
    /// The first seq of the commit being read (`next_seq` at its start).
    pub commit_first: u64,
    pub done: Done,
}

impl Cursor {
    pub fn new(next_seq: u64, last_term: u64) -> Cursor {
        Cursor {
            next_seq,
            last_term,
            seen: false,
            terms: Vec::new(),
            commit_first: next_seq,
            done: Done {
                off: 0,
                next_seq,
                last_term,
                seen: false,
                terms_len: 0,
            },
        }
    }

    /// Whether records of a commit whose trailer is not read yet were read.
    pub fn in_commit(&self) -> bool {
        self.next_seq > self.commit_first
    }

    /// Goes back to the end of the last complete commit (dropping the records read after it).
    pub fn rewind_to_done(&mut self) {
        let d = self.done;
        self.next_seq = d.next_seq;
        self.last_term = d.last_term;
        self.seen = d.seen;
        self.terms.truncate(d.terms_len);
        self.commit_first = d.next_seq;
    }
}

/// Frame-checks the records and commit trailers at the front of `bytes` (which start at file
/// offset `base`): each record must have the cursor's next seq and a term not below the last
/// one, each trailer must name the records since the previous one; advances the cursor (and its
/// [`Cursor::done`] at each trailer). `eof`: no bytes follow `bytes` (otherwise the run stops
/// with `NeedMore` once fewer than `MAX_RECORD_LEN` bytes, or fewer than a trailer and its
/// padding, are left, so a frame cut by the end of a read is never judged). Returns the bytes
/// consumed (whole records, whole trailers with their padding) and why it stopped.
pub(crate) fn check_run(bytes: &[u8], base: u64, eof: bool, cur: &mut Cursor) -> (usize, Stop) {
    let mut off = 0;
    loop {
        let rest = &bytes[off..];
        if !eof && rest.len() < MAX_RECORD_LEN {
            return (off, Stop::NeedMore);
        }
        if rest.len() < 8 || rest[..8] == [0u8; 8] {
            if cur.in_commit() {
                return (
                    off,
                    Stop::Bad(format!(
                        "commit of seq {}..={} has no commit trailer",
                        cur.commit_first,
                        cur.next_seq - 1
                    )),
                );
            }
            return (off, Stop::Zero);
        }
        if is_trailer(rest) {
            let at = base + off as u64;
            let Some((first, last)) = parse_trailer(rest) else {
                return (off, Stop::Bad("commit trailer does not check".into()));
            };
            if !cur.in_commit() || first != cur.commit_first || last + 1 != cur.next_seq {
                return (
                    off,
                    Stop::Bad(format!(
                        "commit trailer names seq {first}..={last} where seq {}..{} were read",
                        cur.commit_first, cur.next_seq
                    )),
                );
            }
            let frame = trailer_frame_len(at);
            let take = if rest.len() >= frame {
                frame
            } else if eof {
                rest.len()
            } else {
                return (off, Stop::NeedMore);
            };
            off += take;
            cur.commit_first = cur.next_seq;
            cur.done = Done {
                off: base + off as u64,
                next_seq: cur.next_seq,
                last_term: cur.last_term,
                seen: cur.seen,
                terms_len: cur.terms.len(),
            };
            continue;
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
                    session: 0,
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
        assert_eq!(off("session"), OFF_SESSION);
        assert!(RECORD_LAYOUT.reserved.is_empty());
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

    /// Records `recs` as one commit at file offset `at` (a block boundary): records, trailer,
    /// zero padding to the next boundary.
    fn commit_bytes(recs: &[Vec<u8>], at: u64) -> Vec<u8> {
        let mut b: Vec<u8> = recs.concat();
        let first = seq_term(&recs[0]).0;
        let last = seq_term(&recs[recs.len() - 1]).0;
        let rl = b.len();
        b.extend_from_slice(&encode_trailer(first, last));
        b.resize(rl + trailer_frame_len(at + rl as u64), 0);
        b
    }

    #[test]
    fn runs_stop_at_zeros_bad_bytes_and_gaps() {
        let recs = records();
        let c1 = commit_bytes(&recs[..2], 0);
        assert_eq!(c1.len(), 4096);
        let c2 = commit_bytes(&recs[2..], 4096);
        let mut bytes = [c1.clone(), c2.clone()].concat();
        let total = bytes.len();
        bytes.resize(total + 2048, 0);
        let mut cur = Cursor::new(1, 0);
        assert_eq!(check_run(&bytes, 0, true, &mut cur), (total, Stop::Zero));
        assert_eq!(cur.next_seq, 7);
        assert_eq!(cur.terms, vec![(1, 1), (2, 4)]);
        assert_eq!(cur.last_term, 2);
        assert_eq!((cur.done.off, cur.done.next_seq), (total as u64, 7));

        // Not at eof: stops before a trailer whose padding is not all here.
        let mut cur = Cursor::new(1, 0);
        let (n, stop) = check_run(&bytes[..4000], 0, false, &mut cur);
        assert_eq!(stop, Stop::NeedMore);
        assert_eq!(n, recs[0].len() + recs[1].len());
        assert_eq!(cur.done.off, 0);

        // A flipped byte in record 4: stops there, naming the CRC; the last complete commit
        // ends at 4096.
        let mut bad = bytes.clone();
        let at = 4096 + recs[2].len();
        bad[at + 50] ^= 4;
        let mut cur = Cursor::new(1, 0);
        let (n, stop) = check_run(&bad, 0, true, &mut cur);
        assert_eq!(n, at);
        assert_eq!(cur.next_seq, 4);
        assert!(
            matches!(stop, Stop::Bad(ref r) if r.contains("crc32c mismatch")),
            "{stop:?}"
        );
        assert_eq!(
            (cur.done.off, cur.done.next_seq, cur.commit_first),
            (4096, 3, 3)
        );
        cur.rewind_to_done();
        assert_eq!(
            (cur.next_seq, cur.last_term, cur.terms.clone()),
            (3, 1, vec![(1, 1)])
        );

        // Records without their trailer (zeros where it would be): the commit is cut short.
        let mut short = bytes.clone();
        let tr = 4096 + recs[2..].iter().map(|r| r.len()).sum::<usize>();
        short[tr..tr + TRAILER_LEN].fill(0);
        let mut cur = Cursor::new(1, 0);
        let (n, stop) = check_run(&short, 0, true, &mut cur);
        assert_eq!(n, tr);
        assert!(
            matches!(stop, Stop::Bad(ref r) if r.contains("no commit trailer")),
            "{stop:?}"
        );
        assert_eq!(cur.done.off, 4096);

        // A trailer naming other seqs, and a damaged one.
        let mut wrong = bytes.clone();
        wrong[tr..tr + TRAILER_LEN].copy_from_slice(&encode_trailer(3, 5));
        let (n, stop) = check_run(&wrong, 0, true, &mut Cursor::new(1, 0));
        assert_eq!(n, tr);
        assert!(
            matches!(stop, Stop::Bad(ref r) if r.contains("names seq 3..=5")),
            "{stop:?}"
        );
        let mut broken = bytes.clone();
        broken[tr + 12] ^= 1;
        let (_, stop) = check_run(&broken, 0, true, &mut Cursor::new(1, 0));
        assert!(
            matches!(stop, Stop::Bad(ref r) if r.contains("does not check")),
            "{stop:?}"
        );

        // A gap: record 2 missing.
        let gap = [recs[0].clone(), recs[2].clone()].concat();
        let mut cur = Cursor::new(1, 0);
        let (n, stop) = check_run(&gap, 0, true, &mut cur);
        assert_eq!(n, recs[0].len());
        assert_eq!(stop, Stop::Bad("record has seq 3".into()));
    }

    #[test]
    fn trailers_round_trip_and_are_never_records() {
        let t = encode_trailer(7, 9);
        assert_eq!(parse_trailer(&t), Some((7, 9)));
        assert!(is_trailer(&t));
        assert_eq!(check_frame(&t), None);
        for i in 0..TRAILER_LEN {
            let mut x = t;
            x[i] ^= 0x10;
            assert_eq!(parse_trailer(&x), None, "flip at {i}");
        }
        assert_eq!(parse_trailer(&encode_trailer(9, 7)), None);
        assert_eq!(parse_trailer(&encode_trailer(0, 7)), None);
        for r in records() {
            assert!(!is_trailer(&r));
        }
        assert_eq!(trailer_frame_len(0), 4096);
        assert_eq!(trailer_frame_len(4096 - 32), 32);
        assert_eq!(trailer_frame_len(4096 - 31), 4096 + 31);
    }

    /// The count of not-yet-durable records: 0 is the one-in-flight trailer, byte for byte; a
    /// non-zero count round-trips and is covered by the CRC; it never reaches below seq 1.
    #[test]
    fn trailer_unacked_count_round_trips_and_is_checked() {
        assert_eq!(encode_trailer_unacked(7, 9, 0), encode_trailer(7, 9));
        let t = encode_trailer_unacked(70, 90, 12);
        assert_eq!(parse_trailer_unacked(&t), Some((70, 90, 12)));
        assert_eq!(parse_trailer(&t), Some((70, 90)));
        for i in 8..TRAILER_LEN {
            let mut x = t;
            x[i] ^= 1;
            assert_eq!(parse_trailer_unacked(&x), None, "flip at {i}");
        }
        assert_eq!(
            parse_trailer_unacked(&encode_trailer_unacked(5, 9, 5)),
            None
        );
        assert_eq!(
            parse_trailer_unacked(&encode_trailer_unacked(5, 9, 4)),
            Some((5, 9, 4))
        );
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
