//! The load: N order-entry sessions, each a market maker (quoting, replace-heavy) or a taker
//! (aggressing IOC orders, placing and cancelling passive ones), driven by a few threads.
//!
//! Open loop: session `i` has a schedule of intended send times at `rate / N` (evenly spaced);
//! a request's latency is `reply read − intended send` (coordinated-omission corrected: a
//! stalled node or a late load generator shows up as latency, not as fewer samples), and its
//! service time `reply read − actual send`. Closed loop: each session keeps `window` requests
//! outstanding and sends the next one when an answer comes (intended = actual send).
//!
//! Time is the raw TSC (`quanta`, the clock the node stamps with), converted once with the
//! node's calibration. Threads park in `ppoll(2)` until the next send is due or a reply arrives
//! (`spin` busy-polls instead).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hdrhistogram::Histogram;
use tpx_client::{req, token_from_str, Client, ClientConfig};
use tpx_node::observe::trace::TraceKind;
use tpx_wire::enums::{CancelReason, OrderKind, RequestKind, Side, StpMode, TimeInForce};
use tpx_wire::order_entry::{EnterOrder, ReplaceOrder};
use tpx_wire::replies::ServerMessage;

/// Lots of a maker's quote (takers take 1 to 3 a time, so quotes mostly live to be moved).
const MAKER_QTY: u64 = 100;

/// Highest latency a histogram holds (ns): 60 s.
pub const MAX_NS: u64 = 60_000_000_000;

pub fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_NS, 3).expect("valid bounds")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Open,
    Closed,
}

/// What a run's sessions are and how they are driven.
#[derive(Clone, Debug, serde::Serialize)]
pub struct LoadConfig {
    pub addr: SocketAddr,
    pub sessions: usize,
    /// Demo accounts `1..=accounts`, tokens `demo-token-<id>`.
    pub accounts: u32,
    pub instruments: Vec<u32>,
    /// On each instrument, every `takers_every`-th of its sessions is a taker, the rest are
    /// makers.
    pub takers_every: usize,
    /// Orders a maker keeps per side.
    pub levels: usize,
    pub threads: usize,
    pub spin: bool,
    pub mode: Mode,
    /// Closed loop: requests outstanding per session.
    pub window: usize,
    pub seed: u64,
    /// A base for session ids (distinct per run, so no old session is resumed).
    pub session_base: u32,
}

/// One answered request, as the load generator saw it (raw TSC).
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    pub account: u32,
    pub kind: TraceKind,
    pub cl_ord_id: u64,
    pub intended: u64,
    pub sent: u64,
    pub received: u64,
}

/// One second of a step, per thread, merged by the caller.
#[derive(Clone, Debug)]
pub struct Slot {
    pub corrected: Histogram<u64>,
    pub service: Histogram<u64>,
    pub sent: u64,
    pub answered: u64,
}

impl Slot {
    fn new() -> Slot {
        Slot {
            corrected: new_hist(),
            service: new_hist(),
            sent: 0,
            answered: 0,
        }
    }
}

/// What one step (one target rate) produced.
#[derive(Debug)]
pub struct StepOutput {
    pub target_rate: f64,
    pub duration_s: f64,
    pub sent: u64,
    pub answered: u64,
    pub rejected: u64,
    pub rejects_by_reason: HashMap<String, u64>,
    /// Requests with no answer when the drain ended.
    pub unanswered: u64,
    /// Most requests outstanding at once (all sessions).
    pub max_outstanding: u64,
    /// How far the sender fell behind its schedule at the end (ns).
    pub final_lag_ns: u64,
    pub corrected: Histogram<u64>,
    pub service: Histogram<u64>,
    /// Service time of the requests that went through the node's stages (all answers but the
    /// gateway's own rejects): what the stage breakdown is compared with.
    pub service_node: Histogram<u64>,
    pub slots: Vec<Slot>,
    /// Samples of answered requests (for the stage breakdown), at most `max_samples`.
    pub samples: Vec<Sample>,
    pub errors: Vec<String>,
}

/// A small deterministic generator (xorshift64*).
#[derive(Clone, Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[derive(Clone, Copy, Debug)]
struct Live {
    cl: u64,
    side: Side,
}

#[derive(Clone, Copy, Debug)]
struct Pending {
    intended: u64,
    sent: u64,
}

/// One session: its connection, role, live orders and requests in flight.
struct Session {
    client: Client,
    account: u32,
    instrument: u32,
    mid: i64,
    taker: bool,
    next_cl: u64,
    live: Vec<Live>,
    inflight: HashMap<(TraceKind, u64), Pending>,
    rng: Rng,
    /// Next intended send (raw TSC, f64 to keep the period exact).
    next_due: f64,
    taker_side: bool,
}

impl Session {
    fn cl(&mut self) -> u64 {
        self.next_cl += 1;
        self.next_cl
    }

    fn enter(&mut self, side: Side, price: i64, qty: u64, tif: TimeInForce) -> (TraceKind, u64) {
        let cl = self.cl();
        self.client.queue(&req::enter(EnterOrder {
            cl_ord_id: cl,
            price,
            qty,
            instrument: self.instrument,
            side,
            kind: OrderKind::Limit,
            tif,
            stp: StpMode::None,
            post_only: false,
            reduce_only: false,
        }));
        if tif == TimeInForce::Gtc {
            self.live.push(Live { cl, side });
        }
        (TraceKind::Enter, cl)
    }

    /// Queues the session's next request; returns its answer key.
    fn next_request(&mut self, levels: usize) -> (TraceKind, u64) {
        let band = 2 * levels as i64;
        let mid = self.mid;
        if self.taker {
            let r = self.rng.below(100);
            let passive = self.live.len();
            if r < 70 || (r >= 90 && passive == 0) {
                self.taker_side = !self.taker_side;
                let (side, price) = if self.taker_side {
                    (Side::Buy, mid + 1 + band)
                } else {
                    (Side::Sell, mid - 1 - band)
                };
                let qty = 1 + self.rng.below(3);
                return self.enter(side, price, qty, TimeInForce::Ioc);
            }
            if r < 90 && passive < 20 {
                let off = 3 + band + self.rng.below(5) as i64;
                let (side, price) = if self.rng.below(2) == 0 {
                    (Side::Buy, mid - off)
                } else {
                    (Side::Sell, mid + off)
                };
                return self.enter(side, price, 1, TimeInForce::Gtc);
            }
            let k = self.rng.below(passive as u64) as usize;
            let o = self.live.swap_remove(k);
            self.client.queue(&req::cancel(o.cl, 0));
            return (TraceKind::Cancel, o.cl);
        }
        // Maker: fill the ladder, then mostly move quotes (replace), sometimes pull one.
        let bids = self.live.iter().filter(|l| l.side == Side::Buy).count();
        let asks = self.live.len() - bids;
        let price_for = |rng: &mut Rng, side: Side| {
            let off = 1 + rng.below(band as u64) as i64;
            match side {
                Side::Buy => mid - off,
                Side::Sell => mid + off,
            }
        };
        if bids < levels || asks < levels {
            let side = if bids <= asks { Side::Buy } else { Side::Sell };
            let price = price_for(&mut self.rng, side);
            return self.enter(side, price, MAKER_QTY, TimeInForce::Gtc);
        }
        let k = self.rng.below(self.live.len() as u64) as usize;
        if self.rng.below(100) < 90 {
            let side = self.live[k].side;
            let price = price_for(&mut self.rng, side);
            let orig = self.live[k].cl;
            let new = self.cl();
            self.live[k].cl = new;
            self.client.queue(&req::replace(ReplaceOrder {
                orig_cl_ord_id: orig,
                new_cl_ord_id: new,
                price,
                qty: MAKER_QTY,
            }));
            (TraceKind::Replace, new)
        } else {
            let o = self.live.swap_remove(k);
            self.client.queue(&req::cancel(o.cl, 0));
            (TraceKind::Cancel, o.cl)
        }
    }
}

/// [`reply_key`] plus whether the gateway answered it itself (a session-level reject, codes
/// >= 32: throttled, backpressure, ...), so the request never went through the node's stages.
fn reply_key_gw(m: &ServerMessage) -> Option<((TraceKind, u64), Option<String>, bool)> {
    let gw = matches!(m, ServerMessage::OrderRejected(r) if r.reason.as_u8() >= 32);
    reply_key(m).map(|(k, r)| (k, r, gw))
}

/// The answer key of a reply, and whether it is a reject (with its reason), or `None` for
/// replies that answer no request (fills, IOC remainders, heartbeats).
fn reply_key(m: &ServerMessage) -> Option<((TraceKind, u64), Option<String>)> {
    match m {
        ServerMessage::OrderAccepted(a) => Some(((TraceKind::Enter, a.cl_ord_id), None)),
        ServerMessage::OrderReplaced(r) => Some(((TraceKind::Replace, r.new_cl_ord_id), None)),
        ServerMessage::OrderCancelled(c) if c.reason == CancelReason::UserRequested => {
            Some(((TraceKind::Cancel, c.cl_ord_id), None))
        }
        ServerMessage::OrderRejected(r) => {
            let kind = match r.request {
                RequestKind::EnterOrder => TraceKind::Enter,
                RequestKind::ReplaceOrder => TraceKind::Replace,
                RequestKind::CancelOrder => TraceKind::Cancel,
                _ => return None,
            };
            Some(((kind, r.cl_ord_id), Some(format!("{:?}", r.reason))))
        }
        _ => None,
    }
}

/// Connects every session (the caller keeps them across steps).
pub fn connect(cfg: &LoadConfig) -> Result<Vec<SessionHandle>, String> {
    let mut out = Vec::new();
    for i in 0..cfg.sessions {
        let account = (i as u32 % cfg.accounts.max(1)) + 1;
        let session_id = cfg.session_base.wrapping_add(i as u32).max(1);
        let mut cc = ClientConfig::new(
            cfg.addr,
            account,
            session_id,
            token_from_str(&format!("demo-token-{account}")),
        );
        cc.read_buffer = 1 << 20;
        let client = Client::connect_at(cc, 0)
            .map_err(|e| format!("session {i} (account {account}) login: {e}"))?;
        let _ = client.stream().set_nodelay(true);
        // Round robin over the instruments; on each instrument, every `takers_every`-th of its
        // sessions is a taker, so makers and takers meet on every book.
        let n = cfg.instruments.len().max(1);
        let instrument = cfg.instruments[i % n];
        let rank = i / n;
        out.push(SessionHandle(Session {
            client,
            account,
            instrument,
            mid: tpx_node::config::reference_mid(instrument),
            taker: cfg.takers_every > 0 && rank % cfg.takers_every == cfg.takers_every - 1,
            // Unique and increasing per session across steps and runs.
            next_cl: tpx_node::runtime::clock::unix_ns() / 1000 * 1000,
            live: Vec::new(),
            inflight: HashMap::new(),
            rng: Rng((cfg.seed ^ 0x9e37_79b9_7f4a_7c15u64.wrapping_mul(i as u64 + 1)) | 1),
            next_due: 0.0,
            taker_side: false,
        }));
    }
    Ok(out)
}

/// A connected session (opaque).
pub struct SessionHandle(Session);

impl std::fmt::Debug for SessionHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionHandle")
            .field("account", &self.0.account)
            .field("instrument", &self.0.instrument)
            .field("taker", &self.0.taker)
            .finish()
    }
}

/// Parameters of one step.
#[derive(Clone, Copy, Debug)]
pub struct Step {
    /// Orders per second over all sessions (open loop; ignored closed loop).
    pub rate: f64,
    pub duration: Duration,
    /// How long to wait for the last answers after the last send.
    pub drain: Duration,
    /// Raw TSC ticks per second (the node's calibration when available).
    pub tsc_hz: f64,
    pub max_samples: usize,
}

/// Waits for any session socket to be readable, up to `timeout_ns`.
fn wait_readable(sessions: &[SessionHandle], fds: &mut Vec<libc::pollfd>, timeout_ns: u64) {
    fds.clear();
    for s in sessions {
        let want_out = s.0.client.pending_write() > 0;
        fds.push(libc::pollfd {
            fd: s.0.client.stream().as_raw_fd(),
            events: libc::POLLIN | if want_out { libc::POLLOUT } else { 0 },
            revents: 0,
        });
    }
    let ts = libc::timespec {
        tv_sec: (timeout_ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (timeout_ns % 1_000_000_000) as libc::c_long,
    };
    // SAFETY: `fds` is a live, correctly sized array of pollfd; no signal mask is changed.
    unsafe {
        libc::ppoll(
            fds.as_mut_ptr(),
            fds.len() as libc::nfds_t,
            &ts,
            std::ptr::null(),
        );
    }
}

/// Runs one step over `sessions` on `cfg.threads` threads; returns the merged output.
pub fn run_step(
    cfg: &LoadConfig,
    sessions: &mut Vec<SessionHandle>,
    step: Step,
    stop: &Arc<AtomicBool>,
) -> StepOutput {
    let threads = cfg.threads.clamp(1, sessions.len().max(1));
    let mut groups: Vec<Vec<SessionHandle>> = (0..threads).map(|_| Vec::new()).collect();
    for (i, s) in sessions.drain(..).enumerate() {
        groups[i % threads].push(s);
    }
    let n_sessions: usize = groups.iter().map(|g| g.len()).sum();
    let clock = tpx_node::runtime::clock::tsc_clock();
    let start = clock.raw();
    let results: Vec<(Vec<SessionHandle>, ThreadOut)> = std::thread::scope(|sc| {
        let hs: Vec<_> = groups
            .into_iter()
            .map(|g| {
                let cfg = cfg.clone();
                let stop = stop.clone();
                sc.spawn(move || drive(g, &cfg, step, start, n_sessions, &stop))
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().expect("driver thread"))
            .collect()
    });
    let mut out = StepOutput {
        target_rate: step.rate,
        duration_s: step.duration.as_secs_f64(),
        sent: 0,
        answered: 0,
        rejected: 0,
        rejects_by_reason: HashMap::new(),
        unanswered: 0,
        max_outstanding: 0,
        final_lag_ns: 0,
        corrected: new_hist(),
        service: new_hist(),
        service_node: new_hist(),
        slots: Vec::new(),
        samples: Vec::new(),
        errors: Vec::new(),
    };
    for (g, t) in results {
        sessions.extend(g);
        out.sent += t.sent;
        out.answered += t.answered;
        out.rejected += t.rejected;
        for (k, v) in t.rejects_by_reason {
            *out.rejects_by_reason.entry(k).or_default() += v;
        }
        out.unanswered += t.unanswered;
        out.max_outstanding += t.max_outstanding;
        out.final_lag_ns = out.final_lag_ns.max(t.final_lag_ns);
        let _ = out.corrected.add(&t.corrected);
        let _ = out.service.add(&t.service);
        let _ = out.service_node.add(&t.service_node);
        for (k, s) in t.slots.into_iter().enumerate() {
            if out.slots.len() <= k {
                out.slots.push(Slot::new());
            }
            let o = &mut out.slots[k];
            let _ = o.corrected.add(&s.corrected);
            let _ = o.service.add(&s.service);
            o.sent += s.sent;
            o.answered += s.answered;
        }
        let room = step.max_samples.saturating_sub(out.samples.len());
        out.samples.extend(t.samples.into_iter().take(room));
        out.errors.extend(t.errors);
    }
    out
}

struct ThreadOut {
    sent: u64,
    answered: u64,
    rejected: u64,
    rejects_by_reason: HashMap<String, u64>,
    unanswered: u64,
    max_outstanding: u64,
    final_lag_ns: u64,
    corrected: Histogram<u64>,
    service: Histogram<u64>,
    service_node: Histogram<u64>,
    slots: Vec<Slot>,
    samples: Vec<Sample>,
    errors: Vec<String>,
}

/// One driver thread's loop over its sessions.
fn drive(
    mut group: Vec<SessionHandle>,
    cfg: &LoadConfig,
    step: Step,
    start: u64,
    n_sessions: usize,
    stop: &AtomicBool,
) -> (Vec<SessionHandle>, ThreadOut) {
    // Sends on schedule: the default 50 µs timer slack would make each `ppoll` until the next
    // send late by up to that, which the corrected latency would count against the node.
    tpx_node::runtime::idle::tighten_timer_slack();
    let clock = tpx_node::runtime::clock::tsc_clock();
    let ns_per_tick = 1e9 / step.tsc_hz;
    let ticks = |ns: f64| ns / ns_per_tick;
    let period = if cfg.mode == Mode::Open {
        ticks(1e9 * n_sessions as f64 / step.rate.max(1.0))
    } else {
        0.0
    };
    let end = start + ticks(step.duration.as_secs_f64() * 1e9) as u64;
    let drain_end = end + ticks(step.drain.as_secs_f64() * 1e9) as u64;
    let max_samples = step.max_samples / cfg.threads.max(1);
    let mut o = ThreadOut {
        sent: 0,
        answered: 0,
        rejected: 0,
        rejects_by_reason: HashMap::new(),
        unanswered: 0,
        max_outstanding: 0,
        final_lag_ns: 0,
        corrected: new_hist(),
        service: new_hist(),
        service_node: new_hist(),
        slots: Vec::new(),
        samples: Vec::with_capacity(max_samples.min(1 << 22)),
        errors: Vec::new(),
    };
    let n = group.len() as f64;
    for (k, s) in group.iter_mut().enumerate() {
        // Stagger the sessions' schedules over one period.
        s.0.next_due = start as f64 + period * (k as f64 + 0.5) / n;
        s.0.inflight.clear();
    }
    let slot_ticks = ticks(1e9);
    let mut fds = Vec::new();
    let mut dead = vec![false; group.len()];
    let mut ready = tpx_node::runtime::readiness::Readiness::default();
    let mut readable = vec![true; group.len()];
    loop {
        let now = clock.raw();
        if stop.load(Ordering::Relaxed) || now >= drain_end {
            break;
        }
        let sending = now < end;
        let mut outstanding = 0u64;
        let mut next_due = f64::MAX;
        ready.clear();
        for (k, sh) in group.iter().enumerate() {
            ready.push(k as u32, sh.0.client.stream().as_raw_fd());
        }
        readable.iter_mut().for_each(|r| *r = false);
        for &k in ready.poll() {
            readable[k as usize] = true;
        }
        for (k, sh) in group.iter_mut().enumerate() {
            if dead[k] {
                continue;
            }
            let s = &mut sh.0;
            if sending {
                match cfg.mode {
                    Mode::Open => {
                        while s.next_due <= now as f64 && (s.next_due as u64) < end {
                            let intended = s.next_due as u64;
                            s.next_due += period;
                            let key = s.next_request(cfg.levels);
                            s.inflight.insert(
                                key,
                                Pending {
                                    intended,
                                    sent: clock.raw(),
                                },
                            );
                            o.sent += 1;
                            let slot = ((intended - start) as f64 / slot_ticks) as usize;
                            slot_mut(&mut o.slots, slot).sent += 1;
                        }
                        next_due = next_due.min(s.next_due);
                    }
                    Mode::Closed => {
                        while s.inflight.len() < cfg.window.max(1) {
                            let key = s.next_request(cfg.levels);
                            let t = clock.raw();
                            s.inflight.insert(
                                key,
                                Pending {
                                    intended: t,
                                    sent: t,
                                },
                            );
                            o.sent += 1;
                            let slot = ((t - start) as f64 / slot_ticks) as usize;
                            slot_mut(&mut o.slots, slot).sent += 1;
                        }
                    }
                }
            }
            if let Err(e) = s.client.flush() {
                o.errors.push(format!("account {} send: {e}", s.account));
                dead[k] = true;
                continue;
            }
            let Session {
                client,
                inflight,
                live,
                account,
                ..
            } = s;
            let account = *account;
            let mut received = 0u64;
            let mut forget = Vec::new();
            // Only a session whose socket `poll` named is read (one system call for all of
            // them, not a `recv` each: the load generator's CPU is the node's on two vCPUs).
            let r = if !readable[k] {
                Ok(0)
            } else {
                client.poll_batch(|m| {
                    if received == 0 {
                        received = clock.raw();
                    }
                    match m {
                        ServerMessage::OrderExecuted(x) if x.leaves_qty == 0 => {
                            forget.push(x.cl_ord_id)
                        }
                        ServerMessage::OrderCancelled(c) => forget.push(c.cl_ord_id),
                        _ => {}
                    }
                    let Some((key, reject, by_gateway)) = reply_key_gw(m) else {
                        return;
                    };
                    let Some(p) = inflight.remove(&key) else {
                        return;
                    };
                    if let Some(reason) = reject {
                        o.rejected += 1;
                        *o.rejects_by_reason.entry(reason).or_default() += 1;
                        forget.push(key.1);
                    }
                    o.answered += 1;
                    let corr = ((received.saturating_sub(p.intended)) as f64 * ns_per_tick) as u64;
                    let serv = ((received.saturating_sub(p.sent)) as f64 * ns_per_tick) as u64;
                    let corr = corr.clamp(1, MAX_NS);
                    let serv = serv.clamp(1, MAX_NS);
                    let _ = o.corrected.record(corr);
                    let _ = o.service.record(serv);
                    if !by_gateway {
                        let _ = o.service_node.record(serv);
                    }
                    let slot = ((p.intended.saturating_sub(start)) as f64 / slot_ticks) as usize;
                    let sl = slot_mut(&mut o.slots, slot);
                    let _ = sl.corrected.record(corr);
                    let _ = sl.service.record(serv);
                    sl.answered += 1;
                    if o.samples.len() < max_samples {
                        o.samples.push(Sample {
                            account,
                            kind: key.0,
                            cl_ord_id: key.1,
                            intended: p.intended,
                            sent: p.sent,
                            received,
                        });
                    }
                })
            };
            if let Err(e) = r {
                o.errors.push(format!("account {account} receive: {e}"));
                dead[k] = true;
                continue;
            }
            for cl in forget {
                if let Some(k) = live.iter().position(|l| l.cl == cl) {
                    live.swap_remove(k);
                }
            }
            let _ = s.client.maintain();
            outstanding += s.inflight.len() as u64;
        }
        o.max_outstanding = o.max_outstanding.max(outstanding);
        if !sending && outstanding == 0 {
            break;
        }
        if cfg.spin {
            std::hint::spin_loop();
            continue;
        }
        let now = clock.raw();
        let wait_ticks = if sending && cfg.mode == Mode::Open {
            (next_due - now as f64).max(0.0)
        } else {
            ticks(1e6)
        };
        if wait_ticks > 0.0 {
            let wait_ns = ((wait_ticks * ns_per_tick) as u64).min(1_000_000);
            wait_readable(&group, &mut fds, wait_ns);
        }
    }
    if cfg.mode == Mode::Open {
        let lag = group
            .iter()
            .map(|s| s.0.next_due)
            .fold(f64::MAX, f64::min)
            .min(end as f64);
        o.final_lag_ns = ((end as f64 - lag).max(0.0) * ns_per_tick) as u64;
    }
    for s in group.iter_mut() {
        o.unanswered += s.0.inflight.len() as u64;
        s.0.inflight.clear();
    }
    (group, o)
}

fn slot_mut(slots: &mut Vec<Slot>, k: usize) -> &mut Slot {
    while slots.len() <= k {
        slots.push(Slot::new());
    }
    &mut slots[k]
}

/// Sessions a caller can forget about: logs them out (best effort).
pub fn close(sessions: Vec<SessionHandle>) {
    for mut s in sessions {
        let _ = s.0.client.logout(Duration::from_millis(200));
    }
}

impl SessionHandle {
    pub fn account(&self) -> u32 {
        self.0.account
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_keys_match_trace_keys() {
        use tpx_wire::enums::RejectReason;
        use tpx_wire::replies::OrderRejected;
        let m = ServerMessage::OrderRejected(OrderRejected {
            seq: 1,
            timestamp_ns: 0,
            cl_ord_id: 5,
            reason: RejectReason::UnknownOrder,
            request: RequestKind::ReplaceOrder,
        });
        let (key, reject) = reply_key(&m).unwrap();
        assert_eq!(key, (TraceKind::Replace, 5));
        assert_eq!(reject.as_deref(), Some("UnknownOrder"));
    }

    #[test]
    fn rng_is_deterministic() {
        let (mut a, mut b) = (Rng(7), Rng(7));
        for _ in 0..10 {
            assert_eq!(a.next(), b.next());
        }
        assert!(a.below(10) < 10);
    }
}
