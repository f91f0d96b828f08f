//! Portfolio data: fetched concurrently per account under one deadline, and
//! combined into totals and one equity history. Knows Alpaca, not HTTP or SQL.

use std::{collections::BTreeMap, time::Duration};

use rust_decimal::Decimal;
use time::{Date, OffsetDateTime};

use crate::alpaca::{
    Account, AlpacaError, ApiKeys, Client, Clock, Environment, Order, OrderStatusFilter, Position,
};

pub mod cache;

/// Chart periods offered as links.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Period {
    Week,
    Month,
    Quarter,
    Year,
}

impl Period {
    /// All periods, in link order.
    pub const ALL: [Self; 4] = [Self::Week, Self::Month, Self::Quarter, Self::Year];

    /// Alpaca's name and our query value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Week => "1W",
            Self::Month => "1M",
            Self::Quarter => "3M",
            Self::Year => "1A",
        }
    }

    /// Words for people.
    pub fn label(self) -> &'static str {
        match self {
            Self::Week => "1 week",
            Self::Month => "1 month",
            Self::Quarter => "3 months",
            Self::Year => "1 year",
        }
    }

    /// Parses a query value; anything unknown is the default month.
    pub fn parse(s: Option<&str>) -> Self {
        Self::ALL
            .into_iter()
            .find(|p| Some(p.as_str()) == s)
            .unwrap_or(Self::Month)
    }
}

/// One account's data.
#[derive(Debug)]
pub struct Snapshot {
    pub account: Account,
    pub positions: Vec<Position>,
    /// Daily equity, oldest first; empty if Alpaca had none or failed to send it.
    pub history: Vec<(OffsetDateTime, Decimal)>,
    /// Open and recent orders, when asked for.
    pub orders: Option<Orders>,
    /// The market clock, fetched with the orders (so never staler than them);
    /// `None` when not asked for or when Alpaca did not answer it.
    pub clock: Option<Clock>,
}

/// Orders shown on an account page.
#[derive(Debug)]
pub struct Orders {
    pub open: Vec<Order>,
    pub closed: Vec<Order>,
}

/// Fetches account, positions and history (and orders and the clock if
/// `with_orders`) in parallel, giving up after `deadline`. Consumes the keys:
/// they are dropped (and zeroized) as soon as the calls finish. This is the one
/// place account reads happen, so reuse of recent reads can be added here.
pub async fn fetch(
    client: &Client,
    environment: Environment,
    keys: ApiKeys,
    period: Period,
    with_orders: bool,
    deadline: Duration,
) -> Result<Snapshot, AlpacaError> {
    let calls = async {
        let orders = async {
            if !with_orders {
                return Ok(None);
            }
            let (open, closed) = tokio::join!(
                client.orders(environment, &keys, OrderStatusFilter::Open, 100),
                client.orders(environment, &keys, OrderStatusFilter::Closed, 20),
            );
            Ok::<_, AlpacaError>(Some(Orders {
                open: open?,
                closed: closed?,
            }))
        };
        let clock = async {
            if !with_orders {
                return None;
            }
            client
                .clock(environment, &keys)
                .await
                .inspect_err(|e| tracing::warn!(error = e.kind(), "market clock unavailable"))
                .ok()
        };
        let (account, positions, history, orders, clock) = tokio::join!(
            client.account(environment, &keys),
            client.positions(environment, &keys),
            client.portfolio_history(environment, &keys, period.as_str(), "1D"),
            orders,
            clock,
        );
        let history = match history {
            Ok(h) => h.points().into_iter().map(|p| (p.at, p.equity)).collect(),
            Err(e) => {
                tracing::warn!(error = e.kind(), "portfolio history unavailable");
                Vec::new()
            }
        };
        Ok(Snapshot {
            account: account?,
            positions: positions?,
            history,
            orders: orders?,
            clock,
        })
    };
    let result = tokio::time::timeout(deadline, calls).await;
    drop(keys);
    result.unwrap_or_else(|_| {
        Err(AlpacaError::Unavailable(
            "the page deadline passed".to_owned(),
        ))
    })
}

/// A sum over accounts that leaves out the ones whose value is unknown, and
/// counts them so the page can say so.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Sum {
    pub value: Decimal,
    pub known: usize,
    pub unknown: usize,
}

impl Sum {
    fn add(&mut self, value: Option<Decimal>) {
        match value {
            Some(v) => {
                self.value += v;
                self.known += 1;
            }
            None => self.unknown += 1,
        }
    }

    /// The sum, unless no account contributed to it.
    pub fn shown(&self) -> Option<Decimal> {
        (self.known > 0).then_some(self.value)
    }
}

/// Sums over the accounts that answered.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Totals {
    pub equity: Sum,
    pub cash: Sum,
    pub buying_power: Sum,
    pub day_change: Sum,
    /// Yesterday's equity of the accounts counted in `day_change`.
    pub last_equity: Decimal,
}

impl Totals {
    /// Totals over `accounts`.
    pub fn of<'a>(accounts: impl IntoIterator<Item = &'a Account>) -> Self {
        let mut t = Self::default();
        for a in accounts {
            t.equity.add(a.equity());
            t.cash.add(a.cash);
            t.buying_power.add(a.buying_power);
            t.day_change.add(a.day_change());
            if a.day_change().is_some() {
                t.last_equity += a.last_equity.unwrap_or_default();
            }
        }
        t
    }

    /// Day change as a percentage of yesterday's equity, if that is not zero.
    pub fn day_change_pct(&self) -> Option<Decimal> {
        (!self.last_equity.is_zero() && self.day_change.known > 0)
            .then(|| self.day_change.value / self.last_equity * Decimal::ONE_HUNDRED)
    }
}

/// Adds several accounts' daily series into one, by calendar day (UTC).
pub fn combine_history<'a>(
    series: impl IntoIterator<Item = &'a [(OffsetDateTime, Decimal)]>,
) -> Vec<(Date, Decimal)> {
    let mut days: BTreeMap<Date, Decimal> = BTreeMap::new();
    for s in series {
        for (at, equity) in s {
            *days.entry(at.date()).or_default() += *equity;
        }
    }
    days.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros_free::dec;

    mod rust_decimal_macros_free {
        macro_rules! dec {
            ($s:literal) => {
                rust_decimal::Decimal::from_str_exact($s).expect("decimal")
            };
        }
        pub(crate) use dec;
    }

    #[test]
    fn combining_sums_by_day() {
        let day = |d: u8| {
            time::macros::datetime!(2026-11-01 0:00 UTC)
                .replace_day(d)
                .expect("day")
        };
        let a = vec![(day(1), dec!("100.10")), (day(2), dec!("110"))];
        let b = vec![(day(2), dec!("5.05")), (day(3), dec!("7"))];
        let combined = combine_history([a.as_slice(), b.as_slice()]);
        assert_eq!(
            combined.iter().map(|(_, v)| *v).collect::<Vec<_>>(),
            [dec!("100.10"), dec!("115.05"), dec!("7")]
        );
    }

    #[test]
    fn totals_leave_out_unknown_values_and_count_them() {
        let full: Account = serde_json::from_str(
            r#"{"equity":"100","last_equity":"90","cash":"10","buying_power":"20"}"#,
        )
        .expect("account");
        let partial: Account =
            serde_json::from_str(r#"{"equity":"garbled","cash":"5","buying_power":null}"#)
                .expect("account");
        let t = Totals::of([&full, &partial]);
        assert_eq!(t.equity.shown(), Some(dec!("100")));
        assert_eq!((t.equity.known, t.equity.unknown), (1, 1));
        assert_eq!(t.cash.shown(), Some(dec!("15")));
        assert_eq!(t.buying_power.unknown, 1);
        assert_eq!(t.day_change.shown(), Some(dec!("10")));
        assert_eq!(
            t.day_change_pct().map(|p| p.round_dp(2)),
            Some(dec!("11.11"))
        );
        assert_eq!(Totals::of([&partial]).equity.shown(), None);
    }

    #[test]
    fn periods_parse_with_a_month_default() {
        assert_eq!(Period::parse(Some("1W")), Period::Week);
        assert_eq!(Period::parse(Some("1A")), Period::Year);
        assert_eq!(Period::parse(Some("bogus")), Period::Month);
        assert_eq!(Period::parse(None), Period::Month);
    }
}
