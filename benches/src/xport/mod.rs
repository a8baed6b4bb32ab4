//! Replication transport comparison (`repl-transport-bench`): the same `tpx_sequencer::Replica`
//! pair streaming records primary → standby over TCP ([`tpx_sequencer::TcpTransport`], what
//! the node runs) and over Aeron UDP unicast ([`aeron::AeronReplTransport`]), measured per
//! record from when it was due (open-loop load) to when the primary sees the standby's ack.
//!
//! - [`aeron`]: the `Transport` over Aeron, and [`aeron::Split`] (peer over Aeron, witness over
//!   TCP). It lives here, not in `tpx-sequencer`, so the sequencer and the simulator do not
//!   link Aeron.
//! - [`node`]: one replica process of a case (primary with the load, or standby).
//! - [`case`]: the parent: a witness thread, the two processes, the results.

pub mod aeron;
pub mod case;
pub mod node;
