//! Node snapshots on disk (see ARCHITECTURE.md, "Snapshots in the node"): an image of every
//! shard's engine (risk included), the de-duplication table and the gateways' session tables
//! after one log record (`tpx_sequencer::snapshot::NodeSnapshot`, CRC-checked), in
//! `[snapshots] dir` as `{seq:020}.nsnap`, written atomically (temporary file, fsync, rename,
//! fsync of the folder). A start loads the newest image that verifies ([`load_newest`]) and
//! replays the log after it; retention ([`prune_images`], [`prune_segments`]) keeps `keep`
//! images and deletes the log segments wholly before the oldest kept.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc::Receiver;

use tpx_engine::{FreshEngine, Prefault};
use tpx_sequencer::log::{parse_segment_name, segment_name};
use tpx_sequencer::replica::Dedup;
use tpx_sequencer::snapshot::{node_snapshot_name, parse_node_snapshot_name, read_node_snapshot};
use tpx_sequencer::{FileStorage, LogReader, WriteMode};
use tpx_wire::log_record::Input;

use crate::shard::apply::Shard;
use crate::shard::plan::ShardPlan;

/// Writes `bytes` as `dir/name` atomically and durably: a temporary file, written and fsynced,
/// renamed, then the folder fsynced (a crash leaves the old set of images or the new one).
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{name}.tmp"));
    let path = dir.join(name);
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, &path)?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(path)
}

/// Writes an encoded image of the state after `seq`; returns its path.
pub fn write_image(dir: &Path, seq: u64, bytes: &[u8]) -> std::io::Result<PathBuf> {
    write_atomic(dir, &node_snapshot_name(seq), bytes)
}

/// The images in `dir`, newest first: `(seq, path)`.
pub fn images(dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut v: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| {
                    let name = e.file_name().into_string().ok()?;
                    parse_node_snapshot_name(&name).map(|s| (s, e.path()))
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort_by_key(|e| std::cmp::Reverse(e.0));
    v
}

/// Keeps the newest `keep` images (at least one); returns the seqs deleted and the oldest seq
/// kept.
pub fn prune_images(dir: &Path, keep: usize) -> (Vec<u64>, Option<u64>) {
    let all = images(dir);
    let keep = keep.max(1);
    let mut gone = Vec::new();
    for (seq, path) in all.iter().skip(keep) {
        if std::fs::remove_file(path).is_ok() {
            gone.push(*seq);
        }
    }
    let oldest = all
        .get(keep.min(all.len()).wrapping_sub(1))
        .map(|(s, _)| *s);
    (gone, oldest)
}

/// Deletes the log segments in `log_dir` whose records are all below `below_seq` (each one
/// whose next segment starts at or before `below_seq`): never the last (active) segment.
/// Returns the names deleted, oldest first. The caller picks `below_seq`: the oldest image
/// kept, and no further than what a peer still needs.
pub fn prune_segments(log_dir: &Path, below_seq: u64) -> std::io::Result<Vec<String>> {
    let mut segs: Vec<u64> = std::fs::read_dir(log_dir)?
        .filter_map(|e| e.ok())
        .filter_map(|e| parse_segment_name(e.file_name().to_str()?))
        .collect();
    segs.sort_unstable();
    let mut gone = Vec::new();
    for w in segs.windows(2) {
        if w[1] > below_seq {
            break;
        }
        let name = segment_name(w[0]);
        std::fs::remove_file(log_dir.join(&name))?;
        gone.push(name);
    }
    if !gone.is_empty() {
        std::fs::File::open(log_dir)?.sync_all()?;
    }
    Ok(gone)
}

/// Validates an image's session tables (by gateway number); the gateways' part of a start.
pub type SessionCheck<'a> = dyn Fn(&[Vec<u8>]) -> Result<(), String> + 'a;

/// A node's state restored from an image, ready for the cores.
#[derive(Debug)]
pub struct Restored {
    /// The image's last record.
    pub seq: u64,
    pub name: String,
    pub path: PathBuf,
    /// By gateway number: the session table images.
    pub sessions: Vec<Vec<u8>>,
    /// By shard id.
    pub shards: Vec<Shard>,
    /// By shard id: `(checkpoint seq, hash)` the shard seeds its checkpoint ring with
    /// (`(0, 0)`: none).
    pub checks: Vec<(u64, u64)>,
    pub dedup: Dedup,
    /// By shard: whether a later checkpoint record of the log confirmed the image's hash.
    pub confirmed: usize,
    /// Loading and restoring, ns.
    pub load_ns: u64,
    /// Of which: reading and decoding the file (the session tables' check included), checking
    /// the log (the image's record and the checkpoints naming its hashes), waiting for the
    /// engines built on their own thread, restoring the image into them and hashing them, ns.
    pub decode_ns: u64,
    pub log_check_ns: u64,
    pub engines_wait_ns: u64,
    pub restore_ns: u64,
    /// How long the engines' build took on its own thread (0: built here, in `restore_ns`).
    pub engines_build_ns: u64,
}

/// Engines built ahead for a restore, on a thread of their own ([`build_engines`]), and how
/// long their build took, ns.
#[derive(Debug)]
pub struct Prebuilt {
    pub engines: Vec<FreshEngine>,
    pub build_ns: u64,
}

/// How far past an image a start looks for the log's checkpoint records naming it.
const CHECK_SCAN_RECORDS: u64 = 4_000_000;

/// Loads the newest image in `dir` that verifies against `log_dir`'s log and `plan`; older ones
/// when a newer one does not. `check_sessions` validates the session images (the gateways'
/// part). Each image skipped is reported to `skipped` with why. Verification: the CRC and the
/// archive; the shard map (`config_digest`), shard and gateway counts; the log still holding
/// the image's last record with its term (a log cut below it, or rewritten in another term,
/// makes the image useless) and every record after it up to its end; each shard's engine
/// restored and its state hash equal to the one recorded; each shard's hash equal to the one
/// the log's next checkpoint record names for the image's checkpoint (when the log has one
/// within `CHECK_SCAN_RECORDS`).
///
/// `prebuilt`, when given, delivers one engine per shard built from `plan` on another thread
/// (see [`build_engines`]): the first image restores into them, so that their memory was
/// allocated while the image was read; any other image into engines built here.
pub fn load_newest(
    dir: &Path,
    log_dir: &Path,
    plan: &ShardPlan,
    gateways: usize,
    check_sessions: &SessionCheck<'_>,
    skipped: &mut dyn FnMut(&Path, String),
    mut prebuilt: Option<Receiver<Prebuilt>>,
) -> Option<Restored> {
    for (seq, path) in images(dir) {
        let t0 = crate::runtime::clock::now_ns();
        match load_one(
            seq,
            &path,
            log_dir,
            plan,
            gateways,
            check_sessions,
            &mut prebuilt,
        ) {
            Ok(mut r) => {
                r.load_ns = crate::runtime::clock::now_ns().saturating_sub(t0);
                return Some(r);
            }
            Err(e) => skipped(&path, e),
        }
    }
    None
}

/// One fresh engine per shard as `plan` builds them, timed (`None` if one cannot be built: the
/// restore then builds them itself and says why), with the faulting in of their large tables
/// left to the returned [`Prefault`] (`tpx_engine::deferring_prefault`): the restore writes
/// only their first pages, and the caller faults the rest in beside the restore and the replay.
pub fn build_engines(plan: &ShardPlan) -> Option<(Prebuilt, Prefault)> {
    let t0 = crate::runtime::clock::now_ns();
    let (engines, rest) = tpx_engine::deferring_prefault(|| {
        (0..plan.shard_count())
            .map(|k| match plan.risk[k].clone() {
                Some(r) => FreshEngine::with_risk(plan.engine(k), r).ok(),
                None => FreshEngine::new(plan.engine(k)).ok(),
            })
            .collect::<Option<Vec<_>>>()
    });
    let engines = engines?;
    Some((
        Prebuilt {
            engines,
            build_ns: crate::runtime::clock::now_ns().saturating_sub(t0),
        },
        rest,
    ))
}

fn load_one(
    seq: u64,
    path: &Path,
    log_dir: &Path,
    plan: &ShardPlan,
    gateways: usize,
    check_sessions: &SessionCheck<'_>,
    prebuilt: &mut Option<Receiver<Prebuilt>>,
) -> Result<Restored, String> {
    let t0 = crate::runtime::clock::now_ns();
    let snap = read_node_snapshot(path).map_err(|e| e.to_string())?;
    if snap.seq != seq {
        return Err(format!("the image holds seq {}, its name {seq}", snap.seq));
    }
    if snap.config_digest != plan.config_digest {
        return Err(format!(
            "taken with another shard map (digest {:016x}, this config {:016x})",
            snap.config_digest, plan.config_digest
        ));
    }
    if snap.shards.len() != plan.shard_count() || snap.sessions.len() != gateways {
        return Err(format!(
            "taken with {} shards and {} gateways, this node has {} and {gateways}",
            snap.shards.len(),
            snap.sessions.len(),
            plan.shard_count()
        ));
    }
    check_sessions(&snap.sessions)?;
    let t1 = crate::runtime::clock::now_ns();
    // The log must hold the image's last record, in its term, and go on from there.
    let st = FileStorage::new(log_dir, WriteMode::Buffered).map_err(|e| e.to_string())?;
    let mut reader = LogReader::new(st).map_err(|e| e.to_string())?;
    if reader.next_seq() > seq {
        return Err(format!(
            "the log starts at seq {}, after the image's {seq}",
            reader.next_seq()
        ));
    }
    reader.seek(seq).map_err(|e| e.to_string())?;
    match reader.next() {
        Ok(Some(r)) if r.meta.seq == seq && r.meta.term == snap.term => {}
        Ok(Some(r)) => {
            return Err(format!(
                "the log's record {} is of term {}, the image's of term {}",
                r.meta.seq, r.meta.term, snap.term
            ))
        }
        Ok(None) => return Err(format!("the log ends before the image's seq {seq}")),
        Err(e) => return Err(format!("reading the log at {seq}: {e}")),
    }
    // Each shard's hash at the image's checkpoint, as the log's next checkpoint record of the
    // shard must name it. Checked before the restore: it needs only the image, and the engines
    // are still being built meanwhile.
    let checks: Vec<(u64, u64)> = snap
        .shards
        .iter()
        .map(|img| {
            if img.check_seq > 0 {
                (img.check_seq, img.state_hash)
            } else {
                (0, 0)
            }
        })
        .collect();
    let mut open: Vec<bool> = checks.iter().map(|c| c.0 > 0).collect();
    let mut confirmed = 0;
    let mut read = 0u64;
    while open.iter().any(|o| *o) && read < CHECK_SCAN_RECORDS {
        let rec = match reader.next() {
            Ok(Some(r)) => r,
            Ok(None) => break,
            Err(e) => return Err(format!("reading the log after the image: {e}")),
        };
        read += 1;
        let Input::Checkpoint(cp) = rec.input else {
            continue;
        };
        let k = (rec.meta.origin >> 24) as usize;
        if !open.get(k).copied().unwrap_or(false) || cp.prev_seq < checks[k].0 {
            continue;
        }
        open[k] = false;
        if cp.prev_seq == checks[k].0 {
            if cp.prev_hash != checks[k].1 {
                return Err(format!(
                    "shard {k}: the log's checkpoint at seq {} names hash {:016x} for seq {}, \
                     the image has {:016x}",
                    rec.meta.seq, cp.prev_hash, cp.prev_seq, checks[k].1
                ));
            }
            confirmed += 1;
        }
    }
    let t2 = crate::runtime::clock::now_ns();
    let mut engines_build_ns = 0;
    let mut fresh: Vec<Option<FreshEngine>> = prebuilt
        .take()
        .and_then(|rx| rx.recv().ok())
        .filter(|p| p.engines.len() == snap.shards.len())
        .map(|p| {
            engines_build_ns = p.build_ns;
            p.engines.into_iter().map(Some).collect()
        })
        .unwrap_or_default();
    let t3 = crate::runtime::clock::now_ns();
    let mut shards = Vec::with_capacity(snap.shards.len());
    for (k, img) in snap.shards.iter().enumerate() {
        if usize::from(img.shard) != k {
            return Err(format!("shard image {k} names shard {}", img.shard));
        }
        let cfg = plan.engine(k);
        let engine = match fresh.get_mut(k).and_then(Option::take) {
            Some(e) if img.engine.risk.is_some() == plan.risk[k].is_some() => {
                img.engine.restore_over(e, img.state_hash)
            }
            _ => img
                .engine
                .restore(cfg.clone(), plan.risk[k].clone(), img.state_hash),
        }
        .map_err(|e| format!("shard {k}: {e}"))?;
        shards.push(
            Shard::from_engine(k as u16, engine, &cfg)
                .with_md_from_image(img.md.as_ref().map(crate::shard::md::md_state_of)),
        );
    }
    let t4 = crate::runtime::clock::now_ns();
    let dedup = Dedup::from_entries(snap.seq, &snap.dedup);
    Ok(Restored {
        seq,
        name: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        path: path.to_path_buf(),
        sessions: snap.sessions,
        shards,
        checks,
        dedup,
        confirmed,
        load_ns: 0,
        decode_ns: t1 - t0,
        log_check_ns: t2 - t1,
        engines_wait_ns: t3 - t2,
        restore_ns: t4 - t3,
        engines_build_ns,
    })
}
