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
//! A primary that is deposed (the witness granted its peer a newer term) logs its sessions out
//! with `Logout(Failover)` and closes: the client fails over at once (the logout is not passed
//! on as a reply).
//!
//! A standby refuses logins (`LoginRejected(NotPrimary)`); the client tries the endpoints in turn
//! until one accepts or `failover_timeout` runs out. It logs in with the same session and asks
//! for the replies after the last one it received: the session's reply stream is a function of
//! the log (PROTOCOL.md, "Sessions"), so the new primary replays what the old one sent but the
//! client did not read, and what happened while it was away (fills of its resting orders).
//! A node that does not hold those replies (`SequenceAhead`, `SequenceUnavailable`) is tried
//! again, with the other, with a growing pause; the client never resumes without the replay
//! on its own (see [`FailoverClient::resume_at_end`]).
//! Unanswered requests are re-sent at once; one whose answer the replay brings is then also
//! answered `DuplicateClientOrderId` (unsequenced), which the client drops.
//!
//! Orders resting from before the failover stay the session's: the new primary learned from the
//! log which session placed them, so they are cancelled and replaced by `cl_ord_id` as before,
//! and their fills go to this session.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tpx_wire::enums::{LoginRejectReason, LogoutReason, RejectReason};
use tpx_wire::order_entry::ClientMessage;
use tpx_wire::replies::ServerMessage;

use crate::{Client, ClientConfig, ClientError, Result};

/// The pause between two rounds over the endpoints.
const RETRY_PAUSE: Duration = Duration::from_millis(10);
/// The longest pause after rounds refused `SequenceAhead` / `SequenceUnavailable`.
const MAX_BEHIND_PAUSE: Duration = Duration::from_millis(320);

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

    /// The next failover logs in asking for no replay (`requested_next_seq` 0: the session's
    /// current end) instead of the replies after the last one received. For a client that
    /// gives up on them, e.g. after `LoginRejected(SequenceUnavailable)` (no node keeps them
    /// any more); the replies in between are then never read.
    pub fn resume_at_end(&mut self) {
        self.resume_seq = 0;
    }

    /// Tries every endpoint, starting with the current one, until one accepts the login. A
    /// refusal is tried again on the other node and then again after a pause, until
    /// `failover_timeout`: `NotPrimary` (a standby, or a new primary still journaling what it
    /// inherited), and `SequenceAhead` / `SequenceUnavailable`, which say that node does not
    /// hold the replies the client resumes from (a deposed primary that has not heard of the
    /// newer term yet, whose log lacks them): the other node may. Those two back off (10 ms
    /// doubling to 320 ms between rounds) and are never answered by logging in without the
    /// replay, which would skip replies the client has not read; at the timeout such a
    /// refusal is returned ([`FailoverClient::resume_at_end`] gives them up explicitly).
    fn reconnect_any(&mut self) -> Result<()> {
        self.client = None;
        let deadline = Instant::now() + self.failover_timeout;
        let n = self.endpoints.len().max(1);
        let mut last = ClientError::Timeout;
        // A refusal for want of the replies: the answer at the timeout (rather than another
        // node's connection error).
        let mut missing = None;
        let mut pause = RETRY_PAUSE;
        loop {
            let mut behind = false;
            for k in 0..n {
                let i = (self.current + k) % n;
                let mut cfg = self.cfg.clone();
                cfg.addr = self.endpoints[i];
                cfg.login_timeout = cfg.login_timeout.min(Duration::from_secs(1));
                match Client::connect_at(cfg, self.resume_seq) {
                    Ok(c) => {
                        self.current = i;
                        self.client = Some(c);
                        return Ok(());
                    }
                    Err(e @ ClientError::LoginRejected(LoginRejectReason::NotAuthorized)) => {
                        return Err(e)
                    }
                    Err(
                        e @ ClientError::LoginRejected(
                            LoginRejectReason::SequenceAhead
                            | LoginRejectReason::SequenceUnavailable,
                        ),
                    ) => {
                        behind = true;
                        missing = Some(e);
                    }
                    Err(e) => last = e,
                }
            }
            if Instant::now() >= deadline {
                return Err(missing.unwrap_or(last));
            }
            pause = if behind {
                (pause * 2).min(MAX_BEHIND_PAUSE)
            } else {
                RETRY_PAUSE
            };
            std::thread::sleep(pause.min(deadline.saturating_duration_since(Instant::now())));
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
            Ok(ServerMessage::Logout(l)) if l.reason == LogoutReason::Failover => {
                // The node stopped being the primary (deposed): it sends nothing more and
                // closes. Over to the other node at once, resuming after the last reply.
                self.failover()
            }
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

#[cfg(test)]
mod tests {
    //! Scripted servers on loopback play the two nodes.

    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::thread;

    use tpx_wire::enums::{LoginRejectReason, LogoutReason, Side};
    use tpx_wire::order_entry::{decode_client, ClientMessage};
    use tpx_wire::replies::{OrderAccepted, ServerMessage};
    use tpx_wire::session::{LoginAccepted, LoginRejected, Logout};

    use super::*;
    use crate::token_from_str;

    fn send(s: &mut TcpStream, m: ServerMessage) {
        let mut b = [0u8; 256];
        let n = m.encode(&mut b).unwrap();
        s.write_all(&b[..n]).unwrap();
    }

    /// The `requested_next_seq` of the login the client sends on `s`.
    fn login_of(s: &mut TcpStream) -> u64 {
        let mut h = [0u8; 8];
        s.read_exact(&mut h).unwrap();
        let len = u16::from_le_bytes([h[0], h[1]]) as usize;
        let mut b = vec![0u8; len];
        b[..8].copy_from_slice(&h);
        s.read_exact(&mut b[8..]).unwrap();
        match decode_client(&b).unwrap() {
            ClientMessage::Login(l) => l.requested_next_seq,
            other => panic!("not a login: {other:?}"),
        }
    }

    fn accepted(seq: u64) -> ServerMessage {
        ServerMessage::OrderAccepted(OrderAccepted {
            seq,
            timestamp_ns: 1,
            cl_ord_id: seq,
            order_id: 100 + seq,
            price: 50_000,
            qty: 1,
            instrument: 1,
            side: Side::Buy,
        })
    }

    fn login_accepted(s: &mut TcpStream, next_seq: u64) {
        send(
            s,
            ServerMessage::LoginAccepted(LoginAccepted {
                session_id: 1,
                heartbeat_interval_ms: 1_000,
                next_seq,
            }),
        );
    }

    fn client(endpoints: Vec<std::net::SocketAddr>) -> FailoverClient {
        let mut cfg = ClientConfig::new(endpoints[0], 7, 1, token_from_str("tok-7"));
        cfg.login_timeout = Duration::from_secs(2);
        let mut c = FailoverClient::connect(endpoints, cfg).unwrap();
        c.failover_timeout = Duration::from_secs(5);
        c
    }

    /// The deposed primary: accepts the login, sends reply 1, then `Logout(Failover)`, and
    /// stops listening (a later connect is refused).
    fn deposed(l: TcpListener) -> thread::JoinHandle<Vec<u64>> {
        thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let asked = login_of(&mut s);
            login_accepted(&mut s, 1);
            send(&mut s, accepted(1));
            send(
                &mut s,
                ServerMessage::Logout(Logout {
                    reason: LogoutReason::Failover,
                }),
            );
            drop(l);
            // The client closes once it read the logout.
            let _ = s.read(&mut [0u8; 64]);
            vec![asked]
        })
    }

    #[test]
    fn a_failover_logout_moves_to_the_other_node_at_once() {
        let old = TcpListener::bind("127.0.0.1:0").unwrap();
        let new = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoints = vec![old.local_addr().unwrap(), new.local_addr().unwrap()];
        let a = deposed(old);
        let b = thread::spawn(move || {
            let (mut s, _) = new.accept().unwrap();
            let asked = login_of(&mut s);
            login_accepted(&mut s, asked);
            send(&mut s, accepted(2));
            let _ = s.read(&mut [0u8; 64]);
            vec![asked]
        });
        let mut c = client(endpoints);
        let mut events = Vec::new();
        while events.len() < 3 {
            events.push(c.recv(Duration::from_secs(5)).unwrap());
        }
        assert!(
            matches!(
                &events[..],
                [
                    Event::Reply(ServerMessage::OrderAccepted(x)),
                    Event::FailedOver { endpoint: 1, resent: 0 },
                    Event::Reply(ServerMessage::OrderAccepted(y)),
                ] if x.seq == 1 && y.seq == 2
            ),
            "{events:?}"
        );
        drop(c);
        assert_eq!(
            a.join().unwrap(),
            vec![0],
            "the first login asks for no replay"
        );
        assert_eq!(b.join().unwrap(), vec![2], "resumes after reply 1");
    }

    /// The other node does not hold reply 2 yet (`SequenceAhead`, twice): the client tries
    /// again, always asking for reply 2, never resuming without the replay.
    #[test]
    fn a_node_without_the_replies_is_tried_again_not_skipped() {
        let old = TcpListener::bind("127.0.0.1:0").unwrap();
        let new = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoints = vec![old.local_addr().unwrap(), new.local_addr().unwrap()];
        let a = deposed(old);
        let b = thread::spawn(move || {
            let mut asked = Vec::new();
            for reason in [
                LoginRejectReason::SequenceAhead,
                LoginRejectReason::SequenceUnavailable,
            ] {
                let (mut s, _) = new.accept().unwrap();
                asked.push(login_of(&mut s));
                send(
                    &mut s,
                    ServerMessage::LoginRejected(LoginRejected { reason }),
                );
            }
            let (mut s, _) = new.accept().unwrap();
            let seq = login_of(&mut s);
            asked.push(seq);
            login_accepted(&mut s, seq);
            send(&mut s, accepted(2));
            let _ = s.read(&mut [0u8; 64]);
            asked
        });
        let mut c = client(endpoints);
        let mut events = Vec::new();
        while events.len() < 3 {
            events.push(c.recv(Duration::from_secs(5)).unwrap());
        }
        assert!(
            matches!(
                &events[1..],
                [
                    Event::FailedOver { endpoint: 1, resent: 0 },
                    Event::Reply(ServerMessage::OrderAccepted(y)),
                ] if y.seq == 2
            ),
            "{events:?}"
        );
        drop(c);
        a.join().unwrap();
        assert_eq!(b.join().unwrap(), vec![2, 2, 2]);
    }

    /// No node has the replies within `failover_timeout`: the refusal is the answer (the
    /// client does not skip them on its own).
    #[test]
    fn replies_no_node_holds_are_an_error_not_a_silent_skip() {
        let old = TcpListener::bind("127.0.0.1:0").unwrap();
        let new = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoints = vec![old.local_addr().unwrap(), new.local_addr().unwrap()];
        let a = deposed(old);
        let b = thread::spawn(move || {
            let mut asked = Vec::new();
            new.set_nonblocking(true).unwrap();
            let until = Instant::now() + Duration::from_secs(2);
            while Instant::now() < until {
                match new.accept() {
                    Ok((mut s, _)) => {
                        s.set_nonblocking(false).unwrap();
                        asked.push(login_of(&mut s));
                        send(
                            &mut s,
                            ServerMessage::LoginRejected(LoginRejected {
                                reason: LoginRejectReason::SequenceUnavailable,
                            }),
                        );
                    }
                    Err(_) => thread::sleep(Duration::from_millis(1)),
                }
            }
            asked
        });
        let mut c = client(endpoints);
        c.failover_timeout = Duration::from_millis(700);
        assert!(matches!(
            c.recv(Duration::from_secs(5)).unwrap(),
            Event::Reply(ServerMessage::OrderAccepted(_))
        ));
        let r = c.recv(Duration::from_secs(5));
        assert!(
            matches!(
                r,
                Err(ClientError::LoginRejected(
                    LoginRejectReason::SequenceUnavailable
                ))
            ),
            "{r:?}"
        );
        a.join().unwrap();
        let asked = b.join().unwrap();
        assert!(
            asked.len() >= 2 && asked.iter().all(|&s| s == 2),
            "{asked:?}"
        );
        // Backed off: not a login every 10 ms over the 700 ms.
        assert!(asked.len() < 20, "{asked:?}");
    }
}
