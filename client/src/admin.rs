//! Admin requests: the operator's risk inputs (deposits, withdrawals, mark prices, funding,
//! liquidations, fee tiers), sent over an ordinary session of an account the node's accounts
//! file marks `admin = true` (see `docs/PROTOCOL.md`, "Admin requests").
//!
//! Each is answered, once it is sequenced, durable and applied, by `AdminAccepted` (a fee tier
//! for every shard: one per shard) or by `OrderRejected` naming the `request_id` in `cl_ord_id`
//! (`NotAuthorized` from a non-admin session or for a shard the node lacks; the engine's
//! reasons: `DuplicateRequest`, `InsufficientBalance`, `UnknownAsset`, `NoMarkPrice`, ...).
//! Balance changes reach the account's own connected session as `BalanceUpdate` replies.
//!
//! ```no_run
//! use tpx_client::{admin, Client, ClientConfig, token_from_str};
//! let cfg = ClientConfig::new("127.0.0.1:9100".parse().unwrap(), 100, 1, token_from_str("admin"));
//! let mut c = Client::connect(cfg).unwrap();
//! // 1,000 USDT (asset 1, 6 decimals) to account 1 on shard 0, request id 1.
//! let a = c.admin(&admin::deposit(1, 1, 1, 1_000_000_000, 0), std::time::Duration::from_secs(5));
//! ```

use std::time::{Duration, Instant};

use tpx_wire::admin::{
    AdminAccepted, AdminApplyFunding, AdminDeposit, AdminLiquidate, AdminSetFeeTier,
    AdminSetMarkPrice, AdminWithdraw,
};
use tpx_wire::order_entry::ClientMessage;
use tpx_wire::replies::{BalanceUpdate, OrderRejected, ServerMessage};

use crate::{Client, ClientError, Result};

/// A fee tier request for every shard (one `AdminAccepted` per shard).
pub const ALL_SHARDS: u16 = 0xFFFF;

/// Credit `amount` minor units of `asset` to `account` on `shard`.
pub fn deposit(
    request_id: u64,
    account: u32,
    asset: u32,
    amount: u64,
    shard: u16,
) -> ClientMessage {
    ClientMessage::AdminDeposit(AdminDeposit {
        request_id,
        amount,
        account,
        asset,
        shard,
    })
}

/// Debit `amount` minor units of `asset` from `account` on `shard`, if available.
pub fn withdraw(
    request_id: u64,
    account: u32,
    asset: u32,
    amount: u64,
    shard: u16,
) -> ClientMessage {
    ClientMessage::AdminWithdraw(AdminWithdraw {
        request_id,
        amount,
        account,
        asset,
        shard,
    })
}

/// A perpetual's mark price (ticks).
pub fn set_mark_price(request_id: u64, instrument: u32, price: i64) -> ClientMessage {
    ClientMessage::AdminSetMarkPrice(AdminSetMarkPrice {
        request_id,
        price,
        instrument,
    })
}

/// Funding at the current mark (ppm; positive: longs pay shorts).
pub fn apply_funding(request_id: u64, instrument: u32, rate_ppm: i64) -> ClientMessage {
    ClientMessage::AdminApplyFunding(AdminApplyFunding {
        request_id,
        rate_ppm,
        instrument,
    })
}

/// Liquidate `account`'s position on a perpetual; the liquidation account closes it with IOC
/// order `cl_ord_id` at `price`.
pub fn liquidate(
    request_id: u64,
    account: u32,
    instrument: u32,
    cl_ord_id: u64,
    price: i64,
) -> ClientMessage {
    ClientMessage::AdminLiquidate(AdminLiquidate {
        request_id,
        cl_ord_id,
        price,
        account,
        instrument,
    })
}

/// Put `account` in fee tier `tier` on `shard` (or [`ALL_SHARDS`]).
pub fn set_fee_tier(request_id: u64, account: u32, tier: u8, shard: u16) -> ClientMessage {
    ClientMessage::AdminSetFeeTier(AdminSetFeeTier {
        request_id,
        account,
        shard,
        tier,
    })
}

/// The `request_id` of an admin request (`None`: not one).
pub fn request_id_of(m: &ClientMessage) -> Option<u64> {
    Some(match m {
        ClientMessage::AdminDeposit(m) => m.request_id,
        ClientMessage::AdminWithdraw(m) => m.request_id,
        ClientMessage::AdminSetMarkPrice(m) => m.request_id,
        ClientMessage::AdminApplyFunding(m) => m.request_id,
        ClientMessage::AdminLiquidate(m) => m.request_id,
        ClientMessage::AdminSetFeeTier(m) => m.request_id,
        _ => return None,
    })
}

/// The node's answer to an admin request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdminAnswer {
    Accepted(AdminAccepted),
    Rejected(OrderRejected),
}

/// What an admin session receives besides its answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdminEvent {
    Answer(AdminAnswer),
    /// A balance of the session's own account changed.
    Balance(BalanceUpdate),
}

/// The admin event in a reply, if it is one (`request_id`: only answers naming it).
pub fn admin_event(m: &ServerMessage, request_id: Option<u64>) -> Option<AdminEvent> {
    let want = |id: u64| request_id.is_none_or(|r| r == id);
    match m {
        ServerMessage::AdminAccepted(a) if want(a.request_id) => {
            Some(AdminEvent::Answer(AdminAnswer::Accepted(*a)))
        }
        ServerMessage::OrderRejected(r) if want(r.cl_ord_id) && is_admin_kind(r.request as u8) => {
            Some(AdminEvent::Answer(AdminAnswer::Rejected(*r)))
        }
        ServerMessage::BalanceUpdate(b) => Some(AdminEvent::Balance(*b)),
        _ => None,
    }
}

fn is_admin_kind(kind: u8) -> bool {
    (20..=25).contains(&kind)
}

impl Client {
    /// Sends an admin request and waits (parked) up to `timeout` for its answer; other replies
    /// received meanwhile are dropped (use [`Client::admin_with`] to see them).
    pub fn admin(&mut self, msg: &ClientMessage, timeout: Duration) -> Result<AdminAnswer> {
        self.admin_with(msg, timeout, |_| {})
    }

    /// [`Client::admin`], handing every other reply to `other`.
    pub fn admin_with(
        &mut self,
        msg: &ClientMessage,
        timeout: Duration,
        mut other: impl FnMut(&ServerMessage),
    ) -> Result<AdminAnswer> {
        let id = request_id_of(msg).ok_or(ClientError::Protocol("not an admin request"))?;
        self.send(msg)?;
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ClientError::Timeout);
            }
            let m = self.recv(left)?;
            match admin_event(&m, Some(id)) {
                Some(AdminEvent::Answer(a)) => return Ok(a),
                _ => other(&m),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tpx_wire::enums::{RejectReason, RequestKind};

    #[test]
    fn answers_are_matched_by_request_id_and_kind() {
        let rej = |cl_ord_id, request| {
            ServerMessage::OrderRejected(OrderRejected {
                seq: 1,
                timestamp_ns: 0,
                cl_ord_id,
                reason: RejectReason::NotAuthorized,
                request,
            })
        };
        assert!(matches!(
            admin_event(&rej(5, RequestKind::AdminDeposit), Some(5)),
            Some(AdminEvent::Answer(AdminAnswer::Rejected(_)))
        ));
        assert_eq!(
            admin_event(&rej(5, RequestKind::AdminDeposit), Some(6)),
            None
        );
        assert_eq!(admin_event(&rej(5, RequestKind::EnterOrder), Some(5)), None);
        assert_eq!(request_id_of(&deposit(7, 1, 1, 10, 0)), Some(7));
        assert_eq!(request_id_of(&set_fee_tier(8, 1, 1, ALL_SHARDS)), Some(8));
        assert_eq!(request_id_of(&crate::req::mass_cancel(None)), None);
    }
}
