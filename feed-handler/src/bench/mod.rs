//! `md-bench`: what market data costs, measured on this machine.
//!
//! - **md**: one-way latency from the shard's event to the feed handler's book update. A
//!   publisher thread runs a real engine and [`tpx_md::MdPublisher`]; before each command it
//!   reads the monotonic clock and passes the reading as the command's timestamp, which every
//!   market-data message carries; the feed handler's listener reads the same clock when the
//!   book has been updated and records the difference (once per command).
//! - **floor**: the same threads, path, pacing and message size (one 72-byte packet: a packet
//!   header and one 48-byte message) through bare Aeron: offer a timestamp, poll it, record.
//! - **apply**: the feed handler's decode + apply rate on a recorded stream (an
//!   exchange-core-like mix through a real engine and the publisher, captured in memory), fed to
//!   [`FeedCore`] on one thread.
//!
//! The feed thread busy-polls. On UDP paths the embedded driver (shared mode, one thread) spins
//! too and the publisher thread sleeps between commands; on IPC the driver backs off (it is not
//! on the data path) and the publisher waits between commands spinning on the clock. Either way
//! two threads spin.

pub mod workload;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tpx_engine::{Command, Engine, EngineConfig};
use tpx_md::{
    AeronChannels, AeronClient, AeronSetup, CaptureTransport, ChannelConfig, DriverConfig,
    DriverIdle, EmbeddedDriver, MdPublisher, NoReports, PublisherConfig,
};

use crate::book::Books;
use crate::core::{FeedConfig, FeedCore, Source};
use crate::handler::{FeedHandler, FeedHandlerConfig};
use crate::listener::{BookEvent, FeedListener};
use workload::WorkloadParams;

/// The path the latency runs take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BenchPath {
    /// `aeron:ipc` (shared memory; the driver is not on the data path).
    Ipc,
    /// UDP unicast on 127.0.0.1 (through the driver's sender and receiver).
    Udp,
    /// UDP multicast on the loopback of a private network namespace (the caller must already
    /// be inside one: see [`netns`]).
    Multicast,
}

impl BenchPath {
    pub fn name(self) -> &'static str {
        match self {
            BenchPath::Ipc => "ipc",
            BenchPath::Udp => "udp",
            BenchPath::Multicast => "multicast",
        }
    }

    pub fn from_name(s: &str) -> Option<BenchPath> {
        [BenchPath::Ipc, BenchPath::Udp, BenchPath::Multicast]
            .into_iter()
            .find(|p| p.name() == s)
    }

    fn channel(self) -> &'static str {
        match self {
            BenchPath::Ipc => "aeron:ipc",
            BenchPath::Udp => "aeron:udp?endpoint=127.0.0.1:40561",
            BenchPath::Multicast => "aeron:udp?endpoint=224.0.1.1:40456|interface=127.0.0.1",
        }
    }
}

/// What to measure.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    pub path: BenchPath,
    /// Latency samples recorded (per run: md and floor).
    pub samples: usize,
    /// Samples discarded first.
    pub warmup: usize,
    /// Sleep between two commands of the publisher thread.
    pub interval_us: u64,
    /// Commands in the recorded stream for the apply rate.
    pub apply_commands: usize,
    /// Apply runs (the median is reported).
    pub apply_runs: usize,
    pub seed: u64,
    /// Spin the driver on UDP paths (two spinning threads with the feed thread).
    pub spin_driver: bool,
    /// Skip the latency runs (apply rate only).
    pub apply_only: bool,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            path: BenchPath::Udp,
            samples: 50_000,
            warmup: 5_000,
            interval_us: 10,
            apply_commands: 2_000_000,
            apply_runs: 5,
            seed: 42,
            spin_driver: true,
            apply_only: false,
        }
    }
}

/// Latency percentiles, microseconds.
#[derive(Clone, Copy, Debug, Default)]
pub struct Percentiles {
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
    pub samples: u64,
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        let us = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        Percentiles {
            p50_us: us(0.5),
            p99_us: us(0.99),
            p999_us: us(0.999),
            max_us: h.max() as f64 / 1000.0,
            samples: h.len(),
        }
    }
}

/// The result.
#[derive(Clone, Debug, Default)]
pub struct BenchReport {
    pub path: String,
    pub md: Percentiles,
    pub floor: Percentiles,
    /// On the publisher thread: engine + encoding + offer, per command.
    pub publish: Percentiles,
    pub ratio_p50: f64,
    /// Messages per second of wall time (median run).
    pub apply_msgs_per_sec: f64,
    pub apply_ns_per_msg: f64,
    /// Messages per second of the applying thread's CPU time (median run).
    pub apply_cpu_msgs_per_sec: f64,
    pub apply_messages: u64,
    pub apply_packets: u64,
}

impl BenchReport {
    /// `{"md": {"p50_us","p99_us","p999_us"}, "floor": {"p50_us","p99_us"}, "ratio_p50",
    /// "apply_msgs_per_sec", ...}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "path": self.path,
            "md": {
                "p50_us": self.md.p50_us,
                "p99_us": self.md.p99_us,
                "p999_us": self.md.p999_us,
                "max_us": self.md.max_us,
                "samples": self.md.samples,
            },
            "floor": {
                "p50_us": self.floor.p50_us,
                "p99_us": self.floor.p99_us,
                "p999_us": self.floor.p999_us,
                "max_us": self.floor.max_us,
                "samples": self.floor.samples,
            },
            "publish": {
                "p50_us": self.publish.p50_us,
                "p99_us": self.publish.p99_us,
                "p999_us": self.publish.p999_us,
            },
            "ratio_p50": self.ratio_p50,
            "apply_msgs_per_sec": self.apply_msgs_per_sec,
            "apply_ns_per_msg": self.apply_ns_per_msg,
            "apply_cpu_msgs_per_sec": self.apply_cpu_msgs_per_sec,
            "apply_messages": self.apply_messages,
            "apply_packets": self.apply_packets,
        })
    }
}

/// Waits `interval` between two sends of the publisher thread: sleeping on UDP paths (the
/// driver and the feed thread already spin there), spinning on the clock on IPC (the driver is
/// not on the data path and backs off, so the publisher and the feed are the two spinning
/// threads) so that the publisher's caches stay warm as a shard's on a dedicated core do.
fn pace(path: BenchPath, interval: Duration) {
    if path == BenchPath::Ipc {
        let until = Instant::now() + interval;
        while Instant::now() < until {
            std::hint::spin_loop();
        }
    } else {
        thread::sleep(interval);
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("histogram bounds")
}

/// Runs everything `opts` asks for.
pub fn run(opts: &BenchOptions) -> Result<BenchReport, String> {
    let mut r = BenchReport {
        path: opts.path.name().to_string(),
        ..BenchReport::default()
    };
    let (arena, index, msgs) = record_stream(
        &WorkloadParams::exchange_core_like(),
        opts.seed,
        opts.apply_commands,
    );
    let (rate, ns, cpu_rate) = apply_rate(&arena, &index, msgs, opts.apply_runs)?;
    r.apply_msgs_per_sec = rate;
    r.apply_ns_per_msg = ns;
    r.apply_cpu_msgs_per_sec = cpu_rate;
    r.apply_messages = msgs;
    r.apply_packets = index.len() as u64;
    if opts.apply_only {
        return Ok(r);
    }
    let driver = EmbeddedDriver::launch(&DriverConfig {
        idle: if opts.spin_driver && opts.path != BenchPath::Ipc {
            DriverIdle::Spin
        } else {
            DriverIdle::Backoff
        },
        term_length: 1 << 20,
        ipc_term_length: 1 << 20,
        sparse_terms: false,
        ..DriverConfig::default()
    })
    .map_err(|e| e.to_string())?;
    let dir = driver.dir().to_string();
    let floor = floor_latency(opts, &dir)?;
    let (md, publish) = md_latency(opts, &dir)?;
    drop(driver);
    r.md = Percentiles::of(&md);
    r.publish = Percentiles::of(&publish);
    r.floor = Percentiles::of(&floor);
    r.ratio_p50 = if r.floor.p50_us > 0.0 {
        r.md.p50_us / r.floor.p50_us
    } else {
        0.0
    };
    Ok(r)
}

/// Runs a command stream through an engine and a publisher; returns the packets of feed A
/// back to back, their (offset, length) and the number of messages.
pub fn record_stream(p: &WorkloadParams, seed: u64, n: usize) -> (Vec<u8>, Vec<(u32, u32)>, u64) {
    let cmds = workload::generate(p, seed, n);
    let mut engine = Engine::new(p.engine_config()).expect("engine config");
    let mut md =
        MdPublisher::new(PublisherConfig::default(), CaptureTransport::new()).expect("publisher");
    for (i, c) in cmds.iter().enumerate() {
        md.process(&mut engine, i as u64 + 1, c, &mut NoReports);
    }
    let msgs = md.next_seq() - 1;
    let packets = std::mem::take(&mut md.transport_mut().a);
    let mut arena = Vec::with_capacity(packets.iter().map(Vec::len).sum());
    let mut index = Vec::with_capacity(packets.len());
    for p in &packets {
        index.push((arena.len() as u32, p.len() as u32));
        arena.extend_from_slice(p);
    }
    (arena, index, msgs)
}

/// CPU time of the calling thread, nanoseconds (what it ran, whatever else shares its core).
pub fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec and the clock id is a constant Linux defines.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0;
    }
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}

/// Decodes and applies a recorded stream `runs` times with a fresh [`FeedCore`] each time;
/// returns the median rate (messages per second of wall time), nanoseconds per message, and
/// the median rate per second of the thread's CPU time (insensitive to other work on the core).
pub fn apply_rate(
    arena: &[u8],
    index: &[(u32, u32)],
    msgs: u64,
    runs: usize,
) -> Result<(f64, f64, f64), String> {
    let mut rates = Vec::new();
    let mut cpu_rates = Vec::new();
    for _ in 0..runs.max(1) {
        let mut core = FeedCore::new(FeedConfig {
            feeds: 1,
            retransmit: false,
            snapshot: false,
            expected_orders: 1 << 14,
            ..FeedConfig::default()
        });
        let t0 = Instant::now();
        let c0 = thread_cpu_ns();
        for &(off, len) in index {
            let bytes = &arena[off as usize..(off + len) as usize];
            core.on_packet(Source::A, bytes, 0, &mut ());
        }
        let dt = t0.elapsed().as_secs_f64();
        let cpu = thread_cpu_ns().saturating_sub(c0).max(1) as f64 / 1e9;
        let s = core.stats();
        if core.next_seq() != msgs + 1 || s.book_errors != 0 || s.decode_errors != 0 {
            return Err(format!(
                "apply run ended at {} of {} messages ({} book errors, {} decode errors)",
                core.next_seq(),
                msgs + 1,
                s.book_errors,
                s.decode_errors
            ));
        }
        std::hint::black_box(core.books().live_orders());
        rates.push(msgs as f64 / dt);
        cpu_rates.push(msgs as f64 / cpu);
    }
    rates.sort_by(|a, b| a.total_cmp(b));
    cpu_rates.sort_by(|a, b| a.total_cmp(b));
    let median = rates[rates.len() / 2];
    Ok((median, 1e9 / median, cpu_rates[cpu_rates.len() / 2]))
}

struct Recorder {
    hist: Histogram<u64>,
    last_ts: u64,
    seen: usize,
    warmup: usize,
}

impl FeedListener for Recorder {
    #[inline]
    fn on_book(&mut self, ev: &BookEvent, _books: &Books) {
        if ev.timestamp_ns != self.last_ts {
            let now = AeronClient::nano_clock();
            self.last_ts = ev.timestamp_ns;
            self.seen += 1;
            if self.seen > self.warmup {
                self.hist
                    .saturating_record(now.saturating_sub(ev.timestamp_ns).max(1));
            }
        }
    }
}

const MD_STREAM: i32 = 20;
const FLOOR_STREAM: i32 = 21;

fn md_latency(opts: &BenchOptions, dir: &str) -> Result<(Histogram<u64>, Histogram<u64>), String> {
    let total = opts.warmup + opts.samples;
    let params = WorkloadParams::passive();
    let cmds = workload::generate(&params, opts.seed, total * 3 / 2 + 1000);
    let channel = opts.path.channel();
    let ready = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicBool::new(false));
    let feed = {
        let (ready, done) = (ready.clone(), done.clone());
        let dir = dir.to_string();
        let warmup = opts.warmup;
        thread::Builder::new()
            .name("md-bench-feed".into())
            .spawn(move || -> Result<Histogram<u64>, String> {
                let mut cfg = FeedHandlerConfig::new(
                    AeronSetup::External { dir },
                    ChannelConfig::new(channel, MD_STREAM),
                );
                cfg.core.stream_id = 1;
                let mut fh = FeedHandler::connect(cfg).map_err(|e| e.to_string())?;
                ready.store(true, Ordering::Release);
                let mut rec = Recorder {
                    hist: histogram(),
                    last_ts: 0,
                    seen: 0,
                    warmup,
                };
                let deadline = Instant::now() + Duration::from_secs(300);
                let mut quiet_since: Option<Instant> = None;
                while rec.seen < total && Instant::now() < deadline {
                    if fh.poll(AeronClient::nano_clock(), &mut rec) > 0 {
                        quiet_since = None;
                    } else if done.load(Ordering::Acquire) {
                        // The publisher ran out of commands: stop once the stream is quiet.
                        let q = *quiet_since.get_or_insert_with(Instant::now);
                        if q.elapsed() > Duration::from_millis(200) {
                            break;
                        }
                    }
                }
                done.store(true, Ordering::Release);
                if rec.seen <= warmup {
                    return Err(format!("md: {} of {total} samples", rec.seen));
                }
                Ok(rec.hist)
            })
            .map_err(|e| e.to_string())?
    };
    while !ready.load(Ordering::Acquire) && !feed.is_finished() {
        thread::sleep(Duration::from_millis(1));
    }
    let mut md = MdPublisher::connect(
        PublisherConfig {
            stream_id: 1,
            heartbeat_interval_ns: u64::MAX,
            ..PublisherConfig::default()
        },
        &AeronChannels {
            setup: AeronSetup::External {
                dir: dir.to_string(),
            },
            a: ChannelConfig::new(channel, MD_STREAM),
            b: None,
            snapshot: None,
        },
    )
    .map_err(|e| e.to_string())?;
    wait_connected(|| md.transport().client().errors() == 0 && is_connected(&md))?;
    let mut engine = Engine::new(params.engine_config()).map_err(|e| e.to_string())?;
    let interval = Duration::from_micros(opts.interval_us);
    let mut publish = histogram();
    for c in &cmds {
        if done.load(Ordering::Acquire) {
            break;
        }
        pace(opts.path, interval);
        let t = AeronClient::nano_clock();
        md.process(&mut engine, t, c, &mut NoReports);
        publish.saturating_record(AeronClient::nano_clock().saturating_sub(t).max(1));
    }
    done.store(true, Ordering::Release);
    let h = feed
        .join()
        .map_err(|_| "feed thread panicked".to_string())??;
    let st = md.stats();
    if st.a.back_pressured + st.a.not_connected + st.a.failed > 0 {
        eprintln!("md-bench: publisher offers not sent: {:?}", st.a);
    }
    Ok((h, publish))
}

fn is_connected(md: &MdPublisher) -> bool {
    use tpx_md::MdTransport;
    md.transport().is_connected(tpx_md::Channel::A)
}

fn wait_connected(mut f: impl FnMut() -> bool) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        if Instant::now() > deadline {
            return Err("publication never connected".into());
        }
        thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

fn floor_latency(opts: &BenchOptions, dir: &str) -> Result<Histogram<u64>, String> {
    let total = opts.warmup + opts.samples;
    let channel = opts.path.channel();
    let ready = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicBool::new(false));
    let sub = {
        let (ready, done) = (ready.clone(), done.clone());
        let dir = dir.to_string();
        let warmup = opts.warmup;
        thread::Builder::new()
            .name("md-bench-floor".into())
            .spawn(move || -> Result<Histogram<u64>, String> {
                let client = AeronClient::connect(&AeronSetup::External { dir })
                    .map_err(|e| e.to_string())?;
                let s = client
                    .subscription(channel, FLOOR_STREAM)
                    .map_err(|e| e.to_string())?;
                ready.store(true, Ordering::Release);
                let mut hist = histogram();
                let mut seen = 0usize;
                let deadline = Instant::now() + Duration::from_secs(300);
                while seen < total && Instant::now() < deadline {
                    let _ = s.poll_fn(
                        |buf, _| {
                            let now = AeronClient::nano_clock();
                            let mut b = [0u8; 8];
                            b.copy_from_slice(&buf[8..16]);
                            seen += 1;
                            if seen > warmup {
                                hist.saturating_record(
                                    now.saturating_sub(u64::from_le_bytes(b)).max(1),
                                );
                            }
                        },
                        16,
                    );
                }
                done.store(true, Ordering::Release);
                drop(s);
                drop(client);
                if seen < total {
                    return Err(format!("floor: {seen} of {total} samples"));
                }
                Ok(hist)
            })
            .map_err(|e| e.to_string())?
    };
    while !ready.load(Ordering::Acquire) && !sub.is_finished() {
        thread::sleep(Duration::from_millis(1));
    }
    let client = AeronClient::connect(&AeronSetup::External {
        dir: dir.to_string(),
    })
    .map_err(|e| e.to_string())?;
    let p = client
        .exclusive_publication(channel, FLOOR_STREAM)
        .map_err(|e| e.to_string())?;
    wait_connected(|| p.is_connected())?;
    // One packet header and one 48-byte message, as an md packet of one AddOrder.
    let mut buf = [0u8; 72];
    let interval = Duration::from_micros(opts.interval_us);
    let mut unsent = 0u64;
    while !done.load(Ordering::Acquire) {
        pace(opts.path, interval);
        let t = AeronClient::nano_clock();
        buf[8..16].copy_from_slice(&t.to_le_bytes());
        // Retry only an admin action (term rotation), as the publisher does.
        let mut sent = false;
        for _ in 0..4 {
            match p.offer(&buf) {
                Ok(_) => sent = true,
                Err(rusteron_client::AeronOfferError::AdminAction) => continue,
                Err(_) => {}
            }
            break;
        }
        if !sent {
            unsent += 1;
        }
    }
    let h = sub
        .join()
        .map_err(|_| "floor thread panicked".to_string())??;
    if unsent > 0 {
        eprintln!("md-bench: floor offers not sent: {unsent}");
    }
    drop(p);
    drop(client);
    Ok(h)
}

/// Running a command inside a private network namespace (for multicast, which must never
/// leave the machine: the root namespace's multicast interface leads off it).
pub mod netns {
    use std::process::{Command, ExitStatus};

    /// Set in the child that runs inside the namespace.
    pub const CHILD_ENV: &str = "TPX_NETNS_CHILD";

    /// Whether this process is the child inside the namespace.
    pub fn in_child() -> bool {
        std::env::var_os(CHILD_ENV).is_some()
    }

    /// Runs this executable again with `args` inside a new user + network namespace
    /// (`unshare -rn`) with the loopback up, and waits for it.
    pub fn run_self(args: &[String]) -> std::io::Result<ExitStatus> {
        let exe = std::env::current_exe()?;
        Command::new("unshare")
            .args(["-rn", "sh", "-c", "ip link set lo up && exec \"$0\" \"$@\""])
            .arg(exe)
            .args(args)
            .env(CHILD_ENV, "1")
            .status()
    }
}

/// Commands for a workload (re-exported for tests).
pub fn commands(p: &WorkloadParams, seed: u64, n: usize) -> Vec<Command> {
    workload::generate(p, seed, n)
}

/// The engine configuration of a workload (re-exported for tests).
pub fn engine_config(p: &WorkloadParams) -> EngineConfig {
    p.engine_config()
}
