//! Enrolling, listing, rotating and deleting sealed Alpaca keys.

use reqwest::StatusCode;
use sqlx::Row;

use crate::helpers::{TestApp, Visitor};

pub const KEY: &str = "PKALICE0000000001WXYZ";
pub const SECRET: &str = "alicesecret0000000000000000000000000001";

/// Enrolls a paper credential and asserts it worked.
pub async fn enroll(v: &Visitor, label: &str, key: &str, secret: &str, environment: &str) {
    let page = v
        .post(
            "/credentials",
            &[
                ("label", label),
                ("environment", environment),
                ("api_key_id", key),
                ("secret_key", secret),
            ],
        )
        .await;
    assert_eq!(
        page.status,
        StatusCode::SEE_OTHER,
        "enrollment failed: {}",
        page.body
    );
    assert_eq!(page.location(), "/credentials");
}

async fn credential_id(app: &TestApp, label: &str) -> String {
    let row = sqlx::query("select id::text from credentials where label = $1")
        .bind(label)
        .fetch_one(&app.admin)
        .await
        .expect("credential");
    row.get(0)
}

#[tokio::test]
async fn enrolling_verifies_seals_and_lists_the_key_masked() {
    let app = TestApp::spawn().await;
    let ada = app.owner("ada@example.com", "Club").await;
    let form = ada.get("/credentials/new").await;
    for label in [
        "Label",
        "Environment",
        "Paper",
        "Live",
        "API key ID",
        "Secret key",
        "Save credential",
    ] {
        assert!(form.body.contains(label), "{label}");
    }
    enroll(&ada, "Main paper", KEY, SECRET, "paper").await;
    let page = ada.get("/credentials").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("<caption>Credentials</caption>"));
    assert!(page.status_message().contains("Saved “Main paper”"));
    assert!(page.body.contains("PK…WXYZ"), "masked key");
    assert!(!page.body.contains(KEY), "the key id is never shown again");
    assert!(!page.body.contains(SECRET));
    let account = app.sim.account(KEY).expect("sim account").account_number;
    assert!(
        page.body.contains(&account),
        "account number learned from Alpaca"
    );
    assert!(page.body.contains("Rotate") && page.body.contains("Delete"));

    let row = sqlx::query("select seal_key_version, key_id_last4, environment from credentials")
        .fetch_one(&app.admin)
        .await
        .expect("row");
    assert_eq!(row.get::<String, _>(0), "k1");
    assert_eq!(row.get::<String, _>(1), "WXYZ");
    assert_eq!(row.get::<String, _>(2), "paper");

    let activity = ada.get("/activity").await;
    assert!(activity.body.contains("Credential added"));
}

#[tokio::test]
async fn no_table_holds_the_key_id_or_secret_in_plaintext() {
    let app = TestApp::spawn().await;
    let ada = app.owner("ada@example.com", "Club").await;
    enroll(&ada, "Main", KEY, SECRET, "paper").await;
    ada.get("/credentials").await;
    let found = app
        .find_in_database(&[KEY.as_bytes(), SECRET.as_bytes()])
        .await;
    assert!(found.is_empty(), "key material in plaintext at {found:?}");
}

#[tokio::test]
async fn invalid_enrollment_gets_422_beside_the_fields_and_never_echoes_the_secret() {
    let app = TestApp::spawn().await;
    let ada = app.owner("ada@example.com", "Club").await;
    let cases: &[(&str, &str, &str, &str, &str)] = &[
        ("", "paper", KEY, SECRET, "label-error"),
        (&"x".repeat(65), "paper", KEY, SECRET, "label-error"),
        ("Main", "sideways", KEY, SECRET, "environment-error"),
        ("Main", "paper", "PK-short", SECRET, "api_key_id-error"),
        ("Main", "paper", KEY, "tiny", "secret_key-error"),
        (
            "Main",
            "paper",
            "PKREJECTED0000000401",
            SECRET,
            "api_key_id-error",
        ),
    ];
    for (label, environment, key, secret, error_id) in cases {
        let page = ada
            .post(
                "/credentials",
                &[
                    ("label", label),
                    ("environment", environment),
                    ("api_key_id", key),
                    ("secret_key", secret),
                ],
            )
            .await;
        assert_eq!(
            page.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{error_id}: {}",
            page.alert()
        );
        assert!(
            page.body.contains(&format!("id=\"{error_id}\"")),
            "{error_id}"
        );
        assert!(!page.body.contains(SECRET), "the secret is never echoed");
        assert!(!page.body.contains(KEY), "nor the key id");
        if !label.is_empty() && label.len() <= 64 {
            assert!(
                page.body.contains(&format!("value=\"{label}\"")),
                "label kept"
            );
        }
    }
    let rejected = ada
        .post(
            "/credentials",
            &[
                ("label", "Main"),
                ("environment", "paper"),
                ("api_key_id", "PKREJECTED0000000401"),
                ("secret_key", SECRET),
            ],
        )
        .await;
    assert!(rejected.body.contains("Alpaca rejected these keys"));
    let stored: i64 = sqlx::query_scalar("select count(*) from credentials")
        .fetch_one(&app.admin)
        .await
        .expect("count");
    assert_eq!(stored, 0, "nothing stored");
}

#[tokio::test]
async fn keys_for_the_other_environment_get_a_helpful_message() {
    let app = TestApp::spawn().await;
    let ada = app.owner("ada@example.com", "Club").await;
    let page = ada
        .post(
            "/credentials",
            &[
                ("label", "Live one"),
                ("environment", "paper"),
                ("api_key_id", "AKLIVEKEY0000000ABCD"),
                ("secret_key", SECRET),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        page.body.contains("These are live keys: choose Live."),
        "{}",
        page.body
    );
    let page = ada
        .post(
            "/credentials",
            &[
                ("label", "Paper one"),
                ("environment", "live"),
                ("api_key_id", KEY),
                ("secret_key", SECRET),
            ],
        )
        .await;
    assert!(page.body.contains("These are paper keys: choose Paper."));
    enroll(&ada, "Live one", "AKLIVEKEY0000000ABCD", SECRET, "live").await;
    assert!(ada.get("/credentials").await.body.contains("AK…ABCD"));
}

#[tokio::test]
async fn alpaca_being_down_is_explained_and_the_label_is_kept() {
    let app = TestApp::spawn().await;
    let ada = app.owner("ada@example.com", "Club").await;
    for (key, message) in [
        ("PKDOWN000000000000500", "Alpaca is unavailable right now"),
        (
            "PKBUSY000000000000429",
            "Alpaca is rate-limiting this account",
        ),
        ("PKSTUCK00000000000HANG", "Alpaca is unavailable right now"),
    ] {
        let page = ada
            .post(
                "/credentials",
                &[
                    ("label", "Flaky"),
                    ("environment", "paper"),
                    ("api_key_id", key),
                    ("secret_key", SECRET),
                ],
            )
            .await;
        assert_eq!(page.status, StatusCode::SERVICE_UNAVAILABLE, "{key}");
        assert!(page.alert().contains(message), "{key}: {}", page.alert());
        assert!(page.body.contains("value=\"Flaky\""), "the label is kept");
    }
}

#[tokio::test]
async fn the_same_alpaca_account_cannot_be_enrolled_twice() {
    let app = TestApp::spawn().await;
    let ada = app.owner("ada@example.com", "Club").await;
    enroll(&ada, "First", KEY, SECRET, "paper").await;
    // Same account (the simulator ignores the last four characters), new keys.
    let page = ada
        .post(
            "/credentials",
            &[
                ("label", "Second"),
                ("environment", "paper"),
                ("api_key_id", "PKALICE0000000001AAAA"),
                ("secret_key", SECRET),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("already enrolled this Alpaca account"));
    assert!(page.body.contains("“First”"));
}

#[tokio::test]
async fn rotation_replaces_the_keys_of_the_same_account_only() {
    let app = TestApp::spawn().await;
    let ada = app.owner("ada@example.com", "Club").await;
    enroll(&ada, "Main", KEY, SECRET, "paper").await;
    let id = credential_id(&app, "Main").await;
    let before: Vec<u8> = sqlx::query_scalar("select sealed_secret from credentials")
        .fetch_one(&app.admin)
        .await
        .expect("sealed");
    let form = ada.get(&format!("/credentials/{id}/rotate")).await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(
        form.body.contains("API key ID")
            && form.body.contains("Secret key")
            && form.body.contains("Replace keys")
    );

    let other_account = ada
        .post(
            &format!("/credentials/{id}/rotate"),
            &[
                ("api_key_id", "PKSOMEONEELSE0000ZZZZ"),
                ("secret_key", SECRET),
            ],
        )
        .await;
    assert_eq!(other_account.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(other_account.body.contains("another Alpaca account"));

    let rotated = ada
        .post(
            &format!("/credentials/{id}/rotate"),
            &[
                ("api_key_id", "PKALICE0000000001NEWK"),
                ("secret_key", "alicesecret0000000000000000000000000002"),
            ],
        )
        .await;
    assert_eq!(rotated.status, StatusCode::SEE_OTHER, "{}", rotated.body);
    let page = ada.get("/credentials").await;
    assert!(page.body.contains("PK…NEWK"));
    assert!(!page.body.contains("PK…WXYZ"));
    let after: Vec<u8> = sqlx::query_scalar("select sealed_secret from credentials")
        .fetch_one(&app.admin)
        .await
        .expect("sealed");
    assert_ne!(before, after);
    assert!(
        ada.get("/activity")
            .await
            .body
            .contains("Credential rotated")
    );
}

#[tokio::test]
async fn deleting_removes_the_sealed_keys() {
    let app = TestApp::spawn().await;
    let ada = app.owner("ada@example.com", "Club").await;
    enroll(&ada, "Main", KEY, SECRET, "paper").await;
    let id = credential_id(&app, "Main").await;
    let page = ada.post(&format!("/credentials/{id}/delete"), &[]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let left: i64 = sqlx::query_scalar("select count(*) from credentials")
        .fetch_one(&app.admin)
        .await
        .expect("count");
    assert_eq!(left, 0);
    let list = ada.get("/credentials").await;
    assert!(list.status_message().contains("Deleted “Main”"));
    assert!(
        ada.get("/activity")
            .await
            .body
            .contains("Credential deleted")
    );
}

#[tokio::test]
async fn another_members_credential_gets_the_same_404_as_an_unknown_one() {
    let app = TestApp::spawn().await;
    let ada = app.owner("ada@example.com", "Club").await;
    enroll(&ada, "Ada's", KEY, SECRET, "paper").await;
    let id = credential_id(&app, "Ada's").await;
    let code = ada.create_invite().await;
    let bob = app.member("bob@example.com", &code).await;

    let unknown = "00000000-0000-4000-8000-000000000000";
    let mut bodies = Vec::new();
    for target in [id.as_str(), unknown, "not-a-uuid"] {
        let get = bob.get(&format!("/credentials/{target}/rotate")).await;
        assert_eq!(get.status, StatusCode::NOT_FOUND, "{target}");
        bodies.push(get.body.replace(&bob.csrf().await, ""));
        let post = bob
            .post(
                &format!("/credentials/{target}/rotate"),
                &[("api_key_id", KEY), ("secret_key", SECRET)],
            )
            .await;
        assert_eq!(post.status, StatusCode::NOT_FOUND, "{target}");
        let delete = bob
            .post(&format!("/credentials/{target}/delete"), &[])
            .await;
        assert_eq!(delete.status, StatusCode::NOT_FOUND, "{target}");
    }
    assert_eq!(bodies[0], bodies[1], "the same page either way");
    let still: i64 = sqlx::query_scalar("select count(*) from credentials")
        .fetch_one(&app.admin)
        .await
        .expect("count");
    assert_eq!(still, 1, "Ada's credential survives");
    assert!(!bob.get("/credentials").await.body.contains("Ada&#39;s"));
}

#[tokio::test]
async fn enrolling_without_a_csrf_token_is_refused() {
    let app = TestApp::spawn().await;
    let ada = app.owner("ada@example.com", "Club").await;
    let page = ada
        .post_raw(
            "/credentials",
            &[
                ("label", "Main"),
                ("environment", "paper"),
                ("api_key_id", KEY),
                ("secret_key", SECRET),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    let stored: i64 = sqlx::query_scalar("select count(*) from credentials")
        .fetch_one(&app.admin)
        .await
        .expect("count");
    assert_eq!(stored, 0);
}
