//! `tpx replay --config node.toml`: replays a node's input log through the shards its config
//! describes (`tpx_node::shard::replay`, off any core, market data off) and prints what they
//! end with: the last seq, the records, the fills, and each shard's state hash. Two nodes whose
//! logs agree print the same hashes; run it on a stopped node's log (or a copy: the log's open
//! segment may be cut mid-record by a running writer, and the replay stops there).

use std::path::PathBuf;

use tpx_node::config::NodeConfig;
use tpx_node::msg::ReportKind;
use tpx_node::shard::plan::ShardPlan;
use tpx_node::shard::replay::Replay;
use tpx_sequencer::{FileStorage, LogReader, WriteMode};

pub struct ReplayOptions {
    pub config: PathBuf,
    /// The log's folder (default: the config's `[replication] log_dir`).
    pub log_dir: Option<PathBuf>,
    /// Stop after this seq (default: the end of the log).
    pub to_seq: Option<u64>,
}

pub fn run(o: ReplayOptions) -> Result<u8, String> {
    let cfg = NodeConfig::load(&o.config)?;
    let plan = ShardPlan::of(&cfg, cfg.plan()?.shard_count())?;
    let dir = match o.log_dir {
        Some(d) => d,
        None => cfg.replication().log_dir,
    };
    let st = FileStorage::new(&dir, WriteMode::Buffered)
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut reader = LogReader::new(st).map_err(|e| format!("{}: {e}", dir.display()))?;
    if reader.next_seq() > 1 {
        // `[snapshots] delete_segments` removed the log's start: fresh shards cannot replay it.
        return Err(format!(
            "the log in {} starts at seq {} (retention deleted the segments before it): a replay \
             needs the whole log (an archived copy; OPERATIONS.md, \"Log retention\")",
            dir.display(),
            reader.next_seq()
        ));
    }
    let mut replay = Replay::new(&plan)?;
    let (mut fills, mut rejects) = (0u64, 0u64);
    let t0_ns = tpx_node::runtime::clock::now_ns();
    while let Some(rec) = reader.next().map_err(|e| e.to_string())? {
        if o.to_seq.is_some_and(|to| rec.meta.seq > to) {
            break;
        }
        replay.apply(&rec, |_, r| match r.kind {
            ReportKind::Executed { .. } => fills += 1,
            ReportKind::Rejected { .. } => rejects += 1,
            _ => {}
        });
    }
    let hashes: Vec<String> = replay
        .state_hashes()
        .iter()
        .map(|h| format!("{h:016x}"))
        .collect();
    println!(
        "REPLAYED last_seq={} records={} fills={fills} rejects={rejects} shards={} hashes={} replay_ms={}",
        replay.last_seq,
        replay.records,
        plan.shard_count(),
        hashes.join(","),
        (tpx_node::runtime::clock::now_ns() - t0_ns) / 1_000_000
    );
    for s in &replay.shards {
        s.engine
            .check_invariants()
            .map_err(|e| format!("shard {}: invariants: {e}", s.id))?;
    }
    Ok(0)
}
