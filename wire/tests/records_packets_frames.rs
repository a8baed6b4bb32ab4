//! The input-log record's truncated-vs-corrupt reporting, packets, and the frame accumulator.

use tpx_wire::catalog::examples;
use tpx_wire::framing::{frame_len, FrameBuffer, FrameError};
use tpx_wire::log_record::{decode_record, RecordError, RecordIter};
use tpx_wire::mold::{decode_packet, PacketWriter};
use tpx_wire::*;

fn example(name: &str) -> Vec<u8> {
    examples().into_iter().find(|(n, _)| *n == name).unwrap().1
}

#[test]
fn crc32c_is_castagnoli() {
    assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
}

#[test]
fn truncated_vs_corrupt() {
    let rec = example("log_record_enter_order");
    assert_eq!(rec.len(), 96);
    let (r, n) = decode_record(&rec).unwrap();
    assert_eq!(n, 96);
    assert_eq!(r.meta.seq, 1234);
    // Every proper prefix is truncated, never corrupt.
    for cut in 0..rec.len() {
        let e = decode_record(&rec[..cut]).unwrap_err();
        assert!(e.is_truncated(), "cut at {cut}: {e:?}");
    }
    // Every single-bit flip past the header is corrupt (the CRC catches it).
    for i in 8..rec.len() {
        for bit in 0..8 {
            let mut b = rec.clone();
            b[i] ^= 1 << bit;
            match decode_record(&b) {
                Err(RecordError::Corrupt(DecodeError::ChecksumMismatch { .. })) => {}
                other => panic!("flip {i}.{bit}: {other:?}"),
            }
        }
    }
    // Flips in the header are corrupt too (bad header or bad length), or truncated when the
    // length grew past the bytes there are.
    for i in 0..8 {
        for bit in 0..8 {
            let mut b = rec.clone();
            b[i] ^= 1 << bit;
            assert!(decode_record(&b).is_err(), "flip {i}.{bit}");
        }
    }
    // A zero-filled (preallocated) tail is corrupt, not a record.
    assert!(decode_record(&[0u8; 128]).unwrap_err().is_corrupt());
}

#[test]
fn record_iter_stops_at_a_torn_tail() {
    let a = example("log_record_enter_order");
    let b = example("log_record_set_reference_price");
    let mut log = a.clone();
    log.extend_from_slice(&b);
    log.extend_from_slice(&a[..50]);
    let items: Vec<_> = RecordIter::new(&log).collect();
    assert_eq!(items.len(), 3);
    assert!(matches!(items[0], Ok((0, _))));
    assert!(matches!(items[1], Ok((96, _))));
    match items[2] {
        Err((at, e)) => {
            assert_eq!(at, 96 + b.len());
            assert!(e.is_truncated());
        }
        _ => panic!(),
    }
}

#[test]
fn packets() {
    let p = example("md_packet");
    let pk = decode_packet(&p).unwrap();
    assert_eq!(pk.header.first_seq, 500);
    assert_eq!(pk.next_seq(), 503);
    let seqs: Vec<u64> = pk.messages().map(|(s, _)| s).collect();
    assert_eq!(seqs, vec![500, 501, 502]);
    assert!(decode_packet(&example("md_heartbeat"))
        .unwrap()
        .is_heartbeat());
    // Count says 4 but only 3 are there.
    let mut b = p.clone();
    b[12] = 4;
    assert!(matches!(
        decode_packet(&b),
        Err(DecodeError::Truncated { .. })
    ));
    // Count says 2: one message too many.
    b[12] = 2;
    assert_eq!(
        decode_packet(&b),
        Err(DecodeError::TrailingBytes { extra: 48 })
    );
    // first_seq 0 is out of range.
    let mut b = p.clone();
    b[16..24].fill(0);
    assert!(matches!(
        decode_packet(&b),
        Err(DecodeError::OutOfRange { offset: 16, .. })
    ));
    // A packet writer stops when the buffer is full, leaving the packet valid.
    let mut buf = [0u8; 24 + 48 + 40];
    let mut w = PacketWriter::new(&mut buf, 1, 1).unwrap();
    let msgs: Vec<MdMessage> = decode_packet(&p)
        .unwrap()
        .messages()
        .map(|(_, m)| m)
        .collect();
    assert!(w.push(&msgs[0]).is_ok());
    assert!(matches!(
        w.push(&msgs[1]),
        Err(EncodeError::BufferTooSmall { .. })
    ));
    let n = w.finish();
    assert_eq!(decode_packet(&buf[..n]).unwrap().header.message_count, 1);
}

#[test]
fn frames() {
    assert_eq!(frame_len(&[], 256), Ok(None));
    assert_eq!(frame_len(&[8], 256), Ok(None));
    assert_eq!(
        frame_len(&[7, 0], 256),
        Err(FrameError::TooShort { declared: 7 })
    );
    assert_eq!(
        frame_len(&[1, 1], 256),
        Err(FrameError::TooLong {
            declared: 257,
            max: 256
        })
    );
    let order = example("enter_order");
    let hb = example("client_heartbeat");
    let mut stream = Vec::new();
    for _ in 0..10 {
        stream.extend_from_slice(&order);
        stream.extend_from_slice(&hb);
    }
    // One byte at a time, through spare_mut/commit as a socket read would.
    let mut fb = FrameBuffer::new([0u8; 64], 256);
    assert_eq!(fb.max_frame_len(), 64);
    let mut got = Vec::new();
    for &byte in &stream {
        let spare = fb.spare_mut();
        spare[0] = byte;
        fb.commit(1);
        while let Some(f) = fb.next_frame().unwrap() {
            got.push(decode_client(f).unwrap());
        }
    }
    assert_eq!(got.len(), 20);
    assert_eq!(fb.buffered(), 0);
    // Garbage length: the error sticks until reset.
    fb.extend(&[3, 0, 0, 0]);
    assert_eq!(fb.next_frame(), Err(FrameError::TooShort { declared: 3 }));
    assert_eq!(fb.next_frame(), Err(FrameError::TooShort { declared: 3 }));
    fb.reset();
    fb.extend(&hb);
    assert_eq!(fb.next_frame(), Ok(Some(&hb[..])));
}
