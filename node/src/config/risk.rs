//! The node's `[risk]` section and the per-instrument risk parameters of `[[instruments]]`:
//! accounts and pre-trade risk on the order path (see `docs/ARCHITECTURE.md`, "Accounts and
//! risk" and "Across shards").
//!
//! ```toml
//! [risk]
//! fee_account = 900           # fees, rounding remainders, insurance
//! liquidation_account = 901   # takes over liquidated positions
//! fee_tiers = 2               # tiers accounts may be put in (AdminSetFeeTier)
//! assets = [1, 2, 3]          # every asset an instrument uses
//!
//! [[instruments]]
//! id = 3
//! # ... the instrument's spec, then its risk parameters:
//! value_num = 100             # a tick-lot is worth value_num / value_den minor units
//! value_den = 1
//! fees = [{ maker_ppm = 200, taker_ppm = 500 }, { maker_ppm = -100, taker_ppm = 400 }]
//! initial_margin_ppm = 100000
//! maintenance_margin_ppm = 50000
//! max_position = 0            # lots, 0: no limit
//! ```
//!
//! With `[risk]` every shard runs `Engine::with_risk` with a `RiskConfig` restricted to its own
//! instruments and the assets they use (balances live per shard); without it, risk is off.

use std::fmt;

use serde::{Deserialize, Serialize};
use tpx_engine::{FeeRate, InstrumentRisk, RiskConfig};

use crate::config::InstrumentConfig;

/// `[risk]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RiskSection {
    /// The venue account credited with fees and rounding remainders (the insurance fund).
    pub fee_account: u32,
    /// The venue account that takes over liquidated positions.
    pub liquidation_account: u32,
    /// Number of fee tiers (1..=8).
    #[serde(default = "one")]
    pub fee_tiers: u8,
    /// Every asset an instrument uses (spot base and quote, perpetual settle).
    pub assets: Vec<u32>,
}

fn one() -> u8 {
    1
}

/// One fee tier of an instrument, parts per million of the notional.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeeConfig {
    /// Negative: a rebate.
    pub maker_ppm: i32,
    pub taker_ppm: u32,
}

/// Why the risk configuration was refused at start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RiskSetupError {
    /// An instrument uses an asset `[risk] assets` does not list.
    UnknownAsset { instrument: u32, asset: u32 },
    /// A venue account at or above `max_accounts`, or both the same.
    InvalidVenueAccount { account: u32 },
    /// `fee_tiers` 0 or above 8.
    InvalidFeeTiers { fee_tiers: u8 },
    /// An instrument's risk parameters the engine refuses (the engine's error, per shard).
    Engine { shard: u16, error: String },
}

impl fmt::Display for RiskSetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RiskSetupError::UnknownAsset { instrument, asset } => write!(
                f,
                "[risk]: instrument {instrument} uses asset {asset}, which `assets` does not list"
            ),
            RiskSetupError::InvalidVenueAccount { account } => write!(
                f,
                "[risk]: venue account {account} must be below max_accounts, and the fee and liquidation accounts must differ"
            ),
            RiskSetupError::InvalidFeeTiers { fee_tiers } => {
                write!(f, "[risk]: fee_tiers {fee_tiers} must be 1..=8")
            }
            RiskSetupError::Engine { shard, error } => write!(f, "[risk] shard {shard}: {error}"),
        }
    }
}

impl std::error::Error for RiskSetupError {}

/// The assets an instrument's balances are in.
fn assets_of(ic: &InstrumentConfig) -> Vec<u32> {
    if ic.kind == "spot" {
        vec![ic.base, ic.quote]
    } else {
        vec![ic.settle]
    }
}

impl RiskSection {
    /// The risk configuration of one shard: its instruments and the assets they use (in the
    /// order `assets` lists them). Checks what the engine cannot see from one shard.
    pub fn for_shard(
        &self,
        instruments: &[&InstrumentConfig],
        max_accounts: u32,
    ) -> Result<RiskConfig, RiskSetupError> {
        if self.fee_tiers == 0 || self.fee_tiers > 8 {
            return Err(RiskSetupError::InvalidFeeTiers {
                fee_tiers: self.fee_tiers,
            });
        }
        for a in [self.fee_account, self.liquidation_account] {
            if a >= max_accounts || self.fee_account == self.liquidation_account {
                return Err(RiskSetupError::InvalidVenueAccount { account: a });
            }
        }
        let mut used = Vec::new();
        for ic in instruments {
            for asset in assets_of(ic) {
                if !self.assets.contains(&asset) {
                    return Err(RiskSetupError::UnknownAsset {
                        instrument: ic.id,
                        asset,
                    });
                }
                used.push(asset);
            }
        }
        let assets = self
            .assets
            .iter()
            .copied()
            .filter(|a| used.contains(a))
            .collect();
        Ok(RiskConfig {
            assets,
            instruments: instruments.iter().map(|ic| ic.risk()).collect(),
            fee_tiers: self.fee_tiers,
            fee_account: self.fee_account,
            liquidation_account: self.liquidation_account,
        })
    }
}

impl InstrumentConfig {
    /// The instrument's risk parameters (defaults: a tick-lot worth one minor unit, no fees,
    /// 10% / 5% margin, no position limit).
    pub fn risk(&self) -> InstrumentRisk {
        let mut r = InstrumentRisk::new(self.id);
        r.value_num = self.value_num;
        r.value_den = self.value_den;
        if !self.fees.is_empty() {
            r.fees = self
                .fees
                .iter()
                .map(|f| FeeRate {
                    maker_ppm: f.maker_ppm,
                    taker_ppm: f.taker_ppm,
                })
                .collect();
        }
        r.initial_margin_ppm = self.initial_margin_ppm;
        r.maintenance_margin_ppm = self.maintenance_margin_ppm;
        r.max_position = self.max_position;
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::builtin_instruments;

    fn section() -> RiskSection {
        toml::from_str(
            r#"
            fee_account = 90
            liquidation_account = 91
            fee_tiers = 2
            assets = [1, 2, 3]
            "#,
        )
        .unwrap()
    }

    #[test]
    fn a_shard_gets_its_instruments_and_their_assets() {
        let all = builtin_instruments();
        let btc: Vec<&InstrumentConfig> = all.iter().filter(|i| i.base == 2).collect();
        let r = section().for_shard(&btc, 100).unwrap();
        assert_eq!(r.assets, vec![1, 2]);
        assert_eq!(r.instruments.len(), 2);
        assert_eq!(r.instruments[0].value_num, 100);
        let perp: Vec<&InstrumentConfig> = all.iter().filter(|i| i.kind != "spot").collect();
        assert_eq!(section().for_shard(&perp, 100).unwrap().assets, vec![1]);
        let cfg = tpx_engine::EngineConfig {
            instruments: btc.iter().map(|i| i.spec().unwrap()).collect(),
            max_orders: 64,
            max_accounts: 100,
        };
        let risk = section().for_shard(&btc, 100).unwrap();
        assert!(tpx_engine::Engine::with_risk(cfg, risk).is_ok());
    }

    #[test]
    fn bad_sections_get_typed_errors() {
        let all = builtin_instruments();
        let refs: Vec<&InstrumentConfig> = all.iter().collect();
        let mut s = section();
        s.assets = vec![1, 2];
        assert_eq!(
            s.for_shard(&refs, 100),
            Err(RiskSetupError::UnknownAsset {
                instrument: 2,
                asset: 3
            })
        );
        let mut s = section();
        s.liquidation_account = 90;
        assert!(matches!(
            s.for_shard(&refs, 100),
            Err(RiskSetupError::InvalidVenueAccount { .. })
        ));
        assert!(matches!(
            section().for_shard(&refs, 50),
            Err(RiskSetupError::InvalidVenueAccount { account: 90 })
        ));
        let mut s = section();
        s.fee_tiers = 0;
        assert_eq!(
            s.for_shard(&refs, 100),
            Err(RiskSetupError::InvalidFeeTiers { fee_tiers: 0 })
        );
        assert!(toml::from_str::<RiskSection>("fee_account = 1\nnope = 2").is_err());
    }
}
