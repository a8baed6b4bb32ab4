//! CPU lists (`0-3,8`) and kernel CPU masks (`ff,00000001`): parsing and formatting.

use std::collections::BTreeSet;

/// Parses a kernel CPU list such as `0-3,8,10-11` (also `0-7:2/4` is *not* supported; the
/// kernel only prints plain ranges). An empty or whitespace-only string is the empty set.
pub fn parse_list(text: &str) -> Result<BTreeSet<u32>, String> {
    let mut out = BTreeSet::new();
    for part in text.trim().split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        match part.split_once('-') {
            Some((a, b)) => {
                let a: u32 = a
                    .trim()
                    .parse()
                    .map_err(|_| format!("bad CPU list `{text}`"))?;
                let b: u32 = b
                    .trim()
                    .parse()
                    .map_err(|_| format!("bad CPU list `{text}`"))?;
                if b < a || b - a > 65_536 {
                    return Err(format!("bad CPU range `{part}`"));
                }
                out.extend(a..=b);
            }
            None => {
                out.insert(part.parse().map_err(|_| format!("bad CPU list `{text}`"))?);
            }
        }
    }
    Ok(out)
}

/// Formats CPUs as a compact kernel list: `0-3,8`. The empty set is the empty string.
pub fn format_list<'a>(cpus: impl IntoIterator<Item = &'a u32>) -> String {
    let set: BTreeSet<u32> = cpus.into_iter().copied().collect();
    let mut parts = Vec::new();
    let mut iter = set.into_iter().peekable();
    while let Some(start) = iter.next() {
        let mut end = start;
        while iter.peek() == Some(&(end + 1)) {
            end += 1;
            iter.next();
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
    }
    parts.join(",")
}

/// Parses a kernel hex CPU mask (`/proc/irq/default_smp_affinity`, workqueue `cpumask`):
/// comma-separated 32-bit groups, most significant first, e.g. `ff,00000001`.
pub fn parse_mask(text: &str) -> Result<BTreeSet<u32>, String> {
    let mut out = BTreeSet::new();
    let groups: Vec<&str> = text.trim().split(',').collect();
    for (i, group) in groups.iter().rev().enumerate() {
        let group = group.trim();
        if group.is_empty() {
            continue;
        }
        let value = u32::from_str_radix(group, 16).map_err(|_| format!("bad CPU mask `{text}`"))?;
        for bit in 0..32 {
            if value & (1 << bit) != 0 {
                out.insert(i as u32 * 32 + bit);
            }
        }
    }
    Ok(out)
}

/// Formats CPUs as a kernel hex mask: groups of 8 hex digits, most significant first; the
/// top group is written without leading zeros (`3`, `1,00000000`). The empty set is `0`.
pub fn format_mask<'a>(cpus: impl IntoIterator<Item = &'a u32>) -> String {
    let set: BTreeSet<u32> = cpus.into_iter().copied().collect();
    let Some(&max) = set.iter().next_back() else {
        return "0".to_string();
    };
    let groups = max / 32 + 1;
    let mut words = vec![0u32; groups as usize];
    for cpu in set {
        words[(cpu / 32) as usize] |= 1 << (cpu % 32);
    }
    let mut parts = Vec::new();
    for (i, word) in words.iter().enumerate().rev() {
        if i + 1 == groups as usize {
            parts.push(format!("{word:x}"));
        } else {
            parts.push(format!("{word:08x}"));
        }
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_round_trip() {
        let set = parse_list("0-3,8,10-11\n").unwrap();
        assert_eq!(
            set.iter().copied().collect::<Vec<_>>(),
            vec![0, 1, 2, 3, 8, 10, 11]
        );
        assert_eq!(format_list(&set), "0-3,8,10-11");
        assert!(parse_list("").unwrap().is_empty());
        assert!(parse_list("3-1").is_err());
        assert!(parse_list("a").is_err());
    }

    #[test]
    fn masks_round_trip() {
        assert_eq!(
            parse_mask("3").unwrap().into_iter().collect::<Vec<_>>(),
            vec![0, 1]
        );
        let set = parse_mask("ff,00000001").unwrap();
        assert_eq!(
            set.iter().copied().collect::<Vec<_>>(),
            vec![0, 32, 33, 34, 35, 36, 37, 38, 39]
        );
        assert_eq!(format_mask(&set), "ff,00000001");
        assert_eq!(format_mask(&parse_mask("00000000,00000003").unwrap()), "3");
        assert_eq!(format_mask(&BTreeSet::new()), "0");
        let all: BTreeSet<u32> = (0..128).collect();
        assert_eq!(format_mask(&all), "ffffffff,ffffffff,ffffffff,ffffffff");
    }
}
