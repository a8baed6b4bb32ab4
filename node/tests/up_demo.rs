//! `tpx up --demo`, the appliance as `make demo` runs it (witness, primary and standby
//! processes, the demo's makers, takers and admin over real TCP), through a takeover: the
//! primary node process is killed with SIGKILL while the demo runs; the standby takes over and
//! the demo's clients, which are `FailoverClient`s over both nodes, log in to it, resume their
//! sessions and go on trading. Before, each demo client spoke to the first primary only: after
//! any takeover (a kill, or a lease lapse on a starved host) every client ended with "session
//! closed" and the demo sent nothing more for the rest of its run.

use std::time::Duration;

mod procs;

use procs::Proc;

/// A base port whose neighbours `tpx up` uses too (+1 order entry of node 2, +100 witness,
/// +101/+102 replication) are free.
fn free_base() -> u16 {
    loop {
        let p = procs::free_port().port();
        if p > 65_000 {
            continue;
        }
        let free = [1u16, 100, 101, 102].iter().all(|o| {
            std::net::TcpListener::bind(("127.0.0.1", p + o)).is_ok()
                && std::net::UdpSocket::bind(("127.0.0.1", p + o)).is_ok()
        });
        if free {
            return p;
        }
    }
}

/// The requests a per-second status line of `tpx up` reports.
fn requests_per_s(line: &str) -> Option<u64> {
    let (head, _) = line.split_once(" requests/s")?;
    head.split_whitespace().last()?.parse().ok()
}

#[test]
fn the_demo_goes_on_trading_after_the_primary_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let base = free_base();
    let listen = format!("127.0.0.1:{base}");
    let dir_s = dir.path().display().to_string();
    let mut up = Proc::start(
        "up",
        &[
            "up",
            "--demo",
            "--listen",
            &listen,
            "--dir",
            &dir_s,
            // Long enough that a takeover slowed by a loaded CI machine still leaves many
            // status lines after it.
            "--duration",
            "20",
        ],
    );
    up.expect("tpx up: ready");
    // Trading before the kill.
    let before = up.expect("requests/s");
    let status = up.expect("): primary");
    // "... | witness (pid 1): witness, node-1 (pid 2): primary, node-2 (pid 3): standby".
    let (node, pid) = status
        .rsplit(" | ")
        .next()
        .unwrap_or_default()
        .split(", ")
        .find_map(|part| {
            let (name, rest) = part.split_once(" (pid ")?;
            let (pid, role) = rest.split_once("): ")?;
            (role == "primary").then(|| (name.to_string(), pid.parse::<i32>().ok()))
        })
        .unwrap_or_else(|| panic!("no primary in {status:?} (first status line {before:?})"));
    let pid = pid.expect("the primary's pid");
    std::thread::sleep(Duration::from_secs(2));
    // SAFETY: a signal to a process this test started (the child of its `tpx up`), by pid.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
    let other = if node == "node-1" { "node=2" } else { "node=1" };
    up.expect(&format!("ROLE primary {other}"));
    let summary = up
        .within("demo clients:", Duration::from_secs(40))
        .expect("the demo's summary");
    assert_eq!(up.wait(), Some(0), "tpx up failed");
    let lines = up.seen();
    let takeover = lines
        .iter()
        .position(|l| l.contains(&format!("ROLE primary {other}")))
        .unwrap();
    let after: Vec<u64> = lines[takeover..]
        .iter()
        .filter_map(|l| requests_per_s(l))
        .collect();
    eprintln!("{summary}\nrequests/s after the takeover: {after:?}");
    assert!(
        after.iter().filter(|&&n| n > 0).count() >= 3,
        "the demo did not go on after the takeover: {after:?}"
    );
    let failovers: u64 = summary
        .split(" failovers")
        .next()
        .and_then(|h| h.split_whitespace().last())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no failovers in {summary:?}"));
    assert!(failovers >= 1, "{summary}");
    assert!(summary.contains(" 0 errors"), "{summary}");
}
