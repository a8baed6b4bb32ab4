//! systemd's notify protocol, as `Type=notify` units see it: real `tpx witness` and `tpx node`
//! processes started with `NOTIFY_SOCKET` (a datagram socket this test binds, as systemd does)
//! and `WATCHDOG_USEC`. Each sends `READY=1` (the node only after it replayed its log) and then
//! `WATCHDOG=1` at half the interval; a process frozen with SIGSTOP stops pinging (what makes
//! systemd kill it) and pings again after SIGCONT. The node's `STATUS=` names its role.

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod procs;

use procs::{free_port, node_config};
use tpx_node::gateway::accounts::{demo_accounts, demo_accounts_file};

/// A process under a fake systemd: its notify messages arrive on `sock`.
struct Notified {
    child: Child,
    sock: UnixDatagram,
}

impl Notified {
    fn start(dir: &Path, name: &str, args: &[&str]) -> Notified {
        let path = dir.join(format!("{name}.notify"));
        let sock = UnixDatagram::bind(&path).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        // systemd sets WATCHDOG_PID to the service's pid; `exec` keeps the shell's.
        let child = Command::new("sh")
            .arg("-c")
            .arg("WATCHDOG_PID=$$ exec \"$0\" \"$@\"")
            .arg(env!("CARGO_BIN_EXE_tpx"))
            .args(args)
            .current_dir(dir)
            .env("NOTIFY_SOCKET", &path)
            .env("WATCHDOG_USEC", "200000")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        Notified { child, sock }
    }

    /// Every message received within `d`.
    fn messages_for(&self, d: Duration) -> Vec<String> {
        let end = Instant::now() + d;
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        while Instant::now() < end {
            if let Ok(n) = self.sock.recv(&mut buf) {
                got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
        }
        got
    }

    /// Waits (up to 15 s) for a message containing `needle`; returns it.
    fn expect(&self, needle: &str) -> String {
        let end = Instant::now() + Duration::from_secs(15);
        let mut buf = [0u8; 1024];
        while Instant::now() < end {
            if let Ok(n) = self.sock.recv(&mut buf) {
                let m = String::from_utf8_lossy(&buf[..n]).into_owned();
                if m.contains(needle) {
                    return m;
                }
            }
        }
        panic!("no notify message with {needle:?}");
    }

    fn signal(&self, sig: libc::c_int) {
        // SAFETY: a signal to our own child, by pid.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, sig);
        }
    }
}

impl Drop for Notified {
    fn drop(&mut self) {
        self.signal(libc::SIGCONT);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pings(msgs: &[String]) -> usize {
    msgs.iter()
        .filter(|m| m.lines().any(|l| l == "WATCHDOG=1"))
        .count()
}

/// Pings at half of WATCHDOG_USEC (200 ms) while running, none while frozen, again after.
fn check_watchdog(p: &Notified) {
    let running = p.messages_for(Duration::from_millis(650));
    assert!(pings(&running) >= 3, "pings while running: {running:?}");
    p.signal(libc::SIGSTOP);
    let _ = p.messages_for(Duration::from_millis(50)); // one may be in flight
    let frozen = p.messages_for(Duration::from_millis(500));
    assert_eq!(pings(&frozen), 0, "pings while frozen: {frozen:?}");
    p.signal(libc::SIGCONT);
    let again = p.messages_for(Duration::from_millis(650));
    assert!(pings(&again) >= 2, "pings after SIGCONT: {again:?}");
}

#[test]
fn the_witness_and_the_node_tell_systemd_they_are_ready_and_alive() {
    let dir = tempfile::tempdir().unwrap();
    let accounts = demo_accounts_file(&demo_accounts(4), 1_000_000);
    std::fs::write(
        dir.path().join("accounts.toml"),
        toml::to_string(&accounts).unwrap(),
    )
    .unwrap();
    let w = free_port();
    let w_s = w.to_string();
    let witness = Notified::start(
        dir.path(),
        "witness",
        &[
            "witness",
            "--listen",
            &w_s,
            "--lease-us",
            "200000",
            "--state-file",
            "witness.state",
        ],
    );
    let ready = witness.expect("READY=1");
    assert!(ready.contains("STATUS=witness"), "{ready}");
    check_watchdog(&witness);

    let cfg = node_config(dir.path(), 0, 0, [free_port(), free_port()], w);
    let cfg_s = cfg.display().to_string();
    let node = Notified::start(
        dir.path(),
        "node",
        &["node", "--config", &cfg_s, "--role", "primary"],
    );
    let ready = node.expect("READY=1");
    assert!(ready.contains("STATUS="), "{ready}");
    let status = node.expect("STATUS=primary term=1");
    assert!(status.contains("acked_seq="), "{status}");
    check_watchdog(&node);
}
