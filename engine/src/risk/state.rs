//! The risk state machine's tables, built once from the configuration, and the integer
//! arithmetic they use.
//!
//! Amounts are `i64` minor units; intermediate products are `u128` / `i128`. Rounding never
//! creates money: holds and charges round up, payouts round down, and what rounding leaves over
//! goes to the fee account.

use crate::config::EngineConfig;
use crate::instrument::{AssetId, InstrumentKind};
use crate::memory::Table;
use crate::slab::Order;
use crate::types::*;

use super::config::*;
use super::types::VenueLedger;

/// "None" in the risk tables' links and indexes.
pub(crate) const NO: u32 = u32::MAX;

/// One account's balance of one asset.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Bal {
    pub available: i64,
    pub held: i64,
}

/// Everything the order path reads and writes of one account's position on one perpetual,
/// in one cache line of a dense table of its own (`account * perpetuals + perp` like
/// [`Pos`]): a new order's position-limit check and the open quantities every plain order
/// updates under a limit (new orders, cancels), and what a fill settles (size, cost, locked
/// margin, fees). So a fill's leg touches one line of positions, not two, and the rest of the
/// position ([`Pos`]) stays out of the cache unless reduce-only orders, the list of open
/// positions, marks or funding need it. With 1,000 accounts and 4 perpetuals that is 256 KB.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C, align(64))]
pub(crate) struct Hot {
    /// Lots, positive long.
    pub size: i64,
    /// Leaves of live plain orders by side (counted only under a position limit).
    pub open_buy: u64,
    pub open_sell: u64,
    /// `ro_buy + ro_sell` of the position row: 0 (the usual case) lets a fill skip the
    /// reduce-only trim check without reading them.
    pub ro_open: u64,
    /// Signed value at entry prices since the last settlement, in tick-lots.
    pub cost: i128,
    /// Initial margin locked for the position (counted in the settle asset's `held`).
    pub margin: i64,
    /// Cumulative fees, negative when paid.
    pub fees: i64,
}

const _: () = assert!(std::mem::size_of::<Hot>() == 64);

/// The rest of one account's position on one perpetual: reduce-only quantities, the list
/// links and flags, and the cumulative flows that only marks and funding touch. A fill reads
/// it only when the position was flat and settled before (to list it) or has reduce-only
/// orders (to trim them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Pos {
    /// Leaves of live reduce-only orders by side.
    pub ro_buy: u64,
    pub ro_sell: u64,
    /// Previous and next account in the perpetual's list of open positions.
    pub prev: u32,
    pub next: u32,
    /// On the list (size or cost not zero, or not yet settled since it was).
    pub listed: bool,
    /// In the trim queue.
    pub queued: bool,
    pub realized: i64,
    pub funding: i64,
}

const _: () = assert!(std::mem::size_of::<Pos>() == 48);

pub(crate) const EMPTY_POS: Pos = Pos {
    ro_buy: 0,
    ro_sell: 0,
    prev: NO,
    next: NO,
    listed: false,
    queued: false,
    realized: 0,
    funding: 0,
};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Acct {
    pub last_request_id: u64,
}

/// What an instrument trades, with asset indexes resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Spot { base: u32, quote: u32 },
    Perp { settle: u32, perp: u32 },
}

/// Per book (engine book index): everything settlement and the checks need.
#[derive(Clone, Copy, Debug)]
pub(crate) struct InstParams {
    pub kind: Kind,
    /// The asset an order holds, by side (`[buy, sell]`).
    pub hold_asset: [u32; 2],
    /// The perpetual index, `NO` for a spot pair.
    pub perp: u32,
    /// Value of a tick-lot: `num / den` minor units (reduced).
    pub num: u64,
    pub den: u64,
    /// Spot: base minor units per lot.
    pub lot: u64,
    pub fees: [FeeRate; MAX_FEE_TIERS],
    pub n_fees: u8,
    /// The lowest price of the book's ladder and where its entries start in
    /// [`Risk::plain_hold`].
    pub min_price: PriceTicks,
    pub table_base: usize,
    /// The largest fee rate of any tier (what orders hold for fees).
    pub hold_fee_ppm: u64,
    pub im_ppm: u64,
    pub mm_ppm: u64,
    pub max_position: u64,
}

impl InstParams {
    #[inline]
    pub(crate) fn fee(&self, tier: u8) -> FeeRate {
        self.fees[(tier.min(self.n_fees - 1)) as usize]
    }

    /// `ceil(x / den)` for the order path, where every value (`price * qty * num` with
    /// `price <= max_price`, `qty <= max_qty`) fits a `u64` by validation.
    #[inline(always)]
    pub(crate) fn ceil_v(&self, x: u64) -> u64 {
        if self.den == 1 {
            x
        } else {
            x.div_ceil(self.den)
        }
    }

    /// `floor(x / den)` for the order path.
    #[inline(always)]
    pub(crate) fn floor_v(&self, x: u64) -> u64 {
        if self.den == 1 {
            x
        } else {
            x / self.den
        }
    }

    /// `ceil(x / den)`: a value in tick-lot units times `num`, rounded up to minor units.
    #[inline]
    pub(crate) fn ceil_value(&self, x: u128) -> u128 {
        if self.den == 1 {
            x
        } else {
            div_ceil(x, u128::from(self.den))
        }
    }
}

/// Per perpetual.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PerpState {
    /// Engine book index.
    pub book: u32,
    pub instrument: InstrumentId,
    pub settle: u32,
    /// 0: no mark yet.
    pub mark: PriceTicks,
    /// First and last account of the list of open positions.
    pub head: u32,
    pub tail: u32,
    pub venue: VenueLedger,
    /// The last funding id applied (0: none).
    pub last_funding_id: u64,
}

/// The risk state machine. With risk off every table is empty and `on` is false; the matching
/// code tests `on` before calling in.
#[derive(Clone, Debug)]
pub(crate) struct Risk {
    pub on: bool,
    /// Asset index -> id, ascending id.
    pub asset_ids: Vec<AssetId>,
    pub n_perps: usize,
    /// Per engine book index.
    pub inst: Vec<InstParams>,
    /// Per perpetual index (ascending instrument id).
    pub perps: Vec<PerpState>,
    /// `account * assets + asset`.
    pub balances: Vec<Bal>,
    pub flags: Vec<bool>,
    /// `account * perpetuals + perp`.
    pub positions: Vec<Pos>,
    /// The order path's part of each position, indexed like `positions`.
    pub hot: Vec<Hot>,
    pub accounts: Vec<Acct>,
    /// Per account: its fee tier (one byte each, apart from `accounts`: every fill reads two
    /// and the table stays in L1).
    pub tiers: Vec<u8>,
    /// Per book and ladder price (`table_base + price - min_price`): what a plain order (not
    /// reduce-only, not the liquidation account's) holds per lot at that price, buy side (a
    /// spot sell holds `lot`; a perpetual's sell holds what a buy at the same price does).
    /// Computed once by [`Risk::new`]: a table lookup on the order path instead of two
    /// rate multiplications and divisions per order and move. 8 bytes per ladder level, a
    /// sixth of what the ladder itself takes (two 24-byte level slots per price).
    pub plain_hold: Vec<u64>,
    /// Per order slot: amount held per lot of leaves, written and read only for orders
    /// flagged `hold_custom` (see [`Risk::hold_of`]). Faulted in when built (`vec![0; n]`
    /// would leave its pages to the first custom hold of each).
    pub hold: Table<u64>,
    /// Positions (`account * perpetuals + perp`) whose reduce-only orders may exceed what
    /// they can reduce; drained at the end of each command. Capacity `max_orders + 1`.
    pub trim: Vec<u32>,
    /// Per asset: deposits minus withdrawals (what the balances must add up to).
    pub net_deposits: Vec<i128>,
    pub fee_account: AccountId,
    pub liq_account: AccountId,
    pub fee_tiers: u8,
}

impl Risk {
    pub(crate) fn off() -> Risk {
        Risk {
            on: false,
            asset_ids: Vec::new(),
            n_perps: 0,
            inst: Vec::new(),
            perps: Vec::new(),
            balances: Vec::new(),
            flags: Vec::new(),
            positions: Vec::new(),
            hot: Vec::new(),
            accounts: Vec::new(),
            tiers: Vec::new(),
            plain_hold: Vec::new(),
            hold: Table::zeroed(0),
            trim: Vec::new(),
            net_deposits: Vec::new(),
            fee_account: 0,
            liq_account: 0,
            fee_tiers: 1,
        }
    }

    /// Validates `rc` against the (validated) engine configuration and builds the tables.
    /// `specs` are the engine's instruments sorted by id (= book order).
    pub(crate) fn new(cfg: &EngineConfig, rc: &RiskConfig) -> Result<Risk, RiskConfigError> {
        let mut specs = cfg.instruments.clone();
        specs.sort_by_key(|s| s.id);
        if rc.assets.len() > MAX_ASSETS {
            return Err(RiskConfigError::TooManyAssets {
                assets: rc.assets.len(),
            });
        }
        let mut asset_ids = rc.assets.clone();
        asset_ids.sort_unstable();
        if let Some(w) = asset_ids.windows(2).find(|w| w[0] == w[1]) {
            return Err(RiskConfigError::DuplicateAsset { asset: w[0] });
        }
        if rc.fee_tiers == 0 || rc.fee_tiers as usize > MAX_FEE_TIERS {
            return Err(RiskConfigError::InvalidFeeTiers {
                fee_tiers: rc.fee_tiers,
            });
        }
        for account in [rc.fee_account, rc.liquidation_account] {
            if account >= cfg.max_accounts || rc.fee_account == rc.liquidation_account {
                return Err(RiskConfigError::InvalidVenueAccount { account });
            }
        }
        for (i, r) in rc.instruments.iter().enumerate() {
            if rc.instruments[..i]
                .iter()
                .any(|x| x.instrument == r.instrument)
            {
                return Err(RiskConfigError::DuplicateInstrument {
                    instrument: r.instrument,
                });
            }
        }
        let asset_index = |instrument, asset: AssetId| {
            asset_ids
                .binary_search(&asset)
                .map(|i| i as u32)
                .map_err(|_| RiskConfigError::UnknownAsset { instrument, asset })
        };
        let mut inst = Vec::with_capacity(specs.len());
        let mut perps = Vec::new();
        for (bi, spec) in specs.iter().enumerate() {
            let id = spec.id;
            let r = rc
                .instruments
                .iter()
                .find(|r| r.instrument == id)
                .ok_or(RiskConfigError::MissingInstrument { instrument: id })?;
            if r.value_num == 0 || r.value_den == 0 {
                return Err(RiskConfigError::InvalidValue { instrument: id });
            }
            let g = gcd(r.value_num, r.value_den);
            let (num, den) = (r.value_num / g, r.value_den / g);
            let max_price = spec.max_price.max(0) as u128;
            let too_large = |qty: u64| max_price * u128::from(qty) * u128::from(num) > MAX_NOTIONAL;
            if too_large(spec.max_qty) || too_large(r.max_position) {
                return Err(RiskConfigError::NotionalTooLarge { instrument: id });
            }
            let bad_fees = r.fees.is_empty()
                || r.fees.len() > MAX_FEE_TIERS
                || r.fees.iter().any(|f| {
                    u64::from(f.taker_ppm) > PPM || u64::from(f.maker_ppm.unsigned_abs()) > PPM
                });
            if bad_fees {
                return Err(RiskConfigError::InvalidFees { instrument: id });
            }
            let mut fees = [FeeRate::default(); MAX_FEE_TIERS];
            fees[..r.fees.len()].copy_from_slice(&r.fees);
            let hold_fee_ppm = r
                .fees
                .iter()
                .map(|f| u64::from(f.taker_ppm).max(f.maker_ppm.max(0) as u64))
                .max()
                .unwrap_or(0);
            let kind = match spec.kind {
                InstrumentKind::Spot { base, quote } => Kind::Spot {
                    base: asset_index(id, base)?,
                    quote: asset_index(id, quote)?,
                },
                InstrumentKind::LinearPerp { settle } => {
                    let settle = asset_index(id, settle)?;
                    if r.maintenance_margin_ppm > r.initial_margin_ppm
                        || u64::from(r.initial_margin_ppm) > PPM
                    {
                        return Err(RiskConfigError::InvalidMargin { instrument: id });
                    }
                    perps.push(PerpState {
                        book: bi as u32,
                        instrument: id,
                        settle,
                        mark: 0,
                        head: NO,
                        tail: NO,
                        venue: VenueLedger::default(),
                        last_funding_id: 0,
                    });
                    Kind::Perp {
                        settle,
                        perp: perps.len() as u32 - 1,
                    }
                }
            };
            let (hold_asset, perp) = match kind {
                Kind::Spot { base, quote } => ([quote, base], NO),
                Kind::Perp { settle, perp } => ([settle, settle], perp),
            };
            inst.push(InstParams {
                kind,
                hold_asset,
                perp,
                num,
                den,
                lot: spec.lot_size,
                fees,
                n_fees: r.fees.len() as u8,
                min_price: spec.min_price,
                table_base: 0,
                hold_fee_ppm,
                im_ppm: u64::from(r.initial_margin_ppm),
                mm_ppm: u64::from(r.maintenance_margin_ppm),
                max_position: r.max_position,
            });
        }
        let mut plain_hold = Vec::new();
        for (ip, spec) in inst.iter_mut().zip(&specs) {
            ip.table_base = plain_hold.len();
            // Every price of the ladder (validation bounds it by `MAX_LADDER_LEVELS`).
            for price in spec.min_price.max(1)..=spec.max_price {
                let value = ip.ceil_v((price as u64).wrapping_mul(ip.num));
                plain_hold.push(match ip.kind {
                    Kind::Spot { .. } => value + ppm_up(value, ip.hold_fee_ppm),
                    Kind::Perp { .. } => ppm_up(value, ip.im_ppm) + ppm_up(value, ip.hold_fee_ppm),
                });
            }
            ip.min_price = spec.min_price.max(1);
        }
        let accounts = cfg.max_accounts as usize;
        let n_assets = asset_ids.len();
        Ok(Risk {
            on: true,
            n_perps: perps.len(),
            balances: vec![Bal::default(); accounts * n_assets],
            flags: vec![false; accounts * n_assets],
            positions: vec![EMPTY_POS; accounts * perps.len()],
            hot: vec![Hot::default(); accounts * perps.len()],
            accounts: vec![Acct::default(); accounts],
            tiers: vec![0; accounts],
            plain_hold,
            hold: Table::zeroed(cfg.max_orders as usize),
            trim: Vec::with_capacity(cfg.max_orders as usize + 1),
            net_deposits: vec![0; n_assets],
            asset_ids,
            inst,
            perps,
            fee_account: rc.fee_account,
            liq_account: rc.liquidation_account,
            fee_tiers: rc.fee_tiers,
        })
    }

    #[inline]
    pub(crate) fn on(&self) -> bool {
        self.on
    }

    #[inline]
    pub(crate) fn n_assets(&self) -> usize {
        self.asset_ids.len()
    }

    /// Asset index of an asset id.
    pub(crate) fn asset_index(&self, asset: AssetId) -> Option<u32> {
        self.asset_ids.binary_search(&asset).ok().map(|i| i as u32)
    }

    #[inline]
    pub(crate) fn bal_index(&self, account: AccountId, asset: u32) -> usize {
        account as usize * self.n_assets() + asset as usize
    }

    /// Balance row `i` from [`Risk::bal_index`] of a validated account (below `max_accounts`:
    /// every command checks it on entry; a live order's account was) and an asset index of an
    /// instrument's `hold_asset`: no bounds check. Hand-written for the move path.
    #[inline(always)]
    pub(crate) fn bal_row(&self, i: usize) -> &Bal {
        debug_assert!(i < self.balances.len());
        // SAFETY: `balances` has `max_accounts * n_assets` rows and `i = account * n_assets +
        // asset` with `account < max_accounts` and `asset < n_assets` (see above).
        unsafe { self.balances.get_unchecked(i) }
    }

    /// [`Risk::bal_row`], mutable.
    #[inline(always)]
    pub(crate) fn bal_row_mut(&mut self, i: usize) -> &mut Bal {
        debug_assert!(i < self.balances.len());
        // SAFETY: as in `bal_row`.
        unsafe { self.balances.get_unchecked_mut(i) }
    }

    #[inline]
    pub(crate) fn bal(&self, account: AccountId, asset: u32) -> &Bal {
        &self.balances[self.bal_index(account, asset)]
    }

    #[inline]
    pub(crate) fn bal_mut(&mut self, account: AccountId, asset: u32) -> &mut Bal {
        let i = self.bal_index(account, asset);
        &mut self.balances[i]
    }

    /// Starts loading what the risk check of an order of `account` on book `bi` will read (on
    /// a perpetual its [`Hot`] record, and its balance row), so that the cache misses overlap
    /// with the matching engine's own lookups (the client-id index) instead of following them.
    /// A hint only.
    #[inline(always)]
    pub(crate) fn prefetch(&self, bi: usize, account: AccountId) {
        let Some(ip) = self.inst.get(bi) else {
            return;
        };
        if ip.perp != NO {
            if let Some(h) = self.hot.get(self.pos_index(account, ip.perp)) {
                prefetch_line(h as *const Hot as *const u8);
            }
        }
        if let Some(b) = self.balances.get(account as usize * self.n_assets()) {
            prefetch_line(b as *const Bal as *const u8);
        }
    }

    /// What a fill of a maker of `account` settles: the same lines as [`Risk::prefetch`] (the
    /// [`Hot`] record holds what a fill changes of the position).
    #[inline(always)]
    pub(crate) fn prefetch_fill(&self, bi: usize, account: AccountId) {
        self.prefetch(bi, account);
    }

    #[inline]
    pub(crate) fn pos_index(&self, account: AccountId, perp: u32) -> usize {
        account as usize * self.n_perps + perp as usize
    }

    #[inline]
    pub(crate) fn pos(&self, account: AccountId, perp: u32) -> &Pos {
        &self.positions[self.pos_index(account, perp)]
    }

    #[inline]
    pub(crate) fn pos_mut(&mut self, account: AccountId, perp: u32) -> &mut Pos {
        let i = self.pos_index(account, perp);
        &mut self.positions[i]
    }

    #[inline]
    pub(crate) fn hot(&self, account: AccountId, perp: u32) -> &Hot {
        &self.hot[self.pos_index(account, perp)]
    }

    #[inline]
    pub(crate) fn hot_mut(&mut self, account: AccountId, perp: u32) -> &mut Hot {
        let i = self.pos_index(account, perp);
        &mut self.hot[i]
    }

    /// A position's size.
    #[inline]
    pub(crate) fn size(&self, account: AccountId, perp: u32) -> i64 {
        self.hot(account, perp).size
    }

    /// What a plain order (not reduce-only, not the liquidation account's) of `side` at
    /// `price` on a book with parameters `ip` holds per lot: a spot sell its lot, anything
    /// else the per-price table's entry.
    #[inline(always)]
    pub(crate) fn plain_per_lot(&self, ip: &InstParams, side: Side, price: PriceTicks) -> u64 {
        if ip.perp == NO && side == Side::Sell {
            ip.lot
        } else {
            self.plain_hold_at(ip, price)
        }
    }

    /// What a plain order holds per lot at `price` (a validated price of the book, so in the
    /// table; computed as [`Risk::new`] fills the table should it not be).
    #[inline(always)]
    pub(crate) fn plain_hold_at(&self, ip: &InstParams, price: PriceTicks) -> u64 {
        let i = ip
            .table_base
            .wrapping_add(price.wrapping_sub(ip.min_price) as usize);
        match self.plain_hold.get(i) {
            Some(&u) if price >= ip.min_price => u,
            _ => plain_hold_slow(ip, price),
        }
    }

    /// The amount held per lot by the live order `o` in `slot` (0 with risk off): the
    /// per-slot table's entry for an order flagged `hold_custom`, else what a plain order at
    /// its price holds (recomputed, not stored: the move path then reads no per-slot table).
    #[inline(always)]
    pub(crate) fn hold_of(&self, o: &Order, slot: u32) -> u64 {
        match self.inst.get(o.book as usize) {
            Some(ip) => self.order_hold(ip, o, slot),
            None => 0,
        }
    }

    /// [`Risk::plain_hold_at`] for a price already validated against the book's range (a
    /// resting order's, or a request's after `check_price`): no range check, no bounds check.
    /// Hand-written for the move path (82% of the exchange-core mix), where the two checked
    /// lookups cost about 10 instructions a move.
    #[inline(always)]
    pub(crate) fn plain_hold_valid(&self, ip: &InstParams, price: PriceTicks) -> u64 {
        let i = ip
            .table_base
            .wrapping_add(price.wrapping_sub(ip.min_price) as usize);
        debug_assert!(price >= ip.min_price && i < self.plain_hold.len());
        // SAFETY: `Risk::new` gives every book one entry per price from `table_base`, for
        // every price in `ip.min_price (= max(spec.min_price, 1))..=spec.max_price`, and callers
        // pass only prices inside that range (validated by `Book::check_price` on entry, which
        // also refuses prices <= 0, or a resting order's, which was; restored orders are
        // validated by `Engine::restore`), so `i` is in bounds.
        unsafe { *self.plain_hold.get_unchecked(i) }
    }

    /// [`Risk::hold_of`] for an order of the book with parameters `ip` (risk on).
    #[inline(always)]
    pub(crate) fn order_hold(&self, ip: &InstParams, o: &Order, slot: u32) -> u64 {
        if o.hold_custom {
            self.hold.get(slot as usize).copied().unwrap_or(0)
        } else {
            self.plain_per_lot(ip, o.side, o.price)
        }
    }

    /// Records that the order in `slot` holds `per_lot` from now on; `custom`: it is not what
    /// [`Risk::plain_per_lot`] gives for it (the caller sets the order's `hold_custom` to it).
    #[inline(always)]
    pub(crate) fn set_hold(&mut self, slot: u32, per_lot: u64, custom: bool) {
        if custom {
            self.hold[slot as usize] = per_lot;
        }
    }

    /// Restores the hold of order `o` in `slot` from a snapshot (risk on); returns the order's
    /// `hold_custom`.
    pub(crate) fn restore_hold(&mut self, o: &Order, slot: u32, per_lot: u64) -> bool {
        // Reduce-only orders and the liquidation account's are always flagged (the move path
        // relies on it), even where their hold happens to equal a plain order's.
        let custom = match self.inst.get(o.book as usize) {
            Some(ip) => {
                o.reduce_only
                    || o.account == self.liq_account
                    || self.plain_per_lot(ip, o.side, o.price) != per_lot
            }
            None => true,
        };
        self.set_hold(slot, per_lot, custom);
        custom
    }

    /// The asset an order of `side` on book `bi` holds.
    #[inline(always)]
    pub(crate) fn hold_asset(&self, bi: usize, side: Side) -> u32 {
        self.inst[bi].hold_asset[usize::from(side == Side::Sell)]
    }

    /// Appends a position to its perpetual's list of open positions.
    pub(crate) fn list(&mut self, account: AccountId, perp: u32) {
        let tail = self.perps[perp as usize].tail;
        {
            let p = self.pos_mut(account, perp);
            debug_assert!(!p.listed);
            p.listed = true;
            p.prev = tail;
            p.next = NO;
        }
        if tail == NO {
            self.perps[perp as usize].head = account;
        } else {
            self.pos_mut(tail, perp).next = account;
        }
        self.perps[perp as usize].tail = account;
    }

    /// Takes a position off its perpetual's list.
    pub(crate) fn unlist(&mut self, account: AccountId, perp: u32) {
        let (prev, next) = {
            let p = self.pos_mut(account, perp);
            p.listed = false;
            let links = (p.prev, p.next);
            p.prev = NO;
            p.next = NO;
            links
        };
        if prev == NO {
            self.perps[perp as usize].head = next;
        } else {
            self.pos_mut(prev, perp).next = next;
        }
        if next == NO {
            self.perps[perp as usize].tail = prev;
        } else {
            self.pos_mut(next, perp).prev = prev;
        }
    }
}

/// What a plain order holds per lot at `price`, computed (as [`Risk::new`] fills the
/// per-price table) for a price outside the table, which validation never lets through.
#[cold]
#[inline(never)]
fn plain_hold_slow(ip: &InstParams, price: PriceTicks) -> u64 {
    // `price * num <= max_price * num <= 2^62` by validation.
    let value = ip.ceil_v((price as u64).wrapping_mul(ip.num));
    let margin = if ip.perp == NO {
        value
    } else {
        ppm_up(value, ip.im_ppm)
    };
    margin + ppm_up(value, ip.hold_fee_ppm)
}

/// `ceil(x / d)`, `d > 0`, with a 64-bit fast path.
#[inline(always)]
pub(crate) fn div_ceil(x: u128, d: u128) -> u128 {
    if (x | d) >> 64 == 0 {
        u128::from((x as u64).div_ceil(d as u64))
    } else {
        x.div_ceil(d)
    }
}

/// `ceil(x * ppm / 10^6)`.
#[inline(always)]
pub(crate) fn ppm_ceil(x: u128, ppm: u64) -> u128 {
    if ppm == 0 || x == 0 {
        return 0;
    }
    let y = x.saturating_mul(u128::from(ppm));
    if y >> 64 == 0 {
        u128::from((y as u64).div_ceil(PPM))
    } else {
        y.div_ceil(u128::from(PPM))
    }
}

/// `ceil(x * ppm / 10^6)` for `ppm <= 10^6` (so the result fits): one widening multiply.
#[inline(always)]
pub(crate) fn ppm_up(x: u64, ppm: u64) -> u64 {
    let y = u128::from(x) * u128::from(ppm);
    if y >> 64 == 0 {
        (y as u64).div_ceil(PPM)
    } else {
        y.div_ceil(u128::from(PPM)) as u64
    }
}

/// `floor(x * ppm / 10^6)` for `ppm <= 10^6`.
#[inline(always)]
pub(crate) fn ppm_down(x: u64, ppm: u64) -> u64 {
    let y = u128::from(x) * u128::from(ppm);
    if y >> 64 == 0 {
        y as u64 / PPM
    } else {
        (y / u128::from(PPM)) as u64
    }
}

/// `floor(a * n / d)` for signed `a`, `n, d > 0`, exact wherever the result fits (saturating
/// beyond): `a = q*d + r` with `0 <= r < d`, so `a*n/d = q*n + r*n/d` and `r*n < 2^128`.
pub(crate) fn mul_div_floor(a: i128, n: u64, d: u64) -> i128 {
    let d128 = i128::from(d);
    let q = a.div_euclid(d128);
    let r = a.rem_euclid(d128) as u128;
    let frac = (r * u128::from(n) / u128::from(d)) as i128;
    q.saturating_mul(i128::from(n)).saturating_add(frac)
}

/// Clamps an `i128` amount into the `i64` balances (unreachable within the validated bounds).
#[inline]
pub(crate) fn to_i64(x: i128) -> i64 {
    x.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// A prefetch hint for the cache line at `p` (nothing on targets without one). Never faults:
/// the pointer comes from a live reference.
#[inline(always)]
fn prefetch_line(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `_mm_prefetch` is a hint: it never faults, even for invalid addresses, and `p`
    // points into a live table anyway.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p as *const i8);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
