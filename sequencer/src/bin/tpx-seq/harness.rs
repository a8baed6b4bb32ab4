//! The `tpx-seq` test harness process (no headline number depends on it; the appliance is `tpx
//! node`): the replica over a threaded O_DIRECT log,
//! TCP and the system clock, an engine copy fed from the log, a built-in order load, and a
//! line-oriented report on stdout that tests and benches read:
//!
//! ```text
//! READY node=1 last_seq=0 applied=0 hash=...
//! ROLE primary term=1 last_seq=0 mono_ns=..  (or: ROLE standby term=2 primary=2)
//! CANDIDATE term=3 mono_ns=..              (a standby asked the witness for a term)
//! DENIED reason=LeaseHeld term=2 holder=1 mono_ns=..  (the witness refused it; at a change)
//! FIRST term=3 seq=813 mono_ns=.. applied=812  (first record of a new primary)
//! HASH applied=1200 hash=.. hash_us=..     (on SIGUSR1: the engine's state hash)
//! TRUNCATED to_seq=812
//! ACKED 1200                               (every few ms while it moves; primary only)
//! FOLLOW last_seq=1200 durable=1180        (the same, standby only)
//! FINAL role=primary term=2 last_seq=.. applied=.. durable=.. acked=.. hash=.. duplicates=..
//! ```
//!
//! `ACKED n` means every record up to `n` may be acknowledged to its client (the durability
//! mode holds for it): a bench that counts lost acknowledgements takes the highest `n` printed
//! as what clients were told. `mono_ns` is `CLOCK_MONOTONIC` (see [`mono_ns`]), comparable
//! across processes on one host: a bench takes its kill time on the same clock.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tpx_sequencer::clock::SystemClock;
use tpx_sequencer::log::LogConfig;
use tpx_sequencer::process::{
    hash_requested, mono_ns, say, set_normal, set_realtime, stop_requested, tight_timer_slack,
    Backoff,
};
use tpx_sequencer::replica::{Durability, Replica, ReplicaConfig, ReplicaEvent, Role, SubmitError};
use tpx_sequencer::restart::restore;
use tpx_sequencer::snapshot::{write_snapshot, Snapshot};
use tpx_sequencer::storage::{FileStorage, WriteMode};
use tpx_sequencer::testing::{demo_engine_config, Load};
use tpx_sequencer::transport::{TcpTransport, WITNESS_ID};
use tpx_sequencer::writer::{IdleMode, LogSink, ThreadedLog};

/// A node's settings.
#[derive(Clone, Debug)]
pub struct NodeOptions {
    pub id: u32,
    pub peer: u32,
    pub listen: SocketAddr,
    pub peer_addr: SocketAddr,
    pub witness_addr: SocketAddr,
    pub dir: PathBuf,
    pub durability: Durability,
    /// Ask the witness for a term at start (else wait as standby).
    pub want_primary: bool,
    pub timeout_ns: u64,
    pub heartbeat_ns: u64,
    pub idle: IdleMode,
    /// Busy-poll while standby or candidate (whatever `idle` says), park as primary: the
    /// failure detector runs on a spinning core, and only one process of a pair spins.
    pub spin_standby: bool,
    /// How the log writer thread waits.
    pub writer_idle: IdleMode,
    /// `SCHED_FIFO` priority of the node's threads (0: the default policy). See
    /// [`set_realtime`].
    pub rt_priority: u32,
    /// Built-in load while primary: orders per second (0: none).
    pub load_rate: u64,
    /// Session id (log `origin`) and account of the built-in load.
    pub load_session: u32,
    pub segment_bytes: u64,
    pub direct: bool,
    /// Stop after this long (None: until SIGTERM/SIGINT).
    pub duration: Option<Duration>,
    /// Print `ACKED` / `FOLLOW` at most this often (zero: at every change).
    pub ack_report_every: Duration,
    /// A standby snapshots its engine every this many applied records (0: never). The engine
    /// copy pauses only for `Engine::snapshot()`; encoding and writing run on a thread.
    pub snapshot_every: u64,
}

impl Default for NodeOptions {
    fn default() -> Self {
        NodeOptions {
            id: 1,
            peer: 2,
            listen: "127.0.0.1:7101".parse().expect("addr"),
            peer_addr: "127.0.0.1:7102".parse().expect("addr"),
            witness_addr: "127.0.0.1:7100".parse().expect("addr"),
            dir: PathBuf::from("tpx-seq-data"),
            durability: Durability::Replicated,
            want_primary: false,
            timeout_ns: 5_000_000,
            heartbeat_ns: 50_000,
            idle: IdleMode::Park,
            spin_standby: false,
            writer_idle: IdleMode::Park,
            rt_priority: 0,
            load_rate: 0,
            load_session: 1,
            segment_bytes: 64 << 20,
            direct: true,
            duration: None,
            ack_report_every: Duration::from_millis(2),
            snapshot_every: 0,
        }
    }
}

/// What a node ended with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeSummary {
    pub role: Role,
    pub term: u64,
    pub last_seq: u64,
    pub applied_seq: u64,
    pub acked_seq: u64,
    pub state_hash: u64,
}

/// Runs one node until stopped (see the module docs for what it prints).
pub fn run_node(opts: &NodeOptions, out: &mut dyn Write) -> Result<NodeSummary, String> {
    let log_dir = opts.dir.join("log");
    let mode = if opts.direct {
        WriteMode::DirectSync
    } else {
        WriteMode::Buffered
    };
    let st = FileStorage::new(&log_dir, mode).map_err(|e| format!("{}: {e}", log_dir.display()))?;
    let cfg = LogConfig {
        segment_bytes: opts.segment_bytes,
        ..LogConfig::default()
    };
    tight_timer_slack();
    // The log writer thread (started by `open`) inherits the real-time policy; the restore
    // below (a replay that can take a core for a while) runs under the default policy, so a
    // restarting node does not starve the running pair at equal priority on a small host.
    set_realtime(opts.rt_priority)?;
    let (log, rec) = ThreadedLog::open(st, cfg, opts.writer_idle).map_err(|e| e.to_string())?;
    if opts.rt_priority > 0 {
        set_normal();
    }
    if let Some((seg, off, n)) = &rec.torn {
        say(
            out,
            format_args!("TORN segment={seg} offset={off} bytes={n}"),
        );
    }
    let reader_st = || FileStorage::new(&log_dir, WriteMode::Buffered);
    // Restart: the latest valid snapshot, then the log after it.
    let snap_dir = opts.dir.join("snap");
    let mut snaps = FileStorage::new(&snap_dir, WriteMode::Buffered)
        .map_err(|e| format!("{}: {e}", snap_dir.display()))?;
    let restored = restore(
        reader_st().map_err(|e| e.to_string())?,
        &mut snaps,
        demo_engine_config(),
    )
    .map_err(|e| e.to_string())?;
    if let Some(why) = &restored.snapshot_skipped {
        say(out, format_args!("SNAPSHOT_SKIPPED {why}"));
    }
    say(
        out,
        format_args!(
            "RESTORED snapshot_seq={} replayed={} snapshot_us={} replay_us={}",
            restored.snapshot_seq.unwrap_or(0),
            restored.replayed,
            restored.snapshot_ns / 1_000,
            restored.replay_ns / 1_000
        ),
    );
    let dedup_base = restored.dedup;
    let app = restored.app;
    // A rewind (a returning old primary cuts its tail) rebuilds the engine inside
    // `Replica::poll`, before the records received after the cut are applied.
    let mut app = app.with_source({
        let dir = log_dir.clone();
        move || FileStorage::new(&dir, WriteMode::Buffered)
    });
    let net = TcpTransport::new(
        opts.id,
        Some(opts.listen),
        vec![(opts.peer, opts.peer_addr), (WITNESS_ID, opts.witness_addr)],
    )
    .map_err(|e| format!("listen {}: {e}", opts.listen))?;
    let rcfg = ReplicaConfig {
        node_id: opts.id,
        peer_id: opts.peer,
        witness_id: WITNESS_ID,
        durability: opts.durability,
        heartbeat_ns: opts.heartbeat_ns,
        timeout_ns: opts.timeout_ns,
        lease_margin_ns: opts.timeout_ns / 10,
        ..ReplicaConfig::default()
    };
    let clock = SystemClock::new();
    let mut rep = Replica::new_with_dedup(
        rcfg,
        log,
        net,
        clock,
        app.applied_seq,
        opts.want_primary,
        dedup_base,
    )
    .map_err(|e| e.to_string())?;
    set_realtime(opts.rt_priority)?;
    say(
        out,
        format_args!(
            "READY node={} last_seq={} applied={} hash={}",
            opts.id,
            rep.last_seq(),
            app.applied_seq,
            app.state_hash()
        ),
    );
    let mut load = Load::new(opts.load_session, 0x5EED);
    let mut load_start: Option<(Instant, u64)> = None;
    let started = Instant::now();
    let mut backoff = Backoff::new(opts.idle);
    let mut spin_backoff = Backoff::new(IdleMode::Spin);
    let mut last_ack_print = Instant::now();
    let mut printed_ack = 0;
    let mut printed_follow = 0;
    let mut prev_role = rep.role();
    let mut printed_candidate = (0u64, 0u64);
    let mut printed_standby: Option<(u64, u32)> = None;
    let mut printed_denial = None;
    // Set at a promotion: the first record of the new term is reported (`FIRST`).
    let mut first_pending = false;
    let mut last_snapshot_seq = app.applied_seq;
    let mut snap_writer: Option<std::thread::JoinHandle<Result<String, String>>> = None;
    loop {
        if stop_requested() || opts.duration.is_some_and(|d| started.elapsed() >= d) {
            break;
        }
        let mut busy = rep.poll(&mut app);
        if rep.role() != prev_role {
            // Once per term asked, or after a quiet millisecond (a denied candidate asks again
            // every `timeout / 8`: printing each would flood the pipe, and a blocked write
            // silences the node).
            let t = mono_ns();
            if rep.role() == Role::Candidate
                && (rep.term() + 1 != printed_candidate.0
                    || t.saturating_sub(printed_candidate.1) > 1_000_000)
            {
                printed_candidate = (rep.term() + 1, t);
                say(
                    out,
                    format_args!("CANDIDATE term={} mono_ns={t}", rep.term() + 1),
                );
            }
            prev_role = rep.role();
        }
        if rep.last_denial() != printed_denial {
            printed_denial = rep.last_denial();
            if let Some((reason, term, holder)) = printed_denial {
                say(
                    out,
                    format_args!(
                        "DENIED reason={reason:?} term={term} holder={holder} mono_ns={}",
                        mono_ns()
                    ),
                );
            }
        }
        if hash_requested() {
            let t = mono_ns();
            let hash = app.state_hash();
            say(
                out,
                format_args!(
                    "HASH applied={} hash={hash} hash_us={}",
                    app.applied_seq,
                    (mono_ns() - t) / 1_000
                ),
            );
        }
        if let Some(seq) = app.rewound_to {
            // The rebuild inside `rewind` failed: retry (records applied since are kept).
            app.rebuild(reader_st().map_err(|e| e.to_string())?, seq)
                .map_err(|e| e.to_string())?;
        }
        while let Some(ev) = rep.take_event() {
            match ev {
                ReplicaEvent::BecamePrimary { term, last_seq } => {
                    printed_standby = None;
                    let t = mono_ns();
                    say(
                        out,
                        format_args!("ROLE primary term={term} last_seq={last_seq} mono_ns={t}"),
                    );
                    // A client re-sends what it has no answer for: resume a little behind.
                    load.next_cl_ord_id = rep.dedup().high(load.session).saturating_sub(20).max(1);
                    load_start = None;
                    first_pending = true;
                }
                ReplicaEvent::BecameStandby { term, primary } => {
                    // Printed when something changed (not at each denied candidacy).
                    if printed_standby != Some((term, primary)) {
                        printed_standby = Some((term, primary));
                        say(
                            out,
                            format_args!("ROLE standby term={term} primary={primary}"),
                        );
                    }
                }
                ReplicaEvent::Truncated { to_seq } => {
                    say(out, format_args!("TRUNCATED to_seq={to_seq}"))
                }
                ReplicaEvent::LogError(e) => say(out, format_args!("LOGERROR {e}")),
            }
        }
        if rep.role() == Role::Primary && opts.load_rate > 0 {
            let (t0, base) = *load_start.get_or_insert((Instant::now(), load.sent));
            // One order is due at once (a new primary sequences the re-sent requests without
            // waiting a load period), then `load_rate` a second.
            let due = base + 1 + (t0.elapsed().as_nanos() as u64 * opts.load_rate / 1_000_000_000);
            let mut n = 0;
            while load.sent < due && n < 256 {
                let id = load.next_cl_ord_id;
                let req = load.request(id);
                match rep.submit(load.session, load.session, &req) {
                    Ok(seq) => {
                        if first_pending {
                            first_pending = false;
                            let t = mono_ns();
                            // No state hash here: it walks every resting order (~0.7 ms for
                            // the book after 30 000 records of the built-in load), and a new
                            // primary silent that long loses its lease and its standby's
                            // patience: the old primary, stepped down, took the term back,
                            // and each such FIRST started the next flap. `HASH` (SIGUSR1)
                            // reports it when asked.
                            say(
                                out,
                                format_args!(
                                    "FIRST term={} seq={seq} mono_ns={t} applied={}",
                                    rep.term(),
                                    app.applied_seq,
                                ),
                            );
                        }
                        load.next_cl_ord_id += 1;
                        load.sent += 1;
                    }
                    Err(SubmitError::Duplicate { .. }) => {
                        load.duplicates += 1;
                        load.next_cl_ord_id += 1;
                    }
                    Err(_) => {
                        load.refused += 1;
                        break;
                    }
                }
                n += 1;
                busy = true;
            }
        }
        if rep.role() == Role::Primary
            && rep.acknowledgeable_seq() != printed_ack
            && last_ack_print.elapsed() >= opts.ack_report_every
        {
            printed_ack = rep.acknowledgeable_seq();
            last_ack_print = Instant::now();
            say(out, format_args!("ACKED {printed_ack}"));
        }
        if rep.role() == Role::Standby
            && rep.last_seq() != printed_follow
            && last_ack_print.elapsed() >= opts.ack_report_every
        {
            printed_follow = rep.last_seq();
            last_ack_print = Instant::now();
            say(
                out,
                format_args!(
                    "FOLLOW last_seq={printed_follow} durable={}",
                    rep.log().durable_seq()
                ),
            );
        }
        if opts.snapshot_every > 0
            && rep.role() == Role::Standby
            && app.applied_seq >= last_snapshot_seq + opts.snapshot_every
            && snap_writer.as_ref().is_none_or(|h| h.is_finished())
        {
            if let Some(h) = snap_writer.take() {
                match h.join() {
                    Ok(Ok(name)) => say(out, format_args!("SNAPSHOT_WRITTEN {name}")),
                    Ok(Err(e)) => say(out, format_args!("SNAPSHOT_FAILED {e}")),
                    Err(_) => say(out, format_args!("SNAPSHOT_FAILED writer panicked")),
                }
            }
            // The pause of the engine copy: `Engine::snapshot()` (and the de-duplication
            // table); the encoding, write, fsync and rename run on their own thread.
            let t = Instant::now();
            let s = Snapshot::of(
                app.applied_seq,
                rep.term(),
                rep.last_timestamp_ns(),
                &app.engine,
                rep.dedup(),
            );
            let pause_us = t.elapsed().as_micros();
            say(
                out,
                format_args!("SNAPSHOT seq={} pause_us={pause_us}", s.seq),
            );
            last_snapshot_seq = app.applied_seq;
            let dir = snap_dir.clone();
            snap_writer = Some(std::thread::spawn(move || {
                let mut st =
                    FileStorage::new(&dir, WriteMode::Buffered).map_err(|e| e.to_string())?;
                let name = write_snapshot(&mut st, &s).map_err(|e| e.to_string())?;
                let _ = tpx_sequencer::restart::prune_snapshots(&mut st, 2);
                Ok(name)
            }));
        }
        let b = if opts.spin_standby && rep.role() != Role::Primary {
            &mut spin_backoff
        } else {
            &mut backoff
        };
        if busy {
            b.busy();
        } else {
            // Parked in ppoll(2) on the sockets: a heartbeat, an ack or the witness's grant
            // ends the park at once instead of after the rest of a sleep.
            let net = rep.transport_mut();
            b.idle_or(|d| {
                net.wait_readable(d.as_micros() as u64);
            });
        }
    }
    // Let the writer finish what was appended (bounded), then report.
    let t0 = Instant::now();
    while rep.log().durable_seq() < rep.last_seq() && t0.elapsed() < Duration::from_secs(2) {
        rep.poll(&mut app);
        std::thread::sleep(Duration::from_micros(100));
    }
    let s = NodeSummary {
        role: rep.role(),
        term: rep.term(),
        last_seq: rep.last_seq(),
        applied_seq: app.applied_seq,
        acked_seq: rep.acknowledgeable_seq(),
        state_hash: app.state_hash(),
    };
    say(
        out,
        format_args!(
            "FINAL role={} term={} last_seq={} applied={} durable={} acked={} hash={} duplicates={}",
            match s.role {
                Role::Primary => "primary",
                Role::Standby => "standby",
                Role::Candidate => "candidate",
            },
            s.term,
            s.last_seq,
            s.applied_seq,
            rep.log().durable_seq(),
            s.acked_seq,
            s.state_hash,
            load.duplicates
        ),
    );
    Ok(s)
}
