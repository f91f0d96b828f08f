//! Typed models for the subset of Alpaca's trading API that Paddock uses.
//!
//! Field names are Alpaca's real JSON field names. Money and quantities are
//! [`Decimal`], never floating point. Alpaca sends most decimals as JSON
//! strings, but a few endpoints (portfolio history) send JSON numbers; every
//! decimal field here accepts both, parsing the number's shortest textual form
//! so no binary floating-point rounding leaks into the value.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// Lenient (de)serialization of decimals: accepts JSON strings and numbers,
/// always serializes as a string (which Alpaca accepts everywhere).
pub mod dec {
    use rust_decimal::Decimal;
    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};
    use std::fmt;
    use std::str::FromStr;

    /// Parses a decimal from its textual form, accepting scientific notation.
    pub fn parse(text: &str) -> Option<Decimal> {
        let text = text.trim();
        Decimal::from_str(text)
            .ok()
            .or_else(|| Decimal::from_scientific(text).ok())
    }

    struct DecVisitor;

    impl Visitor<'_> for DecVisitor {
        type Value = Decimal;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a decimal as a string or number")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Decimal, E> {
            parse(v).ok_or_else(|| E::custom(format!("invalid decimal {v:?}")))
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Decimal, E> {
            Ok(Decimal::from(v))
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Decimal, E> {
            Ok(Decimal::from(v))
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Decimal, E> {
            // `Display` for f64 prints the shortest text that round-trips,
            // which is exactly what the sender wrote for ordinary values.
            if !v.is_finite() {
                return Err(E::custom("non-finite number"));
            }
            let text = v.to_string();
            parse(&text).ok_or_else(|| E::custom(format!("decimal out of range: {text}")))
        }
    }

    struct OptVisitor;

    impl<'de> Visitor<'de> for OptVisitor {
        type Value = Option<Decimal>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a decimal, or null")
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            deserialize(d).map(Some)
        }
    }

    /// Deserializes a decimal from a JSON string or number.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
        d.deserialize_any(DecVisitor)
    }

    /// Serializes a decimal as a JSON string.
    pub fn serialize<S: Serializer>(value: &Decimal, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(value)
    }

    /// `Option<Decimal>` variant: `null` (or a missing field, with
    /// `#[serde(default)]`) becomes `None`.
    pub mod opt {
        use super::OptVisitor;
        use rust_decimal::Decimal;
        use serde::{Deserializer, Serializer};

        /// Deserializes an optional decimal from a string, number or null.
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
            d.deserialize_option(OptVisitor)
        }

        /// Serializes an optional decimal as a string or null.
        pub fn serialize<S: Serializer>(value: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
            match value {
                Some(v) => s.collect_str(v),
                None => s.serialize_none(),
            }
        }
    }

    /// `Vec<Option<Decimal>>` variant (portfolio history series).
    pub mod vec_opt {
        use rust_decimal::Decimal;
        use serde::{Deserialize, Deserializer, Serialize, Serializer};

        #[derive(Deserialize, Serialize)]
        struct Item(#[serde(with = "super::opt")] Option<Decimal>);

        /// Deserializes a JSON array of decimals/nulls; a `null` array is empty.
        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Vec<Option<Decimal>>, D::Error> {
            let items: Option<Vec<Item>> = Option::deserialize(d)?;
            Ok(items
                .unwrap_or_default()
                .into_iter()
                .map(|Item(v)| v)
                .collect())
        }

        /// Serializes as a JSON array of strings/nulls.
        pub fn serialize<S: Serializer>(
            value: &[Option<Decimal>],
            s: S,
        ) -> Result<S::Ok, S::Error> {
            let items: Vec<Item> = value.iter().map(|v| Item(*v)).collect();
            items.serialize(s)
        }
    }
}

/// An Alpaca trading account (`GET /v2/account`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    /// Alpaca's account id.
    pub id: Uuid,
    /// Human-facing account number (e.g. `PA1234567890` for paper).
    pub account_number: String,
    /// Account status, e.g. `ACTIVE`.
    pub status: String,
    /// Account currency, e.g. `USD`.
    #[serde(default)]
    pub currency: String,
    /// Cash balance (negative when using margin).
    #[serde(with = "dec")]
    pub cash: Decimal,
    /// Deprecated alias of `equity` that Alpaca still sends.
    #[serde(with = "dec", default)]
    pub portfolio_value: Decimal,
    /// Cash plus the market value of all positions.
    #[serde(with = "dec")]
    pub equity: Decimal,
    /// Equity as of the previous trading day's close.
    #[serde(with = "dec", default)]
    pub last_equity: Decimal,
    /// Current buying power.
    #[serde(with = "dec")]
    pub buying_power: Decimal,
    /// Market value of long positions.
    #[serde(with = "dec::opt", default)]
    pub long_market_value: Option<Decimal>,
    /// Market value of short positions.
    #[serde(with = "dec::opt", default)]
    pub short_market_value: Option<Decimal>,
    /// Margin multiplier (`1`, `2` or `4`).
    #[serde(with = "dec::opt", default)]
    pub multiplier: Option<Decimal>,
    /// Whether the account is flagged as a pattern day trader.
    #[serde(default)]
    pub pattern_day_trader: bool,
    /// Whether trading is blocked.
    #[serde(default)]
    pub trading_blocked: bool,
    /// Whether the whole account is blocked.
    #[serde(default)]
    pub account_blocked: bool,
    /// Number of day trades in the last five trading days.
    #[serde(default)]
    pub daytrade_count: Option<i64>,
    /// When the account was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl Account {
    /// Equity change since the previous close (`equity - last_equity`).
    pub fn day_change(&self) -> Decimal {
        self.equity - self.last_equity
    }
}

/// An open position (`GET /v2/positions`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Position {
    /// Alpaca's asset id.
    pub asset_id: Uuid,
    /// Ticker symbol.
    pub symbol: String,
    /// Listing exchange, e.g. `NASDAQ`.
    #[serde(default)]
    pub exchange: String,
    /// Asset class, e.g. `us_equity`.
    #[serde(default)]
    pub asset_class: String,
    /// Quantity; the decimal keeps the scale Alpaca sent, so its `Display`
    /// reproduces Alpaca's text (e.g. `10` or `1.5`).
    #[serde(with = "dec")]
    pub qty: Decimal,
    /// Average entry price.
    #[serde(with = "dec")]
    pub avg_entry_price: Decimal,
    /// `long` or `short`.
    #[serde(default)]
    pub side: String,
    /// Current market value.
    #[serde(with = "dec", default)]
    pub market_value: Decimal,
    /// Total cost basis.
    #[serde(with = "dec", default)]
    pub cost_basis: Decimal,
    /// Unrealized profit/loss in dollars.
    #[serde(with = "dec", default)]
    pub unrealized_pl: Decimal,
    /// Unrealized profit/loss as a fraction (0.05 = 5 %).
    #[serde(with = "dec", default)]
    pub unrealized_plpc: Decimal,
    /// Current price per share.
    #[serde(with = "dec", default)]
    pub current_price: Decimal,
    /// Previous close price per share.
    #[serde(with = "dec", default)]
    pub lastday_price: Decimal,
    /// Price change since the previous close, as a fraction.
    #[serde(with = "dec", default)]
    pub change_today: Decimal,
}

/// An order as Alpaca reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    /// Alpaca's order id.
    pub id: Uuid,
    /// Client-assigned order id.
    #[serde(default)]
    pub client_order_id: String,
    /// When the order was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When the order was submitted.
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub submitted_at: Option<OffsetDateTime>,
    /// When the order was (completely) filled.
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub filled_at: Option<OffsetDateTime>,
    /// When the order was cancelled.
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub canceled_at: Option<OffsetDateTime>,
    /// Ticker symbol.
    pub symbol: String,
    /// Ordered quantity (`None` for notional orders).
    #[serde(with = "dec::opt", default)]
    pub qty: Option<Decimal>,
    /// Notional amount for dollar-based orders.
    #[serde(with = "dec::opt", default)]
    pub notional: Option<Decimal>,
    /// Quantity filled so far.
    #[serde(with = "dec", default)]
    pub filled_qty: Decimal,
    /// Average fill price, if anything filled.
    #[serde(with = "dec::opt", default)]
    pub filled_avg_price: Option<Decimal>,
    /// Order type (`market`, `limit`, `stop`, ...). Alpaca sends both `type`
    /// and `order_type`; this reads `type`.
    #[serde(rename = "type")]
    pub order_type: String,
    /// `buy` or `sell`.
    pub side: String,
    /// Time in force (`day`, `gtc`, ...).
    #[serde(default)]
    pub time_in_force: String,
    /// Limit price for limit orders.
    #[serde(with = "dec::opt", default)]
    pub limit_price: Option<Decimal>,
    /// Order status (`new`, `filled`, `canceled`, ...).
    pub status: String,
}

impl Order {
    /// Whether the order can still fill or be cancelled.
    pub fn is_open(&self) -> bool {
        matches!(
            self.status.as_str(),
            "new"
                | "accepted"
                | "partially_filled"
                | "pending_new"
                | "accepted_for_bidding"
                | "held"
                | "pending_replace"
                | "pending_cancel"
                | "calculated"
        )
    }
}

/// Order side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// Buy.
    Buy,
    /// Sell.
    Sell,
}

impl Side {
    /// Alpaca's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Buy => "buy",
            Side::Sell => "sell",
        }
    }

    /// Parses Alpaca's wire name (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "buy" => Some(Side::Buy),
            "sell" => Some(Side::Sell),
            _ => None,
        }
    }
}

/// Order type supported by Paddock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderType {
    /// Market order.
    Market,
    /// Limit order (requires a limit price).
    Limit,
}

impl OrderType {
    /// Alpaca's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderType::Market => "market",
            OrderType::Limit => "limit",
        }
    }

    /// Parses Alpaca's wire name (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "market" => Some(OrderType::Market),
            "limit" => Some(OrderType::Limit),
            _ => None,
        }
    }
}

/// Time in force supported by Paddock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeInForce {
    /// Good for the day.
    Day,
    /// Good until cancelled.
    Gtc,
}

impl TimeInForce {
    /// Alpaca's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            TimeInForce::Day => "day",
            TimeInForce::Gtc => "gtc",
        }
    }

    /// Parses Alpaca's wire name (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "day" => Some(TimeInForce::Day),
            "gtc" => Some(TimeInForce::Gtc),
            _ => None,
        }
    }
}

/// Body of `POST /v2/orders`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRequest {
    /// Ticker symbol.
    pub symbol: String,
    /// Quantity (sent as a string).
    #[serde(with = "dec")]
    pub qty: Decimal,
    /// Buy or sell.
    pub side: Side,
    /// Market or limit, sent as `type`.
    #[serde(rename = "type")]
    pub order_type: OrderType,
    /// Day or GTC.
    pub time_in_force: TimeInForce,
    /// Limit price (sent as a string; omitted when `None`).
    #[serde(with = "dec::opt", default, skip_serializing_if = "Option::is_none")]
    pub limit_price: Option<Decimal>,
}

/// Which orders `GET /v2/orders` returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum OrderStatusFilter {
    /// Orders that can still fill.
    #[default]
    Open,
    /// Filled, cancelled, expired or rejected orders.
    Closed,
    /// Everything.
    All,
}

impl OrderStatusFilter {
    /// Alpaca's query value.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatusFilter::Open => "open",
            OrderStatusFilter::Closed => "closed",
            OrderStatusFilter::All => "all",
        }
    }

    /// Parses Alpaca's query value (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "open" => Some(OrderStatusFilter::Open),
            "closed" => Some(OrderStatusFilter::Closed),
            "all" => Some(OrderStatusFilter::All),
            _ => None,
        }
    }
}

/// `GET /v2/account/portfolio/history`. Alpaca sends these values as JSON
/// numbers (with `null`s), unlike the rest of the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PortfolioHistory {
    /// Unix timestamps (seconds, though milliseconds are tolerated; see
    /// [`normalize_timestamp`]).
    #[serde(default)]
    pub timestamp: Vec<i64>,
    /// Equity at each timestamp (`null` before the account had data).
    #[serde(with = "dec::vec_opt", default)]
    pub equity: Vec<Option<Decimal>>,
    /// Profit/loss relative to `base_value`.
    #[serde(with = "dec::vec_opt", default)]
    pub profit_loss: Vec<Option<Decimal>>,
    /// Profit/loss as a fraction of `base_value`.
    #[serde(with = "dec::vec_opt", default)]
    pub profit_loss_pct: Vec<Option<Decimal>>,
    /// Equity at the start of the period.
    #[serde(with = "dec::opt", default)]
    pub base_value: Option<Decimal>,
    /// Resolution of the series, e.g. `1D`.
    #[serde(default)]
    pub timeframe: String,
}

/// One usable point of a [`PortfolioHistory`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryPoint {
    /// When the point was taken.
    pub at: OffsetDateTime,
    /// Equity at that time.
    pub equity: Decimal,
    /// Profit/loss relative to the base value, if given.
    pub profit_loss: Option<Decimal>,
    /// Profit/loss as a fraction, if given.
    pub profit_loss_pct: Option<Decimal>,
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
    /// Usable points in order: timestamps normalized, points whose equity is
    /// `null` (or whose timestamp is invalid) dropped.
    pub fn points(&self) -> Vec<HistoryPoint> {
        self.timestamp
            .iter()
            .enumerate()
            .filter_map(|(i, &ts)| {
                let equity = self.equity.get(i).copied().flatten()?;
                let at = normalize_timestamp(ts)?;
                Some(HistoryPoint {
                    at,
                    equity,
                    profit_loss: self.profit_loss.get(i).copied().flatten(),
                    profit_loss_pct: self.profit_loss_pct.get(i).copied().flatten(),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).expect("decimal")
    }

    #[test]
    fn portfolio_history_numbers_nulls_and_ms_timestamps() {
        let json = r#"{
            "timestamp": [1700000000, 1700086400000, 1700172800],
            "equity": [null, 100234.56, 100300.1],
            "profit_loss": [null, 0, 65.54],
            "profit_loss_pct": [null, null, 0.000654],
            "base_value": 100234.56,
            "timeframe": "1D",
            "base_value_asof": "2023-11-15"
        }"#;
        let h: PortfolioHistory = serde_json::from_str(json).expect("parse");
        assert_eq!(h.base_value, Some(d("100234.56")));
        let pts = h.points();
        assert_eq!(pts.len(), 2);
        assert_eq!(pts[0].at.unix_timestamp(), 1_700_086_400);
        assert_eq!(pts[0].equity, d("100234.56"));
        assert_eq!(pts[0].profit_loss_pct, None);
        assert_eq!(pts[1].at.unix_timestamp(), 1_700_172_800);
        assert_eq!(pts[1].equity, d("100300.1"));
        assert_eq!(pts[1].profit_loss_pct, Some(d("0.000654")));
    }

    #[test]
    fn order_accepts_type_and_order_type() {
        let json = r#"{"id":"61e69015-8549-4bfd-b9c3-01e75843f47d","client_order_id":"x",
            "created_at":"2021-03-16T18:38:01.942282Z","submitted_at":"2021-03-16T18:38:01.937734Z",
            "filled_at":null,"symbol":"AAPL","qty":"1.5","filled_qty":"0","filled_avg_price":null,
            "order_type":"limit","type":"limit","side":"buy","time_in_force":"day",
            "limit_price":"120.5","status":"new","extended_hours":false,"legs":null}"#;
        let o: Order = serde_json::from_str(json).expect("parse");
        assert_eq!(o.order_type, "limit");
        assert_eq!(o.qty, Some(d("1.5")));
        assert_eq!(o.limit_price, Some(d("120.5")));
        assert!(o.is_open());
    }

    #[test]
    fn order_request_serializes_like_alpaca() {
        let req = OrderRequest {
            symbol: "AAPL".into(),
            qty: d("1.50"),
            side: Side::Buy,
            order_type: OrderType::Market,
            time_in_force: TimeInForce::Day,
            limit_price: None,
        };
        let v = serde_json::to_value(&req).expect("json");
        assert_eq!(
            v,
            serde_json::json!({"symbol":"AAPL","qty":"1.50","side":"buy","type":"market","time_in_force":"day"})
        );
        let limit = OrderRequest {
            order_type: OrderType::Limit,
            limit_price: Some(d("99.95")),
            ..req
        };
        let v = serde_json::to_value(&limit).expect("json");
        assert_eq!(v["limit_price"], "99.95");
        assert_eq!(v["type"], "limit");
    }

    #[test]
    fn position_qty_keeps_alpaca_text() {
        let json = r#"{"asset_id":"904837e3-3b76-47ec-b432-046db621571b","symbol":"AAPL",
            "exchange":"NASDAQ","asset_class":"us_equity","qty":"1.50","avg_entry_price":"100.0",
            "side":"long","market_value":"150.00","cost_basis":"150.0","unrealized_pl":"0",
            "unrealized_plpc":"0","current_price":"100","lastday_price":"99","change_today":"0.0101",
            "qty_available":"1.5"}"#;
        let p: Position = serde_json::from_str(json).expect("parse");
        assert_eq!(p.qty.to_string(), "1.50");
    }

    #[test]
    fn timestamp_normalization() {
        let s = normalize_timestamp(1_700_000_000).expect("ts");
        let ms = normalize_timestamp(1_700_000_000_000).expect("ts");
        assert_eq!(s, ms);
    }
}
