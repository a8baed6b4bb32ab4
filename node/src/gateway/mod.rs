//! Order entry: sockets, sessions, accounts, journal and throttle.

pub mod accounts;
pub mod io;
pub mod journal;
pub mod session;
pub mod throttle;
