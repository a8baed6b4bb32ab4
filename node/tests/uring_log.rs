//! A pair whose log is written through io_uring (`log_writer = "uring"`) keeps its primary.
//!
//! With that writer the sequencing core itself commits, so a segment the log makes in its
//! commit path (the first one, or a roll with no spare ready) was made on the core: 64 MiB
//! preallocated and zero-filled, 20-250 ms during which the core neither heartbeats nor reads
//! its peer. A standby doing that when the first records arrive found, once back, that it had
//! heard nothing from the primary for longer than `timeout_us` and took the term: `tpx up`
//! with `log_writer = "uring"` lost its primary at start in 3 of 3 runs. Real `tpx` processes,
//! the shipped segment size and standby timeout, logs on the test's temp dir (a disk).

use std::time::Duration;

use tpx_client::{req, token_from_str, ClientConfig, ClientError};
use tpx_node::gateway::accounts::{demo_accounts, demo_accounts_file};
use tpx_wire::replies::ServerMessage;

mod procs;

use procs::{login_retrying, order, Pair, WAIT};

#[test]
fn a_pair_writing_its_log_through_io_uring_keeps_its_primary() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("accounts.toml"),
        toml::to_string(&demo_accounts_file(&demo_accounts(3), 1_000_000)).unwrap(),
    )
    .unwrap();
    // The defaults `tpx up` runs with: 64 MiB segments, zero-filled; a 20 ms standby timeout
    // and a 20 ms lease.
    let pair = Pair::start_edited(dir.path(), 20_000, |_, text| {
        text.replace("segment_bytes = 1048576\n", "")
            .replace("timeout_us = 200000", "timeout_us = 20000")
            + "log_writer = \"uring\"\n"
    });
    // The standby appends the primary's first records into its first segment now.
    let cfg = ClientConfig::new(pair.entry[0], 1, 1, token_from_str("demo-token-1"));
    let mut c = login_retrying(cfg, 1);
    for cl in 1..=20u64 {
        c.send(&req::enter(order(cl))).unwrap();
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            assert!(std::time::Instant::now() < deadline, "no answer to {cl}");
            match c.recv(Duration::from_millis(200)) {
                Ok(ServerMessage::OrderAccepted(a)) if a.cl_ord_id == cl => break,
                Ok(ServerMessage::OrderRejected(r)) if r.cl_ord_id == cl => panic!("{r:?}"),
                Ok(_) | Err(ClientError::Timeout) => {}
                Err(e) => panic!("order {cl}: {e}"),
            }
        }
    }
    assert_eq!(
        pair.standby.within("ROLE primary", Duration::from_secs(1)),
        None,
        "the standby took the term"
    );
    assert_eq!(
        pair.primary
            .within("ROLE standby", Duration::from_millis(1)),
        None,
        "the primary stepped down"
    );
}
