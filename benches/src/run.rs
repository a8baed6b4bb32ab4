//! Running a stream through a book: throughput (one untimed warm-up run, then the whole stream
//! timed end to end) and latency (a separate run timing every command).

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use hdrhistogram::Histogram;
use tpx_engine::reference::ReferenceBook;
use tpx_engine::{
    Command, Engine, Event, EventSink, InstrumentId, PriceTicks, RiskCommand, RiskEvent,
};

use crate::peers::PeerBook;
use crate::timer::Timer;
use crate::workload::Stream;

/// The bench's event sink: counts events, fills and rejects and folds a field of each into a
/// checksum, so that the engine's work cannot be optimised away, and does nothing else.
#[derive(Clone, Copy, Debug, Default)]
pub struct CountSink {
    pub events: u64,
    pub risk_events: u64,
    pub trades: u64,
    pub rejects: u64,
    pub checksum: u64,
}

impl EventSink for CountSink {
    #[inline(always)]
    fn emit(&mut self, event: Event) {
        self.events += 1;
        match event {
            Event::Fill { trade_id, qty, .. } => {
                self.trades += 1;
                self.checksum ^= trade_id ^ qty;
            }
            Event::Rejected { reason, .. } => {
                self.rejects += 1;
                self.checksum ^= reason as u64;
            }
            Event::Accepted { order_id, .. } => self.checksum ^= order_id,
            _ => {}
        }
    }

    #[inline(always)]
    fn emit_risk(&mut self, event: RiskEvent) {
        self.risk_events += 1;
        if let RiskEvent::Fees { taker_fee, .. } = event {
            self.checksum ^= taker_fee as u64;
        }
    }
}

/// The engine and the reference book, as the bench drives them.
pub trait TpxBook: Sized {
    const NAME: &'static str;
    /// A book for the stream, before its setup.
    fn build(stream: &Stream) -> Self;
    fn apply<S: EventSink>(&mut self, ts_ns: u64, cmd: &Command, sink: &mut S);
    /// `apply`, told the commands that follow (the engine prefetches for them:
    /// `Engine::process_ahead`); books without a lookahead just apply.
    #[inline(always)]
    fn apply_ahead<S: EventSink>(
        &mut self,
        ts_ns: u64,
        cmd: &Command,
        _next: &[Command],
        sink: &mut S,
    ) {
        self.apply(ts_ns, cmd, sink)
    }
    fn hash(&self) -> u64;
}

/// Whether the runs tell the engine the commands that follow (`--lookahead`, on by default).
static LOOKAHEAD: AtomicBool = AtomicBool::new(true);

/// Turns the engine's lookahead (`Engine::process_ahead`) on or off for the runs that follow.
pub fn set_lookahead(on: bool) {
    LOOKAHEAD.store(on, Ordering::Relaxed);
}

/// The commands after `i` that a book applying `cmds[i]` is told about (none with the
/// lookahead off).
#[inline(always)]
fn ahead(cmds: &[Command], i: usize, on: bool) -> &[Command] {
    if on {
        &cmds[i + 1..]
    } else {
        &[]
    }
}

/// The engine with risk off (`Engine::new`), whatever the workload.
impl TpxBook for Engine {
    const NAME: &'static str = "tpx";
    fn build(stream: &Stream) -> Self {
        Engine::new(stream.config.clone()).expect("the workload's configuration is valid")
    }
    #[inline(always)]
    fn apply<S: EventSink>(&mut self, ts_ns: u64, cmd: &Command, sink: &mut S) {
        self.process(ts_ns, cmd, sink)
    }
    #[inline(always)]
    fn apply_ahead<S: EventSink>(
        &mut self,
        ts_ns: u64,
        cmd: &Command,
        next: &[Command],
        sink: &mut S,
    ) {
        self.process_ahead(ts_ns, cmd, next, sink)
    }
    fn hash(&self) -> u64 {
        self.state_hash()
    }
}

/// The engine with risk on (`Engine::with_risk`), its accounts funded by the stream's risk
/// setup (deposits and fee tiers, applied when it is built: untimed).
#[derive(Debug)]
pub struct RiskEngine(pub Engine);

impl TpxBook for RiskEngine {
    const NAME: &'static str = "tpx (risk on)";
    fn build(stream: &Stream) -> Self {
        let risk = stream
            .risk
            .as_ref()
            .expect("a risk workload has a risk configuration");
        let mut engine = Engine::with_risk(stream.config.clone(), risk.config.clone())
            .expect("the workload's risk configuration is valid");
        let mut sink = CountSink::default();
        for (i, cmd) in risk.setup.iter().enumerate() {
            engine.process_risk(i as u64, cmd, &mut sink);
        }
        assert_eq!(sink.rejects, 0, "the risk setup is accepted");
        RiskEngine(engine)
    }
    #[inline(always)]
    fn apply<S: EventSink>(&mut self, ts_ns: u64, cmd: &Command, sink: &mut S) {
        self.0.process(ts_ns, cmd, sink)
    }
    #[inline(always)]
    fn apply_ahead<S: EventSink>(
        &mut self,
        ts_ns: u64,
        cmd: &Command,
        next: &[Command],
        sink: &mut S,
    ) {
        self.0.process_ahead(ts_ns, cmd, next, sink)
    }
    fn hash(&self) -> u64 {
        self.0.state_hash()
    }
}

impl TpxBook for ReferenceBook {
    const NAME: &'static str = "reference";
    fn build(stream: &Stream) -> Self {
        ReferenceBook::new(stream.config.clone()).expect("the workload's configuration is valid")
    }
    #[inline(always)]
    fn apply<S: EventSink>(&mut self, ts_ns: u64, cmd: &Command, sink: &mut S) {
        self.process(ts_ns, cmd, sink)
    }
    fn hash(&self) -> u64 {
        self.state_hash()
    }
}

/// The result of one timed run over the stream's operations.
#[derive(Clone, Copy, Debug)]
pub struct Throughput {
    pub ops: u64,
    pub seconds: f64,
    pub ops_per_sec: f64,
    pub trades: u64,
    /// Rejected commands (`None` for peers, which have no comparable notion).
    pub rejects: Option<u64>,
    /// The final state hash equals the generator's shadow book's (`None` for peers).
    pub hash_matches: Option<bool>,
    /// The final state hash (0 for peers).
    pub hash: u64,
}

/// A book with the stream's setup applied.
fn prepared<B: TpxBook>(stream: &Stream) -> B {
    let mut book = B::build(stream);
    let mut sink = CountSink::default();
    let on = LOOKAHEAD.load(Ordering::Relaxed);
    for (i, cmd) in stream.setup.iter().enumerate() {
        book.apply_ahead(i as u64, cmd, ahead(&stream.setup, i, on), &mut sink);
    }
    book
}

fn timed_run<B: TpxBook>(stream: &Stream) -> (B, CountSink, f64) {
    let mut book: B = prepared(stream);
    let mut sink = CountSink::default();
    let base = stream.setup.len() as u64;
    let on = LOOKAHEAD.load(Ordering::Relaxed);
    let start = Instant::now();
    for (i, cmd) in stream.ops.iter().enumerate() {
        book.apply_ahead(base + i as u64, cmd, ahead(&stream.ops, i, on), &mut sink);
    }
    let seconds = start.elapsed().as_secs_f64();
    black_box(&sink);
    (book, sink, seconds)
}

/// Throughput of the engine or the reference book: a warm-up run, then a timed one.
pub fn throughput<B: TpxBook>(stream: &Stream) -> Throughput {
    drop(black_box(timed_run::<B>(stream)));
    one_run::<B>(stream)
}

/// `runs` timed runs (each on a fresh book, after its untimed setup) after one warm-up run.
pub fn throughput_runs<B: TpxBook>(stream: &Stream, runs: usize) -> Vec<Throughput> {
    drop(black_box(timed_run::<B>(stream)));
    (0..runs.max(1)).map(|_| one_run::<B>(stream)).collect()
}

/// One timed run on a fresh book (after its untimed setup).
fn one_run<B: TpxBook>(stream: &Stream) -> Throughput {
    let (book, sink, seconds) = timed_run::<B>(stream);
    let ops = stream.ops.len() as u64;
    let hash = book.hash();
    Throughput {
        ops,
        seconds,
        ops_per_sec: ops as f64 / seconds,
        trades: sink.trades,
        rejects: Some(sink.rejects),
        hash_matches: Some(hash == stream.final_hash),
        hash,
    }
}

/// A book that also takes mark prices (the `triggers` workload: `SetMarkPrice` with risk off).
pub trait MarkBook: TpxBook {
    fn mark<S: EventSink>(
        &mut self,
        ts_ns: u64,
        instrument: InstrumentId,
        price: PriceTicks,
        sink: &mut S,
    );
}

impl MarkBook for Engine {
    #[inline(always)]
    fn mark<S: EventSink>(
        &mut self,
        ts_ns: u64,
        instrument: InstrumentId,
        price: PriceTicks,
        sink: &mut S,
    ) {
        self.process_risk(
            ts_ns,
            &RiskCommand::SetMarkPrice { instrument, price },
            sink,
        )
    }
}

impl MarkBook for ReferenceBook {
    fn mark<S: EventSink>(
        &mut self,
        ts_ns: u64,
        instrument: InstrumentId,
        price: PriceTicks,
        sink: &mut S,
    ) {
        self.process_risk(
            ts_ns,
            &RiskCommand::SetMarkPrice { instrument, price },
            sink,
        )
    }
}

fn timed_run_marks<B: MarkBook>(stream: &Stream) -> (B, CountSink, f64) {
    let mut book: B = prepared(stream);
    let mut sink = CountSink::default();
    let base = stream.setup.len() as u64;
    let mut marks = stream.marks.iter().peekable();
    let start = Instant::now();
    for (i, cmd) in stream.ops.iter().enumerate() {
        while let Some(&&(at, instrument, price)) = marks.peek() {
            if at != i {
                break;
            }
            marks.next();
            book.mark(base + i as u64, instrument, price, &mut sink);
        }
        book.apply(base + i as u64, cmd, &mut sink);
    }
    let seconds = start.elapsed().as_secs_f64();
    black_box(&sink);
    (book, sink, seconds)
}

/// [`throughput`] for a stream with mark prices: a warm-up run, then a timed one; the marks
/// count as operations.
pub fn throughput_with_marks<B: MarkBook>(stream: &Stream) -> Throughput {
    drop(black_box(timed_run_marks::<B>(stream)));
    let (book, sink, seconds) = timed_run_marks::<B>(stream);
    let ops = (stream.ops.len() + stream.marks.len()) as u64;
    let hash = book.hash();
    Throughput {
        ops,
        seconds,
        ops_per_sec: ops as f64 / seconds,
        trades: sink.trades,
        rejects: Some(sink.rejects),
        hash_matches: Some(hash == stream.final_hash),
        hash,
    }
}

/// Commands per block of the interleaved risk comparison ([`risk_comparison`]).
pub const RISK_BLOCK: usize = 1 << 16;

/// Risk on against risk off on the same stream.
#[derive(Clone, Debug)]
pub struct RiskComparison {
    /// Each engine's time over the stream: the sum over blocks of its best time for that block.
    pub on: Throughput,
    pub off: Throughput,
    /// Every round's ops/s over the whole stream (its blocks' times summed), in order.
    pub on_runs: Vec<f64>,
    pub off_runs: Vec<f64>,
    /// Every risk-on round ended in the same state hash with the same trades, and every
    /// risk-off round in the shadow book's hash.
    pub deterministic: bool,
    /// The risk-on engine's invariants (risk included) at the end of every round.
    pub invariants: Result<(), String>,
}

/// Times `cmds` through `book`: seconds.
#[inline(never)]
fn time_block<B: TpxBook>(book: &mut B, cmds: &[Command], base: u64, sink: &mut CountSink) -> f64 {
    let on = LOOKAHEAD.load(Ordering::Relaxed);
    let start = Instant::now();
    for (i, cmd) in cmds.iter().enumerate() {
        book.apply_ahead(base + i as u64, cmd, ahead(cmds, i, on), sink);
    }
    let seconds = start.elapsed().as_secs_f64();
    black_box(&*sink);
    seconds
}

/// Runs the stream with risk off (`Engine::new`) and on ([`RiskEngine`]) side by side: each
/// round builds both engines afresh (untimed setup) and feeds them the stream in blocks of
/// [`RISK_BLOCK`] commands, alternating (off then on for even blocks, on then off for odd
/// ones), timing each block. An engine's time is the sum over blocks of its best time for
/// that block over the rounds: on a shared machine both engines see the same load at the
/// same moments, and the best of several tries filters out preemptions and cache thrashing
/// by other processes, for both alike.
pub fn risk_comparison(stream: &Stream, rounds: usize) -> RiskComparison {
    // Profiling aid (`TPX_PROFILE_ONLY=on|off`, e.g. under callgrind): time one engine only.
    let profile_only = std::env::var("TPX_PROFILE_ONLY").ok();
    let rounds = rounds.max(1);
    let blocks = stream.ops.len().div_ceil(RISK_BLOCK);
    let (mut best_on, mut best_off) = (vec![f64::MAX; blocks], vec![f64::MAX; blocks]);
    let (mut on_runs, mut off_runs) = (Vec::new(), Vec::new());
    let mut deterministic = true;
    let mut invariants = Ok(());
    let mut first: Option<(u64, u64)> = None;
    let (mut last_on, mut last_off) = (CountSink::default(), CountSink::default());
    let (mut hash_on, mut hash_off) = (0, 0);
    let base = stream.setup.len() as u64;
    // One untimed warm-up round, then the timed ones.
    for round in 0..=rounds {
        let mut off: Engine = prepared(stream);
        let mut on: RiskEngine = prepared(stream);
        let (mut s_off, mut s_on) = (CountSink::default(), CountSink::default());
        let (mut t_on, mut t_off) = (0.0, 0.0);
        for (b, chunk) in stream.ops.chunks(RISK_BLOCK).enumerate() {
            let at = base + (b * RISK_BLOCK) as u64;
            let (a, c) = if let Some(only) = profile_only.as_deref() {
                if only == "on" {
                    (0.0, time_block(&mut on, chunk, at, &mut s_on))
                } else {
                    (time_block(&mut off, chunk, at, &mut s_off), 0.0)
                }
            } else if b % 2 == 0 {
                let a = time_block(&mut off, chunk, at, &mut s_off);
                (a, time_block(&mut on, chunk, at, &mut s_on))
            } else {
                let c = time_block(&mut on, chunk, at, &mut s_on);
                (time_block(&mut off, chunk, at, &mut s_off), c)
            };
            t_off += a;
            t_on += c;
            if round > 0 {
                best_off[b] = best_off[b].min(a);
                best_on[b] = best_on[b].min(c);
            }
        }
        let h = on.hash();
        deterministic &= off.hash() == stream.final_hash && s_on.trades == s_off.trades;
        match first {
            None => first = Some((h, s_on.trades)),
            Some(f) => deterministic &= f == (h, s_on.trades),
        }
        if invariants.is_ok() {
            invariants = on.0.check_invariants();
        }
        if round > 0 {
            on_runs.push(stream.ops.len() as f64 / t_on);
            off_runs.push(stream.ops.len() as f64 / t_off);
        }
        (last_on, last_off, hash_on, hash_off) = (s_on, s_off, h, off.hash());
    }
    let ops = stream.ops.len() as u64;
    let result = |best: &[f64], sink: &CountSink, hash: u64, matches: Option<bool>| {
        let seconds: f64 = best.iter().sum();
        Throughput {
            ops,
            seconds,
            ops_per_sec: ops as f64 / seconds,
            trades: sink.trades,
            rejects: Some(sink.rejects),
            hash_matches: matches,
            hash,
        }
    };
    RiskComparison {
        // The risk-on hash covers the risk state too: it is compared across rounds instead.
        on: result(&best_on, &last_on, hash_on, None),
        off: result(
            &best_off,
            &last_off,
            hash_off,
            Some(hash_off == stream.final_hash),
        ),
        on_runs,
        off_runs,
        deterministic,
        invariants,
    }
}

/// Latency percentiles in nanoseconds.
#[derive(Clone, Copy, Debug)]
pub struct Latency {
    pub p50: f64,
    pub p99: f64,
    pub p999: f64,
    pub p9999: f64,
    pub max: f64,
    pub mean: f64,
}

/// Times every command of the stream (after the setup) on a fresh book, with `timer`. The
/// histogram holds raw ticks; the timer's own overhead is included (and reported separately).
pub fn latency<B: TpxBook>(stream: &Stream, timer: &Timer) -> Latency {
    let mut book: B = prepared(stream);
    let mut sink = CountSink::default();
    let mut hist = Histogram::<u64>::new_with_bounds(1, 1 << 44, 3).expect("histogram bounds");
    let base = stream.setup.len() as u64;
    let on = LOOKAHEAD.load(Ordering::Relaxed);
    for (i, cmd) in stream.ops.iter().enumerate() {
        let t0 = timer.now();
        book.apply_ahead(base + i as u64, cmd, ahead(&stream.ops, i, on), &mut sink);
        let t1 = timer.now();
        hist.saturating_record(t1.wrapping_sub(t0).max(1));
    }
    black_box(&sink);
    let at = |q: f64| timer.to_ns(hist.value_at_quantile(q));
    Latency {
        p50: at(0.5),
        p99: at(0.99),
        p999: at(0.999),
        p9999: at(0.9999),
        max: timer.to_ns(hist.max()),
        mean: hist.mean() * timer.ns_per_tick(),
    }
}

fn peer_timed_run<P: PeerBook>(stream: &Stream) -> (P, f64) {
    let mut book = P::new(stream);
    for op in &stream.peer_setup {
        book.apply(op);
    }
    let setup_trades = book.trades();
    assert_eq!(
        setup_trades,
        0,
        "{}: the setup is passive and must not trade",
        P::NAME
    );
    let start = Instant::now();
    for op in &stream.peer_ops {
        book.apply(op);
    }
    let seconds = start.elapsed().as_secs_f64();
    (book, seconds)
}

/// Throughput of a peer crate: a warm-up run, then a timed one.
pub fn peer_throughput<P: PeerBook>(stream: &Stream) -> Throughput {
    drop(black_box(peer_timed_run::<P>(stream)));
    let (book, seconds) = peer_timed_run::<P>(stream);
    let ops = stream.peer_ops.len() as u64;
    Throughput {
        ops,
        seconds,
        ops_per_sec: ops as f64 / seconds,
        trades: book.trades(),
        rejects: None,
        hash_matches: None,
        hash: 0,
    }
}
