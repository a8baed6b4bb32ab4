//! Encode and decode per message type (divan). Decoding includes full validation.
//!
//! `cargo bench -p tpx-wire --bench codec`

use divan::{black_box, Bencher};
use tpx_wire::catalog::examples;
use tpx_wire::codec::Message;
use tpx_wire::header::Header;
use tpx_wire::log_record::{decode_record, encode_record, Halt, Resume, SetReferencePrice};
use tpx_wire::market_data::*;
use tpx_wire::mold::{decode_packet, RetransmitRefused, RetransmitRequest};
use tpx_wire::order_entry::{CancelOrder, EnterOrder, MassCancel, ReplaceOrder};
use tpx_wire::replies::{
    MassCancelAck, OrderAccepted, OrderCancelled, OrderRejected, OrderReplaced,
};
use tpx_wire::session::*;
use tpx_wire::{decode_client, FrameBuffer};

fn main() {
    divan::main();
}

/// The canonical example bytes of a template (standalone, or as a log record's body).
fn sample(template_id: u16) -> Vec<u8> {
    for (_, b) in examples() {
        let mut cands = vec![b.clone(), b.get(48..).unwrap_or(&[]).to_vec()];
        if let Ok(p) = decode_packet(&b) {
            for (_, m) in p.messages() {
                let mut buf = [0u8; 256];
                let n = m.encode(&mut buf).unwrap();
                cands.push(buf[..n].to_vec());
            }
        }
        for cand in cands {
            if Header::peek(&cand).map(|h| h.template_id) == Ok(template_id) {
                return cand;
            }
        }
    }
    panic!("no example for template {template_id}")
}

type ReplyExecuted = tpx_wire::replies::OrderExecuted;
type MdExecuted = tpx_wire::market_data::OrderExecuted;

macro_rules! per_type {
    ($($t:ty),* $(,)?) => {
        #[divan::bench(types = [$($t),*])]
        fn decode<T: Message>(bencher: Bencher) {
            let bytes = sample(T::LAYOUT.template_id);
            bencher.bench_local(|| T::decode(black_box(&bytes[..])));
        }

        #[divan::bench(types = [$($t),*])]
        fn encode<T: Message>(bencher: Bencher) {
            let msg = T::decode(&sample(T::LAYOUT.template_id)).unwrap();
            let mut buf = [0u8; 256];
            bencher.bench_local(|| black_box(&msg).encode(black_box(&mut buf[..])));
        }
    };
}

per_type!(
    EnterOrder,
    ReplaceOrder,
    CancelOrder,
    MassCancel,
    Login,
    LoginAccepted,
    LoginRejected,
    ClientHeartbeat,
    ServerHeartbeat,
    LogoutRequest,
    Logout,
    SessionReject,
    OrderAccepted,
    OrderRejected,
    OrderReplaced,
    OrderCancelled,
    ReplyExecuted,
    MassCancelAck,
    Halt,
    Resume,
    SetReferencePrice,
    AddOrder,
    MdExecuted,
    OrderReduce,
    OrderDelete,
    OrderReplace,
    Trade,
    InstrumentDirectory,
    TradingStatus,
    ReferencePrice,
    SnapshotBegin,
    SnapshotOrder,
    SnapshotEnd,
    RetransmitRequest,
    RetransmitRefused,
);

/// The gateway's path: any client frame, dispatched on the template id.
#[divan::bench]
fn decode_client_enter_order(bencher: Bencher) {
    let bytes = sample(EnterOrder::TEMPLATE_ID);
    bencher.bench_local(|| decode_client(black_box(&bytes[..])));
}

fn record() -> Vec<u8> {
    examples()
        .into_iter()
        .find(|(n, _)| *n == "log_record_enter_order")
        .unwrap()
        .1
}

/// Record decode: CRC32C over 92 bytes plus the body's validation.
#[divan::bench]
fn decode_log_record(bencher: Bencher) {
    let bytes = record();
    bencher.bench_local(|| decode_record(black_box(&bytes[..])));
}

#[divan::bench]
fn encode_log_record(bencher: Bencher) {
    let rec = decode_record(&record()).unwrap().0;
    let mut buf = [0u8; 256];
    bencher.bench_local(|| encode_record(black_box(&rec), black_box(&mut buf[..])));
}

/// A 3-message packet: validate all, then iterate.
#[divan::bench]
fn decode_md_packet_3(bencher: Bencher) {
    let bytes = examples()
        .into_iter()
        .find(|(n, _)| *n == "md_packet")
        .unwrap()
        .1;
    bencher.bench_local(|| {
        let p = decode_packet(black_box(&bytes[..])).unwrap();
        p.messages()
            .map(|(s, m)| s ^ m.timestamp_ns())
            .fold(0, |a, x| a ^ x)
    });
}

/// 64 KiB of EnterOrder frames through the frame accumulator (per frame: copy in, split, decode).
#[divan::bench]
fn frame_and_decode_1365_orders(bencher: Bencher) {
    let one = sample(EnterOrder::TEMPLATE_ID);
    let stream: Vec<u8> = one.iter().copied().cycle().take(one.len() * 1365).collect();
    let mut fb = FrameBuffer::new(vec![0u8; 4096], 256);
    bencher.bench_local(|| {
        let mut n = 0u32;
        for chunk in stream.chunks(1500) {
            fb.extend(chunk);
            while let Ok(Some(f)) = fb.next_frame() {
                n += u32::from(decode_client(f).is_ok());
            }
        }
        n
    });
}
