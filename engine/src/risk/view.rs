//! Read accessors of the risk state, for tests, tools and the node (not the hot path).

use crate::engine::Engine;
use crate::instrument::AssetId;
use crate::types::*;

use super::state::Kind;
use super::types::{BalanceView, PositionView, VenueLedger};

impl Engine {
    /// The assets accounts may hold (empty with risk off), ascending.
    pub fn risk_assets(&self) -> &[AssetId] {
        &self.risk.asset_ids
    }

    /// An account's balance of an asset; `None` with risk off or for an unknown account or
    /// asset.
    pub fn balance(&self, account: AccountId, asset: AssetId) -> Option<BalanceView> {
        if !self.risk.on() || account >= self.max_accounts {
            return None;
        }
        let a = self.risk.asset_index(asset)?;
        let i = self.risk.bal_index(account, a);
        let b = self.risk.balances[i];
        Some(BalanceView {
            available: b.available,
            held: b.held,
            margin_call: self.risk.flags[i],
        })
    }

    /// Deposits minus withdrawals of an asset: what all balances add up to.
    pub fn net_deposits(&self, asset: AssetId) -> Option<i128> {
        let a = self.risk.asset_index(asset)?;
        Some(self.risk.net_deposits[a as usize])
    }

    /// The perpetual index of an instrument, if it is one (risk on).
    fn perp_index(&self, instrument: InstrumentId) -> Option<u32> {
        let bi = self.book_index(instrument)?;
        match self.risk.inst.get(bi)?.kind {
            Kind::Perp { perp, .. } => Some(perp),
            Kind::Spot { .. } => None,
        }
    }

    /// An account's position on a perpetual; `None` with risk off, for an unknown account or
    /// for an instrument that is not a perpetual.
    pub fn position(&self, account: AccountId, instrument: InstrumentId) -> Option<PositionView> {
        if account >= self.max_accounts {
            return None;
        }
        let perp = self.perp_index(instrument)?;
        let p = self.risk.pos(account, perp);
        let h = self.risk.hot(account, perp);
        let entry_price = if h.size == 0 {
            0
        } else {
            (h.cost / i128::from(h.size)) as PriceTicks
        };
        Some(PositionView {
            size: h.size,
            cost: h.cost,
            entry_price,
            margin: h.margin,
            realized_pnl: p.realized,
            fees: h.fees,
            funding: p.funding,
            open_buy: h.open_buy,
            open_sell: h.open_sell,
            reduce_only_buy: p.ro_buy,
            reduce_only_sell: p.ro_sell,
        })
    }

    /// A perpetual's mark price (`None`: not a perpetual, or no mark yet).
    pub fn mark_price(&self, instrument: InstrumentId) -> Option<PriceTicks> {
        let perp = self.perp_index(instrument)?;
        let mark = self.risk.perps[perp as usize].mark;
        (mark > 0).then_some(mark)
    }

    /// The last funding id applied to a perpetual (0: none yet).
    pub fn last_funding_id(&self, instrument: InstrumentId) -> Option<u64> {
        let perp = self.perp_index(instrument)?;
        Some(self.risk.perps[perp as usize].last_funding_id)
    }

    /// What the fee account received on a perpetual (rounding remainders, fees).
    pub fn venue_ledger(&self, instrument: InstrumentId) -> Option<VenueLedger> {
        let perp = self.perp_index(instrument)?;
        Some(self.risk.perps[perp as usize].venue)
    }

    /// An account's fee tier and last deposit/withdrawal request id (risk on).
    pub fn account_risk(&self, account: AccountId) -> Option<(u8, u64)> {
        let a = self.risk.accounts.get(account as usize)?;
        Some((self.risk.tiers[account as usize], a.last_request_id))
    }

    /// An account's equity and maintenance margin in a settle asset (risk on).
    pub fn margin(&self, account: AccountId, asset: AssetId) -> Option<(i128, i128)> {
        if !self.risk.on() || account >= self.max_accounts {
            return None;
        }
        let a = self.risk.asset_index(asset)?;
        Some(self.risk.margin_state(account, a))
    }
}
