//! The `.hgrm` that tpx-load writes, checked against an independent decoding of the same
//! measurements: the `.hlog` written alongside is parsed with HdrHistogram's interval-log
//! reader (and a base64 decoder of our own), its intervals summed, and every percentile line,
//! the total count, mean and max of the `.hgrm` recomputed from that histogram.

use std::time::SystemTime;

use hdrhistogram::Histogram;
use tpx_benches::lab::{hgrm, hlog, load::new_hist};

/// A long-tailed latency sample (ns), deterministic.
fn measurements() -> Vec<Histogram<u64>> {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..5)
        .map(|sec| {
            let mut h = new_hist();
            for _ in 0..20_000 {
                let r = next();
                let base = 8_000 + (r % 4_000);
                // 1% of samples 10-100x slower, 0.01% up to 5 ms.
                let v = match r % 10_000 {
                    0 => base * 300 + (r >> 20) % 2_000_000,
                    1..=99 => base * (10 + (r >> 32) % 90),
                    _ => base,
                };
                h.record(v + sec * 100).unwrap();
            }
            h
        })
        .collect()
}

#[test]
fn hgrm_matches_an_independent_decoding_of_the_hlog() {
    let per_second = measurements();
    // What tpx-load does: one `.hlog` of the intervals, one `.hgrm` of their sum.
    let mut total = new_hist();
    let mut intervals = Vec::new();
    for (i, h) in per_second.iter().enumerate() {
        total.add(h).unwrap();
        intervals.push(hlog::Interval {
            start_s: i as f64,
            duration_s: 1.0,
            tag: None,
            hist: h.clone(),
        });
        intervals.push(hlog::Interval {
            start_s: i as f64,
            duration_s: 1.0,
            tag: Some("service".into()),
            hist: h.clone(),
        });
    }
    let mut log = Vec::new();
    hlog::write(&mut log, SystemTime::now(), "test", &intervals).unwrap();
    let hgrm_text = hgrm::format(&total, 5, 1000.0);

    // Independent decoding of the log: the untagged intervals, summed.
    let decoded = hlog::read(&log).unwrap();
    assert_eq!(decoded.len(), 10);
    let mut h = new_hist();
    for i in decoded.iter().filter(|i| i.tag.is_none()) {
        h.add(&i.hist).unwrap();
    }
    assert_eq!(h.len(), 100_000);

    let parsed = hgrm::parse(&hgrm_text).unwrap();
    assert_eq!(parsed.total_count, h.len());
    assert!((parsed.max * 1000.0 - h.max() as f64).abs() <= 1.0);
    assert!((parsed.mean * 1000.0 - h.mean()).abs() <= 1.0);
    assert!(parsed.lines.len() > 50, "{} lines", parsed.lines.len());
    let mut last_q = -1.0;
    for line in &parsed.lines {
        assert!(line.quantile >= last_q, "quantiles ascend");
        last_q = line.quantile;
        let value_ns = line.value * 1000.0;
        // The value at this percentile, recomputed.
        let expect = h.value_at_quantile(line.quantile) as f64;
        assert!(
            (value_ns - expect).abs() <= (expect * 0.001).max(1.0),
            "{line:?}: recomputed {expect}"
        );
        // The count at or below it.
        let below: u64 = h
            .iter_recorded()
            .take_while(|v| v.value_iterated_to() as f64 <= value_ns + 0.5)
            .map(|v| v.count_at_value())
            .sum();
        assert_eq!(line.total_count, below, "{line:?}");
    }
    let last = parsed.lines.last().unwrap();
    assert_eq!((last.quantile, last.total_count), (1.0, h.len()));
    // The tail is really there: p99.99 is far above the median.
    let p50 = parsed
        .lines
        .iter()
        .find(|l| l.quantile >= 0.5)
        .unwrap()
        .value;
    let p9999 = parsed
        .lines
        .iter()
        .find(|l| l.quantile >= 0.9999)
        .unwrap()
        .value;
    assert!(p9999 > 50.0 * p50, "p50 {p50} p99.99 {p9999}");
}
