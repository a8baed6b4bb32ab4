//! `tpx-client`: the order-entry client library market makers link (login, sequenced replies,
//! replay on reconnect, heartbeats), used by the demo, the benches and the tests.
