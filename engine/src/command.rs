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
    /// The crypto order types (triggers, GTD, iceberg, post-only slide, close-position, OCO);
    /// [`OrderExt::NONE`] for a plain order.
    pub ext: OrderExt,
}

/// What a [`NewOrder`] may add to a plain limit / market order. Every field's zero value means
/// "not used"; the rules are "Engine semantics" in `docs/ARCHITECTURE.md`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct OrderExt {
    /// A stop / take-profit: the order waits in the instrument's trigger book, holding no book
    /// position, and enters as a taker when the trigger fires.
    pub trigger: Option<Trigger>,
    /// GTD (`tif == Gtd` only, required then): the sequencer timestamp at which the order is
    /// cancelled with [`crate::CancelReason::Expired`]; must be above the command's `ts_ns`.
    pub expire_ts_ns: u64,
    /// Iceberg: the quantity shown on the book (`0 < display_qty < qty`; 0: not an iceberg).
    pub display_qty: QtyLots,
    /// With `post_only`: an order that would take is re-priced one tick behind the opposite
    /// best instead of being rejected ([`crate::Event::Slid`]).
    pub post_only_slide: bool,
    /// Trigger orders with risk on, perpetuals only: when it fires, the order's quantity
    /// becomes what closes the account's position (reduce-only is implied).
    pub close_position: bool,
    /// One-cancels-the-other: the live order of the same account and instrument this one is
    /// paired with (0: none).
    pub oco_cl_ord_id: ClientOrderId,
}

impl OrderExt {
    /// A plain order.
    pub const NONE: OrderExt = OrderExt {
        trigger: None,
        expire_ts_ns: 0,
        display_qty: 0,
        post_only_slide: false,
        close_position: false,
        oco_cl_ord_id: 0,
    };

    /// Whether anything is set (the fast path skips every extension when not).
    #[inline]
    pub fn is_plain(&self) -> bool {
        // Field by field, one OR of the words and two flags: cheaper than the derived `==`.
        self.trigger.is_none()
            && (self.expire_ts_ns | self.display_qty | self.oco_cl_ord_id) == 0
            && !(self.post_only_slide | self.close_position)
    }
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
    /// Time: does nothing but let its timestamp expire GTD orders (every command's `ts_ns`
    /// does that before it is applied; the sequencer sends a tick when nothing else arrives).
    Tick,
}
