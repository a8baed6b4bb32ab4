//! [`Order`]: a builder for new orders of every type the engine has: limit and market
//! (GTC / IOC / FOK / GTD), post-only (reject or slide), reduce-only, iceberg, stop and
//! take-profit triggers on the last or the mark price, close-position, OCO pairs.
//!
//! [`Order::message`] sends a plain order as `EnterOrder` (16) and anything with an order-type
//! field as `EnterOrderExt` (26); the rules are "Engine semantics" in `docs/ARCHITECTURE.md`
//! and the fields `docs/PROTOCOL.md`.
//!
//! ```
//! use tpx_client::order::{Order, PriceSource};
//! use tpx_wire::enums::Side;
//! // Sell stop-market: when a trade prints at or below 64 500, sell 5 lots at no worse than 60 000.
//! let stop = Order::market(11, 1, Side::Sell, 60_000, 5).stop(64_500, PriceSource::Last);
//! // Its take-profit partner on the mark price, one-cancels-the-other with it.
//! let tp = Order::limit(12, 1, Side::Sell, 70_000, 5)
//!     .take_profit(70_000, PriceSource::Mark)
//!     .oco_with(11);
//! // A GTD iceberg showing 2 lots at a time.
//! let ice = Order::limit(13, 1, Side::Buy, 64_000, 10).iceberg(2).gtd(1_900_000_000_000_000_000);
//! for o in [stop, tp, ice] {
//!     let _msg = o.message();
//! }
//! ```

use tpx_wire::enums::{OrderKind, Side, StpMode, TimeInForce, TriggerType};
use tpx_wire::order_entry::{ClientMessage, EnterOrder, EnterOrderExt};

/// The price a trigger watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PriceSource {
    /// The instrument's last trade price.
    Last,
    /// The perpetual's mark price.
    Mark,
}

/// A new order being built (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Order(pub EnterOrderExt);

impl Order {
    /// A GTC limit order.
    pub fn limit(cl_ord_id: u64, instrument: u32, side: Side, price: i64, qty: u64) -> Order {
        Order(EnterOrderExt::plain(&EnterOrder {
            cl_ord_id,
            price,
            qty,
            instrument,
            side,
            kind: OrderKind::Limit,
            tif: TimeInForce::Gtc,
            stp: StpMode::None,
            post_only: false,
            reduce_only: false,
        }))
    }

    /// An IOC market order that trades no worse than `protection_price`.
    pub fn market(
        cl_ord_id: u64,
        instrument: u32,
        side: Side,
        protection_price: i64,
        qty: u64,
    ) -> Order {
        let mut o = Order::limit(cl_ord_id, instrument, side, protection_price, qty);
        o.0.kind = OrderKind::Market;
        o.0.tif = TimeInForce::Ioc;
        o
    }

    /// Immediate or cancel.
    pub fn ioc(mut self) -> Order {
        self.0.tif = TimeInForce::Ioc;
        self
    }

    /// Fill or kill.
    pub fn fok(mut self) -> Order {
        self.0.tif = TimeInForce::Fok;
        self
    }

    /// Good till date: cancelled (`Expired`) once the sequencer's timestamp reaches
    /// `expire_ts_ns` (ns since the Unix epoch).
    pub fn gtd(mut self, expire_ts_ns: u64) -> Order {
        self.0.tif = TimeInForce::Gtd;
        self.0.expire_ts_ns = expire_ts_ns;
        self
    }

    /// Post-only: rejected (`PostOnlyWouldTake`) if it would take liquidity.
    pub fn post_only(mut self) -> Order {
        self.0.post_only = true;
        self
    }

    /// Post-only that slides: re-priced one tick behind the opposite best instead of rejected
    /// (`OrderSlid` says so).
    pub fn post_only_slide(mut self) -> Order {
        self.0.post_only = true;
        self.0.post_only_slide = true;
        self
    }

    /// Reduce-only (perpetuals).
    pub fn reduce_only(mut self) -> Order {
        self.0.reduce_only = true;
        self
    }

    /// Self-trade prevention mode.
    pub fn stp(mut self, mode: StpMode) -> Order {
        self.0.stp = mode;
        self
    }

    /// An iceberg showing `display_qty` lots at a time.
    pub fn iceberg(mut self, display_qty: u64) -> Order {
        self.0.display_qty = display_qty;
        self
    }

    /// A stop: waits until `source` moves against the position side (a buy stop fires when the
    /// price rises to `trigger_price`, a sell stop when it falls to it), then enters as built.
    pub fn stop(self, trigger_price: i64, source: PriceSource) -> Order {
        let rises = self.0.side == Side::Buy;
        self.trigger(trigger_price, source, rises)
    }

    /// A take-profit: a sell fires when the price rises to `trigger_price`, a buy when it falls.
    pub fn take_profit(self, trigger_price: i64, source: PriceSource) -> Order {
        let rises = self.0.side == Side::Sell;
        self.trigger(trigger_price, source, rises)
    }

    /// Any trigger: fires when `source` reaches `trigger_price` from below (`rises`) or above.
    pub fn trigger(mut self, trigger_price: i64, source: PriceSource, rises: bool) -> Order {
        self.0.trigger = match (source, rises) {
            (PriceSource::Last, true) => TriggerType::LastRisesTo,
            (PriceSource::Last, false) => TriggerType::LastFallsTo,
            (PriceSource::Mark, true) => TriggerType::MarkRisesTo,
            (PriceSource::Mark, false) => TriggerType::MarkFallsTo,
        };
        self.0.trigger_price = trigger_price;
        self
    }

    /// A trigger order that, when it fires, closes the account's whole position (perpetuals,
    /// risk on; reduce-only is implied).
    pub fn close_position(mut self) -> Order {
        self.0.close_position = true;
        self
    }

    /// One-cancels-the-other with the account's live order `other_cl_ord_id` (same instrument
    /// and side).
    pub fn oco_with(mut self, other_cl_ord_id: u64) -> Order {
        self.0.oco_cl_ord_id = other_cl_ord_id;
        self
    }

    /// Whether no order-type field is set (it fits an `EnterOrder`).
    pub fn is_plain(&self) -> bool {
        let o = &self.0;
        o.trigger == TriggerType::None
            && o.trigger_price == 0
            && o.expire_ts_ns == 0
            && o.display_qty == 0
            && o.oco_cl_ord_id == 0
            && !o.post_only_slide
            && !o.close_position
            && o.tif != TimeInForce::Gtd
    }

    /// The request: `EnterOrder` for a plain order, else `EnterOrderExt`.
    pub fn message(&self) -> ClientMessage {
        let o = &self.0;
        if self.is_plain() {
            ClientMessage::EnterOrder(EnterOrder {
                cl_ord_id: o.cl_ord_id,
                price: o.price,
                qty: o.qty,
                instrument: o.instrument,
                side: o.side,
                kind: o.kind,
                tif: o.tif,
                stp: o.stp,
                post_only: o.post_only,
                reduce_only: o.reduce_only,
            })
        } else {
            ClientMessage::EnterOrderExt(*o)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_orders_stay_enter_order_and_types_go_ext() {
        let plain = Order::limit(1, 1, Side::Buy, 100, 2).post_only().ioc();
        assert!(
            matches!(plain.message(), ClientMessage::EnterOrder(m) if m.post_only && m.tif == TimeInForce::Ioc)
        );
        let stop = Order::market(2, 1, Side::Sell, 50, 2).stop(90, PriceSource::Last);
        match stop.message() {
            ClientMessage::EnterOrderExt(m) => {
                assert_eq!(m.trigger, TriggerType::LastFallsTo);
                assert_eq!(
                    (m.kind, m.tif, m.trigger_price),
                    (OrderKind::Market, TimeInForce::Ioc, 90)
                );
            }
            other => panic!("{other:?}"),
        }
        let buy_stop = Order::limit(3, 1, Side::Buy, 120, 1).stop(110, PriceSource::Mark);
        assert_eq!(buy_stop.0.trigger, TriggerType::MarkRisesTo);
        let buy_tp = Order::limit(4, 1, Side::Buy, 80, 1).take_profit(85, PriceSource::Last);
        assert_eq!(buy_tp.0.trigger, TriggerType::LastFallsTo);
        let gtd = Order::limit(5, 1, Side::Buy, 80, 1).gtd(7);
        assert!(
            matches!(gtd.message(), ClientMessage::EnterOrderExt(m) if m.tif == TimeInForce::Gtd && m.expire_ts_ns == 7)
        );
        let slide = Order::limit(6, 1, Side::Buy, 80, 1).post_only_slide();
        assert!(
            matches!(slide.message(), ClientMessage::EnterOrderExt(m) if m.post_only && m.post_only_slide)
        );
    }
}
