//! What the sequencing stage's [`tpx_sequencer::Replica`] runs over: its log (a file log, or
//! the in-memory log of `log = "in-process"`) and its transport (TCP to the peer and the
//! witness, or in-memory to a single node's in-process witness). The `[replication]` section
//! that chooses them is `config/replication.rs`.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Duration;

use tpx_sequencer::{
    FileStorage, LogError, LogSink, PeerId, TcpTransport, ThreadedLog, Transport, UringLog,
};
use tpx_wire::log_record::{decode_record, LogRecord};

/// The replica's transport: TCP to the peer and the witness, or in-process (a single node and
/// its in-process witness, [`LocalLink`]).
#[derive(Debug)]
pub enum NodeTransport {
    Tcp(TcpTransport),
    Local(LocalLink),
}

/// The two queues of a [`LocalLink`] pair and the buffers they reuse.
#[derive(Debug, Default)]
struct LinkQueues {
    /// By end: the messages waiting for it.
    to: [VecDeque<Vec<u8>>; 2],
    /// Emptied buffers, reused by the next sends.
    free: Vec<Vec<u8>>,
}

/// One end of the in-memory link between a single node's replica and its in-process witness,
/// both on the sequencing core: no lock, and no allocation once warm (buffers are reused), so
/// the lease round trip each acknowledgement of a lone primary needs costs little.
/// (`tpx_sequencer::MemNet` is the simulator's network, with partitions and crashes.)
#[derive(Debug)]
pub struct LocalLink {
    /// This end's peer id, the other end's, and which queue is this end's.
    me: PeerId,
    peer: PeerId,
    end: usize,
    queues: Rc<RefCell<LinkQueues>>,
}

impl LocalLink {
    /// The two ends of a link between `a` and `b`.
    pub fn pair(a: PeerId, b: PeerId) -> (LocalLink, LocalLink) {
        let queues = Rc::new(RefCell::new(LinkQueues::default()));
        (
            LocalLink {
                me: a,
                peer: b,
                end: 0,
                queues: queues.clone(),
            },
            LocalLink {
                me: b,
                peer: a,
                end: 1,
                queues,
            },
        )
    }
}

impl Transport for LocalLink {
    fn send(&mut self, to: PeerId, msg: &[u8]) -> bool {
        if to != self.peer {
            return false;
        }
        let mut q = self.queues.borrow_mut();
        let mut buf = q.free.pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(msg);
        q.to[1 - self.end].push_back(buf);
        true
    }

    fn poll(&mut self, f: &mut dyn FnMut(PeerId, &[u8])) {
        loop {
            let Some(buf) = self.queues.borrow_mut().to[self.end].pop_front() else {
                return;
            };
            f(self.peer, &buf);
            self.queues.borrow_mut().free.push(buf);
        }
    }

    fn connected(&self, to: PeerId) -> bool {
        to == self.peer && to != self.me
    }
}

impl Transport for NodeTransport {
    #[inline]
    fn send(&mut self, to: PeerId, msg: &[u8]) -> bool {
        match self {
            NodeTransport::Tcp(t) => t.send(to, msg),
            NodeTransport::Local(t) => t.send(to, msg),
        }
    }
    #[inline]
    fn poll(&mut self, f: &mut dyn FnMut(PeerId, &[u8])) {
        match self {
            NodeTransport::Tcp(t) => t.poll(f),
            NodeTransport::Local(t) => t.poll(f),
        }
    }
    #[inline]
    fn connected(&self, to: PeerId) -> bool {
        match self {
            NodeTransport::Tcp(t) => t.connected(to),
            NodeTransport::Local(t) => t.connected(to),
        }
    }
    fn config_mismatches(&self) -> u64 {
        match self {
            NodeTransport::Tcp(t) => t.config_mismatches(),
            NodeTransport::Local(t) => t.config_mismatches(),
        }
    }
}

/// The in-memory log of `log = "in-process"` (a single node, for the e2e bench's comparison
/// and tests; never for real use): positions and terms only, no record kept, every record
/// durable the moment it is appended. The replica over it stamps, de-duplicates and
/// acknowledges exactly as over a file; what it cannot do is serve a record back (`read`), so
/// it has no standby and nothing to replay at start.
#[derive(Clone, Debug, Default)]
pub struct MemLog {
    last_seq: u64,
    last_term: u64,
    /// `(term, first seq)` of every term in the log.
    terms: Vec<(u64, u64)>,
    stored_term: u64,
}

impl LogSink for MemLog {
    fn append(&mut self, rec: &[u8]) -> Result<u64, LogError> {
        let (r, _) = decode_record(rec).map_err(|_| LogError::BadRecord)?;
        let (seq, term) = (r.meta.seq, r.meta.term);
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
        if self.terms.last().map(|t| t.0) != Some(term) {
            self.terms.push((term, seq));
        }
        self.last_seq = seq;
        self.last_term = term;
        Ok(seq)
    }

    #[inline]
    fn poll(&mut self) {}

    #[inline]
    fn last_seq(&self) -> u64 {
        self.last_seq
    }

    #[inline]
    fn last_term(&self) -> u64 {
        self.last_term
    }

    #[inline]
    fn durable_seq(&self) -> u64 {
        self.last_seq
    }

    fn terms(&self) -> &[(u64, u64)] {
        &self.terms
    }

    fn truncate_after(&mut self, seq: u64) -> Result<(), LogError> {
        self.last_seq = self.last_seq.min(seq);
        self.terms.retain(|&(_, first)| first <= seq);
        self.last_term = self.terms.last().map_or(0, |t| t.0);
        Ok(())
    }

    fn read(&mut self, from_seq: u64, _: usize, _: &mut Vec<LogRecord>) -> Result<(), LogError> {
        if from_seq > self.last_seq {
            return Ok(());
        }
        Err(LogError::Io(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "the in-memory log keeps no records",
        )))
    }

    #[inline]
    fn error(&self) -> Option<String> {
        None
    }

    #[inline]
    fn is_full(&self) -> bool {
        false
    }

    fn stored_term(&mut self) -> Result<u64, LogError> {
        Ok(self.stored_term)
    }

    fn store_term(&mut self, term: u64) -> Result<(), LogError> {
        self.stored_term = term;
        Ok(())
    }
}

/// The replica's log: the file log on its writer thread (`log = "durable"`, the default) or
/// the in-memory one (`log = "in-process"`).
// One per node, made once and never moved on the hot path: not boxed (no indirection per call).
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum NodeLog {
    File(ThreadedLog<FileStorage>),
    /// The file log written through io_uring by the core (`log_writer = "uring"`).
    Uring(UringLog<FileStorage>),
    Mem(MemLog),
}

impl NodeLog {
    /// The descriptor a parked core sleeps on while records wait for the log writer, armed
    /// for this sleep (it becomes readable when the durable seq next moves; the caller looks at
    /// the durable seq after this, before sleeping). `None`: the log rings nothing (the core
    /// looks again every `LOG_WAIT_POLL_US`) or needs nothing (in memory).
    pub fn arm_durable_wake(&self) -> Option<std::os::fd::RawFd> {
        match self {
            NodeLog::File(l) => {
                let fd = l.durable_wake_fd().ok()?;
                l.arm_durable_wake();
                Some(fd)
            }
            NodeLog::Uring(_) | NodeLog::Mem(_) => None,
        }
    }

    /// Waits (bounded) for the writer to make everything appended durable (at shutdown).
    pub fn sync(&mut self, timeout: Duration) -> bool {
        match self {
            NodeLog::File(l) => l.sync(timeout),
            NodeLog::Uring(l) => l.sync(timeout),
            NodeLog::Mem(_) => true,
        }
    }
}

macro_rules! each {
    ($self:expr, $l:ident => $e:expr) => {
        match $self {
            NodeLog::File($l) => $e,
            NodeLog::Uring($l) => $e,
            NodeLog::Mem($l) => $e,
        }
    };
}

impl LogSink for NodeLog {
    #[inline]
    fn append(&mut self, rec: &[u8]) -> Result<u64, LogError> {
        each!(self, l => l.append(rec))
    }
    #[inline]
    fn poll(&mut self) {
        each!(self, l => l.poll())
    }
    #[inline]
    fn last_seq(&self) -> u64 {
        each!(self, l => l.last_seq())
    }
    #[inline]
    fn last_term(&self) -> u64 {
        each!(self, l => l.last_term())
    }
    #[inline]
    fn durable_seq(&self) -> u64 {
        each!(self, l => l.durable_seq())
    }
    fn terms(&self) -> &[(u64, u64)] {
        each!(self, l => l.terms())
    }
    fn last_seq_of_term(&self, term: u64) -> u64 {
        each!(self, l => l.last_seq_of_term(term))
    }
    fn truncate_after(&mut self, seq: u64) -> Result<(), LogError> {
        each!(self, l => l.truncate_after(seq))
    }
    fn read(
        &mut self,
        from_seq: u64,
        max: usize,
        out: &mut Vec<LogRecord>,
    ) -> Result<(), LogError> {
        each!(self, l => l.read(from_seq, max, out))
    }
    #[inline]
    fn error(&self) -> Option<String> {
        each!(self, l => l.error())
    }
    #[inline]
    fn is_full(&self) -> bool {
        each!(self, l => l.is_full())
    }
    fn stored_term(&mut self) -> Result<u64, LogError> {
        each!(self, l => l.stored_term())
    }
    fn store_term(&mut self, term: u64) -> Result<(), LogError> {
        each!(self, l => l.store_term(term))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tpx_wire::log_record::{encode_record, Halt, Input, RecordMeta, MAX_RECORD_LEN};

    fn rec(seq: u64, term: u64) -> Vec<u8> {
        let r = LogRecord {
            meta: RecordMeta {
                seq,
                term,
                timestamp_ns: seq,
                origin: 0,
                account: 0,
                session: 0,
            },
            input: Input::Halt(Halt { instrument: 1 }),
        };
        let mut buf = vec![0u8; MAX_RECORD_LEN];
        let n = encode_record(&r, &mut buf).unwrap();
        buf.truncate(n);
        buf
    }

    #[test]
    fn a_local_link_carries_messages_both_ways_in_order() {
        let (mut a, mut b) = LocalLink::pair(1, 100);
        assert!(a.connected(100) && b.connected(1) && !a.connected(2));
        assert!(a.send(100, b"one") && a.send(100, b"two") && b.send(1, b"back"));
        assert!(!a.send(2, b"nobody"));
        let mut got = Vec::new();
        b.poll(&mut |from, m| got.push((from, m.to_vec())));
        assert_eq!(got, vec![(1, b"one".to_vec()), (1, b"two".to_vec())]);
        got.clear();
        a.poll(&mut |from, m| got.push((from, m.to_vec())));
        assert_eq!(got, vec![(100, b"back".to_vec())]);
        b.poll(&mut |_, _| panic!("nothing more"));
    }

    #[test]
    fn the_memory_log_keeps_positions_and_terms_and_refuses_a_gap() {
        let mut l = MemLog::default();
        assert_eq!(l.append(&rec(1, 1)).unwrap(), 1);
        assert_eq!(l.append(&rec(2, 1)).unwrap(), 2);
        assert_eq!(l.append(&rec(3, 2)).unwrap(), 3);
        assert_eq!((l.last_seq(), l.durable_seq(), l.last_term()), (3, 3, 2));
        assert_eq!(l.terms(), &[(1, 1), (2, 3)]);
        assert_eq!(l.last_seq_of_term(1), 2);
        assert!(matches!(
            l.append(&rec(5, 2)),
            Err(LogError::OutOfOrder { .. })
        ));
        assert!(matches!(
            l.append(&rec(4, 1)),
            Err(LogError::TermWentBack { .. })
        ));
        assert!(matches!(l.append(b"junk"), Err(LogError::BadRecord)));
        l.truncate_after(2).unwrap();
        assert_eq!((l.last_seq(), l.last_term()), (2, 1));
        assert_eq!(l.terms(), &[(1, 1)]);
        // Nothing to read past the end; the records themselves are not kept.
        let mut out = Vec::new();
        assert!(l.read(3, 10, &mut out).is_ok());
        assert!(l.read(1, 10, &mut out).is_err());
        l.store_term(4).unwrap();
        assert_eq!(l.stored_term().unwrap(), 4);
    }
}
