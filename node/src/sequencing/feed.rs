//! The sequencing stage's feed to the shards: log records back into shard entries, with the
//! session of the request that made them (if this node took it), and the `origin` a record
//! carries.
//!
//! Records reach the shards only through the replica's [`Applier`] ([`ShardFeed`]), which the
//! replica calls for the primary's records once they are acknowledgeable (durable as the
//! durability mode requires) and for every record a standby receives. So one path feeds the
//! shards on primary and standby, and a reply (made by a shard from an applied record) never
//! reaches a client before its record is acknowledgeable. A record's input goes to its shard
//! as the log holds it (what the client sent); the shard converts it to the engine's form.
//!
//! The log record's `origin` carries what the shards and the de-duplication need across nodes
//! (the gateway's session slot is local to a process, so it cannot be used):
//! `origin = shard << 24 | account` (`shard` 0xFF for every shard; accounts above 2^24 - 1 are
//! refused, see [`MAX_ORIGIN_ACCOUNT`]). The replica de-duplicates by `(origin, cl_ord_id)`
//! (the highest id seen per origin), so a client re-sending after a failover is answered
//! `DuplicateClientOrderId` (once the original is acknowledgeable) instead of being sequenced
//! twice. Client order ids must therefore increase strictly per account and instrument shard
//! across every session of the account, reconnects and failovers included: the
//! client-order-id rule of PROTOCOL.md.

use std::collections::VecDeque;

use tpx_sequencer::Applier;
use tpx_wire::log_record::{Input, LogRecord};

use std::sync::atomic::Ordering;

use crate::msg::{Request, Sequenced, ALL_SHARDS, NO_SESSION};
use crate::runtime::ring::Producer;
use crate::runtime::state::Watermarks;

/// Exit status of `tpx node` when its log held records the new primary's term does not: it cut
/// them and must be restarted (as standby) to rebuild its shards by replay.
pub const EXIT_REJOIN: u8 = 3;

/// The largest account id an `origin` carries (24 bits): the stage refuses requests of higher
/// accounts (`UnknownAccount`) instead of letting two accounts share a de-duplication key.
pub const MAX_ORIGIN_ACCOUNT: u32 = 0x00FF_FFFF;

/// Whether `account` fits in an `origin` (see [`MAX_ORIGIN_ACCOUNT`]).
#[inline]
pub fn origin_fits(account: u32) -> bool {
    account <= MAX_ORIGIN_ACCOUNT
}

/// `origin` of a request's record (see the module docs); `account` must fit
/// ([`origin_fits`]).
#[inline]
pub fn origin_of(shard: u16, account: u32) -> u32 {
    let s = if shard == ALL_SHARDS {
        0xFF
    } else {
        u32::from(shard.min(0xFE))
    };
    s << 24 | (account & 0x00FF_FFFF)
}

/// The shard a record's `origin` names.
#[inline]
pub fn shard_of_origin(origin: u32) -> u16 {
    match origin >> 24 {
        0xFF => ALL_SHARDS,
        s => s as u16,
    }
}

/// What the stage remembers of a request it submitted, to answer the right session when the
/// record comes back through the applier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalMeta {
    pub seq: u64,
    pub session: u32,
    pub tag: u32,
    /// The request's stage stamps so far (`rx`, `seq`; all 0 when stamping is off).
    pub stamps: crate::msg::Stamps,
    /// The gateway the request came from (its reject ring), the requesting account and what
    /// a reject names ([`Request::reject_subject`]): to answer "unavailable" if the record is
    /// never acknowledged here (see [`ShardFeed::unsequenced`]).
    pub gateway: u16,
    pub account: u32,
    pub subject: Option<(tpx_wire::enums::RequestKind, u64)>,
}

impl LocalMeta {
    /// What the stage remembers of `req`, from gateway `gateway`, sequenced as `seq`.
    pub fn of(seq: u64, gateway: usize, req: &Request) -> LocalMeta {
        LocalMeta {
            seq,
            session: req.session,
            tag: req.tag,
            stamps: req.stamps,
            gateway: gateway as u16,
            account: req.account,
            subject: req.reject_subject(),
        }
    }
}

/// The shard entry of a log record: the client session the log names (on every node: the
/// answers belong to that session's reply stream wherever it logs in), and the local tag and
/// stamps if this node submitted it (an admin request's id is in its input).
/// `durable_tsc`: the release stamp, read once per duty cycle (on the first stamped record).
pub fn entry_of(
    rec: &LogRecord,
    meta: &mut VecDeque<LocalMeta>,
    durable_tsc: &mut Option<u64>,
) -> Sequenced {
    let seq = rec.meta.seq;
    while meta.front().is_some_and(|m| m.seq < seq) {
        meta.pop_front();
    }
    let (tag, mut stamps) = match meta.front() {
        Some(m) if m.seq == seq => {
            let m = meta.pop_front().expect("front exists");
            (m.tag, m.stamps)
        }
        _ => (0, crate::msg::Stamps::default()),
    };
    let session = match rec.meta.session {
        0 => NO_SESSION,
        s => s,
    };
    if stamps.rx != 0 {
        // Released to the shards: durable as the durability mode requires.
        stamps.durable = *durable_tsc.get_or_insert_with(crate::runtime::clock::tsc);
    }
    // Risk records go through the same path as orders: balances are state, so a standby, a
    // replay at start and a rejoin apply them too.
    Sequenced {
        seq,
        ts_ns: rec.meta.timestamp_ns,
        req: Request {
            session,
            shard: shard_of_origin(rec.meta.origin),
            tag,
            account: rec.meta.account,
            input: rec.input,
            stamps,
        },
    }
}

/// Hands records to the shard rings: straight into the ring when it has room and nothing waits
/// before it, else into `overflow` (which the stage drains first each cycle, and while it is not
/// empty takes no new requests). The replica cannot be told "later", so the overflow is the one
/// place the hot path may allocate: it is preallocated and grows only when a standby receives a
/// burst larger than it (bounded by the replica's send window).
#[derive(Debug)]
pub struct ShardFeed<'a> {
    pub outputs: &'a mut [Producer<Sequenced>],
    pub pushed: &'a mut [bool],
    pub overflow: &'a mut VecDeque<Sequenced>,
    pub meta: &'a mut VecDeque<LocalMeta>,
    /// Set by `rewind`: the shards hold records the log no longer has.
    pub rewound: &'a mut Option<u64>,
    pub applied: &'a mut u64,
    /// The `durable` stage stamp of this cycle (one TSC read for every record released in it).
    pub durable_tsc: Option<u64>,
    /// Requests the replica sequenced but stepped down before acknowledging (see
    /// [`Applier::discard`]): their records never reach the shards from this node's
    /// sessions; the stage answers them "unavailable".
    pub unsequenced: &'a mut VecDeque<LocalMeta>,
    /// Where the feed publishes what it pushed (the gateways' reply ordering).
    pub marks: &'a Watermarks,
}

/// Whether every ring `shard` names has room.
pub fn room_for(outputs: &[Producer<Sequenced>], shard: u16) -> bool {
    if shard == ALL_SHARDS {
        outputs.iter().all(|o| o.free() > 0)
    } else {
        outputs.get(shard as usize).is_some_and(|o| o.free() > 0)
    }
}

/// Pushes an entry whose rings have room (checked by the caller), then publishes it in
/// `marks`: the shard's `pushed` seq, then `fed` (see [`Watermarks`]).
pub fn dispatch(
    outputs: &mut [Producer<Sequenced>],
    pushed: &mut [bool],
    marks: &Watermarks,
    e: Sequenced,
) {
    let mark = |s: usize| {
        if let Some(m) = marks.pushed.get(s) {
            m.store(e.seq, Ordering::Release);
        }
    };
    if e.req.shard == ALL_SHARDS {
        for (s, (o, p)) in outputs.iter_mut().zip(pushed.iter_mut()).enumerate() {
            let r = o.try_push(e);
            debug_assert!(r.is_ok(), "room was checked");
            *p = true;
            mark(s);
        }
    } else if let Some(o) = outputs.get_mut(e.req.shard as usize) {
        let r = o.try_push(e);
        debug_assert!(r.is_ok(), "room was checked");
        pushed[e.req.shard as usize] = true;
        mark(e.req.shard as usize);
    }
    marks.fed.store(e.seq, Ordering::Release);
}

impl ShardFeed<'_> {
    /// Moves overflowed entries to their rings; returns how many. After a rewind, none (see
    /// [`ShardFeed::feed`]): they are dropped.
    pub fn drain(&mut self) -> usize {
        if self.rewound.is_some() {
            self.overflow.clear();
            return 0;
        }
        let mut n = 0;
        while let Some(e) = self.overflow.front() {
            if !room_for(self.outputs, e.req.shard) {
                break;
            }
            let e = self.overflow.pop_front().expect("front exists");
            dispatch(self.outputs, self.pushed, self.marks, e);
            n += 1;
        }
        n
    }

    /// Hands `rec` to its shard (or every shard). Once the replica has rewound, nothing: the
    /// shards hold records the new term cut, the node exits to rebuild them by replay, and a
    /// record of the new term applied on top of them makes a state no log has (replies, market
    /// data and checkpoint comparisons of it: the fault lab saw `DIVERGED` after `REJOIN`).
    pub fn feed(&mut self, rec: &LogRecord) {
        if self.rewound.is_some() {
            self.overflow.clear();
            return;
        }
        *self.applied = rec.meta.seq;
        if matches!(rec.input, Input::TermStart(_)) {
            // No engine input, no session: nothing for a shard (a term's first record); fed
            // once everything before it is.
            if self.overflow.is_empty() {
                self.marks.fed.store(rec.meta.seq, Ordering::Release);
            }
            return;
        }
        let e = entry_of(rec, self.meta, &mut self.durable_tsc);
        if self.overflow.is_empty() && room_for(self.outputs, e.req.shard) {
            dispatch(self.outputs, self.pushed, self.marks, e);
        } else {
            self.overflow.push_back(e);
        }
    }
}

impl Applier for ShardFeed<'_> {
    #[inline]
    fn apply(&mut self, rec: &LogRecord) {
        self.feed(rec);
    }

    fn rewind(&mut self, seq: u64) {
        // The shards cannot go back: the node stops and is restarted (replay of its log).
        *self.rewound = Some(self.rewound.map_or(seq, |r| r.min(seq)));
    }

    fn discard(&mut self, from_seq: u64, to_seq: u64) {
        // Their sessions are answered "unavailable"; should the new term keep a record at one
        // of these seqs, it reaches the shards without a session (no meta left for it).
        while self.meta.front().is_some_and(|m| m.seq < from_seq) {
            self.meta.pop_front();
        }
        while self.meta.front().is_some_and(|m| m.seq <= to_seq) {
            let m = self.meta.pop_front().expect("front exists");
            self.unsequenced.push_back(m);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tpx_wire::enums::{OrderKind, RequestKind, Side, StpMode, TimeInForce};
    use tpx_wire::log_record::{self as l, Input, RecordMeta};
    use tpx_wire::order_entry::{CancelOrder, EnterOrder};

    fn meta_at(seq: u64, session: u32) -> LocalMeta {
        LocalMeta {
            seq,
            session,
            tag: 0,
            stamps: Default::default(),
            gateway: 0,
            account: 5,
            subject: Some((RequestKind::EnterOrder, seq)),
        }
    }

    fn record(seq: u64, shard: u16, account: u32, session: u32, input: Input) -> LogRecord {
        LogRecord {
            meta: RecordMeta {
                seq,
                term: 1,
                timestamp_ns: 55,
                origin: origin_of(shard, account),
                account,
                session,
            },
            input,
        }
    }

    #[test]
    fn origin_carries_shard_and_account() {
        assert_eq!(shard_of_origin(origin_of(3, 42)), 3);
        assert_eq!(origin_of(3, 42) & 0xFF_FFFF, 42);
        assert_eq!(shard_of_origin(origin_of(ALL_SHARDS, 7)), ALL_SHARDS);
        // Accounts above 24 bits would share an origin (a de-duplication key) with a lower
        // one: they do not fit, and the stage refuses them (`UnknownAccount`).
        assert_eq!(origin_of(3, 5), origin_of(3, 5 + (1 << 24)));
        assert!(origin_fits(MAX_ORIGIN_ACCOUNT));
        assert!(!origin_fits(MAX_ORIGIN_ACCOUNT + 1));
    }

    /// A request and the shard entry of its record are the same request: the input travels
    /// as the client sent it, with no conversion on the way.
    #[test]
    fn a_request_survives_the_log_unchanged() {
        let input = Input::EnterOrder(EnterOrder {
            cl_ord_id: 9,
            instrument: 2,
            side: Side::Sell,
            kind: OrderKind::Limit,
            price: 123,
            qty: 4,
            tif: TimeInForce::Ioc,
            post_only: true,
            reduce_only: false,
            stp: StpMode::ExpireMaker,
        });
        let req = Request::new(3, 1, 5, input);
        let rec = record(7, req.shard, req.account, req.session, req.input);
        let mut meta: VecDeque<LocalMeta> = [meta_at(6, 1), meta_at(7, 3)].into_iter().collect();
        let e = entry_of(&rec, &mut meta, &mut None);
        assert_eq!(e.req, req);
        assert_eq!((e.seq, e.ts_ns), (7, 55));
        assert!(meta.is_empty());
        // A record this node did not submit (a standby's, a replayed one) names the same
        // session: its answers belong to that session's stream on every node.
        let e = entry_of(&rec, &mut meta, &mut None);
        assert_eq!(e.req, req);
        // The operator's (the log's session 0) has none.
        let op = record(8, 1, 5, 0, req.input);
        assert_eq!(entry_of(&op, &mut meta, &mut None).req.session, NO_SESSION);
        // An admin input: logged under its admin, the target and the request id in the body.
        let w = Input::Withdraw(l::Withdraw {
            account: 7,
            asset: 1,
            amount: 500,
            request_id: 12,
        });
        let req = Request::new(2, 1, 50, w);
        let rec = record(3, req.shard, req.account, req.session, req.input);
        let mut meta: VecDeque<LocalMeta> = [meta_at(3, 2)].into_iter().collect();
        assert_eq!(entry_of(&rec, &mut meta, &mut None).req, req);
    }

    /// A stepped-down primary's unacknowledged requests (issue 15 item 1): their sessions are
    /// answered "unavailable", and a record the new term puts at one of their seqs reaches the
    /// shards without the old session.
    #[test]
    fn discarded_requests_are_answered_unavailable_and_lose_their_session() {
        let mut meta: VecDeque<LocalMeta> = (3..=7).map(|s| meta_at(s, s as u32)).collect();
        let mut outputs: Vec<Producer<Sequenced>> = Vec::new();
        let mut pushed: Vec<bool> = Vec::new();
        let mut overflow = VecDeque::new();
        let mut rewound = None;
        let mut applied = 0;
        let mut unsequenced = VecDeque::new();
        let marks = Watermarks::default();
        let mut feed = ShardFeed {
            outputs: &mut outputs,
            pushed: &mut pushed,
            overflow: &mut overflow,
            meta: &mut meta,
            rewound: &mut rewound,
            applied: &mut applied,
            durable_tsc: None,
            unsequenced: &mut unsequenced,
            marks: &marks,
        };
        feed.discard(5, 7);
        let gone: Vec<u64> = feed.unsequenced.iter().map(|m| m.seq).collect();
        assert_eq!(gone, vec![5, 6, 7]);
        assert!(feed.meta.is_empty(), "3 and 4 were stale");
        // The new term's record 5: no session.
        let cancel = Input::CancelOrder(CancelOrder {
            cl_ord_id: 1,
            remaining_qty: 0,
        });
        let rec = record(5, 0, 5, 0, cancel);
        let e = entry_of(&rec, feed.meta, &mut None);
        assert_eq!(e.req.session, NO_SESSION);
        assert_eq!(e.req.stamps, crate::msg::Stamps::default());
    }

    /// Once the replica has rewound (the new term cut records the shards applied), nothing
    /// more reaches the shards: not the new term's records the replica applies before the
    /// node exits (status 3), nor what waited in the overflow. Fed, they made the shards (which
    /// hold the cut records) compare checkpoints against a log they no longer match: the fault
    /// lab's `DIVERGED` lines after `REJOIN` (`diverged_after_rejoin`, seed 7 in CI).
    #[test]
    fn nothing_reaches_the_shards_after_a_rewind() {
        let (out, mut shard) = crate::runtime::ring::ring::<Sequenced>(4);
        let mut outputs = vec![out];
        let mut pushed = vec![false];
        let mut overflow = VecDeque::new();
        let mut meta = VecDeque::new();
        let mut rewound = None;
        let mut applied = 0;
        let mut unsequenced = VecDeque::new();
        let marks = Watermarks::default();
        let mut feed = ShardFeed {
            outputs: &mut outputs,
            pushed: &mut pushed,
            overflow: &mut overflow,
            meta: &mut meta,
            rewound: &mut rewound,
            applied: &mut applied,
            durable_tsc: None,
            unsequenced: &mut unsequenced,
            marks: &marks,
        };
        let cancel = |cl| {
            Input::CancelOrder(CancelOrder {
                cl_ord_id: cl,
                remaining_qty: 0,
            })
        };
        for seq in 1..=6 {
            feed.apply(&record(seq, 0, 5, 0, cancel(seq)));
        }
        // Four fit in the ring, two wait in the overflow.
        assert_eq!(feed.overflow.len(), 2);
        feed.rewind(3);
        // The new term's records from seq 4 on.
        feed.apply(&record(4, 0, 5, 0, cancel(40)));
        feed.apply(&record(5, 0, 5, 0, cancel(50)));
        let mut got = Vec::new();
        while let Some(e) = shard.try_pop() {
            got.push(e.seq);
        }
        assert_eq!(feed.drain(), 0, "the overflow is not moved after a rewind");
        assert!(shard.try_pop().is_none());
        assert_eq!(
            got,
            vec![1, 2, 3, 4],
            "only what was pushed before the rewind"
        );
        assert!(feed.overflow.is_empty());
        assert_eq!(*feed.rewound, Some(3));
    }
}
