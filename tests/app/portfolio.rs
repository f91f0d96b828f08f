//! The aggregated portfolio, account pages and trading, against the simulator.

use std::time::{Duration, Instant};

use paddock::{
    alpaca::{ApiKeys, Environment, sim},
    db::credentials::NewCredential,
    domain::{CredentialId, MemberId, OrganizationId},
    money::money,
    vault,
};
use reqwest::StatusCode;
use rust_decimal::Decimal;
use sqlx::Row;

use crate::{
    credentials::{SECRET, enroll},
    helpers::{TestApp, Visitor, element_text, fresh_token, idle_in_transaction, wait_until},
};

const KEYS: [&str; 3] = [
    "PKFIRSTACCOUNT000001",
    "PKSECONDACCOUNT00002",
    "PKTHIRDACCOUNT000003",
];

/// Stores a credential directly (sealed exactly as enrollment does), for keys the
/// simulator would refuse at enrollment time, such as fault keys.
pub async fn seed_credential(
    app: &TestApp,
    email: &str,
    label: &str,
    key: &str,
    environment: Environment,
) -> CredentialId {
    let row = sqlx::query("select id, organization_id from members where email = $1")
        .bind(email)
        .fetch_one(&app.admin)
        .await
        .expect("member");
    let (member, organization) = (MemberId(row.get(0)), OrganizationId(row.get(1)));
    let id = CredentialId::new();
    let keys = ApiKeys::new(key, SECRET);
    let sealed =
        vault::seal_pair(app.keyring.as_ref(), organization, member, id, &keys).expect("seal");
    let new = NewCredential {
        id,
        label,
        environment,
        sealed_key_id: &sealed.key_id,
        sealed_secret: &sealed.secret,
        key_id_last4: &key[key.len() - 4..],
        account_number: &format!("SEEDED-{label}"),
        seal_key_version: &sealed.seal_key_version,
    };
    let mut tx = app.tenant(email).await;
    paddock::db::credentials::insert(&mut tx, &new)
        .await
        .expect("insert");
    tx.commit().await.expect("commit");
    id
}

async fn credential_id(app: &TestApp, label: &str) -> String {
    sqlx::query_scalar("select id::text from credentials where label = $1")
        .bind(label)
        .fetch_one(&app.admin)
        .await
        .expect("credential")
}

fn dd(body: &str, term: &str) -> String {
    let marker = format!("<dt>{term}</dt><dd");
    let start = body
        .find(&marker)
        .unwrap_or_else(|| panic!("no <dt>{term}</dt>"));
    element_text(&body[start + marker.len() - 3..], "<dd")
}

async fn three_accounts(app: &TestApp) -> Visitor {
    let ada = app.owner("ada@example.com", "Club").await;
    for (i, key) in KEYS.iter().enumerate() {
        enroll(&ada, &format!("Account {}", i + 1), key, SECRET, "paper").await;
    }
    ada
}

#[tokio::test]
async fn totals_are_the_exact_sum_over_three_accounts_and_every_position_is_listed() {
    let app = TestApp::spawn().await;
    let ada = three_accounts(&app).await;
    let page = ada.get("/portfolio").await;
    assert_eq!(page.status, StatusCode::OK);

    let accounts: Vec<_> = KEYS
        .iter()
        .map(|k| app.sim.account(k).expect("sim account"))
        .collect();
    let sum = |f: &dyn Fn(&sim::AccountState) -> Decimal| accounts.iter().map(f).sum::<Decimal>();
    assert_eq!(dd(&page.body, "Equity"), money(sum(&|a| a.equity())));
    assert_eq!(dd(&page.body, "Cash"), money(sum(&|a| a.cash)));
    assert_eq!(
        dd(&page.body, "Buying power"),
        money(sum(&|a| a.buying_power()))
    );
    let change = sum(&|a| a.equity() - a.last_equity);
    assert!(dd(&page.body, "Day change").starts_with(&paddock::money::signed_money(change)));

    let table = element_text(&page.body, "<caption>Positions");
    for column in [
        "Account",
        "Symbol",
        "Quantity",
        "Market value",
        "Unrealized P/L",
    ] {
        assert!(table.contains(column), "{column}");
    }
    let rows = page.body.matches("<td class=\"num\">").count();
    let positions: usize = accounts.iter().map(|a| a.positions.len()).sum();
    assert!(positions >= 6);
    assert_eq!(rows, positions * 4, "every position is listed once");
    for a in &accounts {
        for h in &a.positions {
            let value = money(h.qty * sim::price(&h.symbol).expect("price"));
            assert!(table.contains(&value), "{} {value}", h.symbol);
        }
    }
    assert!(page.body.contains("<svg") && page.body.contains("<title id=\"chart-title\">"));
    assert!(
        page.body.contains("class=\"line\" d=\"M"),
        "the chart has a line"
    );
    for key in KEYS {
        assert!(!page.body.contains(key));
    }
    let used: i64 = sqlx::query_scalar("select count(*) from security_events where kind = 'credential_used' and detail like '%: portfolio'")
        .fetch_one(&app.admin)
        .await
        .expect("count");
    assert_eq!(used, 3, "one use per credential per page view");
    let used_at: i64 =
        sqlx::query_scalar("select count(*) from credentials where last_used_at is not null")
            .fetch_one(&app.admin)
            .await
            .expect("count");
    assert_eq!(used_at, 3);
}

#[tokio::test]
async fn chart_periods_are_links_and_the_default_is_a_month() {
    let app = TestApp::spawn().await;
    let ada = app.owner("ada@example.com", "Club").await;
    enroll(&ada, "Main", KEYS[0], SECRET, "paper").await;
    let month = ada.get("/portfolio").await;
    assert!(
        month
            .body
            .contains("href=\"?period=1M\" aria-current=\"page\"")
    );
    let week = ada.get("/portfolio?period=1W").await;
    assert!(
        week.body
            .contains("href=\"?period=1W\" aria-current=\"page\"")
    );
    assert!(
        week.body.contains("5 daily points"),
        "{}",
        element_text(&week.body, "id=\"chart-desc\"")
    );
    let year = ada.get("/portfolio?period=1A").await;
    assert!(year.body.contains("Equity over 1 year"));
}

#[tokio::test]
async fn a_failing_account_degrades_only_its_own_card() {
    let app = TestApp::spawn().await;
    let ada = app.owner("ada@example.com", "Club").await;
    enroll(&ada, "Healthy", KEYS[0], SECRET, "paper").await;
    seed_credential(
        &app,
        "ada@example.com",
        "Broken",
        "PKBROKENACCOUNT00500",
        Environment::Paper,
    )
    .await;
    seed_credential(
        &app,
        "ada@example.com",
        "Revoked",
        "PKREVOKEDACCOUNT0401",
        Environment::Paper,
    )
    .await;
    seed_credential(
        &app,
        "ada@example.com",
        "Busy",
        "PKBUSYACCOUNT0000429",
        Environment::Paper,
    )
    .await;
    seed_credential(
        &app,
        "ada@example.com",
        "Stuck",
        "PKSTUCKACCOUNT00HANG",
        Environment::Paper,
    )
    .await;

    let started = Instant::now();
    let page = ada.get("/portfolio").await;
    let took = started.elapsed();
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        took < Duration::from_secs(8),
        "the hung account is cut off by the deadline ({took:?})"
    );

    let healthy = app.sim.account(KEYS[0]).expect("account");
    assert_eq!(
        dd(&page.body, "Equity"),
        money(healthy.equity()),
        "totals over the healthy account"
    );
    for (label, message) in [
        ("Broken", "Alpaca is unavailable right now"),
        ("Revoked", "Alpaca rejected these keys"),
        (
            "Busy",
            "Alpaca is rate-limiting this account, try again shortly",
        ),
        ("Stuck", "Alpaca is unavailable right now"),
    ] {
        let start = page.body.find(&format!(">{label}</a>")).expect(label);
        let card = &page.body[start..];
        let card = &card[..card.find("</li>").expect("card end")];
        assert_eq!(element_text(card, "role=\"alert\""), message, "{label}");
    }
    assert!(page.body.matches("role=\"alert\"").count() == 4);
}

#[tokio::test]
async fn sealed_values_copied_into_another_members_row_do_not_open() {
    let app = TestApp::spawn().await;
    let ada = app.owner("ada@example.com", "Club").await;
    enroll(&ada, "Ada's account", KEYS[0], SECRET, "paper").await;
    let code = ada.create_invite().await;
    let bob = app.member("bob@example.com", &code).await;
    enroll(&bob, "Bob's account", KEYS[1], SECRET, "paper").await;

    sqlx::query(
        "update credentials set sealed_key_id = a.sealed_key_id, sealed_secret = a.sealed_secret
         from credentials a where a.label = 'Ada''s account' and credentials.label = 'Bob''s account'",
    )
    .execute(&app.admin)
    .await
    .expect("copy");

    let page = bob.get("/portfolio").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.alert().contains("could not be unsealed"),
        "{}",
        page.alert()
    );
    let adas = app.sim.account(KEYS[0]).expect("account");
    assert!(
        !page.body.contains(&adas.account_number),
        "nothing of Ada's account shows"
    );
    assert!(!page.body.contains(&money(adas.equity())));
}

#[tokio::test]
async fn an_order_reaches_alpaca_with_exactly_what_was_entered() {
    let app = TestApp::spawn().await;
    let ada = app.owner("ada@example.com", "Club").await;
    enroll(&ada, "Main", KEYS[0], SECRET, "paper").await;
    let id = credential_id(&app, "Main").await;
    let page = ada.get(&format!("/accounts/{id}")).await;
    assert_eq!(page.status, StatusCode::OK);
    for label in [
        "Symbol",
        "Side",
        "Quantity",
        "Order type",
        "Limit price",
        "Time in force",
        "Place order",
        "<caption>Open orders</caption>",
        "<caption>Positions</caption>",
    ] {
        assert!(page.body.contains(label), "{label}");
    }
    assert!(
        !page.body.contains("I confirm this live order"),
        "paper needs no confirmation"
    );

    let placed = ada
        .post(
            &format!("/accounts/{id}/orders"),
            &[
                ("symbol", "aapl"),
                ("side", "buy"),
                ("qty", "3"),
                ("order_type", "limit"),
                ("limit_price", "101.25"),
                ("time_in_force", "gtc"),
                ("order_token", &fresh_token()),
            ],
        )
        .await;
    assert_eq!(placed.status, StatusCode::SEE_OTHER, "{}", placed.body);
    assert_eq!(placed.location(), format!("/accounts/{id}"));
    let orders = app.sim.order_requests();
    assert_eq!(orders.len(), 1);
    let o = &orders[0];
    assert_eq!(o.symbol.as_deref(), Some("AAPL"));
    assert_eq!(o.side.as_deref(), Some("buy"));
    assert_eq!(o.qty.as_deref(), Some("3"));
    assert_eq!(o.order_type.as_deref(), Some("limit"));
    assert_eq!(o.limit_price.as_deref(), Some("101.25"));
    assert_eq!(o.time_in_force.as_deref(), Some("gtc"));

    let page = ada.get(&format!("/accounts/{id}")).await;
    let order_id = app.sim.account(KEYS[0]).expect("acct").orders[0].id;
    assert_eq!(
        page.status_message(),
        format!(
            "Limit order placed: buy 3 AAPL at $101.25, good till canceled. Status: new. Order ID: {order_id}."
        )
    );
    let open = element_text(&page.body, "<caption>Open orders");
    assert!(open.contains("AAPL") && open.contains("$101.25"), "{open}");
    let used: i64 = sqlx::query_scalar("select count(*) from security_events where kind = 'credential_used' and detail like '%: order'")
        .fetch_one(&app.admin)
        .await
        .expect("count");
    assert_eq!(used, 1, "the order is on the record");

    let cancel = ada
        .post(&format!("/accounts/{id}/orders/{order_id}/cancel"), &[])
        .await;
    assert_eq!(cancel.status, StatusCode::SEE_OTHER);
    let page = ada.get(&format!("/accounts/{id}")).await;
    assert!(page.status_message().contains("was canceled"));
    assert!(
        !page.body.contains("Limit order placed"),
        "the flash shows once"
    );
    let open = element_text(&page.body, "<caption>Open orders");
    assert!(open.contains("No open orders"), "{open}");
    let closed = element_text(&page.body, "<caption>Recent closed orders");
    assert!(closed.contains("Canceled"), "{closed}");

    let again = ada
        .post(&format!("/accounts/{id}/orders/{order_id}/cancel"), &[])
        .await;
    assert_eq!(again.status, StatusCode::SEE_OTHER);
    assert!(
        !ada.get(&format!("/accounts/{id}")).await.alert().is_empty(),
        "a second cancel explains itself"
    );
}

#[tokio::test]
async fn a_market_order_fills_and_changes_the_positions() {
    let app = TestApp::spawn().await;
    let ada = app.owner("ada@example.com", "Club").await;
    enroll(&ada, "Main", KEYS[0], SECRET, "paper").await;
    let id = credential_id(&app, "Main").await;
    let before = app.sim.account(KEYS[0]).expect("acct").qty_held("SPY");
    let placed = ada
        .post(
            &format!("/accounts/{id}/orders"),
            &[
                ("symbol", "SPY"),
                ("side", "buy"),
                ("qty", "2"),
                ("order_type", "market"),
                ("limit_price", ""),
                ("time_in_force", "day"),
                ("order_token", &fresh_token()),
            ],
        )
        .await;
    assert_eq!(placed.status, StatusCode::SEE_OTHER, "{}", placed.body);
    assert_eq!(
        app.sim.account(KEYS[0]).expect("acct").qty_held("SPY"),
        before + Decimal::TWO
    );
    let page = ada.get(&format!("/accounts/{id}")).await;
    assert!(
        page.status_message()
            .contains("Market order placed: buy 2 SPY, for the day. Status: filled."),
        "{}",
        page.status_message()
    );
}

#[tokio::test]
async fn invalid_orders_get_422_and_nothing_reaches_alpaca() {
    let app = TestApp::spawn().await;
    let ada = app.owner("ada@example.com", "Club").await;
    enroll(&ada, "Main", KEYS[0], SECRET, "paper").await;
    let id = credential_id(&app, "Main").await;
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[
                ("symbol", "AAPL"),
                ("side", "buy"),
                ("qty", "1"),
                ("order_type", "limit"),
                ("limit_price", ""),
                ("time_in_force", "day"),
                ("order_token", &fresh_token()),
            ],
            "limit_price-error",
        ),
        (
            &[
                ("symbol", "AAPL"),
                ("side", "buy"),
                ("qty", "1"),
                ("order_type", "market"),
                ("limit_price", "10"),
                ("time_in_force", "day"),
                ("order_token", &fresh_token()),
            ],
            "limit_price-error",
        ),
        (
            &[
                ("symbol", "AAPL"),
                ("side", "buy"),
                ("qty", "0"),
                ("order_type", "market"),
                ("limit_price", ""),
                ("time_in_force", "day"),
                ("order_token", &fresh_token()),
            ],
            "qty-error",
        ),
        (
            &[
                ("symbol", "AAPL"),
                ("side", "buy"),
                ("qty", "-2"),
                ("order_type", "market"),
                ("limit_price", ""),
                ("time_in_force", "day"),
                ("order_token", &fresh_token()),
            ],
            "qty-error",
        ),
        (
            &[
                ("symbol", "AAPL; DROP"),
                ("side", "buy"),
                ("qty", "1"),
                ("order_type", "market"),
                ("limit_price", ""),
                ("time_in_force", "day"),
                ("order_token", &fresh_token()),
            ],
            "symbol-error",
        ),
        (
            &[
                ("symbol", "AAPL"),
                ("side", "hold"),
                ("qty", "1"),
                ("order_type", "market"),
                ("limit_price", ""),
                ("time_in_force", "day"),
                ("order_token", &fresh_token()),
            ],
            "side-error",
        ),
        (
            &[
                ("symbol", "AAPL"),
                ("side", "buy"),
                ("qty", "1"),
                ("order_type", "market"),
                ("limit_price", ""),
                ("time_in_force", "forever"),
                ("order_token", &fresh_token()),
            ],
            "time_in_force-error",
        ),
    ];
    for (fields, error_id) in cases {
        let page = ada.post(&format!("/accounts/{id}/orders"), fields).await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{error_id}");
        assert!(
            page.body.contains(&format!("id=\"{error_id}\"")),
            "{error_id}"
        );
        assert!(page.alert().contains("Nothing was sent"));
        assert!(
            page.body.contains("value=\"1\"")
                || page.body.contains("value=\"0\"")
                || page.body.contains("value=\"-2\""),
            "input kept"
        );
    }
    assert!(app.sim.order_requests().is_empty());
}

#[tokio::test]
async fn a_live_order_needs_its_confirmation() {
    let app = TestApp::spawn().await;
    let ada = app.owner("ada@example.com", "Club").await;
    enroll(&ada, "Live", "AKLIVEACCOUNT0000001", SECRET, "live").await;
    let id = credential_id(&app, "Live").await;
    assert!(
        ada.get(&format!("/accounts/{id}"))
            .await
            .body
            .contains("I confirm this live order")
    );
    let token = fresh_token();
    let order = [
        ("order_token", token.as_str()),
        ("symbol", "MSFT"),
        ("side", "buy"),
        ("qty", "1"),
        ("order_type", "market"),
        ("limit_price", ""),
        ("time_in_force", "day"),
    ];
    let page = ada.post(&format!("/accounts/{id}/orders"), &order).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("id=\"confirm_live-error\""));
    assert!(
        app.sim.order_requests().is_empty(),
        "nothing was sent to Alpaca"
    );

    let mut confirmed = order.to_vec();
    confirmed.push(("confirm_live", "yes"));
    let page = ada
        .post(&format!("/accounts/{id}/orders"), &confirmed)
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(app.sim.order_requests().len(), 1);
}

#[tokio::test]
async fn alpacas_refusal_is_shown_in_an_alert() {
    let app = TestApp::spawn().await;
    let ada = app.owner("ada@example.com", "Club").await;
    enroll(&ada, "Main", KEYS[0], SECRET, "paper").await;
    let id = credential_id(&app, "Main").await;
    let page = ada
        .post(
            &format!("/accounts/{id}/orders"),
            &[
                ("symbol", "NVDA"),
                ("side", "buy"),
                ("qty", "100000"),
                ("order_type", "market"),
                ("limit_price", ""),
                ("time_in_force", "day"),
                ("order_token", &fresh_token()),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        page.alert().contains("insufficient buying power"),
        "{}",
        page.alert()
    );
    assert!(
        page.body.contains("value=\"100000\""),
        "the order is kept to fix"
    );
    let used: i64 = sqlx::query_scalar(
        "select count(*) from security_events where kind = 'credential_used' and detail like '%: order'",
    )
    .fetch_one(&app.admin)
    .await
    .expect("count");
    assert_eq!(used, 1, "a refused order's key use stays on the record");
}

#[tokio::test]
async fn another_members_account_gets_the_same_404_everywhere() {
    let app = TestApp::spawn().await;
    let ada = app.owner("ada@example.com", "Club").await;
    enroll(&ada, "Ada's", KEYS[0], SECRET, "paper").await;
    let id = credential_id(&app, "Ada's").await;
    let eve = app.owner("eve@example.com", "Elsewhere").await;
    let unknown = "00000000-0000-4000-8000-000000000000";
    let order_id = "00000000-0000-4000-8000-000000000001";
    let mut pages = Vec::new();
    for target in [id.as_str(), unknown] {
        let get = eve.get(&format!("/accounts/{target}")).await;
        assert_eq!(get.status, StatusCode::NOT_FOUND);
        pages.push(get.body);
        let order = eve
            .post(
                &format!("/accounts/{target}/orders"),
                &[
                    ("symbol", "AAPL"),
                    ("side", "sell"),
                    ("qty", "1"),
                    ("order_type", "market"),
                    ("time_in_force", "day"),
                ],
            )
            .await;
        assert_eq!(order.status, StatusCode::NOT_FOUND);
        let cancel = eve
            .post(&format!("/accounts/{target}/orders/{order_id}/cancel"), &[])
            .await;
        assert_eq!(cancel.status, StatusCode::NOT_FOUND);
    }
    assert_eq!(pages[0], pages[1]);
    assert!(app.sim.order_requests().is_empty());
}

#[tokio::test]
async fn a_hung_alpaca_holds_no_database_connection_while_pages_wait() {
    let app = TestApp::spawn().await;
    let ada = app.owner("ada@example.com", "Club").await;
    seed_credential(
        &app,
        "ada@example.com",
        "Stuck",
        "PKSTUCKACCOUNT00HANG",
        Environment::Paper,
    )
    .await;
    let ada = std::sync::Arc::new(ada);
    let pages: Vec<_> = (0..6)
        .map(|_| {
            let ada = ada.clone();
            tokio::spawn(async move { ada.get("/portfolio").await })
        })
        .collect();
    // Each page asks for account, positions and history: wait until all 18 calls
    // are hanging in the simulator, so the pages are now waiting for Alpaca.
    wait_until(
        Duration::from_secs(10),
        "every page waits for Alpaca",
        || async { app.sim.request_count() >= 18 },
    )
    .await;
    assert_eq!(
        idle_in_transaction(&app.database).await,
        0,
        "no transaction is held open while Alpaca is awaited"
    );
    let recorded: i64 =
        sqlx::query_scalar("select count(*) from security_events where kind = 'credential_used'")
            .fetch_one(&app.admin)
            .await
            .expect("count");
    assert_eq!(recorded, 6, "each use is committed before the call");
    for page in pages {
        let page = page.await.expect("page");
        assert_eq!(page.status, StatusCode::OK);
        assert_eq!(page.alert(), "Alpaca is unavailable right now");
    }
}
