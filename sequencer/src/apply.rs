//! Applying log records to the engine, and replaying a log.

use tpx_engine::{Command, Engine, EngineConfig, Event, EventSink};
use tpx_wire::enums as w;
use tpx_wire::log_record::{Input, LogRecord};

use crate::log::{replay, LogError};
use crate::storage::Storage;

/// The engine command for a log record (`None`: an input this engine has no command for).
pub fn command_of(rec: &LogRecord) -> Option<Command> {
    let account = rec.meta.account;
    Some(match rec.input {
        Input::EnterOrder(m) => Command::NewOrder(tpx_engine::NewOrder {
            account,
            cl_ord_id: m.cl_ord_id,
            instrument: m.instrument,
            side: match m.side {
                w::Side::Buy => tpx_engine::Side::Buy,
                w::Side::Sell => tpx_engine::Side::Sell,
            },
            kind: match m.kind {
                w::OrderKind::Limit => tpx_engine::OrderKind::Limit,
                w::OrderKind::Market => tpx_engine::OrderKind::Market,
            },
            price: m.price,
            qty: m.qty,
            tif: match m.tif {
                w::TimeInForce::Gtc => tpx_engine::TimeInForce::Gtc,
                w::TimeInForce::Ioc => tpx_engine::TimeInForce::Ioc,
                w::TimeInForce::Fok => tpx_engine::TimeInForce::Fok,
            },
            post_only: m.post_only,
            reduce_only: m.reduce_only,
            stp: match m.stp {
                w::StpMode::None => tpx_engine::StpMode::None,
                w::StpMode::ExpireTaker => tpx_engine::StpMode::ExpireTaker,
                w::StpMode::ExpireMaker => tpx_engine::StpMode::ExpireMaker,
                w::StpMode::ExpireBoth => tpx_engine::StpMode::ExpireBoth,
                w::StpMode::DecrementAndCancel => tpx_engine::StpMode::DecrementAndCancel,
            },
        }),
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
    })
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
}

/// An engine fed from the log.
#[derive(Debug)]
pub struct EngineApplier {
    pub engine: Engine,
    cfg: EngineConfig,
    pub applied_seq: u64,
    pub sink: CountingSink,
    /// Set by `rewind`: the owner must rebuild with [`EngineApplier::rebuild`].
    pub rewound_to: Option<u64>,
}

impl EngineApplier {
    pub fn new(cfg: EngineConfig) -> Result<EngineApplier, tpx_engine::ConfigError> {
        Ok(EngineApplier {
            engine: Engine::new(cfg.clone())?,
            cfg,
            applied_seq: 0,
            sink: CountingSink::default(),
            rewound_to: None,
        })
    }

    pub fn state_hash(&self) -> u64 {
        self.engine.state_hash()
    }

    /// Rebuilds the engine from the start of the log in `st` up to `upto` (inclusive).
    pub fn rebuild<S: Storage>(&mut self, st: S, upto: u64) -> Result<(), LogError> {
        self.engine = Engine::new(self.cfg.clone())
            .map_err(|e| LogError::Io(std::io::Error::other(format!("engine config: {e:?}"))))?;
        self.applied_seq = 0;
        self.rewound_to = None;
        let mut err = None;
        replay(st, 1, |r| {
            if r.meta.seq <= upto {
                if r.meta.seq != self.applied_seq + 1 {
                    err.get_or_insert(r.meta.seq);
                }
                self.apply(r);
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
}

impl Applier for EngineApplier {
    #[inline]
    fn apply(&mut self, rec: &LogRecord) {
        if let Some(cmd) = command_of(rec) {
            self.engine
                .process(rec.meta.timestamp_ns, &cmd, &mut self.sink);
        }
        self.applied_seq = rec.meta.seq;
    }

    fn rewind(&mut self, seq: u64) {
        if seq < self.applied_seq {
            self.rewound_to = Some(seq);
        }
    }
}

/// Replays a whole log into a fresh engine: `(last seq, state hash)`.
pub fn replay_hash<S: Storage>(
    st: S,
    cfg: EngineConfig,
    upto: u64,
) -> Result<(u64, u64), LogError> {
    let mut a = EngineApplier::new(cfg)
        .map_err(|e| LogError::Io(std::io::Error::other(format!("engine config: {e:?}"))))?;
    a.rebuild(st, upto)?;
    Ok((a.applied_seq, a.state_hash()))
}
