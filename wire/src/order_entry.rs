//! Order-entry requests (OUCH 5.0-like), client → server, and the client-channel decoder.

use crate::admin::{
    AdminApplyFunding, AdminDeposit, AdminLiquidate, AdminSetFeeTier, AdminSetMarkPrice,
    AdminWithdraw,
};
use crate::enums::{OrderKind, Side, StpMode, TimeInForce, TriggerType};
use crate::error::{DecodeError, EncodeError};
use crate::header::{schema::ORDER_ENTRY, template, Header};
use crate::query::{QueryBalances, QueryOpenOrders, QueryOrder, QueryPositions};
use crate::session::{ClientHeartbeat, Login, LoginWithOptions, LogoutRequest};

crate::wire_message! {
    /// Enter a new order. The account is the session's.
    pub struct EnterOrder = template template::ENTER_ORDER, schema ORDER_ENTRY, size 48 {
        /// Client order id: >= 1, strictly greater than every cl_ord_id the session used before.
        8 => cl_ord_id: u64 [nonzero],
        /// Limit price in ticks, or a market order's protection price (the engine checks range).
        16 => price: i64,
        /// Quantity in lots.
        24 => qty: u64 [nonzero],
        /// Instrument id.
        32 => instrument: u32,
        /// Buy or sell.
        36 => side: Side,
        /// Limit or market.
        37 => kind: OrderKind,
        /// Time in force (market orders: IOC or FOK).
        38 => tif: TimeInForce,
        /// Self-trade prevention mode.
        39 => stp: StpMode,
        /// Post-only: rejected if it would take liquidity.
        40 => post_only: bool,
        /// Reduce-only: may only reduce a perpetual position.
        41 => reduce_only: bool,
    }
    reserved [42..48]
}

crate::wire_message! {
    /// Enter a new order with the order types' fields: stop / take-profit triggers on the last
    /// or mark price, GTD, iceberg, post-only slide, close-position, OCO. Bytes 0..42 are
    /// `EnterOrder`'s fields at the same offsets; every extension's zero value means "not used",
    /// so with all of them zero it is the same order as an `EnterOrder`. The account is the
    /// session's.
    pub struct EnterOrderExt = template template::ENTER_ORDER_EXT, schema ORDER_ENTRY, size 80 {
        /// Client order id: >= 1, strictly greater than every cl_ord_id the session used before.
        8 => cl_ord_id: u64 [nonzero],
        /// Limit price in ticks, or a market order's protection price (for a trigger order: of
        /// the order it enters as when it fires).
        16 => price: i64,
        /// Quantity in lots (an iceberg's whole quantity, shown and hidden).
        24 => qty: u64 [nonzero],
        /// Instrument id.
        32 => instrument: u32,
        /// Buy or sell.
        36 => side: Side,
        /// Limit or market (a trigger order: what enters when it fires).
        37 => kind: OrderKind,
        /// Time in force; GTD needs `expire_ts_ns`.
        38 => tif: TimeInForce,
        /// Self-trade prevention mode.
        39 => stp: StpMode,
        /// Post-only: rejected if it would take liquidity (or slid, with `post_only_slide`).
        40 => post_only: bool,
        /// Reduce-only: may only reduce a perpetual position.
        41 => reduce_only: bool,
        /// With `post_only`: re-priced one tick behind the opposite best instead of rejected.
        42 => post_only_slide: bool,
        /// Trigger orders on a perpetual, risk on: when it fires, its quantity becomes what
        /// closes the account's position.
        43 => close_position: bool,
        /// What the trigger watches and when it fires; None: not a trigger order.
        44 => trigger: TriggerType,
        /// Trigger price in ticks (0 unless `trigger` is set).
        48 => trigger_price: i64,
        /// GTD expiry, ns since the Unix epoch, compared with the sequencer's timestamp (0
        /// unless `tif` is GTD).
        56 => expire_ts_ns: u64,
        /// Iceberg: lots shown on the book at a time (0: not an iceberg).
        64 => display_qty: u64,
        /// OCO: the cl_ord_id of the account's live order this one is paired with (0: none).
        72 => oco_cl_ord_id: u64,
    }
    reserved [45..48]
}

impl EnterOrderExt {
    /// The extended form of a plain order (every extension field zero).
    pub const fn plain(m: &EnterOrder) -> EnterOrderExt {
        EnterOrderExt {
            cl_ord_id: m.cl_ord_id,
            price: m.price,
            qty: m.qty,
            instrument: m.instrument,
            side: m.side,
            kind: m.kind,
            tif: m.tif,
            stp: m.stp,
            post_only: m.post_only,
            reduce_only: m.reduce_only,
            post_only_slide: false,
            close_position: false,
            trigger: TriggerType::None,
            trigger_price: 0,
            expire_ts_ns: 0,
            display_qty: 0,
            oco_cl_ord_id: 0,
        }
    }

    /// Whether the trigger fields agree: a trigger type with a trigger price, or neither
    /// (the gateway rejects the rest with `InvalidTrigger`).
    pub const fn trigger_consistent(&self) -> bool {
        matches!(self.trigger, TriggerType::None) == (self.trigger_price == 0)
    }
}

crate::wire_message! {
    /// Replace a live order: new price and new leaves quantity, optionally a new cl_ord_id.
    pub struct ReplaceOrder = template template::REPLACE_ORDER, schema ORDER_ENTRY, size 40 {
        /// cl_ord_id the order is known by now.
        8 => orig_cl_ord_id: u64 [nonzero],
        /// cl_ord_id from now on: equal to orig_cl_ord_id, or greater than every cl_ord_id the session used.
        16 => new_cl_ord_id: u64 [nonzero],
        /// New price in ticks.
        24 => price: i64,
        /// New leaves quantity in lots.
        32 => qty: u64 [nonzero],
    }
    reserved []
}

crate::wire_message! {
    /// Cancel a live order, whole or down to `remaining_qty` leaves (keeping priority).
    pub struct CancelOrder = template template::CANCEL_ORDER, schema ORDER_ENTRY, size 24 {
        /// cl_ord_id of the order.
        8 => cl_ord_id: u64 [nonzero],
        /// Lots to leave on the order: 0 = cancel it whole, else cancel down to this.
        16 => remaining_qty: u64,
    }
    reserved []
}

crate::wire_message! {
    /// Cancel every live order of the session's account, or of the account on one instrument.
    pub struct MassCancel = template template::MASS_CANCEL, schema ORDER_ENTRY, size 16 {
        /// Instrument id, or 0xFFFFFFFF for all instruments.
        8 => instrument: Option<u32>,
    }
    reserved [12..16]
}

/// Any message a client sends on an order-entry connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientMessage {
    Login(Login),
    LoginWithOptions(LoginWithOptions),
    Heartbeat(ClientHeartbeat),
    LogoutRequest(LogoutRequest),
    EnterOrder(EnterOrder),
    EnterOrderExt(EnterOrderExt),
    ReplaceOrder(ReplaceOrder),
    CancelOrder(CancelOrder),
    MassCancel(MassCancel),
    AdminDeposit(AdminDeposit),
    AdminWithdraw(AdminWithdraw),
    AdminSetMarkPrice(AdminSetMarkPrice),
    AdminApplyFunding(AdminApplyFunding),
    AdminLiquidate(AdminLiquidate),
    AdminSetFeeTier(AdminSetFeeTier),
    QueryOrder(QueryOrder),
    QueryOpenOrders(QueryOpenOrders),
    QueryBalances(QueryBalances),
    QueryPositions(QueryPositions),
}

impl ClientMessage {
    /// Decodes one complete frame from a client (as [`crate::framing`] yields it).
    #[inline]
    pub fn decode(frame: &[u8]) -> Result<ClientMessage, DecodeError> {
        let h = Header::peek(frame)?;
        h.check_channel(ORDER_ENTRY)?;
        match h.template_id {
            template::ENTER_ORDER => EnterOrder::decode(frame).map(ClientMessage::EnterOrder),
            template::ENTER_ORDER_EXT => {
                EnterOrderExt::decode(frame).map(ClientMessage::EnterOrderExt)
            }
            template::CANCEL_ORDER => CancelOrder::decode(frame).map(ClientMessage::CancelOrder),
            template::REPLACE_ORDER => ReplaceOrder::decode(frame).map(ClientMessage::ReplaceOrder),
            template::MASS_CANCEL => MassCancel::decode(frame).map(ClientMessage::MassCancel),
            template::ADMIN_DEPOSIT => AdminDeposit::decode(frame).map(ClientMessage::AdminDeposit),
            template::ADMIN_WITHDRAW => {
                AdminWithdraw::decode(frame).map(ClientMessage::AdminWithdraw)
            }
            template::ADMIN_SET_MARK_PRICE => {
                AdminSetMarkPrice::decode(frame).map(ClientMessage::AdminSetMarkPrice)
            }
            template::ADMIN_APPLY_FUNDING => {
                AdminApplyFunding::decode(frame).map(ClientMessage::AdminApplyFunding)
            }
            template::ADMIN_LIQUIDATE => {
                AdminLiquidate::decode(frame).map(ClientMessage::AdminLiquidate)
            }
            template::ADMIN_SET_FEE_TIER => {
                AdminSetFeeTier::decode(frame).map(ClientMessage::AdminSetFeeTier)
            }
            template::QUERY_ORDER => QueryOrder::decode(frame).map(ClientMessage::QueryOrder),
            template::QUERY_OPEN_ORDERS => {
                QueryOpenOrders::decode(frame).map(ClientMessage::QueryOpenOrders)
            }
            template::QUERY_BALANCES => {
                QueryBalances::decode(frame).map(ClientMessage::QueryBalances)
            }
            template::QUERY_POSITIONS => {
                QueryPositions::decode(frame).map(ClientMessage::QueryPositions)
            }
            template::CLIENT_HEARTBEAT => {
                ClientHeartbeat::decode(frame).map(ClientMessage::Heartbeat)
            }
            template::LOGIN => Login::decode(frame).map(ClientMessage::Login),
            template::LOGIN_WITH_OPTIONS => {
                LoginWithOptions::decode(frame).map(ClientMessage::LoginWithOptions)
            }
            template::LOGOUT_REQUEST => {
                LogoutRequest::decode(frame).map(ClientMessage::LogoutRequest)
            }
            t => Err(crate::header::misplaced(t)),
        }
    }

    /// Encodes into the front of `buf`; returns the bytes written.
    #[inline]
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        match self {
            ClientMessage::Login(m) => m.encode(buf),
            ClientMessage::LoginWithOptions(m) => m.encode(buf),
            ClientMessage::Heartbeat(m) => m.encode(buf),
            ClientMessage::LogoutRequest(m) => m.encode(buf),
            ClientMessage::EnterOrder(m) => m.encode(buf),
            ClientMessage::EnterOrderExt(m) => m.encode(buf),
            ClientMessage::ReplaceOrder(m) => m.encode(buf),
            ClientMessage::CancelOrder(m) => m.encode(buf),
            ClientMessage::MassCancel(m) => m.encode(buf),
            ClientMessage::AdminDeposit(m) => m.encode(buf),
            ClientMessage::AdminWithdraw(m) => m.encode(buf),
            ClientMessage::AdminSetMarkPrice(m) => m.encode(buf),
            ClientMessage::AdminApplyFunding(m) => m.encode(buf),
            ClientMessage::AdminLiquidate(m) => m.encode(buf),
            ClientMessage::AdminSetFeeTier(m) => m.encode(buf),
            ClientMessage::QueryOrder(m) => m.encode(buf),
            ClientMessage::QueryOpenOrders(m) => m.encode(buf),
            ClientMessage::QueryBalances(m) => m.encode(buf),
            ClientMessage::QueryPositions(m) => m.encode(buf),
        }
    }

    /// The message's template id.
    pub fn template_id(&self) -> u16 {
        match self {
            ClientMessage::Login(_) => Login::TEMPLATE_ID,
            ClientMessage::LoginWithOptions(_) => LoginWithOptions::TEMPLATE_ID,
            ClientMessage::Heartbeat(_) => ClientHeartbeat::TEMPLATE_ID,
            ClientMessage::LogoutRequest(_) => LogoutRequest::TEMPLATE_ID,
            ClientMessage::EnterOrder(_) => EnterOrder::TEMPLATE_ID,
            ClientMessage::EnterOrderExt(_) => EnterOrderExt::TEMPLATE_ID,
            ClientMessage::ReplaceOrder(_) => ReplaceOrder::TEMPLATE_ID,
            ClientMessage::CancelOrder(_) => CancelOrder::TEMPLATE_ID,
            ClientMessage::MassCancel(_) => MassCancel::TEMPLATE_ID,
            ClientMessage::AdminDeposit(_) => AdminDeposit::TEMPLATE_ID,
            ClientMessage::AdminWithdraw(_) => AdminWithdraw::TEMPLATE_ID,
            ClientMessage::AdminSetMarkPrice(_) => AdminSetMarkPrice::TEMPLATE_ID,
            ClientMessage::AdminApplyFunding(_) => AdminApplyFunding::TEMPLATE_ID,
            ClientMessage::AdminLiquidate(_) => AdminLiquidate::TEMPLATE_ID,
            ClientMessage::AdminSetFeeTier(_) => AdminSetFeeTier::TEMPLATE_ID,
            ClientMessage::QueryOrder(_) => QueryOrder::TEMPLATE_ID,
            ClientMessage::QueryOpenOrders(_) => QueryOpenOrders::TEMPLATE_ID,
            ClientMessage::QueryBalances(_) => QueryBalances::TEMPLATE_ID,
            ClientMessage::QueryPositions(_) => QueryPositions::TEMPLATE_ID,
        }
    }
}

/// Decodes one complete frame from a client (same as [`ClientMessage::decode`]).
#[inline]
pub fn decode_client(frame: &[u8]) -> Result<ClientMessage, DecodeError> {
    ClientMessage::decode(frame)
}
