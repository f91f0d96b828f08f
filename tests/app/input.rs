//! Bad input gets a clear answer and loses nothing: never a 500.

use std::sync::Arc;

use reqwest::StatusCode;
use sha2_free::sha256_hex;

use crate::{
    credentials::enroll,
    helpers::{PASSWORD, TestApp},
};

mod sha2_free {
    /// SHA-256 of `bytes` as lowercase hex, computed by PostgreSQL's own function
    /// through any pool (so the test needs no hashing crate).
    pub async fn sha256_hex(pool: &sqlx::PgPool, bytes: &[u8]) -> String {
        sqlx::query_scalar("select encode(sha256($1), 'hex')")
            .bind(bytes)
            .fetch_one(pool)
            .await
            .expect("sha256")
    }
}

const SECRET: &str = "inputsecret0000000000000000000000000001";

#[tokio::test]
async fn control_characters_in_any_text_field_get_422_beside_the_field() {
    let app = TestApp::spawn().await;
    let nul = "Club\0";
    let visitor = app.visitor();
    for (fields, field) in [
        (
            vec![
                ("email", "ada\0@example.com"),
                ("password", PASSWORD),
                ("confirm_password", PASSWORD),
                ("organization_name", "Club"),
                ("invite_code", ""),
            ],
            "email",
        ),
        (
            vec![
                ("email", "ada@example.com"),
                ("password", PASSWORD),
                ("confirm_password", PASSWORD),
                ("organization_name", nul),
                ("invite_code", ""),
            ],
            "organization_name",
        ),
        (
            vec![
                ("email", "ada@example.com"),
                ("password", PASSWORD),
                ("confirm_password", PASSWORD),
                ("organization_name", ""),
                ("invite_code", "abc\u{7}def"),
            ],
            "invite_code",
        ),
    ] {
        let page = visitor.post("/signup", &fields).await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{field}");
        assert!(
            page.body.contains(&format!("id=\"{field}-error\"")),
            "{field}: {}",
            page.body
        );
    }
    let page = visitor.sign_in("ada\0@example.com", PASSWORD).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    let counted: i64 = sqlx::query_scalar("select count(*) from paddock_private.sign_in_failures")
        .fetch_one(&app.admin)
        .await
        .expect("count");
    assert_eq!(counted, 0, "a malformed sign-in is not a guess");

    let ada = app.owner("ada@example.com", "Club").await;
    let page = ada
        .post(
            "/credentials",
            &[
                ("label", "Main\0"),
                ("environment", "paper"),
                ("api_key_id", "PKINPUTACCOUNT000001"),
                ("secret_key", SECRET),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("id=\"label-error\""));
    assert!(page.body.contains("control characters"));
    assert_eq!(app.sim.request_count(), 0, "nothing was sent to Alpaca");
}

#[tokio::test]
async fn a_form_that_cannot_be_read_gets_our_400_page_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let ada = app.owner("ada@example.com", "Club").await;
    let token = ada.csrf().await;
    let response = ada
        .http
        .post(app.url("/credentials"))
        .header("content-type", "text/plain")
        .body(format!("csrf_token={token}&label=Main&environment=paper"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body = response.text().await.expect("body");
    assert!(
        body.contains("could not read what this form sent"),
        "{body}"
    );
    let saved: i64 = sqlx::query_scalar("select count(*) from credentials")
        .fetch_one(&app.admin)
        .await
        .expect("count");
    assert_eq!(saved, 0);
    // A malformed id in a URL is the same 404 as another member's.
    let page = ada.get("/credentials/not-a-uuid/rotate").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(page.body.contains("Not found"));
}

#[tokio::test]
async fn two_enrollments_of_one_account_racing_keep_one_row_and_never_fail_with_500() {
    let app = TestApp::spawn().await;
    let ada = Arc::new(app.owner("ada@example.com", "Club").await);
    ada.csrf().await;
    // Key ids that differ only in their last four characters are one account.
    let pending: Vec<_> = ["PKRACEACCOUNT000AAAA", "PKRACEACCOUNT000BBBB"]
        .into_iter()
        .map(|key| {
            let ada = ada.clone();
            tokio::spawn(async move {
                ada.post(
                    "/credentials",
                    &[
                        ("label", key),
                        ("environment", "paper"),
                        ("api_key_id", key),
                        ("secret_key", SECRET),
                    ],
                )
                .await
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for page in pending {
        let page = page.await.expect("enrollment");
        if page.status == StatusCode::UNPROCESSABLE_ENTITY {
            assert!(page.body.contains("enrolled"), "{}", page.body);
        }
        statuses.push(page.status);
    }
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::SEE_OTHER, StatusCode::UNPROCESSABLE_ENTITY]
    );
    let saved: i64 = sqlx::query_scalar("select count(*) from credentials")
        .fetch_one(&app.admin)
        .await
        .expect("count");
    assert_eq!(saved, 1);
    // And the loser can see the winner in the list.
    enroll(&ada, "Other", "PKOTHERACCOUNT000001", SECRET, "paper").await;
}

#[tokio::test]
async fn the_session_cookie_is_stored_nowhere_only_its_hash() {
    let app = TestApp::spawn().await;
    let ada = app.owner("ada@example.com", "Club").await;
    ada.get("/portfolio").await;
    let token = ada.session_token();
    let text = token.expose_text();
    let hex: String = token
        .expose_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let found = app
        .find_in_database(&[text.as_bytes(), hex.as_bytes(), token.expose_bytes()])
        .await;
    assert!(
        found.is_empty(),
        "the session secret is stored at {found:?}"
    );
    let stored: Vec<String> =
        sqlx::query_scalar("select encode(token_hash, 'hex') from paddock_private.sessions")
            .fetch_all(&app.admin)
            .await
            .expect("sessions");
    assert_eq!(
        stored,
        [sha256_hex(&app.admin, token.expose_bytes()).await],
        "one session, under the SHA-256 of its secret"
    );
    let privileged: bool = sqlx::query_scalar(
        "select has_schema_privilege('paddock_app', 'paddock_private', 'USAGE')",
    )
    .fetch_one(&app.admin)
    .await
    .expect("privilege");
    assert!(
        !privileged,
        "the app role cannot even look at the session table"
    );
}
