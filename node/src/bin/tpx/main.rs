//! `tpx`: the appliance command line.
//!
//! - `tpx node --config node.toml --role primary|standby`: one node (order entry, sequencer over
//!   the durable replicated log, shards) per the config. Exits 3 when it cut its log's tail on
//!   rejoining a new term (restart it as standby).
//! - `tpx witness --listen ADDR [--lease-us N]`: the witness that grants terms (promotions) and
//!   leases, so a partitioned old primary cannot keep acknowledging.
//! - `tpx up [--demo] [--single] [--duration SECS]`: primary, standby and witness as three
//!   processes on this machine (or one node with `--single`), with built-in instruments and demo
//!   accounts; `--demo` adds simulated traders and live numbers.
//! - `tpx stat [--port 9100 | --path FILE] [--json]`: a running node's counters and per-stage
//!   latencies, live, from its shared-memory stats file.
//! - `tpx admin <deposit|withdraw|mark|funding|liquidate|fee-tier> --connect ADDR --account-id ID
//!   --token-file F --request-id N ...`: one admin request (risk input) over an admin session;
//!   prints the answer.
//! - `tpx query <order|open|balances|positions> --connect ADDR --account-id ID --token-file F`:
//!   an account's order status, open orders, balances or positions, from the node's state.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use tpx_node::appliance::serve::serve;
use tpx_node::sequencing::stage::StartRole;

use crate::admin::{AdminAction, AdminOptions};
use crate::up::{run, UpOptions};

mod admin;
mod demo;
mod demo_feed;
mod funding;
mod query;
mod replay;
mod stat;
mod up;

#[derive(Parser, Debug)]
#[command(name = "tpx", version, about = "tpx: a low-latency exchange appliance")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Role {
    /// Ask the witness for a term at start.
    Primary,
    /// Follow the peer; take over when the primary is silent and the witness grants it.
    Standby,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run a node: order-entry gateway, sequencer and matching shards on pinned cores.
    Node {
        /// The node config (TOML); see docs/ARCHITECTURE.md, "The node".
        #[arg(long)]
        config: PathBuf,
        /// How the node starts; the witness decides who is primary.
        #[arg(long, value_enum, default_value = "primary")]
        role: Role,
    },
    /// Run the witness: grants terms and leases to the nodes of one pair.
    Witness {
        /// Where the nodes reach it.
        #[arg(long)]
        listen: SocketAddr,
        /// The primary's lease: how long a grant or renewal lets it acknowledge alone.
        #[arg(long, default_value_t = 20_000)]
        lease_us: u64,
        /// Where the witness keeps its grant (required: a witness that forgets could grant a
        /// term twice). A missing file is a first start; a damaged one refuses to start.
        #[arg(long)]
        state_file: PathBuf,
        /// The cluster id the nodes' `[replication] cluster_id` names.
        #[arg(long, default_value_t = 0)]
        cluster_id: u64,
        /// The cluster's shared secret (64 hex digits), as the nodes' `secret_file`.
        #[arg(long)]
        secret_file: Option<PathBuf>,
    },
    /// Run the whole appliance on this machine with built-in instruments and demo accounts.
    Up {
        /// Also run simulated market makers and takers and print live numbers each second.
        #[arg(long)]
        demo: bool,
        /// One node in this process (durable local log, fsync) instead of primary + standby +
        /// witness processes.
        #[arg(long)]
        single: bool,
        /// Stop after this many seconds (default: until SIGINT/SIGTERM).
        #[arg(long, value_name = "SECS")]
        duration: Option<u64>,
        /// Order-entry address (of the primary; the standby listens on the next port).
        #[arg(long, default_value = "127.0.0.1:9100")]
        listen: SocketAddr,
        /// Start from this node config instead of the defaults.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Where the logs go (default: a fresh folder under the temp dir, removed at exit).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Simulated market makers.
        #[arg(long, default_value_t = 2)]
        makers: usize,
        /// Simulated takers.
        #[arg(long, default_value_t = 2)]
        takers: usize,
        /// Run the shards with risk off (no accounts, balances or margin; for comparison).
        #[arg(long)]
        no_risk: bool,
    },
    /// Send one admin request (deposit, withdrawal, mark, funding, liquidation, fee tier) over
    /// an admin account's session and print the answer.
    Admin {
        #[command(subcommand)]
        action: AdminCmd,
        /// The node's order-entry address (the primary's).
        #[arg(long, global = true, default_value = "127.0.0.1:9100")]
        connect: SocketAddr,
        /// The admin account (`admin = true` in the accounts file).
        #[arg(long, global = true, default_value_t = 0)]
        account_id: u32,
        /// Its session id.
        #[arg(long, global = true, default_value_t = 1)]
        session_id: u32,
        /// A file holding the account's login token (text; surrounding whitespace ignored).
        #[arg(long, global = true, default_value = "admin.token")]
        token_file: PathBuf,
        /// The request id: logged and echoed in the answer; for deposits, withdrawals and
        /// liquidations the idempotency key (strictly increasing per account, shared by the
        /// three), for funding the funding id.
        #[arg(long, global = true, default_value_t = 0)]
        request_id: u64,
        /// Seconds to wait for the answer.
        #[arg(long, global = true, default_value_t = 5)]
        timeout: u64,
    },
    /// Ask a node about an account: an order's status, its open orders, balances or positions
    /// (answered from the node's state; nothing is logged).
    Query(crate::query::QueryArgs),
    /// Replay a node's input log through the shards its config describes; print the last seq,
    /// the fills and each shard's state hash (equal on two nodes whose logs agree).
    Replay {
        /// The node config (TOML): its instruments, shard plan and `[risk]`.
        #[arg(long)]
        config: PathBuf,
        /// The log's folder (default: the config's `[replication] log_dir`).
        #[arg(long)]
        log_dir: Option<PathBuf>,
        /// Stop after this seq.
        #[arg(long)]
        to_seq: Option<u64>,
    },
    /// Show a running node's counters and per-stage latencies, live (its stats file in /dev/shm).
    Stat {
        /// The stats file (default: /dev/shm/tpx-node-<port>.stats).
        #[arg(long)]
        path: Option<PathBuf>,
        /// The node's order-entry port (names the default stats file).
        #[arg(long, default_value_t = 9100)]
        port: u16,
        /// Seconds between prints.
        #[arg(long, default_value_t = 1.0)]
        interval: f64,
        /// Print this many times, then exit (default: until Ctrl-C).
        #[arg(long)]
        count: Option<u64>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum AdminCmd {
    /// Credit an account's balance of an asset on a shard.
    Deposit {
        #[arg(long)]
        account: u32,
        #[arg(long)]
        asset: u32,
        /// Minor units.
        #[arg(long)]
        amount: u64,
        #[arg(long, default_value_t = 0)]
        shard: u16,
    },
    /// Debit an account's balance of an asset on a shard, if available.
    Withdraw {
        #[arg(long)]
        account: u32,
        #[arg(long)]
        asset: u32,
        /// Minor units.
        #[arg(long)]
        amount: u64,
        #[arg(long, default_value_t = 0)]
        shard: u16,
    },
    /// A perpetual's mark price.
    Mark {
        #[arg(long)]
        instrument: u32,
        /// Ticks.
        #[arg(long)]
        price: i64,
    },
    /// Funding at the current mark (positive: longs pay shorts).
    Funding {
        #[arg(long)]
        instrument: u32,
        #[arg(long, allow_hyphen_values = true)]
        rate_ppm: i64,
    },
    /// Liquidate an account's position on a perpetual.
    Liquidate {
        #[arg(long)]
        account: u32,
        #[arg(long)]
        instrument: u32,
        /// Client order id of the liquidation account's closing IOC order.
        #[arg(long)]
        cl_ord_id: u64,
        /// Its limit price, ticks.
        #[arg(long)]
        price: i64,
    },
    /// Put an account in a fee tier on a shard or on `all`.
    FeeTier {
        #[arg(long)]
        account: u32,
        #[arg(long)]
        tier: u8,
        #[arg(long, default_value = "all", value_parser = crate::admin::parse_shard)]
        shard: u16,
    },
}

impl AdminCmd {
    fn action(&self) -> AdminAction {
        match *self {
            AdminCmd::Deposit {
                account,
                asset,
                amount,
                shard,
            } => AdminAction::Deposit {
                account,
                asset,
                amount,
                shard,
            },
            AdminCmd::Withdraw {
                account,
                asset,
                amount,
                shard,
            } => AdminAction::Withdraw {
                account,
                asset,
                amount,
                shard,
            },
            AdminCmd::Mark { instrument, price } => AdminAction::Mark { instrument, price },
            AdminCmd::Funding {
                instrument,
                rate_ppm,
            } => AdminAction::Funding {
                instrument,
                rate_ppm,
            },
            AdminCmd::Liquidate {
                account,
                instrument,
                cl_ord_id,
                price,
            } => AdminAction::Liquidate {
                account,
                instrument,
                cl_ord_id,
                price,
            },
            AdminCmd::FeeTier {
                account,
                tier,
                shard,
            } => AdminAction::FeeTier {
                account,
                tier,
                shard,
            },
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Node { config, role } => serve(
            &config,
            match role {
                Role::Primary => StartRole::Primary,
                Role::Standby => StartRole::Standby,
            },
        ),
        Cmd::Witness {
            listen,
            lease_us,
            state_file,
            cluster_id,
            secret_file,
        } => {
            tpx_sequencer::process::install_signal_handlers();
            let secret = match secret_file {
                Some(f) => tpx_sequencer::transport::read_secret_file(&f),
                None => Ok([0; 32]),
            };
            secret
                .and_then(|secret| {
                    tpx_sequencer::process::run_witness(
                        tpx_sequencer::process::WitnessOptions {
                            listen,
                            lease_ns: lease_us.saturating_mul(1_000),
                            state_file,
                            handshake: tpx_sequencer::transport::Handshake {
                                cluster_id,
                                secret,
                                config_digest: 0,
                                who: "tpx witness",
                            },
                            idle: tpx_sequencer::IdleMode::Park,
                            // No real-time priority: systemd's unit sets the policy where wanted.
                            rt_priority: 0,
                        },
                        &mut std::io::stdout(),
                        &mut WitnessNotify::default(),
                    )
                })
                .map(|()| 0)
        }
        Cmd::Up {
            demo,
            single,
            duration,
            listen,
            config,
            dir,
            makers,
            takers,
            no_risk,
        } => run(UpOptions {
            demo,
            single,
            duration: duration.map(Duration::from_secs),
            listen,
            config,
            dir,
            makers,
            takers,
            no_risk,
        })
        .map(|()| 0),
        Cmd::Query(args) => crate::query::run(&args),
        Cmd::Admin {
            action,
            connect,
            account_id,
            session_id,
            token_file,
            request_id,
            timeout,
        } => {
            let opts = AdminOptions {
                connect,
                account_id,
                session_id,
                token_file,
                request_id,
                timeout: Duration::from_secs(timeout),
            };
            if request_id == 0 {
                Err("--request-id is required (non-zero)".to_string())
            } else {
                crate::admin::run(&opts, &action.action()).map(|()| 0)
            }
        }
        Cmd::Replay {
            config,
            log_dir,
            to_seq,
        } => crate::replay::run(crate::replay::ReplayOptions {
            config,
            log_dir,
            to_seq,
        }),
        Cmd::Stat {
            path,
            port,
            interval,
            count,
            json,
        } => crate::stat::run(crate::stat::StatOptions {
            path,
            port,
            interval: Duration::from_secs_f64(interval.max(0.01)),
            count,
            json,
        })
        .map(|()| 0),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("tpx: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `tpx witness` under systemd (`Type=notify`): `READY=1` once it listens, a watchdog ping
/// every half `WatchdogSec=` while its loop runs.
#[derive(Default)]
struct WitnessNotify {
    watchdog: Option<tpx_node::appliance::systemd::Watchdog>,
    cycles: u64,
}

impl tpx_sequencer::process::WitnessHooks for WitnessNotify {
    fn ready(&mut self) {
        let now_ns = tpx_node::runtime::clock::now_ns();
        self.watchdog = tpx_node::appliance::systemd::Watchdog::from_env(now_ns);
        tpx_node::appliance::systemd::notify_ready("witness");
    }

    fn cycle(&mut self) {
        self.cycles += 1;
        if let Some(w) = self.watchdog.as_mut() {
            if w.due(
                tpx_node::runtime::clock::now_ns(),
                std::iter::once(self.cycles),
            ) {
                tpx_node::appliance::systemd::ping();
            }
        }
    }
}
