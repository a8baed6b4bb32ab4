//! The input log: preallocated segment files of `tpx_wire::log_record` records, written in
//! group commits of whole 4 KiB blocks, recovered by scanning.
//!
//! # On disk
//!
//! A log is a directory of segments named `{first_seq:020}.seg`, each preallocated to
//! `segment_bytes` (`fallocate`), holding records back to back from offset 0 with no gap in
//! `seq`; the unused end of a segment is zeros. A record that does not fit in what is left of
//! a segment starts the next one.
//!
//! # Writing
//!
//! [`SegmentLog::append`] stages encoded records in memory; [`SegmentLog::commit`] copies them
//! into a block-aligned buffer and writes the blocks from the one holding the first unwritten
//! byte to the one holding the last (whole blocks, so O_DIRECT works; the partly filled last
//! block is written again, with more records, by the next commit), then flushes. Everything
//! staged since the previous commit goes in one write: a group commit. [`SegmentLog::durable_seq`]
//! is the last record of the last commit that returned `Ok`. A failed write (ENOSPC, EIO)
//! leaves the records staged and the durable position where it was; `commit` retries them.
//!
//! # Recovery
//!
//! [`SegmentLog::open`] reads every segment front to back in 1 MiB reads (one buffer, reused)
//! and frame-checks every record ([`crate::scan`]: length, header, reserved bytes, CRC32C with
//! the hardware instruction, seq continuity, term order; the body is decoded later, by
//! [`replay`], which names a record whose body does not decode). A record that fails (bad
//! length, CRC mismatch, cut short) or a run of non-zero bytes where the zeros of the unused
//! end should be is a *torn tail* if it is in the last segment and no valid record follows it anywhere
//! in that segment: the tail is cut off (the file is truncated there and preallocated again, so
//! the garbage is gone for good). Anywhere else it is corruption in the middle of the log and
//! `open` refuses with [`LogError::Corrupt`], naming the segment, the offset and the seq the
//! record should have had.

use std::io;

use tpx_wire::log_record::{decode_record, LogRecord, MAX_RECORD_LEN, RECORD_HEADER_LEN};

use crate::scan::{all_zero, check_run, Cursor, Stop};
use crate::storage::{read_all, AlignedBuf, FileId, Storage, BLOCK};

/// File name suffix of log segments.
pub const SEGMENT_SUFFIX: &str = ".seg";

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

/// Whether any valid record starts at an 8-byte-aligned offset after `off`.
fn valid_record_after(bytes: &[u8], off: usize) -> Option<(usize, u64)> {
    let mut o = (off + 8) & !7;
    while o + RECORD_HEADER_LEN <= bytes.len() {
        if let Ok((rec, _)) = decode_record(&bytes[o..]) {
            return Some((o, rec.meta.seq));
        }
        o += 8;
    }
    None
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

/// The result of scanning one segment file.
struct FileScan {
    /// Offset after the last valid record.
    end: u64,
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
        let (n, stop) = check_run(&buf[pos..have], eof, cur);
        pos += n;
        let at = base + pos as u64;
        match stop {
            Stop::NeedMore => continue,
            Stop::Bad(reason) => {
                return Ok(FileScan {
                    end: at,
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
                let bad = (!zero).then(|| (at, "non-zero bytes after the last record".to_string()));
                return Ok(FileScan { end: at, bad });
            }
        }
    }
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
    /// Block-aligned window onto the current segment: `buf[..buf_len]` is the file's bytes
    /// from `buf_off`; `buf[..written_len]` is on disk; the rest of `buf` is zeros.
    buf: AlignedBuf,
    buf_off: u64,
    buf_len: usize,
    written_len: usize,
    buf_last_seq: u64,
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
    pub fn open(mut st: S, cfg: LogConfig) -> Result<(SegmentLog<S>, Recovery), LogError> {
        let cfg = cfg.normalised();
        let segs = list_segments(&mut st)?;
        let mut log = SegmentLog {
            st,
            cfg,
            segments: Vec::new(),
            cur: None,
            buf: AlignedBuf::new(cfg.write_buf_bytes + BLOCK),
            buf_off: 0,
            buf_len: 0,
            written_len: 0,
            buf_last_seq: 0,
            staged: Vec::with_capacity(cfg.write_buf_bytes),
            staged_pos: 0,
            first_seq: 0,
            last_seq: 0,
            last_term: 0,
            durable_seq: 0,
            terms: Vec::new(),
            commits: 0,
            pending_cut: None,
        };
        let mut rec = Recovery {
            segments: segs.len(),
            ..Recovery::default()
        };
        let mut expected: Option<u64> = None;
        let mut scan_buf = Vec::new();
        let n = segs.len();
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
            let f = log.st.open(&seg.name, false)?;
            let mut cur = Cursor::new(seg.first_seq, log.last_term);
            let scan = scan_file(&mut log.st, f, &mut scan_buf, &mut cur)?;
            let mut end = scan.end as usize;
            if let Some((off, reason)) = scan.bad {
                // The slow path, once: the whole segment, to look for valid records after the
                // bad bytes and for the extent of the garbage.
                let bytes = read_all(&mut log.st, f)?;
                let off = off as usize;
                let after = valid_record_after(&bytes, off);
                if !is_last || after.is_some() {
                    let reason = match after {
                        Some((o, s)) => {
                            format!("{reason}; a valid record (seq {s}) follows at offset {o}")
                        }
                        None => format!("{reason}; later segments follow"),
                    };
                    return Err(LogError::Corrupt {
                        segment: seg.name.clone(),
                        offset: off as u64,
                        seq: cur.next_seq,
                        reason,
                    });
                }
                let last_nonzero = bytes.iter().rposition(|&b| b != 0).map_or(off, |p| p + 1);
                rec.torn = Some((seg.name.clone(), off as u64, (last_nonzero - off) as u64));
                log.st.truncate(f, off as u64)?;
                end = off;
            }
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
                let block = end / BLOCK * BLOCK;
                log.buf_off = block as u64;
                log.buf_len = end - block;
                log.written_len = log.buf_len;
                let got = read_full(&mut log.st, f, block as u64, &mut log.buf[..end - block])?;
                if got != end - block {
                    return Err(LogError::Io(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "segment shorter than its records",
                    )));
                }
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
        self.staged_pos < self.staged.len() || self.written_len < self.buf_len
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
        while self.staged_pos < self.staged.len() {
            let rest = &self.staged[self.staged_pos..];
            let (seq, _, len) = record_seq_term(rest).ok_or(LogError::BadRecord)?;
            let end_in_file = self.buf_off + (self.buf_len + len) as u64;
            if self.cur.is_none() || end_in_file > self.cfg.segment_bytes {
                if self.written_len < self.buf_len {
                    self.write_buf()?;
                }
                self.roll(seq)?;
            }
            if self.buf_len + len > self.buf.len() {
                self.write_buf()?;
            }
            let rest = &self.staged[self.staged_pos..self.staged_pos + len];
            self.buf[self.buf_len..self.buf_len + len].copy_from_slice(rest);
            self.buf_len += len;
            self.buf_last_seq = seq;
            self.staged_pos += len;
        }
        self.staged.clear();
        self.staged_pos = 0;
        if self.written_len < self.buf_len {
            self.write_buf()?;
        }
        Ok(self.durable_seq)
    }

    fn write_buf(&mut self) -> io::Result<()> {
        let Some(f) = self.cur else { return Ok(()) };
        let start = self.written_len / BLOCK * BLOCK;
        let end = self.buf_len.div_ceil(BLOCK) * BLOCK;
        self.st
            .write_at(f, self.buf_off + start as u64, &self.buf[start..end])?;
        self.st.flush(f)?;
        self.commits += 1;
        self.written_len = self.buf_len;
        self.durable_seq = self.buf_last_seq;
        let keep = self.buf_len / BLOCK * BLOCK;
        if keep > 0 {
            let old = self.buf_len;
            self.buf.copy_within(keep..old, 0);
            self.buf_len = old - keep;
            self.buf[self.buf_len..old].fill(0);
            self.buf_off += keep as u64;
            self.written_len = self.buf_len;
        }
        Ok(())
    }

    fn roll(&mut self, first_seq: u64) -> io::Result<()> {
        let name = segment_name(first_seq);
        let f = self.st.open(&name, true)?;
        if let Err(e) = self.st.allocate(f, self.cfg.segment_bytes) {
            self.st.close(f);
            let _ = self.st.remove(&name);
            return Err(e);
        }
        if self.cfg.zero_fill {
            let zeros = AlignedBuf::new(self.cfg.write_buf_bytes);
            let mut at = 0u64;
            while at < self.cfg.segment_bytes {
                let n = ((self.cfg.segment_bytes - at) as usize).min(zeros.len());
                if let Err(e) = self.st.write_at(f, at, &zeros[..n]) {
                    self.st.close(f);
                    let _ = self.st.remove(&name);
                    return Err(e);
                }
                at += n as u64;
            }
            self.st.flush(f)?;
        }
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
        self.written_len = 0;
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
        // The fallible steps first; memory changes only once the disk is cut.
        let kept = match self.segments.last().cloned() {
            None => None,
            Some(seg) => {
                let f = self.st.open(&seg.name, false)?;
                let bytes = read_all(&mut self.st, f)?;
                let mut off = 0;
                let mut term = 0;
                let mut last = seg.first_seq.saturating_sub(1);
                while off < bytes.len() {
                    match decode_record(&bytes[off..]) {
                        Ok((r, len)) if r.meta.seq <= seq => {
                            term = r.meta.term;
                            last = r.meta.seq;
                            off += len;
                        }
                        _ => break,
                    }
                }
                self.st.truncate(f, off as u64)?;
                self.st.allocate(f, self.cfg.segment_bytes)?;
                Some((f, bytes, off, term, last))
            }
        };
        self.staged.clear();
        self.staged_pos = 0;
        self.buf.fill(0);
        self.buf_off = 0;
        self.buf_len = 0;
        self.written_len = 0;
        let Some((f, bytes, off, term, last)) = kept else {
            self.terms.retain(|&(_, s)| s <= seq);
            self.last_seq = seq;
            self.durable_seq = seq;
            self.buf_last_seq = seq;
            self.first_seq = 0;
            self.last_term = 0;
            return Ok(());
        };
        self.terms.retain(|&(_, s)| s <= last);
        self.last_seq = last;
        self.durable_seq = last;
        self.buf_last_seq = last;
        self.cur = Some(f);
        let block = off / BLOCK * BLOCK;
        self.buf_off = block as u64;
        self.buf_len = off - block;
        self.written_len = self.buf_len;
        self.buf[..self.buf_len].copy_from_slice(&bytes[block..off]);
        self.last_term = term;
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
    /// A reader positioned at the first record of the log.
    pub fn new(st: S) -> io::Result<LogReader<S>> {
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
        while self.next_seq < seq {
            if self.next()?.is_none() {
                break;
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
            while self.next_seq < want {
                if self.next()?.is_none() {
                    return Ok(None);
                }
            }
        }
        loop {
            self.fill()?;
            let rest = &self.buf[self.pos..];
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
