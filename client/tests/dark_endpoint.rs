//! A node whose host is dark (powered off, partitioned: its SYNs are never answered) must not
//! hold a client for the kernel's whole SYN retry schedule (about two minutes on Linux). The
//! connect was a blocking `TcpStream::connect` with no timeout, so a `FailoverClient` whose
//! first endpoint was the dead primary's host waited there ~127 s before trying the new
//! primary. Now the connect is bounded by `login_timeout` (a `FailoverClient` caps that at 1
//! s per endpoint). The dark host here is a listener whose one-place accept queue is full: the
//! kernel drops every further SYN, as a dark host's network does.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use tpx_client::{token_from_str, Client, ClientConfig, ClientError, FailoverClient};
use tpx_wire::order_entry::{decode_client, ClientMessage};
use tpx_wire::replies::ServerMessage;
use tpx_wire::session::LoginAccepted;

/// A loopback listener with an accept queue of one, filled: every later SYN is dropped.
fn dark() -> (socket2::Socket, TcpStream, SocketAddr) {
    use socket2::{Domain, Socket, Type};
    let l = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    l.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    l.listen(0).unwrap();
    let addr = l.local_addr().unwrap().as_socket().unwrap();
    let queued = TcpStream::connect(addr).unwrap();
    (l, queued, addr)
}

/// Accepts one connection and answers its login.
fn live() -> (SocketAddr, thread::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let h = thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut h = [0u8; 8];
        s.read_exact(&mut h).unwrap();
        let len = u16::from_le_bytes([h[0], h[1]]) as usize;
        let mut b = vec![0u8; len.max(8)];
        b[..8].copy_from_slice(&h);
        s.read_exact(&mut b[8..]).unwrap();
        assert!(matches!(decode_client(&b), Ok(ClientMessage::Login(_))));
        let mut out = [0u8; 64];
        let n = ServerMessage::LoginAccepted(LoginAccepted {
            session_id: 1,
            heartbeat_interval_ms: 1_000,
            next_seq: 1,
        })
        .encode(&mut out)
        .unwrap();
        s.write_all(&out[..n]).unwrap();
        // Hold the connection until the client has seen the answer.
        let _ = s.read(&mut [0u8; 64]);
    });
    (addr, h)
}

fn config(addr: SocketAddr) -> ClientConfig {
    ClientConfig::new(addr, 1, 1, token_from_str("demo-token-1"))
}

/// Runs `f` on a thread; its result if it returns within `limit` (a blocked connect would
/// otherwise hold the test for minutes).
fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("still blocked after {limit:?}"))
}

#[test]
fn a_connect_to_a_dark_host_gives_up_at_the_login_timeout() {
    let (_l, _q, addr) = dark();
    let t0 = Instant::now();
    let r = within(Duration::from_secs(10), move || {
        let mut cfg = config(addr);
        cfg.login_timeout = Duration::from_millis(300);
        Client::connect(cfg).map(|_| ())
    });
    assert!(
        matches!(r, Err(ClientError::Io(_) | ClientError::Timeout)),
        "{r:?}"
    );
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
}

#[test]
fn a_failover_client_skips_a_dark_endpoint() {
    let (_l, _q, dark_addr) = dark();
    let (live_addr, server) = live();
    let t0 = Instant::now();
    let endpoint = within(Duration::from_secs(20), move || {
        FailoverClient::connect(vec![dark_addr, live_addr], config(live_addr)).map(|c| c.endpoint())
    });
    assert_eq!(endpoint.unwrap(), 1);
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    server.join().unwrap();
}
