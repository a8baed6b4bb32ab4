//! The node's durable, replicated input log: the `[replication]` config, the conversion of
//! gateway requests into log inputs and of log records back into shard entries, and the
//! transport the replica talks through.
//!
//! The sequencing stage (`core.rs`) owns a [`tpx_sequencer::Replica`] over a
//! [`tpx_sequencer::ThreadedLog`] (O_DIRECT group commits on a writer thread). Requests are
//! `submit`ted; records reach the shards only through the replica's [`Applier`], which the
//! replica calls for the primary's records once they are acknowledgeable (durable as the
//! durability mode requires) and for every record a standby receives. So one path feeds the
//! shards on primary and standby, and a reply (made by a shard from an applied record) never
//! reaches a client before its record is acknowledgeable.
//!
//! The log record's `origin` carries what the shards and the de-duplication need across nodes
//! (the gateway's session slot is local to a process, so it cannot be used):
//! `origin = shard << 24 | account` (`shard` 0xFF for every shard). The replica de-duplicates by
//! `(origin, cl_ord_id)` (the highest id seen per origin), so a client re-sending after a
//! failover is answered `DuplicateClientOrderId` instead of being sequenced twice. Client order
//! ids must therefore increase per account and instrument shard (the gateway enforces increase
//! per session; an account with one session at a time meets both).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use tpx_engine::{Command, EngineInput, RiskCommand};
use tpx_sequencer::transport::MemTransport;
use tpx_sequencer::{Applier, Durability, PeerId, TcpTransport, Transport};
use tpx_wire::enums as w;
use tpx_wire::log_record::{Input, LogRecord};
use tpx_wire::order_entry::{CancelOrder, EnterOrder, MassCancel, ReplaceOrder};

use crate::msg::{Request, Sequenced, ALL_SHARDS, NO_SESSION};
use crate::ring::Producer;

/// The witness's peer id on the replication network.
pub const WITNESS_ID: u32 = 100;

/// Exit status of `tpx node` when its log held records the new primary's term does not: it cut
/// them and must be restarted (as standby) to rebuild its shards by replay.
pub const EXIT_REJOIN: u8 = 3;

fn default_node_id() -> u32 {
    1
}
fn default_peer_id() -> u32 {
    2
}
fn default_log_dir() -> PathBuf {
    PathBuf::from("tpx-log")
}
fn default_timeout_us() -> u64 {
    20_000
}
fn default_heartbeat_us() -> u64 {
    500
}
fn default_true() -> bool {
    true
}
fn default_lease_us() -> u64 {
    20_000
}

/// How the log writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogWrite {
    /// `O_DIRECT | O_DSYNC`: a write is on the device when it returns (the default).
    #[default]
    Direct,
    /// Buffered writes + `fdatasync` (filesystems without O_DIRECT, e.g. tmpfs).
    Buffered,
}

/// `[replication]`: where the log lives, the peer and the witness. Absent: a single node with a
/// durable local log (`fsync`) and an in-process witness.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicationConfig {
    #[serde(default = "default_node_id")]
    pub node_id: u32,
    #[serde(default = "default_peer_id")]
    pub peer_id: u32,
    /// Where this node listens for its peer (replication); required with `peer_addr`.
    #[serde(default)]
    pub listen: Option<SocketAddr>,
    /// The peer's replication address; absent: no peer (single node).
    #[serde(default)]
    pub peer_addr: Option<SocketAddr>,
    /// The witness (`tpx witness`); absent: an in-process witness (single node only).
    #[serde(default)]
    pub witness_addr: Option<SocketAddr>,
    /// The input log's folder (relative paths: against the config file's folder).
    #[serde(default = "default_log_dir")]
    pub log_dir: PathBuf,
    /// `replicated` | `fsync` | `replicated+fsync`; default `replicated` with a peer, `fsync`
    /// without.
    #[serde(default)]
    pub durability: Option<String>,
    /// A standby that hears nothing from the primary for this long asks the witness for the
    /// next term (and a primary counts a silent standby as gone).
    #[serde(default = "default_timeout_us")]
    pub timeout_us: u64,
    /// The primary heartbeats an idle standby this often.
    #[serde(default = "default_heartbeat_us")]
    pub heartbeat_us: u64,
    /// Lease of the in-process witness (single node).
    #[serde(default = "default_lease_us")]
    pub lease_us: u64,
    /// The log writer thread: `park` (sleeps on a condition variable) or `spin`.
    #[serde(default)]
    pub writer_idle: crate::config::IdleMode,
    #[serde(default)]
    pub write: LogWrite,
    /// Preallocated bytes per log segment.
    #[serde(default)]
    pub segment_bytes: Option<u64>,
    /// Write zeros over a new segment once (at creation), so that O_DSYNC writes overwrite
    /// written blocks instead of converting unwritten extents (an ext4 journal commit each).
    #[serde(default = "default_true")]
    pub zero_fill: bool,
    /// Replication connections (peer and witness) must name this cluster.
    #[serde(default)]
    pub cluster_id: u64,
    /// A file holding the cluster's 32-byte shared secret as 64 hex digits (`openssl rand
    /// -hex 32`); the peer and the witness (`--secret-file`) must hold the same. Absent: no
    /// secret (connections are checked for the cluster id and configuration only).
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// Set by the node (not configured): the digest of the configuration primary and standby
    /// must share ([`config_digest`]); 0: not checked.
    #[serde(skip)]
    pub config_digest: u64,
}

/// A stable 64-bit digest (FNV-1a) of what a primary and its standby must agree on: the shard
/// count, every instrument with its shard, the risk section, `max_accounts` and the crate
/// version (the `Debug` forms are stable within one version, which is part of the digest).
pub fn config_digest(
    shard_count: u32,
    instruments: &[(crate::config::InstrumentConfig, u32)],
    risk: Option<&crate::risk_config::RiskSection>,
    max_accounts: u32,
) -> u64 {
    let canon = format!(
        "v={};shards={shard_count};instruments={instruments:?};risk={risk:?};max_accounts={max_accounts}",
        env!("CARGO_PKG_VERSION")
    );
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in canon.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h.max(1)
}

impl Default for ReplicationConfig {
    fn default() -> Self {
        toml::from_str("").expect("the empty replication config is valid")
    }
}

impl ReplicationConfig {
    /// The durability mode in force.
    pub fn durability(&self) -> Result<Durability, String> {
        match &self.durability {
            Some(s) => s.parse(),
            None if self.peer_addr.is_some() => Ok(Durability::Replicated),
            None => Ok(Durability::Fsync),
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        self.durability()?;
        if self.peer_addr.is_some() && (self.listen.is_none() || self.witness_addr.is_none()) {
            return Err("[replication]: peer_addr needs listen and witness_addr".into());
        }
        if self.peer_addr.is_none() && self.durability()? != Durability::Fsync {
            return Err("[replication]: without peer_addr the durability must be fsync".into());
        }
        // Timing that breaks the lease arithmetic or makes failovers spurious is refused:
        // a standby must hear several heartbeats per timeout, and a primary must renew its
        // lease (every quarter lease, at most every heartbeat) well within it. The drift
        // margin is derived (an eighth of the witness's lease, at least timeout / 10).
        if self.heartbeat_us == 0 || self.heartbeat_us.saturating_mul(4) > self.timeout_us {
            return Err(format!(
                "[replication]: heartbeat_us {} must be non-zero and at most timeout_us / 4 ({})",
                self.heartbeat_us,
                self.timeout_us / 4
            ));
        }
        tpx_sequencer::witness::check_lease_ns(self.lease_us.saturating_mul(1_000))
            .map_err(|e| format!("[replication] lease_us: {e}"))?;
        if self.heartbeat_us.saturating_mul(4) > self.lease_us {
            return Err(format!(
                "[replication]: heartbeat_us {} must be at most lease_us / 4 ({}): the lease is \
                 renewed at most once a heartbeat",
                self.heartbeat_us,
                self.lease_us / 4
            ));
        }
        if let Some(f) = &self.secret_file {
            tpx_sequencer::transport::read_secret_file(f)
                .map_err(|e| format!("[replication] {e}"))?;
        }
        if self.node_id == self.peer_id || self.node_id == WITNESS_ID || self.peer_id == WITNESS_ID
        {
            return Err(format!(
                "[replication]: node_id and peer_id must differ from each other and from {WITNESS_ID} (the witness)"
            ));
        }
        Ok(())
    }
}

/// The replica's transport: TCP to the peer and the witness, or in-process (a single node and
/// its in-process witness).
#[derive(Debug)]
pub enum NodeTransport {
    Tcp(TcpTransport),
    Mem(MemTransport),
}

impl Transport for NodeTransport {
    #[inline]
    fn send(&mut self, to: PeerId, msg: &[u8]) -> bool {
        match self {
            NodeTransport::Tcp(t) => t.send(to, msg),
            NodeTransport::Mem(t) => t.send(to, msg),
        }
    }
    #[inline]
    fn poll(&mut self, f: &mut dyn FnMut(PeerId, &[u8])) {
        match self {
            NodeTransport::Tcp(t) => t.poll(f),
            NodeTransport::Mem(t) => t.poll(f),
        }
    }
    #[inline]
    fn connected(&self, to: PeerId) -> bool {
        match self {
            NodeTransport::Tcp(t) => t.connected(to),
            NodeTransport::Mem(t) => t.connected(to),
        }
    }
}

/// `origin` of a request's record (see the module docs).
#[inline]
pub fn origin_of(shard: u16, account: u32) -> u32 {
    let s = if shard == ALL_SHARDS {
        0xFF
    } else {
        u32::from(shard.min(0xFE))
    };
    s << 24 | (account & 0x00FF_FFFF)
}

/// The shard a record's `origin` names.
#[inline]
pub fn shard_of_origin(origin: u32) -> u16 {
    match origin >> 24 {
        0xFF => ALL_SHARDS,
        s => s as u16,
    }
}

fn wire_side(s: tpx_engine::Side) -> w::Side {
    match s {
        tpx_engine::Side::Buy => w::Side::Buy,
        tpx_engine::Side::Sell => w::Side::Sell,
    }
}

/// The log input of a request, with the account its record names: the requester (the
/// command's account, or the admin account of a risk input, whose body names its target).
pub fn input_of(req: &Request) -> (Input, u32) {
    match req.input {
        EngineInput::Command(ref cmd) => command_input(cmd),
        EngineInput::Risk(r) => (risk_input(&r), req.account),
    }
}

/// The log input of a risk command (deposits, withdrawals and funding carry their request id,
/// the idempotency key; marks, liquidations and fee tiers have none in the log).
pub fn risk_input(r: &RiskCommand) -> Input {
    use tpx_wire::log_record as l;
    match *r {
        RiskCommand::Deposit {
            account,
            asset,
            amount,
            request_id,
        } => Input::Deposit(l::Deposit {
            amount,
            request_id,
            account,
            asset,
        }),
        RiskCommand::Withdraw {
            account,
            asset,
            amount,
            request_id,
        } => Input::Withdraw(l::Withdraw {
            amount,
            request_id,
            account,
            asset,
        }),
        RiskCommand::SetMarkPrice { instrument, price } => {
            Input::SetMarkPrice(l::SetMarkPrice { price, instrument })
        }
        RiskCommand::ApplyFunding {
            instrument,
            rate_ppm,
            funding_id,
        } => Input::ApplyFunding(l::ApplyFunding {
            rate_ppm,
            instrument,
            funding_id,
        }),
        RiskCommand::Liquidate {
            account,
            instrument,
            cl_ord_id,
            price,
        } => Input::Liquidate(l::Liquidate {
            cl_ord_id,
            price,
            account,
            instrument,
        }),
        RiskCommand::SetFeeTier { account, tier } => {
            Input::SetFeeTier(l::SetFeeTier { account, tier })
        }
    }
}

/// The log input of an order-entry or venue command, with its account (0: unused).
pub fn command_input(cmd: &Command) -> (Input, u32) {
    match *cmd {
        Command::NewOrder(o) => (
            Input::EnterOrder(EnterOrder {
                cl_ord_id: o.cl_ord_id,
                price: o.price,
                qty: o.qty,
                instrument: o.instrument,
                side: wire_side(o.side),
                kind: match o.kind {
                    tpx_engine::OrderKind::Limit => w::OrderKind::Limit,
                    tpx_engine::OrderKind::Market => w::OrderKind::Market,
                },
                tif: match o.tif {
                    tpx_engine::TimeInForce::Gtc => w::TimeInForce::Gtc,
                    tpx_engine::TimeInForce::Ioc => w::TimeInForce::Ioc,
                    tpx_engine::TimeInForce::Fok => w::TimeInForce::Fok,
                },
                stp: match o.stp {
                    tpx_engine::StpMode::None => w::StpMode::None,
                    tpx_engine::StpMode::ExpireTaker => w::StpMode::ExpireTaker,
                    tpx_engine::StpMode::ExpireMaker => w::StpMode::ExpireMaker,
                    tpx_engine::StpMode::ExpireBoth => w::StpMode::ExpireBoth,
                    tpx_engine::StpMode::DecrementAndCancel => w::StpMode::DecrementAndCancel,
                },
                post_only: o.post_only,
                reduce_only: o.reduce_only,
            }),
            o.account,
        ),
        Command::Cancel(c) => (
            Input::CancelOrder(CancelOrder {
                cl_ord_id: c.cl_ord_id,
                remaining_qty: c.remaining_qty,
            }),
            c.account,
        ),
        Command::Replace(r) => (
            Input::ReplaceOrder(ReplaceOrder {
                orig_cl_ord_id: r.orig_cl_ord_id,
                new_cl_ord_id: r.new_cl_ord_id,
                price: r.price,
                qty: r.qty,
            }),
            r.account,
        ),
        Command::MassCancel(m) => (
            Input::MassCancel(MassCancel {
                instrument: m.instrument,
            }),
            m.account,
        ),
        Command::Halt { instrument } => (Input::Halt(tpx_wire::log_record::Halt { instrument }), 0),
        Command::Resume { instrument } => (
            Input::Resume(tpx_wire::log_record::Resume { instrument }),
            0,
        ),
        Command::SetReferencePrice {
            instrument,
            price,
            band_bps,
        } => (
            Input::SetReferencePrice(tpx_wire::log_record::SetReferencePrice {
                instrument,
                price,
                band_bps,
            }),
            0,
        ),
    }
}

/// What the stage remembers of a request it submitted, to answer the right session when the
/// record comes back through the applier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalMeta {
    pub seq: u64,
    pub session: u32,
    pub tag: u32,
    /// An admin request's id (its answer echoes it; not every risk record carries it).
    pub request_id: u64,
    /// The request's stage stamps so far (`rx`, `seq`; all 0 when stamping is off).
    pub stamps: crate::msg::Stamps,
}

/// The shard entry of a log record: the local session and tag if this node submitted it, else
/// no session (a standby's, or a replayed record: its reports have no client here).
/// `durable_tsc`: the release stamp, read once per duty cycle (on the first stamped record).
pub fn entry_of(
    rec: &LogRecord,
    meta: &mut VecDeque<LocalMeta>,
    durable_tsc: &mut Option<u64>,
) -> Option<Sequenced> {
    let seq = rec.meta.seq;
    while meta.front().is_some_and(|m| m.seq < seq) {
        meta.pop_front();
    }
    let (session, tag, request_id, mut stamps) = match meta.front() {
        Some(m) if m.seq == seq => {
            let m = meta.pop_front().expect("front exists");
            (m.session, m.tag, m.request_id, m.stamps)
        }
        _ => (NO_SESSION, 0, 0, crate::msg::Stamps::default()),
    };
    if stamps.rx != 0 {
        // Released to the shards: durable as the durability mode requires.
        stamps.durable = *durable_tsc.get_or_insert_with(crate::stats::tsc);
    }
    // Risk records go through the same path as orders: balances are state, so a standby, a
    // replay at start and a rejoin apply them too.
    let input = tpx_sequencer::apply::input_of(rec)?;
    Some(Sequenced {
        seq,
        ts_ns: rec.meta.timestamp_ns,
        req: Request {
            session,
            shard: shard_of_origin(rec.meta.origin),
            tag,
            account: rec.meta.account,
            request_id,
            input,
            stamps,
        },
    })
}

/// Hands records to the shard rings: straight into the ring when it has room and nothing waits
/// before it, else into `overflow` (which the stage drains first each cycle, and while it is not
/// empty takes no new requests). The replica cannot be told "later", so the overflow is the one
/// place the hot path may allocate: it is preallocated and grows only when a standby receives a
/// burst larger than it (bounded by the replica's send window).
#[derive(Debug)]
pub struct ShardFeed<'a> {
    pub outputs: &'a mut [Producer<Sequenced>],
    pub pushed: &'a mut [bool],
    pub overflow: &'a mut VecDeque<Sequenced>,
    pub meta: &'a mut VecDeque<LocalMeta>,
    /// Set by `rewind`: the shards hold records the log no longer has.
    pub rewound: &'a mut Option<u64>,
    pub applied: &'a mut u64,
    /// The `durable` stage stamp of this cycle (one TSC read for every record released in it).
    pub durable_tsc: Option<u64>,
}

/// Whether every ring `shard` names has room.
pub fn room_for(outputs: &[Producer<Sequenced>], shard: u16) -> bool {
    if shard == ALL_SHARDS {
        outputs.iter().all(|o| o.free() > 0)
    } else {
        outputs.get(shard as usize).is_some_and(|o| o.free() > 0)
    }
}

/// Pushes an entry whose rings have room (checked by the caller).
pub fn dispatch(outputs: &mut [Producer<Sequenced>], pushed: &mut [bool], e: Sequenced) {
    if e.req.shard == ALL_SHARDS {
        for (o, p) in outputs.iter_mut().zip(pushed.iter_mut()) {
            let r = o.try_push(e);
            debug_assert!(r.is_ok(), "room was checked");
            *p = true;
        }
    } else if let Some(o) = outputs.get_mut(e.req.shard as usize) {
        let r = o.try_push(e);
        debug_assert!(r.is_ok(), "room was checked");
        pushed[e.req.shard as usize] = true;
    }
}

impl ShardFeed<'_> {
    /// Moves overflowed entries to their rings; returns how many.
    pub fn drain(&mut self) -> usize {
        let mut n = 0;
        while let Some(e) = self.overflow.front() {
            if !room_for(self.outputs, e.req.shard) {
                break;
            }
            let e = self.overflow.pop_front().expect("front exists");
            dispatch(self.outputs, self.pushed, e);
            n += 1;
        }
        n
    }

    pub fn feed(&mut self, rec: &LogRecord) {
        *self.applied = rec.meta.seq;
        let Some(e) = entry_of(rec, self.meta, &mut self.durable_tsc) else {
            return;
        };
        if self.overflow.is_empty() && room_for(self.outputs, e.req.shard) {
            dispatch(self.outputs, self.pushed, e);
        } else {
            self.overflow.push_back(e);
        }
    }
}

impl Applier for ShardFeed<'_> {
    #[inline]
    fn apply(&mut self, rec: &LogRecord) {
        self.feed(rec);
    }

    fn rewind(&mut self, seq: u64) {
        // The shards cannot go back: the node stops and is restarted (replay of its log).
        *self.rewound = Some(self.rewound.map_or(seq, |r| r.min(seq)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tpx_engine::{NewOrder, OrderKind, Side, StpMode, TimeInForce};
    use tpx_wire::log_record::RecordMeta;

    #[test]
    fn origin_carries_shard_and_account() {
        assert_eq!(shard_of_origin(origin_of(3, 42)), 3);
        assert_eq!(origin_of(3, 42) & 0xFF_FFFF, 42);
        assert_eq!(shard_of_origin(origin_of(ALL_SHARDS, 7)), ALL_SHARDS);
    }

    #[test]
    fn a_command_survives_the_log_form() {
        let cmd = Command::NewOrder(NewOrder {
            account: 5,
            cl_ord_id: 9,
            instrument: 2,
            side: Side::Sell,
            kind: OrderKind::Limit,
            price: 123,
            qty: 4,
            tif: TimeInForce::Ioc,
            post_only: true,
            reduce_only: false,
            stp: StpMode::ExpireMaker,
        });
        let (input, account) = command_input(&cmd);
        let rec = LogRecord {
            meta: RecordMeta {
                seq: 7,
                term: 1,
                timestamp_ns: 55,
                origin: origin_of(1, account),
                account,
            },
            input,
        };
        let mut meta: VecDeque<LocalMeta> = [
            LocalMeta {
                seq: 6,
                session: 1,
                tag: 0,
                request_id: 0,
                stamps: Default::default(),
            },
            LocalMeta {
                seq: 7,
                session: 3,
                tag: 0,
                request_id: 0,
                stamps: Default::default(),
            },
        ]
        .into_iter()
        .collect();
        let e = entry_of(&rec, &mut meta, &mut None).unwrap();
        assert_eq!(e.req.input, EngineInput::Command(cmd));
        assert_eq!(e.req.account, 5);
        assert_eq!((e.seq, e.ts_ns, e.req.shard, e.req.session), (7, 55, 1, 3));
        assert!(meta.is_empty());
        // A record this node did not submit has no session.
        let e = entry_of(&rec, &mut meta, &mut None).unwrap();
        assert_eq!(e.req.session, NO_SESSION);
    }

    #[test]
    fn a_risk_input_is_logged_under_its_admin_with_the_target_in_the_body() {
        let cmd = RiskCommand::Withdraw {
            account: 7,
            asset: 1,
            amount: 500,
            request_id: 12,
        };
        let req = Request {
            session: 2,
            shard: 1,
            tag: 0,
            account: 50,
            request_id: 12,
            input: EngineInput::Risk(cmd),
            stamps: Default::default(),
        };
        let (input, account) = input_of(&req);
        assert_eq!(account, 50);
        let rec = LogRecord {
            meta: RecordMeta {
                seq: 3,
                term: 1,
                timestamp_ns: 9,
                origin: origin_of(req.shard, account),
                account,
            },
            input,
        };
        let mut meta: VecDeque<LocalMeta> = [LocalMeta {
            seq: 3,
            session: 2,
            tag: 0,
            request_id: 12,
            stamps: Default::default(),
        }]
        .into_iter()
        .collect();
        let e = entry_of(&rec, &mut meta, &mut None).unwrap();
        assert_eq!(e.req, req);
        // Every risk command survives the log form.
        for cmd in [
            RiskCommand::SetMarkPrice {
                instrument: 3,
                price: 60_000,
            },
            RiskCommand::ApplyFunding {
                instrument: 3,
                rate_ppm: -12,
                funding_id: 5,
            },
            RiskCommand::Liquidate {
                account: 4,
                instrument: 3,
                cl_ord_id: 77,
                price: 59_000,
            },
            RiskCommand::SetFeeTier {
                account: 4,
                tier: 1,
            },
        ] {
            let rec = LogRecord {
                meta: rec.meta,
                input: risk_input(&cmd),
            };
            let e = entry_of(&rec, &mut VecDeque::new(), &mut None).unwrap();
            assert_eq!(e.req.input, EngineInput::Risk(cmd));
        }
    }

    #[test]
    fn config_defaults_and_checks() {
        let c = ReplicationConfig::default();
        assert_eq!(c.durability().unwrap(), Durability::Fsync);
        assert!(c.validate().is_ok());
        let c: ReplicationConfig = toml::from_str(
            r#"
            node_id = 1
            peer_id = 2
            listen = "127.0.0.1:9201"
            peer_addr = "127.0.0.1:9202"
            witness_addr = "127.0.0.1:9200"
            "#,
        )
        .unwrap();
        assert_eq!(c.durability().unwrap(), Durability::Replicated);
        assert!(c.validate().is_ok());
        let bad: ReplicationConfig = toml::from_str(r#"durability = "replicated""#).unwrap();
        assert!(bad.validate().is_err());
        assert!(toml::from_str::<ReplicationConfig>("nope = 1").is_err());
    }

    /// Item 11: timing that breaks the lease arithmetic is refused at start (the old code
    /// accepted all three).
    #[test]
    fn unsafe_lease_and_timeout_settings_are_refused() {
        let base = |extra: &str| -> ReplicationConfig {
            toml::from_str(&format!(
                "listen = \"127.0.0.1:9300\"\npeer_addr = \"127.0.0.1:9301\"\n\
                 witness_addr = \"127.0.0.1:9200\"\n{extra}"
            ))
            .unwrap()
        };
        assert!(base("").validate().is_ok());
        // A heartbeat longer than a quarter timeout: the standby takes a late one for a death.
        let e = base("heartbeat_us = 10000\ntimeout_us = 20000").validate();
        assert!(e.unwrap_err().contains("timeout_us / 4"));
        // A lease the primary cannot renew within (renewals are at most once a heartbeat).
        let e = base("heartbeat_us = 2000\ntimeout_us = 20000\nlease_us = 4000").validate();
        assert!(e.unwrap_err().contains("lease_us / 4"));
        // A lease too short to carry a drift margin.
        let e = base("lease_us = 10").validate();
        assert!(e.unwrap_err().contains("lease_us"));
    }

    /// Item 7: the digest covers the shard count, the instrument -> shard map and the crate
    /// version; it is never 0 (0 means "not checked").
    #[test]
    fn the_config_digest_changes_with_the_shard_map() {
        let ics = crate::config::NodeConfig::default().instruments();
        let placed =
            |shard_of: &dyn Fn(usize) -> u32| -> Vec<(crate::config::InstrumentConfig, u32)> {
                ics.iter()
                    .enumerate()
                    .map(|(k, ic)| (ic.clone(), shard_of(k)))
                    .collect()
            };
        let a = config_digest(2, &placed(&|k| k as u32 % 2), None, 1000);
        assert_eq!(a, config_digest(2, &placed(&|k| k as u32 % 2), None, 1000));
        assert_ne!(a, 0);
        assert_ne!(a, config_digest(1, &placed(&|_| 0), None, 1000));
        assert_ne!(
            a,
            config_digest(2, &placed(&|k| 1 - k as u32 % 2), None, 1000)
        );
        assert_ne!(a, config_digest(2, &placed(&|k| k as u32 % 2), None, 2000));
    }
}
