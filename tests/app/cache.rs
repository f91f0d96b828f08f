//! Reuse and sharing of account reads (SPEC "Rate limits"), as Alpaca (the
//! simulator's count of calls) and the activity log (recorded key uses) see it.

use std::time::Duration;

use futures::future::join_all;
use paddock::alpaca::Environment;
use reqwest::StatusCode;

use crate::{
    credentials::{SECRET, enroll},
    helpers::{Options, TestApp, Visitor, element_text},
    portfolio::seed_credential,
    trading::{account_id, place, trader},
};

const KEY: &str = "PKCACHEACCOUNT000001";
/// A key whose every answer the simulator sends after 2 s: views of it overlap.
const SLOW_KEY: &str = "PKCACHEACCOUNT00SLOW";

fn reusing_for(seconds: u64) -> Options {
    Options {
        alpaca_cache: Duration::from_secs(seconds),
        request_timeout: Duration::from_secs(5),
        ..Options::default()
    }
}

/// Account reads the simulator has answered: account, positions, history.
fn reads(app: &TestApp) -> [usize; 3] {
    [
        app.sim.calls("GET", "/v2/account"),
        app.sim.calls("GET", "/v2/positions"),
        app.sim.calls("GET", "/v2/account/portfolio/history"),
    ]
}

fn since(before: [usize; 3], after: [usize; 3]) -> [usize; 3] {
    [0, 1, 2].map(|i| after[i] - before[i])
}

/// The `credential_used` events of `email`'s member.
async fn key_uses(app: &TestApp, email: &str) -> i64 {
    sqlx::query_scalar(
        "select count(*) from security_events e join members m on m.id = e.member_id
         where m.email = $1 and e.kind = 'credential_used'",
    )
    .bind(email)
    .fetch_one(&app.admin)
    .await
    .expect("count")
}

async fn portfolio_shows_the_account(v: &Visitor) -> String {
    let page = v.get("/portfolio").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(page.body.matches("class=\"card\"").count(), 1);
    assert!(!page.body.contains("class=\"alert\""), "{}", page.body);
    element_text(&page.body, "<dt>Equity")
}

#[tokio::test]
async fn concurrent_views_of_one_account_make_one_set_of_alpaca_calls() {
    let app = TestApp::spawn_with(reusing_for(60)).await;
    let ada = app.owner("ada@example.com", "Club").await;
    seed_credential(
        &app,
        "ada@example.com",
        "Slow",
        SLOW_KEY,
        Environment::Paper,
    )
    .await;
    let before = reads(&app);
    let views = join_all((0..6).map(|_| portfolio_shows_the_account(&ada))).await;
    assert!(views.iter().all(|equity| *equity == views[0]), "{views:?}");
    assert_eq!(since(before, reads(&app)), [1, 1, 1]);
    assert_eq!(
        key_uses(&app, "ada@example.com").await,
        1,
        "only the view that called Alpaca unsealed the keys"
    );
}

#[tokio::test]
async fn a_view_shown_from_the_cache_calls_nothing_and_records_no_key_use() {
    let app = TestApp::spawn_with(reusing_for(60)).await;
    let ada = app.owner("ada@example.com", "Club").await;
    enroll(&ada, "Main", KEY, SECRET, "paper").await;
    let first = portfolio_shows_the_account(&ada).await;
    let (uses, calls) = (key_uses(&app, "ada@example.com").await, reads(&app));
    assert_eq!(uses, 1);
    assert_eq!(portfolio_shows_the_account(&ada).await, first);
    assert_eq!(reads(&app), calls);
    assert_eq!(key_uses(&app, "ada@example.com").await, uses);
    let activity = ada.get("/activity").await;
    assert_eq!(activity.body.matches("Main: portfolio").count(), 1);
}

#[tokio::test]
async fn an_order_action_refreshes_the_account() {
    let app = TestApp::spawn_with(reusing_for(60)).await;
    let (ada, id) = trader(&app, KEY).await;
    let path = format!("/accounts/{id}");
    let before = ada.get(&path).await;
    assert!(element_text(&before.body, "<caption>Open orders").contains("No open orders."));
    let portfolio = portfolio_shows_the_account(&ada).await;
    let calls = reads(&app);
    assert_eq!(ada.get(&path).await.status, StatusCode::OK);
    assert_eq!(reads(&app), calls, "both pages reused");

    let placed = place(
        &ada,
        &id,
        &[
            ("qty", "1"),
            ("order_type", "limit"),
            ("limit_price", "1.00"),
        ],
    )
    .await;
    assert_eq!(placed.status, StatusCode::SEE_OTHER, "{}", placed.body);
    let calls = reads(&app);
    let after = ada.get(&path).await;
    let open = element_text(&after.body, "<caption>Open orders");
    assert!(open.contains("AAPL") && open.contains("$1.00"), "{open}");
    assert_eq!(portfolio_shows_the_account(&ada).await, portfolio);
    assert_eq!(
        since(calls, reads(&app)),
        [2, 2, 2],
        "the account page and the portfolio each read the account again"
    );
}

#[tokio::test]
async fn with_the_cache_off_every_view_calls_alpaca() {
    let app = TestApp::spawn_with(reusing_for(0)).await;
    let ada = app.owner("ada@example.com", "Club").await;
    seed_credential(
        &app,
        "ada@example.com",
        "Slow",
        SLOW_KEY,
        Environment::Paper,
    )
    .await;
    let before = reads(&app);
    join_all((0..3).map(|_| portfolio_shows_the_account(&ada))).await;
    portfolio_shows_the_account(&ada).await;
    assert_eq!(since(before, reads(&app)), [4, 4, 4]);
    assert_eq!(key_uses(&app, "ada@example.com").await, 4);
}

#[tokio::test]
async fn two_members_never_share_a_read_even_of_the_same_alpaca_account() {
    let app = TestApp::spawn_with(reusing_for(60)).await;
    let ada = app.owner("ada@example.com", "Club").await;
    let code = ada.create_invite().await;
    let bob = app.member("bob@example.com", &code).await;
    seed_credential(
        &app,
        "ada@example.com",
        "Shared",
        SLOW_KEY,
        Environment::Paper,
    )
    .await;
    seed_credential(
        &app,
        "bob@example.com",
        "Shared",
        SLOW_KEY,
        Environment::Paper,
    )
    .await;
    let before = reads(&app);
    let (a, b) = tokio::join!(
        portfolio_shows_the_account(&ada),
        portfolio_shows_the_account(&bob)
    );
    assert_eq!(a, b, "the same Alpaca account");
    assert_eq!(since(before, reads(&app)), [2, 2, 2]);
    portfolio_shows_the_account(&bob).await;
    assert_eq!(
        since(before, reads(&app)),
        [2, 2, 2],
        "each reuses their own"
    );
    assert_eq!(key_uses(&app, "ada@example.com").await, 1);
    assert_eq!(key_uses(&app, "bob@example.com").await, 1);
}

#[tokio::test]
async fn rotated_keys_never_meet_a_read_made_with_the_old_ones() {
    let app = TestApp::spawn_with(reusing_for(60)).await;
    let ada = app.owner("ada@example.com", "Club").await;
    enroll(&ada, "Main", KEY, SECRET, "paper").await;
    let id = account_id(&app, "Main").await;
    portfolio_shows_the_account(&ada).await;
    let rotated = ada
        .post(
            &format!("/credentials/{id}/rotate"),
            &[
                ("api_key_id", "PKCACHEACCOUNT00NEW1"),
                ("secret_key", "cachesecret0000000000000000000000000002"),
            ],
        )
        .await;
    assert_eq!(rotated.status, StatusCode::SEE_OTHER, "{}", rotated.body);
    let positions = app.sim.calls("GET", "/v2/positions");
    portfolio_shows_the_account(&ada).await;
    assert_eq!(app.sim.calls("GET", "/v2/positions"), positions + 1);
}

#[tokio::test]
async fn a_member_sent_to_set_up_a_second_factor_first_records_no_key_use() {
    let app = TestApp::spawn_with(reusing_for(0)).await;
    let ada = app.owner("ada@example.com", "Club").await;
    enroll(&ada, "Main", KEY, SECRET, "paper").await;
    assert_eq!(
        ada.post("/org/policy", &[("require_two_factor", "on")])
            .await
            .status,
        StatusCode::SEE_OTHER
    );
    let (uses, calls) = (key_uses(&app, "ada@example.com").await, reads(&app));
    for path in [
        "/portfolio".to_owned(),
        format!("/accounts/{}", account_id(&app, "Main").await),
    ] {
        assert_eq!(ada.get(&path).await.location(), "/settings/totp", "{path}");
    }
    assert_eq!(key_uses(&app, "ada@example.com").await, uses);
    assert_eq!(reads(&app), calls);
}
