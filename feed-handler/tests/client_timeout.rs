//! `tpx-feed` frozen (SIGSTOP) longer than its media driver's client liveness timeout: the
//! driver drops its Aeron client, and when the process resumes the client is closed (error
//! 1001, "client timeout from driver"). Before the fix the handler read nothing ever again
//! while it still said `live` (the fault lab's 500-fault run found it after a 16 s stall of
//! the host: the feed handler's book stayed at what it held then). Now it makes a new client,
//! subscribes again (a `Reconnected` event) and catches up through the snapshot stream.
//!
//! The test runs the driver (client liveness timeout 2 s) and a publisher driven by a real
//! engine in this process, and the real `tpx-feed` binary as a child on that driver.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use tpx_engine::Engine;
use tpx_feed::bench::workload::{generate, WorkloadParams};
use tpx_md::{
    AeronChannels, AeronClient, AeronSetup, ChannelConfig, DriverConfig, EmbeddedDriver,
    MdInstrument, MdPublisher, PublisherConfig,
};
use tpx_wire::Symbol;

/// Kills the child if the test fails half way (a frozen tpx-feed left behind).
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        // SAFETY: a signal to our own child, by pid.
        unsafe {
            libc::kill(self.0.id() as libc::pid_t, libc::SIGCONT);
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: a signal to our own child, by pid.
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

/// Runs the publisher (heartbeats, snapshots) until tpx-feed prints a line for which `done`
/// holds; returns it.
fn until(
    md: &mut MdPublisher,
    engine: &Engine,
    lines: &Receiver<String>,
    what: &str,
    mut done: impl FnMut(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        md.do_work(AeronClient::nano_clock(), engine);
        while let Ok(l) = lines.try_recv() {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&l) {
                if done(&v) {
                    return v;
                }
            }
        }
        assert!(Instant::now() < deadline, "tpx-feed never said {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn a_feed_handler_frozen_past_the_drivers_liveness_timeout_reconnects_and_catches_up() {
    let driver = EmbeddedDriver::launch(&DriverConfig {
        term_length: 256 << 10,
        ipc_term_length: 256 << 10,
        client_liveness_timeout_ns: Some(2_000_000_000),
        ..DriverConfig::for_tests()
    })
    .unwrap();
    let dir = driver.dir().to_string();
    let p = WorkloadParams::default();
    let cmds = generate(&p, 7, 4_000);
    let mut engine = Engine::new(p.engine_config()).unwrap();
    let cfg = PublisherConfig {
        stream_id: 100,
        snapshot_stream_id: 200,
        instruments: p
            .engine_config()
            .instruments
            .iter()
            .map(|s| MdInstrument {
                spec: *s,
                symbol: Symbol::new(&format!("SYM-{}", s.id)),
            })
            .collect(),
        heartbeat_interval_ns: 20_000_000,
        snapshot_interval_ns: 100_000_000,
        snapshot_packets_per_work: 4,
        ring_capacity: 4096,
        ..PublisherConfig::default()
    };
    let mut md = MdPublisher::connect(
        cfg,
        &AeronChannels {
            setup: AeronSetup::External { dir: dir.clone() },
            a: ChannelConfig::new("aeron:ipc", 100),
            b: None,
            snapshot: Some(ChannelConfig::new("aeron:ipc", 200)),
        },
    )
    .unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_tpx-feed"))
        .args([
            "--aeron-dir",
            &dir,
            "--a",
            "aeron:ipc",
            "--snapshot",
            "aeron:ipc",
        ])
        .args(["--json", "--interval-ms", "100"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let pid = child.id();
    let _child = KillOnDrop(child);
    let (tx, lines) = channel();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    let stats_at = |v: &serde_json::Value, seq: u64| {
        v["type"] == "stats" && v["live"] == true && v["next_seq"].as_u64() >= Some(seq)
    };

    // The first half, followed live.
    let (first, second) = cmds.split_at(cmds.len() / 2);
    until(&mut md, &engine, &lines, "its first stats", |v| {
        v["type"] == "stats"
    });
    for c in first {
        md.process(&mut engine, 1, c, &mut tpx_md::NoReports);
        md.do_work(AeronClient::nano_clock(), &engine);
    }
    let seq = md.next_seq();
    until(&mut md, &engine, &lines, "live after the first half", |v| {
        stats_at(v, seq)
    });

    // Frozen for 4 s: the driver (2 s liveness) drops its client. The second half is
    // published meanwhile.
    signal(pid, libc::SIGSTOP);
    let frozen = Instant::now();
    while frozen.elapsed() < Duration::from_millis(4_000) {
        md.do_work(AeronClient::nano_clock(), &engine);
        std::thread::sleep(Duration::from_millis(5));
    }
    for c in second {
        md.process(&mut engine, 2, c, &mut tpx_md::NoReports);
        md.do_work(AeronClient::nano_clock(), &engine);
    }
    signal(pid, libc::SIGCONT);
    until(&mut md, &engine, &lines, "Reconnected", |v| {
        v["type"] == "feed"
            && v["event"]
                .as_str()
                .is_some_and(|e| e.starts_with("Reconnected"))
    });
    let seq = md.next_seq();
    let s = until(
        &mut md,
        &engine,
        &lines,
        "live after the second half",
        |v| stats_at(v, seq),
    );
    assert!(s["messages"].as_u64().unwrap() > 0, "{s}");
    drop(driver);
}
