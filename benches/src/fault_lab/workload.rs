//! The workload: one `FailoverClient` per trading account sending crossing orders, replaces
//! and cancels on BTC-USDT, and an admin session depositing; every request and answer goes to
//! the history.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use tpx_client::admin::{self, AdminAnswer};
use tpx_client::{req, token_from_str, Client, ClientConfig, ClientError, Event, FailoverClient};
use tpx_wire::enums::{OrderKind, RejectReason, Side, StpMode, TimeInForce};
use tpx_wire::order_entry::{EnterOrder, ReplaceOrder};
use tpx_wire::replies::ServerMessage;

use super::cluster::{token_text, ADMIN};
use super::history::{Event as Ev, History, Kind};

pub const INSTRUMENT: u32 = 1;
pub const MID: i64 = 50_000;
/// Shard 0 holds every instrument (one shard per node).
const SHARD: u16 = 0;
const USDT: u32 = 1;
const BTC: u32 = 2;

/// Shared by the workload threads and the lab.
#[derive(Debug, Default)]
pub struct Counters {
    /// Answers that say a request is sequenced (accepted, replaced, already sequenced).
    pub acked: AtomicU64,
    pub sent: AtomicU64,
    /// Stop sending (then drain).
    pub stop: AtomicBool,
    /// `failover-bench`: the endpoint (node index + 1; 0: none) whose first acknowledgement
    /// after [`Counters::watch`] is stamped into `first_ack_ns` (`CLOCK_MONOTONIC`).
    pub watch_endpoint: AtomicUsize,
    pub first_ack_ns: AtomicU64,
}

impl Counters {
    /// Stamp the next acknowledgement (accepted, replaced, already sequenced) a client gets
    /// from node `k` (`None`: stop watching).
    pub fn watch(&self, k: Option<usize>) {
        self.first_ack_ns.store(0, Ordering::SeqCst);
        self.watch_endpoint
            .store(k.map_or(0, |k| k + 1), Ordering::SeqCst);
    }

    /// An acknowledgement from endpoint `k` arrived (counted, and stamped when watched).
    fn acked_by(&self, k: usize) {
        self.acked.fetch_add(1, Ordering::Relaxed);
        if self.watch_endpoint.load(Ordering::Relaxed) == k + 1 {
            let now = tpx_sequencer::process::mono_ns();
            let _ = self
                .first_ack_ns
                .compare_exchange(0, now, Ordering::SeqCst, Ordering::Relaxed);
        }
    }
}

/// A trader's settings.
#[derive(Clone, Debug)]
pub struct TraderConfig {
    pub account: u32,
    pub endpoints: Vec<SocketAddr>,
    pub ns: Option<String>,
    pub seed: u64,
    /// Requests per second.
    pub rate: u64,
    /// How long to wait for the answers still missing once the lab says stop.
    pub drain: Duration,
}

fn connect(account: u32, endpoints: &[SocketAddr], c: &Counters) -> Option<FailoverClient> {
    let cfg = ClientConfig::new(
        endpoints[0],
        account,
        1,
        token_from_str(&token_text(account)),
    );
    loop {
        match FailoverClient::connect(endpoints.to_vec(), cfg.clone()) {
            Ok(mut fc) => {
                fc.failover_timeout = Duration::from_secs(3);
                return Some(fc);
            }
            Err(e) => {
                if c.stop.load(Ordering::Relaxed) {
                    eprintln!("fault-lab: account {account}: no login: {e}");
                    return None;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// Runs one trader until [`Counters::stop`] and its drain; returns its errors.
pub fn trader(tc: TraderConfig, hist: History, c: Arc<Counters>) -> Vec<String> {
    let mut errors = Vec::new();
    if let Err(e) = super::topology::enter(tc.ns.as_deref()) {
        return vec![e];
    }
    let a = tc.account;
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(tc.seed ^ u64::from(a) << 32);
    let Some(mut fc) = connect(a, &tc.endpoints, &c) else {
        return vec![format!("account {a}: never logged in")];
    };
    // Requests sent and not answered yet (by the id their answer names).
    let mut pending: BTreeMap<u64, Kind> = BTreeMap::new();
    // Orders resting as far as this client knows: id -> leaves.
    let mut live: BTreeMap<u64, u64> = BTreeMap::new();
    let mut busy: BTreeSet<u64> = BTreeSet::new();
    let mut next_cl = 0u64;
    let gap = Duration::from_micros(1_000_000 / tc.rate.max(1));
    let mut next_send = Instant::now();
    let mut drain_until: Option<Instant> = None;
    // Since when the node answers `Unavailable` (it is not primary, or not yet: a deposed
    // primary logs its sessions out with `Logout(Failover)` and `FailoverClient` moves at once,
    // but a node that lost its lease answers `Unavailable` before the witness has granted the
    // other node a term). Sending stops, and once the requests in flight are answered (or
    // after 500 ms) the client logs in afresh: the standby refuses the login, the primary
    // takes it.
    let mut unavailable_since: Option<Instant> = None;
    loop {
        if let Some(t) = unavailable_since {
            if pending.is_empty() || t.elapsed() > Duration::from_millis(500) {
                unavailable_since = None;
                drop(fc);
                let Some(n) = connect(a, &tc.endpoints, &c) else {
                    errors.push(format!("account {a}: no login after Unavailable"));
                    break;
                };
                fc = n;
                let mut e = Ev::new(a, Kind::FailedOver, 0);
                e.detail = format!(
                    "endpoint {} after Unavailable answers, {} requests unanswered",
                    fc.endpoint(),
                    pending.len()
                );
                hist.record(e);
                // Not re-sent by the new client: their outcome stays unknown.
                for (id, k) in std::mem::take(&mut pending) {
                    let mut e = Ev::new(a, Kind::Unknown, id);
                    e.detail = format!("{k:?}, in flight at a re-login");
                    hist.record(e);
                }
                busy.clear();
            }
        }
        let stopping = c.stop.load(Ordering::Relaxed);
        if stopping && drain_until.is_none() {
            drain_until = Some(Instant::now() + tc.drain);
        }
        if let Some(d) = drain_until {
            if pending.is_empty() || Instant::now() >= d {
                break;
            }
        }
        if !stopping
            && unavailable_since.is_none()
            && Instant::now() >= next_send
            && pending.len() < 32
        {
            next_send += gap;
            if next_send < Instant::now() {
                next_send = Instant::now() + gap;
            }
            let free: Vec<u64> = live.keys().filter(|k| !busy.contains(k)).copied().collect();
            let roll = rng.gen_range(0..100);
            let pick = (!free.is_empty()).then(|| free[rng.gen_range(0..free.len())]);
            let (msg, ev) = match (roll, pick) {
                (0..=19, Some(orig)) => {
                    next_cl += 1;
                    let price = MID + rng.gen_range(-3..=3);
                    let qty = rng.gen_range(1..=5);
                    busy.insert(orig);
                    let mut e = Ev::new(a, Kind::Replace, next_cl);
                    (e.orig, e.price, e.qty) = (orig, price, qty);
                    (
                        req::replace(ReplaceOrder {
                            orig_cl_ord_id: orig,
                            new_cl_ord_id: next_cl,
                            price,
                            qty,
                        }),
                        e,
                    )
                }
                (20..=39, Some(id)) if live.len() > 4 => {
                    busy.insert(id);
                    (req::cancel(id, 0), Ev::new(a, Kind::Cancel, id))
                }
                _ => {
                    next_cl += 1;
                    let side = if rng.gen_bool(0.5) {
                        Side::Buy
                    } else {
                        Side::Sell
                    };
                    let price = MID + rng.gen_range(-3..=3);
                    let qty = rng.gen_range(1..=5);
                    let mut e = Ev::new(a, Kind::Enter, next_cl);
                    (e.price, e.qty) = (price, qty);
                    e.detail = format!("{side:?}");
                    (
                        req::enter(EnterOrder {
                            cl_ord_id: next_cl,
                            price,
                            qty,
                            instrument: INSTRUMENT,
                            side,
                            kind: OrderKind::Limit,
                            tif: TimeInForce::Gtc,
                            stp: StpMode::None,
                            post_only: false,
                            reduce_only: false,
                        }),
                        e,
                    )
                }
            };
            pending.insert(ev.cl, ev.kind);
            hist.record(ev);
            c.sent.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = fc.send(&msg) {
                // Kept by the client: re-sent when it next fails over.
                errors.push(format!("account {a}: send: {e}"));
            }
        }
        let wait = if stopping {
            Duration::from_millis(20)
        } else {
            next_send
                .saturating_duration_since(Instant::now())
                .clamp(Duration::from_micros(200), Duration::from_millis(20))
        };
        match fc.recv(wait) {
            Ok(Event::Reply(m)) => {
                if let ServerMessage::OrderRejected(x) = &m {
                    if x.reason == RejectReason::Unavailable {
                        unavailable_since.get_or_insert_with(Instant::now);
                    }
                }
                on_reply(a, &m, &mut pending, &mut live, &mut busy, &hist);
                if matches!(
                    m,
                    ServerMessage::OrderAccepted(_) | ServerMessage::OrderReplaced(_)
                ) {
                    c.acked_by(fc.endpoint());
                }
            }
            Ok(Event::AlreadySequenced(id)) => {
                pending.remove(&id);
                busy.remove(&id);
                c.acked_by(fc.endpoint());
                hist.record(Ev::new(a, Kind::AlreadySequenced, id));
            }
            Ok(Event::FailedOver { endpoint, resent }) => {
                let mut e = Ev::new(a, Kind::FailedOver, 0);
                e.detail = format!("endpoint {endpoint}, {resent} re-sent");
                hist.record(e);
            }
            Err(ClientError::Timeout) => {}
            Err(e) => {
                // The failover itself failed (no node accepted the login in time): try again.
                if errors.len() < 100 {
                    errors.push(format!("account {a}: {e}"));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    for (id, k) in pending {
        let mut e = Ev::new(a, Kind::Unknown, id);
        e.detail = format!("{k:?}");
        hist.record(e);
    }
    errors
}

fn on_reply(
    a: u32,
    m: &ServerMessage,
    pending: &mut BTreeMap<u64, Kind>,
    live: &mut BTreeMap<u64, u64>,
    busy: &mut BTreeSet<u64>,
    hist: &History,
) {
    match m {
        ServerMessage::OrderAccepted(x) => {
            pending.remove(&x.cl_ord_id);
            live.entry(x.cl_ord_id).or_insert(x.qty);
            let mut e = Ev::new(a, Kind::Accepted, x.cl_ord_id);
            (e.qty, e.price) = (x.qty, x.price);
            hist.record(e);
        }
        ServerMessage::OrderReplaced(x) => {
            pending.remove(&x.new_cl_ord_id);
            busy.remove(&x.orig_cl_ord_id);
            live.remove(&x.orig_cl_ord_id);
            live.insert(x.new_cl_ord_id, x.qty);
            let mut e = Ev::new(a, Kind::Replaced, x.new_cl_ord_id);
            (e.orig, e.qty, e.price) = (x.orig_cl_ord_id, x.qty, x.price);
            hist.record(e);
        }
        ServerMessage::OrderCancelled(x) => {
            pending.remove(&x.cl_ord_id);
            busy.remove(&x.cl_ord_id);
            live.remove(&x.cl_ord_id);
            let mut e = Ev::new(a, Kind::Cancelled, x.cl_ord_id);
            (e.qty, e.leaves) = (x.cancelled_qty, x.leaves_qty);
            e.detail = format!("{:?}", x.reason);
            hist.record(e);
        }
        ServerMessage::OrderRejected(x) => {
            let kind = pending.remove(&x.cl_ord_id);
            busy.remove(&x.cl_ord_id);
            let mut e = Ev::new(a, Kind::Rejected, x.cl_ord_id);
            e.detail = format!("{:?} {:?} (request {kind:?})", x.reason, x.request);
            hist.record(e);
        }
        ServerMessage::OrderExecuted(x) => {
            pending.remove(&x.cl_ord_id);
            if x.leaves_qty == 0 {
                live.remove(&x.cl_ord_id);
                busy.remove(&x.cl_ord_id);
            } else if let Some(l) = live.get_mut(&x.cl_ord_id) {
                *l = x.leaves_qty;
            }
            let mut e = Ev::new(a, Kind::Fill, x.cl_ord_id);
            (e.qty, e.price, e.leaves, e.trade_id) = (x.qty, x.price, x.leaves_qty, x.trade_id);
            hist.record(e);
        }
        _ => {}
    }
}

/// Funds every trader (USDT and BTC on shard 0), then deposits a little every `every` until
/// stop; each deposit is re-sent (same `request_id`) until answered.
pub fn admin_loop(
    endpoints: Vec<SocketAddr>,
    ns: Option<String>,
    accounts: u32,
    every: Duration,
    hist: History,
    c: Arc<Counters>,
    funded: Arc<AtomicBool>,
) -> Vec<String> {
    let mut errors = Vec::new();
    if let Err(e) = super::topology::enter(ns.as_deref()) {
        funded.store(true, Ordering::Relaxed);
        return vec![e];
    }
    let mut client: Option<Client> = None;
    let mut request_id = 0u64;
    let mut queue: Vec<(u32, u32, u64)> = Vec::new();
    for acct in 1..=accounts {
        queue.push((acct, USDT, 10_000_000_000_000));
        queue.push((acct, BTC, 100_000_000_000));
    }
    let mut k = 0usize;
    let give_up = Duration::from_secs(30);
    loop {
        if queue.is_empty() {
            funded.store(true, Ordering::Relaxed);
            if c.stop.load(Ordering::Relaxed) {
                break;
            }
            std::thread::sleep(every);
            k += 1;
            queue.push((1 + (k as u32 % accounts), USDT, 1_000_000));
            continue;
        }
        let (acct, asset, amount) = queue[0];
        request_id += 1;
        let msg = admin::deposit(request_id, acct, asset, amount, super::workload::SHARD);
        let mut e = Ev::new(ADMIN, Kind::Deposit, request_id);
        (e.qty, e.orig) = (amount, u64::from(acct));
        e.detail = format!("asset {asset}");
        hist.record(e);
        let t0 = Instant::now();
        let answer = loop {
            if t0.elapsed() > give_up {
                break None;
            }
            if client.is_none() {
                client = endpoints.iter().find_map(|&ep| {
                    let mut cfg =
                        ClientConfig::new(ep, ADMIN, 1, token_from_str(&token_text(ADMIN)));
                    cfg.login_timeout = Duration::from_millis(500);
                    Client::connect_at(cfg, 0).ok()
                });
                if client.is_none() {
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
            }
            let Some(cl) = client.as_mut() else { continue };
            match cl.admin(&msg, Duration::from_secs(1)) {
                Ok(a) => break Some(a),
                Err(_) => client = None,
            }
        };
        let mut e = match answer {
            Some(AdminAnswer::Accepted(_)) => Ev::new(ADMIN, Kind::DepositAccepted, request_id),
            Some(AdminAnswer::Rejected(r)) => {
                let mut e = Ev::new(ADMIN, Kind::DepositRejected, request_id);
                e.detail = format!("{:?}", r.reason);
                e
            }
            None => {
                errors.push(format!("deposit {request_id}: no answer in {give_up:?}"));
                Ev::new(ADMIN, Kind::Unknown, request_id)
            }
        };
        e.orig = u64::from(acct);
        if matches!(answer, Some(AdminAnswer::Accepted(_))) {
            c.acked.fetch_add(1, Ordering::Relaxed);
        }
        hist.record(e);
        queue.remove(0);
    }
    errors
}
