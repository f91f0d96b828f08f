//! Passkeys over HTTP, answered by a software authenticator
//! (`soft_authenticator.rs`): adding, signing in, confirming it's you, removing,
//! across replicas, without JavaScript, and under the organization's policy.
//! What an attacker would try is in `passkey_attacks.rs`.

use std::time::{SystemTime, UNIX_EPOCH};

use paddock::totp::TotpSecret;
use reqwest::StatusCode;

use crate::{
    helpers::{Options, PASSWORD, Page, TestApp, Visitor},
    soft_authenticator::SoftPasskey,
};

/// The origin the pretend browser reports (any port is allowed when no public
/// URL is set, as in these tests).
pub(crate) const ORIGIN: &str = "http://localhost:8080";

/// Starts adding a passkey named `name`: the options JSON.
pub(crate) async fn registration_options(v: &Visitor, name: &str) -> Page {
    v.post("/settings/passkeys/options", &[("passkey_name", name)])
        .await
}

/// Adds a passkey named `name` as the settings page's script would.
pub async fn add_passkey(v: &Visitor, name: &str) -> SoftPasskey {
    let options = registration_options(v, name).await;
    assert_eq!(options.status, StatusCode::OK, "{}", options.body);
    assert_eq!(options.header("content-type"), "application/json");
    let passkey = SoftPasskey::new(ORIGIN);
    let answer = passkey.register(&options.body);
    let added = v
        .post(
            "/settings/passkeys",
            &[("passkey_name", name), ("credential", &answer)],
        )
        .await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);
    assert_eq!(added.location(), "/settings");
    passkey
}

/// Signs in with the password only: the answer sends to `/login/2fa`.
pub(crate) async fn password_step(app: &TestApp, email: &str) -> Visitor {
    let v = app.visitor();
    let page = v.sign_in(email, PASSWORD).await;
    assert_eq!(page.location(), "/login/2fa", "{}", page.body);
    v
}

/// The options for the second step with a passkey.
pub(crate) async fn sign_in_options(v: &Visitor) -> String {
    let options = v.post("/login/2fa/passkey/options", &[]).await;
    assert_eq!(options.status, StatusCode::OK, "{}", options.body);
    options.body
}

pub(crate) async fn answer_second_step(v: &Visitor, answer: &str) -> Page {
    v.post("/login/2fa/passkey", &[("credential", answer)])
        .await
}

/// The stored counter of the passkey with `id`, read as the owner.
pub(crate) async fn stored_counter(app: &TestApp, passkey: &SoftPasskey) -> i64 {
    sqlx::query_scalar(
        "select (passkey->'cred'->>'counter')::bigint from passkeys where credential_id = $1",
    )
    .bind(&passkey.credential_id)
    .fetch_one(&app.admin)
    .await
    .expect("counter")
}

pub(crate) async fn events(app: &TestApp, email: &str, kind: &str) -> Vec<String> {
    sqlx::query_scalar(
        "select detail from security_events e join members m on m.id = e.member_id
         where m.email = $1 and e.kind = $2 order by e.id",
    )
    .bind(email)
    .bind(kind)
    .fetch_all(&app.admin)
    .await
    .expect("events")
}

/// Makes every session of `email` older than the step-up window.
pub(crate) async fn age_sign_in(app: &TestApp, email: &str) {
    sqlx::query(
        "update paddock_private.sessions set authenticated_at = now() - interval '11 minutes'
         where member_id = (select id from members where email = $1)",
    )
    .bind(email)
    .execute(&app.admin)
    .await
    .expect("age the sign-in");
}

pub(crate) fn field_error(page: &Page, field: &str) -> String {
    crate::helpers::element_text(&page.body, &format!("id=\"{field}-error\""))
}

#[tokio::test]
async fn a_member_adds_a_passkey_and_signs_in_with_password_and_passkey() {
    let app = TestApp::spawn().await;
    let ada = app.owner("ada@example.com", "Club").await;
    let mut passkey = add_passkey(&ada, "Laptop").await;
    let settings = ada.get("/settings").await;
    assert!(
        settings.status_message().contains("Passkey “Laptop” added"),
        "{}",
        settings.status_message()
    );
    assert!(settings.body.contains("<td>Laptop</td>"));
    assert!(settings.body.contains(">Never</td>"), "not used yet");
    assert!(
        settings
            .body
            .contains("signing in asks for one of your passkeys")
            && !settings.body.contains("your password alone signs you in"),
        "the two-factor section tells the truth"
    );
    assert_eq!(
        events(&app, "ada@example.com", "passkey_added").await,
        ["Laptop"]
    );
    ada.post("/logout", &[]).await;

    let v = password_step(&app, "ada@example.com").await;
    let step = v.get("/login/2fa").await;
    assert!(step.body.contains("Use a passkey"));
    assert!(
        !step.body.contains("name=\"code\""),
        "no code field for a member with a passkey only"
    );
    assert_eq!(
        v.get("/portfolio").await.location(),
        "/login",
        "half signed in: nothing else"
    );
    let options = sign_in_options(&v).await;
    let done = answer_second_step(&v, &passkey.assert(&options)).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(done.location(), "/portfolio");
    assert_eq!(v.get("/portfolio").await.status, StatusCode::OK);
    assert_eq!(
        stored_counter(&app, &passkey).await,
        1,
        "the counter is kept"
    );
    let settings = v.get("/settings").await;
    assert!(!settings.body.contains(">Never</td>"), "last used is shown");
    assert_eq!(
        events(&app, "ada@example.com", "sign_in")
            .await
            .last()
            .map(String::as_str),
        Some("with a passkey")
    );
}

#[tokio::test]
async fn a_ceremony_begun_on_one_replica_finishes_on_another() {
    let one = TestApp::spawn().await;
    let two = TestApp::spawn_with(Options {
        database: Some(one.database.clone()),
        ..Options::default()
    })
    .await;
    let ada = one.owner("ada@example.com", "Club").await;
    let options = registration_options(&ada, "Laptop").await;
    let mut passkey = SoftPasskey::new(ORIGIN);
    let on_two = ada.at(&two.url(""));
    let added = on_two
        .post(
            "/settings/passkeys",
            &[
                ("passkey_name", "Laptop"),
                ("credential", &passkey.register(&options.body)),
            ],
        )
        .await;
    assert_eq!(added.location(), "/settings", "{}", added.body);

    let v = password_step(&one, "ada@example.com").await;
    let options = sign_in_options(&v).await;
    let done = answer_second_step(&v.at(&two.url("")), &passkey.assert(&options)).await;
    assert_eq!(done.location(), "/portfolio", "{}", done.body);
}

#[tokio::test]
async fn adding_and_removing_a_passkey_need_a_recent_sign_in_and_adding_needs_javascript() {
    let app = TestApp::spawn().await;
    let ada = app.owner("ada@example.com", "Club").await;
    // What a browser without JavaScript posts: the name, no answer.
    let page = ada
        .post("/settings/passkeys", &[("passkey_name", "Work laptop")])
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(field_error(&page, "passkey_name").contains("needs JavaScript"));
    assert!(
        page.body.contains("value=\"Work laptop\""),
        "the name is kept"
    );
    let page = ada
        .post("/settings/passkeys/options", &[("passkey_name", "  ")])
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("Name the passkey"), "{}", page.body);

    add_passkey(&ada, "Laptop").await;
    let id: String = sqlx::query_scalar("select id::text from passkeys")
        .fetch_one(&app.admin)
        .await
        .expect("id");
    age_sign_in(&app, "ada@example.com").await;
    for (path, fields) in [
        (
            "/settings/passkeys/options",
            vec![("passkey_name", "Phone")],
        ),
        (
            "/settings/passkeys",
            vec![("passkey_name", "Phone"), ("credential", "{}")],
        ),
        (&*format!("/settings/passkeys/{id}/remove"), vec![]),
    ] {
        let page = ada.post(path, &fields).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(page.location(), "/reauth?next=%2Fsettings", "{path}");
    }
    let settings = ada.get("/settings").await;
    assert!(
        !settings.body.contains("Add passkey"),
        "no form without a recent sign-in"
    );
    assert!(settings.body.contains("/reauth?next=%2Fsettings"));
    let count: i64 = sqlx::query_scalar("select count(*) from passkeys")
        .fetch_one(&app.admin)
        .await
        .expect("count");
    assert_eq!(count, 1, "nothing added or removed");
    let ceremonies: i64 =
        sqlx::query_scalar("select count(*) from paddock_private.passkey_ceremonies")
            .fetch_one(&app.admin)
            .await
            .expect("count");
    assert_eq!(ceremonies, 0, "no ceremony was begun");
}

/// Turns TOTP on with a code computed from the key the set-up page shows.
pub(crate) async fn turn_on_totp(v: &Visitor) -> TotpSecret {
    let setup = v.get("/settings/totp").await;
    let marker = "class=\"secret-once\">";
    let start = setup.body.find(marker).expect("the key") + marker.len();
    let key = &setup.body[start..start + setup.body[start..].find('<').expect("end")];
    let secret = TotpSecret::from_base32(key).expect("base32");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let code = secret.code_at(now).expect("code");
    let done = v.post("/settings/totp", &[("code", &code)]).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    secret
}

#[tokio::test]
async fn the_last_second_factor_cannot_be_removed_while_the_organization_requires_one() {
    let app = TestApp::spawn().await;
    let ada = app.owner("ada@example.com", "Club").await;
    add_passkey(&ada, "Laptop").await;
    add_passkey(&ada, "Security key").await;
    let ids: Vec<String> = sqlx::query_scalar("select id::text from passkeys order by created_at")
        .fetch_all(&app.admin)
        .await
        .expect("ids");
    let policy = ada
        .post("/org/policy", &[("require_two_factor", "on")])
        .await;
    assert_eq!(policy.status, StatusCode::SEE_OTHER);

    let removed = ada
        .post(&format!("/settings/passkeys/{}/remove", ids[0]), &[])
        .await;
    assert_eq!(removed.location(), "/settings", "another passkey remains");
    let refused = ada
        .post(&format!("/settings/passkeys/{}/remove", ids[1]), &[])
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused.alert().contains("your last second factor"),
        "{}",
        refused.alert()
    );
    assert!(
        refused.body.contains("<td>Security key</td>"),
        "still listed"
    );

    turn_on_totp(&ada).await;
    let removed = ada
        .post(&format!("/settings/passkeys/{}/remove", ids[1]), &[])
        .await;
    assert_eq!(removed.location(), "/settings");
    assert_eq!(
        events(&app, "ada@example.com", "passkey_removed").await,
        ["Laptop", "Security key"]
    );
    let unknown = ada
        .post(&format!("/settings/passkeys/{}/remove", ids[1]), &[])
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "gone is gone");
}

#[tokio::test]
async fn confirming_its_you_with_a_passkey_makes_the_session_fresh() {
    let app = TestApp::spawn().await;
    let ada = app.owner("ada@example.com", "Club").await;
    let mut passkey = add_passkey(&ada, "Laptop").await;
    age_sign_in(&app, "ada@example.com").await;
    assert!(ada.get("/org").await.body.contains("Confirm it"));

    let reauth = ada.get("/reauth?next=/org").await;
    assert!(reauth.body.contains("Use a passkey"));
    assert!(reauth.body.contains("<script src=\"/static/paddock.js"));
    let unanswered = ada
        .post("/reauth/passkey", &[("next", "/org"), ("credential", "")])
        .await;
    assert_eq!(unanswered.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(unanswered.alert().contains("needs JavaScript"));

    let options = ada.post("/reauth/passkey/options", &[]).await;
    assert_eq!(options.status, StatusCode::OK, "{}", options.body);
    let wrong = SoftPasskey::new(ORIGIN).assert(&options.body);
    let refused = ada
        .post(
            "/reauth/passkey",
            &[("next", "/org"), ("credential", &wrong)],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(
        ada.get("/org").await.body.contains("Confirm it"),
        "still stale"
    );

    let options = ada.post("/reauth/passkey/options", &[]).await;
    let answer = passkey.assert(&options.body);
    let done = ada
        .post(
            "/reauth/passkey",
            &[("next", "//evil.example"), ("credential", &answer)],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(done.location(), "/portfolio", "only local paths");
    assert!(
        ada.get("/org").await.body.contains("Create invite"),
        "fresh again"
    );
    assert_eq!(
        events(&app, "ada@example.com", "reauthenticated").await,
        ["with a passkey"]
    );
    assert_eq!(stored_counter(&app, &passkey).await, 1);
}

#[tokio::test]
async fn the_one_script_is_ours_long_cached_and_the_only_one_allowed() {
    let app = TestApp::spawn().await;
    let ada = app.owner("ada@example.com", "Club").await;
    add_passkey(&ada, "Laptop").await;
    let script = app.visitor().get("/static/paddock.js").await;
    assert_eq!(script.status, StatusCode::OK);
    assert!(script.header("content-type").starts_with("text/javascript"));
    assert!(script.header("cache-control").contains("max-age=31536000"));
    let settings = ada.get("/settings").await;
    let csp = settings.header("content-security-policy");
    assert!(
        csp.contains("script-src 'self'") && csp.contains("connect-src 'self'"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
    ada.post("/logout", &[]).await;
    let v = password_step(&app, "ada@example.com").await;
    let second = v.get("/login/2fa").await;
    for page in [&settings, &second] {
        assert!(
            page.body
                .contains("<script src=\"/static/paddock.js?v=1\" defer></script>")
        );
        assert_eq!(page.body.matches("<script").count(), 1, "no inline script");
        assert!(!page.body.contains(" onclick=") && !page.body.contains(" onsubmit="));
    }
    assert!(
        !app.visitor().get("/login").await.body.contains("<script"),
        "pages without passkeys load no script"
    );
}

#[tokio::test]
async fn a_member_the_organization_requires_a_second_factor_of_may_add_a_passkey_instead() {
    let app = TestApp::spawn().await;
    let ada = app.owner("ada@example.com", "Club").await;
    let code = ada.create_invite().await;
    app.member("bob@example.com", &code).await;
    let policy = ada
        .post("/org/policy", &[("require_two_factor", "on")])
        .await;
    assert_eq!(policy.status, StatusCode::SEE_OTHER);

    let bob = app.visitor();
    assert_eq!(
        bob.sign_in("bob@example.com", PASSWORD).await.location(),
        "/portfolio"
    );
    assert_eq!(bob.get("/portfolio").await.location(), "/settings/totp");
    let setup = bob.get("/settings/totp").await;
    assert!(setup.body.contains("Or add a passkey") && setup.body.contains("Add passkey"));
    add_passkey(&bob, "Phone").await;
    assert_eq!(
        bob.get("/portfolio").await.status,
        StatusCode::OK,
        "the requirement is met"
    );
    assert!(
        !bob.get("/settings/totp")
            .await
            .body
            .contains("Or add a passkey"),
        "offered only while no second factor is set up"
    );
}
