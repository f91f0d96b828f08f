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
