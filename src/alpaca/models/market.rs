//! `GET /v2/assets/{symbol}` and `GET /v2/clock`, modelled on Alpaca's
//! published `Assets` and `Clock` schemas (and alpaca-py's newer optional
//! fields such as `min_order_size` and `attributes`).

use serde::Deserialize;
use time::OffsetDateTime;
use uuid::Uuid;

use super::lenient;

/// A tradable (or not) instrument.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct Asset {
    /// Alpaca's asset id.
    #[serde(default, deserialize_with = "lenient::uuid")]
    pub id: Option<Uuid>,
    /// `us_equity`, `crypto`, `us_option`, …
    #[serde(rename = "class", default, deserialize_with = "lenient::string")]
    pub asset_class: String,
    /// Listing exchange.
    #[serde(default, deserialize_with = "lenient::string")]
    pub exchange: String,
    /// Ticker symbol.
    #[serde(default, deserialize_with = "lenient::string")]
    pub symbol: String,
    /// Official name.
    #[serde(default, deserialize_with = "lenient::string")]
    pub name: String,
    /// `active` or `inactive`.
    #[serde(default, deserialize_with = "lenient::string")]
    pub status: String,
    /// Whether Alpaca accepts orders for it.
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub tradable: bool,
    /// Whether it can be bought on margin.
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub marginable: bool,
    /// Whether it can be sold short.
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub shortable: bool,
    /// Whether fractional quantities and dollar amounts are accepted.
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub fractionable: bool,
    /// Extra flags, e.g. `ptp_no_exception`.
    #[serde(default, deserialize_with = "lenient::strings")]
    pub attributes: Vec<String>,
}

impl Asset {
    /// Whether Alpaca would take an order for it now.
    pub fn is_tradable(&self) -> bool {
        self.tradable && self.status.eq_ignore_ascii_case("active")
    }
}

/// The market clock.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct Clock {
    /// Alpaca's current time.
    #[serde(default, deserialize_with = "lenient::time")]
    pub timestamp: Option<OffsetDateTime>,
    /// Whether the market is open now.
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub is_open: bool,
    /// Next opening.
    #[serde(default, deserialize_with = "lenient::time")]
    pub next_open: Option<OffsetDateTime>,
    /// Next closing.
    #[serde(default, deserialize_with = "lenient::time")]
    pub next_close: Option<OffsetDateTime>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_published_asset_example_is_tradable_and_fractionable() {
        let a: Asset = serde_json::from_str(
            r#"{"id":"b0b6dd9d-8b9b-48a9-ba46-b9d54906e415","class":"us_equity","exchange":"NASDAQ",
                "symbol":"AAPL","name":"Apple Inc. Common Stock","status":"active","tradable":true,
                "marginable":true,"shortable":true,"easy_to_borrow":true,"fractionable":true,
                "min_order_size":null,"min_trade_increment":null,"price_increment":null,
                "maintenance_margin_requirement":30,"attributes":["fractional_eh_enabled"]}"#,
        )
        .expect("asset");
        assert!(a.is_tradable() && a.fractionable);
        assert_eq!(a.asset_class, "us_equity");
        assert_eq!(a.attributes, ["fractional_eh_enabled"]);
    }

    #[test]
    fn an_inactive_asset_is_not_tradable_even_if_flagged() {
        let a: Asset = serde_json::from_str(
            r#"{"id":"904837e3-3b76-47ec-b432-046db621571b","class":"us_equity","exchange":"OTC",
                "symbol":"LEHMQ","name":"Lehman Brothers","status":"inactive","tradable":true,
                "marginable":false,"shortable":false,"easy_to_borrow":false,"fractionable":false}"#,
        )
        .expect("asset");
        assert!(!a.is_tradable());
    }

    #[test]
    fn the_clock_reads_eastern_offsets_and_fractional_seconds() {
        let c: Clock = serde_json::from_str(
            r#"{"timestamp":"2024-01-02T10:15:22.123456789-05:00","is_open":true,
                "next_open":"2024-01-03T09:30:00-05:00","next_close":"2024-01-02T16:00:00-05:00"}"#,
        )
        .expect("clock");
        assert!(c.is_open);
        assert_eq!(
            c.next_close.map(|t| t.unix_timestamp()),
            Some(1_704_229_200)
        );
    }
}
