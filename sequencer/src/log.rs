//! The input log: preallocated segment files of `tpx_wire::log_record` records, written in
//! group commits of whole 4 KiB blocks that never touch an earlier commit's blocks, recovered by
//! scanning.
//!
//! # On disk (format 3)
//!
//! A log is a directory of segments named `{first_seq:020}.seg3`, each preallocated to
//! `segment_bytes` (`fallocate`). A segment is a run of *commits* from offset 0, each starting
//! at a 4 KiB block boundary: its records back to back (no gap in `seq`), a 32-byte commit
//! trailer (magic `tpxcmt02`, the commit's first and last seq, a CRC32C of the trailer), then
//! zero padding to the next block boundary, where the next commit starts. The trailer's last 4
//! bytes count the records before the commit that were not yet durable when it was submitted
//! (0 when one commit is in flight at a time; the CRC covers them when they are not 0). The unused end of a
//! segment is zeros. A commit that does not fit in what is left of a segment starts the next
//! one. Older formats are refused at open with [`LogError::OldFormat`]: format 1 (`*.seg`:
//! records back to back, the partly filled last block rewritten by each commit) and format 2
//! (`*.seg2`: this framing, but its `SetMarkPrice`, `Liquidate` and `SetFeeTier` records carry
//! no request id, so their answers could not be replayed alike on every node).
//!
//! # Writing
//!
//! [`SegmentLog::append`] stages encoded records in memory; [`SegmentLog::commit`] copies them
//! into a block-aligned buffer, adds the trailer and the padding and writes the blocks (whole
//! blocks, so O_DIRECT works) at the first block after the previous commit, then flushes. A
//! commit never rewrites a block an earlier commit wrote, so a write torn by a power loss can
//! only damage its own (never acknowledged) bytes. Everything staged since the previous commit
//! goes in one write per segment touched and per full buffer: a group commit. The cost is the
//! padding: a commit takes at least one block. [`SegmentLog::durable_seq`] is the last record of
//! the last commit that returned `Ok`. A failed write (ENOSPC, EIO) leaves the records staged
//! and the durable position where it was; `commit` retries them (at the same offset).
//!
//! An asynchronous writer ([`crate::uring::UringLog`]) splits a commit in two:
//! [`SegmentLog::start_commit`] builds it in its own buffer at the next free block and hands it
//! out, [`SegmentLog::finish_commit`] says how its write went. Several may be in flight (each
//! on fresh blocks after the previous one's); the durable seq moves only over commits that
//! completed together with every one before them; commits in flight together never span two
//! segments (a roll waits until none is in flight).
//!
//! # Recovery
//!
//! [`SegmentLog::open`] reads every segment front to back in 1 MiB reads (one buffer, reused)
//! and frame-checks every record and trailer ([`crate::scan`]: length, header, reserved bytes,
//! CRC32C with the hardware instruction, seq continuity, term order, each trailer naming the
//! records since the previous one; the body is decoded later, by [`replay`], which names a
//! record whose body does not decode). The log ends at the end of the last complete commit
//! (trailer read). Bad bytes (a record that fails, records without their trailer, non-zero
//! bytes after the last commit) are a *torn tail* if they are in the last segment and no
//! complete later commit follows them there that was submitted after the damaged one was
//! durable (a trailer of a commit that starts after the damaged one and whose count of
//! not-yet-durable records does not reach back into it): the commit was being written when the
//! process or the power went, none of it was acknowledged, and it is cut off, with any later
//! commit that was in flight with it (the file is truncated at the end of the last complete
//! commit before the damage and preallocated again, so the garbage is gone for good). With such
//! a complete later commit, or in an earlier segment, the damaged bytes were durable before
//! that commit was written (a torn write touches only its own blocks): that is lost
//! acknowledged data, and `open` refuses with [`LogError::Corrupt`], naming the segment, the
//! offset and the seq the record should have had. With one commit in flight at a time (every
//! trailer counts 0) this is exactly "damage followed by any complete later commit"; with
//! several, damage to the commits that were in flight together at the end of the log cannot be
//! told from a torn write (as damage to the last commit alone could not before).

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tpx_wire::log_record::{decode_record, LogRecord, MAX_RECORD_LEN, RECORD_HEADER_LEN};

use crate::scan::{
    align_up, all_zero, check_frame, check_run, encode_trailer, encode_trailer_unacked, header_hop,
    is_trailer, parse_trailer_unacked, seq_term, trailer_frame_len, Cursor, Stop, TRAILER_LEN,
};
use crate::storage::{read_all, AlignedBuf, FileId, Storage, BLOCK};

/// File name suffix of log segments.
pub const SEGMENT_SUFFIX: &str = ".seg3";

/// The suffixes of older formats' segments and their format numbers (refused at open:
/// [`LogError::OldFormat`]).
pub const OLD_SEGMENT_SUFFIXES: [(&str, u32); 2] = [(".seg", 1), (".seg2", 2)];

/// The on-disk format this build writes and reads (see the module docs).
pub const FORMAT_VERSION: u32 = 3;

/// The file name of the segment whose first record is `first_seq`.
pub fn segment_name(first_seq: u64) -> String {
    format!("{first_seq:020}{SEGMENT_SUFFIX}")
}

/// The first seq of a segment, from its file name.
pub fn parse_segment_name(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(SEGMENT_SUFFIX)?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

/// Log geometry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogConfig {
    /// Bytes preallocated per segment (a multiple of 4 KiB, at least 2 blocks).
    pub segment_bytes: u64,
    /// The write buffer: the most bytes one write carries (a multiple of 4 KiB).
    pub write_buf_bytes: usize,
    /// Write zeros over a new segment after `fallocate` (so later writes overwrite written
    /// blocks instead of converting unwritten extents, which costs a journal commit each on
    /// ext4). Costs one sequential write of the segment at each roll.
    pub zero_fill: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 64 << 20,
            write_buf_bytes: 1 << 20,
            zero_fill: false,
        }
    }
}

impl LogConfig {
    fn normalised(self) -> LogConfig {
        let seg = self
            .segment_bytes
            .max(2 * BLOCK as u64)
            .div_ceil(BLOCK as u64)
            * BLOCK as u64;
        let wb = self.write_buf_bytes.max(2 * BLOCK).div_ceil(BLOCK) * BLOCK;
        LogConfig {
            segment_bytes: seg,
            write_buf_bytes: wb,
            zero_fill: self.zero_fill,
        }
    }
}

/// Why the log refused to open or to take a record.
#[derive(Debug)]
pub enum LogError {
    Io(io::Error),
    /// A record in the middle of the log does not decode (valid records follow it), or the
    /// records do not continue the sequence: the log cannot be trusted and the node must not
    /// start from it.
    Corrupt {
        segment: String,
        offset: u64,
        /// The seq the record at `offset` should have.
        seq: u64,
        reason: String,
    },
    /// An appended record does not continue the log.
    OutOfOrder {
        expected_seq: u64,
        got_seq: u64,
    },
    /// An appended record's term is below the last record's.
    TermWentBack {
        last_term: u64,
        got_term: u64,
    },
    /// The bytes are not one encoded record.
    BadRecord,
    /// A segment of an older on-disk format (see the module docs): this build does not read it.
    OldFormat {
        segment: String,
        /// Its format (1 or 2).
        format: u32,
    },
}

impl std::fmt::Display for LogError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LogError::Io(e) => write!(f, "log io error: {e}"),
            LogError::Corrupt {
                segment,
                offset,
                seq,
                reason,
            } => write!(
                f,
                "corrupt input log: segment {segment} offset {offset} (record seq {seq}): {reason}"
            ),
            LogError::OutOfOrder {
                expected_seq,
                got_seq,
            } => write!(
                f,
                "record seq {got_seq} appended where {expected_seq} was expected"
            ),
            LogError::TermWentBack {
                last_term,
                got_term,
            } => write!(f, "record term {got_term} below the log's term {last_term}"),
            LogError::BadRecord => write!(f, "not an encoded log record"),
            LogError::OldFormat { segment, format } => {
                let what = match format {
                    1 => "records back to back, last block rewritten",
                    _ => "no request id in mark, liquidation and fee tier records",
                };
                write!(
                    f,
                    "input log segment {segment} is log format {format} ({what}); this build \
                     reads and writes only format {FORMAT_VERSION} (`*{SEGMENT_SUFFIX}`): replay \
                     it with the build that wrote it and start this one from a snapshot, a \
                     standby, or an empty log directory"
                )
            }
        }
    }
}

impl std::error::Error for LogError {}

impl From<io::Error> for LogError {
    fn from(e: io::Error) -> Self {
        LogError::Io(e)
    }
}

/// What [`SegmentLog::open`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Segments found.
    pub segments: usize,
    /// First record in the log (0: empty).
    pub first_seq: u64,
    /// Last valid record (0: empty).
    pub last_seq: u64,
    /// Its term.
    pub last_term: u64,
    /// A torn tail that was cut off: segment, offset of the cut, bytes removed (non-zero span).
    pub torn: Option<(String, u64, u64)>,
    /// Segments [`SegmentLog::open_trusting`] did not frame-check (all wholly at or before its
    /// `trusted_through`): [`check_trusted`] checks them.
    pub unchecked: usize,
}

#[derive(Clone, Debug)]
pub(crate) struct Segment {
    pub(crate) first_seq: u64,
    pub(crate) name: String,
}

/// The seq and term of an encoded record (header fields; the caller encoded it).
pub(crate) fn record_seq_term(rec: &[u8]) -> Option<(u64, u64, usize)> {
    let len = usize::from(u16::from_le_bytes(rec.get(0..2)?.try_into().ok()?));
    if !(RECORD_HEADER_LEN..=MAX_RECORD_LEN).contains(&len) || rec.len() < len {
        return None;
    }
    let seq = u64::from_le_bytes(rec.get(16..24)?.try_into().ok()?);
    let term = u64::from_le_bytes(rec.get(24..32)?.try_into().ok()?);
    Some((seq, term, len))
}

/// The first intact commit trailer at an 8-byte-aligned offset after `off` that names a commit
/// starting after seq `commit_first` (a commit later than the one holding `off`) and that was
/// submitted once the commit starting at `commit_first` was durable (its `unacked` count does
/// not reach back to it): `(offset, first, last)`.
fn complete_commit_after(bytes: &[u8], off: usize, commit_first: u64) -> Option<(usize, u64, u64)> {
    let mut o = (off + 8) & !7;
    while o + TRAILER_LEN <= bytes.len() {
        if let Some((first, last, unacked)) = parse_trailer_unacked(&bytes[o..]) {
            // Written after every record below `first - unacked` was durable: if that covers
            // the damaged commit, the damage is to acknowledged records. Otherwise the two
            // were in flight together (the damaged one never completed): not evidence.
            if first > commit_first && first - 1 - u64::from(unacked) >= commit_first {
                return Some((o, first, last));
            }
        }
        o += 8;
    }
    None
}

/// A segment of an older format in `st`, if any: its name and format.
fn old_format_segment<S: Storage>(st: &mut S) -> io::Result<Option<(String, u32)>> {
    Ok(st.list()?.into_iter().find_map(|name| {
        OLD_SEGMENT_SUFFIXES.iter().find_map(|&(suffix, format)| {
            name.strip_suffix(suffix)
                .is_some_and(|stem| stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()))
                .then(|| (name.clone(), format))
        })
    }))
}

/// The segments in `st`, sorted by first seq.
pub(crate) fn list_segments<S: Storage>(st: &mut S) -> io::Result<Vec<Segment>> {
    let mut segs: Vec<Segment> = st
        .list()?
        .into_iter()
        .filter_map(|name| parse_segment_name(&name).map(|first_seq| Segment { first_seq, name }))
        .collect();
    segs.sort_by_key(|s| s.first_seq);
    Ok(segs)
}

/// Bytes per read of the recovery scan (and of replay).
pub(crate) const SCAN_CHUNK: usize = 1 << 20;

/// The result of scanning one segment file (the end of its last complete commit is
/// `cur.done.off`).
struct FileScan {
    /// `(offset, reason)` of the first bad bytes, if any.
    bad: Option<(u64, String)>,
}

/// Reads a segment front to back in [`SCAN_CHUNK`] reads into `buf` (reused across segments)
/// and frame-checks every record (length, header, CRC32C, seq continuity, term order; see
/// [`crate::scan`]), then checks that the rest of the file is zeros. Advances `cur`.
fn scan_file<S: Storage>(
    st: &mut S,
    f: FileId,
    buf: &mut Vec<u8>,
    cur: &mut Cursor,
) -> io::Result<FileScan> {
    let mut size = st.size(f)?;
    st.advise_sequential(f);
    buf.resize(SCAN_CHUNK + MAX_RECORD_LEN, 0);
    // `buf[..have]` holds the file's bytes from `base`; `buf[..pos]` is checked.
    let mut base = 0u64;
    let mut have = 0usize;
    let mut pos = 0usize;
    loop {
        if base + (have as u64) < size {
            buf.copy_within(pos..have, 0);
            base += pos as u64;
            have -= pos;
            pos = 0;
            let want = (buf.len() - have).min((size - base) as usize - have);
            let got = read_full(st, f, base + have as u64, &mut buf[have..have + want])?;
            have += got;
            if got < want {
                size = base + have as u64;
            }
        }
        let eof = base + have as u64 >= size;
        let (n, stop) = check_run(&buf[pos..have], base + pos as u64, eof, cur);
        pos += n;
        let at = base + pos as u64;
        match stop {
            Stop::NeedMore => continue,
            Stop::Bad(reason) => {
                return Ok(FileScan {
                    bad: Some((at, reason)),
                })
            }
            Stop::Zero => {
                let mut zero = all_zero(&buf[pos..have]);
                let mut off = base + have as u64;
                while zero && off < size {
                    let want = buf.len().min((size - off) as usize);
                    let got = read_full(st, f, off, &mut buf[..want])?;
                    if got == 0 {
                        break;
                    }
                    zero = all_zero(&buf[..got]);
                    off += got as u64;
                }
                let bad = (!zero).then(|| (at, "non-zero bytes after the last commit".to_string()));
                return Ok(FileScan { bad });
            }
        }
    }
}

/// The segments [`SegmentLog::open_trusting`] need not scan: by index, the term of every
/// record of segment `i` when it may be taken on its first record (see there), else `None`.
fn light_terms<S: Storage>(
    st: &mut S,
    segs: &[Segment],
    trusted_through: u64,
    buf: &mut Vec<u8>,
) -> io::Result<Vec<Option<u64>>> {
    let mut out = vec![None; segs.len()];
    // Segment `i` holds `segs[i].first_seq..segs[i + 1].first_seq`: wholly trusted when the
    // next one starts at or before `trusted_through + 1`; never the last.
    let last = segs
        .windows(2)
        .take_while(|w| w[1].first_seq <= trusted_through.saturating_add(1))
        .count();
    if last == 0 {
        return Ok(out);
    }
    let mut firsts = Vec::with_capacity(last + 1);
    for seg in &segs[..=last] {
        firsts.push(first_record_term(st, seg, buf)?);
    }
    for i in 0..last {
        if segs[i + 1].first_seq <= segs[i].first_seq {
            continue;
        }
        if let (Some(a), Some(b)) = (firsts[i], firsts[i + 1]) {
            if a == b {
                out[i] = Some(a);
            }
        }
    }
    Ok(out)
}

/// The term of a segment's first record if that record frame-checks and has the seq the
/// segment's name gives.
fn first_record_term<S: Storage>(
    st: &mut S,
    seg: &Segment,
    buf: &mut Vec<u8>,
) -> io::Result<Option<u64>> {
    let f = st.open(&seg.name, false)?;
    buf.resize(MAX_RECORD_LEN, 0);
    let got = read_full(st, f, 0, &mut buf[..MAX_RECORD_LEN]);
    st.close(f);
    let got = got?;
    Ok(check_frame(&buf[..got]).and_then(|_| {
        let (seq, term) = seq_term(&buf[..got]);
        (seq == seg.first_seq).then_some(term)
    }))
}

/// Frame-checks, front to back as [`SegmentLog::open`] does, the segments of the log in `st`
/// that [`SegmentLog::open_trusting`] with the same `trusted_through` may have taken on their
/// first record (every segment but the last whose records all lie at or before it): every
/// record and trailer, each segment ending exactly where the next begins, terms never going
/// back. Read-only; safe beside a running log (those segments are never written again).
/// Returns the segments checked; a segment that retention removed meanwhile ends the check.
/// Damage is [`LogError::Corrupt`]: those records were durable (later segments follow).
pub fn check_trusted<S: Storage>(mut st: S, trusted_through: u64) -> Result<usize, LogError> {
    let segs = list_segments(&mut st)?;
    let mut buf = Vec::new();
    let mut last_term = 0;
    let mut checked = 0;
    for w in segs.windows(2) {
        let (seg, next) = (&w[0], &w[1]);
        if next.first_seq > trusted_through.saturating_add(1) {
            break;
        }
        let f = match st.open(&seg.name, false) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => break,
            Err(e) => return Err(e.into()),
        };
        let mut cur = Cursor::new(seg.first_seq, last_term);
        let scan = scan_file(&mut st, f, &mut buf, &mut cur);
        st.close(f);
        let scan = scan?;
        let corrupt = |offset: u64, reason: String| LogError::Corrupt {
            segment: seg.name.clone(),
            offset,
            seq: cur.next_seq,
            reason,
        };
        if let Some((off, reason)) = scan.bad {
            return Err(corrupt(off, format!("{reason}; later segments follow")));
        }
        if cur.next_seq != next.first_seq {
            return Err(corrupt(
                cur.done.off,
                format!(
                    "the segment ends before seq {}, the next starts at seq {}",
                    cur.next_seq, next.first_seq
                ),
            ));
        }
        last_term = cur.last_term;
        checked += 1;
    }
    Ok(checked)
}

/// Reads until `buf` is full or the file ends; returns the bytes read.
pub(crate) fn read_full<S: Storage + ?Sized>(
    st: &mut S,
    f: FileId,
    offset: u64,
    buf: &mut [u8],
) -> io::Result<usize> {
    let mut at = 0;
    while at < buf.len() {
        let n = st.read_at(f, offset + at as u64, &mut buf[at..])?;
        if n == 0 {
            break;
        }
        at += n;
    }
    Ok(at)
}

/// The input log: append, group-commit, recover, truncate, retain.
pub struct SegmentLog<S: Storage> {
    st: S,
    cfg: LogConfig,
    /// Sorted by first seq; the last one is the current segment (`cur`).
    segments: Vec<Segment>,
    cur: Option<FileId>,
    /// The commit being built: `buf[..buf_len]` are records not yet written, to go at
    /// `buf_off` (a block boundary: the end of the last commit in the current segment),
    /// `buf_first_seq..=buf_last_seq`; the rest of `buf` is zeros.
    buf: AlignedBuf,
    buf_off: u64,
    buf_len: usize,
    buf_first_seq: u64,
    buf_last_seq: u64,
    /// Records a truncation cut from the disk to write again (see `cut_after`), kept here until
    /// they are staged so that a cut that fails part way loses none of them.
    cut_keep: Vec<u8>,
    /// Records appended and not yet copied into `buf`, from `staged_pos`.
    staged: Vec<u8>,
    staged_pos: usize,
    first_seq: u64,
    last_seq: u64,
    last_term: u64,
    durable_seq: u64,
    /// `(term, first seq of that term)`, ascending.
    terms: Vec<(u64, u64)>,
    /// Commits that wrote (for stats and tests).
    commits: u64,
    /// A `truncate_after` that failed part way (the disk may already be cut there): appends and
    /// commits fail until a `truncate_after` completes. The in-memory state is the last one
    /// that held.
    pending_cut: Option<u64>,
    /// Where a spare segment made ahead is announced (`None`: every roll makes its segment).
    spare: Option<Arc<SpareSlot>>,
    /// Whether a roll with no spare ready zero-fills the segment it makes (with `zero_fill`).
    /// Off where the committing thread is the sequencing core ([`crate::uring::UringLog`]):
    /// see [`SegmentLog::zero_fill_inline`].
    zero_fill_inline: bool,
    /// Commits handed out by [`SegmentLog::start_commit`], oldest first, until they and every
    /// one before them completed; each owns its buffer while the kernel may write from it.
    flights: VecDeque<Flight>,
    /// Zeroed commit buffers to build the next commits in.
    free_bufs: Vec<AlignedBuf>,
    /// The id of the next commit handed out.
    next_flight: u64,
}

#[derive(Debug)]
struct Flight {
    w: CommitWrite,
    buf: AlignedBuf,
    state: FlightState,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FlightState {
    Writing,
    Done,
    Failed,
}

/// A commit handed to an asynchronous writer by [`SegmentLog::start_commit`]: the whole
/// blocks [`SegmentLog::flight_bytes`] go at `offset` of `file`; then
/// [`SegmentLog::finish_commit`] says how it went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommitWrite {
    /// Names the commit to [`SegmentLog::finish_commit`] (and an io_uring completion).
    pub id: u64,
    pub file: FileId,
    pub offset: u64,
    pub len: usize,
    /// The last seq of the commit (durable once the write completes).
    pub last_seq: u64,
}

/// The next segment, made ahead of the roll that needs it: a file [`SPARE_NAME`] that someone
/// other than the committing thread preallocates and zero-fills ([`make_spare`]; the threaded
/// writer runs a preparer thread), and that a roll renames into place. Without it a roll
/// preallocated and zeroed a whole segment between two commits: 21-256 ms per roll measured
/// (`log-bench`), against well under a millisecond for the rename.
#[derive(Debug, Default)]
pub struct SpareSlot {
    /// [`SPARE_NAME`] is complete and durable; the log may take it (and clears this).
    pub ready: AtomicBool,
    /// The preparer makes no spare while set: a node replaying its log at start holds it, so
    /// that zero-filling a segment (64 MiB written and flushed) does not take CPU and disk from
    /// the replay; a roll meanwhile makes its own segment.
    pub held: AtomicBool,
}

impl SpareSlot {
    /// A slot whose preparer waits until [`SpareSlot::release`].
    pub fn held() -> SpareSlot {
        SpareSlot {
            ready: AtomicBool::new(false),
            held: AtomicBool::new(true),
        }
    }

    /// Lets the preparer make spares.
    pub fn release(&self) {
        self.held.store(false, Ordering::Release);
    }
}

/// The name of the spare segment (not a segment name: recovery ignores it; a leftover one is
/// made again from scratch).
pub const SPARE_NAME: &str = "next-segment.tmp";

/// Makes the spare segment: preallocates [`SPARE_NAME`] to a segment's size and, with
/// `zero_fill`, writes zeros over it (checking `stop` between writes), then syncs it; it is
/// announced ready only after that (the caller's `SpareSlot::ready`).
pub fn make_spare<S: Storage>(st: &mut S, cfg: &LogConfig, stop: &AtomicBool) -> io::Result<()> {
    let f = st.open(SPARE_NAME, true)?;
    let res = st
        .allocate(f, cfg.segment_bytes)
        .and_then(|()| zero_fill(st, f, cfg, stop))
        .and_then(|()| st.flush(f));
    st.close(f);
    res
}

/// Bytes per write of a new segment's zero-fill.
pub const ZERO_FILL_WRITE_BYTES: usize = 256 << 10;

/// With `zero_fill`, writes zeros over the whole of segment file `f` (checking `stop` between
/// writes) and makes the file durable. The zeros go with [`Storage::write_unsynced`] and one
/// [`Storage::sync`] at the end: the file is no segment yet (nothing reads it as log data until
/// this returns), so one cache flush and one journal commit for the whole file, not one per
/// write as the log's O_DSYNC descriptor would do. Each write is [`ZERO_FILL_WRITE_BYTES`]:
/// a commit that reaches the disk meanwhile queues behind at most one of them
/// (ARCHITECTURE.md, "Measured (e2e-bench)").
fn zero_fill<S: Storage>(
    st: &mut S,
    f: FileId,
    cfg: &LogConfig,
    stop: &AtomicBool,
) -> io::Result<()> {
    if !cfg.zero_fill {
        return Ok(());
    }
    let zeros = AlignedBuf::new(ZERO_FILL_WRITE_BYTES.min(cfg.write_buf_bytes));
    let mut at = 0u64;
    while at < cfg.segment_bytes {
        if stop.load(Ordering::Relaxed) {
            return Err(io::Error::other("stopped"));
        }
        let n = ((cfg.segment_bytes - at) as usize).min(zeros.len());
        st.write_unsynced(f, at, &zeros[..n])?;
        at += n as u64;
    }
    st.sync(f)
}

impl<S: Storage> std::fmt::Debug for SegmentLog<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentLog")
            .field("segments", &self.segments.len())
            .field("last_seq", &self.last_seq)
            .field("durable_seq", &self.durable_seq)
            .field("last_term", &self.last_term)
            .finish()
    }
}

impl<S: Storage> SegmentLog<S> {
    /// Opens the log in `st`, recovering it (see the module docs).
    pub fn open(st: S, cfg: LogConfig) -> Result<(SegmentLog<S>, Recovery), LogError> {
        Self::open_trusting(st, cfg, 0)
    }

    /// [`SegmentLog::open`] for an owner that holds the state through `trusted_through` already
    /// (a node restored from a snapshot at that seq) and reads no record at or before it: a
    /// segment whose records all lie at or before it, other than the last, is not read front
    /// to back; its first record is frame-checked (its seq must be the one its name gives) and
    /// so is the next segment's, and when the two are of the same term (terms never go back, so
    /// every record of the segment is of that term) the segment is taken as ending where the
    /// next begins. Otherwise (a term starts inside it, or either first record fails) it is
    /// scanned as `open` does. The segments not scanned are counted in
    /// [`Recovery::unchecked`]; [`check_trusted`] scans them (the node does, once its replay is
    /// done, and at once when it cannot start from that snapshot after all). Every segment
    /// after `trusted_through`, the tail that is replayed, is recovered exactly as by `open`:
    /// a torn or damaged tail is found the same way. `trusted_through` 0 is `open`.
    pub fn open_trusting(
        mut st: S,
        cfg: LogConfig,
        trusted_through: u64,
    ) -> Result<(SegmentLog<S>, Recovery), LogError> {
        let cfg = cfg.normalised();
        if let Some((segment, format)) = old_format_segment(&mut st)? {
            return Err(LogError::OldFormat { segment, format });
        }
        let segs = list_segments(&mut st)?;
        let mut log = SegmentLog {
            st,
            cfg,
            segments: Vec::new(),
            cur: None,
            buf: AlignedBuf::new(cfg.write_buf_bytes + BLOCK),
            buf_off: 0,
            buf_len: 0,
            buf_first_seq: 0,
            buf_last_seq: 0,
            cut_keep: Vec::new(),
            staged: Vec::with_capacity(cfg.write_buf_bytes),
            staged_pos: 0,
            first_seq: 0,
            last_seq: 0,
            last_term: 0,
            durable_seq: 0,
            terms: Vec::new(),
            commits: 0,
            pending_cut: None,
            spare: None,
            flights: VecDeque::new(),
            free_bufs: Vec::new(),
            next_flight: 0,
            zero_fill_inline: true,
        };
        let mut rec = Recovery {
            segments: segs.len(),
            ..Recovery::default()
        };
        let mut expected: Option<u64> = None;
        let mut scan_buf = Vec::new();
        let n = segs.len();
        let light = light_terms(&mut log.st, &segs, trusted_through, &mut scan_buf)?;
        for (i, seg) in segs.iter().enumerate() {
            let is_last = i + 1 == n;
            if let Some(e) = expected {
                if seg.first_seq != e {
                    return Err(LogError::Corrupt {
                        segment: seg.name.clone(),
                        offset: 0,
                        seq: e,
                        reason: format!("segment starts at seq {}", seg.first_seq),
                    });
                }
            }
            match light.get(i).copied().flatten() {
                Some(term) if term >= log.last_term => {
                    // Every record is of `term` and the next segment starts where this one
                    // ends (see `open_trusting`).
                    if log.terms.last().map(|x| x.0) != Some(term) {
                        log.terms.push((term, seg.first_seq));
                    }
                    if log.first_seq == 0 {
                        log.first_seq = seg.first_seq;
                    }
                    let next = segs[i + 1].first_seq;
                    log.last_seq = next - 1;
                    log.last_term = term;
                    expected = Some(next);
                    log.segments.push(seg.clone());
                    rec.unchecked += 1;
                    continue;
                }
                _ => {}
            }
            let f = log.st.open(&seg.name, false)?;
            let mut cur = Cursor::new(seg.first_seq, log.last_term);
            let scan = scan_file(&mut log.st, f, &mut scan_buf, &mut cur)?;
            if let Some((off, reason)) = scan.bad {
                // The slow path, once: the whole segment, to look for a complete commit after
                // the bad bytes and for the extent of the garbage.
                let bytes = read_all(&mut log.st, f)?;
                let off = off as usize;
                let after = complete_commit_after(&bytes, off, cur.commit_first);
                if !is_last || after.is_some() {
                    let reason = match after {
                        Some((o, first, last)) => format!(
                            "{reason}; a complete later commit (seq {first}..={last}) follows at \
                             offset {o}: records that were durable are damaged"
                        ),
                        None => format!("{reason}; later segments follow"),
                    };
                    return Err(LogError::Corrupt {
                        segment: seg.name.clone(),
                        offset: off as u64,
                        seq: cur.next_seq,
                        reason,
                    });
                }
                // A torn last commit (or commits): back to the end of the last complete one.
                cur.rewind_to_done();
                let cut = cur.done.off as usize;
                let last_nonzero = bytes.iter().rposition(|&b| b != 0).map_or(cut, |p| p + 1);
                rec.torn = Some((
                    seg.name.clone(),
                    cut as u64,
                    last_nonzero.saturating_sub(cut) as u64,
                ));
                log.st.truncate(f, cut as u64)?;
            }
            let end = align_up(cur.done.off);
            for t in cur.terms {
                if log.terms.last().map(|x| x.0) != Some(t.0) {
                    log.terms.push(t);
                }
            }
            if cur.next_seq > seg.first_seq {
                if log.first_seq == 0 {
                    log.first_seq = seg.first_seq;
                }
                log.last_seq = cur.next_seq - 1;
                log.last_term = cur.last_term;
            }
            expected = Some(cur.next_seq);
            log.segments.push(seg.clone());
            if is_last {
                log.st.allocate(f, cfg.segment_bytes)?;
                log.cur = Some(f);
                log.buf_off = end;
                log.buf_len = 0;
            } else {
                log.st.close(f);
            }
        }
        if log.last_seq == 0 {
            // Segments without records (a roll that crashed): start from the first name.
            if let Some(s) = log.segments.first() {
                log.last_seq = s.first_seq.saturating_sub(1);
            }
        }
        log.durable_seq = log.last_seq;
        log.buf_last_seq = log.last_seq;
        rec.first_seq = log.first_seq;
        rec.last_seq = log.last_seq;
        rec.last_term = log.last_term;
        Ok((log, rec))
    }

    pub fn config(&self) -> LogConfig {
        self.cfg
    }

    /// The highest seq appended (staged or written).
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// The term of the highest seq appended.
    pub fn last_term(&self) -> u64 {
        self.last_term
    }

    /// The first seq still in the log (0: empty).
    pub fn first_seq(&self) -> u64 {
        self.first_seq
    }

    /// The highest seq on disk.
    pub fn durable_seq(&self) -> u64 {
        self.durable_seq
    }

    /// `(term, first seq)` of every term in the log, ascending.
    pub fn terms(&self) -> &[(u64, u64)] {
        &self.terms
    }

    /// Writes that reached the disk so far.
    pub fn commits(&self) -> u64 {
        self.commits
    }

    /// Whether appended records wait for a commit.
    pub fn has_staged(&self) -> bool {
        self.staged_pos < self.staged.len() || self.buf_len > 0
    }

    /// The storage (for readers sharing it).
    pub fn storage(&self) -> &S {
        &self.st
    }

    /// The last seq of `term` in this log, as the term history says (records of a term are the
    /// same on every node that has them). `None`: no record of `term` or of any later term.
    pub fn last_seq_of_term(&self, term: u64) -> u64 {
        last_seq_of_term(&self.terms, self.last_seq, term)
    }

    /// Stages one encoded record (`tpx_wire::encode_record`'s output); it must continue the log.
    pub fn append(&mut self, rec: &[u8]) -> Result<u64, LogError> {
        self.check_no_pending_cut()?;
        let (seq, term, len) = record_seq_term(rec).ok_or(LogError::BadRecord)?;
        if len != rec.len() {
            return Err(LogError::BadRecord);
        }
        if seq != self.last_seq + 1 {
            return Err(LogError::OutOfOrder {
                expected_seq: self.last_seq + 1,
                got_seq: seq,
            });
        }
        if term < self.last_term {
            return Err(LogError::TermWentBack {
                last_term: self.last_term,
                got_term: term,
            });
        }
        if term > self.last_term || self.terms.is_empty() {
            self.terms.push((term, seq));
        }
        self.staged.extend_from_slice(rec);
        if self.first_seq == 0 {
            self.first_seq = seq;
        }
        self.last_seq = seq;
        self.last_term = term;
        Ok(seq)
    }

    /// Appends many records back to back (as the threaded writer hands them over).
    pub fn append_many(&mut self, mut recs: &[u8]) -> Result<u64, LogError> {
        while !recs.is_empty() {
            let (_, _, len) = record_seq_term(recs).ok_or(LogError::BadRecord)?;
            self.append(&recs[..len])?;
            recs = &recs[len..];
        }
        Ok(self.last_seq)
    }

    /// Writes everything staged (one write per segment touched and per full buffer) and
    /// flushes; returns the durable seq. On an error the records stay staged.
    pub fn commit(&mut self) -> Result<u64, LogError> {
        self.check_no_pending_cut()?;
        self.check_none_in_flight()?;
        self.commit_inner()
    }

    /// Bytes appended and not yet in a commit that was started.
    pub fn staged_bytes(&self) -> usize {
        self.staged.len() - self.staged_pos
    }

    fn check_none_in_flight(&self) -> Result<(), LogError> {
        if self.flights.is_empty() {
            Ok(())
        } else {
            Err(LogError::Io(io::Error::other(
                "commits are in flight (finish them first)",
            )))
        }
    }

    /// Commits handed out and not yet finished (with every one before them).
    pub fn in_flight(&self) -> usize {
        self.flights.len()
    }

    /// The asynchronous commit, first half: builds the next commit from what is staged (at
    /// most one write buffer, and never across a segment's end: what does not fit stays staged
    /// for the next one) with its trailer and padding, in its own buffer, at the first block
    /// after the previous commit (in flight or not), and hands it out. The caller writes
    /// [`SegmentLog::flight_bytes`] at `offset` of `file` (or has
    /// [`SegmentLog::write_in_flight`] do it through the storage) and then calls
    /// [`SegmentLog::finish_commit`]. At most `max_in_flight` commits are in flight; a roll to
    /// the next segment waits until none is (commits in flight together never span two
    /// segments). A commit handed out while others are in flight says in its trailer how many
    /// records before it were not durable yet (recovery's rule, see the module docs).
    /// `None`: nothing to start now.
    pub fn start_commit(&mut self, max_in_flight: usize) -> Result<Option<CommitWrite>, LogError> {
        self.check_no_pending_cut()?;
        if self.flights.len() >= max_in_flight.max(1)
            || self.flights.iter().any(|f| f.state == FlightState::Failed)
        {
            return Ok(None);
        }
        let max = self.cfg.write_buf_bytes;
        while self.staged_pos < self.staged.len() {
            let rest = &self.staged[self.staged_pos..];
            let (seq, _, len) = record_seq_term(rest).ok_or(LogError::BadRecord)?;
            let end_in_file = self.buf_off + (self.buf_len + len + TRAILER_LEN) as u64;
            if self.cur.is_none() || end_in_file > self.cfg.segment_bytes {
                if self.buf_len > 0 || !self.flights.is_empty() {
                    break;
                }
                self.roll(seq)?;
            }
            if self.buf_len + len + TRAILER_LEN > max {
                break;
            }
            if self.buf_len == 0 {
                self.buf_first_seq = seq;
            }
            let rest = &self.staged[self.staged_pos..self.staged_pos + len];
            self.buf[self.buf_len..self.buf_len + len].copy_from_slice(rest);
            self.buf_len += len;
            self.buf_last_seq = seq;
            self.staged_pos += len;
        }
        if self.staged_pos == self.staged.len() {
            self.staged.clear();
            self.staged_pos = 0;
        }
        let (Some(file), true) = (self.cur, self.buf_len > 0) else {
            return Ok(None);
        };
        let at = self.buf_len;
        let unacked = (self.buf_first_seq - 1 - self.durable_seq).min(u64::from(u32::MAX)) as u32;
        let trailer = encode_trailer_unacked(self.buf_first_seq, self.buf_last_seq, unacked);
        self.buf[at..at + TRAILER_LEN].copy_from_slice(&trailer);
        let len = (at + TRAILER_LEN).div_ceil(BLOCK) * BLOCK;
        let w = CommitWrite {
            id: self.next_flight,
            file,
            offset: self.buf_off,
            len,
            last_seq: self.buf_last_seq,
        };
        self.next_flight += 1;
        let fresh = self
            .free_bufs
            .pop()
            .unwrap_or_else(|| AlignedBuf::new(self.cfg.write_buf_bytes + BLOCK));
        let buf = std::mem::replace(&mut self.buf, fresh);
        self.flights.push_back(Flight {
            w,
            buf,
            state: FlightState::Writing,
        });
        self.buf_off += len as u64;
        self.buf_len = 0;
        Ok(Some(w))
    }

    fn flight(&self, id: u64) -> Option<&Flight> {
        self.flights.iter().find(|f| f.w.id == id)
    }

    /// The blocks of commit `id` in flight (empty: no such commit). Their address is stable
    /// until it is finished with `Ok` (an asynchronous write may point at them).
    pub fn flight_bytes(&self, id: u64) -> &[u8] {
        self.flight(id).map_or(&[], |f| &f.buf[..f.w.len])
    }

    /// Writes commit `w` in flight through the storage and flushes (a synchronous writer for
    /// the asynchronous commit: a storage without a direct descriptor, tests).
    pub fn write_in_flight(&mut self, w: &CommitWrite) -> io::Result<()> {
        let Some(f) = self.flights.iter().find(|f| f.w.id == w.id) else {
            return Ok(());
        };
        self.st
            .write_at(w.file, w.offset, &f.buf[..w.len])
            .and_then(|()| self.st.flush(w.file))
    }

    /// Commits whose write failed, oldest first: to write again, unchanged, at the same offset
    /// (nothing after them becomes durable until they are), then [`SegmentLog::retrying`].
    pub fn failed_commits(&self) -> Vec<CommitWrite> {
        self.flights
            .iter()
            .filter(|f| f.state == FlightState::Failed)
            .map(|f| f.w)
            .collect()
    }

    /// Commit `id`, which had failed, is being written again.
    pub fn retrying(&mut self, id: u64) {
        if let Some(f) = self.flights.iter_mut().find(|f| f.w.id == id) {
            f.state = FlightState::Writing;
        }
    }

    /// The asynchronous commit, second half: `res` is how the write of commit `id` went. The
    /// durable seq moves over every commit that completed with all the ones before it (returns
    /// it). An error leaves the commit to be written again ([`SegmentLog::failed_commits`]).
    pub fn finish_commit(&mut self, id: u64, res: io::Result<()>) -> Result<u64, LogError> {
        let Some(f) = self.flights.iter_mut().find(|f| f.w.id == id) else {
            return Ok(self.durable_seq);
        };
        if let Err(e) = res {
            f.state = FlightState::Failed;
            return Err(LogError::Io(e));
        }
        f.state = FlightState::Done;
        while self.flights.front().map(|f| f.state) == Some(FlightState::Done) {
            let Some(mut f) = self.flights.pop_front() else {
                break;
            };
            self.commits += 1;
            self.durable_seq = f.w.last_seq;
            f.buf[..f.w.len].fill(0);
            self.free_bufs.push(f.buf);
        }
        Ok(self.durable_seq)
    }

    fn commit_inner(&mut self) -> Result<u64, LogError> {
        let max = self.cfg.write_buf_bytes;
        while self.staged_pos < self.staged.len() {
            let rest = &self.staged[self.staged_pos..];
            let (seq, _, len) = record_seq_term(rest).ok_or(LogError::BadRecord)?;
            let end_in_file = self.buf_off + (self.buf_len + len + TRAILER_LEN) as u64;
            if self.cur.is_none() || end_in_file > self.cfg.segment_bytes {
                if self.buf_len > 0 {
                    self.write_buf()?;
                }
                self.roll(seq)?;
            }
            if self.buf_len + len + TRAILER_LEN > max {
                self.write_buf()?;
            }
            if self.buf_len == 0 {
                self.buf_first_seq = seq;
            }
            let rest = &self.staged[self.staged_pos..self.staged_pos + len];
            self.buf[self.buf_len..self.buf_len + len].copy_from_slice(rest);
            self.buf_len += len;
            self.buf_last_seq = seq;
            self.staged_pos += len;
        }
        self.staged.clear();
        self.staged_pos = 0;
        if self.buf_len > 0 {
            self.write_buf()?;
        }
        Ok(self.durable_seq)
    }

    /// Writes the commit in `buf` (records, trailer, padding to the block boundary) at
    /// `buf_off` and flushes; the next commit starts after its padding.
    fn write_buf(&mut self) -> io::Result<()> {
        let Some(f) = self.cur else { return Ok(()) };
        let at = self.buf_len;
        let trailer = encode_trailer(self.buf_first_seq, self.buf_last_seq);
        self.buf[at..at + TRAILER_LEN].copy_from_slice(&trailer);
        let end = (at + TRAILER_LEN).div_ceil(BLOCK) * BLOCK;
        let res = self
            .st
            .write_at(f, self.buf_off, &self.buf[..end])
            .and_then(|()| self.st.flush(f));
        if let Err(e) = res {
            // Retried later, maybe with more records: the trailer goes where they end.
            self.buf[at..at + TRAILER_LEN].fill(0);
            return Err(e);
        }
        self.commits += 1;
        self.durable_seq = self.buf_last_seq;
        self.buf[..end].fill(0);
        self.buf_off += end as u64;
        self.buf_len = 0;
        Ok(())
    }

    /// From now on a roll takes the spare segment announced in `slot` when it is ready.
    pub fn use_spares(&mut self, slot: Arc<SpareSlot>) {
        self.spare = Some(slot);
    }

    /// Whether a roll that finds no spare ready zero-fills the segment it makes (default on,
    /// with `zero_fill`). Off, it only preallocates it: its O_DSYNC writes then convert
    /// unwritten extents (slower commits, on that one segment) instead of the roll writing
    /// and syncing a whole segment of zeros (20-250 ms measured) inside the commit call. The
    /// io_uring log turns it off: its commits run on the sequencing core, which must never
    /// stop heartbeating and reading its peer for that long (a standby that did took the term).
    pub fn zero_fill_inline(&mut self, on: bool) {
        self.zero_fill_inline = on;
    }

    /// The ready spare renamed to `name` and opened, if there is one.
    fn take_spare(&mut self, name: &str) -> Option<FileId> {
        let slot = self.spare.clone()?;
        if !slot.ready.load(Ordering::Acquire) {
            return None;
        }
        let f = self
            .st
            .rename(SPARE_NAME, name)
            .and_then(|()| self.st.open(name, false));
        // Released only now: the preparer, once it sees `ready` clear, creates the next spare
        // under the same name, and must never open the file that is becoming this segment.
        slot.ready.store(false, Ordering::Release);
        f.ok()
    }

    fn roll(&mut self, first_seq: u64) -> io::Result<()> {
        let name = segment_name(first_seq);
        if let Some(f) = self.take_spare(&name) {
            return self.use_segment(f, first_seq, name);
        }
        // Bulk work (preallocating and zero-filling a segment) at normal priority, whatever
        // the calling thread's: the log writer is real-time for its commits only.
        let _bulk = crate::process::NormalPriority::enter();
        let f = self.st.open(&name, true)?;
        if let Err(e) = self.st.allocate(f, self.cfg.segment_bytes) {
            self.st.close(f);
            let _ = self.st.remove(&name);
            return Err(e);
        }
        let never = AtomicBool::new(false);
        let fill = if self.zero_fill_inline {
            zero_fill(&mut self.st, f, &self.cfg, &never)
        } else {
            Ok(())
        };
        if let Err(e) = fill {
            self.st.close(f);
            let _ = self.st.remove(&name);
            return Err(e);
        }
        self.use_segment(f, first_seq, name)
    }

    fn use_segment(&mut self, f: FileId, first_seq: u64, name: String) -> io::Result<()> {
        if let Some(old) = self.cur.take() {
            self.st.close(old);
        }
        self.cur = Some(f);
        if self.segments.last().map(|s| s.first_seq) != Some(first_seq) {
            self.segments.push(Segment { first_seq, name });
        }
        self.buf[..self.buf_len].fill(0);
        self.buf_off = 0;
        self.buf_len = 0;
        Ok(())
    }

    fn check_no_pending_cut(&self) -> Result<(), LogError> {
        match self.pending_cut {
            Some(seq) => Err(LogError::Io(io::Error::other(format!(
                "truncation after seq {seq} not finished"
            )))),
            None => Ok(()),
        }
    }

    /// Drops every record after `seq` (a returning old primary cutting what the new term does not
    /// hold). Staged records up to `seq` are written first; the cut is durable on return.
    ///
    /// On an error nothing in memory changed (`last_seq` etc. are as before) but the disk may be
    /// cut part way: appends and commits fail until a retried `truncate_after` succeeds (it cuts
    /// at the lowest seq asked since). On success `last_seq()` is at most `seq`.
    pub fn truncate_after(&mut self, seq: u64) -> Result<(), LogError> {
        self.check_none_in_flight()?;
        let seq = match self.pending_cut {
            Some(p) => p.min(seq),
            None if seq >= self.last_seq => return Ok(()),
            None => {
                // Records up to `seq` that are only staged survive the cut: write them first.
                if self.durable_seq < seq && self.has_staged() {
                    self.commit()?;
                }
                seq
            }
        };
        self.pending_cut = Some(seq);
        self.cut_after(seq)?;
        self.pending_cut = None;
        Ok(())
    }

    /// The records not yet written (the commit being built, then the staged ones), in order.
    fn unwritten(&self) -> Vec<u8> {
        let mut v = self.buf[..self.buf_len].to_vec();
        v.extend_from_slice(&self.staged[self.staged_pos..]);
        v
    }

    /// Cuts the log after `seq`. The segments after it are removed; in the kept segment the
    /// commit holding the first record after `seq` is cut off whole (the file is truncated at
    /// its first block, so no durable block is rewritten) and its records up to `seq` are
    /// written again as a new commit there. Those records are kept in memory (`cut_keep`, then
    /// staged) from before the truncation, so a cut that fails part way and is retried loses
    /// none of them; a crash between the truncation and the new commit does (the node then
    /// recovers a log that ends before them: the new term holds them, it catches up).
    fn cut_after(&mut self, seq: u64) -> Result<(), LogError> {
        if let Some(f) = self.cur.take() {
            self.st.close(f);
        }
        while let Some(s) = self.segments.last() {
            if s.first_seq <= seq && s.first_seq > 0 {
                break;
            }
            let name = s.name.clone();
            self.st.remove(&name)?;
            self.segments.pop();
        }
        let Some(seg) = self.segments.last().cloned() else {
            self.staged.clear();
            self.staged_pos = 0;
            self.buf.fill(0);
            self.buf_off = 0;
            self.buf_len = 0;
            self.cut_keep.clear();
            self.terms.retain(|&(_, s)| s <= seq);
            self.last_seq = seq;
            self.durable_seq = seq;
            self.buf_last_seq = seq;
            self.first_seq = 0;
            self.last_term = 0;
            return Ok(());
        };
        // The fallible steps first; memory changes only once the disk is cut.
        let f = self.st.open(&seg.name, false)?;
        let bytes = read_all(&mut self.st, f)?;
        let (boundary, kept_end, last_before) = cut_point(&bytes, seg.first_seq, seq);
        // What to write again: the cut commit's records up to `seq`, then records a failed
        // earlier attempt cut from the disk, then unwritten ones (each only past the others).
        let mut keep = bytes[boundary..kept_end].to_vec();
        let mut tail = last_record_seq(&keep).unwrap_or(last_before);
        for src in [std::mem::take(&mut self.cut_keep), self.unwritten()] {
            let mut r = &src[..];
            while let Some((s, _, len)) = record_seq_term(r) {
                if s > tail && s <= seq {
                    keep.extend_from_slice(&r[..len]);
                    tail = s;
                }
                r = &r[len..];
            }
        }
        self.cut_keep = keep;
        self.st.truncate(f, boundary as u64)?;
        self.st.allocate(f, self.cfg.segment_bytes)?;
        // The disk is cut at `boundary`: the log ends at `last_before`.
        self.staged.clear();
        self.staged_pos = 0;
        self.buf.fill(0);
        self.buf_off = boundary as u64;
        self.buf_len = 0;
        self.cur = Some(f);
        self.terms.retain(|&(_, s)| s <= last_before);
        self.last_seq = last_before;
        self.last_term = self.terms.last().map_or(0, |t| t.0);
        self.durable_seq = last_before;
        self.buf_last_seq = last_before;
        if self.first_seq > last_before {
            self.first_seq = 0;
        }
        self.pending_cut = None;
        let keep = std::mem::take(&mut self.cut_keep);
        let mut r = &keep[..];
        while let Some((_, _, len)) = record_seq_term(r) {
            self.append(&r[..len])?;
            r = &r[len..];
        }
        // The kept records are staged: the cut is done. If this write fails they stay staged
        // (`durable_seq` below `seq` until a later commit writes them) and that commit reports.
        let _ = self.commit_inner();
        Ok(())
    }

    /// Removes the segments holding only records below `seq` (retention after a snapshot at
    /// `seq - 1`). Never removes the current segment. Returns the segments removed.
    pub fn retain_from(&mut self, seq: u64) -> io::Result<usize> {
        let mut removed = 0;
        while self.segments.len() > 1 && self.segments[1].first_seq <= seq {
            let name = self.segments[0].name.clone();
            self.st.remove(&name)?;
            self.segments.remove(0);
            removed += 1;
        }
        if removed > 0 {
            self.first_seq = self.segments[0].first_seq;
        }
        Ok(removed)
    }

    /// Names of the segments, oldest first.
    pub fn segment_names(&self) -> Vec<String> {
        self.segments.iter().map(|s| s.name.clone()).collect()
    }
}

/// Where to cut a segment's bytes (format 2) so that no record after `seq` is left:
/// `(boundary, kept_end, last_before)`: the commit holding the first record after `seq` starts
/// at `boundary` (or, if there is none, the end of the last commit), its records up to `seq`
/// are `bytes[boundary..kept_end]`, and `last_before` is the last seq before `boundary`.
fn cut_point(bytes: &[u8], first_seq: u64, seq: u64) -> (usize, usize, u64) {
    let mut off = 0;
    let mut boundary = 0;
    let mut last_before = first_seq.saturating_sub(1);
    let mut last = last_before;
    while off + 8 <= bytes.len() && !all_zero(&bytes[off..off + 8]) {
        let rest = &bytes[off..];
        if is_trailer(rest) {
            off = (off + trailer_frame_len(off as u64)).min(bytes.len());
            boundary = off;
            last_before = last;
            continue;
        }
        let Some(len) = check_frame(rest) else { break };
        let (s, _) = seq_term(rest);
        if s > seq {
            break;
        }
        last = s;
        off += len;
    }
    (boundary, off, last_before)
}

/// The seq of the last record in `recs` (records back to back).
fn last_record_seq(mut recs: &[u8]) -> Option<u64> {
    let mut last = None;
    while let Some((s, _, len)) = record_seq_term(recs) {
        last = Some(s);
        recs = &recs[len..];
    }
    last
}

/// The last seq of `term` given a term history (see [`SegmentLog::last_seq_of_term`]): the seq
/// before the first record of the first later term, or `last_seq` if no later term started.
pub fn last_seq_of_term(terms: &[(u64, u64)], last_seq: u64, term: u64) -> u64 {
    match terms.iter().find(|&&(t, _)| t > term) {
        Some(&(_, first)) => first - 1,
        None => last_seq,
    }
}

/// Reads records in order from a log directory, following new segments as they appear. Used
/// for replay at start, for catching a standby up and by tools.
pub struct LogReader<S: Storage> {
    st: S,
    segs: Vec<Segment>,
    /// Index into `segs` of the segment being read.
    idx: usize,
    fid: Option<FileId>,
    /// File offset of `buf[0]`.
    file_off: u64,
    buf: Vec<u8>,
    pos: usize,
    next_seq: u64,
}

impl<S: Storage> std::fmt::Debug for LogReader<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogReader")
            .field("next_seq", &self.next_seq)
            .finish()
    }
}

const READ_CHUNK: usize = 256 << 10;

impl<S: Storage> LogReader<S> {
    /// A reader positioned at the first record of the log. A log of an older format is
    /// refused (an `InvalidData` error holding [`LogError::OldFormat`]), not read as empty.
    pub fn new(mut st: S) -> io::Result<LogReader<S>> {
        if let Some((segment, format)) = old_format_segment(&mut st)? {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                LogError::OldFormat { segment, format },
            ));
        }
        let mut r = LogReader {
            st,
            segs: Vec::new(),
            idx: 0,
            fid: None,
            file_off: 0,
            buf: Vec::new(),
            pos: 0,
            next_seq: 0,
        };
        r.refresh()?;
        r.next_seq = r.segs.first().map_or(1, |s| s.first_seq);
        Ok(r)
    }

    fn refresh(&mut self) -> io::Result<()> {
        let segs = list_segments(&mut self.st)?;
        let cur = self.segs.get(self.idx).map(|s| s.first_seq);
        self.segs = segs;
        if let Some(c) = cur {
            self.idx = self.segs.iter().position(|s| s.first_seq == c).unwrap_or(0);
        }
        Ok(())
    }

    /// The seq the next record will have.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Positions the reader so that the next record returned is `seq`.
    pub fn seek(&mut self, seq: u64) -> Result<(), LogError> {
        self.refresh()?;
        let Some(i) = self.segs.iter().rposition(|s| s.first_seq <= seq) else {
            return Err(LogError::Corrupt {
                segment: String::new(),
                offset: 0,
                seq,
                reason: "seq is before the first segment of the log".into(),
            });
        };
        self.open_segment(i)?;
        self.hop_to(seq)?;
        while self.next_seq < seq {
            if self.next()?.is_none() {
                break;
            }
        }
        Ok(())
    }

    /// Moves over the records of this segment before `seq` by their headers' lengths (no CRC,
    /// no body decode: they are not returned), and over commit trailers. Stops at the first
    /// bytes that are not a record header continuing the seq (the end of the records, a
    /// damaged one), where [`LogReader::next`] takes over and decides, CRC included.
    fn hop_to(&mut self, seq: u64) -> io::Result<()> {
        while self.next_seq < seq {
            self.fill()?;
            let rest = &self.buf[self.pos..];
            if is_trailer(rest) {
                let to = align_up(self.file_off + (self.pos + TRAILER_LEN) as u64);
                let rel = (to - self.file_off) as usize;
                if rel <= self.buf.len() {
                    self.pos = rel;
                } else {
                    self.file_off = to;
                    self.buf.clear();
                    self.pos = 0;
                }
                continue;
            }
            match header_hop(rest) {
                Some((s, len)) if s == self.next_seq => {
                    self.pos += len;
                    self.next_seq += 1;
                }
                _ => return Ok(()),
            }
        }
        Ok(())
    }

    fn open_segment(&mut self, i: usize) -> io::Result<()> {
        if let Some(f) = self.fid.take() {
            self.st.close(f);
        }
        self.idx = i;
        self.fid = Some(self.st.open(&self.segs[i].name, false)?);
        self.file_off = 0;
        self.buf.clear();
        self.pos = 0;
        self.next_seq = self.segs[i].first_seq;
        Ok(())
    }

    /// Fills `buf` so that at least `MAX_RECORD_LEN` bytes follow `pos` (or the file ends).
    fn fill(&mut self) -> io::Result<()> {
        let Some(f) = self.fid else { return Ok(()) };
        if self.buf.len() - self.pos >= MAX_RECORD_LEN {
            return Ok(());
        }
        self.buf.drain(..self.pos);
        self.file_off += self.pos as u64;
        self.pos = 0;
        let have = self.buf.len();
        self.buf.resize(have + READ_CHUNK, 0);
        let n = self
            .st
            .read_at(f, self.file_off + have as u64, &mut self.buf[have..])?;
        self.buf.truncate(have + n);
        Ok(())
    }

    /// The next record, or `None` at the end of what is in the log now (call again later to
    /// see records written since).
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<LogRecord>, LogError> {
        if self.fid.is_none() {
            self.refresh()?;
            if self.segs.is_empty() {
                return Ok(None);
            }
            let i = self
                .segs
                .iter()
                .rposition(|s| s.first_seq <= self.next_seq.max(1))
                .unwrap_or(0);
            let want = self.next_seq;
            self.open_segment(i)?;
            self.hop_to(want)?;
            while self.next_seq < want {
                if self.next()?.is_none() {
                    return Ok(None);
                }
            }
        }
        loop {
            self.fill()?;
            let rest = &self.buf[self.pos..];
            if is_trailer(rest) {
                // The end of a commit: the next one starts at the next block boundary.
                let to = align_up(self.file_off + (self.pos + TRAILER_LEN) as u64);
                let rel = (to - self.file_off) as usize;
                if rel <= self.buf.len() {
                    self.pos = rel;
                } else {
                    self.file_off = to;
                    self.buf.clear();
                    self.pos = 0;
                }
                continue;
            }
            let at_zero = rest.len() < 8 || all_zero(&rest[..8]);
            if !at_zero {
                match decode_record(rest) {
                    Ok((rec, len)) if rec.meta.seq == self.next_seq => {
                        self.pos += len;
                        self.next_seq += 1;
                        return Ok(Some(rec));
                    }
                    Ok((rec, _)) => {
                        return Err(LogError::Corrupt {
                            segment: self.segs[self.idx].name.clone(),
                            offset: self.file_off + self.pos as u64,
                            seq: self.next_seq,
                            reason: format!("record has seq {}", rec.meta.seq),
                        })
                    }
                    Err(_) => {}
                }
            }
            // End of this segment's records (or a record still being written): is there a
            // next segment starting right here?
            self.refresh()?;
            match self.segs.get(self.idx + 1) {
                Some(s) if s.first_seq == self.next_seq => {
                    let i = self.idx + 1;
                    self.open_segment(i)?;
                }
                _ => {
                    // Drop what was read past the last record so a later call re-reads it.
                    self.file_off += self.pos as u64;
                    self.buf.clear();
                    self.pos = 0;
                    return Ok(None);
                }
            }
        }
    }
}

pub use crate::replay::replay;
