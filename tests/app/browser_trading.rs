//! Trading in a real browser, with JavaScript on and off: a bracket order
//! placed with an impatient double click (one order), then part of a
//! position closed through its confirmation page.

use crate::{
    browser::{Browser, table_rows},
    helpers::TestApp,
};

const SECRET: &str = "browsersecret00000000000000000000000001";

async fn bracket_order_and_position_close(javascript: bool) {
    let app = TestApp::spawn().await;
    let key = "PKBROWSERTRADER00001";
    let browser = Browser::launch(&app).await;
    if !javascript {
        browser.disable_javascript().await;
    }
    let shot = |name: &str| format!("{name}-{}", if javascript { "js" } else { "nojs" });
    browser.sign_up_owner("ada@example.com", "Club").await;
    browser.goto("/credentials/new").await;
    browser.fill("Label", "Main").await;
    browser.fill("API key ID", key).await;
    browser.fill("Secret key", SECRET).await;
    browser.click_button("Save credential").await;
    browser.assert_path("/credentials").await;
    browser.click_link("Portfolio").await;
    browser.click_link("Main").await;
    let account = browser.current_path().await;
    assert!(account.starts_with("/accounts/"), "{account}");
    let text = browser.text().await;
    assert!(
        text.contains("Market open") || text.contains("Market closed · opens"),
        "the clock is shown"
    );

    browser.fill("Symbol", "aapl").await;
    browser.fill("Quantity", "2").await;
    browser.fill("Order type", "Limit").await;
    browser.fill("Limit price", "200").await;
    browser.fill("Take-profit price", "250").await;
    browser.fill("Stop-loss price", "150").await;
    browser.fill("Time in force", "GTC").await;
    browser.screenshot(&shot("bracket-form")).await;
    browser.double_click_button("Place order").await;
    browser.assert_path(&account).await;
    browser.screenshot(&shot("bracket-placed")).await;
    let status = browser.text_of("[role=status]").await.unwrap_or_default();
    assert!(
        status.contains("buy 2 AAPL at $200.00, take profit at $250.00, stop loss at $150.00, good till canceled"),
        "{status}\n{}",
        browser.text().await
    );
    let state = app.sim.account(key).expect("state");
    let entries: Vec<_> = state.orders.iter().filter(|o| o.parent.is_none()).collect();
    assert_eq!(entries.len(), 1, "a double click is one order");
    assert_eq!(state.orders.len(), 3, "the entry and its two exits");
    let sent = app
        .sim
        .order_requests()
        .into_iter()
        .find(|r| r.status == 200)
        .expect("sent");
    assert_eq!(sent.field("order_class").as_deref(), Some("bracket"));
    assert_eq!(
        sent.field("take_profit.limit_price").as_deref(),
        Some("250")
    );
    assert_eq!(sent.field("stop_loss.stop_price").as_deref(), Some("150"));
    let rows = table_rows(&browser.html().await, "Open orders");
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(
        rows[1][0].contains("Take profit") && rows[1][5] == "$250.00",
        "{rows:?}"
    );
    assert!(
        rows[2][0].contains("Stop loss") && rows[2][6] == "$150.00",
        "{rows:?}"
    );

    let held = state.positions[0].clone();
    browser.click_button("Close").await;
    let confirm = browser.current_path().await;
    assert_eq!(
        confirm.trim_end_matches('?'),
        format!("{account}/positions/{}/close", held.symbol),
        "a GET form may leave an empty query"
    );
    browser.fill("Quantity to close", "1").await;
    browser.screenshot(&shot("close-confirm")).await;
    browser.click_button("Close position").await;
    browser.assert_path(&account).await;
    browser.screenshot(&shot("closed")).await;
    let status = browser.text_of("[role=status]").await.unwrap_or_default();
    assert!(
        status.starts_with(&format!("Closing 1 of {}", held.symbol)),
        "{status}"
    );
    assert_eq!(
        app.sim.account(key).expect("state").qty_held(&held.symbol),
        held.qty - rust_decimal::Decimal::ONE
    );
    browser.close().await;
}

#[tokio::test]
async fn a_bracket_order_and_a_position_close_work_in_the_browser() {
    bracket_order_and_position_close(true).await;
}

#[tokio::test]
async fn a_bracket_order_and_a_position_close_work_without_javascript() {
    bracket_order_and_position_close(false).await;
}
