//! What the feed handler tells its user: one [`BookEvent`] per applied message (after the book
//! changed, with the books to read), and [`FeedEvent`]s about the stream (gaps, recovery).
//! Both are plain values passed by reference: nothing is allocated per message.

use tpx_wire::enums::Side;

use crate::book::Books;

/// One change to one instrument's book or tape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BookEvent {
    /// Stream sequence number of the message (the snapshot's `last_seq` for `Snapshot`).
    pub seq: u64,
    /// Sequencer timestamp of the input that caused it.
    pub timestamp_ns: u64,
    pub instrument: u32,
    pub update: Update,
}

/// What changed. Prices in ticks, quantities in lots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Update {
    /// An order rests at the back of its level.
    Add {
        order_id: u64,
        side: Side,
        price: i64,
        qty: u64,
    },
    /// A resting order traded `qty` (`leaves` 0: it left the book).
    Execute {
        order_id: u64,
        side: Side,
        price: i64,
        qty: u64,
        leaves: u64,
        trade_id: u64,
    },
    /// A resting order lost `qty` without a trade.
    Reduce {
        order_id: u64,
        side: Side,
        price: i64,
        qty: u64,
        leaves: u64,
    },
    /// A resting order left the book without a trade.
    Delete {
        order_id: u64,
        side: Side,
        price: i64,
    },
    /// A resting order moved (to the back of the level at `price`).
    Replace {
        order_id: u64,
        side: Side,
        old_price: i64,
        price: i64,
        qty: u64,
    },
    /// The tape.
    Trade {
        trade_id: u64,
        price: i64,
        qty: u64,
        aggressor: Side,
    },
    /// Halted or trading.
    Status { halted: bool },
    /// Reference price and band.
    ReferencePrice { price: i64, band_bps: u32 },
    /// The instrument's directory entry (static parameters, symbol).
    Directory,
    /// The whole book was replaced by a snapshot as of `seq` (`orders` orders).
    Snapshot { orders: u32 },
}

/// How a gap was closed, or why recovery started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FeedEvent {
    /// Synchronised: applying the stream from `next_seq`.
    Live { next_seq: u64 },
    /// Messages `from..to` are missing (`to` exclusive).
    Gap { from: u64, to: u64 },
    /// Asked the retransmission server for `count` messages from `first`.
    RetransmitRequested { first: u64, count: u16 },
    /// A gap was closed by the other feed (A/B arbitration) or by retransmission.
    GapFilled {
        from: u64,
        to: u64,
        by_retransmission: bool,
    },
    /// Too far behind (or retransmission refused / timed out): recovering from snapshots.
    SnapshotRecoveryStarted { next_seq: u64 },
    /// Books rebuilt from snapshots; live again from `next_seq`.
    SnapshotRecovered { next_seq: u64, instruments: u32 },
    /// A message did not fit the book (lost data or a bug); recovery from snapshots follows.
    BookError { seq: u64 },
    /// The Aeron client was closed under the handler (the driver timed it out: this process
    /// was frozen longer than the driver's client liveness timeout, or the driver restarted)
    /// and a new one subscribed again (`reconnects` so far). What was published meanwhile is
    /// a gap the next packet shows, recovered as any other.
    Reconnected { reconnects: u64 },
}

/// Receives the feed handler's output. Both methods default to doing nothing.
pub trait FeedListener {
    /// After `event` was applied to `books`.
    #[inline]
    fn on_book(&mut self, event: &BookEvent, books: &Books) {
        let _ = (event, books);
    }
    /// Stream-level news.
    #[inline]
    fn on_feed(&mut self, event: &FeedEvent) {
        let _ = event;
    }
}

/// Ignores everything.
impl FeedListener for () {}

impl<F: FnMut(&BookEvent, &Books)> FeedListener for F {
    #[inline]
    fn on_book(&mut self, event: &BookEvent, books: &Books) {
        self(event, books)
    }
}
