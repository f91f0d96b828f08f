//! `GET /v2/account` and `GET /v2/positions`.
//!
//! Modelled on Alpaca's published Trading API schema (`Account`, `Position`)
//! and its SDKs: every field is read leniently, so an old account without a
//! newer field, a number sent as a string, or a position Alpaca cannot price
//! (`null` prices, documented for assets without a current quote) costs only
//! the values concerned.

use rust_decimal::Decimal;
use serde::Deserialize;
use time::OffsetDateTime;
use uuid::Uuid;

use super::lenient;

/// An Alpaca trading account.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct Account {
    /// Alpaca's account id.
    #[serde(default, deserialize_with = "lenient::uuid")]
    pub id: Option<Uuid>,
    /// Human-facing account number (e.g. `PA1234567890` for paper).
    #[serde(default, deserialize_with = "lenient::string")]
    pub account_number: String,
    /// Account status, e.g. `ACTIVE` (shown as sent when unknown).
    #[serde(default, deserialize_with = "lenient::string")]
    pub status: String,
    /// Account currency, e.g. `USD`.
    #[serde(default, deserialize_with = "lenient::string")]
    pub currency: String,
    /// Cash balance (negative when using margin).
    #[serde(default, deserialize_with = "lenient::decimal")]
    pub cash: Option<Decimal>,
    /// Deprecated alias of `equity` that Alpaca still sends.
    #[serde(default, deserialize_with = "lenient::decimal")]
    pub portfolio_value: Option<Decimal>,
    /// Cash plus the market value of all positions (read it with [`Account::equity`],
    /// which falls back to `portfolio_value`).
    #[serde(default, deserialize_with = "lenient::decimal")]
    pub equity: Option<Decimal>,
    /// Equity as of the previous trading day's close.
    #[serde(default, deserialize_with = "lenient::decimal")]
    pub last_equity: Option<Decimal>,
    /// Current buying power.
    #[serde(default, deserialize_with = "lenient::decimal")]
    pub buying_power: Option<Decimal>,
    /// Market value of long positions.
    #[serde(default, deserialize_with = "lenient::decimal")]
    pub long_market_value: Option<Decimal>,
    /// Market value of short positions.
    #[serde(default, deserialize_with = "lenient::decimal")]
    pub short_market_value: Option<Decimal>,
    /// Margin multiplier (`1`, `2` or `4`).
    #[serde(default, deserialize_with = "lenient::decimal")]
    pub multiplier: Option<Decimal>,
    /// Whether the account is flagged as a pattern day trader.
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub pattern_day_trader: bool,
    /// Whether trading is blocked.
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub trading_blocked: bool,
    /// Whether the whole account is blocked.
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub account_blocked: bool,
    /// Day trades in the last five trading days (a live account has sent `"0"`).
    #[serde(default, deserialize_with = "lenient::integer")]
    pub daytrade_count: Option<i64>,
    /// When the account was created.
    #[serde(default, deserialize_with = "lenient::time")]
    pub created_at: Option<OffsetDateTime>,
}

impl Account {
    /// Equity, falling back to the deprecated `portfolio_value`.
    pub fn equity(&self) -> Option<Decimal> {
        self.equity.or(self.portfolio_value)
    }

    /// Equity change since the previous close, when both are known.
    pub fn day_change(&self) -> Option<Decimal> {
        Some(self.equity()? - self.last_equity?)
    }
}

/// An open position.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct Position {
    /// Alpaca's asset id.
    #[serde(default, deserialize_with = "lenient::uuid")]
    pub asset_id: Option<Uuid>,
    /// Ticker symbol.
    #[serde(default, deserialize_with = "lenient::string")]
    pub symbol: String,
    /// Listing exchange, e.g. `NASDAQ`.
    #[serde(default, deserialize_with = "lenient::string")]
    pub exchange: String,
    /// Asset class, e.g. `us_equity`.
    #[serde(default, deserialize_with = "lenient::string")]
    pub asset_class: String,
    /// Quantity; keeps the scale Alpaca sent, so `Display` shows Alpaca's text.
    #[serde(default, deserialize_with = "lenient::decimal")]
    pub qty: Option<Decimal>,
    /// Quantity not held for open orders.
    #[serde(default, deserialize_with = "lenient::decimal")]
    pub qty_available: Option<Decimal>,
    /// Average entry price.
    #[serde(default, deserialize_with = "lenient::decimal")]
    pub avg_entry_price: Option<Decimal>,
    /// `long` or `short`.
    #[serde(default, deserialize_with = "lenient::string")]
    pub side: String,
    /// Current market value (`null` when Alpaca cannot price the asset).
    #[serde(default, deserialize_with = "lenient::decimal")]
    pub market_value: Option<Decimal>,
    /// Total cost basis.
    #[serde(default, deserialize_with = "lenient::decimal")]
    pub cost_basis: Option<Decimal>,
    /// Unrealized profit/loss in dollars.
    #[serde(default, deserialize_with = "lenient::decimal")]
    pub unrealized_pl: Option<Decimal>,
    /// Unrealized profit/loss as a fraction (0.05 = 5 %).
    #[serde(default, deserialize_with = "lenient::decimal")]
    pub unrealized_plpc: Option<Decimal>,
    /// Today's unrealized profit/loss in dollars.
    #[serde(default, deserialize_with = "lenient::decimal")]
    pub unrealized_intraday_pl: Option<Decimal>,
    /// Current price per share.
    #[serde(default, deserialize_with = "lenient::decimal")]
    pub current_price: Option<Decimal>,
    /// Previous close price per share.
    #[serde(default, deserialize_with = "lenient::decimal")]
    pub lastday_price: Option<Decimal>,
    /// Price change since the previous close, as a fraction.
    #[serde(default, deserialize_with = "lenient::decimal")]
    pub change_today: Option<Decimal>,
}

impl Position {
    /// Whether Alpaca sent a market value for this position.
    pub fn is_priced(&self) -> bool {
        self.market_value.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::from_str_exact(s).expect("decimal")
    }

    /// The example from Alpaca's published `Account` schema.
    const SCHEMA_EXAMPLE: &str = r#"{
        "account_blocked": false, "account_number": "010203ABCD", "buying_power": "262113.632",
        "cash": "-23140.2", "created_at": "2019-06-12T22:47:07.99658Z", "currency": "USD",
        "daytrade_count": 0, "daytrading_buying_power": "262113.632", "equity": "103820.56",
        "id": "e6fe16f3-64a4-4921-8928-cadf02f92f98", "initial_margin": "63480.38",
        "last_equity": "103529.24", "last_maintenance_margin": "38000.832",
        "long_market_value": "126960.76", "maintenance_margin": "38088.228", "multiplier": "4",
        "pattern_day_trader": false, "portfolio_value": "103820.56", "regt_buying_power": "80680.36",
        "short_market_value": "0", "shorting_enabled": true, "sma": "0", "status": "ACTIVE",
        "trade_suspended_by_user": false, "trading_blocked": false, "transfers_blocked": false
    }"#;

    #[test]
    fn the_published_account_example_reads_exactly() {
        let a: Account = serde_json::from_str(SCHEMA_EXAMPLE).expect("account");
        assert_eq!(a.account_number, "010203ABCD");
        assert_eq!(a.cash, Some(d("-23140.2")));
        assert_eq!(a.equity(), Some(d("103820.56")));
        assert_eq!(a.day_change(), Some(d("291.32")));
        assert_eq!(a.buying_power, Some(d("262113.632")));
        assert_eq!(a.daytrade_count, Some(0));
        assert_eq!(a.multiplier, Some(d("4")));
    }

    #[test]
    fn a_live_account_with_daytrade_count_as_a_string_reads() {
        let body = SCHEMA_EXAMPLE.replace(r#""daytrade_count": 0"#, r#""daytrade_count": "0""#);
        let a: Account = serde_json::from_str(&body).expect("account");
        assert_eq!(a.daytrade_count, Some(0));
        assert_eq!(a.equity(), Some(d("103820.56")));
    }

    #[test]
    fn numbers_as_json_numbers_and_new_fields_read() {
        let a: Account = serde_json::from_str(
            r#"{"id":"e6fe16f3-64a4-4921-8928-cadf02f92f98","account_number":"PA1","status":"ACTIVE",
                "cash":1000.5,"equity":2000,"last_equity":"1990","buying_power":2001.0,
                "options_buying_power":"5","crypto_tier":1,"admin_configurations":{},
                "user_configurations":null,"balance_asof":"2024-01-02"}"#,
        )
        .expect("account");
        assert_eq!(a.cash, Some(d("1000.5")));
        assert_eq!(a.equity(), Some(d("2000")));
        assert_eq!(a.buying_power, Some(d("2001")));
        assert_eq!(a.day_change(), Some(d("10")));
    }

    #[test]
    fn an_old_account_lacking_newer_fields_falls_back_to_portfolio_value() {
        let a: Account = serde_json::from_str(
            r#"{"id":"e6fe16f3-64a4-4921-8928-cadf02f92f98","account_number":"PA2","status":"ACTIVE",
                "cash":"10","portfolio_value":"110","buying_power":"20"}"#,
        )
        .expect("account");
        assert_eq!(a.equity(), Some(d("110")));
        assert_eq!(a.last_equity, None);
        assert_eq!(a.day_change(), None);
        assert_eq!(a.created_at, None);
    }

    #[test]
    fn one_unreadable_field_costs_only_that_value() {
        let a: Account = serde_json::from_str(
            r#"{"account_number":"PA3","status":"SOMETHING_NEW","cash":"ten dollars","equity":"5","buying_power":null}"#,
        )
        .expect("account");
        assert_eq!(a.cash, None);
        assert_eq!(a.buying_power, None);
        assert_eq!(a.equity(), Some(d("5")));
        assert_eq!(a.status, "SOMETHING_NEW");
    }

    #[test]
    fn the_published_position_example_reads_exactly() {
        let p: Position = serde_json::from_str(
            r#"{"asset_id":"b0b6dd9d-8b9b-48a9-ba46-b9d54906e415","symbol":"AAPL","exchange":"NASDAQ",
                "asset_class":"us_equity","asset_marginable":false,"qty":"2","qty_available":"2",
                "avg_entry_price":"174.78","side":"long","market_value":"348.58","cost_basis":"349.56",
                "unrealized_pl":"-0.98","unrealized_plpc":"-0.0028035244307129",
                "unrealized_intraday_pl":"-0.98","unrealized_intraday_plpc":"-0.0028035244307129",
                "current_price":"174.29","lastday_price":"174.61","change_today":"-0.0018326556325525"}"#,
        )
        .expect("position");
        assert_eq!(p.qty.map(|q| q.to_string()), Some("2".into()));
        assert_eq!(p.market_value, Some(d("348.58")));
        assert_eq!(p.unrealized_plpc, Some(d("-0.0028035244307129")));
        assert!(p.is_priced());
    }

    #[test]
    fn a_position_alpaca_cannot_price_keeps_its_quantity() {
        let p: Position = serde_json::from_str(
            r#"{"asset_id":"904837e3-3b76-47ec-b432-046db621571b","symbol":"LEHMQ","exchange":"OTC",
                "asset_class":"us_equity","qty":"100","avg_entry_price":"3.25","side":"long",
                "market_value":null,"cost_basis":"325","unrealized_pl":null,"unrealized_plpc":null,
                "unrealized_intraday_pl":null,"unrealized_intraday_plpc":null,"current_price":null,
                "lastday_price":null,"change_today":null}"#,
        )
        .expect("position");
        assert_eq!(p.qty, Some(d("100")));
        assert_eq!(p.cost_basis, Some(d("325")));
        assert!(!p.is_priced());
        assert_eq!(p.current_price, None);
    }

    #[test]
    fn a_crypto_position_with_numbers_and_swap_fields_reads() {
        let p: Position = serde_json::from_str(
            r#"{"asset_id":"276e2673-764b-4ab6-a611-caf665ca6340","symbol":"BTCUSD","exchange":"CRYPTO",
                "asset_class":"crypto","qty":0.0012,"avg_entry_price":61000.5,"side":"long",
                "market_value":73.2,"cost_basis":73.2006,"unrealized_pl":-0.0006,"current_price":61000,
                "swap_rate":"1","avg_entry_swap_rate":null,"usd":{"market_value":"73.2"}}"#,
        )
        .expect("position");
        assert_eq!(p.qty, Some(d("0.0012")));
        assert_eq!(p.market_value, Some(d("73.2")));
        assert_eq!(p.unrealized_pl, Some(d("-0.0006")));
    }
}
