//! `fault-lab`: kills, freezes and partitions the real appliance under a failing-over client
//! load, then checks every answer the clients got against the logs. Prints one line (or JSON
//! with `--json`); exits 1 when it found a violation, keeping the run's folder.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use tpx_benches::fault_lab::{run, LabConfig};

#[derive(Parser, Debug)]
#[command(
    about = "Fault lab: tpx witness + two tpx nodes in network namespaces, seeded faults, a checker of every answer"
)]
struct Args {
    /// Faults to apply.
    #[arg(long, default_value_t = 30)]
    faults: u32,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The nodes' `timeout_us` (and the witness's lease).
    #[arg(long, default_value_t = 200_000)]
    timeout_us: u64,
    #[arg(long, default_value_t = 5_000)]
    heartbeat_us: u64,
    /// `replicated` | `fsync` | `replicated+fsync`.
    #[arg(long, default_value = "replicated")]
    durability: String,
    /// Trading accounts (one failing-over client each).
    #[arg(long, default_value_t = 4)]
    accounts: u32,
    /// Requests per second per account.
    #[arg(long, default_value_t = 100)]
    rate: u64,
    /// SIGKILLs only (primary, standby, witness).
    #[arg(long)]
    kills_only: bool,
    /// Fault kinds never drawn, by name prefix (e.g. `pause_primary,partition`).
    #[arg(long, value_delimiter = ',')]
    without: Vec<String>,
    /// The run's folder (default: under the temp dir; removed unless something was found).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Keep the folder even when nothing was found.
    #[arg(long)]
    keep: bool,
    /// Market data off.
    #[arg(long)]
    no_md: bool,
    /// Buffered log writes instead of O_DIRECT.
    #[arg(long)]
    buffered: bool,
    #[arg(long)]
    json: bool,
}

fn main() {
    let a = Args::parse();
    let cfg = LabConfig {
        faults: a.faults,
        seed: a.seed,
        timeout_us: a.timeout_us,
        heartbeat_us: a.heartbeat_us,
        durability: a.durability,
        accounts: a.accounts,
        rate: a.rate,
        kills_only: a.kills_only,
        without: a.without,
        dir: a.dir,
        keep: a.keep,
        md: !a.no_md,
        buffered: a.buffered,
        settle_max: Duration::from_secs(10),
    };
    let r = match run(&cfg) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("fault-lab: {e}");
            std::process::exit(2);
        }
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
    } else {
        println!(
            "fault-lab seed {}: {} faults ({} skipped) in {:.1}s, {} sent, {} acked; violations {} (lost {}, duplicated {}, phantom fills {}, split-brain terms {}, other {}), stalls {}",
            r.seed,
            r.faults_applied,
            r.faults_skipped,
            r.elapsed_s,
            r.sent,
            r.acked,
            r.violations,
            r.lost,
            r.duplicated,
            r.phantom_fills,
            r.split_brain_terms,
            r.violations - r.lost - r.duplicated - r.phantom_fills - r.split_brain_terms,
            r.stalls
        );
        for (k, ex) in &r.findings.examples {
            for e in ex {
                println!("  {k}: {e}");
            }
        }
    }
    if let Some(d) = &r.dir {
        eprintln!("fault-lab: seed, history.jsonl, logs and process output kept in {d}");
        if r.violations > 0 {
            eprintln!("fault-lab: replay: {}", r.replay);
        }
    }
    if r.violations > 0 {
        std::process::exit(1);
    }
}
