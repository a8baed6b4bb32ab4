//! Wire enums, one byte each. Those the engine also has (`Side`, `OrderKind`, `TimeInForce`,
//! `StpMode`, `CancelReason`, `Liquidity`, and the engine's `RejectReason` values) use the
//! engine's numeric values; the conversions are `From` impls in `engine_enums` (feature
//! `engine`), the one place engine and wire enums meet.

crate::wire_enum! {
    pub enum Side {
        Buy = 1,
        Sell = 2,
    }
}

crate::wire_enum! {
    pub enum OrderKind {
        /// A limit order at `price`.
        Limit = 1,
        /// A market order; `price` is its protection price (the worst price it may trade at).
        Market = 2,
    }
}

crate::wire_enum! {
    pub enum TimeInForce {
        /// Good till cancelled.
        Gtc = 1,
        /// Immediate or cancel.
        Ioc = 2,
        /// Fill or kill.
        Fok = 3,
        /// Good till date: like GTC, cancelled (`Expired`) once the sequencer's timestamp reaches
        /// `expire_ts_ns` (`EnterOrderExt` only: on `EnterOrder`, which has no expiry, the engine
        /// rejects it with `InvalidExpireTime`).
        Gtd = 4,
    }
}

crate::wire_enum! {
    /// What a trigger (stop / take-profit) order watches and when it fires (`EnterOrderExt`).
    pub enum TriggerType {
        /// Not a trigger order (`trigger_price` must be 0).
        None = 0,
        /// Fires once the last trade price is >= the trigger price (buy stop, sell take-profit).
        LastRisesTo = 1,
        /// Fires once the last trade price is <= the trigger price (sell stop, buy take-profit).
        LastFallsTo = 2,
        /// Fires once the mark price is >= the trigger price (perpetuals).
        MarkRisesTo = 3,
        /// Fires once the mark price is <= the trigger price (perpetuals).
        MarkFallsTo = 4,
    }
}

crate::wire_enum! {
    /// Self-trade prevention mode (the engine's `StpMode`).
    pub enum StpMode {
        /// No prevention.
        None = 0,
        /// Cancel the incoming order's remainder.
        ExpireTaker = 1,
        /// Cancel the resting order and go on matching.
        ExpireMaker = 2,
        /// Cancel both.
        ExpireBoth = 3,
        /// Decrement both by the smaller quantity, no trade.
        DecrementAndCancel = 4,
    }
}

crate::wire_enum! {
    /// Why a request was rejected: 1..=29 are the engine's `RejectReason` (15..=26 come from
    /// accounts and risk, 27..=29 from the order types; 30..=31 are kept for reasons the engine
    /// will add); 32.. are the gateway's session-level reasons.
    pub enum RejectReason {
        /// Engine: no such instrument.
        UnknownInstrument = 1,
        /// Engine: the instrument is halted.
        InstrumentHalted = 2,
        /// Engine: price not positive or outside the instrument's price range.
        InvalidPrice = 3,
        /// Engine: price outside the band around the reference price.
        PriceOutsideBand = 4,
        /// Engine: quantity below the minimum or above the maximum.
        InvalidQuantity = 5,
        /// Engine: price x quantity below the minimum notional.
        BelowMinNotional = 6,
        /// Engine: the account has a live order with that cl_ord_id.
        DuplicateClientOrderId = 7,
        /// Engine: no live order with that cl_ord_id.
        UnknownOrder = 8,
        /// Engine: a post-only order would take liquidity.
        PostOnlyWouldTake = 9,
        /// Engine: a fill-or-kill order cannot fill in full.
        FokNotFillable = 10,
        /// Engine: no free order slot.
        BookFull = 11,
        /// Engine: cancel-down not below leaves, or a replace that changes nothing.
        InvalidModify = 12,
        /// Engine: unknown account.
        UnknownAccount = 13,
        /// Engine: market order with a TIF other than IOC/FOK, or post-only.
        InvalidOrderType = 14,
        /// Engine (risk): not enough available balance for the order's hold or the withdrawal.
        InsufficientBalance = 15,
        /// Engine (risk): a reduce-only order (or replace) that could increase the position.
        ReduceOnlyWouldIncrease = 16,
        /// Engine (risk): the position could pass the instrument's limit if every open order filled.
        MaxPositionExceeded = 17,
        /// Engine (risk): a deposit or withdrawal whose request id is not above the account's last one.
        DuplicateRequest = 18,
        /// Engine (risk): an asset the risk configuration does not have.
        UnknownAsset = 19,
        /// Engine (risk): a zero amount, a deposit that would overflow, or a funding rate beyond 100%.
        InvalidAmount = 20,
        /// Engine (risk): funding or liquidation on a perpetual with no mark price yet.
        NoMarkPrice = 21,
        /// Engine (risk): a risk input on a shard whose engine runs with risk off.
        RiskDisabled = 22,
        /// Engine (risk): liquidation of an account with no position on the instrument.
        NoPosition = 23,
        /// Engine (risk): a perpetual-only input (mark, funding, liquidation) on a spot instrument.
        NotPerpetual = 24,
        /// Engine (risk): a fee tier at or above the configured number of tiers.
        InvalidFeeTier = 25,
        /// Engine (risk): liquidation of a venue account (the fee or the liquidation account).
        NotLiquidatable = 26,
        /// Engine: a trigger price outside the instrument's range or already reached by the
        /// watched price, a trigger combined with post-only, FOK or an iceberg, or (gateway) a
        /// `trigger_price` without a trigger type.
        InvalidTrigger = 27,
        /// Engine: a GTD order without an expiry above the sequencer's timestamp, or an expiry on
        /// an order that is not GTD.
        InvalidExpireTime = 28,
        /// Engine: an OCO link naming no live order of the account, one of another instrument or
        /// side, or one already paired.
        InvalidOcoLink = 29,
        /// Gateway: the session exceeded its message rate.
        Throttled = 32,
        /// Gateway: a request before a successful login (sent with seq 0, then the connection closes).
        NotLoggedIn = 33,
        /// Gateway: a new cl_ord_id not greater than every cl_ord_id the session used before.
        ClOrdIdNotIncreasing = 34,
        /// Gateway: the sequencer or the engine queue is full; retry later.
        Backpressure = 35,
        /// Gateway: this node is not serving orders (standby, failover in progress, shutting down).
        Unavailable = 36,
        /// Gateway: an admin request from a session whose account is not an admin account, or
        /// naming a shard this node does not have.
        NotAuthorized = 37,
    }
}

crate::wire_enum! {
    /// Why an order lost quantity without a trade (the engine's `CancelReason`).
    pub enum CancelReason {
        /// Cancel or cancel-down requested by the client.
        UserRequested = 1,
        /// The unfilled remainder of an IOC order.
        ImmediateOrCancel = 2,
        /// The remainder of a market order at its protection price.
        MarketProtection = 3,
        /// Self-trade prevention.
        SelfTradePrevention = 4,
        /// A mass cancel.
        MassCancel = 5,
        /// A liquidation of the order's account.
        Liquidation = 6,
        /// A reduce-only order trimmed (or removed) because its position shrank.
        ReduceOnly = 7,
        /// A GTD order reached its expiry (by the sequencer's timestamp).
        Expired = 8,
        /// The other leg of its OCO pair fired, filled, or was cancelled by its owner or expired.
        Oco = 9,
        /// A trigger order fired but could not enter (its price left the band, or the risk
        /// check refused it).
        TriggerRejected = 10,
    }
}

crate::wire_enum! {
    /// Which side of a fill provided liquidity.
    pub enum Liquidity {
        Maker = 1,
        Taker = 2,
    }
}

crate::wire_enum! {
    /// Which request an `OrderRejected` answers (the values are the request template ids).
    pub enum RequestKind {
        EnterOrder = 16,
        ReplaceOrder = 17,
        CancelOrder = 18,
        MassCancel = 19,
        AdminDeposit = 20,
        AdminWithdraw = 21,
        AdminSetMarkPrice = 22,
        AdminApplyFunding = 23,
        AdminLiquidate = 24,
        AdminSetFeeTier = 25,
        EnterOrderExt = 26,
        QueryOrder = 27,
        QueryOpenOrders = 28,
        QueryBalances = 29,
        QueryPositions = 30,
    }
}

crate::wire_enum! {
    /// Which execution report an `ExecutionCopy` copies.
    pub enum ExecType {
        /// `OrderAccepted`.
        Accepted = 1,
        /// `OrderReplaced`.
        Replaced = 2,
        /// `OrderCancelled`.
        Cancelled = 3,
        /// `OrderExecuted`.
        Executed = 4,
    }
}

crate::wire_enum! {
    /// Why a balance changed other than by a trade (the engine's `BalanceReason`).
    pub enum BalanceReason {
        /// An admin deposit.
        Deposit = 1,
        /// An admin withdrawal.
        Withdrawal = 2,
        /// Mark-to-market settlement of a perpetual position at a new mark price.
        VariationMargin = 3,
        /// Funding paid or received.
        Funding = 4,
        /// A bankrupt account's deficit, paid by the fee (insurance) account.
        InsuranceCover = 5,
        /// Rounding remainders of settlement and funding, credited to the fee account.
        Remainder = 6,
    }
}

crate::wire_enum! {
    /// Why a login was refused.
    pub enum LoginRejectReason {
        /// Unknown account or a credential that does not verify.
        NotAuthorized = 1,
        /// The account has no session with that id, and may open no other now: it holds
        /// `max_sessions_per_account` on this node, or the node's session table is full.
        UnknownSession = 2,
        /// The session is logged in on another connection.
        SessionInUse = 3,
        /// The requested next sequence number is past the session's next sequence number.
        SequenceAhead = 4,
        /// The requested messages are no longer kept for replay.
        SequenceUnavailable = 5,
        /// The login's header version is not supported.
        UnsupportedVersion = 6,
        /// This node does not serve sessions now (standby, failover); try the other node.
        NotPrimary = 7,
        /// Too many login attempts.
        Throttled = 8,
    }
}

crate::wire_enum! {
    /// Why the server ends a session (it closes the connection after the `Logout`).
    pub enum LogoutReason {
        /// The client sent a `LogoutRequest`.
        UserRequested = 1,
        /// Nothing received from the client for the heartbeat timeout.
        HeartbeatTimeout = 2,
        /// A frame whose length is impossible: the stream cannot be resynchronised.
        MalformedFrame = 3,
        /// A message not allowed in the session's state (a second login, ...).
        ProtocolViolation = 4,
        /// The operator is shutting the gateway down.
        AdminShutdown = 5,
        /// The client did not read its replies fast enough.
        SlowConsumer = 6,
        /// This node stopped being the primary.
        Failover = 7,
    }
}

crate::wire_enum! {
    /// Instrument kind on the directory message.
    pub enum InstrumentKind {
        /// A spot pair: base against quote.
        Spot = 1,
        /// A linear perpetual settled in `settle_asset`.
        LinearPerp = 2,
    }
}

crate::wire_enum! {
    /// Trading state on the trading-status message.
    pub enum TradingState {
        Trading = 1,
        Halted = 2,
    }
}

crate::wire_enum! {
    /// Why a retransmission request was refused.
    pub enum RetransmitRefusal {
        /// Some requested messages are older than the retransmit window (recover from a snapshot).
        TooOld = 1,
        /// More messages than the server retransmits per request.
        TooMany = 2,
        /// Some requested messages have not been published yet.
        NotYetPublished = 3,
        /// No such stream.
        UnknownStream = 4,
        /// Too many requests from this address.
        Throttled = 5,
    }
}
