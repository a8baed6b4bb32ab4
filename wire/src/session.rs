//! Session messages (SoupBinTCP-like): login, heartbeats, logout, session-level reject.
//!
//! None of these is sequenced; the replies in [`crate::replies`] are. The session rules are in
//! `docs/PROTOCOL.md` ("Sessions").

use crate::codec::Token;
use crate::enums::{LoginRejectReason, LogoutReason};
use crate::error::{DecodeError, DecodeErrorCode};
use crate::header::{schema::ORDER_ENTRY, template};

/// Default interval between heartbeats (each side sends one when it has sent nothing else for
/// this long); the server states the interval in force in [`LoginAccepted`].
pub const DEFAULT_HEARTBEAT_INTERVAL_MS: u32 = 1_000;
/// A side that receives nothing for this many heartbeat intervals ends the session.
pub const HEARTBEAT_TIMEOUT_INTERVALS: u32 = 3;
/// A connection that has not sent a `Login` this long after connecting is closed.
pub const LOGIN_TIMEOUT_MS: u32 = 5_000;
/// The largest frame an order-entry peer sends or accepts (every message of this version is
/// smaller); a longer length prefix is garbage and ends the session.
pub const MAX_ORDER_ENTRY_FRAME: usize = 256;

crate::wire_message! {
    /// Client → server, first message on a connection.
    pub struct Login = template template::LOGIN, schema ORDER_ENTRY, size 56 {
        /// Trading account the session belongs to.
        8 => account: u32,
        /// Session id (per account); the unit of sequence numbers and replay. Non-zero.
        12 => session_id: u32 [nonzero],
        /// Next reply sequence number the client expects: 1 on a fresh session; 0 = no replay,
        /// start at the current end.
        16 => requested_next_seq: u64,
        /// Opaque credential (e.g. HMAC-SHA256 of the session key over the account and session id).
        24 => token: Token,
    }
    reserved []
}

crate::wire_message! {
    /// Client → server, first message on a connection: a [`Login`] (the same fields at the same
    /// offsets) with the session's options for this connection.
    pub struct LoginWithOptions = template template::LOGIN_WITH_OPTIONS, schema ORDER_ENTRY, size 64 {
        /// Trading account the session belongs to.
        8 => account: u32,
        /// Session id (per account); the unit of sequence numbers and replay. Non-zero.
        12 => session_id: u32 [nonzero],
        /// Next reply sequence number the client expects: 1 on a fresh session; 0 = no replay,
        /// start at the current end.
        16 => requested_next_seq: u64,
        /// Opaque credential, as in `Login`.
        24 => token: Token,
        /// When this connection ends (closed, logged out, heartbeat lapsed), the primary puts a
        /// cancel of every order the session owns into the log.
        56 => cancel_on_disconnect: bool,
        /// A read-only drop-copy session: it receives a copy of every execution report of the
        /// accounts the accounts file lists for it, and may send no request.
        57 => drop_copy: bool,
    }
    reserved [58..64]
}

impl LoginWithOptions {
    /// The plain `Login` part.
    pub fn login(&self) -> Login {
        Login {
            account: self.account,
            session_id: self.session_id,
            requested_next_seq: self.requested_next_seq,
            token: self.token,
        }
    }
}

crate::wire_message! {
    /// Server → client: the login succeeded. Sequenced replies follow, starting at `next_seq`
    /// (a replay first if the client asked for an earlier number than the current end).
    pub struct LoginAccepted = template template::LOGIN_ACCEPTED, schema ORDER_ENTRY, size 24 {
        /// The session logged in.
        8 => session_id: u32 [nonzero],
        /// Heartbeat interval in force, milliseconds.
        12 => heartbeat_interval_ms: u32 [nonzero],
        /// Sequence number of the next sequenced reply the server sends. Non-zero.
        16 => next_seq: u64 [nonzero],
    }
    reserved []
}

crate::wire_message! {
    /// Server → client: the login failed; the server closes the connection.
    pub struct LoginRejected = template template::LOGIN_REJECTED, schema ORDER_ENTRY, size 16 {
        /// Why.
        8 => reason: LoginRejectReason,
    }
    reserved [9..16]
}

crate::wire_message! {
    /// Client → server: keep-alive, sent after one heartbeat interval without other traffic.
    pub struct ClientHeartbeat = template template::CLIENT_HEARTBEAT, schema ORDER_ENTRY, size 8 {}
    reserved []
}

crate::wire_message! {
    /// Server → client: keep-alive, sent after one heartbeat interval without other traffic.
    pub struct ServerHeartbeat = template template::SERVER_HEARTBEAT, schema ORDER_ENTRY, size 16 {
        /// Sequence number of the next sequenced reply (lets an idle client confirm it has all).
        8 => next_seq: u64 [nonzero],
    }
    reserved []
}

crate::wire_message! {
    /// Client → server: end the session. The server answers `Logout(UserRequested)` and closes.
    pub struct LogoutRequest = template template::LOGOUT_REQUEST, schema ORDER_ENTRY, size 8 {}
    reserved []
}

crate::wire_message! {
    /// Server → client: the session ends; the server closes the connection after it.
    pub struct Logout = template template::LOGOUT, schema ORDER_ENTRY, size 16 {
        /// Why.
        8 => reason: LogoutReason,
    }
    reserved [9..16]
}

crate::wire_message! {
    /// Server → client: a frame was malformed and ignored (unsequenced). If its length prefix
    /// itself was impossible, a `Logout(MalformedFrame)` follows and the connection closes.
    pub struct SessionReject = template template::SESSION_REJECT, schema ORDER_ENTRY, size 16 {
        /// The decode error.
        8 => code: DecodeErrorCode,
        /// Template id of the offending frame, 0 if unknown.
        10 => template_id: u16,
        /// Offset of the offending field in the frame, 0xFFFF if none.
        12 => offset: u16,
    }
    reserved [9..10, 14..16]
}

impl SessionReject {
    /// The reject for a frame that failed to decode with `e`.
    pub fn from_error(e: &DecodeError) -> SessionReject {
        SessionReject {
            code: e.code(),
            template_id: e.template_id(),
            offset: e.offset(),
        }
    }
}
