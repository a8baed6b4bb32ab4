//! `tpx admin`: the operator's risk inputs over an admin session (see `tpx_client::admin` and
//! `docs/OPERATIONS.md`, "Admin requests").
//!
//! ```sh
//! tpx admin deposit  --connect 127.0.0.1:9100 --account-id 100 --token-file admin.token \
//!     --request-id 1 --account 1 --asset 1 --amount 1000000000 --shard 0
//! tpx admin mark     ... --request-id 2 --instrument 3 --price 60000
//! tpx admin fee-tier ... --request-id 3 --account 1 --tier 1 --shard all
//! ```
//!
//! Prints one line per answer (`accepted ...` or `rejected ...`) and fails (exit 1) on a reject.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tpx_client::admin::{self, AdminAnswer};
use tpx_client::{token_from_str, Client, ClientConfig};
use tpx_wire::order_entry::ClientMessage;

/// What to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdminAction {
    Deposit {
        account: u32,
        asset: u32,
        amount: u64,
        shard: u16,
    },
    Withdraw {
        account: u32,
        asset: u32,
        amount: u64,
        shard: u16,
    },
    Mark {
        instrument: u32,
        price: i64,
    },
    Funding {
        instrument: u32,
        rate_ppm: i64,
    },
    Liquidate {
        account: u32,
        instrument: u32,
        cl_ord_id: u64,
        price: i64,
    },
    /// `shard` [`admin::ALL_SHARDS`]: every shard.
    FeeTier {
        account: u32,
        tier: u8,
        shard: u16,
    },
}

impl AdminAction {
    /// The request for `request_id`.
    pub fn message(&self, request_id: u64) -> ClientMessage {
        match *self {
            AdminAction::Deposit {
                account,
                asset,
                amount,
                shard,
            } => admin::deposit(request_id, account, asset, amount, shard),
            AdminAction::Withdraw {
                account,
                asset,
                amount,
                shard,
            } => admin::withdraw(request_id, account, asset, amount, shard),
            AdminAction::Mark { instrument, price } => {
                admin::set_mark_price(request_id, instrument, price)
            }
            AdminAction::Funding {
                instrument,
                rate_ppm,
            } => admin::apply_funding(request_id, instrument, rate_ppm),
            AdminAction::Liquidate {
                account,
                instrument,
                cl_ord_id,
                price,
            } => admin::liquidate(request_id, account, instrument, cl_ord_id, price),
            AdminAction::FeeTier {
                account,
                tier,
                shard,
            } => admin::set_fee_tier(request_id, account, tier, shard),
        }
    }
}

/// A shard argument: a number or `all`.
pub fn parse_shard(s: &str) -> Result<u16, String> {
    if s.eq_ignore_ascii_case("all") {
        return Ok(admin::ALL_SHARDS);
    }
    s.parse::<u16>()
        .map_err(|e| format!("shard {s:?}: {e} (a number or `all`)"))
}

/// One answer as `tpx admin` prints it.
pub fn answer_line(a: &AdminAnswer) -> String {
    match a {
        AdminAnswer::Accepted(x) => format!(
            "accepted request_id={} request={:?} account={} shard={} available={} held={}",
            x.request_id, x.request, x.account, x.shard, x.available, x.held
        ),
        AdminAnswer::Rejected(r) => format!(
            "rejected request_id={} request={:?} reason={:?}",
            r.cl_ord_id, r.request, r.reason
        ),
    }
}

/// Where and as whom `tpx admin` connects.
#[derive(Clone, Debug)]
pub struct AdminOptions {
    pub connect: SocketAddr,
    pub account_id: u32,
    pub session_id: u32,
    pub token_file: PathBuf,
    pub request_id: u64,
    pub timeout: Duration,
}

/// Sends one admin request and prints its answer(s); `Err` on a reject or no answer.
pub fn run(opts: &AdminOptions, action: &AdminAction) -> Result<(), String> {
    let token = std::fs::read_to_string(&opts.token_file)
        .map_err(|e| format!("reading {}: {e}", opts.token_file.display()))?;
    let cfg = ClientConfig::new(
        opts.connect,
        opts.account_id,
        opts.session_id,
        token_from_str(token.trim()),
    );
    // No replay: only this request's answers are of interest.
    let mut c = Client::connect_at(cfg, 0).map_err(|e| format!("login: {e}"))?;
    let msg = action.message(opts.request_id);
    let first = c.admin(&msg, opts.timeout).map_err(|e| e.to_string())?;
    println!("{}", answer_line(&first));
    let mut rejected = matches!(first, AdminAnswer::Rejected(_));
    if matches!(
        action,
        AdminAction::FeeTier {
            shard: admin::ALL_SHARDS,
            ..
        }
    ) && !rejected
    {
        // One answer per shard: print those that follow within half a second of the last.
        let mut until = Instant::now() + Duration::from_millis(500);
        while let Ok(m) = c.recv(until.saturating_duration_since(Instant::now())) {
            if let Some(admin::AdminEvent::Answer(a)) =
                admin::admin_event(&m, Some(opts.request_id))
            {
                println!("{}", answer_line(&a));
                rejected |= matches!(a, AdminAnswer::Rejected(_));
                until = Instant::now() + Duration::from_millis(500);
            }
        }
    }
    let _ = c.logout(Duration::from_secs(1));
    if rejected {
        return Err("the node refused the request".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_and_messages() {
        assert_eq!(parse_shard("all"), Ok(admin::ALL_SHARDS));
        assert_eq!(parse_shard("3"), Ok(3));
        assert!(parse_shard("x").is_err());
        let m = AdminAction::Funding {
            instrument: 3,
            rate_ppm: -5,
        }
        .message(9);
        assert_eq!(admin::request_id_of(&m), Some(9));
        assert!(matches!(m, ClientMessage::AdminApplyFunding(f) if f.rate_ppm == -5));
    }
}
