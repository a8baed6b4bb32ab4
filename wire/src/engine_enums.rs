//! The one place where the engine's enums and the wire's meet (feature `engine`): every
//! conversion between `tpx_engine`'s `Side`, `OrderKind`, `TimeInForce`, `StpMode`,
//! `RejectReason`, `CancelReason`, `BalanceReason` and the wire's, as `From` impls.
//!
//! The wire keeps the engine's numeric values. The matches below are exhaustive, so an enum
//! that gains a variant on one side stops the build here, except for the two reason enums:
//! the wire defines every engine reason today (a test checks it), and an engine reason the
//! wire does not know yet (the engine ahead of the schema) is sent as the closest generic one.

use tpx_engine as e;

use crate::enums::{
    BalanceReason, CancelReason, OrderKind, RejectReason, Side, StpMode, TimeInForce,
};

impl From<e::Side> for Side {
    #[inline]
    fn from(s: e::Side) -> Side {
        match s {
            e::Side::Buy => Side::Buy,
            e::Side::Sell => Side::Sell,
        }
    }
}

impl From<Side> for e::Side {
    #[inline]
    fn from(s: Side) -> e::Side {
        match s {
            Side::Buy => e::Side::Buy,
            Side::Sell => e::Side::Sell,
        }
    }
}

impl From<OrderKind> for e::OrderKind {
    #[inline]
    fn from(k: OrderKind) -> e::OrderKind {
        match k {
            OrderKind::Limit => e::OrderKind::Limit,
            OrderKind::Market => e::OrderKind::Market,
        }
    }
}

impl From<e::OrderKind> for OrderKind {
    #[inline]
    fn from(k: e::OrderKind) -> OrderKind {
        match k {
            e::OrderKind::Limit => OrderKind::Limit,
            e::OrderKind::Market => OrderKind::Market,
        }
    }
}

impl From<TimeInForce> for e::TimeInForce {
    #[inline]
    fn from(t: TimeInForce) -> e::TimeInForce {
        match t {
            TimeInForce::Gtc => e::TimeInForce::Gtc,
            TimeInForce::Ioc => e::TimeInForce::Ioc,
            TimeInForce::Fok => e::TimeInForce::Fok,
            TimeInForce::Gtd => e::TimeInForce::Gtd,
        }
    }
}

impl From<e::TimeInForce> for TimeInForce {
    #[inline]
    fn from(t: e::TimeInForce) -> TimeInForce {
        match t {
            e::TimeInForce::Gtc => TimeInForce::Gtc,
            e::TimeInForce::Ioc => TimeInForce::Ioc,
            e::TimeInForce::Fok => TimeInForce::Fok,
            e::TimeInForce::Gtd => TimeInForce::Gtd,
        }
    }
}

impl From<StpMode> for e::StpMode {
    #[inline]
    fn from(s: StpMode) -> e::StpMode {
        match s {
            StpMode::None => e::StpMode::None,
            StpMode::ExpireTaker => e::StpMode::ExpireTaker,
            StpMode::ExpireMaker => e::StpMode::ExpireMaker,
            StpMode::ExpireBoth => e::StpMode::ExpireBoth,
            StpMode::DecrementAndCancel => e::StpMode::DecrementAndCancel,
        }
    }
}

impl From<e::StpMode> for StpMode {
    #[inline]
    fn from(s: e::StpMode) -> StpMode {
        match s {
            e::StpMode::None => StpMode::None,
            e::StpMode::ExpireTaker => StpMode::ExpireTaker,
            e::StpMode::ExpireMaker => StpMode::ExpireMaker,
            e::StpMode::ExpireBoth => StpMode::ExpireBoth,
            e::StpMode::DecrementAndCancel => StpMode::DecrementAndCancel,
        }
    }
}

/// Same values; one the wire does not define yet is sent as `InvalidOrderType`, the closest
/// generic "refused as asked".
impl From<e::RejectReason> for RejectReason {
    #[inline]
    fn from(r: e::RejectReason) -> RejectReason {
        RejectReason::from_u8(r as u8).unwrap_or(RejectReason::InvalidOrderType)
    }
}

/// Same values; one the wire does not define yet is sent as `UserRequested`.
impl From<e::CancelReason> for CancelReason {
    #[inline]
    fn from(r: e::CancelReason) -> CancelReason {
        CancelReason::from_u8(r as u8).unwrap_or(CancelReason::UserRequested)
    }
}

impl From<e::BalanceReason> for BalanceReason {
    #[inline]
    fn from(r: e::BalanceReason) -> BalanceReason {
        match r {
            e::BalanceReason::Deposit => BalanceReason::Deposit,
            e::BalanceReason::Withdrawal => BalanceReason::Withdrawal,
            e::BalanceReason::VariationMargin => BalanceReason::VariationMargin,
            e::BalanceReason::Funding => BalanceReason::Funding,
            e::BalanceReason::InsuranceCover => BalanceReason::InsuranceCover,
            e::BalanceReason::Remainder => BalanceReason::Remainder,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_reasons_keep_their_values_on_the_wire() {
        use e::{CancelReason as EC, RejectReason as ER};
        for (e, w) in [
            (ER::UnknownOrder, RejectReason::UnknownOrder),
            (ER::InvalidOrderType, RejectReason::InvalidOrderType),
            // The risk reasons (15..=26) and the order types' reasons.
            (ER::InsufficientBalance, RejectReason::InsufficientBalance),
            (
                ER::ReduceOnlyWouldIncrease,
                RejectReason::ReduceOnlyWouldIncrease,
            ),
            (ER::MaxPositionExceeded, RejectReason::MaxPositionExceeded),
            (ER::DuplicateRequest, RejectReason::DuplicateRequest),
            (ER::NotLiquidatable, RejectReason::NotLiquidatable),
            (ER::InvalidTrigger, RejectReason::InvalidTrigger),
            (ER::InvalidExpireTime, RejectReason::InvalidExpireTime),
            (ER::InvalidOcoLink, RejectReason::InvalidOcoLink),
        ] {
            assert_eq!(RejectReason::from(e), w);
        }
        for (e, w) in [
            (EC::MassCancel, CancelReason::MassCancel),
            (EC::Liquidation, CancelReason::Liquidation),
            (EC::ImmediateOrCancel, CancelReason::ImmediateOrCancel),
            // The order types' cancel reasons (8..=10).
            (EC::Expired, CancelReason::Expired),
            (EC::Oco, CancelReason::Oco),
            (EC::TriggerRejected, CancelReason::TriggerRejected),
        ] {
            assert_eq!(CancelReason::from(e), w);
        }
    }

    #[test]
    fn sides_and_order_fields_round_trip() {
        for s in [Side::Buy, Side::Sell] {
            assert_eq!(Side::from(e::Side::from(s)), s);
            assert_eq!(e::Side::from(s) as u8, s as u8);
        }
        for t in [
            TimeInForce::Gtc,
            TimeInForce::Ioc,
            TimeInForce::Fok,
            TimeInForce::Gtd,
        ] {
            assert_eq!(TimeInForce::from(e::TimeInForce::from(t)), t);
        }
        for k in [OrderKind::Limit, OrderKind::Market] {
            assert_eq!(OrderKind::from(e::OrderKind::from(k)), k);
        }
        for s in [
            StpMode::None,
            StpMode::ExpireTaker,
            StpMode::ExpireMaker,
            StpMode::ExpireBoth,
            StpMode::DecrementAndCancel,
        ] {
            assert_eq!(StpMode::from(e::StpMode::from(s)), s);
        }
    }
}
