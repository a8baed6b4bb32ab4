//! Small measurements for the docs (not a benchmark suite):
//!
//! ```sh
//! cargo run -p tpx-sequencer --example seq_measure -- commit DIR   # append -> durable latency
//! cargo run -p tpx-sequencer --example seq_measure -- tcp          # TCP loopback round trip
//! ```
//! Prints p50 / p99 / max in microseconds. `tcp` busy-polls two threads.

use std::time::{Duration, Instant};

use tpx_sequencer::storage::{FileStorage, WriteMode};
use tpx_sequencer::transport::{TcpTransport, Transport};
use tpx_sequencer::writer::{IdleMode, LogSink, ThreadedLog};
use tpx_sequencer::LogConfig;
use tpx_wire::log_record::{encode_record, Input, LogRecord, RecordMeta};
use tpx_wire::order_entry::CancelOrder;

fn pct(mut v: Vec<u64>) -> String {
    v.sort_unstable();
    let p = |q: f64| v[((v.len() as f64 - 1.0) * q) as usize] as f64 / 1_000.0;
    format!(
        "n={} p50={:.1}us p99={:.1}us max={:.1}us",
        v.len(),
        p(0.5),
        p(0.99),
        p(1.0)
    )
}

fn commit(dir: &str, rate: u64, n: u64, zero_fill: bool) {
    let _ = std::fs::remove_dir_all(dir);
    let st = FileStorage::new(dir, WriteMode::DirectSync).unwrap();
    let (mut log, _) = ThreadedLog::open(
        st,
        LogConfig {
            zero_fill,
            ..LogConfig::default()
        },
        IdleMode::Park,
    )
    .unwrap();
    let mut buf = vec![0u8; 1024];
    let mut lat = Vec::new();
    let mut pending: std::collections::VecDeque<(u64, Instant)> = Default::default();
    let t0 = Instant::now();
    let mut seq = 0;
    while (seq < n || !pending.is_empty()) && t0.elapsed() < Duration::from_secs(60) {
        let due = t0.elapsed().as_nanos() as u64 * rate / 1_000_000_000;
        while seq < n && seq < due {
            seq += 1;
            let r = LogRecord {
                meta: RecordMeta {
                    seq,
                    term: 1,
                    timestamp_ns: seq,
                    origin: 1,
                    account: 1,
                    session: 0,
                },
                input: Input::CancelOrder(CancelOrder {
                    cl_ord_id: seq,
                    remaining_qty: 0,
                }),
            };
            let len = encode_record(&r, &mut buf).unwrap();
            log.append(&buf[..len]).unwrap();
            pending.push_back((seq, Instant::now()));
        }
        let d = log.durable_seq();
        while let Some(&(s, t)) = pending.front() {
            if s > d {
                break;
            }
            lat.push(t.elapsed().as_nanos() as u64);
            pending.pop_front();
        }
        std::hint::spin_loop();
    }
    println!(
        "commit zero_fill={zero_fill} rate={rate}/s records={n} writes={} append->durable {}",
        log.commits(),
        pct(lat)
    );
}

fn tcp(n: usize) {
    let a: std::net::SocketAddr = "127.0.0.1:17991".parse().unwrap();
    let b: std::net::SocketAddr = "127.0.0.1:17992".parse().unwrap();
    let echo = std::thread::spawn(move || {
        let mut t = TcpTransport::new(2, Some(b), vec![(1, a)]).unwrap();
        let mut got = 0;
        let t0 = Instant::now();
        while got < n && t0.elapsed() < Duration::from_secs(30) {
            let mut msgs = Vec::new();
            t.poll(&mut |from, m| msgs.push((from, m.to_vec())));
            for (from, m) in msgs {
                t.send(from, &m);
                got += 1;
            }
        }
    });
    let mut t = TcpTransport::new(1, Some(a), vec![(2, b)]).unwrap();
    while !t.connected(2) {
        t.poll(&mut |_, _| {});
    }
    std::thread::sleep(Duration::from_millis(50));
    let mut lat = Vec::new();
    let msg = [7u8; 128];
    for _ in 0..n {
        let s = Instant::now();
        t.send(2, &msg);
        let mut back = false;
        while !back {
            t.poll(&mut |_, _| back = true);
        }
        lat.push(s.elapsed().as_nanos() as u64);
    }
    let _ = echo.join();
    println!(
        "tcp loopback 128-byte round trip (busy-poll both ends) {}",
        pct(lat)
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("commit") => {
            let dir = args
                .get(2)
                .cloned()
                .unwrap_or_else(|| "/tmp/tpx-seq-measure".into());
            for zero_fill in [false, true] {
                for rate in [1_000, 20_000, 200_000] {
                    commit(&dir, rate, rate.min(100_000), zero_fill);
                }
            }
            let _ = std::fs::remove_dir_all(&dir);
        }
        Some("tcp") => tcp(20_000),
        _ => eprintln!("usage: seq_measure commit [DIR] | tcp"),
    }
}
