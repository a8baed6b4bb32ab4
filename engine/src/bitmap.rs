//! A hierarchical bitmap over the levels of a price ladder: which levels hold orders.
//!
//! Layer 0 has one bit per level; bit `j` of layer `k + 1` is set iff word `j` of layer `k` is
//! non-zero. The top layer is a single word, so finding the next or previous set bit from any
//! position costs at most `2 * layers` word reads (`layers = ceil(log64(levels))`, 4 for 16 M
//! levels). All layers live in one flat vector.

/// The most layers a bitmap may have (64^6 positions).
const MAX_LAYERS: usize = 6;

use crate::memory::Table;

#[derive(Clone, Debug)]
pub(crate) struct LevelBitmap {
    words: Table<u64>,
    /// Start of each layer in `words`.
    offset: [usize; MAX_LAYERS],
    /// Number of words in each layer.
    len: [usize; MAX_LAYERS],
    layers: usize,
    bits: usize,
}

impl LevelBitmap {
    /// A bitmap of `bits` clear positions (`1 <= bits <= 64^MAX_LAYERS`).
    pub(crate) fn new(bits: usize) -> LevelBitmap {
        let mut offset = [0; MAX_LAYERS];
        let mut len = [0; MAX_LAYERS];
        let mut layers = 0;
        let mut total = 0;
        let mut n = bits.max(1);
        loop {
            let words = n.div_ceil(64);
            offset[layers] = total;
            len[layers] = words;
            total += words;
            layers += 1;
            if words == 1 || layers == MAX_LAYERS {
                break;
            }
            n = words;
        }
        LevelBitmap {
            words: Table::zeroed(total),
            offset,
            len,
            layers,
            bits,
        }
    }

    /// Number of positions.
    pub(crate) fn bits(&self) -> usize {
        self.bits
    }

    #[inline]
    fn word(&self, layer: usize, index: usize) -> u64 {
        self.words[self.offset[layer] + index]
    }

    /// The layer-0 word holding `pos` (for a prefetch; `pos` must be a valid position).
    #[inline]
    pub(crate) fn word_of(&self, pos: u32) -> &u64 {
        &self.words[pos as usize >> 6]
    }

    #[inline]
    pub(crate) fn get(&self, pos: u32) -> bool {
        let pos = pos as usize;
        self.word(0, pos >> 6) & (1 << (pos & 63)) != 0
    }

    #[inline]
    pub(crate) fn set(&mut self, pos: u32) {
        let mut pos = pos as usize;
        for layer in 0..self.layers {
            let w = &mut self.words[self.offset[layer] + (pos >> 6)];
            let was = *w;
            *w = was | (1 << (pos & 63));
            if was != 0 {
                return;
            }
            pos >>= 6;
        }
    }

    #[inline]
    pub(crate) fn clear(&mut self, pos: u32) {
        let mut pos = pos as usize;
        for layer in 0..self.layers {
            let w = &mut self.words[self.offset[layer] + (pos >> 6)];
            *w &= !(1 << (pos & 63));
            if *w != 0 {
                return;
            }
            pos >>= 6;
        }
    }

    /// The lowest set position `>= pos`, if any (`pos` may be past the end).
    #[inline]
    pub(crate) fn next_at_or_after(&self, pos: u32) -> Option<u32> {
        let mut pos = pos as usize;
        let mut layer = 0;
        loop {
            let word = pos >> 6;
            if word >= self.len[layer] {
                return None;
            }
            let bits = self.word(layer, word) & (u64::MAX << (pos & 63));
            if bits != 0 {
                pos = (word << 6) | bits.trailing_zeros() as usize;
                break;
            }
            layer += 1;
            if layer == self.layers {
                return None;
            }
            pos = word + 1;
        }
        while layer > 0 {
            layer -= 1;
            pos = (pos << 6) | self.word(layer, pos).trailing_zeros() as usize;
        }
        Some(pos as u32)
    }

    /// The highest set position `<= pos`, if any (`pos` must be a valid position).
    #[inline]
    pub(crate) fn prev_at_or_before(&self, pos: u32) -> Option<u32> {
        let mut pos = pos as usize;
        let mut layer = 0;
        loop {
            let word = pos >> 6;
            let bits = self.word(layer, word) & (u64::MAX >> (63 - (pos & 63)));
            if bits != 0 {
                pos = (word << 6) | (63 - bits.leading_zeros() as usize);
                break;
            }
            if word == 0 {
                return None;
            }
            layer += 1;
            if layer == self.layers {
                return None;
            }
            pos = word - 1;
        }
        while layer > 0 {
            layer -= 1;
            pos = (pos << 6) | (63 - self.word(layer, pos).leading_zeros() as usize);
        }
        Some(pos as u32)
    }

    /// Checks that every upper-layer bit says exactly whether its word below is non-zero and
    /// that no bit past the end is set. O(words).
    pub(crate) fn check(&self) -> Result<(), String> {
        for layer in 0..self.layers {
            let below = if layer == 0 {
                self.bits
            } else {
                self.len[layer - 1]
            };
            for index in 0..self.len[layer] {
                let first = index * 64;
                let valid = below.saturating_sub(first).min(64);
                let mask = if valid == 64 {
                    u64::MAX
                } else {
                    (1u64 << valid) - 1
                };
                let w = self.word(layer, index);
                if w & !mask != 0 {
                    return Err(format!("bitmap layer {layer}: bits past the end set"));
                }
                if layer > 0 {
                    let mut expected = 0u64;
                    for bit in 0..valid {
                        if self.word(layer - 1, first + bit) != 0 {
                            expected |= 1 << bit;
                        }
                    }
                    if w != expected {
                        return Err(format!("bitmap layer {layer}: word {index} disagrees"));
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive_next(set: &[bool], pos: usize) -> Option<u32> {
        (pos..set.len()).find(|&i| set[i]).map(|i| i as u32)
    }

    fn naive_prev(set: &[bool], pos: usize) -> Option<u32> {
        (0..=pos).rev().find(|&i| set[i]).map(|i| i as u32)
    }

    #[test]
    fn agrees_with_a_naive_scan() {
        for &bits in &[1usize, 5, 64, 65, 4096, 4097, 300_000] {
            let mut bm = LevelBitmap::new(bits);
            let mut naive = vec![false; bits];
            // A deterministic pseudo-random walk of sets and clears.
            let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
            for _ in 0..2_000 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let pos = (x % bits as u64) as usize;
                if x & (1 << 40) != 0 {
                    bm.set(pos as u32);
                    naive[pos] = true;
                } else {
                    bm.clear(pos as u32);
                    naive[pos] = false;
                }
                let probe = ((x >> 20) % bits as u64) as usize;
                assert_eq!(bm.next_at_or_after(probe as u32), naive_next(&naive, probe));
                assert_eq!(
                    bm.prev_at_or_before(probe as u32),
                    naive_prev(&naive, probe)
                );
                assert_eq!(bm.get(pos as u32), naive[pos]);
            }
            assert_eq!(bm.next_at_or_after(bits as u32), None);
            assert_eq!(bm.next_at_or_after(bits as u32 + 64), None);
            bm.check().unwrap();
        }
    }

    #[test]
    fn extremes() {
        let mut bm = LevelBitmap::new(262_145);
        assert_eq!(bm.next_at_or_after(0), None);
        assert_eq!(bm.prev_at_or_before(262_144), None);
        bm.set(262_144);
        bm.set(0);
        assert_eq!(bm.next_at_or_after(1), Some(262_144));
        assert_eq!(bm.prev_at_or_before(262_143), Some(0));
        bm.clear(0);
        assert_eq!(bm.prev_at_or_before(262_143), None);
        bm.clear(262_144);
        assert_eq!(bm.next_at_or_after(0), None);
        bm.check().unwrap();
    }
}
