//! Checks that need Alpaca's answers: the asset (`GET /v2/assets/{symbol}`)
//! and, for a market order with exits, the last price the account knows.
//! Also where Alpaca's own refusals belong on the form.

use rust_decimal::Decimal;

use super::Problem;
use super::form::against_entry;
use crate::alpaca::{Asset, OrderClass, OrderRequest, OrderType, Position};

/// Whether `request` can be sent for `asset` (`None`: Alpaca does not know the symbol).
pub fn asset(request: &OrderRequest, asset: Option<&Asset>) -> Result<(), Problem> {
    let symbol = &request.symbol;
    let Some(asset) = asset else {
        return Err((
            "symbol",
            format!("Alpaca does not know the symbol {symbol}."),
        ));
    };
    if !asset.is_tradable() {
        return Err((
            "symbol",
            format!(
                "{symbol} cannot be traded on Alpaca right now (it is inactive or not tradable)."
            ),
        ));
    }
    let fraction = request.qty.is_some_and(|q| !q.fract().is_zero());
    if !asset.fractionable && (fraction || request.notional.is_some()) {
        let field = if request.notional.is_some() {
            "notional"
        } else {
            "qty"
        };
        return Err((
            field,
            format!("{symbol} trades in whole shares only: enter a whole number of shares."),
        ));
    }
    Ok(())
}

/// Whether the exits of a market order must be checked against a last price.
pub fn needs_last_price(request: &OrderRequest) -> bool {
    request.order_type == OrderType::Market && request.order_class != OrderClass::Simple
}

/// The last price of the symbol among the account's positions, if it holds it.
pub fn last_price(request: &OrderRequest, positions: &[Position]) -> Option<Decimal> {
    positions
        .iter()
        .find(|p| p.symbol.eq_ignore_ascii_case(&request.symbol))
        .and_then(|p| p.current_price)
}

/// The exits of a market order against the last price.
pub fn exits_against(request: &OrderRequest, last: Decimal) -> Result<(), Problem> {
    against_entry(
        request.side,
        last,
        "the last price",
        request.take_profit.as_ref().map(|t| t.limit_price),
        request.stop_loss.as_ref().map(|s| s.stop_price),
    )
}

/// The form field an Alpaca refusal is about, judged by the fields it names.
pub fn field_of_refusal(message: &str) -> Option<&'static str> {
    let m = message.to_ascii_lowercase();
    [
        ("take_profit", "take_profit"),
        ("stop_loss", "stop_loss"),
        ("trail_percent", "trail_percent"),
        ("trail_price", "trail_amount"),
        ("limit_price", "limit_price"),
        ("stop_price", "stop_price"),
        ("notional", "notional"),
        ("fractionable", "qty"),
        ("qty", "qty"),
        ("time_in_force", "time_in_force"),
        ("extended hours", "extended_hours"),
        ("asset", "symbol"),
        ("symbol", "symbol"),
    ]
    .into_iter()
    .find(|(needle, _)| m.contains(needle))
    .map(|(_, field)| field)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alpaca::{Side, TimeInForce};

    fn d(s: &str) -> Decimal {
        Decimal::from_str_exact(s).expect("decimal")
    }

    fn request(qty: Option<&str>, notional: Option<&str>) -> OrderRequest {
        OrderRequest {
            symbol: "ACME".into(),
            qty: qty.map(d),
            notional: notional.map(d),
            side: Side::Buy,
            order_type: OrderType::Market,
            time_in_force: TimeInForce::Day,
            limit_price: None,
            stop_price: None,
            trail_percent: None,
            trail_price: None,
            extended_hours: false,
            client_order_id: String::new(),
            order_class: OrderClass::Simple,
            take_profit: None,
            stop_loss: None,
        }
    }

    #[test]
    fn unknown_untradable_and_whole_share_assets_are_refused_with_the_reason() {
        let tradable = Asset {
            symbol: "ACME".into(),
            status: "active".into(),
            tradable: true,
            fractionable: false,
            ..Asset::default()
        };
        assert_eq!(
            asset(&request(Some("1"), None), None)
                .expect_err("unknown")
                .0,
            "symbol"
        );
        let inactive = Asset {
            status: "inactive".into(),
            ..tradable.clone()
        };
        assert!(asset(&request(Some("1"), None), Some(&inactive)).is_err());
        assert_eq!(
            asset(&request(Some("1.5"), None), Some(&tradable)).expect_err("fraction"),
            (
                "qty",
                "ACME trades in whole shares only: enter a whole number of shares.".into()
            )
        );
        assert_eq!(
            asset(&request(None, Some("10")), Some(&tradable))
                .expect_err("notional")
                .0,
            "notional"
        );
        assert!(asset(&request(Some("2"), None), Some(&tradable)).is_ok());
    }

    #[test]
    fn alpacas_refusals_land_beside_the_field_they_name() {
        assert_eq!(
            field_of_refusal("take_profit.limit_price must be >= base_price + 0.01"),
            Some("take_profit")
        );
        assert_eq!(
            field_of_refusal("invalid limit_price 290.123. sub-penny increment"),
            Some("limit_price")
        );
        assert_eq!(
            field_of_refusal("requested asset is not fractionable"),
            Some("qty")
        );
        assert_eq!(field_of_refusal("insufficient buying power"), None);
    }
}
