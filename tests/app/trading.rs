//! Placing orders of every type through the form: exactly the fields entered
//! reach Alpaca, Alpaca's rules refuse bad combinations beside their field
//! with nothing sent, the asset is checked, and a form is one order however
//! often it is sent.

use std::{sync::Arc, time::Duration};

use paddock::alpaca::Environment;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    credentials::{SECRET, enroll},
    helpers::{Options, Page, TestApp, Visitor, fresh_token, hidden_field},
    portfolio::seed_credential,
};

/// The order form's fields as a browser sends them: every field, blanks
/// empty, `overrides` applied.
pub fn order_fields<'a>(overrides: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut fields = vec![
        ("symbol", "AAPL"),
        ("side", "buy"),
        ("qty", ""),
        ("notional", ""),
        ("order_type", "market"),
        ("limit_price", ""),
        ("stop_price", ""),
        ("trail_percent", ""),
        ("trail_amount", ""),
        ("time_in_force", "day"),
        ("take_profit", ""),
        ("stop_loss", ""),
    ];
    for (name, value) in overrides {
        match fields.iter_mut().find(|(n, _)| n == name) {
            Some(field) => field.1 = value,
            None => fields.push((name, value)),
        }
    }
    fields
}

/// Posts the order form of account `id` with a fresh form token.
pub async fn place(v: &Visitor, id: &str, overrides: &[(&str, &str)]) -> Page {
    let token = fresh_token();
    place_with(v, id, &token, overrides).await
}

/// Posts the order form of account `id` carrying `token`.
pub async fn place_with(v: &Visitor, id: &str, token: &str, overrides: &[(&str, &str)]) -> Page {
    let mut fields = order_fields(overrides);
    fields.push(("order_token", token));
    v.post(&format!("/accounts/{id}/orders"), &fields).await
}

/// The id of the credential labelled `label`.
pub async fn account_id(app: &TestApp, label: &str) -> String {
    sqlx::query_scalar("select id::text from credentials where label = $1")
        .bind(label)
        .fetch_one(&app.admin)
        .await
        .expect("credential")
}

/// A member with one enrolled paper account: (member, account id).
pub async fn trader(app: &TestApp, key: &str) -> (Visitor, String) {
    let ada = app.owner("ada@example.com", "Club").await;
    enroll(&ada, "Main", key, SECRET, "paper").await;
    let id = account_id(app, "Main").await;
    (ada, id)
}

fn without_client_order_id(body: &Value) -> Value {
    let mut body = body.clone();
    if let Value::Object(map) = &mut body {
        let id = map.remove("client_order_id");
        let id = id.as_ref().and_then(Value::as_str).unwrap_or_default();
        assert!(
            id.len() == 36 && id.starts_with("pdk-"),
            "every order carries Paddock's client order id: {id:?}"
        );
    }
    body
}

#[tokio::test]
async fn each_order_type_reaches_alpaca_with_exactly_the_fields_entered() {
    let app = TestApp::spawn().await;
    let (ada, id) = trader(&app, "PKEVERYTYPE000000001").await;
    type Case<'a> = (Vec<(&'a str, &'a str)>, Value, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec![("qty", "2")],
            json!({"symbol":"AAPL","qty":"2","side":"buy","type":"market","time_in_force":"day"}),
            "Market order placed: buy 2 AAPL, for the day. Status: filled.",
        ),
        (
            vec![("notional", "250.50")],
            json!({"symbol":"AAPL","notional":"250.50","side":"buy","type":"market","time_in_force":"day"}),
            "Market order placed: buy $250.50 of AAPL, for the day.",
        ),
        (
            vec![("qty", "0.125")],
            json!({"symbol":"AAPL","qty":"0.125","side":"buy","type":"market","time_in_force":"day"}),
            "Market order placed: buy 0.125 AAPL",
        ),
        (
            vec![
                ("symbol", "msft"),
                ("qty", "1"),
                ("order_type", "limit"),
                ("limit_price", "123.45"),
                ("extended_hours", "yes"),
            ],
            json!({"symbol":"MSFT","qty":"1","side":"buy","type":"limit","time_in_force":"day","limit_price":"123.45","extended_hours":true}),
            "Limit order placed: buy 1 MSFT at $123.45, extended hours, for the day. Status: new.",
        ),
        (
            vec![
                ("symbol", "MSFT"),
                ("qty", "1"),
                ("order_type", "stop"),
                ("stop_price", "500"),
                ("time_in_force", "gtc"),
            ],
            json!({"symbol":"MSFT","qty":"1","side":"buy","type":"stop","time_in_force":"gtc","stop_price":"500"}),
            "Stop order placed: buy 1 MSFT at a stop of $500.00, good till canceled. Status: new.",
        ),
        (
            vec![
                ("symbol", "MSFT"),
                ("qty", "1"),
                ("order_type", "stop_limit"),
                ("stop_price", "500"),
                ("limit_price", "501.5"),
                ("time_in_force", "ioc"),
            ],
            json!({"symbol":"MSFT","qty":"1","side":"buy","type":"stop_limit","time_in_force":"ioc","stop_price":"500","limit_price":"501.5"}),
            "Stop limit order placed: buy 1 MSFT at a stop of $500.00 and a limit of $501.50, immediate or cancel.",
        ),
        (
            vec![
                ("qty", "1"),
                ("order_type", "trailing_stop"),
                ("trail_percent", "2.5"),
            ],
            json!({"symbol":"AAPL","qty":"1","side":"buy","type":"trailing_stop","time_in_force":"day","trail_percent":"2.5"}),
            "Trailing stop order placed: buy 1 AAPL trailing by 2.5%, for the day. Status: new.",
        ),
        (
            vec![
                ("qty", "1"),
                ("order_type", "trailing_stop"),
                ("trail_amount", "1.00"),
                ("time_in_force", "gtc"),
            ],
            json!({"symbol":"AAPL","qty":"1","side":"buy","type":"trailing_stop","time_in_force":"gtc","trail_price":"1.00"}),
            "Trailing stop order placed: buy 1 AAPL trailing by $1.00, good till canceled.",
        ),
        (
            vec![
                ("qty", "3"),
                ("order_type", "limit"),
                ("limit_price", "200"),
                ("take_profit", "250"),
                ("stop_loss", "150"),
                ("time_in_force", "gtc"),
            ],
            json!({"symbol":"AAPL","qty":"3","side":"buy","type":"limit","time_in_force":"gtc","limit_price":"200",
                   "order_class":"bracket","take_profit":{"limit_price":"250"},"stop_loss":{"stop_price":"150"}}),
            "Bracket order placed: buy 3 AAPL at $200.00, take profit at $250.00, stop loss at $150.00, good till canceled. Status: new.",
        ),
        (
            vec![("qty", "1"), ("stop_loss", "200")],
            json!({"symbol":"AAPL","qty":"1","side":"buy","type":"market","time_in_force":"day",
                   "order_class":"oto","stop_loss":{"stop_price":"200"}}),
            "Market with a stop-loss order placed: buy 1 AAPL, stop loss at $200.00, for the day.",
        ),
        (
            vec![
                ("symbol", "ACME"),
                ("qty", "4"),
                ("order_type", "limit"),
                ("limit_price", "45"),
                ("time_in_force", "fok"),
            ],
            json!({"symbol":"ACME","qty":"4","side":"buy","type":"limit","time_in_force":"fok","limit_price":"45"}),
            "Limit order placed: buy 4 ACME at $45.00, fill or kill. Status: filled.",
        ),
    ];
    for (i, (fields, expected, flash)) in cases.iter().enumerate() {
        let page = place(&ada, &id, fields).await;
        assert_eq!(
            page.status,
            StatusCode::SEE_OTHER,
            "{fields:?}: {}",
            page.alert()
        );
        let recorded = app.sim.order_requests();
        assert_eq!(recorded.len(), i + 1, "one request per order");
        let sent = &recorded[i];
        assert_eq!(sent.status, 200, "{fields:?}");
        assert_eq!(&without_client_order_id(&sent.body), expected, "{fields:?}");
        let shown = ada.get(&format!("/accounts/{id}")).await.status_message();
        assert!(shown.starts_with(flash), "{shown}\nexpected: {flash}");
    }
    let page = ada.get(&format!("/accounts/{id}")).await;
    let open = crate::helpers::element_text(&page.body, "<caption>Open orders");
    for shown in [
        "Trailing stop",
        "2.5%",
        "$1.00",
        "$500.00",
        "Take profit",
        "Stop loss",
    ] {
        assert!(open.contains(shown), "{shown} in open orders: {open}");
    }
    assert!(
        page.body.contains("↳ </span>Take profit"),
        "a bracket's legs are listed under it"
    );
}

#[tokio::test]
async fn every_invalid_combination_gets_422_beside_its_field_and_nothing_is_sent() {
    let app = TestApp::spawn().await;
    let (ada, id) = trader(&app, "PKINVALIDCOMBOS00001").await;
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[], "qty"),
        (&[("qty", "1"), ("notional", "100")], "notional"),
        (&[("notional", "0.50")], "notional"),
        (
            &[
                ("notional", "100"),
                ("order_type", "limit"),
                ("limit_price", "10"),
            ],
            "notional",
        ),
        (
            &[("notional", "100"), ("time_in_force", "gtc")],
            "time_in_force",
        ),
        (
            &[
                ("qty", "0.5"),
                ("order_type", "limit"),
                ("limit_price", "10"),
            ],
            "qty",
        ),
        (&[("qty", "1"), ("order_type", "limit")], "limit_price"),
        (&[("qty", "1"), ("limit_price", "10")], "limit_price"),
        (
            &[
                ("qty", "1"),
                ("order_type", "limit"),
                ("limit_price", "290.123"),
            ],
            "limit_price",
        ),
        (&[("qty", "1"), ("order_type", "stop")], "stop_price"),
        (
            &[
                ("qty", "1"),
                ("order_type", "stop_limit"),
                ("stop_price", "10"),
            ],
            "limit_price",
        ),
        (
            &[("qty", "1"), ("order_type", "trailing_stop")],
            "trail_percent",
        ),
        (
            &[
                ("qty", "1"),
                ("order_type", "trailing_stop"),
                ("trail_percent", "1"),
                ("trail_amount", "1"),
            ],
            "trail_amount",
        ),
        (
            &[
                ("qty", "1"),
                ("order_type", "trailing_stop"),
                ("trail_percent", "1"),
                ("time_in_force", "fok"),
            ],
            "time_in_force",
        ),
        (&[("qty", "1"), ("trail_percent", "1")], "trail_percent"),
        (&[("qty", "1"), ("extended_hours", "yes")], "extended_hours"),
        (
            &[
                ("qty", "1"),
                ("order_type", "limit"),
                ("limit_price", "10"),
                ("time_in_force", "gtc"),
                ("extended_hours", "yes"),
            ],
            "extended_hours",
        ),
        (
            &[("qty", "1"), ("take_profit", "250"), ("stop_loss", "260")],
            "stop_loss",
        ),
        (
            &[
                ("qty", "1"),
                ("order_type", "limit"),
                ("limit_price", "200"),
                ("take_profit", "199"),
            ],
            "take_profit",
        ),
        (
            &[
                ("qty", "1"),
                ("order_type", "limit"),
                ("limit_price", "200"),
                ("side", "sell"),
                ("stop_loss", "199"),
            ],
            "stop_loss",
        ),
        (
            &[
                ("qty", "1"),
                ("order_type", "stop"),
                ("stop_price", "300"),
                ("take_profit", "350"),
            ],
            "take_profit",
        ),
        (&[("qty", "1.5"), ("stop_loss", "100")], "qty"),
        (
            &[
                ("qty", "1"),
                ("take_profit", "300"),
                ("stop_loss", "100"),
                ("time_in_force", "ioc"),
            ],
            "time_in_force",
        ),
        (&[("qty", "1"), ("symbol", "AAPL; DROP")], "symbol"),
        (&[("qty", "1"), ("order_type", "iceberg")], "order_type"),
        (&[("qty", "1"), ("time_in_force", "opg")], "time_in_force"),
        (&[("qty", "-2")], "qty"),
    ];
    for (fields, field) in cases {
        let page = place(&ada, &id, fields).await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{fields:?}");
        assert!(
            page.body.contains(&format!("id=\"{field}-error\"")),
            "{fields:?} should be refused beside {field}: {}",
            crate::helpers::strip_tags(&page.body)
        );
        assert!(
            page.alert().contains("Nothing was sent to Alpaca"),
            "{}",
            page.alert()
        );
        let typed = [
            "qty",
            "notional",
            "limit_price",
            "stop_price",
            "trail_percent",
            "trail_amount",
            "take_profit",
            "stop_loss",
        ];
        for (name, value) in fields.iter().filter(|(n, _)| typed.contains(n)) {
            assert!(
                page.body.contains(&format!("value=\"{value}\""))
                    || page.body.contains(&format!("value=\"{value}\" selected")),
                "the input {name}={value} is kept"
            );
        }
    }
    assert!(
        app.sim.order_requests().is_empty(),
        "nothing reached Alpaca"
    );
}

#[tokio::test]
async fn the_asset_is_checked_before_sending_and_remembered() {
    let app = TestApp::spawn().await;
    let (ada, id) = trader(&app, "PKASSETCHECK00000001").await;
    for (fields, field, reason) in [
        (
            vec![("symbol", "ZZZZ"), ("qty", "1")],
            "symbol",
            "Alpaca does not know the symbol ZZZZ.",
        ),
        (
            vec![("symbol", "LEHMQ"), ("qty", "1")],
            "symbol",
            "LEHMQ cannot be traded on Alpaca right now",
        ),
        (
            vec![("symbol", "ACME"), ("qty", "1.5")],
            "qty",
            "ACME trades in whole shares only",
        ),
        (
            vec![("symbol", "ACME"), ("notional", "100")],
            "notional",
            "ACME trades in whole shares only",
        ),
    ] {
        let page = place(&ada, &id, &fields).await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{fields:?}");
        let beside = crate::helpers::element_text(&page.body, &format!("id=\"{field}-error\""));
        assert!(beside.contains(reason), "{fields:?}: {beside}");
    }
    assert!(app.sim.order_requests().is_empty());
    for _ in 0..2 {
        let page = place(&ada, &id, &[("symbol", "SPY"), ("qty", "1")]).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER);
    }
    assert_eq!(
        app.sim.calls("GET", "/v2/assets/SPY"),
        1,
        "the asset is asked for once"
    );
    assert_eq!(app.sim.order_requests().len(), 2);
}

#[tokio::test]
async fn a_form_sent_twice_places_one_order_and_shows_the_first() {
    let app = TestApp::spawn().await;
    let (ada, id) = trader(&app, "PKTWICESENT000000001").await;
    let page = ada.get(&format!("/accounts/{id}")).await;
    let token = hidden_field(&page.body, "order_token").expect("the form carries a token");
    let order = [
        ("qty", "2"),
        ("order_type", "limit"),
        ("limit_price", "100"),
    ];
    let first = place_with(&ada, &id, &token, &order).await;
    assert_eq!(first.status, StatusCode::SEE_OTHER);
    ada.get(&format!("/accounts/{id}")).await;
    let second = place_with(&ada, &id, &token, &order).await;
    assert_eq!(second.status, StatusCode::SEE_OTHER, "{}", second.alert());
    let shown = ada.get(&format!("/accounts/{id}")).await;
    let orders = &app
        .sim
        .account("PKTWICESENT000000001")
        .expect("state")
        .orders;
    assert_eq!(orders.len(), 1, "one order at Alpaca");
    assert!(
        shown.status_message().starts_with("This order form was sent more than once; Alpaca has it once. Limit order placed: buy 2 AAPL at $100.00"),
        "{}",
        shown.status_message()
    );
    assert!(shown.status_message().contains(&orders[0].id.to_string()));
    let fresh = hidden_field(&shown.body, "order_token").expect("token");
    assert_ne!(fresh, token, "every rendered form has its own token");
}

#[tokio::test]
async fn two_concurrent_submissions_of_one_form_place_one_order() {
    let app = TestApp::spawn().await;
    let (ada, id) = trader(&app, "PKCONCURRENT00000001").await;
    let ada = Arc::new(ada);
    let token = fresh_token();
    let clicks: Vec<_> = (0..4)
        .map(|_| {
            let (ada, id, token) = (ada.clone(), id.clone(), token.clone());
            tokio::spawn(async move {
                place_with(&ada, &id, &token, &[("symbol", "SPY"), ("qty", "1")]).await
            })
        })
        .collect();
    for click in clicks {
        let page = click.await.expect("submission");
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.alert());
    }
    let state = app.sim.account("PKCONCURRENT00000001").expect("state");
    assert_eq!(state.orders.len(), 1, "exactly one order");
    assert_eq!(
        app.sim
            .order_requests()
            .iter()
            .filter(|r| r.status == 200)
            .count(),
        1
    );
}

fn quick_app() -> Options {
    Options {
        request_timeout: Duration::from_millis(600),
        ..Options::default()
    }
}

#[tokio::test]
async fn an_answer_that_never_comes_is_looked_up_before_anything_is_said() {
    let app = TestApp::spawn_with(quick_app()).await;
    let ada = app.owner("ada@example.com", "Club").await;
    seed_credential(
        &app,
        "ada@example.com",
        "Lossy",
        "PKLOSTANSWERS000LOST",
        Environment::Paper,
    )
    .await;
    let id = account_id(&app, "Lossy").await;
    let token = fresh_token();
    let page = place_with(&ada, &id, &token, &[("qty", "1")]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let shown = ada.get(&format!("/accounts/{id}")).await.status_message();
    assert!(
        shown.starts_with("Alpaca answered late, but it has the order. Market order placed"),
        "{shown}"
    );
    let retry = place_with(&ada, &id, &token, &[("qty", "1")]).await;
    assert_eq!(retry.status, StatusCode::SEE_OTHER);
    assert_eq!(
        app.sim
            .account("PKLOSTANSWERS000LOST")
            .expect("state")
            .orders
            .len(),
        1
    );
}

#[tokio::test]
async fn a_time_out_then_a_retry_places_one_order_and_says_so_honestly() {
    let app = TestApp::spawn_with(quick_app()).await;
    let ada = app.owner("ada@example.com", "Club").await;
    seed_credential(
        &app,
        "ada@example.com",
        "Dark",
        "PKDARKALPACA0000DARK",
        Environment::Paper,
    )
    .await;
    let id = account_id(&app, "Dark").await;
    let token = fresh_token();
    let page = place_with(
        &ada,
        &id,
        &token,
        &[
            ("qty", "1"),
            ("order_type", "limit"),
            ("limit_price", "100"),
        ],
    )
    .await;
    assert_eq!(page.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        page.alert(),
        "Paddock could not confirm this order with Alpaca — check Open orders before trying again"
    );
    assert_eq!(
        hidden_field(&page.body, "order_token").as_deref(),
        Some(token.as_str()),
        "pressing Place order again is the same order"
    );
    assert!(page.body.contains("value=\"100\""), "the order is kept");
    let retry = place_with(
        &ada,
        &id,
        &token,
        &[
            ("qty", "1"),
            ("order_type", "limit"),
            ("limit_price", "100"),
        ],
    )
    .await;
    assert!(
        retry.alert().contains("could not confirm"),
        "{}",
        retry.alert()
    );
    let state = app.sim.account("PKDARKALPACA0000DARK").expect("state");
    assert_eq!(state.orders.len(), 1, "the retry placed nothing new");
    assert_eq!(app.sim.order_requests().len(), 2);
    let open = ada.get(&format!("/accounts/{id}")).await;
    assert!(
        crate::helpers::element_text(&open.body, "<caption>Open orders").contains("$100.00"),
        "Open orders shows the order"
    );
}

#[tokio::test]
async fn an_order_form_without_its_token_is_refused_and_comes_back_with_one() {
    let app = TestApp::spawn().await;
    let (ada, id) = trader(&app, "PKNOTOKEN00000000001").await;
    let page = ada
        .post(
            &format!("/accounts/{id}/orders"),
            &order_fields(&[("qty", "1")]),
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        page.alert().contains("Nothing was sent"),
        "{}",
        page.alert()
    );
    let token = hidden_field(&page.body, "order_token").expect("a token");
    assert!(paddock::trading::valid_token(&token));
    assert!(app.sim.order_requests().is_empty());
}
