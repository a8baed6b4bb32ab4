//! One pinned core's runtime: the roles the core plan gives it, run as one duty cycle.
//!
//! A duty cycle does a bounded amount of each role's work, in request-path order, so that with
//! every role on one core a request goes socket → sequencer → shard → socket within a single
//! cycle:
//!
//! 1. gateway: accept, read every connection, handle complete frames → requests on its ring to
//!    the sequencer;
//! 2. sequencer: stamp `seq` + `ts_ns`, route each request to its shard's ring (or every shard's);
//! 3. shards: apply to the engine, map events to reports on the rings to the home gateways;
//! 4. gateway: reports → sequenced, journaled replies; heartbeats/timeouts; one `write(2)` per
//!    connection.
//!
//! Every hop is an SPSC ring, also when both ends are on this core (then the ring stays in this
//! core's L1 and costs a few nanoseconds; the code is the same in every plan). Rings are bounded;
//! a stage whose output ring is full stops taking input (the sequencer) or parks the rest of one
//! command's reports in a spill buffer and stops taking input until it drains (a shard), so the
//! pressure climbs back to the gateway, which rejects new requests with `Backpressure`. Nothing
//! blocks a core and nothing is dropped.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tpx_engine::{Command, InstrumentId};

use crate::runtime::clock;
use crate::config::IdleMode;
use crate::runtime::doorbell::{sleep_on, Doorbell};
use crate::gateway::io::{home_gateway, Gateway};
use crate::msg::{Report, Request, Sequenced};
use crate::sequencing::stage::ReplicaSeq;
use crate::sequencing::replication::{dispatch, room_for};
use crate::runtime::ring::{Consumer, Producer};
use crate::sequencing::inprocess::{InProcessLog, Sequencer};
use crate::shard::apply::Shard;

/// Most items one stage takes from one ring per duty cycle.
const BATCH: usize = 1024;

/// Top of book of one instrument, published by its shard once per duty cycle in which it changed
/// (price 0 = empty side).
#[derive(Debug, Default)]
pub struct Top {
    pub bid_px: AtomicI64,
    pub bid_qty: AtomicU64,
    pub ask_px: AtomicI64,
    pub ask_qty: AtomicU64,
}

/// A price in ticks and a quantity in lots.
pub type PriceQty = (i64, u64);

/// Node-wide counters and the published tops, read by `tpx up` once a second.
#[derive(Debug, Default)]
pub struct NodeStats {
    /// Requests stamped by the sequencer.
    pub sequenced: AtomicU64,
    /// Fills (trades).
    pub trades: AtomicU64,
    /// Requests the shards applied.
    pub applied: AtomicU64,
}

/// What every core shares.
#[derive(Debug)]
pub struct Shared {
    pub shutdown: AtomicBool,
    /// Whether this node is the primary (serves sessions, its shards' output is authoritative):
    /// always true with the in-process log; with the replicated log set by the sequencing stage
    /// on every role change. Gateways refuse logins while it is false; shards may read it (e.g.
    /// to publish market data only while primary).
    pub active: AtomicBool,
    /// The replica's term (0 with the in-process log).
    pub term: AtomicU64,
    /// The highest seq acknowledgeable to clients (replicated log).
    pub acked_seq: AtomicU64,
    /// The process exit status a core asks for when it stops the node (0: none).
    pub exit_code: AtomicU32,
    pub stats: NodeStats,
    /// Instruments in config order: `(id, symbol)`; `tops[i]` is `instruments[i]`'s.
    pub instruments: Vec<(InstrumentId, String)>,
    pub tops: Vec<Top>,
    /// Whether the shards' market-data publishers send (primary, the default) or only number
    /// their packets (standby); flipped on a role change.
    pub md_active: AtomicBool,
}

impl Shared {
    pub fn new(instruments: Vec<(InstrumentId, String)>) -> Shared {
        let tops = instruments.iter().map(|_| Top::default()).collect();
        Shared {
            shutdown: AtomicBool::new(false),
            active: AtomicBool::new(true),
            term: AtomicU64::new(0),
            acked_seq: AtomicU64::new(0),
            exit_code: AtomicU32::new(0),
            stats: NodeStats::default(),
            instruments,
            tops,
            md_active: AtomicBool::new(true),
        }
    }

    /// `(bid, ask)` of an instrument as last published: `Some((price, qty))` per side.
    pub fn top(&self, index: usize) -> (Option<PriceQty>, Option<PriceQty>) {
        let t = &self.tops[index];
        let bid = t.bid_px.load(Ordering::Relaxed);
        let ask = t.ask_px.load(Ordering::Relaxed);
        (
            (bid != 0).then(|| (bid, t.bid_qty.load(Ordering::Relaxed))),
            (ask != 0).then(|| (ask, t.ask_qty.load(Ordering::Relaxed))),
        )
    }
}

/// The sequencing stage on its core: inputs from every gateway, outputs to every shard.
///
/// Two logs: the durable, replicated one (`replica`, see `replica_stage.rs`; what `tpx node`
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
                    req.stamps.seq = *tsc.get_or_insert_with(crate::observe::stats::tsc);
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

/// A shard on its core: the engine, its input ring, a ring to every gateway.
#[derive(Debug)]
pub struct ShardStage {
    shard: Shard,
    input: Consumer<Sequenced>,
    /// By gateway number.
    outputs: Vec<Producer<Report>>,
    spill: Vec<VecDeque<Report>>,
    /// `(instrument id, index into Shared::tops)` of this shard's instruments.
    tops: Vec<(InstrumentId, usize)>,
    dirty: Vec<bool>,
    shared: Arc<Shared>,
    /// By gateway number: the doorbell of the gateway's core, when it is another core.
    wake: Vec<Option<Arc<Doorbell>>>,
    pushed: Vec<bool>,
}

impl ShardStage {
    pub fn new(
        shard: Shard,
        input: Consumer<Sequenced>,
        outputs: Vec<Producer<Report>>,
        shared: Arc<Shared>,
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
        (self.spill.iter().all(|q| q.is_empty()), moved)
    }

    /// Applies sequenced requests. Returns the work done.
    pub fn step(&mut self) -> usize {
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
        let mut n = 0;
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
            if matches!(e.req.command(), Some(Command::MassCancel(_))) {
                self.dirty.iter_mut().for_each(|d| *d = true);
            } else if let Some(i) = touched {
                if let Some(k) = self.tops.iter().position(|(id, _)| *id == i) {
                    self.dirty[k] = true;
                }
            }
            if spilled {
                break;
            }
        }
        self.ring_doorbells();
        let md = if self.shard.has_md() {
            let active = self.shared.md_active.load(Ordering::Relaxed);
            self.shard.md_work(clock::now_ns(), active)
        } else {
            0
        };
        if n > 0 {
            self.publish_tops();
            let st = &self.shared.stats;
            st.applied.fetch_add(n as u64, Ordering::Relaxed);
            if fills > 0 {
                st.trades.fetch_add(fills, Ordering::Relaxed);
            }
        }
        n + moved + md
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

/// How a core waits when a cycle found nothing to do: a pure policy (spin, or back off to
/// sleeps), which `CoreRuntime::run` carries out.
#[derive(Debug)]
pub struct Idler {
    mode: IdleMode,
    empty_cycles: u32,
    sleep_us: u64,
    max_us: u64,
}

/// Empty cycles before `park` starts sleeping.
const PARK_AFTER_EMPTY_CYCLES: u32 = 64;
const PARK_MIN_US: u64 = 10;

impl Idler {
    pub fn new(mode: IdleMode, park_max_us: u64) -> Idler {
        Idler {
            mode,
            empty_cycles: 0,
            sleep_us: PARK_MIN_US,
            max_us: park_max_us.max(PARK_MIN_US),
        }
    }

    /// After a cycle that did `work`: `None` to go on (after yielding to glommio if it wants),
    /// `Some(us)` to sleep up to `us` microseconds.
    #[inline]
    pub fn after_cycle(&mut self, work: usize) -> Option<u64> {
        if work > 0 {
            self.empty_cycles = 0;
            self.sleep_us = PARK_MIN_US;
            return None;
        }
        match self.mode {
            IdleMode::Spin => None,
            IdleMode::Park => {
                self.empty_cycles = self.empty_cycles.saturating_add(1);
                if self.empty_cycles < PARK_AFTER_EMPTY_CYCLES {
                    return None;
                }
                let us = self.sleep_us;
                self.sleep_us = (self.sleep_us * 2).min(self.max_us);
                Some(us)
            }
        }
    }
}

/// Everything one core runs.
#[derive(Debug)]
pub struct CoreRuntime {
    pub gateway: Option<Gateway>,
    pub sequencer: Option<SequencerStage>,
    pub shards: Vec<ShardStage>,
    pub shared: Arc<Shared>,
    pub idler: Idler,
    /// This core's doorbell (park mode): it sleeps in `ppoll` on it and its sockets.
    pub doorbell: Option<Arc<Doorbell>>,
}

impl CoreRuntime {
    /// One duty cycle; returns the work done (0: idle).
    #[inline]
    pub fn cycle(&mut self) -> usize {
        let now = clock::now_ns();
        let mut work = 0;
        if let Some(g) = self.gateway.as_mut() {
            work += g.accept(now);
            work += g.read_all(now, clock::unix_ns());
        }
        if let Some(s) = self.sequencer.as_mut() {
            let before = s.stamped();
            work += s.step();
            let n = s.stamped() - before;
            if n > 0 {
                self.shared.stats.sequenced.fetch_add(n, Ordering::Relaxed);
            }
        }
        for sh in self.shards.iter_mut() {
            work += sh.step();
        }
        if let Some(g) = self.gateway.as_mut() {
            work += g.deliver();
            g.timers(now);
            work += g.flush(now);
        }
        work
    }

    /// Sleeps up to `us`: in `ppoll` on the doorbell and the sockets if this core has a
    /// doorbell (after one more cycle with the doorbell armed), else on a glommio timer.
    async fn park(&mut self, us: u64, fds: &mut Vec<libc::pollfd>) {
        let Some(bell) = self.doorbell.clone() else {
            glommio::timer::sleep(Duration::from_micros(us)).await;
            return;
        };
        bell.arm();
        if self.cycle() > 0 {
            bell.disarm();
            self.idler.after_cycle(1);
            return;
        }
        fds.clear();
        fds.push(libc::pollfd {
            fd: bell.fd(),
            events: libc::POLLIN,
            revents: 0,
        });
        if let Some(g) = self.gateway.as_ref() {
            g.poll_fds(fds);
        }
        if let Some(s) = self.sequencer.as_mut() {
            s.poll_fds(fds);
        }
        sleep_on(fds, us);
        bell.disarm();
    }

    /// Runs duty cycles until shutdown.
    pub async fn run(mut self) {
        let mut fds = Vec::new();
        while !self.shared.shutdown.load(Ordering::Relaxed) {
            let work = self.cycle();
            match self.idler.after_cycle(work) {
                None => {
                    if work == 0 {
                        std::hint::spin_loop();
                    }
                }
                Some(us) => self.park(us, &mut fds).await,
            }
            glommio::yield_if_needed().await;
        }
        // Drain what is in flight, then say goodbye.
        for _ in 0..16 {
            if self.cycle() == 0 {
                break;
            }
        }
        if let Some(g) = self.gateway.as_mut() {
            g.shutdown(clock::now_ns());
        }
        if let Some(s) = self.sequencer.as_mut() {
            s.sync();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::{ReportKind, NO_SESSION};
    use crate::runtime::ring::ring;
    use tpx_engine::{EngineConfig, NewOrder, OrderKind, Side, StpMode, TimeInForce};

    fn ioc(cl: u64) -> Request {
        Request::order(
            0,
            0,
            0,
            Command::NewOrder(NewOrder {
                account: 1,
                cl_ord_id: cl,
                instrument: 1,
                side: Side::Buy,
                kind: OrderKind::Limit,
                price: 50_000,
                qty: 1,
                tif: TimeInForce::Ioc,
                post_only: false,
                reduce_only: false,
                stp: StpMode::None,
            }),
        )
    }

    #[test]
    fn park_backs_off_and_spin_never_sleeps() {
        let mut p = Idler::new(IdleMode::Park, 40);
        for _ in 0..PARK_AFTER_EMPTY_CYCLES - 1 {
            assert_eq!(p.after_cycle(0), None);
        }
        assert_eq!(p.after_cycle(0), Some(10));
        assert_eq!(p.after_cycle(0), Some(20));
        assert_eq!(p.after_cycle(0), Some(40));
        assert_eq!(p.after_cycle(0), Some(40));
        assert_eq!(p.after_cycle(3), None);
        assert_eq!(p.after_cycle(0), None, "work resets the backoff");
        let mut s = Idler::new(IdleMode::Spin, 40);
        assert!((0..1000).all(|_| s.after_cycle(0).is_none()));
    }

    #[test]
    fn sequencer_leaves_requests_in_place_while_the_shard_ring_is_full() {
        let (mut gw, seq_in) = ring::<Request>(8);
        let (to_shard, mut shard_in) = ring::<Sequenced>(2);
        let mut s = SequencerStage::new(vec![seq_in], vec![to_shard]);
        for cl in 1..=5 {
            gw.try_push(ioc(cl)).unwrap();
        }
        assert_eq!(s.step(), 2);
        assert_eq!(gw.free_exact(), 8 - 3, "three wait in the gateway's ring");
        let a = shard_in.try_pop().unwrap();
        let b = shard_in.try_pop().unwrap();
        assert_eq!((a.seq, b.seq), (1, 2));
        assert!(b.ts_ns >= a.ts_ns);
        assert_eq!(s.step(), 2);
        assert_eq!(shard_in.try_pop().unwrap().seq, 3);
    }

    #[test]
    fn a_shard_spills_and_stops_taking_input_until_its_output_drains() {
        let specs = vec![crate::config::builtin_instruments()[0].spec().unwrap()];
        let shard = Shard::new(
            0,
            EngineConfig {
                instruments: specs,
                max_orders: 16,
                max_accounts: 4,
            },
            None,
        )
        .unwrap();
        let shared = Arc::new(Shared::new(vec![(1, "BTC-USDT".into())]));
        let (mut seq_out, input) = ring::<Sequenced>(8);
        let (out, mut gw_in) = ring::<Report>(2);
        let mut st = ShardStage::new(shard, input, vec![out], shared);
        for cl in 1..=3 {
            seq_out
                .try_push(Sequenced {
                    seq: cl,
                    ts_ns: 1,
                    req: ioc(cl),
                })
                .unwrap();
        }
        // Order 1 fills the output ring (accepted + cancelled); order 2's reports spill.
        assert_eq!(st.step(), 2);
        assert_eq!(seq_out.free_exact(), 8 - 1, "order 3 still waits");
        let mut got = Vec::new();
        while let Some(r) = gw_in.try_pop() {
            got.push(r);
        }
        // Order 2's reports move; order 3 is applied and its reports spill.
        assert_eq!(st.step(), 2 + 1);
        while let Some(r) = gw_in.try_pop() {
            got.push(r);
        }
        assert_eq!(st.step(), 2, "order 3's reports move");
        while let Some(r) = gw_in.try_pop() {
            got.push(r);
        }
        assert_eq!(st.step(), 0);
        while let Some(r) = gw_in.try_pop() {
            got.push(r);
        }
        let kinds: Vec<(u64, bool)> = got
            .iter()
            .map(|r| match r.kind {
                ReportKind::Accepted { cl_ord_id, .. } => (cl_ord_id, true),
                ReportKind::Cancelled { cl_ord_id, .. } => (cl_ord_id, false),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            kinds,
            vec![
                (1, true),
                (1, false),
                (2, true),
                (2, false),
                (3, true),
                (3, false)
            ]
        );
        assert!(got
            .iter()
            .all(|r| r.account == 1 && (r.session == 0 || r.session == NO_SESSION)));
    }
}
