//! Launching the processes of a failover run and reading their line reports.
//!
//! [`Launcher`] is the one place that knows which executable runs a sequencer node or the
//! witness: today `tpx-seq node|witness` (or this bench's own executable, which embeds the same
//! command line); when the node runs the replica it becomes `tpx node --role ...`.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, TryRecvError};
use std::time::{Duration, Instant};

/// What runs a node or the witness.
#[derive(Clone, Debug)]
pub struct Launcher {
    pub program: PathBuf,
    /// Arguments before the `tpx-seq` subcommand (e.g. `["seq"]` for this bench's executable).
    pub prefix: Vec<String>,
}

/// One node's settings for a run.
#[derive(Clone, Debug)]
pub struct NodeSpec {
    pub id: u32,
    pub peer: u32,
    pub listen: SocketAddr,
    pub peer_addr: SocketAddr,
    pub witness_addr: SocketAddr,
    pub dir: PathBuf,
    pub primary: bool,
    pub timeout_us: u64,
    pub heartbeat_us: u64,
    pub load_per_sec: u64,
    pub spin_standby: bool,
    pub rt_priority: u32,
    /// `ACKED` / `FOLLOW` at most this often (µs).
    pub report_us: u64,
}

impl Launcher {
    /// This executable, which runs `tpx-seq`'s command line after a `seq` argument.
    pub fn self_exec() -> std::io::Result<Launcher> {
        Ok(Launcher {
            program: std::env::current_exe()?,
            prefix: vec!["seq".into()],
        })
    }

    /// A `tpx-seq` binary.
    pub fn tpx_seq(path: &Path) -> Launcher {
        Launcher {
            program: path.to_path_buf(),
            prefix: Vec::new(),
        }
    }

    fn command(&self) -> Command {
        let mut c = Command::new(&self.program);
        c.args(&self.prefix);
        c
    }

    /// The command that runs one node (primary or standby).
    pub fn node(&self, s: &NodeSpec) -> Command {
        let mut c = self.command();
        c.arg("node")
            .args(["--id", &s.id.to_string(), "--peer", &s.peer.to_string()])
            .args(["--listen", &s.listen.to_string()])
            .args(["--peer-addr", &s.peer_addr.to_string()])
            .args(["--witness-addr", &s.witness_addr.to_string()])
            .arg("--dir")
            .arg(&s.dir)
            .args(["--timeout-ms", &format!("{}", s.timeout_us as f64 / 1e3)])
            .args(["--heartbeat-us", &s.heartbeat_us.to_string()])
            .args(["--load", &s.load_per_sec.to_string()])
            .args(["--segment-mib", "4"])
            .args(["--report-us", &s.report_us.to_string()]);
        if s.spin_standby {
            c.arg("--spin-standby");
        }
        if s.rt_priority > 0 {
            c.args(["--rt-priority", &s.rt_priority.to_string()]);
        }
        if s.primary {
            c.arg("--primary");
        }
        c
    }

    /// The command that runs the witness.
    pub fn witness(&self, listen: SocketAddr, lease_us: u64, state: &Path, rt: u32) -> Command {
        let mut c = self.command();
        c.arg("witness")
            .args(["--listen", &listen.to_string()])
            .args(["--lease-ms", &format!("{}", lease_us as f64 / 1e3)])
            .arg("--state")
            .arg(state);
        if rt > 0 {
            c.args(["--rt-priority", &rt.to_string()]);
        }
        c
    }
}

/// A child process whose stdout lines arrive on a channel.
#[derive(Debug)]
pub struct Proc {
    pub child: Child,
    lines: Receiver<String>,
    pub name: String,
    /// The stdout reader saw the end (the process is gone).
    pub closed: bool,
}

impl Proc {
    pub fn spawn(name: &str, mut cmd: Command) -> std::io::Result<Proc> {
        use std::os::unix::process::CommandExt;
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent. The child
        // dies with the bench (a bench killed by a signal or a time limit left its real-time
        // nodes running).
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
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let out = child
            .stdout
            .take()
            .ok_or_else(|| std::io::Error::other("no stdout"))?;
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines() {
                let Ok(l) = l else { break };
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Ok(Proc {
            child,
            lines: rx,
            name: name.to_string(),
            closed: false,
        })
    }

    /// The lines available now.
    pub fn drain(&mut self) -> Vec<String> {
        let mut v = Vec::new();
        loop {
            match self.lines.try_recv() {
                Ok(l) => v.push(l),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    self.closed = true;
                    break;
                }
            }
        }
        v
    }

    /// Every line up to the end of the output (after the process died), within `limit`.
    pub fn drain_to_end(&mut self, limit: Duration) -> Vec<String> {
        let t0 = Instant::now();
        let mut v = Vec::new();
        while !self.closed && t0.elapsed() < limit {
            match self.lines.recv_timeout(Duration::from_millis(10)) {
                Ok(l) => v.push(l),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => self.closed = true,
            }
        }
        v
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: sending a signal to our own child, by its pid.
        unsafe {
            libc::kill(self.child.id() as i32, sig);
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of `key=value` in a report line.
pub fn field(line: &str, key: &str) -> Option<u64> {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
        .and_then(|v| v.parse().ok())
}

/// A free loopback port.
pub fn free_addr() -> std::io::Result<SocketAddr> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    l.local_addr()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_parse() {
        let l = "FIRST term=3 seq=813 mono_ns=12345 applied=812 hash=99";
        assert_eq!(field(l, "term"), Some(3));
        assert_eq!(field(l, "seq"), Some(813));
        assert_eq!(field(l, "mono_ns"), Some(12345));
        assert_eq!(field(l, "nope"), None);
    }
}
