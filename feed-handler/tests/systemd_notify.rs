//! `tpx-feed` under `Type=notify`, as systemd runs it: the real binary started with
//! `NOTIFY_SOCKET` (a datagram socket this test binds, as systemd does) and `WATCHDOG_USEC`.
//! It sends `READY=1` with a `STATUS=` once subscribed, pings `WATCHDOG=1` while its loop runs,
//! stops pinging while frozen (SIGSTOP: what makes systemd kill it), pings again after SIGCONT,
//! and says `STOPPING=1` on SIGTERM, exiting 0.

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn recv_for(sock: &UnixDatagram, d: Duration) -> Vec<String> {
    let end = Instant::now() + d;
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while Instant::now() < end {
        if let Ok(n) = sock.recv(&mut buf) {
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    got
}

fn expect(sock: &UnixDatagram, needle: &str) -> String {
    let end = Instant::now() + Duration::from_secs(20);
    let mut buf = [0u8; 1024];
    while Instant::now() < end {
        if let Ok(n) = sock.recv(&mut buf) {
            let m = String::from_utf8_lossy(&buf[..n]).into_owned();
            if m.contains(needle) {
                return m;
            }
        }
    }
    panic!("no notify message with {needle:?}");
}

/// Kills the child if the test fails half way (a frozen or running tpx-feed left behind).
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
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

#[test]
fn tpx_feed_notifies_ready_and_pings_the_watchdog_while_it_polls() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("feed.notify");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    // systemd sets WATCHDOG_PID to the service's pid; `exec` keeps the shell's.
    let child = Command::new("sh")
        .arg("-c")
        .arg("WATCHDOG_PID=$$ exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_tpx-feed"))
        .args(["--a", "aeron:ipc", "--json", "--interval-ms", "60000"])
        .env("NOTIFY_SOCKET", &path)
        .env("WATCHDOG_USEC", "200000")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut child = KillOnDrop(child);

    let ready = expect(&sock, "READY=1");
    assert!(
        ready.contains("STATUS=recovering next_seq=") || ready.contains("STATUS=live"),
        "{ready}"
    );
    let pings = |msgs: &[String]| msgs.iter().filter(|m| m.contains("WATCHDOG=1")).count();
    let running = recv_for(&sock, Duration::from_millis(600));
    assert!(pings(&running) >= 3, "pings every 100 ms: {running:?}");
    // The status is refreshed once a second.
    let status = expect(&sock, "STATUS=");
    assert!(status.contains("next_seq="), "{status}");

    signal(pid, libc::SIGSTOP);
    // A ping already queued may arrive; then none while frozen.
    let _ = recv_for(&sock, Duration::from_millis(100));
    let frozen = recv_for(&sock, Duration::from_millis(500));
    assert_eq!(pings(&frozen), 0, "pinged while frozen: {frozen:?}");
    signal(pid, libc::SIGCONT);
    let resumed = recv_for(&sock, Duration::from_millis(500));
    assert!(pings(&resumed) >= 1, "no ping after SIGCONT: {resumed:?}");

    signal(pid, libc::SIGTERM);
    expect(&sock, "STOPPING=1");
    let status = child.0.wait().unwrap();
    assert!(status.success(), "tpx-feed exited {status}");
}
