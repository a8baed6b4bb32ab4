//! The risk state in snapshots and in the state hash.

use std::collections::HashSet;

use crate::engine::Engine;
use crate::hash::StateHasher;
use crate::instrument::AssetId;
use crate::types::*;

use super::config::RiskConfigError;
use super::state::*;
use super::types::VenueLedger;

/// The risk part of an [`crate::EngineSnapshot`]. Only non-default records are listed. The open
/// and reduce-only quantities of positions are not stored: restore recomputes them from the
/// orders.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct RiskSnapshot {
    /// Ascending account.
    pub accounts: Vec<AccountRiskSnapshot>,
    /// Ascending `(account, asset)`.
    pub balances: Vec<BalanceSnapshot>,
    /// Ascending instrument id.
    pub perpetuals: Vec<PerpetualSnapshot>,
    /// Per asset, ascending id: deposits minus withdrawals, which the balances must add up to
    /// (restore checks it).
    pub net_deposits: Vec<(AssetId, i128)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccountRiskSnapshot {
    pub account: AccountId,
    pub tier: u8,
    pub last_request_id: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BalanceSnapshot {
    pub account: AccountId,
    pub asset: AssetId,
    pub available: i64,
    pub held: i64,
    pub margin_call: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PerpetualSnapshot {
    pub instrument: InstrumentId,
    /// 0: none yet.
    pub mark: PriceTicks,
    pub venue: VenueLedger,
    /// The last funding id applied (0: none).
    pub last_funding_id: u64,
    /// Listed positions first, in list order (the order settlement and funding walk), then the
    /// other non-default records in ascending account.
    pub positions: Vec<PositionSnapshot>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PositionSnapshot {
    pub account: AccountId,
    pub size: i64,
    pub cost: i128,
    pub margin: i64,
    pub realized_pnl: i64,
    pub fees: i64,
    pub funding: i64,
    /// On the perpetual's list of open positions.
    pub listed: bool,
}

/// Why the risk part of a snapshot could not be restored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RiskRestoreError {
    /// The risk configuration is invalid.
    Config(RiskConfigError),
    /// A risk state for an engine with risk off.
    RiskStateWithoutRisk,
    /// No risk state for an engine with risk on.
    MissingRiskState,
    /// An order holds something on an engine with risk off.
    HoldWithoutRisk {
        order_id: OrderId,
    },
    UnknownAccount {
        account: AccountId,
    },
    DuplicateAccount {
        account: AccountId,
    },
    InvalidFeeTier {
        account: AccountId,
        tier: u8,
    },
    UnknownAsset {
        asset: AssetId,
    },
    /// An asset listed twice in `net_deposits`.
    DuplicateAsset {
        asset: AssetId,
    },
    DuplicateBalance {
        account: AccountId,
        asset: AssetId,
    },
    /// Not a perpetual of this engine.
    UnknownPerpetual {
        instrument: InstrumentId,
    },
    DuplicatePerpetual {
        instrument: InstrumentId,
    },
    MissingPerpetual {
        instrument: InstrumentId,
    },
    InvalidMark {
        instrument: InstrumentId,
    },
    DuplicatePosition {
        account: AccountId,
        instrument: InstrumentId,
    },
    /// The restored state breaks an invariant (holds, totals, lists, reduce-only, limits).
    Inconsistent(String),
}

impl Engine {
    pub(crate) fn risk_snapshot(&self) -> Option<RiskSnapshot> {
        let r = &self.risk;
        if !r.on() {
            return None;
        }
        let accounts = r
            .accounts
            .iter()
            .zip(&r.tiers)
            .enumerate()
            .filter(|(_, (a, &tier))| **a != Acct::default() || tier != 0)
            .map(|(account, (a, &tier))| AccountRiskSnapshot {
                account: account as AccountId,
                tier,
                last_request_id: a.last_request_id,
            })
            .collect();
        let n_assets = r.n_assets();
        let balances = r
            .balances
            .iter()
            .enumerate()
            .filter(|&(i, b)| *b != Bal::default() || r.flags[i])
            .map(|(i, b)| BalanceSnapshot {
                account: (i / n_assets) as AccountId,
                asset: r.asset_ids[i % n_assets],
                available: b.available,
                held: b.held,
                margin_call: r.flags[i],
            })
            .collect();
        let perpetuals = (0..r.n_perps as u32)
            .map(|perp| {
                let ps = &r.perps[perp as usize];
                let view = |account: AccountId| {
                    let p = r.pos(account, perp);
                    let h = r.hot(account, perp);
                    PositionSnapshot {
                        account,
                        size: h.size,
                        cost: h.cost,
                        margin: h.margin,
                        realized_pnl: p.realized,
                        fees: h.fees,
                        funding: p.funding,
                        listed: p.listed,
                    }
                };
                let mut positions = Vec::new();
                let mut account = ps.head;
                while account != NO {
                    positions.push(view(account));
                    account = r.pos(account, perp).next;
                }
                for account in 0..r.accounts.len() as AccountId {
                    let p = r.pos(account, perp);
                    if !p.listed && !p.is_default_ignoring_open(r.hot(account, perp)) {
                        positions.push(view(account));
                    }
                }
                PerpetualSnapshot {
                    instrument: ps.instrument,
                    mark: ps.mark,
                    venue: ps.venue,
                    last_funding_id: ps.last_funding_id,
                    positions,
                }
            })
            .collect();
        let net_deposits = r
            .asset_ids
            .iter()
            .zip(&r.net_deposits)
            .map(|(&a, &n)| (a, n))
            .collect();
        Some(RiskSnapshot {
            accounts,
            balances,
            perpetuals,
            net_deposits,
        })
    }

    /// Restores the risk part (orders and their holds are already in place).
    pub(crate) fn restore_risk(&mut self, s: &RiskSnapshot) -> Result<(), RiskRestoreError> {
        use RiskRestoreError as E;
        let max_accounts = self.max_accounts;
        let r = &mut self.risk;
        let known = |account: AccountId| {
            if account < max_accounts {
                Ok(())
            } else {
                Err(E::UnknownAccount { account })
            }
        };
        let mut seen = HashSet::new();
        for a in &s.accounts {
            known(a.account)?;
            if !seen.insert(a.account) {
                return Err(E::DuplicateAccount { account: a.account });
            }
            if a.tier >= r.fee_tiers {
                return Err(E::InvalidFeeTier {
                    account: a.account,
                    tier: a.tier,
                });
            }
            r.accounts[a.account as usize] = Acct {
                last_request_id: a.last_request_id,
            };
            r.tiers[a.account as usize] = a.tier;
        }
        let mut seen = HashSet::new();
        for b in &s.balances {
            known(b.account)?;
            let asset = r
                .asset_index(b.asset)
                .ok_or(E::UnknownAsset { asset: b.asset })?;
            if !seen.insert((b.account, asset)) {
                return Err(E::DuplicateBalance {
                    account: b.account,
                    asset: b.asset,
                });
            }
            let i = r.bal_index(b.account, asset);
            r.balances[i] = Bal {
                available: b.available,
                held: b.held,
            };
            r.flags[i] = b.margin_call;
        }
        let mut seen = HashSet::new();
        for &(asset, net) in &s.net_deposits {
            let a = r.asset_index(asset).ok_or(E::UnknownAsset { asset })?;
            if !seen.insert(a) {
                return Err(E::DuplicateAsset { asset });
            }
            r.net_deposits[a as usize] = net;
        }
        let mut seen = vec![false; r.n_perps];
        for ps in &s.perpetuals {
            let perp = r
                .perps
                .iter()
                .position(|p| p.instrument == ps.instrument)
                .ok_or(E::UnknownPerpetual {
                    instrument: ps.instrument,
                })?;
            if std::mem::replace(&mut seen[perp], true) {
                return Err(E::DuplicatePerpetual {
                    instrument: ps.instrument,
                });
            }
            if ps.mark < 0 {
                return Err(E::InvalidMark {
                    instrument: ps.instrument,
                });
            }
            r.perps[perp].mark = ps.mark;
            r.perps[perp].venue = ps.venue;
            r.perps[perp].last_funding_id = ps.last_funding_id;
            let mut accounts = HashSet::new();
            for p in &ps.positions {
                known(p.account)?;
                if !accounts.insert(p.account) {
                    return Err(E::DuplicatePosition {
                        account: p.account,
                        instrument: ps.instrument,
                    });
                }
                {
                    let h = r.hot_mut(p.account, perp as u32);
                    h.size = p.size;
                    h.cost = p.cost;
                    h.margin = p.margin;
                    h.fees = p.fees;
                    let q = r.pos_mut(p.account, perp as u32);
                    q.realized = p.realized_pnl;
                    q.funding = p.funding;
                }
                if p.listed {
                    r.list(p.account, perp as u32);
                }
            }
        }
        if let Some(perp) = seen.iter().position(|s| !s) {
            return Err(E::MissingPerpetual {
                instrument: r.perps[perp].instrument,
            });
        }
        // The open quantities, from the live orders (pending trigger orders count for nothing
        // until they fire; an iceberg counts its hidden part too).
        let orders = &self.store.slab.orders;
        for (slot, o) in orders.iter().enumerate() {
            if o.leaves == 0 || o.ext & crate::ext::EXT_PENDING != 0 {
                continue;
            }
            let leaves = crate::triggers::total_leaves(&self.store, slot as u32);
            let limited = r.inst[o.book as usize].max_position > 0;
            if let Kind::Perp { perp, .. } = r.inst[o.book as usize].kind {
                if !o.reduce_only && !limited {
                    continue;
                }
                let i = r.pos_index(o.account, perp);
                let h = &mut r.hot[i];
                let p = &mut r.positions[i];
                if o.reduce_only {
                    h.ro_open += leaves;
                }
                let open = match (o.reduce_only, o.side) {
                    (false, Side::Buy) => &mut h.open_buy,
                    (false, Side::Sell) => &mut h.open_sell,
                    (true, Side::Buy) => &mut p.ro_buy,
                    (true, Side::Sell) => &mut p.ro_sell,
                };
                *open += leaves;
            }
        }
        self.check_risk().map_err(E::Inconsistent)
    }

    /// The risk words of the state hash (risk on), after the books': see
    /// `docs/ARCHITECTURE.md`, "Accounts and risk".
    pub(crate) fn hash_risk(&self, h: &mut StateHasher) {
        let r = &self.risk;
        let orders = &self.store.slab.orders;
        for book in &self.books {
            for ladder in [&book.bids, &book.asks] {
                for idx in ladder.iter_levels() {
                    for slot in ladder.iter_level_orders(orders, idx) {
                        let o = &orders[slot as usize];
                        h.word(u64::from(o.reduce_only));
                        h.word(r.hold_of(o, slot));
                    }
                }
            }
        }
        let s = self.risk_snapshot().unwrap_or_default();
        h.word(s.accounts.len() as u64);
        for a in &s.accounts {
            h.word(u64::from(a.account));
            h.word(u64::from(a.tier));
            h.word(a.last_request_id);
        }
        h.word(s.balances.len() as u64);
        for b in &s.balances {
            h.word(u64::from(b.account));
            h.word(u64::from(b.asset));
            h.signed(b.available);
            h.signed(b.held);
            h.word(u64::from(b.margin_call));
        }
        for p in &s.perpetuals {
            h.word(u64::from(p.instrument));
            h.signed(p.mark);
            h.signed(p.venue.pnl);
            h.signed(p.venue.fees);
            h.signed(p.venue.funding);
            h.word(p.last_funding_id);
            h.word(p.positions.len() as u64);
            for q in &p.positions {
                h.word(u64::from(q.account));
                h.signed(q.size);
                h.word(q.cost as u64);
                h.word((q.cost >> 64) as u64);
                h.signed(q.margin);
                h.signed(q.realized_pnl);
                h.signed(q.fees);
                h.signed(q.funding);
                h.word(u64::from(q.listed));
            }
        }
    }
}

impl Pos {
    /// Nothing to export: no size, cost, margin or fees (from the position's [`Hot`] record)
    /// and no other cumulative flows (open quantities are derived from the orders).
    pub(crate) fn is_default_ignoring_open(&self, h: &Hot) -> bool {
        h.size == 0
            && h.cost == 0
            && h.margin == 0
            && self.realized == 0
            && h.fees == 0
            && self.funding == 0
    }
}
