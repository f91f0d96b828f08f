//! `paddock backup` and `paddock restore`: a round trip keeps members,
//! credentials (still open with the keyring) and events; sessions are dropped.

use std::{process::Command, sync::Arc};

use paddock::{
    db,
    seal::{KeyId, Keyring},
};
use reqwest::StatusCode;
use secrecy::ExposeSecret;

use crate::{
    credentials::{KEY, SECRET, enroll},
    helpers::{Options, PASSWORD, TestApp, Visitor, url},
    process::{Serve, TempDir, ada_is_back, paddock, run, serving_ada},
};

/// `paddock` aimed at `database` on the test cluster, with `keys` as the keyring.
fn against(database: &str, keys: &str, dir: &TempDir) -> Command {
    let mut cmd = paddock(dir.path());
    cmd.env("DATABASE_URL", url(db::APP_ROLE, database))
        .env("DATABASE_ADMIN_URL", url(db::OWNER_ROLE, database))
        .env("PADDOCK_SEAL_KEYS", keys);
    cmd
}

/// A new, empty database owned by the owner role.
async fn empty_database(name: &str) -> String {
    let name = format!("restore_{}_{name}", std::process::id());
    let superuser = sqlx::PgPool::connect(&url("postgres", "postgres"))
        .await
        .expect("superuser");
    db::ensure_database(&superuser, &name, None)
        .await
        .expect("empty database");
    superuser.close().await;
    name
}

/// Every privilege on Paddock's tables and functions, as PostgreSQL prints it.
async fn privileges(admin: &sqlx::PgPool) -> Vec<(String, Option<String>)> {
    sqlx::query_as(
        "select relname::text, relacl::text from pg_class
          where relnamespace in ('public'::regnamespace, 'paddock_private'::regnamespace)
         union all
         select proname::text, proacl::text from pg_proc where pronamespace = 'public'::regnamespace
         order by 1, 2",
    )
    .fetch_all(admin)
    .await
    .expect("privileges")
}

async fn count(admin: &sqlx::PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(admin).await.expect(sql)
}

#[tokio::test]
async fn a_restored_backup_keeps_members_credentials_and_events_and_drops_sessions() {
    let entry = Keyring::generate_entry(&KeyId::parse("kback").expect("id"));
    let keyring = Arc::new(Keyring::parse(&entry).expect("keyring"));
    let app = TestApp::spawn_with_keyring(Options::default(), keyring.clone()).await;
    let ada = app.owner("ada@example.com", "Club").await;
    enroll(&ada, "Main", KEY, SECRET, "paper").await;
    assert!(ada.get("/portfolio").await.alert().is_empty());
    let events = count(&app.admin, "select count(*) from security_events").await;
    assert!(count(&app.admin, "select count(*) from paddock_private.sessions").await > 0);

    let dir = TempDir::new("backup-external");
    let file = dir.path().join("paddock.dump");
    let mut backup = against(&app.database, entry.expose_secret(), &dir);
    backup.arg("backup").arg(&file);
    let (ok, stdout, stderr) = run(backup);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("backup written"), "{stdout}");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&file).expect("file").permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "the backup is private");

    let target = empty_database("external").await;
    let garbage = dir.path().join("not-a-backup.dump");
    std::fs::write(&garbage, "this is not a dump").expect("garbage");
    let mut failed = against(&target, entry.expose_secret(), &dir);
    failed.arg("restore").arg(&garbage);
    let (ok, _, stderr) = run(failed);
    assert!(!ok);
    assert!(stderr.contains("pg_restore failed"), "{stderr}");
    let mut restore = against(&target, entry.expose_secret(), &dir);
    restore.arg("restore").arg(&file);
    let (ok, stdout, stderr) = run(restore);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("sessions were not restored"), "{stdout}");

    let restored = TestApp::spawn_with_keyring(
        Options {
            database: Some(target.clone()),
            ..Options::default()
        },
        keyring.clone(),
    )
    .await;
    assert_eq!(
        count(&restored.admin, "select count(*) from security_events").await,
        events
    );
    assert_eq!(
        privileges(&restored.admin).await,
        privileges(&app.admin).await,
        "the app role has exactly the privileges it had"
    );
    assert_eq!(
        count(
            &restored.admin,
            "select count(*) from paddock_private.sessions"
        )
        .await,
        0
    );
    let again = Visitor::new(&format!("http://{}", restored.addr));
    assert_eq!(
        again.sign_in("ada@example.com", PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
    let credentials = again.get("/credentials").await;
    assert!(credentials.body.contains("Main"), "{}", credentials.body);
    let portfolio = again.get("/portfolio").await;
    assert_eq!(portfolio.status, StatusCode::OK);
    assert!(
        portfolio.alert().is_empty(),
        "the credential opens: {}",
        portfolio.alert()
    );
    let activity = again.get("/activity").await;
    assert!(
        activity.body.contains("Credential added"),
        "events survived"
    );

    let mut status = against(&target, entry.expose_secret(), &dir);
    status.args(["keys", "status"]);
    let (ok, stdout, _) = run(status);
    assert!(ok);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("kback"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(line.contains(" 1 ") && line.contains("seals"), "{line}");

    // A second restore into the now populated database is refused, changing nothing.
    let before = count(&restored.admin, "select count(*) from security_events").await;
    let mut twice = against(&target, entry.expose_secret(), &dir);
    twice.arg("restore").arg(&file);
    let (ok, _, stderr) = run(twice);
    assert!(!ok);
    assert!(
        stderr.contains("refusing to restore: the database is not empty"),
        "{stderr}"
    );
    assert_eq!(
        count(&restored.admin, "select count(*) from security_events").await,
        before
    );
}

#[tokio::test]
async fn an_embedded_backup_taken_while_serving_restores_into_a_new_data_dir_only() {
    let first = TempDir::new("backup-embedded-1");
    let (server, ada) = serving_ada(&first).await;
    let file = first.path().join("while-serving.dump");
    let mut backup = paddock(first.path());
    backup.arg("backup").arg(&file);
    let (ok, _, stderr) = run(backup);
    assert!(ok, "{stderr}");
    assert_eq!(
        ada.get("/credentials").await.status,
        StatusCode::OK,
        "still serving"
    );
    let (ok, log) = server.stop();
    assert!(ok, "{log}");

    let mut into_itself = paddock(first.path());
    into_itself.arg("restore").arg(&file);
    let (ok, _, stderr) = run(into_itself);
    assert!(!ok, "a data dir in use is refused");
    assert!(stderr.contains("not empty"), "{stderr}");

    let second = TempDir::new("backup-embedded-2");
    let mut restore = paddock(second.path());
    restore.arg("restore").arg(&file);
    let (ok, _, stderr) = run(restore);
    assert!(ok, "{stderr}");
    // The keyring is not in the backup: the operator brings it along.
    std::fs::copy(
        first.path().join("seal-keys"),
        second.path().join("seal-keys"),
    )
    .expect("key");
    let mut status = paddock(second.path());
    status.args(["keys", "status"]);
    let (ok, stdout, stderr) = run(status);
    assert!(ok, "{stderr}");
    let key_id = std::fs::read_to_string(second.path().join("seal-keys"))
        .expect("key")
        .split(':')
        .next()
        .expect("id")
        .to_owned();
    let line = stdout
        .lines()
        .find(|l| l.starts_with(&key_id))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(line.contains(" 1 ") && line.contains("seals"), "{line}");

    let server = Serve::start(paddock(second.path()));
    ada_is_back(&server).await;
    let (ok, log) = server.stop();
    assert!(ok, "{log}");
}
