//! The relay floor of `tpx-load` (`tpx_benches::lab::relay`): two relay processes (the
//! `tpx-load` binary with `--relay-serve`) carry every message client → A → B → A → client and
//! back unchanged, and the round trips are measured.

use std::path::Path;
use std::time::Duration;

use tpx_benches::lab::relay;

#[test]
fn the_relay_floor_measures_round_trips_through_two_relay_processes() {
    let exe = Path::new(env!("CARGO_BIN_EXE_tpx-load"));
    let h = relay::measure(exe, 2_000, 200, Duration::from_micros(50), 1_000).unwrap();
    assert_eq!(h.len(), 2_000);
    // Four loopback hops and two processes' wake-ups: more than a microsecond, and (even on a
    // loaded 2-vCPU machine) well under a second at the median.
    let p50 = h.value_at_quantile(0.5);
    assert!((1_000..1_000_000_000).contains(&p50), "p50 {p50} ns");
}

#[test]
fn a_relay_without_a_next_hop_echoes_and_exits_when_its_client_closes() {
    use std::io::{BufRead, BufReader, Read, Write};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tpx-load"))
        .arg("--relay-serve")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line.trim().strip_prefix("RELAY ").unwrap().parse().unwrap();
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"hello relay").unwrap();
    let mut buf = [0u8; 11];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"hello relay");
    drop(s);
    assert!(child.wait().unwrap().success());
}
