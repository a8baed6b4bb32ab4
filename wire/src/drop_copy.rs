//! Drop copy: the execution reports of other accounts, copied to a read-only session of a
//! drop-copy account (a firm's risk desk), sequenced in that session's own numbering and
//! replayed like any session's replies. See `docs/PROTOCOL.md` ("Drop copy").

use crate::enums::ExecType;
use crate::header::{schema::ORDER_ENTRY, template};

crate::wire_message! {
    /// A copy of one execution report of a watched account (sequenced in the drop-copy
    /// session's stream).
    pub struct ExecutionCopy = template template::EXECUTION_COPY, schema ORDER_ENTRY, size 96 {
        /// The drop-copy session's sequence number.
        8 => seq: u64,
        /// Sequencer timestamp of the record that caused the report.
        16 => timestamp_ns: u64,
        /// The order's client order id (a replace: the new one).
        24 => cl_ord_id: u64,
        /// Order id.
        32 => order_id: u64,
        /// Trade id (`Executed`; else 0).
        40 => trade_id: u64,
        /// `Accepted`, `Replaced`: the order's price; `Executed`: the trade's; `Cancelled`: 0.
        48 => price: i64,
        /// `Accepted`, `Replaced`: the order's quantity; `Executed`: lots filled; `Cancelled`:
        /// lots cancelled.
        56 => qty: u64,
        /// Lots still open after it.
        64 => leaves_qty: u64,
        /// `Executed`: this side's fee in the settle asset (negative: a rebate); else 0.
        72 => fee: i64,
        /// The account whose report this is.
        80 => account: u32,
        /// The session of that account whose stream holds the original (0: none, e.g. a
        /// liquidation's order).
        84 => session_id: u32,
        /// Instrument id.
        88 => instrument: u32,
        /// Which report.
        92 => exec_type: ExecType,
        /// `Side` (1 buy, 2 sell) for `Accepted` and `Executed`; 0 for the others.
        93 => side: u8,
        /// `Executed`: the `Liquidity` (1 maker, 2 taker); `Cancelled`: the `CancelReason`;
        /// `Replaced`: 1 if the order kept its time priority, else 0; `Accepted`: 0.
        94 => detail: u8,
    }
    reserved [95..96]
}
