//! Queries: order status by `cl_ord_id`, open orders, balances and positions of the session's
//! account, answered from the node's state without entering the log (see `docs/PROTOCOL.md`,
//! "Queries"). Each answer is unsequenced and carries the query's `request_id`; it ends with one
//! `QueryDone` (or, refused, an `OrderRejected` naming the `request_id`).
//!
//! ```no_run
//! use tpx_client::{Client, ClientConfig, token_from_str};
//! let cfg = ClientConfig::new("127.0.0.1:9100".parse().unwrap(), 1, 1, token_from_str("demo-token-1"));
//! let mut c = Client::connect(cfg).unwrap();
//! let open = c.open_orders(1, None, std::time::Duration::from_secs(1)).unwrap();
//! for o in &open.items { println!("{} {} @ {}", o.cl_ord_id, o.leaves_qty, o.price); }
//! ```

use std::time::{Duration, Instant};

use tpx_wire::enums::{RejectReason, RequestKind};
use tpx_wire::order_entry::ClientMessage;
use tpx_wire::query::{
    BalanceStatus, OrderStatus, PositionStatus, QueryBalances, QueryDone, QueryOpenOrders,
    QueryOrder, QueryPositions,
};
use tpx_wire::replies::ServerMessage;

use crate::{Client, ClientError, Result};

/// The answer to one query.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueryAnswer<T> {
    /// The data messages, in the order they came.
    pub items: Vec<T>,
    /// The end marker (`None`: refused, see `rejected`).
    pub done: Option<QueryDone>,
    /// Why the node refused the query (`Throttled`, `Backpressure`, `Unavailable`, ...).
    pub rejected: Option<RejectReason>,
    /// Every other reply received while waiting (sequenced replies of the session, in order):
    /// the caller handles them as if it had read them itself.
    pub other: Vec<ServerMessage>,
}

/// `QueryOrder`: the live order with `cl_ord_id`.
pub fn order(request_id: u64, cl_ord_id: u64) -> ClientMessage {
    ClientMessage::QueryOrder(QueryOrder {
        request_id,
        cl_ord_id,
    })
}

/// `QueryOpenOrders`: the account's live orders on `instrument` (`None`: all).
pub fn open_orders(request_id: u64, instrument: Option<u32>) -> ClientMessage {
    ClientMessage::QueryOpenOrders(QueryOpenOrders {
        request_id,
        instrument,
    })
}

/// `QueryBalances`: the account's balances, per shard and asset.
pub fn balances(request_id: u64) -> ClientMessage {
    ClientMessage::QueryBalances(QueryBalances { request_id })
}

/// `QueryPositions`: the account's non-zero perpetual positions.
pub fn positions(request_id: u64) -> ClientMessage {
    ClientMessage::QueryPositions(QueryPositions { request_id })
}

fn request_kind(m: &ClientMessage) -> Option<(u64, RequestKind)> {
    Some(match m {
        ClientMessage::QueryOrder(q) => (q.request_id, RequestKind::QueryOrder),
        ClientMessage::QueryOpenOrders(q) => (q.request_id, RequestKind::QueryOpenOrders),
        ClientMessage::QueryBalances(q) => (q.request_id, RequestKind::QueryBalances),
        ClientMessage::QueryPositions(q) => (q.request_id, RequestKind::QueryPositions),
        _ => return None,
    })
}

impl Client {
    /// Sends query `q` (built by this module's functions) and waits up to `timeout` for its end;
    /// `pick` keeps the data messages of the query's type.
    pub fn query<T>(
        &mut self,
        q: &ClientMessage,
        timeout: Duration,
        mut pick: impl FnMut(&ServerMessage, u64) -> Option<T>,
    ) -> Result<QueryAnswer<T>> {
        let (request_id, kind) = request_kind(q).ok_or(ClientError::Protocol("not a query"))?;
        self.send(q)?;
        let deadline = Instant::now() + timeout;
        let mut a = QueryAnswer {
            items: Vec::new(),
            done: None,
            rejected: None,
            other: Vec::new(),
        };
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ClientError::Timeout);
            }
            let m = match self.recv(left) {
                Ok(m) => m,
                Err(ClientError::Timeout) => continue,
                Err(e) => return Err(e),
            };
            match m {
                ServerMessage::QueryDone(d) if d.request_id == request_id => {
                    a.done = Some(d);
                    return Ok(a);
                }
                ServerMessage::OrderRejected(r)
                    if r.seq == 0 && r.cl_ord_id == request_id && r.request == kind =>
                {
                    a.rejected = Some(r.reason);
                    return Ok(a);
                }
                m => match pick(&m, request_id) {
                    Some(t) => a.items.push(t),
                    None => a.other.push(m),
                },
            }
        }
    }

    /// The live order `cl_ord_id` of the account (`items` empty: not live).
    pub fn order_status(
        &mut self,
        request_id: u64,
        cl_ord_id: u64,
        timeout: Duration,
    ) -> Result<QueryAnswer<OrderStatus>> {
        self.query(&order(request_id, cl_ord_id), timeout, pick_order)
    }

    /// The account's live orders on `instrument` (`None`: every instrument).
    pub fn open_orders(
        &mut self,
        request_id: u64,
        instrument: Option<u32>,
        timeout: Duration,
    ) -> Result<QueryAnswer<OrderStatus>> {
        self.query(&open_orders(request_id, instrument), timeout, pick_order)
    }

    /// The account's balances (one per shard and asset; none with risk off).
    pub fn balances(
        &mut self,
        request_id: u64,
        timeout: Duration,
    ) -> Result<QueryAnswer<BalanceStatus>> {
        self.query(&balances(request_id), timeout, |m, id| match m {
            ServerMessage::BalanceStatus(b) if b.request_id == id => Some(*b),
            _ => None,
        })
    }

    /// The account's non-zero perpetual positions (none with risk off).
    pub fn positions(
        &mut self,
        request_id: u64,
        timeout: Duration,
    ) -> Result<QueryAnswer<PositionStatus>> {
        self.query(&positions(request_id), timeout, |m, id| match m {
            ServerMessage::PositionStatus(p) if p.request_id == id => Some(*p),
            _ => None,
        })
    }
}

fn pick_order(m: &ServerMessage, id: u64) -> Option<OrderStatus> {
    match m {
        ServerMessage::OrderStatus(o) if o.request_id == id => Some(*o),
        _ => None,
    }
}
