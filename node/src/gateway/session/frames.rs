//! A logged-in session's frames, a login's answer and a report's delivery (with the logout of
//! every session once the node is no longer primary), as pure logic (no socket, no clock): what
//! the gateway's socket loop (`gateway/io.rs`) runs for each decoded frame and report, and what
//! the simulator (`tpx-sim`) runs for its clients' frames, so both drive the same code.

use tpx_wire::enums::{LoginRejectReason, LogoutReason, RejectReason, RequestKind};
use tpx_wire::order_entry::ClientMessage;
use tpx_wire::replies::ServerMessage;
use tpx_wire::session::{Login, LoginAccepted, LoginRejected, Logout, MAX_ORDER_ENTRY_FRAME};

use super::{admin_input, query_of, ConnId, LoginOptions, Outbox, SessionTable};
use crate::gateway::accounts::Accounts;
use crate::msg::{Query, Report, Request};

/// Whether a node serves logins: as primary (`active`), once the replies of everything it
/// applied before it became primary (its replayed log, a standby's records: `login_floor`) are
/// in the sessions' journals (`complete_seq`: every reply of every record at or below it is)
/// and acknowledgeable in its term (`acked_seq`, the replica's `acknowledgeable_seq`): what it
/// applied before may be records the new term has not kept yet (a log recovered at start, a
/// standby's unacknowledged tail), whose replies a login's replay must not hand out.
pub fn serving(active: bool, complete_seq: u64, login_floor: u64, acked_seq: u64) -> bool {
    active && complete_seq >= login_floor && acked_seq >= login_floor
}

/// The request kind and id an `OrderRejected` of `msg` names (a replace's new id, a query's or
/// an admin request's request id, 0 for a mass cancel); `None`: not a request.
pub fn request_subject(msg: &ClientMessage) -> Option<(RequestKind, u64)> {
    Some(match msg {
        ClientMessage::EnterOrder(m) => (RequestKind::EnterOrder, m.cl_ord_id),
        ClientMessage::EnterOrderExt(m) => (RequestKind::EnterOrderExt, m.cl_ord_id),
        ClientMessage::ReplaceOrder(m) => (RequestKind::ReplaceOrder, m.new_cl_ord_id),
        ClientMessage::CancelOrder(m) => (RequestKind::CancelOrder, m.cl_ord_id),
        ClientMessage::MassCancel(_) => (RequestKind::MassCancel, 0),
        other => {
            if let Some((id, _, k)) = query_of(other) {
                (k, id)
            } else {
                let (input, id, _) = admin_input(other)?;
                (crate::msg::admin_kind(&input)?, id)
            }
        }
    })
}

/// Appends `msg`, encoded, to `out`.
pub fn encode_into(out: &mut Vec<u8>, msg: &ServerMessage) {
    let len = out.len();
    out.resize(len + MAX_ORDER_ENTRY_FRAME, 0);
    let n = msg.encode(&mut out[len..]).unwrap_or(0);
    out.truncate(len + n);
}

impl SessionTable {
    /// A frame of logged-in session `slot`: a request is checked and offered to the sequencer
    /// (`forward`, false: its ring is full) or answered; a query is left with the shards
    /// (`ask`). Returns the `Logout` to send before closing the connection, if the frame ends it
    /// (`LogoutRequest`; a second login is a protocol violation).
    #[allow(clippy::too_many_arguments)]
    pub fn on_message(
        &mut self,
        slot: u32,
        msg: &ClientMessage,
        now_ns: u64,
        unix_ns: u64,
        out: &mut impl Outbox,
        forward: impl FnOnce(Request) -> bool,
        ask: impl FnMut(u16, Query) -> bool,
    ) -> Option<LogoutReason> {
        if self.session(slot).drop_copy {
            // Read-only: every request is refused; heartbeats and logout go on below.
            if let Some((request, id)) = request_subject(msg) {
                let reason = RejectReason::NotAuthorized;
                self.reject(slot, unix_ns, id, reason, request, out);
                return None;
            }
        }
        match msg {
            ClientMessage::EnterOrder(m) => {
                self.on_enter_order(slot, m, now_ns, unix_ns, out, forward)
            }
            ClientMessage::EnterOrderExt(m) => {
                self.on_enter_order_ext(slot, m, now_ns, unix_ns, out, forward)
            }
            ClientMessage::CancelOrder(m) => {
                self.on_cancel_order(slot, m, now_ns, unix_ns, out, forward)
            }
            ClientMessage::ReplaceOrder(m) => {
                self.on_replace_order(slot, m, now_ns, unix_ns, out, forward)
            }
            ClientMessage::MassCancel(m) => {
                self.on_mass_cancel(slot, m, now_ns, unix_ns, out, forward)
            }
            ClientMessage::Heartbeat(_) => {}
            ClientMessage::QueryOrder(_)
            | ClientMessage::QueryOpenOrders(_)
            | ClientMessage::QueryBalances(_)
            | ClientMessage::QueryPositions(_) => {
                self.on_query(slot, msg, now_ns, unix_ns, out, ask)
            }
            ClientMessage::AdminDeposit(_)
            | ClientMessage::AdminWithdraw(_)
            | ClientMessage::AdminSetMarkPrice(_)
            | ClientMessage::AdminApplyFunding(_)
            | ClientMessage::AdminLiquidate(_)
            | ClientMessage::AdminSetFeeTier(_) => {
                self.on_admin(slot, msg, now_ns, unix_ns, out, forward)
            }
            ClientMessage::LogoutRequest(_) => return Some(LogoutReason::UserRequested),
            ClientMessage::Login(_) | ClientMessage::LoginWithOptions(_) => {
                return Some(LogoutReason::ProtocolViolation)
            }
        }
        None
    }

    /// A login on connection `conn`, answered into `out`: refused `NotPrimary` unless the node
    /// is `serving` (see [`serving`]); else [`SessionTable::login_with`], and on success
    /// `LoginAccepted` followed by the journaled replies from the seq the client asked for
    /// (PROTOCOL.md, "Replay"). On `Err` `out` holds the `LoginRejected` and the caller closes.
    #[allow(clippy::too_many_arguments)]
    pub fn login_answer(
        &mut self,
        accounts: &Accounts,
        login: &Login,
        options: LoginOptions,
        conn: ConnId,
        now_ns: u64,
        serving: bool,
        heartbeat_interval_ms: u32,
        out: &mut Vec<u8>,
    ) -> Result<u32, LoginRejectReason> {
        let result = if serving {
            self.login_with(accounts, login, options, conn, now_ns)
        } else {
            Err(LoginRejectReason::NotPrimary)
        };
        match result {
            Ok(ok) => {
                encode_into(
                    out,
                    &ServerMessage::LoginAccepted(LoginAccepted {
                        session_id: login.session_id,
                        heartbeat_interval_ms,
                        next_seq: ok.replay.start.max(1),
                    }),
                );
                for r in self.replay(ok.slot, ok.replay.clone()) {
                    out.extend_from_slice(r);
                }
                Ok(ok.slot)
            }
            Err(reason) => {
                encode_into(out, &ServerMessage::LoginRejected(LoginRejected { reason }));
                Err(reason)
            }
        }
    }
}

impl SessionTable {
    /// A node that is not the primary writes no reply to a client. Unless `primary()` says the
    /// node is primary, every logged-in session is sent `Logout(Failover)` through `out` and
    /// unbound, and its connection is pushed on `ended` for the caller to close (its end
    /// cancels nothing: the session is no longer bound to it). From then on the replies of what
    /// the node applies go to the journals only, as for a session that is away: as standby (a
    /// deposed primary) it applies the new primary's records before that term has acknowledged
    /// them, and a reply of a record the new term may still cut is one no log backs. New
    /// logins are refused `NotPrimary` meanwhile ([`serving`]). `primary` is asked only while
    /// a session is logged in (a standby's gateway pays one comparison). Returns how many
    /// sessions were logged out.
    pub fn log_out_unless_primary(
        &mut self,
        primary: impl FnOnce() -> bool,
        out: &mut impl Outbox,
        ended: &mut Vec<ConnId>,
    ) -> usize {
        if self.connected() == 0 || primary() {
            return 0;
        }
        let mut bye = Vec::with_capacity(16);
        encode_into(
            &mut bye,
            &ServerMessage::Logout(Logout {
                reason: LogoutReason::Failover,
            }),
        );
        let mut n = 0;
        for slot in 0..self.len() as u32 {
            if let Some(conn) = self.session(slot).conn {
                out.deliver(conn, &bye);
                self.disconnect(slot, conn);
                ended.push(conn);
                n += 1;
            }
        }
        n
    }

    /// A report as the gateway delivers it: first [`SessionTable::log_out_unless_primary`],
    /// then [`SessionTable::on_report`]. `primary` is read after the report was taken from
    /// its ring, so a report of a record fed after the sequencing stage published the step
    /// down (`NodeState::active` false) finds every session logged out.
    pub fn deliver_report(
        &mut self,
        r: &Report,
        primary: impl FnOnce() -> bool,
        out: &mut impl Outbox,
        ended: &mut Vec<ConnId>,
    ) -> bool {
        self.log_out_unless_primary(primary, out, ended);
        self.on_report(r, out)
    }
}

#[cfg(test)]
mod tests {
    use super::serving;

    #[test]
    fn logins_wait_for_the_replies_and_their_acknowledgement() {
        assert!(!serving(false, 10, 10, 10), "not primary");
        assert!(!serving(true, 9, 10, 10), "replies of 10 not journaled yet");
        assert!(
            !serving(true, 10, 10, 9),
            "10 applied from the recovered log, not acknowledgeable in this term yet"
        );
        assert!(serving(true, 10, 10, 10));
        assert!(serving(true, 12, 10, 11));
    }
}
