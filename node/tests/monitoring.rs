//! What an operator loads into Prometheus and Grafana (`monitoring/`), checked against a live
//! node: a node with risk-free shards, market data and `[stats] prometheus` trades a little;
//! its scrape passes `promtool check metrics`; every metric the dashboard and the alert rules
//! name is in that scrape; every dashboard query parses as PromQL (promtool checks it as a
//! recording rule); the alert rules pass `promtool check rules` and their unit tests
//! (`promtool test rules`). Skipped without promtool unless `TPX_REQUIRE_PROMTOOL` is set
//! (`make unit` sets it).

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tpx_client::req;
use tpx_node::config::md::MdConfig;
use tpx_node::config::CorePlan;
use tpx_node::Node;
use tpx_wire::enums::Side;
use tpx_wire::replies::ServerMessage;

mod common;

use common::{accounts, base_config, cpus, limit, login, scrape, until};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn promtool(args: &[&str], stdin: Option<&str>) -> Option<(bool, String)> {
    let mut child = match Command::new("promtool")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(_) => {
            assert!(
                std::env::var_os("TPX_REQUIRE_PROMTOOL").is_none(),
                "promtool not found (apt-get install prometheus)"
            );
            return None;
        }
    };
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    Some((
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    ))
}

/// Metric names a PromQL expression uses: identifiers starting `tpx_` or `process_`, with a
/// histogram's `_bucket` suffix taken off.
fn metric_names(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let b = expr.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
        if ident(b[i]) && (i == 0 || !ident(b[i - 1])) {
            let start = i;
            while i < b.len() && ident(b[i]) {
                i += 1;
            }
            let w = &expr[start..i];
            if w.starts_with("tpx_") || w.starts_with("process_") {
                out.push(w.strip_suffix("_bucket").unwrap_or(w).to_string());
            }
        } else {
            i += 1;
        }
    }
    out
}

fn families(scrape: &str) -> BTreeSet<String> {
    scrape
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .map(str::to_string)
        .collect()
}

#[test]
fn the_dashboard_and_the_alert_rules_match_a_live_nodes_metrics() {
    let mut cfg = base_config(CorePlan::single(cpus().first().copied().unwrap_or(0)));
    cfg.stats.prometheus = Some("127.0.0.1:0".parse().unwrap());
    cfg.stats.path = Some(
        std::env::temp_dir().join(format!("tpx-monitoring-test-{}.stats", std::process::id())),
    );
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    cfg.md = Some(MdConfig {
        channel_a: format!("aeron:udp?endpoint=127.0.0.1:{port}"),
        channel_b: None,
        snapshot_channel: None,
        ..MdConfig::default()
    });
    let node = Node::start(&cfg, accounts()).unwrap();
    let mut a = login(&node, 1);
    let mut b = login(&node, 2);
    a.send(&req::enter(limit(1, 1, Side::Sell, 60_000, 2)))
        .unwrap();
    until(&mut a, |m| matches!(m, ServerMessage::OrderAccepted(_)));
    b.send(&req::enter(limit(1, 1, Side::Buy, 60_000, 1)))
        .unwrap();
    until(&mut b, |m| matches!(m, ServerMessage::OrderExecuted(_)));
    // A post-only buy at the resting ask: rejected by the engine, counted by reason.
    let mut post = limit(2, 1, Side::Buy, 60_000, 1);
    post.post_only = true;
    b.send(&req::enter(post)).unwrap();
    until(&mut b, |m| {
        matches!(m, ServerMessage::OrderRejected(r)
            if r.reason == tpx_wire::enums::RejectReason::PostOnlyWouldTake)
    });
    const REJECT: &str = "tpx_node_rejects_total{shard=\"0\",reason=\"PostOnlyWouldTake\"} 1";
    // The publisher copies the counters every 100 ms.
    let addr = node.prometheus_addr().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let live = loop {
        let s = scrape(addr);
        if (s.contains("\ntpx_trades_total 1") && s.contains(REJECT)) || Instant::now() > deadline {
            break s;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(live.contains("\ntpx_trades_total 1"), "{live}");
    assert!(live.contains(REJECT), "{live}");
    assert!(
        live.contains("tpx_node_margin_calls_total{shard=\"0\"} 0"),
        "{live}"
    );
    assert!(
        live.contains("tpx_node_rejects_total{shard=\"gateway\",reason=\"Throttled\"} 0"),
        "{live}"
    );
    // A primary that never refused: the stage's Unavailable answers and the fences' are 0.
    assert!(
        live.contains("tpx_node_rejects_total{shard=\"sequencer\",reason=\"Unavailable\"} 0"),
        "{live}"
    );
    assert!(live.contains("\ntpx_node_fenced_total 0"), "{live}");
    assert!(live.contains("tpx_md_packets_total{shard=\"0\"}"), "{live}");
    assert!(live.contains("\ntpx_node_replay_done 1"), "{live}");
    let have = families(&live);

    // Every metric the dashboard and the rules name is one the node exports.
    let dash: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("monitoring/grafana/tpx-node.json")).unwrap(),
    )
    .unwrap();
    let mut exprs = Vec::new();
    for p in dash["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().unwrap() {
            exprs.push(t["expr"].as_str().unwrap().to_string());
        }
    }
    assert!(exprs.len() >= 10, "{exprs:?}");
    let rules =
        std::fs::read_to_string(repo().join("monitoring/prometheus/tpx-alerts.yml")).unwrap();
    let rule_exprs: Vec<String> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("expr: "))
        .map(str::to_string)
        .collect();
    assert!(rule_exprs.len() >= 8, "{rule_exprs:?}");
    for e in exprs.iter().chain(&rule_exprs) {
        for m in metric_names(e) {
            assert!(have.contains(&m), "{m} (in {e}) is not exported: {have:?}");
        }
    }

    let Some((ok, said)) = promtool(&["check", "metrics"], Some(&live)) else {
        eprintln!("promtool not found: skipped the promtool checks");
        return;
    };
    assert!(
        ok && said.trim().is_empty(),
        "promtool check metrics: {said}\n{live}"
    );

    // Each dashboard query parses: promtool checks it as a recording rule (Grafana's
    // `$__rate_interval` becomes 1m).
    let dir = tempfile::tempdir().unwrap();
    let mut file = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (k, e) in exprs.iter().enumerate() {
        let e = e.replace("$__rate_interval", "1m").replace('\'', "''");
        file += &format!("      - record: tpx:dashboard_{k}\n        expr: '{e}'\n");
    }
    let f = dir.path().join("dashboard.yml");
    std::fs::write(&f, file).unwrap();
    let (ok, said) = promtool(&["check", "rules", f.to_str().unwrap()], None).unwrap();
    assert!(ok, "a dashboard query does not parse: {said}");

    let alerts = repo().join("monitoring/prometheus/tpx-alerts.yml");
    let (ok, said) = promtool(&["check", "rules", alerts.to_str().unwrap()], None).unwrap();
    assert!(ok, "promtool check rules: {said}");
    let tests = repo().join("monitoring/prometheus/tpx-alerts.test.yml");
    let (ok, said) = promtool(&["test", "rules", tests.to_str().unwrap()], None).unwrap();
    assert!(ok, "promtool test rules: {said}");
}

#[test]
fn metric_names_are_found_in_queries() {
    assert_eq!(
        metric_names(
            "histogram_quantile(0.99, sum by (le) (rate(tpx_stage_latency_seconds_bucket{x=\"y\"}[1m]))) / process_open_fds"
        ),
        vec!["tpx_stage_latency_seconds", "process_open_fds"]
    );
}
