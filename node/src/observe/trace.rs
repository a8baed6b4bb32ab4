//! Per-order stage stamps: the gateway side ([`Tracer`]) that turns the stamps a report carries
//! into stage histograms and trace records, and the reader side ([`TraceReader`]) that a load
//! generator uses to join the node's stamps with its own.
//!
//! A request is stamped (raw TSC, [`crate::runtime::clock::tsc`]) when the gateway read its bytes
//! (`rx`), when the sequencing stage stamped it (`seq`), when the log made it durable
//! (`durable`), when the shard emitted its first report
//! (`matched`), and just before the gateway's `write(2)` of the reply (`written`). The stamps
//! travel in [`crate::msg::Stamps`] inside the request and the report, so no stage keeps
//! per-order state; only the gateway, the single writer of its core's block, records them.

use crate::msg::{Report, ReportKind, Stamps, NO_SESSION};
use crate::observe::stats::{counter, CoreStats, Stage, StatsMap, TRACE_WORDS};
use tpx_wire::enums::{CancelReason, RequestKind};

/// Which request an answer answers (`kind` in a trace record).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TraceKind {
    Enter = 0,
    Replace = 1,
    Cancel = 2,
}

impl TraceKind {
    fn from_u64(v: u64) -> Option<TraceKind> {
        match v {
            0 => Some(TraceKind::Enter),
            1 => Some(TraceKind::Replace),
            2 => Some(TraceKind::Cancel),
            _ => None,
        }
    }
}

/// The key of the first answer to a request: `(request kind, cl_ord_id as the answer names
/// it)`, or `None` for reports that are not the direct answer to a request (fills, IOC
/// remainders, mass-cancel completions).
pub fn answer_key(r: &Report) -> Option<(TraceKind, u64)> {
    // A cancel's answer goes to the order's owner (`NO_SESSION`); the others name the session.
    if r.session == NO_SESSION && !matches!(r.kind, ReportKind::Cancelled { .. }) {
        return None;
    }
    match r.kind {
        ReportKind::Accepted { cl_ord_id, .. } => Some((TraceKind::Enter, cl_ord_id)),
        ReportKind::Replaced { new_cl_ord_id, .. } => Some((TraceKind::Replace, new_cl_ord_id)),
        // Only a cancel request's answer (not an IOC remainder, STP or mass cancel).
        ReportKind::Cancelled {
            cl_ord_id,
            reason: CancelReason::UserRequested,
            ..
        } => Some((TraceKind::Cancel, cl_ord_id)),
        ReportKind::Rejected {
            cl_ord_id, request, ..
        } => match request {
            RequestKind::EnterOrder => Some((TraceKind::Enter, cl_ord_id)),
            RequestKind::ReplaceOrder => Some((TraceKind::Replace, cl_ord_id)),
            RequestKind::CancelOrder => Some((TraceKind::Cancel, cl_ord_id)),
            _ => None,
        },
        _ => None,
    }
}

/// One order's trip through the node (raw TSC stamps).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceRecord {
    pub account: u32,
    pub kind: TraceKind,
    pub cl_ord_id: u64,
    pub stamps: Stamps,
    pub written: u64,
}

/// The gateway's side: answers delivered this cycle wait here for their `write(2)`.
#[derive(Debug)]
pub struct Tracer {
    stats: CoreStats,
    pending: Vec<(u32, TraceKind, u64, Stamps)>,
    requests: u64,
    reports: u64,
    /// Stamped just before the cycle's first `write(2)`.
    write_tsc: u64,
}

impl Tracer {
    pub fn new(stats: CoreStats) -> Tracer {
        Tracer {
            stats,
            pending: Vec::with_capacity(4096),
            requests: 0,
            reports: 0,
            write_tsc: 0,
        }
    }

    /// A request forwarded to the sequencer.
    #[inline]
    pub fn on_request(&mut self) {
        self.requests += 1;
    }

    /// A report the gateway turned into a reply.
    #[inline]
    pub fn on_report(&mut self, r: &Report) {
        self.reports += 1;
        if r.stamps.rx == 0 {
            return;
        }
        if let Some((kind, cl)) = answer_key(r) {
            self.pending.push((r.account, kind, cl, r.stamps));
        }
    }

    /// Just before the cycle's writes: the `written` stamp of every answer delivered this
    /// cycle. Taken before the `write(2)`s, not after, so that it can never be later than the
    /// client's read of the reply (the wire-out stage then includes the write syscall).
    #[inline]
    pub fn before_writes(&mut self) {
        if !self.pending.is_empty() {
            self.write_tsc = crate::runtime::clock::tsc();
        }
    }

    /// After the cycle's writes (`writes` calls of `write(2)`): records the stages of every
    /// answer delivered this cycle; counters published.
    #[inline]
    pub fn on_flushed(&mut self, writes: u64) {
        if self.requests > 0 {
            self.stats
                .add(counter::REQUESTS, std::mem::take(&mut self.requests));
        }
        if self.reports > 0 {
            self.stats
                .add(counter::REPORTS, std::mem::take(&mut self.reports));
        }
        if writes > 0 {
            self.stats.add(counter::WRITES, writes);
        }
        if self.pending.is_empty() {
            return;
        }
        let written = match std::mem::take(&mut self.write_tsc) {
            0 => crate::runtime::clock::tsc(),
            t => t,
        };
        let n = self.pending.len() as u64;
        for (account, kind, cl, s) in self.pending.drain(..) {
            let d = |a: u64, b: u64| b.saturating_sub(a);
            self.stats.record(Stage::RxToSequenced, d(s.rx, s.seq));
            let before_match = if s.durable != 0 {
                self.stats
                    .record(Stage::SequencedToDurable, d(s.seq, s.durable));
                s.durable
            } else {
                s.seq
            };
            self.stats
                .record(Stage::ToMatched, d(before_match, s.matched));
            self.stats
                .record(Stage::MatchedToWritten, d(s.matched, written));
            self.stats.record(Stage::RxToWritten, d(s.rx, written));
            let rec: [u64; TRACE_WORDS - 1] = [
                (u64::from(account) << 8) | kind as u64,
                cl,
                s.rx,
                s.seq,
                s.durable,
                s.matched,
                written,
            ];
            self.stats.trace(&rec);
        }
        self.stats.add(counter::STAMPED, n);
    }
}

/// Reads one core's trace ring from its head, losing the oldest records if it falls a whole
/// ring behind (it counts them).
#[derive(Debug)]
pub struct TraceReader {
    core: usize,
    next: u64,
    pub lost: u64,
}

impl TraceReader {
    /// Starts at the oldest record the ring still holds ([`TraceReader::skip_to_head`] to
    /// take only what is written from now on).
    pub fn new(map: &StatsMap, core: usize) -> TraceReader {
        let (head, _, _) = map.trace_parts(core);
        let head = head.load(std::sync::atomic::Ordering::Acquire);
        TraceReader {
            core,
            next: head.saturating_sub(map.trace_slots() as u64),
            lost: 0,
        }
    }

    /// Skips to the current head (ignore everything written so far).
    pub fn skip_to_head(&mut self, map: &StatsMap) {
        let (head, _, _) = map.trace_parts(self.core);
        self.next = head.load(std::sync::atomic::Ordering::Acquire);
    }

    /// The records written since the last poll.
    pub fn poll(&mut self, map: &StatsMap) -> Vec<TraceRecord> {
        use std::sync::atomic::Ordering;
        let (head, base, mask) = map.trace_parts(self.core);
        let head = head.load(Ordering::Acquire);
        let slots = mask + 1;
        if head.saturating_sub(self.next) > slots {
            self.lost += head - self.next - slots;
            self.next = head - slots;
        }
        let mut out = Vec::with_capacity((head - self.next) as usize);
        while self.next < head {
            let i = self.next;
            self.next += 1;
            let slot = base + ((i & mask) as usize) * TRACE_WORDS;
            let lock = map.word_at(slot);
            let s1 = lock.load(Ordering::Acquire);
            if s1 != 2 * i + 2 {
                self.lost += 1;
                continue;
            }
            let mut w = [0u64; TRACE_WORDS - 1];
            for (k, v) in w.iter_mut().enumerate() {
                *v = map.word_at(slot + 1 + k).load(Ordering::Relaxed);
            }
            std::sync::atomic::fence(Ordering::Acquire);
            if lock.load(Ordering::Relaxed) != s1 {
                self.lost += 1;
                continue;
            }
            let Some(kind) = TraceKind::from_u64(w[0] & 0xff) else {
                continue;
            };
            out.push(TraceRecord {
                account: (w[0] >> 8) as u32,
                kind,
                cl_ord_id: w[1],
                stamps: Stamps {
                    rx: w[2],
                    seq: w[3],
                    durable: w[4],
                    matched: w[5],
                },
                written: w[6],
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tpx_wire::enums::RejectReason;

    fn report(session: u32, kind: ReportKind, stamps: Stamps) -> Report {
        Report {
            account: 7,
            session,
            seq: 1,
            ts_ns: 1,
            kind,
            stamps,
        }
    }

    #[test]
    fn answers_are_keyed_by_request_kind() {
        let s = Stamps::default();
        let rej = ReportKind::Rejected {
            cl_ord_id: 9,
            reason: RejectReason::UnknownOrder,
            request: RequestKind::ReplaceOrder,
        };
        assert_eq!(
            answer_key(&report(0, rej, s)),
            Some((TraceKind::Replace, 9))
        );
        assert_eq!(answer_key(&report(NO_SESSION, rej, s)), None);
    }

    #[test]
    fn tracer_records_stages_and_trace() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.stats");
        let m = Arc::new(StatsMap::create(&p, 1, 16, 1).unwrap());
        let mut t = Tracer::new(m.core_writer(0));
        let now = crate::runtime::clock::tsc();
        let st = Stamps {
            rx: now - 4000,
            seq: now - 3000,
            durable: 0,
            matched: now - 1000,
        };
        let acc = ReportKind::Cancelled {
            cl_ord_id: 5,
            order_id: 1,
            instrument: 1,
            cancelled_qty: 1,
            leaves_qty: 0,
            reason: CancelReason::UserRequested,
        };
        t.on_report(&report(0, acc, st));
        t.before_writes();
        t.on_flushed(1);
        let r = StatsMap::open(&p).unwrap();
        assert_eq!(r.counter(0, counter::STAMPED), 1);
        let h = r.histogram(0, Stage::RxToSequenced as usize);
        assert_eq!(h[crate::observe::stats::bucket_of(1000)], 1);
        assert_eq!(
            r.histogram(0, Stage::SequencedToDurable as usize)
                .iter()
                .sum::<u64>(),
            0
        );
        let mut rd = TraceReader::new(&r, 0);
        let recs = rd.poll(&r);
        assert_eq!(recs.len(), 1);
        assert_eq!(
            (recs[0].account, recs[0].kind, recs[0].cl_ord_id),
            (7, TraceKind::Cancel, 5)
        );
        assert_eq!(recs[0].stamps, st);
        assert!(recs[0].written >= now);
    }
}
