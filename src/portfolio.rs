//! Portfolio data: fetched concurrently per account under one deadline, and
//! combined into totals and one equity history. Knows Alpaca, not HTTP or SQL.

use std::{collections::BTreeMap, time::Duration};

use rust_decimal::Decimal;
use time::{Date, OffsetDateTime};

use crate::alpaca::{
    Account, AlpacaError, ApiKeys, Client, Environment, Order, OrderStatusFilter, Position,
};

/// Chart periods offered as links.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
}

/// Orders shown on an account page.
#[derive(Debug)]
pub struct Orders {
    pub open: Vec<Order>,
    pub closed: Vec<Order>,
}

/// Fetches account, positions and history (and orders if `with_orders`) in
/// parallel, giving up after `deadline`. Consumes the keys: they are dropped
/// (and zeroized) as soon as the calls finish.
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
        let (account, positions, history, orders) = tokio::join!(
            client.account(environment, &keys),
            client.positions(environment, &keys),
            client.portfolio_history(environment, &keys, period.as_str(), "1D"),
            orders,
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

/// Sums over the accounts that answered.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Totals {
    pub equity: Decimal,
    pub cash: Decimal,
    pub buying_power: Decimal,
    pub day_change: Decimal,
    pub last_equity: Decimal,
}

impl Totals {
    /// Totals over `accounts`.
    pub fn of<'a>(accounts: impl IntoIterator<Item = &'a Account>) -> Self {
        accounts.into_iter().fold(Self::default(), |t, a| Self {
            equity: t.equity + a.equity,
            cash: t.cash + a.cash,
            buying_power: t.buying_power + a.buying_power,
            day_change: t.day_change + (a.equity - a.last_equity),
            last_equity: t.last_equity + a.last_equity,
        })
    }

    /// Day change as a percentage of yesterday's equity, if that is not zero.
    pub fn day_change_pct(&self) -> Option<Decimal> {
        (!self.last_equity.is_zero())
            .then(|| self.day_change / self.last_equity * Decimal::ONE_HUNDRED)
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
    fn periods_parse_with_a_month_default() {
        assert_eq!(Period::parse(Some("1W")), Period::Week);
        assert_eq!(Period::parse(Some("1A")), Period::Year);
        assert_eq!(Period::parse(Some("bogus")), Period::Month);
        assert_eq!(Period::parse(None), Period::Month);
    }
}
