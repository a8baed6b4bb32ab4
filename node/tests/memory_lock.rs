//! `lock_memory = true`: a real `tpx node` process locks its pages once it has replayed its log
//! (`tpx node: LOCKED memory ...`), and the kernel agrees (`VmLck` of its /proc status well
//! above zero). Without the setting nothing is locked. Where the test runs without the right to
//! lock (not root, no CAP_IPC_LOCK, a low RLIMIT_MEMLOCK), the node must say so in a WARNING
//! line and run on.

mod procs;

use procs::Proc;

fn start(dir: &std::path::Path, name: &'static str, lock: bool) -> Proc {
    let cfg = dir.join(format!("{name}.toml"));
    std::fs::write(
        &cfg,
        format!(
            r#"
listen = "127.0.0.1:0"
accounts_file = "accounts.toml"
idle = "park"
max_orders = 4096
max_accounts = 64
lock_memory = {lock}
[[core_plan.cores]]
cpu = 0
gateway = true
sequencer = true
shards = [0]
[replication]
log_dir = "{name}-log"
"#
        ),
    )
    .unwrap();
    Proc::start(
        name,
        &[
            "node",
            "--config",
            &cfg.display().to_string(),
            "--role",
            "primary",
        ],
    )
}

fn vm_lck_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    tpx_node::runtime::memory_lock::vm_lck_kib(&s).unwrap()
}

fn may_lock() -> bool {
    // SAFETY: getrlimit fills the struct we pass.
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) } == 0;
    // SAFETY: geteuid has no arguments.
    let root = unsafe { libc::geteuid() } == 0;
    root || (ok && lim.rlim_cur == libc::RLIM_INFINITY)
}

#[test]
fn a_node_with_lock_memory_locks_its_pages_after_the_replay() {
    let dir = tempfile::tempdir().unwrap();
    procs::write_demo_accounts(dir.path());
    let unlocked = start(dir.path(), "plain", false);
    unlocked.expect("READY");
    assert_eq!(
        vm_lck_kib(unlocked.pid()),
        0,
        "nothing locked without the setting"
    );
    drop(unlocked);

    let node = start(dir.path(), "locked", true);
    if !may_lock() {
        let line = node.expect("memory not locked");
        eprintln!("SKIPPED the locking check (no right to lock here): {line}");
        return;
    }
    let line = node.expect("LOCKED memory");
    node.expect("READY");
    let kib = vm_lck_kib(node.pid());
    eprintln!("{line}; /proc says VmLck {kib} KiB");
    // The shards' tables, rings and the binary's mapped pages: many MiB.
    assert!(kib > 16 * 1024, "VmLck {kib} KiB");
}
