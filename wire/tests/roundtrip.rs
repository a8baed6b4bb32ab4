//! Round trips for every message: valid values of every field encode, decode to the same
//! value and re-encode to the same bytes; plus typed round trips and the error each kind of
//! bad byte gets.

mod common;

use common::{fixed_layouts, make_valid};
use proptest::prelude::*;
use tpx_wire::codec::Layout;
use tpx_wire::header::{schema, template};
use tpx_wire::log_record::{decode_record, encode_record, Input, LogRecord, RecordMeta};
use tpx_wire::mold::{
    decode_packet, decode_retransmit_response, encode_packet, RetransmitRequest, RetransmitResponse,
};
use tpx_wire::order_entry::EnterOrder;
use tpx_wire::*;

/// Decodes `bytes` with the decoder of its channel; re-encodes; returns the re-encoding.
fn roundtrip(layout: &Layout, bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; 256];
    let n = match (layout.schema_id, layout.template_id) {
        (schema::ORDER_ENTRY, 1 | 4 | 6 | 9 | 16..=31) => {
            let m = ClientMessage::decode(bytes).unwrap_or_else(|e| panic!("{}: {e}", layout.name));
            let n = m.encode(&mut out).unwrap();
            assert_eq!(ClientMessage::decode(&out[..n]), Ok(m));
            assert_eq!(m.template_id(), layout.template_id);
            n
        }
        (schema::ORDER_ENTRY, _) => {
            let m = ServerMessage::decode(bytes).unwrap_or_else(|e| panic!("{}: {e}", layout.name));
            let n = m.encode(&mut out).unwrap();
            assert_eq!(ServerMessage::decode(&out[..n]), Ok(m));
            n
        }
        (schema::INPUT_LOG, _) => {
            let m = Input::decode(bytes).unwrap_or_else(|e| panic!("{}: {e}", layout.name));
            let n = m.encode(&mut out).unwrap();
            assert_eq!(Input::decode(&out[..n]), Ok(m));
            n
        }
        (_, template::RETRANSMIT_REQUEST) => {
            let m = RetransmitRequest::decode(bytes).unwrap();
            m.encode(&mut out).unwrap()
        }
        (_, template::RETRANSMIT_REFUSED) => match decode_retransmit_response(bytes).unwrap() {
            RetransmitResponse::Refused(m) => m.encode(&mut out).unwrap(),
            other => panic!("{other:?}"),
        },
        _ => {
            let m = MdMessage::decode(bytes).unwrap_or_else(|e| panic!("{}: {e}", layout.name));
            let n = m.encode(&mut out).unwrap();
            assert_eq!(MdMessage::decode(&out[..n]), Ok(m));
            n
        }
    };
    out.truncate(n);
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    /// Every fixed-size message, every field over its valid values.
    #[test]
    fn every_message_round_trips(idx in 0usize..64, entropy in proptest::collection::vec(any::<u8>(), 1..160)) {
        let layouts = fixed_layouts();
        let layout = layouts[idx % layouts.len()];
        let bytes = make_valid(layout, &entropy);
        prop_assert_eq!(roundtrip(layout, &bytes), bytes);
    }

    /// Log records with every input, meta over its valid values.
    #[test]
    fn log_records_round_trip(idx in 0usize..64, entropy in proptest::collection::vec(any::<u8>(), 1..64),
                              seq in 1u64.., term: u64, ts: u64, origin: u32, account: u32) {
        let inputs: Vec<_> = fixed_layouts().into_iter()
            .filter(|l| matches!(l.template_id, 16..=19 | 26 | 80..=88 | 90)).collect();
        let layout = inputs[idx % inputs.len()];
        let input = Input::decode(&make_valid(layout, &entropy)).unwrap();
        let rec = LogRecord { meta: RecordMeta { seq, term, timestamp_ns: ts, origin, account, session: 0 }, input };
        let mut buf = [0u8; 256];
        let n = encode_record(&rec, &mut buf).unwrap();
        prop_assert_eq!(n, 48 + layout.size);
        prop_assert_eq!(decode_record(&buf[..n]), Ok((rec, n)));
        // A record followed by more bytes decodes the same.
        prop_assert_eq!(decode_record(&buf), Ok((rec, n)));
    }

    /// Packets of any market-data messages.
    #[test]
    fn packets_round_trip(picks in proptest::collection::vec((0usize..64, proptest::collection::vec(any::<u8>(), 1..64)), 0..20),
                          stream: u32, first_seq in 1u64..u64::MAX / 2) {
        let md: Vec<_> = fixed_layouts().into_iter().filter(|l| matches!(l.template_id, 100..=111)).collect();
        let msgs: Vec<MdMessage> = picks.iter()
            .map(|(i, e)| MdMessage::decode(&make_valid(md[i % md.len()], e)).unwrap()).collect();
        let mut buf = vec![0u8; 4096];
        let n = encode_packet(stream, first_seq, &msgs, &mut buf).unwrap();
        let p = decode_packet(&buf[..n]).unwrap();
        prop_assert_eq!(p.header.stream_id, stream);
        prop_assert_eq!(p.header.first_seq, first_seq);
        let got: Vec<_> = p.messages().collect();
        let want: Vec<_> = msgs.iter().enumerate().map(|(i, m)| (first_seq + i as u64, *m)).collect();
        prop_assert_eq!(got, want);
    }

    /// A typed round trip, field by field.
    #[test]
    fn enter_order_typed(cl in 1u64.., price: i64, qty in 1u64.., instrument: u32,
                         side in proptest::sample::select(Side::ALL), kind in proptest::sample::select(OrderKind::ALL),
                         tif in proptest::sample::select(TimeInForce::ALL), stp in proptest::sample::select(StpMode::ALL),
                         post_only: bool, reduce_only: bool) {
        let m = EnterOrder { cl_ord_id: cl, price, qty, instrument, side, kind, tif, stp, post_only, reduce_only };
        let mut buf = [0u8; EnterOrder::SIZE];
        prop_assert_eq!(m.encode(&mut buf), Ok(48));
        prop_assert_eq!(EnterOrder::decode(&buf), Ok(m));
        prop_assert_eq!(decode_client(&buf), Ok(ClientMessage::EnterOrder(m)));
    }
}

#[test]
fn layouts_are_consistent() {
    use tpx_wire::catalog::LAYOUTS;
    let mut ids: Vec<u16> = LAYOUTS.iter().map(|l| l.template_id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), LAYOUTS.len(), "template ids are unique");
    for id in 0..=u16::MAX {
        let defined = LAYOUTS.iter().find(|l| l.template_id == id);
        assert_eq!(
            template::schema_of(id),
            defined.map(|l| l.schema_id),
            "template {id}"
        );
    }
    for l in LAYOUTS {
        assert_eq!(l.size % 8, 0, "{}", l.name);
        for f in l.fields {
            assert!(!f.doc.trim().is_empty(), "{}.{} has no doc", l.name, f.name);
        }
    }
}

fn enter_order_bytes() -> [u8; 48] {
    let m = EnterOrder {
        cl_ord_id: 5,
        price: 100,
        qty: 2,
        instrument: 1,
        side: Side::Sell,
        kind: OrderKind::Limit,
        tif: TimeInForce::Ioc,
        stp: StpMode::None,
        post_only: false,
        reduce_only: true,
    };
    let mut b = [0u8; 48];
    m.encode(&mut b).unwrap();
    b
}

#[test]
fn decode_errors_say_what_and_where() {
    let good = enter_order_bytes();
    let t = template::ENTER_ORDER;
    let with = |off: usize, v: u8| {
        let mut b = good;
        b[off] = v;
        decode_client(&b)
    };
    assert_eq!(
        with(36, 3),
        Err(DecodeError::InvalidEnum {
            template_id: t,
            offset: 36,
            value: 3
        })
    );
    assert_eq!(
        with(39, 9),
        Err(DecodeError::InvalidEnum {
            template_id: t,
            offset: 39,
            value: 9
        })
    );
    assert_eq!(
        with(40, 2),
        Err(DecodeError::InvalidBool {
            template_id: t,
            offset: 40,
            value: 2
        })
    );
    assert_eq!(
        with(45, 1),
        Err(DecodeError::NonZeroReserved {
            template_id: t,
            offset: 45
        })
    );
    let mut b = good;
    b[24..32].fill(0);
    assert_eq!(
        decode_client(&b),
        Err(DecodeError::OutOfRange {
            template_id: t,
            offset: 24
        })
    );
    assert_eq!(
        DecodeError::OutOfRange {
            template_id: t,
            offset: 24
        }
        .field_name(),
        Some("qty")
    );
    assert_eq!(
        with(4, 3),
        Err(DecodeError::WrongSchema {
            template_id: t,
            schema_id: 3
        })
    );
    assert_eq!(
        with(6, 2),
        Err(DecodeError::UnsupportedVersion { version: 2 })
    );
    assert_eq!(
        with(2, 31),
        Err(DecodeError::UnknownTemplate { template_id: 31 })
    );
    assert_eq!(
        with(2, 32),
        Err(DecodeError::UnexpectedTemplate { template_id: 32 })
    );
    assert_eq!(
        with(0, 47),
        Err(DecodeError::BadLength {
            template_id: t,
            declared: 47
        })
    );
    assert_eq!(
        decode_client(&good[..47]),
        Err(DecodeError::Truncated {
            needed: 48,
            available: 47
        })
    );
    assert_eq!(
        decode_client(&good[..5]),
        Err(DecodeError::Truncated {
            needed: 8,
            available: 5
        })
    );
    let mut long = good.to_vec();
    long.push(0);
    assert_eq!(
        decode_client(&long),
        Err(DecodeError::TrailingBytes { extra: 1 })
    );
    // The session reject carries the code, template and offset.
    let e = with(36, 3).unwrap_err();
    let r = tpx_wire::session::SessionReject::from_error(&e);
    assert_eq!(
        (r.code, r.template_id, r.offset),
        (DecodeErrorCode::InvalidEnum, t, 36)
    );
}

#[test]
fn encode_refuses_what_decode_would_reject() {
    let mut m = EnterOrder::decode(&enter_order_bytes()).unwrap();
    m.qty = 0;
    let mut b = [0u8; 64];
    assert_eq!(
        m.encode(&mut b),
        Err(EncodeError::InvalidField {
            template_id: 16,
            offset: 24
        })
    );
    m.qty = 1;
    assert_eq!(
        m.encode(&mut b[..47]),
        Err(EncodeError::BufferTooSmall {
            needed: 48,
            available: 47
        })
    );
    let mc = tpx_wire::order_entry::MassCancel {
        instrument: Some(NO_INSTRUMENT),
    };
    assert!(mc.encode(&mut b).is_err());
    let mc = tpx_wire::order_entry::MassCancel { instrument: None };
    assert_eq!(mc.encode(&mut b), Ok(16));
    assert_eq!(&b[8..12], &[0xFF; 4]);
}

#[test]
fn engine_values_match() {
    // The engine's numeric values (see engine/src/types.rs and event.rs), which the wire mirrors.
    assert_eq!((Side::Buy as u8, Side::Sell as u8), (1, 2));
    assert_eq!((OrderKind::Limit as u8, OrderKind::Market as u8), (1, 2));
    assert_eq!(
        (
            TimeInForce::Gtc as u8,
            TimeInForce::Ioc as u8,
            TimeInForce::Fok as u8,
            TimeInForce::Gtd as u8
        ),
        (1, 2, 3, 4)
    );
    assert_eq!(
        StpMode::ALL.iter().map(|s| *s as u8).collect::<Vec<_>>(),
        vec![0, 1, 2, 3, 4]
    );
    let engine_rejects: Vec<u8> = (1..=29).collect();
    for v in engine_rejects {
        assert!(RejectReason::from_u8(v).is_some(), "engine reject {v}");
    }
    // Accounts and risk (engine/src/event.rs): 15..=26, cancel reasons 6 and 7.
    assert_eq!(RejectReason::InsufficientBalance as u8, 15);
    assert_eq!(RejectReason::ReduceOnlyWouldIncrease as u8, 16);
    assert_eq!(RejectReason::DuplicateRequest as u8, 18);
    assert_eq!(RejectReason::NotLiquidatable as u8, 26);
    // The order types (engine/src/event.rs): rejects 27..=29, cancel reasons 8..=10.
    assert_eq!(RejectReason::InvalidTrigger as u8, 27);
    assert_eq!(RejectReason::InvalidExpireTime as u8, 28);
    assert_eq!(RejectReason::InvalidOcoLink as u8, 29);
    assert!(RejectReason::from_u8(30).is_none());
    assert_eq!(CancelReason::ALL.len(), 10);
    assert_eq!(
        (
            CancelReason::Expired as u8,
            CancelReason::Oco as u8,
            CancelReason::TriggerRejected as u8
        ),
        (8, 9, 10)
    );
    assert_eq!(
        (
            CancelReason::Liquidation as u8,
            CancelReason::ReduceOnly as u8
        ),
        (6, 7)
    );
    assert_eq!((Liquidity::Maker as u8, Liquidity::Taker as u8), (1, 2));
}

#[test]
fn symbols() {
    assert_eq!(Symbol::new("BTC-USDT").unwrap().as_str(), "BTC-USDT");
    assert!(Symbol::new("").is_none());
    assert!(Symbol::new("has space").is_none());
    assert!(Symbol::new("0123456789abcdefg").is_none());
    assert!(Symbol::from_bytes(*b"AB\0C\0\0\0\0\0\0\0\0\0\0\0\0").is_none());
    assert_eq!(
        Symbol::new("0123456789abcdef").unwrap().as_str(),
        "0123456789abcdef"
    );
}
