//! Positions and account actions behind confirmation pages, the account's
//! activity with its CSV, the market clock, and the real-world payloads that
//! must not cost an account its page.

use std::{collections::BTreeSet, str::FromStr};

use paddock::{
    alpaca::{Environment, MAX_BODY_BYTES, sim::UNPRICED},
    money::money,
};
use reqwest::StatusCode;
use rust_decimal::Decimal;

use crate::{
    credentials::{SECRET, enroll},
    helpers::{TestApp, Visitor, element_text, hidden_field, strip_tags},
    portfolio::seed_credential,
    trading::{account_id, place, trader},
};

const UNREADABLE: &str = "Alpaca sent a response Paddock could not read";

fn dd(body: &str, term: &str) -> String {
    let marker = format!("<dt>{term}</dt><dd");
    let start = body
        .find(&marker)
        .unwrap_or_else(|| panic!("no <dt>{term}</dt>"));
    element_text(&body[start + marker.len() - 3..], "<dd")
}

/// Opens a confirmation page and returns its token.
pub async fn confirmation(v: &Visitor, path: &str, button: &str) -> String {
    let page = v.get(path).await;
    assert_eq!(page.status, StatusCode::OK, "{path}");
    assert!(
        page.body.contains(&format!(">{button}</button>")),
        "{path} has {button}"
    );
    hidden_field(&page.body, "action_token").expect("a confirmation token")
}

#[tokio::test]
async fn closing_a_position_sells_what_was_asked_once() {
    let app = TestApp::spawn().await;
    let key = "PKCLOSEPOSITION00001";
    let (ada, id) = trader(&app, key).await;
    let held = app.sim.account(key).expect("state").positions[0].clone();
    let page = ada.get(&format!("/accounts/{id}")).await;
    let close_path = format!("/accounts/{id}/positions/{}/close", held.symbol);
    assert!(
        page.body.contains(&format!("action=\"{close_path}\"")),
        "a Close button per position"
    );

    let form = ada.get(&close_path).await;
    assert!(
        form.body
            .contains("<label for=\"qty\">Quantity to close</label>")
    );
    assert!(
        !form.body.contains("I confirm this live order"),
        "paper needs no live confirmation"
    );
    let token = hidden_field(&form.body, "action_token").expect("token");
    let bad = ada
        .post(&close_path, &[("qty", "-1"), ("action_token", &token)])
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("id=\"qty-error\""));
    assert_eq!(
        app.sim.account(key).expect("state").qty_held(&held.symbol),
        held.qty
    );

    let done = ada
        .post(&close_path, &[("qty", "1"), ("action_token", &token)])
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.alert());
    let shown = ada.get(&format!("/accounts/{id}")).await.status_message();
    assert!(
        shown.starts_with(&format!(
            "Closing 1 of {}: Alpaca placed a market sell order. Status: filled.",
            held.symbol
        )),
        "{shown}"
    );
    let again = ada
        .post(&close_path, &[("qty", "1"), ("action_token", &token)])
        .await;
    assert_eq!(again.status, StatusCode::SEE_OTHER);
    assert!(
        ada.get(&format!("/accounts/{id}"))
            .await
            .status_message()
            .contains("already sent")
    );
    assert_eq!(
        app.sim.account(key).expect("state").qty_held(&held.symbol),
        held.qty - Decimal::ONE,
        "the second submission sold nothing"
    );

    let token = confirmation(&ada, &close_path, "Close position").await;
    let all = ada
        .post(&close_path, &[("qty", ""), ("action_token", &token)])
        .await;
    assert_eq!(all.status, StatusCode::SEE_OTHER);
    assert!(
        app.sim
            .account(key)
            .expect("state")
            .qty_held(&held.symbol)
            .is_zero()
    );
    let token = confirmation(&ada, &close_path, "Close position").await;
    let gone = ada
        .post(&close_path, &[("qty", ""), ("action_token", &token)])
        .await;
    assert_eq!(gone.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(gone.alert().contains("no"), "{}", gone.alert());
}

#[tokio::test]
async fn cancel_all_and_close_all_act_after_their_confirmation_pages() {
    let app = TestApp::spawn().await;
    let key = "PKCANCELANDCLOSE0001";
    let (ada, id) = trader(&app, key).await;
    for price in ["100", "101"] {
        let page = place(
            &ada,
            &id,
            &[
                ("symbol", "SPY"),
                ("qty", "1"),
                ("order_type", "limit"),
                ("limit_price", price),
                ("time_in_force", "gtc"),
            ],
        )
        .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER);
    }
    let account = ada.get(&format!("/accounts/{id}")).await;
    for button in ["Cancel all orders", "Close all positions"] {
        assert!(
            account.body.contains(&format!(">{button}</button>")),
            "{button}"
        );
    }
    let cancel_path = format!("/accounts/{id}/orders/cancel-all");
    let token = confirmation(&ada, &cancel_path, "Cancel all orders").await;
    assert!(
        app.sim
            .account(key)
            .expect("state")
            .orders
            .iter()
            .all(|o| o.is_open()),
        "the page changed nothing"
    );
    let done = ada.post(&cancel_path, &[("action_token", &token)]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    let shown = ada.get(&format!("/accounts/{id}")).await;
    assert_eq!(shown.status_message(), "Alpaca is canceling 2 open orders.");
    assert!(element_text(&shown.body, "<caption>Open orders").contains("No open orders."));

    let close_path = format!("/accounts/{id}/positions/close-all");
    let token = confirmation(&ada, &close_path, "Close all positions").await;
    let held = app.sim.account(key).expect("state").positions.len();
    let done = ada.post(&close_path, &[("action_token", &token)]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    let shown = ada.get(&format!("/accounts/{id}")).await;
    assert!(
        shown
            .status_message()
            .contains(&format!("Alpaca is closing {held} positions")),
        "{}",
        shown.status_message()
    );
    assert!(app.sim.account(key).expect("state").positions.is_empty());
    assert!(element_text(&shown.body, "<caption>Positions").contains("No positions."));
}

#[tokio::test]
async fn live_account_actions_need_the_live_confirmation() {
    let app = TestApp::spawn().await;
    let ada = app.owner("ada@example.com", "Club").await;
    let key = "AKLIVEACTIONS0000001";
    enroll(&ada, "Live", key, SECRET, "live").await;
    let id = account_id(&app, "Live").await;
    let symbol = app.sim.account(key).expect("state").positions[0]
        .symbol
        .clone();
    let pages = [
        (
            format!("/accounts/{id}/positions/{symbol}/close"),
            "Close position",
        ),
        (
            format!("/accounts/{id}/orders/cancel-all"),
            "Cancel all orders",
        ),
        (
            format!("/accounts/{id}/positions/close-all"),
            "Close all positions",
        ),
    ];
    for (path, button) in &pages {
        let token = confirmation(&ada, path, button).await;
        assert!(
            ada.get(path)
                .await
                .body
                .contains("I confirm this live order")
        );
        let refused = ada.post(path, &[("action_token", &token)]).await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{path}");
        assert!(refused.body.contains("id=\"confirm_live-error\""));
    }
    let before = app.sim.request_count();
    let state = app.sim.account(key).expect("state");
    assert!(state.orders.is_empty(), "nothing was sent");
    let (path, _) = &pages[0];
    let token = confirmation(&ada, path, "Close position").await;
    let done = ada
        .post(path, &[("action_token", &token), ("confirm_live", "yes")])
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.alert());
    assert!(app.sim.request_count() > before);
    assert!(
        app.sim
            .account(key)
            .expect("state")
            .qty_held(&symbol)
            .is_zero()
    );
}

#[tokio::test]
async fn history_pages_through_every_activity_and_the_csv_has_them_all_exactly() {
    let app = TestApp::spawn().await;
    let key = "PKHISTORIAN000000001";
    let (ada, id) = trader(&app, key).await;
    let page = place(&ada, &id, &[("symbol", "AAPL"), ("qty", "0.125")]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let expected = app.sim.account(key).expect("state").activities.len();
    assert!(expected > 50, "enough activity for two pages: {expected}");

    let mut seen = Vec::new();
    let mut path = format!("/accounts/{id}/history");
    for _ in 0..10 {
        let page = ada.get(&path).await;
        assert_eq!(page.status, StatusCode::OK);
        let table = element_text(&page.body, "<caption>Account activity");
        for column in ["Date", "Type", "Symbol", "Quantity", "Price", "Amount"] {
            assert!(table.contains(column), "{column}");
        }
        let rows = page.body.matches("<tr><td>").count();
        assert!(rows <= 50);
        seen.push(rows);
        match page.body.find(">Older</a>") {
            Some(end) => {
                let start = page.body[..end].rfind("href=\"").expect("link") + 6;
                path = page.body[start..end - 1].replace("&amp;", "&");
            }
            None => break,
        }
    }
    assert_eq!(
        seen.iter().sum::<usize>(),
        expected,
        "every activity once: {seen:?}"
    );
    assert_eq!(seen[0], 50);

    let first = ada.get(&format!("/accounts/{id}/history")).await;
    assert!(
        strip_tags(&first.body).contains("Buy (fill) AAPL 0.125 $227.52 -$28.44"),
        "the newest fill comes first"
    );

    let csv = ada
        .http
        .get(format!("{}/accounts/{id}/history.csv", ada.base))
        .send()
        .await
        .expect("csv");
    assert_eq!(csv.status(), StatusCode::OK);
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .expect("type")
            .starts_with("text/csv")
    );
    assert!(
        csv.headers()["content-disposition"]
            .to_str()
            .expect("name")
            .contains(".csv")
    );
    let text = csv.text().await.expect("body");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "Date,Type,Symbol,Side,Quantity,Price,Amount,Description,Activity ID"
    );
    assert_eq!(lines.len(), expected + 1, "a header and every activity");
    let ids: BTreeSet<&str> = lines[1..]
        .iter()
        .map(|l| l.rsplit(',').next().unwrap_or(""))
        .collect();
    assert_eq!(ids.len(), expected, "no activity twice");
    let newest: Vec<&str> = lines[1].split(',').collect();
    assert_eq!(
        &newest[1..7],
        ["Buy (fill)", "AAPL", "buy", "0.125", "227.52", "-28.44000"]
    );
    let state = app.sim.account(key).expect("state");
    let deposit = lines
        .iter()
        .find(|l| l.contains(",Deposit,"))
        .expect("the first deposit");
    let amount = Decimal::from_str(deposit.split(',').nth(6).expect("amount")).expect("decimal");
    let cost: Decimal = state
        .positions
        .iter()
        .map(|h| (h.qty * h.avg_entry_price).round_dp(2))
        .sum();
    assert!(
        amount > cost,
        "the deposit paid for the positions: {amount}"
    );
}

#[tokio::test]
async fn a_position_alpaca_cannot_price_leaves_the_rest_of_the_account_intact() {
    let app = TestApp::spawn().await;
    let key = "PKNOPRICEACCOUNT0001";
    let (ada, id) = trader(&app, key).await;
    let state = app.sim.account(key).expect("state");
    for path in [format!("/accounts/{id}"), "/portfolio".to_owned()] {
        let page = ada.get(&path).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.alert().is_empty(), "{path}: {}", page.alert());
        assert_eq!(dd(&page.body, "Equity"), money(state.equity()), "{path}");
        assert_eq!(dd(&page.body, "Cash"), money(state.cash));
        let table = element_text(&page.body, "<caption>Positions");
        assert!(
            table.contains(&format!("{UNPRICED} 100 $3.25 — — —")),
            "{table}"
        );
        for h in state.positions.iter().filter(|h| h.symbol != UNPRICED) {
            assert!(
                table.contains(&money(
                    h.qty * paddock::alpaca::sim::price(&h.symbol).expect("price")
                )),
                "{}",
                h.symbol
            );
        }
        assert!(strip_tags(&page.body).contains("Alpaca sent no current price for LEHMQ"));
        assert!(
            page.body.contains("class=\"line\" d=\"M"),
            "the chart is drawn"
        );
    }
}

#[tokio::test]
async fn numbers_sent_as_strings_enroll_and_show_the_same_account() {
    let app = TestApp::spawn().await;
    let ada = app.owner("ada@example.com", "Club").await;
    enroll(&ada, "Strings", "PKSTRINGSACCOUNTSTRS", SECRET, "paper").await;
    let state = app.sim.account("PKSTRINGSACCOUNTSTRS").expect("state");
    let page = ada.get("/portfolio").await;
    assert!(page.alert().is_empty(), "{}", page.alert());
    assert_eq!(dd(&page.body, "Equity"), money(state.equity()));
    assert!(page.body.contains(&state.account_number));
    assert!(
        page.body.contains("class=\"line\" d=\"M"),
        "the chart reads string numbers too"
    );
}

#[tokio::test]
async fn an_unreadable_body_says_so_instead_of_unavailable() {
    let app = TestApp::spawn().await;
    let ada = app.owner("ada@example.com", "Club").await;
    let enrolled = ada
        .post(
            "/credentials",
            &[
                ("label", "Junk"),
                ("environment", "paper"),
                ("api_key_id", "PKJUNKBODIES0000JUNK"),
                ("secret_key", SECRET),
            ],
        )
        .await;
    assert!(
        enrolled.alert().contains(UNREADABLE),
        "{}",
        enrolled.alert()
    );
    assert!(
        !enrolled.alert().contains("try again"),
        "retrying would not help"
    );
    enroll(&ada, "Healthy", "PKHEALTHYACCOUNT0001", SECRET, "paper").await;
    seed_credential(
        &app,
        "ada@example.com",
        "Junk",
        "PKJUNKBODIES0000JUNK",
        Environment::Paper,
    )
    .await;
    seed_credential(
        &app,
        "ada@example.com",
        "Huge",
        "PKHUGEBODIES0000HUGE",
        Environment::Paper,
    )
    .await;
    let page = ada.get("/portfolio").await;
    assert_eq!(page.status, StatusCode::OK);
    for label in ["Junk", "Huge"] {
        let start = page.body.find(&format!(">{label}</a>")).expect(label);
        let card = &page.body[start..];
        let card = &card[..card.find("</li>").expect("card end")];
        assert_eq!(element_text(card, "role=\"alert\""), UNREADABLE, "{label}");
    }
    let healthy = app.sim.account("PKHEALTHYACCOUNT0001").expect("state");
    assert_eq!(dd(&page.body, "Equity"), money(healthy.equity()));
    // Three calls (account, positions, history) each met a 256 MB body; each
    // stopped at the cap, plus what the sockets buffered on the way.
    let streamed = app.sim.bytes_streamed();
    assert!(
        streamed < 3 * (MAX_BODY_BYTES as u64 + 16 * 1024 * 1024),
        "Paddock stopped reading the 256 MB bodies near the cap: {streamed} bytes sent"
    );
}

#[tokio::test]
async fn the_market_clock_is_on_the_account_page() {
    let app = TestApp::spawn().await;
    let (ada, id) = trader(&app, "PKCLOCKWATCHER000001").await;
    let page = ada.get(&format!("/accounts/{id}")).await;
    let clock = element_text(&page.body, "class=\"clock\"");
    assert!(
        clock == "Market open"
            || (clock.starts_with("Market closed · opens ") && clock.ends_with(" ET")),
        "{clock}"
    );
    assert_eq!(
        app.sim.calls("GET", "/v2/clock"),
        1,
        "read with the account data"
    );
}

#[tokio::test]
async fn confirmation_tokens_are_visible_only_to_their_member() {
    let app = TestApp::spawn().await;
    let (ada, id) = trader(&app, "PKTOKENOWNER00000001").await;
    let eve = app.owner("eve@example.com", "Elsewhere").await;
    enroll(&eve, "Eve's", "PKTOKENOTHER00000001", SECRET, "paper").await;
    let eves = account_id(&app, "Eve's").await;
    for (v, account) in [(&ada, &id), (&eve, &eves)] {
        let path = format!("/accounts/{account}/orders/cancel-all");
        let token = confirmation(v, &path, "Cancel all orders").await;
        assert_eq!(
            v.post(&path, &[("action_token", &token)]).await.status,
            StatusCode::SEE_OTHER
        );
    }
    let stored: i64 = sqlx::query_scalar("select count(*) from action_tokens")
        .fetch_one(&app.admin)
        .await
        .expect("count");
    assert_eq!(stored, 2);
    let ids = |email: &'static str| {
        sqlx::query_as::<_, (uuid::Uuid, uuid::Uuid)>(
            "select id, organization_id from members where email = $1",
        )
        .bind(email)
        .fetch_one(&app.admin)
    };
    let row = ids("ada@example.com").await.expect("ada");
    let eve_ids = ids("eve@example.com").await.expect("eve");
    let mut tx = app.pool.begin().await.expect("tx");
    let unset: i64 = sqlx::query_scalar("select count(*) from action_tokens")
        .fetch_one(&mut *tx)
        .await
        .expect("no settings");
    assert_eq!(unset, 0, "no settings, no rows");
    drop(tx);
    let _ = row;
    let mut tx = app.tenant("ada@example.com").await;
    let mine: i64 = sqlx::query_scalar("select count(*) from action_tokens")
        .fetch_one(&mut *tx)
        .await
        .expect("ada's view");
    assert_eq!(mine, 1, "Ada sees her token only");
    let foreign = sqlx::query(
        "insert into action_tokens (member_id, organization_id, token_hash) values ($1, $2, '\\x01')",
    )
    .bind(eve_ids.0)
    .bind(eve_ids.1)
    .execute(&mut *tx)
    .await;
    let refused = foreign.expect_err("no token can be written for another member");
    assert!(
        refused.to_string().contains("row-level security"),
        "{refused}"
    );
}
