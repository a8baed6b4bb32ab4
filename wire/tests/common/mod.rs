//! Shared by the property tests and the fuzz targets (which include this file by path):
//! making valid messages out of arbitrary bytes, and the "decode never panics, and what
//! decodes re-encodes to the same bytes" checks for every decoder.
#![allow(dead_code)]

use tpx_wire::catalog::{ENUMS, LAYOUTS};
use tpx_wire::codec::Layout;
use tpx_wire::framing::{split_frame, FrameBuffer};
use tpx_wire::header::{template, Header, SCHEMA_VERSION};
use tpx_wire::log_record::{decode_record, encode_record, Input, RecordIter};
use tpx_wire::mold::{decode_packet, decode_retransmit_response, PacketWriter, RetransmitResponse};
use tpx_wire::{ClientMessage, MdMessage, ServerMessage};

/// The fixed-size layouts (every layout but the record and packet headers).
pub fn fixed_layouts() -> Vec<&'static Layout> {
    LAYOUTS
        .iter()
        .filter(|l| l.template_id != template::LOG_RECORD && l.template_id != template::PACKET)
        .collect()
}

fn byte(entropy: &[u8], i: usize) -> u8 {
    if entropy.is_empty() {
        0
    } else {
        entropy[i % entropy.len()].wrapping_add((i / entropy.len()) as u8)
    }
}

/// A valid encoding of `layout` made from `entropy`: every field gets a valid value drawn from
/// it, reserved bytes are zero, the header is right.
pub fn make_valid(layout: &Layout, entropy: &[u8]) -> Vec<u8> {
    let mut b: Vec<u8> = (0..layout.size).map(|i| byte(entropy, i)).collect();
    Header {
        length: layout.size as u16,
        template_id: layout.template_id,
        schema_id: layout.schema_id,
        version: SCHEMA_VERSION,
    }
    .write(&mut b);
    for &(off, len) in layout.reserved {
        b[off..off + len].fill(0);
    }
    for f in layout.fields {
        let r = &mut b[f.offset..f.offset + f.size];
        if let Some(e) = ENUMS
            .iter()
            .find(|e| f.ty.strip_suffix(" (u8)") == Some(e.name))
        {
            r[0] = e.variants[usize::from(r[0]) % e.variants.len()].1;
        } else if f.ty == "bool (u8)" {
            r[0] &= 1;
        } else if f.ty.starts_with("Symbol") {
            let len = 1 + usize::from(r[0]) % 16;
            for (i, c) in r.iter_mut().enumerate() {
                *c = if i < len { 0x21 + *c % 94 } else { 0 };
            }
        }
        if f.rule == "nonzero" && r.iter().all(|&x| x == 0) {
            r[0] = 1;
        }
    }
    b
}

/// Runs `buf` through every decoder; whatever decodes must re-encode to the same bytes.
/// Panics (the point, under a fuzzer) if a decoder panics or a round trip differs.
pub fn check_all(buf: &[u8]) {
    check_client(buf);
    check_server(buf);
    check_md_message(buf);
    check_input(buf);
    check_record(buf);
    check_packet(buf);
    check_retransmit(buf);
    check_framing(buf, 256);
}

/// Re-encodes into a buffer a little larger than the input (an equal re-encoding fits).
fn reencode<E: std::fmt::Debug>(
    input_len: usize,
    f: impl FnOnce(&mut [u8]) -> Result<usize, E>,
) -> Vec<u8> {
    let mut out = vec![0u8; input_len + 64];
    let n = f(&mut out).expect("a decoded message must re-encode");
    out.truncate(n);
    out
}

pub fn check_client(buf: &[u8]) -> bool {
    match ClientMessage::decode(buf) {
        Ok(m) => {
            assert_eq!(reencode(buf.len(), |o| m.encode(o)), buf, "{m:?}");
            true
        }
        Err(e) => {
            let _ = e.to_string();
            false
        }
    }
}

pub fn check_server(buf: &[u8]) -> bool {
    match ServerMessage::decode(buf) {
        Ok(m) => {
            assert_eq!(reencode(buf.len(), |o| m.encode(o)), buf, "{m:?}");
            true
        }
        Err(e) => {
            let _ = e.to_string();
            false
        }
    }
}

pub fn check_md_message(buf: &[u8]) -> bool {
    match MdMessage::decode(buf) {
        Ok(m) => {
            assert_eq!(m.encoded_len(), buf.len());
            assert_eq!(reencode(buf.len(), |o| m.encode(o)), buf, "{m:?}");
            true
        }
        Err(_) => false,
    }
}

pub fn check_input(buf: &[u8]) -> bool {
    match Input::decode(buf) {
        Ok(m) => {
            assert_eq!(reencode(buf.len(), |o| m.encode(o)), buf, "{m:?}");
            true
        }
        Err(_) => false,
    }
}

/// Decodes records until the bytes end or one fails; each must re-encode to its bytes.
pub fn check_record(buf: &[u8]) -> usize {
    let mut n = 0;
    let mut it = RecordIter::new(buf);
    for item in &mut it {
        match item {
            Ok((at, rec)) => {
                let bytes = reencode(buf.len(), |o| encode_record(&rec, o));
                assert_eq!(&buf[at..at + bytes.len()], &bytes[..], "{rec:?}");
                assert_eq!(decode_record(&buf[at..]).map(|r| r.1), Ok(bytes.len()));
                n += 1;
            }
            Err((at, e)) => {
                assert!(e.is_truncated() != e.is_corrupt());
                assert!(at <= buf.len());
                let _ = e.to_string();
            }
        }
    }
    n
}

pub fn check_packet(buf: &[u8]) -> bool {
    match decode_packet(buf) {
        Ok(p) => {
            let msgs: Vec<(u64, MdMessage)> = p.messages().collect();
            assert_eq!(msgs.len(), usize::from(p.header.message_count));
            for (i, (seq, _)) in msgs.iter().enumerate() {
                assert_eq!(*seq, p.header.first_seq + i as u64);
            }
            let bytes = reencode(buf.len(), |o| {
                let mut w = PacketWriter::new(o, p.header.stream_id, p.header.first_seq)?;
                for (_, m) in &msgs {
                    w.push(m)?;
                }
                Ok::<usize, tpx_wire::EncodeError>(w.finish())
            });
            assert_eq!(bytes, buf);
            true
        }
        Err(_) => false,
    }
}

pub fn check_retransmit(buf: &[u8]) -> bool {
    let ok_req = match tpx_wire::mold::RetransmitRequest::decode(buf) {
        Ok(m) => {
            assert_eq!(reencode(buf.len(), |o| m.encode(o)), buf);
            true
        }
        Err(_) => false,
    };
    match decode_retransmit_response(buf) {
        Ok(RetransmitResponse::Refused(m)) => assert_eq!(reencode(buf.len(), |o| m.encode(o)), buf),
        Ok(RetransmitResponse::Packet(_)) => assert!(check_packet(buf)),
        Err(_) => {}
    }
    ok_req
}

/// Feeds `buf` to a `FrameBuffer` in chunks whose sizes come from the bytes themselves, and
/// checks it yields exactly the frames `split_frame` finds, then the same error (if any).
pub fn check_framing(buf: &[u8], max: usize) {
    // The reference: split the whole buffer.
    let mut expected = Vec::new();
    let mut expected_err = None;
    let mut rest = buf;
    loop {
        match split_frame(rest, max) {
            Ok(Some((f, r))) => {
                expected.push(f.to_vec());
                rest = r;
            }
            Ok(None) => break,
            Err(e) => {
                expected_err = Some(e);
                break;
            }
        }
    }
    let mut fb = FrameBuffer::new(vec![0u8; 1024], max);
    let mut got = Vec::new();
    let mut got_err = None;
    let mut pos = 0;
    let mut i = 0;
    'outer: while pos < buf.len() {
        let step = 1 + usize::from(buf[i % buf.len()]) % 97;
        i += 1;
        let end = (pos + step).min(buf.len());
        let taken = fb.extend(&buf[pos..end]);
        pos += taken;
        loop {
            match fb.next_frame() {
                Ok(Some(f)) => got.push(f.to_vec()),
                Ok(None) => break,
                Err(e) => {
                    got_err = Some(e);
                    break 'outer;
                }
            }
        }
        if taken == 0 {
            // The buffer is full of an incomplete frame: impossible, frames fit.
            panic!("frame buffer stalled with {} bytes", fb.buffered());
        }
    }
    assert_eq!(got, expected);
    assert_eq!(got_err, expected_err);
}
