//! The floor of the replicated order path, measured in the same run as the lab: a 48-byte
//! message from a client through two relay processes and back, client → A → B → A → client,
//! the hops an acknowledged order takes in `tpx up` (client → primary → standby → primary →
//! client) with nothing done at any hop. Each relay is a process of its own (this binary run
//! with `--relay-serve`), pinned like the nodes' sequencing cores (A on the first CPU, B on the
//! second: `tpx up` gives the standby the primary's plan on the CPUs in the other order),
//! waiting the way a `park` node's core does: 4 empty cycles of non-blocking reads, then
//! `ppoll(2)` on its sockets for 10 µs doubling to `park_max_us` (the node's `Idler` policy; it
//! wakes at once when bytes arrive), with the core threads' 1 ns timer slack. `tpx-load` reports its lab latency as a ratio of this floor.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tpx_node::config::IdleMode;
use tpx_node::runtime::idle::Idler;

/// The size of a new order on the wire (`EnterOrder` with its header).
pub const MESSAGE_BYTES: usize = 48;

/// Waits up to `us` for any of `fds` to be readable (the node's own `ppoll`).
fn sleep_on(fds: &[i32], us: u64) {
    let mut p: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    tpx_node::runtime::doorbell::sleep_on(&mut p, us);
}

/// Writes all of `buf` to a non-blocking socket, retrying while its send buffer is full (the
/// 48-byte messages of the floor never fill it): no mode switch, so a hop costs the `read`
/// and `write` the node's path makes too.
fn write_all_nonblocking(to: &mut TcpStream, mut buf: &[u8]) -> std::io::Result<()> {
    while !buf.is_empty() {
        match to.write(buf) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == ErrorKind::WouldBlock => std::hint::spin_loop(),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Moves what `from` has into `to` (a relay never holds bytes); the bytes moved, `Err` when
/// `from` closed.
fn pump(from: &mut TcpStream, to: &mut TcpStream, buf: &mut [u8]) -> std::io::Result<usize> {
    match from.read(buf) {
        Ok(0) => Err(ErrorKind::UnexpectedEof.into()),
        Ok(n) => {
            write_all_nonblocking(to, &buf[..n])?;
            Ok(n)
        }
        Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(0),
        Err(e) => Err(e),
    }
}

/// A relay: binds `127.0.0.1:0`, prints `RELAY <port>`, accepts one connection and forwards
/// everything to `next` and back (without `next`: echoes). Returns when the client closes.
pub fn serve(next: Option<SocketAddr>, park_max_us: u64, cpu: Option<usize>) -> Result<(), String> {
    if let Some(c) = cpu {
        core_affinity::set_for_current(core_affinity::CoreId { id: c });
    }
    // As a node's core thread does (`CoreRuntime::run`).
    tpx_node::runtime::idle::tighten_timer_slack();
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    println!(
        "RELAY {}",
        l.local_addr().map_err(|e| e.to_string())?.port()
    );
    std::io::stdout().flush().map_err(|e| e.to_string())?;
    let (mut client, _) = l.accept().map_err(|e| e.to_string())?;
    let mut peer = match next {
        Some(a) => Some(TcpStream::connect(a).map_err(|e| format!("{a}: {e}"))?),
        None => None,
    };
    let mut fds = vec![client.as_raw_fd()];
    fds.extend(peer.as_ref().map(|p| p.as_raw_fd()));
    for s in [Some(&client), peer.as_ref()].into_iter().flatten() {
        s.set_nodelay(true).map_err(|e| e.to_string())?;
        s.set_nonblocking(true).map_err(|e| e.to_string())?;
    }
    let mut echo = client.try_clone().map_err(|e| e.to_string())?;
    let mut idler = Idler::new(IdleMode::Park, park_max_us);
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let mut work = 0;
        match peer.as_mut() {
            Some(p) => {
                let Ok(n) = pump(&mut client, p, &mut buf) else {
                    return Ok(());
                };
                work += n;
                let Ok(n) = pump(p, &mut client, &mut buf) else {
                    return Ok(());
                };
                work += n;
            }
            None => {
                let Ok(n) = pump(&mut client, &mut echo, &mut buf) else {
                    return Ok(());
                };
                work += n;
            }
        }
        if let Some(us) = idler.after_cycle(work) {
            sleep_on(&fds, us);
        }
    }
}

/// A relay process (this executable with `--relay-serve`), killed by pid when dropped.
struct RelayProc {
    child: Child,
    port: u16,
}

impl RelayProc {
    fn start(
        exe: &std::path::Path,
        next: Option<u16>,
        park_max_us: u64,
        cpu: usize,
    ) -> Result<RelayProc, String> {
        let mut c = Command::new(exe);
        c.arg("--relay-serve")
            .arg("--relay-park-max-us")
            .arg(park_max_us.to_string())
            .arg("--relay-cpu")
            .arg(cpu.to_string());
        if let Some(p) = next {
            c.arg("--relay-next").arg(format!("127.0.0.1:{p}"));
        }
        let mut child = c
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("{}: {e}", exe.display()))?;
        let out = child.stdout.take().ok_or("no stdout")?;
        let mut line = String::new();
        BufReader::new(out)
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        let port = line
            .trim()
            .strip_prefix("RELAY ")
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| format!("relay said {line:?}"))?;
        Ok(RelayProc { child, port })
    }
}

impl Drop for RelayProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Round trips client → A → B → A → client: `warmup` unmeasured, then `samples` measured (ns),
/// one in flight, `gap` apart (the lab's orders are not back to back either). The client waits
/// as the relays do.
pub fn measure(
    exe: &std::path::Path,
    samples: usize,
    warmup: usize,
    gap: Duration,
    park_max_us: u64,
) -> Result<Histogram<u64>, String> {
    let cpus: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    let cpu = |k: usize| cpus.get(k % cpus.len().max(1)).copied().unwrap_or(0);
    // The client waits as the load generator's threads do (`load::drive`).
    tpx_node::runtime::idle::tighten_timer_slack();
    let b = RelayProc::start(exe, None, park_max_us, cpu(1))?;
    let a = RelayProc::start(exe, Some(b.port), park_max_us, cpu(0))?;
    let mut s = TcpStream::connect(("127.0.0.1", a.port)).map_err(|e| e.to_string())?;
    s.set_nodelay(true).map_err(|e| e.to_string())?;
    s.set_nonblocking(true).map_err(|e| e.to_string())?;
    let fd = [s.as_raw_fd()];
    let mut h =
        Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).map_err(|e| e.to_string())?;
    let msg = [7u8; MESSAGE_BYTES];
    let mut buf = [0u8; MESSAGE_BYTES];
    let mut idler = Idler::new(IdleMode::Park, park_max_us);
    for i in 0..warmup + samples {
        let t0 = Instant::now();
        write_all_nonblocking(&mut s, &msg).map_err(|e| e.to_string())?;
        let mut got = 0;
        while got < MESSAGE_BYTES {
            match s.read(&mut buf[got..]) {
                Ok(0) => return Err("a relay closed".into()),
                Ok(n) => {
                    got += n;
                    idler.after_cycle(n);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    if let Some(us) = idler.after_cycle(0) {
                        sleep_on(&fd, us);
                    }
                }
                Err(e) => return Err(e.to_string()),
            }
        }
        if i >= warmup {
            h.saturating_record(t0.elapsed().as_nanos() as u64);
        }
        let until = t0 + gap;
        while Instant::now() < until {
            std::thread::sleep(until.saturating_duration_since(Instant::now()));
        }
    }
    drop(s);
    drop((a, b));
    Ok(h)
}
