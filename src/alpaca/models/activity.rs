//! `GET /v2/account/activities`: a mix of trade activities (`FILL`, with
//! `transaction_time`, `price`, `qty`, `side`) and non-trade activities
//! (dividends, fees, transfers, with `date` and `net_amount`), as in Alpaca's
//! published `TradingActivities` and `NonTradeActivities` schemas. One lenient
//! struct reads both; `id` is the paging token.

use rust_decimal::Decimal;
use serde::Deserialize;
use time::OffsetDateTime;

use super::lenient;
use crate::domain::Side;

/// One account activity.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct Activity {
    /// `<time>::<uuid>`; sent back as `page_token` for the next page.
    #[serde(default, deserialize_with = "lenient::string")]
    pub id: String,
    /// `FILL`, `DIV`, `FEE`, `CSD`, `CSW`, `JNLC`, … (kept as sent).
    #[serde(default, deserialize_with = "lenient::string")]
    pub activity_type: String,
    /// When a fill happened.
    #[serde(default, deserialize_with = "lenient::time")]
    pub transaction_time: Option<OffsetDateTime>,
    /// The day a non-trade activity happened or settled (a date or a time).
    #[serde(default, deserialize_with = "lenient::time")]
    pub date: Option<OffsetDateTime>,
    /// `fill` or `partial_fill`.
    #[serde(rename = "type", default, deserialize_with = "lenient::string")]
    pub fill_type: String,
    /// Symbol concerned, if any.
    #[serde(default, deserialize_with = "lenient::string")]
    pub symbol: String,
    /// `buy` or `sell` (fills).
    #[serde(default, deserialize_with = "lenient::string")]
    pub side: String,
    /// Shares filled, or the shares a dividend was paid on.
    #[serde(default, deserialize_with = "lenient::decimal")]
    pub qty: Option<Decimal>,
    /// Price per share of a fill.
    #[serde(default, deserialize_with = "lenient::decimal")]
    pub price: Option<Decimal>,
    /// Dividend per share.
    #[serde(default, deserialize_with = "lenient::decimal")]
    pub per_share_amount: Option<Decimal>,
    /// Money in (+) or out (−) of a non-trade activity.
    #[serde(default, deserialize_with = "lenient::decimal")]
    pub net_amount: Option<Decimal>,
    /// Alpaca's description, if any.
    #[serde(default, deserialize_with = "lenient::string")]
    pub description: String,
    /// Status of a non-trade activity (`executed`, `correct`, `canceled`).
    #[serde(default, deserialize_with = "lenient::string")]
    pub status: String,
}

impl Activity {
    /// Whether this is a fill.
    pub fn is_fill(&self) -> bool {
        self.activity_type.eq_ignore_ascii_case("FILL")
    }

    /// When it happened.
    pub fn when(&self) -> Option<OffsetDateTime> {
        self.transaction_time.or(self.date)
    }

    /// The price: a fill's price, or a dividend's amount per share.
    pub fn price(&self) -> Option<Decimal> {
        self.price.or(self.per_share_amount)
    }

    /// Cash moved, exactly: a fill's `qty × price` (negative for a buy), else
    /// Alpaca's `net_amount`.
    pub fn amount(&self) -> Option<Decimal> {
        if self.is_fill() {
            let gross = self.qty?.checked_mul(self.price?)?;
            match Side::parse(&self.side)? {
                Side::Buy => Some(-gross),
                Side::Sell => Some(gross),
            }
        } else {
            self.net_amount
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::from_str_exact(s).expect("decimal")
    }

    #[test]
    fn a_published_fill_reads_with_an_exact_signed_amount() {
        let a: Activity = serde_json::from_str(
            r#"{"id":"20220202135509981::2d7be4ff-d1f3-43e9-856a-0f5cf5c5088e","activity_type":"FILL",
                "transaction_time":"2022-02-02T18:55:09.981482Z","type":"fill","price":"174.78","qty":"2",
                "side":"buy","symbol":"AAPL","leaves_qty":"0","order_id":"b5abe576-6a8a-49f3-a353-46b72c1ccae9",
                "cum_qty":"2","order_status":"filled"}"#,
        )
        .expect("fill");
        assert!(a.is_fill());
        assert_eq!(a.amount(), Some(d("-349.56")));
        assert_eq!(a.when().map(|t| t.unix_timestamp()), Some(1_643_828_109));
    }

    #[test]
    fn a_fractional_fill_keeps_every_digit() {
        let a: Activity = serde_json::from_str(
            r#"{"id":"20220304095318500::092cd749-b783-49cb-a36e-4d8666be201f","activity_type":"FILL",
                "transaction_time":"2022-03-04T14:53:18.500245Z","type":"partial_fill","price":"2630.95",
                "qty":"0.177047834","side":"sell","symbol":"GOOGL","cum_qty":"10.177047834","order_status":"partially_filled"}"#,
        )
        .expect("fill");
        assert_eq!(a.amount(), Some(d("465.80399886230")));
    }

    #[test]
    fn the_published_dividend_reads_with_its_date_and_per_share_amount() {
        let a: Activity = serde_json::from_str(
            r#"{"activity_type":"DIV","id":"20190801011955195::5f596936-6f23-4cef-bdf1-3806aae57dbf",
                "date":"2019-08-01","net_amount":"1.02","symbol":"T","qty":"2","per_share_amount":"0.51"}"#,
        )
        .expect("dividend");
        assert!(!a.is_fill());
        assert_eq!(a.amount(), Some(d("1.02")));
        assert_eq!(a.price(), Some(d("0.51")));
        assert_eq!(
            a.when().map(|t| t.date().to_string()),
            Some("2019-08-01".into())
        );
    }

    #[test]
    fn deposits_fees_and_unknown_kinds_read_with_numbers_or_strings() {
        let list: Vec<Activity> = serde_json::from_str(
            r#"[{"id":"20220419000000000::fd84741b-59c5-4ddd-a303-69f70eb7753f","account_id":"aba134b6-217d-4fd2-b460-e3c80bbfb9b4",
                 "activity_type":"CSD","date":"2022-04-19","net_amount":"33324.35","description":"","status":"executed"},
                {"id":"20220420000000000::aa","activity_type":"FEE","date":"2022-04-20T00:00:00Z","net_amount":-0.02,"description":"REG fee"},
                {"id":"20220421000000000::bb","activity_type":"SOMETHING_NEW","date":"2022-04-21","net_amount":null}]"#,
        )
        .expect("activities");
        assert_eq!(list[0].amount(), Some(d("33324.35")));
        assert_eq!(list[1].amount(), Some(d("-0.02")));
        assert_eq!(list[2].activity_type, "SOMETHING_NEW");
        assert_eq!(list[2].amount(), None);
    }
}
