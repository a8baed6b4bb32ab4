//! The machine summary of a run: cores, CPU model, kernel, and `tpx-tune check --json` when the
//! binary can be found (next to this one, or on `PATH`).

use std::path::PathBuf;
use std::process::Command;

use serde_json::{json, Value};

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

fn tpx_tune() -> Option<PathBuf> {
    let here = std::env::current_exe().ok()?;
    let sibling = here.parent()?.join("tpx-tune");
    if sibling.exists() {
        return Some(sibling);
    }
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("tpx-tune"))
            .find(|c| c.exists())
    })
}

/// `tpx-tune check --json`'s output (it exits non-zero when checks fail; the JSON is kept).
pub fn tune_check() -> Value {
    let Some(bin) = tpx_tune() else {
        return json!({ "available": false, "why": "tpx-tune not found next to tpx-load or on PATH" });
    };
    match Command::new(&bin).args(["check", "--json"]).output() {
        Ok(o) => match serde_json::from_slice::<Value>(&o.stdout) {
            Ok(v) => json!({ "available": true, "exit_code": o.status.code(), "result": v }),
            Err(e) => {
                json!({ "available": false, "why": format!("{}: output is not JSON: {e}", bin.display()) })
            }
        },
        Err(e) => json!({ "available": false, "why": format!("{}: {e}", bin.display()) }),
    }
}

/// Cores, CPU model, kernel, TSC calibration, load average, and the tuning check.
pub fn summary(tsc_hz: f64) -> Value {
    let cpuinfo = read("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_string());
    let flags = cpuinfo
        .lines()
        .find(|l| l.starts_with("flags"))
        .unwrap_or("");
    json!({
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpu_model": model,
        "constant_tsc": flags.contains("constant_tsc"),
        "nonstop_tsc": flags.contains("nonstop_tsc"),
        "kernel": read("/proc/sys/kernel/osrelease"),
        "hostname": read("/proc/sys/kernel/hostname"),
        "loadavg": read("/proc/loadavg"),
        "tsc_hz": tsc_hz,
        "tpx_tune_check": tune_check(),
    })
}
