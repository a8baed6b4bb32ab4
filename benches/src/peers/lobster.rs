//! [lobster](https://crates.io/crates/lobster) 0.7: a single-instrument limit order book with
//! limit, market and cancel orders. It has no modify and no IOC limit order, so a move is a
//! cancel plus a new limit order (same id), and an IOC is a limit order whose unfilled rest is
//! cancelled at once.

use lobster::{OrderBook, OrderEvent, OrderType, Side as LSide};
use tpx_engine::Side;

use super::PeerBook;
use crate::workload::{PeerOp, PeerOpKind, Stream};

/// One lobster book per instrument (instrument ids are `1..=n`).
pub struct Lobster {
    books: Vec<OrderBook>,
    trades: u64,
}

impl std::fmt::Debug for Lobster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lobster")
            .field("books", &self.books.len())
            .field("trades", &self.trades)
            .finish()
    }
}

fn side(side: Side) -> LSide {
    match side {
        Side::Buy => LSide::Bid,
        Side::Sell => LSide::Ask,
    }
}

impl Lobster {
    #[inline]
    fn execute(&mut self, instrument: usize, order: OrderType) -> OrderEvent {
        let event = self.books[instrument].execute(order);
        if let OrderEvent::Filled { fills, .. } | OrderEvent::PartiallyFilled { fills, .. } = &event
        {
            self.trades += fills.len() as u64;
        }
        event
    }
}

impl PeerBook for Lobster {
    const NAME: &'static str = "lobster";

    fn new(stream: &Stream) -> Self {
        let instruments = stream.config.instruments.len();
        let per_book = (stream.config.max_orders as usize / instruments.max(1)).max(1_024);
        Lobster {
            // `OrderBook::new(arena_capacity, queue_capacity, track_stats)`.
            books: (0..instruments)
                .map(|_| OrderBook::new(per_book, 16, false))
                .collect(),
            trades: 0,
        }
    }

    #[inline]
    fn apply(&mut self, op: &PeerOp) {
        let book = op.instrument as usize - 1;
        let id = u128::from(op.id);
        let limit = OrderType::Limit {
            id,
            side: side(op.side),
            qty: op.qty,
            price: op.price,
        };
        match op.kind {
            PeerOpKind::Place => {
                self.execute(book, limit);
            }
            PeerOpKind::Ioc => {
                let event = self.execute(book, limit);
                if matches!(
                    event,
                    OrderEvent::Placed { .. } | OrderEvent::PartiallyFilled { .. }
                ) {
                    self.execute(book, OrderType::Cancel { id });
                }
            }
            PeerOpKind::Cancel => {
                self.execute(book, OrderType::Cancel { id });
            }
            PeerOpKind::Move => {
                self.execute(book, OrderType::Cancel { id });
                self.execute(book, limit);
            }
        }
    }

    fn trades(&self) -> u64 {
        self.trades
    }
}
