//! The risk invariants, checked by `Engine::check_invariants` when risk is on.

use crate::engine::Engine;
use crate::types::*;

use super::state::*;

impl Engine {
    /// Holds and locked margin add up to `held`; open quantities match the live orders; each
    /// asset's balances add up to its deposits minus withdrawals; each perpetual's sizes and
    /// costs add up to zero and its realised PnL, fees and funding (the venue's included) too;
    /// the lists of open positions hold exactly the positions marked listed; reduce-only
    /// orders never exceed what they can reduce; position limits hold; accounts other than the
    /// venue's hold nothing negative and have a negative available balance only in a
    /// perpetual's settle asset.
    pub(crate) fn check_risk(&self) -> Result<(), String> {
        let r = &self.risk;
        let n_assets = r.n_assets();
        let mut held = vec![0i128; r.balances.len()];
        let mut open = vec![[0u64; 4]; r.positions.len()];
        for (slot, o) in self.store.slab.orders.iter().enumerate() {
            // Pending trigger orders hold and count nothing until they fire.
            if o.leaves == 0 || o.ext & crate::ext::EXT_PENDING != 0 {
                continue;
            }
            // An iceberg holds for its whole quantity, hidden part included.
            let leaves = crate::triggers::total_leaves(&self.store, slot as u32);
            let bi = o.book as usize;
            let asset = r.hold_asset(bi, o.side);
            held[r.bal_index(o.account, asset)] +=
                i128::from(leaves) * i128::from(r.hold_of(o, slot as u32));
            if let Kind::Perp { perp, .. } = r.inst[bi].kind {
                if o.reduce_only || r.inst[bi].max_position > 0 {
                    let k = usize::from(o.reduce_only) * 2 + usize::from(o.side == Side::Sell);
                    open[r.pos_index(o.account, perp)][k] += leaves;
                }
            }
        }
        let mut settle_asset = vec![false; n_assets];
        for ps in &r.perps {
            settle_asset[ps.settle as usize] = true;
        }
        for (pi, (p, h)) in r.positions.iter().zip(&r.hot).enumerate() {
            let account = (pi / r.n_perps) as AccountId;
            let perp = pi % r.n_perps;
            let ps = &r.perps[perp];
            held[r.bal_index(account, ps.settle)] += i128::from(h.margin);
            if [h.open_buy, h.open_sell, p.ro_buy, p.ro_sell] != open[pi]
                || u128::from(h.ro_open) != u128::from(p.ro_buy) + u128::from(p.ro_sell)
            {
                return Err(format!(
                    "account {account} on {}: open quantities {:?} (reduce-only total {}), \
                     orders say {:?}",
                    ps.instrument,
                    [h.open_buy, h.open_sell, p.ro_buy, p.ro_sell],
                    h.ro_open,
                    open[pi]
                ));
            }
            if p.ro_sell > h.size.max(0) as u64 || p.ro_buy > h.size.min(0).unsigned_abs() {
                return Err(format!(
                    "account {account} on {}: reduce-only {}/{} exceed position {}",
                    ps.instrument, p.ro_buy, p.ro_sell, h.size
                ));
            }
            let max = r.inst[ps.book as usize].max_position;
            if max > 0 && account != r.liq_account {
                let long = i128::from(h.size) + i128::from(h.open_buy);
                let short = -i128::from(h.size) + i128::from(h.open_sell);
                if long > i128::from(max) || short > i128::from(max) {
                    return Err(format!(
                        "account {account} on {}: position limit {max} passed",
                        ps.instrument
                    ));
                }
            }
            if (h.size != 0 || h.cost != 0) && !p.listed {
                return Err(format!(
                    "account {account} on {}: not listed",
                    ps.instrument
                ));
            }
            if p.queued {
                return Err(format!("account {account}: left in the trim queue"));
            }
            if h.margin < 0 || (h.size == 0 && h.margin != 0) {
                return Err(format!(
                    "account {account} on {}: margin {} for size {}",
                    ps.instrument, h.margin, h.size
                ));
            }
        }
        if !r.trim.is_empty() {
            return Err("trim queue not drained".into());
        }
        let mut totals = vec![0i128; n_assets];
        for (i, b) in r.balances.iter().enumerate() {
            let account = (i / n_assets) as AccountId;
            let asset = i % n_assets;
            if i128::from(b.held) != held[i] {
                return Err(format!(
                    "account {account} asset {}: held {} but orders and positions hold {}",
                    r.asset_ids[asset], b.held, held[i]
                ));
            }
            let venue = account == r.fee_account || account == r.liq_account;
            if !venue && (b.held < 0 || (b.available < 0 && !settle_asset[asset])) {
                return Err(format!(
                    "account {account} asset {}: negative balance {b:?}",
                    r.asset_ids[asset]
                ));
            }
            totals[asset] += i128::from(b.available) + i128::from(b.held);
        }
        for (asset, total) in totals.iter().enumerate() {
            if *total != r.net_deposits[asset] {
                return Err(format!(
                    "asset {}: balances add up to {total}, deposits minus withdrawals {}",
                    r.asset_ids[asset], r.net_deposits[asset]
                ));
            }
        }
        for (perp, ps) in r.perps.iter().enumerate() {
            let (mut size, mut cost, mut flows) = (0i128, 0i128, 0i128);
            let mut listed = 0usize;
            for account in 0..r.accounts.len() as AccountId {
                let p = r.pos(account, perp as u32);
                let h = r.hot(account, perp as u32);
                size += i128::from(h.size);
                cost += h.cost;
                flows += i128::from(p.realized) + i128::from(h.fees) + i128::from(p.funding);
                listed += usize::from(p.listed);
            }
            flows +=
                i128::from(ps.venue.pnl) + i128::from(ps.venue.fees) + i128::from(ps.venue.funding);
            if size != 0 || cost != 0 || flows != 0 {
                return Err(format!(
                    "perpetual {}: sizes add up to {size}, costs to {cost}, flows to {flows}",
                    ps.instrument
                ));
            }
            let (mut n, mut prev, mut account) = (0usize, NO, ps.head);
            while account != NO {
                let p = r.pos(account, perp as u32);
                if !p.listed || p.prev != prev {
                    return Err(format!(
                        "perpetual {}: broken list at {account}",
                        ps.instrument
                    ));
                }
                n += 1;
                if n > listed {
                    return Err(format!(
                        "perpetual {}: list longer than listed",
                        ps.instrument
                    ));
                }
                prev = account;
                account = p.next;
            }
            if n != listed || ps.tail != prev {
                return Err(format!(
                    "perpetual {}: list of {n}, {listed} listed",
                    ps.instrument
                ));
            }
        }
        Ok(())
    }
}
