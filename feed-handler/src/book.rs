//! Order-by-order (L3) and price-level (L2) books of one stream's instruments.
//!
//! - **Orders** live in a slab of 48-byte slots (free list, LIFO), found by order id through an
//!   open-addressing hash table (Fibonacci hashing, linear probing, backward-shift deletion,
//!   load at most 1/2). Order ids are unique per stream, so one table serves every instrument.
//!   A slot names its level, so removing or reducing an order never searches.
//! - **Levels** live in a slab per instrument, found by price through a small hash table per
//!   side; per side the level ids are also kept sorted worst to best (bids ascending, asks
//!   descending) next to their prices, so the best level is the last one. The sorted vectors
//!   change only when a level appears or empties (a binary search and a short move near the
//!   busy top of the book); an order joining or leaving an existing level costs two hash
//!   probes at most. Each level keeps its total quantity, its order count and an intrusive FIFO
//!   of its orders (time priority), so L2 is read directly and L3 is a walk.
//!
//! Nothing allocates per message once the tables have grown to the stream's working set.

use tpx_wire::enums::Side;
use tpx_wire::market_data::InstrumentDirectory;

/// No slot.
pub const NIL: u32 = u32::MAX;

/// One aggregated price level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Level {
    pub price: i64,
    /// Total quantity of the level's orders.
    pub qty: u64,
    /// Number of orders.
    pub orders: u32,
    /// First order (time priority); the next free level while unused.
    head: u32,
    tail: u32,
}

/// One resting order as listed by [`Books::l3`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct L3Entry {
    pub order_id: u64,
    pub side: Side,
    pub price: i64,
    pub qty: u64,
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    order_id: u64,
    price: i64,
    qty: u64,
    prev: u32,
    next: u32,
    /// Index of the instrument's book.
    book: u32,
    /// Index of the level in the book's level slab.
    level: u32,
    side: Side,
}

/// Why a message could not be applied (the stream and the book disagree: a bug or lost data).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BookError {
    /// An order id that is not on the book.
    UnknownOrder(u64),
    /// An `AddOrder` for an order id already on the book (or order id 0).
    DuplicateOrder(u64),
    /// More quantity removed than the order has.
    Overfill(u64),
    /// A price no book can hold (`i64::MIN`).
    BadPrice(u64),
}

/// A map from nonzero `u64` keys to `u32`: open addressing, Fibonacci hashing, linear
/// probing, backward-shift deletion, load at most 1/2 (it doubles beyond).
#[derive(Clone, Debug)]
struct IdMap {
    /// (key, value); key 0 = empty.
    buckets: Vec<(u64, u32)>,
    shift: u32,
    len: usize,
}

impl IdMap {
    fn new(capacity: usize) -> IdMap {
        let n = (capacity * 2).next_power_of_two().max(16);
        IdMap {
            buckets: vec![(0, NIL); n],
            shift: 64 - n.trailing_zeros(),
            len: 0,
        }
    }

    #[inline]
    fn home(&self, key: u64) -> usize {
        (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> self.shift) as usize
    }

    /// The bucket holding `key` (`Ok`), or the empty bucket where it would go (`Err`).
    #[inline]
    fn find(&self, key: u64) -> Result<usize, usize> {
        let mask = self.buckets.len() - 1;
        let mut i = self.home(key);
        loop {
            let k = self.buckets[i].0;
            if k == key {
                return Ok(i);
            }
            if k == 0 {
                return Err(i);
            }
            i = (i + 1) & mask;
        }
    }

    #[inline]
    fn get(&self, key: u64) -> Option<u32> {
        self.find(key).ok().map(|i| self.buckets[i].1)
    }

    /// Inserts `key` unless present; `false` if it was.
    #[inline]
    fn insert_new(&mut self, key: u64, value: u32) -> bool {
        if (self.len + 1) * 2 > self.buckets.len() {
            self.grow();
        }
        match self.find(key) {
            Ok(_) => false,
            Err(i) => {
                self.buckets[i] = (key, value);
                self.len += 1;
                true
            }
        }
    }

    /// Empties bucket `i`, shifting back the entries that follow in its probe run.
    #[inline]
    fn remove_at(&mut self, i: usize) {
        let mask = self.buckets.len() - 1;
        self.len -= 1;
        let mut hole = i;
        let mut j = (i + 1) & mask;
        loop {
            let (kj, _) = self.buckets[j];
            if kj == 0 {
                break;
            }
            let h = self.home(kj);
            // Move j into the hole if its home is not in (hole, j].
            if (j.wrapping_sub(h) & mask) >= (j.wrapping_sub(hole) & mask) {
                self.buckets[hole] = self.buckets[j];
                hole = j;
            }
            j = (j + 1) & mask;
        }
        self.buckets[hole] = (0, NIL);
    }

    /// Inserts a new key (the caller checked it is absent).
    #[inline]
    fn insert(&mut self, key: u64, value: u32) {
        if (self.len + 1) * 2 > self.buckets.len() {
            self.grow();
        }
        let mask = self.buckets.len() - 1;
        let mut i = self.home(key);
        while self.buckets[i].0 != 0 {
            i = (i + 1) & mask;
        }
        self.buckets[i] = (key, value);
        self.len += 1;
    }

    #[inline]
    fn remove(&mut self, key: u64) -> Option<u32> {
        let i = self.find(key).ok()?;
        let v = self.buckets[i].1;
        self.remove_at(i);
        Some(v)
    }

    #[cold]
    fn grow(&mut self) {
        let old = std::mem::take(&mut self.buckets);
        let n = old.len() * 2;
        self.buckets = vec![(0, NIL); n];
        self.shift = 64 - n.trailing_zeros();
        self.len = 0;
        for (k, v) in old {
            if k != 0 {
                self.insert(k, v);
            }
        }
    }

    fn clear(&mut self) {
        self.buckets.fill((0, NIL));
        self.len = 0;
    }
}

/// The key of a price in a side's level map (nonzero for every price but `i64::MIN`).
#[inline]
fn price_key(price: i64) -> u64 {
    (price as u64) ^ (1 << 63)
}

/// One side's levels: level ids sorted worst to best with their prices, and price → id.
#[derive(Clone, Debug)]
struct Ladder {
    side: Side,
    prices: Vec<i64>,
    ids: Vec<u32>,
    map: IdMap,
}

impl Ladder {
    fn new(side: Side) -> Ladder {
        Ladder {
            side,
            prices: Vec::with_capacity(64),
            ids: Vec::with_capacity(64),
            map: IdMap::new(64),
        }
    }

    /// Where `price` is (`Ok`) or would go (`Err`) in the sorted vectors.
    #[inline]
    fn position(&self, price: i64) -> Result<usize, usize> {
        match self.side {
            Side::Buy => self.prices.binary_search(&price),
            Side::Sell => self.prices.binary_search_by(|p| price.cmp(p)),
        }
    }

    fn clear(&mut self) {
        self.prices.clear();
        self.ids.clear();
        self.map.clear();
    }
}

/// One instrument's book and what the feed says about it.
#[derive(Clone, Debug)]
pub struct InstrumentBook {
    pub id: u32,
    bids: Ladder,
    asks: Ladder,
    /// Level slab (both sides) and its free list.
    levels: Vec<Level>,
    free_level: u32,
    pub halted: bool,
    /// 0: never set.
    pub ref_price: i64,
    pub band_bps: u32,
    pub directory: Option<InstrumentDirectory>,
    /// Last trade: (trade id, price, qty, aggressor side).
    pub last_trade: Option<(u64, i64, u64, Side)>,
    pub trades: u64,
    pub volume: u64,
    /// Messages of this instrument up to this sequence number are already in the book (set
    /// when a snapshot as of that number is applied; later messages at or below it are
    /// skipped).
    pub applied_through: u64,
    /// Sequence number of the last message applied to this instrument.
    pub last_seq: u64,
}

impl InstrumentBook {
    fn new(id: u32) -> InstrumentBook {
        InstrumentBook {
            id,
            bids: Ladder::new(Side::Buy),
            asks: Ladder::new(Side::Sell),
            levels: Vec::with_capacity(128),
            free_level: NIL,
            halted: false,
            ref_price: 0,
            band_bps: 0,
            directory: None,
            last_trade: None,
            trades: 0,
            volume: 0,
            applied_through: 0,
            last_seq: 0,
        }
    }

    #[inline]
    fn ladder(&self, side: Side) -> &Ladder {
        match side {
            Side::Buy => &self.bids,
            Side::Sell => &self.asks,
        }
    }

    /// Up to `n` levels of one side, best first.
    pub fn levels(&self, side: Side, n: usize) -> impl Iterator<Item = &Level> + '_ {
        self.ladder(side)
            .ids
            .iter()
            .rev()
            .take(n)
            .map(|&i| &self.levels[i as usize])
    }

    /// Best level of a side.
    pub fn best(&self, side: Side) -> Option<&Level> {
        self.ladder(side)
            .ids
            .last()
            .map(|&i| &self.levels[i as usize])
    }

    /// Number of price levels of a side.
    pub fn depth(&self, side: Side) -> usize {
        self.ladder(side).ids.len()
    }

    /// The symbol, if a directory message named it.
    pub fn symbol(&self) -> Option<&str> {
        self.directory.as_ref().map(|d| d.symbol.as_str())
    }

    /// The level at `price` on `side`, created (empty) if missing; returns its id.
    #[inline]
    fn level_at(&mut self, side: Side, price: i64) -> u32 {
        let key = price_key(price);
        let ladder = match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        };
        if let Some(id) = ladder.map.get(key) {
            return id;
        }
        let level = Level {
            price,
            qty: 0,
            orders: 0,
            head: NIL,
            tail: NIL,
        };
        let id = if self.free_level != NIL {
            let id = self.free_level;
            self.free_level = self.levels[id as usize].head;
            self.levels[id as usize] = level;
            id
        } else {
            self.levels.push(level);
            (self.levels.len() - 1) as u32
        };
        if let Err(at) = ladder.position(price) {
            ladder.prices.insert(at, price);
            ladder.ids.insert(at, id);
        }
        ladder.map.insert(key, id);
        id
    }

    /// Removes the (empty) level `id` at `price` on `side`.
    #[inline]
    fn drop_level(&mut self, side: Side, price: i64, id: u32) {
        let ladder = match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        };
        ladder.map.remove(price_key(price));
        if let Ok(at) = ladder.position(price) {
            ladder.prices.remove(at);
            ladder.ids.remove(at);
        }
        self.levels[id as usize].head = self.free_level;
        self.free_level = id;
    }

    fn clear_levels(&mut self) {
        self.bids.clear();
        self.asks.clear();
        self.levels.clear();
        self.free_level = NIL;
    }
}

/// What an order looked like when a message touched it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Touched {
    /// Index of the instrument's book.
    pub book: u32,
    pub side: Side,
    /// The order's price (its old price, for a replace).
    pub price: i64,
    /// Quantity left on the order (0: it left the book).
    pub leaves: u64,
}

/// Every book of one stream.
#[derive(Clone, Debug)]
pub struct Books {
    books: Vec<InstrumentBook>,
    /// Instrument id → index in `books` (`NIL`: none yet).
    index_of: Vec<u32>,
    slots: Vec<Slot>,
    free: u32,
    index: IdMap,
    live: usize,
}

impl Default for Books {
    fn default() -> Self {
        Books::new(1024)
    }
}

impl Books {
    /// Books sized for about `orders` live orders (they grow beyond, amortised).
    pub fn new(orders: usize) -> Books {
        Books {
            books: Vec::new(),
            index_of: Vec::new(),
            slots: Vec::with_capacity(orders),
            free: NIL,
            index: IdMap::new(orders),
            live: 0,
        }
    }

    /// Index of an instrument's book, creating it on first sight.
    #[inline]
    pub fn book_index(&mut self, instrument: u32) -> u32 {
        if let Some(&i) = self.index_of.get(instrument as usize) {
            if i != NIL {
                return i;
            }
        }
        self.add_book(instrument)
    }

    #[cold]
    fn add_book(&mut self, instrument: u32) -> u32 {
        let id = instrument as usize;
        if self.index_of.len() <= id {
            self.index_of.resize(id + 1, NIL);
        }
        let i = self.books.len() as u32;
        self.books.push(InstrumentBook::new(instrument));
        self.index_of[id] = i;
        i
    }

    /// An instrument's book.
    pub fn book(&self, instrument: u32) -> Option<&InstrumentBook> {
        let i = *self.index_of.get(instrument as usize)?;
        self.books.get(i as usize)
    }

    /// The book at an index (see [`Books::book_index`]).
    #[inline]
    pub fn at(&self, index: u32) -> &InstrumentBook {
        &self.books[index as usize]
    }

    #[inline]
    pub(crate) fn at_mut(&mut self, index: u32) -> &mut InstrumentBook {
        &mut self.books[index as usize]
    }

    /// Every book, in the order instruments were first seen.
    pub fn books(&self) -> &[InstrumentBook] {
        &self.books
    }

    /// Live orders across instruments.
    pub fn live_orders(&self) -> usize {
        self.live
    }

    #[inline]
    fn alloc(&mut self, s: Slot) -> u32 {
        if self.free != NIL {
            let i = self.free;
            self.free = self.slots[i as usize].next;
            self.slots[i as usize] = s;
            i
        } else {
            self.slots.push(s);
            (self.slots.len() - 1) as u32
        }
    }

    #[inline]
    fn release(&mut self, i: u32) {
        self.slots[i as usize].next = self.free;
        self.slots[i as usize].order_id = 0;
        self.free = i;
    }

    /// Links slot `s` at the tail of the level at its price (created if needed).
    #[inline]
    fn link(&mut self, s: u32) {
        let Slot {
            book,
            side,
            price,
            qty,
            ..
        } = self.slots[s as usize];
        let b = &mut self.books[book as usize];
        let li = b.level_at(side, price);
        let level = &mut b.levels[li as usize];
        let tail = level.tail;
        level.tail = s;
        if tail == NIL {
            level.head = s;
        }
        level.orders += 1;
        level.qty = level.qty.wrapping_add(qty);
        let slot = &mut self.slots[s as usize];
        slot.prev = tail;
        slot.next = NIL;
        slot.level = li;
        if tail != NIL {
            self.slots[tail as usize].next = s;
        }
    }

    /// Unlinks slot `s` from its level (removing the level if it empties).
    #[inline]
    fn unlink(&mut self, s: u32) {
        let Slot {
            book,
            side,
            price,
            qty,
            prev,
            next,
            level: li,
            ..
        } = self.slots[s as usize];
        if prev != NIL {
            self.slots[prev as usize].next = next;
        }
        if next != NIL {
            self.slots[next as usize].prev = prev;
        }
        let b = &mut self.books[book as usize];
        let level = &mut b.levels[li as usize];
        if level.head == s {
            level.head = next;
        }
        if level.tail == s {
            level.tail = prev;
        }
        level.orders -= 1;
        level.qty = level.qty.wrapping_sub(qty);
        if level.orders == 0 {
            b.drop_level(side, price, li);
        }
    }

    /// Adjusts the total of the level holding slot `s` by `-qty`.
    #[inline]
    fn level_sub(&mut self, s: u32, qty: u64) {
        let Slot { book, level, .. } = self.slots[s as usize];
        let l = &mut self.books[book as usize].levels[level as usize];
        l.qty = l.qty.wrapping_sub(qty);
    }

    /// `AddOrder` / `SnapshotOrder`: the order rests at the back of its level.
    #[inline]
    pub fn add(
        &mut self,
        book: u32,
        order_id: u64,
        side: Side,
        price: i64,
        qty: u64,
    ) -> Result<(), BookError> {
        if price == i64::MIN {
            return Err(BookError::BadPrice(order_id));
        }
        let s = self.alloc(Slot {
            order_id,
            price,
            qty,
            prev: NIL,
            next: NIL,
            book,
            level: NIL,
            side,
        });
        if order_id == 0 || !self.index.insert_new(order_id, s) {
            self.release(s);
            return Err(BookError::DuplicateOrder(order_id));
        }
        self.link(s);
        self.live += 1;
        Ok(())
    }

    /// `OrderExecuted` / `OrderReduce`: the order loses `qty`, and leaves the book at 0.
    #[inline]
    pub fn reduce(&mut self, order_id: u64, qty: u64) -> Result<Touched, BookError> {
        let at = self
            .index
            .find(order_id)
            .map_err(|_| BookError::UnknownOrder(order_id))?;
        let s = self.index.buckets[at].1;
        let o = self.slots[s as usize];
        if qty > o.qty {
            return Err(BookError::Overfill(order_id));
        }
        let leaves = o.qty - qty;
        if leaves == 0 {
            self.unlink(s);
            self.index.remove_at(at);
            self.release(s);
            self.live -= 1;
        } else {
            self.level_sub(s, qty);
            self.slots[s as usize].qty = leaves;
        }
        Ok(Touched {
            book: o.book,
            side: o.side,
            price: o.price,
            leaves,
        })
    }

    /// `OrderDelete`.
    #[inline]
    pub fn delete(&mut self, order_id: u64) -> Result<Touched, BookError> {
        let s = self
            .index
            .remove(order_id)
            .ok_or(BookError::UnknownOrder(order_id))?;
        let o = self.slots[s as usize];
        self.unlink(s);
        self.release(s);
        self.live -= 1;
        Ok(Touched {
            book: o.book,
            side: o.side,
            price: o.price,
            leaves: 0,
        })
    }

    /// `OrderReplace`: new price and quantity, back of the (new) level.
    #[inline]
    pub fn replace(&mut self, order_id: u64, price: i64, qty: u64) -> Result<Touched, BookError> {
        let s = self
            .index
            .get(order_id)
            .ok_or(BookError::UnknownOrder(order_id))?;
        if price == i64::MIN {
            return Err(BookError::BadPrice(order_id));
        }
        let o = self.slots[s as usize];
        self.unlink(s);
        let slot = &mut self.slots[s as usize];
        slot.price = price;
        slot.qty = qty;
        self.link(s);
        Ok(Touched {
            book: o.book,
            side: o.side,
            price: o.price,
            leaves: qty,
        })
    }

    /// Removes every order of a book (before a snapshot replaces it).
    pub fn clear_book(&mut self, book: u32) {
        let b = &mut self.books[book as usize];
        let heads: Vec<u32> = b
            .bids
            .ids
            .iter()
            .chain(b.asks.ids.iter())
            .map(|&l| b.levels[l as usize].head)
            .collect();
        b.clear_levels();
        for mut s in heads {
            while s != NIL {
                let next = self.slots[s as usize].next;
                let id = self.slots[s as usize].order_id;
                self.index.remove(id);
                self.release(s);
                self.live -= 1;
                s = next;
            }
        }
    }

    /// Removes every order of every book.
    pub fn clear(&mut self) {
        for b in &mut self.books {
            b.clear_levels();
        }
        self.slots.clear();
        self.free = NIL;
        self.index.clear();
        self.live = 0;
    }

    /// Every resting order of an instrument: bids best price first in time priority within a
    /// level, then asks the same way (the order of `Engine::l3` and of a snapshot).
    pub fn l3(&self, instrument: u32) -> Vec<L3Entry> {
        let mut out = Vec::new();
        let Some(b) = self.book(instrument) else {
            return out;
        };
        for side in [Side::Buy, Side::Sell] {
            for level in b.levels(side, usize::MAX) {
                let mut s = level.head;
                while s != NIL {
                    let o = &self.slots[s as usize];
                    out.push(L3Entry {
                        order_id: o.order_id,
                        side: o.side,
                        price: o.price,
                        qty: o.qty,
                    });
                    s = o.next;
                }
            }
        }
        out
    }

    /// Checks the aggregates against the orders (tests).
    pub fn check(&self) -> Result<(), String> {
        let mut n = 0;
        for b in &self.books {
            for ladder in [&b.bids, &b.asks] {
                if ladder.prices.len() != ladder.ids.len() || ladder.map.len != ladder.ids.len() {
                    return Err(format!("instrument {}: level tables disagree", b.id));
                }
                for w in ladder.prices.windows(2) {
                    let ok = match ladder.side {
                        Side::Buy => w[0] < w[1],
                        Side::Sell => w[0] > w[1],
                    };
                    if !ok {
                        return Err(format!("instrument {}: levels out of order", b.id));
                    }
                }
                for (&price, &li) in ladder.prices.iter().zip(&ladder.ids) {
                    let l = &b.levels[li as usize];
                    if l.price != price || ladder.map.get(price_key(price)) != Some(li) {
                        return Err(format!("instrument {} level {price}: index", b.id));
                    }
                    let (mut q, mut c, mut s) = (0u64, 0u32, l.head);
                    while s != NIL {
                        let o = &self.slots[s as usize];
                        if o.price != l.price || o.side != ladder.side || o.level != li {
                            return Err(format!("order {} on the wrong level", o.order_id));
                        }
                        q = q.wrapping_add(o.qty);
                        c += 1;
                        s = o.next;
                    }
                    if q != l.qty || c != l.orders || c == 0 {
                        return Err(format!("instrument {} level {}: totals", b.id, l.price));
                    }
                    n += c as usize;
                }
            }
        }
        if n != self.live || n != self.index.len {
            return Err(format!("{n} orders on levels, {} live", self.live));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_reduce_replace_delete_keep_l2_and_l3() {
        let mut b = Books::new(4);
        let i = b.book_index(7);
        for (id, side, price, qty) in [
            (1, Side::Buy, 100, 5),
            (2, Side::Buy, 101, 3),
            (3, Side::Buy, 100, 2),
            (4, Side::Sell, 103, 1),
            (5, Side::Sell, 102, 4),
            (6, Side::Buy, 99, 1),
        ] {
            b.add(i, id, side, price, qty).unwrap();
        }
        b.check().unwrap();
        let bk = b.book(7).unwrap();
        assert_eq!(bk.best(Side::Buy).unwrap().price, 101);
        assert_eq!(bk.best(Side::Sell).unwrap().price, 102);
        let l2: Vec<_> = bk
            .levels(Side::Buy, 5)
            .map(|l| (l.price, l.qty, l.orders))
            .collect();
        assert_eq!(l2, vec![(101, 3, 1), (100, 7, 2), (99, 1, 1)]);
        assert_eq!(
            b.l3(7).iter().map(|o| o.order_id).collect::<Vec<_>>(),
            vec![2, 1, 3, 6, 5, 4]
        );
        assert_eq!(b.reduce(1, 2).unwrap().leaves, 3);
        assert_eq!(b.reduce(2, 3).unwrap().leaves, 0);
        b.replace(3, 100, 9).unwrap(); // same price, back of the queue
        assert_eq!(
            b.add(i, 4, Side::Buy, 1, 1),
            Err(BookError::DuplicateOrder(4))
        );
        assert_eq!(b.delete(2), Err(BookError::UnknownOrder(2)));
        assert_eq!(b.reduce(5, 5), Err(BookError::Overfill(5)));
        b.check().unwrap();
        assert_eq!(
            b.l3(7)
                .iter()
                .map(|o| (o.order_id, o.qty))
                .collect::<Vec<_>>(),
            vec![(1, 3), (3, 9), (6, 1), (5, 4), (4, 1)]
        );
        b.delete(5).unwrap();
        assert_eq!(b.book(7).unwrap().best(Side::Sell).unwrap().price, 103);
        b.clear_book(i);
        b.check().unwrap();
        assert_eq!(b.live_orders(), 0);
    }

    #[test]
    fn index_survives_churn_and_growth() {
        let mut b = Books::new(2);
        let i = b.book_index(1);
        let mut live = std::collections::BTreeMap::new();
        let mut x: u64 = 1;
        for id in 1..20_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let price = 1000 + (x % 200) as i64;
            let side = if x & 1 == 0 { Side::Buy } else { Side::Sell };
            let price = if side == Side::Buy {
                price - 300
            } else {
                price
            };
            b.add(i, id, side, price, 1 + x % 7).unwrap();
            live.insert(id, ());
            if x % 3 != 0 {
                let victim = id.saturating_sub(x % 50).max(1);
                if live.remove(&victim).is_some() {
                    b.delete(victim).unwrap();
                }
            }
        }
        b.check().unwrap();
        assert_eq!(b.live_orders(), live.len());
        for id in live.keys() {
            b.delete(*id).unwrap();
        }
        b.check().unwrap();
        assert_eq!(b.live_orders(), 0);
    }
}
