//! Network namespaces for the fault lab: one per process (witness, node 1, node 2, clients),
//! each with a veth `eth0` (10.77.0.x/24) whose peer sits on a bridge inside a namespace of its
//! own, so a partition is an nftables rule inside a namespace and never touches the host's
//! network. Names carry the lab's pid and run number (`tpxl<pid>r<n>-<role>`); everything is
//! removed on drop.

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};

/// A process's place in the lab.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Host {
    Witness,
    Node(usize),
    Clients,
}

impl Host {
    pub const ALL: [Host; 4] = [Host::Witness, Host::Node(0), Host::Node(1), Host::Clients];

    fn short(self) -> &'static str {
        match self {
            Host::Witness => "w",
            Host::Node(0) => "n1",
            Host::Node(_) => "n2",
            Host::Clients => "c",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Host::Witness => "witness",
            Host::Node(0) => "node-1",
            Host::Node(_) => "node-2",
            Host::Clients => "clients",
        }
    }

    pub fn ip(self) -> Ipv4Addr {
        Ipv4Addr::new(
            10,
            77,
            0,
            match self {
                Host::Witness => 1,
                Host::Node(k) => 2 + k as u8,
                Host::Clients => 10,
            },
        )
    }
}

/// Runs a command, returning its stderr on failure.
pub fn sh(args: &[&str], stdin: Option<&str>) -> Result<(), String> {
    use std::io::Write as _;
    let mut c = Command::new(args[0]);
    c.args(&args[1..])
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = c.spawn().map_err(|e| format!("{}: {e}", args.join(" ")))?;
    if let (Some(text), Some(mut w)) = (stdin, child.stdin.take()) {
        let _ = w.write_all(text.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("{}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The lab's namespaces (or loopback, when namespaces cannot be made).
#[derive(Debug)]
pub struct Topology {
    prefix: String,
    /// False: every process on the host's loopback (no partitions possible).
    pub netns: bool,
    made: Vec<String>,
}

impl Topology {
    /// Creates the namespaces, veths and bridge. Falls back to loopback (and says why) when
    /// `ip netns` or nft is unavailable.
    pub fn create() -> Topology {
        // The pid and a per-process run number: two labs of one test process (the test harness
        // runs tests on threads) must not meet on one name.
        static RUNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let prefix = format!("tpxl{}r{run}", std::process::id());
        let mut t = Topology {
            prefix,
            netns: true,
            made: Vec::new(),
        };
        if let Err(e) = t.build() {
            eprintln!("fault-lab: no network namespaces ({e}); every process on loopback, partitions and loss off");
            t.teardown();
            t.netns = false;
        }
        t
    }

    /// Every process on the host's loopback, no namespaces (`failover-bench`'s default: kills
    /// and pauses need no partitions).
    pub fn loopback() -> Topology {
        Topology {
            prefix: format!("tpxl{}", std::process::id()),
            netns: false,
            made: Vec::new(),
        }
    }

    pub fn ns(&self, h: Host) -> String {
        format!("{}-{}", self.prefix, h.short())
    }

    fn bridge_ns(&self) -> String {
        format!("{}-br", self.prefix)
    }

    /// The address a host's processes listen on.
    pub fn addr(&self, h: Host) -> IpAddr {
        if self.netns {
            IpAddr::V4(h.ip())
        } else {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        }
    }

    fn add_ns(&mut self, name: &str) -> Result<(), String> {
        sh(&["ip", "netns", "add", name], None)?;
        self.made.push(name.to_string());
        sh(&["ip", "-n", name, "link", "set", "lo", "up"], None)
    }

    fn build(&mut self) -> Result<(), String> {
        if !std::path::Path::new("/usr/sbin/nft").exists()
            && sh(&["nft", "--version"], None).is_err()
        {
            return Err("nft is not installed (scripts/setup.sh installs nftables)".into());
        }
        let br = self.bridge_ns();
        self.add_ns(&br)?;
        sh(
            &["ip", "-n", &br, "link", "add", "br0", "type", "bridge"],
            None,
        )?;
        sh(&["ip", "-n", &br, "link", "set", "br0", "up"], None)?;
        for h in Host::ALL {
            let ns = self.ns(h);
            self.add_ns(&ns)?;
            let v = format!("v{}", h.short());
            // Both ends are made inside the namespaces: the host never sees them.
            sh(
                &[
                    "ip", "-n", &br, "link", "add", &v, "type", "veth", "peer", "name", "eth0",
                    "netns", &ns,
                ],
                None,
            )?;
            sh(&["ip", "-n", &br, "link", "set", &v, "master", "br0"], None)?;
            sh(&["ip", "-n", &br, "link", "set", &v, "up"], None)?;
            let cidr = format!("{}/24", h.ip());
            sh(
                &["ip", "-n", &ns, "addr", "add", &cidr, "dev", "eth0"],
                None,
            )?;
            sh(&["ip", "-n", &ns, "link", "set", "eth0", "up"], None)?;
            self.set_rules(h, &[])?;
        }
        Ok(())
    }

    /// Replaces the namespace's fault rules (nftables lines inside `chain input` / `chain
    /// output`, given as `("input"|"output", rule)`), atomically.
    pub fn set_rules(&self, h: Host, rules: &[(&str, String)]) -> Result<(), String> {
        if !self.netns {
            return Ok(());
        }
        let mut text = String::from(
            "table inet lab\ndelete table inet lab\ntable inet lab {\n\
             chain input { type filter hook input priority 0; policy accept; }\n\
             chain output { type filter hook output priority 0; policy accept; }\n}\n",
        );
        for (chain, r) in rules {
            text.push_str(&format!("add rule inet lab {chain} {r}\n"));
        }
        sh(
            &["ip", "netns", "exec", &self.ns(h), "nft", "-f", "-"],
            Some(&text),
        )
    }

    /// A token-bucket shaper on the host's `eth0` (`None`: removed): a slow link whose queue
    /// delays packets (`tc netem` is not in this kernel).
    pub fn set_shaper(&self, h: Host, rate_kbit: Option<u32>) -> Result<(), String> {
        if !self.netns {
            return Ok(());
        }
        let ns = self.ns(h);
        let _ = sh(
            &[
                "ip", "netns", "exec", &ns, "tc", "qdisc", "del", "dev", "eth0", "root",
            ],
            None,
        );
        if let Some(r) = rate_kbit {
            let rate = format!("{r}kbit");
            sh(
                &[
                    "ip", "netns", "exec", &ns, "tc", "qdisc", "add", "dev", "eth0", "root", "tbf",
                    "rate", &rate, "burst", "16kb", "latency", "200ms",
                ],
                None,
            )?;
        }
        Ok(())
    }

    /// The command prefix that runs a program inside the host's namespace.
    pub fn exec_prefix(&self, h: Host) -> Vec<String> {
        if self.netns {
            vec!["ip".into(), "netns".into(), "exec".into(), self.ns(h)]
        } else {
            Vec::new()
        }
    }

    /// The namespace file a thread enters to live on `h` (`None`: loopback).
    pub fn ns_path(&self, h: Host) -> Option<String> {
        self.netns.then(|| format!("/run/netns/{}", self.ns(h)))
    }

    fn teardown(&mut self) {
        for ns in self.made.drain(..).rev() {
            let _ = sh(&["ip", "netns", "del", &ns], None);
        }
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        self.teardown();
    }
}

/// Removes namespaces left by labs whose process is gone (a SIGKILLed lab cannot clean up).
pub fn remove_stale() {
    let Ok(rd) = std::fs::read_dir("/run/netns") else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let Some(rest) = name.strip_prefix("tpxl") else {
            continue;
        };
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let Ok(pid) = digits.parse::<i32>() else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = sh(&["ip", "netns", "del", &name], None);
        }
    }
}

/// Moves the calling thread into the namespace at `path` (sockets it opens afterwards live
/// there); `None`: stays.
pub fn enter(path: Option<&str>) -> Result<(), String> {
    let Some(path) = path else { return Ok(()) };
    let f = File::open(path).map_err(|e| format!("{path}: {e}"))?;
    // SAFETY: setns on a valid namespace fd; affects only this thread's network namespace.
    let r = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    if r != 0 {
        return Err(format!("setns {path}: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}
