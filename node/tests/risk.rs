//! Accounts and pre-trade risk on the appliance's order path, with real processes: `tpx node`
//! with a `[risk]` section (the built-in instruments and their risk parameters, one shard),
//! an admin account funding traders through admin requests, orders refused for balance and
//! reduce-only, exact withdrawals after a trade (price, quantity and fees), mark price,
//! funding, liquidation; and failover: the promoted standby has the same balances.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tpx_client::admin::{self, AdminAnswer};
use tpx_client::{req, token_from_str, Client, ClientConfig, ClientError};
use tpx_node::gateway::accounts::{demo_accounts_file, DemoAccount};
use tpx_wire::enums::{BalanceReason, CancelReason, Liquidity, RejectReason, RequestKind, Side};
use tpx_wire::order_entry::{ClientMessage, EnterOrder};
use tpx_wire::replies::ServerMessage;

mod common;
mod procs;

use common::{cpus, limit};
use procs::{free_port, listening, node_config_with, Proc, WAIT};

const ADMIN: u32 = 50;
const USDT: u32 = 1;
const BTC: u32 = 2;
const BTC_USDT: u32 = 1;
const BTC_PERP: u32 = 3;
/// Fees and liquidations go to these venue accounts.
const RISK: &str = r#"
[risk]
fee_account = 60
liquidation_account = 61
fee_tiers = 2
assets = [1, 2, 3]
"#;

fn write_accounts(dir: &Path) {
    let mut accts: Vec<DemoAccount> = [1, 2, 3, ADMIN]
        .iter()
        .map(|&id| DemoAccount {
            id,
            name: format!("t{id}"),
            token: format!("tok-{id}"),
            admin: id == ADMIN,
        })
        .collect();
    accts.sort_by_key(|a| a.id);
    std::fs::write(
        dir.join("accounts.toml"),
        toml::to_string(&demo_accounts_file(&accts, 1_000_000)).unwrap(),
    )
    .unwrap();
}

fn client(addr: std::net::SocketAddr, account: u32) -> Client {
    let cfg = ClientConfig::new(addr, account, 1, token_from_str(&format!("tok-{account}")));
    procs::login_retrying(cfg, 1)
}

/// A single node (local log, fsync) with `[risk]`, one core.
fn single_config(dir: &Path) -> PathBuf {
    let cpu = cpus().first().copied().unwrap_or(0);
    let text = format!(
        r#"
listen = "127.0.0.1:0"
accounts_file = "accounts.toml"
idle = "park"
max_orders = 4096
max_accounts = 64
journal_capacity = 1024
[[core_plan.cores]]
cpu = {cpu}
gateway = true
sequencer = true
shards = [0]
[replication]
log_dir = "log"
write = "buffered"
"#
    ) + RISK;
    let p = dir.join("node.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// The next reply `pick` selects, skipping others (balance updates, heartbeats).
fn wait_for<T>(c: &mut Client, what: &str, mut pick: impl FnMut(&ServerMessage) -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match c.recv(left.min(Duration::from_millis(200))) {
            Ok(m) => {
                if let Some(t) = pick(&m) {
                    return t;
                }
            }
            Err(ClientError::Timeout) if !left.is_zero() => {}
            Err(e) => panic!("{what}: {e}"),
        }
    }
}

fn accepted(a: AdminAnswer) -> tpx_wire::admin::AdminAccepted {
    match a {
        AdminAnswer::Accepted(x) => x,
        AdminAnswer::Rejected(r) => panic!("admin request refused: {r:?}"),
    }
}

fn refused(a: AdminAnswer) -> RejectReason {
    match a {
        AdminAnswer::Rejected(r) => r.reason,
        AdminAnswer::Accepted(x) => panic!("admin request accepted: {x:?}"),
    }
}

fn reject_of(c: &mut Client, cl: u64) -> RejectReason {
    wait_for(c, "reject", |m| match m {
        ServerMessage::OrderRejected(r) if r.cl_ord_id == cl => Some(r.reason),
        ServerMessage::OrderAccepted(a) if a.cl_ord_id == cl => panic!("accepted: {a:?}"),
        _ => None,
    })
}

fn accept_of(c: &mut Client, cl: u64) {
    wait_for(c, "accept", |m| match m {
        ServerMessage::OrderAccepted(a) if a.cl_ord_id == cl => Some(()),
        ServerMessage::OrderRejected(r) if r.cl_ord_id == cl => panic!("refused: {r:?}"),
        _ => None,
    })
}

/// The fee of the next execution of order `cl`.
fn fee_of(c: &mut Client, cl: u64) -> (Liquidity, i64) {
    wait_for(c, "execution", |m| match m {
        ServerMessage::OrderExecuted(x) if x.cl_ord_id == cl => Some((x.liquidity, x.fee)),
        _ => None,
    })
}

/// 0.0010 BTC (10 lots) of account 1 against 100 USDT of account 2, then a trade of the 10 lots
/// at 60,000 USDT (account 1 the maker). Returns account 2's USDT left: 100 USDT - 60 USDT -
/// the 5 bps taker fee.
fn fund_and_trade(adm: &mut Client, c1: &mut Client, c2: &mut Client) -> u64 {
    let t = WAIT;
    let a = accepted(
        adm.admin(&admin::deposit(1, 1, BTC, 100_000, 0), t)
            .unwrap(),
    );
    assert_eq!(
        (a.available, a.held, a.account, a.shard),
        (100_000, 0, 1, 0)
    );
    assert_eq!(a.request, RequestKind::AdminDeposit);
    let b = wait_for(c1, "balance update", |m| match m {
        ServerMessage::BalanceUpdate(b) => Some(*b),
        _ => None,
    });
    assert_eq!(
        (b.delta, b.available, b.held, b.asset, b.shard, b.reason),
        (100_000, 100_000, 0, BTC, 0, BalanceReason::Deposit)
    );
    let a = accepted(
        adm.admin(&admin::deposit(1, 2, USDT, 100_000_000, 0), t)
            .unwrap(),
    );
    assert_eq!(a.available, 100_000_000);
    c1.send(&req::enter(limit(1, BTC_USDT, Side::Sell, 60_000, 10)))
        .unwrap();
    accept_of(c1, 1);
    c2.send(&req::enter(limit(1, BTC_USDT, Side::Buy, 60_000, 10)))
        .unwrap();
    // Notional 60,000 ticks * 10 lots * 100 = 60,000,000 (60 USDT): maker 2 bps, taker 5 bps.
    assert_eq!(fee_of(c1, 1), (Liquidity::Maker, 12_000));
    assert_eq!(fee_of(c2, 1), (Liquidity::Taker, 30_000));
    100_000_000 - 60_000_000 - 30_000
}

#[test]
fn admin_requests_fund_accounts_and_risk_checks_orders() {
    let dir = tempfile::tempdir().unwrap();
    write_accounts(dir.path());
    let cfg = single_config(dir.path()).display().to_string();
    let node = Proc::start("node", &["node", "--config", &cfg, "--role", "primary"]);
    let addr = listening(&node);
    node.expect("risk on");
    node.expect("ROLE primary");
    let t = WAIT;
    let mut adm = client(addr, ADMIN);
    let mut c1 = client(addr, 1);
    let mut c2 = client(addr, 2);
    let mut c3 = client(addr, 3);

    // Not an admin account: NotAuthorized, naming the request id and kind.
    match c3.admin(&admin::deposit(1, 3, USDT, 1_000, 0), t).unwrap() {
        AdminAnswer::Rejected(r) => assert_eq!(
            (r.cl_ord_id, r.reason, r.request),
            (1, RejectReason::NotAuthorized, RequestKind::AdminDeposit)
        ),
        other => panic!("{other:?}"),
    }
    // A shard this node lacks.
    assert_eq!(
        refused(adm.admin(&admin::deposit(9, 3, USDT, 1_000, 7), t).unwrap()),
        RejectReason::NotAuthorized
    );

    let left = fund_and_trade(&mut adm, &mut c1, &mut c2);
    // A reused deposit id: the engine's DuplicateRequest.
    assert_eq!(
        refused(adm.admin(&admin::deposit(1, 2, USDT, 5, 0), t).unwrap()),
        RejectReason::DuplicateRequest
    );
    // An order beyond the balance: 100 lots at 60,000 hold 600 USDT.
    c2.send(&req::enter(limit(2, BTC_USDT, Side::Buy, 60_000, 100)))
        .unwrap();
    assert_eq!(reject_of(&mut c2, 2), RejectReason::InsufficientBalance);
    // Exactly what is left can be withdrawn, one more minor unit cannot.
    let a = accepted(adm.admin(&admin::withdraw(2, 2, USDT, left, 0), t).unwrap());
    assert_eq!((a.available, a.held), (0, 0));
    assert_eq!(
        refused(adm.admin(&admin::withdraw(3, 2, USDT, 1, 0), t).unwrap()),
        RejectReason::InsufficientBalance
    );
    // The maker got the notional less its fee.
    assert_eq!(
        refused(
            adm.admin(&admin::withdraw(2, 1, USDT, 60_000_000 - 12_000 + 1, 0), t)
                .unwrap()
        ),
        RejectReason::InsufficientBalance
    );

    // Perpetuals: a reduce-only order without a position would increase it.
    c1.send(&req::enter(EnterOrder {
        reduce_only: true,
        ..limit(3, BTC_PERP, Side::Sell, 60_000, 1)
    }))
    .unwrap();
    assert_eq!(reject_of(&mut c1, 3), RejectReason::ReduceOnlyWouldIncrease);
    // Funding before any mark: the engine's NoMarkPrice.
    assert_eq!(
        refused(
            adm.admin(&admin::apply_funding(10, BTC_PERP, 10), t)
                .unwrap()
        ),
        RejectReason::NoMarkPrice
    );
    // A mark for an instrument the node lacks, or for a spot pair: the engine's reasons.
    assert_eq!(
        refused(adm.admin(&admin::set_mark_price(1, 99, 60_000), t).unwrap()),
        RejectReason::UnknownInstrument
    );
    assert_eq!(
        refused(
            adm.admin(&admin::set_mark_price(2, BTC_USDT, 60_000), t)
                .unwrap()
        ),
        RejectReason::NotPerpetual
    );
    let a = accepted(
        adm.admin(&admin::set_mark_price(11, BTC_PERP, 60_000), t)
            .unwrap(),
    );
    assert_eq!((a.request, a.shard), (RequestKind::AdminSetMarkPrice, 0));
    // A position: account 1 long 1 lot, account 2 short (funded again).
    accepted(
        adm.admin(&admin::deposit(4, 2, USDT, 10_000_000, 0), t)
            .unwrap(),
    );
    c2.send(&req::enter(limit(3, BTC_PERP, Side::Sell, 60_000, 1)))
        .unwrap();
    accept_of(&mut c2, 3);
    c1.send(&req::enter(limit(4, BTC_PERP, Side::Buy, 60_000, 1)))
        .unwrap();
    fee_of(&mut c1, 4);
    let a = accepted(
        adm.admin(&admin::apply_funding(12, BTC_PERP, 10), t)
            .unwrap(),
    );
    assert_eq!(a.request, RequestKind::AdminApplyFunding);
    // The request id is the funding id: a funding re-sent (after a failover, say) is not paid
    // twice.
    assert_eq!(
        refused(
            adm.admin(&admin::apply_funding(12, BTC_PERP, 10), t)
                .unwrap()
        ),
        RejectReason::DuplicateRequest
    );
    // Account 1's resting order, then its liquidation: the order is cancelled (Liquidation).
    c1.send(&req::enter(limit(5, BTC_PERP, Side::Buy, 59_000, 1)))
        .unwrap();
    accept_of(&mut c1, 5);
    let a = accepted(
        adm.admin(&admin::liquidate(13, 1, BTC_PERP, 1_000, 50_000), t)
            .unwrap(),
    );
    assert_eq!((a.request, a.account), (RequestKind::AdminLiquidate, 1));
    let reason = wait_for(&mut c1, "liquidation cancel", |m| match m {
        ServerMessage::OrderCancelled(x) if x.cl_ord_id == 5 => Some(x.reason),
        _ => None,
    });
    assert_eq!(reason, CancelReason::Liquidation);
    // A fee tier on every shard: one answer per shard (one here).
    let a = accepted(
        adm.admin(&admin::set_fee_tier(14, 2, 1, admin::ALL_SHARDS), t)
            .unwrap(),
    );
    assert_eq!((a.request, a.shard), (RequestKind::AdminSetFeeTier, 0));
    assert_eq!(
        refused(adm.admin(&admin::set_fee_tier(15, 2, 5, 0), t).unwrap()),
        RejectReason::InvalidFeeTier
    );

    // The operator CLI: `tpx admin` prints the answer; a refusal exits non-zero.
    let token = dir.path().join("admin.token");
    std::fs::write(&token, format!("tok-{ADMIN}\n")).unwrap();
    let (a, tok) = (addr.to_string(), token.display().to_string());
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tpx"))
            .args(["admin"])
            .args(args)
            .args(["--connect", &a, "--account-id", "50", "--session-id", "7"])
            .args(["--token-file", &tok])
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
        )
    };
    let (ok, line) = cli(&[
        "deposit",
        "--request-id",
        "1",
        "--account",
        "3",
        "--asset",
        "1",
        "--amount",
        "777",
        "--shard",
        "0",
    ]);
    assert!(ok, "{line}");
    assert_eq!(
        line.trim(),
        "accepted request_id=1 request=AdminDeposit account=3 shard=0 available=777 held=0"
    );
    let (ok, line) = cli(&[
        "withdraw",
        "--request-id",
        "2",
        "--account",
        "3",
        "--asset",
        "1",
        "--amount",
        "778",
    ]);
    assert!(!ok);
    assert_eq!(
        line.trim(),
        "rejected request_id=2 request=AdminWithdraw reason=InsufficientBalance"
    );
    let (ok, line) = cli(&[
        "fee-tier",
        "--request-id",
        "3",
        "--account",
        "3",
        "--tier",
        "1",
    ]);
    assert!(ok, "{line}");
    assert!(line.starts_with("accepted request_id=3 request=AdminSetFeeTier"));
}

#[test]
fn the_promoted_standby_has_the_same_balances() {
    let dir = tempfile::tempdir().unwrap();
    write_accounts(dir.path());
    let cpus = cpus();
    let cpu = |k: usize| cpus.get(k % cpus.len().max(1)).copied().unwrap_or(0);
    let w = free_port();
    let repl = [free_port(), free_port()];
    let cfgs = [
        node_config_with(dir.path(), 0, cpu(0), repl, w, RISK),
        node_config_with(dir.path(), 1, cpu(1), repl, w, RISK),
    ];
    let w_s = w.to_string();
    let _witness = Proc::start(
        "witness",
        &[
            "witness",
            "--listen",
            &w_s,
            "--lease-us",
            "200000",
            "--state-file",
            &dir.path().join("witness.state").display().to_string(),
        ],
    );
    let c0 = cfgs[0].display().to_string();
    let c1s = cfgs[1].display().to_string();
    let mut primary = Proc::start("node-1", &["node", "--config", &c0, "--role", "primary"]);
    primary.expect("ROLE primary node=1");
    let a1 = listening(&primary);
    let standby = Proc::start("node-2", &["node", "--config", &c1s, "--role", "standby"]);
    let a2 = listening(&standby);
    standby.expect("ROLE standby node=2");

    let mut adm = client(a1, ADMIN);
    let mut c1 = client(a1, 1);
    let mut c2 = client(a1, 2);
    let left = fund_and_trade(&mut adm, &mut c1, &mut c2);
    primary.signal(libc::SIGKILL);
    primary.wait();
    standby.expect("ROLE primary node=2");
    drop((adm, c1, c2));

    // The new primary applied the deposits and the trade as standby: account 2 has exactly
    // `left` USDT, account 1 exactly the proceeds.
    let t = WAIT;
    let mut adm = client(a2, ADMIN);
    assert_eq!(
        refused(
            adm.admin(&admin::withdraw(2, 2, USDT, left + 1, 0), t)
                .unwrap()
        ),
        RejectReason::InsufficientBalance
    );
    let a = accepted(adm.admin(&admin::withdraw(3, 2, USDT, left, 0), t).unwrap());
    assert_eq!(a.available, 0);
    let proceeds = 60_000_000 - 12_000;
    assert_eq!(
        refused(
            adm.admin(&admin::withdraw(2, 1, USDT, proceeds + 1, 0), t)
                .unwrap()
        ),
        RejectReason::InsufficientBalance
    );
    accepted(
        adm.admin(&admin::withdraw(3, 1, USDT, proceeds, 0), t)
            .unwrap(),
    );
    // The deposit ids used before the failover are still used.
    assert_eq!(
        refused(adm.admin(&admin::deposit(1, 1, BTC, 1, 0), t).unwrap()),
        RejectReason::DuplicateRequest
    );
}

fn scrape(addr: std::net::SocketAddr) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text.split("\r\n\r\n").nth(1).unwrap_or("").to_string()
}

/// A mark below an account's maintenance margin is a margin call, which the shard counts and
/// Prometheus exports (`tpx_node_margin_calls_total`); a mark that restores it is none.
#[test]
fn a_mark_below_maintenance_is_a_margin_call_the_node_counts() {
    let dir = tempfile::tempdir().unwrap();
    write_accounts(dir.path());
    let prom = free_port();
    let cfg = single_config(dir.path());
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, format!("{text}[stats]\nprometheus = \"{prom}\"\n")).unwrap();
    let cfg = cfg.display().to_string();
    let node = Proc::start("node", &["node", "--config", &cfg, "--role", "primary"]);
    let addr = listening(&node);
    node.expect("ROLE primary");
    let t = WAIT;
    let mut adm = client(addr, ADMIN);
    let mut c2 = client(addr, 2);
    let mut c3 = client(addr, 3);
    accepted(
        adm.admin(&admin::set_mark_price(1, BTC_PERP, 60_000), t)
            .unwrap(),
    );
    accepted(
        adm.admin(&admin::deposit(2, 2, USDT, 10_000_000, 0), t)
            .unwrap(),
    );
    // 1 lot at 60,000 is 6 USDT of notional: 10% initial margin 600,000 minor units, taker
    // fee 3,000; account 3 has 700,000.
    accepted(
        adm.admin(&admin::deposit(3, 3, USDT, 700_000, 0), t)
            .unwrap(),
    );
    c2.send(&req::enter(limit(1, BTC_PERP, Side::Sell, 60_000, 1)))
        .unwrap();
    accept_of(&mut c2, 1);
    c3.send(&req::enter(limit(1, BTC_PERP, Side::Buy, 60_000, 1)))
        .unwrap();
    assert_eq!(fee_of(&mut c3, 1), (Liquidity::Taker, 3_000));
    let calls = |want: u64| {
        let line = format!("tpx_node_margin_calls_total{{shard=\"0\"}} {want}");
        // The stage publishes its counters every 100 ms.
        let deadline = Instant::now() + WAIT;
        loop {
            let s = scrape(prom);
            if s.contains(&line) {
                return;
            }
            assert!(Instant::now() < deadline, "no `{line}` in:\n{s}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    calls(0);
    // 57,000: variation margin -300,000, equity 397,000 >= maintenance 5% of 5.7 USDT
    // (285,000): no call.
    accepted(
        adm.admin(&admin::set_mark_price(4, BTC_PERP, 57_000), t)
            .unwrap(),
    );
    // 54,000: variation margin -600,000, equity 97,000 < maintenance 270,000: a margin call.
    accepted(
        adm.admin(&admin::set_mark_price(5, BTC_PERP, 54_000), t)
            .unwrap(),
    );
    calls(1);
    // Back to 60,000 (restored), then down again: a second call.
    accepted(
        adm.admin(&admin::set_mark_price(6, BTC_PERP, 60_000), t)
            .unwrap(),
    );
    accepted(
        adm.admin(&admin::set_mark_price(7, BTC_PERP, 54_000), t)
            .unwrap(),
    );
    calls(2);
}

/// The admin session's sequenced answers (`AdminAccepted`, `OrderRejected`), as sent.
fn answer_msg(a: AdminAnswer) -> ServerMessage {
    match a {
        AdminAnswer::Accepted(x) => ServerMessage::AdminAccepted(x),
        AdminAnswer::Rejected(r) => ServerMessage::OrderRejected(r),
    }
}

/// Marks, a liquidation and fee tiers with request ids no counter would give, accepted and
/// refused, between two funded traders with a perpetual position. Returns the admin session's
/// answers in the order it got them (its whole reply stream: the admin account's own balance
/// never changes).
fn marks_liquidation_and_fee_tiers(
    adm: &mut Client,
    c1: &mut Client,
    c2: &mut Client,
) -> Vec<ServerMessage> {
    let t = WAIT;
    let mut answers = Vec::new();
    let mut ask = |adm: &mut Client, m: ClientMessage| {
        let a = adm.admin(&m, t).unwrap();
        answers.push(answer_msg(a));
        a
    };
    accepted(ask(adm, admin::set_mark_price(7_001, BTC_PERP, 60_000)));
    accepted(ask(adm, admin::deposit(1, 1, USDT, 10_000_000, 0)));
    accepted(ask(adm, admin::deposit(1, 2, USDT, 10_000_000, 0)));
    c2.send(&req::enter(limit(1, BTC_PERP, Side::Sell, 60_000, 1)))
        .unwrap();
    accept_of(c2, 1);
    c1.send(&req::enter(limit(1, BTC_PERP, Side::Buy, 60_000, 1)))
        .unwrap();
    fee_of(c1, 1);
    let a = accepted(ask(adm, admin::liquidate(7_002, 1, BTC_PERP, 900, 50_000)));
    assert_eq!((a.request_id, a.account), (7_002, 1));
    let a = accepted(ask(
        adm,
        admin::set_fee_tier(7_003, 2, 1, admin::ALL_SHARDS),
    ));
    assert_eq!(a.request_id, 7_003);
    assert_eq!(
        refused(ask(adm, admin::set_fee_tier(7_004, 2, 5, 0))),
        RejectReason::InvalidFeeTier
    );
    assert_eq!(
        refused(ask(adm, admin::set_mark_price(7_005, BTC_USDT, 60_000))),
        RejectReason::NotPerpetual
    );
    // Account 1 is flat after its liquidation.
    assert_eq!(
        refused(ask(adm, admin::liquidate(7_006, 1, BTC_PERP, 901, 50_000))),
        RejectReason::NoPosition
    );
    accepted(ask(adm, admin::set_mark_price(7_007, BTC_PERP, 61_000)));
    answers
}

/// The first `n` sequenced replies of `adm`, a login from seq 1: the replay.
fn replayed(adm: &mut Client, n: usize) -> Vec<ServerMessage> {
    (0..n)
        .map(|k| {
            wait_for(adm, &format!("replayed reply {}", k + 1), |m| {
                m.seq().map(|_| *m)
            })
        })
        .collect()
}

/// An admin session's answers are a function of the log: after a failover, the promoted
/// standby replays the same `AdminAccepted` and `OrderRejected` bytes for marks, liquidations
/// and fee tiers (their request ids included) as the primary sent. (Before the request id was
/// in their log records, the standby's replay named request id 0.)
#[test]
fn admin_answers_replay_with_their_request_ids_after_a_failover() {
    let dir = tempfile::tempdir().unwrap();
    write_accounts(dir.path());
    let procs::Pair {
        witness: _w,
        mut primary,
        standby,
        entry,
        ..
    } = procs::Pair::start(dir.path(), "", |_| RISK.to_string());
    let mut adm = client(entry[0], ADMIN);
    let mut c1 = client(entry[0], 1);
    let mut c2 = client(entry[0], 2);
    let sent = marks_liquidation_and_fee_tiers(&mut adm, &mut c1, &mut c2);
    primary.signal(libc::SIGKILL);
    primary.wait();
    standby.expect("ROLE primary node=2");
    drop((adm, c1, c2));
    let mut adm = client(entry[1], ADMIN);
    assert_eq!(replayed(&mut adm, sent.len()), sent);

    // A liquidation re-sent to the new primary (its answer lost, say) is refused by its request
    // id, even once the account holds a position again; a new id liquidates.
    let t = WAIT;
    let mut c1 = client(entry[1], 1);
    let mut c2 = client(entry[1], 2);
    c2.send(&req::enter(limit(2, BTC_PERP, Side::Sell, 61_000, 1)))
        .unwrap();
    accept_of(&mut c2, 2);
    c1.send(&req::enter(limit(2, BTC_PERP, Side::Buy, 61_000, 1)))
        .unwrap();
    fee_of(&mut c1, 2);
    assert_eq!(
        refused(
            adm.admin(&admin::liquidate(7_002, 1, BTC_PERP, 902, 50_000), t)
                .unwrap()
        ),
        RejectReason::DuplicateRequest
    );
    let a = accepted(
        adm.admin(&admin::liquidate(7_008, 1, BTC_PERP, 903, 50_000), t)
            .unwrap(),
    );
    assert_eq!((a.request_id, a.account), (7_008, 1));
}

/// The same after a restart from the log: the restarted node replays the answers it sent.
#[test]
fn admin_answers_replay_with_their_request_ids_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    write_accounts(dir.path());
    let cfg = single_config(dir.path()).display().to_string();
    let mut node = Proc::start("node", &["node", "--config", &cfg, "--role", "primary"]);
    let addr = listening(&node);
    node.expect("ROLE primary");
    let mut adm = client(addr, ADMIN);
    let mut c1 = client(addr, 1);
    let mut c2 = client(addr, 2);
    let sent = marks_liquidation_and_fee_tiers(&mut adm, &mut c1, &mut c2);
    node.signal(libc::SIGKILL);
    node.wait();
    drop((adm, c1, c2));
    let node = Proc::start("node", &["node", "--config", &cfg, "--role", "primary"]);
    let addr = listening(&node);
    node.expect("ROLE primary");
    assert_eq!(replayed(&mut client(addr, ADMIN), sent.len()), sent);
}
