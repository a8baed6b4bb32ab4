//! `tpx-feed`: subscribe to a shard's market data and show the top of the books live, the
//! trades and the gap/recovery counters; `--json` prints JSON lines for tools instead.
//!
//! ```sh
//! tpx-feed --a 'aeron:udp?endpoint=239.1.1.1:40456|interface=10.0.0.2' \
//!          --b 'aeron:udp?endpoint=239.1.2.1:40456|interface=10.0.1.2' \
//!          --snapshot 'aeron:udp?endpoint=239.1.3.1:40456|interface=10.0.0.2' \
//!          --retransmit 10.0.0.1:40470 --levels 5
//! ```

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use sd_notify::NotifyState;
use serde_json::json;
use tpx_feed::{BookEvent, Books, FeedEvent, FeedHandler, FeedHandlerConfig, FeedListener, Update};
use tpx_md::{AeronClient, AeronSetup, ChannelConfig, DriverConfig};
use tpx_wire::Side;

#[derive(Parser, Debug)]
#[command(name = "tpx-feed", about = "tpx market-data feed handler")]
struct Args {
    /// Aeron driver directory of a running driver; without it a driver is embedded.
    #[arg(long)]
    aeron_dir: Option<String>,
    /// Feed A channel (the node's `[md] channel_a`).
    #[arg(long, default_value = "aeron:udp?endpoint=127.0.0.1:40456")]
    a: String,
    /// Feed B channel (optional; the node's `[md] channel_b`).
    #[arg(long)]
    b: Option<String>,
    /// Snapshot channel (optional; the node's `[md] snapshot_channel`, which defaults to
    /// `channel_a`).
    #[arg(long)]
    snapshot: Option<String>,
    /// The shard whose feed to follow: its streams are the node's base ids + `shard`.
    #[arg(long, default_value_t = 0)]
    shard: u16,
    /// The node's `[md] stream_id`: shard `s` publishes feed A on Aeron stream
    /// `stream_id + s`, which is also the packets' MoldUDP64 session.
    #[arg(long, default_value_t = 100)]
    stream_id: u32,
    /// The node's `[md] stream_id_b` (default: `stream_id`).
    #[arg(long)]
    stream_id_b: Option<u32>,
    /// The node's `[md] snapshot_stream_id`: shard `s` publishes snapshots on
    /// `snapshot_stream_id + s`.
    #[arg(long, default_value_t = 200)]
    snapshot_stream_id: u32,
    /// Retransmission server, host:port (optional).
    #[arg(long)]
    retransmit: Option<SocketAddr>,
    /// Local address for retransmission requests.
    #[arg(long, default_value = "0.0.0.0:0")]
    retransmit_bind: SocketAddr,
    /// Price levels shown per side.
    #[arg(long, default_value_t = 5)]
    levels: usize,
    /// Only these instruments (repeatable; default all).
    #[arg(long)]
    instrument: Vec<u32>,
    /// JSON lines: trades and feed events as they happen, books and counters every interval.
    #[arg(long)]
    json: bool,
    /// Refresh interval.
    #[arg(long, default_value_t = 1000)]
    interval_ms: u64,
    /// Stop after this many seconds.
    #[arg(long)]
    duration: Option<u64>,
    /// Busy-poll (one core) instead of backing off when idle.
    #[arg(long)]
    spin: bool,
}

/// The Aeron stream ids and the packets' session of one shard's feed, numbered as the node
/// numbers them (`[md]`: base id + shard).
#[derive(Debug, PartialEq, Eq)]
struct ShardStreams {
    a: i32,
    b: i32,
    snapshot: i32,
    /// The MoldUDP64 session in every packet header: feed A's stream id.
    session: u32,
}

impl ShardStreams {
    fn of(args: &Args) -> Result<ShardStreams, String> {
        let shard = u32::from(args.shard);
        let id = |base: u32, what: &str| {
            base.checked_add(shard)
                .and_then(|v| i32::try_from(v).ok())
                .ok_or_else(|| format!("{what} {base} + shard {shard} is not a valid stream id"))
        };
        let a = id(args.stream_id, "--stream-id")?;
        Ok(ShardStreams {
            a,
            b: id(args.stream_id_b.unwrap_or(args.stream_id), "--stream-id-b")?,
            snapshot: id(args.snapshot_stream_id, "--snapshot-stream-id")?,
            session: a as u32,
        })
    }
}

struct Ui {
    json: bool,
    /// Stdout's reader went away (`tpx-feed --json | head`): the loop stops.
    closed: bool,
    filter: Vec<u32>,
    trades: VecDeque<(u32, u64, i64, u64, Side)>,
    events: VecDeque<String>,
}

/// Writes `text` to stdout; false once its reader is gone (`println!` would panic: exit status
/// 101 and a panic message, `tests/stdout_closed.rs`).
fn put(text: std::fmt::Arguments<'_>) -> bool {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_fmt(text).and_then(|()| out.flush()).is_ok()
}

impl Ui {
    fn put(&mut self, text: std::fmt::Arguments<'_>) {
        if !self.closed && !put(text) {
            self.closed = true;
        }
    }

    fn wanted(&self, instrument: u32) -> bool {
        self.filter.is_empty() || self.filter.contains(&instrument)
    }
}

fn side_name(s: Side) -> &'static str {
    match s {
        Side::Buy => "buy",
        Side::Sell => "sell",
    }
}

impl FeedListener for Ui {
    fn on_book(&mut self, ev: &BookEvent, _books: &Books) {
        if let Update::Trade {
            trade_id,
            price,
            qty,
            aggressor,
        } = ev.update
        {
            if !self.wanted(ev.instrument) {
                return;
            }
            if self.json {
                self.put(format_args!(
                    "{}\n",
                    json!({"type": "trade", "seq": ev.seq, "ts_ns": ev.timestamp_ns,
                        "instrument": ev.instrument, "trade_id": trade_id, "price": price,
                        "qty": qty, "aggressor": side_name(aggressor)})
                ));
            } else {
                if self.trades.len() == 10 {
                    self.trades.pop_back();
                }
                self.trades
                    .push_front((ev.instrument, trade_id, price, qty, aggressor));
            }
        }
    }

    fn on_feed(&mut self, ev: &FeedEvent) {
        if self.json {
            self.put(format_args!(
                "{}\n",
                json!({"type": "feed", "event": format!("{ev:?}")})
            ));
        } else {
            if self.events.len() == 5 {
                self.events.pop_back();
            }
            self.events.push_front(format!("{ev:?}"));
        }
    }
}

fn levels_json(b: &tpx_feed::InstrumentBook, side: Side, n: usize) -> serde_json::Value {
    b.levels(side, n)
        .map(|l| json!([l.price, l.qty, l.orders]))
        .collect()
}

/// The `STATUS=` line `systemctl status tpx-feed` shows.
fn status_line(fh: &FeedHandler) -> String {
    let s = fh.stats();
    format!(
        "{} next_seq={} packets={} gaps={} retransmit_requests={} snapshot_recoveries={}",
        if fh.core().is_live() {
            "live"
        } else {
            "recovering"
        },
        fh.core().next_seq(),
        s.packets.iter().sum::<u64>(),
        s.gaps,
        s.retransmit_requests,
        s.snapshot_recoveries
    )
}

fn show(fh: &FeedHandler, ui: &mut Ui, levels: usize) {
    let s = fh.stats();
    let core = fh.core();
    if ui.json {
        for b in fh.books().books() {
            if !ui.wanted(b.id) {
                continue;
            }
            let line = json!({"type": "book", "instrument": b.id, "symbol": b.symbol(),
                    "seq": b.last_seq, "halted": b.halted, "ref_price": b.ref_price,
                    "bids": levels_json(b, Side::Buy, levels),
                    "asks": levels_json(b, Side::Sell, levels),
                    "trades": b.trades, "volume": b.volume});
            ui.put(format_args!("{line}\n"));
        }
        ui.put(format_args!(
            "{}\n",
            json!({"type": "stats", "next_seq": core.next_seq(), "live": core.is_live(),
                "packets_a": s.packets[0], "packets_b": s.packets[1],
                "first_a": s.first_copies[0], "first_b": s.first_copies[1],
                "messages": s.messages, "duplicates": s.duplicates, "heartbeats": s.heartbeats,
                "gaps": s.gaps, "gaps_filled_by_arbitration": s.gaps_filled_by_arbitration,
                "gaps_filled_by_retransmission": s.gaps_filled_by_retransmission,
                "retransmit_requests": s.retransmit_requests,
                "retransmit_timeouts": s.retransmit_timeouts,
                "retransmit_refused": s.retransmit_refused,
                "snapshot_recoveries": s.snapshot_recoveries,
                "snapshots_applied": s.snapshots_applied,
                "buffer_evictions": s.buffer_evictions,
                "decode_errors": s.decode_errors, "book_errors": s.book_errors,
                "foreign": s.foreign})
        ));
        return;
    }
    let mut out = String::from("\x1b[2J\x1b[H");
    out += &format!(
        "tpx-feed  next_seq {}  {}  msgs {}  pkts A {} B {} (first A {} B {})  dup {}  hb {}\n\
         gaps {} (arbitration {}, retransmission {})  requests {} timeouts {} refused {}  \
         snapshot recoveries {} applied {}  evictions {}  errors decode {} book {}\n\n",
        core.next_seq(),
        if core.is_live() { "LIVE" } else { "RECOVERING" },
        s.messages,
        s.packets[0],
        s.packets[1],
        s.first_copies[0],
        s.first_copies[1],
        s.duplicates,
        s.heartbeats,
        s.gaps,
        s.gaps_filled_by_arbitration,
        s.gaps_filled_by_retransmission,
        s.retransmit_requests,
        s.retransmit_timeouts,
        s.retransmit_refused,
        s.snapshot_recoveries,
        s.snapshots_applied,
        s.buffer_evictions,
        s.decode_errors,
        s.book_errors,
    );
    for b in fh.books().books().iter().filter(|b| ui.wanted(b.id)) {
        out += &format!(
            "instrument {} {}{}  ref {}  trades {} volume {}  last {:?}\n",
            b.id,
            b.symbol().unwrap_or(""),
            if b.halted { " HALTED" } else { "" },
            b.ref_price,
            b.trades,
            b.volume,
            b.last_trade.map(|t| (t.1, t.2)),
        );
        out += &format!(
            "  {:>6} {:>10} {:>12} | {:<12} {:<10} {:<6}\n",
            "orders", "qty", "bid", "ask", "qty", "orders"
        );
        let bids: Vec<_> = b.levels(Side::Buy, levels).collect();
        let asks: Vec<_> = b.levels(Side::Sell, levels).collect();
        for i in 0..levels {
            let l = bids.get(i).map_or(String::new(), |l| {
                format!("{:>6} {:>10} {:>12}", l.orders, l.qty, l.price)
            });
            let r = asks.get(i).map_or(String::new(), |l| {
                format!("{:<12} {:<10} {:<6}", l.price, l.qty, l.orders)
            });
            out += &format!("  {l:>30} | {r}\n");
        }
        out += "\n";
    }
    out += "trades (newest first):\n";
    for (inst, id, price, qty, side) in &ui.trades {
        out += &format!(
            "  instrument {inst} trade {id}: {qty} @ {price} ({})\n",
            side_name(*side)
        );
    }
    out += "feed events (newest first):\n";
    for e in &ui.events {
        out += &format!("  {e}\n");
    }
    ui.put(format_args!("{out}"));
}

fn main() -> ExitCode {
    let args = Args::parse();
    let setup = match &args.aeron_dir {
        Some(dir) => AeronSetup::External { dir: dir.clone() },
        None => AeronSetup::Embedded(DriverConfig::default()),
    };
    let streams = match ShardStreams::of(&args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tpx-feed: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut cfg = FeedHandlerConfig::new(setup, ChannelConfig::new(args.a.clone(), streams.a));
    cfg.b = args.b.clone().map(|c| ChannelConfig::new(c, streams.b));
    cfg.snapshot = args
        .snapshot
        .clone()
        .map(|c| ChannelConfig::new(c, streams.snapshot));
    cfg.retransmit_server = args.retransmit;
    cfg.retransmit_bind = args.retransmit_bind;
    cfg.core.stream_id = streams.session;
    // Snapshot packets carry the snapshot stream's id in their header, as the node sends them.
    cfg.core.snapshot_stream_id = Some(streams.snapshot as u32);
    let mut fh = match FeedHandler::connect(cfg) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("tpx-feed: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut ui = Ui {
        json: args.json,
        closed: false,
        filter: args.instrument.clone(),
        trades: VecDeque::new(),
        events: VecDeque::new(),
    };
    // Ctrl-C / SIGTERM end the loop (and print the last state).
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let _ = signal_hook::flag::register(sig, stop.clone());
    }
    let start = Instant::now();
    let interval = Duration::from_millis(args.interval_ms.max(10));
    let mut next_show = start + interval;
    let mut idle = 0u32;
    // systemd (`Type=notify`): ready once subscribed; the loop pings the watchdog at half
    // `WatchdogSec=` (the loop is the process's only worker: a ping says it still polls) and
    // refreshes `STATUS=` once a second. No-ops outside systemd.
    let _ = sd_notify::notify(
        false,
        &[NotifyState::Ready, NotifyState::Status(&status_line(&fh))],
    );
    let mut watchdog_usec = 0u64;
    let ping_every = sd_notify::watchdog_enabled(false, &mut watchdog_usec)
        .then(|| Duration::from_micros(watchdog_usec / 2));
    let mut next_ping = start;
    let mut next_status = start + Duration::from_secs(1);
    while !stop.load(Ordering::Acquire) {
        if args
            .duration
            .is_some_and(|d| start.elapsed() >= Duration::from_secs(d))
        {
            break;
        }
        let work = fh.poll(AeronClient::nano_clock(), &mut ui);
        if work > 0 || args.spin {
            idle = 0;
        } else {
            // Back off: spin a little, yield, then park up to 1 ms.
            idle = idle.saturating_add(1);
            match idle {
                0..=10 => std::hint::spin_loop(),
                11..=30 => std::thread::yield_now(),
                _ => {
                    std::thread::sleep(Duration::from_micros((u64::from(idle - 30) * 10).min(1000)))
                }
            }
        }
        let now = Instant::now();
        if now >= next_show {
            next_show += interval;
            show(&fh, &mut ui, args.levels);
        }
        if ui.closed {
            break;
        }
        if let Some(every) = ping_every.filter(|_| now >= next_ping) {
            next_ping = now + every;
            let _ = sd_notify::notify(false, &[NotifyState::Watchdog]);
        }
        if now >= next_status {
            next_status = now + Duration::from_secs(1);
            let _ = sd_notify::notify(false, &[NotifyState::Status(&status_line(&fh))]);
        }
    }
    let _ = sd_notify::notify(false, &[NotifyState::Stopping]);
    if ui.closed {
        // Nobody reads the output any more (`tpx-feed --json | head`): a clean stop.
        tpx_md::warn(format_args!("tpx-feed: stdout closed, stopping"));
    } else {
        show(&fh, &mut ui, args.levels);
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> Args {
        Args::parse_from(std::iter::once("tpx-feed").chain(extra.iter().copied()))
    }

    /// The defaults follow a node with the default `[md]` (stream 100, snapshots 200), shard 0.
    #[test]
    fn defaults_follow_the_nodes_default_md_section() {
        let s = ShardStreams::of(&args(&[])).unwrap();
        assert_eq!(
            s,
            ShardStreams {
                a: 100,
                b: 100,
                snapshot: 200,
                session: 100
            }
        );
    }

    #[test]
    fn a_shard_offsets_every_stream_and_the_session() {
        let s = ShardStreams::of(&args(&["--shard", "3", "--stream-id-b", "150"])).unwrap();
        assert_eq!(
            s,
            ShardStreams {
                a: 103,
                b: 153,
                snapshot: 203,
                session: 103
            }
        );
    }

    #[test]
    fn a_stream_id_beyond_aerons_range_is_refused() {
        let e = ShardStreams::of(&args(&["--stream-id", "2147483647", "--shard", "1"]));
        assert!(e.unwrap_err().contains("--stream-id"));
    }
}
