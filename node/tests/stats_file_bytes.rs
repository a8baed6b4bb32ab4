//! The stats file is read by another process (`tpx stat`, the Prometheus thread): its bytes
//! are outside input to the reader. Whatever a file holds behind a valid magic and version
//! (header sizes that do not fit together, counters and histograms at any value, a TSC rate
//! that is NaN or zero), `StatsMap::open` refuses it with an error or the readers (the
//! snapshot `tpx stat` prints, the Prometheus page) return without a panic. (The fuzz crate
//! does not build the node, so this bounded proptest stands in for a libFuzzer target; see
//! `fuzz/README.md`.)

use proptest::prelude::*;
use tpx_node::observe::prometheus::{render, NodeGauges};
use tpx_node::observe::stats::{
    StatsMap, BUCKETS, COUNTERS, HEADER_WORDS, MAGIC, TRACE_WORDS, VERSION,
};

/// Header word indexes (`observe::stats`'s private `h`): cores, TSC rate, trace slots, block words.
const CORES: usize = 2;
const TSC_HZ_BITS: usize = 4;
const TRACE_SLOTS: usize = 6;
const BLOCK_WORDS: usize = 7;

fn word() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(1),
        Just(u64::MAX),
        Just(u64::MAX / 2),
        Just(f64::NAN.to_bits()),
        Just(f64::INFINITY.to_bits()),
        Just((-1.0f64).to_bits()),
        any::<u64>(),
        0u64..5_000,
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_stats_file_is_refused_or_read_without_a_panic(
        cores in prop_oneof![0u64..4, Just(1u64 << 62), any::<u64>()],
        slots in prop_oneof![Just(0u64), Just(1), Just(3), Just(4), Just(1 << 40), any::<u64>()],
        block in prop_oneof![Just(None), Just(Some(1u64)), any::<u64>().prop_map(Some)],
        body in proptest::collection::vec(word(), 0..64),
        extra_words in 0usize..8,
        tsc in word(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.stats");
        // A block that fits the slots (the file's own layout) unless `block` says otherwise.
        let fitting = ((COUNTERS + 5 * BUCKETS + 8) as u64).saturating_add(slots.saturating_mul(TRACE_WORDS as u64));
        let block = block.unwrap_or(fitting);
        let body_words = (cores.min(3) as usize).saturating_mul((fitting.min(1 << 14)) as usize);
        let words = HEADER_WORDS + body_words.min(1 << 16) + extra_words;
        let mut file = vec![0u64; words];
        file[0] = MAGIC;
        file[1] = VERSION;
        file[CORES] = cores;
        file[TSC_HZ_BITS] = tsc;
        file[TRACE_SLOTS] = slots;
        file[BLOCK_WORDS] = block;
        for (i, w) in body.iter().enumerate() {
            // Spread the chosen words over the header's counters and the blocks.
            let at = 16 + i * 97 % (words - 16);
            file[at] = *w;
        }
        let bytes: Vec<u8> = file.iter().flat_map(|w| w.to_le_bytes()).collect();
        std::fs::write(&path, bytes).unwrap();
        if let Ok(map) = StatsMap::open(&path) {
            let snap = map.snapshot();
            prop_assert!(snap.cores.len() <= map.cores());
            let page = render(&map, &NodeGauges::default());
            prop_assert!(page.contains("tpx_sequenced_total"));
        }
    }
}
