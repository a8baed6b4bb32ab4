//! Running a stream through a book: throughput (one untimed warm-up run, then the whole stream
//! timed end to end) and latency (a separate run timing every command).

use std::hint::black_box;
use std::time::Instant;

use hdrhistogram::Histogram;
use tpx_engine::reference::ReferenceBook;
use tpx_engine::{Command, Engine, EngineConfig, Event, EventSink};

use crate::peers::PeerBook;
use crate::timer::Timer;
use crate::workload::Stream;

/// The bench's event sink: counts events, fills and rejects and folds a field of each into a
/// checksum, so that the engine's work cannot be optimised away, and does nothing else.
#[derive(Clone, Copy, Debug, Default)]
pub struct CountSink {
    pub events: u64,
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
}

/// The engine and the reference book, as the bench drives them.
pub trait TpxBook: Sized {
    const NAME: &'static str;
    fn build(config: EngineConfig) -> Self;
    fn apply<S: EventSink>(&mut self, ts_ns: u64, cmd: &Command, sink: &mut S);
    fn hash(&self) -> u64;
}

impl TpxBook for Engine {
    const NAME: &'static str = "tpx";
    fn build(config: EngineConfig) -> Self {
        Engine::new(config).expect("the workload's configuration is valid")
    }
    #[inline(always)]
    fn apply<S: EventSink>(&mut self, ts_ns: u64, cmd: &Command, sink: &mut S) {
        self.process(ts_ns, cmd, sink)
    }
    fn hash(&self) -> u64 {
        self.state_hash()
    }
}

impl TpxBook for ReferenceBook {
    const NAME: &'static str = "reference";
    fn build(config: EngineConfig) -> Self {
        ReferenceBook::new(config).expect("the workload's configuration is valid")
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
}

/// A book with the stream's setup applied.
fn prepared<B: TpxBook>(stream: &Stream) -> B {
    let mut book = B::build(stream.config.clone());
    let mut sink = CountSink::default();
    for (i, cmd) in stream.setup.iter().enumerate() {
        book.apply(i as u64, cmd, &mut sink);
    }
    book
}

fn timed_run<B: TpxBook>(stream: &Stream) -> (B, CountSink, f64) {
    let mut book: B = prepared(stream);
    let mut sink = CountSink::default();
    let base = stream.setup.len() as u64;
    let start = Instant::now();
    for (i, cmd) in stream.ops.iter().enumerate() {
        book.apply(base + i as u64, cmd, &mut sink);
    }
    let seconds = start.elapsed().as_secs_f64();
    black_box(&sink);
    (book, sink, seconds)
}

/// Throughput of the engine or the reference book: a warm-up run, then a timed one.
pub fn throughput<B: TpxBook>(stream: &Stream) -> Throughput {
    drop(black_box(timed_run::<B>(stream)));
    let (book, sink, seconds) = timed_run::<B>(stream);
    let ops = stream.ops.len() as u64;
    Throughput {
        ops,
        seconds,
        ops_per_sec: ops as f64 / seconds,
        trades: sink.trades,
        rejects: Some(sink.rejects),
        hash_matches: Some(book.hash() == stream.final_hash),
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
    for (i, cmd) in stream.ops.iter().enumerate() {
        let t0 = timer.now();
        book.apply(base + i as u64, cmd, &mut sink);
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
    }
}
