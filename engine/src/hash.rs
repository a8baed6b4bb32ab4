//! The canonical state hash: FNV-1a 64 over little-endian u64 words.
//!
//! Chosen for being trivially specified (any implementation can reproduce it from
//! `docs/ARCHITECTURE.md`), not for speed: it runs at snapshot and test time, never per order.

const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0000_0100_0000_01b3;

/// Incremental FNV-1a 64 hasher over u64 words written little-endian.
#[derive(Clone, Debug)]
pub struct StateHasher {
    state: u64,
}

impl Default for StateHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl StateHasher {
    pub fn new() -> Self {
        Self {
            state: OFFSET_BASIS,
        }
    }

    /// Writes one value as eight little-endian bytes.
    pub fn word(&mut self, value: u64) {
        for byte in value.to_le_bytes() {
            self.state ^= u64::from(byte);
            self.state = self.state.wrapping_mul(PRIME);
        }
    }

    pub fn signed(&mut self, value: i64) {
        self.word(value as u64);
    }

    pub fn finish(&self) -> u64 {
        self.state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_fnv1a_reference_vector() {
        // FNV-1a 64 of eight zero bytes, computed independently byte by byte.
        let mut expected: u64 = OFFSET_BASIS;
        for _ in 0..8 {
            expected = expected.wrapping_mul(PRIME);
        }
        let mut h = StateHasher::new();
        h.word(0);
        assert_eq!(h.finish(), expected);
        assert_ne!(h.finish(), StateHasher::new().finish());
    }

    #[test]
    fn order_of_words_matters() {
        let mut a = StateHasher::new();
        a.word(1);
        a.word(2);
        let mut b = StateHasher::new();
        b.word(2);
        b.word(1);
        assert_ne!(a.finish(), b.finish());
    }
}
