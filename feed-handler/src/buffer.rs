//! Buffered incremental packets (while a gap is open or a snapshot is awaited): a byte ring of
//! whole packets in arrival order, bounded; the oldest make room when it is full.

use std::collections::VecDeque;

#[derive(Clone, Copy, Debug)]
struct Entry {
    first_seq: u64,
    count: u16,
    off: u32,
    len: u32,
}

/// A bounded FIFO of packets (bytes copied in).
#[derive(Debug)]
pub struct PacketRing {
    arena: Box<[u8]>,
    entries: VecDeque<Entry>,
    /// Where the next packet goes.
    tail: usize,
}

impl PacketRing {
    /// A ring of `bytes` bytes (at least 64 KiB).
    pub fn new(bytes: usize) -> PacketRing {
        PacketRing {
            arena: vec![0u8; bytes.max(64 << 10)].into_boxed_slice(),
            entries: VecDeque::with_capacity(1024),
            tail: 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// First sequence number and message count of the oldest packet.
    pub fn front(&self) -> Option<(u64, u16)> {
        self.entries.front().map(|e| (e.first_seq, e.count))
    }

    /// The oldest packet's bytes.
    pub fn front_bytes(&self) -> Option<&[u8]> {
        let e = self.entries.front()?;
        self.arena.get(e.off as usize..(e.off + e.len) as usize)
    }

    pub fn pop(&mut self) {
        self.entries.pop_front();
        if self.entries.is_empty() {
            self.tail = 0;
        }
    }

    pub fn clear(&mut self) {
        self.entries.clear();
        self.tail = 0;
    }

    /// Where `len` bytes would go, if there is room.
    fn place(&self, len: usize) -> Option<usize> {
        let cap = self.arena.len();
        let Some(head) = self.entries.front().map(|e| e.off as usize) else {
            return (len <= cap).then_some(0);
        };
        if self.tail > head || (self.tail == head && self.entries.is_empty()) {
            if cap - self.tail >= len {
                return Some(self.tail);
            }
            return (len < head).then_some(0);
        }
        // tail <= head: the free space is [tail, head).
        (head - self.tail > len).then_some(self.tail)
    }

    /// Appends a packet; `false` if it does not fit (see [`Self::push_evicting`]).
    pub fn push(&mut self, first_seq: u64, count: u16, bytes: &[u8]) -> bool {
        let Some(at) = self.place(bytes.len()) else {
            return false;
        };
        self.arena[at..at + bytes.len()].copy_from_slice(bytes);
        self.tail = at + bytes.len();
        self.entries.push_back(Entry {
            first_seq,
            count,
            off: at as u32,
            len: bytes.len() as u32,
        });
        true
    }

    /// Appends a packet, dropping the oldest ones until it fits; returns how many were dropped.
    pub fn push_evicting(&mut self, first_seq: u64, count: u16, bytes: &[u8]) -> usize {
        let mut dropped = 0;
        while !self.push(first_seq, count, bytes) {
            if self.entries.is_empty() {
                return dropped;
            }
            self.pop();
            dropped += 1;
        }
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_and_evicts_in_order() {
        let mut r = PacketRing::new(0);
        let cap = 64 << 10;
        let pkt = vec![7u8; 1000];
        let mut seq = 1u64;
        let mut popped = 1u64;
        for round in 0..500 {
            if !r.push(seq, 1, &pkt) {
                assert!(
                    r.len() * 1000 > cap - 2000,
                    "refused with room, round {round}"
                );
                r.pop();
                popped += 1;
                continue;
            }
            seq += 1;
            if round % 3 == 0 {
                assert_eq!(r.front().unwrap().0, popped);
                r.pop();
                popped += 1;
            }
            assert_eq!(r.front_bytes().map(|b| b.len()), r.front().map(|_| 1000));
        }
        let dropped = r.push_evicting(seq, 1, &[1u8; 60 << 10]);
        assert!(dropped > 0);
        assert!(r.len() <= 5);
        assert!(r.front_bytes().is_some());
    }
}
