//! The snapshot thread (`[snapshots]`, see ARCHITECTURE.md "Snapshots in the node"): who takes
//! the node's images. Not the shard cores: a thread off the hot cores (on a CPU the core plan
//! leaves free, if there is one) reads the node's own log files behind the replica and applies
//! every record to its own copy of the shards (`shard/replay.rs`, the code the cores run) and of
//! the gateways' session tables (fed the same reports, as on a node replaying its log). It
//! applies a record only once the record is acknowledgeable (`NodeState::acked_seq`: a term
//! change never cuts it), fed to this node's shards (`Watermarks::fed`: it never holds what a
//! rejoin cuts without the node exiting, status 3, too) and durable on this node's disk
//! (`NodeState::durable_seq`: a power loss cannot cut the log below an image). At a replica checkpoint record
//! at least `every_records` (or `every_ms` of log time) after the last image, with every shard's
//! state unchanged since its checkpoint, it writes an image (`shard/snapshot.rs`), then keeps
//! `keep` images and deletes the log segments wholly before the oldest kept and before what
//! the peer holds. The order path pays nothing: no shard core copies or hashes anything for it;
//! the cost is a second application of the log on another CPU and a second copy of the books in
//! memory.

use crate::runtime::lines::say;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tpx_sequencer::replica::Dedup;
use tpx_sequencer::snapshot::{
    decode_node_snapshot, encode_node_snapshot, EngineImage, NodeSnapshot, ShardImage,
    NODE_SNAPSHOT_FORMAT,
};
use tpx_sequencer::{FileStorage, LogReader, WriteMode};
use tpx_wire::log_record::{Input, LogRecord};

use crate::config::snapshots::SnapshotsConfig;
use crate::gateway::routing::Routing;
use crate::gateway::session::{ConnId, Outbox, SessionSettings, SessionTable};
use crate::msg::{home_gateway, ALL_SHARDS};
use crate::runtime::state::NodeState;
use crate::sequencing::feed::shard_of_origin;
use crate::shard::apply::Shard;
use crate::shard::md::{md_image_of, ShardMd};
use crate::shard::plan::ShardPlan;
use crate::shard::replay::Replay;
use crate::shard::snapshot::{prune_images, prune_segments, write_image};

/// Replies of the snapshot thread's tables go nowhere (no connections).
struct Nowhere;

impl Outbox for Nowhere {
    fn deliver(&mut self, _conn: ConnId, _bytes: &[u8]) {}
}

/// What the snapshot thread needs.
#[derive(Clone, Debug)]
pub struct SnapshotSettings {
    pub cfg: SnapshotsConfig,
    pub dir: PathBuf,
    pub log_dir: PathBuf,
    pub plan: ShardPlan,
    pub gateways: usize,
    pub sessions: SessionSettings,
    pub routing: Routing,
    /// `[replication] checkpoint_every` (0: images wherever they are due).
    pub checkpoint_every: u64,
    /// A peer is configured: segments it may still need are kept.
    pub has_peer: bool,
    /// The image the node started from: the thread starts from it too.
    pub start_from: Option<PathBuf>,
    /// The accounts file: the drop-copy sessions its tables hold, as the gateways' do.
    pub accounts: std::sync::Arc<crate::gateway::accounts::Accounts>,
    /// `[md]` (enabled): the copy numbers market data as the shards do, and images carry it.
    pub md: Option<crate::config::md::MdConfig>,
}

/// The running snapshot thread.
#[derive(Debug)]
pub struct Snapshotter {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Snapshotter {
    /// Starts the thread (pinned to `cpu` if given).
    pub fn start(
        s: SnapshotSettings,
        shared: Arc<NodeState>,
        cpu: Option<usize>,
    ) -> Result<Snapshotter, String> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name("tpx-snapshot".into())
            .spawn(move || {
                if let Some(cpu) = cpu {
                    core_affinity::set_for_current(core_affinity::CoreId { id: cpu });
                }
                if let Err(e) = run(&s, &shared, &flag) {
                    say(format_args!("tpx node: SNAPSHOT thread stopped: {e}"));
                }
            })
            .map_err(|e| format!("starting the snapshot thread: {e}"))?;
        Ok(Snapshotter {
            stop,
            handle: Some(handle),
        })
    }

    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Snapshotter {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A copy of the node's state fed from its log: the snapshot thread's, and what
/// `restart-bench` builds its image with.
#[derive(Debug)]
pub struct NodeCopy {
    replay: Replay,
    tables: Vec<SessionTable>,
    dedup: Dedup,
    /// By shard: its last checkpoint record and whether nothing reached it since.
    checks: Vec<(u64, bool)>,
}

impl NodeCopy {
    /// Fresh shards and session tables as the node builds them.
    pub fn fresh(
        plan: &ShardPlan,
        gateways: usize,
        sessions: &SessionSettings,
        routing: &Routing,
    ) -> Result<NodeCopy, String> {
        Ok(NodeCopy {
            replay: Replay::new(plan)?,
            tables: (0..gateways)
                .map(|_| SessionTable::new(sessions.clone(), routing.clone()))
                .collect(),
            dedup: Dedup::default(),
            checks: vec![(0, false); plan.shard_count()],
        })
    }

    /// Creates the drop-copy sessions in every table, as each gateway does at start
    /// (`gateway::io::add_drop_copies`), so the images hold their streams too.
    pub fn with_drop_copies(mut self, accounts: &crate::gateway::accounts::Accounts) -> Self {
        let n = self.tables.len();
        for (g, t) in self.tables.iter_mut().enumerate() {
            let _ = crate::gateway::io::add_drop_copies(t, accounts, g, n);
        }
        self
    }

    /// Numbers market data as the node's shards do (`md`: the node's `[md]`, enabled), from
    /// the image's numbering when the copy started from one, so that its images carry the
    /// sequence number each shard's stream has reached (`ShardImage::md`).
    pub fn with_md(
        mut self,
        md: Option<&crate::config::md::MdConfig>,
        plan: &ShardPlan,
    ) -> Result<Self, String> {
        let Some(cfg) = md else {
            return Ok(self);
        };
        let mut shards = Vec::with_capacity(self.replay.shards.len());
        for sh in std::mem::take(&mut self.replay.shards) {
            let instruments = plan
                .instruments
                .get(usize::from(sh.id))
                .map(Vec::as_slice)
                .unwrap_or_default();
            let pcfg = crate::shard::md::publisher_config(cfg, sh.id, instruments, None);
            shards.push(sh.with_md(Some(ShardMd::numbering_only(pcfg)?)));
        }
        self.replay.shards = shards;
        Ok(self)
    }

    /// The shards' state hashes, by shard.
    pub fn state_hashes(&self) -> Vec<u64> {
        self.replay.state_hashes()
    }

    /// The last record applied.
    pub fn last_seq(&self) -> u64 {
        self.replay.last_seq
    }

    fn from_image(s: &SnapshotSettings, path: &std::path::Path) -> Result<NodeCopy, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let snap = decode_node_snapshot(&bytes).map_err(|e| e.to_string())?;
        let mut shards = Vec::new();
        let mut checks = Vec::new();
        for (k, img) in snap.shards.iter().enumerate() {
            let cfg = s.plan.engine(k);
            let e = img
                .engine
                .restore(cfg.clone(), s.plan.risk[k].clone(), img.state_hash)
                .map_err(|e| e.to_string())?;
            shards.push(
                Shard::from_engine(k as u16, e, &cfg)
                    .with_md_from_image(img.md.as_ref().map(crate::shard::md::md_state_of)),
            );
            checks.push((img.check_seq, img.check_seq > 0));
        }
        let mut replay = Replay::over(shards);
        replay.last_seq = snap.seq;
        let tables = snap
            .sessions
            .iter()
            .map(|b| SessionTable::from_image(s.sessions.clone(), s.routing.clone(), b))
            .collect::<Result<_, _>>()?;
        Ok(NodeCopy {
            replay,
            tables,
            dedup: Dedup::from_entries(snap.seq, &snap.dedup),
            checks,
        })
    }

    /// Applies the next record of the log.
    pub fn apply(&mut self, rec: &LogRecord) {
        self.dedup.note(rec.meta.origin, &rec.input, rec.meta.seq);
        let gateways = self.tables.len();
        let tables = &mut self.tables;
        self.replay.apply(rec, |_, r| {
            tables[home_gateway(r.account, gateways)].on_report(&r, &mut Nowhere);
        });
        if matches!(rec.input, Input::TermStart(_)) {
            return;
        }
        let shard = shard_of_origin(rec.meta.origin);
        let checkpoint = matches!(rec.input, Input::Checkpoint(_));
        for (k, c) in self.checks.iter_mut().enumerate() {
            if shard == ALL_SHARDS || usize::from(shard) == k {
                *c = if checkpoint {
                    (rec.meta.seq, true)
                } else {
                    (c.0, false)
                };
            }
        }
    }

    /// Every shard's state unchanged since its last checkpoint record.
    pub fn at_checkpoints(&self) -> bool {
        self.checks.iter().all(|c| c.1)
    }

    /// The image of the state after `rec` (the last record applied), for a node whose shard map
    /// digest is `digest`.
    pub fn image(&self, rec: &LogRecord, digest: u64) -> NodeSnapshot {
        NodeSnapshot {
            format: NODE_SNAPSHOT_FORMAT,
            seq: rec.meta.seq,
            term: rec.meta.term,
            timestamp_ns: rec.meta.timestamp_ns,
            config_digest: digest,
            shards: self
                .replay
                .shards
                .iter()
                .zip(&self.checks)
                .map(|(sh, c)| ShardImage {
                    shard: sh.id,
                    state_hash: sh.engine.state_hash(),
                    check_seq: if c.1 { c.0 } else { 0 },
                    engine: EngineImage::of(&sh.engine),
                    md: sh.md_state().as_ref().map(md_image_of),
                })
                .collect(),
            dedup: self.dedup.entries(),
            sessions: self.tables.iter().map(SessionTable::image).collect(),
        }
    }
}

fn run(s: &SnapshotSettings, shared: &NodeState, stop: &AtomicBool) -> Result<(), String> {
    // Not while the node replays its log at start, nor (for up to 2 s after) until it serves
    // logins (a standby never does): building the copy (the engines' tables, an image's decode
    // and restore) and following the replay would take CPU from the start's critical path (the
    // loader, the replay, the candidacy), and no image is due before the node runs.
    let mut after_replay = 0;
    while !shared.replay_done.load(Ordering::Acquire)
        || (!shared.serves_logins() && after_replay < 400)
    {
        if stop.load(Ordering::Relaxed) || shared.shutdown.load(Ordering::Relaxed) {
            return Ok(());
        }
        if shared.replay_done.load(Ordering::Acquire) {
            after_replay += 1;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut copy = match &s.start_from {
        Some(p) => NodeCopy::from_image(s, p)?,
        None => NodeCopy::fresh(&s.plan, s.gateways, &s.sessions, &s.routing)?,
    }
    .with_drop_copies(&s.accounts)
    .with_md(s.md.as_ref(), &s.plan)?;
    // Temporary files of images a crash interrupted.
    if let Ok(rd) = std::fs::read_dir(&s.dir) {
        for e in rd.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') && name.ends_with(".nsnap.tmp") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    let st = FileStorage::new(&s.log_dir, WriteMode::Buffered).map_err(|e| e.to_string())?;
    let mut reader = LogReader::new(st).map_err(|e| e.to_string())?;
    if copy.replay.last_seq > 0 {
        reader
            .seek(copy.replay.last_seq + 1)
            .map_err(|e| e.to_string())?;
    }
    let mut last_image = (copy.replay.last_seq, 0u64);
    let mut pending: Option<LogRecord> = None;
    while !stop.load(Ordering::Relaxed) {
        // Acknowledgeable (no term change cuts it), fed to this node's shards (a rejoin that
        // cuts it makes the node exit), and on this node's disk (a power loss cannot tear it:
        // the restart's log holds every record of the image).
        let limit = shared
            .acked_seq
            .load(Ordering::Acquire)
            .min(shared.marks.fed.load(Ordering::Acquire))
            .min(shared.durable_seq.load(Ordering::Acquire));
        let mut n = 0;
        while n < 4096 && limit > copy.replay.last_seq {
            let rec = match pending.take() {
                Some(r) => r,
                None => match reader.next() {
                    Ok(Some(r)) => r,
                    Ok(None) => break,
                    Err(e) => return Err(format!("reading the log: {e}")),
                },
            };
            if rec.meta.seq > limit {
                pending = Some(rec);
                break;
            }
            if rec.meta.seq != copy.replay.last_seq + 1 && copy.replay.last_seq > 0 {
                return Err(format!(
                    "the log gave seq {} after {}",
                    rec.meta.seq, copy.replay.last_seq
                ));
            }
            copy.apply(&rec);
            n += 1;
            if last_image.1 == 0 {
                last_image.1 = rec.meta.timestamp_ns;
            }
            if due(s, &copy, &rec, last_image) {
                take(s, shared, &copy, &rec);
                last_image = (rec.meta.seq, rec.meta.timestamp_ns);
            }
        }
        if n == 0 {
            // Nothing acknowledged to apply: images are not latency-critical.
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    Ok(())
}

/// Whether an image is due after `rec`: `every_records` records or `every_ms` of log time since
/// the last, at a checkpoint (every shard unchanged since its checkpoint record) when
/// checkpoints are on, or anywhere once overdue by two checkpoint intervals.
fn due(s: &SnapshotSettings, copy: &NodeCopy, rec: &LogRecord, last: (u64, u64)) -> bool {
    let c = &s.cfg;
    let records = rec.meta.seq.saturating_sub(last.0);
    let by_records = c.every_records > 0 && records >= c.every_records;
    let by_time =
        c.every_ms > 0 && rec.meta.timestamp_ns.saturating_sub(last.1) >= c.every_ms * 1_000_000;
    if !(by_records || by_time) {
        return false;
    }
    s.checkpoint_every == 0
        || copy.at_checkpoints()
        || records >= c.every_records.max(1) + 2 * s.checkpoint_every
}

/// Writes an image of `copy` after `rec`, then retention.
fn take(s: &SnapshotSettings, shared: &NodeState, copy: &NodeCopy, rec: &LogRecord) {
    let t0 = crate::runtime::clock::now_ns();
    let snap = copy.image(rec, s.plan.config_digest);
    let orders: usize = snap
        .shards
        .iter()
        .map(|sh| {
            sh.engine
                .instruments
                .iter()
                .map(|i| i.orders.len())
                .sum::<usize>()
        })
        .sum();
    let bytes = match encode_node_snapshot(&snap) {
        Ok(b) => b,
        Err(e) => {
            say(format_args!(
                "tpx node: SNAPSHOT seq={} not taken: {e}",
                rec.meta.seq
            ));
            return;
        }
    };
    let t1 = crate::runtime::clock::now_ns();
    match write_image(&s.dir, rec.meta.seq, &bytes) {
        Ok(path) => {
            let t2 = crate::runtime::clock::now_ns();
            shared.snapshots.taken.fetch_add(1, Ordering::Relaxed);
            shared.snapshots.seq.store(rec.meta.seq, Ordering::Relaxed);
            say(format_args!(
                "tpx node: SNAPSHOT seq={} file={} bytes={} orders={orders} checked={} \
                 image_us={} write_us={}",
                rec.meta.seq,
                path.display(),
                bytes.len(),
                snap.shards.iter().filter(|sh| sh.check_seq > 0).count(),
                (t1 - t0) / 1_000,
                (t2 - t1) / 1_000
            ));
        }
        Err(e) => {
            say(format_args!(
                "tpx node: SNAPSHOT seq={} not written to {}: {e}",
                rec.meta.seq,
                s.dir.display()
            ));
            return;
        }
    }
    retain(s, shared);
}

/// Keeps `keep` images; deletes the segments wholly before the oldest kept and before what the
/// peer holds (as this node's replica last heard; nothing while it has heard nothing).
fn retain(s: &SnapshotSettings, shared: &NodeState) {
    let (gone, oldest) = prune_images(&s.dir, s.cfg.keep);
    let Some(oldest) = oldest else {
        return;
    };
    let mut below = oldest;
    if s.has_peer {
        below = below.min(shared.peer_durable_seq.load(Ordering::Relaxed) + 1);
    }
    let segments = if s.cfg.delete_segments {
        match prune_segments(&s.log_dir, below) {
            Ok(g) => g,
            Err(e) => {
                say(format_args!(
                    "tpx node: RETAINED segment deletion failed: {e}"
                ));
                Vec::new()
            }
        }
    } else {
        Vec::new()
    };
    if !gone.is_empty() || !segments.is_empty() {
        shared
            .snapshots
            .segments_deleted
            .fetch_add(segments.len() as u64, Ordering::Relaxed);
        say(format_args!(
            "tpx node: RETAINED oldest_image={oldest} below_seq={below} DELETED images={gone:?} \
             segments={segments:?}"
        ));
    }
}
