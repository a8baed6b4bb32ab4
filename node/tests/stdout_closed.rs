//! A node whose stdout reader goes away keeps running. Its status lines went through
//! `println!`, which panics when the write fails: with the pipe's read end closed (the process
//! reading the lines killed: `tpx up`, a log shipper, a test harness) the node's next line
//! (`TOPS` here, once a second; `ROLE`, `LOGOUT`, `CANCELONDISCONNECT` in production) panicked
//! the thread that printed it, and a node that prints from its serving loop exited with status
//! 101. Real `tpx node` process, its stdout a pipe whose read end the test closes.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tpx_client::{token_from_str, Client, ClientConfig};
use tpx_node::appliance::serve::PRINT_TOPS_ENV;

mod procs;

#[test]
fn a_node_whose_stdout_is_closed_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    procs::write_demo_accounts(dir.path());
    let cfg = procs::single_node_config(dir.path(), &[0], "", "", "");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tpx"))
        .args(["node", "--config"])
        .arg(&cfg)
        // A line a second, from the serving loop.
        .env(PRINT_TOPS_ENV, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut addr = None;
    let mut line = String::new();
    while out.read_line(&mut line).unwrap() > 0 {
        if let Some(a) = line.trim().strip_prefix("tpx node: listening on ") {
            addr = Some(a.parse::<std::net::SocketAddr>().unwrap());
        }
        if line.contains("tpx node: READY") {
            break;
        }
        line.clear();
    }
    let addr = addr.expect("no listening line");
    // The reader goes away; the node's next lines meet a closed pipe.
    drop(out);
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_millis(2500) {
        if let Some(st) = child.try_wait().unwrap() {
            panic!("the node exited ({st}) once its stdout was closed");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let c = Client::connect_at(
        ClientConfig::new(addr, 1, 1, token_from_str("demo-token-1")),
        0,
    );
    assert!(c.is_ok(), "login after stdout closed: {:?}", c.err());
    // SAFETY: kill(2) of the child this test started, by its pid.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGKILL);
    }
    let _ = child.wait();
}
