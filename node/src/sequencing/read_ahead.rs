//! The replay's log reader: on the node, a thread of its own reads, frame-checks (CRC) and
//! decodes the recovered log's records ahead of the sequencing core and hands them over in
//! batches, so the core spends the replay applying records, not reading them (the read,
//! CRC and decode were ~11 % of the core's CPU in a tail replay). The simulator reads in line
//! (no threads there). Either way the records, their order and the errors are what
//! `LogReader::next` returns.
//!
//! The reader thread also notes each record in the replica's de-duplication scan
//! ([`DedupScan`]), handed to the stage when the replay ends: the replica's table is then
//! built from the records read once for the replay, not by a second read of the log on the
//! core before it (~0.1 s of the core's CPU for a 1 M-record tail).

use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use tpx_sequencer::log::LogError;
use tpx_sequencer::replica::DedupScan;
use tpx_sequencer::{LogReader, Storage};
use tpx_wire::log_record::LogRecord;

/// Records per batch handed over.
const BATCH_RECORDS: usize = 1024;
/// Batches in flight: the reader stays at most this far ahead.
const BATCHES: usize = 4;

/// What the replay reads from.
pub enum ReplaySource<S: Storage> {
    /// On the caller's thread.
    Inline(LogReader<S>),
    /// From a reader thread ([`ReplaySource::ahead`]).
    Ahead(ReadAhead),
}

impl<S: Storage> std::fmt::Debug for ReplaySource<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReplaySource::Inline(r) => f.debug_tuple("Inline").field(r).finish(),
            ReplaySource::Ahead(a) => f.debug_tuple("Ahead").field(a).finish(),
        }
    }
}

impl<S: Storage + Send + 'static> ReplaySource<S> {
    /// `reader`'s records through seq `upto` (the log's last at open), read on a thread of its
    /// own named `tpx-replay-read`, which runs on `cpus` (the CPUs no core uses: spawned from
    /// the pinned sequencing core it shared that core's CPU, an eighth of it through the
    /// replay; empty: it stays there); in line if the thread cannot start. With `scan`, the
    /// thread notes every record it reads in it ([`ReplaySource::take_dedup_scan`]).
    pub fn ahead(
        reader: LogReader<S>,
        upto: u64,
        scan: Option<DedupScan>,
        cpus: Vec<usize>,
    ) -> ReplaySource<S> {
        let (tx, rx) = sync_channel(BATCHES);
        let (scan_tx, scan_rx) = sync_channel(1);
        let (back_tx, back_rx) = sync_channel(BATCHES + 1);
        let slot = std::sync::Arc::new(std::sync::Mutex::new(Some(reader)));
        let for_thread = slot.clone();
        let spawned = std::thread::Builder::new()
            .name("tpx-replay-read".into())
            .spawn(move || {
                // Where it cannot move, it reads from the core's CPU as before.
                let _ = crate::runtime::affinity::allow_current_thread_on(&cpus);
                let reader = for_thread.lock().ok().and_then(|mut g| g.take());
                if let Some(reader) = reader {
                    read_loop(reader, upto, &tx, &back_rx, scan.map(|s| (s, scan_tx)));
                }
            });
        match spawned {
            Ok(_) => ReplaySource::Ahead(ReadAhead {
                rx,
                scan: Some(scan_rx),
                back: back_tx,
                batch: Vec::new(),
                at: 0,
            }),
            Err(_) => {
                let reader = slot.lock().ok().and_then(|mut g| g.take());
                match reader {
                    Some(r) => ReplaySource::Inline(r),
                    // Unreachable: the thread did not start, so it took nothing.
                    None => ReplaySource::Ahead(ReadAhead::ended()),
                }
            }
        }
    }
}

impl<S: Storage> ReplaySource<S> {
    /// The next record, `None` at the end (as `LogReader::next`).
    #[inline]
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<LogRecord>, LogError> {
        match self {
            ReplaySource::Inline(r) => r.next(),
            ReplaySource::Ahead(a) => a.next(),
        }
    }

    /// The de-duplication scan the reader thread kept ([`ReplaySource::ahead`]), once the
    /// replay has taken the last record (the thread hands it over before its last batch);
    /// `None` in line, without one, or after a read error.
    pub fn take_dedup_scan(&mut self) -> Option<DedupScan> {
        match self {
            ReplaySource::Inline(_) => None,
            // The sender is dropped if the thread ends without one: never waits for long.
            ReplaySource::Ahead(a) => a.scan.take().and_then(|rx| rx.recv().ok()),
        }
    }
}

/// The core's end of the reader thread.
#[derive(Debug)]
pub struct ReadAhead {
    rx: Receiver<Result<Vec<LogRecord>, LogError>>,
    /// The reader's de-duplication scan, sent before its last batch.
    scan: Option<Receiver<DedupScan>>,
    /// Emptied batches go back to the reader for reuse.
    back: SyncSender<Vec<LogRecord>>,
    batch: Vec<LogRecord>,
    at: usize,
}

impl ReadAhead {
    fn ended() -> ReadAhead {
        let (_, rx) = sync_channel(1);
        let (back, _) = sync_channel(1);
        ReadAhead {
            rx,
            scan: None,
            back,
            batch: Vec::new(),
            at: 0,
        }
    }

    #[inline]
    fn next(&mut self) -> Result<Option<LogRecord>, LogError> {
        if self.at == self.batch.len() {
            let mut b = match self.rx.recv() {
                Ok(Ok(b)) => b,
                Ok(Err(e)) => return Err(e),
                // The reader is done (it read through `upto` or the log's end).
                Err(_) => return Ok(None),
            };
            std::mem::swap(&mut self.batch, &mut b);
            self.at = 0;
            b.clear();
            let _ = self.back.try_send(b);
            if self.batch.is_empty() {
                return Ok(None);
            }
        }
        let r = self.batch[self.at];
        self.at += 1;
        Ok(Some(r))
    }
}

fn read_loop<S: Storage>(
    mut reader: LogReader<S>,
    upto: u64,
    tx: &SyncSender<Result<Vec<LogRecord>, LogError>>,
    back: &Receiver<Vec<LogRecord>>,
    mut scan: Option<(DedupScan, SyncSender<DedupScan>)>,
) {
    loop {
        let mut b = back
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(BATCH_RECORDS));
        let mut end = false;
        while b.len() < BATCH_RECORDS {
            match reader.next() {
                Ok(Some(r)) => {
                    let last = r.meta.seq >= upto;
                    if let Some((s, _)) = scan.as_mut() {
                        s.note(&r);
                    }
                    b.push(r);
                    if last {
                        end = true;
                        break;
                    }
                }
                Ok(None) => {
                    end = true;
                    break;
                }
                Err(e) => {
                    if !b.is_empty() && tx.send(Ok(b)).is_err() {
                        return;
                    }
                    let _ = tx.send(Err(e));
                    return;
                }
            }
        }
        if end {
            // Before the last batch: the stage asks for it after taking the last record.
            if let Some((s, stx)) = scan.take() {
                let _ = stx.send(s);
            }
        }
        if !b.is_empty() && tx.send(Ok(b)).is_err() {
            // The stage is gone (the node stops).
            return;
        }
        if end {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tpx_sequencer::log::{LogConfig, SegmentLog};
    use tpx_sequencer::MemStorage;
    use tpx_wire::log_record::{encode_record, Input, RecordMeta, Tick};

    fn log_of(n: u64) -> MemStorage {
        let st = MemStorage::default();
        let (mut log, _) = SegmentLog::open(st.clone(), LogConfig::default()).unwrap();
        let mut buf = vec![0u8; 256];
        for seq in 1..=n {
            let rec = LogRecord {
                meta: RecordMeta {
                    seq,
                    term: 1,
                    timestamp_ns: seq,
                    origin: 0,
                    account: 0,
                    session: 0,
                },
                input: Input::Tick(Tick {}),
            };
            let k = encode_record(&rec, &mut buf).unwrap();
            log.append(&buf[..k]).unwrap();
        }
        log.commit().unwrap();
        st
    }

    fn drain<S: Storage>(mut src: ReplaySource<S>) -> Vec<u64> {
        let mut seqs = Vec::new();
        while let Some(r) = src.next().unwrap() {
            seqs.push(r.meta.seq);
        }
        seqs
    }

    #[test]
    fn the_reader_thread_gives_what_the_reader_gives_through_upto() {
        let n = (BATCH_RECORDS * (BATCHES + 3) + 17) as u64;
        let st = log_of(n);
        let inline = drain(ReplaySource::Inline(LogReader::new(st.clone()).unwrap()));
        assert_eq!(inline, (1..=n).collect::<Vec<_>>());
        let ahead = drain(ReplaySource::ahead(
            LogReader::new(st.clone()).unwrap(),
            n,
            None,
            Vec::new(),
        ));
        assert_eq!(ahead, inline);
        // It stops at `upto`, also in the middle of a batch, and after a seek.
        let upto = BATCH_RECORDS as u64 + 5;
        let mut r = LogReader::new(st.clone()).unwrap();
        r.seek(3).unwrap();
        let some = drain(ReplaySource::ahead(r, upto, None, Vec::new()));
        assert_eq!(some, (3..=upto).collect::<Vec<_>>());
        // The de-duplication scan comes back once the last record is taken, through `upto`.
        let mut src = ReplaySource::ahead(
            LogReader::new(st.clone()).unwrap(),
            upto,
            Some(DedupScan::starting(0)),
            vec![0],
        );
        let mut last = 0;
        while let Some(r) = src.next().unwrap() {
            last = r.meta.seq;
        }
        assert_eq!(last, upto);
        assert_eq!(src.take_dedup_scan().map(|s| s.through()), Some(upto));
        assert!(src.take_dedup_scan().is_none(), "handed over once");
        let mut inline = ReplaySource::Inline(LogReader::new(st).unwrap());
        assert!(inline.take_dedup_scan().is_none());
    }
}
