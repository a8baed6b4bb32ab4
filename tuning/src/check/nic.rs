//! NIC items (ENA): interrupt moderation off (adaptive-rx off, rx-usecs 0, tx-usecs 0) and ENA
//! Express off. Read with `ethtool` when it is installed; the driver and NUMA node from sysfs.
//! A NIC that is not ENA gets N/A: other drivers (virtio_net) take other settings, or none.

use super::source::*;
use super::{CheckContext, CheckItem, Fix, Status};
use crate::hw::default_route_iface;
use crate::sys::SysSource;
use std::collections::BTreeMap;

/// The interface to check: `--iface`, else the plan's NIC, else the default-route interface.
pub fn nic_iface(sys: &dyn SysSource, ctx: &CheckContext) -> Option<String> {
    ctx.iface
        .clone()
        .or_else(|| ctx.plan.nic.as_ref().map(|n| n.name.clone()))
        .or_else(|| default_route_iface(sys))
}

/// Parses `ethtool -c` output into `key -> value` (`adaptive-rx`, `adaptive-tx`, `rx-usecs`,
/// `tx-usecs`, ...).
pub fn parse_coalesce(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("Adaptive RX:") {
            // "Adaptive RX: off  TX: off"
            let mut parts = rest.split("TX:");
            if let Some(rx) = parts.next() {
                out.insert("adaptive-rx".to_string(), rx.trim().to_string());
            }
            if let Some(tx) = parts.next() {
                out.insert("adaptive-tx".to_string(), tx.trim().to_string());
            }
        } else if let Some((k, v)) = line.split_once(':') {
            if !k.contains(' ') {
                out.insert(k.trim().to_string(), v.trim().to_string());
            }
        }
    }
    out
}

fn ethtool_stat(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let (k, v) = l.trim().split_once(':')?;
        (k.trim() == key).then(|| v.trim().to_string())
    })
}

/// The NIC item ids, in report order.
pub const NIC_ITEMS: &[&str] = &[
    "nic.adaptive_rx",
    "nic.rx_usecs",
    "nic.tx_usecs",
    "nic.ena_express",
];

pub(super) fn nic_items(sys: &dyn SysSource, ctx: &CheckContext) -> Vec<CheckItem> {
    let expected = |id: &str| match id {
        "nic.adaptive_rx" => "off",
        "nic.ena_express" => "off (ena_srd_mode bit 0 clear)",
        _ => "0",
    };
    let src = |id: &str| {
        if id == "nic.ena_express" {
            ENA_EXPRESS
        } else {
            ENA_BEST_PRACTICES
        }
    };
    let all_na = |why: String| -> Vec<CheckItem> {
        NIC_ITEMS
            .iter()
            .map(|id| {
                CheckItem::new(
                    id,
                    Status::NotApplicable,
                    why.clone(),
                    expected(id),
                    if *id == "nic.ena_express" {
                        Fix::Manual
                    } else {
                        Fix::Runtime
                    },
                    src(id),
                )
            })
            .collect()
    };
    let Some(iface) = nic_iface(sys, ctx) else {
        return all_na("no NIC (no --iface, none in the plan, no default route)".to_string());
    };
    let driver = sys
        .link(&format!("/sys/class/net/{iface}/device/driver"))
        .map(|t| t.rsplit('/').next().unwrap_or(&t).to_string());
    let Some(driver) = driver else {
        return all_na(format!("{iface}: no driver in sysfs"));
    };
    if driver != "ena" {
        return all_na(format!("{iface}: driver {driver} (not ENA)"));
    }
    let mut items = Vec::new();
    match sys.command("ethtool", &["-c", &iface]) {
        None => {
            let why = format!(
                "{iface} (ena): `ethtool -c` unavailable; coalescing is not exposed in sysfs"
            );
            items.extend(all_na(why).into_iter().take(3));
        }
        Some(text) => {
            let c = parse_coalesce(&text);
            for (id, key, want) in [
                ("nic.adaptive_rx", "adaptive-rx", "off"),
                ("nic.rx_usecs", "rx-usecs", "0"),
                ("nic.tx_usecs", "tx-usecs", "0"),
            ] {
                items.push(match c.get(key) {
                    None => CheckItem::new(
                        id,
                        Status::NotApplicable,
                        format!("{iface}: {key} not reported"),
                        want,
                        Fix::Runtime,
                        ENA_BEST_PRACTICES,
                    ),
                    Some(v) => CheckItem::new(
                        id,
                        if v == want {
                            Status::Pass
                        } else {
                            Status::Fail
                        },
                        format!("{iface}: {key} {v}"),
                        want,
                        Fix::Runtime,
                        ENA_BEST_PRACTICES,
                    ),
                });
            }
        }
    }
    let id = "nic.ena_express";
    items.push(
        match sys
            .command("ethtool", &["-S", &iface])
            .as_deref()
            .map(|t| ethtool_stat(t, "ena_srd_mode"))
        {
            None => CheckItem::new(
                id,
                Status::NotApplicable,
                format!("{iface}: `ethtool -S` unavailable"),
                expected(id),
                Fix::Manual,
                ENA_EXPRESS,
            ),
            Some(None) => CheckItem::new(
                id,
                Status::NotApplicable,
                format!("{iface}: no ena_srd_mode (ENA Express unsupported here or driver < 2.8)"),
                expected(id),
                Fix::Manual,
                ENA_EXPRESS,
            ),
            Some(Some(mode)) => {
                let on = mode.parse::<u64>().map_or(true, |m| m & 1 == 1);
                CheckItem::new(
                    id,
                    if on { Status::Fail } else { Status::Pass },
                    format!("{iface}: ena_srd_mode {mode}"),
                    expected(id),
                    Fix::Manual,
                    ENA_EXPRESS,
                )
            }
        },
    );
    items
}
