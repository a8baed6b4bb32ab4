//! A log replayed through the node's own shards, off any core and without a clock: what
//! `tpx replay` prints, and what the fault lab's checker compares the clients' fills with.
//! Records reach the shards as the sequencing stage's feed sends them (`entry_of` with no local
//! session, as on a standby or at a restart; a `TermStart` reaches none; a record for every
//! shard reaches each), and each shard applies them as on its core (`Shard::apply`, market data
//! off).

use std::collections::VecDeque;

use tpx_wire::log_record::{Input, LogRecord};

use crate::msg::{Report, ALL_SHARDS};
use crate::sequencing::feed::entry_of;
use crate::shard::apply::Shard;
use crate::shard::plan::ShardPlan;

/// The shards of a node, fed from a log.
#[derive(Debug)]
pub struct Replay {
    pub shards: Vec<Shard>,
    /// The last record applied.
    pub last_seq: u64,
    pub records: u64,
}

impl Replay {
    /// Fresh shards as `plan` places them.
    pub fn new(plan: &ShardPlan) -> Result<Replay, String> {
        let shards = (0..plan.shard_count())
            .map(|s| Shard::new(s as u16, plan.engine(s), plan.risk[s].clone()))
            .collect::<Result<_, _>>()?;
        Ok(Replay::over(shards))
    }

    /// Over shards built elsewhere (the simulator's, with market data into memory), fresh.
    pub fn over(shards: Vec<Shard>) -> Replay {
        Replay {
            shards,
            last_seq: 0,
            records: 0,
        }
    }

    /// Applies one record; every report goes to `out` with the shard that made it.
    pub fn apply(&mut self, rec: &LogRecord, mut out: impl FnMut(u16, Report)) {
        self.last_seq = rec.meta.seq;
        self.records += 1;
        if matches!(rec.input, Input::TermStart(_)) {
            return;
        }
        let entry = entry_of(rec, &mut VecDeque::new(), &mut None);
        for sh in self.shards.iter_mut() {
            if entry.req.shard == ALL_SHARDS || entry.req.shard == sh.id {
                let id = sh.id;
                sh.apply(&entry, |r| out(id, r));
            }
        }
    }

    /// Each shard's engine state hash, in shard order.
    pub fn state_hashes(&self) -> Vec<u64> {
        self.shards.iter().map(|s| s.engine.state_hash()).collect()
    }
}
