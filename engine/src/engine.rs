//! The engine: its state, construction, command dispatch and the admin commands.

use std::fmt;

use crate::book::Book;
use crate::command::Command;
use crate::config::{ConfigError, EngineConfig, MAX_INSTRUMENT_ID};
use crate::event::{Event, EventSink, RejectReason};
use crate::lookahead::AheadRing;
use crate::risk::state::Risk;
use crate::slab::NIL;
use crate::store::OrderStore;
use crate::types::*;

/// The deterministic matching engine: every instrument's book and every live order.
///
/// All memory is allocated by [`Engine::new`] (see [`crate::config`] for the sizing rule);
/// [`Engine::process`] never allocates, never panics, reads no clock and draws no random
/// numbers. Its behaviour is the "Engine semantics" contract of `docs/ARCHITECTURE.md`.
pub struct Engine {
    /// Books sorted by instrument id.
    pub(crate) books: Vec<Book>,
    /// Instrument id -> index into `books` (`NIL` when unknown).
    pub(crate) book_of: Vec<u32>,
    pub(crate) store: OrderStore,
    pub(crate) max_accounts: u32,
    pub(crate) next_order_id: OrderId,
    pub(crate) next_trade_id: TradeId,
    /// Accounts and risk ([`Engine::with_risk`]); off (empty tables) for [`Engine::new`].
    pub(crate) risk: Risk,
    /// The book whose trades may have reached a last-price trigger (`NIL`: none).
    pub(crate) trig_book: u32,
    /// Trigger orders taken out of their lists, to fire in order: slot, order id, the price
    /// that fired them. Capacity `max_orders`: it never grows.
    pub(crate) fire_q: Vec<(u32, OrderId, PriceTicks)>,
    /// The prefetch pipeline's slots, found at its step 3 (`lookahead.rs`; never read by
    /// `process`).
    pub(crate) ahead: AheadRing,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("instruments", &self.books.len())
            .field("live_orders", &self.store.slab.used)
            .field("max_orders", &self.store.slab.capacity())
            .field("max_accounts", &self.max_accounts)
            .field("next_order_id", &self.next_order_id)
            .field("next_trade_id", &self.next_trade_id)
            .field("risk", &self.risk.on())
            .finish()
    }
}

impl Engine {
    /// Builds an engine with every table sized from `cfg`, risk off (no accounts, balances or
    /// holds: the "Engine semantics" contract alone). [`Engine::with_risk`] turns risk on.
    pub fn new(cfg: EngineConfig) -> Result<Engine, ConfigError> {
        cfg.validate()?;
        let mut specs = cfg.instruments;
        specs.sort_by_key(|s| s.id);
        let table_len = specs.last().map_or(0, |s| s.id as usize + 1);
        debug_assert!(table_len <= MAX_INSTRUMENT_ID as usize + 1);
        let mut book_of = vec![NIL; table_len];
        for (i, spec) in specs.iter().enumerate() {
            book_of[spec.id as usize] = i as u32;
        }
        Ok(Engine {
            books: specs.into_iter().map(Book::new).collect(),
            book_of,
            store: OrderStore::new(cfg.max_orders, cfg.max_accounts),
            max_accounts: cfg.max_accounts,
            next_order_id: 1,
            next_trade_id: 1,
            risk: Risk::off(),
            trig_book: NIL,
            fire_q: Vec::with_capacity(cfg.max_orders as usize),
            ahead: AheadRing::EMPTY,
        })
    }

    /// Applies one sequenced command, emitting its events to `sink` in order.
    ///
    /// `ts_ns` is the sequencer's timestamp: before the command is applied, every GTD order
    /// whose expiry is at or before it is cancelled (`Expired`). After it, the trigger orders
    /// its trades reach fire (the cascade included), then (risk on) reduce-only orders are
    /// trimmed.
    #[inline]
    pub fn process<S: EventSink>(&mut self, ts_ns: u64, cmd: &Command, sink: &mut S) {
        if ts_ns >= self.store.next_expiry {
            self.expire_due(ts_ns, sink);
        }
        // Risk on or off is decided once per command: each mode runs its own monomorphised
        // copy of the order path, so risk off is the plain matching engine.
        // (A command whose trades reach a trigger runs the trigger passes at its end, inside
        // `dispatch`, so that the common path returns straight from it.)
        if self.risk.on() {
            self.dispatch::<true, S>(ts_ns, cmd, sink);
            if !self.risk.trim.is_empty() {
                self.drain_trims(sink);
            }
        } else {
            self.dispatch::<false, S>(ts_ns, cmd, sink);
        }
    }

    #[inline]
    fn dispatch<const RISK: bool, S: EventSink>(
        &mut self,
        ts_ns: u64,
        cmd: &Command,
        sink: &mut S,
    ) {
        match cmd {
            Command::Replace(r) => self.on_replace::<RISK, S>(r, sink),
            Command::NewOrder(o) => self.on_new_order::<RISK, S>(ts_ns, o, sink),
            Command::Cancel(c) => self.on_cancel::<RISK, S>(c, sink),
            Command::MassCancel(m) => self.on_mass_cancel::<RISK, S>(m, sink),
            Command::SetReferencePrice {
                instrument,
                price,
                band_bps,
            } => self.on_set_reference_price(*instrument, *price, *band_bps, sink),
            Command::Halt { instrument } => self.on_set_halted(*instrument, true, sink),
            Command::Resume { instrument } => self.on_set_halted(*instrument, false, sink),
            Command::Tick => {}
        }
    }

    /// Index of an instrument's book.
    #[inline]
    pub(crate) fn book_index(&self, instrument: InstrumentId) -> Option<usize> {
        match self.book_of.get(instrument as usize) {
            Some(&i) if i != NIL => Some(i as usize),
            _ => None,
        }
    }

    pub(crate) fn book(&self, instrument: InstrumentId) -> Option<&Book> {
        self.book_index(instrument).map(|i| &self.books[i])
    }

    fn on_set_halted<S: EventSink>(
        &mut self,
        instrument: InstrumentId,
        halted: bool,
        sink: &mut S,
    ) {
        let Some(i) = self.book_index(instrument) else {
            return reject_admin(RejectReason::UnknownInstrument, sink);
        };
        self.books[i].halted = halted;
        sink.emit(Event::TradingStatus { instrument, halted });
        if !halted && self.books[i].mark > 0 {
            // Marks set while halted fire nothing; the first evaluation is at the resume.
            let mark = self.books[i].mark;
            self.on_mark(i, mark, sink);
        }
    }

    fn on_set_reference_price<S: EventSink>(
        &mut self,
        instrument: InstrumentId,
        price: PriceTicks,
        band_bps: u32,
        sink: &mut S,
    ) {
        let Some(i) = self.book_index(instrument) else {
            return reject_admin(RejectReason::UnknownInstrument, sink);
        };
        if price <= 0 {
            return reject_admin(RejectReason::InvalidPrice, sink);
        }
        let book = &mut self.books[i];
        book.ref_price = price;
        book.band_bps = band_bps;
        sink.emit(Event::ReferencePrice {
            instrument,
            price,
            band_bps,
        });
    }
}

fn reject_admin<S: EventSink>(reason: RejectReason, sink: &mut S) {
    sink.emit(Event::Rejected {
        account: 0,
        cl_ord_id: 0,
        reason,
    });
}
