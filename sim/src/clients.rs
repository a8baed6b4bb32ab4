//! Clients as `FailoverClient` (client/src/failover.rs) behaves, speaking the order-entry
//! protocol to the node's session layer: each logs in to one node (a connection id) with its
//! session id and the seq of the next reply it expects (its last seen + 1), sends encoded
//! requests, reads the encoded replies (numbered ones in its session's stream, `seq` 0 ones
//! unsequenced), keeps every request without an answer, and after its connection fails (the
//! node crashed or restarted, the connection reset, a request refused as `Unavailable`,
//! `Backpressure` or `Throttled`) logs in to whichever node is primary, resuming its reply
//! stream, and re-sends every unanswered request with the same `cl_ord_id`, in order. A
//! re-sent request the new node already sequenced is answered `DuplicateClientOrderId`, which
//! the client reads as "done" (`AlreadySequenced`).
//!
//! Requests: orders (limit, GTC or IOC, on every instrument, so on every shard) and cancels of
//! the client's own earlier orders; an admin client deposits every asset to every account on
//! every shard first (risk is on: without balances the orders would all be rejected).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use rand::Rng;
use rand_xoshiro::Xoshiro256PlusPlus;
use tpx_node::gateway::accounts::{demo_accounts_file, token_of, Accounts, DemoAccount};
use tpx_node::sequencing::feed::shard_of_origin;
use tpx_wire::admin::AdminDeposit;
use tpx_wire::enums::{OrderKind, Side, StpMode, TimeInForce};
use tpx_wire::log_record::{Deposit, Input};
use tpx_wire::order_entry::{CancelOrder, ClientMessage, EnterOrder};
use tpx_wire::replies::ServerMessage;
use tpx_wire::session::Login;

use crate::shards::{origin_of, ShardPlan, INSTRUMENTS, QUOTE_ASSET};

/// The admin account deposits come from.
pub const ADMIN_ACCOUNT: u32 = 50;

/// The session id of client sessions (any non-zero id: one session per account).
pub fn session_id_of(account: u32) -> u32 {
    100 + account
}

/// The login token of `account`.
fn token_text(account: u32) -> String {
    format!("sim-token-{account}")
}

/// The accounts file of the run: `accounts` and the admin account, rates no client reaches.
pub fn accounts(accounts: &[u32]) -> Accounts {
    let list: Vec<DemoAccount> = accounts
        .iter()
        .copied()
        .chain([ADMIN_ACCOUNT])
        .map(|id| DemoAccount {
            id,
            name: format!("sim-{id}"),
            token: token_text(id),
            admin: id == ADMIN_ACCOUNT,
        })
        .collect();
    Accounts::from_file(demo_accounts_file(&list, 1_000_000_000)).expect("sim accounts")
}

/// One request as the client keeps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Req {
    /// The client's request number (unique per client).
    pub no: u64,
    pub origin: u32,
    pub account: u32,
    pub input: Input,
}

impl Req {
    /// The `(origin, cl_ord_id)` the sequencer de-duplicates by (`Dedup::key`), if any.
    pub fn dedup_key(&self) -> Option<(u32, u64)> {
        match self.input {
            Input::EnterOrder(m) => Some((self.origin, m.cl_ord_id)),
            _ => None,
        }
    }

    /// The request as the client sends it.
    pub fn message(&self) -> ClientMessage {
        match self.input {
            Input::EnterOrder(m) => ClientMessage::EnterOrder(m),
            Input::CancelOrder(m) => ClientMessage::CancelOrder(m),
            Input::Deposit(d) => ClientMessage::AdminDeposit(AdminDeposit {
                request_id: d.request_id,
                amount: d.amount,
                account: d.account,
                asset: d.asset,
                shard: shard_of_origin(self.origin),
            }),
            other => unreachable!("the simulator's clients send no {other:?}"),
        }
    }
}

/// A client's login: the node and a connection id unique in the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conn {
    pub node: usize,
    pub id: u64,
}

#[derive(Debug)]
pub struct Client {
    pub account: u32,
    pub session_id: u32,
    pub conn: Option<Conn>,
    /// The session's numbered replies received, in order: `stream[k]` is reply `k + 1`.
    pub stream: Vec<Vec<u8>>,
    /// The `cl_ord_id`s the stream has an `OrderAccepted` of.
    pub accepted: BTreeSet<u64>,
    /// The stream is known from this index on (a login asking for no replay skipped the
    /// replies before it: `stream` holds empty placeholders there).
    pub known_from: usize,
    /// The login in progress asked for no replay.
    pub asked_fresh: bool,
    next_cl_ord_id: u64,
    next_no: u64,
    /// Requests without an answer, by request number.
    pub unanswered: BTreeMap<u64, Req>,
    /// Requests re-sent at the last failover.
    pub resent: BTreeSet<u64>,
    /// The client's recent orders `(cl_ord_id, origin)`, to cancel.
    orders: VecDeque<(u64, u32)>,
    /// Admin: deposits still to send.
    pending: VecDeque<(u32, Input)>,
    pub admin: bool,
}

impl Client {
    pub fn new(account: u32) -> Client {
        Client {
            account,
            session_id: session_id_of(account),
            conn: None,
            stream: Vec::new(),
            accepted: BTreeSet::new(),
            known_from: 0,
            asked_fresh: false,
            next_cl_ord_id: 1,
            next_no: 1,
            unanswered: BTreeMap::new(),
            resent: BTreeSet::new(),
            orders: VecDeque::new(),
            pending: VecDeque::new(),
            admin: false,
        }
    }

    /// The admin client: deposits of every asset to each of `accounts` on every shard.
    pub fn admin(plan: &ShardPlan, accounts: &[u32], amount: u64) -> Client {
        let mut c = Client::new(ADMIN_ACCOUNT);
        c.admin = true;
        let mut request_id = 1;
        for &a in accounts {
            for s in 0..plan.shards {
                let mut assets = vec![QUOTE_ASSET];
                assets.extend(
                    (1..=INSTRUMENTS)
                        .filter(|&i| plan.shard(i) == s)
                        .map(|i| i + 1),
                );
                for asset in assets {
                    c.pending.push_back((
                        s,
                        Input::Deposit(Deposit {
                            amount,
                            request_id,
                            account: a,
                            asset,
                        }),
                    ));
                    request_id += 1;
                }
            }
        }
        c
    }

    /// The seq of the last numbered reply received (0: none).
    pub fn last_seq(&self) -> u64 {
        self.stream.len() as u64
    }

    /// Takes numbered reply `seq` (`frame`, decoded `msg`) into the session's stream: it must
    /// be the next (`session-reply-gap`, `session-reply-twice`), and a fill or cancel of one of
    /// the session's orders must follow the order's `OrderAccepted`
    /// (`session-reply-wrong-order`). `Some`: the check it fails.
    pub fn take_reply(
        &mut self,
        seq: u64,
        frame: &[u8],
        msg: &ServerMessage,
    ) -> Option<(&'static str, String)> {
        let (session, last) = (self.session_id, self.last_seq());
        if seq <= last {
            let how = if self.stream[(seq - 1) as usize] == frame {
                "again, the same"
            } else {
                "again, with other content"
            };
            return Some((
                "session-reply-twice",
                format!("session {session} got reply seq {seq} {how} after seq {last}: {msg:?}"),
            ));
        }
        if seq > last + 1 {
            return Some((
                "session-reply-gap",
                format!("session {session} got reply seq {seq} after seq {last}: {msg:?}"),
            ));
        }
        self.stream.push(frame.to_vec());
        let order = match msg {
            ServerMessage::OrderAccepted(m) => {
                self.accepted.insert(m.cl_ord_id);
                None
            }
            ServerMessage::OrderExecuted(m) => Some(m.cl_ord_id),
            ServerMessage::OrderCancelled(m) => Some(m.cl_ord_id),
            _ => None,
        };
        match order {
            Some(o) if !self.accepted.contains(&o) => Some((
                "session-reply-wrong-order",
                format!(
                    "session {session} got reply seq {seq} about order {o} before its \
                     OrderAccepted: {msg:?}"
                ),
            )),
            _ => None,
        }
    }

    /// A `LoginAccepted` with `next_seq`: if it skips replies the client never received (it
    /// asked for no replay), they become placeholders and the stream is known from there on;
    /// its orders are then taken as accepted (their accepts may be among those skipped).
    /// Returns whether it skipped any.
    pub fn fresh_login(&mut self, next_seq: u64) -> bool {
        let last = self.last_seq();
        if !self.asked_fresh || next_seq <= last + 1 {
            return false;
        }
        self.stream.resize((next_seq - 1) as usize, Vec::new());
        self.known_from = self.stream.len();
        let ids = self.next_cl_ord_id;
        self.accepted.extend(1..ids);
        true
    }

    /// Takes numbered reply `seq` whatever came before (the session checks are off): the
    /// stream is known from it on.
    pub fn resync(&mut self, seq: u64, frame: &[u8]) {
        self.stream.resize((seq - 1) as usize, Vec::new());
        self.stream.push(frame.to_vec());
        self.known_from = self.stream.len() - 1;
        let ids = self.next_cl_ord_id;
        self.accepted.extend(1..ids);
    }

    /// The `Login` that resumes the session's stream after the last reply received.
    pub fn login(&self) -> Login {
        Login {
            account: self.account,
            session_id: self.session_id,
            requested_next_seq: self.last_seq() + 1,
            token: token_of(&token_text(self.account)),
        }
    }

    /// Whether the client has something to send now.
    pub fn idle(&self) -> bool {
        self.admin && self.pending.is_empty()
    }

    /// The next new request (kept as unanswered).
    pub fn next_request(&mut self, plan: &ShardPlan, rng: &mut Xoshiro256PlusPlus) -> Option<Req> {
        let no = self.next_no;
        let (origin, account, input) = if self.admin {
            let (shard, input) = self.pending.pop_front()?;
            (origin_of(shard, ADMIN_ACCOUNT), ADMIN_ACCOUNT, input)
        } else if rng.gen_range(0..5) == 0 && !self.orders.is_empty() {
            let k = rng.gen_range(0..self.orders.len());
            let (id, origin) = self.orders.remove(k)?;
            (
                origin,
                self.account,
                Input::CancelOrder(CancelOrder {
                    cl_ord_id: id,
                    remaining_qty: 0,
                }),
            )
        } else {
            let id = self.next_cl_ord_id;
            self.next_cl_ord_id += 1;
            let instrument = rng.gen_range(1..=INSTRUMENTS);
            let side = if rng.gen_bool(0.5) {
                Side::Buy
            } else {
                Side::Sell
            };
            let off = rng.gen_range(-20i64..20);
            let price = 100_000 + if side == Side::Buy { off - 5 } else { off + 5 };
            let origin = origin_of(plan.shard(instrument), self.account);
            self.orders.push_back((id, origin));
            if self.orders.len() > 32 {
                self.orders.pop_front();
            }
            (
                origin,
                self.account,
                Input::EnterOrder(EnterOrder {
                    cl_ord_id: id,
                    price,
                    qty: rng.gen_range(1..=10),
                    instrument,
                    side,
                    kind: OrderKind::Limit,
                    tif: if rng.gen_range(0..4) == 0 {
                        TimeInForce::Ioc
                    } else {
                        TimeInForce::Gtc
                    },
                    stp: StpMode::None,
                    post_only: false,
                    reduce_only: false,
                }),
            )
        };
        self.next_no += 1;
        let r = Req {
            no,
            origin,
            account,
            input,
        };
        self.unanswered.insert(no, r);
        Some(r)
    }
}
