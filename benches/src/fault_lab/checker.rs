//! The checker: what the clients were told against what the logs hold.
//!
//! - every order (or replace) a client was told is accepted, replaced or already sequenced is in
//!   the surviving log exactly once (`lost`, `duplicated`);
//! - every fill a client saw names an order that is in the log (`phantom_fills`), and the fills
//!   of one order do not add up to more than its quantity (`overfilled`; each trade id once: a
//!   report repeated by the other node of a flapping pair is `repeated_fill_reports`, noted,
//!   not a violation);
//! - a cancel a client saw confirmed is in the log (`lost_cancels`); an accepted deposit too
//!   (`lost_deposits`);
//! - at most one node says `ROLE primary` per term (`split_brain_terms`), and no node is primary
//!   of the same term in two incarnations (`term_regranted`);
//! - never two different records at one (term, seq), over every read of either log during the
//!   run (`conflicting_records`); primary and standby logs agree at the end (`logs_disagree`).
//!
//! - the surviving log, replayed through the node's own shards (`tpx_node::shard::replay`, the
//!   node config's shard plan, risk on), makes every fill a client saw, with the same trade id,
//!   price and quantity (`fills_not_reproduced`), and leaves every engine's invariants intact
//!   (`replay_invariants`); the replay's state hashes are reported.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use serde::Serialize;
use tpx_sequencer::{FileStorage, LogReader, WriteMode};
use tpx_wire::log_record::{Input, LogRecord};

use tpx_node::config::NodeConfig;
use tpx_node::msg::ReportKind;
use tpx_node::shard::md::{engine_book, Books};
use tpx_node::shard::plan::ShardPlan;
use tpx_node::shard::replay::Replay;

use super::feed::FeedEnd;
use super::history::{Event, Kind};
use super::procs::RoleLine;

/// Every record of a log (stops at the first unreadable one: a tail being written).
pub fn read_log(dir: &Path) -> Vec<LogRecord> {
    let mut out = Vec::new();
    if !dir.is_dir() {
        return out;
    }
    let Ok(st) = FileStorage::new(dir, WriteMode::Buffered) else {
        return out;
    };
    let Ok(mut r) = LogReader::new(st) else {
        return out;
    };
    while let Ok(Some(rec)) = r.next() {
        out.push(rec);
    }
    out
}

/// Every (term, seq) seen in either log during the run, and the records seen there.
#[derive(Debug, Default)]
pub struct Observed {
    seen: HashMap<(u64, u64), LogRecord>,
    pub conflicts: Vec<String>,
}

impl Observed {
    pub fn observe(&mut self, node: usize, log: &[LogRecord], at_ms: u64) {
        for rec in log {
            let key = (rec.meta.term, rec.meta.seq);
            match self.seen.get(&key) {
                None => {
                    self.seen.insert(key, *rec);
                }
                Some(old) if old != rec => {
                    if self.conflicts.len() < 1000 {
                        self.conflicts.push(format!(
                            "t={at_ms}ms node-{}: term {} seq {}: {:?} vs earlier {:?}",
                            node + 1,
                            key.0,
                            key.1,
                            rec,
                            old
                        ));
                    }
                    self.seen.insert(key, *rec);
                }
                Some(_) => {}
            }
        }
    }
}

/// What the checker found.
#[derive(Debug, Default, Serialize)]
pub struct Findings {
    pub acked: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub phantom_fills: u64,
    pub overfilled: u64,
    pub lost_cancels: u64,
    pub lost_deposits: u64,
    pub split_brain_terms: u64,
    pub term_regranted: u64,
    pub conflicting_records: u64,
    pub logs_disagree: u64,
    /// Fills a client saw that the replay of the surviving log does not make (trade id, price
    /// and quantity of that order's side).
    pub fills_not_reproduced: u64,
    /// Engines whose invariants fail after the replay.
    pub replay_invariants: u64,
    /// Fills (one per side) the replay made, and its shards' state hashes.
    pub replay_fills: u64,
    pub replay_state_hashes: Vec<String>,
    /// The lab's feed handler (clients' namespace, following whichever node is primary) against
    /// the replay: instruments whose L3 book (every order id, side, price, quantity, in queue
    /// order) differs at the end. Checked when the nodes publish over UDP (namespaces).
    pub feed_book_mismatches: u64,
    pub feed_checked: bool,
    pub feed_live: bool,
    pub feed_snapshot_recoveries: u64,
    pub unknown: u64,
    pub fills: u64,
    /// Not violations, reported for the node's owners: fill reports that repeat one
    /// (order, trade id) a client already got (both nodes of a flapping pair reported the
    /// execution; `overfilled` counts each trade once), and requests answered `Unavailable`
    /// that are in the log nevertheless (the client was told "rejected", the order lives).
    pub repeated_fill_reports: u64,
    pub unavailable_then_sequenced: u64,
    pub log_records: [usize; 2],
    /// Lost acks, phantom fills, lost cancels and deposits by the kind of the last fault
    /// applied before the client was told (`none`: before the first fault).
    pub after_fault: BTreeMap<String, u64>,
    /// Up to a few examples per kind.
    pub examples: BTreeMap<String, Vec<String>>,
}

impl Findings {
    pub fn violations(&self) -> u64 {
        self.lost
            + self.duplicated
            + self.phantom_fills
            + self.overfilled
            + self.lost_cancels
            + self.lost_deposits
            + self.split_brain_terms
            + self.term_regranted
            + self.conflicting_records
            + self.logs_disagree
            + self.fills_not_reproduced
            + self.feed_book_mismatches
            + self.replay_invariants
    }

    /// Counts a violation told to a client at `t_ms` against the fault before it.
    fn blame(&mut self, faults: &[(u64, String)], t_ms: u64) {
        let k = faults
            .iter()
            .rev()
            .find(|f| f.0 <= t_ms)
            .map_or("none".to_string(), |f| f.1.clone());
        *self.after_fault.entry(k).or_default() += 1;
    }

    fn example(&mut self, kind: &str, text: String) {
        let v = self.examples.entry(kind.to_string()).or_default();
        if v.len() < 5 {
            v.push(text);
        }
    }
}

/// Every fill of the log's replay: `(account, cl_ord_id, trade_id) -> (price, qty)`.
pub type ReplayedFills = HashMap<(u32, u64, u64), (i64, u64)>;

/// Replays `log` through the shards `node_config` describes: the fills they make, each engine's
/// invariant check, and their state hashes.
pub fn replay(log: &[LogRecord], node_config: &Path) -> Result<Replayed, String> {
    let cfg = NodeConfig::load(node_config)?;
    let plan = ShardPlan::of(&cfg, cfg.plan()?.shard_count())?;
    let mut r = Replay::new(&plan)?;
    let mut fills = ReplayedFills::new();
    for rec in log {
        r.apply(rec, |_, rep| {
            if let ReportKind::Executed {
                cl_ord_id,
                trade_id,
                price,
                qty,
                ..
            } = rep.kind
            {
                fills.insert((rep.account, cl_ord_id, trade_id), (price, qty));
            }
        });
    }
    let broken = r
        .shards
        .iter()
        .filter_map(|s| {
            s.engine
                .check_invariants()
                .err()
                .map(|e| format!("shard {}: {e}", s.id))
        })
        .collect();
    let mut books = Books::new();
    for sh in &r.shards {
        let id_base = u64::from(sh.id) << tpx_node::shard::apply::SHARD_ORDER_ID_SHIFT;
        for &i in &sh.instruments {
            books.insert(i, engine_book(&sh.engine, i, id_base));
        }
    }
    Ok(Replayed {
        fills,
        broken,
        hashes: r.state_hashes(),
        books,
    })
}

/// What [`replay`] made.
#[derive(Debug)]
pub struct Replayed {
    pub fills: ReplayedFills,
    /// Engines whose invariants fail.
    pub broken: Vec<String>,
    pub hashes: Vec<u64>,
    /// The books at the log's end, as a feed handler holds them.
    pub books: Books,
}

/// Checks the history against the final logs (`surviving`: the index of the primary's log;
/// `node_config`: a node's config file, for the replay).
pub fn check(
    events: &[Event],
    roles: &[RoleLine],
    logs: &[Vec<LogRecord>; 2],
    surviving: usize,
    observed: &Observed,
    node_config: &Path,
    feed: Option<&FeedEnd>,
) -> Findings {
    let mut f = Findings {
        log_records: [logs[0].len(), logs[1].len()],
        ..Findings::default()
    };
    // The log's orders by (account, cl_ord_id): how often, and the quantity.
    let mut orders: HashMap<(u32, u64), (u32, u64)> = HashMap::new();
    let mut cancels: BTreeSet<(u32, u64)> = BTreeSet::new();
    let mut deposits: BTreeSet<(u32, u64)> = BTreeSet::new();
    for rec in &logs[surviving] {
        let a = rec.meta.account;
        match rec.input {
            Input::EnterOrder(o) => {
                let e = orders.entry((a, o.cl_ord_id)).or_insert((0, o.qty));
                e.0 += 1;
            }
            Input::EnterOrderExt(o) => {
                let e = orders.entry((a, o.cl_ord_id)).or_insert((0, o.qty));
                e.0 += 1;
            }
            Input::ReplaceOrder(r) => {
                let e = orders.entry((a, r.new_cl_ord_id)).or_insert((0, r.qty));
                e.0 += 1;
            }
            Input::CancelOrder(c) => {
                cancels.insert((a, c.cl_ord_id));
            }
            Input::Deposit(d) => {
                deposits.insert((d.account, d.request_id));
            }
            _ => {}
        }
    }
    for (k, (n, _)) in &orders {
        if *n > 1 {
            f.duplicated += 1;
            f.example(
                "duplicated",
                format!("account {} order {} is in the log {n} times", k.0, k.1),
            );
        }
    }
    let replayed = match replay(&logs[surviving], node_config) {
        Ok(Replayed {
            fills,
            broken,
            hashes,
            books,
        }) => {
            f.replay_fills = fills.len() as u64;
            f.replay_invariants = broken.len() as u64;
            for b in broken {
                f.example("replay_invariants", b);
            }
            f.replay_state_hashes = hashes.iter().map(|h| format!("{h:016x}")).collect();
            if let Some(feed) = feed {
                f.feed_checked = true;
                f.feed_live = feed.live;
                f.feed_snapshot_recoveries = feed.snapshot_recoveries;
                for (i, want) in &books {
                    let got = feed.books.get(i).map(Vec::as_slice).unwrap_or(&[]);
                    if got != want.as_slice() {
                        f.feed_book_mismatches += 1;
                        f.example(
                            "feed_book_mismatches",
                            format!(
                                "instrument {i}: the feed handler holds {} orders, the replay {} \
                                 (feed live {}, next_seq {}, gaps {}, book errors {})",
                                got.len(),
                                want.len(),
                                feed.live,
                                feed.next_seq,
                                feed.gaps,
                                feed.book_errors
                            ),
                        );
                    }
                }
            }
            Some(fills)
        }
        Err(e) => {
            // A replay that cannot run is a finding of its own (counted as a broken engine).
            f.replay_invariants += 1;
            f.example("replay_invariants", format!("the replay did not run: {e}"));
            None
        }
    };
    let faults: Vec<(u64, String)> = events
        .iter()
        .filter(|e| e.kind == Kind::Fault && !e.detail.contains("skipped"))
        .map(|e| (e.t_ms, e.detail.split(':').next().unwrap_or("").to_string()))
        .collect();
    let mut acked: BTreeSet<(u32, u64)> = BTreeSet::new();
    let mut filled: BTreeMap<(u32, u64), u64> = BTreeMap::new();
    let mut trades: BTreeSet<(u32, u64, u64)> = BTreeSet::new();
    let mut deposit_target: HashMap<u64, u32> = HashMap::new();
    for e in events {
        let key = (e.account, e.cl);
        match e.kind {
            Kind::Accepted | Kind::Replaced | Kind::AlreadySequenced => {
                acked.insert(key);
            }
            Kind::Fill => {
                f.fills += 1;
                if !trades.insert((e.account, e.cl, e.trade_id)) {
                    f.repeated_fill_reports += 1;
                    f.example(
                        "repeated_fill_reports",
                        format!(
                            "t={}ms account {} order {}: trade {} reported again",
                            e.t_ms, e.account, e.cl, e.trade_id
                        ),
                    );
                    continue;
                }
                *filled.entry(key).or_default() += e.qty;
                if let Some(fills) = &replayed {
                    let made = fills.get(&(e.account, e.cl, e.trade_id));
                    if made != Some(&(e.price, e.qty)) {
                        f.fills_not_reproduced += 1;
                        f.blame(&faults, e.t_ms);
                        f.example(
                            "fills_not_reproduced",
                            format!(
                                "t={}ms account {} order {}: trade {} {}@{} seen, the replay made {made:?}",
                                e.t_ms, e.account, e.cl, e.trade_id, e.qty, e.price
                            ),
                        );
                    }
                }
                if !orders.contains_key(&key) {
                    f.phantom_fills += 1;
                    f.blame(&faults, e.t_ms);
                    f.example(
                        "phantom_fills",
                        format!(
                            "t={}ms account {} order {}: fill of {} (trade {}) for an order in no log",
                            e.t_ms, e.account, e.cl, e.qty, e.trade_id
                        ),
                    );
                }
            }
            Kind::Cancelled if e.detail == "UserRequested" && !cancels.contains(&key) => {
                f.lost_cancels += 1;
                f.blame(&faults, e.t_ms);
                f.example(
                    "lost_cancels",
                    format!(
                        "t={}ms account {} order {}: cancel confirmed, no cancel in the log",
                        e.t_ms, e.account, e.cl
                    ),
                );
            }
            Kind::Deposit => {
                deposit_target.insert(e.cl, e.orig as u32);
            }
            Kind::DepositAccepted => {
                let target = deposit_target.get(&e.cl).copied().unwrap_or(0);
                if !deposits.contains(&(target, e.cl)) {
                    f.lost_deposits += 1;
                    f.blame(&faults, e.t_ms);
                    f.example(
                        "lost_deposits",
                        format!("t={}ms deposit {} accepted, in no log", e.t_ms, e.cl),
                    );
                }
            }
            Kind::Unknown => f.unknown += 1,
            // An order or replace (a cancel's id names the order it cancels).
            Kind::Rejected
                if e.detail.starts_with("Unavailable")
                    && !e.detail.ends_with("Some(Cancel))")
                    && orders.contains_key(&key) =>
            {
                f.unavailable_then_sequenced += 1;
                f.example(
                    "unavailable_then_sequenced",
                    format!(
                        "t={}ms account {} order {}: answered {}, in the log",
                        e.t_ms, e.account, e.cl, e.detail
                    ),
                );
            }
            _ => {}
        }
    }
    f.acked = acked.len() as u64;
    // When each was first acknowledged.
    let mut ack_time: HashMap<(u32, u64), u64> = HashMap::new();
    for e in events.iter().filter(|e| {
        matches!(
            e.kind,
            Kind::Accepted | Kind::Replaced | Kind::AlreadySequenced
        )
    }) {
        ack_time.entry((e.account, e.cl)).or_insert(e.t_ms);
    }
    for k in &acked {
        if !orders.contains_key(k) {
            f.lost += 1;
            f.blame(&faults, ack_time.get(k).copied().unwrap_or(0));
            f.example(
                "lost",
                format!(
                    "t={}ms account {} order {}: acknowledged, in no log",
                    ack_time.get(k).copied().unwrap_or(0),
                    k.0,
                    k.1
                ),
            );
        }
    }
    for (k, q) in &filled {
        if let Some((_, qty)) = orders.get(k) {
            if q > qty {
                f.overfilled += 1;
                f.example(
                    "overfilled",
                    format!(
                        "account {} order {}: fills add up to {q}, the order is for {qty}",
                        k.0, k.1
                    ),
                );
            }
        }
    }
    // Roles: one primary per term; a term held by one incarnation only.
    let mut by_term: BTreeMap<u64, BTreeSet<(usize, u32)>> = BTreeMap::new();
    for r in roles.iter().filter(|r| r.primary) {
        by_term
            .entry(r.term)
            .or_default()
            .insert((r.node, r.incarnation));
    }
    for (t, holders) in &by_term {
        let nodes: BTreeSet<usize> = holders.iter().map(|h| h.0).collect();
        if nodes.len() > 1 {
            f.split_brain_terms += 1;
            f.example(
                "split_brain_terms",
                format!("term {t}: primary on nodes {nodes:?}"),
            );
        } else if holders.len() > 1 {
            f.term_regranted += 1;
            f.example(
                "term_regranted",
                format!("term {t}: primary in incarnations {holders:?} of one node"),
            );
        }
    }
    f.conflicting_records = observed.conflicts.len() as u64;
    for c in observed.conflicts.iter().take(5) {
        f.example("conflicting_records", c.clone());
    }
    // The two logs agree where both have records, and end at the same seq.
    let (a, b) = (&logs[0], &logs[1]);
    let n = a.len().min(b.len());
    let mut differ = (0..n).filter(|&i| a[i] != b[i]).count() as u64;
    if a.len() != b.len() {
        differ += 1;
        f.example(
            "logs_disagree",
            format!("node-1 holds {} records, node-2 {}", a.len(), b.len()),
        );
    }
    if let Some(i) = (0..n).find(|&i| a[i] != b[i]) {
        f.example(
            "logs_disagree",
            format!("first difference at index {i}: {:?} vs {:?}", a[i], b[i]),
        );
    }
    f.logs_disagree = differ;
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use tpx_wire::enums::{OrderKind, Side, StpMode, TimeInForce};
    use tpx_wire::log_record::RecordMeta;
    use tpx_wire::order_entry::EnterOrder;

    fn order(seq: u64, account: u32, cl: u64, side: Side) -> LogRecord {
        LogRecord {
            meta: RecordMeta {
                seq,
                term: 1,
                timestamp_ns: seq,
                origin: tpx_node::sequencing::feed::origin_of(0, account),
                account,
                session: 1,
            },
            input: Input::EnterOrder(EnterOrder {
                cl_ord_id: cl,
                price: 60_000,
                qty: 2,
                instrument: 1,
                side,
                kind: OrderKind::Limit,
                tif: TimeInForce::Gtc,
                stp: StpMode::None,
                post_only: false,
                reduce_only: false,
            }),
        }
    }

    fn fill(account: u32, cl: u64, trade_id: u64, price: i64, qty: u64) -> Event {
        let mut e = Event::new(account, Kind::Fill, cl);
        (e.trade_id, e.price, e.qty) = (trade_id, price, qty);
        e
    }

    /// The replay through the node's shards confirms the fills a client saw, and catches one
    /// the log does not make (a wrong price, a wrong quantity, an unknown trade id).
    #[test]
    fn fills_are_checked_against_a_replay_of_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("node.toml");
        std::fs::write(
            &cfg,
            "listen = \"127.0.0.1:0\"\naccounts_file = \"accounts.toml\"\n\
             [[core_plan.cores]]\ncpu = 0\ngateway = true\nsequencer = true\nshards = [0]\n",
        )
        .unwrap();
        let log = vec![order(1, 1, 7, Side::Sell), order(2, 2, 9, Side::Buy)];
        let Replayed {
            fills,
            broken,
            hashes,
            books,
        } = replay(&log, &cfg).unwrap();
        assert!(broken.is_empty(), "{broken:?}");
        assert_eq!(hashes.len(), 1);
        assert_eq!(fills.len(), 2, "maker and taker: {fills:?}");
        let (&(_, _, trade), _) = fills.iter().next().unwrap();
        let logs = [log.clone(), log];
        let accepted = |a, cl| Event::new(a, Kind::Accepted, cl);
        let run = |extra: Event| {
            let events = vec![
                accepted(1, 7),
                accepted(2, 9),
                fill(1, 7, trade, 60_000, 2),
                extra,
            ];
            check(&events, &[], &logs, 0, &Observed::default(), &cfg, None)
        };
        let f = run(fill(2, 9, trade, 60_000, 2));
        assert_eq!(
            (f.fills_not_reproduced, f.violations()),
            (0, 0),
            "{:?}",
            f.examples
        );
        assert_eq!(f.replay_fills, 2);
        for bad in [
            fill(2, 9, trade, 60_001, 2),
            fill(2, 9, trade, 60_000, 1),
            fill(2, 9, trade + 1, 60_000, 2),
        ] {
            let f = run(bad);
            assert_eq!(f.fills_not_reproduced, 1, "{:?}", f.examples);
            assert_eq!(f.violations(), 1);
        }
        // The feed handler's books against the replay's (both orders filled in full: empty
        // books): equal, then one order too many.
        assert!(books[&1].is_empty(), "{books:?}");
        let events = vec![accepted(1, 7), accepted(2, 9)];
        let feed = |books: Books| FeedEnd {
            books,
            live: true,
            ..FeedEnd::default()
        };
        let same = feed(books.clone());
        let f = check(
            &events,
            &[],
            &logs,
            0,
            &Observed::default(),
            &cfg,
            Some(&same),
        );
        assert!(f.feed_checked);
        assert_eq!((f.feed_book_mismatches, f.violations()), (0, 0));
        let mut extra = books.clone();
        extra
            .get_mut(&1)
            .unwrap()
            .push(tpx_node::shard::md::BookOrder {
                order_id: 3,
                side: Side::Buy,
                price: 59_000,
                qty: 1,
            });
        let f = check(
            &events,
            &[],
            &logs,
            0,
            &Observed::default(),
            &cfg,
            Some(&feed(extra)),
        );
        assert_eq!(
            (f.feed_book_mismatches, f.violations()),
            (1, 1),
            "{:?}",
            f.examples
        );
    }
}
