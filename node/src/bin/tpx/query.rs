//! `tpx query`: order status, open orders, balances and positions of an account, answered from
//! the node's state without entering the log (see `tpx_client::query`, `docs/PROTOCOL.md`,
//! "Queries").
//!
//! ```sh
//! tpx query open      --connect 127.0.0.1:9100 --account-id 1 --token-file t1.token [--instrument 1]
//! tpx query order     ... --cl-ord-id 1001
//! tpx query balances  ...
//! tpx query positions ...
//! ```
//!
//! Logs in on its own session (`--session-id`, default 65535: not a trading session's, which
//! would be `SessionInUse` while that one is connected) without replay, prints one line per
//! answer and a `done` line, and fails (exit 1) when the query is refused.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use tpx_client::{token_from_str, Client, ClientConfig, QueryAnswer};
use tpx_wire::query::QueryDone;

/// What to ask.
#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum QueryWhat {
    /// One order by its client order id (nothing printed but `done count=0`: not live).
    Order {
        #[arg(long)]
        cl_ord_id: u64,
    },
    /// The account's live orders (every session's), on every instrument or on one.
    Open {
        #[arg(long)]
        instrument: Option<u32>,
    },
    /// The account's balances, per shard and asset (risk on).
    Balances,
    /// The account's non-zero perpetual positions (risk on).
    Positions,
}

/// `tpx query`'s arguments.
#[derive(Args, Debug)]
pub struct QueryArgs {
    #[command(subcommand)]
    pub what: QueryWhat,
    /// The node's order-entry address (the primary's).
    #[arg(long, global = true, default_value = "127.0.0.1:9100")]
    pub connect: SocketAddr,
    /// The account asked about (the session's).
    #[arg(long, global = true, default_value_t = 0)]
    pub account_id: u32,
    /// The session to log in on: one of its own, not a connected trading session's.
    #[arg(long, global = true, default_value_t = 65_535)]
    pub session_id: u32,
    /// A file holding the account's login token (text; surrounding whitespace ignored).
    #[arg(long, global = true, default_value = "account.token")]
    pub token_file: PathBuf,
    /// Echoed in every answer.
    #[arg(long, global = true, default_value_t = 1)]
    pub request_id: u64,
    /// Seconds to wait for the answer.
    #[arg(long, global = true, default_value_t = 5)]
    pub timeout: u64,
}

fn done_line(d: &Option<QueryDone>) -> String {
    match d {
        Some(d) => format!(
            "done request_id={} count={} as_of_seq={}",
            d.request_id, d.count, d.as_of_seq
        ),
        None => "done (none)".into(),
    }
}

fn finish<T>(a: &QueryAnswer<T>, line: impl Fn(&T) -> String) -> Result<u8, String> {
    for t in &a.items {
        println!("{}", line(t));
    }
    if let Some(r) = a.rejected {
        return Err(format!("rejected reason={r:?}"));
    }
    println!("{}", done_line(&a.done));
    Ok(0)
}

/// Logs in, asks, prints; `Ok(exit code)`.
pub fn run(args: &QueryArgs) -> Result<u8, String> {
    if args.request_id == 0 {
        return Err("--request-id must be non-zero".into());
    }
    let token = std::fs::read_to_string(&args.token_file)
        .map_err(|e| format!("reading {}: {e}", args.token_file.display()))?;
    let cfg = ClientConfig::new(
        args.connect,
        args.account_id,
        args.session_id,
        token_from_str(token.trim()),
    );
    let mut c = Client::connect_at(cfg, 0).map_err(|e| format!("login: {e}"))?;
    let t = Duration::from_secs(args.timeout);
    let id = args.request_id;
    let err = |e: tpx_client::ClientError| format!("query: {e}");
    let code = match args.what {
        QueryWhat::Order { cl_ord_id } => {
            let a = c.order_status(id, cl_ord_id, t).map_err(err)?;
            finish(&a, order_line)?
        }
        QueryWhat::Open { instrument } => {
            let a = c.open_orders(id, instrument, t).map_err(err)?;
            finish(&a, order_line)?
        }
        QueryWhat::Balances => {
            let a = c.balances(id, t).map_err(err)?;
            finish(&a, |b| {
                format!(
                    "balance shard={} asset={} available={} held={} margin_call={}",
                    b.shard, b.asset, b.available, b.held, b.margin_call
                )
            })?
        }
        QueryWhat::Positions => {
            let a = c.positions(id, t).map_err(err)?;
            finish(&a, |p| {
                format!(
                    "position instrument={} size={} entry_price={} realized_pnl={}",
                    p.instrument, p.size, p.entry_price, p.realized_pnl
                )
            })?
        }
    };
    let _ = c.logout(Duration::from_millis(500));
    Ok(code)
}

fn order_line(o: &tpx_wire::query::OrderStatus) -> String {
    format!(
        "order cl_ord_id={} order_id={} instrument={} side={:?} price={} leaves_qty={}",
        o.cl_ord_id, o.order_id, o.instrument, o.side, o.price, o.leaves_qty
    )
}
