//! Two-factor sign-in, recovery codes and step-up ("Confirm it's you"), driven
//! over HTTP with codes computed from the key the page shows, as an
//! authenticator app would.

use std::time::{SystemTime, UNIX_EPOCH};

use paddock::totp::TotpSecret;
use reqwest::StatusCode;

use crate::{
    credentials::enroll,
    helpers::{PASSWORD, Page, TestApp, Visitor},
    trading::place,
};

const SECRET: &str = "stepupsecret0000000000000000000000000001";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// Every `<code class="secret-once">` text on a page.
fn secrets_once(page: &Page) -> Vec<String> {
    page.body
        .split("class=\"secret-once\">")
        .skip(1)
        .filter_map(|rest| rest.split('<').next())
        .map(str::to_owned)
        .collect()
}

/// Turns TOTP on as a member would: reads the key off the set-up page, types the
/// current code. Returns the secret and the ten recovery codes shown once.
pub async fn turn_on_totp(v: &Visitor) -> (TotpSecret, Vec<String>) {
    let setup = v.get("/settings/totp").await;
    assert_eq!(setup.status, StatusCode::OK, "{}", setup.body);
    assert!(setup.body.contains("<svg role=\"img\""), "a QR code");
    let key = secrets_once(&setup)
        .pop()
        .expect("the key for manual entry");
    let secret = TotpSecret::from_base32(&key).expect("a base32 key");
    let code = secret.code_at(now()).expect("code");
    let done = v.post("/settings/totp", &[("code", code.as_str())]).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(done.status_message().contains("Save these recovery codes"));
    let codes = secrets_once(&done);
    assert_eq!(codes.len(), 10, "ten recovery codes, shown once");
    (secret, codes)
}

/// A code for the next time step: accepted (one step of skew) and never the one
/// already used in this step.
fn next_code(secret: &TotpSecret) -> String {
    secret.code_at(now() + 30).expect("code")
}

/// Signs in with the password only: the answer sends to `/login/2fa`.
async fn password_step(app: &TestApp, email: &str) -> Visitor {
    let v = app.visitor();
    let page = v.sign_in(email, PASSWORD).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(page.location(), "/login/2fa");
    v
}

#[tokio::test]
async fn with_totp_on_signing_in_takes_a_code_and_the_half_signed_in_session_reaches_nothing() {
    let app = TestApp::spawn().await;
    let ada = app.owner("ada@example.com", "Club").await;
    let (secret, _) = turn_on_totp(&ada).await;
    assert!(
        ada.get("/activity")
            .await
            .body
            .contains("Two-factor authentication turned on")
    );

    let v = password_step(&app, "ada@example.com").await;
    let half = v.session_token();
    for path in [
        "/portfolio",
        "/credentials",
        "/settings",
        "/org",
        "/activity",
    ] {
        let page = v.get(path).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(page.location(), "/login", "{path}");
    }
    let form = v.get("/login/2fa").await;
    assert!(form.body.contains("Authentication code") && form.body.contains(">Verify<"));
    let page = v.post("/login/2fa", &[("code", &next_code(&secret))]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(page.location(), "/portfolio");
    assert_ne!(v.session_token(), half, "a new session id once signed in");
    assert_eq!(v.get("/portfolio").await.status, StatusCode::OK);
    assert!(
        v.get("/activity")
            .await
            .body
            .contains("with an authentication code")
    );
}

#[tokio::test]
async fn a_code_cannot_be_used_twice() {
    let app = TestApp::spawn().await;
    let ada = app.owner("ada@example.com", "Club").await;
    let (secret, _) = turn_on_totp(&ada).await;
    let code = next_code(&secret);
    let first = password_step(&app, "ada@example.com").await;
    assert_eq!(
        first
            .post("/login/2fa", &[("code", &code)])
            .await
            .location(),
        "/portfolio"
    );
    let second = password_step(&app, "ada@example.com").await;
    let replay = second.post("/login/2fa", &[("code", &code)]).await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED);
    assert!(replay.alert().contains("not right"), "{}", replay.alert());
    assert_eq!(second.get("/portfolio").await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_recovery_code_works_once_and_new_ones_replace_the_old() {
    let app = TestApp::spawn().await;
    let ada = app.owner("ada@example.com", "Club").await;
    let (_, codes) = turn_on_totp(&ada).await;
    let stored: i64 = sqlx::query_scalar("select count(*) from paddock_private.recovery_codes")
        .fetch_one(&app.admin)
        .await
        .expect("count");
    assert_eq!(stored, 10);
    assert!(
        app.find_in_database(&[codes[0].as_bytes(), codes[0].replace('-', "").as_bytes()])
            .await
            .is_empty(),
        "only hashes of recovery codes are stored"
    );
    let v = password_step(&app, "ada@example.com").await;
    let page = v
        .post("/login/2fa", &[("code", &codes[0].to_lowercase())])
        .await;
    assert_eq!(page.location(), "/portfolio", "{}", page.body);
    assert!(
        v.get("/settings")
            .await
            .body
            .contains("9 of 10 recovery codes left")
    );
    let again = password_step(&app, "ada@example.com").await;
    assert_eq!(
        again
            .post("/login/2fa", &[("code", &codes[0])])
            .await
            .status,
        StatusCode::UNAUTHORIZED,
        "a recovery code works once"
    );

    let fresh = v.post("/settings/recovery-codes", &[]).await;
    assert_eq!(fresh.status, StatusCode::OK);
    let new_codes = secrets_once(&fresh);
    assert_eq!(new_codes.len(), 10);
    let old = password_step(&app, "ada@example.com").await;
    assert_eq!(
        old.post("/login/2fa", &[("code", &codes[1])]).await.status,
        StatusCode::UNAUTHORIZED,
        "the old codes stopped working"
    );
    let new = password_step(&app, "ada@example.com").await;
    assert_eq!(
        new.post("/login/2fa", &[("code", &new_codes[3])])
            .await
            .location(),
        "/portfolio"
    );
    let activity = new.get("/activity").await.body;
    assert!(activity.contains("Recovery code used") && activity.contains("New recovery codes"));
}

#[tokio::test]
async fn second_factor_guesses_are_throttled_like_passwords() {
    let app = TestApp::spawn().await;
    let ada = app.owner("ada@example.com", "Club").await;
    let (secret, _) = turn_on_totp(&ada).await;
    let v = password_step(&app, "ada@example.com").await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(v.post("/login/2fa", &[("code", "000000")]).await.status);
    }
    assert!(
        statuses.iter().all(|s| *s == StatusCode::UNAUTHORIZED),
        "{statuses:?}"
    );
    let locked = v.post("/login/2fa", &[("code", &next_code(&secret))]).await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        locked
            .header("retry-after")
            .parse::<u32>()
            .is_ok_and(|s| s > 0)
    );
    assert_eq!(v.get("/portfolio").await.status, StatusCode::SEE_OTHER);
    let failed: i64 = sqlx::query_scalar(
        "select count(*) from security_events where kind = 'sign_in_failed' and detail = 'wrong authentication code'",
    )
    .fetch_one(&app.admin)
    .await
    .expect("count");
    assert_eq!(failed, 5);
}

/// Makes every session of `email` older than the step-up window.
async fn age_sign_in(app: &TestApp, email: &str) {
    sqlx::query(
        "update paddock_private.sessions set authenticated_at = now() - interval '11 minutes'
         where member_id = (select id from members where email = $1)",
    )
    .bind(email)
    .execute(&app.admin)
    .await
    .expect("age the sign-in");
}

/// A path to POST, its fields, and the page "Confirm it's you" returns to.
struct Action {
    path: String,
    fields: Vec<(&'static str, String)>,
    back: String,
}

#[tokio::test]
async fn exactly_the_listed_actions_need_a_recent_sign_in_and_nothing_changes_without_one() {
    let app = TestApp::spawn().await;
    let ada = app.owner("ada@example.com", "Club").await;
    enroll(&ada, "Main", "PKSTEPUPACCOUNT00001", SECRET, "paper").await;
    let code = ada.create_invite().await;
    let bob = app.member("bob@example.com", &code).await;
    let id = |label: &str| {
        let label = label.to_owned();
        let admin = app.admin.clone();
        async move {
            sqlx::query_scalar::<_, String>("select id::text from credentials where label = $1")
                .bind(label)
                .fetch_one(&admin)
                .await
                .expect("id")
        }
    };
    let credential = id("Main").await;
    let bob_id: String =
        sqlx::query_scalar("select id::text from members where email = 'bob@example.com'")
            .fetch_one(&app.admin)
            .await
            .expect("bob");
    let (_, _) = turn_on_totp(&ada).await;
    drop(bob);
    // A live account with an open order and a position, set up while fresh.
    enroll(&ada, "Live", "AKSTEPUPLIVEACCT0001", SECRET, "live").await;
    let live = id("Live").await;
    let resting = place(
        &ada,
        &live,
        &[
            ("qty", "1"),
            ("order_type", "limit"),
            ("limit_price", "1.00"),
            ("time_in_force", "gtc"),
            ("confirm_live", "on"),
        ],
    )
    .await;
    assert_eq!(resting.status, StatusCode::SEE_OTHER, "{}", resting.body);
    let live_page = ada.get(&format!("/accounts/{live}")).await;
    let order_id = live_page
        .body
        .split(&format!("/accounts/{live}/orders/"))
        .skip(1)
        .filter_map(|rest| rest.split_once("/cancel\"").map(|(id, _)| id.to_owned()))
        .next()
        .expect("the open order's cancel button");
    let held = app
        .sim
        .account("AKSTEPUPLIVEACCT0001")
        .expect("live account")
        .positions
        .first()
        .map(|p| p.symbol.clone())
        .expect("a position");
    age_sign_in(&app, "ada@example.com").await;

    let needs: Vec<Action> = vec![
        Action {
            path: "/credentials".into(),
            fields: vec![
                ("label", "Second".into()),
                ("environment", "paper".into()),
                ("api_key_id", "PKSTEPUPACCOUNT00002".into()),
                ("secret_key", SECRET.into()),
            ],
            back: "/credentials/new".into(),
        },
        Action {
            path: format!("/credentials/{credential}/rotate"),
            fields: vec![
                ("api_key_id", "PKSTEPUPACCOUNT0NEW1".into()),
                ("secret_key", SECRET.into()),
            ],
            back: format!("/credentials/{credential}/rotate"),
        },
        Action {
            path: format!("/credentials/{credential}/delete"),
            fields: vec![],
            back: "/credentials".into(),
        },
        Action {
            path: "/settings/totp/disable".into(),
            fields: vec![],
            back: "/settings".into(),
        },
        Action {
            path: "/org/invites".into(),
            fields: vec![],
            back: "/org".into(),
        },
        Action {
            path: format!("/org/members/{bob_id}/role"),
            fields: vec![("role", "owner".into())],
            back: "/org".into(),
        },
        Action {
            path: format!("/org/members/{bob_id}/reset-link"),
            fields: vec![],
            back: "/org".into(),
        },
        Action {
            path: format!("/org/members/{bob_id}/remove"),
            fields: vec![],
            back: "/org".into(),
        },
        Action {
            path: "/org/policy".into(),
            fields: vec![("require_two_factor", "on".into())],
            back: "/org".into(),
        },
        Action {
            path: format!("/accounts/{live}/orders"),
            fields: vec![
                ("symbol", "AAPL".into()),
                ("side", "buy".into()),
                ("qty", "1".into()),
                ("order_type", "market".into()),
                ("time_in_force", "day".into()),
                ("order_token", crate::helpers::fresh_token()),
                ("confirm_live", "on".into()),
            ],
            back: format!("/accounts/{live}"),
        },
        Action {
            path: format!("/accounts/{live}/orders/{order_id}/cancel"),
            fields: vec![],
            back: format!("/accounts/{live}"),
        },
        Action {
            path: format!("/accounts/{live}/positions/{held}/close"),
            fields: vec![
                ("action_token", crate::helpers::fresh_token()),
                ("confirm_live", "on".into()),
            ],
            back: format!("/accounts/{live}/positions/{held}/close"),
        },
        Action {
            path: format!("/accounts/{live}/orders/cancel-all"),
            fields: vec![
                ("action_token", crate::helpers::fresh_token()),
                ("confirm_live", "on".into()),
            ],
            back: format!("/accounts/{live}/orders/cancel-all"),
        },
        Action {
            path: format!("/accounts/{live}/positions/close-all"),
            fields: vec![
                ("action_token", crate::helpers::fresh_token()),
                ("confirm_live", "on".into()),
            ],
            back: format!("/accounts/{live}/positions/close-all"),
        },
    ];
    let snapshot = || async {
        let row: (i64, i64, i64, i64, i64, bool, String) = sqlx::query_as(
            "select (select count(*) from credentials),
                    (select count(*) from invites),
                    (select count(*) from totp where enabled_at is not null),
                    (select count(*) from paddock_private.reset_links),
                    (select count(*) from members where removed_at is null),
                    (select require_two_factor from organizations),
                    (select string_agg(role, ',' order by email) from members)",
        )
        .fetch_one(&app.admin)
        .await
        .expect("snapshot");
        row
    };
    let before = snapshot().await;
    let orders_before = app.sim.order_requests().len();
    let requests_before = app.sim.request_count();
    for action in &needs {
        let fields: Vec<(&str, &str)> = action
            .fields
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .collect();
        let page = ada.post(&action.path, &fields).await;
        assert_eq!(
            page.status,
            StatusCode::SEE_OTHER,
            "{}: {}",
            action.path,
            page.body
        );
        let expected = format!(
            "/reauth?next={}",
            form_urlencoded::byte_serialize(action.back.as_bytes()).collect::<String>()
        );
        assert_eq!(page.location(), expected, "{}", action.path);
    }
    assert_eq!(snapshot().await, before, "nothing changed");
    assert_eq!(
        app.sim.request_count(),
        requests_before,
        "nothing reached Alpaca"
    );
    assert_eq!(app.sim.order_requests().len(), orders_before);
    let live_page = ada.get(&format!("/accounts/{live}")).await;
    assert!(
        !live_page.body.contains(">Place order<"),
        "no live order form when stale"
    );
    assert!(live_page.body.contains("/reauth?next="));

    // The pages show "Confirm it's you" in place of their forms.
    for path in [
        "/credentials/new",
        &format!("/credentials/{credential}/rotate"),
        "/org",
    ] {
        let page = ada.get(path).await;
        assert!(
            page.body.contains("Confirm it&#x27;s you") || page.body.contains("Confirm it's you"),
            "{path}"
        );
        assert!(page.body.contains("/reauth?next="), "{path}");
    }
    let new_form = ada.get("/credentials/new").await;
    assert!(
        !new_form.body.contains("Save credential"),
        "no form in its place"
    );

    // Other actions need no recent sign-in.
    let codes = ada.post("/settings/recovery-codes", &[]).await;
    assert_eq!(codes.status, StatusCode::OK, "regenerating recovery codes");
    assert_eq!(ada.get("/portfolio").await.status, StatusCode::OK);
    let paper = place(&ada, &credential, &[("qty", "1")]).await;
    assert_eq!(
        paper.status,
        StatusCode::SEE_OTHER,
        "a paper order: {}",
        paper.body
    );
    assert_eq!(paper.location(), format!("/accounts/{credential}"));
}

#[tokio::test]
async fn confirming_with_password_and_code_makes_the_session_fresh_again() {
    let app = TestApp::spawn().await;
    let ada = app.owner("ada@example.com", "Club").await;
    let (secret, _) = turn_on_totp(&ada).await;
    age_sign_in(&app, "ada@example.com").await;
    let stale = ada.post("/org/invites", &[]).await;
    assert_eq!(stale.location(), "/reauth?next=%2Forg");
    let form = ada.get("/reauth?next=%2Forg").await;
    assert!(form.body.contains(">Password<") && form.body.contains("Authentication code"));
    assert!(form.body.contains(">Confirm<"));
    let wrong = ada
        .post(
            "/reauth",
            &[
                ("password", "not my password at all"),
                ("code", &next_code(&secret)),
                ("next", "/org"),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let no_code = ada
        .post(
            "/reauth",
            &[("password", PASSWORD), ("code", ""), ("next", "/org")],
        )
        .await;
    assert_eq!(no_code.status, StatusCode::UNPROCESSABLE_ENTITY);
    let ok = ada
        .post(
            "/reauth",
            &[
                ("password", PASSWORD),
                ("code", &next_code(&secret)),
                ("next", "/org"),
            ],
        )
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);
    assert_eq!(ok.location(), "/org");
    assert_eq!(ada.post("/org/invites", &[]).await.status, StatusCode::OK);
    assert!(
        ada.get("/activity")
            .await
            .body
            .contains("Confirmed it was me")
    );
}

#[tokio::test]
async fn confirm_its_you_returns_only_to_paths_on_this_site() {
    let app = TestApp::spawn().await;
    let ada = app.owner("ada@example.com", "Club").await;
    for evil in [
        "//evil.example",
        "https://evil.example/",
        "/\\evil.example",
        "\\\\evil.example",
        "javascript:alert(1)",
        "",
    ] {
        let page = ada
            .post("/reauth", &[("password", PASSWORD), ("next", evil)])
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{evil}: {}", page.body);
        assert_eq!(page.location(), "/portfolio", "{evil}");
        let form = ada
            .get(&format!(
                "/reauth?next={}",
                form_urlencoded::byte_serialize(evil.as_bytes()).collect::<String>()
            ))
            .await;
        assert!(
            form.body.contains("name=\"next\" value=\"/portfolio\""),
            "{evil}"
        );
    }
    let page = ada
        .post(
            "/reauth",
            &[("password", PASSWORD), ("next", "/credentials/new")],
        )
        .await;
    assert_eq!(page.location(), "/credentials/new");
}

#[tokio::test]
async fn turning_totp_off_needs_a_recent_sign_in_and_is_refused_while_the_organization_requires_it()
{
    let app = TestApp::spawn().await;
    let ada = app.owner("ada@example.com", "Club").await;
    turn_on_totp(&ada).await;
    assert_eq!(
        ada.post("/org/policy", &[("require_two_factor", "on")])
            .await
            .status,
        StatusCode::SEE_OTHER
    );
    let refused = ada.post("/settings/totp/disable", &[]).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused.alert().contains("requires two-factor"),
        "{}",
        refused.alert()
    );
    assert_eq!(
        ada.post("/org/policy", &[]).await.status,
        StatusCode::SEE_OTHER,
        "policy off"
    );
    let done = ada.post("/settings/totp/disable", &[]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    assert!(
        ada.get("/settings")
            .await
            .body
            .contains("Off: your password alone")
    );
    // Signing in now takes the password alone.
    let v = app.visitor();
    assert_eq!(
        v.sign_in("ada@example.com", PASSWORD).await.location(),
        "/portfolio"
    );
}
