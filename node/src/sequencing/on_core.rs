//! The sequencing stage on its core: takes the gateways' requests, sequences them through the
//! replicated log (`stage.rs`) or the in-process one (`inprocess.rs`), and hands each record to
//! its shard's ring (`replication.rs`'s `dispatch`).

use std::collections::VecDeque;
use std::sync::Arc;

use crate::msg::{Request, Sequenced};
use crate::runtime::clock;
use crate::runtime::doorbell::Doorbell;
use crate::runtime::ring::{Consumer, Producer, BATCH};
use crate::sequencing::inprocess::{InProcessLog, Sequencer};
use crate::sequencing::replication::{dispatch, room_for};
use crate::sequencing::stage::ReplicaSeq;

/// The sequencing stage on its core: inputs from every gateway, outputs to every shard.
///
/// Two logs: the durable, replicated one (`replica`, see `stage.rs`; what `tpx node`
/// runs) or the in-process one (`seq`: positions only, nothing stored; `log = "in-process"`,
/// for the e2e bench's comparison and unit tests).
#[derive(Debug)]
pub struct SequencerStage {
    seq: Sequencer<InProcessLog>,
    replica: Option<Box<ReplicaSeq>>,
    inputs: Vec<Consumer<Request>>,
    /// By shard id.
    outputs: Vec<Producer<Sequenced>>,
    /// Stamped entries not yet committed by the log (always empty with the in-process log).
    pending: VecDeque<Sequenced>,
    next_input: usize,
    stamped: u64,
    /// By shard id: the doorbell of the shard's core, when it is another core (park mode).
    wake: Vec<Option<Arc<Doorbell>>>,
    pushed: Vec<bool>,
}

impl SequencerStage {
    pub fn new(inputs: Vec<Consumer<Request>>, outputs: Vec<Producer<Sequenced>>) -> Self {
        SequencerStage {
            seq: Sequencer::new(InProcessLog::default()),
            replica: None,
            wake: outputs.iter().map(|_| None).collect(),
            pushed: vec![false; outputs.len()],
            inputs,
            outputs,
            pending: VecDeque::new(),
            next_input: 0,
            stamped: 0,
        }
    }

    /// Doorbells of the shards' cores, by shard id (`None`: same core, or spin mode).
    pub fn with_wake(mut self, wake: Vec<Option<Arc<Doorbell>>>) -> Self {
        self.wake = wake;
        self
    }

    /// Sequences through the durable, replicated log instead of the in-process one.
    pub fn with_replica(mut self, replica: ReplicaSeq) -> Self {
        self.replica = Some(Box::new(replica));
        self
    }

    /// Entries sequenced so far (replicated log: records handed to the shards, replay excluded).
    pub fn stamped(&self) -> u64 {
        match &self.replica {
            Some(r) => r.sequenced(),
            None => self.stamped,
        }
    }

    pub fn replica(&self) -> Option<&ReplicaSeq> {
        self.replica.as_deref()
    }

    /// The descriptors the stage wants in its core's sleep set (the replication transport's).
    pub fn poll_fds(&mut self, out: &mut Vec<libc::pollfd>) {
        if let Some(r) = self.replica.as_deref_mut() {
            r.poll_fds(out);
        }
    }

    /// At shutdown: lets the log writer finish (bounded).
    pub fn sync(&mut self) {
        if let Some(r) = self.replica.as_mut() {
            r.sync();
        }
    }

    fn ring_doorbells(&mut self) {
        for (k, pushed) in self.pushed.iter_mut().enumerate() {
            if std::mem::take(pushed) {
                if let Some(d) = self.wake.get(k).and_then(|w| w.as_ref()) {
                    d.ring();
                }
            }
        }
    }

    /// Stamps and routes what the gateways sent. Returns the work done.
    pub fn step(&mut self) -> usize {
        if let Some(r) = self.replica.as_mut() {
            let n = r.step(
                &mut self.inputs,
                self.next_input,
                &mut self.outputs,
                &mut self.pushed,
            );
            self.next_input = (self.next_input + 1) % self.inputs.len().max(1);
            self.ring_doorbells();
            return n;
        }
        let mut n = 0;
        // Release entries the log has committed since (none with the in-process log).
        while let Some(e) = self.pending.front().copied() {
            if !self.seq.is_committed(e.seq) || !room_for(&self.outputs, e.req.shard) {
                self.ring_doorbells();
                return n;
            }
            self.pending.pop_front();
            dispatch(&mut self.outputs, &mut self.pushed, e);
            n += 1;
        }
        let inputs = self.inputs.len();
        let mut ts: Option<u64> = None;
        let mut tsc: Option<u64> = None;
        for k in 0..inputs {
            let i = (self.next_input + k) % inputs;
            for _ in 0..BATCH {
                let Some(req) = self.inputs[i].peek() else {
                    break;
                };
                if !room_for(&self.outputs, req.shard) {
                    // Leave it in the ring: the gateway's ring fills and it rejects new requests.
                    break;
                }
                let now = *ts.get_or_insert_with(clock::unix_ns);
                let stamp = self.seq.stamp(now, &[]);
                self.inputs[i].advance();
                let mut req = req;
                if req.stamps.rx != 0 {
                    req.stamps.seq = *tsc.get_or_insert_with(crate::runtime::clock::tsc);
                }
                let e = Sequenced {
                    seq: stamp.seq,
                    ts_ns: stamp.ts_ns,
                    req,
                };
                n += 1;
                if self.pending.is_empty() && self.seq.is_committed(stamp.seq) {
                    dispatch(&mut self.outputs, &mut self.pushed, e);
                } else {
                    self.pending.push_back(e);
                }
            }
        }
        self.next_input = (self.next_input + 1) % inputs.max(1);
        self.stamped += n as u64;
        self.ring_doorbells();
        n
    }
}
