//! The stats publisher thread, off the hot cores: every 100 ms it copies the node-wide counters
//! into the stats file's header and, when configured, answers Prometheus scrapes (text format
//! 0.0.4) from the stats file. The hot cores never wait for it: they write their own blocks;
//! this thread only reads them.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::observe::stats::{Snapshot, StatsMap};
use crate::runtime::state::NodeState;

/// Renders a snapshot as Prometheus text.
pub fn render(s: &Snapshot) -> String {
    let mut o = String::new();
    let mut metric = |name: &str, kind: &str, help: &str| {
        let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
    };
    metric(
        "tpx_sequenced_total",
        "counter",
        "Requests stamped by the sequencer.",
    );
    metric(
        "tpx_applied_total",
        "counter",
        "Requests the shards applied.",
    );
    metric("tpx_trades_total", "counter", "Fills.");
    let _ = writeln!(o, "tpx_sequenced_total {}", s.sequenced);
    let _ = writeln!(o, "tpx_applied_total {}", s.applied);
    let _ = writeln!(o, "tpx_trades_total {}", s.trades);
    for name in crate::observe::stats::counter::NAMES {
        let _ = writeln!(
            o,
            "# HELP tpx_gateway_{name}_total Per gateway core.\n# TYPE tpx_gateway_{name}_total counter"
        );
        for c in &s.cores {
            let v = c
                .counters
                .iter()
                .find(|(n, _)| *n == name)
                .map_or(0, |x| x.1);
            let _ = writeln!(o, "tpx_gateway_{name}_total{{core=\"{}\"}} {v}", c.core);
        }
    }
    let _ = writeln!(
        o,
        "# HELP tpx_stage_latency_seconds Per-order stage latency since start (6.25% buckets).\n# TYPE tpx_stage_latency_seconds summary"
    );
    for c in &s.cores {
        for st in &c.stages {
            for (q, v) in [
                ("0.5", st.p50_ns),
                ("0.99", st.p99_ns),
                ("0.999", st.p999_ns),
            ] {
                let _ = writeln!(
                    o,
                    "tpx_stage_latency_seconds{{core=\"{}\",stage=\"{}\",quantile=\"{q}\"}} {:e}",
                    c.core,
                    st.stage,
                    v as f64 / 1e9
                );
            }
            let _ = writeln!(
                o,
                "tpx_stage_latency_seconds_sum{{core=\"{}\",stage=\"{}\"}} {:e}",
                c.core,
                st.stage,
                st.mean_ns * st.count as f64 / 1e9
            );
            let _ = writeln!(
                o,
                "tpx_stage_latency_seconds_count{{core=\"{}\",stage=\"{}\"}} {}",
                c.core, st.stage, st.count
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
                    if let Some(l) = &listener {
                        while let Ok((mut s, _)) = l.accept() {
                            let _ = s.set_nonblocking(false);
                            let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
                            let mut buf = [0u8; 2048];
                            let _ = s.read(&mut buf);
                            let body = render(&map.snapshot());
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
        let mut p =
            Publisher::start(map, shared, Some("127.0.0.1:0".parse().unwrap()), None).unwrap();
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
    }
}
