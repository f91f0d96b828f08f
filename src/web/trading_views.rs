//! View models of trading shared by the account page and the order pages:
//! the rows of the orders tables (legs under their parent) and the values
//! the order form shows.

use askama::Template;
use askama_web::WebTemplate;

use crate::{
    alpaca::{Order, OrderType, Side, TimeInForce},
    db::credentials::Credential,
    domain::Environment,
    money::money,
    trading::{self, form::OrderInput},
    web::{
        forms::{FieldErrors, when},
        tenant::Ctx,
        views::DASH,
    },
};

/// Who the account is, for the header of every account page.
#[derive(Clone)]
pub struct AccountHeader {
    pub id: String,
    pub label: String,
    pub environment: &'static str,
    pub environment_class: &'static str,
    pub live: bool,
    pub account_number: String,
}

impl AccountHeader {
    pub fn of(credential: &Credential) -> Self {
        Self {
            id: credential.id.to_string(),
            label: credential.label.clone(),
            environment: credential.environment.label(),
            environment_class: credential.environment.as_str(),
            live: credential.environment == Environment::Live,
            account_number: credential.account_number.clone(),
        }
    }
}

/// A confirmation page for an action on an account (close a position, cancel
/// all orders, close all positions), with its single-use token.
#[derive(Template, WebTemplate)]
#[template(path = "accounts/confirm.html")]
pub struct ConfirmPage {
    pub ctx: Ctx,
    pub account: AccountHeader,
    pub title: String,
    pub intro: String,
    pub action: String,
    pub button: &'static str,
    pub token: String,
    /// The quantity field's value, when the page has one.
    pub qty: Option<String>,
    pub alert: Option<String>,
    pub errors: FieldErrors,
}

/// One row of an orders table.
pub struct OrderRow {
    /// The order id, when a Cancel button makes sense.
    pub cancel_id: Option<String>,
    pub submitted: String,
    pub symbol: String,
    pub side: String,
    pub quantity: String,
    pub order_type: String,
    pub limit_price: String,
    pub stop_price: String,
    pub trail: String,
    pub time_in_force: String,
    pub status: String,
    pub filled: String,
    /// A leg shown under its parent, and what kind of leg.
    pub leg: Option<&'static str>,
}

fn sentence_case(text: &str) -> String {
    let text = text.replace('_', " ");
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// Known values by their label, unknown ones exactly as sent, missing ones `—`.
fn shown(label: Option<&'static str>, sent: &str) -> String {
    match (label, sent.trim()) {
        (Some(label), _) => label.to_owned(),
        (None, "") => DASH.to_owned(),
        (None, raw) => raw.to_owned(),
    }
}

fn open_status(status: &str) -> bool {
    matches!(
        status,
        "new"
            | "accepted"
            | "partially_filled"
            | "pending_new"
            | "accepted_for_bidding"
            | "held"
            | "pending_replace"
            | "calculated"
            | "stopped"
            | "suspended"
            | "done_for_day"
    )
}

impl OrderRow {
    fn of(o: &Order, leg: Option<&'static str>) -> Self {
        let symbol = if o.symbol.is_empty() && !o.legs.is_empty() {
            o.legs
                .iter()
                .map(|l| l.symbol.as_str())
                .collect::<Vec<_>>()
                .join(" / ")
        } else {
            shown(None, &o.symbol)
        };
        let side = match (o.side(), o.is_multi_leg()) {
            (Some(side), _) => side.label().to_owned(),
            (None, true) => "Multi-leg".to_owned(),
            (None, false) => shown(None, &o.side),
        };
        let order_type = shown(o.order_type().map(OrderType::label), o.type_text());
        let quantity = match (o.qty, o.notional) {
            (Some(q), _) => q.to_string(),
            (None, Some(n)) => money(n),
            (None, None) => DASH.to_owned(),
        };
        let trail = match (o.trail_percent, o.trail_price) {
            (Some(p), _) => format!("{}%", p.normalize()),
            (None, Some(a)) => money(a),
            (None, None) => String::new(),
        };
        let filled = match (o.filled_qty, o.filled_avg_price) {
            (Some(q), Some(price)) if !q.is_zero() => format!("{q} @ {}", money(price)),
            _ => String::new(),
        };
        let side_text = match (leg, o.ratio_qty) {
            (Some(_), Some(ratio)) => format!("{side} ×{ratio}"),
            _ => side,
        };
        Self {
            // A held leg waits for its entry; it goes with the entry's Cancel.
            cancel_id: o
                .id
                .filter(|_| open_status(&o.status) && o.status != "held")
                .map(|id| id.to_string()),
            submitted: o.submitted().map(when).unwrap_or_default(),
            symbol,
            side: side_text,
            quantity,
            order_type,
            limit_price: o.limit_price.map(money).unwrap_or_default(),
            stop_price: o.stop_price.map(money).unwrap_or_default(),
            trail,
            time_in_force: shown(o.time_in_force().map(TimeInForce::label), &o.time_in_force),
            status: sentence_case(&o.status),
            filled,
            leg,
        }
    }
}

/// The rows of an orders table: each order, then its legs.
pub fn order_rows(orders: &[Order]) -> Vec<OrderRow> {
    let mut rows = Vec::new();
    for o in orders {
        rows.push(OrderRow::of(o, None));
        for l in &o.legs {
            let kind = match (o.is_multi_leg(), l.order_type()) {
                (true, _) => "Leg",
                (false, Some(OrderType::Limit)) => "Take profit",
                (false, Some(OrderType::Stop | OrderType::StopLimit)) => "Stop loss",
                _ => "Leg",
            };
            rows.push(OrderRow::of(l, Some(kind)));
        }
    }
    rows
}

/// What the order form shows: the member's input (kept after a refusal) and
/// the form's single-use token.
#[derive(Clone)]
pub struct OrderValues {
    pub input: OrderInput,
    pub token: String,
}

impl OrderValues {
    /// An empty form with a fresh token: buy, market, day.
    pub fn fresh() -> Self {
        Self {
            input: OrderInput {
                side: Side::Buy.as_str().into(),
                order_type: OrderType::Market.as_str().into(),
                time_in_force: TimeInForce::Day.as_str().into(),
                ..OrderInput::default()
            },
            token: trading::new_token(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(json: &str) -> Order {
        serde_json::from_str(json).expect("order")
    }

    #[test]
    fn notional_stop_and_trailing_orders_show_their_amounts_prices_and_trails() {
        let notional = order(
            r#"{"id":"61e69015-8549-4bfd-b9c3-01e75843f47d","symbol":"AAPL","notional":"500","qty":null,"type":"market","side":"buy","time_in_force":"day","status":"accepted"}"#,
        );
        let row = &order_rows(&[notional])[0];
        assert_eq!(row.quantity, "$500.00");
        assert!(row.cancel_id.is_some());
        let stop_limit = order(
            r#"{"symbol":"AAPL","qty":"1","type":"stop_limit","side":"sell","time_in_force":"gtc","stop_price":"180","limit_price":"179.5","status":"new"}"#,
        );
        let row = &order_rows(&[stop_limit])[0];
        assert_eq!(
            (
                row.order_type.as_str(),
                row.stop_price.as_str(),
                row.limit_price.as_str()
            ),
            ("Stop limit", "$180.00", "$179.50")
        );
        assert_eq!(row.time_in_force, "GTC");
        let trailing = order(
            r#"{"symbol":"AAPL","qty":"1","type":"trailing_stop","side":"sell","time_in_force":"day","trail_percent":"2.5","status":"new"}"#,
        );
        assert_eq!(order_rows(&[trailing])[0].trail, "2.5%");
        let trailing = order(
            r#"{"symbol":"AAPL","qty":"1","type":"trailing_stop","side":"sell","time_in_force":"day","trail_price":"1","status":"new"}"#,
        );
        assert_eq!(order_rows(&[trailing])[0].trail, "$1.00");
    }

    #[test]
    fn multi_leg_orders_show_their_legs_symbols_and_unknown_values_as_sent() {
        let o = order(
            r#"{"id":"a6b2f6a3-5c4d-4f1b-9c2e-2b7a7c4f1e10","symbol":"","side":"","type":"","order_class":"mleg","qty":"1",
                "time_in_force":"day","status":"pending_review","legs":[
                {"symbol":"AAPL250117P00200000","side":"buy","ratio_qty":"1","status":"new","time_in_force":"day"},
                {"symbol":"AAPL250117P00250000","side":"sell","ratio_qty":"1","status":"new","time_in_force":"day"}]}"#,
        );
        let rows = order_rows(&[o]);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].symbol, "AAPL250117P00200000 / AAPL250117P00250000");
        assert_eq!(rows[0].side, "Multi-leg");
        assert_eq!(rows[0].order_type, "—");
        assert_eq!(rows[0].status, "Pending review");
        assert_eq!(rows[2].side, "Sell ×1");
        assert_eq!(rows[2].leg, Some("Leg"));
        let odd = order(
            r#"{"symbol":"AAPL","qty":"1","type":"pegged","side":"buy","time_in_force":"gtd","status":"new"}"#,
        );
        let row = &order_rows(&[odd])[0];
        assert_eq!(
            (row.order_type.as_str(), row.time_in_force.as_str()),
            ("pegged", "gtd")
        );
    }
}
