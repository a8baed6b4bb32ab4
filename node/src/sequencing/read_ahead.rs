//! The replay's log reader: on the node, a thread of its own reads, frame-checks (CRC) and
//! decodes the recovered log's records ahead of the sequencing core and hands them over in
//! batches, so the core spends the replay applying records, not reading them (the read,
//! CRC and decode were ~11 % of the core's CPU in a tail replay). The simulator reads in line
//! (no threads there). Either way the records, their order and the errors are what
//! `LogReader::next` returns.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use tpx_sequencer::log::LogError;
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
    /// own named `tpx-replay-read`; in line if the thread cannot start.
    pub fn ahead(reader: LogReader<S>, upto: u64) -> ReplaySource<S> {
        let (tx, rx) = sync_channel(BATCHES);
        let (back_tx, back_rx) = sync_channel(BATCHES + 1);
        let slot = std::sync::Arc::new(std::sync::Mutex::new(Some(reader)));
        let for_thread = slot.clone();
        let spawned = std::thread::Builder::new()
            .name("tpx-replay-read".into())
            .spawn(move || {
                let reader = for_thread.lock().ok().and_then(|mut g| g.take());
                if let Some(reader) = reader {
                    read_loop(reader, upto, &tx, &back_rx);
                }
            });
        match spawned {
            Ok(_) => ReplaySource::Ahead(ReadAhead {
                rx,
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
}

/// The core's end of the reader thread.
#[derive(Debug)]
pub struct ReadAhead {
    rx: Receiver<Result<Vec<LogRecord>, LogError>>,
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
        let ahead = drain(ReplaySource::ahead(LogReader::new(st.clone()).unwrap(), n));
        assert_eq!(ahead, inline);
        // It stops at `upto`, also in the middle of a batch, and after a seek.
        let upto = BATCH_RECORDS as u64 + 5;
        let mut r = LogReader::new(st).unwrap();
        r.seek(3).unwrap();
        let some = drain(ReplaySource::ahead(r, upto));
        assert_eq!(some, (3..=upto).collect::<Vec<_>>());
    }
}
