//! A client over a primary/standby pair: a list of endpoints, reconnection to whichever node is
//! primary after a failure, and the re-sending of every request that has no answer yet.
//!
//! The node's input log de-duplicates by `(account, cl_ord_id)` (the highest id sequenced per
//! account and shard), so a re-sent request that the old primary had sequenced and replicated is
//! answered `OrderRejected(DuplicateClientOrderId)` by the new primary instead of being
//! sequenced twice; one the old primary never replicated is sequenced now. Either way nothing
//! acknowledged is lost and nothing is doubled. [`FailoverClient::recv`] reports such a
//! duplicate as [`Event::AlreadySequenced`].
//!
//! `OrderRejected(Unavailable)` for a pending request is no answer either: the node stopped
//! serving, perhaps after sequencing it, and the new term may keep it. The client fails over
//! and re-sends it like any unanswered request (it never reports that reject).
//!
//! A standby refuses logins (`LoginRejected(NotPrimary)`); the client tries the endpoints in turn
//! until one accepts or `failover_timeout` runs out. It logs in with the same session and asks
//! for the replies after the last one it received: the session's reply stream is a function of
//! the log (PROTOCOL.md, "Sessions"), so the new primary replays what the old one sent but the
//! client did not read, and what happened while it was away (fills of its resting orders).
//! Unanswered requests are re-sent at once; one whose answer the replay brings is then also
//! answered `DuplicateClientOrderId` (unsequenced), which the client drops.
//!
//! Orders resting from before the failover stay the session's: the new primary learned from the
//! log which session placed them, so they are cancelled and replaced by `cl_ord_id` as before,
//! and their fills go to this session.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tpx_wire::enums::{LoginRejectReason, RejectReason};
use tpx_wire::order_entry::ClientMessage;
use tpx_wire::replies::ServerMessage;

use crate::{Client, ClientConfig, ClientError, Result};

/// What [`FailoverClient::recv`] returns.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// A reply of the current primary.
    Reply(ServerMessage),
    /// A re-sent request (by its `cl_ord_id`) was sequenced before the failover: the new primary
    /// holds it; its original answer was lost with the old connection.
    AlreadySequenced(u64),
    /// The client moved to the endpoint at this index and re-sent this many requests.
    FailedOver { endpoint: usize, resent: usize },
}

/// A client of a primary/standby pair (see the module docs).
#[derive(Debug)]
pub struct FailoverClient {
    endpoints: Vec<SocketAddr>,
    cfg: ClientConfig,
    current: usize,
    client: Option<Client>,
    /// Requests without an answer yet, by the `cl_ord_id` the answer names.
    unanswered: BTreeMap<u64, ClientMessage>,
    /// Requests re-sent after the last failover (their duplicate answer means "done").
    resent: std::collections::BTreeSet<u64>,
    /// Re-sent requests whose answer the replay brought: their duplicate answer is dropped.
    replayed: std::collections::BTreeSet<u64>,
    /// The reply seq to resume from at the next login (0: none, start at the end).
    resume_seq: u64,
    pub failover_timeout: Duration,
    pub failovers: u64,
}

/// The `cl_ord_id` an answer to `m` will name (`None`: not tracked, e.g. a mass cancel).
fn answer_id(m: &ClientMessage) -> Option<u64> {
    match m {
        ClientMessage::EnterOrder(o) => Some(o.cl_ord_id),
        ClientMessage::EnterOrderExt(o) => Some(o.cl_ord_id),
        ClientMessage::ReplaceOrder(r) => Some(r.new_cl_ord_id),
        ClientMessage::CancelOrder(c) => Some(c.cl_ord_id),
        _ => None,
    }
}

/// The `cl_ord_id` an answer names, if it answers a request.
fn answered_id(m: &ServerMessage) -> Option<u64> {
    match m {
        ServerMessage::OrderAccepted(a) => Some(a.cl_ord_id),
        ServerMessage::OrderRejected(r) => Some(r.cl_ord_id),
        ServerMessage::OrderReplaced(r) => Some(r.new_cl_ord_id),
        ServerMessage::OrderCancelled(c) => Some(c.cl_ord_id),
        _ => None,
    }
}

impl FailoverClient {
    /// Logs in to the first endpoint that accepts (`cfg.addr` is ignored).
    pub fn connect(endpoints: Vec<SocketAddr>, cfg: ClientConfig) -> Result<FailoverClient> {
        let mut c = FailoverClient {
            endpoints,
            cfg,
            current: 0,
            client: None,
            unanswered: BTreeMap::new(),
            resent: Default::default(),
            replayed: Default::default(),
            resume_seq: 0,
            failover_timeout: Duration::from_secs(10),
            failovers: 0,
        };
        c.reconnect_any()?;
        Ok(c)
    }

    /// The index of the endpoint in use.
    pub fn endpoint(&self) -> usize {
        self.current
    }

    /// Requests sent and not answered yet.
    pub fn unanswered(&self) -> usize {
        self.unanswered.len()
    }

    /// Tries every endpoint, starting with the current one, until one accepts the login.
    fn reconnect_any(&mut self) -> Result<()> {
        self.client = None;
        let deadline = Instant::now() + self.failover_timeout;
        let n = self.endpoints.len().max(1);
        let mut last = ClientError::Timeout;
        loop {
            for k in 0..n {
                let i = (self.current + k) % n;
                let mut cfg = self.cfg.clone();
                cfg.addr = self.endpoints[i];
                cfg.login_timeout = cfg.login_timeout.min(Duration::from_secs(1));
                let attempt = match Client::connect_at(cfg.clone(), self.resume_seq) {
                    // The node no longer has them (or never had: a log cut): start at its end.
                    Err(ClientError::LoginRejected(
                        LoginRejectReason::SequenceAhead | LoginRejectReason::SequenceUnavailable,
                    )) => Client::connect_at(cfg, 0),
                    other => other,
                };
                match attempt {
                    Ok(c) => {
                        self.current = i;
                        self.client = Some(c);
                        return Ok(());
                    }
                    Err(e @ ClientError::LoginRejected(LoginRejectReason::NotAuthorized)) => {
                        return Err(e)
                    }
                    Err(e) => last = e,
                }
            }
            if Instant::now() >= deadline {
                return Err(last);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Moves to the primary and re-sends every unanswered request, in `cl_ord_id` order.
    fn failover(&mut self) -> Result<Event> {
        if let Some(c) = self.client.take() {
            self.resume_seq = c.next_seq();
            let _ = c.stream().shutdown(std::net::Shutdown::Both);
        }
        self.current = (self.current + 1) % self.endpoints.len().max(1);
        self.reconnect_any()?;
        self.failovers += 1;
        let c = self.client.as_mut().ok_or(ClientError::Timeout)?;
        for m in self.unanswered.values() {
            c.queue(m);
        }
        self.resent = self.unanswered.keys().copied().collect();
        self.replayed.clear();
        c.flush_blocking(Duration::from_secs(5))?;
        Ok(Event::FailedOver {
            endpoint: self.current,
            resent: self.resent.len(),
        })
    }

    /// Sends a request (kept until answered, to be re-sent after a failover).
    pub fn send(&mut self, m: &ClientMessage) -> Result<()> {
        if let Some(id) = answer_id(m) {
            self.unanswered.insert(id, *m);
        }
        let sent = match self.client.as_mut() {
            Some(c) => c.send(m),
            None => Err(ClientError::Timeout),
        };
        match sent {
            Ok(()) => Ok(()),
            // Kept in `unanswered`: re-sent by the failover.
            Err(_) => self.failover().map(|_| ()),
        }
    }

    /// The next event, waiting up to `timeout` (parked). A failure of the connection fails over
    /// (and returns [`Event::FailedOver`]); `Err(Timeout)` when nothing came.
    pub fn recv(&mut self, timeout: Duration) -> Result<Event> {
        let r = match self.client.as_mut() {
            Some(c) => c.recv(timeout),
            None => Err(ClientError::Closed(None)),
        };
        match r {
            Ok(m) => {
                if let ServerMessage::OrderRejected(r) = &m {
                    if r.reason == RejectReason::Unavailable
                        && self.unanswered.contains_key(&r.cl_ord_id)
                    {
                        // Not known to be sequenced (PROTOCOL.md, "Acknowledgement"): this node
                        // is not serving (it stepped down, maybe after sequencing the request).
                        // The request stays unanswered and goes to the new primary, which
                        // sequences it or answers that it holds it already.
                        return self.failover();
                    }
                }
                if let Some(id) = answered_id(&m) {
                    let duplicate = matches!(&m, ServerMessage::OrderRejected(r)
                        if r.reason == RejectReason::DuplicateClientOrderId && r.seq == 0);
                    if duplicate && self.replayed.remove(&id) {
                        // The replay brought this re-sent request's answer already.
                        return self.recv(timeout);
                    }
                    let was_resent = self.resent.remove(&id);
                    // An order's first answer is its ack; later ones (fills, cancels) keep
                    // nothing pending.
                    self.unanswered.remove(&id);
                    if was_resent {
                        if duplicate {
                            return Ok(Event::AlreadySequenced(id));
                        }
                        self.replayed.insert(id);
                    }
                }
                Ok(Event::Reply(m))
            }
            Err(ClientError::Timeout) => Err(ClientError::Timeout),
            Err(_) => self.failover(),
        }
    }
}
