//! The simulated network: a [`Transport`] per peer over one shared, seeded message queue.
//!
//! Each directed link is a FIFO whose messages arrive after a random delay (never overtaking
//! one another: the [`Transport`] contract promises in-order delivery while a connection
//! lasts). Loss is modelled the only way the contract allows: a connection reset that drops
//! everything in flight on both directions of the link and keeps it down for a random outage.
//! A crashed peer is off the network and its in-flight messages are gone.
//!
//! Two faults go beyond one connection, as the production `TcpTransport` allows:
//!
//! - **Stale messages across reconnects** (`stale_pct`): at a reset, each direction's
//!   in-flight messages are, with this chance, not dropped but delivered late, at a random
//!   time up to the end of the outage plus `4 * max_delay_ns`, in no order with the messages
//!   of the next connection. `TcpTransport` keeps a dialed and an accepted connection per
//!   peer and reads them in turn, so a message already in the old socket's buffer can be
//!   handled after newer ones that came over the other connection. This also duplicates
//!   requests in effect (a re-sent `Hello` / `Promote` whose first copy turns up late).
//! - **Partitions** ([`SimNet::isolate`]): every link of a peer is down for a while (the
//!   process runs on, unlike a crash), dropping in-flight messages.
//!
//! Not modelled: duplication or reordering of bytes within one connection (TCP does not).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::rc::Rc;

use rand::Rng;
use rand_xoshiro::Xoshiro256PlusPlus;
use tpx_sequencer::transport::{PeerId, Transport};
use tpx_sequencer::{Clock, ManualClock};

/// Network fault settings.
#[derive(Clone, Copy, Debug)]
pub struct NetFaults {
    pub min_delay_ns: u64,
    pub max_delay_ns: u64,
    /// Chance per message (in millionths) that the connection resets and the message is lost.
    pub reset_ppm: u32,
    /// How long a reset link stays down (uniform in `0..=max_outage_ns`).
    pub max_outage_ns: u64,
    /// Chance (percent) that a reset delivers the link's in-flight messages late instead of
    /// dropping them (see the module docs).
    pub stale_pct: u32,
}

#[derive(Debug, Default)]
struct Link {
    q: VecDeque<(u64, Vec<u8>)>,
    down_until: u64,
    last_at: u64,
}

#[derive(Debug)]
struct NetState {
    /// Late messages of old connections: `(deliver at, from, to, msg)`, unordered with the
    /// links' queues.
    stale: Vec<(u64, PeerId, PeerId, Vec<u8>)>,
    stale_sent: u64,
    clock: ManualClock,
    rng: Xoshiro256PlusPlus,
    faults: NetFaults,
    down: BTreeSet<PeerId>,
    links: BTreeMap<(PeerId, PeerId), Link>,
    /// Each peer's configuration digest (`Handshake::config_digest`; absent or 0: not
    /// checked, as the witness's).
    digests: BTreeMap<PeerId, u64>,
    resets: u64,
    sent: u64,
}

/// The shared network; [`SimNet::endpoint`] gives each peer its [`Transport`].
#[derive(Clone, Debug)]
pub struct SimNet(Rc<RefCell<NetState>>);

impl SimNet {
    pub fn new(clock: ManualClock, rng: Xoshiro256PlusPlus, faults: NetFaults) -> SimNet {
        SimNet(Rc::new(RefCell::new(NetState {
            stale: Vec::new(),
            stale_sent: 0,
            clock,
            rng,
            faults,
            down: BTreeSet::new(),
            links: BTreeMap::new(),
            digests: BTreeMap::new(),
            resets: 0,
            sent: 0,
        })))
    }

    pub fn endpoint(&self, id: PeerId) -> SimEndpoint {
        SimEndpoint {
            id,
            net: self.clone(),
        }
    }

    /// Takes a peer off the network (crash) or back; its connections and in-flight messages
    /// are dropped.
    pub fn set_down(&self, id: PeerId, down: bool) {
        let mut s = self.0.borrow_mut();
        if down {
            s.down.insert(id);
            for ((a, b), l) in s.links.iter_mut() {
                if *a == id || *b == id {
                    l.q.clear();
                    l.last_at = 0;
                }
            }
            // A crashed process's sockets are gone, old ones included.
            s.stale.retain(|m| m.1 != id && m.2 != id);
        } else {
            s.down.remove(&id);
        }
    }

    /// Sets a peer's configuration digest. Two peers with non-zero digests that differ never
    /// connect: `TcpTransport`'s handshake (`with_handshake`) refuses the pair, so no message
    /// passes between them and neither counts the other as connected.
    pub fn set_digest(&self, id: PeerId, digest: u64) {
        self.0.borrow_mut().digests.insert(id, digest);
    }

    pub fn set_faults(&self, f: NetFaults) {
        self.0.borrow_mut().faults = f;
    }

    /// A partition: every link of `id` (both directions) is down until `until_ns`; what is in
    /// flight on them is lost. The peer keeps running.
    pub fn isolate(&self, id: PeerId, until_ns: u64) {
        let mut s = self.0.borrow_mut();
        let peers: BTreeSet<PeerId> = s
            .links
            .keys()
            .flat_map(|&(a, b)| [a, b])
            .filter(|&p| p != id)
            .collect();
        for p in peers {
            for k in [(id, p), (p, id)] {
                let l = s.links.entry(k).or_default();
                l.q.clear();
                l.last_at = 0;
                l.down_until = l.down_until.max(until_ns);
            }
        }
        s.resets += 1;
    }

    /// `(messages sent, connection resets)`.
    pub fn counters(&self) -> (u64, u64) {
        let s = self.0.borrow();
        (s.sent, s.resets)
    }

    /// Messages delivered late from old connections.
    pub fn stale_sent(&self) -> u64 {
        self.0.borrow().stale_sent
    }
}

/// One peer's end of a [`SimNet`].
#[derive(Debug)]
pub struct SimEndpoint {
    id: PeerId,
    net: SimNet,
}

impl NetState {
    /// Whether the handshake between `a` and `b` refuses them (different configurations).
    fn refused(&self, a: PeerId, b: PeerId) -> bool {
        let (x, y) = (
            self.digests.get(&a).copied().unwrap_or(0),
            self.digests.get(&b).copied().unwrap_or(0),
        );
        x != 0 && y != 0 && x != y
    }
}

impl Transport for SimEndpoint {
    fn send(&mut self, to: PeerId, msg: &[u8]) -> bool {
        let mut guard = self.net.0.borrow_mut();
        let s = &mut *guard;
        if s.down.contains(&self.id) || s.down.contains(&to) || s.refused(self.id, to) {
            return false;
        }
        let now = s.clock.now_ns();
        if now < s.links.get(&(self.id, to)).map_or(0, |l| l.down_until) {
            return false;
        }
        s.sent += 1;
        let f = s.faults;
        if f.reset_ppm > 0 && s.rng.gen_range(0..1_000_000u32) < f.reset_ppm {
            // Connection reset: this message and everything in flight both ways are lost.
            let until = now + s.rng.gen_range(0..=f.max_outage_ns);
            s.resets += 1;
            for k in [(self.id, to), (to, self.id)] {
                let late = f.stale_pct > 0 && s.rng.gen_range(0..100u32) < f.stale_pct;
                let l = s.links.entry(k).or_default();
                let q = std::mem::take(&mut l.q);
                l.last_at = 0;
                l.down_until = until;
                if late {
                    let span = until.saturating_sub(now) + 4 * f.max_delay_ns.max(1);
                    for (_, m) in q {
                        let at = now + s.rng.gen_range(0..=span);
                        s.stale.push((at, k.0, k.1, m));
                    }
                }
            }
            return true;
        }
        let delay = s
            .rng
            .gen_range(f.min_delay_ns..=f.max_delay_ns.max(f.min_delay_ns));
        let l = s.links.entry((self.id, to)).or_default();
        let at = (now + delay).max(l.last_at);
        l.last_at = at;
        l.q.push_back((at, msg.to_vec()));
        true
    }

    fn poll(&mut self, f: &mut dyn FnMut(PeerId, &[u8])) {
        let msgs: Vec<(PeerId, Vec<u8>)> = {
            let mut s = self.net.0.borrow_mut();
            if s.down.contains(&self.id) {
                return;
            }
            let now = s.clock.now_ns();
            let mut out = Vec::new();
            let me = self.id;
            if s.stale.iter().any(|m| m.2 == me && m.0 <= now) {
                // In the order they were put there (random times): old connections' leftovers.
                let mut k = 0;
                while k < s.stale.len() {
                    if s.stale[k].2 == me && s.stale[k].0 <= now {
                        let (_, from, _, m) = s.stale.remove(k);
                        s.stale_sent += 1;
                        out.push((from, m));
                    } else {
                        k += 1;
                    }
                }
            }
            for ((from, to), l) in s.links.iter_mut() {
                if *to != self.id {
                    continue;
                }
                while l.q.front().is_some_and(|m| m.0 <= now) {
                    if let Some((_, m)) = l.q.pop_front() {
                        out.push((*from, m));
                    }
                }
            }
            out
        };
        for (from, m) in msgs {
            f(from, &m);
        }
    }

    fn connected(&self, to: PeerId) -> bool {
        let s = self.net.0.borrow();
        let now = s.clock.now_ns();
        !s.down.contains(&self.id)
            && !s.down.contains(&to)
            && !s.refused(self.id, to)
            && now >= s.links.get(&(self.id, to)).map_or(0, |l| l.down_until)
    }
}
