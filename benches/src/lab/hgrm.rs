//! The percentile distribution format (`.hgrm`) that HdrHistogram's
//! `outputPercentileDistribution` and `HistogramLogProcessor` print and its plotter
//! (`plotFiles.html`) reads: a header, one line per percentile step (`ticks_per_half_distance`
//! steps per halving of the distance to 100 %), and a footer with mean, standard deviation, max,
//! total count, buckets and sub-buckets.

use std::fmt::Write as _;

use hdrhistogram::Histogram;

/// Writes `h` as `.hgrm` text; values are divided by `unit_ratio` (1000 for ns → µs) and printed
/// with `sigfig` decimals, as Java's `outputPercentileDistribution(out, 5, ratio)` does.
pub fn format(h: &Histogram<u64>, ticks_per_half_distance: u32, unit_ratio: f64) -> String {
    let d = h.sigfig() as usize;
    let mut o = String::new();
    let _ = write!(
        o,
        "{:>12} {:>14} {:>10} {:>14}\n\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    let mut total = 0u64;
    if !h.is_empty() {
        for v in h.iter_quantiles(ticks_per_half_distance) {
            total += v.count_since_last_iteration();
            let value = v.value_iterated_to() as f64 / unit_ratio;
            let q = v.quantile_iterated_to();
            if q < 1.0 {
                let _ = writeln!(
                    o,
                    "{value:>12.d$} {q:>2.12} {total:>10} {:>14.2}",
                    1.0 / (1.0 - q)
                );
            } else {
                let _ = writeln!(o, "{value:>12.d$} {q:>2.12} {total:>10}");
            }
        }
    }
    let sub_buckets = 1u64 << (2.0 * 10f64.powi(h.sigfig() as i32)).log2().ceil() as u32;
    let _ = writeln!(
        o,
        "#[Mean    = {:>12.d$}, StdDeviation   = {:>12.d$}]",
        h.mean() / unit_ratio,
        h.stdev() / unit_ratio
    );
    let _ = writeln!(
        o,
        "#[Max     = {:>12.d$}, Total count    = {:>12}]",
        h.max() as f64 / unit_ratio,
        h.len()
    );
    let _ = writeln!(
        o,
        "#[Buckets = {:>12}, SubBuckets     = {:>12}]",
        h.buckets(),
        sub_buckets
    );
    o
}

/// One percentile line of a parsed `.hgrm`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Line {
    pub value: f64,
    pub quantile: f64,
    pub total_count: u64,
}

/// A parsed `.hgrm`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Parsed {
    pub lines: Vec<Line>,
    pub mean: f64,
    pub max: f64,
    pub total_count: u64,
}

/// Parses `.hgrm` text (this module's or HdrHistogram's).
pub fn parse(text: &str) -> Result<Parsed, String> {
    let mut p = Parsed::default();
    let num = |s: &str| -> Result<f64, String> {
        s.trim()
            .trim_end_matches(']')
            .parse::<f64>()
            .map_err(|e| format!("{s:?}: {e}"))
    };
    for line in text.lines() {
        let t = line.trim();
        if t.is_empty() || t.starts_with("Value") {
            continue;
        }
        if let Some(rest) = t.strip_prefix("#[") {
            for part in rest.trim_end_matches(']').split(',') {
                let mut kv = part.splitn(2, '=');
                let (k, v) = (kv.next().unwrap_or("").trim(), kv.next().unwrap_or(""));
                match k {
                    "Mean" => p.mean = num(v)?,
                    "Max" => p.max = num(v)?,
                    "Total count" => p.total_count = num(v)? as u64,
                    _ => {}
                }
            }
            continue;
        }
        let f: Vec<&str> = t.split_whitespace().collect();
        if f.len() < 3 {
            return Err(format!("bad line {line:?}"));
        }
        p.lines.push(Line {
            value: num(f[0])?,
            quantile: num(f[1])?,
            total_count: num(f[2])? as u64,
        });
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn footer_and_lines_of_a_known_histogram() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 3).unwrap();
        for v in 1..=1000u64 {
            h.record(v * 1000).unwrap();
        }
        let text = format(&h, 5, 1000.0);
        assert!(text.starts_with("       Value     Percentile TotalCount 1/(1-Percentile)\n\n"));
        let p = parse(&text).unwrap();
        assert_eq!(p.total_count, 1000);
        assert!((p.max - 1000.0).abs() < 1.0, "{}", p.max);
        assert!((p.mean - 500.5).abs() < 0.5, "{}", p.mean);
        let first = p.lines[0];
        assert_eq!(
            (first.value, first.quantile, first.total_count),
            (1.0, 0.0, 1)
        );
        let last = *p.lines.last().unwrap();
        assert_eq!((last.quantile, last.total_count), (1.0, 1000));
        let median = p.lines.iter().find(|l| l.quantile >= 0.5).unwrap();
        assert!((median.value - 500.0).abs() <= 1.0, "{median:?}");
        assert!(text.contains("#[Buckets = "));
        assert!(text.contains("SubBuckets     =         2048]"));
    }
}
