//! Queries over real TCP to a `tpx node` process (risk on, two shards on one core): order status
//! by `cl_ord_id`, open orders (all, one instrument), balances and positions, each answered
//! with the query's `request_id` and one `QueryDone`, unsequenced (the session's `seq` does not
//! move and the log gets no record: `as_of_seq` stays where it was), from both shards.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tpx_client::admin::{self, AdminAnswer};
use tpx_client::{req, token_from_str, Client, ClientConfig, ClientError, QueryAnswer};
use tpx_node::gateway::accounts::{demo_accounts_file, DemoAccount};
use tpx_wire::enums::{RequestKind, Side};
use tpx_wire::replies::ServerMessage;

mod common;
mod procs;

use common::limit;
use procs::{listening, Proc, WAIT};

const ADMIN: u32 = 50;
const USDT: u32 = 1;
const BTC_USDT: u32 = 1;
const ETH_USDT: u32 = 2;
const BTC_PERP: u32 = 3;
const T: Duration = Duration::from_secs(10);

fn config(dir: &Path) -> PathBuf {
    let accts: Vec<DemoAccount> = [1, 2, ADMIN]
        .iter()
        .map(|&id| DemoAccount {
            id,
            name: format!("t{id}"),
            token: format!("tok-{id}"),
            admin: id == ADMIN,
        })
        .collect();
    std::fs::write(
        dir.join("accounts.toml"),
        toml::to_string(&demo_accounts_file(&accts, 1_000_000)).unwrap(),
    )
    .unwrap();
    procs::single_node_config(dir, &[0, 1], "", "", procs::RISK_SECTION)
}

fn client(addr: std::net::SocketAddr, account: u32) -> Client {
    let cfg = ClientConfig::new(addr, account, 1, token_from_str(&format!("tok-{account}")));
    Client::connect(cfg).unwrap()
}

/// Waits for `cl`'s `OrderAccepted` (or its first execution when `filled`).
fn answered(c: &mut Client, cl: u64, filled: bool) {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match c.recv(left) {
            Ok(ServerMessage::OrderAccepted(a)) if a.cl_ord_id == cl && !filled => return,
            Ok(ServerMessage::OrderExecuted(x)) if x.cl_ord_id == cl && filled => return,
            Ok(ServerMessage::OrderCancelled(x)) if x.cl_ord_id == cl && filled => return,
            Ok(ServerMessage::OrderRejected(r)) if r.cl_ord_id == cl => panic!("{r:?}"),
            Ok(_) | Err(ClientError::Timeout) if !left.is_zero() => {}
            other => panic!("{cl}: {other:?}"),
        }
    }
}

fn done<X>(a: &QueryAnswer<X>, kind: RequestKind, id: u64) -> u64 {
    assert_eq!(a.rejected, None);
    let d = a.done.expect("a QueryDone");
    assert_eq!((d.request_id, d.request, d.seq), (id, kind, 0));
    assert_eq!(d.count as usize, a.items.len());
    d.as_of_seq
}

#[test]
fn queries_answer_from_the_shards_without_entering_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let cfg_s = cfg.display().to_string();
    let mut node = Proc::start("node", &["node", "--config", &cfg_s, "--role", "primary"]);
    node.expect("ROLE primary");
    let addr = listening(&node);

    let mut adm = client(addr, ADMIN);
    let mut rid = 0;
    for account in [1, 2] {
        for shard in [0, 1] {
            rid += 1;
            let a = adm
                .admin(&admin::deposit(rid, account, USDT, 1_000_000_000, shard), T)
                .unwrap();
            assert!(matches!(a, AdminAnswer::Accepted(_)), "{a:?}");
        }
    }
    let a = adm
        .admin(&admin::set_mark_price(9, BTC_PERP, 60_000), T)
        .unwrap();
    assert!(matches!(a, AdminAnswer::Accepted(_)), "{a:?}");

    let mut c1 = client(addr, 1);
    let mut c2 = client(addr, 2);
    c1.send(&req::enter(limit(1, BTC_USDT, Side::Buy, 50_000, 1)))
        .unwrap();
    c1.send(&req::enter(limit(2, BTC_USDT, Side::Buy, 49_000, 2)))
        .unwrap();
    c1.send(&req::enter(limit(3, ETH_USDT, Side::Buy, 30_000, 1)))
        .unwrap();
    for cl in 1..=3 {
        answered(&mut c1, cl, false);
    }
    // Account 2's order is not account 1's.
    c2.send(&req::enter(limit(1, BTC_USDT, Side::Buy, 48_000, 1)))
        .unwrap();
    answered(&mut c2, 1, false);

    let seq_before = c1.next_seq();
    let all = c1.open_orders(10, None, T).unwrap();
    let as_of = done(&all, RequestKind::QueryOpenOrders, 10);
    assert!(as_of > 0);
    let mut ids: Vec<(u64, u32)> = all
        .items
        .iter()
        .map(|o| (o.cl_ord_id, o.instrument))
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, vec![(1, BTC_USDT), (2, BTC_USDT), (3, ETH_USDT)]);
    assert!(all.items.iter().all(|o| o.seq == 0 && o.request_id == 10));

    let eth = c1.open_orders(11, Some(ETH_USDT), T).unwrap();
    assert_eq!(done(&eth, RequestKind::QueryOpenOrders, 11), as_of);
    assert_eq!(eth.items.len(), 1);
    assert_eq!(
        (
            eth.items[0].cl_ord_id,
            eth.items[0].price,
            eth.items[0].side
        ),
        (3, 30_000, Side::Buy)
    );

    let s = c1.order_status(12, 2, T).unwrap();
    assert_eq!(done(&s, RequestKind::QueryOrder, 12), as_of);
    assert_eq!(s.items.len(), 1);
    let o = s.items[0];
    assert_eq!(
        (o.cl_ord_id, o.price, o.leaves_qty, o.instrument, o.side),
        (2, 49_000, 2, BTC_USDT, Side::Buy)
    );
    assert_eq!(o.order_id >> 48, 0, "shard 0's order");
    let none = c1.order_status(13, 99, T).unwrap();
    assert_eq!(done(&none, RequestKind::QueryOrder, 13), as_of);
    assert!(none.items.is_empty());

    // Nothing of the queries is sequenced: the session's numbering and the log stand still.
    assert_eq!(c1.next_seq(), seq_before);
    assert!(
        all.other.is_empty() && s.other.is_empty(),
        "no replies meanwhile"
    );

    let b = c1.balances(14, T).unwrap();
    done(&b, RequestKind::QueryBalances, 14);
    let usdt: Vec<_> = b.items.iter().filter(|x| x.asset == USDT).collect();
    assert_eq!(usdt.len(), 2, "USDT on both shards: {b:?}");
    for x in &usdt {
        assert_eq!(x.available + x.held, 1_000_000_000, "{x:?}");
        assert!(x.held > 0, "held for the open orders: {x:?}");
    }

    // A position: account 2 sells 1 BTC-PERP into account 1's buy.
    c1.send(&req::enter(limit(4, BTC_PERP, Side::Buy, 60_000, 1)))
        .unwrap();
    answered(&mut c1, 4, false);
    c2.send(&req::enter(limit(2, BTC_PERP, Side::Sell, 60_000, 1)))
        .unwrap();
    answered(&mut c1, 4, true);
    let p1 = c1.positions(15, T).unwrap();
    assert!(done(&p1, RequestKind::QueryPositions, 15) > as_of);
    assert_eq!(p1.items.len(), 1, "{p1:?}");
    assert_eq!(
        (
            p1.items[0].instrument,
            p1.items[0].size,
            p1.items[0].entry_price
        ),
        (BTC_PERP, 1, 60_000)
    );
    let p2 = c2.positions(16, T).unwrap();
    done(&p2, RequestKind::QueryPositions, 16);
    assert_eq!(
        p2.items.iter().map(|p| p.size).collect::<Vec<_>>(),
        vec![-1]
    );

    // A cancelled order is no longer live.
    c1.send(&req::cancel(1, 0)).unwrap();
    answered(&mut c1, 1, true);
    let gone = c1.order_status(17, 1, T).unwrap();
    done(&gone, RequestKind::QueryOrder, 17);
    assert!(gone.items.is_empty());
    let left = c1.open_orders(18, Some(BTC_USDT), T).unwrap();
    done(&left, RequestKind::QueryOpenOrders, 18);
    assert_eq!(
        left.items.iter().map(|o| o.cl_ord_id).collect::<Vec<_>>(),
        vec![2]
    );

    // `tpx query`, on a session of its own while session 1 stays connected.
    let token = dir.path().join("t1.token");
    std::fs::write(&token, "tok-1\n").unwrap();
    let cli = |args: &[&str]| {
        let a = addr.to_string();
        let t = token.display().to_string();
        let mut all = vec!["query"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--connect", &a, "--account-id", "1", "--token-file", &t]);
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tpx"))
            .args(&all)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
        )
    };
    let (code, text) = cli(&["open"]);
    assert_eq!(code, Some(0), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    // Open: 2 (BTC-USDT) and 3 (ETH-USDT); 1 was cancelled, 4 filled.
    assert_eq!(lines.len(), 3, "{text}");
    let mut orders = lines[..2].to_vec();
    orders.sort_unstable();
    assert!(orders[0].starts_with("order cl_ord_id=2 "), "{text}");
    assert!(orders[1].starts_with("order cl_ord_id=3 "), "{text}");
    assert!(lines[2].starts_with("done request_id=1 count=2 "), "{text}");
    let (code, text) = cli(&["positions", "--request-id", "7"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.starts_with("position instrument=3 size=1 entry_price=60000 "),
        "{text}"
    );

    node.signal(libc::SIGTERM);
    assert_eq!(node.wait(), Some(0));
}
