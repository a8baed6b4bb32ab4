//! A bounded, lock-free single-producer single-consumer ring for `Copy` messages between two
//! pinned cores.
//!
//! Why our own (60 lines) rather than a crate: the hot path wants exactly three things and
//! nothing else — (1) `head` and `tail` on separate cache lines (`CachePadded`) so the producer
//! and the consumer never write the same line; (2) each side keeps a *cached* copy of the other
//! side's index and re-reads the shared atomic only when the cache says "full" / "empty", so an
//! uncontended push or pop touches one shared line, not two; (3) `try_push` that fails (never
//! blocks, never overwrites) so the caller can turn a full ring into a typed reject. Capacity is a
//! power of two fixed at construction: no allocation after start.

use std::cell::{Cell, UnsafeCell};
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crossbeam_utils::CachePadded;

/// Most items one stage takes from one ring per duty cycle.
pub const BATCH: usize = 1024;

struct Shared<T> {
    /// Next slot the consumer reads; written only by the consumer.
    head: CachePadded<AtomicUsize>,
    /// Next slot the producer writes; written only by the producer.
    tail: CachePadded<AtomicUsize>,
    mask: usize,
    slots: Box<[UnsafeCell<MaybeUninit<T>>]>,
}

// SAFETY: a slot is written by the producer only while it is outside `[head, tail)` and read by
// the consumer only while it is inside; the Release/Acquire pairs on `tail` and `head` order the
// slot accesses with the index updates. `T: Send` because values move between threads.
unsafe impl<T: Send> Sync for Shared<T> {}
unsafe impl<T: Send> Send for Shared<T> {}

/// The writing end. Not `Clone`: there is exactly one producer.
pub struct Producer<T> {
    shared: Arc<Shared<T>>,
    tail: usize,
    cached_head: Cell<usize>,
}

/// The reading end. Not `Clone`: there is exactly one consumer.
pub struct Consumer<T> {
    shared: Arc<Shared<T>>,
    head: usize,
    cached_tail: Cell<usize>,
}

impl<T> std::fmt::Debug for Producer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("capacity", &(self.shared.mask + 1))
            .finish()
    }
}

impl<T> std::fmt::Debug for Consumer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("head", &self.head)
            .finish()
    }
}

/// A ring of at least `capacity` slots (rounded up to a power of two, minimum 2).
pub fn ring<T: Copy + Send>(capacity: usize) -> (Producer<T>, Consumer<T>) {
    let cap = capacity.max(2).next_power_of_two();
    let slots = (0..cap)
        .map(|_| UnsafeCell::new(MaybeUninit::uninit()))
        .collect();
    let shared = Arc::new(Shared {
        head: CachePadded::new(AtomicUsize::new(0)),
        tail: CachePadded::new(AtomicUsize::new(0)),
        mask: cap - 1,
        slots,
    });
    (
        Producer {
            shared: shared.clone(),
            tail: 0,
            cached_head: Cell::new(0),
        },
        Consumer {
            shared,
            head: 0,
            cached_tail: Cell::new(0),
        },
    )
}

impl<T: Copy + Send> Producer<T> {
    pub fn capacity(&self) -> usize {
        self.shared.mask + 1
    }

    /// Free slots exactly (reads the consumer's index).
    pub fn free_exact(&self) -> usize {
        self.cached_head
            .set(self.shared.head.load(Ordering::Acquire));
        self.capacity() - (self.tail - self.cached_head.get())
    }

    /// Free slots as far as the producer can tell: a lower bound, exact when it says 0 (the
    /// consumer's index is re-read only when the cached one says the ring is full).
    pub fn free(&self) -> usize {
        let cap = self.capacity();
        if self.tail - self.cached_head.get() < cap {
            return cap - (self.tail - self.cached_head.get());
        }
        self.cached_head
            .set(self.shared.head.load(Ordering::Acquire));
        cap - (self.tail - self.cached_head.get())
    }

    /// Appends `value`, or gives it back if the ring is full. Never blocks.
    #[inline]
    pub fn try_push(&mut self, value: T) -> Result<(), T> {
        let cap = self.shared.mask + 1;
        if self.tail - self.cached_head.get() >= cap {
            self.cached_head
                .set(self.shared.head.load(Ordering::Acquire));
            if self.tail - self.cached_head.get() >= cap {
                return Err(value);
            }
        }
        let slot = &self.shared.slots[self.tail & self.shared.mask];
        // SAFETY: the slot is outside `[head, tail)`, so the consumer does not read it.
        unsafe { (*slot.get()).write(value) };
        self.tail = self.tail.wrapping_add(1);
        self.shared.tail.store(self.tail, Ordering::Release);
        Ok(())
    }
}

impl<T: Copy + Send> Consumer<T> {
    /// Messages waiting, as far as the consumer can tell after reading the producer's index.
    pub fn len(&self) -> usize {
        self.cached_tail
            .set(self.shared.tail.load(Ordering::Acquire));
        self.cached_tail.get() - self.head
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The oldest message without removing it.
    #[inline]
    pub fn peek(&self) -> Option<T> {
        if self.head == self.cached_tail.get() {
            self.cached_tail
                .set(self.shared.tail.load(Ordering::Acquire));
            if self.head == self.cached_tail.get() {
                return None;
            }
        }
        let slot = &self.shared.slots[self.head & self.shared.mask];
        // SAFETY: the slot is inside `[head, tail)`: written and published by the producer.
        Some(unsafe { (*slot.get()).assume_init() })
    }

    /// The oldest message in place, without copying it out (the producer does not write its
    /// slot until [`Consumer::advance`]).
    #[inline]
    pub fn peek_ref(&self) -> Option<&T> {
        if self.head == self.cached_tail.get() {
            self.cached_tail
                .set(self.shared.tail.load(Ordering::Acquire));
            if self.head == self.cached_tail.get() {
                return None;
            }
        }
        let slot = &self.shared.slots[self.head & self.shared.mask];
        // SAFETY: the slot is inside `[head, tail)`: written and published by the producer,
        // which does not write it again before `advance` (which needs `&mut self`, so this
        // borrow has ended).
        Some(unsafe { (*slot.get()).assume_init_ref() })
    }

    /// Removes the oldest message (after a successful `peek`).
    #[inline]
    pub fn advance(&mut self) {
        debug_assert!(self.head != self.cached_tail.get());
        self.head = self.head.wrapping_add(1);
        self.shared.head.store(self.head, Ordering::Release);
    }

    #[inline]
    pub fn try_pop(&mut self) -> Option<T> {
        let v = self.peek()?;
        self.advance();
        Some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_and_full() {
        let (mut p, mut c) = ring::<u64>(4);
        assert_eq!(p.capacity(), 4);
        for i in 0..4 {
            p.try_push(i).unwrap();
        }
        assert_eq!(p.try_push(9), Err(9));
        assert_eq!(p.free(), 0);
        assert_eq!(c.peek(), Some(0));
        assert_eq!(c.try_pop(), Some(0));
        p.try_push(4).unwrap();
        let got: Vec<u64> = std::iter::from_fn(|| c.try_pop()).collect();
        assert_eq!(got, vec![1, 2, 3, 4]);
        assert!(c.is_empty());
    }

    #[test]
    fn two_threads_keep_order() {
        let (mut p, mut c) = ring::<u64>(64);
        const N: u64 = 200_000;
        let t = std::thread::spawn(move || {
            let mut i = 0;
            while i < N {
                if p.try_push(i).is_ok() {
                    i += 1;
                } else {
                    std::thread::yield_now();
                }
            }
        });
        let mut expect = 0;
        while expect < N {
            match c.try_pop() {
                Some(v) => {
                    assert_eq!(v, expect);
                    expect += 1;
                }
                None => std::thread::yield_now(),
            }
        }
        t.join().unwrap();
    }
}
