//! The order form's text → an [`OrderRequest`], or every problem beside its
//! field. The rules are Alpaca's (its order and fractional-trading docs):
//! a quantity or a dollar amount, never both; dollar amounts and fractions
//! only for market day orders; the prices each type needs and no others;
//! sub-penny limits; a trailing stop with exactly one trail and day or GTC;
//! extended hours only for limit day orders; bracket (both exits) and OTO
//! (one exit) orders with a market or limit entry, whole shares, day or GTC,
//! the take-profit beyond the entry and the stop-loss on the other side.

use std::str::FromStr;

use rust_decimal::Decimal;

use super::Problem;
use crate::alpaca::{OrderClass, OrderRequest, StopLoss, TakeProfit};
use crate::domain::{OrderType, Side, TimeInForce};
use crate::money::money_exact;

/// The order form as typed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderInput {
    pub symbol: String,
    pub side: String,
    pub qty: String,
    pub notional: String,
    pub order_type: String,
    pub limit_price: String,
    pub stop_price: String,
    pub trail_percent: String,
    pub trail_amount: String,
    pub time_in_force: String,
    pub extended_hours: bool,
    pub take_profit: String,
    pub stop_loss: String,
}

/// Largest quantity or amount Paddock forwards (Alpaca caps orders far lower).
const MAX_AMOUNT: Decimal = Decimal::from_parts(1_000_000_000, 0, 0, false, 0);

fn number(text: &str, money_like: bool) -> Option<Decimal> {
    let mut text = text.trim().to_owned();
    if money_like {
        text = text.trim_start_matches('$').replace(',', "");
    }
    Decimal::from_str(&text).ok()
}

/// Whether `symbol` is a plausible US ticker (letters and dots, up to 10).
pub fn valid_symbol(symbol: &str) -> bool {
    (1..=10).contains(&symbol.len()) && symbol.bytes().all(|b| b.is_ascii_uppercase() || b == b'.')
}

/// Alpaca's minimum price variance: two decimals from $1, four below.
pub fn sub_penny(price: Decimal) -> bool {
    let places = price.normalize().scale();
    (price >= Decimal::ONE && places > 2) || places > 4
}

struct Reader<'a> {
    problems: Vec<Problem>,
    input: &'a OrderInput,
}

impl Reader<'_> {
    fn add(&mut self, field: &'static str, message: impl Into<String>) {
        if !self.problems.iter().any(|(f, _)| *f == field) {
            self.problems.push((field, message.into()));
        }
    }

    /// A price field: empty is `None`; anything else must be a price > 0 in cents.
    fn price(&mut self, field: &'static str, text: &str, example: &str) -> Option<Decimal> {
        if text.trim().is_empty() {
            return None;
        }
        match number(text, true) {
            Some(p) if p > Decimal::ZERO && p < MAX_AMOUNT => {
                if sub_penny(p) {
                    self.add(
                        field,
                        "Prices of $1.00 or more take at most 2 decimal places (below $1.00, at most 4).",
                    );
                }
                Some(p)
            }
            _ => {
                self.add(
                    field,
                    format!("Enter a price greater than 0, like {example}."),
                );
                None
            }
        }
    }
}

/// Checks the form. `Err` lists every problem found, each for its field.
pub fn check(input: &OrderInput) -> Result<OrderRequest, Vec<Problem>> {
    let mut r = Reader {
        problems: Vec::new(),
        input,
    };
    let symbol = input.symbol.trim().to_uppercase();
    if !valid_symbol(&symbol) {
        r.add(
            "symbol",
            "Enter a ticker symbol like AAPL (letters and dots, up to 10).",
        );
    }
    let side = Side::parse(&input.side);
    if side.is_none() {
        r.add("side", "Choose Buy or Sell.");
    }
    let order_type = OrderType::parse(&input.order_type);
    if order_type.is_none() {
        r.add(
            "order_type",
            "Choose Market, Limit, Stop, Stop limit or Trailing stop.",
        );
    }
    let time_in_force =
        TimeInForce::parse(&input.time_in_force).filter(|t| TimeInForce::OFFERED.contains(t));
    if time_in_force.is_none() {
        r.add("time_in_force", "Choose Day, GTC, IOC or FOK.");
    }

    let (qty, notional) = amounts(&mut r);
    let limit_price = r.price("limit_price", &input.limit_price, "187.50");
    let stop_price = r.price("stop_price", &input.stop_price, "180.00");
    let trail_price = r.price("trail_amount", &input.trail_amount, "1.00");
    let trail_percent = percent(&mut r);
    let take_profit = r.price("take_profit", &input.take_profit, "210.00");
    let stop_loss = r.price("stop_loss", &input.stop_loss, "170.00");

    if let Some(kind) = order_type {
        type_rules(&mut r, kind, limit_price, stop_price);
    }
    let whole_day_market =
        order_type == Some(OrderType::Market) && time_in_force == Some(TimeInForce::Day);
    if notional.is_some() && !whole_day_market {
        if order_type != Some(OrderType::Market) {
            r.add(
                "notional",
                "A notional amount works only with a Market order; enter a quantity instead.",
            );
        } else {
            r.add("time_in_force", "A notional order must be a Day order.");
        }
    }
    let fractional = qty.is_some_and(|q: Decimal| !q.fract().is_zero());
    if fractional && !whole_day_market {
        r.add(
            "qty",
            "Fractional quantities work only for Market orders with time in force Day.",
        );
    }
    if order_type == Some(OrderType::TrailingStop)
        && !matches!(
            time_in_force,
            Some(TimeInForce::Day | TimeInForce::Gtc) | None
        )
    {
        r.add("time_in_force", "A trailing stop must be Day or GTC.");
    }
    if input.extended_hours
        && (order_type != Some(OrderType::Limit) || time_in_force != Some(TimeInForce::Day))
    {
        r.add(
            "extended_hours",
            "Extended hours is only for Limit orders with time in force Day.",
        );
    }

    let order_class = match (take_profit.is_some(), stop_loss.is_some()) {
        (true, true) => OrderClass::Bracket,
        (false, false) => OrderClass::Simple,
        _ => OrderClass::Oto,
    };
    if order_class != OrderClass::Simple {
        exit_rules(
            &mut r,
            side,
            order_type,
            time_in_force,
            (qty, notional, fractional),
            limit_price,
            (take_profit, stop_loss),
        );
    }
    if !r.problems.is_empty() {
        return Err(r.problems);
    }
    let (Some(side), Some(order_type), Some(time_in_force)) = (side, order_type, time_in_force)
    else {
        return Err(r.problems);
    };
    Ok(OrderRequest {
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
        extended_hours: input.extended_hours,
        client_order_id: String::new(),
        order_class,
        take_profit: take_profit.map(|limit_price| TakeProfit { limit_price }),
        stop_loss: stop_loss.map(|stop_price| StopLoss { stop_price }),
    })
}

fn amounts(r: &mut Reader<'_>) -> (Option<Decimal>, Option<Decimal>) {
    let (qty_text, notional_text) = (r.input.qty.trim(), r.input.notional.trim());
    match (qty_text.is_empty(), notional_text.is_empty()) {
        (true, true) => {
            r.add(
                "qty",
                "Enter a quantity (shares) or a notional amount (dollars).",
            );
            return (None, None);
        }
        (false, false) => {
            r.add(
                "notional",
                "Give a quantity or a notional amount, not both.",
            );
        }
        _ => {}
    }
    let qty = (!qty_text.is_empty())
        .then(|| number(qty_text, false))
        .flatten();
    let qty = match qty {
        Some(q) if q > Decimal::ZERO && q < MAX_AMOUNT && q.normalize().scale() <= 9 => Some(q),
        Some(q) if q > Decimal::ZERO && q.normalize().scale() > 9 => {
            r.add("qty", "Alpaca takes at most 9 decimal places.");
            None
        }
        _ if qty_text.is_empty() => None,
        _ => {
            r.add("qty", "Enter a quantity greater than 0, like 10 or 0.5.");
            None
        }
    };
    let notional = (!notional_text.is_empty())
        .then(|| number(notional_text, true))
        .flatten();
    let notional = match notional {
        Some(n) if n >= Decimal::ONE && n < MAX_AMOUNT && n.normalize().scale() <= 9 => Some(n),
        _ if notional_text.is_empty() => None,
        _ => {
            r.add(
                "notional",
                "Enter a dollar amount of at least $1.00, like 250.00.",
            );
            None
        }
    };
    (qty, notional)
}

fn percent(r: &mut Reader<'_>) -> Option<Decimal> {
    let text = r.input.trail_percent.trim().trim_end_matches('%');
    if text.is_empty() {
        return None;
    }
    match number(text, false) {
        Some(p) if p > Decimal::ZERO && p < Decimal::ONE_HUNDRED => Some(p),
        _ => {
            r.add(
                "trail_percent",
                "Enter a percentage between 0 and 100, like 2.5.",
            );
            None
        }
    }
}

fn type_rules(r: &mut Reader<'_>, kind: OrderType, limit: Option<Decimal>, stop: Option<Decimal>) {
    let name = kind.label();
    let typed = |text: &str| !text.trim().is_empty();
    let (wants_limit, wants_stop) = match kind {
        OrderType::Market | OrderType::TrailingStop => (false, false),
        OrderType::Limit => (true, false),
        OrderType::Stop => (false, true),
        OrderType::StopLimit => (true, true),
    };
    if wants_limit && limit.is_none() && !typed(&r.input.limit_price) {
        r.add(
            "limit_price",
            format!("A {} order needs a limit price.", name.to_lowercase()),
        );
    }
    if !wants_limit && typed(&r.input.limit_price) {
        r.add(
            "limit_price",
            format!(
                "A {} order takes no limit price; clear it or choose Limit.",
                name.to_lowercase()
            ),
        );
    }
    if wants_stop && stop.is_none() && !typed(&r.input.stop_price) {
        r.add(
            "stop_price",
            format!("A {} order needs a stop price.", name.to_lowercase()),
        );
    }
    if !wants_stop && typed(&r.input.stop_price) {
        r.add(
            "stop_price",
            format!(
                "A {} order takes no stop price; clear it or choose Stop.",
                name.to_lowercase()
            ),
        );
    }
    let (percent_typed, amount_typed) =
        (typed(&r.input.trail_percent), typed(&r.input.trail_amount));
    if kind == OrderType::TrailingStop {
        match (percent_typed, amount_typed) {
            (false, false) => r.add(
                "trail_percent",
                "A trailing stop needs a trail percent or a trail amount.",
            ),
            (true, true) => r.add(
                "trail_amount",
                "Give a trail percent or a trail amount, not both.",
            ),
            _ => {}
        }
    } else {
        if percent_typed {
            r.add(
                "trail_percent",
                "Only a trailing stop takes a trail; clear it or choose Trailing stop.",
            );
        }
        if amount_typed {
            r.add(
                "trail_amount",
                "Only a trailing stop takes a trail; clear it or choose Trailing stop.",
            );
        }
    }
}

fn exit_rules(
    r: &mut Reader<'_>,
    side: Option<Side>,
    order_type: Option<OrderType>,
    time_in_force: Option<TimeInForce>,
    (qty, notional, fractional): (Option<Decimal>, Option<Decimal>, bool),
    limit: Option<Decimal>,
    (take_profit, stop_loss): (Option<Decimal>, Option<Decimal>),
) {
    let leg_field = if take_profit.is_some() {
        "take_profit"
    } else {
        "stop_loss"
    };
    if !matches!(
        order_type,
        Some(OrderType::Market | OrderType::Limit) | None
    ) {
        r.add(
            leg_field,
            "Take-profit and stop-loss prices work only with a Market or Limit order.",
        );
    }
    if !matches!(
        time_in_force,
        Some(TimeInForce::Day | TimeInForce::Gtc) | None
    ) {
        r.add(
            "time_in_force",
            "An order with a take-profit or stop-loss must be Day or GTC.",
        );
    }
    if r.input.extended_hours {
        r.add(
            "extended_hours",
            "Extended hours does not work with take-profit or stop-loss prices.",
        );
    }
    if notional.is_some() {
        r.add(
            "notional",
            "An order with a take-profit or stop-loss needs a quantity of whole shares.",
        );
    } else if fractional || (qty.is_none() && r.input.qty.trim().is_empty()) {
        r.add(
            "qty",
            "An order with a take-profit or stop-loss needs a quantity of whole shares.",
        );
    }
    let Some(side) = side else { return };
    let below = match side {
        Side::Buy => "below",
        Side::Sell => "above",
    };
    if let (Some(tp), Some(sl)) = (take_profit, stop_loss) {
        let ordered = match side {
            Side::Buy => tp > sl,
            Side::Sell => tp < sl,
        };
        if !ordered {
            r.add(
                "stop_loss",
                format!(
                    "For a {}, the stop-loss price must be {below} the take-profit price.",
                    side.as_str()
                ),
            );
        }
    }
    if order_type == Some(OrderType::Limit)
        && let Some(entry) = limit
        && let Err((field, message)) =
            against_entry(side, entry, "the limit price", take_profit, stop_loss)
    {
        r.add(field, message);
    }
}

/// Checks the exits against the entry price (`what` names it): for a buy
/// the take-profit at least a cent above and the stop-loss at least a cent
/// below, the reverse for a sell — Alpaca's base-price rule.
pub fn against_entry(
    side: Side,
    entry: Decimal,
    what: &str,
    take_profit: Option<Decimal>,
    stop_loss: Option<Decimal>,
) -> Result<(), Problem> {
    let cent = Decimal::new(1, 2);
    let (tp_ok, sl_ok, above, below) = match side {
        Side::Buy => (
            take_profit.is_none_or(|tp| tp >= entry + cent),
            stop_loss.is_none_or(|sl| sl <= entry - cent),
            "above",
            "below",
        ),
        Side::Sell => (
            take_profit.is_none_or(|tp| tp <= entry - cent),
            stop_loss.is_none_or(|sl| sl >= entry + cent),
            "below",
            "above",
        ),
    };
    let side = side.as_str();
    if !tp_ok {
        return Err((
            "take_profit",
            format!(
                "For a {side}, the take-profit price must be {above} {what} ({}).",
                money_exact(entry)
            ),
        ));
    }
    if !sl_ok {
        return Err((
            "stop_loss",
            format!(
                "For a {side}, the stop-loss price must be {below} {what} ({}).",
                money_exact(entry)
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
