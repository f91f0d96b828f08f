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
mod tests;
