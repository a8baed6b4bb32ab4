//! HdrHistogram interval logs (`.hlog`): one V2-deflate histogram per interval, in the format
//! of Java's `HistogramLogWriter` (`HistogramLogProcessor` and `HistogramLogAnalyzer` read it).
//! The untagged histograms are the coordinated-omission-corrected latency; `service`-tagged
//! ones the service time (from the actual send).

use std::io::Write;
use std::time::{Duration, SystemTime};

use hdrhistogram::serialization::interval_log::{
    IntervalLogIterator, IntervalLogWriterBuilder, LogEntry, Tag,
};
use hdrhistogram::serialization::{Deserializer, V2DeflateSerializer};
use hdrhistogram::Histogram;

/// One interval of a log.
#[derive(Clone, Debug)]
pub struct Interval {
    /// Seconds since the log's base time.
    pub start_s: f64,
    pub duration_s: f64,
    pub tag: Option<String>,
    pub hist: Histogram<u64>,
}

/// Writes a whole log (intervals in order) to `w`. `start` is the log's StartTime and BaseTime;
/// values are in nanoseconds (`max_value_divisor` 1000 makes the interval lines' max µs).
pub fn write(
    w: &mut impl Write,
    start: SystemTime,
    comment: &str,
    intervals: &[Interval],
) -> Result<(), String> {
    let mut ser = V2DeflateSerializer::new();
    let mut b = IntervalLogWriterBuilder::new();
    b.add_comment(comment)
        .with_start_time(start)
        .with_base_time(start)
        .with_max_value_divisor(1000.0);
    let mut lw = b
        .begin_log_with(w, &mut ser)
        .map_err(|e| format!("hlog: {e:?}"))?;
    for i in intervals {
        let tag = i.tag.as_deref().and_then(Tag::new);
        lw.write_histogram(
            &i.hist,
            Duration::from_secs_f64(i.start_s),
            Duration::from_secs_f64(i.duration_s),
            tag,
        )
        .map_err(|e| format!("hlog: {e:?}"))?;
    }
    Ok(())
}

/// Reads every interval histogram of a log (for tests and tools).
pub fn read(bytes: &[u8]) -> Result<Vec<Interval>, String> {
    let mut de = Deserializer::new();
    let mut out = Vec::new();
    for e in IntervalLogIterator::new(bytes) {
        match e.map_err(|e| format!("hlog: {e:?}"))? {
            LogEntry::Interval(ih) => {
                let raw = base64_decode(ih.encoded_histogram())?;
                let hist: Histogram<u64> = de
                    .deserialize(&mut &raw[..])
                    .map_err(|e| format!("hlog histogram: {e:?}"))?;
                out.push(Interval {
                    start_s: ih.start_timestamp().as_secs_f64(),
                    duration_s: ih.duration().as_secs_f64(),
                    tag: ih.tag().map(|t| t.as_str().to_string()),
                    hist,
                });
            }
            _ => continue,
        }
    }
    Ok(out)
}

/// Standard base64 (the interval log's encoding), decoded by hand to keep the reader independent
/// of the writer's dependencies.
pub fn base64_decode(s: &str) -> Result<Vec<u8>, String> {
    let val = |c: u8| -> Result<u32, String> {
        Ok(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return Err(format!("bad base64 byte {c}")),
        } as u32)
    };
    let bytes: Vec<u8> = s.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let pad = chunk.iter().filter(|&&c| c == b'=').count();
        let mut n = 0u32;
        for (k, &c) in chunk.iter().enumerate() {
            n |= if c == b'=' { 0 } else { val(c)? } << (18 - 6 * k);
        }
        let b = n.to_be_bytes();
        out.extend_from_slice(&b[1..4 - pad]);
    }
    Ok(out)
}
