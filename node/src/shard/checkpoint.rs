//! Replica checkpoints on a shard (see ARCHITECTURE.md, "Replicas checked while running"): a
//! `Checkpoint` record carries the state hash the primary's shard had at an earlier checkpoint
//! record (`prev_seq`); every node applying it compares that hash with the one its own shard
//! had at the same record, then hashes its state at this record for the next one. The record
//! is in the log, so every node makes the same comparison against its own deterministic hash.

use crate::runtime::lines::say;
use std::sync::atomic::Ordering;

use tpx_engine::Engine;
use tpx_wire::log_record::Checkpoint;

use crate::runtime::state::NodeState;

/// Checkpoint hashes a shard remembers (the primary names one its shard published, at most a
/// few checkpoints back).
const RECENT: usize = 16;

/// What a checkpoint record found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// `prev_seq` 0: the primary had no hash yet; nothing compared.
    First,
    /// Equal hashes at `prev_seq`.
    Matched,
    /// This shard's hash at `prev_seq` (`mine`) differs from the log's.
    Diverged { mine: u64 },
    /// No hash remembered for `prev_seq` (this node did not apply that checkpoint: it started
    /// after it); nothing compared.
    NotRemembered,
}

/// A shard's recent checkpoint hashes: `(seq, hash)`, a ring.
#[derive(Debug)]
pub struct ShardCheckpoints {
    shard: u16,
    recent: [(u64, u64); RECENT],
    next: usize,
    /// Test-only (debug builds): `TPX_TEST_DIVERGE=<shard>:<seq>` changes this shard's engine
    /// outside the log at the first order record at or after `seq` (see [`Self::plant`]).
    plant_at: Option<u64>,
    /// Where the first mismatch writes this shard's engine image (`diverged-shard<K>-seq<S>.img`,
    /// the snapshot format of `tpx_sequencer::snapshot`); `None`: not written.
    pub image_dir: Option<std::path::PathBuf>,
    /// An image was written (once per process).
    image_written: bool,
}

impl ShardCheckpoints {
    pub fn new(shard: u16) -> ShardCheckpoints {
        ShardCheckpoints {
            shard,
            recent: [(0, 0); RECENT],
            next: 0,
            plant_at: plant_from_env(shard),
            image_dir: None,
            image_written: false,
        }
    }

    /// Compares the log's hash for `cp.prev_seq` with this shard's.
    pub fn compare(&self, cp: &Checkpoint) -> Verdict {
        if cp.prev_seq == 0 {
            return Verdict::First;
        }
        match self.recent.iter().find(|(s, _)| *s == cp.prev_seq) {
            None => Verdict::NotRemembered,
            Some((_, h)) if *h == cp.prev_hash => Verdict::Matched,
            Some((_, h)) => Verdict::Diverged { mine: *h },
        }
    }

    /// Remembers this shard's hash at checkpoint record `seq`.
    pub fn remember(&mut self, seq: u64, hash: u64) {
        self.recent[self.next] = (seq, hash);
        self.next = (self.next + 1) % RECENT;
    }

    /// Applies checkpoint record `seq`: compares, hashes `engine` (every record before `seq`
    /// applied), remembers and publishes the hash; a mismatch is printed and counted in
    /// `shared.checkpoints.diverged`.
    pub fn apply(&mut self, seq: u64, cp: &Checkpoint, engine: &Engine, shared: &NodeState) {
        let verdict = self.compare(cp);
        let c = &shared.checkpoints;
        match verdict {
            Verdict::Matched => {
                c.matched.fetch_add(1, Ordering::Relaxed);
            }
            Verdict::Diverged { mine } => {
                c.diverged.fetch_add(1, Ordering::Relaxed);
                say(format_args!(
                    "tpx node: DIVERGED shard={} seq={} at_seq={} mine={mine:016x} log={:016x}",
                    self.shard, seq, cp.prev_seq, cp.prev_hash
                ));
                self.write_image(seq, engine);
            }
            Verdict::First | Verdict::NotRemembered => {}
        }
        let hash = engine.state_hash();
        self.remember(seq, hash);
        c.publish(usize::from(self.shard), seq, hash);
    }

    /// The first mismatch keeps this shard's state for diagnosis: its engine image as of
    /// record `seq` (every record before it applied; the log's state there is what `tpx replay
    /// --to-seq` rebuilds). Blocking file IO on the shard core, once per process.
    fn write_image(&mut self, seq: u64, engine: &Engine) {
        let Some(dir) = &self.image_dir else {
            return;
        };
        if std::mem::replace(&mut self.image_written, true) {
            return;
        }
        let path = dir.join(format!("diverged-shard{}-seq{seq}.img", self.shard));
        let snap = tpx_sequencer::snapshot::Snapshot::of(
            seq.saturating_sub(1),
            0,
            0,
            engine,
            &tpx_sequencer::replica::Dedup::default(),
        );
        let written = tpx_sequencer::snapshot::encode_snapshot(&snap)
            .map_err(|e| e.to_string())
            .and_then(|bytes| std::fs::write(&path, bytes).map_err(|e| e.to_string()));
        match written {
            Ok(()) => say(format_args!(
                "tpx node: DIVERGED image of shard={} written to {}",
                self.shard,
                path.display()
            )),
            Err(e) => say(format_args!(
                "tpx node: DIVERGED image of shard={} not written ({}): {e}",
                self.shard,
                path.display()
            )),
        }
    }

    /// Test-only (the binary built with debug assertions, `TPX_TEST_DIVERGE` set): at the first
    /// new order at or after the configured seq, applies that order a second time (under
    /// another `cl_ord_id`) to `engine` without a log record: this node's state now differs
    /// from every other's.
    pub fn plant(
        &mut self,
        seq: u64,
        input: &tpx_wire::log_record::Input,
        account: u32,
        engine: &mut Engine,
    ) {
        let Some(at) = self.plant_at else {
            return;
        };
        let Some(o) = input.new_order() else {
            return;
        };
        if seq < at {
            return;
        }
        self.plant_at = None;
        // The record's own order again under another id: accepted wherever the original is.
        let planted =
            tpx_wire::log_record::Input::EnterOrderExt(tpx_wire::order_entry::EnterOrderExt {
                cl_ord_id: u64::MAX - 1,
                oco_cl_ord_id: 0,
                ..o
            });
        let mut events: Vec<tpx_engine::Event> = Vec::new();
        if let Some(input) = tpx_sequencer::apply::engine_input(&planted, account) {
            engine.apply(0, &input, &mut events);
        }
        say(format_args!(
            "tpx node: TEST planted a divergence in shard={} at seq={seq}: {:?}",
            self.shard,
            events.first()
        ));
    }
}

/// `TPX_TEST_DIVERGE=<shard>:<seq>`, read only by a binary built with debug assertions.
fn plant_from_env(shard: u16) -> Option<u64> {
    if !cfg!(debug_assertions) {
        return None;
    }
    let v = std::env::var("TPX_TEST_DIVERGE").ok()?;
    let (s, q) = v.split_once(':')?;
    (s.parse::<u16>().ok()? == shard).then_some(q.parse::<u64>().ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cp(prev_seq: u64, prev_hash: u64) -> Checkpoint {
        Checkpoint {
            prev_seq,
            prev_hash,
        }
    }

    #[test]
    fn a_checkpoint_compares_the_hash_remembered_at_its_prev_seq() {
        let mut c = ShardCheckpoints::new(0);
        assert_eq!(c.compare(&cp(0, 0)), Verdict::First);
        assert_eq!(c.compare(&cp(10, 7)), Verdict::NotRemembered);
        c.remember(10, 7);
        c.remember(20, 8);
        assert_eq!(c.compare(&cp(10, 7)), Verdict::Matched);
        assert_eq!(c.compare(&cp(20, 8)), Verdict::Matched);
        assert_eq!(c.compare(&cp(20, 9)), Verdict::Diverged { mine: 8 });
        // The ring forgets the oldest.
        for k in 0..RECENT as u64 {
            c.remember(100 + k, k);
        }
        assert_eq!(c.compare(&cp(10, 7)), Verdict::NotRemembered);
        assert_eq!(c.compare(&cp(100, 0)), Verdict::Matched);
    }
}

#[cfg(test)]
mod cost {
    use tpx_engine::{Engine, EngineConfig, InstrumentKind, InstrumentSpec};
    use tpx_wire::enums::{OrderKind, Side, StpMode, TimeInForce};
    use tpx_wire::log_record::Input;
    use tpx_wire::order_entry::EnterOrder;

    /// What a checkpoint costs the shard core: `state_hash()` of a book of `RESTING` orders
    /// (ARCHITECTURE.md quotes it). `cargo test -p tpx-node --release --lib -- --ignored
    /// state_hash_cost --nocapture`.
    #[test]
    #[ignore]
    fn state_hash_cost() {
        const RESTING: u64 = 100_000;
        let spec = |id| InstrumentSpec {
            id,
            kind: InstrumentKind::Spot { base: id, quote: 0 },
            tick_size: 1,
            lot_size: 1,
            min_price: 1,
            max_price: 1_000_000,
            min_qty: 1,
            max_qty: 1_000_000,
            min_notional: 0,
        };
        let mut e = Engine::new(EngineConfig {
            instruments: vec![spec(1), spec(2)],
            max_orders: 2 * RESTING as u32,
            max_accounts: 64,
        })
        .unwrap();
        let mut sink = Vec::new();
        for k in 0..RESTING {
            let buy = k % 2 == 0;
            let o = EnterOrder {
                cl_ord_id: k + 1,
                instrument: 1 + (k % 4 / 2) as u32,
                side: if buy { Side::Buy } else { Side::Sell },
                kind: OrderKind::Limit,
                price: if buy {
                    50_000 - (k % 1000) as i64
                } else {
                    50_001 + (k % 1000) as i64
                },
                qty: 1 + k % 7,
                tif: TimeInForce::Gtc,
                post_only: false,
                reduce_only: false,
                stp: StpMode::None,
            };
            let input =
                tpx_sequencer::apply::engine_input(&Input::EnterOrder(o), 1 + (k % 32) as u32)
                    .unwrap();
            e.apply(1, &input, &mut sink);
            sink.clear();
        }
        let mut ns = Vec::new();
        for _ in 0..21 {
            let t0 = crate::runtime::clock::now_ns();
            std::hint::black_box(e.state_hash());
            ns.push(crate::runtime::clock::now_ns() - t0);
        }
        ns.sort_unstable();
        eprintln!(
            "state_hash of {RESTING} resting orders: median {} us, max {} us",
            ns[10] / 1_000,
            ns[20] / 1_000
        );
    }
}
