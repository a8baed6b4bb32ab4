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

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use tpx_node::replica_stage::StartRole;
use tpx_node::up::{run, serve, UpOptions};

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
        /// Persist `(term, holder)` here (survives a witness restart).
        #[arg(long)]
        state_file: Option<PathBuf>,
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
        } => {
            tpx_sequencer::node::install_signal_handlers();
            tpx_sequencer::node::run_witness(
                listen,
                lease_us * 1_000,
                state_file,
                tpx_sequencer::IdleMode::Park,
                0, // no real-time priority: systemd's unit sets the policy where wanted
                &mut std::io::stdout(),
            )
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
        } => run(UpOptions {
            demo,
            single,
            duration: duration.map(Duration::from_secs),
            listen,
            config,
            dir,
            makers,
            takers,
        })
        .map(|()| 0),
        Cmd::Stat {
            path,
            port,
            interval,
            count,
            json,
        } => tpx_node::stat::run(tpx_node::stat::StatOptions {
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
