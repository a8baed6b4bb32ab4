//! One pinned core's runtime: the roles the core plan gives it, run as one duty cycle.
//!
//! A duty cycle does a bounded amount of each role's work, in request-path order, so that with
//! every role on one core a request goes socket → sequencer → shard → socket within a single
//! cycle:
//!
//! 1. gateway: accept, read every connection, handle complete frames → requests on its ring to
//!    the sequencer;
//! 2. sequencer: submit each request to the replica (which stamps `seq` + `ts_ns` and logs it),
//!    and hand each acknowledgeable record to its shard's ring (or every shard's);
//! 3. shards: apply to the engine, map events to reports on the rings to the home gateways;
//! 4. gateway: reports → sequenced, journaled replies; heartbeats/timeouts; one `write(2)` per
//!    connection.
//!
//! Every hop is an SPSC ring, also when both ends are on this core (then the ring stays in this
//! core's L1 and costs a few nanoseconds; the code is the same in every plan). Rings are bounded;
//! a stage whose output ring is full stops taking input (the sequencer) or parks the rest of one
//! command's reports in a spill buffer and stops taking input until it drains (a shard), so the
//! pressure climbs back to the gateway, which rejects new requests with `Backpressure`. Nothing
//! blocks a core and nothing is dropped.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::gateway::io::Gateway;
use crate::runtime::clock;
use crate::runtime::doorbell::{sleep_on, Doorbell};
use crate::runtime::idle::{tighten_timer_slack, Idler};
use crate::runtime::state::NodeState;
use crate::sequencing::stage::SequencerStage;
use crate::shard::stage::ShardStage;

/// Everything one core runs.
#[derive(Debug)]
pub struct CoreRuntime {
    /// This core's index in the core plan.
    pub index: usize,
    /// Duty cycles run so far (published to [`NodeState::core_cycled`] for the watchdog).
    pub cycles: u64,
    pub gateway: Option<Gateway>,
    pub sequencer: Option<SequencerStage>,
    pub shards: Vec<ShardStage>,
    pub shared: Arc<NodeState>,
    pub idler: Idler,
    /// This core's doorbell (park mode): it sleeps in `ppoll` on it and its sockets.
    pub doorbell: Option<Arc<Doorbell>>,
}

impl CoreRuntime {
    /// One duty cycle; returns the work done (0: idle).
    #[inline]
    pub fn cycle(&mut self) -> usize {
        let now = clock::now_ns();
        let mut work = 0;
        if let Some(g) = self.gateway.as_mut() {
            work += g.accept(now);
            work += g.read_all(now, clock::unix_ns());
        }
        if let Some(s) = self.sequencer.as_mut() {
            let before = s.sequenced();
            work += s.step(now);
            let n = s.sequenced() - before;
            if n > 0 {
                self.shared.stats.sequenced.fetch_add(n, Ordering::Relaxed);
            }
        }
        for sh in self.shards.iter_mut() {
            work += sh.step(now);
        }
        if let Some(g) = self.gateway.as_mut() {
            work += g.deliver();
            g.timers(now);
            work += g.flush(now);
        }
        work
    }

    /// Sleeps up to `us`: in `ppoll` on the doorbell and the sockets if this core has a
    /// doorbell (after one more cycle with the doorbell armed), else on a glommio timer.
    async fn park(&mut self, us: u64, fds: &mut Vec<libc::pollfd>) {
        let Some(bell) = self.doorbell.clone() else {
            glommio::timer::sleep(Duration::from_micros(us)).await;
            return;
        };
        bell.arm();
        if self.cycle() > 0 {
            bell.disarm();
            self.idler.after_cycle(1);
            return;
        }
        fds.clear();
        fds.push(libc::pollfd {
            fd: bell.fd(),
            events: libc::POLLIN,
            revents: 0,
        });
        if let Some(g) = self.gateway.as_ref() {
            g.poll_fds(fds);
        }
        let mut us = us;
        if let Some(s) = self.sequencer.as_mut() {
            s.poll_fds(fds);
            // Not past the replica's next heartbeat, lease renewal or timeout.
            us = us.min(s.park_bound_us());
        }
        sleep_on(fds, us);
        bell.disarm();
    }

    /// Runs duty cycles until shutdown.
    pub async fn run(mut self) {
        tighten_timer_slack();
        if let Some(s) = self.sequencer.as_mut() {
            // A parked core waits for the standby's acknowledgement and the log writer in
            // `ppoll`, not by cycling (see `SequencerStage::park_while_waiting`).
            s.park_while_waiting(self.idler.parks());
        }
        let mut fds = Vec::new();
        while !self.shared.shutdown.load(Ordering::Relaxed) {
            let work = self.cycle();
            self.cycles += 1;
            self.shared.core_cycled(self.index, self.cycles);
            match self.idler.after_cycle(work) {
                None => {
                    if work == 0 {
                        std::hint::spin_loop();
                    }
                }
                Some(us) => self.park(us, &mut fds).await,
            }
            glommio::yield_if_needed().await;
        }
        // Drain what is in flight, then say goodbye.
        for _ in 0..16 {
            if self.cycle() == 0 {
                break;
            }
        }
        if let Some(g) = self.gateway.as_mut() {
            g.shutdown(clock::now_ns());
        }
        if let Some(s) = self.sequencer.as_mut() {
            s.sync();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::{Report, ReportKind, Sequenced, NO_SESSION};
    use crate::runtime::ring::ring;
    use crate::sequencing::stage::tests::ioc;
    use crate::shard::apply::Shard;
    use tpx_engine::EngineConfig;

    #[test]
    fn a_shard_spills_and_stops_taking_input_until_its_output_drains() {
        let specs = vec![crate::config::builtin_instruments()[0].spec().unwrap()];
        let shard = Shard::new(
            0,
            EngineConfig {
                instruments: specs,
                max_orders: 16,
                max_accounts: 4,
            },
            None,
        )
        .unwrap();
        let shared = Arc::new(NodeState::new(vec![(1, "BTC-USDT".into())]));
        let (mut seq_out, input) = ring::<Sequenced>(8);
        let (out, mut gw_in) = ring::<Report>(2);
        let mut st = ShardStage::new(shard, input, vec![out], shared);
        for cl in 1..=3 {
            seq_out
                .try_push(Sequenced {
                    seq: cl,
                    ts_ns: 1,
                    req: ioc(cl),
                })
                .unwrap();
        }
        // Order 1 fills the output ring (accepted + cancelled); order 2's reports spill.
        assert_eq!(st.step(0), 2);
        assert_eq!(seq_out.free_exact(), 8 - 1, "order 3 still waits");
        let mut got = Vec::new();
        while let Some(r) = gw_in.try_pop() {
            got.push(r);
        }
        // Order 2's reports move; order 3 is applied and its reports spill.
        assert_eq!(st.step(0), 2 + 1);
        while let Some(r) = gw_in.try_pop() {
            got.push(r);
        }
        assert_eq!(st.step(0), 2, "order 3's reports move");
        while let Some(r) = gw_in.try_pop() {
            got.push(r);
        }
        assert_eq!(st.step(0), 0);
        while let Some(r) = gw_in.try_pop() {
            got.push(r);
        }
        let kinds: Vec<(u64, bool)> = got
            .iter()
            .map(|r| match r.kind {
                ReportKind::Accepted { cl_ord_id, .. } => (cl_ord_id, true),
                ReportKind::Cancelled { cl_ord_id, .. } => (cl_ord_id, false),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            kinds,
            vec![
                (1, true),
                (1, false),
                (2, true),
                (2, false),
                (3, true),
                (3, false)
            ]
        );
        assert!(got
            .iter()
            .all(|r| r.account == 1 && (r.session == 0 || r.session == NO_SESSION)));
    }
}
