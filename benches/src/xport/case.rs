//! One case of `repl-transport-bench` (a transport, an idle strategy, a rate), run as three
//! parts: a witness thread in this process (parked in `ppoll`), the standby and the primary as
//! two child processes (this executable again, `node ...`). Each child prints one `RESULT`
//! line of JSON; the parent collects them.

use std::io::{BufRead, Read, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};
use tpx_md::aeron::EmbeddedDriver;
use tpx_sequencer::process::mono_ns;
use tpx_sequencer::{SystemClock, TcpTransport, WitnessServer};

use super::node::{driver_config, Idle, NodeArgs, NodeResult, Xport, WITNESS_ID};

/// The witness's lease (the node's default).
pub const LEASE_NS: u64 = 20_000_000;

/// A case.
#[derive(Clone, Copy, Debug)]
pub struct Case {
    pub xport: Xport,
    pub idle: Idle,
    pub rate: u64,
    pub duration_ms: u64,
}

impl NodeArgs {
    /// The command line of a child (`node ...`).
    pub fn to_args(&self) -> Vec<String> {
        let mut v = vec![
            "node".to_string(),
            "--role".into(),
            if self.primary { "primary" } else { "standby" }.into(),
            "--xport".into(),
            self.xport.name().into(),
            "--idle".into(),
            self.idle.name().into(),
            "--rate".into(),
            self.rate.to_string(),
            "--listen".into(),
            self.listen.to_string(),
            "--peer".into(),
            self.peer.to_string(),
            "--witness".into(),
            self.witness.to_string(),
        ];
        if let Some(d) = &self.aeron_dir {
            v.push("--aeron-dir".into());
            v.push(d.clone());
        }
        v
    }
}

/// A child's result as one JSON object.
pub fn result_json(r: &NodeResult) -> Value {
    let lat = r.latency_ns.as_ref().map(|h| {
        json!({
            "count": h.len(),
            "p50_ns": h.value_at_quantile(0.50),
            "p90_ns": h.value_at_quantile(0.90),
            "p99_ns": h.value_at_quantile(0.99),
            "p999_ns": h.value_at_quantile(0.999),
            "max_ns": h.max(),
            "mean_ns": h.mean().round() as u64,
        })
    });
    json!({
        "role": r.role,
        "records": r.records,
        "unacked": r.unacked,
        "refused": r.refused,
        "cpu_per_s": (r.cpu_per_s * 1e4).round() / 1e4,
        "window_s": r.window_s,
        "latency": lat,
        "error": r.error,
        "detail": r.detail,
    })
}

fn free_addr() -> std::io::Result<SocketAddr> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    l.local_addr()
}

fn read_result(child: std::process::Child, stdout: &str) -> Result<Value, String> {
    let out = child
        .wait_with_output()
        .map_err(|e| format!("child: {e}"))?;
    read_result_of(&out.status, stdout, &out.stderr)
}

fn read_result_of(
    status: &std::process::ExitStatus,
    stdout: &str,
    stderr: &[u8],
) -> Result<Value, String> {
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .ok_or_else(|| {
            format!(
                "child printed no RESULT (status {status}): {}",
                String::from_utf8_lossy(stderr)
            )
        })?;
    serde_json::from_str(line).map_err(|e| format!("child RESULT: {e}"))
}

/// Runs one case with `exe` as the children's program; returns its JSON.
pub fn run_case(exe: &std::path::Path, c: Case) -> Result<Value, String> {
    let io = |e: std::io::Error| e.to_string();
    let (w_addr, a1, a2) = (
        free_addr().map_err(io)?,
        free_addr().map_err(io)?,
        free_addr().map_err(io)?,
    );
    // The witness: a thread parked in ppoll on its sockets.
    let stop = Arc::new(AtomicBool::new(false));
    let wt = {
        let stop = stop.clone();
        let net = TcpTransport::new(WITNESS_ID, Some(w_addr), vec![]).map_err(io)?;
        std::thread::spawn(move || {
            let mut w = WitnessServer::new(LEASE_NS, net, SystemClock::new(), None);
            while !stop.load(Ordering::Relaxed) {
                if w.poll() == 0 {
                    w.transport().wait_readable(1_000);
                }
            }
        })
    };
    let driver = if c.idle == Idle::DriverSpin {
        Some(EmbeddedDriver::launch(&driver_config(true)).map_err(|e| e.to_string())?)
    } else {
        None
    };
    let base = NodeArgs {
        primary: false,
        xport: c.xport,
        idle: c.idle,
        rate: c.rate,
        listen: a2,
        peer: a1,
        witness: w_addr,
        aeron_dir: driver.as_ref().map(|d| d.dir().to_string()),
    };
    let spawn = |a: &NodeArgs| {
        Command::new(exe)
            .args(a.to_args())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", exe.display()))
    };
    // The primary first; it takes the term, then the standby joins (its `Hello` is answered at
    // once) and acks a warm-up record: `JOINED`. Then both get the window on stdin.
    let mut primary = spawn(&NodeArgs {
        primary: true,
        listen: a1,
        peer: a2,
        ..base.clone()
    })?;
    let mut lines = std::io::BufReader::new(primary.stdout.take().ok_or("no stdout")?);
    let mut standby = None;
    let mut line = String::new();
    let mut joined = false;
    let mut standby_err = None;
    loop {
        line.clear();
        match lines.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) if line.trim() == "PRIMARY" && standby.is_none() => match spawn(&base) {
                Ok(c) => standby = Some(c),
                Err(e) => {
                    standby_err = Some(e);
                    break;
                }
            },
            Ok(_) if line.trim() == "JOINED" => {
                joined = true;
                break;
            }
            Ok(_) => {}
        }
    }
    let mut rest = String::new();
    if joined {
        let start_ns = mono_ns() + 200_000_000;
        let msg = format!(
            "START {start_ns} {}\n",
            start_ns + c.duration_ms * 1_000_000
        );
        for ch in [Some(&mut primary), standby.as_mut()].into_iter().flatten() {
            if let Some(i) = ch.stdin.as_mut() {
                let _ = i.write_all(msg.as_bytes());
                let _ = i.flush();
            }
        }
    } else {
        let _ = primary.kill();
        if let Some(s) = standby.as_mut() {
            let _ = s.kill();
        }
        rest.push_str(&line);
    }
    let _ = lines.read_to_string(&mut rest);
    let p = read_result(primary, &rest);
    let s = match standby {
        Some(sb) => sb
            .wait_with_output()
            .map_err(|e| format!("standby: {e}"))
            .and_then(|o| {
                read_result_of(&o.status, &String::from_utf8_lossy(&o.stdout), &o.stderr)
            }),
        None => Err(standby_err.unwrap_or_else(|| "standby not started".into())),
    };
    stop.store(true, Ordering::Relaxed);
    let _ = wt.join();
    drop(driver);
    let (p, s) = (p?, s?);
    for r in [&p, &s] {
        if let Some(e) = r.get("error").and_then(|e| e.as_str()) {
            return Err(format!("{}: {e}", r["role"]));
        }
    }
    Ok(json!({
        "transport": c.xport.name(),
        "idle": c.idle.name(),
        "rate_per_s": c.rate,
        "duration_ms": c.duration_ms,
        "primary": p,
        "standby": s,
    }))
}

/// `uptime`'s load averages (the machine is shared: every run records them).
pub fn loadavg() -> String {
    let mut s = String::new();
    if let Ok(mut f) = std::fs::File::open("/proc/loadavg") {
        let _ = f.read_to_string(&mut s);
    }
    s.trim().to_string()
}
