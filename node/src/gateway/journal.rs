//! The per-session reply journal: the last `capacity` replies sent on a session, by sequence
//! number, so that a client reconnecting with "next expected seq = n" gets exactly the replies it
//! missed.
//!
//! Fixed-size slots (every reply is a fixed-size message of at most `slot_len` bytes), allocated
//! once when the session is first created; appending overwrites the oldest.

/// Asks the CPU to bring `bytes` into its caches (every cache line they span); changes
/// nothing the program can observe but time.
#[inline]
fn prefetch(bytes: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    {
        let mut at = bytes.as_ptr() as usize & !63;
        let end = bytes.as_ptr() as usize + bytes.len();
        while at < end {
            // SAFETY: a prefetch never faults and reads nothing into the program; the address
            // lies in (or on the cache line of) `bytes`.
            unsafe {
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                    at as *const i8,
                );
            }
            at += 64;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = bytes;
}

#[derive(Clone, Debug)]
pub struct Journal {
    slot_len: usize,
    capacity: usize,
    bytes: Vec<u8>,
    lens: Vec<u16>,
    /// Sequence number of the next reply (the first is 1).
    next_seq: u64,
}

/// A replay request that the journal cannot serve exactly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplayError {
    /// The first missed reply was already overwritten: `oldest` is the oldest kept.
    TooOld { oldest: u64 },
    /// The client claims to have seen replies the session never sent: `next` is the next seq.
    Future { next: u64 },
}

impl Journal {
    pub fn new(capacity: usize, slot_len: usize) -> Journal {
        let capacity = capacity.max(1);
        Journal {
            slot_len,
            capacity,
            bytes: vec![0; capacity * slot_len],
            lens: vec![0; capacity],
            next_seq: 1,
        }
    }

    /// The sequence number the next appended reply gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The oldest sequence number still kept.
    pub fn oldest_seq(&self) -> u64 {
        self.next_seq.saturating_sub(self.capacity as u64).max(1)
    }

    /// Appends one encoded reply; returns its sequence number.
    #[inline]
    pub fn append(&mut self, msg: &[u8]) -> u64 {
        debug_assert!(
            msg.len() <= self.slot_len,
            "reply larger than a journal slot"
        );
        let n = msg.len().min(self.slot_len);
        let seq = self.next_seq;
        let i = ((seq - 1) % self.capacity as u64) as usize;
        let off = i * self.slot_len;
        self.bytes[off..off + n].copy_from_slice(&msg[..n]);
        self.lens[i] = n as u16;
        self.next_seq += 1;
        // The session's next slot, last written `capacity` replies ago, is cold: fetch it now,
        // so that the next reply does not wait for it (with many sessions each reply otherwise
        // writes to memory not touched for a long time: a replay's profile showed it).
        let next = (i + 1) % self.capacity * self.slot_len;
        prefetch(&self.bytes[next..next + self.slot_len]);
        seq
    }

    /// The reply with sequence number `seq`, if kept.
    pub fn get(&self, seq: u64) -> Option<&[u8]> {
        if seq == 0 || seq >= self.next_seq || seq < self.oldest_seq() {
            return None;
        }
        let i = ((seq - 1) % self.capacity as u64) as usize;
        let off = i * self.slot_len;
        Some(&self.bytes[off..off + usize::from(self.lens[i])])
    }

    /// Checks that every reply from `from_seq` on can be replayed; returns the range to replay.
    pub fn replay_range(&self, from_seq: u64) -> Result<std::ops::Range<u64>, ReplayError> {
        let from = from_seq.max(1);
        if from > self.next_seq {
            return Err(ReplayError::Future {
                next: self.next_seq,
            });
        }
        if from < self.oldest_seq() {
            return Err(ReplayError::TooOld {
                oldest: self.oldest_seq(),
            });
        }
        Ok(from..self.next_seq)
    }
}

impl Journal {
    /// A journal whose next reply is `next_seq` and which keeps `kept` (the replies just before
    /// it, oldest first; the last `capacity` of them are kept): a session restored from a node
    /// snapshot (`gateway/session/image.rs`).
    pub fn restored<'a>(
        capacity: usize,
        slot_len: usize,
        next_seq: u64,
        kept: impl ExactSizeIterator<Item = &'a [u8]>,
    ) -> Journal {
        let mut j = Journal::new(capacity, slot_len);
        let n = kept.len() as u64;
        j.next_seq = next_seq.saturating_sub(n).max(1);
        for r in kept {
            j.append(r);
        }
        j.next_seq = j.next_seq.max(next_seq);
        j
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_last_capacity() {
        let mut j = Journal::new(3, 8);
        for i in 1..=5u8 {
            assert_eq!(j.append(&[i; 4]), u64::from(i));
        }
        assert_eq!(j.next_seq(), 6);
        assert_eq!(j.oldest_seq(), 3);
        assert_eq!(j.get(2), None);
        assert_eq!(j.get(3), Some(&[3u8; 4][..]));
        assert_eq!(j.get(5), Some(&[5u8; 4][..]));
        assert_eq!(j.get(6), None);
        assert_eq!(j.replay_range(4), Ok(4..6));
        assert_eq!(j.replay_range(6), Ok(6..6));
        assert_eq!(j.replay_range(2), Err(ReplayError::TooOld { oldest: 3 }));
        assert_eq!(j.replay_range(7), Err(ReplayError::Future { next: 6 }));
    }
}
