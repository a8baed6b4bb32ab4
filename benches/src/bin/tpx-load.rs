//! `tpx-load`: a population of market makers and takers over the real order-entry protocol,
//! open loop at stepped target rates (latency from the intended send time, so coordinated
//! omission is corrected) or closed loop, until the target can't be held.
//!
//! ```sh
//! tpx up &                                    # or tpx node --config ...
//! tpx-load --rates 100000,250000 --duration 5 --out lab-runs/first
//! ```
//!
//! Writes into `--out`: `summary.json`, `config.json`, `machine.json`, per rate
//! `rate-<R>.hgrm` (corrected latency, µs), `rate-<R>-service.hgrm`, `rate-<R>.hlog` (1 s
//! intervals, untagged = corrected, `service` tag = service time), and `percentiles`,
//! `latency-over-time`, `throughput-over-time` as `.png` and `.svg`. With the node's stats file
//! (`/dev/shm/tpx-node-<port>.stats`), each step also gets the per-stage breakdown of the round
//! trip (see `tpx_benches::lab::breakdown`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Parser, ValueEnum};
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use tpx_benches::lab::breakdown::{self, Collector};
use tpx_benches::lab::load::{self, LoadConfig, Mode, Step, StepOutput};
use tpx_benches::lab::{hgrm, hlog, machine, plot, relay};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ModeArg {
    Open,
    Closed,
}

#[derive(Parser, Debug, Clone, serde::Serialize)]
#[command(
    name = "tpx-load",
    about = "Stepped-rate load generator for tpx: makers and takers over the real protocol"
)]
struct Args {
    /// The node's order-entry address.
    #[arg(long, default_value = "127.0.0.1:9100")]
    addr: SocketAddr,
    /// Order-entry sessions (each its own TCP connection), over demo accounts 1..=accounts.
    #[arg(long, default_value_t = 8)]
    sessions: usize,
    #[arg(long, default_value_t = 8)]
    accounts: u32,
    /// Instruments the sessions trade (round robin).
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    instruments: Vec<u32>,
    /// On each instrument, every Nth of its sessions is a taker (IOC aggressor, places and
    /// cancels); the rest quote.
    #[arg(long, default_value_t = 4)]
    takers_every: usize,
    /// Orders a maker keeps per side.
    #[arg(long, default_value_t = 5)]
    levels: usize,
    /// Target rates (orders/s over all sessions), stepped in order.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "100000,250000,500000,1000000,2000000"
    )]
    rates: Vec<f64>,
    /// Seconds per step.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Seconds of unrecorded load before the first step (at a fifth of its rate).
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Seconds to wait for the last answers after a step.
    #[arg(long, default_value_t = 2.0)]
    drain: f64,
    #[arg(long, value_enum, default_value_t = ModeArg::Open)]
    #[serde(skip)]
    mode: ModeArg,
    /// Closed loop: requests outstanding per session.
    #[arg(long, default_value_t = 1)]
    window: usize,
    /// Driver threads (they park between sends unless --spin).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Busy-poll instead of parking (burns a core per thread).
    #[arg(long)]
    spin: bool,
    /// The node's stats file (default: /dev/shm/tpx-node-<port>.stats; the breakdown needs it).
    #[arg(long)]
    stats: Option<PathBuf>,
    /// Run folder (default: lab-runs/<unix time>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Keep stepping after a rate could not be held.
    #[arg(long)]
    no_stop: bool,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Most answered orders kept per step for the breakdown join.
    #[arg(long, default_value_t = 2_000_000)]
    max_samples: usize,
    /// A TrueType font for the plots' text (default: DejaVu Sans / Liberation Sans).
    #[arg(long)]
    font: Option<PathBuf>,
    /// Print summary.json on stdout too.
    #[arg(long)]
    json: bool,
    /// Round trips of the relay floor (client → two parked relay processes → client, the
    /// replicated path's hops with no work: `tpx_benches::lab::relay`) measured before the
    /// steps; the summary's `ratio_floor_p50/p99` compare the first step with it. 0: none.
    #[arg(long, default_value_t = 20_000)]
    floor_samples: usize,
    /// 4 KiB O_DIRECT | O_DSYNC writes measured before the steps, one at a time, in
    /// `--disk-floor-dir` (`tpx_benches::e2e::disk_floor`, as `e2e-bench` measures its disk
    /// floor): the write a replicated acknowledgement also waits for (the primary's own
    /// commit). The summary's `ratio_floor_disk_p50/p99` compare the first step with the relay
    /// floor plus this one. 0: none.
    #[arg(long, default_value_t = 3_000)]
    disk_floor_samples: usize,
    /// Where the disk floor writes its 64 MiB file (default: the temp dir, where `tpx up`
    /// keeps its nodes' logs unless given `--dir`).
    #[arg(long)]
    disk_floor_dir: Option<PathBuf>,
    /// The relays' longest park (the nodes' `park_max_us`).
    #[arg(long, default_value_t = 1_000)]
    floor_park_max_us: u64,
    /// Internal: run as one relay of the floor.
    #[arg(long, hide = true)]
    relay_serve: bool,
    #[arg(long, hide = true)]
    relay_next: Option<SocketAddr>,
    #[arg(long, hide = true, default_value_t = 1_000)]
    relay_park_max_us: u64,
    #[arg(long, hide = true)]
    relay_cpu: Option<usize>,
}

/// One line of a floor's percentiles on stderr.
fn say_floor(what: &str, h: &Histogram<u64>) {
    eprintln!(
        "tpx-load: {what} p50 {} us p99 {} us p99.9 {} us max {} us",
        us(h.value_at_quantile(0.5)),
        us(h.value_at_quantile(0.99)),
        us(h.value_at_quantile(0.999)),
        us(h.max())
    );
}

fn pcts(h: &Histogram<u64>) -> Value {
    json!({
        "count": h.len(),
        "mean": (h.mean() * 10.0).round() / 10.0,
        "p50": h.value_at_quantile(0.50),
        "p90": h.value_at_quantile(0.90),
        "p99": h.value_at_quantile(0.99),
        "p999": h.value_at_quantile(0.999),
        "p9999": h.value_at_quantile(0.9999),
        "max": h.max(),
    })
}

fn us(ns: u64) -> String {
    format!("{:.1}", ns as f64 / 1e3)
}

struct Done {
    out: StepOutput,
    breakdown: Option<breakdown::Breakdown>,
    start_s: f64,
    achieved: f64,
    held: bool,
    why_not: Vec<String>,
}

fn run(args: Args) -> Result<bool, String> {
    let dir = args.out.clone().unwrap_or_else(|| {
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        PathBuf::from(format!("lab-runs/{t}"))
    });
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let stats_path = args
        .stats
        .clone()
        .unwrap_or_else(|| tpx_node::observe::stats::default_path(args.addr.port()));
    let stats_map = match tpx_node::observe::stats::StatsMap::open(&stats_path) {
        Ok(m) => Some(m),
        Err(e) => {
            eprintln!("tpx-load: no stage breakdown: {e}");
            None
        }
    };
    let tsc_hz = stats_map.as_ref().map_or_else(
        || tpx_node::runtime::clock::calibrate_tsc_hz(Duration::from_millis(50)),
        |m| m.tsc_hz(),
    );
    let cfg = LoadConfig {
        addr: args.addr,
        sessions: args.sessions.max(1),
        accounts: args.accounts,
        instruments: args.instruments.clone(),
        takers_every: args.takers_every,
        levels: args.levels.max(1),
        threads: args.threads.max(1),
        spin: args.spin,
        mode: match args.mode {
            ModeArg::Open => Mode::Open,
            ModeArg::Closed => Mode::Closed,
        },
        window: args.window,
        seed: args.seed,
        session_base: (std::process::id() % 100_000) * 1000 + 1,
    };
    let config =
        json!({ "args": &args, "load": &cfg, "stats_file": stats_path.display().to_string() });
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_string_pretty(&config).unwrap_or_default(),
    )
    .map_err(|e| e.to_string())?;
    let mach = machine::summary(tsc_hz);
    std::fs::write(
        dir.join("machine.json"),
        serde_json::to_string_pretty(&mach).unwrap_or_default(),
    )
    .map_err(|e| e.to_string())?;

    let floor = if args.floor_samples > 0 {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let h = relay::measure(
            &exe,
            args.floor_samples,
            args.floor_samples / 5,
            Duration::from_micros(100),
            args.floor_park_max_us,
        )?;
        say_floor("relay floor (client -> A -> B -> A -> client, parked)", &h);
        Some(h)
    } else {
        None
    };

    let disk_floor = if args.disk_floor_samples > 0 {
        let d = args
            .disk_floor_dir
            .clone()
            .unwrap_or_else(std::env::temp_dir)
            .join(format!("tpx-load-disk-floor-{}", std::process::id()));
        let h = tpx_benches::e2e::disk_floor(
            &d,
            (args.disk_floor_samples / 5).min(1_000),
            args.disk_floor_samples,
        );
        let _ = std::fs::remove_dir_all(&d);
        let h = h?;
        let place = d
            .parent()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        say_floor(
            &format!("disk floor (4 KiB O_DIRECT|O_DSYNC in {place})"),
            &h,
        );
        Some(h)
    } else {
        None
    };

    let stop = Arc::new(AtomicBool::new(false));
    let mut sessions = load::connect(&cfg)?;
    eprintln!(
        "tpx-load: {} sessions on {} ({} thread(s), {:?} loop, {}), run folder {}",
        cfg.sessions,
        cfg.addr,
        cfg.threads,
        cfg.mode,
        if cfg.spin { "spinning" } else { "parked" },
        dir.display()
    );
    let first = args.rates.first().copied().unwrap_or(100_000.0);
    if args.warmup > 0.0 {
        let _ = load::run_step(
            &cfg,
            &mut sessions,
            Step {
                rate: first / 5.0,
                duration: Duration::from_secs_f64(args.warmup),
                drain: Duration::from_secs_f64(args.drain),
                tsc_hz,
                max_samples: 0,
            },
            &stop,
        );
    }
    let run_start = std::time::Instant::now();
    // Steps back to back; their files and breakdowns are made after the last one, so the
    // sessions never sit idle long enough for a heartbeat timeout between steps.
    struct Raw {
        out: StepOutput,
        traces: Option<(Vec<tpx_node::observe::trace::TraceRecord>, u64)>,
        start_s: f64,
        wall_start: SystemTime,
        achieved: f64,
        why_not: Vec<String>,
    }
    let mut raw: Vec<Raw> = Vec::new();
    for &rate in &args.rates {
        if stop.load(std::sync::atomic::Ordering::Relaxed) {
            break;
        }
        let collector = match &stats_map {
            Some(_) => Collector::start(&stats_path).ok(),
            None => None,
        };
        let start_s = run_start.elapsed().as_secs_f64();
        let wall_start = SystemTime::now();
        let out = load::run_step(
            &cfg,
            &mut sessions,
            Step {
                rate,
                duration: Duration::from_secs_f64(args.duration),
                drain: Duration::from_secs_f64(args.drain),
                tsc_hz,
                max_samples: args.max_samples,
            },
            &stop,
        );
        let traces = collector.map(Collector::finish);
        let secs = out.duration_s.max(1e-9);
        let achieved = out.answered as f64 / secs;
        let mut why_not = Vec::new();
        if cfg.mode == Mode::Open && achieved < 0.95 * rate {
            why_not.push(format!("achieved {achieved:.0}/s < 95% of target"));
        }
        let backpressure = out
            .rejects_by_reason
            .get("Backpressure")
            .copied()
            .unwrap_or(0);
        if backpressure > out.sent / 100 {
            why_not.push(format!("{backpressure} Backpressure rejects (> 1%)"));
        }
        if out.unanswered > out.sent / 1000 {
            why_not.push(format!(
                "{} requests unanswered after the drain",
                out.unanswered
            ));
        }
        if cfg.mode == Mode::Open && out.final_lag_ns > 100_000_000 {
            why_not.push(format!(
                "sender {} ms behind schedule (backlog grew)",
                out.final_lag_ns / 1_000_000
            ));
        }
        if !out.errors.is_empty() {
            why_not.push(format!("errors: {}", out.errors.join("; ")));
        }
        let held = why_not.is_empty();
        eprintln!(
            "tpx-load: target {rate:>9.0}/s  achieved {achieved:>9.0}/s  corrected p50 {} p99 {} p99.9 {} max {} us  service p50 {} p99 {} us  rejects {}  {}",
            us(out.corrected.value_at_quantile(0.5)),
            us(out.corrected.value_at_quantile(0.99)),
            us(out.corrected.value_at_quantile(0.999)),
            us(out.corrected.max()),
            us(out.service.value_at_quantile(0.5)),
            us(out.service.value_at_quantile(0.99)),
            out.rejected,
            if held { "held".to_string() } else { format!("NOT held: {}", why_not.join(", ")) },
        );
        raw.push(Raw {
            out,
            traces,
            start_s,
            wall_start,
            achieved,
            why_not,
        });
        if !held && !args.no_stop {
            break;
        }
    }
    load::close(sessions);

    let mut done: Vec<Done> = Vec::new();
    for r in raw {
        let out = r.out;
        let rate = out.target_rate;
        let breakdown = r.traces.map(|(traces, lost)| {
            breakdown::join(&out.samples, &traces, lost, tsc_hz, &out.service_node)
        });
        let name = format!("rate-{rate:.0}");
        std::fs::write(
            dir.join(format!("{name}.hgrm")),
            hgrm::format(&out.corrected, 5, 1000.0),
        )
        .map_err(|e| e.to_string())?;
        std::fs::write(
            dir.join(format!("{name}-service.hgrm")),
            hgrm::format(&out.service, 5, 1000.0),
        )
        .map_err(|e| e.to_string())?;
        let mut intervals = Vec::new();
        for (i, s) in out.slots.iter().enumerate() {
            for (tag, h) in [(None, &s.corrected), (Some("service"), &s.service)] {
                intervals.push(hlog::Interval {
                    start_s: i as f64,
                    duration_s: 1.0,
                    tag: tag.map(str::to_string),
                    hist: h.clone(),
                });
            }
        }
        let mut f =
            std::fs::File::create(dir.join(format!("{name}.hlog"))).map_err(|e| e.to_string())?;
        hlog::write(
            &mut f,
            r.wall_start,
            &format!("tpx-load target {rate:.0} orders/s; values in ns; untagged = corrected latency (from intended send), tag service = from actual send"),
            &intervals,
        )?;
        if let Some(b) = &breakdown {
            eprintln!(
                "tpx-load: breakdown at {rate:.0}/s ({} of {} orders joined, {} trace records lost, {} stamps out of order): stage means sum {:.1} us vs round trip mean {:.1} us (ratio {:.3})",
                b.joined,
                b.samples,
                b.trace_lost,
                b.negative,
                b.sum_of_stage_means_ns / 1e3,
                b.round_trip_mean_ns / 1e3,
                b.ratio
            );
            for s in &b.stages {
                eprintln!(
                    "tpx-load:     {:<40} mean {:>8.1}  p50 {:>8}  p99 {:>8}  p99.9 {:>8} us",
                    s.stage,
                    s.mean_ns / 1e3,
                    us(s.p50_ns),
                    us(s.p99_ns),
                    us(s.p999_ns)
                );
            }
        }
        done.push(Done {
            held: r.why_not.is_empty(),
            out,
            breakdown,
            start_s: r.start_s,
            achieved: r.achieved,
            why_not: r.why_not,
        });
    }

    // Plots.
    let plot_steps: Vec<plot::PlotStep> = done
        .iter()
        .map(|d| plot::PlotStep {
            rate: d.out.target_rate,
            corrected: &d.out.corrected,
            start_s: d.start_s,
            slots: d
                .out
                .slots
                .iter()
                .map(|s| {
                    (
                        s.corrected.value_at_quantile(0.5),
                        s.corrected.value_at_quantile(0.99),
                        s.corrected.max(),
                        s.answered,
                        s.sent,
                    )
                })
                .collect(),
        })
        .collect();
    let plots = match plot::init_font(args.font.as_deref()) {
        Ok(_) => plot::write_all(
            &dir,
            &plot_steps,
            &format!(
                "tpx latency by percentile ({} sessions, {:?} loop, CO-corrected)",
                cfg.sessions, cfg.mode
            ),
        ),
        Err(e) => Err(e),
    };
    let plot_files: Value = match &plots {
        Ok(files) => json!(files
            .iter()
            .map(|f| f
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string())
            .collect::<Vec<_>>()),
        Err(e) => {
            eprintln!("tpx-load: no plots: {e}");
            json!({ "error": e })
        }
    };

    let max_held = done
        .iter()
        .filter(|d| d.held)
        .map(|d| d.out.target_rate)
        .fold(None, |m: Option<f64>, r| Some(m.map_or(r, |m| m.max(r))));
    let steps: Vec<Value> = done
        .iter()
        .map(|d| {
            let o = &d.out;
            json!({
                "target_rate": o.target_rate,
                "duration_s": o.duration_s,
                "sent": o.sent,
                "answered": o.answered,
                "achieved_rate": d.achieved.round(),
                "rejected": o.rejected,
                "rejects_by_reason": o.rejects_by_reason,
                "unanswered": o.unanswered,
                "max_outstanding": o.max_outstanding,
                "final_lag_ns": o.final_lag_ns,
                "held": d.held,
                "not_held_because": d.why_not,
                "latency_corrected_ns": pcts(&o.corrected),
                "latency_service_ns": pcts(&o.service),
                "latency_service_through_node_ns": pcts(&o.service_node),
                "per_second": o.slots.iter().map(|s| json!({
                    "sent": s.sent, "answered": s.answered,
                    "p50_ns": s.corrected.value_at_quantile(0.5),
                    "p99_ns": s.corrected.value_at_quantile(0.99),
                    "max_ns": s.corrected.max(),
                })).collect::<Vec<_>>(),
                "breakdown": d.breakdown,
                "files": {
                    "hgrm": format!("rate-{:.0}.hgrm", o.target_rate),
                    "service_hgrm": format!("rate-{:.0}-service.hgrm", o.target_rate),
                    "hlog": format!("rate-{:.0}.hlog", o.target_rate),
                },
            })
        })
        .collect();
    // The first step against the floor measured in this run (same machine, same moment).
    let ratio = |q: f64| -> Option<f64> {
        let f = floor.as_ref()?;
        let first = done.first()?;
        let r =
            first.out.corrected.value_at_quantile(q) as f64 / f.value_at_quantile(q).max(1) as f64;
        Some((r * 1000.0).round() / 1000.0)
    };
    // The same against the relay floor plus the disk floor, quantile by quantile: what a
    // replicated acknowledgement waits for at least (the standby's round trip and the primary's
    // own commit, here as if one after the other).
    let ratio_disk = |q: f64| -> Option<f64> {
        let (f, d) = (floor.as_ref()?, disk_floor.as_ref()?);
        let first = done.first()?;
        let base = f.value_at_quantile(q) + d.value_at_quantile(q);
        let r = first.out.corrected.value_at_quantile(q) as f64 / base.max(1) as f64;
        Some((r * 1000.0).round() / 1000.0)
    };
    let summary = json!({
        "tool": "tpx-load",
        "relay_floor_ns": floor.as_ref().map(pcts),
        "ratio_floor_p50": ratio(0.5),
        "ratio_floor_p99": ratio(0.99),
        "disk_floor_ns": disk_floor.as_ref().map(pcts),
        "ratio_floor_disk_p50": ratio_disk(0.5),
        "ratio_floor_disk_p99": ratio_disk(0.99),
        "ratio_floor_rate": done.first().map(|d| d.out.target_rate),
        "units": "ns",
        "mode": cfg.mode,
        "sessions": cfg.sessions,
        "threads": cfg.threads,
        "spin": cfg.spin,
        "max_sustainable_rate": max_held,
        "steps": steps,
        "plots": plot_files,
        "machine": mach,
    });
    let text = serde_json::to_string_pretty(&summary).unwrap_or_default();
    std::fs::write(dir.join("summary.json"), &text).map_err(|e| e.to_string())?;
    if args.json {
        println!("{text}");
    }
    eprintln!(
        "tpx-load: max sustainable rate {}; wrote {}",
        max_held.map_or("none of the steps".to_string(), |r| format!(
            "{r:.0} orders/s"
        )),
        dir.display()
    );
    Ok(plots.is_ok())
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.relay_serve {
        return match relay::serve(args.relay_next, args.relay_park_max_us, args.relay_cpu) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("tpx-load relay: {e}");
                ExitCode::FAILURE
            }
        };
    }
    match run(args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(2),
        Err(e) => {
            eprintln!("tpx-load: {e}");
            ExitCode::FAILURE
        }
    }
}
