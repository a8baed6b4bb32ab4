//! The stats publisher thread, off the hot cores: every 100 ms it copies the node-wide counters
//! into the stats file's header and, when configured, answers Prometheus scrapes (text format
//! 0.0.4) from the stats file. The hot cores never wait for it: they write their own blocks;
//! this thread only reads them.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::observe::stats::{bucket_high, StatsMap};
use crate::runtime::state::NodeState;
use crate::shard::md::ShardStream;

/// The upper bounds (seconds) of the latency histograms' `_bucket` series: 1-2-5 steps from
/// 1 µs to 1 s, then `+Inf`. The stats file keeps 6.25%-wide buckets; a fine bucket counts
/// below a bound only when it lies wholly below it, so each `le` count is a lower bound.
pub const LATENCY_BOUNDS_S: [f64; 19] = [
    1e-6, 2e-6, 5e-6, 1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 0.1,
    0.2, 0.5, 1.0,
];

/// What a scrape reports beside the stats file: the node's role and sequence, its shards'
/// market-data counters and the process's own.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeGauges {
    pub primary: bool,
    pub term: u64,
    pub acknowledged_seq: u64,
    pub last_seq: u64,
    pub durable_seq: u64,
    pub replay_done: bool,
    /// Replica checkpoints (`runtime::state::Checkpoints`): last seq, matched, mismatched.
    pub checkpoint_seq: u64,
    pub checkpoints_matched: u64,
    pub checkpoint_mismatches: u64,
    /// Node snapshots (`runtime::state::SnapshotStats`): the image this process started from
    /// (0: none), images written, the last one's seq, segments deleted.
    pub snapshot_start_seq: u64,
    pub snapshots_taken: u64,
    pub snapshot_seq: u64,
    pub segments_deleted: u64,
    pub md: Vec<MdGauges>,
    /// `(shard, reject reason code, count)` of every reason seen, and margin calls by shard.
    pub rejects: Vec<(u16, u8, u64)>,
    pub margin_calls: Vec<(u16, u64)>,
    /// The gateways' unsequenced rejects, summed: throttled, back-pressure.
    pub gateway_throttled: u64,
    pub gateway_backpressure: u64,
    /// The gateways' connection counters, summed (`gateway::io::GatewayCounters`).
    pub gateway_connections: GatewayConnections,
    /// The sequencing stage's `Unavailable` answers, and of them the fences'.
    pub stage_unavailable: u64,
    pub fenced: u64,
    pub process: Option<ProcessStats>,
}

/// The gateways' connection counters, summed over the gateway cores.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct GatewayConnections {
    pub accepted: u64,
    pub logins: u64,
    pub login_rejects: u64,
    pub waiting_logins_evicted: u64,
    pub cancels_on_disconnect: u64,
}

impl GatewayConnections {
    fn of(state: &NodeState) -> GatewayConnections {
        let sum = |f: fn(&crate::runtime::state::GatewayShared) -> &AtomicU64| {
            state
                .gateways
                .iter()
                .map(|g| f(g).load(Ordering::Relaxed))
                .sum()
        };
        GatewayConnections {
            accepted: sum(|g| &g.accepted),
            logins: sum(|g| &g.logins),
            login_rejects: sum(|g| &g.login_rejects),
            waiting_logins_evicted: sum(|g| &g.waiting_logins_evicted),
            cancels_on_disconnect: sum(|g| &g.cancels_on_disconnect),
        }
    }
}

/// One shard's market-data publisher, as counted by the shard.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MdGauges {
    pub shard: u16,
    pub active: bool,
    pub packets: u64,
    pub messages: u64,
    pub back_pressured: u64,
    pub not_connected: u64,
}

impl NodeGauges {
    pub fn of(state: &NodeState, md: &[ShardStream]) -> NodeGauges {
        NodeGauges {
            primary: state.active.load(Ordering::Relaxed),
            term: state.term.load(Ordering::Relaxed),
            acknowledged_seq: state.acked_seq.load(Ordering::Relaxed),
            last_seq: state.last_seq.load(Ordering::Relaxed),
            durable_seq: state.durable_seq.load(Ordering::Relaxed),
            replay_done: state.replay_done.load(Ordering::Relaxed),
            checkpoint_seq: state.checkpoints.seq.load(Ordering::Relaxed),
            checkpoints_matched: state.checkpoints.matched.load(Ordering::Relaxed),
            checkpoint_mismatches: state.checkpoints.diverged.load(Ordering::Relaxed),
            snapshot_start_seq: state.snapshots.start_seq.load(Ordering::Relaxed),
            snapshots_taken: state.snapshots.taken.load(Ordering::Relaxed),
            snapshot_seq: state.snapshots.seq.load(Ordering::Relaxed),
            segments_deleted: state.snapshots.segments_deleted.load(Ordering::Relaxed),
            md: md
                .iter()
                .map(|s| MdGauges {
                    shard: s.shard,
                    active: s.counters.active.load(Ordering::Relaxed) != 0,
                    packets: s.counters.packets.load(Ordering::Relaxed),
                    messages: s.counters.messages.load(Ordering::Relaxed),
                    back_pressured: s.counters.back_pressured.load(Ordering::Relaxed),
                    not_connected: s.counters.not_connected.load(Ordering::Relaxed),
                })
                .collect(),
            rejects: state
                .shard_counts
                .iter()
                .enumerate()
                .flat_map(|(s, c)| {
                    c.rejects.iter().enumerate().filter_map(move |(code, v)| {
                        let v = v.load(Ordering::Relaxed);
                        (v > 0).then_some((s as u16, code as u8, v))
                    })
                })
                .collect(),
            margin_calls: state
                .shard_counts
                .iter()
                .enumerate()
                .map(|(s, c)| (s as u16, c.margin_calls.load(Ordering::Relaxed)))
                .collect(),
            gateway_throttled: state
                .gateways
                .iter()
                .map(|g| g.throttled.load(Ordering::Relaxed))
                .sum(),
            gateway_backpressure: state
                .gateways
                .iter()
                .map(|g| g.backpressure.load(Ordering::Relaxed))
                .sum(),
            gateway_connections: GatewayConnections::of(state),
            stage_unavailable: state.stats.unavailable.load(Ordering::Relaxed),
            fenced: state.stats.fenced.load(Ordering::Relaxed),
            process: ProcessStats::read(),
        }
    }
}

/// The process's own figures (the `process_*` families every Prometheus client exports), read
/// from `/proc/self`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProcessStats {
    pub cpu_seconds: f64,
    pub resident_bytes: u64,
    pub virtual_bytes: u64,
    pub start_time_seconds: f64,
    pub open_fds: u64,
    pub threads: u64,
}

impl ProcessStats {
    /// Reads `/proc/self/stat` and `/proc/self/fd`; `None` where there is no procfs.
    pub fn read() -> Option<ProcessStats> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let boot_s = std::fs::read_to_string("/proc/stat")
            .ok()?
            .lines()
            .find_map(|l| l.strip_prefix("btime ")?.trim().parse::<u64>().ok())?;
        // SAFETY: sysconf takes an integer name and touches no memory.
        let (ticks_hz, page) = unsafe {
            (
                libc::sysconf(libc::_SC_CLK_TCK),
                libc::sysconf(libc::_SC_PAGESIZE),
            )
        };
        let fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
        Self::parse(
            &stat,
            boot_s,
            ticks_hz.max(1) as u64,
            page.max(1) as u64,
            fds,
        )
    }

    /// Parses `/proc/self/stat` (proc(5)): fields after the command name's closing parenthesis.
    pub fn parse(stat: &str, boot_s: u64, ticks_hz: u64, page: u64, fds: u64) -> Option<Self> {
        let rest = &stat[stat.rfind(')')? + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        // `rest` starts at field 3 (state): field n is f[n - 3].
        let num = |n: usize| f.get(n - 3)?.parse::<u64>().ok();
        Some(ProcessStats {
            cpu_seconds: (num(14)? + num(15)?) as f64 / ticks_hz as f64,
            threads: num(20)?,
            start_time_seconds: boot_s as f64 + num(22)? as f64 / ticks_hz as f64,
            virtual_bytes: num(23)?,
            resident_bytes: num(24)? * page,
            open_fds: fds,
        })
    }
}

/// Cumulative counts per [`LATENCY_BOUNDS_S`] of a fine histogram of TSC ticks.
pub fn cumulative_buckets(h: &[u64], tsc_hz: f64) -> [u64; LATENCY_BOUNDS_S.len()] {
    let mut out = [0u64; LATENCY_BOUNDS_S.len()];
    for (b, &n) in h.iter().enumerate() {
        if n == 0 {
            continue;
        }
        let high_s = bucket_high(b) as f64 / tsc_hz;
        for (i, le) in LATENCY_BOUNDS_S.iter().enumerate() {
            if high_s <= *le {
                out[i] += n;
            }
        }
    }
    out
}

/// Renders a scrape in the Prometheus text format 0.0.4 (`promtool check metrics` clean: one
/// HELP and TYPE per family, counters end in `_total`, latencies are histograms in seconds).
pub fn render(map: &StatsMap, g: &NodeGauges) -> String {
    let s = map.snapshot();
    let mut o = String::new();
    let family = |o: &mut String, name: &str, kind: &str, help: &str| {
        let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
    };
    family(
        &mut o,
        "tpx_build_info",
        "gauge",
        "Always 1; the labels say which build runs.",
    );
    let _ = writeln!(
        o,
        "tpx_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    family(
        &mut o,
        "tpx_node_primary",
        "gauge",
        "1 while this node is the primary (serves sessions), 0 as a standby or candidate.",
    );
    let _ = writeln!(o, "tpx_node_primary {}", u8::from(g.primary));
    family(
        &mut o,
        "tpx_node_term",
        "gauge",
        "The replication term this node is in (0 with no replication).",
    );
    let _ = writeln!(o, "tpx_node_term {}", g.term);
    family(
        &mut o,
        "tpx_node_acknowledged_seq",
        "gauge",
        "The highest input-log seq that may be acknowledged to clients.",
    );
    let _ = writeln!(o, "tpx_node_acknowledged_seq {}", g.acknowledged_seq);
    for (name, help, v) in [
        (
            "tpx_node_last_seq",
            "The last input-log seq this node holds (sequenced here, or received as standby).",
            g.last_seq,
        ),
        (
            "tpx_node_durable_seq",
            "The last input-log seq on this node's own disk.",
            g.durable_seq,
        ),
        (
            "tpx_node_unacknowledged_records",
            "Records in this node's log not yet acknowledgeable (last_seq - acknowledged_seq): \
             on a primary, what waits for the standby or the disk (the replication lag).",
            g.last_seq.saturating_sub(g.acknowledged_seq),
        ),
        (
            "tpx_node_replay_done",
            "1 once the log recovered at start is in the shards (systemd READY=1).",
            u64::from(g.replay_done),
        ),
        (
            "tpx_node_checkpoint_seq",
            "The seq of the last replica checkpoint record a shard of this node applied.",
            g.checkpoint_seq,
        ),
        (
            "tpx_node_snapshot_start_seq",
            "The seq of the snapshot this process started from (0: it replayed the whole log).",
            g.snapshot_start_seq,
        ),
        (
            "tpx_node_snapshot_seq",
            "The seq of the last snapshot this process wrote (0: none yet).",
            g.snapshot_seq,
        ),
        (
            "tpx_node_diverged",
            "1 once a replica checkpoint found this node's state differs from the log's \
             (the node is never promoted; OPERATIONS.md, \"Replica checkpoints\").",
            u64::from(g.checkpoint_mismatches > 0),
        ),
    ] {
        family(&mut o, name, "gauge", help);
        let _ = writeln!(o, "{name} {v}");
    }
    for (name, help, v) in [
        (
            "tpx_node_checkpoints_matched_total",
            "Replica checkpoints whose hash this node's shard matched.",
            g.checkpoints_matched,
        ),
        (
            "tpx_node_checkpoint_mismatches_total",
            "Replica checkpoints whose hash differed from this node's shard (DIVERGED lines).",
            g.checkpoint_mismatches,
        ),
        (
            "tpx_node_snapshots_total",
            "Snapshots this process wrote ([snapshots]).",
            g.snapshots_taken,
        ),
        (
            "tpx_node_log_segments_deleted_total",
            "Log segments retention deleted ([snapshots] delete_segments).",
            g.segments_deleted,
        ),
        (
            "tpx_node_connections_accepted_total",
            "Order-entry connections accepted, all gateway cores.",
            g.gateway_connections.accepted,
        ),
        (
            "tpx_node_logins_total",
            "Logins accepted.",
            g.gateway_connections.logins,
        ),
        (
            "tpx_node_login_rejects_total",
            "Logins refused (LoginRejected: unknown session, wrong token, not primary, ...).",
            g.gateway_connections.login_rejects,
        ),
        (
            "tpx_node_waiting_logins_evicted_total",
            "Connections still waiting for their login closed to make room for a new one at \
             max_connections_per_core.",
            g.gateway_connections.waiting_logins_evicted,
        ),
        (
            "tpx_node_cancels_on_disconnect_total",
            "Connections whose end put cancels into the log (cancel on disconnect).",
            g.gateway_connections.cancels_on_disconnect,
        ),
    ] {
        family(&mut o, name, "counter", help);
        let _ = writeln!(o, "{name} {v}");
    }
    family(
        &mut o,
        "tpx_node_rejects_total",
        "counter",
        "Requests rejected, by reason (the RejectReason names of PROTOCOL.md): the shards' \
         (engine, accounts and risk) by shard, the gateways' unsequenced Throttled and \
         Backpressure with shard=\"gateway\", the sequencing stage's Unavailable (not primary, \
         no term, a fence) with shard=\"sequencer\".",
    );
    for (shard, code, v) in &g.rejects {
        let reason = tpx_wire::enums::RejectReason::from_u8(*code)
            .map_or_else(|| format!("code_{code}"), |r| format!("{r:?}"));
        let _ = writeln!(
            o,
            "tpx_node_rejects_total{{shard=\"{shard}\",reason=\"{reason}\"}} {v}"
        );
    }
    for (reason, v) in [
        ("Throttled", g.gateway_throttled),
        ("Backpressure", g.gateway_backpressure),
    ] {
        let _ = writeln!(
            o,
            "tpx_node_rejects_total{{shard=\"gateway\",reason=\"{reason}\"}} {v}"
        );
    }
    let _ = writeln!(
        o,
        "tpx_node_rejects_total{{shard=\"sequencer\",reason=\"Unavailable\"}} {}",
        g.stage_unavailable
    );
    family(
        &mut o,
        "tpx_node_fenced_total",
        "counter",
        "Orders and replaces answered Unavailable because an earlier id of their account was \
         (sequencing/fence.rs; counted in the sequencer's Unavailable rejects too).",
    );
    let _ = writeln!(o, "tpx_node_fenced_total {}", g.fenced);
    family(
        &mut o,
        "tpx_node_margin_calls_total",
        "counter",
        "Margin calls: an account's equity fell below its maintenance margin, by shard.",
    );
    for (shard, v) in &g.margin_calls {
        let _ = writeln!(o, "tpx_node_margin_calls_total{{shard=\"{shard}\"}} {v}");
    }
    if !g.md.is_empty() {
        family(
            &mut o,
            "tpx_md_active",
            "gauge",
            "1 while the shard's market-data publisher sends (primary), 0 while it only numbers.",
        );
        for m in &g.md {
            let _ = writeln!(
                o,
                "tpx_md_active{{shard=\"{}\"}} {}",
                m.shard,
                u8::from(m.active)
            );
        }
        for (name, help, get) in [
            (
                "tpx_md_packets_total",
                "Market-data packets published, per shard.",
                (|m: &MdGauges| m.packets) as fn(&MdGauges) -> u64,
            ),
            (
                "tpx_md_messages_total",
                "Market-data messages published, per shard.",
                |m: &MdGauges| m.messages,
            ),
            (
                "tpx_md_back_pressured_total",
                "Offers Aeron refused as back-pressured (feeds A and B), per shard: packets a \
                 slow subscriber or a full term buffer cost (recovered by retransmission).",
                |m: &MdGauges| m.back_pressured,
            ),
            (
                "tpx_md_not_connected_total",
                "Offers refused for want of a subscriber or failed (feeds A and B), per shard.",
                |m: &MdGauges| m.not_connected,
            ),
        ] {
            family(&mut o, name, "counter", help);
            for m in &g.md {
                let _ = writeln!(o, "{name}{{shard=\"{}\"}} {}", m.shard, get(m));
            }
        }
    }
    if let Some(p) = g.process {
        family(
            &mut o,
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent in seconds.",
        );
        let _ = writeln!(o, "process_cpu_seconds_total {}", p.cpu_seconds);
        for (name, help, v) in [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                p.resident_bytes as f64,
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                p.virtual_bytes as f64,
            ),
            (
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                p.start_time_seconds,
            ),
            (
                "process_open_fds",
                "Number of open file descriptors.",
                p.open_fds as f64,
            ),
            ("process_threads", "Number of OS threads.", p.threads as f64),
        ] {
            family(&mut o, name, "gauge", help);
            let _ = writeln!(o, "{name} {v}");
        }
    }
    family(
        &mut o,
        "tpx_stats_heartbeat_timestamp_seconds",
        "gauge",
        "When the stats publisher last wrote the node-wide counters (unix time).",
    );
    let _ = writeln!(
        o,
        "tpx_stats_heartbeat_timestamp_seconds {:.3}",
        s.heartbeat_unix_ns as f64 / 1e9
    );
    for (name, help, v) in [
        (
            "tpx_sequenced_total",
            "Requests stamped by the sequencer.",
            s.sequenced,
        ),
        (
            "tpx_applied_total",
            "Requests the shards applied.",
            s.applied,
        ),
        ("tpx_trades_total", "Fills.", s.trades),
    ] {
        family(&mut o, name, "counter", help);
        let _ = writeln!(o, "{name} {v}");
    }
    for (i, name) in crate::observe::stats::counter::NAMES.iter().enumerate() {
        let fam = format!("tpx_gateway_{name}_total");
        family(
            &mut o,
            &fam,
            "counter",
            &format!("Gateway {name}, per gateway core."),
        );
        for c in &s.cores {
            let _ = writeln!(o, "{fam}{{core=\"{}\"}} {}", c.core, c.counters[i].1);
        }
    }
    family(
        &mut o,
        "tpx_stage_latency_seconds",
        "histogram",
        "Per-request latency of each stage in the node, since start, per gateway core.",
    );
    for c in &s.cores {
        for (st, summary) in c.stages.iter().enumerate() {
            let h = map.histogram(c.core, st);
            let labels = format!("core=\"{}\",stage=\"{}\"", c.core, summary.stage);
            for (le, n) in LATENCY_BOUNDS_S
                .iter()
                .zip(cumulative_buckets(&h, s.tsc_hz))
            {
                let _ = writeln!(
                    o,
                    "tpx_stage_latency_seconds_bucket{{{labels},le=\"{le}\"}} {n}"
                );
            }
            let _ = writeln!(
                o,
                "tpx_stage_latency_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                summary.count
            );
            let _ = writeln!(
                o,
                "tpx_stage_latency_seconds_sum{{{labels}}} {:e}",
                summary.mean_ns * summary.count as f64 / 1e9
            );
            let _ = writeln!(
                o,
                "tpx_stage_latency_seconds_count{{{labels}}} {}",
                summary.count
            );
        }
    }
    o
}

/// The running publisher.
#[derive(Debug)]
pub struct Publisher {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
    /// The Prometheus address actually bound (port 0 resolved).
    pub prometheus: Option<SocketAddr>,
}

impl Publisher {
    /// Starts the thread; pins it to `cpu` when given (a core the plan leaves free).
    pub fn start(
        map: Arc<StatsMap>,
        shared: Arc<NodeState>,
        md: Vec<ShardStream>,
        prometheus: Option<SocketAddr>,
        cpu: Option<usize>,
    ) -> Result<Publisher, String> {
        let listener = match prometheus {
            Some(a) => {
                let l = TcpListener::bind(a).map_err(|e| format!("prometheus {a}: {e}"))?;
                l.set_nonblocking(true)
                    .map_err(|e| format!("prometheus: {e}"))?;
                Some(l)
            }
            None => None,
        };
        let bound = listener.as_ref().and_then(|l| l.local_addr().ok());
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let handle = std::thread::Builder::new()
            .name("tpx-stats".into())
            .spawn(move || {
                if let Some(cpu) = cpu {
                    core_affinity::set_for_current(core_affinity::CoreId { id: cpu });
                }
                while !stop2.load(Ordering::Relaxed) {
                    let st = &shared.stats;
                    map.publish_node_counters(
                        st.sequenced.load(Ordering::Relaxed),
                        st.applied.load(Ordering::Relaxed),
                        st.trades.load(Ordering::Relaxed),
                    );
                    let cp = &shared.checkpoints;
                    map.publish_checkpoints(
                        cp.seq.load(Ordering::Relaxed),
                        cp.matched.load(Ordering::Relaxed),
                        cp.diverged.load(Ordering::Relaxed),
                    );
                    if let Some(l) = &listener {
                        while let Ok((mut s, _)) = l.accept() {
                            let _ = s.set_nonblocking(false);
                            let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
                            let mut buf = [0u8; 2048];
                            let _ = s.read(&mut buf);
                            let body = render(&map, &NodeGauges::of(&shared, &md));
                            let _ = write!(
                                s,
                                "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\n\r\n{body}",
                                body.len()
                            );
                        }
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
            .map_err(|e| format!("stats thread: {e}"))?;
        Ok(Publisher {
            stop,
            handle: Some(handle),
            prometheus: bound,
        })
    }

    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_prometheus_text() {
        let dir = tempfile::tempdir().unwrap();
        let map = Arc::new(StatsMap::create(&dir.path().join("p.stats"), 1, 4, 1).unwrap());
        let w = map.core_writer(0);
        w.add(crate::observe::stats::counter::REPORTS, 5);
        w.record(crate::observe::stats::Stage::RxToWritten, 5000);
        let shared = Arc::new(NodeState::new(vec![]));
        shared.stats.trades.store(3, Ordering::Relaxed);
        let mut p = Publisher::start(
            map,
            shared,
            Vec::new(),
            Some("127.0.0.1:0".parse().unwrap()),
            None,
        )
        .unwrap();
        let mut s = std::net::TcpStream::connect(p.prometheus.unwrap()).unwrap();
        s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        p.stop();
        assert!(text.starts_with("HTTP/1.0 200 OK"), "{text}");
        assert!(
            text.contains("tpx_gateway_reports_total{core=\"0\"} 5"),
            "{text}"
        );
        assert!(text.contains("tpx_trades_total 3"), "{text}");
        assert!(
            text.contains("tpx_stage_latency_seconds_count{core=\"0\",stage=\"rx_to_written\"} 1"),
            "{text}"
        );
        // 5000 ticks at the file's TSC rate, as a histogram: below +Inf, and below every bound
        // at or above the sample, none below it.
        let hz = StatsMap::open(&dir.path().join("p.stats"))
            .unwrap()
            .tsc_hz();
        let sample_s = 5000.0 / hz;
        let bucket = |le: &str| {
            let key = format!(
                "tpx_stage_latency_seconds_bucket{{core=\"0\",stage=\"rx_to_written\",le=\"{le}\"}} "
            );
            text.lines()
                .find_map(|l| l.strip_prefix(key.as_str()))
                .unwrap_or_else(|| panic!("no {key}: {text}"))
                .parse::<u64>()
                .unwrap()
        };
        assert_eq!(bucket("+Inf"), 1);
        for le in LATENCY_BOUNDS_S {
            let want = u64::from(le >= sample_s * 1.07);
            if le < sample_s || le >= sample_s * 1.07 {
                assert_eq!(bucket(&le.to_string()), want, "le {le}, sample {sample_s}");
            }
        }
        assert!(text.contains("tpx_build_info{version=\""), "{text}");
        assert!(text.contains("tpx_node_primary 1"), "{text}");
        assert!(text.contains("\ntpx_node_checkpoint_seq 0\n"), "{text}");
        assert!(text.contains("\ntpx_node_diverged 0\n"), "{text}");
        assert!(text.contains("\nprocess_open_fds "), "{text}");
        promtool_accepts(text.split("\r\n\r\n").nth(1).unwrap());
    }

    #[test]
    fn proc_self_stat_parses() {
        // proc(5): pid (comm) state ppid ... utime=14 stime=15 ... num_threads=20 ...
        // starttime=22 vsize=23 rss=24. A command name with spaces and parentheses.
        let stat = "42 (tpx (core 1)) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 7 0 \
                    1000 123456789 300 18446744073709551615";
        let p = ProcessStats::parse(stat, 1_700_000_000, 100, 4096, 9).unwrap();
        assert!((p.cpu_seconds - 3.0).abs() < 1e-9);
        assert_eq!(p.threads, 7);
        assert!((p.start_time_seconds - 1_700_000_010.0).abs() < 1e-3);
        assert_eq!(p.virtual_bytes, 123_456_789);
        assert_eq!(p.resident_bytes, 300 * 4096);
        assert_eq!(p.open_fds, 9);
        assert!(ProcessStats::parse("garbage", 0, 100, 4096, 0).is_none());
        assert!(ProcessStats::read().is_some());
    }

    /// `promtool check metrics` (Prometheus's own linter) finds nothing to say. Skipped when
    /// promtool is missing, unless `TPX_REQUIRE_PROMTOOL` is set (`make unit` sets it; setup
    /// installs the `prometheus` package that has it).
    fn promtool_accepts(body: &str) {
        let Ok(mut child) = std::process::Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
        else {
            assert!(
                std::env::var_os("TPX_REQUIRE_PROMTOOL").is_none(),
                "promtool not found (apt-get install prometheus)"
            );
            eprintln!("promtool not found: skipped");
            return;
        };
        child
            .stdin
            .take()
            .unwrap()
            .write_all(body.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && said.trim().is_empty(),
            "promtool: {said}\n{body}"
        );
    }
}
