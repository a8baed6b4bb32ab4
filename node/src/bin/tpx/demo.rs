//! `tpx up --demo`: simulated market makers and takers over real TCP, one thread each, parked
//! (blocking in `poll(2)`) rather than spinning, measuring the ack round trip of every order.
//! Each is a `FailoverClient` over every node of the appliance, as a market maker's client is:
//! after a takeover (the old primary logs its sessions out with `Logout(Failover)`) it logs in
//! to the new primary, resumes its reply stream and re-sends what had no answer, and the load
//! goes on.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tpx_client::failover::{Event, FailoverClient};
use tpx_client::{req, token_from_str, Client, ClientConfig};
use tpx_wire::enums::{OrderKind, RejectReason, Side, StpMode, TimeInForce};
use tpx_wire::order_entry::ClientMessage;
use tpx_wire::order_entry::{EnterOrder, ReplaceOrder};
use tpx_wire::replies::ServerMessage;

use tpx_node::config::reference_mid as start_mid;

use tpx_node::gateway::accounts::DemoAccount;

/// What the demo clients measured, shared with the printer.
#[derive(Debug)]
pub struct DemoStats {
    /// Ack round trips (µs) since the printer last took them.
    pub interval: Mutex<Histogram<u64>>,
    /// Every ack round trip (µs).
    pub total: Mutex<Histogram<u64>>,
    pub sent: AtomicU64,
    pub rejected: AtomicU64,
    /// Rejects by wire reason code.
    pub rejected_by_reason: [AtomicU64; 64],
    pub errors: AtomicU64,
    /// Demo clients (the admin's included) that moved to another node after a takeover.
    pub failovers: AtomicU64,
    /// The last trade price (ticks) a demo client saw per instrument (`id % 64`), 0: none.
    pub last_px: [AtomicI64; 64],
    /// Admin requests of the demo's mark/funding thread: accepted, rejected.
    pub admin_accepted: AtomicU64,
    pub admin_rejected: AtomicU64,
}

/// Reject reasons that mean "not enough money or margin" (risk on).
pub const RISK_REJECTS: [RejectReason; 3] = [
    RejectReason::InsufficientBalance,
    RejectReason::MaxPositionExceeded,
    RejectReason::ReduceOnlyWouldIncrease,
];

impl DemoStats {
    /// Orders rejected for balance or margin ([`RISK_REJECTS`]).
    pub fn risk_rejects(&self) -> u64 {
        RISK_REJECTS
            .iter()
            .map(|r| self.rejected_by_reason[r.as_u8() as usize % 64].load(Ordering::Relaxed))
            .sum()
    }

    /// `(reason, count)` of the rejects seen, most frequent first.
    pub fn reject_reasons(&self) -> Vec<(RejectReason, u64)> {
        let mut v: Vec<(RejectReason, u64)> = RejectReason::ALL
            .iter()
            .map(|r| {
                (
                    *r,
                    self.rejected_by_reason[r.as_u8() as usize % 64].load(Ordering::Relaxed),
                )
            })
            .filter(|(_, n)| *n > 0)
            .collect();
        v.sort_by_key(|r| std::cmp::Reverse(r.1));
        v
    }
}

impl Default for DemoStats {
    fn default() -> Self {
        let h = || Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds");
        DemoStats {
            interval: Mutex::new(h()),
            total: Mutex::new(h()),
            sent: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            rejected_by_reason: std::array::from_fn(|_| AtomicU64::new(0)),
            errors: AtomicU64::new(0),
            failovers: AtomicU64::new(0),
            last_px: std::array::from_fn(|_| AtomicI64::new(0)),
            admin_accepted: AtomicU64::new(0),
            admin_rejected: AtomicU64::new(0),
        }
    }
}

/// A tiny deterministic generator (xorshift64*), so the demo needs no RNG crate.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % ((hi - lo + 1) as u64)) as i64
    }
}

/// One demo client: a session plus the bookkeeping for ack latency.
struct Trader {
    client: FailoverClient,
    /// Requests of the next round, sent by [`Trader::round`].
    queued: Vec<ClientMessage>,
    next_cl: u64,
    inflight: HashMap<u64, Instant>,
    stats: Arc<DemoStats>,
    local: Histogram<u64>,
}

impl Trader {
    fn new(
        endpoints: &[SocketAddr],
        acct: &DemoAccount,
        stats: Arc<DemoStats>,
    ) -> Result<Trader, String> {
        let cfg = ClientConfig::new(endpoints[0], acct.id, 1, token_from_str(&acct.token));
        let client = FailoverClient::connect(endpoints.to_vec(), cfg)
            .map_err(|e| format!("demo login {}: {e}", acct.id))?;
        Ok(Trader {
            client,
            queued: Vec::new(),
            next_cl: tpx_node::runtime::clock::unix_ns(),
            inflight: HashMap::new(),
            stats,
            local: Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds"),
        })
    }

    fn cl(&mut self) -> u64 {
        self.next_cl += 1;
        self.next_cl
    }

    fn queue_enter(
        &mut self,
        instrument: u32,
        side: Side,
        price: i64,
        qty: u64,
        tif: TimeInForce,
    ) -> u64 {
        let cl = self.cl();
        self.queued.push(req::enter(EnterOrder {
            cl_ord_id: cl,
            price,
            qty,
            instrument,
            side,
            kind: OrderKind::Limit,
            tif,
            stp: StpMode::None,
            post_only: false,
            reduce_only: false,
        }));
        self.inflight.insert(cl, Instant::now());
        cl
    }

    fn queue_replace(&mut self, orig: u64, price: i64, qty: u64) -> u64 {
        let cl = self.cl();
        self.queued.push(req::replace(ReplaceOrder {
            orig_cl_ord_id: orig,
            new_cl_ord_id: cl,
            price,
            qty,
        }));
        self.inflight.insert(cl, Instant::now());
        cl
    }

    fn ack(&mut self, cl: u64) {
        if let Some(t0) = self.inflight.remove(&cl) {
            let us = t0.elapsed().as_micros().max(1) as u64;
            let _ = self.local.record(us.min(60_000_000));
        }
    }

    /// Sends what is queued and reads replies until every request has its ack (or `timeout`);
    /// hands each reply to `on_reply`. A takeover on the way is the client's business: it
    /// fails over, re-sends what had no answer, and the round goes on.
    fn round(
        &mut self,
        timeout: Duration,
        mut on_reply: impl FnMut(&ServerMessage),
    ) -> Result<(), String> {
        let sent = self.queued.len() as u64;
        for m in std::mem::take(&mut self.queued) {
            self.client.send(&m).map_err(|e| e.to_string())?;
        }
        self.stats.sent.fetch_add(sent, Ordering::Relaxed);
        let deadline = Instant::now() + timeout;
        while !self.inflight.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.inflight.clear();
                break;
            }
            match self.client.recv(left) {
                Ok(Event::Reply(m)) => self.on_reply(&m, &mut on_reply),
                // Sequenced before the takeover: its answer went with the old connection.
                Ok(Event::AlreadySequenced(cl)) => self.ack(cl),
                Ok(Event::FailedOver { .. }) => {
                    self.stats.failovers.fetch_add(1, Ordering::Relaxed);
                }
                Err(tpx_client::ClientError::Timeout) => continue,
                Err(e) => return Err(e.to_string()),
            }
        }
        // Pick up fills of resting orders that arrived meanwhile.
        while let Ok(Event::Reply(m)) = self.client.recv(Duration::ZERO) {
            self.on_reply(&m, &mut on_reply);
        }
        Ok(())
    }

    /// One reply: acks end a request's latency, rejects and fills are counted.
    fn on_reply(&mut self, m: &ServerMessage, on_reply: &mut impl FnMut(&ServerMessage)) {
        match m {
            ServerMessage::OrderAccepted(a) => self.ack(a.cl_ord_id),
            ServerMessage::OrderReplaced(r) => self.ack(r.new_cl_ord_id),
            ServerMessage::OrderRejected(r) => {
                self.stats.rejected.fetch_add(1, Ordering::Relaxed);
                self.stats.rejected_by_reason[r.reason.as_u8() as usize % 64]
                    .fetch_add(1, Ordering::Relaxed);
                self.ack(r.cl_ord_id);
            }
            ServerMessage::OrderExecuted(x) => {
                self.stats.last_px[x.instrument as usize % 64].store(x.price, Ordering::Relaxed)
            }
            _ => {}
        }
        on_reply(m);
    }

    /// Moves this thread's latencies to the shared histograms.
    fn publish(&mut self) {
        if self.local.is_empty() {
            return;
        }
        if let Ok(mut h) = self.stats.interval.lock() {
            let _ = h.add(&self.local);
        }
        if let Ok(mut h) = self.stats.total.lock() {
            let _ = h.add(&self.local);
        }
        self.local.reset();
    }
}

/// A market maker: keeps one bid and one ask on every instrument around a drifting mid, moving
/// them with replaces.
fn market_maker(
    endpoints: &[SocketAddr],
    acct: DemoAccount,
    instruments: Vec<u32>,
    stop: Arc<AtomicBool>,
    stats: Arc<DemoStats>,
    seed: u64,
) -> Result<(), String> {
    let mut t = Trader::new(endpoints, &acct, stats)?;
    let mut rng = Rng(seed | 1);
    let mut mids: Vec<i64> = instruments.iter().map(|&i| start_mid(i)).collect();
    // Live quote per (instrument index, side): cl_ord_id.
    let mut quotes: Vec<[Option<u64>; 2]> = vec![[None, None]; instruments.len()];
    let mut last_publish = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        for (k, &inst) in instruments.iter().enumerate() {
            mids[k] = (mids[k] + rng.range(-2, 2)).clamp(start_mid(inst) / 2, start_mid(inst) * 2);
            let spread = rng.range(1, 3);
            for (s, side) in [Side::Buy, Side::Sell].into_iter().enumerate() {
                let px = if side == Side::Buy {
                    mids[k] - spread
                } else {
                    mids[k] + spread
                };
                let qty = rng.range(1, 50) as u64;
                quotes[k][s] = Some(match quotes[k][s] {
                    Some(cl) => t.queue_replace(cl, px, qty),
                    None => t.queue_enter(inst, side, px, qty, TimeInForce::Gtc),
                });
            }
        }
        let index_of = |cl: u64, quotes: &[[Option<u64>; 2]]| {
            quotes
                .iter()
                .enumerate()
                .find_map(|(k, q)| q.iter().position(|c| *c == Some(cl)).map(|s| (k, s)))
        };
        t.round(Duration::from_secs(2), |m| {
            // A quote that is gone (filled, or its replace refused) is entered anew next round.
            let gone = match m {
                ServerMessage::OrderExecuted(e) if e.leaves_qty == 0 => Some(e.cl_ord_id),
                ServerMessage::OrderCancelled(c) if c.leaves_qty == 0 => Some(c.cl_ord_id),
                ServerMessage::OrderRejected(r) if r.reason != RejectReason::Throttled => {
                    Some(r.cl_ord_id)
                }
                _ => None,
            };
            if let Some(cl) = gone {
                if let Some((k, s)) = index_of(cl, &quotes) {
                    quotes[k][s] = None;
                }
            }
        })?;
        if last_publish.elapsed() >= Duration::from_millis(100) {
            t.publish();
            last_publish = Instant::now();
        }
    }
    t.publish();
    Ok(())
}

/// A taker: sends IOC orders that cross the quotes.
fn taker(
    endpoints: &[SocketAddr],
    acct: DemoAccount,
    instruments: Vec<u32>,
    stop: Arc<AtomicBool>,
    stats: Arc<DemoStats>,
    shared: Arc<tpx_node::runtime::state::NodeState>,
    seed: u64,
) -> Result<(), String> {
    let mut t = Trader::new(endpoints, &acct, stats)?;
    let mut rng = Rng(seed | 1);
    let mut last_publish = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        for _ in 0..4 {
            let k = (rng.next() % instruments.len() as u64) as usize;
            let inst = instruments[k];
            let side = if rng.next() % 2 == 0 {
                Side::Buy
            } else {
                Side::Sell
            };
            let idx = shared
                .instruments
                .iter()
                .position(|(i, _)| *i == inst)
                .unwrap_or(0);
            let (bid, ask) = shared.top(idx);
            let px = match side {
                Side::Buy => ask.map_or(start_mid(inst) + 5, |(p, _)| p + 1),
                Side::Sell => bid.map_or(start_mid(inst) - 5, |(p, _)| p - 1),
            };
            let qty = rng.range(1, 20) as u64;
            t.queue_enter(inst, side, px, qty, TimeInForce::Ioc);
        }
        t.round(Duration::from_secs(2), |_| {})?;
        if last_publish.elapsed() >= Duration::from_millis(100) {
            t.publish();
            last_publish = Instant::now();
        }
    }
    t.publish();
    Ok(())
}

/// The venue's side of the demo (risk on): about once a second a mark price for every
/// perpetual from the last trade price the demo clients saw (the start mid before any trade),
/// and every tenth second a small funding rate (-5..=5 ppm).
fn marker(
    endpoints: &[SocketAddr],
    acct: DemoAccount,
    perps: Vec<u32>,
    stop: Arc<AtomicBool>,
    stats: Arc<DemoStats>,
) -> Result<(), String> {
    use tpx_client::admin::{self, AdminAnswer};
    // Session 2: session 1 of the admin account funds the demo accounts at start.
    let cfg = ClientConfig::new(endpoints[0], acct.id, 2, token_from_str(&acct.token));
    let mut c = admin_login(endpoints, &cfg)?;
    // Request ids increase across runs on the same log (funding ids must increase per
    // perpetual).
    let mut id = tpx_node::runtime::clock::unix_ns() / 1_000;
    let mut rng = Rng(0x5DEE_CE66_D1CE_4E5B);
    let mut tick = 0u64;
    while !stop.load(Ordering::Relaxed) {
        for &p in &perps {
            let px = match stats.last_px[p as usize % 64].load(Ordering::Relaxed) {
                0 => start_mid(p),
                px => px,
            };
            id += 1;
            let mut reqs = vec![admin::set_mark_price(id, p, px)];
            if tick % 10 == 9 {
                id += 1;
                reqs.push(admin::apply_funding(id, p, rng.range(-5, 5)));
            }
            for msg in reqs {
                match c.admin(&msg, Duration::from_secs(2)) {
                    Ok(AdminAnswer::Accepted(_)) => {
                        stats.admin_accepted.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(AdminAnswer::Rejected(_)) => {
                        stats.admin_rejected.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(tpx_client::ClientError::Timeout) => {}
                    // A takeover (`Logout(Failover)`, a closed connection): to the primary.
                    // Marks and funding are absolute and keyed by request id, so a lost one
                    // is simply superseded by the next.
                    Err(_) => {
                        c = admin_login(endpoints, &cfg)?;
                        stats.failovers.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                }
            }
        }
        tick += 1;
        // About a second, in short sleeps so that stopping is quick.
        for _ in 0..10 {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
            let _ = c.maintain();
        }
    }
    Ok(())
}

/// Logs the admin session in to whichever of `endpoints` serves (the primary), trying them in
/// turn for up to 10 s (a takeover in progress).
fn admin_login(endpoints: &[SocketAddr], cfg: &ClientConfig) -> Result<Client, String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut last = None;
        for &addr in endpoints {
            let mut c = cfg.clone();
            c.addr = addr;
            match Client::connect_at(c, 0) {
                Ok(c) => return Ok(c),
                Err(e) => last = Some(e),
            }
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "demo admin login: {}",
                last.map_or("no endpoint".to_string(), |e| e.to_string())
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The running demo load.
#[derive(Debug)]
pub struct Demo {
    pub stats: Arc<DemoStats>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<Result<(), String>>>,
}

impl Demo {
    /// Starts `makers` market makers and `takers` takers on the first accounts of `accounts`,
    /// and with `admin` (risk on: the admin account and the perpetuals) the mark/funding
    /// thread.
    pub fn start(
        endpoints: Vec<SocketAddr>,
        accounts: &[DemoAccount],
        makers: usize,
        takers: usize,
        instruments: Vec<u32>,
        shared: Arc<tpx_node::runtime::state::NodeState>,
        admin: Option<(DemoAccount, Vec<u32>)>,
    ) -> Demo {
        let stats = Arc::new(DemoStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        if let Some((acct, perps)) = admin.filter(|(_, p)| !p.is_empty()) {
            let (stats, stop, endpoints) = (stats.clone(), stop.clone(), endpoints.clone());
            let t = std::thread::Builder::new()
                .name("demo-marks".into())
                .spawn(move || {
                    let r = marker(&endpoints, acct, perps, stop, stats.clone());
                    if r.is_err() {
                        stats.errors.fetch_add(1, Ordering::Relaxed);
                    }
                    r
                })
                .expect("spawn demo thread");
            threads.push(t);
        }
        for (i, acct) in accounts.iter().take(makers + takers).cloned().enumerate() {
            let (stats, stop, inst) = (stats.clone(), stop.clone(), instruments.clone());
            let endpoints = endpoints.clone();
            let seed = 0x9E37_79B9_7F4A_7C15u64.wrapping_mul(i as u64 + 1);
            let shared = shared.clone();
            let t = std::thread::Builder::new()
                .name(format!("demo-{}", acct.id))
                .spawn(move || {
                    let r = if i < makers {
                        market_maker(&endpoints, acct, inst, stop, stats.clone(), seed)
                    } else {
                        taker(&endpoints, acct, inst, stop, stats.clone(), shared, seed)
                    };
                    if r.is_err() {
                        stats.errors.fetch_add(1, Ordering::Relaxed);
                    }
                    r
                })
                .expect("spawn demo thread");
            threads.push(t);
        }
        Demo {
            stats,
            stop,
            threads,
        }
    }

    /// Stops the clients and returns their errors.
    pub fn stop(self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        self.threads
            .into_iter()
            .filter_map(|t| match t.join() {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e),
                Err(_) => Some("demo thread panicked".into()),
            })
            .collect()
    }
}
