//! Static routing: which shard owns which instrument.

use tpx_engine::InstrumentId;

#[derive(Clone, Debug)]
pub struct Routing {
    /// Indexed by instrument id; `u16::MAX` = unknown instrument.
    shard_of: Vec<u16>,
    pub shard_count: u16,
}

impl Routing {
    pub fn new(instrument_shards: &[(InstrumentId, u16)], shard_count: u16) -> Routing {
        let len = instrument_shards
            .iter()
            .map(|(i, _)| *i as usize + 1)
            .max()
            .unwrap_or(0);
        let mut shard_of = vec![u16::MAX; len];
        for &(i, s) in instrument_shards {
            shard_of[i as usize] = s;
        }
        Routing {
            shard_of,
            shard_count,
        }
    }

    /// The shard of an instrument; unknown instruments go to shard 0, whose engine rejects them
    /// (so that every reject but the gateway's own comes from the sequenced path).
    #[inline]
    pub fn shard_of(&self, instrument: InstrumentId) -> u16 {
        match self.shard_of.get(instrument as usize) {
            Some(&s) if s != u16::MAX => s,
            _ => 0,
        }
    }
}
