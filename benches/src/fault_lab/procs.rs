//! The lab's processes: `tpx witness` and two `tpx node`s, each started inside its namespace,
//! its stdout kept in a file and its `ROLE` lines noted; signalled and killed by pid only.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::topology::{Host, Topology};

/// A `ROLE` line: which node said it was what, in which term, when (ms since the lab began),
/// and in which incarnation (process start) of the node.
#[derive(Clone, Debug)]
pub struct RoleLine {
    pub node: usize,
    pub primary: bool,
    pub term: u64,
    pub at_ms: u64,
    /// `CLOCK_MONOTONIC` (ns) when the lab read the line (`failover-bench` times takeovers by
    /// it: the node flushes the line as it changes role, so this is an upper bound).
    pub mono_ns: u64,
    pub incarnation: u32,
}

/// A witness's `GRANTED term=.. holder=..` line, stamped like [`RoleLine::mono_ns`].
#[derive(Clone, Debug)]
pub struct GrantLine {
    pub term: u64,
    /// The node id (1 or 2).
    pub holder: u32,
    pub mono_ns: u64,
}

/// A node's `DENIED node=.. reason=..` line (the witness refused its candidacy).
#[derive(Clone, Debug)]
pub struct DeniedLine {
    pub node: usize,
    pub reason: String,
    pub mono_ns: u64,
}

/// What every process printed that the lab reads.
#[derive(Debug, Default)]
pub struct Shared {
    pub roles: Vec<RoleLine>,
    pub grants: Vec<GrantLine>,
    pub denials: Vec<DeniedLine>,
    /// `DIVERGED shard=...` lines, with the node and incarnation that printed them: a node's
    /// shard state differed from the hash its primary put in the log at a replica checkpoint.
    pub diverged: Vec<(usize, u32, String)>,
    /// `(node, incarnation)` of the processes that said `REJOIN` (their shards applied records
    /// the new term cut; they exit to rebuild them, and a `DIVERGED` line of theirs is expected).
    pub rejoining: Vec<(usize, u32)>,
}

impl Shared {
    /// The `DIVERGED` lines split: those of processes that never said `REJOIN` (a replica's
    /// state differed from its primary's hash: a violation), and the count of those that did
    /// (expected: their shards applied records the new term cut).
    pub fn diverged_split(&self) -> (Vec<String>, u64) {
        let (stale, real): (Vec<_>, Vec<_>) = self
            .diverged
            .iter()
            .partition(|(n, inc, _)| self.rejoining.contains(&(*n, *inc)));
        (
            real.into_iter().map(|(_, _, l)| l.clone()).collect(),
            stale.len() as u64,
        )
    }
}

/// The value of `key=value` in a line.
pub fn field(line: &str, key: &str) -> Option<u64> {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
        .and_then(|v| v.parse().ok())
}

/// Notes a line `host` printed in `shared` (read at `at_ms` / `mono_ns`).
fn note_line(
    shared: &SharedRef,
    host: Host,
    line: &str,
    at_ms: u64,
    mono_ns: u64,
    incarnation: u32,
) {
    match host {
        Host::Node(node) => {
            if let Some(r) = line.split("ROLE ").nth(1) {
                shared
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .roles
                    .push(RoleLine {
                        node,
                        primary: r.starts_with("primary"),
                        term: field(r, "term").unwrap_or(0),
                        at_ms,
                        mono_ns,
                        incarnation,
                    });
            } else if line.contains("tpx node: REJOIN") {
                shared
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .rejoining
                    .push((node, incarnation));
            } else if line.contains("DIVERGED shard=") {
                shared
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .diverged
                    .push((node, incarnation, format!("node-{}: {line}", node + 1)));
            } else if let Some(r) = line.split("DENIED ").nth(1) {
                let reason = r
                    .split_whitespace()
                    .find_map(|kv| kv.strip_prefix("reason="))
                    .unwrap_or("")
                    .to_string();
                shared
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .denials
                    .push(DeniedLine {
                        node,
                        reason,
                        mono_ns,
                    });
            }
        }
        Host::Witness => {
            if let Some(r) = line.strip_prefix("GRANTED ") {
                shared
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .grants
                    .push(GrantLine {
                        term: field(r, "term").unwrap_or(0),
                        holder: field(r, "holder").unwrap_or(0) as u32,
                        mono_ns,
                    });
            }
        }
        Host::Clients => {}
    }
}

pub type SharedRef = Arc<Mutex<Shared>>;

/// One running (or stopped) process.
#[derive(Debug)]
pub struct Proc {
    pub host: Host,
    pub child: Child,
    pub stopped: bool,
    pub incarnation: u32,
    /// Killed by the lab (its exit is expected).
    pub killed: bool,
}

impl Proc {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn signal(&mut self, sig: libc::c_int) {
        // SAFETY: a signal to our own child, by pid.
        unsafe {
            libc::kill(self.pid(), sig);
        }
        match sig {
            libc::SIGSTOP => self.stopped = true,
            libc::SIGCONT => self.stopped = false,
            libc::SIGKILL => {
                self.killed = true;
                self.stopped = false;
            }
            _ => {}
        }
    }

    /// Exit code once exited (`Some(None)`: by a signal).
    pub fn exited(&mut self) -> Option<Option<i32>> {
        match self.child.try_wait() {
            Ok(Some(s)) => Some(s.code()),
            _ => None,
        }
    }

    /// SIGCONT (if stopped), SIGTERM, up to `grace` to exit, then SIGKILL; reaps it.
    pub fn stop(&mut self, grace: Duration) -> Option<i32> {
        if self.exited().is_none() {
            self.signal(libc::SIGCONT);
            self.signal(libc::SIGTERM);
            let t0 = Instant::now();
            while t0.elapsed() < grace {
                if let Some(c) = self.exited() {
                    return c;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            self.signal(libc::SIGKILL);
        }
        self.child.wait().ok().and_then(|s| s.code())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.signal(libc::SIGCONT);
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// The `tpx` binary: `$TPX_BIN`, or next to this executable (or one folder up, for tests in
/// `target/*/deps`).
pub fn tpx_bin() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("TPX_BIN") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let mut dir = exe.parent();
    for _ in 0..2 {
        if let Some(d) = dir {
            let p = d.join("tpx");
            if p.is_file() {
                return Ok(p);
            }
            dir = d.parent();
        }
    }
    Err(format!(
        "no tpx binary next to {} (build it: cargo build -p tpx-node --bin tpx, same profile; or set TPX_BIN)",
        exe.display()
    ))
}

/// Starts `tpx ARGS` inside `host`'s namespace; its stdout goes to `<dir>/<name>.out` (every
/// line with the lab's ms), `ROLE` lines also to `shared`.
#[allow(clippy::too_many_arguments)]
pub fn spawn(
    topo: &Topology,
    tpx: &Path,
    dir: &Path,
    host: Host,
    args: &[String],
    shared: &SharedRef,
    started: Instant,
    incarnation: u32,
) -> Result<Proc, String> {
    use std::os::unix::process::CommandExt;
    let mut cmd_line = topo.exec_prefix(host);
    cmd_line.push(tpx.display().to_string());
    cmd_line.extend(args.iter().cloned());
    let mut cmd = Command::new(&cmd_line[0]);
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent. The child dies
    // with the lab's thread that started it (a lab or bench killed by a signal or a time limit
    // must not leave nodes running).
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            );
            Ok(())
        });
    }
    // Test-only: `TPX_LAB_DIVERGE=<shard>:<seq>` plants a divergence in node-2 alone (the
    // node's debug-build `TPX_TEST_DIVERGE`), to show the lab catches a DIVERGED checkpoint.
    cmd.env_remove("TPX_TEST_DIVERGE");
    if let (Host::Node(1), Ok(v)) = (host, std::env::var("TPX_LAB_DIVERGE")) {
        cmd.env("TPX_TEST_DIVERGE", v);
    }
    let mut child = cmd
        .args(&cmd_line[1..])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting {}: {e}", host.name()))?;
    let out_path = dir.join(format!("{}.out", host.name()));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&out_path)
        .map_err(|e| format!("{}: {e}", out_path.display()))?;
    let file = Arc::new(Mutex::new(file));
    {
        let mut f = file.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(
            f,
            "[{}] ---- start #{incarnation}: {}",
            started.elapsed().as_millis(),
            cmd_line.join(" ")
        );
    }
    if let Some(out) = child.stdout.take() {
        let (file, shared) = (file.clone(), shared.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let mono_ns = tpx_sequencer::process::mono_ns();
                let at_ms = started.elapsed().as_millis() as u64;
                note_line(&shared, host, &line, at_ms, mono_ns, incarnation);
                let mut f = file.lock().unwrap_or_else(|e| e.into_inner());
                let _ = writeln!(f, "[{at_ms}] {line}");
            }
        });
    }
    if let Some(err) = child.stderr.take() {
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let at_ms = started.elapsed().as_millis();
                let mut f = file.lock().unwrap_or_else(|e| e.into_inner());
                let _ = writeln!(f, "[{at_ms}] (stderr) {line}");
            }
        });
    }
    Ok(Proc {
        host,
        child,
        stopped: false,
        incarnation,
        killed: false,
    })
}
