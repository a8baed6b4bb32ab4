//! Admin requests (client → server) and their acknowledgement: the operator's risk inputs
//! (deposits, withdrawals, mark prices, funding, liquidations, fee tiers) sent over an
//! order-entry session of an account the node's accounts file marks `admin = true`.
//!
//! Each becomes the input-log record of the same name (`crate::log_record`) and so the engine's
//! `RiskCommand`. `request_id` is echoed in the answer (`AdminAccepted`, or `OrderRejected` with
//! it in `cl_ord_id`); for deposits and withdrawals it is also the engine's idempotency key
//! (strictly increasing per account, shared by both). Balances live per shard (see
//! `docs/ARCHITECTURE.md`, "Across shards"), so a deposit, withdrawal or fee tier names its shard.

use crate::enums::RequestKind;
use crate::header::{schema::ORDER_ENTRY, template};

crate::wire_message! {
    /// Credit an account's balance of an asset on one shard.
    pub struct AdminDeposit = template template::ADMIN_DEPOSIT, schema ORDER_ENTRY, size 40 {
        /// Request id: echoed in the answer; the idempotency key (strictly increasing per account).
        8 => request_id: u64 [nonzero],
        /// Minor units of the asset (the engine rejects 0).
        16 => amount: u64,
        /// Account credited.
        24 => account: u32,
        /// Asset id.
        28 => asset: u32,
        /// Shard whose balance is credited.
        32 => shard: u16,
    }
    reserved [34..40]
}

crate::wire_message! {
    /// Debit an account's balance of an asset on one shard if that much is available.
    pub struct AdminWithdraw = template template::ADMIN_WITHDRAW, schema ORDER_ENTRY, size 40 {
        /// Request id: echoed in the answer; the idempotency key (strictly increasing per account).
        8 => request_id: u64 [nonzero],
        /// Minor units of the asset (the engine rejects 0).
        16 => amount: u64,
        /// Account debited.
        24 => account: u32,
        /// Asset id.
        28 => asset: u32,
        /// Shard whose balance is debited.
        32 => shard: u16,
    }
    reserved [34..40]
}

crate::wire_message! {
    /// A perpetual's mark price (variation margin and maintenance checks on its shard).
    pub struct AdminSetMarkPrice = template template::ADMIN_SET_MARK_PRICE, schema ORDER_ENTRY, size 32 {
        /// Request id, echoed in the answer.
        8 => request_id: u64 [nonzero],
        /// Mark price in ticks, within the instrument's `min_price..=max_price` (else `InvalidPrice`).
        16 => price: i64,
        /// Instrument id (a perpetual).
        24 => instrument: u32,
    }
    reserved [28..32]
}

crate::wire_message! {
    /// Funding at the current mark on every open position of a perpetual.
    pub struct AdminApplyFunding = template template::ADMIN_APPLY_FUNDING, schema ORDER_ENTRY, size 32 {
        /// Request id, echoed in the answer, and the funding id: strictly increasing per perpetual.
        8 => request_id: u64 [nonzero],
        /// Funding rate in parts per million, positive: longs pay shorts (|rate| <= 10^6).
        16 => rate_ppm: i64,
        /// Instrument id (a perpetual).
        24 => instrument: u32,
    }
    reserved [28..32]
}

crate::wire_message! {
    /// Liquidate an account's position on a perpetual: its orders there are cancelled, the
    /// position moves to the liquidation account, which sends IOC order `cl_ord_id` at `price`.
    pub struct AdminLiquidate = template template::ADMIN_LIQUIDATE, schema ORDER_ENTRY, size 40 {
        /// Request id, echoed in the answer.
        8 => request_id: u64 [nonzero],
        /// Client order id of the liquidation account's closing IOC order.
        16 => cl_ord_id: u64 [nonzero],
        /// Limit price of that order, ticks.
        24 => price: i64,
        /// Account whose position is taken over.
        32 => account: u32,
        /// Instrument id (a perpetual).
        36 => instrument: u32,
    }
    reserved []
}

crate::wire_message! {
    /// Put an account into a fee tier on one shard or on all of them.
    pub struct AdminSetFeeTier = template template::ADMIN_SET_FEE_TIER, schema ORDER_ENTRY, size 24 {
        /// Request id, echoed in the answer.
        8 => request_id: u64 [nonzero],
        /// Account id.
        16 => account: u32,
        /// Shard, or 0xFFFF for every shard (one `AdminAccepted` per shard).
        20 => shard: u16,
        /// Fee tier (the engine rejects one at or above its configured number of tiers).
        22 => tier: u8,
    }
    reserved [23..24]
}

crate::wire_message! {
    /// An admin request was applied (sequenced, durable, and accepted by the engine).
    pub struct AdminAccepted = template template::ADMIN_ACCEPTED, schema ORDER_ENTRY, size 56 {
        /// Session sequence number.
        8 => seq: u64,
        /// Sequencer timestamp, ns since the Unix epoch.
        16 => timestamp_ns: u64,
        /// The request's request_id.
        24 => request_id: u64,
        /// Deposit and withdrawal: the account's available balance of the asset on the shard after it; else 0.
        32 => available: i64,
        /// Deposit and withdrawal: the account's held balance of the asset on the shard after it; else 0.
        40 => held: i64,
        /// The account the request named (0 for mark price and funding).
        48 => account: u32,
        /// The shard that applied it.
        52 => shard: u16,
        /// Which request this answers.
        54 => request: RequestKind,
    }
    reserved [55..56]
}
