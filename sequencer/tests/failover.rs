//! Real processes: a witness, a primary with the built-in load and a standby; SIGKILL the
//! primary; the standby takes over with every acknowledged record, continues the sequence,
//! and its state equals a replay of its log. Then the old primary comes back as a standby,
//! cuts what the new term does not hold and catches up.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use tpx_sequencer::apply::replay_hash;
use tpx_sequencer::log::LogReader;
use tpx_sequencer::storage::{FileStorage, WriteMode};
use tpx_sequencer::testing::demo_engine_config;
use tpx_wire::log_record::{Input, LogRecord};

const BIN: &str = env!("CARGO_BIN_EXE_tpx-seq");
/// Generous for a busy 2-core machine (the design target is 0.5 ms on a tuned host);
/// `TPX_SEQ_TEST_TIMEOUT_MS` overrides it (to measure takeover with a tighter timeout).
fn timeout_ms() -> String {
    std::env::var("TPX_SEQ_TEST_TIMEOUT_MS").unwrap_or_else(|_| "100".into())
}

struct Proc {
    child: Child,
    lines: Receiver<String>,
    name: &'static str,
    /// The last lines seen (printed when a wait fails).
    recent: std::cell::RefCell<std::collections::VecDeque<String>>,
}

impl Proc {
    fn spawn(name: &'static str, args: &[String]) -> Proc {
        let mut child = Command::new(BIN)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn tpx-seq");
        let out = child.stdout.take().unwrap();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines() {
                let Ok(l) = l else { break };
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Proc {
            child,
            lines: rx,
            name,
            recent: Default::default(),
        }
    }

    /// Waits for a line for which `f` returns `Some`, within `limit`.
    fn wait_for<T>(&self, limit: Duration, mut f: impl FnMut(&str) -> Option<T>) -> T {
        let t0 = Instant::now();
        loop {
            let left = limit.saturating_sub(t0.elapsed());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.remember(&l);
                    if let Some(v) = f(&l) {
                        return v;
                    }
                }
                Err(_) => panic!(
                    "{}: no expected line within {limit:?}; last lines: {:#?}",
                    self.name,
                    self.recent.borrow()
                ),
            }
        }
    }

    fn remember(&self, l: &str) {
        let mut r = self.recent.borrow_mut();
        if !l.starts_with("ACKED") || r.back().is_none_or(|b| !b.starts_with("ACKED")) {
            r.push_back(l.to_string());
        } else if let Some(b) = r.back_mut() {
            *b = l.to_string();
        }
        if r.len() > 30 {
            r.pop_front();
        }
    }

    fn signal(&self, sig: i32) {
        // SAFETY: sending a signal to our own child by pid.
        unsafe {
            libc::kill(self.child.id() as i32, sig);
        }
    }

    /// SIGTERM, then the FINAL line's fields.
    fn finish(mut self) -> Final {
        self.signal(libc::SIGTERM);
        let f = self.wait_for(Duration::from_secs(20), |l| {
            l.strip_prefix("FINAL ").map(parse_final)
        });
        let _ = self.child.wait();
        f
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
struct Final {
    role: String,
    term: u64,
    last_seq: u64,
    applied: u64,
    hash: u64,
}

fn field<'a>(l: &'a str, k: &str) -> &'a str {
    l.split_whitespace()
        .find_map(|kv| kv.strip_prefix(k).and_then(|v| v.strip_prefix('=')))
        .unwrap_or_else(|| panic!("no {k} in {l}"))
}

fn parse_final(l: &str) -> Final {
    Final {
        role: field(l, "role").to_string(),
        term: field(l, "term").parse().unwrap(),
        last_seq: field(l, "last_seq").parse().unwrap(),
        applied: field(l, "applied").parse().unwrap(),
        hash: field(l, "hash").parse().unwrap(),
    }
}

fn free_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

fn node_args(id: u32, addrs: &[SocketAddr; 3], dir: &Path, primary: bool) -> Vec<String> {
    let (me, peer) = if id == 1 {
        (addrs[1], addrs[2])
    } else {
        (addrs[2], addrs[1])
    };
    let mut v: Vec<String> = [
        "node",
        "--id",
        &id.to_string(),
        "--peer",
        &(3 - id).to_string(),
        "--listen",
        &me.to_string(),
        "--peer-addr",
        &peer.to_string(),
        "--witness-addr",
        &addrs[0].to_string(),
        "--dir",
        dir.join(format!("n{id}")).to_str().unwrap(),
        "--timeout-ms",
        &timeout_ms(),
        "--load",
        "2000",
        "--segment-mib",
        "4",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if primary {
        v.push("--primary".into());
    }
    v
}

fn records(dir: &Path) -> Vec<LogRecord> {
    let st = FileStorage::new(dir.join("log"), WriteMode::Buffered).unwrap();
    let mut r = LogReader::new(st).unwrap();
    let mut v = Vec::new();
    while let Some(x) = r.next().unwrap() {
        v.push(x);
    }
    v
}

/// What the test knows about one node from its output.
#[derive(Debug, Default)]
struct Seen {
    primary_term: Option<u64>,
    standby: bool,
    promoted_at: Option<u64>,
    acked: u64,
    ready: bool,
}

fn drain(p: &Proc, seen: &mut Seen, acked_all: &mut u64) {
    while let Ok(l) = p.lines.try_recv() {
        p.remember(&l);
        note(&l, seen, acked_all);
    }
}

fn note(l: &str, seen: &mut Seen, acked_all: &mut u64) {
    if let Some(v) = l.strip_prefix("ACKED ") {
        seen.acked = v.parse().unwrap();
        *acked_all = (*acked_all).max(seen.acked);
    } else if l.starts_with("ROLE primary") {
        seen.primary_term = Some(field(l, "term").parse().unwrap());
        seen.promoted_at = Some(field(l, "last_seq").parse().unwrap());
        seen.standby = false;
    } else if l.starts_with("ROLE standby") {
        seen.primary_term = None;
        seen.standby = true;
    } else if l.starts_with("READY") {
        seen.ready = true;
    }
}

#[test]
fn sigkill_primary_standby_takes_over_and_old_primary_rejoins() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let addrs = [free_addr(), free_addr(), free_addr()];
    let witness = Proc::spawn(
        "witness",
        &[
            "witness".to_string(),
            "--listen".into(),
            addrs[0].to_string(),
            "--lease-ms".into(),
            timeout_ms(),
            "--state".into(),
            dir.join("witness.state").to_str().unwrap().into(),
        ],
    );
    witness.wait_for(Duration::from_secs(10), |l| {
        l.starts_with("READY").then_some(())
    });
    let mut procs = [
        Some(Proc::spawn("node1", &node_args(1, &addrs, dir, true))),
        Some(Proc::spawn("node2", &node_args(2, &addrs, dir, false))),
    ];
    let mut seen = [Seen::default(), Seen::default()];
    // Every acknowledgement any primary printed (a busy machine may make them flap).
    let mut acked = 0u64;

    // Let the load run and the standby follow.
    let t0 = Instant::now();
    let victim = loop {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no steady primary: {seen:?}"
        );
        for i in 0..2 {
            drain(procs[i].as_ref().unwrap(), &mut seen[i], &mut acked);
        }
        if acked >= 1_500 && seen.iter().all(|s| s.ready) {
            if let Some(i) = (0..2).find(|&i| seen[i].primary_term.is_some() && seen[1 - i].standby)
            {
                break i;
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let survivor = 1 - victim;
    let victim_term = seen[victim].primary_term.unwrap();

    // SIGKILL the primary.
    let t_kill = Instant::now();
    {
        let p = procs[victim].as_mut().unwrap();
        p.signal(libc::SIGKILL);
        let _ = p.child.wait();
    }
    drain(
        procs[victim].as_ref().unwrap(),
        &mut seen[victim],
        &mut acked,
    );
    let victim_dir = dir.join(format!("n{}", victim + 1));
    let survivor_dir = dir.join(format!("n{}", survivor + 1));
    let old = records(&victim_dir);
    procs[victim] = None;

    let sp = procs[survivor].take().unwrap();
    let (term, promoted_at) = sp.wait_for(Duration::from_secs(10), |l| {
        note(l, &mut seen[survivor], &mut acked);
        match seen[survivor].primary_term {
            Some(t) if t > victim_term => Some((t, seen[survivor].promoted_at.unwrap())),
            _ => None,
        }
    });
    let takeover = t_kill.elapsed();
    eprintln!(
        "takeover after SIGKILL: {takeover:?} (timeout {} ms), acked before kill {acked}, \
         new primary (term {term}) continues from {promoted_at}",
        timeout_ms()
    );
    assert!(
        promoted_at >= acked,
        "the standby holds every acknowledged record"
    );
    assert!(takeover < Duration::from_secs(5));

    // The new primary acknowledges new records.
    sp.wait_for(Duration::from_secs(20), |l| {
        l.strip_prefix("ACKED ")
            .and_then(|v| (v.parse::<u64>().unwrap() >= promoted_at + 300).then_some(()))
    });

    // The old primary comes back (as standby): it cuts what the new term does not hold and
    // catches up.
    let id = victim as u32 + 1;
    let back = Proc::spawn("old-primary-again", &node_args(id, &addrs, dir, false));
    back.wait_for(Duration::from_secs(20), |l| {
        l.starts_with("ROLE standby").then_some(())
    });
    std::thread::sleep(Duration::from_millis(500));

    let f_back = back.finish();
    let f_new = sp.finish();
    drop(witness);
    eprintln!("old primary: {f_back:?}\nnew primary: {f_new:?}");
    // (A busy machine may make them swap roles again after the rejoin: the checks below hold
    // whoever ends as primary.)
    assert!(f_new.term >= term && f_back.term >= term);
    assert!(f_new.role == "primary" || f_back.role == "primary");

    // Every acknowledged record is in the new primary's log, unchanged.
    let new = records(&survivor_dir);
    assert!(new.len() as u64 >= acked);
    for (a, b) in old.iter().zip(&new).take(acked as usize) {
        assert_eq!(a, b);
    }
    // Sequence with no gap, terms never going back, the new term from the promotion on, no
    // order sequenced twice.
    let mut seen_ids = std::collections::HashSet::new();
    for (i, r) in new.iter().enumerate() {
        assert_eq!(r.meta.seq, i as u64 + 1);
        if i > 0 {
            assert!(r.meta.term >= new[i - 1].meta.term);
        }
        if r.meta.seq > promoted_at {
            assert!(r.meta.term >= term);
        }
        if let Input::EnterOrder(m) = r.input {
            assert!(
                seen_ids.insert((r.meta.origin, m.cl_ord_id)),
                "duplicate {}",
                m.cl_ord_id
            );
        }
    }
    // State hash = a replay of the log.
    let st = FileStorage::new(survivor_dir.join("log"), WriteMode::Buffered).unwrap();
    let (last, hash) = replay_hash(st, demo_engine_config(), f_new.applied).unwrap();
    assert_eq!((last, hash), (f_new.applied, f_new.hash));
    // The returned old primary holds a prefix of the new log; its state = a replay of its log.
    let back_recs = records(&victim_dir);
    assert!(back_recs.len() as u64 >= promoted_at);
    let n = back_recs.len().min(new.len());
    assert_eq!(&new[..n], &back_recs[..n]);
    let st = FileStorage::new(victim_dir.join("log"), WriteMode::Buffered).unwrap();
    let (last, hash) = replay_hash(st, demo_engine_config(), f_back.applied).unwrap();
    assert_eq!((last, hash), (f_back.applied, f_back.hash));
    assert!(f_back.last_seq >= promoted_at);
}
