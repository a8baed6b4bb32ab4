//! [orderbook-rs](https://crates.io/crates/orderbook-rs) 0.15: a concurrent (lock-free price
//! levels) order book with many order types. A move is its own modify,
//! `update_order(OrderUpdate::UpdatePrice { .. })`; IOC is its `TimeInForce::Ioc`; trades are
//! counted by a trade listener, the crate's way of reporting them (it also sees the fills of
//! modifies and of IOC orders that end in an error for their unfilled rest).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use orderbook_rs::{DefaultOrderBook, Id, OrderBook, Side as OSide, TimeInForce, TradeListener};
use pricelevel::{OrderUpdate, Price};
use tpx_engine::Side;

use super::PeerBook;
use crate::workload::{PeerOp, PeerOpKind, Stream};

/// One orderbook-rs book per instrument (instrument ids are `1..=n`).
pub struct OrderbookRs {
    books: Vec<DefaultOrderBook>,
    trades: Arc<AtomicU64>,
}

impl std::fmt::Debug for OrderbookRs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrderbookRs")
            .field("books", &self.books.len())
            .field("trades", &self.trades())
            .finish()
    }
}

fn side(side: Side) -> OSide {
    match side {
        Side::Buy => OSide::Buy,
        Side::Sell => OSide::Sell,
    }
}

impl PeerBook for OrderbookRs {
    const NAME: &'static str = "orderbook-rs";

    fn new(stream: &Stream) -> Self {
        let trades = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&trades);
        let listener: TradeListener = Arc::new(move |result| {
            counter.fetch_add(result.match_result.trades().len() as u64, Ordering::Relaxed);
        });
        let books = stream
            .config
            .instruments
            .iter()
            .map(|spec| {
                OrderBook::with_trade_listener(&format!("I{}", spec.id), Arc::clone(&listener))
            })
            .collect();
        OrderbookRs { books, trades }
    }

    #[inline]
    fn apply(&mut self, op: &PeerOp) {
        let book = &self.books[op.instrument as usize - 1];
        let id = Id::Sequential(op.id);
        // Errors (an IOC's unfilled rest, a cancel of an order that is gone) are outcomes here,
        // not failures of the bench; the engine's own rejects are counted by the generator.
        match op.kind {
            PeerOpKind::Place => {
                let _ = book.add_limit_order(
                    id,
                    u128::from(op.price),
                    op.qty,
                    side(op.side),
                    TimeInForce::Gtc,
                    None,
                );
            }
            PeerOpKind::Ioc => {
                let _ = book.add_limit_order(
                    id,
                    u128::from(op.price),
                    op.qty,
                    side(op.side),
                    TimeInForce::Ioc,
                    None,
                );
            }
            PeerOpKind::Cancel => {
                let _ = book.cancel_order(id);
            }
            PeerOpKind::Move => {
                let _ = book.update_order(OrderUpdate::UpdatePrice {
                    order_id: id,
                    new_price: Price::new(u128::from(op.price)),
                });
            }
        }
    }

    fn trades(&self) -> u64 {
        self.trades.load(Ordering::Relaxed)
    }
}
