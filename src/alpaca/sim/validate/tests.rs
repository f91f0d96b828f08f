use super::*;
use serde_json::json;

fn check(body: Value) -> Result<NewOrder, String> {
    validate(&body, data::price).map_err(|r| r.message)
}

fn market(extra: Value) -> Value {
    let mut body =
        json!({"symbol":"AAPL","side":"buy","type":"market","time_in_force":"day","qty":"1"});
    if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
        b.extend(e);
    }
    body
}

#[test]
fn alpacas_documented_refusals() {
    let cases = [
        (
            market(json!({"notional":"5"})),
            "only one of qty or notional may be given",
        ),
        (
            market(json!({"qty":null,"notional":"0.5"})),
            "notional must be at least 1.00",
        ),
        (
            market(json!({"symbol":"ACME","qty":"1.5"})),
            "requested asset is not fractionable",
        ),
        (
            market(json!({"symbol":"LEHMQ"})),
            "asset \"LEHMQ\" is not tradable",
        ),
        (market(json!({"symbol":"ZZZZ"})), "asset \"ZZZZ\" not found"),
        (
            market(json!({"type":"limit","limit_price":"290.123"})),
            "invalid limit_price 290.123. sub-penny increment does not fulfill minimum pricing criteria",
        ),
        (
            market(json!({"type":"limit","limit_price":"0.12345"})),
            "invalid limit_price 0.12345. sub-penny increment does not fulfill minimum pricing criteria",
        ),
        (
            market(json!({"type":"stop_limit","stop_price":"1"})),
            "stop_limit orders require limit_price and stop_price",
        ),
        (
            market(json!({"type":"trailing_stop","trail_price":"1","trail_percent":"1"})),
            "trailing_stop orders require exactly one of trail_price or trail_percent",
        ),
        (
            market(json!({"type":"trailing_stop","trail_price":"1","time_in_force":"ioc"})),
            "trailing_stop orders must be day or gtc",
        ),
        (
            market(json!({"extended_hours":true})),
            "extended hours order must be DAY limit orders",
        ),
        (
            market(json!({"qty":"0.5","time_in_force":"gtc"})),
            "fractional and notional orders must be market orders with time_in_force day",
        ),
        (
            market(json!({"order_class":"bracket","take_profit":{"limit_price":"300"}})),
            "bracket orders require take_profit and stop_loss",
        ),
        (
            market(
                json!({"order_class":"bracket","take_profit":{"limit_price":"200"},"stop_loss":{"stop_price":"210"}}),
            ),
            "take_profit.limit_price must be greater than stop_loss.stop_price",
        ),
        (
            market(
                json!({"order_class":"bracket","take_profit":{"limit_price":"227"},"stop_loss":{"stop_price":"200"}}),
            ),
            "take_profit.limit_price must be >= base_price + 0.01",
        ),
        (
            market(
                json!({"order_class":"oto","type":"limit","limit_price":"100","stop_loss":{"stop_price":"100"}}),
            ),
            "stop_loss.stop_price must be <= base_price - 0.01",
        ),
        (
            market(
                json!({"order_class":"bracket","time_in_force":"ioc","take_profit":{"limit_price":"300"},"stop_loss":{"stop_price":"200"}}),
            ),
            "bracket orders must be day or gtc",
        ),
    ];
    for (body, message) in cases {
        assert_eq!(check(body.clone()), Err(message.to_owned()), "{body}");
    }
}

#[test]
fn well_formed_orders_of_every_type_pass() {
    for body in [
        market(json!({})),
        market(json!({"qty":null,"notional":"500.75"})),
        market(json!({"qty":"0.123456789"})),
        market(json!({"type":"limit","limit_price":"0.1234","extended_hours":true})),
        market(json!({"type":"stop","stop_price":"250","time_in_force":"gtc"})),
        market(json!({"type":"stop_limit","stop_price":"250","limit_price":"251.5"})),
        market(json!({"type":"trailing_stop","trail_percent":"2.5","side":"sell"})),
        market(
            json!({"order_class":"bracket","take_profit":{"limit_price":"300"},"stop_loss":{"stop_price":"200"}}),
        ),
        market(
            json!({"order_class":"oto","side":"sell","type":"limit","limit_price":"230","stop_loss":{"stop_price":"240"}}),
        ),
    ] {
        assert!(
            check(body.clone()).is_ok(),
            "{body}: {:?}",
            check(body.clone())
        );
    }
}
