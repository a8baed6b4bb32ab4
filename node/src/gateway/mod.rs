//! Order entry: the socket duty cycle (`io.rs`), sessions (`session/`: logins, request checks,
//! order ownership, replies), the log order of the shards' reports (`merge.rs`), routing to
//! shards, the reply journal, the throttle, accounts.

pub mod accounts;
pub mod io;
pub mod journal;
pub mod merge;
pub mod routing;
pub mod session;
pub mod throttle;
