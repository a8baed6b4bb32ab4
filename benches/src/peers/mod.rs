//! Peer order books from crates.io, driven with the same stream as the engine.
//!
//! Each peer gets the stream's [`PeerOp`]s (the engine's commands with the side made explicit
//! and client order ids as the peer's order ids) and is used the way its documentation shows:
//! a move is the crate's own modify where it has one, else cancel + add.

pub mod lobster;
pub mod orderbook_rs;

use crate::workload::{PeerOp, Stream};

/// An order book the bench can drive with [`PeerOp`]s.
pub trait PeerBook {
    /// The name in the report.
    const NAME: &'static str;

    /// A fresh, empty book for the stream's instruments.
    fn new(stream: &Stream) -> Self;

    fn apply(&mut self, op: &PeerOp);

    /// Trades (fills, one per maker order matched) so far.
    fn trades(&self) -> u64;
}
