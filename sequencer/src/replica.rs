//! One replica (primary or hot standby) as a state machine over the three seams: a
//! [`LogSink`] (storage), a [`Transport`] and a [`Clock`]. No threads, no sleeps: the owner
//! calls [`Replica::poll`] in its duty cycle (the simulator calls it from a seed).
//!
//! - **Primary**: [`Replica::submit`] stamps a request with `(seq, term, timestamp_ns)`, appends
//!   the record to the log and to the in-memory tail; `poll` streams records to the standby,
//!   heartbeats when idle, renews its witness lease, computes the acknowledgeable seq for the
//!   durability mode, and hands records up to it to the [`Applier`].
//! - **Standby**: says `Hello` (where its log ends), takes the `Welcome` (cut any tail the primary
//!   does not hold), appends and applies every record received, acks `(received, durable)`;
//!   when the primary is silent for `timeout_ns` it asks the witness for `term + 1`.
//! - **Candidate**: waiting for the witness; a grant makes it primary, continuing the sequence
//!   from its last record.

use std::collections::VecDeque;

use rustc_hash::FxHashMap;
use tpx_wire::log_record::{
    decode_record, encode_record, Input, LogRecord, RecordMeta, TermStart, MAX_RECORD_LEN,
};

use crate::apply::Applier;
use crate::clock::Clock;
use crate::log::LogError;
use crate::proto::{DenyReason, Msg};
use crate::transport::{PeerId, Transport};
use crate::writer::LogSink;

/// When a client may be told its request is done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Once the standby holds the record (in its memory; its disk follows) and the primary's
    /// own disk does too (so a restarted primary holds everything it acknowledged).
    Replicated,
    /// Once the record is on the primary's disk.
    Fsync,
    /// Once the record is on the primary's disk and on the standby's disk.
    ReplicatedFsync,
}

impl std::str::FromStr for Durability {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "replicated" => Ok(Durability::Replicated),
            "fsync" => Ok(Durability::Fsync),
            "replicated+fsync" => Ok(Durability::ReplicatedFsync),
            _ => Err(format!(
                "durability {s:?}: replicated | fsync | replicated+fsync"
            )),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Primary,
    Standby,
    Candidate,
}

/// Replica settings.
#[derive(Clone, Debug)]
pub struct ReplicaConfig {
    pub node_id: u32,
    pub peer_id: u32,
    pub witness_id: u32,
    pub durability: Durability,
    /// Heartbeat to the standby after this much silence (50 µs).
    pub heartbeat_ns: u64,
    /// A standby that hears nothing from the primary for this long asks to be promoted.
    pub timeout_ns: u64,
    /// A primary counts its standby as gone (and may acknowledge alone) when a message it sent
    /// has had no answer for this long (0: `2 * timeout_ns`). Longer than the standby's
    /// `timeout_ns` so that a short stall of the pair does not make the primary acknowledge
    /// alone (the witness then refuses the standby until it caught up: see `solo_upto`), and
    /// counted from the primary's own sends, so a primary that was itself not running (and so
    /// sent nothing to answer) never blames the standby for the silence.
    pub peer_timeout_ns: u64,
    /// Clock drift allowance taken off every lease.
    pub lease_margin_ns: u64,
    /// With the standby gone, keep acknowledging with local durability (within the witness
    /// lease, after the witness recorded what is acknowledged alone). Off: stop acknowledging
    /// until a standby is back (for `Replicated` / `ReplicatedFsync`).
    pub solo_when_alone: bool,
    /// Largest `Append` message.
    pub max_append_bytes: usize,
    /// Records sent but not acked by the standby before sending pauses.
    pub window_records: u64,
    /// Records sequenced but not yet applied before `submit` refuses (backpressure).
    pub max_unapplied: usize,
    /// This process's id for the witness (`Promote`, `Renew`): 0 picks a random non-zero one
    /// at `Replica::new`, so a restarted process is never taken for the one granted a term.
    pub incarnation: u64,
}

impl Default for ReplicaConfig {
    fn default() -> Self {
        ReplicaConfig {
            node_id: 1,
            peer_id: 2,
            witness_id: 100,
            durability: Durability::Replicated,
            heartbeat_ns: 50_000,
            timeout_ns: 5_000_000,
            peer_timeout_ns: 0,
            lease_margin_ns: 100_000,
            solo_when_alone: true,
            max_append_bytes: 256 << 10,
            window_records: 1 << 16,
            max_unapplied: 1 << 20,
            incarnation: 0,
        }
    }
}

/// Why `submit` refused a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubmitError {
    /// Only the primary sequences; `term` and who the replica follows.
    NotPrimary { term: u64, primary: Option<u32> },
    /// `(session, cl_ord_id)` was sequenced before (a client re-sending after a failover).
    /// The owner answers it only once [`Replica::acknowledgeable_seq`] reaches `seq` (a
    /// seq at or after the original record's); if the replica steps down first, the answer
    /// is "unavailable" (the original may be cut by the new term).
    Duplicate {
        session: u32,
        cl_ord_id: u64,
        seq: u64,
    },
    /// Too much is waiting to be written or acknowledged: retry later.
    Backpressure,
    /// The log cannot write (full disk, IO error): nothing more is taken or acknowledged.
    LogFailed(String),
    /// The input cannot be encoded.
    Encode,
}

/// Role changes and other things the owner may want to print or act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplicaEvent {
    BecamePrimary {
        term: u64,
        last_seq: u64,
    },
    BecameStandby {
        term: u64,
        primary: u32,
    },
    /// The log's tail after `to_seq` was cut (the applier was told to rewind).
    Truncated {
        to_seq: u64,
    },
    /// The log failed (the replica stops appending or acknowledging).
    LogError(String),
}

/// Counters.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReplicaStats {
    pub duplicates: u64,
    pub appends_sent: u64,
    pub records_sent: u64,
    pub records_received: u64,
    pub promotions_asked: u64,
}

/// How this replica's last promotion went, each a moment on the replica's clock (ns; 0: did
/// not happen): the node prints it as its `TAKEOVER` line after `ROLE primary`, and
/// `failover-bench` splits each takeover by it (detection, witness, term store, start).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TakeoverTrace {
    /// The standby saw the primary's connections close (0: it did not; the timeout fired).
    pub conn_closed_ns: u64,
    /// When the primary was last heard before the candidacy.
    pub last_heard_ns: u64,
    /// The candidacy's first `Promote`, and how many were sent (retries after a refusal or
    /// no answer included).
    pub first_ask_ns: u64,
    pub asks: u32,
    /// The duty cycle that read the `Granted` began.
    pub granted_ns: u64,
    /// The granted term was stored beside the log.
    pub stored_ns: u64,
    /// The replica acts as primary (its `TermStart` appended).
    pub primary_ns: u64,
}

#[derive(Clone, Copy, Debug, Default)]
struct PeerState {
    joined: bool,
    /// The standby's process (from its `Hello`).
    incarnation: u64,
    sent_seq: u64,
    received_seq: u64,
    durable_seq: u64,
    /// When the oldest message sent since the standby's last answer went out (0: none).
    unanswered_since_ns: u64,
}

/// The de-duplication table: the highest client order id sequenced per session, with the seq
/// of the record that carried it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dedup {
    /// `origin → (highest cl_ord_id, seq of its record)`.
    high: FxHashMap<u32, (u64, u64)>,
}

impl Dedup {
    /// The `(session, cl_ord_id)` a record is identified by, if it has one.
    pub fn key(origin: u32, input: &Input) -> Option<(u32, u64)> {
        match input {
            Input::EnterOrder(m) => Some((origin, m.cl_ord_id)),
            Input::EnterOrderExt(m) => Some((origin, m.cl_ord_id)),
            Input::ReplaceOrder(m) if m.new_cl_ord_id != m.orig_cl_ord_id => {
                Some((origin, m.new_cl_ord_id))
            }
            _ => None,
        }
    }

    /// Whether the request was sequenced before (ids increase per session): `Some(seq)`, a
    /// seq at or after the original record's (the record of the session's highest id: ids
    /// increase with seqs, so once that one is acknowledgeable the original is too).
    pub fn duplicate_of(&self, origin: u32, input: &Input) -> Option<u64> {
        let (s, id) = Dedup::key(origin, input)?;
        match self.high.get(&s) {
            Some(&(h, seq)) if id <= h => Some(seq),
            _ => None,
        }
    }

    /// Whether the request was sequenced before (see [`Dedup::duplicate_of`]).
    pub fn is_duplicate(&self, origin: u32, input: &Input) -> bool {
        self.duplicate_of(origin, input).is_some()
    }

    /// Notes the record `seq` carrying `input` from `origin`.
    pub fn note(&mut self, origin: u32, input: &Input, seq: u64) {
        if let Some((s, id)) = Dedup::key(origin, input) {
            let h = self.high.entry(s).or_insert((0, 0));
            if id > h.0 {
                *h = (id, seq);
            }
        }
    }

    /// The highest id sequenced for a session.
    pub fn high(&self, session: u32) -> u64 {
        self.high.get(&session).map_or(0, |h| h.0)
    }

    /// The table a snapshot at `seq` saved ([`Dedup::entries`]): each id's record is at or
    /// before `seq`, which stands for its seq.
    pub fn from_entries(seq: u64, entries: &[(u32, u64)]) -> Dedup {
        Dedup {
            high: entries.iter().map(|&(s, h)| (s, (h, seq))).collect(),
        }
    }

    /// `(session, highest id)` for snapshots, sorted.
    pub fn entries(&self) -> Vec<(u32, u64)> {
        let mut v: Vec<_> = self.high.iter().map(|(&s, &h)| (s, h.0)).collect();
        v.sort_unstable();
        v
    }
}

/// A primary or standby (see the module docs).
pub struct Replica<L: LogSink, T: Transport, C: Clock> {
    cfg: ReplicaConfig,
    log: L,
    net: T,
    clock: C,
    role: Role,
    term: u64,
    /// Who this replica follows (standby) — the peer.
    primary: Option<u32>,
    last_ts_ns: u64,
    dedup: Dedup,
    /// The table waits for [`Replica::install_dedup`] ([`Replica::new_dedup_later`]).
    dedup_pending: bool,
    /// Reading the pending table failed (said once).
    dedup_failed: bool,
    /// Primary: sequenced records not yet applied (or not yet durable / sent), in order.
    recent: VecDeque<LogRecord>,
    /// After a step-down: the records this node sequenced as primary and never applied (never
    /// acknowledgeable here). They are in the log; the new primary's `Welcome` says which of
    /// them its term keeps (applied then), and a promotion takes them back into `recent`.
    held: VecDeque<LogRecord>,
    /// The term stored beside the log (see [`LogSink::store_term`]).
    stored_term: u64,
    /// The de-duplication table of the snapshot the owner restored from, and its seq (the log
    /// may have been pruned before it): the base of every re-scan.
    dedup_base: Option<(u64, Dedup)>,
    commit_seq: u64,
    applied_seq: u64,
    peer: PeerState,
    last_peer_send_ns: u64,
    /// When the last `poll` started (a longer gap than a few heartbeats: this replica was not
    /// running, see `peer_alive`).
    last_poll_ns: u64,
    // Lease.
    lease_until_ns: u64,
    lease_ns: u64,
    solo_ok: u64,
    solo_acked: u64,
    solo_requested: u64,
    /// Primary: the seq of this term's `TermStart` record (0: the log was empty, nothing was
    /// inherited). Nothing is acknowledged, and nothing asked of the witness, below it: see
    /// `begin_term`.
    term_start_seq: u64,
    /// Primary (`replicated`): the standby process last named to the witness, and the one a
    /// `Lease` confirmed; only the confirmed one's receipts count (see `peer_counts`).
    standby_reported: u64,
    standby_confirmed: u64,
    renews_in_flight: VecDeque<u64>,
    last_renew_ns: u64,
    // Standby / candidate.
    last_heard_primary_ns: u64,
    /// Standby: a connection to the primary was up at the last tick.
    primary_conn_up: bool,
    synced: bool,
    hello_sent_ns: u64,
    cand_term: u64,
    promote_sent_ns: u64,
    next_promote_ns: u64,
    /// The promotion under way or last done (see [`TakeoverTrace`]).
    trace: TakeoverTrace,
    /// When the standby saw the primary's connections close (0: they are up, or were never).
    conn_closed_ns: u64,
    /// When the current `poll` began (the cycle's read of the network).
    poll_start_ns: u64,
    acked: (u64, u64),
    /// The witness's last refusal of this node's candidacy: `(reason, term, holder)`.
    last_denial: Option<(DenyReason, u64, u32)>,
    log_failed: bool,
    /// False once the node's state was found to differ from the log's (`forbid_promotion`):
    /// it never asks the witness for a term again.
    promotable: bool,
    /// A `truncate_after` failed: the next `Welcome` retries it even if it keeps everything.
    cut_pending: bool,
    events: VecDeque<ReplicaEvent>,
    stats: ReplicaStats,
    enc: Vec<u8>,
    out: Vec<u8>,
    inbox: Vec<u8>,
    inbox_idx: Vec<(PeerId, usize, usize)>,
    readbuf: Vec<LogRecord>,
    /// Encoded term history for `Hello`.
    hello_terms: Vec<u8>,
}

impl<L: LogSink, T: Transport, C: Clock> std::fmt::Debug for Replica<L, T, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica")
            .field("node", &self.cfg.node_id)
            .field("role", &self.role)
            .field("term", &self.term)
            .field("last_seq", &self.log.last_seq())
            .field("commit_seq", &self.commit_seq)
            .field("applied_seq", &self.applied_seq)
            .finish()
    }
}

/// The most `(term, first_seq)` entries a `Hello` carries.
const MAX_HELLO_TERMS: usize = 64;

/// Where a standby's log stops agreeing with the primary's, from the standby's term history
/// (`theirs`: `(term, first_seq)` pairs, oldest first, as in a `Hello`) and `their_last` seq.
/// Records of one term were all written by that term's primary in order, so two logs holding
/// term `t` agree on its records up to the shorter end, and on everything before (log
/// matching). The newest term of theirs that `mine` holds gives the answer; their records of
/// newer terms are foreign. 0 if none is shared.
pub fn common_prefix(
    mine: &[(u64, u64)],
    my_last_of_term: impl Fn(u64) -> u64,
    theirs: &[u8],
    their_last: u64,
) -> u64 {
    let pairs: Vec<(u64, u64)> = crate::proto::term_pairs(theirs).collect();
    let mut end = their_last;
    for &(t, first) in pairs.iter().rev() {
        if mine.iter().any(|&(m, _)| m == t) {
            return end.min(my_last_of_term(t));
        }
        end = end.min(first.saturating_sub(1));
    }
    0
}

/// A random non-zero process id (`ReplicaConfig::incarnation`).
fn new_incarnation(now_ns: u64) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(now_ns);
    h.write_u32(std::process::id());
    h.finish().max(1)
}

/// The drift margin taken off a lease of `lease_ns`: the configured one, and at least an
/// eighth of the lease (so the margin follows the witness's lease, whatever it is).
fn lease_margin_ns(cfg_margin_ns: u64, lease_ns: u64) -> u64 {
    cfg_margin_ns.max(lease_ns / 8)
}

/// The de-duplication entries and the last timestamp of a log's records after `after`, read
/// ahead by an owner that reads those records anyway: while a snapshot loads
/// ([`DedupScan::of`]), or as its replay's reader decodes them ([`DedupScan::starting`],
/// [`DedupScan::note`]); [`Replica::new_with_dedup_scan`] and [`Replica::install_dedup`] add
/// them to the snapshot's table instead of reading the log again.
#[derive(Clone, Debug)]
pub struct DedupScan {
    after: u64,
    through: u64,
    /// A record out of order was noted: the scan is not the log's (never used).
    broken: bool,
    dedup: Dedup,
    last_ts_ns: u64,
}

impl DedupScan {
    /// Reads the log's durable records after `after`.
    pub fn of<L: LogSink>(log: &mut L, after: u64) -> Result<DedupScan, LogError> {
        let through = log.durable_seq();
        if after > log.last_seq() {
            // Nothing after it here: never used (see `new_with_dedup_scan`).
            return Ok(DedupScan {
                after,
                through,
                broken: false,
                dedup: Dedup::default(),
                last_ts_ns: 0,
            });
        }
        let (dedup, last_ts_ns) = scan_log(log, Some(&(after, Dedup::default())))?;
        Ok(DedupScan {
            after,
            through,
            broken: false,
            dedup,
            last_ts_ns,
        })
    }

    /// An empty scan of the records after `after`, to be fed each of them in order by
    /// [`DedupScan::note`].
    pub fn starting(after: u64) -> DedupScan {
        DedupScan {
            after,
            through: after,
            broken: false,
            dedup: Dedup::default(),
            last_ts_ns: 0,
        }
    }

    /// The next record after those noted (seq `through + 1`; any other breaks the scan).
    #[inline]
    pub fn note(&mut self, rec: &LogRecord) {
        if rec.meta.seq != self.through + 1 {
            self.broken = true;
            return;
        }
        self.through = rec.meta.seq;
        self.dedup.note(rec.meta.origin, &rec.input, rec.meta.seq);
        self.last_ts_ns = self.last_ts_ns.max(rec.meta.timestamp_ns);
    }

    /// The last seq noted (or read).
    pub fn through(&self) -> u64 {
        self.through
    }

    /// `base` (the table at `after`, as `scan_log` starts from it) with this scan's entries
    /// added, and the scan's last timestamp, if the scan covers exactly the records after
    /// `after` through `durable`: the same table as reading them (ids only grow per session,
    /// and `note` keeps the first record of a session's highest id).
    fn apply_to(&self, after: u64, base: &Dedup, durable: u64) -> Option<(Dedup, u64)> {
        if self.broken || self.after != after || self.through != durable {
            return None;
        }
        let mut d = base.clone();
        for (&origin, &(id, at)) in &self.dedup.high {
            let h = d.high.entry(origin).or_insert((0, 0));
            if id > h.0 {
                *h = (id, at);
            }
        }
        Some((d, self.last_ts_ns))
    }
}

/// The de-duplication table and last timestamp of `log` from `dedup_base` (a snapshot's seq
/// and table; none: from the start): `scan` added to the base when it covers exactly the
/// records after the base's seq (0 without one) through the log's durable seq, else the log
/// read by [`scan_log`]. Either way the same table (see [`DedupScan::apply_to`]).
fn dedup_of<L: LogSink>(
    log: &mut L,
    dedup_base: Option<&(u64, Dedup)>,
    scan: Option<DedupScan>,
) -> Result<(Dedup, u64), LogError> {
    let empty = Dedup::default();
    let (after, base) = match dedup_base {
        Some((seq, d)) if *seq <= log.last_seq() => (*seq, d),
        _ => (0, &empty),
    };
    match scan.and_then(|sc| sc.apply_to(after, base, log.durable_seq())) {
        Some(x) => Ok(x),
        None => scan_log(log, dedup_base),
    }
}

/// Reads the de-duplication table and the last timestamp from a log: from `base` (a
/// snapshot's table and seq: retention may have removed the records before it) or from seq 1.
fn scan_log<L: LogSink>(
    log: &mut L,
    base: Option<&(u64, Dedup)>,
) -> Result<(Dedup, u64), LogError> {
    let (mut d, mut next) = match base {
        Some((seq, d)) if *seq <= log.last_seq() => (d.clone(), seq + 1),
        _ => (Dedup::default(), 1),
    };
    let mut ts = 0;
    let mut buf = Vec::new();
    let last = log.durable_seq();
    while next <= last {
        buf.clear();
        log.read(next, 4096, &mut buf)?;
        if buf.is_empty() {
            break;
        }
        for r in &buf {
            d.note(r.meta.origin, &r.input, r.meta.seq);
            ts = ts.max(r.meta.timestamp_ns);
            next = r.meta.seq + 1;
        }
    }
    Ok((d, ts))
}

impl<L: LogSink, T: Transport, C: Clock> Replica<L, T, C> {
    /// A replica over a recovered log whose records up to `applied_seq` the owner has already
    /// applied (by replay). With `want_primary` it asks the witness for a term at once; else it
    /// waits as a standby (and asks only when no primary is heard for `timeout_ns`).
    pub fn new(
        cfg: ReplicaConfig,
        log: L,
        net: T,
        clock: C,
        applied_seq: u64,
        want_primary: bool,
    ) -> Result<Self, LogError> {
        Self::new_with_dedup(cfg, log, net, clock, applied_seq, want_primary, None)
    }

    /// [`Replica::new`] for an owner restored from a snapshot: `dedup_base` is the snapshot's
    /// seq and de-duplication table ([`Dedup::from_entries`]); only the log after it is read
    /// (retention may have removed the records before it).
    pub fn new_with_dedup(
        cfg: ReplicaConfig,
        log: L,
        net: T,
        clock: C,
        applied_seq: u64,
        want_primary: bool,
        dedup_base: Option<(u64, Dedup)>,
    ) -> Result<Self, LogError> {
        Self::new_with_dedup_scan(
            cfg,
            log,
            net,
            clock,
            applied_seq,
            want_primary,
            dedup_base,
            None,
        )
    }

    /// [`Replica::new_with_dedup`] with the log after the snapshot read ahead: `scan` is used
    /// when it covers exactly the records the table needs (after `dedup_base`'s seq, through the
    /// log's durable seq), else the log is read as by `new_with_dedup`.
    #[allow(clippy::too_many_arguments)]
    pub fn new_with_dedup_scan(
        cfg: ReplicaConfig,
        mut log: L,
        net: T,
        clock: C,
        applied_seq: u64,
        want_primary: bool,
        dedup_base: Option<(u64, Dedup)>,
        scan: Option<DedupScan>,
    ) -> Result<Self, LogError> {
        let table = dedup_of(&mut log, dedup_base.as_ref(), scan)?;
        Self::with_dedup(
            cfg,
            log,
            net,
            clock,
            applied_seq,
            want_primary,
            dedup_base,
            table,
            false,
        )
    }

    /// [`Replica::new_with_dedup`] for an owner that replays the log after `dedup_base`'s seq
    /// itself: the de-duplication table is not read now but given by
    /// [`Replica::install_dedup`] (a [`DedupScan`] of the replay's records) before the replica
    /// is first polled; a replica polled without it reads the log then, before anything else
    /// (so it never acts on a partial table). The node's start: the table's read of the tail
    /// would take the sequencing core ~0.1 s (a whole log's, ~10 times that) before its replay.
    pub fn new_dedup_later(
        cfg: ReplicaConfig,
        log: L,
        net: T,
        clock: C,
        applied_seq: u64,
        want_primary: bool,
        dedup_base: Option<(u64, Dedup)>,
    ) -> Result<Self, LogError> {
        let base = dedup_base
            .as_ref()
            .map(|(_, d)| d.clone())
            .unwrap_or_default();
        Self::with_dedup(
            cfg,
            log,
            net,
            clock,
            applied_seq,
            want_primary,
            dedup_base,
            (base, 0),
            true,
        )
    }

    /// Whether the de-duplication table waits for [`Replica::install_dedup`].
    pub fn dedup_pending(&self) -> bool {
        self.dedup_pending
    }

    /// Completes a table [`Replica::new_dedup_later`] left pending: `scan` (the records after
    /// `dedup_base`'s seq, or after 0 without one) is added to the base if it covers exactly
    /// the records after it through the log's durable seq; otherwise (none, another range, a
    /// log that moved on) the log is read as [`Replica::new_with_dedup`] reads it. Either way
    /// the table and last timestamp are what `new_with_dedup` would have built. Nothing if
    /// the table is not pending.
    pub fn install_dedup(&mut self, scan: Option<DedupScan>) -> Result<(), LogError> {
        if !self.dedup_pending {
            return Ok(());
        }
        let (dedup, last_ts_ns) = dedup_of(&mut self.log, self.dedup_base.as_ref(), scan)?;
        self.dedup = dedup;
        self.last_ts_ns = self.last_ts_ns.max(last_ts_ns);
        self.dedup_pending = false;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn with_dedup(
        cfg: ReplicaConfig,
        mut log: L,
        net: T,
        clock: C,
        applied_seq: u64,
        want_primary: bool,
        dedup_base: Option<(u64, Dedup)>,
        (dedup, last_ts_ns): (Dedup, u64),
        dedup_pending: bool,
    ) -> Result<Self, LogError> {
        let now = clock.now_ns();
        let mut cfg = cfg;
        if cfg.incarnation == 0 {
            cfg.incarnation = new_incarnation(now);
        }
        // The term granted or heard of last, even if no record of it reached the log: a
        // restarted holder must never be granted its term again.
        let stored_term = log.stored_term()?;
        let term = log.last_term().max(stored_term);
        let mut r = Replica {
            primary: Some(cfg.peer_id),
            cfg,
            role: Role::Standby,
            term,
            last_ts_ns,
            dedup,
            dedup_pending,
            dedup_failed: false,
            recent: VecDeque::new(),
            held: VecDeque::new(),
            stored_term,
            dedup_base,
            commit_seq: 0,
            applied_seq,
            peer: PeerState::default(),
            last_peer_send_ns: 0,
            last_poll_ns: now,
            lease_until_ns: 0,
            lease_ns: 0,
            solo_ok: 0,
            solo_acked: 0,
            solo_requested: 0,
            term_start_seq: 0,
            standby_reported: 0,
            standby_confirmed: 0,
            renews_in_flight: VecDeque::new(),
            last_renew_ns: 0,
            last_heard_primary_ns: now,
            primary_conn_up: false,
            synced: false,
            hello_sent_ns: 0,
            cand_term: 0,
            promote_sent_ns: 0,
            next_promote_ns: 0,
            trace: TakeoverTrace::default(),
            conn_closed_ns: 0,
            poll_start_ns: now,
            acked: (0, 0),
            last_denial: None,
            log_failed: false,
            cut_pending: false,
            events: VecDeque::new(),
            stats: ReplicaStats::default(),
            enc: vec![0; MAX_RECORD_LEN],
            out: Vec::with_capacity(1 << 16),
            inbox: Vec::with_capacity(1 << 16),
            inbox_idx: Vec::new(),
            readbuf: Vec::new(),
            promotable: true,
            hello_terms: Vec::new(),
            log,
            net,
            clock,
        };
        if want_primary {
            r.start_candidacy(now);
        } else {
            r.events.push_back(ReplicaEvent::BecameStandby {
                term,
                primary: r.cfg.peer_id,
            });
        }
        Ok(r)
    }

    /// Never become primary from now on: a standby or candidate stops asking the witness for a
    /// term (a candidate goes back to standby; a grant still in flight is ignored). For a node
    /// whose state is known to be wrong (a replica checkpoint mismatch): it keeps following
    /// the log, but must not serve it. A primary keeps its term.
    pub fn forbid_promotion(&mut self) {
        self.promotable = false;
        if self.role == Role::Candidate {
            self.role = Role::Standby;
        }
    }

    /// False after [`Replica::forbid_promotion`].
    pub fn promotable(&self) -> bool {
        self.promotable
    }

    pub fn role(&self) -> Role {
        self.role
    }
    pub fn term(&self) -> u64 {
        self.term
    }
    pub fn config(&self) -> &ReplicaConfig {
        &self.cfg
    }
    /// The highest seq sequenced (primary) or received (standby).
    pub fn last_seq(&self) -> u64 {
        self.log.last_seq()
    }
    pub fn durable_seq(&self) -> u64 {
        self.log.durable_seq()
    }
    /// The timestamp of the last record sequenced or received (what `submit` just stamped).
    pub fn last_timestamp_ns(&self) -> u64 {
        self.last_ts_ns
    }
    /// The stamp `submit` would give a record now (the replica's clock, never below the last
    /// stamp): what a caller compares with a sequencer-time deadline (GTD expiry).
    pub fn stamp_now_ns(&self) -> u64 {
        self.clock.now_ns().max(self.last_ts_ns)
    }
    /// Primary: every record up to this seq may be acknowledged to its client (durable as the
    /// durability mode requires, and safe across a failover). Standby: the primary's, as last
    /// heard.
    pub fn acknowledgeable_seq(&self) -> u64 {
        self.commit_seq
    }
    pub fn applied_seq(&self) -> u64 {
        self.applied_seq
    }
    pub fn stats(&self) -> ReplicaStats {
        self.stats
    }
    pub fn dedup(&self) -> &Dedup {
        &self.dedup
    }
    pub fn log(&self) -> &L {
        &self.log
    }
    pub fn log_mut(&mut self) -> &mut L {
        &mut self.log
    }
    pub fn transport(&self) -> &T {
        &self.net
    }
    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.net
    }
    /// What the standby holds, as the primary last heard (`received`, `durable`).
    pub fn peer_seqs(&self) -> (u64, u64) {
        (self.peer.received_seq, self.peer.durable_seq)
    }
    /// The replica's clock moment at which `poll` next has timed work to do even if no
    /// message arrives: a primary's heartbeat to its standby, its lease renewal and the moment
    /// an unanswered standby counts as gone; a standby's `Hello` retry and the timeout after
    /// which it asks for a term; a candidate's retry. A parked owner sleeps no longer than
    /// until then: a primary that slept through its heartbeats and renewals would be taken
    /// for dead by its standby and the witness (a node core's back-off sleeps up to
    /// `park_max_us`, 1 ms by default, above a 500 µs timeout; it restarts at every message,
    /// so in `failover-bench` this bound changed little).
    pub fn next_deadline_ns(&self) -> u64 {
        let peer_up = self.net.connected(self.cfg.peer_id);
        match self.role {
            Role::Primary => {
                let mut d = self.last_renew_ns + (self.lease_ns / 4).max(self.cfg.heartbeat_ns);
                if peer_up {
                    d = d.min(self.last_peer_send_ns + self.cfg.heartbeat_ns);
                }
                if self.peer.joined && self.peer.unanswered_since_ns != 0 {
                    // The standby counts as gone then (acknowledging alone may start).
                    d = d.min(self.peer.unanswered_since_ns + self.peer_timeout_ns() + 1);
                }
                d
            }
            Role::Standby | Role::Candidate => {
                let mut d = u64::MAX;
                if self.promotable && self.role == Role::Standby {
                    d = (self.last_heard_primary_ns + self.cfg.timeout_ns + 1)
                        .max(self.next_promote_ns);
                }
                if self.role == Role::Candidate {
                    d = d.min(self.promote_sent_ns + self.cfg.timeout_ns + 1);
                }
                if peer_up && !self.synced {
                    d = d.min(self.hello_sent_ns + self.cfg.timeout_ns / 8);
                }
                d
            }
        }
    }

    /// How the last promotion went (see [`TakeoverTrace`]).
    pub fn takeover_trace(&self) -> TakeoverTrace {
        self.trace
    }
    /// The replica's clock now (the clock of [`TakeoverTrace`]).
    pub fn clock_now_ns(&self) -> u64 {
        self.clock.now_ns()
    }
    pub fn take_event(&mut self) -> Option<ReplicaEvent> {
        self.events.pop_front()
    }
    /// Why the witness last refused this node a term, with the witness's `(term, holder)`
    /// then (cleared when it becomes primary). `MissingAcked`: the holder acknowledged records
    /// alone that this log lacks, so only the holder (restarted) can continue the sequence.
    pub fn last_denial(&self) -> Option<(DenyReason, u64, u32)> {
        self.last_denial
    }
    /// The primary's standby-liveness timeout in effect (see `ReplicaConfig::peer_timeout_ns`).
    pub fn peer_timeout_ns(&self) -> u64 {
        if self.cfg.peer_timeout_ns == 0 {
            2 * self.cfg.timeout_ns
        } else {
            self.cfg.peer_timeout_ns
        }
    }
    /// Primary: whether the standby counts as present (it answered what was sent to it within
    /// `peer_timeout_ns`); while it does not, acknowledgements may go on alone (see
    /// `ReplicaConfig::solo_when_alone`).
    pub fn peer_alive(&self, now_ns: u64) -> bool {
        self.peer.joined
            && (self.peer.unanswered_since_ns == 0
                || now_ns.saturating_sub(self.peer.unanswered_since_ns) <= self.peer_timeout_ns())
    }

    /// Sequences one request (primary only): stamps `(seq, term, timestamp_ns)` and appends it.
    /// The request is done when [`Replica::acknowledgeable_seq`] reaches the returned seq.
    pub fn submit(&mut self, origin: u32, account: u32, input: &Input) -> Result<u64, SubmitError> {
        self.submit_from(origin, account, 0, input)
    }

    /// [`Replica::submit`] of a request from the client session `session` (the record's
    /// `session` field: whose reply stream its answers belong to; 0 = none).
    pub fn submit_from(
        &mut self,
        origin: u32,
        account: u32,
        session: u32,
        input: &Input,
    ) -> Result<u64, SubmitError> {
        if self.role != Role::Primary {
            return Err(SubmitError::NotPrimary {
                term: self.term,
                primary: self.primary,
            });
        }
        if let Some(e) = self.log.error() {
            return Err(SubmitError::LogFailed(e));
        }
        if self.log_failed {
            return Err(SubmitError::LogFailed("log append failed".into()));
        }
        if self.log.is_full() || self.recent.len() >= self.cfg.max_unapplied {
            return Err(SubmitError::Backpressure);
        }
        if let Some(seq) = self.dedup.duplicate_of(origin, input) {
            self.stats.duplicates += 1;
            let (session, cl_ord_id) = Dedup::key(origin, input).unwrap_or((origin, 0));
            // The owner answers once `acknowledgeable_seq() >= seq`.
            #[cfg(feature = "planted-duplicate-before-commit")]
            let seq = {
                let _ = seq;
                0
            };
            return Err(SubmitError::Duplicate {
                session,
                cl_ord_id,
                seq,
            });
        }
        let ts = self.clock.now_ns().max(self.last_ts_ns);
        let rec = LogRecord {
            meta: RecordMeta {
                seq: self.log.last_seq() + 1,
                term: self.term,
                timestamp_ns: ts,
                origin,
                account,
                session,
            },
            input: *input,
        };
        let n = encode_record(&rec, &mut self.enc).map_err(|_| SubmitError::Encode)?;
        if let Err(e) = self.log.append(&self.enc[..n]) {
            self.log_failed = true;
            self.events.push_back(ReplicaEvent::LogError(e.to_string()));
            return Err(SubmitError::LogFailed(e.to_string()));
        }
        self.last_ts_ns = ts;
        self.dedup.note(origin, input, rec.meta.seq);
        self.recent.push_back(rec);
        Ok(rec.meta.seq)
    }

    /// One duty cycle: IO, messages, timers, commit, apply. Returns whether anything happened.
    pub fn poll<A: Applier>(&mut self, app: &mut A) -> bool {
        if self.dedup_pending {
            // Never handle a message (a grant, a record to sequence) on a partial table.
            if let Err(e) = self.install_dedup(None) {
                if !self.dedup_failed {
                    self.dedup_failed = true;
                    self.events
                        .push_back(ReplicaEvent::LogError(format!("reading the log: {e}")));
                }
                return false;
            }
        }
        let now = self.clock.now_ns();
        let gap = now.saturating_sub(self.last_poll_ns);
        self.last_poll_ns = now;
        self.poll_start_ns = now;
        if gap > 2 * self.cfg.heartbeat_ns && self.peer.unanswered_since_ns != 0 {
            // This replica was not running (descheduled, a VM pause): the time it could not
            // have read an answer in does not count against the standby.
            self.peer.unanswered_since_ns = (self.peer.unanswered_since_ns + gap).min(now);
        }
        self.log.poll();
        self.inbox.clear();
        self.inbox_idx.clear();
        {
            let inbox = &mut self.inbox;
            let idx = &mut self.inbox_idx;
            self.net.poll(&mut |from, m| {
                let at = inbox.len();
                inbox.extend_from_slice(m);
                idx.push((from, at, m.len()));
            });
        }
        let busy = !self.inbox_idx.is_empty();
        let inbox = std::mem::take(&mut self.inbox);
        let idx = std::mem::take(&mut self.inbox_idx);
        for &(from, at, len) in &idx {
            if let Some(msg) = Msg::decode(&inbox[at..at + len]) {
                self.on_message(now, from, msg, app);
            }
        }
        self.inbox = inbox;
        self.inbox_idx = idx;
        let now = self.clock.now_ns();
        match self.role {
            Role::Primary => self.primary_tick(now, app),
            Role::Standby => self.standby_tick(now),
            Role::Candidate => {
                self.standby_tick(now);
                self.candidate_tick(now);
            }
        }
        busy
    }

    /// The primary sent the standby something it answers (an `Ack`): start the clock of
    /// `peer_alive` unless an older message is still unanswered.
    fn expect_answer(&mut self, now: u64) {
        if self.peer.joined && self.peer.unanswered_since_ns == 0 {
            self.peer.unanswered_since_ns = now.max(1);
        }
    }

    fn send(&mut self, to: PeerId, msg: Msg<'_>) -> bool {
        msg.encode(&mut self.out);
        self.net.send(to, &self.out)
    }

    #[allow(clippy::collapsible_match)]
    fn on_message<A: Applier>(&mut self, now: u64, from: PeerId, msg: Msg<'_>, app: &mut A) {
        if from == self.cfg.witness_id {
            return self.on_witness(now, msg, app);
        }
        if from != self.cfg.peer_id {
            return;
        }
        match msg {
            Msg::Hello {
                term,
                last_seq,
                last_term,
                incarnation,
                terms,
            } => self.on_hello(now, term, (last_seq, last_term), incarnation, terms, app),
            Msg::Welcome { term, keep_seq } => self.on_welcome(now, term, keep_seq, app),
            Msg::Append {
                term,
                commit_seq,
                records,
            } => {
                if self.on_primary_message(now, term, app) {
                    self.on_records(commit_seq, records, app);
                }
            }
            Msg::Heartbeat {
                term, commit_seq, ..
            } => {
                if self.on_primary_message(now, term, app) {
                    self.on_records(commit_seq, &[], app);
                }
            }
            Msg::Ack {
                term,
                received_seq,
                durable_seq,
            } => {
                if self.role == Role::Primary && term == self.term && self.peer.joined {
                    self.peer.received_seq = received_seq.min(self.log.last_seq());
                    self.peer.durable_seq = durable_seq.min(received_seq);
                    self.peer.unanswered_since_ns = 0;
                } else if term > self.term {
                    self.step_down(now, term, from, app);
                }
            }
            Msg::NewTerm { term, primary } => {
                if term > self.term {
                    self.step_down(now, term, primary, app);
                }
            }
            _ => {}
        }
    }

    /// A message from a peer acting as primary of `term`: whether to take it.
    fn on_primary_message<A: Applier>(&mut self, now: u64, term: u64, app: &mut A) -> bool {
        if term < self.term {
            let primary = if self.role == Role::Primary {
                self.cfg.node_id
            } else {
                self.primary.unwrap_or(0)
            };
            let t = self.term;
            self.send(self.cfg.peer_id, Msg::NewTerm { term: t, primary });
            return false;
        }
        if self.role == Role::Primary {
            if term > self.term {
                self.step_down(now, term, self.cfg.peer_id, app);
            } else {
                return false;
            }
        }
        // A candidate keeps following (and acking) the primary it hears, but stays a candidate
        // until the witness answers: if the witness granted the term, the old primary's lease
        // had run out and the higher term fences it.
        if term > self.term {
            if !self.persist_term(term) {
                return false;
            }
            self.term = term;
            self.synced = false;
            if self.role == Role::Standby {
                // The role line names the term followed (a restarted standby starts at its
                // stored term and learns the new one from the primary).
                self.events.push_back(ReplicaEvent::BecameStandby {
                    term,
                    primary: self.cfg.peer_id,
                });
            }
        }
        self.primary = Some(self.cfg.peer_id);
        self.last_heard_primary_ns = now;
        true
    }

    /// A standby takes an `Append` (or a heartbeat: no records): appends the records it
    /// follows on with, acknowledges what its log now holds, then hands them to the applier.
    /// The `Ack` goes before the applying so that the primary's wait for it (its clients' acks
    /// in `replicated`) does not include this node's hand-off to its shards; what it says
    /// (`received` = appended, `durable` = on this disk) is the same either way.
    fn on_records<A: Applier>(&mut self, commit_seq: u64, records: &[u8], app: &mut A) {
        if !self.synced {
            return;
        }
        let held = self.log.last_seq();
        let taken = self.append_records(records);
        let appended = self.log.last_seq();
        self.commit_seq = self.commit_seq.max(commit_seq.min(self.log.last_seq()));
        if self.synced {
            self.send_ack();
        }
        // The records appended above (seqs `held + 1..=appended`, decoded and checked there).
        let mut rest = &records[..taken];
        while !rest.is_empty() {
            let Ok((rec, len)) = decode_record(rest) else {
                break;
            };
            rest = &rest[len..];
            let seq = rec.meta.seq;
            if seq > held && seq <= appended && seq == self.applied_seq + 1 {
                app.apply(&rec);
                self.applied_seq = seq;
            }
        }
    }

    /// Appends the records of an `Append` that follow this log (skipping those it holds);
    /// returns how many bytes of `records` it went through (a record it could not take, and
    /// what follows it, are not: the standby resyncs).
    fn append_records(&mut self, records: &[u8]) -> usize {
        let all = records.len();
        let mut records = records;
        while !records.is_empty() {
            let (rec, len) = match decode_record(records) {
                Ok(x) => x,
                Err(_) => {
                    self.synced = false;
                    break;
                }
            };
            let bytes = &records[..len];
            records = &records[len..];
            let seq = rec.meta.seq;
            if seq <= self.log.last_seq() {
                // A seq we hold: one (term, seq) is one record, so the same term says the same
                // record. Another term: the logs diverged here (a Welcome kept too much):
                // resync, and the next Welcome cuts.
                if self.term_at(seq) != rec.meta.term {
                    self.synced = false;
                    break;
                }
                continue;
            }
            if seq != self.log.last_seq() + 1 || rec.meta.term < self.log.last_term() {
                self.synced = false;
                break;
            }
            if let Err(e) = self.log.append(bytes) {
                self.events.push_back(ReplicaEvent::LogError(e.to_string()));
                self.synced = false;
                break;
            }
            self.stats.records_received += 1;
            self.dedup.note(rec.meta.origin, &rec.input, seq);
            self.last_ts_ns = self.last_ts_ns.max(rec.meta.timestamp_ns);
        }
        all - records.len()
    }

    fn send_ack(&mut self) {
        let (r, d) = (self.log.last_seq(), self.log.durable_seq());
        self.acked = (r, d);
        let term = self.term;
        self.send(
            self.cfg.peer_id,
            Msg::Ack {
                term,
                received_seq: r,
                durable_seq: d,
            },
        );
    }

    fn on_hello<A: Applier>(
        &mut self,
        now: u64,
        term: u64,
        (last_seq, last_term): (u64, u64),
        incarnation: u64,
        terms: &[u8],
        app: &mut A,
    ) {
        if term > self.term {
            self.step_down(now, term, self.cfg.peer_id, app);
            return;
        }
        if self.role != Role::Primary {
            return;
        }
        // Records of a term are the same on every replica that has them: the standby's log
        // agrees with ours up to the end of its last term in our history.
        // If we hold no record of the standby's last term, its records of that term are not
        // ours and we cannot tell where they start: it resyncs from the start (rare: it wrote
        // a term we never saw; `last_seq_of_term` would wrongly keep them).
        let holds_term = self.log.terms().iter().any(|&(t, _)| t == last_term);
        let keep = if !holds_term && !terms.is_empty() {
            // Its history says where its foreign term starts: keep what precedes it.
            common_prefix(
                self.log.terms(),
                |t| self.log.last_seq_of_term(t),
                terms,
                last_seq,
            )
            .min(self.log.last_seq())
        } else if holds_term || last_term == 0 {
            last_seq
                .min(self.log.last_seq_of_term(last_term))
                .min(self.log.last_seq())
        } else {
            0
        };
        self.peer = PeerState {
            joined: true,
            incarnation,
            sent_seq: keep,
            received_seq: keep,
            durable_seq: 0,
            unanswered_since_ns: now.max(1),
        };
        let t = self.term;
        self.send(
            self.cfg.peer_id,
            Msg::Welcome {
                term: t,
                keep_seq: keep,
            },
        );
        self.last_peer_send_ns = now;
    }

    fn on_welcome<A: Applier>(&mut self, now: u64, term: u64, keep_seq: u64, app: &mut A) {
        if term < self.term || self.role == Role::Primary && term == self.term {
            return;
        }
        if self.synced && term == self.term && self.role != Role::Primary {
            // A stale answer to a re-sent `Hello` (the first answer synced us, and we may have
            // received and acknowledged records since): cutting now would drop records the
            // primary counts as held here. A new connection clears `synced` first.
            return;
        }
        if term > self.term && !self.persist_term(term) {
            return;
        }
        if self.role == Role::Primary {
            self.step_down(now, term, self.cfg.peer_id, app);
        }
        if self.role != Role::Candidate {
            self.role = Role::Standby;
        }
        if term > self.term && self.role == Role::Standby {
            // The role line names the term followed: the `Welcome` can be the first message of
            // the new term a standby hears (TCP gives no order across the two connections).
            self.events.push_back(ReplicaEvent::BecameStandby {
                term,
                primary: self.cfg.peer_id,
            });
        }
        self.term = term;
        self.primary = Some(self.cfg.peer_id);
        self.last_heard_primary_ns = now;
        // Records of the Welcome's own term came from its primary (one primary per term) and
        // are in its log: never cut them. A stale Welcome (the answer to an older `Hello`,
        // maybe from an old connection) would otherwise cut what the standby already acked.
        let keep_seq = if self.log.last_term() == term {
            keep_seq.max(self.log.last_seq())
        } else {
            keep_seq
        };
        if self.log.last_seq() > keep_seq || self.cut_pending {
            // A cut that failed before is finished first (the log refuses appends until then).
            if let Err(e) = self.log.truncate_after(keep_seq) {
                // Nothing changed in memory (the log refuses appends until a cut succeeds):
                // stay unsynced, so the next `Hello` gets a `Welcome` that retries the cut.
                self.events.push_back(ReplicaEvent::LogError(e.to_string()));
                self.synced = false;
                self.cut_pending = true;
                return;
            }
            self.cut_pending = false;
            // The log may end below `keep_seq` (records it never got onto its disk).
            let cut = self.log.last_seq().min(keep_seq);
            self.events
                .push_back(ReplicaEvent::Truncated { to_seq: cut });
            match scan_log(&mut self.log, self.dedup_base.as_ref()) {
                Ok((d, _)) => self.dedup = d,
                Err(e) => self.events.push_back(ReplicaEvent::LogError(e.to_string())),
            }
            if self.applied_seq > cut {
                app.rewind(cut);
                self.applied_seq = cut;
            }
            self.commit_seq = self.commit_seq.min(cut);
        }
        // Records this node sequenced as primary and never applied (see `step_down`): those
        // the new term kept are the new primary's too (log matching): apply them now, as a
        // standby applies what it receives. The rest were cut.
        let kept = keep_seq.min(self.log.last_seq());
        while let Some(r) = self.held.pop_front() {
            if r.meta.seq <= kept && r.meta.seq == self.applied_seq + 1 {
                app.apply(&r);
                self.applied_seq = r.meta.seq;
            }
        }
        self.synced = true;
        self.send_ack();
    }

    /// Stores `term` beside the log if it is above the stored one (before the replica acts in
    /// it: Raft's `currentTerm`). False (and a `LogError` event) if it could not be stored:
    /// the caller does not act on the term.
    fn persist_term(&mut self, term: u64) -> bool {
        if term <= self.stored_term {
            return true;
        }
        match self.log.store_term(term) {
            Ok(()) => {
                self.stored_term = term;
                true
            }
            Err(e) => {
                self.events
                    .push_back(ReplicaEvent::LogError(format!("storing term {term}: {e}")));
                false
            }
        }
    }

    #[allow(clippy::collapsible_match)]
    fn on_witness<A: Applier>(&mut self, now: u64, msg: Msg<'_>, app: &mut A) {
        match msg {
            Msg::Granted { term, lease_ns } => {
                // The grant is stored before this node acts as its primary; if it cannot be,
                // the node stays a candidate (asking again re-grants the same term to it).
                // A grant whose lease, counted from when it was asked for, has already run
                // out is not taken: this node was paused (or its messages delayed) since, and
                // the witness may have granted a later term to the peer, which may have
                // acknowledged records this log lacks (`tpx-sim` seed 605919). It asks again.
                // (The whole lease, not less the drift margin: a margin derived from a long
                // `timeout_us` may exceed the lease, and no grant would ever be taken.)
                if self.role != Role::Candidate || !self.promotable || term != self.cand_term {
                    return;
                }
                let lease_left = self.promote_sent_ns + lease_ns > self.poll_start_ns;
                if !lease_left {
                    self.promote_sent_ns = 0;
                    return;
                }
                self.trace.granted_ns = self.poll_start_ns;
                if self.persist_term(term) {
                    self.trace.stored_ns = self.clock.now_ns();
                    self.become_primary(term, lease_ns, self.promote_sent_ns, app);
                    self.trace.primary_ns = self.clock.now_ns();
                }
            }
            Msg::Lease {
                term,
                solo_upto,
                lease_ns,
                standby_incarnation,
            } => {
                let sent = self.renews_in_flight.pop_front();
                if self.role == Role::Primary && term == self.term {
                    if let Some(sent) = sent {
                        self.lease_ns = lease_ns;
                        let margin = lease_margin_ns(self.cfg.lease_margin_ns, lease_ns);
                        self.lease_until_ns = self
                            .lease_until_ns
                            .max((sent + lease_ns).saturating_sub(margin));
                    }
                    self.solo_ok = solo_upto.min(self.solo_requested);
                    self.standby_confirmed = standby_incarnation;
                }
            }
            Msg::Denied {
                term,
                holder,
                reason,
            } => match self.role {
                Role::Candidate => {
                    self.last_denial = Some((reason, term, holder));
                    if reason == DenyReason::StaleTerm && holder == self.cfg.node_id {
                        // The witness has us holding a term we lost track of (a restart).
                        if !self.persist_term(term) {
                            return;
                        }
                        self.term = self.term.max(term);
                        self.start_candidacy(now);
                        return;
                    }
                    let moved = term > self.term;
                    if moved && !self.persist_term(term) {
                        return;
                    }
                    if moved {
                        self.term = term;
                        self.primary = Some(holder);
                        self.synced = false;
                    }
                    if moved || holder != 0 {
                        // A role change even when the term did not move (a candidate that
                        // already follows the holder's term, e.g. a node started as primary
                        // that lost the race for term 1).
                        self.events.push_back(ReplicaEvent::BecameStandby {
                            term: self.term,
                            primary: holder,
                        });
                    }
                    self.role = Role::Standby;
                    if moved {
                        // A new primary: give it a whole timeout to be heard.
                        self.last_heard_primary_ns = now;
                    }
                    // The lease may be about to run out: ask again soon (sooner when the witness
                    // said the lease is what stands in the way).
                    self.next_promote_ns = now
                        + if reason == DenyReason::LeaseHeld {
                            (self.cfg.heartbeat_ns / 2).min(self.cfg.timeout_ns / 8)
                        } else {
                            self.cfg.timeout_ns / 8
                        };
                }
                Role::Primary => {
                    // Our renewal was refused: another term, or another process of this node
                    // holds ours (incarnations differ). Either way we are not the holder.
                    let _ = self.renews_in_flight.pop_front();
                    self.step_down(now, term.max(self.term), holder, app);
                }
                Role::Standby => {}
            },
            _ => {}
        }
    }

    fn start_candidacy(&mut self, now: u64) {
        let t = &mut self.trace;
        if t.first_ask_ns == 0 || t.primary_ns != 0 || self.last_heard_primary_ns > t.first_ask_ns {
            // A new candidacy (a refused one asking again keeps its first ask).
            *t = TakeoverTrace {
                conn_closed_ns: self.conn_closed_ns,
                last_heard_ns: self.last_heard_primary_ns,
                first_ask_ns: now,
                ..TakeoverTrace::default()
            };
        }
        t.asks += 1;
        self.role = Role::Candidate;
        self.cand_term = self.term.max(self.log.last_term()) + 1;
        self.promote_sent_ns = now;
        self.stats.promotions_asked += 1;
        let m = Msg::Promote {
            node: self.cfg.node_id,
            term: self.cand_term,
            last_seq: self.log.last_seq(),
            last_term: self.log.last_term(),
            incarnation: self.cfg.incarnation,
        };
        self.send(self.cfg.witness_id, m);
    }

    fn become_primary<A: Applier>(&mut self, term: u64, lease_ns: u64, sent_ns: u64, app: &mut A) {
        self.role = Role::Primary;
        self.term = term;
        self.last_denial = None;
        self.primary = Some(self.cfg.node_id);
        self.lease_ns = lease_ns;
        self.lease_until_ns = (sent_ns + lease_ns)
            .saturating_sub(lease_margin_ns(self.cfg.lease_margin_ns, lease_ns));
        self.solo_ok = 0;
        self.solo_requested = 0;
        self.standby_reported = 0;
        self.standby_confirmed = 0;
        self.renews_in_flight.clear();
        self.last_renew_ns = 0;
        self.peer = PeerState::default();
        self.recent.clear();
        // Records this node sequenced in an earlier term and never applied (it stepped down
        // before they were acknowledgeable, and no Welcome came since): part of this term's
        // log now, applied once acknowledgeable like any other (they may be beyond what the
        // disk holds yet, so they are taken from memory, not read back).
        let held = std::mem::take(&mut self.held);
        if held
            .front()
            .is_some_and(|r| r.meta.seq == self.applied_seq + 1)
        {
            self.recent = held;
        }
        // Everything else in the log was applied as a standby; anything not yet (a restarted
        // node's unapplied tail cannot exist: the owner replays the whole log) is applied now.
        if self.recent.is_empty() && self.applied_seq < self.log.last_seq() {
            let mut from = self.applied_seq + 1;
            loop {
                self.readbuf.clear();
                if self.log.read(from, 4096, &mut self.readbuf).is_err() || self.readbuf.is_empty()
                {
                    break;
                }
                for r in &self.readbuf {
                    if r.meta.seq == self.applied_seq + 1 {
                        app.apply(r);
                        self.applied_seq = r.meta.seq;
                    }
                }
                from = self.applied_seq + 1;
            }
        }
        self.begin_term(term);
        self.events.push_back(ReplicaEvent::BecamePrimary {
            term,
            last_seq: self.log.last_seq(),
        });
    }

    /// A primary whose log is not empty starts its term with a `TermStart` record, and its
    /// acknowledgements (and what it asks the witness to record as acknowledged alone) wait
    /// until that record is acknowledgeable. Inherited records are then acknowledged as part
    /// of this term: whoever holds them holds a record of this term after them, which the
    /// witness's `(last term, last seq)` comparison sees. Without it, a primary acknowledging
    /// an inherited `(t7, 370)` alone let a node whose log ended in `(t8, 370)` (another
    /// record) win the next term: Raft's "figure 8" (`tpx-sim` seed 122 of
    /// `--classic --crash-ppm 30000 --max-lag-polls 4 --max-restart-steps 20`).
    fn begin_term(&mut self, term: u64) {
        self.term_start_seq = 0;
        if self.log.last_seq() == 0 {
            return;
        }
        let ts = self.clock.now_ns().max(self.last_ts_ns);
        let rec = LogRecord {
            meta: RecordMeta {
                seq: self.log.last_seq() + 1,
                term,
                timestamp_ns: ts,
                origin: 0,
                account: 0,
                session: 0,
            },
            input: Input::TermStart(TermStart {
                node: self.cfg.node_id,
            }),
        };
        // Until the record is in the log nothing of this term is acknowledged (`u64::MAX`);
        // a failed append is the log failing, reported as for `submit`.
        self.term_start_seq = u64::MAX;
        let appended = encode_record(&rec, &mut self.enc)
            .map_err(|e| format!("{e:?}"))
            .and_then(|n| self.log.append(&self.enc[..n]).map_err(|e| e.to_string()));
        match appended {
            Ok(_) => {
                self.last_ts_ns = ts;
                self.term_start_seq = rec.meta.seq;
                self.recent.push_back(rec);
            }
            Err(e) => {
                self.log_failed = true;
                self.events
                    .push_back(ReplicaEvent::LogError(format!("term start record: {e}")));
            }
        }
    }

    fn step_down<A: Applier>(&mut self, now: u64, term: u64, primary: u32, app: &mut A) {
        #[cfg(feature = "planted-apply-uncommitted-on-step-down")]
        {
            // The old behaviour: apply what was sequenced but not acknowledgeable.
            while let Some(r) = self.recent.pop_front() {
                if r.meta.seq == self.applied_seq + 1 {
                    app.apply(&r);
                    self.applied_seq = r.meta.seq;
                }
            }
        }
        // Records sequenced but not applied were never acknowledgeable: never apply them here
        // (the node's shards would answer their sessions). Their requesters learn they were
        // not sequenced; the new primary's Welcome says which the new term keeps (applied
        // then, see `on_welcome`).
        // (A node that stepped down before and heard no Welcome since keeps what it holds.)
        let before = self.held.len();
        while let Some(r) = self.recent.pop_front() {
            if r.meta.seq > self.applied_seq {
                self.held.push_back(r);
            }
        }
        if let (Some(first), Some(last)) = (self.held.get(before), self.held.back()) {
            app.discard(first.meta.seq, last.meta.seq);
        }
        // Stopping is always safe; the higher term is stored if it can be.
        let _ = self.persist_term(term);
        self.role = Role::Standby;
        self.term = self.term.max(term);
        self.primary = Some(primary);
        self.synced = false;
        self.peer = PeerState::default();
        self.last_heard_primary_ns = now;
        self.next_promote_ns = now + self.cfg.timeout_ns;
        self.hello_sent_ns = 0;
        self.events.push_back(ReplicaEvent::BecameStandby {
            term: self.term,
            primary,
        });
    }

    fn standby_tick(&mut self, now: u64) {
        let connected = self.net.connected(self.cfg.peer_id);
        // Silence is counted up to when this poll read the network (`poll_start_ns`), not up
        // to now: time this replica spent blocked after the read (a term stored on a step-down
        // took 2.8 ms at p50 on the shared VM, above a 500 µs timeout) is not silence of the
        // primary. Counted up to now, a deposed primary asked for the next term as soon as it
        // had stored this one, and the pair flapped.
        let read_ns = self.poll_start_ns.min(now);
        if connected {
            self.conn_closed_ns = 0;
        } else {
            self.synced = false;
            if self.primary_conn_up {
                self.conn_closed_ns = read_ns;
                if self.role == Role::Candidate && self.trace.conn_closed_ns == 0 {
                    self.trace.conn_closed_ns = read_ns;
                }
            }
            if self.primary_conn_up && self.role == Role::Standby {
                // The primary's connections closed (its process died: the kernel closes its
                // sockets; or the link broke): ask the witness now instead of after the
                // timeout. Safe whatever the cause: the witness grants only after the
                // primary's lease ran out (and only to a log holding what it acknowledged
                // alone); a live primary keeps renewing, and once reconnected it is heard.
                self.last_heard_primary_ns = self
                    .last_heard_primary_ns
                    .min(read_ns.saturating_sub(self.cfg.timeout_ns + 1));
            }
        }
        self.primary_conn_up = connected;
        if connected
            && !self.synced
            && now.saturating_sub(self.hello_sent_ns) >= self.cfg.timeout_ns / 8
        {
            self.hello_sent_ns = now;
            let terms = self.log.terms();
            let newest = &terms[terms.len().saturating_sub(MAX_HELLO_TERMS)..];
            let mut tb = std::mem::take(&mut self.hello_terms);
            crate::proto::encode_terms(newest, &mut tb);
            let m = Msg::Hello {
                term: self.term,
                last_seq: self.log.last_seq(),
                last_term: self.log.last_term(),
                incarnation: self.cfg.incarnation,
                terms: &tb,
            };
            self.send(self.cfg.peer_id, m);
            self.hello_terms = tb;
        }
        if self.synced && self.acked != (self.log.last_seq(), self.log.durable_seq()) {
            self.send_ack();
        }
        if self.role == Role::Standby
            && self.promotable
            && read_ns.saturating_sub(self.last_heard_primary_ns) > self.cfg.timeout_ns
            && now >= self.next_promote_ns
        {
            self.start_candidacy(now);
        }
    }

    fn candidate_tick(&mut self, now: u64) {
        if now.saturating_sub(self.promote_sent_ns) > self.cfg.timeout_ns {
            // No answer: ask again.
            self.promote_sent_ns = now;
            self.trace.asks += 1;
            self.stats.promotions_asked += 1;
            let m = Msg::Promote {
                node: self.cfg.node_id,
                term: self.cand_term,
                last_seq: self.log.last_seq(),
                last_term: self.log.last_term(),
                incarnation: self.cfg.incarnation,
            };
            self.send(self.cfg.witness_id, m);
        }
    }

    fn primary_tick<A: Applier>(&mut self, now: u64, app: &mut A) {
        let peer = self.cfg.peer_id;
        let connected = self.net.connected(peer);
        if self.peer.joined && !connected {
            self.peer.joined = false;
        }
        if self.peer.joined {
            self.send_appends(now);
        }
        if connected && now.saturating_sub(self.last_peer_send_ns) >= self.cfg.heartbeat_ns {
            let m = Msg::Heartbeat {
                term: self.term,
                last_seq: self.log.last_seq(),
                commit_seq: self.commit_seq,
            };
            self.send(peer, m);
            self.last_peer_send_ns = now;
            self.expect_answer(now);
        }
        self.update_commit(now);
        self.renew_lease(now);
        // Apply what is acknowledgeable.
        let commit = self.commit_seq;
        for r in self.recent.iter() {
            if r.meta.seq > commit {
                break;
            }
            if r.meta.seq == self.applied_seq + 1 {
                app.apply(r);
                self.applied_seq = r.meta.seq;
            }
        }
        let durable = self.log.durable_seq();
        while let Some(f) = self.recent.front() {
            let s = f.meta.seq;
            if s <= self.applied_seq
                && s <= durable
                && (!self.peer.joined || s <= self.peer.sent_seq)
            {
                self.recent.pop_front();
            } else {
                break;
            }
        }
        if let Some(e) = self.log.error() {
            if !self.log_failed {
                self.log_failed = true;
                self.events.push_back(ReplicaEvent::LogError(e));
            }
        } else {
            self.log_failed = false;
        }
    }

    fn update_commit(&mut self, now: u64) {
        let local = self.log.durable_seq();
        let last = self.log.last_seq();
        let alone = (!self.peer_alive(now) || !self.peer_counts()) && self.cfg.solo_when_alone;
        let peer_recv = self.peer_safe_seq();
        // Every mode acknowledges only what the primary's own disk holds as well, so a
        // restarted primary holds everything it acknowledged (the witness relies on it: see
        // `witness.rs`). In `replicated` the two run in parallel: max(standby RTT, local write).
        let mode_seq = match self.cfg.durability {
            Durability::Replicated if alone => local,
            Durability::Replicated => peer_recv.min(local),
            Durability::Fsync => local,
            Durability::ReplicatedFsync if alone => local,
            Durability::ReplicatedFsync => local.min(self.peer.durable_seq),
        };
        let lease_ok = now < self.lease_until_ns;
        let safe = peer_recv.max(if lease_ok { self.solo_ok } else { 0 });
        #[cfg(not(feature = "planted-ack-before-replication"))]
        let c = mode_seq.min(safe).min(last);
        #[cfg(feature = "planted-ack-before-replication")]
        let c = {
            let _ = (mode_seq, safe);
            last
        };
        if c > self.commit_seq && c >= self.term_start_seq {
            if c > peer_recv {
                self.solo_acked = self.solo_acked.max(c);
            }
            self.commit_seq = c;
        }
    }

    /// What the standby holds as the durability mode counts it: received (in its memory) in
    /// `Replicated`, on its disk in the fsync modes (a power loss of both nodes must not lose
    /// what was acknowledged: what the standby's disk lacks, the witness must have recorded).
    fn peer_safe_seq(&self) -> u64 {
        match self.cfg.durability {
            Durability::Replicated if !self.peer_counts() => 0,
            Durability::Replicated => self.peer.received_seq,
            Durability::Fsync | Durability::ReplicatedFsync => self.peer.durable_seq,
        }
    }

    /// `replicated`: whether the standby's receipts count. Its memory holds what they
    /// acknowledge, which a restart loses: the witness must know the process (so that another
    /// process of that node is never granted a term: `tpx-sim` seeds 338, 342, 343, 417), so
    /// only the process a `Lease` confirmed counts. The fsync modes count the standby's disk.
    fn peer_counts(&self) -> bool {
        self.cfg.durability != Durability::Replicated
            || (self.peer.incarnation != 0 && self.peer.incarnation == self.standby_confirmed)
    }

    /// The standby process to name in the next `Renew`: the joined one once it holds
    /// everything acknowledged so far (what an earlier standby's receipt acknowledged may be
    /// in no other memory), else the one named before.
    fn standby_to_report(&self) -> u64 {
        let p = &self.peer;
        if self.cfg.durability == Durability::Replicated
            && p.joined
            && p.incarnation != 0
            && p.received_seq >= self.commit_seq
        {
            p.incarnation
        } else {
            self.standby_reported
        }
    }

    fn renew_lease(&mut self, now: u64) {
        let peer_recv = self.peer_safe_seq();
        let local = self.log.durable_seq();
        let alone = !self.peer_alive(now) || !self.peer_counts();
        // Ask the witness to record what may be acknowledged without the standby: in fsync
        // mode whatever is on disk, in the replicated modes only while the standby is gone
        // (or its receipts do not count yet: see `peer_counts`).
        let want_mode = match self.cfg.durability {
            Durability::Fsync => local,
            _ if alone && self.cfg.solo_when_alone => local,
            _ => 0,
        };
        // Nothing of this term below its `TermStart` (see `begin_term`).
        let want_mode = if want_mode >= self.term_start_seq {
            want_mode
        } else {
            0
        };
        let want = want_mode.max(self.solo_acked);
        let want = if want > peer_recv { want } else { 0 };
        let period = (self.lease_ns / 4).max(self.cfg.heartbeat_ns);
        let due = now.saturating_sub(self.last_renew_ns) >= period;
        let standby = self.standby_to_report();
        let eager = (want > self.solo_requested || standby != self.standby_reported)
            && self.renews_in_flight.is_empty();
        if !(due || eager) {
            return;
        }
        if !self.net.connected(self.cfg.witness_id) {
            self.renews_in_flight.clear();
        }
        let m = Msg::Renew {
            node: self.cfg.node_id,
            term: self.term,
            solo_upto: want,
            solo_term: self.term_at(want),
            incarnation: self.cfg.incarnation,
            standby_incarnation: standby,
        };
        if self.send(self.cfg.witness_id, m) {
            self.renews_in_flight.push_back(now);
            if self.renews_in_flight.len() > 64 {
                self.renews_in_flight.pop_front();
            }
        }
        self.solo_requested = want;
        self.standby_reported = standby;
        // What was asked last bounds acknowledging alone: the witness may already hold the
        // lower value (an older, higher `Lease` must not be used after asking for less).
        self.solo_ok = self.solo_ok.min(want);
        self.last_renew_ns = now;
    }

    /// The term of the record at `seq` in the log (0 for seq 0).
    fn term_at(&self, seq: u64) -> u64 {
        if seq == 0 {
            return 0;
        }
        self.log
            .terms()
            .iter()
            .rev()
            .find(|&&(_, first)| first <= seq)
            .map_or(0, |&(t, _)| t)
    }

    fn send_appends(&mut self, now: u64) {
        let last = self.log.last_seq();
        // Bounded work per duty cycle: a catching-up standby gets a few messages per poll.
        let mut budget = 8;
        while self.peer.sent_seq < last && budget > 0 {
            budget -= 1;
            if self.peer.sent_seq.saturating_sub(self.peer.received_seq) >= self.cfg.window_records
            {
                break;
            }
            let next = self.peer.sent_seq + 1;
            Msg::Append {
                term: self.term,
                commit_seq: self.commit_seq,
                records: &[],
            }
            .encode(&mut self.out);
            let mut upto = self.peer.sent_seq;
            let front = self.recent.front().map_or(u64::MAX, |r| r.meta.seq);
            if next >= front {
                let skip = (next - front) as usize;
                for r in self.recent.iter().skip(skip) {
                    if self.out.len() + MAX_RECORD_LEN > self.cfg.max_append_bytes {
                        break;
                    }
                    if let Ok(n) = encode_record(r, &mut self.enc) {
                        self.out.extend_from_slice(&self.enc[..n]);
                        upto = r.meta.seq;
                    }
                }
            } else {
                // Catch-up from disk (only durable records are there; the newer ones are in
                // `recent`).
                self.readbuf.clear();
                let max = (self.cfg.max_append_bytes / 128).max(1);
                if let Err(e) = self.log.read(next, max, &mut self.readbuf) {
                    self.events.push_back(ReplicaEvent::LogError(e.to_string()));
                    self.peer.joined = false;
                    return;
                }
                for r in &self.readbuf {
                    if r.meta.seq >= front
                        || self.out.len() + MAX_RECORD_LEN > self.cfg.max_append_bytes
                    {
                        break;
                    }
                    if let Ok(n) = encode_record(r, &mut self.enc) {
                        self.out.extend_from_slice(&self.enc[..n]);
                        upto = r.meta.seq;
                    }
                }
            }
            if upto == self.peer.sent_seq {
                break;
            }
            if !self.net.send(self.cfg.peer_id, &self.out) {
                self.peer.joined = false;
                return;
            }
            self.stats.appends_sent += 1;
            self.stats.records_sent += upto - self.peer.sent_seq;
            self.peer.sent_seq = upto;
            self.last_peer_send_ns = now;
            self.expect_answer(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::log::LogConfig;
    use crate::storage::MemStorage;
    use crate::transport::{MemNet, MemTransport};
    use crate::writer::SyncLog;

    /// A log whose term store takes `store_ns` of the replica's clock (a slow disk).
    struct SlowTermLog {
        inner: SyncLog<MemStorage>,
        clock: ManualClock,
        store_ns: u64,
    }

    impl LogSink for SlowTermLog {
        fn append(&mut self, rec: &[u8]) -> Result<u64, LogError> {
            self.inner.append(rec)
        }
        fn poll(&mut self) {
            self.inner.poll()
        }
        fn last_seq(&self) -> u64 {
            self.inner.last_seq()
        }
        fn last_term(&self) -> u64 {
            self.inner.last_term()
        }
        fn durable_seq(&self) -> u64 {
            self.inner.durable_seq()
        }
        fn terms(&self) -> &[(u64, u64)] {
            self.inner.terms()
        }
        fn truncate_after(&mut self, seq: u64) -> Result<(), LogError> {
            self.inner.truncate_after(seq)
        }
        fn read(
            &mut self,
            from: u64,
            max: usize,
            out: &mut Vec<LogRecord>,
        ) -> Result<(), LogError> {
            self.inner.read(from, max, out)
        }
        fn error(&self) -> Option<String> {
            self.inner.error()
        }
        fn is_full(&self) -> bool {
            self.inner.is_full()
        }
        fn stored_term(&mut self) -> Result<u64, LogError> {
            self.inner.stored_term()
        }
        fn store_term(&mut self, term: u64) -> Result<(), LogError> {
            self.clock.advance(self.store_ns);
            self.inner.store_term(term)
        }
    }

    struct Nothing;
    impl Applier for Nothing {
        fn apply(&mut self, _: &LogRecord) {}
        fn rewind(&mut self, _: u64) {}
    }

    const TIMEOUT_NS: u64 = 500_000;

    /// A standby (node 2) whose term store takes `store_ns`, and the endpoint of its peer.
    fn standby(
        store_ns: u64,
    ) -> (
        Replica<SlowTermLog, MemTransport, ManualClock>,
        MemTransport,
        ManualClock,
    ) {
        let net = MemNet::new();
        let clock = ManualClock::new(1_000_000_000);
        let peer = net.endpoint(1);
        let _witness = net.endpoint(100);
        let (inner, _) = SyncLog::open(MemStorage::new(), LogConfig::default()).unwrap();
        let log = SlowTermLog {
            inner,
            clock: clock.clone(),
            store_ns,
        };
        let cfg = ReplicaConfig {
            node_id: 2,
            peer_id: 1,
            witness_id: 100,
            heartbeat_ns: 50_000,
            timeout_ns: TIMEOUT_NS,
            ..ReplicaConfig::default()
        };
        let r = Replica::new(cfg, log, net.endpoint(2), clock.clone(), 0, false).unwrap();
        (r, peer, clock)
    }

    fn heartbeat(peer: &mut MemTransport, term: u64) {
        let mut out = Vec::new();
        Msg::Heartbeat {
            term,
            last_seq: 0,
            commit_seq: 0,
        }
        .encode(&mut out);
        assert!(peer.send(2, &out));
    }

    /// A standby that stores a new term it heard of on a slow disk (2 ms, four timeouts) does
    /// not take the time it spent storing for silence of the primary it just heard: it stays
    /// a standby and asks the witness for nothing. (Counted up to the end of the store, a
    /// deposed primary asked for the next term as soon as it had stored this one: the pair
    /// flapped in `failover-bench`.)
    #[test]
    fn time_spent_storing_a_term_is_not_silence_of_the_primary() {
        let (mut r, mut peer, clock) = standby(4 * TIMEOUT_NS);
        clock.advance(10_000);
        r.poll(&mut Nothing);
        heartbeat(&mut peer, 5);
        r.poll(&mut Nothing);
        assert_eq!(r.term(), 5);
        assert_eq!(r.role(), Role::Standby);
        assert_eq!(
            r.stats().promotions_asked,
            0,
            "asked right after hearing the primary"
        );
        // The primary's heartbeats sent meanwhile are read next; silence from there on is
        // the primary's, and after the timeout the standby asks.
        heartbeat(&mut peer, 5);
        clock.advance(TIMEOUT_NS / 2);
        r.poll(&mut Nothing);
        assert_eq!(r.stats().promotions_asked, 0);
        clock.advance(TIMEOUT_NS + 1);
        r.poll(&mut Nothing);
        assert_eq!(r.role(), Role::Candidate);
        assert_eq!(r.stats().promotions_asked, 1);
        assert_eq!(r.takeover_trace().asks, 1);
    }

    /// Records the standby's `Ack`s the primary (node 1) has been sent by the time each record
    /// is applied.
    struct AckSeen {
        primary: MemTransport,
        acked: u64,
        at_apply: Vec<(u64, u64)>,
    }
    impl Applier for AckSeen {
        fn apply(&mut self, rec: &LogRecord) {
            let mut acked = self.acked;
            self.primary.poll(&mut |_, m| {
                if let Some(Msg::Ack { received_seq, .. }) = Msg::decode(m) {
                    acked = acked.max(received_seq);
                }
            });
            self.acked = acked;
            self.at_apply.push((rec.meta.seq, acked));
        }
        fn rewind(&mut self, _: u64) {}
    }

    /// The standby acknowledges an `Append` from its receive path, before it applies the
    /// records: when its applier sees a record, the primary has already been sent the `Ack`
    /// that covers it (the primary's wait, its clients' acks in `replicated`, does not include
    /// the standby's hand-off to its shards). The records are still applied, once, in order.
    #[test]
    fn the_standby_acknowledges_an_append_before_applying_it() {
        let net = MemNet::new();
        let clock = ManualClock::new(1_000_000_000);
        let mut peer = net.endpoint(1);
        let _witness = net.endpoint(100);
        let (log, _) = SyncLog::open(MemStorage::new(), LogConfig::default()).unwrap();
        let cfg = ReplicaConfig {
            node_id: 2,
            peer_id: 1,
            witness_id: 100,
            heartbeat_ns: 50_000,
            timeout_ns: TIMEOUT_NS,
            ..ReplicaConfig::default()
        };
        let mut r = Replica::new(cfg, log, net.endpoint(2), clock.clone(), 0, false).unwrap();
        heartbeat(&mut peer, 1);
        r.poll(&mut Nothing);
        let mut out = Vec::new();
        Msg::Welcome {
            term: 1,
            keep_seq: 0,
        }
        .encode(&mut out);
        assert!(peer.send(2, &out));
        r.poll(&mut Nothing);
        peer.poll(&mut |_, _| {});
        let mut records = Vec::new();
        let mut enc = vec![0u8; MAX_RECORD_LEN];
        for seq in 1..=3 {
            let rec = LogRecord {
                meta: RecordMeta {
                    seq,
                    term: 1,
                    timestamp_ns: seq,
                    origin: 0,
                    account: 0,
                    session: 0,
                },
                input: Input::TermStart(TermStart { node: 1 }),
            };
            let n = encode_record(&rec, &mut enc).unwrap();
            records.extend_from_slice(&enc[..n]);
        }
        Msg::Append {
            term: 1,
            commit_seq: 0,
            records: &records,
        }
        .encode(&mut out);
        assert!(peer.send(2, &out));
        let mut app = AckSeen {
            primary: net.endpoint(1),
            acked: 0,
            at_apply: Vec::new(),
        };
        r.poll(&mut app);
        assert_eq!(r.log().last_seq(), 3);
        assert_eq!(
            app.at_apply,
            vec![(1, 3), (2, 3), (3, 3)],
            "each record applied once, in order, after the Ack of all three was sent"
        );
    }

    /// A parked owner may sleep until `next_deadline_ns` and no longer: a standby's deadline
    /// is the end of the timeout after the primary was last heard, and at that moment (not
    /// before) it asks for a term.
    #[test]
    fn the_standby_asks_at_its_deadline() {
        let (mut r, mut peer, clock) = standby(0);
        heartbeat(&mut peer, 1);
        r.poll(&mut Nothing);
        let heard = clock.now_ns();
        let due = heard + TIMEOUT_NS + 1;
        // Woken at each deadline (its `Hello` retries come first: nobody answers them).
        let mut wakes = 0;
        while r.role() == Role::Standby {
            let d = r.next_deadline_ns();
            assert!(d > clock.now_ns() && d <= due, "deadline {d} (due {due})");
            clock.set(d);
            r.poll(&mut Nothing);
            wakes += 1;
            assert!(wakes < 100);
        }
        assert_eq!(clock.now_ns(), due);
        assert_eq!(r.role(), Role::Candidate);
        assert_eq!(r.takeover_trace().first_ask_ns, due);
    }
}
