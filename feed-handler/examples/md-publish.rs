//! A stand-alone market-data publisher for trying `tpx-feed`: a real engine fed a seeded order
//! stream, published on A/B/snapshot channels with a retransmission server.
//!
//! ```sh
//! # Inside a private network namespace (multicast must not leave the machine):
//! unshare -rn sh -c 'ip link set lo up
//!   cargo run --release -p tpx-feed --example md-publish -- --duration 30 &
//!   sleep 2
//!   cargo run --release -p tpx-feed --bin tpx-feed -- --b "aeron:udp?endpoint=224.0.1.3:40457|interface=127.0.0.1" \
//!     --a "aeron:udp?endpoint=224.0.1.1:40456|interface=127.0.0.1" \
//!     --snapshot "aeron:udp?endpoint=224.0.1.5:40458|interface=127.0.0.1" --retransmit 127.0.0.1:40470'
//! ```

use std::time::{Duration, Instant};

use clap::Parser;
use tpx_engine::Engine;
use tpx_feed::bench::workload::{generate, WorkloadParams};
use tpx_md::{
    AeronChannels, AeronClient, AeronSetup, ChannelConfig, DriverConfig, MdInstrument, MdPublisher,
    NoReports, PublisherConfig, RetransmitConfig,
};
use tpx_wire::Symbol;

#[derive(Parser, Debug)]
struct Args {
    /// Aeron driver directory of a running driver; without it a driver is embedded.
    #[arg(long)]
    aeron_dir: Option<String>,
    #[arg(
        long,
        default_value = "aeron:udp?endpoint=224.0.1.1:40456|interface=127.0.0.1"
    )]
    a: String,
    #[arg(long, default_value_t = 10)]
    a_stream: i32,
    #[arg(
        long,
        default_value = "aeron:udp?endpoint=224.0.1.3:40457|interface=127.0.0.1"
    )]
    b: String,
    #[arg(long, default_value_t = 11)]
    b_stream: i32,
    #[arg(
        long,
        default_value = "aeron:udp?endpoint=224.0.1.5:40458|interface=127.0.0.1"
    )]
    snapshot: String,
    #[arg(long, default_value_t = 12)]
    snapshot_stream: i32,
    #[arg(long, default_value = "127.0.0.1:40470")]
    retransmit: std::net::SocketAddr,
    /// Commands per second.
    #[arg(long, default_value_t = 2000)]
    rate: u64,
    #[arg(long, default_value_t = 10)]
    duration: u64,
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let setup = match args.aeron_dir {
        Some(dir) => AeronSetup::External { dir },
        None => AeronSetup::Embedded(DriverConfig::default()),
    };
    let p = WorkloadParams::default();
    let ecfg = p.engine_config();
    let instruments = ecfg
        .instruments
        .iter()
        .map(|s| MdInstrument {
            spec: *s,
            symbol: Symbol::new(if s.id == 1 { "BTC-USDT" } else { "BTC-PERP" }),
        })
        .collect();
    let mut md = MdPublisher::connect(
        PublisherConfig {
            instruments,
            retransmit: Some(RetransmitConfig {
                addr: args.retransmit,
                ..RetransmitConfig::default()
            }),
            ..PublisherConfig::default()
        },
        &AeronChannels {
            setup,
            a: ChannelConfig::new(args.a, args.a_stream),
            b: Some(ChannelConfig::new(args.b, args.b_stream)),
            snapshot: Some(ChannelConfig::new(args.snapshot, args.snapshot_stream)),
        },
    )?;
    if let Some(dir) = md.transport().client().embedded_dir() {
        eprintln!("md-publish: embedded driver in {dir}");
    }
    let mut engine = Engine::new(ecfg)?;
    let total = (args.rate * args.duration) as usize;
    let cmds = generate(&p, args.seed, total);
    let start = Instant::now();
    let step = Duration::from_nanos(1_000_000_000 / args.rate.max(1));
    for (i, c) in cmds.iter().enumerate() {
        let due = start + step * i as u32;
        while Instant::now() < due {
            md.do_work(AeronClient::nano_clock(), &engine);
            std::thread::sleep(Duration::from_micros(100));
        }
        md.process(&mut engine, AeronClient::nano_clock(), c, &mut NoReports);
    }
    eprintln!("md-publish: {:?}", md.stats());
    Ok(())
}
