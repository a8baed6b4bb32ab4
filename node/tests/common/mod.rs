//! Helpers for the end-to-end tests: a node on 127.0.0.1 with an ephemeral port, park idle,
//! small tables, and clients of known accounts.

#![allow(dead_code)]

pub mod feed;

use std::time::{Duration, Instant};

use tpx_client::{token_from_str, Client, ClientConfig, ClientError};
use tpx_node::config::replication::ReplicationConfig;
use tpx_node::config::{CoreAssignment, CorePlan, IdleMode, NodeConfig};
use tpx_node::gateway::accounts::{token_hash_hex, token_of, AccountEntry, Accounts, AccountsFile};
use tpx_node::Node;
use tpx_wire::enums::{OrderKind, Side, StpMode, TimeInForce};
use tpx_wire::order_entry::EnterOrder;
use tpx_wire::replies::ServerMessage;

pub const WAIT: Duration = Duration::from_secs(10);

/// Accounts 1..=4 at a generous rate; account 9 limited to 5 messages a second (burst 5).
pub fn accounts() -> Accounts {
    let mut account: Vec<AccountEntry> = (1..=4)
        .map(|id| AccountEntry {
            id,
            name: format!("t{id}"),
            token_sha256: token_hash_hex(&token_of(&format!("tok-{id}")).0),
            rate_limit_per_sec: 100_000,
            burst: Some(100_000),
            admin: false,
            ..AccountEntry::default()
        })
        .collect();
    account.push(AccountEntry {
        id: 9,
        name: "slow".into(),
        token_sha256: token_hash_hex(&token_of("tok-9").0),
        rate_limit_per_sec: 5,
        burst: Some(5),
        admin: false,
        ..AccountEntry::default()
    });
    Accounts::from_file(AccountsFile { account }).unwrap()
}

pub fn cpus() -> Vec<usize> {
    core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect()
}

/// The prefix of the folders [`log_dir`] makes: `tpx-node-test-<pid>-<n>`.
const LOG_DIR_PREFIX: &str = "tpx-node-test-";

/// A fresh folder for one node's input log (under the temp dir; small segments). The nodes of
/// these tests run in the test process and keep their folders until it exits, so the first
/// call of a process removes the folders of test processes that are gone (their pid no longer
/// runs).
pub fn log_dir() -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    static SWEEP: std::sync::Once = std::sync::Once::new();
    SWEEP.call_once(remove_folders_of_gone_processes);
    let d = std::env::temp_dir().join(format!(
        "{LOG_DIR_PREFIX}{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// Removes the [`log_dir`] folders whose process is gone.
fn remove_folders_of_gone_processes() {
    let Ok(rd) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(LOG_DIR_PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// A single node with its durable log (fsync, in-process witness) in a fresh folder.
pub fn base_config(plan: CorePlan) -> NodeConfig {
    NodeConfig {
        replication: Some(ReplicationConfig {
            log_dir: log_dir(),
            segment_bytes: Some(1 << 20),
            ..ReplicationConfig::default()
        }),
        listen: "127.0.0.1:0".parse().unwrap(),
        idle: IdleMode::Park,
        max_orders: 4096,
        max_accounts: 64,
        journal_capacity: 1024,
        core_plan: Some(plan),
        ..NodeConfig::default()
    }
}

/// Every role on one core.
pub fn single_core_node() -> Node {
    let cpu = cpus().first().copied().unwrap_or(0);
    Node::start(&base_config(CorePlan::single(cpu)), accounts()).unwrap()
}

/// Two cores, each a gateway with one shard; the sequencer on the first. With one CPU, both
/// executors share it.
pub fn two_core_node() -> Node {
    let c = cpus();
    let a = c.first().copied().unwrap_or(0);
    let b = c.get(1).copied().unwrap_or(a);
    let plan = CorePlan {
        cores: vec![
            CoreAssignment {
                cpu: a,
                gateway: true,
                sequencer: true,
                shards: vec![0],
            },
            CoreAssignment {
                cpu: b,
                gateway: true,
                sequencer: false,
                shards: vec![1],
            },
        ],
    };
    Node::start(&base_config(plan), accounts()).unwrap()
}

pub fn cfg(node: &Node, account: u32, session: u32) -> ClientConfig {
    ClientConfig::new(
        node.addr(),
        account,
        session,
        token_from_str(&format!("tok-{account}")),
    )
}

pub fn login(node: &Node, account: u32) -> Client {
    Client::connect(cfg(node, account, 1)).unwrap()
}

pub fn limit(cl: u64, instrument: u32, side: Side, price: i64, qty: u64) -> EnterOrder {
    EnterOrder {
        cl_ord_id: cl,
        price,
        qty,
        instrument,
        side,
        kind: OrderKind::Limit,
        tif: TimeInForce::Gtc,
        stp: StpMode::None,
        post_only: false,
        reduce_only: false,
    }
}

/// The next reply (parked wait, bounded).
pub fn next(c: &mut Client) -> ServerMessage {
    match c.recv(WAIT) {
        Ok(m) => m,
        Err(e) => panic!("no reply: {e}"),
    }
}

/// Replies until `pred` matches (bounded); returns everything read, the match last.
pub fn until(c: &mut Client, mut pred: impl FnMut(&ServerMessage) -> bool) -> Vec<ServerMessage> {
    let deadline = Instant::now() + WAIT;
    let mut got = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "timed out; got {got:?}");
        match c.recv(left) {
            Ok(m) => {
                let done = pred(&m);
                got.push(m);
                if done {
                    return got;
                }
            }
            Err(ClientError::Timeout) => {}
            Err(e) => panic!("error {e}; got {got:?}"),
        }
    }
}

/// The body of a node's Prometheus page (`[stats] prometheus`).
pub fn scrape(addr: std::net::SocketAddr) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text.split("\r\n\r\n").nth(1).unwrap().to_string()
}

/// The value of an unlabelled metric on a Prometheus page.
pub fn metric(page: &str, name: &str) -> u64 {
    let key = format!("{name} ");
    page.lines()
        .find_map(|l| l.strip_prefix(key.as_str()))
        .unwrap_or_else(|| panic!("no {name} in {page}"))
        .trim()
        .parse()
        .unwrap()
}
