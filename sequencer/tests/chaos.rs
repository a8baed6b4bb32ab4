//! Chaos: real `tpx-seq` processes (a witness, two nodes, the built-in load) killed with
//! SIGKILL in a seeded random order and restarted, for `TPX_CHAOS_ROUNDS` rounds (default 100,
//! about 25 s here). Between kills the cluster must make progress again (a primary's
//! `ACKED` moves on): one failure at a time, which is what the design survives. Then, from the
//! logs on disk and the `ACKED` lines the processes printed:
//!
//! - 0 acknowledged records lost: the final primary's log holds every acknowledged seq, and
//!   every acknowledged record read from a log (a killed node's log is read after its death,
//!   up to what that process acknowledged as primary; both logs at the end, up to the highest
//!   `ACKED`) is the same record at the same seq in every later log;
//! - no gap (each log is 1, 2, 3, ...), no order sequenced twice (`(session, cl_ord_id)` of
//!   every `EnterOrder` is unique in the final primary's log);
//! - each node's engine (`FINAL ... hash=`) equals a replay of its own log, and both logs agree
//!   on their common acknowledged prefix (so their states agree at every common seq there).
//!
//! `TPX_CHAOS_SEED` picks the kill order (default 1). The nodes run `replicated+fsync` so an
//! acknowledged record is on both disks: every single SIGKILL then leaves it on a live node.
//!
//! **A `tpx-seq` harness test**: it exercises the replication crate's own test node (`tpx-seq
//! node`: a demo engine, risk off, its built-in load), not the appliance, and no headline
//! number depends on it. The appliance (`tpx witness` + two `tpx node`s, risk and market data
//! on, clients failing over) is killed, frozen and partitioned by the fault lab
//! (`benches/tests/fault_lab.rs`, its short run in `make test`) and timed by `failover-bench`
//! (`benches/tests/failover_bench.rs`); see "Measured: failover" in docs/ARCHITECTURE.md.

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use tpx_sequencer::apply::replay_hash;
use tpx_sequencer::log::LogReader;
use tpx_sequencer::storage::{FileStorage, WriteMode};
use tpx_sequencer::testing::demo_engine_config;
use tpx_wire::log_record::{Input, LogRecord};

const BIN: &str = env!("CARGO_BIN_EXE_tpx-seq");
const TIMEOUT_MS: &str = "100";

fn env_u64(k: &str, d: u64) -> u64 {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

struct Proc {
    child: Child,
    lines: Receiver<String>,
}

impl Proc {
    fn spawn(args: &[String]) -> Proc {
        let mut child = Command::new(BIN)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn tpx-seq");
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines() {
                let Ok(l) = l else { break };
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Proc { child, lines: rx }
    }

    fn signal(&self, sig: i32) {
        // SAFETY: sending a signal to our own child by its pid.
        unsafe {
            libc::kill(self.child.id() as i32, sig);
        }
    }

    fn kill9(mut self) {
        self.signal(libc::SIGKILL);
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

fn field<'a>(l: &'a str, k: &str) -> Option<&'a str> {
    l.split_whitespace()
        .find_map(|kv| kv.strip_prefix(k).and_then(|v| v.strip_prefix('=')))
}

struct Cluster {
    dir: PathBuf,
    addrs: [SocketAddr; 3],
    /// 0: witness, 1 and 2: the nodes.
    procs: [Option<Proc>; 3],
    /// The highest `ACKED` any primary printed.
    acked: u64,
    /// The highest `ACKED` each running process printed (what its own log must hold).
    acked_by: [u64; 3],
    /// `FINAL` lines, per node.
    finals: [Option<String>; 3],
    /// Every line every process printed, and every kill (written to `transcript.txt` in the
    /// run's folder; `TPX_CHAOS_DIR` keeps the folder).
    transcript: Vec<String>,
    t0: Instant,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = std::fs::write(self.dir.join("transcript.txt"), self.transcript.join("\n"));
    }
}

impl Cluster {
    fn args(&self, who: usize, primary: bool) -> Vec<String> {
        let s = |x: &str| x.to_string();
        if who == 0 {
            return vec![
                s("witness"),
                s("--listen"),
                self.addrs[0].to_string(),
                s("--lease-ms"),
                s(TIMEOUT_MS),
                s("--state"),
                self.dir.join("witness.state").display().to_string(),
            ];
        }
        let id = who as u32;
        let mut v = vec![
            s("node"),
            s("--id"),
            id.to_string(),
            s("--peer"),
            (3 - id).to_string(),
            s("--listen"),
            self.addrs[who].to_string(),
            s("--peer-addr"),
            self.addrs[3 - who].to_string(),
            s("--witness-addr"),
            self.addrs[0].to_string(),
            s("--dir"),
            self.node_dir(who).display().to_string(),
            s("--timeout-ms"),
            s(TIMEOUT_MS),
            s("--durability"),
            s("replicated+fsync"),
            s("--load"),
            s("2000"),
            s("--segment-mib"),
            s("1"),
            s("--buffered"),
        ];
        if primary {
            v.push(s("--primary"));
        }
        v
    }

    fn node_dir(&self, who: usize) -> PathBuf {
        self.dir.join(format!("n{who}"))
    }

    fn start(&mut self, who: usize, primary: bool) {
        let a = self.args(who, primary);
        self.procs[who] = Some(Proc::spawn(&a));
        self.acked_by[who] = 0;
    }

    /// Reads every process's output; returns whether anything was read.
    fn drain(&mut self) {
        for who in 0..3 {
            let Some(p) = &self.procs[who] else { continue };
            while let Ok(l) = p.lines.try_recv() {
                let ms = self.t0.elapsed().as_millis();
                self.transcript.push(format!("{ms} p{who} {l}"));
                if let Some(v) = l.strip_prefix("ACKED ") {
                    let a = v.trim().parse().unwrap_or(0);
                    self.acked = self.acked.max(a);
                    self.acked_by[who] = self.acked_by[who].max(a);
                } else if l.starts_with("FINAL ") {
                    self.finals[who] = Some(l);
                }
            }
        }
    }

    /// Waits until some primary acknowledges `more` records beyond what was acknowledged.
    fn progress(&mut self, more: u64, what: &str) {
        let from = self.acked;
        let t0 = Instant::now();
        while self.acked < from + more {
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "{what}: no progress past ACKED {from} in 30 s"
            );
            std::thread::sleep(Duration::from_millis(5));
            self.drain();
        }
    }
}

fn records(dir: &Path) -> Vec<LogRecord> {
    let st = FileStorage::new(dir.join("log"), WriteMode::Buffered).expect("log dir");
    let mut r = LogReader::new(st).expect("log reader");
    let mut v = Vec::new();
    while let Ok(Some(x)) = r.next() {
        v.push(x);
    }
    v
}

/// Every acknowledged record of `log` must equal what was seen before at its seq; new ones
/// are remembered. The log must run 1, 2, 3, ...
fn check_log(log: &[LogRecord], acked: u64, known: &mut BTreeMap<u64, LogRecord>, what: &str) {
    for (i, r) in log.iter().enumerate() {
        assert_eq!(r.meta.seq, i as u64 + 1, "{what}: gap or duplicate seq");
        if r.meta.seq > acked {
            break;
        }
        match known.get(&r.meta.seq) {
            Some(k) => assert_eq!(k, r, "{what}: acknowledged seq {} changed", r.meta.seq),
            None => {
                known.insert(r.meta.seq, *r);
            }
        }
    }
}

#[test]
fn sigkill_witness_and_nodes_in_random_order() {
    let rounds = env_u64("TPX_CHAOS_ROUNDS", 100);
    let mut rng = env_u64("TPX_CHAOS_SEED", 1);
    let mut next = move || {
        // splitmix64
        rng = rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = match std::env::var_os("TPX_CHAOS_DIR") {
        Some(d) => PathBuf::from(d),
        None => tmp.path().to_path_buf(),
    };
    let _ = std::fs::create_dir_all(&dir);
    let mut c = Cluster {
        dir,
        addrs: [free_addr(), free_addr(), free_addr()],
        procs: [None, None, None],
        acked: 0,
        acked_by: [0; 3],
        finals: [None, None, None],
        transcript: Vec::new(),
        t0: Instant::now(),
    };
    c.start(0, false);
    c.start(1, true);
    c.start(2, false);
    c.progress(500, "start");
    let mut known = BTreeMap::new();
    let mut kills = [0u64; 3];
    let t0 = Instant::now();
    for round in 0..rounds {
        let victim = (next() % 3) as usize;
        kills[victim] += 1;
        c.drain();
        let ms = c.t0.elapsed().as_millis();
        c.transcript
            .push(format!("{ms} KILL p{victim} round {round}"));
        if let Some(p) = c.procs[victim].take() {
            p.kill9();
        }
        c.drain();
        if victim != 0 {
            // What this process acknowledged as primary is in its log, as acknowledged before.
            // (Beyond that a killed node may hold an unacknowledged tail of an older term.)
            let log = records(&c.node_dir(victim));
            let mine = c.acked_by[victim];
            check_log(
                &log,
                mine,
                &mut known,
                &format!("round {round}: killed node {victim}"),
            );
        }
        // Down for 0-150 ms, then back (a node as standby: the witness decides).
        std::thread::sleep(Duration::from_millis(next() % 150));
        c.start(victim, false);
        c.progress(200, &format!("round {round} (killed {victim})"));
    }
    let elapsed = t0.elapsed();
    c.progress(200, "end");
    for who in [1, 2] {
        if let Some(p) = &c.procs[who] {
            p.signal(libc::SIGTERM);
        }
    }
    let t = Instant::now();
    while c.finals[1].is_none() || c.finals[2].is_none() {
        assert!(t.elapsed() < Duration::from_secs(20), "no FINAL lines");
        std::thread::sleep(Duration::from_millis(10));
        c.drain();
    }
    let acked = c.acked;
    for p in c.procs.iter_mut() {
        if let Some(p) = p.take() {
            p.kill9();
        }
    }
    let mut primary_log = None;
    let mut logs = Vec::new();
    for who in [1, 2] {
        let f = c.finals[who].clone().unwrap_or_default();
        let log = records(&c.node_dir(who));
        check_log(&log, acked, &mut known, &format!("end: node {who}"));
        // The engine equals a replay of the node's own log.
        let applied: u64 = field(&f, "applied")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let hash: u64 = field(&f, "hash").and_then(|v| v.parse().ok()).unwrap_or(0);
        let st = FileStorage::new(c.node_dir(who).join("log"), WriteMode::Buffered).expect("log");
        let (last, h) = replay_hash(st, demo_engine_config(), applied).expect("replay");
        assert_eq!(
            (last, h),
            (applied, hash),
            "node {who}: engine vs replay ({f})"
        );
        if field(&f, "role") == Some("primary") {
            primary_log = Some(log.clone());
        }
        logs.push(log);
    }
    // Both logs agree on their common acknowledged prefix.
    let n = logs[0].len().min(logs[1].len()).min(acked as usize);
    assert_eq!(
        logs[0][..n],
        logs[1][..n],
        "the logs differ below ACKED {acked}"
    );
    // The final primary (or the longer log, if the last SIGTERM caught a role change) holds
    // every acknowledged record, with no order twice.
    let p = primary_log.unwrap_or_else(|| logs.iter().max_by_key(|l| l.len()).cloned().unwrap());
    let lost = acked.saturating_sub(p.len() as u64);
    let mut ids = HashSet::new();
    let mut dups = 0u64;
    for r in &p {
        if let Input::EnterOrder(m) = r.input {
            if !ids.insert((r.meta.origin, m.cl_ord_id)) {
                dups += 1;
            }
        }
    }
    eprintln!(
        "chaos: {rounds} rounds in {elapsed:?} (kills: witness {}, node1 {}, node2 {}), \
         acked {acked}, final log {} records, lost {lost}, duplicates {dups}",
        kills[0],
        kills[1],
        kills[2],
        p.len()
    );
    assert_eq!(lost, 0, "acknowledged records lost");
    assert_eq!(dups, 0, "orders sequenced twice");
}
