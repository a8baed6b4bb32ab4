//! Aeron plumbing shared by the publisher and the feed handler: an embedded media driver (or an
//! external one), a client, and publications/subscriptions added without busy-polling.
//!
//! The C client and driver are Aeron 1.54 through `rusteron` (`static`, `multi-threaded`).
//! Embedded drivers use a unique directory under `/dev/shm` unless told otherwise, delete it on
//! start and on shutdown, and [`EmbeddedDriver`] removes it again on drop (a driver killed with
//! `kill -9` leaves it behind; nothing else does).

use std::ffi::CString;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusteron_client::{
    Aeron, AeronContext, AeronExclusivePublication, AeronSubscription, Handlers,
};
use rusteron_media_driver::bindings::aeron_threading_mode_enum as Threading;
use rusteron_media_driver::{AeronDriver, AeronDriverContext};

pub use rusteron_client;

/// Errors of the Aeron layer and of the market-data services.
#[derive(Debug)]
pub enum MdError {
    /// The Aeron client or driver failed (message from the C library).
    Aeron(String),
    /// A socket failed.
    Io(std::io::Error),
    /// A configuration value is unusable.
    Config(String),
    /// A publication or subscription did not come up in time.
    Timeout(String),
}

impl fmt::Display for MdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MdError::Aeron(m) => write!(f, "aeron: {m}"),
            MdError::Io(e) => write!(f, "io: {e}"),
            MdError::Config(m) => write!(f, "config: {m}"),
            MdError::Timeout(m) => write!(f, "timeout: {m}"),
        }
    }
}

impl std::error::Error for MdError {}

impl From<std::io::Error> for MdError {
    fn from(e: std::io::Error) -> Self {
        MdError::Io(e)
    }
}

fn aeron_err(what: &str, e: impl fmt::Display) -> MdError {
    MdError::Aeron(format!("{what}: {e}"))
}

fn cstring(s: &str) -> Result<CString, MdError> {
    CString::new(s).map_err(|_| MdError::Config(format!("NUL byte in {s:?}")))
}

/// How the driver's agents wait for work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DriverIdle {
    /// Spin, yield, then park up to 1 ms (Aeron's default): no core burnt when idle.
    Backoff,
    /// Busy-spin: lowest latency, one core per agent thread. Count it against the machine's
    /// spinning-thread budget.
    Spin,
}

/// Which agent threads the embedded driver runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DriverThreading {
    /// Conductor, sender and receiver on one thread (the right choice on few cores).
    Shared,
    /// Conductor on one thread, sender and receiver on another.
    SharedNetwork,
    /// One thread each.
    Dedicated,
}

/// An embedded media driver's settings.
#[derive(Clone, Debug)]
pub struct DriverConfig {
    /// Driver directory; `None`: `/dev/shm/tpx-aeron-<pid>-<counter>`.
    pub dir: Option<String>,
    pub threading: DriverThreading,
    pub idle: DriverIdle,
    /// Term buffer length of network publications (power of two, 64 KiB ..= 1 GiB).
    pub term_length: usize,
    /// Term buffer length of IPC publications.
    pub ipc_term_length: usize,
    /// Sparse term files (true saves memory and start-up time; false pre-faults them).
    pub sparse_terms: bool,
    /// How long the driver waits for a client's keepalive before it drops the client
    /// (`None`: Aeron's default, 10 s). A client process frozen longer than this (SIGSTOP, a
    /// stalled VM) finds itself timed out when it resumes ([`AeronClient::is_dead`]).
    pub client_liveness_timeout_ns: Option<u64>,
}

impl Default for DriverConfig {
    fn default() -> Self {
        DriverConfig {
            dir: None,
            threading: DriverThreading::Shared,
            idle: DriverIdle::Backoff,
            term_length: 16 << 20,
            ipc_term_length: 16 << 20,
            sparse_terms: true,
            client_liveness_timeout_ns: None,
        }
    }
}

impl DriverConfig {
    /// Small terms (64 KiB) for tests.
    pub fn for_tests() -> DriverConfig {
        DriverConfig {
            term_length: 64 << 10,
            ipc_term_length: 64 << 10,
            ..DriverConfig::default()
        }
    }
}

/// Where a client finds its media driver.
#[derive(Clone, Debug)]
pub enum AeronSetup {
    /// Start a driver inside this process (owned by the client).
    Embedded(DriverConfig),
    /// Use a running driver (`aeronmd`, or another embedded one) in this directory.
    External { dir: String },
}

static DIR_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Prefix of the embedded drivers' default directories.
pub const DIR_PREFIX: &str = "tpx-aeron";

/// A fresh driver directory name under `/dev/shm`: `<prefix>-<pid>-<counter>`.
pub fn unique_driver_dir(prefix: &str) -> String {
    let n = DIR_COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("/dev/shm/{prefix}-{}-{n}", std::process::id())
}

/// Removes `/dev/shm/<prefix>-<pid>-<n>` directories whose process is gone (a process killed
/// before it could close its embedded driver leaves its directory, about 50 MB, behind).
/// Returns how many it removed.
pub fn sweep_stale_driver_dirs(prefix: &str) -> usize {
    let Ok(entries) = std::fs::read_dir("/dev/shm") else {
        return 0;
    };
    let mut removed = 0;
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(rest) = name
            .to_str()
            .and_then(|n| n.strip_prefix(prefix))
            .and_then(|n| n.strip_prefix('-'))
        else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid != std::process::id()
            && !std::path::Path::new(&format!("/proc/{pid}")).exists()
            && std::fs::remove_dir_all(e.path()).is_ok()
        {
            removed += 1;
        }
    }
    removed
}

/// A media driver running inside this process on its own agent thread(s), closed (threads
/// joined, directory deleted) on drop.
pub struct EmbeddedDriver {
    driver: Option<AeronDriver>,
    _context: AeronDriverContext,
    dir: String,
}

impl fmt::Debug for EmbeddedDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbeddedDriver")
            .field("dir", &self.dir)
            .finish()
    }
}

impl EmbeddedDriver {
    /// Starts a driver (25–45 ms on an idle machine).
    pub fn launch(cfg: &DriverConfig) -> Result<EmbeddedDriver, MdError> {
        let dir = match &cfg.dir {
            Some(d) => d.clone(),
            None => {
                sweep_stale_driver_dirs(DIR_PREFIX);
                unique_driver_dir(DIR_PREFIX)
            }
        };
        let ctx = AeronDriverContext::new().map_err(|e| aeron_err("driver context", e))?;
        let set = |r: Result<i32, rusteron_media_driver::AeronCError>, what: &str| {
            r.map(|_| ()).map_err(|e| aeron_err(what, e))
        };
        set(ctx.set_dir(&cstring(&dir)?), "driver dir")?;
        set(ctx.set_dir_delete_on_start(true), "dir_delete_on_start")?;
        set(
            ctx.set_dir_delete_on_shutdown(true),
            "dir_delete_on_shutdown",
        )?;
        let mode = match cfg.threading {
            DriverThreading::Shared => Threading::AERON_THREADING_MODE_SHARED,
            DriverThreading::SharedNetwork => Threading::AERON_THREADING_MODE_SHARED_NETWORK,
            DriverThreading::Dedicated => Threading::AERON_THREADING_MODE_DEDICATED,
        };
        set(ctx.set_threading_mode(mode), "threading mode")?;
        set(ctx.set_term_buffer_length(cfg.term_length), "term length")?;
        set(
            ctx.set_ipc_term_buffer_length(cfg.ipc_term_length),
            "ipc term length",
        )?;
        set(
            ctx.set_term_buffer_sparse_file(cfg.sparse_terms),
            "sparse terms",
        )?;
        let idle = match cfg.idle {
            DriverIdle::Backoff => c"backoff",
            DriverIdle::Spin => c"spin",
        };
        set(ctx.set_shared_idle_strategy(idle), "shared idle")?;
        set(
            ctx.set_sharednetwork_idle_strategy(idle),
            "sharednetwork idle",
        )?;
        set(ctx.set_conductor_idle_strategy(idle), "conductor idle")?;
        if let Some(ns) = cfg.client_liveness_timeout_ns {
            // The driver checks liveness on its timer, which must tick faster (default 1 s).
            set(ctx.set_timer_interval_ns(ns / 10), "timer interval")?;
            set(
                ctx.set_client_liveness_timeout_ns(ns),
                "client liveness timeout",
            )?;
        }
        set(ctx.set_sender_idle_strategy(idle), "sender idle")?;
        set(ctx.set_receiver_idle_strategy(idle), "receiver idle")?;
        let driver = AeronDriver::new(&ctx).map_err(|e| aeron_err("driver init", e))?;
        // `false`: the C driver runs its own agent thread(s) and `aeron_driver_close` (on drop)
        // stops and joins them.
        driver
            .start(false)
            .map_err(|e| aeron_err("driver start", e))?;
        Ok(EmbeddedDriver {
            driver: Some(driver),
            _context: ctx,
            dir,
        })
    }

    /// The directory clients connect to.
    pub fn dir(&self) -> &str {
        &self.dir
    }
}

impl Drop for EmbeddedDriver {
    fn drop(&mut self) {
        drop(self.driver.take());
        let _ = std::fs::remove_dir_all(PathBuf::from(&self.dir));
    }
}

/// An Aeron client, with the embedded driver it started (if any). Publications and
/// subscriptions it makes keep the client alive; the driver lives until this is dropped, so
/// drop those first (the structs of this crate order their fields so).
pub struct AeronClient {
    /// Keeps its context alive.
    aeron: Aeron,
    errors: Arc<AtomicU64>,
    /// Set by the error handler when the client is closed under us: the driver timed it out
    /// (a process frozen longer than the driver's client liveness timeout), the driver is gone,
    /// or the client's own conductor missed its service interval. Its publications and
    /// subscriptions are dead; [`AeronClient::reconnect`] makes a new client.
    dead: Arc<std::sync::atomic::AtomicBool>,
    /// The driver directory, for [`AeronClient::reconnect`].
    dir: String,
    /// Clients made so far after the first ([`AeronClient::reconnect`]).
    reconnects: u64,
    /// Declared last: dropped after the client.
    driver: Option<EmbeddedDriver>,
}

impl fmt::Debug for AeronClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AeronClient")
            .field("embedded_driver", &self.driver)
            .field("errors", &self.errors.load(Ordering::Relaxed))
            .finish()
    }
}

/// The Aeron C client's error codes that mean the client is closed (`aeron_client.h`):
/// `AERON_CLIENT_ERROR_DRIVER_TIMEOUT`, `..._CLIENT_TIMEOUT`, `..._CONDUCTOR_SERVICE_TIMEOUT`.
const CLIENT_CLOSED_ERRORS: [i32; 3] = [1000, 1001, 1002];

/// A started client of the driver in `dir`; its error handler counts into `errors` and sets
/// `dead` on an error that closes it.
fn start_client(
    dir: &str,
    errors: &Arc<AtomicU64>,
    dead: &Arc<std::sync::atomic::AtomicBool>,
) -> Result<Aeron, MdError> {
    if !std::path::Path::new(dir).join("cnc.dat").exists() {
        return Err(MdError::Config(format!(
            "no Aeron media driver in {dir} (cnc.dat missing)"
        )));
    }
    let ctx = AeronContext::new().map_err(|e| aeron_err("client context", e))?;
    ctx.set_dir(&cstring(dir)?)
        .map_err(|e| aeron_err("client dir", e))?;
    let (counted, flag) = (errors.clone(), dead.clone());
    ctx.set_error_handler(Some(move |code: i32, msg: &str| {
        counted.fetch_add(1, Ordering::Relaxed);
        if CLIENT_CLOSED_ERRORS.contains(&code.abs()) {
            flag.store(true, Ordering::Relaxed);
        }
        crate::warn(format_args!("aeron client error {code}: {msg}"));
    }))
    .map_err(|e| aeron_err("error handler", e))?;
    let aeron = Aeron::new(&ctx).map_err(|e| aeron_err("client init", e))?;
    aeron.start().map_err(|e| aeron_err("client start", e))?;
    Ok(aeron)
}

/// How long adding a publication or subscription may take.
pub const ADD_TIMEOUT: Duration = Duration::from_secs(10);

impl AeronClient {
    /// Connects to the driver `setup` names (starting it if embedded).
    pub fn connect(setup: &AeronSetup) -> Result<AeronClient, MdError> {
        let (driver, dir) = match setup {
            AeronSetup::Embedded(cfg) => {
                let d = EmbeddedDriver::launch(cfg)?;
                let dir = d.dir().to_string();
                (Some(d), dir)
            }
            AeronSetup::External { dir } => (None, dir.clone()),
        };
        let errors = Arc::new(AtomicU64::new(0));
        let dead = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let aeron = start_client(&dir, &errors, &dead)?;
        Ok(AeronClient {
            aeron,
            errors,
            dead,
            dir,
            reconnects: 0,
            driver,
        })
    }

    /// Whether the client was closed under us (see the `dead` field): everything made from it
    /// is dead until [`AeronClient::reconnect`].
    pub fn is_dead(&self) -> bool {
        self.dead.load(Ordering::Relaxed)
    }

    /// Replaces a dead client with a new one on the same driver (an embedded driver stays).
    /// Drop every publication and subscription of the old client first.
    pub fn reconnect(&mut self) -> Result<(), MdError> {
        let dead = Arc::new(std::sync::atomic::AtomicBool::new(false));
        self.aeron = start_client(&self.dir, &self.errors, &dead)?;
        self.dead = dead;
        self.reconnects += 1;
        Ok(())
    }

    /// Clients made after the first ([`AeronClient::reconnect`]).
    pub fn reconnects(&self) -> u64 {
        self.reconnects
    }

    /// The Aeron client.
    pub fn aeron(&self) -> &Aeron {
        &self.aeron
    }

    /// Errors the C client reported so far.
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// The driver directory of the embedded driver, if this client started one.
    pub fn embedded_dir(&self) -> Option<&str> {
        self.driver.as_ref().map(|d| d.dir())
    }

    /// Adds an exclusive publication (single-threaded `offer`), waiting (parked, 1 ms steps)
    /// up to [`ADD_TIMEOUT`].
    pub fn exclusive_publication(
        &self,
        channel: &str,
        stream_id: i32,
    ) -> Result<AeronExclusivePublication, MdError> {
        let c = cstring(channel)?;
        let poller = self
            .aeron
            .async_add_exclusive_publication(&c, stream_id)
            .map_err(|e| aeron_err(&format!("add publication {channel}"), e))?;
        let deadline = Instant::now() + ADD_TIMEOUT;
        loop {
            match poller.poll() {
                Ok(Some(p)) => return Ok(p),
                Ok(None) => {}
                Err(e) => return Err(aeron_err(&format!("add publication {channel}"), e)),
            }
            if Instant::now() > deadline {
                return Err(MdError::Timeout(format!(
                    "publication {channel} {stream_id}"
                )));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Adds manual MDC destinations to a publication (see [`ChannelConfig::destinations`]),
    /// each acknowledged by the driver within [`ADD_TIMEOUT`].
    pub fn add_destinations(
        &self,
        publication: &AeronExclusivePublication,
        destinations: &[String],
    ) -> Result<(), MdError> {
        for d in destinations {
            let uri = destination_uri(d);
            publication
                .add_destination(&cstring(&uri)?, ADD_TIMEOUT)
                .map_err(|e| aeron_err(&format!("add destination {uri}"), e))?;
        }
        Ok(())
    }

    /// Adds a subscription, waiting as [`Self::exclusive_publication`] does.
    pub fn subscription(
        &self,
        channel: &str,
        stream_id: i32,
    ) -> Result<AeronSubscription, MdError> {
        let c = cstring(channel)?;
        let poller = self
            .aeron
            .async_add_subscription(&c, stream_id, Handlers::NONE, Handlers::NONE)
            .map_err(|e| aeron_err(&format!("add subscription {channel}"), e))?;
        let deadline = Instant::now() + ADD_TIMEOUT;
        loop {
            match poller.poll() {
                Ok(Some(s)) => return Ok(s),
                Ok(None) => {}
                Err(e) => return Err(aeron_err(&format!("add subscription {channel}"), e)),
            }
            if Instant::now() > deadline {
                return Err(MdError::Timeout(format!(
                    "subscription {channel} {stream_id}"
                )));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Monotonic nanoseconds (Aeron's clock, `CLOCK_MONOTONIC`): the same clock in every
    /// thread and process of the machine.
    #[inline]
    pub fn nano_clock() -> u64 {
        Aeron::nano_clock() as u64
    }
}

/// One Aeron channel and stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelConfig {
    /// Aeron channel URI, e.g. `aeron:udp?endpoint=239.1.1.1:40456|interface=10.0.0.1`,
    /// `aeron:udp?endpoint=127.0.0.1:40456`, `aeron:ipc`.
    pub channel: String,
    /// Aeron stream id.
    pub stream_id: i32,
    /// Manual multi-destination-cast (a publication channel with `control-mode=manual`): the
    /// subscribers' endpoints (`host:port`, or a whole `aeron:udp?endpoint=...` URI) the
    /// publication adds when it is created. Empty otherwise.
    pub destinations: Vec<String>,
}

impl ChannelConfig {
    pub fn new(channel: impl Into<String>, stream_id: i32) -> ChannelConfig {
        ChannelConfig {
            channel: channel.into(),
            stream_id,
            destinations: Vec::new(),
        }
    }

    /// The same channel with manual MDC destinations.
    pub fn with_destinations(mut self, destinations: Vec<String>) -> ChannelConfig {
        self.destinations = destinations;
        self
    }
}

/// The destination URI of a manual MDC destination: `host:port` becomes
/// `aeron:udp?endpoint=host:port`; a URI stays as it is.
pub fn destination_uri(destination: &str) -> String {
    if destination.starts_with("aeron:") {
        destination.to_string()
    } else {
        format!("aeron:udp?endpoint={destination}")
    }
}
