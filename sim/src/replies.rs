//! The oracle of the session checks: what each session's numbered reply stream must be, made
//! from the surviving log's replay (the reports of [`crate::shards::Replay`], in log order) by
//! PROTOCOL.md's rules ("Sessions"), apart from the node's `SessionTable`: an answer to a
//! record goes to the session the record names; a fill or cancel goes to the session whose
//! record placed the order (from its `Accepted`); an order no session placed is reported to
//! none; replies are numbered 1, 2, 3, ... per `(account, session_id)` in log order.
//! Balance updates and the stage's answers are unsequenced and in no stream.

use std::collections::HashMap;

use tpx_node::msg::{Report, ReportKind, NO_SESSION};
use tpx_wire::admin::AdminAccepted;
use tpx_wire::replies::{
    OrderAccepted, OrderCancelled, OrderExecuted, OrderRejected, OrderReplaced, ServerMessage,
};

/// A session: `(account, session_id)`.
pub type SessionKey = (u32, u32);

/// By session: the replies the log owes it, in order (`seq` = position + 1).
pub fn expected_streams<'a>(
    reports: impl Iterator<Item = &'a Report>,
) -> HashMap<SessionKey, Vec<ServerMessage>> {
    let mut streams: HashMap<SessionKey, Vec<ServerMessage>> = HashMap::new();
    // `(account, cl_ord_id)` of a live order -> the session that placed it (`None`: none).
    let mut owners: HashMap<(u32, u64), Option<SessionKey>> = HashMap::new();
    for r in reports {
        let (a, ts) = (r.account, r.ts_ns);
        let named = (r.session != NO_SESSION).then_some((a, r.session));
        let (to, msg) = match r.kind {
            ReportKind::Accepted {
                cl_ord_id,
                order_id,
                instrument,
                side,
                price,
                qty,
            } => {
                owners.insert((a, cl_ord_id), named);
                let m = OrderAccepted {
                    seq: 0,
                    timestamp_ns: ts,
                    cl_ord_id,
                    order_id,
                    price,
                    qty,
                    instrument,
                    side,
                };
                (named, ServerMessage::OrderAccepted(m))
            }
            ReportKind::Rejected {
                cl_ord_id,
                reason,
                request,
            } => {
                let m = OrderRejected {
                    seq: 0,
                    timestamp_ns: ts,
                    cl_ord_id,
                    reason,
                    request,
                };
                (named, ServerMessage::OrderRejected(m))
            }
            ReportKind::Executed {
                cl_ord_id,
                order_id,
                trade_id,
                instrument,
                side,
                liquidity,
                price,
                qty,
                leaves_qty,
                fee,
            } => {
                let owner = owners.get(&(a, cl_ord_id)).copied().flatten();
                if leaves_qty == 0 {
                    owners.remove(&(a, cl_ord_id));
                }
                let m = OrderExecuted {
                    seq: 0,
                    timestamp_ns: ts,
                    cl_ord_id,
                    order_id,
                    trade_id,
                    price,
                    qty,
                    leaves_qty,
                    fee,
                    instrument,
                    side,
                    liquidity,
                };
                (owner, ServerMessage::OrderExecuted(m))
            }
            ReportKind::Cancelled {
                cl_ord_id,
                order_id,
                instrument,
                cancelled_qty,
                leaves_qty,
                reason,
            } => {
                let owner = owners.get(&(a, cl_ord_id)).copied().flatten();
                if leaves_qty == 0 {
                    owners.remove(&(a, cl_ord_id));
                }
                let m = OrderCancelled {
                    seq: 0,
                    timestamp_ns: ts,
                    cl_ord_id,
                    order_id,
                    cancelled_qty,
                    leaves_qty,
                    instrument,
                    reason,
                };
                (owner, ServerMessage::OrderCancelled(m))
            }
            ReportKind::Replaced {
                orig_cl_ord_id,
                new_cl_ord_id,
                order_id,
                instrument,
                price,
                qty,
                priority_kept,
            } => {
                let owner = named.or_else(|| owners.get(&(a, orig_cl_ord_id)).copied().flatten());
                if new_cl_ord_id != orig_cl_ord_id {
                    owners.remove(&(a, orig_cl_ord_id));
                    owners.insert((a, new_cl_ord_id), owner);
                }
                let m = OrderReplaced {
                    seq: 0,
                    timestamp_ns: ts,
                    orig_cl_ord_id,
                    new_cl_ord_id,
                    order_id,
                    price,
                    qty,
                    instrument,
                    priority_kept,
                };
                (owner, ServerMessage::OrderReplaced(m))
            }
            ReportKind::AdminAccepted {
                request_id,
                available,
                held,
                target,
                shard,
                request,
            } => {
                let m = AdminAccepted {
                    seq: 0,
                    timestamp_ns: ts,
                    request_id,
                    available,
                    held,
                    account: target,
                    shard,
                    request,
                };
                (named, ServerMessage::AdminAccepted(m))
            }
            // Not in the simulator's workload (mass cancels, order types, queries), or not
            // numbered (balance updates).
            _ => continue,
        };
        if let Some(to) = to {
            streams.entry(to).or_default().push(msg);
        }
    }
    streams
}

/// `m` with its `seq` set to 0: replies compared by content and position.
pub fn without_seq(m: &ServerMessage) -> ServerMessage {
    let mut m = *m;
    match &mut m {
        ServerMessage::OrderAccepted(x) => x.seq = 0,
        ServerMessage::OrderRejected(x) => x.seq = 0,
        ServerMessage::OrderExecuted(x) => x.seq = 0,
        ServerMessage::OrderCancelled(x) => x.seq = 0,
        ServerMessage::OrderReplaced(x) => x.seq = 0,
        ServerMessage::AdminAccepted(x) => x.seq = 0,
        ServerMessage::MassCancelAck(x) => x.seq = 0,
        _ => {}
    }
    m
}

/// Compares a session's stream as received (`got`, from seq 1) with what the log owes it
/// (`want`): the first difference, as the check it fails and a description.
pub fn compare_streams(
    got: &[ServerMessage],
    want: &[ServerMessage],
) -> Option<(&'static str, String)> {
    let g: Vec<ServerMessage> = got.iter().map(without_seq).collect();
    let w: Vec<ServerMessage> = want.iter().map(without_seq).collect();
    let k = (0..g.len().max(w.len())).find(|&k| g.get(k) != w.get(k))?;
    let count = |v: &[ServerMessage], m: &ServerMessage| v.iter().filter(|x| *x == m).count();
    let at = |v: &[ServerMessage]| v.get(k).map_or("nothing".to_string(), |m| format!("{m:?}"));
    let (got_k, want_k) = (at(&g), at(&w));
    let n = k + 1;
    let lens = format!("(received {} replies, the log owes {})", g.len(), w.len());
    if let Some(a) = g.get(k) {
        let (in_got, in_want) = (count(&g, a), count(&w, a));
        if in_got > in_want {
            let check = if in_want == 0 {
                "session-reply-not-in-log"
            } else {
                "session-reply-twice"
            };
            return Some((
                check,
                format!(
                    "reply {n} is {got_k}, which the log gives {in_want} time(s) and the \
                     session received {in_got} time(s) (the log's reply {n}: {want_k}) {lens}"
                ),
            ));
        }
    }
    if let Some(b) = w.get(k) {
        if count(&g, b) < count(&w, b) {
            return Some((
                "session-reply-missing",
                format!("reply {n} owed is {want_k}, never received (got {got_k}) {lens}"),
            ));
        }
    }
    Some((
        "session-reply-wrong-order",
        format!("reply {n} is {got_k}, the log's reply {n} is {want_k} {lens}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tpx_wire::enums::{RejectReason, RequestKind};

    fn rej(seq: u64, id: u64) -> ServerMessage {
        ServerMessage::OrderRejected(OrderRejected {
            seq,
            timestamp_ns: 7,
            cl_ord_id: id,
            reason: RejectReason::InsufficientBalance,
            request: RequestKind::EnterOrder,
        })
    }

    #[test]
    fn names_each_difference() {
        let want = [rej(1, 1), rej(2, 2), rej(3, 3)];
        assert_eq!(compare_streams(&want, &want), None);
        let check = |got: &[ServerMessage]| compare_streams(got, &want).map(|(c, _)| c);
        assert_eq!(
            check(&[rej(1, 1), rej(2, 3)]),
            Some("session-reply-missing")
        );
        assert_eq!(
            check(&[rej(1, 1), rej(2, 3), rej(3, 2)]),
            Some("session-reply-wrong-order")
        );
        assert_eq!(
            check(&[rej(1, 1), rej(2, 1), rej(3, 2), rej(4, 3)]),
            Some("session-reply-twice")
        );
        assert_eq!(
            check(&[rej(1, 1), rej(2, 9), rej(3, 2), rej(4, 3)]),
            Some("session-reply-not-in-log")
        );
        assert_eq!(
            check(&[rej(1, 1), rej(2, 2)]),
            Some("session-reply-missing")
        );
    }
}
