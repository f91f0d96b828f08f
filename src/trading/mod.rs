//! Trading rules, independent of HTTP: an order form's text becomes an
//! [`OrderRequest`] only if Alpaca's published rules allow it ([`form`]);
//! the asset check and the bracket's base price ([`checks`]); and the
//! single-use form token from which the order's `client_order_id` is derived,
//! so a form submitted twice is the same order to Alpaca.

pub mod checks;
pub mod form;

use crate::alpaca::{OrderClass, OrderRequest};
use crate::domain::{CredentialId, OrderType, TimeInForce};
use crate::money::money;

/// A problem with one form field: the field's name and what to do.
pub type Problem = (&'static str, String);

/// A fresh single-use token for a rendered order form (128 random bits, hex).
pub fn new_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Whether `token` looks like one [`new_token`] made.
pub fn valid_token(token: &str) -> bool {
    token.len() == 32 && token.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The `client_order_id` of the order placed with a form's `token` on
/// `credential`: the same for every submission of that form, different for
/// every form and every account, and no secret (it is only an idempotency
/// key). 36 characters, well under Alpaca's limit.
pub fn client_order_id(token: &str, credential: CredentialId) -> String {
    let mut input = b"paddock order v1\0".to_vec();
    input.extend_from_slice(credential.0.as_bytes());
    input.extend_from_slice(token.as_bytes());
    let digest = orion::hash::digest(&input)
        .map(|d| d.as_ref().to_vec())
        .unwrap_or(input);
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("pdk-{hex}")
}

/// What kind of order a request is ("Limit", "Bracket", "Stop limit with a
/// stop-loss") and what it does ("buy 3 AAPL at $101.25, good till canceled"),
/// for "{kind} order placed: {details}."
pub fn describe(request: &OrderRequest) -> (String, String) {
    let kind = match (request.order_class, &request.take_profit) {
        (OrderClass::Bracket, _) => "Bracket".to_owned(),
        (OrderClass::Oto, Some(_)) => format!("{} with a take-profit", request.order_type.label()),
        (OrderClass::Oto, None) => format!("{} with a stop-loss", request.order_type.label()),
        (OrderClass::Simple, _) => request.order_type.label().to_owned(),
    };
    let amount = match (request.qty, request.notional) {
        (Some(q), _) => q.to_string(),
        (None, Some(n)) => format!("{} of", money(n)),
        (None, None) => String::new(),
    };
    let mut details = format!("{} {amount} {}", request.side.as_str(), request.symbol);
    match (request.order_type, request.stop_price, request.limit_price) {
        (OrderType::StopLimit, Some(stop), Some(limit)) => {
            details.push_str(&format!(
                " at a stop of {} and a limit of {}",
                money(stop),
                money(limit)
            ));
        }
        (_, Some(stop), _) => details.push_str(&format!(" at a stop of {}", money(stop))),
        (_, None, Some(limit)) => details.push_str(&format!(" at {}", money(limit))),
        _ => {}
    }
    if let Some(pct) = request.trail_percent {
        details.push_str(&format!(" trailing by {}%", pct.normalize()));
    }
    if let Some(amount) = request.trail_price {
        details.push_str(&format!(" trailing by {}", money(amount)));
    }
    if let Some(tp) = &request.take_profit {
        details.push_str(&format!(", take profit at {}", money(tp.limit_price)));
    }
    if let Some(sl) = &request.stop_loss {
        details.push_str(&format!(", stop loss at {}", money(sl.stop_price)));
    }
    if request.extended_hours {
        details.push_str(", extended hours");
    }
    let tif = match request.time_in_force {
        TimeInForce::Day => "for the day",
        TimeInForce::Gtc => "good till canceled",
        TimeInForce::Ioc => "immediate or cancel",
        TimeInForce::Fok => "fill or kill",
        TimeInForce::Opg => "at the opening auction",
        TimeInForce::Cls => "at the closing auction",
    };
    details.push_str(&format!(", {tif}"));
    (kind, details)
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn the_same_form_gives_the_same_client_order_id_and_nothing_else_does() {
        let account = CredentialId(Uuid::from_u128(1));
        let other = CredentialId(Uuid::from_u128(2));
        let token = new_token();
        assert!(valid_token(&token));
        let id = client_order_id(&token, account);
        assert_eq!(id, client_order_id(&token, account));
        assert_ne!(id, client_order_id(&token, other));
        assert_ne!(id, client_order_id(&new_token(), account));
        assert_eq!(id.len(), 36);
        assert!(id.starts_with("pdk-"));
        assert!(!id.contains(&token), "the token itself is not sent");
    }

    #[test]
    fn orders_are_described_in_words() {
        use crate::alpaca::{Side, StopLoss, TakeProfit};
        let d = |s: &str| rust_decimal::Decimal::from_str_exact(s).expect("decimal");
        let limit = OrderRequest {
            symbol: "AAPL".into(),
            qty: Some(d("3")),
            notional: None,
            side: Side::Buy,
            order_type: OrderType::Limit,
            time_in_force: TimeInForce::Gtc,
            limit_price: Some(d("101.25")),
            stop_price: None,
            trail_percent: None,
            trail_price: None,
            extended_hours: false,
            client_order_id: String::new(),
            order_class: OrderClass::Simple,
            take_profit: None,
            stop_loss: None,
        };
        assert_eq!(
            describe(&limit),
            (
                "Limit".into(),
                "buy 3 AAPL at $101.25, good till canceled".into()
            )
        );
        let bracket = OrderRequest {
            order_class: OrderClass::Bracket,
            take_profit: Some(TakeProfit {
                limit_price: d("120"),
            }),
            stop_loss: Some(StopLoss {
                stop_price: d("90"),
            }),
            ..limit.clone()
        };
        assert_eq!(
            describe(&bracket).1,
            "buy 3 AAPL at $101.25, take profit at $120.00, stop loss at $90.00, good till canceled"
        );
        let trailing = OrderRequest {
            order_type: OrderType::TrailingStop,
            side: Side::Sell,
            limit_price: None,
            trail_percent: Some(d("2.5")),
            time_in_force: TimeInForce::Day,
            ..limit
        };
        assert_eq!(
            describe(&trailing),
            (
                "Trailing stop".into(),
                "sell 3 AAPL trailing by 2.5%, for the day".into()
            )
        );
    }

    #[test]
    fn tokens_must_be_what_the_form_carried() {
        assert!(!valid_token(""));
        assert!(!valid_token("not-a-token"));
        assert!(!valid_token(&"g".repeat(32)));
    }
}
