//! `tpx up` with risk on: the demo's admin account and the deposits that fund every demo
//! account at start, sent as admin requests (so they go through the log: a standby and a
//! restart have the same balances, and a restart on the same log re-sends them harmlessly,
//! answered `DuplicateRequest`).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tpx_client::admin::{self, AdminAnswer, AdminEvent};
use tpx_client::{token_from_str, Client, ClientConfig, ClientError};
use tpx_wire::enums::RejectReason;

use tpx_node::config::{NodeConfig, ASSET_BTC, ASSET_ETH, ASSET_USDT};
use tpx_node::gateway::accounts::DemoAccount;

/// The demo's admin account (`admin = true`; token `demo-admin-token`).
pub fn demo_admin() -> DemoAccount {
    DemoAccount {
        id: 100,
        name: "demo-admin".into(),
        token: "demo-admin-token".into(),
        admin: true,
    }
}

/// What each demo account is given of an asset on every shard that uses it (minor units):
/// 10,000,000 USDT, 1,000 BTC, 10,000 ETH (far more than the demo's orders need, so its
/// balance and margin rejects stay ~0); other assets 10^12.
pub fn demo_amount(asset: u32) -> u64 {
    match asset {
        ASSET_USDT => 10_000_000 * 1_000_000,
        ASSET_BTC => 1_000 * 100_000_000,
        ASSET_ETH => 10_000 * 1_000_000_000,
        _ => 1_000_000_000_000,
    }
}

/// `(shard, asset)` pairs of the node's balances: per shard, the assets its instruments use
/// (instruments dealt to shards as `Node::start` deals them).
pub fn shard_assets(cfg: &NodeConfig) -> Result<Vec<(u16, u32)>, String> {
    let shards = cfg.plan()?.shard_count().max(1);
    let mut out: Vec<(u16, u32)> = Vec::new();
    for (k, ic) in cfg.instruments().iter().enumerate() {
        let shard = ic.shard.unwrap_or(k as u32 % shards) as u16;
        let assets = if ic.kind == "spot" {
            vec![ic.base, ic.quote]
        } else {
            vec![ic.settle]
        };
        for a in assets {
            if !out.contains(&(shard, a)) {
                out.push((shard, a));
            }
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// How the funding went.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Funded {
    pub accepted: u32,
    /// Already applied (a restart on the same log).
    pub duplicates: u32,
    pub rejected: u32,
}

/// Deposits [`demo_amount`] of every `(shard, asset)` to every account, as `admin`, through the
/// node at `addr`. Request ids `1..` per account in `(shard, asset)` order (deposits are
/// idempotent by them).
pub fn fund(
    addr: SocketAddr,
    admin_acct: &DemoAccount,
    accounts: &[DemoAccount],
    balances: &[(u16, u32)],
) -> Result<Funded, String> {
    let cfg = ClientConfig::new(addr, admin_acct.id, 1, token_from_str(&admin_acct.token));
    let mut c = Client::connect_at(cfg, 0).map_err(|e| format!("admin login: {e}"))?;
    let mut want = 0u32;
    for a in accounts {
        for (k, &(shard, asset)) in balances.iter().enumerate() {
            c.queue(&admin::deposit(
                k as u64 + 1,
                a.id,
                asset,
                demo_amount(asset),
                shard,
            ));
            want += 1;
        }
    }
    c.flush_blocking(Duration::from_secs(5))
        .map_err(|e| e.to_string())?;
    let mut f = Funded::default();
    let deadline = Instant::now() + Duration::from_secs(20);
    while f.accepted + f.duplicates + f.rejected < want {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!(
                "funding: {} of {want} deposits answered",
                f.accepted + f.duplicates + f.rejected
            ));
        }
        match c.recv(left) {
            Ok(m) => match admin::admin_event(&m, None) {
                Some(AdminEvent::Answer(AdminAnswer::Accepted(_))) => f.accepted += 1,
                Some(AdminEvent::Answer(AdminAnswer::Rejected(r)))
                    if r.reason == RejectReason::DuplicateRequest =>
                {
                    f.duplicates += 1
                }
                Some(AdminEvent::Answer(AdminAnswer::Rejected(_))) => f.rejected += 1,
                _ => {}
            },
            Err(ClientError::Timeout) => {}
            Err(e) => return Err(format!("funding: {e}")),
        }
    }
    let _ = c.logout(Duration::from_secs(1));
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shard_gets_the_assets_of_its_instruments() {
        let mut cfg = NodeConfig {
            core_plan: Some(tpx_node::config::CorePlan::for_cpus(&[0, 1, 2])),
            ..NodeConfig::default()
        };
        // Two shards: BTC-USDT and BTC-PERP on 0, ETH-USDT and ETH-PERP on 1.
        assert_eq!(
            shard_assets(&cfg).unwrap(),
            vec![(0, 1), (0, 2), (1, 1), (1, 3)]
        );
        cfg.core_plan = Some(tpx_node::config::CorePlan::single(0));
        assert_eq!(shard_assets(&cfg).unwrap(), vec![(0, 1), (0, 2), (0, 3)]);
    }
}
