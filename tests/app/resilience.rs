//! Outside failures get pages a person understands, and the server keeps serving.

use reqwest::StatusCode;

use crate::helpers::{PASSWORD, TestApp};

#[tokio::test]
async fn when_the_database_goes_away_pages_say_so_and_serving_resumes() {
    let app = TestApp::spawn().await;
    let ada = app.owner("ada@example.com", "Club").await;
    assert_eq!(ada.get("/org").await.status, StatusCode::OK);

    // Cut every connection of the app role and refuse new ones, as a restart would.
    let superuser = sqlx::PgPool::connect(&crate::helpers::url("postgres", "postgres"))
        .await
        .expect("superuser");
    sqlx::query(&format!(
        "alter database {} allow_connections false",
        app.database
    ))
    .execute(&superuser)
    .await
    .expect("refuse connections");
    sqlx::query("select pg_terminate_backend(pid) from pg_stat_activity where datname = $1")
        .bind(&app.database)
        .execute(&superuser)
        .await
        .expect("terminate");

    let down = ada.get("/org").await;
    assert_eq!(
        down.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        down.body
    );
    assert!(
        down.body.contains("cannot reach its database"),
        "{}",
        down.body
    );
    assert!(
        !down.body.contains("sqlx") && !down.body.contains("pg_"),
        "no internals"
    );
    let health = app.visitor().get("/healthz").await;
    assert_eq!(health.status, StatusCode::SERVICE_UNAVAILABLE);
    // The sign-in form needs no database; signing in does, and says so.
    let visitor = app.visitor();
    assert_eq!(visitor.get("/login").await.status, StatusCode::OK);
    let login = visitor.sign_in("ada@example.com", PASSWORD).await;
    assert_eq!(login.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(login.body.contains("try again in a moment"));

    sqlx::query(&format!(
        "alter database {} allow_connections true",
        app.database
    ))
    .execute(&superuser)
    .await
    .expect("allow connections");
    assert_eq!(app.visitor().get("/healthz").await.status, StatusCode::OK);
    assert_eq!(
        ada.get("/org").await.status,
        StatusCode::OK,
        "the same session works again"
    );
    let bob = app.visitor();
    assert_eq!(
        bob.sign_in("ada@example.com", PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
}
