//! The risk stage on the order path: pre-trade checks, holds, releases and the settlement of
//! each fill. Called by the matching code only when risk is on.

use crate::event::{EventSink, RejectReason};
use crate::slab::Order;
use crate::types::*;

use super::state::*;
use super::types::RiskEvent;

/// Open reduce-only leaves on `side` and what the position (of size `size`) lets that side
/// reduce.
#[inline(always)]
fn ro_room(p: &Pos, size: i64, side: Side) -> (u64, u64) {
    match side {
        Side::Sell => (p.ro_sell, size.max(0) as u64),
        Side::Buy => (p.ro_buy, size.min(0).unsigned_abs()),
    }
}

/// One order as the risk stage sees it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Leg {
    pub account: AccountId,
    pub side: Side,
    pub reduce_only: bool,
    /// What the order holds per lot of leaves.
    pub per_lot: u64,
}

/// One fill, for settlement.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FillInfo {
    pub instrument: InstrumentId,
    pub trade_id: TradeId,
    pub price: PriceTicks,
    pub qty: QtyLots,
    pub maker: Leg,
    pub taker: Leg,
}

/// What accepting a checked order or replace does to its account: hold `u` per lot from now
/// on, moving `delta` (new hold minus old) from available to held in balance row `bal`.
/// `custom`: `u` may differ from what a plain order at the order's price holds, so it is
/// stored per slot and the order is flagged `hold_custom` (see [`Risk::hold_of`]).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Hold {
    pub u: u64,
    pub delta: i64,
    pub bal: usize,
    pub custom: bool,
}

impl Risk {
    /// How many more lots of reduce-only orders on `side` the account's position on
    /// instrument book `bi` admits (what a triggered reduce-only order is trimmed to); `None`
    /// for a spot instrument.
    pub(crate) fn ro_free(&self, bi: usize, account: AccountId, side: Side) -> Option<u64> {
        let ip = &self.inst[bi];
        if ip.perp == NO {
            return None;
        }
        let (open, cap) = ro_room(
            self.pos(account, ip.perp),
            self.hot(account, ip.perp).size,
            side,
        );
        Some(cap.saturating_sub(open))
    }

    /// The risk stage's view of the live order `o` in `slot` (risk on).
    #[inline(always)]
    pub(crate) fn leg(&self, o: &Order, slot: u32) -> Leg {
        Leg {
            account: o.account,
            side: o.side,
            reduce_only: o.reduce_only,
            per_lot: self.hold_of(o, slot),
        }
    }

    /// What a reduce-only order of `side` may still reduce: the position on the other side.
    #[inline]
    pub(crate) fn ro_capacity(&self, bi: usize, account: AccountId, side: Side) -> u64 {
        let perp = self.inst[bi].perp;
        if perp == NO {
            return 0;
        }
        let size = self.size(account, perp);
        match side {
            Side::Sell => size.max(0) as u64,
            Side::Buy => size.min(0).unsigned_abs(),
        }
    }

    /// The amount an order holds per lot, and whether it may differ from
    /// [`Risk::plain_per_lot`] at `price` (then it is stored per slot). `crossing_bid`: for a
    /// perpetual sell, the best bid when the order would take liquidity at once (it may fill
    /// up to there), else `None`.
    #[inline(always)]
    fn per_lot(
        &self,
        ip: &InstParams,
        account: AccountId,
        side: Side,
        reduce_only: bool,
        price: PriceTicks,
        crossing_bid: Option<PriceTicks>,
    ) -> (u64, bool) {
        if account == self.liq_account {
            return (0, true);
        }
        if ip.perp == NO {
            return (self.plain_per_lot(ip, side, price), false);
        }
        let pm = match side {
            Side::Buy => price,
            Side::Sell => crossing_bid.map_or(price, |b| b.max(price)),
        };
        if !reduce_only {
            return (self.plain_hold_at(ip, pm), pm != price);
        }
        // Reduce-only: the fee part only. `price * num <= max_price * num <= 2^62` by
        // validation.
        let value = ip.ceil_v((pm as u64).wrapping_mul(ip.num));
        (ppm_up(value, ip.hold_fee_ppm), true)
    }

    /// The hold plan for moving an order from `old_hold` (its current total) to `qty * u`;
    /// `InsufficientBalance` if the increase is more than is available.
    #[inline(always)]
    fn plan(
        &self,
        bal: usize,
        (u, custom): (u64, bool),
        qty: QtyLots,
        old_hold: u128,
    ) -> Result<Hold, RejectReason> {
        let new = u128::from(qty) * u128::from(u);
        if new > old_hold {
            let available = self.bal_row(bal).available.max(0) as u128;
            if new - old_hold > available {
                return Err(RejectReason::InsufficientBalance);
            }
        }
        Ok(Hold {
            u,
            delta: (new as i64).wrapping_sub(old_hold as i64),
            bal,
            custom,
        })
    }

    /// Step 10 of new-order validation (risk on): reduce-only, position limit, balance.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub(crate) fn check_new(
        &self,
        bi: usize,
        account: AccountId,
        side: Side,
        reduce_only: bool,
        price: PriceTicks,
        qty: QtyLots,
        crossing_bid: Option<PriceTicks>,
    ) -> Result<Hold, RejectReason> {
        let ip = &self.inst[bi];
        if ip.perp == NO {
            if reduce_only {
                return Err(RejectReason::InvalidOrderType);
            }
        } else if reduce_only || ip.max_position > 0 {
            let h = self.hot(account, ip.perp);
            if reduce_only {
                let (open, cap) = ro_room(self.pos(account, ip.perp), h.size, side);
                if u128::from(open) + u128::from(qty) > u128::from(cap) {
                    return Err(RejectReason::ReduceOnlyWouldIncrease);
                }
            } else if !self.within_limit(ip, account, h, side, 0, qty) {
                return Err(RejectReason::MaxPositionExceeded);
            }
        }
        let u = self.per_lot(ip, account, side, reduce_only, price, crossing_bid);
        let bal = self.bal_index(account, ip.hold_asset[usize::from(side == Side::Sell)]);
        self.plan(bal, u, qty, 0)
    }

    /// Would the position stay within the limit if every open order of `side` filled, with
    /// `minus` lots of them gone and `plus` lots added?
    #[inline(always)]
    fn within_limit(
        &self,
        ip: &InstParams,
        account: AccountId,
        p: &Hot,
        side: Side,
        minus: u64,
        plus: u64,
    ) -> bool {
        let max = ip.max_position;
        if max == 0 || account == self.liq_account {
            return true;
        }
        let worst = match side {
            Side::Buy => i128::from(p.size) + i128::from(p.open_buy) - i128::from(minus),
            Side::Sell => -i128::from(p.size) + i128::from(p.open_sell) - i128::from(minus),
        } + i128::from(plus);
        worst <= i128::from(max)
    }

    /// Takes the hold of an accepted order (the plan from [`Risk::check_new`]) in `slot`.
    /// The order's `hold_custom` must already be `h.custom`.
    #[inline(always)]
    pub(crate) fn on_accept(&mut self, bi: usize, leg: Leg, slot: u32, qty: QtyLots, h: Hold) {
        self.set_hold(slot, h.u, h.custom);
        let b = self.bal_row_mut(h.bal);
        b.available = b.available.wrapping_sub(h.delta);
        b.held = b.held.wrapping_add(h.delta);
        self.add_open(bi, leg, qty, 0);
    }

    /// Adds `plus` and removes `minus` lots of an order's leaves from its position's open
    /// quantities (perpetuals). Plain orders are counted only under a position limit (the only
    /// rule that reads them); reduce-only orders always.
    #[inline(always)]
    fn add_open(&mut self, bi: usize, leg: Leg, plus: u64, minus: u64) {
        let ip = &self.inst[bi];
        let perp = ip.perp;
        if perp == NO || (!leg.reduce_only && ip.max_position == 0) {
            return;
        }
        let i = self.pos_index(leg.account, perp);
        let h = &mut self.hot[i];
        let open = match (leg.reduce_only, leg.side) {
            (false, Side::Buy) => &mut h.open_buy,
            (false, Side::Sell) => &mut h.open_sell,
            (true, _) => {
                // Reduce-only orders: the row's quantity by side and the total the fill path
                // tests.
                h.ro_open = h.ro_open.wrapping_add(plus).wrapping_sub(minus);
                let p = &mut self.positions[i];
                match leg.side {
                    Side::Buy => &mut p.ro_buy,
                    Side::Sell => &mut p.ro_sell,
                }
            }
        };
        *open = open.wrapping_add(plus).wrapping_sub(minus);
    }

    /// Risk checks of a replace of the live order `o` to `price` / `qty` (after the matching
    /// checks).
    #[inline(always)]
    pub(crate) fn check_replace(
        &self,
        bi: usize,
        o: &Order,
        slot: u32,
        price: PriceTicks,
        qty: QtyLots,
        crossing_bid: Option<PriceTicks>,
    ) -> Result<Hold, RejectReason> {
        let ip = &self.inst[bi];
        let bal = self.bal_index(o.account, ip.hold_asset[usize::from(o.side == Side::Sell)]);
        // `hold_custom` is set on every reduce-only order and every order of the liquidation
        // account (`per_lot`), so a plain order is one without it.
        debug_assert!(o.hold_custom || !(o.reduce_only || o.account == self.liq_account));
        if qty == o.leaves && !o.hold_custom && crossing_bid.is_none() {
            // A move (82% of the exchange-core mix): a plain order to a new price, same
            // quantity, not crossing. No position rule reads it, and both holds come from the
            // per-price table: the general path below, with what it would find known.
            return self.plan_move(ip, bal, o, price);
        }
        // The position is read only when a rule needs it: a reduce-only order, or a larger
        // order under a position limit.
        if ip.perp != NO && (o.reduce_only || (qty > o.leaves && ip.max_position > 0)) {
            let h = self.hot(o.account, ip.perp);
            if o.reduce_only {
                let (open, cap) = ro_room(self.pos(o.account, ip.perp), h.size, o.side);
                if u128::from(open.saturating_sub(o.leaves)) + u128::from(qty) > u128::from(cap) {
                    return Err(RejectReason::ReduceOnlyWouldIncrease);
                }
            } else if !self.within_limit(ip, o.account, h, o.side, o.leaves, qty) {
                return Err(RejectReason::MaxPositionExceeded);
            }
        }
        let u = self.per_lot(ip, o.account, o.side, o.reduce_only, price, crossing_bid);
        let old = u128::from(o.leaves) * u128::from(self.order_hold(ip, o, slot));
        self.plan(bal, u, qty, old)
    }

    /// [`Risk::plan`] for a plain order `o` (not `hold_custom`, not the liquidation
    /// account's) moved to `price` with the same quantity, not crossing: per lot it held what
    /// a plain order at its price holds and will hold what one at `price` does, so the change
    /// is `leaves * (new - old)` (exactly what `plan` computes from the two totals, in the
    /// same wrapping 64-bit result).
    #[inline(always)]
    fn plan_move(
        &self,
        ip: &InstParams,
        bal: usize,
        o: &Order,
        price: PriceTicks,
    ) -> Result<Hold, RejectReason> {
        if ip.perp == NO && o.side == Side::Sell {
            // A spot sell holds its lots wherever it rests: nothing changes.
            return Ok(Hold {
                u: ip.lot,
                delta: 0,
                bal,
                custom: false,
            });
        }
        let old_u = self.plain_hold_valid(ip, o.price);
        let new_u = self.plain_hold_valid(ip, price);
        if new_u > old_u {
            let need = u128::from(o.leaves) * u128::from(new_u - old_u);
            if need > self.bal_row(bal).available.max(0) as u128 {
                return Err(RejectReason::InsufficientBalance);
            }
        }
        Ok(Hold {
            u: new_u,
            delta: o.leaves.wrapping_mul(new_u.wrapping_sub(old_u)) as i64,
            bal,
            custom: false,
        })
    }

    /// Applies a checked replace of the order in `slot` (`leg`, `leaves` before) to `qty`;
    /// the caller sets the order's `hold_custom` to `h.custom`.
    #[inline(always)]
    pub(crate) fn on_replace(
        &mut self,
        bi: usize,
        leg: Leg,
        leaves: QtyLots,
        slot: u32,
        qty: QtyLots,
        h: Hold,
    ) {
        self.set_hold(slot, h.u, h.custom);
        if h.delta != 0 {
            // (A spot sell moves without touching its balance row: it holds its lots.)
            let b = self.bal_row_mut(h.bal);
            b.available = b.available.wrapping_sub(h.delta);
            b.held = b.held.wrapping_add(h.delta);
        }
        if qty != leaves {
            self.add_open(bi, leg, qty, leaves);
        }
    }

    /// An order lost `qty` lots of leaves without trading: release their hold.
    #[inline]
    pub(crate) fn release(&mut self, bi: usize, leg: Leg, qty: QtyLots) {
        let amount = (u128::from(qty) * u128::from(leg.per_lot)) as i64;
        let asset = self.hold_asset(bi, leg.side);
        // A live order's account and its book's hold asset: a valid row.
        let i = self.bal_index(leg.account, asset);
        let b = self.bal_row_mut(i);
        b.available = b.available.wrapping_add(amount);
        b.held = b.held.wrapping_sub(amount);
        self.add_open(bi, leg, 0, qty);
    }

    /// Settles one fill: fees, the exchange of assets (spot) or the position changes
    /// (perpetual), releasing what the two orders no longer need. Emits [`RiskEvent::Fees`].
    #[inline]
    pub(crate) fn settle<S: EventSink>(&mut self, bi: usize, f: &FillInfo, sink: &mut S) {
        let ip = &self.inst[bi];
        let (kind, lot) = (ip.kind, ip.lot);
        // `price * qty * num <= max_price * max_qty * num <= 2^62` by validation.
        let exact = (f.price as u64).wrapping_mul(f.qty).wrapping_mul(ip.num);
        let n_ceil = ip.ceil_v(exact);
        let n_floor = ip.floor_v(exact);
        let maker_rate = ip.fee(self.tiers[f.maker.account as usize]);
        let taker_rate = ip.fee(self.tiers[f.taker.account as usize]);
        let mut taker_fee = ppm_up(n_ceil, u64::from(taker_rate.taker_ppm));
        let mut maker_fee = ppm_up(n_ceil, maker_rate.maker_ppm.max(0) as u64);
        if let Kind::Spot { .. } = kind {
            // The seller pays its fee out of its proceeds: never more than them.
            match f.taker.side {
                Side::Sell => taker_fee = taker_fee.min(n_floor),
                Side::Buy => maker_fee = maker_fee.min(n_floor),
            }
        }
        let mut maker_fee = maker_fee as i64;
        if maker_rate.maker_ppm < 0 {
            // A rebate, never more than the taker fee of the same fill.
            let rebate = ppm_down(n_floor, u64::from(maker_rate.maker_ppm.unsigned_abs()));
            maker_fee = -(rebate.min(taker_fee) as i64);
        }
        let taker_fee = taker_fee as i64;
        let fee_total = maker_fee.wrapping_add(taker_fee);
        let asset = match kind {
            Kind::Spot { base, quote } => {
                let (buyer, buyer_fee, seller, seller_fee) = match f.taker.side {
                    Side::Buy => (f.taker, taker_fee, f.maker, maker_fee),
                    Side::Sell => (f.maker, maker_fee, f.taker, taker_fee),
                };
                let q = u128::from(f.qty);
                let base_qty = f.qty.wrapping_mul(lot) as i64;
                let (n_ceil, n_floor) = (n_ceil as i64, n_floor as i64);
                let bu = (q * u128::from(buyer.per_lot)) as i64;
                let b = self.bal_mut(buyer.account, quote);
                b.held = b.held.wrapping_sub(bu);
                b.available = b
                    .available
                    .wrapping_add(bu.wrapping_sub(n_ceil).wrapping_sub(buyer_fee));
                let b = self.bal_mut(buyer.account, base);
                b.available = b.available.wrapping_add(base_qty);
                let su = (q * u128::from(seller.per_lot)) as i64;
                let b = self.bal_mut(seller.account, base);
                b.held = b.held.wrapping_sub(su);
                b.available = b.available.wrapping_sub(base_qty.wrapping_sub(su));
                let b = self.bal_mut(seller.account, quote);
                b.available = b.available.wrapping_add(n_floor.wrapping_sub(seller_fee));
                let fee_account = self.fee_account;
                let b = self.bal_mut(fee_account, quote);
                b.available = b
                    .available
                    .wrapping_add(n_ceil.wrapping_sub(n_floor).wrapping_add(fee_total));
                quote
            }
            Kind::Perp { settle, perp } => {
                self.settle_leg(bi, settle, perp, f.maker, f.price, f.qty, maker_fee);
                self.settle_leg(bi, settle, perp, f.taker, f.price, f.qty, taker_fee);
                let fee_account = self.fee_account;
                let b = self.bal_mut(fee_account, settle);
                b.available = b.available.wrapping_add(fee_total);
                let venue = &mut self.perps[perp as usize].venue;
                venue.fees = venue.fees.wrapping_add(fee_total);
                settle
            }
        };
        sink.emit_risk(RiskEvent::Fees {
            instrument: f.instrument,
            trade_id: f.trade_id,
            asset: self.asset_ids[asset as usize],
            maker_fee,
            taker_fee,
        });
    }

    /// One side of a perpetual fill: release the order's hold for `qty`, pay `fee`, move the
    /// position and its locked margin (released pro rata when it shrinks, locked at the fill
    /// price for what it grows), and queue reduce-only trimming if it shrank.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn settle_leg(
        &mut self,
        bi: usize,
        settle: u32,
        perp: u32,
        leg: Leg,
        price: PriceTicks,
        qty: QtyLots,
        fee: i64,
    ) {
        let released = (u128::from(qty) * u128::from(leg.per_lot)) as i64;
        let ip = &self.inst[bi];
        let (num, den, im_ppm, limited) = (ip.num, ip.den, ip.im_ppm, ip.max_position > 0);
        let exempt = leg.account == self.liq_account;
        let pi = self.pos_index(leg.account, perp);
        let dq = match leg.side {
            Side::Buy => qty as i64,
            Side::Sell => (qty as i64).wrapping_neg(),
        };
        let p = &mut self.hot[pi];
        // The filled lots leave the open quantities (`add_open(bi, leg, 0, qty)`, on the
        // record already at hand).
        if leg.reduce_only {
            p.ro_open = p.ro_open.wrapping_sub(qty);
            let q = &mut self.positions[pi];
            match leg.side {
                Side::Buy => q.ro_buy = q.ro_buy.wrapping_sub(qty),
                Side::Sell => q.ro_sell = q.ro_sell.wrapping_sub(qty),
            }
        } else if limited {
            match leg.side {
                Side::Buy => p.open_buy = p.open_buy.wrapping_sub(qty),
                Side::Sell => p.open_sell = p.open_sell.wrapping_sub(qty),
            }
        }
        let (s0, cost0) = (p.size, p.cost);
        p.size = s0.wrapping_add(dq);
        let (s1, ro_open) = (p.size, p.ro_open);
        p.fees = p.fees.wrapping_sub(fee);
        p.cost = cost0.wrapping_add(i128::from(dq) * i128::from(price));
        let (grow, shrink) = if s0 == 0 || (s0 > 0) == (dq > 0) {
            (qty, 0)
        } else if qty <= s0.unsigned_abs() {
            (0, qty)
        } else {
            (qty - s0.unsigned_abs(), s0.unsigned_abs())
        };
        let unlock = if shrink == 0 {
            0
        } else if shrink == s0.unsigned_abs() {
            p.margin
        } else if let Some(x) = u64::try_from(p.margin)
            .ok()
            .and_then(|m| m.checked_mul(s1.unsigned_abs()))
        {
            // Keep the remaining share, rounded up; in 64 bits when the product fits (always,
            // in practice: a 128-bit division is a library call of about a hundred cycles).
            p.margin.wrapping_sub(x.div_ceil(s0.unsigned_abs()) as i64)
        } else {
            // Keep the remaining share, rounded up.
            let keep = (i128::from(p.margin) * i128::from(s1.unsigned_abs()))
                .div_euclid(i128::from(s0.unsigned_abs()))
                + i128::from(
                    (i128::from(p.margin) * i128::from(s1.unsigned_abs()))
                        .rem_euclid(i128::from(s0.unsigned_abs()))
                        != 0,
                );
            p.margin.wrapping_sub(keep as i64)
        };
        let lock = if grow == 0 || exempt {
            0
        } else {
            let value = (price as u64).wrapping_mul(grow).wrapping_mul(num);
            let value = if den == 1 { value } else { value.div_ceil(den) };
            ppm_up(value, im_ppm) as i64
        };
        p.margin = p.margin.wrapping_sub(unlock).wrapping_add(lock);
        // A position that was not flat and settled is listed already (an invariant), so the
        // rest of the row is read only for one that was, or one with reduce-only orders.
        let opened = s0 == 0 && cost0 == 0 && (s1 != 0 || p.cost != 0);
        if opened | (ro_open != 0) {
            let q = &self.positions[pi];
            let trim = ro_open != 0
                && (q.ro_sell > s1.max(0) as u64 || q.ro_buy > s1.min(0).unsigned_abs());
            let needs_list = opened && !q.listed;
            if trim && !q.queued && self.trim.len() < self.trim.capacity() {
                self.positions[pi].queued = true;
                self.trim.push(pi as u32);
            }
            if needs_list {
                self.list(leg.account, perp);
            }
        }
        let b = self.bal_mut(leg.account, settle);
        let net_lock = lock.wrapping_sub(unlock);
        b.held = b.held.wrapping_sub(released).wrapping_add(net_lock);
        b.available = b
            .available
            .wrapping_add(released.wrapping_sub(fee))
            .wrapping_sub(net_lock);
    }
}
