//! Prefetch of the memory the next commands will touch, when they are known.
//!
//! With a large book (the `heavy` and `deep` workloads: ~1 M live orders), a replace reaches
//! an index bucket, then the order it names, then the order's two levels and its FIFO
//! neighbours, then the tail of the new level: four dependent cache misses, each waiting for the
//! one before. Within one command nothing overlaps them. Across commands they are independent, so
//! [`Engine::process_ahead`] works on the commands that follow like a pipeline of four steps,
//! [`SPACING`] commands apart: step `k` runs on the command `k * SPACING` places ahead and reads
//! only lines that step `k + 1` started to load `SPACING` commands earlier:
//!
//! | step | replace / cancel                                      | new order                      |
//! |-----:|-------------------------------------------------------|--------------------------------|
//! | 4    | the key's index bucket                                | the key's bucket, the level    |
//! | 3    | the order the bucket names                            | the level's tail, account tail |
//! | 2    | its level, the new level, FIFO (cancel: account) neighbours | crossing: the first maker |
//! | 1    | the new level's tail                                  | crossing: the maker's bucket, account neighbours, next maker |
//!
//! (with the bitmap words of the levels that may empty or fill).
//!
//! so that each line has had `SPACING` commands' time to arrive before it is read, and the misses
//! of up to [`LOOKAHEAD`] commands are in flight at once.
//!
//! Everything here is a hint: it reads the engine's state (never writes it: it writes only its
//! own [`AheadRing`], the slots step 3 found, which steps 2 and 1 reuse and `process` never
//! reads), follows whatever it finds (a stale guess only wastes a prefetch) and cannot change an
//! event or the state hash.
//! Below [`LOOKAHEAD_MIN_LIVE`] live orders the book is in cache anyway and the hints would only
//! cost instructions, so the pipeline is skipped.
//!
//! Whatever the book's size, `process_ahead` also prefetches the command [`STREAM_AHEAD`] places
//! on: where `next` is a long array in memory (a bench's stream, a replayed log), the hardware
//! prefetcher stops at every 4 KiB page boundary (every ~46 commands), and the first read of
//! the next page waited for DRAM (and its TLB entry) inside a command.

use crate::book::Book;
use crate::command::Command;
use crate::engine::Engine;
use crate::event::EventSink;
use crate::memory::prefetch;
use crate::slab::NIL;
use crate::types::*;

/// Live orders from which [`Engine::process_ahead`] prefetches (about 2 MiB of orders).
pub const LOOKAHEAD_MIN_LIVE: u32 = 32_768;

/// Commands between two steps of the pipeline (1 to 8 were measured on `heavy`: 3 to 6 are
/// ~10% faster than 2, which leaves a line too little time to arrive; see "Deep books" in
/// `docs/ARCHITECTURE.md`).
pub const SPACING: usize = 3;

/// How many commands ahead the prefetch pipeline reaches.
pub const LOOKAHEAD: usize = 4 * SPACING;

/// How far ahead in `next` [`Engine::process_ahead`] prefetches the command itself (24 and 48
/// measured alike on both workloads; see the module's doc).
pub const STREAM_AHEAD: usize = 2 * LOOKAHEAD;

impl Engine {
    /// [`Engine::process`] `cmd`, after starting to load what the commands sequenced after it
    /// (`next`, in order; only the first [`LOOKAHEAD`] are looked at, and the memory of the one
    /// [`STREAM_AHEAD`] on) will touch. The result is exactly `process`'s: `next` is a hint,
    /// and may be empty.
    #[inline]
    pub fn process_ahead<S: EventSink>(
        &mut self,
        ts_ns: u64,
        cmd: &Command,
        next: &[Command],
        sink: &mut S,
    ) {
        if let Some(c) = next.get(STREAM_AHEAD) {
            prefetch(c);
        }
        if self.store.slab.used >= LOOKAHEAD_MIN_LIVE {
            for step in 1..=4 {
                if let Some(c) = next.get(step * SPACING - 1) {
                    self.prefetch_ahead(c, step);
                }
            }
        }
        self.process(ts_ns, cmd, sink)
    }

    /// [`Engine::prefetch`] within `process_ahead`: a command naming an order by client id
    /// finds its slot once, at step 3, and steps 2 and 1 take it from [`AheadRing`] (by the
    /// command's address in `next`) instead of hashing and probing the index again.
    #[inline(always)]
    fn prefetch_ahead(&mut self, cmd: &Command, step: usize) {
        let (account, cl_ord_id, new_price) = match cmd {
            Command::Replace(r) => (r.account, r.orig_cl_ord_id, Some(r.price)),
            Command::Cancel(c) => (c.account, c.cl_ord_id, None),
            _ => return self.prefetch(cmd, step),
        };
        if step == 4 || account >= self.max_accounts {
            return self.prefetch_named(account, cl_ord_id, new_price, step, NIL);
        }
        let addr = cmd as *const Command as usize;
        let entry = &mut self.ahead.0[(addr / std::mem::size_of::<Command>()) % AHEAD_RING];
        let slot = if step == 3 || entry.0 != addr {
            let slot = self.store.by_client.guess(account, cl_ord_id);
            *entry = (addr, slot);
            slot
        } else {
            entry.1
        };
        self.prefetch_named(account, cl_ord_id, new_price, step, slot)
    }

    /// Step `step` (4 first, 1 last; others do nothing) of the prefetch pipeline for `cmd`, a
    /// command to be applied soon: starts loading what `cmd` will touch, reading what step
    /// `step + 1` loaded (see the module's table). A hint: it changes nothing observable.
    #[inline]
    pub fn prefetch(&self, cmd: &Command, step: usize) {
        if !(1..=4).contains(&step) {
            return;
        }
        match cmd {
            Command::Replace(r) => {
                let slot = self.guess_at(r.account, r.orig_cl_ord_id, step);
                self.prefetch_named(r.account, r.orig_cl_ord_id, Some(r.price), step, slot)
            }
            Command::Cancel(c) => {
                let slot = self.guess_at(c.account, c.cl_ord_id, step);
                self.prefetch_named(c.account, c.cl_ord_id, None, step, slot)
            }
            Command::NewOrder(o) => {
                if o.account >= self.max_accounts {
                    return;
                }
                let Some(bi) = self.book_index(o.instrument) else {
                    return;
                };
                let book = &self.books[bi];
                let level = level_of(book, o.price);
                match step {
                    4 => {
                        prefetch(self.store.by_client.home_bucket(o.account, o.cl_ord_id));
                        if let Some(idx) = level {
                            prefetch(&book.side(o.side).levels[idx as usize]);
                            prefetch(book.side(o.side).bitmap.word_of(idx));
                        }
                    }
                    3 => {
                        if let Some(idx) = level {
                            self.prefetch_slot(book.side(o.side).levels[idx as usize].tail);
                        }
                        self.prefetch_slot(self.store.acct_tail[o.account as usize]);
                    }
                    2 | 1 if level.is_some_and(|idx| book.crosses(o.side, idx)) => {
                        self.prefetch_maker(book, o.side, step);
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }

    /// The index's guess of the key's slot, for steps 3 to 1 (`NIL` for step 4, which has no
    /// use for it).
    #[inline(always)]
    fn guess_at(&self, account: AccountId, cl_ord_id: ClientOrderId, step: usize) -> u32 {
        if step == 4 {
            NIL
        } else {
            self.store.by_client.guess(account, cl_ord_id)
        }
    }

    /// The pipeline for a command naming a live order by client id (replace: `new_price`);
    /// `slot` is the index's guess for the key (steps 3 to 1).
    #[inline(always)]
    fn prefetch_named(
        &self,
        account: AccountId,
        cl_ord_id: ClientOrderId,
        new_price: Option<PriceTicks>,
        step: usize,
        slot: u32,
    ) {
        if account >= self.max_accounts {
            return;
        }
        if step == 4 {
            prefetch(self.store.by_client.home_bucket(account, cl_ord_id));
            return;
        }
        let Some(o) = self.store.slab.orders.get(slot as usize) else {
            return;
        };
        if step == 3 {
            prefetch(o);
            return;
        }
        if o.leaves == 0 || o.cl_ord_id != cl_ord_id || o.account != account {
            return;
        }
        let Some(book) = self.books.get(o.book as usize) else {
            return;
        };
        let ladder = book.side(o.side);
        match step {
            2 => {
                // The levels, and the bitmap words that change when one empties or fills.
                if let Some(idx) = level_of(book, o.price) {
                    prefetch(&ladder.levels[idx as usize]);
                    prefetch(ladder.bitmap.word_of(idx));
                }
                if let Some(idx) = new_price.and_then(|p| level_of(book, p)) {
                    prefetch(&ladder.levels[idx as usize]);
                    prefetch(ladder.bitmap.word_of(idx));
                }
                self.prefetch_slot(o.prev);
                self.prefetch_slot(o.next);
                if new_price.is_none() {
                    self.prefetch_slot(o.acct_prev);
                    self.prefetch_slot(o.acct_next);
                }
            }
            1 => {
                if let Some(idx) = new_price.and_then(|p| level_of(book, p)) {
                    self.prefetch_slot(ladder.levels[idx as usize].tail);
                }
            }
            _ => {}
        }
    }

    /// For an order that will cross: the first maker it meets (step 2), then what filling it
    /// whole touches (step 1: its index bucket, account neighbours and the next maker).
    #[inline(always)]
    fn prefetch_maker(&self, book: &Book, taker_side: Side, step: usize) {
        let opp = match taker_side {
            Side::Buy => &book.asks,
            Side::Sell => &book.bids,
        };
        let Some(level) = opp.levels.get(opp.best as usize) else {
            return;
        };
        if step == 2 {
            return self.prefetch_slot(level.head);
        }
        let Some(m) = self.store.slab.orders.get(level.head as usize) else {
            return;
        };
        prefetch(self.store.by_client.home_bucket(m.account, m.cl_ord_id));
        self.prefetch_slot(m.acct_prev);
        self.prefetch_slot(m.acct_next);
        self.prefetch_slot(m.next);
    }

    #[inline(always)]
    fn prefetch_slot(&self, slot: u32) {
        if slot != NIL {
            if let Some(o) = self.store.slab.orders.get(slot as usize) {
                prefetch(o);
            }
        }
    }
}

/// Entries of [`AheadRing`]: more than the commands between step 3 and step 1
/// (`2 * SPACING`), so that an entry outlives its use whatever the slice's alignment.
pub(crate) const AHEAD_RING: usize = 16;

const _: () = assert!(AHEAD_RING > 2 * SPACING);

/// The slots step 3 of the pipeline found, by the address of the command in `next`:
/// `(address, slot)`. A hint like the rest: an entry is used only for the command at the same
/// address, and the order it names is checked against the key before anything is prefetched
/// from it, so a stale or foreign entry only wastes a prefetch.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AheadRing(pub [(usize, u32); AHEAD_RING]);

impl AheadRing {
    pub(crate) const EMPTY: AheadRing = AheadRing([(0, NIL); AHEAD_RING]);
}

/// The ladder index of `price` in `book`, if the price is on the ladder.
#[inline(always)]
fn level_of(book: &Book, price: PriceTicks) -> Option<u32> {
    (price >= book.spec.min_price && price <= book.spec.max_price).then(|| book.index_of(price))
}
