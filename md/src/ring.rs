//! The retransmission ring: the last `capacity` messages of a stream, by sequence number,
//! written by the publisher (the shard's thread) and read by the retransmission server on its
//! own thread without a lock.
//!
//! One 64-byte slot per message (`seq & (capacity - 1)`): a stamp word and 56 bytes, enough for
//! every message of the incremental stream (the largest, `AddOrder` and friends, is 48 bytes).
//! Each slot is a seqlock: the writer sets the stamp to 0, writes the bytes, then stores the
//! message's sequence number with release ordering; a reader loads the stamp, copies the bytes,
//! and keeps them only if the stamp still names the sequence number it wanted. A reader never
//! blocks the writer, and the writer never waits: an old message is simply overwritten.

use std::sync::atomic::{fence, AtomicU64, Ordering};

/// Bytes of message a slot holds.
pub const SLOT_BYTES: usize = 56;
const WORDS: usize = SLOT_BYTES / 8;

#[repr(C, align(64))]
#[derive(Debug, Default)]
struct Slot {
    /// The sequence number of the message in the slot; 0 while empty or being written.
    stamp: AtomicU64,
    words: [AtomicU64; WORDS],
}

/// A bounded ring of recent messages by sequence number (single writer, any readers).
#[derive(Debug)]
pub struct RetransmitRing {
    slots: Box<[Slot]>,
    mask: u64,
    /// Sequence number after the last message written (release-stored after the slot).
    published: AtomicU64,
}

impl RetransmitRing {
    /// A ring of `capacity` messages (rounded up to a power of two, at least 2): 64 bytes each.
    pub fn new(capacity: usize) -> RetransmitRing {
        let cap = capacity.max(2).next_power_of_two();
        RetransmitRing {
            slots: (0..cap).map(|_| Slot::default()).collect(),
            mask: cap as u64 - 1,
            published: AtomicU64::new(1),
        }
    }

    /// Slots in the ring.
    pub fn capacity(&self) -> u64 {
        self.mask + 1
    }

    /// Sets where the stream starts (the first sequence number it will write). Call before
    /// writing.
    pub fn reset(&self, next_seq: u64) {
        for s in self.slots.iter() {
            s.stamp.store(0, Ordering::Relaxed);
        }
        self.published.store(next_seq.max(1), Ordering::Release);
    }

    /// Writes message `seq` (`bytes.len() <= 56`, longer messages are not kept: a request for
    /// them is refused as too old). Single writer.
    #[inline]
    pub fn write(&self, seq: u64, bytes: &[u8]) {
        let slot = &self.slots[(seq & self.mask) as usize];
        slot.stamp.store(0, Ordering::Relaxed);
        fence(Ordering::Release);
        if bytes.len() <= SLOT_BYTES {
            let mut buf = [0u8; SLOT_BYTES];
            buf[..bytes.len()].copy_from_slice(bytes);
            for (w, c) in slot.words.iter().zip(buf.chunks_exact(8)) {
                let mut b = [0u8; 8];
                b.copy_from_slice(c);
                w.store(u64::from_le_bytes(b), Ordering::Relaxed);
            }
            slot.stamp.store(seq, Ordering::Release);
        }
    }

    /// Makes every message below `next_seq` visible to readers (call after the writes of a
    /// packet).
    #[inline]
    pub fn publish(&self, next_seq: u64) {
        self.published.store(next_seq, Ordering::Release);
    }

    /// Sequence number after the last published message.
    #[inline]
    pub fn next_seq(&self) -> u64 {
        self.published.load(Ordering::Acquire)
    }

    /// The oldest sequence number the ring may still hold (0: nothing published yet).
    pub fn available_from(&self) -> u64 {
        let next = self.next_seq();
        if next <= 1 {
            return 0;
        }
        next.saturating_sub(self.capacity()).max(1)
    }

    /// Copies message `seq` into `out` and returns its length, or `None` if the ring no longer
    /// (or does not yet) hold it.
    #[inline]
    pub fn read(&self, seq: u64, out: &mut [u8; SLOT_BYTES]) -> Option<usize> {
        if seq == 0 || seq >= self.next_seq() {
            return None;
        }
        let slot = &self.slots[(seq & self.mask) as usize];
        let s1 = slot.stamp.load(Ordering::Acquire);
        if s1 != seq {
            return None;
        }
        for (w, c) in slot.words.iter().zip(out.chunks_exact_mut(8)) {
            c.copy_from_slice(&w.load(Ordering::Relaxed).to_le_bytes());
        }
        fence(Ordering::Acquire);
        if slot.stamp.load(Ordering::Relaxed) != seq {
            return None;
        }
        let len = usize::from(u16::from_le_bytes([out[0], out[1]]));
        (8..=SLOT_BYTES).contains(&len).then_some(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(seq: u64) -> [u8; 40] {
        let mut m = [0u8; 40];
        m[0] = 40;
        m[8..16].copy_from_slice(&seq.to_le_bytes());
        m
    }

    #[test]
    fn keeps_the_last_capacity_messages() {
        let r = RetransmitRing::new(8);
        let mut out = [0u8; SLOT_BYTES];
        assert_eq!(r.available_from(), 0);
        for seq in 1..=20u64 {
            r.write(seq, &msg(seq));
            r.publish(seq + 1);
        }
        assert_eq!(r.available_from(), 13);
        assert!(r.read(12, &mut out).is_none());
        assert!(r.read(21, &mut out).is_none());
        for seq in 13..=20u64 {
            assert_eq!(r.read(seq, &mut out), Some(40));
            assert_eq!(out[..40], msg(seq));
        }
    }

    #[test]
    fn a_concurrent_reader_never_sees_a_torn_message() {
        let r = std::sync::Arc::new(RetransmitRing::new(4));
        let w = r.clone();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s2 = stop.clone();
        let writer = std::thread::spawn(move || {
            for seq in 1..200_000u64 {
                w.write(seq, &msg(seq));
                w.publish(seq + 1);
            }
            s2.store(true, Ordering::Release);
        });
        let mut out = [0u8; SLOT_BYTES];
        let mut ok = 0u64;
        while !stop.load(Ordering::Acquire) {
            let next = r.next_seq();
            for seq in next.saturating_sub(4).max(1)..next {
                if let Some(n) = r.read(seq, &mut out) {
                    assert_eq!(n, 40);
                    assert_eq!(out[..40], msg(seq));
                    ok += 1;
                }
            }
            std::thread::yield_now();
        }
        writer.join().unwrap();
        let _ = ok;
    }
}
