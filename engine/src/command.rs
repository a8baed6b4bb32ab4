//! Commands: the sequenced inputs the engine applies, one at a time, in log order.

use crate::types::*;

/// A new order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewOrder {
    pub account: AccountId,
    pub cl_ord_id: ClientOrderId,
    pub instrument: InstrumentId,
    pub side: Side,
    pub kind: OrderKind,
    /// Limit price, or the protection price of a market order (the worst price it may trade at).
    pub price: PriceTicks,
    pub qty: QtyLots,
    pub tif: TimeInForce,
    /// Rejected with [`crate::RejectReason::PostOnlyWouldTake`] if it would take liquidity.
    pub post_only: bool,
    /// May only reduce a perpetual position (enforced once accounts and risk land).
    pub reduce_only: bool,
    pub stp: StpMode,
}

/// Cancel an order, whole (`remaining_qty == 0`) or down to `remaining_qty` lots of leaves quantity,
/// keeping its time priority (OUCH's cancel-down).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cancel {
    pub account: AccountId,
    pub cl_ord_id: ClientOrderId,
    pub remaining_qty: QtyLots,
}

/// Replace an order: the order is found by `orig_cl_ord_id` and from now on known by
/// `new_cl_ord_id` (which may equal the original). `qty` is the new leaves quantity. A new price
/// or a larger quantity loses time priority; the same price with a smaller quantity keeps it.
/// The replaced order may cross and trade as a taker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Replace {
    pub account: AccountId,
    pub orig_cl_ord_id: ClientOrderId,
    pub new_cl_ord_id: ClientOrderId,
    pub price: PriceTicks,
    pub qty: QtyLots,
}

/// Cancel every live order of an account, or of an account on one instrument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MassCancel {
    pub account: AccountId,
    pub instrument: Option<InstrumentId>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    NewOrder(NewOrder),
    Cancel(Cancel),
    Replace(Replace),
    MassCancel(MassCancel),
    /// Admin: set the reference price and the band (basis points either side) outside which limit
    /// prices are rejected. `band_bps == 0` disables the band.
    SetReferencePrice {
        instrument: InstrumentId,
        price: PriceTicks,
        band_bps: u32,
    },
    /// Admin: halt trading on an instrument (new orders and replaces are rejected, cancels work).
    Halt {
        instrument: InstrumentId,
    },
    /// Admin: resume trading on an instrument.
    Resume {
        instrument: InstrumentId,
    },
}
