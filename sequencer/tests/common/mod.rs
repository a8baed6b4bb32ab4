//! Support shared by the sequencer's integration tests.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tpx_sequencer::log::LogError;
use tpx_sequencer::storage::MemStorage;
use tpx_sequencer::writer::{LogSink, SyncLog};
use tpx_wire::log_record::LogRecord;

/// A `SyncLog` whose disk can be stalled: while `stall` is set nothing staged is committed
/// (the disk is slow; appends and reads of what is durable go on).
pub struct StallLog {
    pub inner: SyncLog<MemStorage>,
    pub stall: Arc<AtomicBool>,
}

impl LogSink for StallLog {
    fn append(&mut self, rec: &[u8]) -> Result<u64, LogError> {
        self.inner.append(rec)
    }
    fn poll(&mut self) {
        if !self.stall.load(Ordering::Relaxed) {
            self.inner.poll();
        }
    }
    fn last_seq(&self) -> u64 {
        self.inner.last_seq()
    }
    fn last_term(&self) -> u64 {
        self.inner.last_term()
    }
    fn durable_seq(&self) -> u64 {
        self.inner.durable_seq()
    }
    fn terms(&self) -> &[(u64, u64)] {
        self.inner.terms()
    }
    fn truncate_after(&mut self, seq: u64) -> Result<(), LogError> {
        self.inner.truncate_after(seq)
    }
    fn read(&mut self, from: u64, max: usize, out: &mut Vec<LogRecord>) -> Result<(), LogError> {
        self.inner.read(from, max, out)
    }
    fn error(&self) -> Option<String> {
        self.inner.error()
    }
    fn is_full(&self) -> bool {
        self.inner.is_full()
    }
    fn stored_term(&mut self) -> Result<u64, LogError> {
        self.inner.stored_term()
    }
    fn store_term(&mut self, term: u64) -> Result<(), LogError> {
        self.inner.store_term(term)
    }
}
