//! Cheap end-to-end checks of `engine-bench`: the generator's streams are valid and the engine
//! and the reference book agree on them event for event, and the binary's JSON has the
//! documented shape.

use std::process::Command as Process;

use tpx_benches::workload::{generate, generate_with, PeerOpKind, Stream, Workload};
use tpx_engine::reference::ReferenceBook;
use tpx_engine::{Command, Engine, EngineOutput, Event, Outputs};

/// Applies `setup` then `ops` to both books, comparing every command's events; returns the
/// number of rejects and fills.
fn engine_agrees_with_reference(stream: &Stream) -> (u64, u64) {
    let mut engine = Engine::new(stream.config.clone()).unwrap();
    let mut reference = ReferenceBook::new(stream.config.clone()).unwrap();
    let (mut rejects, mut fills) = (0, 0);
    let all: Vec<&Command> = stream.setup.iter().chain(stream.ops.iter()).collect();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for (i, cmd) in all.into_iter().enumerate() {
        a.clear();
        b.clear();
        engine.process(i as u64, cmd, &mut a);
        reference.process(i as u64, cmd, &mut b);
        assert_eq!(a, b, "command #{i}: {cmd:?}");
        if i >= stream.setup.len() {
            rejects += a
                .iter()
                .filter(|e| matches!(e, Event::Rejected { .. }))
                .count() as u64;
            fills += a.iter().filter(|e| matches!(e, Event::Fill { .. })).count() as u64;
        }
    }
    engine.check_invariants().unwrap();
    assert_eq!(engine.state_hash(), reference.state_hash());
    assert_eq!(engine.state_hash(), stream.final_hash);
    assert_eq!(engine.live_orders(), stream.resting_at_end);
    (rejects, fills)
}

#[test]
fn exchange_core_mix_stream_is_valid_and_books_agree() {
    let stream = generate(Workload::ExchangeCoreMix, 11, 20_000).unwrap();
    assert_eq!(stream.ops.len(), 20_000);
    assert_eq!(stream.peer_ops.len(), 20_000);
    assert_eq!(stream.resting_after_setup, 1_000);
    let (rejects, fills) = engine_agrees_with_reference(&stream);
    assert_eq!(rejects, 0, "moves and cancels target live orders");
    assert_eq!(rejects, stream.rejects);
    assert_eq!(fills, stream.fills);
    assert!(fills > 200, "the mix trades: {fills}");
    // The published mix, within sampling noise.
    let share = |n: u64| n as f64 / stream.ops.len() as f64;
    assert!(
        (share(stream.mix.moves) - 0.82).abs() < 0.02,
        "{:?}",
        stream.mix
    );
    assert!(
        (share(stream.mix.places) - 0.09).abs() < 0.01,
        "{:?}",
        stream.mix
    );
    assert!(
        (share(stream.mix.cancels) - 0.06).abs() < 0.01,
        "{:?}",
        stream.mix
    );
    assert!(
        (share(stream.mix.iocs) - 0.03).abs() < 0.01,
        "{:?}",
        stream.mix
    );
    // The book stays around its target.
    assert!(
        (800..=1_200).contains(&stream.resting_at_end),
        "{}",
        stream.resting_at_end
    );
    // Peer operations mirror the commands.
    for (cmd, op) in stream.ops.iter().zip(&stream.peer_ops) {
        let ok = match (cmd, op.kind) {
            (Command::Replace(r), PeerOpKind::Move) => {
                r.orig_cl_ord_id == op.id && r.price as u64 == op.price
            }
            (Command::Cancel(c), PeerOpKind::Cancel) => c.cl_ord_id == op.id,
            (Command::NewOrder(o), PeerOpKind::Place | PeerOpKind::Ioc) => {
                o.cl_ord_id == op.id
                    && o.price as u64 == op.price
                    && o.qty == op.qty
                    && o.side == op.side
            }
            _ => false,
        };
        assert!(ok, "{cmd:?} vs {op:?}");
    }
}

#[test]
fn heavy_shaped_stream_is_valid_and_books_agree() {
    let mut p = Workload::Heavy.params().unwrap();
    p.resting_target = 5_000;
    p.accounts = 50;
    let stream = generate_with(Workload::Heavy, p, 5, 10_000).unwrap();
    assert_eq!(stream.config.instruments.len(), 10);
    let (rejects, fills) = engine_agrees_with_reference(&stream);
    assert_eq!(rejects, 0);
    assert!(fills > 50, "{fills}");
}

#[test]
fn deep_shaped_stream_is_valid_and_books_agree() {
    let mut p = Workload::Deep.params().unwrap();
    p.resting_target = 5_000;
    p.accounts = 50;
    let stream = generate_with(Workload::Deep, p, 6, 10_000).unwrap();
    assert_eq!(stream.config.instruments.len(), 1);
    assert_eq!(Workload::from_name("deep"), Some(Workload::Deep));
    let (rejects, fills) = engine_agrees_with_reference(&stream);
    assert_eq!(rejects, 0);
    assert!(fills > 50, "{fills}");
    // The deep mix: replaces, places, cancels and IOCs near 40/25/25/10 %.
    let m = stream.mix;
    let total = (m.moves + m.places + m.cancels + m.iocs) as f64;
    for (share, want) in [
        (m.moves, 0.40),
        (m.places, 0.25),
        (m.cancels, 0.25),
        (m.iocs, 0.10),
    ] {
        assert!((share as f64 / total - want).abs() < 0.03, "{m:?}");
    }
}

#[test]
fn streams_are_deterministic() {
    let a = generate(Workload::ExchangeCoreMix, 3, 2_000).unwrap();
    let b = generate(Workload::ExchangeCoreMix, 3, 2_000).unwrap();
    assert_eq!(a.ops, b.ops);
    assert_eq!(a.final_hash, b.final_hash);
    let c = generate(Workload::ExchangeCoreMix, 4, 2_000).unwrap();
    assert_ne!(a.ops, c.ops);
}

/// Applies a risk workload's stream to an engine with risk on, checking the invariants (risk
/// included) every 500 commands and at the end; returns the trades, rejects and final hash.
fn run_with_risk(stream: &Stream) -> (u64, u64, u64) {
    let risk = stream.risk.as_ref().expect("a risk workload");
    let mut engine = Engine::with_risk(stream.config.clone(), risk.config.clone()).unwrap();
    let mut out = Outputs::default();
    for (i, cmd) in risk.setup.iter().enumerate() {
        engine.process_risk(i as u64, cmd, &mut out);
    }
    assert!(
        !out.0
            .iter()
            .any(|o| matches!(o, EngineOutput::Event(Event::Rejected { .. }))),
        "the risk setup is accepted"
    );
    let (mut trades, mut rejects) = (0, 0);
    for (i, cmd) in stream.setup.iter().chain(stream.ops.iter()).enumerate() {
        out.0.clear();
        engine.process(i as u64, cmd, &mut out);
        for o in &out.0 {
            match o {
                EngineOutput::Event(Event::Fill { .. }) if i >= stream.setup.len() => trades += 1,
                EngineOutput::Event(Event::Rejected { .. }) => rejects += 1,
                _ => {}
            }
        }
        if i % 500 == 0 {
            engine.check_invariants().unwrap();
        }
    }
    engine.check_invariants().unwrap();
    (trades, rejects, engine.state_hash())
}

#[test]
fn risk_workloads_trade_like_risk_off_and_are_deterministic() {
    for w in [Workload::SpotRisk, Workload::PerpRisk] {
        assert_eq!(Workload::from_name(w.name()), Some(w));
        assert!(w.risk());
        let mut p = w.params().unwrap();
        p.accounts = 200;
        p.resting_target = 800;
        let stream = generate_with(w, p, 7, 10_000).unwrap();
        assert_eq!(stream.config.instruments.len(), 4);
        let risk = stream.risk.as_ref().unwrap();
        assert_ne!(risk.config.fee_account, risk.config.liquidation_account);
        // Risk off: the generator's shadow book, event for event.
        let (rejects_off, fills_off) = engine_agrees_with_reference(&stream);
        assert_eq!(rejects_off, 0);
        // Risk on: funded accounts, so nothing is refused and the same trades happen.
        let (trades, rejects, hash) = run_with_risk(&stream);
        assert_eq!(rejects, 0, "{w}");
        assert_eq!(trades, fills_off, "{w}: risk changed the matching");
        assert!(trades > 100, "{w}: {trades}");
        let (_, _, again) = run_with_risk(&stream);
        assert_eq!(hash, again, "{w}: risk on is deterministic");
        assert_ne!(hash, stream.final_hash, "the hash covers the risk state");
    }
}

#[test]
fn binary_reports_what_risk_costs() {
    let out = Process::new(env!("CARGO_BIN_EXE_engine-bench"))
        .args([
            "--workload",
            "perp-risk",
            "--ops",
            "20000",
            "--peers",
            "reference",
            "--rounds",
            "2",
            "--json",
        ])
        .output()
        .expect("engine-bench runs");
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value =
        serde_json::from_str(String::from_utf8(out.stdout).unwrap().trim()).unwrap();
    assert_eq!(json["workload"], "perp-risk");
    assert_eq!(json["rejects"], 0);
    assert_eq!(json["state_hash_ok"], true);
    let on = json["ops_per_sec"].as_f64().unwrap();
    let off = json["risk_off_ops_per_sec"].as_f64().unwrap();
    assert!(on > 0.0 && off > 0.0);
    let overhead = json["risk_overhead"].as_f64().unwrap();
    assert!((overhead - (1.0 - on / off)).abs() < 1e-3, "{overhead}");
    assert_eq!(
        json["risk_runs"]["on_ops_per_sec"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    for p in ["p50", "p99", "p999", "max"] {
        assert!(json["latency_ns"][p].as_f64().unwrap() > 0.0, "{p}");
        assert!(
            json["risk_off_latency_ns"][p].as_f64().unwrap() > 0.0,
            "{p}"
        );
    }
    assert_eq!(
        json["peers"]["reference"]["trades"].as_u64(),
        json["trades"].as_u64(),
        "risk on trades like the reference book"
    );
}

#[test]
fn binary_prints_the_documented_json() {
    let out = Process::new(env!("CARGO_BIN_EXE_engine-bench"))
        .args([
            "--workload",
            "exchange-core-mix",
            "--ops",
            "20000",
            "--seed",
            "9",
            "--json",
        ])
        .output()
        .expect("engine-bench runs");
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let json: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    assert_eq!(json["workload"], "exchange-core-mix");
    assert_eq!(json["ops"], 20_000);
    assert!(json["ops_per_sec"].as_f64().unwrap() > 0.0);
    for p in ["p50", "p99", "p999", "p9999", "max"] {
        assert!(
            json["latency_ns"][p].as_f64().unwrap() > 0.0,
            "latency_ns.{p}"
        );
    }
    let l = &json["latency_ns"];
    assert!(l["p50"].as_f64() <= l["p99"].as_f64() && l["p99"].as_f64() <= l["max"].as_f64());
    assert!(json["timer_overhead_ns"].as_f64().unwrap() >= 0.0);
    let trades = json["trades"].as_u64().unwrap();
    assert!(trades > 0);
    assert_eq!(json["rejects"], 0);
    assert_eq!(json["state_hash_ok"], true);
    for peer in ["reference", "lobster", "orderbook-rs"] {
        let p = &json["peers"][peer];
        assert!(p["ops_per_sec"].as_f64().unwrap() > 0.0, "{peer}");
        // The same stream with the same price-time semantics: the same trades.
        assert_eq!(p["trades"].as_u64().unwrap(), trades, "{peer} trades");
    }
}

/// The `triggers` workload: stops fire (the cascade path is exercised), marks move, and the
/// engine, marks applied between the commands, ends where the shadow book did.
#[test]
fn triggers_stream_fires_stops_and_the_engine_agrees() {
    use tpx_benches::run::throughput_with_marks;
    let stream = generate(Workload::Triggers, 9, 20_000).unwrap();
    assert_eq!(Workload::from_name("triggers"), Some(Workload::Triggers));
    assert_eq!(stream.marks.len(), 400);
    assert!(stream.stops_fired > 50, "{} fired", stream.stops_fired);
    assert!(stream.stops_placed > 50, "{} placed", stream.stops_placed);
    let t = throughput_with_marks::<tpx_engine::Engine>(&stream);
    assert_eq!(t.hash_matches, Some(true));
    assert_eq!(t.trades, stream.fills);
    let r = throughput_with_marks::<tpx_engine::reference::ReferenceBook>(&stream);
    assert_eq!(r.hash, t.hash);
}
