//! `GET /v2/account/portfolio/history`. Alpaca sends these values as JSON
//! numbers (with `null`s), unlike the rest of the API; they are read as
//! strings too, and timestamps in seconds or milliseconds.

use rust_decimal::Decimal;
use serde::Deserialize;
use time::OffsetDateTime;

use super::lenient;

/// An equity series.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct PortfolioHistory {
    /// Unix timestamps (seconds; milliseconds tolerated, see [`normalize_timestamp`]).
    #[serde(default, deserialize_with = "lenient::integers")]
    pub timestamp: Vec<Option<i64>>,
    /// Equity at each timestamp (`null` before the account had data).
    #[serde(default, deserialize_with = "lenient::decimals")]
    pub equity: Vec<Option<Decimal>>,
    /// Profit/loss relative to `base_value`.
    #[serde(default, deserialize_with = "lenient::decimals")]
    pub profit_loss: Vec<Option<Decimal>>,
    /// Profit/loss as a fraction of `base_value`.
    #[serde(default, deserialize_with = "lenient::decimals")]
    pub profit_loss_pct: Vec<Option<Decimal>>,
    /// Equity at the start of the period.
    #[serde(default, deserialize_with = "lenient::decimal")]
    pub base_value: Option<Decimal>,
    /// Resolution of the series, e.g. `1D`.
    #[serde(default, deserialize_with = "lenient::string")]
    pub timeframe: String,
}

/// One usable point of a [`PortfolioHistory`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryPoint {
    /// When the point was taken.
    pub at: OffsetDateTime,
    /// Equity at that time.
    pub equity: Decimal,
}

/// Converts an Alpaca timestamp into a time. Values above 10^11 are taken as
/// milliseconds, everything else as seconds. Returns `None` when out of range.
pub fn normalize_timestamp(raw: i64) -> Option<OffsetDateTime> {
    const MS_THRESHOLD: i64 = 100_000_000_000;
    let seconds = if raw.abs() > MS_THRESHOLD {
        raw.div_euclid(1000)
    } else {
        raw
    };
    OffsetDateTime::from_unix_timestamp(seconds).ok()
}

impl PortfolioHistory {
    /// Usable points in order; points without equity or a valid time are dropped.
    pub fn points(&self) -> Vec<HistoryPoint> {
        self.timestamp
            .iter()
            .enumerate()
            .filter_map(|(i, ts)| {
                let equity = self.equity.get(i).copied().flatten()?;
                let at = normalize_timestamp((*ts)?)?;
                Some(HistoryPoint { at, equity })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::from_str_exact(s).expect("decimal")
    }

    #[test]
    fn numbers_nulls_and_millisecond_timestamps() {
        let h: PortfolioHistory = serde_json::from_str(
            r#"{"timestamp":[1700000000,1700086400000,1700172800],"equity":[null,100234.56,100300.1],
                "profit_loss":[null,0,65.54],"profit_loss_pct":[null,null,0.000654],
                "base_value":100234.56,"timeframe":"1D","base_value_asof":"2023-11-15","cashflow":{}}"#,
        )
        .expect("history");
        assert_eq!(h.base_value, Some(d("100234.56")));
        let points = h.points();
        assert_eq!(points.len(), 2);
        assert_eq!(points[0].at.unix_timestamp(), 1_700_086_400);
        assert_eq!(points[1].equity, d("100300.1"));
    }

    #[test]
    fn everything_as_strings_reads_the_same() {
        let h: PortfolioHistory = serde_json::from_str(
            r#"{"timestamp":["1700086400","1700172800"],"equity":["100234.56","100300.1"],
                "base_value":"100234.56","timeframe":"1D"}"#,
        )
        .expect("history");
        assert_eq!(h.points().len(), 2);
        assert_eq!(h.points()[0].equity, d("100234.56"));
    }

    #[test]
    fn a_history_of_a_new_account_is_empty_not_an_error() {
        let h: PortfolioHistory =
            serde_json::from_str(r#"{"timestamp":null,"equity":null,"base_value":null}"#)
                .expect("history");
        assert!(h.points().is_empty());
    }
}
