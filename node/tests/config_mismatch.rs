//! A standby started with a configuration that differs from its primary's in what the two must
//! share (the config digest: shards, instruments, `[risk]`, `max_accounts`, version) is refused
//! pairing (`CONFIG MISMATCH`). Found by the fault lab's `misconfigured_standby` fault and this
//! test: when the primary then dies, that standby must not take the term either, or the venue
//! would serve with a configuration its log was not written under, and the correct node could
//! never pair with it again. It says `UNPROMOTABLE` and stays standby; the clients wait for the
//! operator (restart it with the right configuration: it then takes over).

use std::time::Duration;

mod procs;

use procs::{free_port, listening, node_config, Proc};

#[test]
fn a_misconfigured_standby_never_takes_the_term() {
    let dir = tempfile::tempdir().unwrap();
    procs::write_demo_accounts(dir.path());
    let w = free_port();
    let repl = [free_port(), free_port()];
    let cfgs = [
        node_config(dir.path(), 0, 0, repl, w),
        node_config(dir.path(), 1, 0, repl, w),
    ];
    // Node 2's max_accounts differs: another digest.
    let wrong = dir.path().join("node-2.wrong.toml");
    let text = std::fs::read_to_string(&cfgs[1]).unwrap();
    assert!(text.contains("max_accounts = 64"));
    std::fs::write(
        &wrong,
        text.replace("max_accounts = 64", "max_accounts = 128"),
    )
    .unwrap();

    let w_s = w.to_string();
    let _witness = Proc::start(
        "witness",
        &[
            "witness",
            "--listen",
            &w_s,
            "--lease-us",
            "200000",
            "--state-file",
            &dir.path().join("witness.state").display().to_string(),
        ],
    );
    let c0 = cfgs[0].display().to_string();
    let mut primary = Proc::start("node-1", &["node", "--config", &c0, "--role", "primary"]);
    primary.expect("ROLE primary node=1");
    listening(&primary);
    let wrong_s = wrong.display().to_string();
    let mut standby = Proc::start(
        "node-2",
        &["node", "--config", &wrong_s, "--role", "standby"],
    );
    listening(&standby);
    // It pairs with nobody (the `CONFIG MISMATCH` lines go to stderr) and says it will not
    // take over.
    standby.expect("UNPROMOTABLE node=2");

    primary.signal(libc::SIGKILL);
    primary.wait();
    // Well past the 200 ms timeout and lease: the misconfigured standby must not promote.
    assert!(
        standby
            .within("ROLE primary", Duration::from_secs(3))
            .is_none(),
        "a standby whose configuration differs from its primary's took the term"
    );

    // Restarted with the right configuration, it takes over.
    standby.signal(libc::SIGTERM);
    standby.wait();
    let c1 = cfgs[1].display().to_string();
    let fixed = Proc::start("node-2", &["node", "--config", &c1, "--role", "standby"]);
    fixed.expect("ROLE primary node=2");
}
