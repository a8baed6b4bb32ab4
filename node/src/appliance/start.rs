//! Starting and stopping a node: the core plan becomes rings, listeners and one pinned glommio
//! executor per core.

use std::net::{SocketAddr, TcpListener};
use std::os::fd::FromRawFd;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::time::Duration;

use glommio::{LocalExecutorBuilder, Placement};
use tpx_engine::EngineConfig;

use crate::appliance::core::CoreRuntime;
use crate::config::{CorePlan, IdleMode, LogMode, NodeConfig};
use crate::gateway::accounts::Accounts;
use crate::gateway::io::{Gateway, GatewaySettings, HandoffInbox};
use crate::gateway::routing::Routing;
use crate::gateway::session::{SessionSettings, SessionTable};
use crate::msg::{Report, Request, Sequenced};
use crate::runtime::doorbell::Doorbell;
use crate::runtime::idle::Idler;
use crate::runtime::ring::{ring, Consumer, Producer};
use crate::runtime::state::NodeState;
use crate::sequencing::stage::{SequencerStage, StageRings, StartRole};
use crate::shard::apply::Shard;
use crate::shard::plan::ShardPlan;
use crate::shard::stage::ShardStage;

/// A running node.
#[derive(Debug)]
pub struct Node {
    addr: SocketAddr,
    shared: Arc<NodeState>,
    handles: Vec<glommio::ExecutorJoinHandle<()>>,
    plan: CorePlan,
    /// Market data (`[md]`): dropped after the cores stop.
    md: Option<crate::shard::md::NodeMd>,
    /// The snapshot thread (`[snapshots]`).
    snapshotter: Option<crate::appliance::snapshots::Snapshotter>,
    /// The shared-memory stats file and its publisher thread (`[stats]`).
    stats: Option<(
        Arc<crate::observe::stats::StatsMap>,
        crate::observe::prometheus::Publisher,
    )>,
}

/// Binds the order-entry listener; with `reuse_port` several cores can bind the same port.
fn bind_listener(addr: SocketAddr, reuse_port: bool) -> Result<TcpListener, String> {
    let domain = match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    };
    // SAFETY: plain socket calls on a descriptor this function owns; on success ownership moves
    // into the `TcpListener`.
    unsafe {
        let fd = libc::socket(domain, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(format!("socket: {}", std::io::Error::last_os_error()));
        }
        let listener = TcpListener::from_raw_fd(fd);
        let one: libc::c_int = 1;
        let set = |opt| {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                opt,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        set(libc::SO_REUSEADDR);
        if reuse_port && set(libc::SO_REUSEPORT) != 0 {
            return Err(format!("SO_REUSEPORT: {}", std::io::Error::last_os_error()));
        }
        let (storage, len) = sockaddr(addr);
        if libc::bind(fd, (&storage as *const libc::sockaddr_storage).cast(), len) != 0 {
            return Err(format!("bind {addr}: {}", std::io::Error::last_os_error()));
        }
        if libc::listen(fd, 1024) != 0 {
            return Err(format!(
                "listen {addr}: {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(listener)
    }
}

fn sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: an all-zero sockaddr_storage is valid; we fill the variant that fits.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_in fits in sockaddr_storage.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin) };
            (
                storage,
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_in6 fits in sockaddr_storage.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin6) };
            (
                storage,
                std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
            )
        }
    }
}

/// The thread name of a core, in `tpx-tune`'s scheme (`tpx-shard-0`, `tpx-seq`, `tpx-sess-1`):
/// a core with several roles is named after its first shard, else the sequencer, else its
/// gateway.
pub fn core_thread_name(
    core: &crate::config::CoreAssignment,
    gateway_index: Option<usize>,
) -> String {
    if let Some(s) = core.shards.first() {
        format!("tpx-shard-{s}")
    } else if core.sequencer {
        "tpx-seq".to_string()
    } else {
        format!("tpx-sess-{}", gateway_index.unwrap_or(0))
    }
}

fn set_thread_name(name: &str) {
    if let Ok(c) = std::ffi::CString::new(name) {
        // SAFETY: PR_SET_NAME with a NUL-terminated string (the kernel copies at most 16 bytes).
        unsafe {
            libc::prctl(libc::PR_SET_NAME, c.as_ptr() as libc::c_ulong, 0, 0, 0);
        }
    }
}

/// Raises the locked-memory soft limit to the hard limit (glommio registers io_uring buffers).
fn raise_memlock() {
    // SAFETY: getrlimit/setrlimit with a valid struct.
    unsafe {
        let mut r = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut r) == 0 && r.rlim_cur < r.rlim_max {
            r.rlim_cur = r.rlim_max;
            libc::setrlimit(libc::RLIMIT_MEMLOCK, &r);
        }
    }
}

/// The parts of one core, built on the starting thread and moved to the core's thread.
struct CoreParts {
    gateway: Option<GatewayParts>,
    sequencer: Option<SequencerParts>,
    shards: Vec<ShardParts>,
}

/// The sequencer's rings.
type SequencerParts = StageRings;

struct GatewayParts {
    index: usize,
    listener: TcpListener,
    to_sequencer: Producer<Request>,
    from_shards: Vec<Consumer<Report>>,
}

struct ShardParts {
    id: u16,
    engine: EngineConfig,
    /// `[risk]`: the shard's risk configuration (its instruments and their assets).
    risk: Option<tpx_engine::RiskConfig>,
    input: Consumer<Sequenced>,
    outputs: Vec<Producer<Report>>,
    md: Option<crate::shard::md::ShardMd>,
}

impl Node {
    /// Starts a node: validates the plan, binds the listener(s), builds the rings and spawns one
    /// pinned executor per core; returns once every core is running.
    pub fn start(cfg: &NodeConfig, accounts: Accounts) -> Result<Node, String> {
        Node::start_as(cfg, accounts, StartRole::Primary)
    }

    /// Starts a node as primary (asks the witness for a term) or standby (follows its peer).
    /// With the durable log the node serves sessions only once it is primary
    /// ([`NodeState::active`](crate::runtime::state::NodeState::active)).
    pub fn start_as(cfg: &NodeConfig, accounts: Accounts, role: StartRole) -> Result<Node, String> {
        cfg.validate_limits()?;
        let plan = cfg.plan()?;
        // One request path for every log: the stage over the replica, whose log is the file
        // log or, for `log = "in-process"`, the in-memory one.
        let in_memory = cfg.log == LogMode::InProcess;
        let mut replication = cfg.replication();
        replication.validate()?;
        plan.validate()?;
        raise_memlock();
        let shard_count = plan.shard_count();
        let instruments = cfg.instruments();
        let shards = ShardPlan::of(cfg, shard_count)?;
        replication.config_digest = shards.config_digest;
        if let Some(max) = accounts.max_id() {
            if max >= cfg.max_accounts {
                return Err(format!(
                    "account id {max} is not below max_accounts {}",
                    cfg.max_accounts
                ));
            }
        }
        // Market data: the driver and one publisher per shard, built here and moved to the
        // shards' cores.
        let (md, mut shard_md) = match cfg.md.as_ref().filter(|m| m.enabled) {
            Some(m) => {
                let (md, parts) = crate::shard::md::NodeMd::start(m, &shards.instruments)?;
                (Some(md), parts.into_iter().map(Some).collect())
            }
            None => (None, Vec::new()),
        };
        let accounts = Arc::new(accounts);
        let shared = Arc::new(
            NodeState::new(
                instruments
                    .iter()
                    .map(|i| (i.id, i.symbol.clone()))
                    .collect(),
            )
            .with_cores(plan.cores.len())
            .with_core_cpus(plan.cores.iter().map(|c| c.cpu))
            .with_shards(shard_count as usize)
            .with_gateways(plan.gateway_cores().len()),
        );
        let gateway_cores = plan.gateway_cores();
        let gateways = gateway_cores.len();
        let cap = cfg.ring_capacity;
        let routing = Routing::new(&shards.instrument_shards, shard_count as u16);
        let session_settings = SessionSettings::of(cfg);
        // `[snapshots]`: start from the newest image that verifies (see `shard/snapshot.rs`).
        let snapshots = cfg.snapshots.clone().filter(|s| s.enabled && !in_memory);
        if let Some(s) = &snapshots {
            s.validate()?;
        }
        // Loaded beside the cores' start (the log's open on the sequencing core).
        let restore = crate::appliance::restore::Restore::start(
            crate::appliance::restore::RestoreInput {
                snapshots: snapshots.clone(),
                log_dir: replication.log_dir.clone(),
                in_memory,
                plan: shards.clone(),
                gateways,
                sessions: session_settings.clone(),
                routing: routing.clone(),
            },
            shared.clone(),
        )?;
        // The log's open trusts the segments before the image the loader expects to use.
        replication.trusted_through_seq = restore.trusted_through();

        let mut parts: Vec<CoreParts> = plan
            .cores
            .iter()
            .map(|_| CoreParts {
                gateway: None,
                sequencer: None,
                shards: Vec::new(),
            })
            .collect();

        // Listeners: the first binds (maybe port 0), the others join its port.
        let reuse = gateways > 1;
        let first = bind_listener(cfg.listen, reuse)?;
        let addr = first.local_addr().map_err(|e| format!("local_addr: {e}"))?;
        let mut listeners = vec![first];
        for _ in 1..gateways {
            listeners.push(bind_listener(addr, true)?);
        }

        // Gateway → sequencer.
        let mut seq_inputs = Vec::new();
        let mut to_seq = Vec::new();
        for _ in 0..gateways {
            let (p, c) = ring::<Request>(cap);
            to_seq.push(Some(p));
            seq_inputs.push(c);
        }
        // Sequencer → shard.
        let mut seq_outputs = Vec::new();
        let mut shard_inputs = Vec::new();
        for _ in 0..shard_count {
            let (p, c) = ring::<Sequenced>(cap);
            seq_outputs.push(p);
            shard_inputs.push(Some(c));
        }
        // Sequencer → gateway (its own answers).
        let mut seq_rejects = Vec::new();
        let mut seq_reject_inputs = Vec::new();
        for _ in 0..gateways {
            let (p, c) = ring::<Report>(cap);
            seq_rejects.push(p);
            seq_reject_inputs.push(Some(c));
        }
        // Shard → gateway.
        let mut shard_outputs: Vec<Vec<Producer<Report>>> = Vec::new();
        let mut gateway_inputs: Vec<Vec<Consumer<Report>>> =
            (0..gateways).map(|_| Vec::new()).collect();
        for _ in 0..shard_count {
            let mut outs = Vec::new();
            for inputs in gateway_inputs.iter_mut() {
                let (p, c) = ring::<Report>(cap * 2);
                outs.push(p);
                inputs.push(c);
            }
            shard_outputs.push(outs);
        }
        let mut shard_outputs: Vec<Option<Vec<Producer<Report>>>> =
            shard_outputs.into_iter().map(Some).collect();

        for (g, (&core, listener)) in gateway_cores.iter().zip(listeners).enumerate() {
            parts[core].gateway = Some(GatewayParts {
                index: g,
                listener,
                to_sequencer: to_seq[g].take().expect("one per gateway"),
                from_shards: {
                    let mut v = std::mem::take(&mut gateway_inputs[g]);
                    v.extend(seq_reject_inputs[g].take());
                    v
                },
            });
        }
        parts[plan.sequencer_core()].sequencer = Some(StageRings {
            inputs: seq_inputs,
            outputs: seq_outputs,
            rejects: seq_rejects,
        });
        for (i, core) in plan.cores.iter().enumerate() {
            for &s in &core.shards {
                parts[i].shards.push(ShardParts {
                    id: s as u16,
                    engine: shards.engine(s as usize),
                    risk: shards.risk[s as usize].clone(),
                    input: shard_inputs[s as usize].take().expect("one per shard"),
                    outputs: shard_outputs[s as usize].take().expect("one per shard"),
                    md: shard_md.get_mut(s as usize).and_then(Option::take),
                });
            }
        }

        // Park mode: a doorbell per core, rung by producers on other cores.
        let bells: Vec<Option<Arc<Doorbell>>> = plan
            .cores
            .iter()
            .map(|_| match cfg.idle {
                IdleMode::Park => Doorbell::new().ok().map(Arc::new),
                IdleMode::Spin => None,
            })
            .collect();
        // The doorbell of core `to` for a producer on core `from` (none on the same core).
        let bell = |from: usize, to: usize| if from == to { None } else { bells[to].clone() };
        let seq_core = plan.sequencer_core();
        let shard_cores: Vec<usize> = (0..shard_count)
            .map(|s| plan.shard_core(s).expect("validated plan"))
            .collect();
        let inboxes: Vec<Arc<HandoffInbox>> = gateway_cores
            .iter()
            .map(|&c| Arc::new(HandoffInbox::new(bells[c].clone())))
            .collect();
        let gw_settings = GatewaySettings {
            heartbeat_interval_ns: cfg.heartbeat_interval_ms * 1_000_000,
            heartbeat_timeout_ns: cfg.heartbeat_timeout_ms * 1_000_000,
            login_timeout_ns: cfg.login_timeout_ms * 1_000_000,
            max_connections: cfg.max_connections_per_core,
            max_out_bytes: 8 << 20,
            read_buffer: 64 << 10,
        };

        let stats_map = if cfg.stats.enabled {
            let path = cfg
                .stats
                .path
                .clone()
                .unwrap_or_else(|| crate::observe::stats::default_path(addr.port()));
            // A node runs without stats rather than not at all (no /dev/shm, say).
            match crate::observe::stats::StatsMap::create(
                &path,
                plan.cores.len(),
                cfg.stats.trace_slots,
                cfg.stats.trace_every,
            ) {
                Ok(m) => Some(Arc::new(m)),
                Err(e) => {
                    crate::runtime::lines::warn(format_args!(
                        "tpx node: no stats file, running without stage stamps: {e}"
                    ));
                    None
                }
            }
        } else {
            None
        };
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
        let mut handles = Vec::new();
        for (ci, (core, p)) in plan.cores.iter().zip(parts).enumerate() {
            let doorbell = bells[ci].clone();
            let wake_seq = bell(ci, seq_core);
            let wake_shards: Vec<Option<Arc<Doorbell>>> =
                shard_cores.iter().map(|&sc| bell(ci, sc)).collect();
            let wake_gateways: Vec<Option<Arc<Doorbell>>> =
                gateway_cores.iter().map(|&gc| bell(ci, gc)).collect();
            let shared = shared.clone();
            let accounts = accounts.clone();
            let inboxes = inboxes.clone();
            let routing = routing.clone();
            let session_settings = session_settings.clone();
            let gw_settings = gw_settings.clone();
            let ready = ready_tx.clone();
            let idle = cfg.idle;
            let park_max_us = cfg.park_max_us;
            let hb_ms = cfg.heartbeat_interval_ms as u32;
            let cpu = core.cpu;
            let thread_name = core_thread_name(core, p.gateway.as_ref().map(|g| g.index));
            let replication = replication.clone();
            let restore = restore.clone();
            let tracer = match (&stats_map, &p.gateway) {
                (Some(m), Some(_)) => Some(crate::observe::trace::Tracer::new(m.core_writer(ci))),
                _ => None,
            };
            let handle = LocalExecutorBuilder::new(Placement::Fixed(cpu))
                .name(&format!("tpx-core{cpu}"))
                .io_memory(64 << 10)
                .ring_depth(64)
                .spawn(move || async move {
                    set_thread_name(&thread_name);
                    let built = (|| -> Result<CoreRuntime, String> {
                        // The sequencing stage first: it opens (and recovers) the log while
                        // the snapshot loads on its own thread; the gateway's session table and
                        // the shards wait for the loader, so built before the log's open they
                        // would put the two in series.
                        let sequencer = match p.sequencer {
                            Some(rings) => Some(
                                SequencerStage::open_from(
                                    &replication,
                                    in_memory,
                                    role,
                                    rings,
                                    shared.clone(),
                                    || restore.from(),
                                )?
                                .with_wake(wake_shards, wake_gateways.clone()),
                            ),
                            None => None,
                        };
                        let gateway = match p.gateway {
                            Some(g) => Some(
                                Gateway::new(
                                    g.index,
                                    g.listener,
                                    restore.table(g.index).unwrap_or_else(|| {
                                        SessionTable::new(session_settings, routing)
                                    }),
                                    accounts,
                                    inboxes,
                                    g.to_sequencer,
                                    g.from_shards,
                                    gw_settings,
                                    hb_ms,
                                )
                                .map_err(|e| format!("gateway: {e}"))?
                                .with_wake(wake_seq)
                                .with_shared(shared.clone())
                                .with_tracer(tracer),
                            ),
                            None => None,
                        };
                        let mut shards = Vec::new();
                        for s in p.shards {
                            // Built here, on the pinned core, so its memory is first touched
                            // (and placed) where it is used.
                            // (A shard restored from a snapshot was built on the starting
                            // thread.)
                            let (shard, seed) = match restore.shard(usize::from(s.id)) {
                                Some((sh, seed)) => (sh, seed),
                                None => (Shard::new(s.id, s.engine, s.risk)?, (0, 0)),
                            };
                            let shard = shard.with_md(s.md);
                            shards.push(
                                ShardStage::new(shard, s.input, s.outputs, shared.clone())
                                    .with_checkpoint_seed(seed.0, seed.1)
                                    .with_wake(wake_gateways.clone())
                                    .with_image_dir(
                                        (!in_memory).then(|| replication.log_dir.clone()),
                                    ),
                            );
                        }
                        Ok(CoreRuntime {
                            index: ci,
                            cycles: 0,
                            gateway,
                            sequencer,
                            shards,
                            shared: shared.clone(),
                            idler: Idler::new(idle, park_max_us),
                            doorbell,
                        })
                    })();
                    match built {
                        Ok(rt) => {
                            let _ = ready.send(Ok(()));
                            rt.run().await;
                        }
                        Err(e) => {
                            shared.shutdown.store(true, Ordering::Relaxed);
                            let _ = ready.send(Err(e));
                        }
                    }
                })
                .map_err(|e| format!("starting the executor on cpu {cpu}: {e}"))?;
            handles.push(handle);
        }
        drop(ready_tx);
        let mut node = Node {
            addr,
            shared,
            handles,
            plan,
            md,
            snapshotter: None,
            stats: None,
        };
        for _ in 0..node.handles.len() {
            match ready_rx.recv_timeout(Duration::from_secs(60)) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    node.stop();
                    return Err(e);
                }
                Err(_) => {
                    node.stop();
                    return Err("a core did not start".into());
                }
            }
        }
        if role == StartRole::Primary {
            // The recovered log is replayed, the witness grants the term and the replies it
            // inherited are journaled: wait (bounded) until the gateways serve logins, so that
            // a caller's first login is answered, not refused `NotPrimary`. Not an error if it
            // takes longer (the witness may be down; the node keeps asking).
            let deadline_ns = crate::runtime::clock::now_ns() + 5_000_000_000;
            while !node.shared.serves_logins()
                && !node.shared.shutdown.load(Ordering::Relaxed)
                && crate::runtime::clock::now_ns() < deadline_ns
            {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        if let Some(s) = snapshots {
            let busy: Vec<usize> = node.plan.cores.iter().map(|c| c.cpu).collect();
            let free = core_affinity::get_core_ids()
                .unwrap_or_default()
                .into_iter()
                .map(|c| c.id)
                .find(|c| !busy.contains(c));
            let settings = crate::appliance::snapshots::SnapshotSettings {
                dir: s.dir_for(&replication.log_dir),
                cfg: s,
                log_dir: replication.log_dir.clone(),
                plan: shards.clone(),
                gateways,
                sessions: session_settings.clone(),
                routing: routing.clone(),
                checkpoint_every: replication.checkpoint_every,
                has_peer: replication.peer_addr.is_some(),
                start_from: restore.image(),
                accounts: accounts.clone(),
                md: cfg.md.clone().filter(|m| m.enabled),
            };
            match crate::appliance::snapshots::Snapshotter::start(
                settings,
                node.shared.clone(),
                free,
            ) {
                Ok(t) => node.snapshotter = Some(t),
                Err(e) => {
                    node.stop();
                    return Err(e);
                }
            }
        }
        if let Some(m) = stats_map {
            // The publisher goes on a cpu the plan leaves free, if there is one.
            let busy: Vec<usize> = node.plan.cores.iter().map(|c| c.cpu).collect();
            let free = core_affinity::get_core_ids()
                .unwrap_or_default()
                .into_iter()
                .map(|c| c.id)
                .find(|c| !busy.contains(c));
            match crate::observe::prometheus::Publisher::start(
                m.clone(),
                node.shared.clone(),
                node.md
                    .as_ref()
                    .map_or_else(Vec::new, |md| md.streams().to_vec()),
                cfg.stats.prometheus,
                free,
            ) {
                Ok(p) => node.stats = Some((m, p)),
                Err(e) => {
                    node.stop();
                    return Err(e);
                }
            }
        }
        Ok(node)
    }

    /// The order-entry address (with the real port when the config said port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn shared(&self) -> &Arc<NodeState> {
        &self.shared
    }

    pub fn plan(&self) -> &CorePlan {
        &self.plan
    }

    /// Market data, when `[md]` is configured (streams, counters, the driver's directory, and
    /// after [`Node::stop`] the books the shards left).
    pub fn md(&self) -> Option<&crate::shard::md::NodeMd> {
        self.md.as_ref()
    }

    /// The stats file (`tpx stat` reads it), when `[stats] enabled`.
    pub fn stats_path(&self) -> Option<&std::path::Path> {
        self.stats.as_ref().map(|(m, _)| m.path())
    }

    /// The Prometheus address bound, when `[stats] prometheus` is set.
    pub fn prometheus_addr(&self) -> Option<SocketAddr> {
        self.stats.as_ref().and_then(|(_, p)| p.prometheus)
    }

    /// Asks every core to stop (they finish their cycle, send `Logout(AdminShutdown)`).
    pub fn request_stop(&self) {
        self.shared.shutdown.store(true, Ordering::Relaxed);
    }

    /// Stops every core and waits for them.
    pub fn stop(&mut self) {
        self.request_stop();
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
        if let Some((_, p)) = self.stats.as_mut() {
            p.stop();
        }
        if let Some(t) = self.snapshotter.as_mut() {
            t.stop();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop();
    }
}
