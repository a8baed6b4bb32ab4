//! Restart = the latest valid snapshot + the log after it, and retention tied to snapshots.
//!
//! A node's directory holds `log/` (segments) and `snap/` (snapshots, see [`crate::snapshot`]).
//! [`restore`] loads the newest snapshot that validates (CRC, rkyv bytecheck, engine restore,
//! recorded state hash), then replays the records after its seq; with no usable snapshot (none,
//! all damaged, an incomplete image, or a log that no longer reaches back to it) it replays the
//! whole log. The state hash it reaches equals the one an uninterrupted run reached at the same
//! seq (tested in `tests/snapshot.rs`). [`prune_log`] deletes the segments wholly before the
//! newest snapshot (retention), and [`prune_snapshots`] keeps the newest few snapshots.

use std::time::Instant;

use tpx_engine::EngineConfig;

use crate::apply::{Applier, EngineApplier};
use crate::log::{replay, LogError, LogReader, SegmentLog};
use crate::snapshot::{load_latest, write_snapshot, Snapshot, SnapshotError, SNAPSHOT_SUFFIX};
use crate::storage::Storage;

/// What a restart did.
#[derive(Debug)]
pub struct Restored {
    pub app: EngineApplier,
    /// The snapshot used (its seq), if any.
    pub snapshot_seq: Option<u64>,
    /// Why no snapshot was used (when one existed).
    pub snapshot_skipped: Option<String>,
    /// Records replayed from the log.
    pub replayed: u64,
    /// Loading, validating and restoring the snapshot, ns.
    pub snapshot_ns: u64,
    /// Replaying the log, ns.
    pub replay_ns: u64,
    /// The used snapshot's seq and de-duplication table (for
    /// [`crate::replica::Replica::new_with_dedup`]: the log before it may be pruned).
    pub dedup: Option<(u64, crate::replica::Dedup)>,
}

fn first_seq<S: Storage>(log: S) -> Result<u64, LogError> {
    Ok(LogReader::new(log)?.next_seq())
}

/// Rebuilds the engine from the snapshots in `snaps` and the log in `log` (see the module docs).
pub fn restore<S: Storage, T: Storage + Clone + Send>(
    log: T,
    snaps: &mut S,
    cfg: EngineConfig,
) -> Result<Restored, LogError> {
    let t0 = Instant::now();
    let mut skipped = None;
    let mut app = None;
    let mut dedup = None;
    match load_latest(snaps) {
        Ok(Some(s)) => match s.restore_engine(cfg.clone()) {
            Ok(engine) => {
                let first = first_seq(log.clone())?;
                if first <= s.seq + 1 {
                    dedup = Some((s.seq, crate::replica::Dedup::from_entries(s.seq, &s.dedup)));
                    app = Some((
                        EngineApplier::from_engine(engine, cfg.clone(), s.seq),
                        s.seq,
                    ));
                } else {
                    skipped = Some(format!(
                        "the log starts at {first}, after the snapshot at {}",
                        s.seq
                    ));
                }
            }
            Err(e) => skipped = Some(e.to_string()),
        },
        Ok(None) => {}
        Err(e) => skipped = Some(e.to_string()),
    }
    let snapshot_ns = t0.elapsed().as_nanos() as u64;
    let (mut app, snapshot_seq) = match app {
        Some((a, seq)) => (a, Some(seq)),
        None => (
            EngineApplier::new(cfg).map_err(|e| {
                LogError::Io(std::io::Error::other(format!("engine config: {e:?}")))
            })?,
            None,
        ),
    };
    let t1 = Instant::now();
    let from = app.applied_seq + 1;
    let first = first_seq(log.clone())?;
    if first > from {
        // Retention removed records no usable snapshot covers: refuse rather than start from
        // a state that misses them.
        return Err(LogError::Corrupt {
            segment: String::new(),
            offset: 0,
            seq: from,
            reason: format!(
                "the log starts at seq {first} and no valid snapshot covers seq {from}..{first}{}",
                skipped
                    .map(|s| format!(" (snapshot not used: {s})"))
                    .unwrap_or_default()
            ),
        });
    }
    let mut replayed = 0u64;
    replay(log, from, |r| {
        if r.meta.seq == app.applied_seq + 1 {
            app.apply(r);
            replayed += 1;
        }
    })?;
    Ok(Restored {
        app,
        snapshot_seq,
        snapshot_skipped: skipped,
        replayed,
        snapshot_ns,
        replay_ns: t1.elapsed().as_nanos() as u64,
        dedup,
    })
}

/// Writes a snapshot of `app`'s engine (after `app.applied_seq`).
pub fn take_snapshot<S: Storage>(
    snaps: &mut S,
    app: &EngineApplier,
    term: u64,
    timestamp_ns: u64,
    dedup: &crate::replica::Dedup,
) -> Result<String, SnapshotError> {
    let s = Snapshot::of(app.applied_seq, term, timestamp_ns, &app.engine, dedup);
    write_snapshot(snaps, &s)
}

/// Retention: deletes the log segments that hold only records at or before `snapshot_seq`
/// (the newest valid snapshot's). Returns how many were deleted.
pub fn prune_log<S: Storage>(log: &mut SegmentLog<S>, snapshot_seq: u64) -> std::io::Result<usize> {
    log.retain_from(snapshot_seq + 1)
}

/// Keeps the newest `keep` snapshots (at least one), deleting older ones.
pub fn prune_snapshots<S: Storage>(snaps: &mut S, keep: usize) -> std::io::Result<usize> {
    let mut names: Vec<String> = snaps
        .list()?
        .into_iter()
        .filter(|n| n.ends_with(SNAPSHOT_SUFFIX))
        .collect();
    names.sort();
    let n = names.len().saturating_sub(keep.max(1));
    for name in &names[..n] {
        snaps.remove(name)?;
    }
    Ok(n)
}
