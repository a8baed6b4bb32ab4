//! `tpx-md`: the node-side market-data publisher.
//!
//! Each matching shard publishes its order-by-order market data (ITCH-like messages in
//! MoldUDP64-like packets, `tpx_wire::market_data` / `tpx_wire::mold`) through Aeron: UDP
//! multicast on an A and a B channel in production (two groups, two interfaces), IPC or
//! unicast in tests, with an embedded media driver unless an external driver directory is
//! configured. Publishing never blocks matching: an offer that fails (back-pressure, no
//! subscriber) is counted and the packet stays in a bounded retransmission ring, from which
//! subscribers recover what they missed.
//!
//! - [`encode`]: events → messages (pure), the packet builder.
//! - [`publisher`]: [`MdPublisher`], the per-shard publisher (sequence numbers, packets, A/B,
//!   heartbeats, the snapshot loop, standby mode), and [`Tee`] to give the engine's events to
//!   it and to the execution-report mapper.
//! - [`ring`]: the lock-free retransmission ring.
//! - [`retransmit`]: the retransmission server (its own thread, unicast answers, bounded).
//! - [`transport`]: Aeron publications (A, B, snapshot), or packets captured in memory.
//! - [`aeron`]: embedded media driver, client, channel settings (shared with `tpx-feed`).
//!
//! `docs/ARCHITECTURE.md` ("Market data") describes the channels, the sequencing, recovery and
//! the numbers.

pub mod aeron;
pub mod encode;
pub mod publisher;
pub mod retransmit;
pub mod ring;
pub mod transport;

/// Writes one warning line to stderr, ignoring a failed write: `eprintln!` panics when stderr
/// is a closed pipe, and these lines come from the node's and the feed handler's running
/// threads (one from inside Aeron's error callback, where a panic aborts the process).
pub fn warn(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut err = std::io::stderr().lock();
    let _ = err.write_fmt(line);
    let _ = err.write_all(b"\n");
}

pub use aeron::{
    destination_uri, AeronClient, AeronSetup, ChannelConfig, DriverConfig, DriverIdle,
    DriverThreading, EmbeddedDriver, MdError,
};
pub use encode::{event_messages, PacketBuilder, DEFAULT_MAX_PACKET_LEN};
pub use publisher::{
    ChannelStats, DropFilter, InstrumentState, MdInstrument, MdPublisher, MdState, MdStats,
    NoReports, PublisherConfig, Tee,
};
pub use retransmit::{RetransmitConfig, RetransmitHandle, RetransmitServer, RetransmitStats};
pub use ring::RetransmitRing;
pub use transport::{
    AeronChannels, AeronTransport, CaptureTransport, Channel, MdTransport, NullTransport,
    SendOutcome,
};

#[cfg(test)]
mod send_check {
    /// The node builds a publisher and may move it to the shard's thread.
    #[test]
    fn publisher_and_driver_are_send() {
        fn send<T: Send>() {}
        send::<crate::MdPublisher>();
        send::<crate::EmbeddedDriver>();
        send::<crate::AeronClient>();
    }
}
