//! `tpx replay`: a single `tpx node` process (durable log, two shards) takes two crossing
//! orders and stops; `tpx replay --config` on its log prints the fills the clients saw
//! and a state hash per shard, the same for the whole log twice, and a different one when it
//! stops before the trade (`--to-seq`).

use std::process::Command;

use tpx_client::{req, token_from_str, Client, ClientConfig};
use tpx_node::gateway::accounts::{demo_accounts, demo_accounts_file};
use tpx_wire::enums::Side;
use tpx_wire::replies::ServerMessage;

mod procs;

use procs::{listening, Proc};

fn replay(cfg: &str, extra: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tpx"))
        .args(["replay", "--config", cfg])
        .args(extra)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

fn field<'a>(line: &'a str, name: &str) -> &'a str {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(name))
        .unwrap_or_else(|| panic!("no {name} in {line}"))
}

#[test]
fn a_stopped_nodes_log_replays_to_its_fills_and_state_hash() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("accounts.toml"),
        toml::to_string(&demo_accounts_file(&demo_accounts(4), 1_000_000)).unwrap(),
    )
    .unwrap();
    let cfg = dir.path().join("node.toml");
    std::fs::write(
        &cfg,
        "listen = \"127.0.0.1:0\"\naccounts_file = \"accounts.toml\"\nidle = \"park\"\n\
         [[core_plan.cores]]\ncpu = 0\ngateway = true\nsequencer = true\nshards = [0, 1]\n\
         [replication]\nlog_dir = \"log\"\n",
    )
    .unwrap();
    let cfg_s = cfg.display().to_string();
    let mut node = Proc::start("node", &["node", "--config", &cfg_s, "--role", "primary"]);
    node.expect("ROLE primary");
    let addr = listening(&node);
    let token = |a: u32| token_from_str(&format!("demo-token-{a}"));
    let mut a = Client::connect(ClientConfig::new(addr, 1, 1, token(1))).unwrap();
    let mut b = Client::connect(ClientConfig::new(addr, 2, 1, token(2))).unwrap();
    let order = |cl, side| tpx_wire::order_entry::EnterOrder {
        cl_ord_id: cl,
        price: 60_000,
        qty: 2,
        instrument: 1,
        side,
        kind: tpx_wire::enums::OrderKind::Limit,
        tif: tpx_wire::enums::TimeInForce::Gtc,
        stp: tpx_wire::enums::StpMode::None,
        post_only: false,
        reduce_only: false,
    };
    a.send(&req::enter(order(1, Side::Sell))).unwrap();
    loop {
        match a.recv(std::time::Duration::from_secs(10)).unwrap() {
            ServerMessage::OrderAccepted(_) => break,
            ServerMessage::OrderRejected(r) => panic!("{r:?}"),
            _ => {}
        }
    }
    b.send(&req::enter(order(1, Side::Buy))).unwrap();
    loop {
        match b.recv(std::time::Duration::from_secs(10)).unwrap() {
            ServerMessage::OrderExecuted(x) => {
                assert_eq!((x.qty, x.price), (2, 60_000));
                break;
            }
            ServerMessage::OrderRejected(r) => panic!("{r:?}"),
            _ => {}
        }
    }
    node.signal(libc::SIGTERM);
    assert_eq!(node.wait(), Some(0));

    let full = replay(&cfg_s, &[]);
    assert_eq!(field(&full, "records="), "2", "{full}");
    assert_eq!(field(&full, "fills="), "2", "maker and taker: {full}");
    assert_eq!(field(&full, "shards="), "2", "{full}");
    assert_eq!(field(&full, "hashes=").split(',').count(), 2, "{full}");
    assert_eq!(
        field(&replay(&cfg_s, &[]), "hashes="),
        field(&full, "hashes="),
        "a replay is a pure function of the log"
    );
    let before = replay(&cfg_s, &["--to-seq", "1"]);
    assert_eq!(field(&before, "fills="), "0", "{before}");
    assert_ne!(field(&before, "hashes="), field(&full, "hashes="));
}
