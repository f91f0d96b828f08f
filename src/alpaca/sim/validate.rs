//! `POST /v2/orders` bodies checked the way Alpaca documents: required fields
//! per order type, quantity or dollar amount, fractional rules, sub-penny
//! prices, extended hours, trailing stops and bracket/OTO legs. Each refusal
//! carries Alpaca's status, code and (where Alpaca documents one) message.

use rust_decimal::Decimal;
use serde_json::Value;

use crate::alpaca::models::lenient::{decimal_of, parse_decimal};
use crate::alpaca::sim::data;
use crate::domain::{OrderType, Side, TimeInForce};

/// Why an order was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// HTTP status.
    pub status: u16,
    /// Alpaca's error code.
    pub code: u64,
    /// Alpaca's message.
    pub message: String,
}

/// A 422 with code 42210000.
pub fn unprocessable(message: impl Into<String>) -> Refusal {
    Refusal {
        status: 422,
        code: 42210000,
        message: message.into(),
    }
}

/// An order request that passed every check that does not need the account.
#[derive(Debug, Clone, PartialEq)]
pub struct NewOrder {
    pub symbol: String,
    pub qty: Option<Decimal>,
    pub notional: Option<Decimal>,
    pub side: Side,
    pub order_type: OrderType,
    pub time_in_force: TimeInForce,
    pub limit_price: Option<Decimal>,
    pub stop_price: Option<Decimal>,
    pub trail_percent: Option<Decimal>,
    pub trail_price: Option<Decimal>,
    pub extended_hours: bool,
    pub order_class: &'static str,
    pub take_profit: Option<Decimal>,
    pub stop_loss: Option<(Decimal, Option<Decimal>)>,
    pub client_order_id: Option<String>,
}

/// A field's text, whether sent as a string, number or boolean.
pub fn text_field(body: &Value, name: &str) -> Option<String> {
    match body.get(name)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn decimal_field(body: &Value, name: &str) -> Result<Option<Decimal>, Refusal> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => decimal_of(value)
            .map(Some)
            .ok_or_else(|| unprocessable(format!("invalid {name}"))),
    }
}

fn positive(name: &str, value: Option<Decimal>) -> Result<(), Refusal> {
    match value {
        Some(v) if v <= Decimal::ZERO => Err(unprocessable(format!("{name} must be > 0"))),
        _ => Ok(()),
    }
}

/// Alpaca's minimum price variance: two decimals from $1, four below.
fn sub_penny(name: &str, value: Option<Decimal>) -> Result<(), Refusal> {
    let Some(price) = value else { return Ok(()) };
    let places = price.normalize().scale();
    if (price >= Decimal::ONE && places > 2) || places > 4 {
        return Err(unprocessable(format!(
            "invalid {name} {}. sub-penny increment does not fulfill minimum pricing criteria",
            price.normalize()
        )));
    }
    Ok(())
}

/// Checks `body`; `market` is the current price (for bracket legs of a market entry).
pub fn validate(
    body: &Value,
    market: impl Fn(&str) -> Option<Decimal>,
) -> Result<NewOrder, Refusal> {
    if !body.is_object() {
        return Err(unprocessable("request body format is invalid"));
    }
    let symbol = text_field(body, "symbol").ok_or_else(|| unprocessable("symbol is required"))?;
    let asset = data::asset(&symbol)
        .ok_or_else(|| unprocessable(format!("asset \"{symbol}\" not found")))?;
    if !asset.tradable {
        return Err(unprocessable(format!("asset \"{symbol}\" is not tradable")));
    }
    let side = text_field(body, "side")
        .and_then(|s| Side::parse(&s))
        .ok_or_else(|| unprocessable("invalid side"))?;
    let order_type = text_field(body, "type")
        .and_then(|s| OrderType::parse(&s))
        .ok_or_else(|| unprocessable("invalid order type"))?;
    let time_in_force = text_field(body, "time_in_force")
        .and_then(|s| TimeInForce::parse(&s))
        .ok_or_else(|| unprocessable("invalid time_in_force"))?;

    let qty = decimal_field(body, "qty")?;
    let notional = decimal_field(body, "notional")?;
    match (qty, notional) {
        (None, None) => return Err(unprocessable("qty or notional is required")),
        (Some(_), Some(_)) => {
            return Err(unprocessable("only one of qty or notional may be given"));
        }
        _ => {}
    }
    positive("qty", qty)?;
    positive("notional", notional)?;
    if notional.is_some_and(|n| n < Decimal::ONE) {
        return Err(unprocessable("notional must be at least 1.00"));
    }
    for (name, value) in [("qty", qty), ("notional", notional)] {
        if value.is_some_and(|v| v.normalize().scale() > 9) {
            return Err(unprocessable(format!(
                "{name} can have at most 9 decimal places"
            )));
        }
    }
    let fractional = notional.is_some() || qty.is_some_and(|q| !q.fract().is_zero());
    if fractional {
        if !asset.fractionable {
            return Err(unprocessable("requested asset is not fractionable"));
        }
        if order_type != OrderType::Market || time_in_force != TimeInForce::Day {
            return Err(unprocessable(
                "fractional and notional orders must be market orders with time_in_force day",
            ));
        }
    }

    let limit_price = decimal_field(body, "limit_price")?;
    let stop_price = decimal_field(body, "stop_price")?;
    let trail_percent = decimal_field(body, "trail_percent")?;
    let trail_price = decimal_field(body, "trail_price")?;
    for (name, value) in [
        ("limit_price", limit_price),
        ("stop_price", stop_price),
        ("trail_percent", trail_percent),
        ("trail_price", trail_price),
    ] {
        positive(name, value)?;
    }
    let needs = |limit: bool, stop: bool| {
        (limit_price.is_some() == limit) && (stop_price.is_some() == stop)
    };
    match order_type {
        OrderType::Market if limit_price.is_some() => {
            return Err(unprocessable("market orders must not have limit_price"));
        }
        OrderType::Market if stop_price.is_some() => {
            return Err(unprocessable("market orders must not have stop_price"));
        }
        OrderType::Limit if limit_price.is_none() => {
            return Err(unprocessable("limit orders require limit_price"));
        }
        OrderType::Stop if stop_price.is_none() => {
            return Err(unprocessable("stop orders require stop_price"));
        }
        OrderType::StopLimit if !needs(true, true) => {
            return Err(unprocessable(
                "stop_limit orders require limit_price and stop_price",
            ));
        }
        OrderType::TrailingStop => {
            if trail_percent.is_some() == trail_price.is_some() {
                return Err(unprocessable(
                    "trailing_stop orders require exactly one of trail_price or trail_percent",
                ));
            }
            if limit_price.is_some() || stop_price.is_some() {
                return Err(unprocessable(
                    "trailing_stop orders take no limit_price or stop_price",
                ));
            }
            if !matches!(time_in_force, TimeInForce::Day | TimeInForce::Gtc) {
                return Err(unprocessable("trailing_stop orders must be day or gtc"));
            }
            if trail_percent.is_some_and(|p| p >= Decimal::ONE_HUNDRED) {
                return Err(unprocessable("trail_percent must be < 100"));
            }
        }
        _ => {}
    }
    if order_type != OrderType::TrailingStop && (trail_percent.is_some() || trail_price.is_some()) {
        return Err(unprocessable(
            "trail_price and trail_percent are only for trailing_stop orders",
        ));
    }
    sub_penny("limit_price", limit_price)?;
    sub_penny("stop_price", stop_price)?;
    sub_penny("trail_price", trail_price)?;

    let extended_hours = matches!(body.get("extended_hours"), Some(Value::Bool(true)))
        || text_field(body, "extended_hours").is_some_and(|s| s == "true");
    if extended_hours && (order_type != OrderType::Limit || time_in_force != TimeInForce::Day) {
        return Err(unprocessable(
            "extended hours order must be DAY limit orders",
        ));
    }

    let order_class = match text_field(body, "order_class").as_deref() {
        None | Some("") | Some("simple") => "simple",
        Some("bracket") => "bracket",
        Some("oto") => "oto",
        Some(other) => return Err(unprocessable(format!("unsupported order_class {other}"))),
    };
    let take_profit = match body.get("take_profit") {
        None | Some(Value::Null) => None,
        Some(leg) => Some(
            leg.get("limit_price")
                .and_then(decimal_of)
                .ok_or_else(|| unprocessable("take_profit.limit_price is required"))?,
        ),
    };
    let stop_loss = match body.get("stop_loss") {
        None | Some(Value::Null) => None,
        Some(leg) => {
            let stop = leg
                .get("stop_price")
                .and_then(decimal_of)
                .ok_or_else(|| unprocessable("stop_loss.stop_price is required"))?;
            Some((stop, leg.get("limit_price").and_then(decimal_of)))
        }
    };
    if order_class == "simple" {
        if take_profit.is_some() || stop_loss.is_some() {
            return Err(unprocessable(
                "take_profit and stop_loss need order_class bracket or oto",
            ));
        }
    } else {
        check_legs(
            order_class,
            side,
            order_type,
            time_in_force,
            extended_hours,
            fractional,
        )?;
        match (order_class, take_profit.is_some(), stop_loss.is_some()) {
            ("bracket", true, true) | ("oto", true, false) | ("oto", false, true) => {}
            ("bracket", ..) => {
                return Err(unprocessable(
                    "bracket orders require take_profit and stop_loss",
                ));
            }
            _ => {
                return Err(unprocessable(
                    "oto orders require exactly one of take_profit or stop_loss",
                ));
            }
        }
        sub_penny("take_profit.limit_price", take_profit)?;
        sub_penny("stop_loss.stop_price", stop_loss.map(|s| s.0))?;
        let base = limit_price.or_else(|| market(&symbol));
        let cent = Decimal::new(1, 2);
        if let (Some(tp), Some((sl, _))) = (take_profit, stop_loss) {
            let ordered = match side {
                Side::Buy => tp > sl,
                Side::Sell => tp < sl,
            };
            if !ordered {
                return Err(unprocessable(match side {
                    Side::Buy => {
                        "take_profit.limit_price must be greater than stop_loss.stop_price"
                    }
                    Side::Sell => "take_profit.limit_price must be less than stop_loss.stop_price",
                }));
            }
        }
        if let Some(base) = base {
            match side {
                Side::Buy if take_profit.is_some_and(|tp| tp < base + cent) => {
                    return Err(unprocessable(
                        "take_profit.limit_price must be >= base_price + 0.01",
                    ));
                }
                Side::Buy if stop_loss.is_some_and(|(sl, _)| sl > base - cent) => {
                    return Err(unprocessable(
                        "stop_loss.stop_price must be <= base_price - 0.01",
                    ));
                }
                Side::Sell if take_profit.is_some_and(|tp| tp > base - cent) => {
                    return Err(unprocessable(
                        "take_profit.limit_price must be <= base_price - 0.01",
                    ));
                }
                Side::Sell if stop_loss.is_some_and(|(sl, _)| sl < base + cent) => {
                    return Err(unprocessable(
                        "stop_loss.stop_price must be >= base_price + 0.01",
                    ));
                }
                _ => {}
            }
        }
    }

    let client_order_id = text_field(body, "client_order_id").filter(|c| !c.is_empty());
    if client_order_id
        .as_ref()
        .is_some_and(|c| c.chars().count() > 128)
    {
        return Err(unprocessable(
            "client_order_id must be no more than 128 characters",
        ));
    }
    Ok(NewOrder {
        symbol,
        qty,
        notional,
        side,
        order_type,
        time_in_force,
        limit_price,
        stop_price,
        trail_percent,
        trail_price,
        extended_hours,
        order_class,
        take_profit,
        stop_loss,
        client_order_id,
    })
}

fn check_legs(
    order_class: &str,
    _side: Side,
    order_type: OrderType,
    time_in_force: TimeInForce,
    extended_hours: bool,
    fractional: bool,
) -> Result<(), Refusal> {
    if !matches!(order_type, OrderType::Market | OrderType::Limit) {
        return Err(unprocessable(format!(
            "{order_class} orders must be market or limit entries"
        )));
    }
    if !matches!(time_in_force, TimeInForce::Day | TimeInForce::Gtc) {
        return Err(unprocessable(format!(
            "{order_class} orders must be day or gtc"
        )));
    }
    if extended_hours {
        return Err(unprocessable(format!(
            "{order_class} orders do not support extended hours"
        )));
    }
    if fractional {
        return Err(unprocessable(format!(
            "{order_class} orders must be for whole shares"
        )));
    }
    Ok(())
}

/// Parses a query value as a decimal.
pub fn query_decimal(text: Option<&str>) -> Result<Option<Decimal>, Refusal> {
    match text {
        None => Ok(None),
        Some(t) => parse_decimal(t)
            .filter(|d| *d > Decimal::ZERO)
            .map(Some)
            .ok_or_else(|| unprocessable(format!("invalid value {t:?}"))),
    }
}

#[cfg(test)]
mod tests;
