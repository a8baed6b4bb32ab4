//! Applying log records to the engine, and replaying a log.

use tpx_engine::{Command, Engine, EngineConfig, EngineInput, Event, EventSink, RiskCommand};
use tpx_wire::enums as w;
use tpx_wire::log_record::{Input, LogRecord};
use tpx_wire::order_entry::EnterOrderExt;

use crate::log::{replay, LogError};
use crate::storage::Storage;

/// The engine input for a log input acting for `account` (the record's): the one wire →
/// engine conversion of an input, used wherever a record is applied (the node's shards, this
/// crate's engine copy, the simulator). `None`: a record with no engine input (`TermStart`,
/// `Checkpoint`).
pub fn engine_input(input: &Input, account: u32) -> Option<EngineInput> {
    Some(EngineInput::Command(match *input {
        Input::EnterOrder(m) => Command::NewOrder(new_order(&EnterOrderExt::plain(&m), account)),
        Input::EnterOrderExt(m) => Command::NewOrder(new_order(&m, account)),
        Input::ReplaceOrder(m) => Command::Replace(tpx_engine::Replace {
            account,
            orig_cl_ord_id: m.orig_cl_ord_id,
            new_cl_ord_id: m.new_cl_ord_id,
            price: m.price,
            qty: m.qty,
        }),
        Input::CancelOrder(m) => Command::Cancel(tpx_engine::Cancel {
            account,
            cl_ord_id: m.cl_ord_id,
            remaining_qty: m.remaining_qty,
        }),
        Input::MassCancel(m) => Command::MassCancel(tpx_engine::MassCancel {
            account,
            instrument: m.instrument,
        }),
        Input::Halt(m) => Command::Halt {
            instrument: m.instrument,
        },
        Input::Resume(m) => Command::Resume {
            instrument: m.instrument,
        },
        Input::SetReferencePrice(m) => Command::SetReferencePrice {
            instrument: m.instrument,
            price: m.price,
            band_bps: m.band_bps,
        },
        // Risk inputs carry the account they act on in their body.
        Input::Deposit(m) => {
            return Some(EngineInput::Risk(RiskCommand::Deposit {
                account: m.account,
                asset: m.asset,
                amount: m.amount,
                request_id: m.request_id,
            }))
        }
        Input::Withdraw(m) => {
            return Some(EngineInput::Risk(RiskCommand::Withdraw {
                account: m.account,
                asset: m.asset,
                amount: m.amount,
                request_id: m.request_id,
            }))
        }
        Input::SetMarkPrice(m) => {
            return Some(EngineInput::Risk(RiskCommand::SetMarkPrice {
                instrument: m.instrument,
                price: m.price,
            }))
        }
        Input::ApplyFunding(m) => {
            return Some(EngineInput::Risk(RiskCommand::ApplyFunding {
                instrument: m.instrument,
                rate_ppm: m.rate_ppm,
                funding_id: m.funding_id,
            }))
        }
        Input::Liquidate(m) => {
            return Some(EngineInput::Risk(RiskCommand::Liquidate {
                account: m.account,
                instrument: m.instrument,
                cl_ord_id: m.cl_ord_id,
                price: m.price,
                request_id: m.request_id,
            }))
        }
        Input::SetFeeTier(m) => {
            return Some(EngineInput::Risk(RiskCommand::SetFeeTier {
                account: m.account,
                tier: m.tier,
            }))
        }
        Input::Tick(_) => Command::Tick,
        Input::TermStart(_) | Input::Checkpoint(_) => return None,
    }))
}

/// The engine's new order for a wire order (`EnterOrder` through [`EnterOrderExt::plain`]).
/// Total: every decodable value maps to an order the engine accepts or rejects with a typed
/// reason. Trigger fields that disagree (a type without a price or a price without a type,
/// which the gateway refuses before the log) become a trigger at price 0, which the engine
/// rejects with `InvalidTrigger`, so a log that holds one still replays the same.
pub fn new_order(m: &EnterOrderExt, account: u32) -> tpx_engine::NewOrder {
    use tpx_engine::{TriggerDirection as D, TriggerSource as S};
    let watch = match m.trigger {
        w::TriggerType::None => None,
        w::TriggerType::LastRisesTo => Some((S::Last, D::RisesTo)),
        w::TriggerType::LastFallsTo => Some((S::Last, D::FallsTo)),
        w::TriggerType::MarkRisesTo => Some((S::Mark, D::RisesTo)),
        w::TriggerType::MarkFallsTo => Some((S::Mark, D::FallsTo)),
    };
    let trigger = match watch {
        Some((source, direction)) => Some(tpx_engine::Trigger {
            price: m.trigger_price,
            source,
            direction,
        }),
        None if m.trigger_price != 0 => Some(tpx_engine::Trigger {
            price: 0,
            source: S::Last,
            direction: D::RisesTo,
        }),
        None => None,
    };
    tpx_engine::NewOrder {
        account,
        cl_ord_id: m.cl_ord_id,
        instrument: m.instrument,
        side: m.side.into(),
        kind: m.kind.into(),
        price: m.price,
        qty: m.qty,
        tif: m.tif.into(),
        post_only: m.post_only,
        reduce_only: m.reduce_only,
        stp: m.stp.into(),
        ext: tpx_engine::OrderExt {
            trigger,
            expire_ts_ns: m.expire_ts_ns,
            display_qty: m.display_qty,
            post_only_slide: m.post_only_slide,
            close_position: m.close_position,
            oco_cl_ord_id: m.oco_cl_ord_id,
        },
    }
}

/// The engine's risk command for a log record (`None`: not a risk input).
pub fn risk_command_of(rec: &LogRecord) -> Option<RiskCommand> {
    match engine_input(&rec.input, rec.meta.account)? {
        EngineInput::Risk(r) => Some(r),
        EngineInput::Command(_) => None,
    }
}

/// The engine input (order-entry, admin or risk) for a log record.
pub fn input_of(rec: &LogRecord) -> Option<EngineInput> {
    engine_input(&rec.input, rec.meta.account)
}

/// The engine command for a log record (`None`: an input this engine has no command for,
/// such as a risk input: see [`risk_command_of`]).
pub fn command_of(rec: &LogRecord) -> Option<Command> {
    match engine_input(&rec.input, rec.meta.account)? {
        EngineInput::Command(c) => Some(c),
        EngineInput::Risk(_) => None,
    }
}

/// Counts events (the sequencer's engine copy only needs the state).
#[derive(Clone, Copy, Debug, Default)]
pub struct CountingSink {
    pub events: u64,
    pub fills: u64,
}

impl EventSink for CountingSink {
    #[inline]
    fn emit(&mut self, e: Event) {
        self.events += 1;
        if matches!(e, Event::Fill { .. }) {
            self.fills += 1;
        }
    }
}

/// What the replica hands records to.
pub trait Applier {
    /// Applies the next record (seqs come in order, no gap).
    fn apply(&mut self, rec: &LogRecord);
    /// The log lost every record after `seq` (a returning old primary cut its tail): the state
    /// must go back to `seq` (by replay from a snapshot or the start).
    fn rewind(&mut self, seq: u64);
    /// Requests this replica sequenced as `from_seq..=to_seq` were never acknowledged and
    /// never will be under these seqs by this replica: it stepped down before they were
    /// acknowledgeable, and they are not applied. An owner that remembers who asked (the
    /// node's sessions) answers them "not sequenced" (unavailable: the client re-sends to
    /// the new primary, which answers a duplicate once acknowledgeable). The new term may
    /// keep some of these seqs, with the same or other records: they come back through
    /// [`Applier::apply`] like any record a standby receives, without the old requester.
    fn discard(&mut self, _from_seq: u64, _to_seq: u64) {}
}

/// Replays the log from its start, handing every record to the callback (see
/// [`EngineApplier::with_source`]).
pub type ReplaySource = Box<dyn FnMut(&mut dyn FnMut(&LogRecord)) -> Result<(), LogError>>;

/// An engine fed from the log.
///
/// A rewind must take effect before the next record is applied: `Replica::poll` goes on
/// applying the records it receives after the truncation in the same poll. With a source
/// ([`EngineApplier::with_source`]) `rewind` rebuilds the engine at once by replaying the log up
/// to the rewound seq. Without one it flags `rewound_to` and keeps the records applied after
/// the rewind; [`EngineApplier::rebuild`] re-applies them after the replay.
pub struct EngineApplier {
    pub engine: Engine,
    cfg: EngineConfig,
    pub applied_seq: u64,
    pub sink: CountingSink,
    /// Set by `rewind` (no source, or the source failed): the owner must rebuild with
    /// [`EngineApplier::rebuild`] up to this seq.
    pub rewound_to: Option<u64>,
    /// Records applied after a pending (flagged) rewind, in order.
    pending: Vec<LogRecord>,
    source: Option<ReplaySource>,
    /// The last error of a rebuild done inside `rewind`.
    pub rebuild_error: Option<String>,
}

impl std::fmt::Debug for EngineApplier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineApplier")
            .field("applied_seq", &self.applied_seq)
            .field("rewound_to", &self.rewound_to)
            .field("pending", &self.pending.len())
            .field("source", &self.source.is_some())
            .field("rebuild_error", &self.rebuild_error)
            .finish()
    }
}

impl EngineApplier {
    pub fn new(cfg: EngineConfig) -> Result<EngineApplier, tpx_engine::ConfigError> {
        Ok(EngineApplier {
            engine: Engine::new(cfg.clone())?,
            cfg,
            applied_seq: 0,
            sink: CountingSink::default(),
            rewound_to: None,
            pending: Vec::new(),
            source: None,
            rebuild_error: None,
        })
    }

    /// An applier whose engine was restored from a snapshot taken after record `applied_seq`.
    pub fn from_engine(engine: Engine, cfg: EngineConfig, applied_seq: u64) -> EngineApplier {
        EngineApplier {
            engine,
            cfg,
            applied_seq,
            sink: CountingSink::default(),
            rewound_to: None,
            pending: Vec::new(),
            source: None,
            rebuild_error: None,
        }
    }

    /// Rebuilds synchronously inside `rewind` from the storage `open` returns (the log's
    /// directory, read from its start).
    pub fn with_source<S, F>(mut self, mut open: F) -> Self
    where
        S: Storage + Send,
        F: FnMut() -> std::io::Result<S> + 'static,
    {
        self.source = Some(Box::new(move |f: &mut dyn FnMut(&LogRecord)| {
            replay(open()?, 1, f).map(|_| ())
        }));
        self
    }

    fn reset_engine(&mut self) -> Result<(), LogError> {
        self.engine = Engine::new(self.cfg.clone())
            .map_err(|e| LogError::Io(std::io::Error::other(format!("engine config: {e:?}"))))?;
        self.applied_seq = 0;
        Ok(())
    }

    /// Replays records up to `upto` from `replay_fn` into a fresh engine.
    fn replay_into(
        &mut self,
        upto: u64,
        replay_fn: impl FnOnce(&mut dyn FnMut(&LogRecord)) -> Result<(), LogError>,
    ) -> Result<(), LogError> {
        self.reset_engine()?;
        let mut err = None;
        replay_fn(&mut |r: &LogRecord| {
            if r.meta.seq <= upto {
                if r.meta.seq != self.applied_seq + 1 {
                    err.get_or_insert(r.meta.seq);
                }
                self.apply_now(r);
            }
        })?;
        if let Some(seq) = err {
            return Err(LogError::Corrupt {
                segment: String::new(),
                offset: 0,
                seq,
                reason: "replay does not start at seq 1".into(),
            });
        }
        Ok(())
    }

    #[inline]
    fn apply_now(&mut self, rec: &LogRecord) {
        if let Some(cmd) = command_of(rec) {
            self.engine
                .process(rec.meta.timestamp_ns, &cmd, &mut self.sink);
        } else if let Some(cmd) = risk_command_of(rec) {
            self.engine
                .process_risk(rec.meta.timestamp_ns, &cmd, &mut self.sink);
        }
        self.applied_seq = rec.meta.seq;
    }

    pub fn state_hash(&self) -> u64 {
        self.engine.state_hash()
    }

    /// Rebuilds the engine from the start of the log in `st` up to `upto` (inclusive), then
    /// re-applies the records applied since a pending rewind to `upto` (if any).
    pub fn rebuild<S: Storage + Send>(&mut self, st: S, upto: u64) -> Result<(), LogError> {
        let pending = match self.rewound_to.take() {
            Some(r) if r == upto => std::mem::take(&mut self.pending),
            _ => Vec::new(),
        };
        self.pending.clear();
        self.replay_into(upto, |f| replay(st, 1, f).map(|_| ()))?;
        for r in &pending {
            if r.meta.seq == self.applied_seq + 1 {
                self.apply_now(r);
            }
        }
        Ok(())
    }
}

impl Applier for EngineApplier {
    #[inline]
    fn apply(&mut self, rec: &LogRecord) {
        if self.rewound_to.is_some() {
            // The engine is rebuilt to `rewound_to` later: keep the record for after that.
            self.pending.push(*rec);
        }
        self.apply_now(rec);
    }

    fn rewind(&mut self, seq: u64) {
        if let Some(r) = self.rewound_to {
            // A second rewind before the owner rebuilt: keep only what survives both.
            self.pending.retain(|p| p.meta.seq <= seq);
            if seq < r {
                self.rewound_to = Some(seq);
                self.pending.clear();
            }
            if self.source.is_none() {
                return;
            }
        } else if seq >= self.applied_seq {
            return;
        }
        if let Some(mut src) = self.source.take() {
            let res = self.replay_into(seq, |f| src(f));
            self.source = Some(src);
            match res {
                Ok(()) => {
                    self.rewound_to = None;
                    self.pending.clear();
                    self.rebuild_error = None;
                    return;
                }
                Err(e) => self.rebuild_error = Some(e.to_string()),
            }
        }
        // No source (or it failed): the owner rebuilds; records applied until then are kept.
        if self.rewound_to.is_none() {
            self.rewound_to = Some(seq);
            self.pending.clear();
        }
    }
}

/// Replays a whole log into a fresh engine: `(last seq, state hash)`.
pub fn replay_hash<S: Storage + Send>(
    st: S,
    cfg: EngineConfig,
    upto: u64,
) -> Result<(u64, u64), LogError> {
    let mut a = EngineApplier::new(cfg)
        .map_err(|e| LogError::Io(std::io::Error::other(format!("engine config: {e:?}"))))?;
    a.rebuild(st, upto)?;
    Ok((a.applied_seq, a.state_hash()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tpx_engine::{OrderExt, TriggerDirection as D, TriggerSource as S};
    use tpx_wire::enums::{OrderKind, Side, StpMode, TimeInForce, TriggerType};
    use tpx_wire::order_entry::EnterOrder;

    fn plain() -> EnterOrder {
        EnterOrder {
            cl_ord_id: 5,
            price: 100,
            qty: 4,
            instrument: 1,
            side: Side::Sell,
            kind: OrderKind::Limit,
            tif: TimeInForce::Gtc,
            stp: StpMode::ExpireBoth,
            post_only: true,
            reduce_only: false,
        }
    }

    fn order_of(input: Input) -> tpx_engine::NewOrder {
        match engine_input(&input, 9) {
            Some(EngineInput::Command(Command::NewOrder(o))) => o,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_enter_order_is_a_plain_order_and_its_ext_form_the_same() {
        let o = order_of(Input::EnterOrder(plain()));
        assert_eq!(o.ext, OrderExt::NONE);
        assert!(o.ext.is_plain());
        assert_eq!((o.account, o.cl_ord_id, o.price, o.qty), (9, 5, 100, 4));
        assert_eq!(
            order_of(Input::EnterOrderExt(EnterOrderExt::plain(&plain()))),
            o
        );
    }

    #[test]
    fn every_order_type_field_reaches_the_engine() {
        for (t, want) in [
            (TriggerType::LastRisesTo, (S::Last, D::RisesTo)),
            (TriggerType::LastFallsTo, (S::Last, D::FallsTo)),
            (TriggerType::MarkRisesTo, (S::Mark, D::RisesTo)),
            (TriggerType::MarkFallsTo, (S::Mark, D::FallsTo)),
        ] {
            let m = EnterOrderExt {
                trigger: t,
                trigger_price: 90,
                tif: TimeInForce::Gtd,
                expire_ts_ns: 77,
                display_qty: 2,
                post_only_slide: true,
                close_position: true,
                oco_cl_ord_id: 3,
                ..EnterOrderExt::plain(&plain())
            };
            let o = order_of(Input::EnterOrderExt(m));
            let tr = o.ext.trigger.expect("a trigger");
            assert_eq!((tr.price, tr.source, tr.direction), (90, want.0, want.1));
            assert_eq!(o.tif, tpx_engine::TimeInForce::Gtd);
            assert_eq!(
                (
                    o.ext.expire_ts_ns,
                    o.ext.display_qty,
                    o.ext.post_only_slide,
                    o.ext.close_position,
                    o.ext.oco_cl_ord_id
                ),
                (77, 2, true, true, 3)
            );
        }
        // A trigger price without a type: a trigger at price 0 (the engine's InvalidTrigger).
        let m = EnterOrderExt {
            trigger_price: 90,
            ..EnterOrderExt::plain(&plain())
        };
        assert_eq!(
            order_of(Input::EnterOrderExt(m))
                .ext
                .trigger
                .map(|t| t.price),
            Some(0)
        );
        // A tick is the engine's tick.
        assert_eq!(
            engine_input(&Input::Tick(tpx_wire::log_record::Tick {}), 0),
            Some(EngineInput::Command(Command::Tick))
        );
    }
}
