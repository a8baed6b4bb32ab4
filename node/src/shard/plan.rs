//! Which shard owns which instrument, and what each shard's engine is: derived from the node
//! config alone (pure), so that the node, a replay of its log (`shard/replay.rs`, `tpx replay`)
//! and the fault lab's checker build the very same shards.

use tpx_engine::{EngineConfig, InstrumentId, InstrumentSpec, RiskConfig};

use crate::config::NodeConfig;

/// The node's shards as its config places them.
#[derive(Clone, Debug)]
pub struct ShardPlan {
    /// Per shard, its instruments' specs and symbols, in config order.
    pub instruments: Vec<Vec<(InstrumentSpec, String)>>,
    /// Per instrument (config order), the shard that owns it.
    pub instrument_shards: Vec<(InstrumentId, u16)>,
    /// Per shard, its risk configuration (`[risk]`), or none (risk off).
    pub risk: Vec<Option<RiskConfig>>,
    /// The digest peers compare at the handshake (shard map, risk, account bound).
    pub config_digest: u64,
    pub max_orders: u32,
    pub max_accounts: u32,
}

impl ShardPlan {
    /// Places the config's instruments on `shard_count` shards (an instrument's `shard`, else
    /// round-robin in config order) and checks each shard's `[risk]`.
    pub fn of(cfg: &NodeConfig, shard_count: u32) -> Result<ShardPlan, String> {
        let instruments = cfg.instruments();
        let mut by_shard: Vec<Vec<(InstrumentSpec, String)>> =
            vec![Vec::new(); shard_count as usize];
        let mut configs_by_shard: Vec<Vec<&crate::config::InstrumentConfig>> =
            vec![Vec::new(); shard_count as usize];
        let mut instrument_shards = Vec::new();
        for (k, ic) in instruments.iter().enumerate() {
            let shard = ic.shard.unwrap_or(k as u32 % shard_count);
            if shard >= shard_count {
                return Err(format!(
                    "instrument {} on shard {shard}, but the plan has {shard_count} shards",
                    ic.symbol
                ));
            }
            by_shard[shard as usize].push((ic.spec()?, ic.symbol.clone()));
            configs_by_shard[shard as usize].push(ic);
            instrument_shards.push((ic.id, shard as u16));
        }
        let placed: Vec<(crate::config::InstrumentConfig, u32)> = instruments
            .iter()
            .zip(&instrument_shards)
            .map(|(ic, &(_, s))| (ic.clone(), u32::from(s)))
            .collect();
        let config_digest = crate::config::replication::config_digest(
            shard_count,
            &placed,
            cfg.risk.as_ref(),
            cfg.max_accounts,
        );
        // `[risk]`: each shard's risk configuration, checked here (assets, venue accounts,
        // tiers); the engine checks the rest (rates, notional bounds) when the shard is built.
        let mut risk = vec![None; shard_count as usize];
        if let Some(r) = &cfg.risk {
            for (s, ics) in configs_by_shard.iter().enumerate() {
                risk[s] = Some(
                    r.for_shard(ics, cfg.max_accounts)
                        .map_err(|e| e.to_string())?,
                );
            }
        }
        Ok(ShardPlan {
            instruments: by_shard,
            instrument_shards,
            risk,
            config_digest,
            max_orders: cfg.max_orders,
            max_accounts: cfg.max_accounts,
        })
    }

    pub fn shard_count(&self) -> usize {
        self.instruments.len()
    }

    /// Shard `s`'s engine configuration.
    pub fn engine(&self, s: usize) -> EngineConfig {
        EngineConfig {
            instruments: self.instruments[s].iter().map(|(i, _)| *i).collect(),
            max_orders: self.max_orders,
            max_accounts: self.max_accounts,
        }
    }
}
