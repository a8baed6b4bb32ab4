//! The test harness's own hygiene: a `tpx node` killed by SIGKILL cannot remove its stats file
//! (`/dev/shm/tpx-node-PORT.stats`, 4 MiB, named for an ephemeral port), and `make test` left
//! hundreds of them in /dev/shm (335 on this VM after a few runs). `procs::Proc` removes the
//! file when it drops the process, if the file still names that process's pid.

mod procs;

#[test]
fn a_killed_nodes_stats_file_goes_with_its_proc() {
    let dir = tempfile::tempdir().unwrap();
    procs::write_demo_accounts(dir.path());
    let cfg = procs::single_node_config(dir.path(), &[0], "", "", "");
    let mut node = procs::Proc::start("node", &["node", "--config", cfg.to_str().unwrap()]);
    node.expect("tpx node: READY");
    let path = node
        .own_stats_file()
        .expect("a running node's stats file, naming its pid");
    node.signal(libc::SIGKILL);
    node.wait();
    assert!(path.exists(), "SIGKILL leaves {}", path.display());
    drop(node);
    assert!(
        !path.exists(),
        "{} is still there after its Proc was dropped",
        path.display()
    );
}
