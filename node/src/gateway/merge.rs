//! Log order for a gateway's reports: a session's replies come from several shards, each on its
//! own ring, so the order they arrive in is not the log's and differs between nodes. The
//! gateway holds each shard's reports here and releases them in log order (the record's seq,
//! then the shard, then the order the shard emitted them) once every shard has put all its
//! reports of every record up to that seq on the rings (`runtime::state::Watermarks`): the
//! same numbering on the primary, the standby and a node replaying its log. A node with one
//! shard needs none of it (its ring is in log order) and does not use it.

use std::collections::VecDeque;

use crate::msg::Report;

/// Reports held until the watermark passes them, by shard.
#[derive(Debug, Default)]
pub struct ReportMerge {
    held: Vec<VecDeque<Report>>,
}

impl ReportMerge {
    /// Room for `per_shard` reports of each of `shards` shards before a queue grows.
    pub fn new(shards: usize, per_shard: usize) -> ReportMerge {
        ReportMerge {
            held: (0..shards)
                .map(|_| VecDeque::with_capacity(per_shard))
                .collect(),
        }
    }

    /// Holds a report of shard `shard` (in the order the shard emitted it).
    #[inline]
    pub fn hold(&mut self, shard: usize, r: Report) {
        if let Some(q) = self.held.get_mut(shard) {
            q.push_back(r);
        }
    }

    /// The next report in log order whose record is at or below `through`.
    #[inline]
    pub fn pop(&mut self, through: u64) -> Option<Report> {
        let mut best: Option<(u64, usize)> = None;
        for (i, q) in self.held.iter().enumerate() {
            if let Some(r) = q.front() {
                if r.seq <= through && best.is_none_or(|(s, _)| r.seq < s) {
                    best = Some((r.seq, i));
                }
            }
        }
        let (_, i) = best?;
        self.held[i].pop_front()
    }

    /// Reports held.
    pub fn len(&self) -> usize {
        self.held.iter().map(VecDeque::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::{ReportKind, Stamps, NO_SESSION};

    fn rep(seq: u64, count: u32) -> Report {
        Report {
            account: 1,
            session: NO_SESSION,
            seq,
            ts_ns: 0,
            kind: ReportKind::MassCancelDone {
                tag: 0,
                instrument: None,
                cancelled: count,
            },
            stamps: Stamps::default(),
        }
    }

    /// Whatever order the shards' reports arrive in, they leave in (seq, shard, emitted) order
    /// and only up to the watermark.
    #[test]
    fn releases_in_log_order_up_to_the_watermark() {
        let mut m = ReportMerge::new(2, 4);
        // Shard 1 ran ahead: its reports of 5 and 9 arrive first.
        m.hold(1, rep(5, 10));
        m.hold(1, rep(9, 11));
        m.hold(0, rep(3, 1));
        m.hold(0, rep(5, 2));
        m.hold(0, rep(5, 3));
        let order = |m: &mut ReportMerge, w| {
            std::iter::from_fn(|| m.pop(w))
                .map(|r| match r.kind {
                    ReportKind::MassCancelDone { cancelled, .. } => (r.seq, cancelled),
                    _ => unreachable!(),
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(order(&mut m, 5), vec![(3, 1), (5, 2), (5, 3), (5, 10)]);
        assert_eq!(m.len(), 1, "9 waits for the watermark");
        assert_eq!(order(&mut m, 8), vec![]);
        assert_eq!(order(&mut m, 9), vec![(9, 11)]);
        assert!(m.is_empty());
    }
}
