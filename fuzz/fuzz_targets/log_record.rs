//! Input-log records: a segment of records (and a bare input body); whatever decodes
//! re-encodes to the same bytes, errors are either truncated or corrupt. Then the bytes as a
//! stream of input bodies back to back (no record header, so no checksum stands in the way):
//! each that decodes goes through the node's one wire → engine conversion
//! (`tpx_sequencer::apply::engine_input`) into an engine holding a spot pair and a perpetual,
//! which must not panic and must keep its invariants; an `EnterOrderExt` whose trigger fields
//! disagree (the gateway refuses it, a log may still hold one) is never accepted.
#![no_main]

#[path = "../../wire/tests/common/mod.rs"]
mod common;

use tpx_engine::{Engine, EngineConfig, EngineInput, Event, InstrumentKind, InstrumentSpec};
use tpx_wire::header::Header;
use tpx_wire::log_record::Input;

fn spec(id: u32, kind: InstrumentKind) -> InstrumentSpec {
    InstrumentSpec {
        id,
        kind,
        tick_size: 1,
        lot_size: 1,
        min_price: 64_000,
        max_price: 66_000,
        min_qty: 1,
        max_qty: 1_000,
        min_notional: 0,
    }
}

fn inputs_into_engine(data: &[u8]) {
    let cfg = EngineConfig {
        instruments: vec![
            spec(1, InstrumentKind::Spot { base: 1, quote: 2 }),
            spec(3, InstrumentKind::LinearPerp { settle: 2 }),
        ],
        max_orders: 64,
        max_accounts: 8,
    };
    let mut engine = Engine::new(cfg).expect("valid config");
    let mut rest = data;
    let mut ts_ns = 1_700_000_000_123_456_789u64;
    let mut events = Vec::new();
    while let Ok(h) = Header::peek(rest) {
        let len = usize::from(h.length);
        let Some(body) = rest.get(..len).filter(|_| len >= 8) else {
            break;
        };
        rest = &rest[len..];
        let Ok(input) = Input::decode(body) else {
            break;
        };
        // The account from the byte after the body (as a record's meta would carry it).
        let account = u32::from(rest.first().copied().unwrap_or(1) % 8);
        let Some(ei) = tpx_sequencer::apply::engine_input(&input, account) else {
            continue;
        };
        ts_ns += 1_000_000_000;
        events.clear();
        engine.apply(ts_ns, &ei, &mut events);
        if let (Input::EnterOrderExt(m), EngineInput::Command(_)) = (&input, &ei) {
            if !m.trigger_consistent() {
                assert!(
                    !events.iter().any(|e| matches!(e, Event::Accepted { .. })),
                    "inconsistent trigger accepted: {m:?} {events:?}"
                );
                assert!(
                    events.iter().any(|e| matches!(e, Event::Rejected { .. })),
                    "{m:?} {events:?}"
                );
            }
        }
        if let Err(e) = engine.check_invariants() {
            panic!("invariants after {input:?}: {e}");
        }
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    common::check_record(data);
    common::check_input(data);
    inputs_into_engine(data);
});
