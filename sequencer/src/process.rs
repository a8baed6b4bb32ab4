//! What a tpx process needs around its state machines: the host clock every process of a host
//! shares ([`mono_ns`]), timer slack and real-time scheduling, signal handling, the idle
//! back-off between duty cycles, and the witness process itself ([`run_witness`], what `tpx
//! witness` runs).

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::clock::{Clock, SystemClock};
use crate::transport::{TcpTransport, WITNESS_ID};
use crate::witness::WitnessServer;
use crate::writer::IdleMode;

/// `CLOCK_MONOTONIC` in nanoseconds: the same clock in every process of a host (unlike
/// `Instant`, whose value cannot be printed), for measuring a takeover across processes.
pub fn mono_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for the call to write.
    unsafe {
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Asks the kernel for 1 µs timer slack (the default 50 µs turns every 20 µs park into
/// ~70 µs, which a sub-millisecond failure detector cannot afford on a parked primary).
pub fn tight_timer_slack() {
    // SAFETY: prctl(PR_SET_TIMERSLACK) takes an integer argument and touches no memory.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1_000 as libc::c_ulong, 0, 0, 0);
    }
}

/// Runs the calling thread (and the threads it starts later) under `SCHED_FIFO` at
/// `priority` (1..=99; 0: leave the policy alone). On a host whose cores are shared, a woken
/// real-time thread runs at once instead of after a CFS time slice of whatever else runs:
/// heartbeats, lease renewals and grants keep their microsecond timing. Only for threads that
/// park (a real-time thread that spins takes its core; the kernel leaves others 5%).
pub fn set_realtime(priority: u32) -> Result<(), String> {
    if priority == 0 {
        return Ok(());
    }
    let p = libc::sched_param {
        sched_priority: priority.min(99) as libc::c_int,
    };
    // SAFETY: `p` is a valid sched_param; pid 0 is the calling thread.
    let r = unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &p) };
    if r != 0 {
        return Err(format!(
            "SCHED_FIFO {priority}: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// While it lives, the calling thread runs under `SCHED_OTHER` if it was real-time; dropping
/// it restores the thread's policy and priority. For bulk work on a thread that is real-time
/// for short, latency-critical work (the log writer making a segment in its commit path): a
/// real-time thread that runs tens of milliseconds of CPU (zero-filling a segment on tmpfs,
/// where writes never sleep) starves every normal thread on its CPU, a sequencing core among
/// them (ARCHITECTURE.md, "Durable log, roles and failover").
#[derive(Debug)]
pub struct NormalPriority {
    was: Option<(libc::c_int, libc::sched_param)>,
}

impl NormalPriority {
    pub fn enter() -> NormalPriority {
        // SAFETY: pid 0 is the calling thread; no memory is passed.
        let policy = unsafe { libc::sched_getscheduler(0) };
        let base = policy & !libc::SCHED_RESET_ON_FORK;
        if base != libc::SCHED_FIFO && base != libc::SCHED_RR {
            return NormalPriority { was: None };
        }
        let mut p = libc::sched_param { sched_priority: 0 };
        // SAFETY: `p` is a valid sched_param the call fills; pid 0 is the calling thread.
        if unsafe { libc::sched_getparam(0, &mut p) } != 0 {
            return NormalPriority { was: None };
        }
        set_normal();
        NormalPriority {
            was: Some((policy, p)),
        }
    }
}

impl Drop for NormalPriority {
    fn drop(&mut self) {
        if let Some((policy, p)) = self.was {
            // SAFETY: `p` is the sched_param read in `enter`; pid 0 is the calling thread.
            unsafe {
                libc::sched_setscheduler(0, policy, &p);
            }
        }
    }
}

/// Puts the calling thread back under the default policy (`SCHED_OTHER`).
pub fn set_normal() {
    let p = libc::sched_param { sched_priority: 0 };
    // SAFETY: `p` is a valid sched_param; pid 0 is the calling thread.
    unsafe {
        libc::sched_setscheduler(0, libc::SCHED_OTHER, &p);
    }
}

static STOP: AtomicBool = AtomicBool::new(false);

static HASH_ASKED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

extern "C" fn on_usr1(_: libc::c_int) {
    HASH_ASKED.store(true, Ordering::SeqCst);
}

/// Routes SIGTERM and SIGINT to [`stop_requested`], SIGUSR1 to [`hash_requested`].
pub fn install_signal_handlers() {
    let handler: extern "C" fn(libc::c_int) = on_signal;
    let usr1: extern "C" fn(libc::c_int) = on_usr1;
    // SAFETY: the handlers only store to an atomic (async-signal-safe).
    unsafe {
        libc::signal(libc::SIGTERM, handler as libc::sighandler_t);
        libc::signal(libc::SIGINT, handler as libc::sighandler_t);
        libc::signal(libc::SIGUSR1, usr1 as libc::sighandler_t);
    }
}

/// Whether SIGUSR1 arrived since the last call (a process answers with its state hash).
pub fn hash_requested() -> bool {
    HASH_ASKED.swap(false, Ordering::SeqCst)
}

/// Whether SIGTERM / SIGINT arrived.
pub fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// Idles between duty cycles that found nothing to do.
#[derive(Debug)]
pub struct Backoff {
    mode: IdleMode,
    idle_cycles: u32,
}

impl Backoff {
    pub fn new(mode: IdleMode) -> Backoff {
        Backoff {
            mode,
            idle_cycles: 0,
        }
    }
    pub fn busy(&mut self) {
        self.idle_cycles = 0;
    }
    pub fn idle(&mut self) {
        self.idle_or(std::thread::sleep)
    }
    /// As [`Backoff::idle`], with `sleep` doing the parking (e.g. waiting in `ppoll` on the
    /// sockets, so that a message ends the park at once).
    pub fn idle_or(&mut self, sleep: impl FnOnce(Duration)) {
        self.idle_cycles = self.idle_cycles.saturating_add(1);
        match self.mode {
            IdleMode::Spin => std::hint::spin_loop(),
            IdleMode::Park => {
                // One more duty cycle, then 20 µs parks (1 µs timer slack, see
                // `tight_timer_slack`). Counting cycles, not time: one duty cycle of a node is
                // several syscalls (socket reads, accept), so a longer spin or a `yield_now`
                // phase never reached the sleep between 50 µs heartbeats and a "parked" node
                // took its whole core (and, real-time, starved everything else on it). Eight
                // spinning cycles after every message (a pair exchanges ~20 000 a second:
                // heartbeats, acks, appends) still cost a node ~75 % of a core on the 2-vCPU
                // VM; parked in `ppoll` on the sockets (`idle_or`), a message ends the park
                // at once, so spinning buys nothing.
                if self.idle_cycles < 2 {
                    std::hint::spin_loop();
                } else {
                    sleep(Duration::from_micros(20));
                }
            }
        }
    }
}

/// Writes one report line and flushes it (tests and benches read these lines as they come).
pub fn say(out: &mut dyn Write, line: std::fmt::Arguments<'_>) {
    let _ = out.write_fmt(line);
    let _ = out.write_all(b"\n");
    let _ = out.flush();
}

/// A witness process's settings.
#[derive(Clone, Debug)]
pub struct WitnessOptions {
    pub listen: SocketAddr,
    pub lease_ns: u64,
    pub state_file: PathBuf,
    pub handshake: crate::transport::Handshake,
    pub idle: IdleMode,
    /// `SCHED_FIFO` priority (0: the default policy); see [`set_realtime`].
    pub rt_priority: u32,
}

/// Runs the witness until stopped. `hooks.ready` is called once it listens with its state file
/// open, `hooks.cycle` after every loop (at least once a millisecond): `tpx witness` sends
/// systemd's `READY=1` and watchdog pings from them.
pub fn run_witness(
    opts: WitnessOptions,
    out: &mut dyn Write,
    hooks: &mut dyn WitnessHooks,
) -> Result<(), String> {
    let WitnessOptions {
        listen,
        lease_ns,
        state_file,
        handshake,
        idle,
        rt_priority,
    } = opts;
    set_realtime(rt_priority)?;
    let net = TcpTransport::new(WITNESS_ID, Some(listen), Vec::new())
        .map_err(|e| format!("listen {listen}: {e}"))?
        .with_handshake(handshake);
    let clock = SystemClock::new();
    let _ = clock.now_ns();
    crate::witness::check_lease_ns(lease_ns)?;
    let mut w =
        WitnessServer::open(lease_ns, net, clock, &state_file).map_err(|e| e.to_string())?;
    say(
        out,
        format_args!(
            "READY witness term={} holder={}",
            w.witness.term, w.witness.holder
        ),
    );
    hooks.ready();
    tight_timer_slack();
    let mut backoff = Backoff::new(idle);
    let (mut term, mut holder) = (w.witness.term, w.witness.holder);
    while !stop_requested() {
        if w.poll() > 0 {
            backoff.busy();
        } else if idle == IdleMode::Park {
            // Sleep in ppoll(2) on the sockets: woken by the request itself (a sleep loop
            // would add up to its period to every grant).
            w.transport().wait_readable(1_000);
        } else {
            backoff.idle();
        }
        if (w.witness.term, w.witness.holder) != (term, holder) {
            term = w.witness.term;
            holder = w.witness.holder;
            say(out, format_args!("GRANTED term={term} holder={holder}"));
        }
        hooks.cycle();
    }
    Ok(())
}

/// What a witness process does beside its loop (see [`run_witness`]); `()` does nothing.
pub trait WitnessHooks {
    /// The witness listens and its state file is open.
    fn ready(&mut self) {}
    /// One loop ran.
    fn cycle(&mut self) {}
}

impl WitnessHooks for () {}

/// Lets thread `t` run on `cpus` only (CPU ids as `sched_setaffinity(2)` numbers them); an
/// empty `cpus` changes nothing. A thread starts with its creator's affinity: one spawned from
/// a pinned core shares that core's CPU until moved.
pub fn set_thread_cpus<T>(t: &std::thread::JoinHandle<T>, cpus: &[usize]) -> std::io::Result<()> {
    use std::os::unix::thread::JoinHandleExt;
    if cpus.is_empty() {
        return Ok(());
    }
    let set = cpu_set(cpus)?;
    // SAFETY: the handle's thread is not joined (the caller holds the handle); `set` is a
    // valid cpu_set_t of the size passed.
    let r = unsafe {
        libc::pthread_setaffinity_np(
            t.as_pthread_t(),
            std::mem::size_of::<libc::cpu_set_t>(),
            &set,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::from_raw_os_error(r))
    }
}

/// `cpus` as a `cpu_set_t` (CPU ids as `sched_setaffinity(2)` numbers them); an id at or
/// beyond `CPU_SETSIZE` is an error.
pub fn cpu_set(cpus: &[usize]) -> std::io::Result<libc::cpu_set_t> {
    // SAFETY: a zeroed cpu_set_t is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &c in cpus {
        if c >= libc::CPU_SETSIZE as usize {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("cpu {c} is beyond CPU_SETSIZE"),
            ));
        }
        // SAFETY: `c` is below CPU_SETSIZE (checked above).
        unsafe { libc::CPU_SET(c, &mut set) };
    }
    Ok(set)
}
