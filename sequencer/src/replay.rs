//! Replay: every record of a log, in order, to a callback, as fast as the callback allows.
//!
//! Two threads, double buffered. A reader thread reads each segment front to back in
//! [`SCAN_CHUNK`] reads (`posix_fadvise(SEQUENTIAL | WILLNEED)` on each file, so a cold cache is
//! read ahead by the kernel while the reader works), frame-checks the records of each chunk
//! (length, header, CRC32C, seq continuity, term order: [`crate::scan::check_run`]) and hands
//! the chunk, cut at its last whole record, to the calling thread over a bounded channel; the
//! bytes of a record cut by the end of a read move to the front of the next buffer. The caller
//! decodes each record in place (header fields and body, no CRC again, no allocation: buffers
//! go back to the reader and are reused) and calls `f`. So the reading and checking of chunk
//! n + 1 overlaps the applying of chunk n, and the caller's cost per record is the body decode
//! plus `f`.

use std::io;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use tpx_wire::log_record::{LogRecord, MAX_RECORD_LEN};

use crate::log::{list_segments, read_full, LogError, Segment, SCAN_CHUNK};
use crate::scan::{
    check_run, decode_checked, is_trailer, seq_term, trailer_frame_len, Cursor, Stop,
};
use crate::storage::Storage;

/// Chunks in flight between the reader and the caller (plus one being filled, one applied).
const DEPTH: usize = 2;

/// Records checked by the reader: `buf[..end]`, whole records; `buf[0]` is at `file_off` in
/// segment `segment`.
struct Chunk {
    buf: Vec<u8>,
    end: usize,
    segment: String,
    file_off: u64,
}

enum Msg {
    Chunk(Chunk),
    /// The reader finished: `Ok` at the end of the log, or why it stopped.
    Done(Result<(), LogError>),
}

/// Reads every record of the log in `st` from `from_seq` (or from the log's first record, if
/// that is later) and calls `f` on each, in order; returns the last seq read (`from_seq - 1` if
/// none). Stops at the end of the records (zeros, or bytes that are not a record in the last
/// segment: a torn tail or a record being written); a bad record in an earlier segment, a
/// record whose body does not decode, or a gap between segments is [`LogError::Corrupt`].
pub fn replay<S: Storage + Send>(
    st: S,
    from_seq: u64,
    mut f: impl FnMut(&LogRecord),
) -> Result<u64, LogError> {
    let mut last = from_seq.saturating_sub(1);
    let (full_tx, full_rx) = sync_channel::<Msg>(DEPTH);
    let (empty_tx, empty_rx) = sync_channel::<Vec<u8>>(DEPTH + 2);
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("tpx-replay-read".into())
            .spawn_scoped(s, move || {
                let mut rd = Reader {
                    st,
                    full: full_tx,
                    empty: empty_rx,
                    allocated: 0,
                };
                let res = rd.run(from_seq);
                // The caller may have gone (it failed): nothing to tell it then.
                let _ = rd.full.send(Msg::Done(res));
            })
            .map_err(LogError::Io)?;
        consume(full_rx, empty_tx, from_seq, &mut last, &mut f)
    })?;
    Ok(last)
}

/// The caller's side: decode and apply each chunk's records, give the buffer back.
fn consume(
    full: Receiver<Msg>,
    empty: SyncSender<Vec<u8>>,
    from_seq: u64,
    last: &mut u64,
    f: &mut impl FnMut(&LogRecord),
) -> Result<(), LogError> {
    while let Ok(msg) = full.recv() {
        let c = match msg {
            Msg::Chunk(c) => c,
            Msg::Done(res) => return res,
        };
        let recs = &c.buf[..c.end];
        let mut off = 0;
        while off < recs.len() {
            // The reader checked these frames: the length is in range and all bytes are here.
            let rest = &recs[off..];
            if is_trailer(rest) {
                off += trailer_frame_len(c.file_off + off as u64);
                continue;
            }
            let len = usize::from(u16::from_le_bytes([rest[0], rest[1]]));
            let rec = &rest[..len];
            let (seq, _) = seq_term(rec);
            if seq >= from_seq {
                match decode_checked(rec) {
                    Ok(r) => {
                        f(&r);
                        *last = seq;
                    }
                    Err(reason) => {
                        return Err(LogError::Corrupt {
                            segment: c.segment.clone(),
                            offset: c.file_off + off as u64,
                            seq,
                            reason,
                        })
                    }
                }
            }
            off += len;
        }
        // The reader may have finished; then the buffer is simply dropped.
        let _ = empty.try_send(c.buf);
    }
    Err(LogError::Io(io::Error::other("log reader thread stopped")))
}

struct Reader<S: Storage> {
    st: S,
    full: SyncSender<Msg>,
    empty: Receiver<Vec<u8>>,
    allocated: usize,
}

/// The caller stopped listening (it failed on a record): stop reading.
struct Gone;

impl<S: Storage> Reader<S> {
    fn buffer(&mut self) -> Result<Vec<u8>, Gone> {
        if let Ok(b) = self.empty.try_recv() {
            return Ok(b);
        }
        if self.allocated < DEPTH + 2 {
            self.allocated += 1;
            return Ok(vec![0u8; SCAN_CHUNK + MAX_RECORD_LEN]);
        }
        self.empty.recv().map_err(|_| Gone)
    }

    fn run(&mut self, from_seq: u64) -> Result<(), LogError> {
        let mut segs = list_segments(&mut self.st)?;
        let Some(first) = segs.first() else {
            return Ok(());
        };
        let from = from_seq.max(first.first_seq);
        let mut idx = segs.iter().rposition(|s| s.first_seq <= from).unwrap_or(0);
        let mut cur = Cursor::new(segs[idx].first_seq, 0);
        loop {
            let seg = segs[idx].clone();
            let stop = match self.segment(&seg, &mut cur) {
                Ok(stop) => stop,
                Err(ReadError::Gone) => return Ok(()),
                Err(ReadError::Io(e)) => return Err(e.into()),
            };
            if idx + 1 == segs.len() {
                // The end of the last segment: a segment may have been added since.
                segs = list_segments(&mut self.st)?;
            }
            match segs.get(idx + 1) {
                Some(next) if next.first_seq == cur.next_seq => idx += 1,
                None => return Ok(()),
                Some(next) => {
                    return Err(match stop {
                        (off, Stop::Bad(reason)) => LogError::Corrupt {
                            segment: seg.name,
                            offset: off,
                            seq: cur.next_seq,
                            reason: format!("{reason}; later segments follow"),
                        },
                        _ => LogError::Corrupt {
                            segment: next.name.clone(),
                            offset: 0,
                            seq: cur.next_seq,
                            reason: format!("segment starts at seq {}", next.first_seq),
                        },
                    })
                }
            }
        }
    }

    /// Reads one segment, sending its checked records; returns where and why it stopped.
    fn segment(&mut self, seg: &Segment, cur: &mut Cursor) -> Result<(u64, Stop), ReadError> {
        let f = self.st.open(&seg.name, false)?;
        let res = self.segment_file(seg, f, cur);
        self.st.close(f);
        res
    }

    fn segment_file(
        &mut self,
        seg: &Segment,
        f: crate::storage::FileId,
        cur: &mut Cursor,
    ) -> Result<(u64, Stop), ReadError> {
        let mut size = self.st.size(f)?;
        self.st.advise_sequential(f);
        let mut buf = self.buffer()?;
        // `buf[..have]` holds the file's bytes from `base`; `buf[..pos]` was sent.
        let mut base = 0u64;
        let mut have = 0usize;
        loop {
            if base + (have as u64) < size {
                let want = (buf.len() - have).min((size - base) as usize - have);
                let got = read_full(
                    &mut self.st,
                    f,
                    base + have as u64,
                    &mut buf[have..have + want],
                )?;
                have += got;
                if got < want {
                    size = base + have as u64;
                }
            }
            let eof = base + have as u64 >= size;
            let (pos, stop) = check_run(&buf[..have], base, eof, cur);
            if stop == Stop::NeedMore {
                // Move the cut record to a fresh buffer and send the whole ones.
                let mut next = self.buffer()?;
                next[..have - pos].copy_from_slice(&buf[pos..have]);
                let full = std::mem::replace(&mut buf, next);
                self.send(full, pos, seg, base)?;
                base += pos as u64;
                have -= pos;
                continue;
            }
            let at = base + pos as u64;
            if pos > 0 {
                self.send(buf, pos, seg, base)?;
            }
            return Ok((at, stop));
        }
    }

    fn send(&mut self, buf: Vec<u8>, end: usize, seg: &Segment, base: u64) -> Result<(), Gone> {
        if end == 0 {
            // No whole record in it (cannot happen with reads longer than a record): drop it.
            self.allocated -= 1;
            return Ok(());
        }
        self.full
            .send(Msg::Chunk(Chunk {
                buf,
                end,
                segment: seg.name.clone(),
                file_off: base,
            }))
            .map_err(|_| Gone)
    }
}

enum ReadError {
    Gone,
    Io(io::Error),
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        ReadError::Io(e)
    }
}

impl From<Gone> for ReadError {
    fn from(_: Gone) -> Self {
        ReadError::Gone
    }
}
