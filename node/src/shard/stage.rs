//! A shard on its core: takes sequenced records from its ring, applies them (`apply.rs`), puts
//! the reports on the rings to their home gateways, publishes tops and market data.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tpx_engine::InstrumentId;
use tpx_wire::log_record::Input;

use crate::msg::{home_gateway, Report, Sequenced};
use crate::runtime::doorbell::Doorbell;
use crate::runtime::ring::{Consumer, Producer, BATCH};
use crate::runtime::state::NodeState;
use crate::shard::apply::Shard;
use crate::shard::checkpoint::ShardCheckpoints;

/// A shard on its core: the engine, its input ring, a ring to every gateway.
#[derive(Debug)]
pub struct ShardStage {
    shard: Shard,
    input: Consumer<Sequenced>,
    /// By gateway number.
    outputs: Vec<Producer<Report>>,
    spill: Vec<VecDeque<Report>>,
    /// `(instrument id, index into NodeState::tops)` of this shard's instruments.
    tops: Vec<(InstrumentId, usize)>,
    dirty: Vec<bool>,
    shared: Arc<NodeState>,
    /// By gateway number: the doorbell of the gateway's core, when it is another core.
    wake: Vec<Option<Arc<Doorbell>>>,
    pushed: Vec<bool>,
    /// The seq of an applied entry whose reports wait in `spill` (published in
    /// `NodeState::marks` once they are all on the rings).
    unpublished: Option<u64>,
    /// Replica checkpoints (`shard/checkpoint.rs`).
    checks: ShardCheckpoints,
    /// The queries taken from the inbox this cycle (`shard/query.rs`; kept for its capacity).
    queries: Vec<crate::msg::Query>,
    /// The version of the shard's counts last published to `NodeState::shard_counts`.
    counts_published: u64,
}

impl ShardStage {
    pub fn new(
        shard: Shard,
        input: Consumer<Sequenced>,
        outputs: Vec<Producer<Report>>,
        shared: Arc<NodeState>,
    ) -> Self {
        let tops: Vec<(InstrumentId, usize)> = shard
            .instruments
            .iter()
            .filter_map(|id| {
                shared
                    .instruments
                    .iter()
                    .position(|(i, _)| i == id)
                    .map(|p| (*id, p))
            })
            .collect();
        ShardStage {
            wake: outputs.iter().map(|_| None).collect(),
            pushed: vec![false; outputs.len()],
            unpublished: None,
            checks: ShardCheckpoints::new(shard.id),
            counts_published: 0,
            queries: Vec::new(),
            spill: outputs.iter().map(|_| VecDeque::new()).collect(),
            dirty: vec![false; tops.len()],
            tops,
            shard,
            input,
            outputs,
            shared,
        }
    }

    pub fn shard(&self) -> &Shard {
        &self.shard
    }

    /// Where a diverged shard writes its engine image (the log's folder; `None`: nowhere).
    pub fn with_image_dir(mut self, dir: Option<std::path::PathBuf>) -> Self {
        self.checks.image_dir = dir;
        self
    }

    /// A shard restored from a snapshot whose image is the state at checkpoint record `seq`
    /// (hash `hash`): remembered and published as if this shard had applied it, so the log's
    /// next checkpoint is compared and the primary's next one names it (`seq` 0: none).
    pub fn with_checkpoint_seed(mut self, seq: u64, hash: u64) -> Self {
        if seq > 0 {
            self.checks.remember(seq, hash);
            self.shared
                .checkpoints
                .publish(usize::from(self.shard.id), seq, hash);
        }
        self
    }

    /// Doorbells of the gateways' cores, by gateway number (`None`: same core, or spin mode).
    pub fn with_wake(mut self, wake: Vec<Option<Arc<Doorbell>>>) -> Self {
        self.wake = wake;
        self
    }

    fn ring_doorbells(&mut self) {
        for (g, pushed) in self.pushed.iter_mut().enumerate() {
            if std::mem::take(pushed) {
                if let Some(d) = self.wake.get(g).and_then(|w| w.as_ref()) {
                    d.ring();
                }
            }
        }
    }

    /// Moves spilled reports to their rings; returns (all drained, reports moved).
    fn drain_spill(&mut self) -> (bool, usize) {
        let mut moved = 0;
        for (g, q) in self.spill.iter_mut().enumerate() {
            while let Some(r) = q.front() {
                if self.outputs[g].try_push(*r).is_err() {
                    break;
                }
                q.pop_front();
                moved += 1;
                self.pushed[g] = true;
            }
        }
        let drained = self.spill.iter().all(|q| q.is_empty());
        if drained {
            if let Some(seq) = self.unpublished.take() {
                self.publish_applied(seq);
            }
        }
        (drained, moved)
    }

    /// Every report of record `seq` (and of those before it) is on the gateways' rings.
    #[inline]
    fn publish_applied(&self, seq: u64) {
        if let Some(m) = self.shared.marks.applied.get(usize::from(self.shard.id)) {
            m.store(seq, Ordering::Release);
        }
    }

    /// Applies sequenced requests; `now_ns` (the duty cycle's monotonic time) drives the
    /// market-data timers. Returns the work done.
    pub fn step(&mut self, now_ns: u64) -> usize {
        let (drained, moved) = self.drain_spill();
        if !drained {
            self.ring_doorbells();
            return moved;
        }
        // The role flag is read before applying: the records a promoted standby sequences were
        // submitted after it set `md_active` (Release), and reach this ring after that store, so
        // the first of them is already sent, not only numbered.
        if self.shard.has_md() {
            let active = self.shared.md_active.load(Ordering::Acquire);
            self.shard.md_set_active(active);
        }
        let gateways = self.outputs.len();
        let mut n = self.answer_queries();
        let mut fills = 0u64;
        while n < BATCH {
            let Some(e) = self.input.try_pop() else {
                break;
            };
            n += 1;
            let ShardStage {
                shard,
                outputs,
                spill,
                pushed,
                ..
            } = self;
            let mut spilled = false;
            let (f, touched) = shard.apply(&e, |r| {
                let g = home_gateway(r.account, gateways);
                if spill[g].is_empty() {
                    match outputs[g].try_push(r) {
                        Ok(()) => pushed[g] = true,
                        Err(r) => {
                            spill[g].push_back(r);
                            spilled = true;
                        }
                    }
                } else {
                    spill[g].push_back(r);
                }
            });
            fills += u64::from(f);
            if let Input::Checkpoint(c) = &e.req.input {
                self.checks
                    .apply(e.seq, c, &self.shard.engine, &self.shared);
            } else if cfg!(debug_assertions) {
                let engine = &mut self.shard.engine;
                self.checks
                    .plant(e.seq, &e.req.input, e.req.account, engine);
            }
            if matches!(e.req.input, Input::MassCancel(_)) {
                self.dirty.iter_mut().for_each(|d| *d = true);
            } else if let Some(i) = touched {
                if let Some(k) = self.tops.iter().position(|(id, _)| *id == i) {
                    self.dirty[k] = true;
                }
            }
            if spilled {
                self.unpublished = Some(e.seq);
                break;
            }
            self.publish_applied(e.seq);
        }
        self.ring_doorbells();
        let md = if self.shard.has_md() {
            let active = self.shared.md_active.load(Ordering::Relaxed);
            self.shard.md_work(now_ns, active)
        } else {
            0
        };
        if n > 0 {
            self.publish_tops();
            if let Some(e) = self.shared.shard_expiry_ns.get(usize::from(self.shard.id)) {
                let next = self.shard.engine.next_expiry_ns().unwrap_or(u64::MAX);
                e.store(next, Ordering::Relaxed);
            }
            let st = &self.shared.stats;
            st.applied.fetch_add(n as u64, Ordering::Relaxed);
            if fills > 0 {
                st.trades.fetch_add(fills, Ordering::Relaxed);
            }
            self.publish_counts();
        }
        n + moved + md
    }

    /// Rejects by reason and margin calls, for Prometheus: stored when they changed.
    fn publish_counts(&mut self) {
        let c = &self.shard.counts;
        if c.version == self.counts_published {
            return;
        }
        self.counts_published = c.version;
        if let Some(out) = self.shared.shard_counts.get(usize::from(self.shard.id)) {
            for (o, v) in out.rejects.iter().zip(c.rejects.iter()) {
                if *v != 0 {
                    o.store(*v, Ordering::Relaxed);
                }
            }
            out.margin_calls.store(c.margin_calls, Ordering::Relaxed);
        }
    }

    /// Answers the sessions' queries waiting for this shard (`shard/query.rs`) from its state
    /// after every record applied so far; the answers take the reports' way to the gateways.
    fn answer_queries(&mut self) -> usize {
        let id = usize::from(self.shard.id);
        if let Some(inbox) = self.shared.queries.get(id) {
            inbox.take_into(&mut self.queries);
        }
        if self.queries.is_empty() {
            return 0;
        }
        // Through what this shard's state reflects the log: every record it was given up to
        // `applied`, and when it has applied all it was given, every record fed (none of those
        // after `applied` concern it).
        let marks = &self.shared.marks;
        let fed = marks.fed.load(Ordering::Acquire);
        let pushed = marks
            .pushed
            .get(id)
            .map_or(0, |m| m.load(Ordering::Acquire));
        let applied = marks
            .applied
            .get(id)
            .map_or(0, |m| m.load(Ordering::Acquire));
        let as_of = if applied >= pushed {
            fed.max(applied)
        } else {
            applied
        };
        let gateways = self.outputs.len();
        let n = self.queries.len();
        let ShardStage {
            shard,
            outputs,
            spill,
            pushed,
            queries,
            ..
        } = self;
        for q in queries.drain(..) {
            crate::shard::query::answer(shard, &q, as_of, |r| {
                let g = home_gateway(r.account, gateways);
                if spill[g].is_empty() {
                    match outputs[g].try_push(r) {
                        Ok(()) => pushed[g] = true,
                        Err(r) => spill[g].push_back(r),
                    }
                } else {
                    spill[g].push_back(r);
                }
            });
        }
        n
    }

    fn publish_tops(&mut self) {
        for (k, &(id, idx)) in self.tops.iter().enumerate() {
            if !std::mem::take(&mut self.dirty[k]) {
                continue;
            }
            let t = &self.shared.tops[idx];
            let e = &self.shard.engine;
            let (bp, bq) = e.best_bid(id).unwrap_or((0, 0));
            let (ap, aq) = e.best_ask(id).unwrap_or((0, 0));
            t.bid_px.store(bp, Ordering::Relaxed);
            t.bid_qty.store(bq, Ordering::Relaxed);
            t.ask_px.store(ap, Ordering::Relaxed);
            t.ask_qty.store(aq, Ordering::Relaxed);
        }
    }
}
