//! Isolation enforced by PostgreSQL itself, checked as the runtime (app) role.

use paddock::{
    db::{self, embedded, posture},
    domain::{MemberId, OrganizationId},
};
use sqlx::{PgPool, Row};

use crate::helpers::{TestApp, url};

async fn ids_of(app: &TestApp, email: &str) -> (MemberId, OrganizationId) {
    let row = sqlx::query("select id, organization_id from members where email = $1")
        .bind(email)
        .fetch_one(&app.admin)
        .await
        .expect("member");
    (MemberId(row.get(0)), OrganizationId(row.get(1)))
}

/// Two organizations: Ada (owner) and Bob (member) in one, Eve in another.
async fn two_organizations(app: &TestApp) {
    let ada = app.owner("ada@example.com", "Club").await;
    let code = ada.create_invite().await;
    app.member("bob@example.com", &code).await;
    app.owner("eve@example.com", "Elsewhere").await;
}

#[tokio::test]
async fn with_no_settings_every_protected_table_reads_zero_rows() {
    let app = TestApp::spawn().await;
    two_organizations(&app).await;
    sqlx::query("insert into credentials (id, organization_id, member_id, label, environment, sealed_key_id, sealed_secret, key_id_last4, account_number, seal_key_version)
                 select gen_random_uuid(), organization_id, id, 'x', 'paper', '\\x00', '\\x00', 'ABCD', 'PA1', 'k1' from members")
        .execute(&app.admin)
        .await
        .expect("seed credentials");
    for table in posture::PROTECTED_TABLES {
        let admin_rows: i64 = sqlx::query_scalar(&format!("select count(*) from {table}"))
            .fetch_one(&app.admin)
            .await
            .expect("admin count");
        assert!(admin_rows > 0, "{table} has rows to hide");
        let mut tx = app.pool.begin().await.expect("tx");
        let rows: i64 = sqlx::query_scalar(&format!("select count(*) from {table}"))
            .fetch_one(&mut *tx)
            .await
            .expect("app count");
        assert_eq!(
            rows, 0,
            "{table} leaks rows to the app role without settings"
        );
    }
}

#[tokio::test]
async fn with_a_members_settings_a_query_without_where_sees_only_their_rows() {
    let app = TestApp::spawn().await;
    two_organizations(&app).await;
    let (ada, club) = ids_of(&app, "ada@example.com").await;

    let mut tx = db::begin_tenant(&app.pool, ada, club).await.expect("tx");
    let emails: Vec<String> = sqlx::query_scalar("select email from members order by email")
        .fetch_all(&mut *tx)
        .await
        .expect("members");
    assert_eq!(
        emails,
        ["ada@example.com", "bob@example.com"],
        "same organization only"
    );
    let orgs: Vec<String> = sqlx::query_scalar("select name from organizations")
        .fetch_all(&mut *tx)
        .await
        .expect("orgs");
    assert_eq!(orgs, ["Club"]);
    let owners: Vec<uuid::Uuid> =
        sqlx::query_scalar("select distinct member_id from security_events")
            .fetch_all(&mut *tx)
            .await
            .expect("events");
    assert_eq!(owners, [ada.0], "only Ada's own security events");
}

#[tokio::test]
async fn a_member_cannot_read_another_members_security_events() {
    let app = TestApp::spawn().await;
    two_organizations(&app).await;
    let (bob, club) = ids_of(&app, "bob@example.com").await;
    let (ada, _) = ids_of(&app, "ada@example.com").await;
    let mut tx = db::begin_tenant(&app.pool, bob, club).await.expect("tx");
    let adas: i64 = sqlx::query_scalar("select count(*) from security_events where member_id = $1")
        .bind(ada.0)
        .fetch_one(&mut *tx)
        .await
        .expect("count");
    assert_eq!(adas, 0);
    // Nor can Bob forge an event in Ada's name.
    let forged = sqlx::query(
        "insert into security_events (organization_id, member_id, kind) values ($1, $2, 'sign_in')",
    )
    .bind(club.0)
    .bind(ada.0)
    .execute(&mut *tx)
    .await;
    assert!(forged.is_err(), "row-level security refuses the insert");
}

#[tokio::test]
async fn the_app_role_cannot_rewrite_history_or_read_password_hashes() {
    let app = TestApp::spawn().await;
    two_organizations(&app).await;
    let (ada, club) = ids_of(&app, "ada@example.com").await;
    for statement in [
        "update security_events set detail = 'rewritten'",
        "delete from security_events",
        "select password_hash from members",
        "update members set role = 'owner'",
        "delete from members",
    ] {
        let mut tx = db::begin_tenant(&app.pool, ada, club).await.expect("tx");
        let result = sqlx::query(statement).execute(&mut *tx).await;
        let message = result.expect_err(statement).to_string();
        assert!(
            message.contains("permission denied"),
            "{statement}: {message}"
        );
    }
}

#[tokio::test]
async fn a_plain_member_cannot_create_invites_even_in_sql() {
    let app = TestApp::spawn().await;
    two_organizations(&app).await;
    let (bob, club) = ids_of(&app, "bob@example.com").await;
    let mut tx = db::begin_tenant(&app.pool, bob, club).await.expect("tx");
    let result = db::invites::create(&mut tx, b"some hash").await;
    assert!(result.is_err(), "only owners may insert invites");
}

#[tokio::test]
async fn the_posture_check_accepts_the_app_role() {
    let app = TestApp::spawn().await;
    let problems = posture::problems(&app.pool).await.expect("check");
    assert!(problems.is_empty(), "{problems:?}");
}

async fn pool_as(user: &str, database: &str) -> PgPool {
    PgPool::connect(&url(user, database))
        .await
        .expect("connect")
}

#[tokio::test]
async fn the_posture_check_refuses_a_superuser_a_bypassrls_role_and_a_table_owner() {
    let app = TestApp::spawn().await;
    let superuser = pool_as(embedded::SUPERUSER, &app.database).await;
    let problems = posture::problems(&superuser).await.expect("check");
    assert!(
        problems.iter().any(|p| p.contains("superuser")),
        "{problems:?}"
    );

    sqlx::query("do $$ begin if not exists (select from pg_roles where rolname = 'sneaky') then create role sneaky login bypassrls; end if; end $$")
        .execute(&superuser)
        .await
        .expect("role");
    let sneaky = pool_as("sneaky", &app.database).await;
    let problems = posture::problems(&sneaky).await.expect("check");
    assert!(
        problems.iter().any(|p| p.contains("BYPASSRLS")),
        "{problems:?}"
    );

    sqlx::query(
        "do $$ begin if not exists (select from pg_roles where rolname = 'owner_in_disguise') then create role owner_in_disguise login nobypassrls; grant paddock_owner to owner_in_disguise; end if; end $$",
    )
    .execute(&superuser)
    .await
    .expect("role");
    let disguised = pool_as("owner_in_disguise", &app.database).await;
    let problems = posture::problems(&disguised).await.expect("check");
    assert!(
        problems
            .iter()
            .any(|p| p.contains("member of `paddock_owner`")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.contains("owns table")),
        "{problems:?}"
    );

    let owner = pool_as(db::OWNER_ROLE, &app.database).await;
    let problems = posture::problems(&owner).await.expect("check");
    assert!(
        problems.iter().any(|p| p.contains("owns table")),
        "{problems:?}"
    );

    sqlx::query("alter table members no force row level security")
        .execute(&app.admin)
        .await
        .expect("weaken");
    let problems = posture::problems(&app.pool).await.expect("check");
    assert!(
        problems.iter().any(|p| p.contains("`members` lacks")),
        "{problems:?}"
    );

    let err = paddock::startup::check_posture(&app.pool)
        .await
        .expect_err("refuses to serve");
    assert!(err.to_string().contains("refusing to serve"));
}
