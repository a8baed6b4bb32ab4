//! `tpx-wire`: every byte that crosses a process boundary.
//!
//! Order-entry sessions and messages, input-log records and market data, as fixed-size
//! little-endian layouts with validated zero-copy decoding. `docs/PROTOCOL.md` is the spec.
