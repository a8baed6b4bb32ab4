//! The `tpx-seq` command line: a sequencer node (primary or standby), the witness, or a replay.
//!
//! ```sh
//! tpx-seq witness --listen 127.0.0.1:7100
//! tpx-seq node --id 1 --peer 2 --listen 127.0.0.1:7101 --peer-addr 127.0.0.1:7102 \
//!     --witness-addr 127.0.0.1:7100 --dir /var/lib/tpx/n1 --primary --load 10000
//! tpx-seq node --id 2 --peer 1 --listen 127.0.0.1:7102 --peer-addr 127.0.0.1:7101 \
//!     --witness-addr 127.0.0.1:7100 --dir /var/lib/tpx/n2
//! tpx-seq replay --dir /var/lib/tpx/n2     # replays a log: last seq and state hash
//! ```

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

use tpx_sequencer::process::{install_signal_handlers, run_witness, WitnessOptions};
use tpx_sequencer::testing::demo_engine_config;
use tpx_sequencer::{Durability, FileStorage, IdleMode, WriteMode};

use crate::harness::{run_node, NodeOptions};

/// The command line of `tpx-seq`.
#[derive(Parser, Debug)]
#[command(name = "tpx-seq", about = "tpx sequencer node / witness")]
pub struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

/// What to run.
#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// A sequencer node: primary or hot standby (the witness decides which).
    Node {
        #[arg(long)]
        id: u32,
        #[arg(long)]
        peer: u32,
        #[arg(long)]
        listen: std::net::SocketAddr,
        #[arg(long)]
        peer_addr: std::net::SocketAddr,
        #[arg(long)]
        witness_addr: std::net::SocketAddr,
        #[arg(long)]
        dir: PathBuf,
        /// Ask for a term at start (else start as standby).
        #[arg(long)]
        primary: bool,
        /// replicated | fsync | replicated+fsync
        #[arg(long, default_value = "replicated")]
        durability: Durability,
        /// Failure-detection timeout (ms, fractional allowed).
        #[arg(long, default_value_t = 5.0)]
        timeout_ms: f64,
        /// Heartbeat interval (µs).
        #[arg(long, default_value_t = 50)]
        heartbeat_us: u64,
        /// Busy-poll instead of parking when idle (the node loop and the log writer).
        #[arg(long)]
        spin: bool,
        /// Busy-poll only while standby or candidate (the failure detector), park as primary.
        #[arg(long)]
        spin_standby: bool,
        /// Print ACKED / FOLLOW at most every this many µs (0: at every change).
        #[arg(long, default_value_t = 2_000)]
        report_us: u64,
        /// Snapshot the engine every this many records while standby (0: never).
        #[arg(long, default_value_t = 0)]
        snapshot_every: u64,
        /// Run under SCHED_FIFO at this priority (0: the default policy).
        #[arg(long, default_value_t = 0)]
        rt_priority: u32,
        /// Built-in order load while primary (orders/s).
        #[arg(long, default_value_t = 0)]
        load: u64,
        #[arg(long, default_value_t = 64)]
        segment_mib: u64,
        /// Buffered writes + fdatasync instead of O_DIRECT | O_DSYNC.
        #[arg(long)]
        buffered: bool,
        /// Stop after this many seconds.
        #[arg(long)]
        duration: Option<f64>,
    },
    /// The witness that grants terms and leases.
    Witness {
        #[arg(long)]
        listen: std::net::SocketAddr,
        /// Lease length (ms, fractional allowed).
        #[arg(long, default_value_t = 5.0)]
        lease_ms: f64,
        /// Where to persist the grant (required; a damaged file refuses to start).
        #[arg(long)]
        state: PathBuf,
        #[arg(long)]
        spin: bool,
        /// Run under SCHED_FIFO at this priority (0: the default policy).
        #[arg(long, default_value_t = 0)]
        rt_priority: u32,
    },
    /// Replays a node's log: prints the last seq and the engine's state hash.
    Replay {
        #[arg(long)]
        dir: PathBuf,
    },
}

/// Runs `tpx-seq` with these arguments (the first is the program name); returns the exit
/// status. Benches run nodes as their own executable through this.
pub fn main_with<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    install_signal_handlers();
    let mut out = std::io::stdout();
    let r = match cli.cmd {
        Cmd::Node {
            id,
            peer,
            listen,
            peer_addr,
            witness_addr,
            dir,
            primary,
            durability,
            timeout_ms,
            heartbeat_us,
            spin,
            spin_standby,
            report_us,
            snapshot_every,
            rt_priority,
            load,
            segment_mib,
            buffered,
            duration,
        } => {
            let opts = NodeOptions {
                id,
                peer,
                listen,
                peer_addr,
                witness_addr,
                dir,
                durability,
                want_primary: primary,
                timeout_ns: (timeout_ms * 1e6) as u64,
                heartbeat_ns: heartbeat_us * 1_000,
                idle: if spin { IdleMode::Spin } else { IdleMode::Park },
                spin_standby,
                writer_idle: if spin { IdleMode::Spin } else { IdleMode::Park },
                ack_report_every: Duration::from_micros(report_us),
                snapshot_every,
                rt_priority,
                load_rate: load,
                segment_bytes: segment_mib << 20,
                direct: !buffered,
                duration: duration.map(Duration::from_secs_f64),
                ..NodeOptions::default()
            };
            run_node(&opts, &mut out).map(|_| ())
        }
        Cmd::Witness {
            listen,
            lease_ms,
            state,
            spin,
            rt_priority,
        } => run_witness(
            WitnessOptions {
                listen,
                lease_ns: (lease_ms * 1e6) as u64,
                state_file: state,
                handshake: tpx_sequencer::transport::Handshake {
                    who: "tpx-seq witness",
                    ..Default::default()
                },
                idle: if spin { IdleMode::Spin } else { IdleMode::Park },
                rt_priority,
            },
            &mut out,
            &mut (),
        ),
        Cmd::Replay { dir } => FileStorage::new(dir.join("log"), WriteMode::Buffered)
            .map_err(|e| e.to_string())
            .and_then(|st| {
                tpx_sequencer::apply::replay_hash(st, demo_engine_config(), u64::MAX)
                    .map_err(|e| e.to_string())
            })
            .map(|(last, hash)| println!("REPLAY last_seq={last} hash={hash}")),
    };
    match r {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("tpx-seq: {e}");
            1
        }
    }
}
