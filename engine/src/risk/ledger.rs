//! The risk stage off the order path: deposits, withdrawals, fee tiers, mark-to-market,
//! funding and maintenance-margin checks. Cold code: each walks at most one perpetual's list of
//! open positions.

use crate::event::{EventSink, RejectReason};
use crate::instrument::AssetId;
use crate::types::*;

use super::state::*;
use super::types::{BalanceReason, RiskEvent};

/// The most a single asset's balances may add up to (deposits beyond are `InvalidAmount`).
pub const MAX_ASSET_TOTAL: i128 = 1 << 62;

impl Risk {
    fn emit_balance<S: EventSink>(
        &self,
        account: AccountId,
        asset: u32,
        reason: BalanceReason,
        delta: i64,
        sink: &mut S,
    ) {
        let b = self.bal(account, asset);
        sink.emit_risk(RiskEvent::Balance {
            account,
            asset: self.asset_ids[asset as usize],
            reason,
            delta,
            available: b.available,
            held: b.held,
        });
    }

    /// Adds `delta` to an account's available balance and says so.
    fn credit<S: EventSink>(
        &mut self,
        account: AccountId,
        asset: u32,
        reason: BalanceReason,
        delta: i64,
        sink: &mut S,
    ) {
        let b = self.bal_mut(account, asset);
        b.available = b.available.wrapping_add(delta);
        self.emit_balance(account, asset, reason, delta, sink);
    }

    /// The idempotency key check shared by deposits, withdrawals and liquidations.
    pub(crate) fn check_request(
        &self,
        account: AccountId,
        request_id: u64,
    ) -> Result<(), RejectReason> {
        if request_id <= self.accounts[account as usize].last_request_id {
            return Err(RejectReason::DuplicateRequest);
        }
        Ok(())
    }

    pub(crate) fn deposit<S: EventSink>(
        &mut self,
        account: AccountId,
        asset: AssetId,
        amount: u64,
        request_id: u64,
        sink: &mut S,
    ) -> Result<(), RejectReason> {
        let a = self.asset_index(asset).ok_or(RejectReason::UnknownAsset)?;
        if amount == 0
            || self.net_deposits[a as usize] + i128::from(amount) > MAX_ASSET_TOTAL
            || i128::from(self.bal(account, a).available) + i128::from(amount)
                > i128::from(i64::MAX)
        {
            return Err(RejectReason::InvalidAmount);
        }
        self.check_request(account, request_id)?;
        self.accounts[account as usize].last_request_id = request_id;
        self.net_deposits[a as usize] += i128::from(amount);
        self.credit(account, a, BalanceReason::Deposit, amount as i64, sink);
        Ok(())
    }

    pub(crate) fn withdraw<S: EventSink>(
        &mut self,
        account: AccountId,
        asset: AssetId,
        amount: u64,
        request_id: u64,
        sink: &mut S,
    ) -> Result<(), RejectReason> {
        let a = self.asset_index(asset).ok_or(RejectReason::UnknownAsset)?;
        if amount == 0 {
            return Err(RejectReason::InvalidAmount);
        }
        self.check_request(account, request_id)?;
        let withdrawable =
            i128::from(self.bal(account, a).available) + self.unrealized(account, a).min(0);
        if withdrawable < i128::from(amount) {
            return Err(RejectReason::InsufficientBalance);
        }
        self.accounts[account as usize].last_request_id = request_id;
        self.net_deposits[a as usize] -= i128::from(amount);
        self.credit(
            account,
            a,
            BalanceReason::Withdrawal,
            (amount as i64).wrapping_neg(),
            sink,
        );
        Ok(())
    }

    pub(crate) fn set_fee_tier<S: EventSink>(
        &mut self,
        account: AccountId,
        tier: u8,
        sink: &mut S,
    ) -> Result<(), RejectReason> {
        if tier >= self.fee_tiers {
            return Err(RejectReason::InvalidFeeTier);
        }
        self.tiers[account as usize] = tier;
        sink.emit_risk(RiskEvent::FeeTier { account, tier });
        Ok(())
    }

    /// The unrealised PnL (at each perpetual's mark, rounded down) of an account's positions on
    /// perpetuals settled in `asset`.
    pub(crate) fn unrealized(&self, account: AccountId, asset: u32) -> i128 {
        let mut total = 0i128;
        for (perp, ps) in self.perps.iter().enumerate() {
            if ps.settle != asset || ps.mark == 0 {
                continue;
            }
            let h = self.hot(account, perp as u32);
            let size = h.size;
            if size == 0 && h.cost == 0 {
                continue;
            }
            let ip = &self.inst[ps.book as usize];
            let vm = (i128::from(size) * i128::from(ps.mark)).saturating_sub(h.cost);
            total = total.saturating_add(mul_div_floor(vm, ip.num, ip.den));
        }
        total
    }

    /// Equity (balance plus unrealised PnL) and maintenance margin of an account in a settle
    /// asset.
    pub(crate) fn margin_state(&self, account: AccountId, asset: u32) -> (i128, i128) {
        let b = self.bal(account, asset);
        let equity = (i128::from(b.available) + i128::from(b.held))
            .saturating_add(self.unrealized(account, asset));
        let mut maintenance = 0i128;
        for (perp, ps) in self.perps.iter().enumerate() {
            if ps.settle != asset || ps.mark == 0 {
                continue;
            }
            let size = self.size(account, perp as u32);
            if size == 0 {
                continue;
            }
            let ip = &self.inst[ps.book as usize];
            let value = (u128::from(size.unsigned_abs()) * ps.mark as u128)
                .saturating_mul(u128::from(ip.num));
            maintenance = maintenance.saturating_add(
                ppm_ceil(ip.ceil_value(value), ip.mm_ppm).min(i128::MAX as u128) as i128,
            );
        }
        (equity, maintenance)
    }

    /// Re-evaluates an account's maintenance margin in `asset`; emits `MarginCall` when it
    /// becomes flagged and `MarginRestored` when it stops being. Venue accounts are never
    /// flagged.
    pub(crate) fn check_margin<S: EventSink>(
        &mut self,
        account: AccountId,
        asset: u32,
        sink: &mut S,
    ) {
        if account == self.fee_account || account == self.liq_account {
            return;
        }
        let (equity, maintenance) = self.margin_state(account, asset);
        let below = equity < maintenance;
        let i = self.bal_index(account, asset);
        if self.flags[i] == below {
            return;
        }
        self.flags[i] = below;
        let asset = self.asset_ids[asset as usize];
        sink.emit_risk(if below {
            RiskEvent::MarginCall {
                account,
                asset,
                equity: to_i64(equity),
                maintenance: to_i64(maintenance),
            }
        } else {
            RiskEvent::MarginRestored { account, asset }
        });
    }

    /// Settles every open position of a perpetual to its mark: each pays or receives
    /// `floor((size * mark - cost) * value)` and its cost becomes `size * mark`. The exact
    /// amounts add up to zero (sizes and costs both do), so the floors add up to at most zero;
    /// the fee account receives the difference.
    pub(crate) fn settle_to_mark<S: EventSink>(&mut self, perp: u32, sink: &mut S) {
        let ps = self.perps[perp as usize];
        let ip = self.inst[ps.book as usize];
        let mark = i128::from(ps.mark);
        let mut total = 0i128;
        let mut account = ps.head;
        while account != NO {
            let h = self.hot_mut(account, perp);
            let target = i128::from(h.size) * mark;
            let vm = to_i64(mul_div_floor(target.saturating_sub(h.cost), ip.num, ip.den));
            h.cost = target;
            let p = self.pos_mut(account, perp);
            let next = p.next;
            p.realized = p.realized.wrapping_add(vm);
            total += i128::from(vm);
            if vm != 0 {
                self.credit(account, ps.settle, BalanceReason::VariationMargin, vm, sink);
            }
            account = next;
        }
        let remainder = to_i64(-total);
        self.perps[perp as usize].venue.pnl = ps.venue.pnl.wrapping_add(remainder);
        if remainder != 0 {
            let fee_account = self.fee_account;
            self.credit(
                fee_account,
                ps.settle,
                BalanceReason::Remainder,
                remainder,
                sink,
            );
        }
    }

    /// Checks maintenance margin for every account on a perpetual's list, and takes flat
    /// positions (size and cost 0, so settled) off it.
    pub(crate) fn check_listed<S: EventSink>(&mut self, perp: u32, sink: &mut S) {
        let settle = self.perps[perp as usize].settle;
        let mut account = self.perps[perp as usize].head;
        while account != NO {
            let p = *self.pos(account, perp);
            let h = *self.hot(account, perp);
            self.check_margin(account, settle, sink);
            if h.size == 0 && h.cost == 0 {
                self.unlist(account, perp);
            }
            account = p.next;
        }
    }

    pub(crate) fn set_mark<S: EventSink>(&mut self, perp: u32, price: PriceTicks, sink: &mut S) {
        let instrument = self.perps[perp as usize].instrument;
        self.perps[perp as usize].mark = price;
        sink.emit_risk(RiskEvent::MarkPrice { instrument, price });
        self.settle_to_mark(perp, sink);
        self.check_listed(perp, sink);
    }

    /// Funding at the mark: each position receives `floor(-size * mark * value * rate / 10^6)`
    /// (longs pay a positive rate); the exact amounts add up to zero, the fee account receives
    /// what the floors leave.
    pub(crate) fn apply_funding<S: EventSink>(&mut self, perp: u32, rate_ppm: i64, sink: &mut S) {
        let ps = self.perps[perp as usize];
        let ip = self.inst[ps.book as usize];
        sink.emit_risk(RiskEvent::Funding {
            instrument: ps.instrument,
            rate_ppm,
            mark: ps.mark,
        });
        let mut total = 0i128;
        let mut account = ps.head;
        while account != NO {
            let size = self.size(account, perp);
            let p = self.pos_mut(account, perp);
            let next = p.next;
            let scaled =
                (-i128::from(size) * i128::from(ps.mark)).saturating_mul(i128::from(rate_ppm));
            let amount = to_i64(mul_div_floor(scaled, ip.num, ip.den).div_euclid(1_000_000));
            p.funding = p.funding.wrapping_add(amount);
            total += i128::from(amount);
            if amount != 0 {
                self.credit(account, ps.settle, BalanceReason::Funding, amount, sink);
            }
            account = next;
        }
        let remainder = to_i64(-total);
        self.perps[perp as usize].venue.funding = ps.venue.funding.wrapping_add(remainder);
        if remainder != 0 {
            let fee_account = self.fee_account;
            self.credit(
                fee_account,
                ps.settle,
                BalanceReason::Remainder,
                remainder,
                sink,
            );
        }
        self.check_listed(perp, sink);
    }

    /// Moves an account's whole position on a perpetual (already settled to the mark, so its
    /// cost is `size * mark`) to the liquidation account, releasing its locked margin. Returns
    /// the size moved.
    pub(crate) fn take_over<S: EventSink>(
        &mut self,
        account: AccountId,
        perp: u32,
        sink: &mut S,
    ) -> i64 {
        let ps = self.perps[perp as usize];
        let p = *self.hot(account, perp);
        let size = p.size;
        {
            let q = self.hot_mut(account, perp);
            q.size = 0;
            q.cost = 0;
            q.margin = 0;
        }
        let b = self.bal_mut(account, ps.settle);
        b.held = b.held.wrapping_sub(p.margin);
        b.available = b.available.wrapping_add(p.margin);
        if self.pos(account, perp).listed {
            self.unlist(account, perp);
        }
        let liq = self.liq_account;
        let (s1, cost1) = {
            let h = self.hot_mut(liq, perp);
            h.size = h.size.wrapping_add(size);
            h.cost = h.cost.wrapping_add(p.cost);
            (h.size, h.cost)
        };
        let lp = self.pos_mut(liq, perp);
        let (listed, queued) = (lp.listed, lp.queued);
        let trim = lp.ro_sell > s1.max(0) as u64 || lp.ro_buy > s1.min(0).unsigned_abs();
        if !listed && (s1 != 0 || cost1 != 0) {
            self.list(liq, perp);
        }
        if trim && !queued && self.trim.len() < self.trim.capacity() {
            let pi = self.pos_index(liq, perp);
            self.positions[pi].queued = true;
            self.trim.push(pi as u32);
        }
        sink.emit_risk(RiskEvent::Liquidated {
            account,
            instrument: ps.instrument,
            size,
            price: ps.mark,
        });
        size
    }

    /// After a liquidation: an account left with no position on any perpetual settled in
    /// `asset` and a negative balance has its deficit paid by the fee (insurance) account.
    pub(crate) fn cover_deficit<S: EventSink>(
        &mut self,
        account: AccountId,
        asset: u32,
        sink: &mut S,
    ) {
        let open = self
            .perps
            .iter()
            .enumerate()
            .any(|(perp, ps)| ps.settle == asset && self.size(account, perp as u32) != 0);
        let available = self.bal(account, asset).available;
        if open || available >= 0 {
            return;
        }
        let fee_account = self.fee_account;
        self.credit(
            account,
            asset,
            BalanceReason::InsuranceCover,
            -available,
            sink,
        );
        self.credit(
            fee_account,
            asset,
            BalanceReason::InsuranceCover,
            available,
            sink,
        );
    }
}
