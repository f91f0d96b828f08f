//! Sessions, password changes, reset links and the member lifecycle: what a
//! member and an owner do over time, over HTTP.

use reqwest::StatusCode;

use crate::{
    account_security::turn_on_totp,
    credentials::enroll,
    helpers::{PASSWORD, Page, TestApp, Visitor},
};

const NEW_PASSWORD: &str = "copper lantern meadow orbit";
const SECRET: &str = "lifecyclesecret000000000000000000000001";

/// The ids of the "Sign out" buttons in the Sessions table.
fn revoke_paths(page: &Page) -> Vec<String> {
    page.body
        .split("action=\"/settings/sessions/")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .filter(|p| p.ends_with("/revoke"))
        .map(|p| format!("/settings/sessions/{p}"))
        .collect()
}

async fn signed_in(app: &TestApp, email: &str, password: &str) -> Visitor {
    let v = app.visitor();
    let page = v.sign_in(email, password).await;
    assert_eq!(page.location(), "/portfolio", "{}", page.body);
    v
}

#[tokio::test]
async fn the_sessions_table_lists_both_browsers_and_ending_one_signs_it_out() {
    let app = TestApp::spawn().await;
    let laptop = app.owner("ada@example.com", "Club").await;
    let phone = signed_in(&app, "ada@example.com", PASSWORD).await;
    let page = laptop.get("/settings").await;
    assert!(page.body.contains("<caption>Sessions</caption>"));
    for column in ["Signed in", "Last active", "IP", "Device"] {
        assert!(page.body.contains(&format!(">{column}<")), "{column}");
    }
    assert!(page.body.contains("This session"));
    assert!(page.body.contains("127.0.0.1"));
    let revoke = revoke_paths(&page);
    assert_eq!(revoke.len(), 1, "one other session: {revoke:?}");
    assert!(
        !revoke[0].contains(&laptop.session_token().expose_text())
            && !revoke[0].contains(&phone.session_token().expose_text()),
        "public ids, never the cookie value"
    );
    assert_eq!(
        laptop.post(&revoke[0], &[]).await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(phone.get("/portfolio").await.location(), "/login");
    assert_eq!(laptop.get("/portfolio").await.status, StatusCode::OK);
    assert!(
        laptop
            .get("/activity")
            .await
            .body
            .contains("Session signed out")
    );

    let tablet = signed_in(&app, "ada@example.com", PASSWORD).await;
    let other = signed_in(&app, "ada@example.com", PASSWORD).await;
    let page = laptop.post("/settings/sessions/revoke-others", &[]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(
        laptop
            .get("/settings")
            .await
            .status_message()
            .contains("2 other sessions")
    );
    for v in [&tablet, &other] {
        assert_eq!(v.get("/portfolio").await.location(), "/login");
    }
    // Another member's session id is the same 404 as an unknown one.
    let eve = app.owner("eve@example.com", "Elsewhere").await;
    let eves: String = sqlx::query_scalar(
        "select public_id::text from paddock_private.sessions s join members m on m.id = s.member_id where m.email = 'eve@example.com'",
    )
    .fetch_one(&app.admin)
    .await
    .expect("Eve's session");
    assert_eq!(
        laptop
            .post(&format!("/settings/sessions/{eves}/revoke"), &[])
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(eve.get("/portfolio").await.status, StatusCode::OK);
}

#[tokio::test]
async fn changing_the_password_ends_every_other_session_and_renews_this_one() {
    let app = TestApp::spawn().await;
    let laptop = app.owner("ada@example.com", "Club").await;
    let phone = signed_in(&app, "ada@example.com", PASSWORD).await;
    let form = laptop.get("/settings").await;
    for label in [
        "Current password",
        "New password",
        "Confirm new password",
        "Change password",
    ] {
        assert!(form.body.contains(label), "{label}");
    }
    let weak = laptop
        .post(
            "/settings/password",
            &[
                ("current_password", PASSWORD),
                ("new_password", "short"),
                ("confirm_new_password", "short"),
            ],
        )
        .await;
    assert_eq!(weak.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(weak.body.contains("id=\"new_password-error\""));
    let wrong = laptop
        .post(
            "/settings/password",
            &[
                ("current_password", "not the current password"),
                ("new_password", NEW_PASSWORD),
                ("confirm_new_password", NEW_PASSWORD),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.body.contains("id=\"current_password-error\""));
    let before = laptop.session_token();
    let done = laptop
        .post(
            "/settings/password",
            &[
                ("current_password", PASSWORD),
                ("new_password", NEW_PASSWORD),
                ("confirm_new_password", NEW_PASSWORD),
            ],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_ne!(laptop.session_token(), before, "this session has a new id");
    assert_eq!(laptop.get("/portfolio").await.status, StatusCode::OK);
    assert_eq!(phone.get("/portfolio").await.location(), "/login");
    assert_eq!(
        app.visitor()
            .sign_in("ada@example.com", PASSWORD)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    signed_in(&app, "ada@example.com", NEW_PASSWORD).await;
    let activity = laptop.get("/activity?kind=password_changed").await;
    assert!(
        activity.body.contains("Password changed"),
        "{}",
        activity.body
    );
}

/// The reset link an owner created, read off the page that shows it once.
fn reset_link(page: &Page) -> String {
    let start = page.body.find("/reset/").expect("a reset link");
    page.body[start..]
        .split('<')
        .next()
        .expect("link")
        .to_owned()
}

#[tokio::test]
async fn a_reset_link_sets_a_password_once_ends_every_session_and_keeps_the_second_factor() {
    let app = TestApp::spawn().await;
    let ada = app.owner("ada@example.com", "Club").await;
    let code = ada.create_invite().await;
    let bob = app.member("bob@example.com", &code).await;
    let (secret, _) = turn_on_totp(&bob).await;
    let bob_id: String =
        sqlx::query_scalar("select id::text from members where email = 'bob@example.com'")
            .fetch_one(&app.admin)
            .await
            .expect("bob");
    let page = ada
        .post(&format!("/org/members/{bob_id}/reset-link"), &[])
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let link = reset_link(&page);
    let code_text = link.trim_start_matches("/reset/");
    assert!(
        app.find_in_database(&[code_text.as_bytes()])
            .await
            .is_empty(),
        "only the link's hash is stored"
    );
    assert!(!ada.get("/org").await.body.contains(&link), "shown once");

    let stranger = app.visitor();
    let form = stranger.get(&link).await;
    assert_eq!(form.status, StatusCode::OK);
    for label in ["New password", "Confirm new password", "Set password"] {
        assert!(form.body.contains(label), "{label}");
    }
    let mismatch = stranger
        .post(
            &link,
            &[
                ("new_password", NEW_PASSWORD),
                ("confirm_new_password", "something else entirely"),
            ],
        )
        .await;
    assert_eq!(mismatch.status, StatusCode::UNPROCESSABLE_ENTITY);
    let set = stranger
        .post(
            &link,
            &[
                ("new_password", NEW_PASSWORD),
                ("confirm_new_password", NEW_PASSWORD),
            ],
        )
        .await;
    assert_eq!(set.status, StatusCode::SEE_OTHER, "{}", set.body);
    assert_eq!(set.location(), "/login");
    assert!(
        stranger
            .get("/login")
            .await
            .status_message()
            .contains("new password is set")
    );
    assert_eq!(
        bob.get("/portfolio").await.location(),
        "/login",
        "every session ended"
    );
    assert_eq!(
        stranger.get(&link).await.status,
        StatusCode::NOT_FOUND,
        "single use"
    );

    let v = app.visitor();
    let step = v.sign_in("bob@example.com", NEW_PASSWORD).await;
    assert_eq!(
        step.location(),
        "/login/2fa",
        "the second factor is still asked for"
    );
    let code = secret.code_at(now() + 30).expect("code");
    assert_eq!(
        v.post("/login/2fa", &[("code", &code)]).await.location(),
        "/portfolio"
    );
    assert!(v.get("/activity").await.body.contains("Password reset"));
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

#[tokio::test]
async fn a_reset_link_expires_after_an_hour() {
    let app = TestApp::spawn().await;
    let ada = app.owner("ada@example.com", "Club").await;
    let code = ada.create_invite().await;
    app.member("bob@example.com", &code).await;
    let bob_id: String =
        sqlx::query_scalar("select id::text from members where email = 'bob@example.com'")
            .fetch_one(&app.admin)
            .await
            .expect("bob");
    let link = reset_link(
        &ada.post(&format!("/org/members/{bob_id}/reset-link"), &[])
            .await,
    );
    sqlx::query("update paddock_private.reset_links set expires_at = now() - interval '1 second'")
        .execute(&app.admin)
        .await
        .expect("expire");
    let page = app.visitor().get(&link).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(page.body.contains("expired"));
    assert_eq!(
        app.visitor().get("/reset/not-a-code").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_removed_member_cannot_sign_in_and_their_keys_are_gone_but_their_events_stay() {
    let app = TestApp::spawn().await;
    let ada = app.owner("ada@example.com", "Club").await;
    let code = ada.create_invite().await;
    let bob = app.member("bob@example.com", &code).await;
    enroll(&bob, "Bob paper", "PKBOBLIFECYCLE000001", SECRET, "paper").await;
    let bob_id: String =
        sqlx::query_scalar("select id::text from members where email = 'bob@example.com'")
            .fetch_one(&app.admin)
            .await
            .expect("bob");
    let events_before: i64 =
        sqlx::query_scalar("select count(*) from security_events where member_id = $1::uuid")
            .bind(&bob_id)
            .fetch_one(&app.admin)
            .await
            .expect("events");
    let page = ada
        .post(&format!("/org/members/{bob_id}/remove"), &[])
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(
        bob.get("/portfolio").await.location(),
        "/login",
        "his sessions ended"
    );
    assert_eq!(
        app.visitor()
            .sign_in("bob@example.com", PASSWORD)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let credentials: i64 = sqlx::query_scalar("select count(*) from credentials")
        .fetch_one(&app.admin)
        .await
        .expect("count");
    assert_eq!(credentials, 0, "his sealed keys are deleted");
    let events_after: i64 =
        sqlx::query_scalar("select count(*) from security_events where member_id = $1::uuid")
            .bind(&bob_id)
            .fetch_one(&app.admin)
            .await
            .expect("events");
    assert!(events_after >= events_before, "his events are kept");
    let org = ada.get("/org").await;
    assert!(!org.body.contains("bob@example.com"), "no longer listed");
    assert!(ada.get("/activity").await.body.contains("Member removed"));
    // Owners cannot remove themselves; plain members cannot remove anyone.
    let ada_id: String =
        sqlx::query_scalar("select id::text from members where email = 'ada@example.com'")
            .fetch_one(&app.admin)
            .await
            .expect("ada");
    ada.post(&format!("/org/members/{ada_id}/remove"), &[])
        .await;
    assert_eq!(ada.get("/portfolio").await.status, StatusCode::OK);
}

#[tokio::test]
async fn an_organization_always_keeps_an_owner_and_only_owners_change_roles() {
    let app = TestApp::spawn().await;
    let ada = app.owner("ada@example.com", "Club").await;
    let code = ada.create_invite().await;
    let bob = app.member("bob@example.com", &code).await;
    let id = |email: &'static str| {
        let admin = app.admin.clone();
        async move {
            sqlx::query_scalar::<_, String>("select id::text from members where email = $1")
                .bind(email)
                .fetch_one(&admin)
                .await
                .expect("id")
        }
    };
    let (ada_id, bob_id) = (id("ada@example.com").await, id("bob@example.com").await);
    let last = ada
        .post(
            &format!("/org/members/{ada_id}/role"),
            &[("role", "member")],
        )
        .await;
    assert_eq!(last.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        last.alert().contains("at least one owner"),
        "{}",
        last.alert()
    );
    let refused = bob
        .post(
            &format!("/org/members/{ada_id}/role"),
            &[("role", "member")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let promoted = ada
        .post(&format!("/org/members/{bob_id}/role"), &[("role", "owner")])
        .await;
    assert_eq!(promoted.status, StatusCode::SEE_OTHER);
    assert!(
        bob.get("/org").await.body.contains("Create invite"),
        "Bob is an owner now"
    );
    let demoted = ada
        .post(
            &format!("/org/members/{ada_id}/role"),
            &[("role", "member")],
        )
        .await;
    assert_eq!(
        demoted.status,
        StatusCode::SEE_OTHER,
        "another owner remains"
    );
    let roles: Vec<String> = sqlx::query_scalar("select role from members order by email")
        .fetch_all(&app.admin)
        .await
        .expect("roles");
    assert_eq!(roles, ["member", "owner"]);
    assert!(ada.get("/activity").await.body.contains("Role changed"));
}

#[tokio::test]
async fn the_two_factor_policy_sends_members_without_one_to_set_it_up_and_nowhere_else() {
    let app = TestApp::spawn().await;
    let ada = app.owner("ada@example.com", "Club").await;
    let code = ada.create_invite().await;
    let bob = app.member("bob@example.com", &code).await;
    let form = ada.get("/org").await;
    assert!(
        form.body.contains("Require two-factor authentication")
            && form.body.contains("Save policy")
    );
    assert_eq!(
        ada.post("/org/policy", &[("require_two_factor", "on")])
            .await
            .status,
        StatusCode::SEE_OTHER
    );
    let changed: i64 =
        sqlx::query_scalar("select count(*) from security_events where kind = 'policy_changed'")
            .fetch_one(&app.admin)
            .await
            .expect("count");
    assert_eq!(changed, 1);
    // The owner herself has no second factor yet: she is sent to set one up too.
    assert_eq!(ada.get("/org").await.location(), "/settings/totp");
    for path in [
        "/portfolio",
        "/credentials",
        "/org",
        "/settings",
        "/activity",
    ] {
        let page = bob.get(path).await;
        assert_eq!(page.location(), "/settings/totp", "{path}");
    }
    let setup = bob.get("/settings/totp").await;
    assert_eq!(setup.status, StatusCode::OK);
    assert!(setup.alert().contains("requires two-factor"));
    turn_on_totp(&bob).await;
    assert_eq!(
        bob.get("/portfolio").await.status,
        StatusCode::OK,
        "free again"
    );
}
