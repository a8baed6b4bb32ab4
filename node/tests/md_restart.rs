//! Market data across a restart from a snapshot, with real processes: one `tpx node` publishing
//! shard 0's market data on `aeron:ipc` through a media driver in this test process (as an
//! external `aeronmd` runs), taking images while it runs, and a feed handler subscribed
//! through that driver. After SIGKILL the node restarts from its newest image and replays only
//! the log after it; the market-data stream must go on with the numbering it had (a message's
//! sequence number is a function of the log): the feed handler, which stays subscribed across
//! the restart, sees no gap and no duplicate, needs no snapshot, and its book holds the orders
//! placed before and after.
//!
//! Before the image carried the publisher's state, the restarted node numbered its messages
//! from the image's position as if the stream were new: the feed handler read them as
//! duplicates of what it had and never showed the orders placed after the restart.

use std::time::{Duration, Instant};

use tpx_client::{token_from_str, Client, ClientConfig};
use tpx_feed::FeedHandler;
use tpx_md::{AeronClient, AeronSetup};
use tpx_node::config::md::MdConfig;
use tpx_node::shard::md::launch_driver;

#[allow(dead_code)]
#[path = "common/feed.rs"]
mod feed;
#[allow(dead_code)]
#[path = "common/md_orders.rs"]
mod md_orders;
mod procs;

use feed::feed_config_of;
use md_orders::{feed_until, place, until_heartbeat};
use procs::{Proc, WAIT};

/// The seq of the newest image in `dir` (0: none).
fn newest_image(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    tpx_sequencer::snapshot::parse_node_snapshot_name(
                        &e.file_name().to_string_lossy(),
                    )
                })
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0)
}

#[test]
fn market_data_numbering_continues_across_a_restart_from_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    procs::write_demo_accounts(dir.path());
    let md = MdConfig {
        term_length: 64 << 10,
        ..MdConfig::default()
    };
    let driver = launch_driver(&md).unwrap();
    let cfg = procs::single_node_config(
        dir.path(),
        &[0],
        "",
        "write = \"buffered\"\ncheckpoint_every = 20",
        &format!(
            "[snapshots]\nevery_records = 30\nkeep = 2\n\
             [md]\nchannel_a = \"aeron:ipc\"\naeron_dir = \"{}\"\nheartbeat_interval_ms = 20\n\
             snapshot_interval_ms = 1000\nring_capacity = 4096\nterm_length = 65536\n",
            driver.dir()
        ),
    );
    let cfg_s = cfg.display().to_string();
    let images = dir.path().join("log").join("snapshots");
    let mut node = Proc::start("node", &["node", "--config", &cfg_s, "--role", "primary"]);
    let addr = procs::listening(&node);
    node.expect("ROLE primary");

    let mut feed = FeedHandler::connect(feed_config_of(
        &md,
        0,
        AeronSetup::External {
            dir: driver.dir().to_string(),
        },
    ))
    .unwrap();
    until_heartbeat(&mut feed);

    const BEFORE: u64 = 150;
    const TAIL: u64 = 10;
    const AFTER: u64 = 60;
    let token = token_from_str("demo-token-1");
    let mut c = Client::connect_at(ClientConfig::new(addr, 1, 1, token), 0).unwrap();
    place(&mut c, 1..=BEFORE, &mut feed);
    feed_until(&mut feed, BEFORE as usize, "before the kill");
    // The images settle (one past seq 90, none new for 300 ms); then a few orders more than
    // the newest holds (fewer than an image needs: 30 records), so that the restart restores
    // the image and replays a tail through the publisher.
    let deadline = Instant::now() + WAIT;
    let (mut newest, mut since) = (0, Instant::now());
    while newest < 90 || since.elapsed() < Duration::from_millis(300) {
        assert!(Instant::now() < deadline, "no image past seq 90");
        let n = newest_image(&images);
        if n != newest {
            (newest, since) = (n, Instant::now());
        }
        feed.poll(AeronClient::nano_clock(), &mut ());
        std::thread::sleep(Duration::from_millis(5));
    }
    place(&mut c, BEFORE + 1..=BEFORE + TAIL, &mut feed);
    feed_until(&mut feed, (BEFORE + TAIL) as usize, "before the kill");
    let seq_at_kill = feed.core().next_seq();
    let before = *feed.stats();

    node.signal(libc::SIGKILL);
    node.wait();
    drop(c);
    let mut node = Proc::start("node", &["node", "--config", &cfg_s, "--role", "primary"]);
    let addr = procs::listening(&node);
    node.expect("ROLE primary");
    let replayed = node.expect("REPLAYED");
    assert!(
        replayed.contains("after snapshot seq="),
        "the restart did not start from an image: {replayed}"
    );
    let tail: u64 = replayed
        .split_whitespace()
        .skip_while(|w| *w != "REPLAYED")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {replayed}"));
    assert!(
        tail >= TAIL,
        "the restart replayed {tail} records after the image: {replayed}"
    );
    let mut c = procs::login_retrying(ClientConfig::new(addr, 1, 1, token), 0);
    let first = BEFORE + TAIL + 1;
    place(&mut c, first..=first + AFTER - 1, &mut feed);
    let all = (BEFORE + TAIL + AFTER) as usize;
    feed_until(&mut feed, all, "after the restart");
    let s = *feed.stats();
    eprintln!(
        "md seq at the kill {seq_at_kill}, now {}; stats before {before:?}, after {s:?}",
        feed.core().next_seq()
    );
    assert!(feed.core().next_seq() > seq_at_kill);
    assert_eq!(s.gaps, 0, "a gap at the restart");
    assert_eq!(s.duplicates, 0, "a message twice");
    assert_eq!(s.snapshot_recoveries, 0);
    assert_eq!((s.book_errors, s.decode_errors), (0, 0));

    node.signal(libc::SIGTERM);
    assert_eq!(node.wait(), Some(0));
    drop(feed);
    drop(driver);
}
