//! End to end over real TCP: the order types (`EnterOrderExt`, built with `tpx_client::Order`)
//! through a node's whole request path: a stop triggered by a trade, a post-only order that
//! slides, an iceberg whose refill market data shows (slice only), a GTD order expired by the
//! sequencer's tick with nothing else arriving, and a take-profit / stop-loss OCO pair on a
//! perpetual position fired by an admin mark price (risk on); and all of it across a restart (the
//! log replayed) and across a failover (`tpx node` processes, SIGKILL of the primary).

mod common;

use std::time::{Duration, Instant};

use common::feed::node_feed_config;
use common::*;
use tpx_client::admin::{self, AdminAnswer};
use tpx_client::{req, Client, ClientError, Order, PriceSource};
use tpx_feed::FeedHandler;
use tpx_feed::{BookEvent, Update};
use tpx_md::{AeronClient, AeronSetup};
use tpx_node::config::md::MdConfig;
use tpx_node::config::replication::ReplicationConfig;
use tpx_node::config::risk::RiskSection;
use tpx_node::config::CorePlan;
use tpx_node::gateway::accounts::{token_hash_hex, token_of, AccountEntry, Accounts, AccountsFile};
use tpx_node::Node;
use tpx_sequencer::{FileStorage, LogReader, WriteMode};
use tpx_wire::enums::{
    CancelReason, Liquidity, RejectReason, RequestKind, Side, TimeInForce, TriggerType,
};
use tpx_wire::log_record::Input;
use tpx_wire::order_entry::{ClientMessage, EnterOrderExt};
use tpx_wire::replies::ServerMessage;

const BTC_USDT: u32 = 1;
const BTC_PERP: u32 = 3;

/// The next reply `pick` selects, skipping the others (balance updates, heartbeats).
fn wait_for<T>(c: &mut Client, what: &str, mut pick: impl FnMut(&ServerMessage) -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match c.recv(left.min(Duration::from_millis(200))) {
            Ok(m) => {
                if let Some(t) = pick(&m) {
                    return t;
                }
                seen.push(m);
            }
            Err(ClientError::Timeout) if !left.is_zero() => {}
            Err(e) => panic!("{what}: {e}; saw {seen:?}"),
        }
    }
}

/// The order replies (not balance updates or heartbeats) until `pred` matches, the match last.
fn orders_until(
    c: &mut Client,
    mut pred: impl FnMut(&ServerMessage) -> bool,
) -> Vec<ServerMessage> {
    let mut got = Vec::new();
    wait_for(c, "order replies", |m| {
        if matches!(
            m,
            ServerMessage::BalanceUpdate(_) | ServerMessage::Heartbeat(_)
        ) {
            return None;
        }
        got.push(*m);
        pred(m).then_some(())
    });
    got
}

fn accepted(c: &mut Client, cl: u64) {
    wait_for(c, "accept", |m| match m {
        ServerMessage::OrderAccepted(a) if a.cl_ord_id == cl => Some(()),
        ServerMessage::OrderRejected(r) if r.cl_ord_id == cl => panic!("refused: {r:?}"),
        _ => None,
    })
}

fn rejected(c: &mut Client, cl: u64) -> (RejectReason, RequestKind) {
    wait_for(c, "reject", |m| match m {
        ServerMessage::OrderRejected(r) if r.cl_ord_id == cl => Some((r.reason, r.request)),
        ServerMessage::OrderAccepted(a) if a.cl_ord_id == cl => panic!("accepted: {a:?}"),
        _ => None,
    })
}

/// A sell stop-market rests unseen until a trade prints at or below its trigger; then it
/// fires within that trade's command and sells into the bids as a taker.
#[test]
fn a_stop_is_triggered_by_a_trade() {
    let node = single_core_node();
    let mut stopper = login(&node, 1);
    let mut seller = login(&node, 2);
    let mut bidder = login(&node, 3);
    let mut buyer = login(&node, 4);
    bidder
        .send(&req::enter(limit(1, BTC_USDT, Side::Buy, 49_980, 5)))
        .unwrap();
    accepted(&mut bidder, 1);
    // Sell 2 at no worse than 49,000 once the last price falls to 49,990.
    let stop = Order::market(1, BTC_USDT, Side::Sell, 49_000, 2).stop(49_990, PriceSource::Last);
    assert!(
        matches!(stop.message(), ClientMessage::EnterOrderExt(m) if m.trigger == TriggerType::LastFallsTo)
    );
    stopper.send(&stop.message()).unwrap();
    let ServerMessage::OrderAccepted(a) = next(&mut stopper) else {
        panic!("stop not accepted")
    };
    assert_eq!((a.cl_ord_id, a.price, a.qty), (1, 49_000, 2));
    // Pending: nothing trades, nothing more is said.
    assert!(matches!(
        stopper.recv(Duration::from_millis(100)),
        Err(ClientError::Timeout)
    ));
    // A trade at 49,985 (below the trigger): 1 lot between accounts 2 and 4.
    seller
        .send(&req::enter(limit(1, BTC_USDT, Side::Sell, 49_985, 1)))
        .unwrap();
    accepted(&mut seller, 1);
    buyer
        .send(&req::enter(limit(1, BTC_USDT, Side::Buy, 49_985, 1)))
        .unwrap();
    let got = orders_until(&mut stopper, |m| {
        matches!(m, ServerMessage::OrderExecuted(_))
    });
    let [ServerMessage::OrderTriggered(t), ServerMessage::OrderExecuted(x)] = got[..] else {
        panic!("{got:?}")
    };
    assert_eq!(
        (t.cl_ord_id, t.order_id, t.trigger_price, t.price, t.side),
        (1, a.order_id, 49_990, 49_985, Side::Sell)
    );
    assert_eq!(
        (x.cl_ord_id, x.price, x.qty, x.leaves_qty, x.liquidity),
        (1, 49_980, 2, 0, Liquidity::Taker)
    );
    assert_eq!(t.timestamp_ns, x.timestamp_ns, "one command");
    let ServerMessage::OrderExecuted(m) = next(&mut bidder) else {
        panic!()
    };
    assert_eq!((m.cl_ord_id, m.qty, m.leaves_qty), (1, 2, 3));
    assert_eq!(m.trade_id, x.trade_id);
}

/// A post-only buy that would cross is re-priced one tick below the best ask and rests there;
/// plain post-only is still rejected, and the slide reaches the client after its acceptance.
#[test]
fn a_post_only_order_slides_behind_the_opposite_best() {
    let node = single_core_node();
    let mut maker = login(&node, 1);
    let mut asks = login(&node, 2);
    asks.send(&req::enter(limit(1, BTC_USDT, Side::Sell, 50_010, 5)))
        .unwrap();
    accepted(&mut asks, 1);
    maker
        .send(
            &Order::limit(1, BTC_USDT, Side::Buy, 50_020, 3)
                .post_only()
                .message(),
        )
        .unwrap();
    assert_eq!(
        rejected(&mut maker, 1),
        (RejectReason::PostOnlyWouldTake, RequestKind::EnterOrder)
    );
    let slide = Order::limit(2, BTC_USDT, Side::Buy, 50_020, 3).post_only_slide();
    maker.send(&slide.message()).unwrap();
    let ServerMessage::OrderAccepted(a) = next(&mut maker) else {
        panic!()
    };
    assert_eq!((a.cl_ord_id, a.price), (2, 50_020));
    let ServerMessage::OrderSlid(s) = next(&mut maker) else {
        panic!("no slide")
    };
    assert_eq!(
        (s.cl_ord_id, s.order_id, s.requested_price, s.price),
        (2, a.order_id, 50_020, 50_009)
    );
    // It rests at 50,009, a maker: a sell there fills it.
    asks.send(&req::enter(limit(2, BTC_USDT, Side::Sell, 50_009, 1)))
        .unwrap();
    let ServerMessage::OrderExecuted(x) = next(&mut maker) else {
        panic!()
    };
    assert_eq!(
        (x.cl_ord_id, x.price, x.qty, x.leaves_qty, x.liquidity),
        (2, 50_009, 1, 2, Liquidity::Maker)
    );
}

/// Trigger fields that disagree are refused by the gateway; an expiry not in the future by the
/// engine; both name `EnterOrderExt`.
#[test]
fn order_type_fields_get_typed_rejects() {
    let node = single_core_node();
    let mut c = login(&node, 1);
    let mut bad = Order::limit(1, BTC_USDT, Side::Buy, 50_000, 1).0;
    bad.trigger_price = 49_000; // no trigger type
    c.send(&ClientMessage::EnterOrderExt(bad)).unwrap();
    assert_eq!(
        rejected(&mut c, 1),
        (RejectReason::InvalidTrigger, RequestKind::EnterOrderExt)
    );
    let past = Order::limit(2, BTC_USDT, Side::Buy, 50_000, 1).gtd(1_000);
    c.send(&past.message()).unwrap();
    assert_eq!(
        rejected(&mut c, 2),
        (RejectReason::InvalidExpireTime, RequestKind::EnterOrderExt)
    );
    let ice = Order::limit(3, BTC_USDT, Side::Buy, 50_000, 4).iceberg(4);
    c.send(&ice.message()).unwrap();
    assert_eq!(
        rejected(&mut c, 3),
        (RejectReason::InvalidQuantity, RequestKind::EnterOrderExt)
    );
}

fn unix_now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// A GTD order expires at its time with no other input: the sequencer logs a `Tick` whose
/// stamp expires it, and the log (replayed, the same) holds that tick.
#[test]
fn a_gtd_order_expires_by_the_sequencers_tick() {
    let cpu = cpus().first().copied().unwrap_or(0);
    let mut cfg = base_config(CorePlan::single(cpu));
    let dir = log_dir();
    cfg.replication = Some(ReplicationConfig {
        log_dir: dir.clone(),
        segment_bytes: Some(1 << 20),
        ..ReplicationConfig::default()
    });
    let mut node = Node::start(&cfg, accounts()).unwrap();
    let mut c = login(&node, 1);
    let expire = unix_now_ns() + 300_000_000;
    let gtd = Order::limit(1, BTC_USDT, Side::Buy, 49_000, 2).gtd(expire);
    assert!(matches!(gtd.message(), ClientMessage::EnterOrderExt(m) if m.tif == TimeInForce::Gtd));
    c.send(&gtd.message()).unwrap();
    let ServerMessage::OrderAccepted(a) = next(&mut c) else {
        panic!()
    };
    assert!(a.timestamp_ns < expire);
    let ServerMessage::OrderCancelled(x) = next(&mut c) else {
        panic!("no expiry")
    };
    let now = unix_now_ns();
    assert_eq!(
        (x.cl_ord_id, x.cancelled_qty, x.leaves_qty, x.reason),
        (1, 2, 0, CancelReason::Expired)
    );
    assert!(x.timestamp_ns >= expire, "expired early");
    // Paced by the idle check (1 ms) and the core's park (1 ms); generous for a loaded machine.
    assert!(now - expire < 2_000_000_000, "late by {} ns", now - expire);
    node.stop();
    // The log: the order, then the tick that expired it (nothing else came in).
    let mut r = LogReader::new(FileStorage::new(&dir, WriteMode::Buffered).unwrap()).unwrap();
    let mut inputs = Vec::new();
    while let Some(rec) = r.next().unwrap() {
        inputs.push((rec.input, rec.meta.timestamp_ns));
    }
    let orders: Vec<_> = inputs
        .iter()
        .filter(|(i, _)| matches!(i, Input::EnterOrderExt(_)))
        .collect();
    assert_eq!(orders.len(), 1);
    let ticks: Vec<u64> = inputs
        .iter()
        .filter_map(|(i, ts)| matches!(i, Input::Tick(_)).then_some(*ts))
        .collect();
    assert_eq!(ticks.len(), 1, "one tick for one expiry: {inputs:?}");
    assert_eq!(ticks[0], x.timestamp_ns);
}

/// Market data of an iceberg: `AddOrder` of the slice only, the execution that empties it, then
/// a new `AddOrder` of the same order id with the next slice; the hidden rest never appears.
#[test]
fn an_iceberg_refill_is_seen_in_market_data() {
    let cpu = cpus().first().copied().unwrap_or(0);
    let mut cfg = base_config(CorePlan::single(cpu));
    cfg.md = Some(MdConfig {
        channel_a: "aeron:ipc".into(),
        heartbeat_interval_ms: 20,
        snapshot_interval_ms: 50,
        ring_capacity: 4096,
        term_length: 64 << 10,
        ..MdConfig::default()
    });
    let node = Node::start(&cfg, accounts()).unwrap();
    let md = node.md().unwrap();
    let fcfg = node_feed_config(
        md,
        0,
        AeronSetup::External {
            dir: md.aeron_dir().to_string(),
        },
    )
    .unwrap();
    let mut feed = FeedHandler::connect(fcfg).unwrap();
    let mut events: Vec<BookEvent> = Vec::new();
    let poll_until = |feed: &mut FeedHandler, events: &mut Vec<BookEvent>, n: usize| {
        let deadline = Instant::now() + WAIT;
        while events.len() < n || !feed.core().is_live() {
            assert!(Instant::now() < deadline, "market data: got {events:?}");
            let mut l = |e: &BookEvent, _: &tpx_feed::Books| {
                if e.instrument == BTC_USDT && !matches!(e.update, Update::Snapshot { .. }) {
                    events.push(*e)
                }
            };
            if feed.poll(AeronClient::nano_clock(), &mut l) == 0 {
                std::thread::sleep(Duration::from_micros(200));
            }
        }
    };
    let mut ice = login(&node, 1);
    let mut taker = login(&node, 2);
    // Sell 10, showing 3.
    ice.send(
        &Order::limit(1, BTC_USDT, Side::Sell, 60_000, 10)
            .iceberg(3)
            .message(),
    )
    .unwrap();
    let ServerMessage::OrderAccepted(a) = next(&mut ice) else {
        panic!()
    };
    poll_until(&mut feed, &mut events, 1);
    assert_eq!(
        events[0].update,
        Update::Add {
            order_id: a.order_id,
            side: Side::Sell,
            price: 60_000,
            qty: 3
        }
    );
    // A buy of 4: the slice (3) trades, the order refills 3 at the back, and the 4th lot
    // trades against the new slice.
    taker
        .send(&req::enter(limit(1, BTC_USDT, Side::Buy, 60_000, 4)))
        .unwrap();
    let got = orders_until(
        &mut ice,
        |m| matches!(m, ServerMessage::OrderExecuted(x) if x.leaves_qty == 6),
    );
    let [ServerMessage::OrderExecuted(x1), ServerMessage::OrderRefilled(r), ServerMessage::OrderExecuted(x2)] =
        got[..]
    else {
        panic!("{got:?}")
    };
    assert_eq!((x1.qty, x1.leaves_qty), (3, 7));
    assert_eq!(
        (r.cl_ord_id, r.order_id, r.display_qty, r.hidden_qty),
        (1, a.order_id, 3, 4)
    );
    assert_eq!((x2.qty, x2.leaves_qty), (1, 6));
    poll_until(&mut feed, &mut events, 6);
    let updates: Vec<Update> = events.iter().map(|e| e.update).collect();
    let id = a.order_id;
    assert!(
        matches!(
            updates[1..6],
            [
                Update::Execute { order_id: o1, qty: 3, leaves: 0, .. },
                Update::Trade { qty: 3, .. },
                Update::Add { order_id: o2, qty: 3, price: 60_000, .. },
                Update::Execute { order_id: o3, qty: 1, leaves: 2, .. },
                Update::Trade { qty: 1, .. },
            ] if o1 == id && o2 == id && o3 == id
        ),
        "{updates:?}"
    );
    // Nothing on the feed ever shows more than the slice.
    for u in &updates {
        if let Update::Add { qty, .. } = u {
            assert!(*qty <= 3, "hidden quantity on market data: {updates:?}");
        }
    }
    assert_eq!(feed.core().books().live_orders(), 1);
    // The subscriber's book: the slice left (2 of 3), not the 8 lots the order has.
    let book = common::feed::feed_book(&feed, BTC_USDT);
    assert_eq!(
        book.iter().map(|o| (o.order_id, o.qty)).collect::<Vec<_>>(),
        vec![(id, 2)]
    );
}

const ADMIN: u32 = 50;
const USDT: u32 = 1;

fn risk_accounts() -> Accounts {
    let account = [1, 2, ADMIN]
        .iter()
        .map(|&id| AccountEntry {
            id,
            name: format!("t{id}"),
            token_sha256: token_hash_hex(&token_of(&format!("tok-{id}")).0),
            rate_limit_per_sec: 100_000,
            burst: Some(100_000),
            admin: id == ADMIN,
            ..AccountEntry::default()
        })
        .collect();
    Accounts::from_file(AccountsFile { account }).unwrap()
}

fn admin_ok(a: AdminAnswer) {
    assert!(matches!(a, AdminAnswer::Accepted(_)), "{a:?}");
}

/// A long perpetual position with a take-profit and a stop-loss, both close-position and one
/// OCO pair, on the mark price: a mark below the stop fires it (it closes the whole position
/// against the bid), and the take-profit is cancelled with reason `Oco`.
#[test]
fn a_tp_sl_pair_on_a_perpetual_position_fires_on_the_mark() {
    let cpu = cpus().first().copied().unwrap_or(0);
    let mut cfg = base_config(CorePlan::single(cpu));
    cfg.risk = Some(RiskSection {
        fee_account: 60,
        liquidation_account: 61,
        fee_tiers: 2,
        assets: vec![1, 2, 3],
    });
    let node = Node::start(&cfg, risk_accounts()).unwrap();
    let mut adm = login(&node, ADMIN);
    let mut short = login(&node, 1);
    let mut long = login(&node, 2);
    for (rid, acct) in [(1, 1), (2, 2)] {
        admin_ok(
            adm.admin(&admin::deposit(rid, acct, USDT, 1_000_000_000, 0), WAIT)
                .unwrap(),
        );
    }
    // Account 2 goes long 10 lots at 60,000.
    short
        .send(&req::enter(limit(1, BTC_PERP, Side::Sell, 60_000, 10)))
        .unwrap();
    accepted(&mut short, 1);
    long.send(&req::enter(limit(1, BTC_PERP, Side::Buy, 60_000, 10)))
        .unwrap();
    wait_for(&mut long, "long fill", |m| match m {
        ServerMessage::OrderExecuted(x) if x.cl_ord_id == 1 && x.leaves_qty == 0 => Some(()),
        _ => None,
    });
    // Take-profit: sell when the mark rises to 62,000; stop-loss: sell when it falls to
    // 59,000, paired. Both close the position (the quantity is what it is when they fire).
    let tp = Order::limit(2, BTC_PERP, Side::Sell, 62_000, 1)
        .take_profit(62_000, PriceSource::Mark)
        .close_position();
    long.send(&tp.message()).unwrap();
    accepted(&mut long, 2);
    let sl = Order::market(3, BTC_PERP, Side::Sell, 55_000, 1)
        .stop(59_000, PriceSource::Mark)
        .close_position()
        .oco_with(2);
    let ClientMessage::EnterOrderExt(EnterOrderExt {
        trigger: TriggerType::MarkFallsTo,
        oco_cl_ord_id: 2,
        close_position: true,
        ..
    }) = sl.message()
    else {
        panic!("{sl:?}")
    };
    long.send(&sl.message()).unwrap();
    accepted(&mut long, 3);
    // A bid for the stop to sell into.
    short
        .send(&req::enter(limit(2, BTC_PERP, Side::Buy, 58_000, 20)))
        .unwrap();
    accepted(&mut short, 2);
    // A mark above the stop fires nothing.
    admin_ok(
        adm.admin(&admin::set_mark_price(3, BTC_PERP, 59_500), WAIT)
            .unwrap(),
    );
    admin_ok(
        adm.admin(&admin::set_mark_price(4, BTC_PERP, 58_900), WAIT)
            .unwrap(),
    );
    let got = orders_until(&mut long, |m| matches!(m, ServerMessage::OrderExecuted(_)));
    let [ServerMessage::OrderTriggered(t), ServerMessage::OrderCancelled(c), ServerMessage::OrderExecuted(x)] =
        got[..]
    else {
        panic!("{got:?}")
    };
    assert_eq!(
        (t.cl_ord_id, t.trigger_price, t.price, t.side),
        (3, 59_000, 58_900, Side::Sell)
    );
    assert_eq!(
        (c.cl_ord_id, c.leaves_qty, c.reason),
        (2, 0, CancelReason::Oco)
    );
    // Close-position: the whole long (10 lots), not the 1 it was entered with.
    assert_eq!(
        (x.cl_ord_id, x.price, x.qty, x.leaves_qty, x.liquidity),
        (3, 58_000, 10, 0, Liquidity::Taker)
    );
    // Flat: a reduce-only sell now has nothing to reduce.
    let mut ro = limit(4, BTC_PERP, Side::Sell, 58_000, 1);
    ro.reduce_only = true;
    long.send(&req::enter(ro)).unwrap();
    assert_eq!(
        rejected(&mut long, 4).0,
        RejectReason::ReduceOnlyWouldIncrease
    );
}

/// The order types live in the log, not in a gateway: after a restart (the log replayed into
/// fresh shards) a pending stop still fires on a trade, a resting GTD order still expires by
/// the sequencer's tick, and an iceberg still refills, each reported to the account's new
/// session (which adopts the orders).
#[test]
fn order_types_survive_a_restart_by_replay() {
    let cpu = cpus().first().copied().unwrap_or(0);
    let cfg = base_config(CorePlan::single(cpu));
    let expire = unix_now_ns() + 2_500_000_000;
    {
        let mut node = Node::start(&cfg, accounts()).unwrap();
        let mut owner = login(&node, 1);
        let mut bidder = login(&node, 3);
        bidder
            .send(&req::enter(limit(1, BTC_USDT, Side::Buy, 49_980, 5)))
            .unwrap();
        accepted(&mut bidder, 1);
        let orders = [
            Order::market(1, BTC_USDT, Side::Sell, 49_000, 2).stop(49_990, PriceSource::Last),
            Order::limit(2, BTC_USDT, Side::Buy, 49_000, 1).gtd(expire),
            Order::limit(3, BTC_USDT, Side::Sell, 50_100, 10).iceberg(3),
        ];
        for o in &orders {
            owner.send(&o.message()).unwrap();
            accepted(&mut owner, o.0.cl_ord_id);
        }
        node.stop();
    }
    let node = Node::start(&cfg, accounts()).unwrap();
    let mut owner = Client::connect_at(common::cfg(&node, 1, 1), 0).unwrap();
    let mut seller = login(&node, 2);
    let mut buyer = login(&node, 4);
    // A trade at 49,985 fires the stop the log kept.
    seller
        .send(&req::enter(limit(1, BTC_USDT, Side::Sell, 49_985, 1)))
        .unwrap();
    accepted(&mut seller, 1);
    buyer
        .send(&req::enter(limit(1, BTC_USDT, Side::Buy, 49_985, 1)))
        .unwrap();
    let got = orders_until(&mut owner, |m| matches!(m, ServerMessage::OrderExecuted(_)));
    assert!(
        matches!(
            got[..],
            [ServerMessage::OrderTriggered(t), ServerMessage::OrderExecuted(x)]
                if t.cl_ord_id == 1 && x.cl_ord_id == 1 && x.price == 49_980 && x.qty == 2
        ),
        "{got:?}"
    );
    // The iceberg refills.
    buyer
        .send(&req::enter(limit(2, BTC_USDT, Side::Buy, 50_100, 3)))
        .unwrap();
    let got = orders_until(&mut owner, |m| matches!(m, ServerMessage::OrderRefilled(_)));
    assert!(
        matches!(
            got[..],
            [ServerMessage::OrderExecuted(x), ServerMessage::OrderRefilled(r)]
                if x.cl_ord_id == 3 && x.leaves_qty == 7 && r.display_qty == 3 && r.hidden_qty == 4
        ),
        "{got:?}"
    );
    // The GTD order expires with nothing else arriving.
    let got = orders_until(&mut owner, |m| {
        matches!(m, ServerMessage::OrderCancelled(_))
    });
    assert!(
        matches!(
            got[..],
            [ServerMessage::OrderCancelled(c)]
                if c.cl_ord_id == 2 && c.reason == CancelReason::Expired && c.timestamp_ns >= expire
        ),
        "{got:?}"
    );
}

mod procs;

/// The point of putting the order types in the engine: a failover keeps them. A primary and a
/// standby (`tpx node` processes, replicated log, a witness): a pending stop, a GTD order and an
/// iceberg acknowledged on the primary; SIGKILL of the primary; on the promoted standby a trade
/// fires the stop, the iceberg refills and the GTD order expires by the new primary's tick.
#[test]
fn order_types_survive_a_failover() {
    use procs::{free_port, listening, node_config, Proc};
    use tpx_client::token_from_str;
    use tpx_node::gateway::accounts::{demo_accounts, demo_accounts_file};
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("accounts.toml"),
        toml::to_string(&demo_accounts_file(&demo_accounts(4), 1_000_000)).unwrap(),
    )
    .unwrap();
    let cpu = |k: usize| {
        let c = cpus();
        c.get(k % c.len().max(1)).copied().unwrap_or(0)
    };
    let w = free_port();
    let repl = [free_port(), free_port()];
    let cfgs = [
        node_config(dir.path(), 0, cpu(0), repl, w)
            .display()
            .to_string(),
        node_config(dir.path(), 1, cpu(1), repl, w)
            .display()
            .to_string(),
    ];
    let w_s = w.to_string();
    let state = dir.path().join("witness.state").display().to_string();
    let _witness = Proc::start(
        "witness",
        &[
            "witness",
            "--listen",
            &w_s,
            "--lease-us",
            "200000",
            "--state-file",
            &state,
        ],
    );
    let mut primary = Proc::start(
        "node-1",
        &["node", "--config", &cfgs[0], "--role", "primary"],
    );
    primary.expect("ROLE primary node=1");
    let a1 = listening(&primary);
    let standby = Proc::start(
        "node-2",
        &["node", "--config", &cfgs[1], "--role", "standby"],
    );
    let a2 = listening(&standby);
    standby.expect("ROLE standby node=2");
    let connect = |addr, account: u32| {
        let token = token_from_str(&format!("demo-token-{account}"));
        procs::login_retrying(tpx_client::ClientConfig::new(addr, account, 1, token), 0)
    };
    let expire = unix_now_ns() + 3_000_000_000;
    {
        let mut owner = connect(a1, 1);
        let mut bidder = connect(a1, 3);
        bidder
            .send(&req::enter(limit(1, BTC_USDT, Side::Buy, 49_980, 5)))
            .unwrap();
        accepted(&mut bidder, 1);
        for o in [
            Order::market(1, BTC_USDT, Side::Sell, 49_000, 2).stop(49_990, PriceSource::Last),
            Order::limit(2, BTC_USDT, Side::Buy, 49_000, 1).gtd(expire),
            Order::limit(3, BTC_USDT, Side::Sell, 50_100, 10).iceberg(3),
        ] {
            owner.send(&o.message()).unwrap();
            accepted(&mut owner, o.0.cl_ord_id);
        }
    }
    primary.signal(libc::SIGKILL);
    primary.wait();
    standby.expect("ROLE primary node=2");
    let mut owner = connect(a2, 1);
    let mut seller = connect(a2, 2);
    let mut buyer = connect(a2, 4);
    seller
        .send(&req::enter(limit(1, BTC_USDT, Side::Sell, 49_985, 1)))
        .unwrap();
    accepted(&mut seller, 1);
    buyer
        .send(&req::enter(limit(1, BTC_USDT, Side::Buy, 49_985, 1)))
        .unwrap();
    let got = orders_until(&mut owner, |m| matches!(m, ServerMessage::OrderExecuted(_)));
    assert!(
        matches!(
            got[..],
            [ServerMessage::OrderTriggered(t), ServerMessage::OrderExecuted(x)]
                if t.cl_ord_id == 1 && x.cl_ord_id == 1 && x.price == 49_980 && x.qty == 2
        ),
        "{got:?}"
    );
    buyer
        .send(&req::enter(limit(2, BTC_USDT, Side::Buy, 50_100, 3)))
        .unwrap();
    let got = orders_until(&mut owner, |m| matches!(m, ServerMessage::OrderRefilled(_)));
    assert!(
        matches!(
            got[..],
            [ServerMessage::OrderExecuted(x), ServerMessage::OrderRefilled(r)]
                if x.cl_ord_id == 3 && r.display_qty == 3 && r.hidden_qty == 4
        ),
        "{got:?}"
    );
    let got = orders_until(&mut owner, |m| {
        matches!(m, ServerMessage::OrderCancelled(_))
    });
    assert!(
        matches!(
            got[..],
            [ServerMessage::OrderCancelled(c)]
                if c.cl_ord_id == 2 && c.reason == CancelReason::Expired && c.timestamp_ns >= expire
        ),
        "{got:?}"
    );
}
