//! `tpx-feed`: the market-data subscriber.
//!
//! Joins feeds A and B of a shard's stream and takes the first copy of each packet, detects
//! gaps by sequence number, recovers them by retransmission (unicast, MoldUDP64 style) or,
//! when too far behind, from the snapshot stream plus buffered incrementals (CME style), and
//! keeps order-by-order (L3) and price-level (L2) books per instrument.
//!
//! - [`FeedHandler`]: the handler with its Aeron subscriptions and retransmission socket;
//!   `poll(now_ns, &mut listener)` from one thread.
//! - [`FeedCore`]: the same logic without IO (tests, recorded streams, benchmarks).
//! - [`Books`]: the books (`l3`, best levels, depth), read from the listener or after a poll.
//! - [`FeedListener`]: callbacks per applied message ([`BookEvent`]) and per stream event
//!   ([`FeedEvent`]); no allocation per message.
//! - [`bench`]: the `md-bench` measurement (latency from the shard's event to the book update
//!   against the Aeron floor, and the decode + apply rate).
//!
//! ```no_run
//! use tpx_feed::{FeedHandler, FeedHandlerConfig, BookEvent, Books};
//! use tpx_md::{AeronSetup, ChannelConfig};
//! let mut cfg = FeedHandlerConfig::new(
//!     AeronSetup::External { dir: "/dev/shm/aeron-root".into() },
//!     ChannelConfig::new("aeron:udp?endpoint=239.1.1.1:40456|interface=10.0.0.2", 10),
//! );
//! cfg.b = Some(ChannelConfig::new("aeron:udp?endpoint=239.1.2.1:40456|interface=10.0.1.2", 10));
//! let mut feed = FeedHandler::connect(cfg).unwrap();
//! let mut on_book = |ev: &BookEvent, books: &Books| {
//!     let _top = books.book(ev.instrument).and_then(|b| b.best(tpx_wire::Side::Buy));
//! };
//! loop {
//!     feed.poll(tpx_md::AeronClient::nano_clock(), &mut on_book);
//! }
//! ```

pub mod bench;
pub mod book;
pub mod buffer;
pub mod core;
pub mod handler;
pub mod listener;

pub use book::{BookError, Books, InstrumentBook, L3Entry, Level};
pub use core::{FeedConfig, FeedCore, FeedStats, Source};
pub use handler::{FeedHandler, FeedHandlerConfig};
pub use listener::{BookEvent, FeedEvent, FeedListener, Update};

#[cfg(test)]
mod send_check {
    #[test]
    fn the_handler_can_move_to_its_thread() {
        fn send<T: Send>() {}
        send::<crate::FeedHandler>();
    }
}
