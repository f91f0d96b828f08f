//! Orders: what Alpaca reports (`Order`), what Paddock sends (`OrderRequest`),
//! and the per-item answers of the bulk cancel and close endpoints.
//!
//! Modelled on Alpaca's published `Order` schema and alpaca-py's `Order`:
//! `qty` is `null` for notional orders; `stop_price`, `trail_percent`,
//! `trail_price` and `hwm` belong to stop and trailing-stop orders; bracket,
//! OTO and OCO orders carry `legs` when listed with `nested=true`; multi-leg
//! option orders (`order_class: "mleg"`) send `""` for `symbol`, `side`,
//! `type` and `asset_id` at the top and the real values on each leg, with a
//! `ratio_qty`. Type, side, class, status and time in force are kept as sent,
//! so values Alpaca adds later are shown as they are.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use super::lenient;
use crate::domain::{OrderType, Side, TimeInForce};

/// An order as Alpaca reports it.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct Order {
    /// Alpaca's order id.
    #[serde(default, deserialize_with = "lenient::uuid")]
    pub id: Option<Uuid>,
    /// Client-assigned order id (Paddock derives it from the form's token).
    #[serde(default, deserialize_with = "lenient::string")]
    pub client_order_id: String,
    /// When the order was created.
    #[serde(default, deserialize_with = "lenient::time")]
    pub created_at: Option<OffsetDateTime>,
    /// When the order was submitted.
    #[serde(default, deserialize_with = "lenient::time")]
    pub submitted_at: Option<OffsetDateTime>,
    /// When the order was (completely) filled.
    #[serde(default, deserialize_with = "lenient::time")]
    pub filled_at: Option<OffsetDateTime>,
    /// When the order was cancelled.
    #[serde(default, deserialize_with = "lenient::time")]
    pub canceled_at: Option<OffsetDateTime>,
    /// Ticker symbol (`""` on a multi-leg parent).
    #[serde(default, deserialize_with = "lenient::string")]
    pub symbol: String,
    /// Asset class, e.g. `us_equity`, `us_option`.
    #[serde(default, deserialize_with = "lenient::string")]
    pub asset_class: String,
    /// Ordered quantity (`None` for notional orders).
    #[serde(default, deserialize_with = "lenient::decimal")]
    pub qty: Option<Decimal>,
    /// Dollar amount of a notional order.
    #[serde(default, deserialize_with = "lenient::decimal")]
    pub notional: Option<Decimal>,
    /// Quantity filled so far.
    #[serde(default, deserialize_with = "lenient::decimal")]
    pub filled_qty: Option<Decimal>,
    /// Average fill price, if anything filled.
    #[serde(default, deserialize_with = "lenient::decimal")]
    pub filled_avg_price: Option<Decimal>,
    /// `simple` (or `""`), `bracket`, `oco`, `oto`, `mleg`, …
    #[serde(default, deserialize_with = "lenient::string")]
    pub order_class: String,
    /// Order type as sent in `type`.
    #[serde(rename = "type", default, deserialize_with = "lenient::string")]
    type_: String,
    /// The deprecated duplicate of `type`, read when `type` is absent.
    #[serde(rename = "order_type", default, deserialize_with = "lenient::string")]
    order_type_deprecated: String,
    /// `buy` or `sell` (`""` on a multi-leg parent).
    #[serde(default, deserialize_with = "lenient::string")]
    pub side: String,
    /// Time in force (`day`, `gtc`, …).
    #[serde(default, deserialize_with = "lenient::string")]
    pub time_in_force: String,
    /// Limit price.
    #[serde(default, deserialize_with = "lenient::decimal")]
    pub limit_price: Option<Decimal>,
    /// Stop price (stop and stop-limit orders; the current stop of a trailing stop).
    #[serde(default, deserialize_with = "lenient::decimal")]
    pub stop_price: Option<Decimal>,
    /// Trail as a percentage (trailing stop).
    #[serde(default, deserialize_with = "lenient::decimal")]
    pub trail_percent: Option<Decimal>,
    /// Trail as a dollar amount (trailing stop).
    #[serde(default, deserialize_with = "lenient::decimal")]
    pub trail_price: Option<Decimal>,
    /// Best price seen since a trailing stop was placed.
    #[serde(default, deserialize_with = "lenient::decimal")]
    pub hwm: Option<Decimal>,
    /// Order status (`new`, `filled`, `canceled`, …).
    #[serde(default, deserialize_with = "lenient::string")]
    pub status: String,
    /// Whether the order may fill outside regular hours.
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub extended_hours: bool,
    /// `buy_to_open`, `sell_to_close`, … (newer field).
    #[serde(default, deserialize_with = "lenient::string")]
    pub position_intent: String,
    /// A leg's share of a multi-leg order.
    #[serde(default, deserialize_with = "lenient::decimal")]
    pub ratio_qty: Option<Decimal>,
    /// The legs of a bracket, OTO, OCO or multi-leg order (`null` otherwise).
    #[serde(default, deserialize_with = "lenient::list")]
    pub legs: Vec<Order>,
}

impl Order {
    /// The order type as sent (`type`, else the deprecated `order_type`).
    pub fn type_text(&self) -> &str {
        if self.type_.is_empty() {
            &self.order_type_deprecated
        } else {
            &self.type_
        }
    }

    /// The order type, when Paddock knows it.
    pub fn order_type(&self) -> Option<OrderType> {
        OrderType::parse(self.type_text())
    }

    /// The side, when Paddock knows it.
    pub fn side(&self) -> Option<Side> {
        Side::parse(&self.side)
    }

    /// The time in force, when Paddock knows it.
    pub fn time_in_force(&self) -> Option<TimeInForce> {
        TimeInForce::parse(&self.time_in_force)
    }

    /// Whether this is a multi-leg (options) order whose parent carries no symbol.
    pub fn is_multi_leg(&self) -> bool {
        self.order_class == "mleg"
    }

    /// When it was submitted, else created.
    pub fn submitted(&self) -> Option<OffsetDateTime> {
        self.submitted_at.or(self.created_at)
    }
}

/// The class of an order Paddock places.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderClass {
    /// One order.
    #[default]
    Simple,
    /// Entry plus take-profit and stop-loss legs.
    Bracket,
    /// Entry plus one of the two legs.
    Oto,
}

impl OrderClass {
    fn is_simple(&self) -> bool {
        *self == OrderClass::Simple
    }
}

/// The take-profit leg of a bracket or OTO order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TakeProfit {
    /// Limit price of the exit (serialized as a string).
    pub limit_price: Decimal,
}

/// The stop-loss leg of a bracket or OTO order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StopLoss {
    /// Stop price of the exit (serialized as a string).
    pub stop_price: Decimal,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Body of `POST /v2/orders`. Decimals go as strings; absent values are left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderRequest {
    /// Ticker symbol.
    pub symbol: String,
    /// Quantity (exclusive with `notional`).
    #[serde(with = "lenient::as_text", skip_serializing_if = "Option::is_none")]
    pub qty: Option<Decimal>,
    /// Dollar amount (market orders only).
    #[serde(with = "lenient::as_text", skip_serializing_if = "Option::is_none")]
    pub notional: Option<Decimal>,
    /// Buy or sell.
    pub side: Side,
    /// Order type, sent as `type`.
    #[serde(rename = "type")]
    pub order_type: OrderType,
    /// Time in force.
    pub time_in_force: TimeInForce,
    /// Limit price (limit and stop-limit).
    #[serde(with = "lenient::as_text", skip_serializing_if = "Option::is_none")]
    pub limit_price: Option<Decimal>,
    /// Stop price (stop and stop-limit).
    #[serde(with = "lenient::as_text", skip_serializing_if = "Option::is_none")]
    pub stop_price: Option<Decimal>,
    /// Trail in percent (trailing stop).
    #[serde(with = "lenient::as_text", skip_serializing_if = "Option::is_none")]
    pub trail_percent: Option<Decimal>,
    /// Trail in dollars (trailing stop).
    #[serde(with = "lenient::as_text", skip_serializing_if = "Option::is_none")]
    pub trail_price: Option<Decimal>,
    /// May fill outside regular hours (limit, day only).
    #[serde(skip_serializing_if = "is_false")]
    pub extended_hours: bool,
    /// Paddock's idempotency key for this order.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub client_order_id: String,
    /// Simple, bracket or OTO.
    #[serde(skip_serializing_if = "OrderClass::is_simple")]
    pub order_class: OrderClass,
    /// Take-profit leg.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub take_profit: Option<TakeProfit>,
    /// Stop-loss leg.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_loss: Option<StopLoss>,
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
}

/// One item of the 207 answer of `DELETE /v2/orders` or `DELETE /v2/positions`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct BulkResult {
    /// The order concerned (`DELETE /v2/orders`).
    #[serde(default, deserialize_with = "lenient::uuid")]
    pub id: Option<Uuid>,
    /// The position concerned (`DELETE /v2/positions`).
    #[serde(default, deserialize_with = "lenient::string")]
    pub symbol: String,
    /// HTTP status of this item.
    #[serde(default, deserialize_with = "lenient::integer")]
    pub status: Option<i64>,
    /// The order created (success) or Alpaca's error object.
    #[serde(default)]
    pub body: Option<serde_json::Value>,
}

impl BulkResult {
    /// Whether this item succeeded (2xx).
    pub fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }

    /// Alpaca's message for a failed item, if it sent one.
    pub fn message(&self) -> Option<String> {
        self.body
            .as_ref()?
            .get("message")?
            .as_str()
            .map(str::to_owned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::from_str_exact(s).expect("decimal")
    }

    fn order(json: &str) -> Order {
        serde_json::from_str(json).expect("order")
    }

    #[test]
    fn the_published_notional_example_has_an_amount_and_no_quantity() {
        let o = order(
            r#"{"id":"61e69015-8549-4bfd-b9c3-01e75843f47d","client_order_id":"eb9e2aaa-f71a-4f51-b5b4-52a6c565dad4",
            "created_at":"2021-03-16T18:38:01.942282Z","updated_at":"2021-03-16T18:38:01.942282Z",
            "submitted_at":"2021-03-16T18:38:01.937734Z","filled_at":null,"expired_at":null,"canceled_at":null,
            "failed_at":null,"replaced_at":null,"replaced_by":null,"replaces":null,
            "asset_id":"b0b6dd9d-8b9b-48a9-ba46-b9d54906e415","symbol":"AAPL","asset_class":"us_equity",
            "notional":"500","qty":null,"filled_qty":"0","filled_avg_price":null,"order_class":"",
            "order_type":"market","type":"market","side":"buy","time_in_force":"day","limit_price":null,
            "stop_price":null,"status":"accepted","extended_hours":false,"legs":null,"trail_percent":null,
            "trail_price":null,"hwm":null}"#,
        );
        assert_eq!(o.notional, Some(d("500")));
        assert_eq!(o.qty, None);
        assert_eq!(o.order_type(), Some(OrderType::Market));
        assert_eq!(o.side(), Some(Side::Buy));
        assert!(o.legs.is_empty());
    }

    #[test]
    fn a_quantity_sent_as_a_number_and_unknown_new_fields_read() {
        let o = order(
            r#"{"id":"61e69015-8549-4bfd-b9c3-01e75843f47d","symbol":"SPY","qty":1,"filled_qty":"0",
            "order_class":"simple","type":"market","side":"buy","time_in_force":"day","status":"accepted",
            "position_intent":"buy_to_open","commission":1.25,"subtag":null,"source":"access_key"}"#,
        );
        assert_eq!(o.qty, Some(d("1")));
        assert_eq!(o.position_intent, "buy_to_open");
    }

    #[test]
    fn stop_stop_limit_and_trailing_stop_orders_keep_their_prices() {
        let stop = order(
            r#"{"symbol":"AAPL","qty":"1","type":"stop","side":"sell","time_in_force":"gtc","stop_price":"180.5","limit_price":null,"status":"new"}"#,
        );
        assert_eq!(stop.stop_price, Some(d("180.5")));
        let stop_limit = order(
            r#"{"symbol":"AAPL","qty":"1","type":"stop_limit","order_type":"stop_limit","side":"buy","time_in_force":"day","stop_price":"190","limit_price":"191.25","status":"new"}"#,
        );
        assert_eq!(stop_limit.order_type(), Some(OrderType::StopLimit));
        assert_eq!(stop_limit.limit_price, Some(d("191.25")));
        let trailing = order(
            r#"{"symbol":"AAPL","qty":"1","type":"trailing_stop","side":"sell","time_in_force":"day","trail_percent":"2.5","trail_price":null,"hwm":"200.10","stop_price":"195.0975","status":"new"}"#,
        );
        assert_eq!(trailing.trail_percent, Some(d("2.5")));
        assert_eq!(trailing.hwm, Some(d("200.10")));
        assert_eq!(trailing.stop_price, Some(d("195.0975")));
    }

    #[test]
    fn only_the_deprecated_order_type_is_read_when_type_is_missing() {
        let o = order(
            r#"{"symbol":"AAPL","qty":"1","order_type":"limit","side":"buy","limit_price":"1","status":"new"}"#,
        );
        assert_eq!(o.order_type(), Some(OrderType::Limit));
    }

    #[test]
    fn unknown_types_classes_and_statuses_are_kept_as_sent() {
        let o = order(
            r#"{"symbol":"AAPL","qty":"1","type":"pegged_midpoint","side":"buy","time_in_force":"gtd","status":"pending_review","order_class":"oco2"}"#,
        );
        assert_eq!(o.type_text(), "pegged_midpoint");
        assert_eq!(o.order_type(), None);
        assert_eq!(o.time_in_force(), None);
        assert_eq!(o.time_in_force, "gtd");
        assert_eq!(o.status, "pending_review");
    }

    #[test]
    fn a_bracket_order_lists_its_legs() {
        let o = order(
            r#"{"id":"61e69015-8549-4bfd-b9c3-01e75843f47d","symbol":"AAPL","qty":"10","type":"limit","side":"buy",
            "time_in_force":"gtc","limit_price":"200","status":"new","order_class":"bracket",
            "legs":[
              {"id":"f7f25e89-939a-4587-aaf6-414a6b3c341d","symbol":"AAPL","qty":"10","type":"limit","side":"sell",
               "time_in_force":"gtc","limit_price":"220","status":"held","order_class":"bracket","legs":null},
              {"id":"d56ba3ea-6d04-48ce-8175-817e242ee608","symbol":"AAPL","qty":"10","type":"stop","side":"sell",
               "time_in_force":"gtc","stop_price":"190","status":"held","order_class":"bracket","legs":null}
            ]}"#,
        );
        assert_eq!(o.legs.len(), 2);
        assert_eq!(o.legs[0].limit_price, Some(d("220")));
        assert_eq!(o.legs[1].order_type(), Some(OrderType::Stop));
        assert_eq!(o.legs[1].status, "held");
    }

    #[test]
    fn a_multi_leg_option_order_has_its_symbols_and_sides_on_the_legs() {
        let o = order(
            r#"{"id":"a6b2f6a3-5c4d-4f1b-9c2e-2b7a7c4f1e10","client_order_id":"c1","created_at":"2025-01-02T15:00:00Z",
            "asset_id":"","symbol":"","asset_class":"","notional":null,"qty":"1","filled_qty":"0",
            "order_class":"mleg","order_type":"","type":"","side":"","position_intent":"","time_in_force":"day",
            "limit_price":"1.25","status":"new","extended_hours":false,
            "legs":[
              {"id":"1f7c3f57-3f5e-4c55-9a36-5a7cc5bde001","symbol":"AAPL250117P00200000","asset_class":"us_option",
               "qty":"1","ratio_qty":"1","order_class":"mleg","type":"","side":"buy","position_intent":"buy_to_open",
               "time_in_force":"day","status":"new"},
              {"id":"1f7c3f57-3f5e-4c55-9a36-5a7cc5bde002","symbol":"AAPL250117P00250000","asset_class":"us_option",
               "qty":"1","ratio_qty":"1","order_class":"mleg","type":"","side":"sell","position_intent":"sell_to_open",
               "time_in_force":"day","status":"new"}
            ]}"#,
        );
        assert!(o.is_multi_leg());
        assert_eq!(o.symbol, "");
        assert_eq!(o.side(), None);
        assert_eq!(o.legs[0].symbol, "AAPL250117P00200000");
        assert_eq!(o.legs[1].side(), Some(Side::Sell));
        assert_eq!(o.legs[1].ratio_qty, Some(d("1")));
    }

    #[test]
    fn order_requests_serialize_like_alpacas_examples() {
        let bracket = OrderRequest {
            symbol: "SPY".into(),
            qty: Some(d("100")),
            notional: None,
            side: Side::Buy,
            order_type: OrderType::Market,
            time_in_force: TimeInForce::Gtc,
            limit_price: None,
            stop_price: None,
            trail_percent: None,
            trail_price: None,
            extended_hours: false,
            client_order_id: "pdk-1".into(),
            order_class: OrderClass::Bracket,
            take_profit: Some(TakeProfit {
                limit_price: d("301"),
            }),
            stop_loss: Some(StopLoss {
                stop_price: d("299"),
            }),
        };
        assert_eq!(
            serde_json::to_value(&bracket).expect("json"),
            serde_json::json!({"symbol":"SPY","qty":"100","side":"buy","type":"market",
                "time_in_force":"gtc","client_order_id":"pdk-1","order_class":"bracket",
                "take_profit":{"limit_price":"301"},"stop_loss":{"stop_price":"299"}})
        );
        let notional = OrderRequest {
            qty: None,
            notional: Some(d("500.75")),
            order_class: OrderClass::Simple,
            take_profit: None,
            stop_loss: None,
            time_in_force: TimeInForce::Day,
            client_order_id: String::new(),
            ..bracket.clone()
        };
        assert_eq!(
            serde_json::to_value(&notional).expect("json"),
            serde_json::json!({"symbol":"SPY","notional":"500.75","side":"buy","type":"market","time_in_force":"day"})
        );
        let trailing = OrderRequest {
            order_type: OrderType::TrailingStop,
            side: Side::Sell,
            trail_price: Some(d("6.15")),
            extended_hours: false,
            ..notional.clone()
        };
        let v = serde_json::to_value(&trailing).expect("json");
        assert_eq!(v["type"], "trailing_stop");
        assert_eq!(v["trail_price"], "6.15");
        let extended = OrderRequest {
            order_type: OrderType::Limit,
            limit_price: Some(d("290.12")),
            extended_hours: true,
            ..notional
        };
        let v = serde_json::to_value(&extended).expect("json");
        assert_eq!(v["extended_hours"], true);
        assert_eq!(v["limit_price"], "290.12");
    }

    #[test]
    fn bulk_answers_read_successes_and_failures() {
        let items: Vec<BulkResult> = serde_json::from_str(
            r#"[{"id":"d56ba3ea-6d04-48ce-8175-817e242ee608","status":200},
                {"symbol":"AAPL","status":403,"body":{"code":40310000,"message":"insufficient qty available for order (requested: 2, available: 0)","available":"0","existing_qty":"2","held_for_orders":"2","symbol":"AAPL"}},
                {"symbol":"MSFT","status":"200","order_id":"f7f25e89-939a-4587-aaf6-414a6b3c341d","body":{"id":"f7f25e89-939a-4587-aaf6-414a6b3c341d","symbol":"MSFT","status":"accepted"}}]"#,
        )
        .expect("bulk");
        assert!(items[0].succeeded());
        assert!(!items[1].succeeded());
        assert!(
            items[1]
                .message()
                .expect("message")
                .starts_with("insufficient qty")
        );
        assert!(items[2].succeeded());
        assert_eq!(items[2].symbol, "MSFT");
    }
}
