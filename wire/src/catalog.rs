//! Every layout and enum of the schema, for the spec, tools and error messages, and the
//! canonical examples `docs/PROTOCOL.md` shows in hex (a test checks the document against them).

use crate::admin::{
    AdminAccepted, AdminApplyFunding, AdminDeposit, AdminLiquidate, AdminSetFeeTier,
    AdminSetMarkPrice, AdminWithdraw,
};
use crate::codec::{EnumDesc, Layout, Symbol, Token};
use crate::enums::*;
use crate::error::DecodeErrorCode;
use crate::log_record::{
    self, ApplyFunding, Checkpoint, Deposit, Halt, Input, Liquidate, LogRecord, RecordMeta, Resume,
    SetFeeTier, SetMarkPrice, SetReferencePrice, Tick, Withdraw,
};
use crate::market_data::*;
use crate::mold::{self, RetransmitRefused, RetransmitRequest};
use crate::order_entry::{CancelOrder, EnterOrder, EnterOrderExt, MassCancel, ReplaceOrder};
use crate::query::*;
use crate::replies::*;
use crate::session::*;

/// Every layout, in template-id order.
pub const LAYOUTS: &[Layout] = &[
    Login::LAYOUT,
    LoginAccepted::LAYOUT,
    LoginRejected::LAYOUT,
    ClientHeartbeat::LAYOUT,
    ServerHeartbeat::LAYOUT,
    LogoutRequest::LAYOUT,
    Logout::LAYOUT,
    SessionReject::LAYOUT,
    LoginWithOptions::LAYOUT,
    EnterOrder::LAYOUT,
    ReplaceOrder::LAYOUT,
    CancelOrder::LAYOUT,
    MassCancel::LAYOUT,
    AdminDeposit::LAYOUT,
    AdminWithdraw::LAYOUT,
    AdminSetMarkPrice::LAYOUT,
    AdminApplyFunding::LAYOUT,
    AdminLiquidate::LAYOUT,
    AdminSetFeeTier::LAYOUT,
    EnterOrderExt::LAYOUT,
    QueryOrder::LAYOUT,
    QueryOpenOrders::LAYOUT,
    QueryBalances::LAYOUT,
    QueryPositions::LAYOUT,
    OrderAccepted::LAYOUT,
    OrderRejected::LAYOUT,
    OrderReplaced::LAYOUT,
    OrderCancelled::LAYOUT,
    crate::replies::OrderExecuted::LAYOUT,
    MassCancelAck::LAYOUT,
    AdminAccepted::LAYOUT,
    BalanceUpdate::LAYOUT,
    OrderTriggered::LAYOUT,
    OrderSlid::LAYOUT,
    OrderRefilled::LAYOUT,
    OrderStatus::LAYOUT,
    BalanceStatus::LAYOUT,
    PositionStatus::LAYOUT,
    QueryDone::LAYOUT,
    crate::drop_copy::ExecutionCopy::LAYOUT,
    log_record::RECORD_LAYOUT,
    Halt::LAYOUT,
    Resume::LAYOUT,
    SetReferencePrice::LAYOUT,
    Deposit::LAYOUT,
    Withdraw::LAYOUT,
    SetMarkPrice::LAYOUT,
    ApplyFunding::LAYOUT,
    Liquidate::LAYOUT,
    SetFeeTier::LAYOUT,
    log_record::TermStart::LAYOUT,
    Tick::LAYOUT,
    Checkpoint::LAYOUT,
    mold::PACKET_LAYOUT,
    AddOrder::LAYOUT,
    crate::market_data::OrderExecuted::LAYOUT,
    OrderReduce::LAYOUT,
    OrderDelete::LAYOUT,
    OrderReplace::LAYOUT,
    Trade::LAYOUT,
    InstrumentDirectory::LAYOUT,
    TradingStatus::LAYOUT,
    ReferencePrice::LAYOUT,
    SnapshotBegin::LAYOUT,
    SnapshotOrder::LAYOUT,
    SnapshotEnd::LAYOUT,
    RetransmitRequest::LAYOUT,
    RetransmitRefused::LAYOUT,
];

/// Every wire enum.
pub const ENUMS: &[EnumDesc] = &[
    Side::DESC,
    OrderKind::DESC,
    TimeInForce::DESC,
    TriggerType::DESC,
    StpMode::DESC,
    RejectReason::DESC,
    RequestKind::DESC,
    BalanceReason::DESC,
    ExecType::DESC,
    CancelReason::DESC,
    Liquidity::DESC,
    LoginRejectReason::DESC,
    LogoutReason::DESC,
    DecodeErrorCode::DESC,
    InstrumentKind::DESC,
    TradingState::DESC,
    RetransmitRefusal::DESC,
];

/// The layout of a template.
pub fn layout(template_id: u16) -> Option<&'static Layout> {
    LAYOUTS.iter().find(|l| l.template_id == template_id)
}

/// The name of the field at `offset` of `template_id` ("reserved" for a reserved byte).
pub fn field_name(template_id: u16, offset: u16) -> Option<&'static str> {
    let l = layout(template_id)?;
    let off = usize::from(offset);
    if off < crate::header::HEADER_LEN {
        return Some("header");
    }
    if l.reserved.iter().any(|&(o, n)| (o..o + n).contains(&off)) {
        return Some("reserved");
    }
    l.fields
        .iter()
        .find(|f| (f.offset..f.offset + f.size).contains(&off))
        .map(|f| f.name)
}

const TS: u64 = 1_700_000_000_123_456_789;

/// The canonical example messages: `(name, bytes)`. `docs/PROTOCOL.md` shows each in hex.
pub fn examples() -> Vec<(&'static str, Vec<u8>)> {
    let mut out = Vec::new();
    let mut add = |name: &'static str, r: Result<usize, crate::EncodeError>, buf: &[u8]| {
        if let Ok(n) = r {
            out.push((name, buf.get(..n).unwrap_or(&[]).to_vec()));
        }
    };
    let mut b = [0u8; 512];
    let login = Login {
        account: 7,
        session_id: 3,
        requested_next_seq: 1,
        token: Token([0xAB; 32]),
    };
    add("login", login.encode(&mut b), &b);
    let acc = LoginAccepted {
        session_id: 3,
        heartbeat_interval_ms: 1000,
        next_seq: 1,
    };
    add("login_accepted", acc.encode(&mut b), &b);
    let rej = LoginRejected {
        reason: LoginRejectReason::SequenceAhead,
    };
    add("login_rejected", rej.encode(&mut b), &b);
    add("client_heartbeat", ClientHeartbeat {}.encode(&mut b), &b);
    add(
        "server_heartbeat",
        ServerHeartbeat { next_seq: 42 }.encode(&mut b),
        &b,
    );
    add("logout_request", LogoutRequest {}.encode(&mut b), &b);
    add(
        "logout",
        Logout {
            reason: LogoutReason::UserRequested,
        }
        .encode(&mut b),
        &b,
    );
    let sr = SessionReject {
        code: DecodeErrorCode::InvalidEnum,
        template_id: 16,
        offset: 36,
    };
    add("session_reject", sr.encode(&mut b), &b);
    add("enter_order", example_enter_order().encode(&mut b), &b);
    add(
        "enter_order_ext",
        example_enter_order_ext().encode(&mut b),
        &b,
    );
    let rep = ReplaceOrder {
        orig_cl_ord_id: 1001,
        new_cl_ord_id: 1002,
        price: 64_990,
        qty: 3,
    };
    add("replace_order", rep.encode(&mut b), &b);
    add(
        "cancel_order",
        CancelOrder {
            cl_ord_id: 1002,
            remaining_qty: 0,
        }
        .encode(&mut b),
        &b,
    );
    add(
        "mass_cancel",
        MassCancel { instrument: None }.encode(&mut b),
        &b,
    );
    let oa = OrderAccepted {
        seq: 1,
        timestamp_ns: TS,
        cl_ord_id: 1001,
        order_id: 77,
        price: 65_000,
        qty: 5,
        instrument: 1,
        side: Side::Buy,
    };
    add("order_accepted", oa.encode(&mut b), &b);
    let orj = OrderRejected {
        seq: 2,
        timestamp_ns: TS,
        cl_ord_id: 1003,
        reason: RejectReason::Throttled,
        request: RequestKind::EnterOrder,
    };
    add("order_rejected", orj.encode(&mut b), &b);
    let orp = OrderReplaced {
        seq: 3,
        timestamp_ns: TS,
        orig_cl_ord_id: 1001,
        new_cl_ord_id: 1002,
        order_id: 77,
        price: 64_990,
        qty: 3,
        instrument: 1,
        priority_kept: false,
    };
    add("order_replaced", orp.encode(&mut b), &b);
    let oc = OrderCancelled {
        seq: 4,
        timestamp_ns: TS,
        cl_ord_id: 1002,
        order_id: 77,
        cancelled_qty: 3,
        leaves_qty: 0,
        instrument: 1,
        reason: CancelReason::UserRequested,
    };
    add("order_cancelled", oc.encode(&mut b), &b);
    let oe = crate::replies::OrderExecuted {
        seq: 5,
        timestamp_ns: TS,
        cl_ord_id: 1004,
        order_id: 78,
        trade_id: 9,
        price: 65_000,
        qty: 2,
        leaves_qty: 3,
        fee: -13,
        instrument: 1,
        side: Side::Sell,
        liquidity: Liquidity::Maker,
    };
    add("order_executed", oe.encode(&mut b), &b);
    let ot = OrderTriggered {
        seq: 9,
        timestamp_ns: TS,
        cl_ord_id: 1005,
        order_id: 79,
        trigger_price: 64_500,
        price: 64_490,
        instrument: 1,
        side: Side::Sell,
    };
    add("order_triggered", ot.encode(&mut b), &b);
    let os = OrderSlid {
        seq: 10,
        timestamp_ns: TS,
        cl_ord_id: 1006,
        order_id: 80,
        requested_price: 65_010,
        price: 64_999,
        instrument: 1,
    };
    add("order_slid", os.encode(&mut b), &b);
    let orf = OrderRefilled {
        seq: 11,
        timestamp_ns: TS,
        cl_ord_id: 1007,
        order_id: 81,
        display_qty: 2,
        hidden_qty: 6,
        instrument: 1,
    };
    add("order_refilled", orf.encode(&mut b), &b);
    let mca = MassCancelAck {
        seq: 6,
        timestamp_ns: TS,
        instrument: Some(1),
        cancelled_count: 2,
    };
    add("mass_cancel_ack", mca.encode(&mut b), &b);
    let ad = AdminDeposit {
        request_id: 5001,
        amount: 1_000_000_000,
        account: 7,
        asset: 2,
        shard: 0,
    };
    add("admin_deposit", ad.encode(&mut b), &b);
    let aw = AdminWithdraw {
        request_id: 5002,
        amount: 250_000_000,
        account: 7,
        asset: 2,
        shard: 0,
    };
    add("admin_withdraw", aw.encode(&mut b), &b);
    let am = AdminSetMarkPrice {
        request_id: 5003,
        price: 65_010,
        instrument: 3,
    };
    add("admin_set_mark_price", am.encode(&mut b), &b);
    let af = AdminApplyFunding {
        request_id: 5004,
        rate_ppm: 100,
        instrument: 3,
    };
    add("admin_apply_funding", af.encode(&mut b), &b);
    let al = AdminLiquidate {
        request_id: 5005,
        cl_ord_id: 9001,
        price: 64_000,
        account: 7,
        instrument: 3,
    };
    add("admin_liquidate", al.encode(&mut b), &b);
    let at = AdminSetFeeTier {
        request_id: 5006,
        account: 7,
        shard: 0xFFFF,
        tier: 1,
    };
    add("admin_set_fee_tier", at.encode(&mut b), &b);
    let aa = AdminAccepted {
        seq: 7,
        timestamp_ns: TS,
        request_id: 5001,
        available: 1_000_000_000,
        held: 0,
        account: 7,
        shard: 0,
        request: RequestKind::AdminDeposit,
    };
    add("admin_accepted", aa.encode(&mut b), &b);
    let bu = BalanceUpdate {
        seq: 8,
        timestamp_ns: TS,
        delta: 1_000_000_000,
        available: 1_000_000_000,
        held: 0,
        asset: 2,
        shard: 0,
        reason: BalanceReason::Deposit,
    };
    add("balance_update", bu.encode(&mut b), &b);
    let rec = LogRecord {
        meta: RecordMeta {
            seq: 1234,
            term: 2,
            timestamp_ns: TS,
            origin: 3,
            account: 7,
            session: 0,
        },
        input: Input::EnterOrder(example_enter_order()),
    };
    add(
        "log_record_enter_order",
        log_record::encode_record(&rec, &mut b),
        &b,
    );
    let rec = LogRecord {
        meta: RecordMeta {
            seq: 1235,
            term: 2,
            timestamp_ns: TS,
            origin: 0,
            account: 0,
            session: 0,
        },
        input: Input::SetReferencePrice(SetReferencePrice {
            price: 65_000,
            instrument: 1,
            band_bps: 500,
        }),
    };
    add(
        "log_record_set_reference_price",
        log_record::encode_record(&rec, &mut b),
        &b,
    );
    add("halt", Halt { instrument: 1 }.encode(&mut b), &b);
    add("resume", Resume { instrument: 1 }.encode(&mut b), &b);
    let deposit = Deposit {
        amount: 1_000_000_000,
        request_id: 1,
        account: 7,
        asset: 1,
    };
    let rec = LogRecord {
        meta: RecordMeta {
            seq: 1236,
            term: 2,
            timestamp_ns: TS,
            origin: 0,
            account: 0,
            session: 0,
        },
        input: Input::Deposit(deposit),
    };
    add(
        "log_record_deposit",
        log_record::encode_record(&rec, &mut b),
        &b,
    );
    let withdraw = Withdraw {
        amount: 250_000_000,
        request_id: 2,
        account: 7,
        asset: 1,
    };
    add("withdraw", withdraw.encode(&mut b), &b);
    let mark = SetMarkPrice {
        price: 65_010,
        instrument: 3,
        request_id: 5003,
    };
    add("set_mark_price", mark.encode(&mut b), &b);
    let funding = ApplyFunding {
        rate_ppm: 100,
        instrument: 3,
        funding_id: 1_700_006_400,
    };
    add("apply_funding", funding.encode(&mut b), &b);
    let liquidate = Liquidate {
        cl_ord_id: 9_001,
        price: 64_000,
        account: 7,
        instrument: 3,
        request_id: 5005,
    };
    add("liquidate", liquidate.encode(&mut b), &b);
    add(
        "set_fee_tier",
        SetFeeTier {
            account: 7,
            tier: 1,
            request_id: 5006,
        }
        .encode(&mut b),
        &b,
    );
    add(
        "term_start",
        log_record::TermStart { node: 2 }.encode(&mut b),
        &b,
    );
    let rec = LogRecord {
        meta: RecordMeta {
            seq: 1237,
            term: 2,
            timestamp_ns: TS,
            origin: 0xFF00_0000,
            account: 0,
            session: 0,
        },
        input: Input::Tick(Tick {}),
    };
    add(
        "log_record_tick",
        log_record::encode_record(&rec, &mut b),
        &b,
    );
    let rec = LogRecord {
        meta: RecordMeta {
            seq: 200_001,
            term: 2,
            timestamp_ns: TS,
            origin: 0,
            account: 0,
            session: 0,
        },
        input: Input::Checkpoint(Checkpoint {
            prev_seq: 100_001,
            prev_hash: 0x0123_4567_89ab_cdef,
        }),
    };
    add(
        "log_record_checkpoint",
        log_record::encode_record(&rec, &mut b),
        &b,
    );
    let msgs = [
        MdMessage::AddOrder(AddOrder {
            timestamp_ns: TS,
            order_id: 77,
            price: 65_000,
            qty: 5,
            instrument: 1,
            side: Side::Buy,
        }),
        MdMessage::OrderExecuted(crate::market_data::OrderExecuted {
            timestamp_ns: TS,
            order_id: 77,
            qty: 2,
            trade_id: 9,
            instrument: 1,
        }),
        MdMessage::Trade(Trade {
            timestamp_ns: TS,
            trade_id: 9,
            price: 65_000,
            qty: 2,
            instrument: 1,
            aggressor_side: Side::Sell,
        }),
    ];
    add("md_packet", mold::encode_packet(1, 500, &msgs, &mut b), &b);
    add("md_heartbeat", mold::encode_packet(1, 503, &[], &mut b), &b);
    for (name, m) in md_examples() {
        add(name, m.encode(&mut b), &b);
    }
    let rq = RetransmitRequest {
        stream_id: 1,
        count: 3,
        first_seq: 500,
    };
    add("retransmit_request", rq.encode(&mut b), &b);
    let rf = RetransmitRefused {
        stream_id: 1,
        count: 3,
        reason: RetransmitRefusal::TooOld,
        first_seq: 500,
        available_from: 10_000,
    };
    add("retransmit_refused", rf.encode(&mut b), &b);
    out
}

fn example_enter_order() -> EnterOrder {
    EnterOrder {
        cl_ord_id: 1001,
        price: 65_000,
        qty: 5,
        instrument: 1,
        side: Side::Buy,
        kind: OrderKind::Limit,
        tif: TimeInForce::Gtc,
        stp: StpMode::ExpireTaker,
        post_only: true,
        reduce_only: false,
    }
}

/// A sell stop-limit on the last price, good till a date: fires when a trade prints at or
/// below 64 500, then rests as a limit at 64 400 until the expiry.
fn example_enter_order_ext() -> EnterOrderExt {
    EnterOrderExt {
        cl_ord_id: 1005,
        price: 64_400,
        qty: 5,
        instrument: 1,
        side: Side::Sell,
        kind: OrderKind::Limit,
        tif: TimeInForce::Gtd,
        stp: StpMode::ExpireTaker,
        post_only: false,
        reduce_only: false,
        post_only_slide: false,
        close_position: false,
        trigger: TriggerType::LastFallsTo,
        trigger_price: 64_500,
        expire_ts_ns: TS + 3_600_000_000_000,
        display_qty: 0,
        oco_cl_ord_id: 0,
    }
}

fn md_examples() -> Vec<(&'static str, MdMessage)> {
    vec![
        (
            "order_reduce",
            MdMessage::OrderReduce(OrderReduce {
                timestamp_ns: TS,
                order_id: 77,
                qty: 1,
                instrument: 1,
            }),
        ),
        (
            "order_delete",
            MdMessage::OrderDelete(OrderDelete {
                timestamp_ns: TS,
                order_id: 77,
                instrument: 1,
            }),
        ),
        (
            "order_replace",
            MdMessage::OrderReplace(OrderReplace {
                timestamp_ns: TS,
                order_id: 77,
                price: 64_990,
                qty: 4,
                instrument: 1,
            }),
        ),
        (
            "instrument_directory",
            MdMessage::InstrumentDirectory(InstrumentDirectory {
                timestamp_ns: TS,
                instrument: 1,
                kind: InstrumentKind::Spot,
                base_asset: 1,
                quote_asset: 2,
                settle_asset: 0,
                tick_size: 1_000_000,
                lot_size: 100_000,
                min_price: 1,
                max_price: 10_000_000,
                min_qty: 1,
                max_qty: 1_000_000,
                min_notional: 10,
                symbol: Symbol::from_bytes(*b"BTC-USDT\0\0\0\0\0\0\0\0").unwrap_or(Symbol::MIN),
            }),
        ),
        (
            "trading_status",
            MdMessage::TradingStatus(TradingStatus {
                timestamp_ns: TS,
                instrument: 1,
                state: TradingState::Halted,
            }),
        ),
        (
            "reference_price",
            MdMessage::ReferencePrice(ReferencePrice {
                timestamp_ns: TS,
                price: 65_000,
                instrument: 1,
                band_bps: 500,
            }),
        ),
        (
            "snapshot_begin",
            MdMessage::SnapshotBegin(SnapshotBegin {
                timestamp_ns: TS,
                last_seq: 502,
                instrument: Some(1),
                order_count: 1,
            }),
        ),
        (
            "snapshot_order",
            MdMessage::SnapshotOrder(SnapshotOrder {
                timestamp_ns: TS,
                order_id: 77,
                price: 65_000,
                qty: 3,
                instrument: 1,
                side: Side::Buy,
            }),
        ),
        (
            "snapshot_end",
            MdMessage::SnapshotEnd(SnapshotEnd {
                timestamp_ns: TS,
                last_seq: 502,
                instrument: Some(1),
                order_count: 1,
            }),
        ),
    ]
}
