//! The `paddock` binary itself: key lifecycle, start-up refusals, and logs.

use std::{
    process::{Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use paddock::{
    alpaca::Environment,
    db, maintenance,
    seal::{KeyId, Keyring, Sealer},
    vault,
};
use secrecy::{ExposeSecret, SecretString};

use crate::{
    credentials::{KEY, SECRET, enroll},
    helpers::{Options, TestApp, Visitor, url},
    portfolio::seed_credential,
    process::Serve,
};

fn entry(id: &str) -> SecretString {
    Keyring::generate_entry(&KeyId::parse(id).expect("id"))
}

fn keyring(entries: &[&SecretString]) -> (Keyring, String) {
    let spec = entries
        .iter()
        .map(|e| e.expose_secret().to_owned())
        .collect::<Vec<_>>()
        .join(",");
    (Keyring::parse(&spec.clone().into()).expect("keyring"), spec)
}

/// The `paddock` binary, configured for `database` on the test cluster.
fn paddock(database: &str, seal_keys: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_paddock"));
    let data_dir =
        std::env::temp_dir().join(format!("paddock-cli-{}-{database}", std::process::id()));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("DATABASE_URL", url(db::APP_ROLE, database))
        .env("DATABASE_ADMIN_URL", url(db::OWNER_ROLE, database))
        .env("PADDOCK_SEAL_KEYS", seal_keys)
        .env("PADDOCK_DATA_DIR", data_dir)
        .env("PADDOCK_BIND", "127.0.0.1:0")
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::null());
    cmd
}

fn run(mut cmd: Command) -> (bool, String, String) {
    let out = cmd.output().expect("running paddock");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn keys_generate_prints_a_usable_keyring_entry() {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_paddock"));
    cmd.args(["keys", "generate"]);
    let out = cmd.output().expect("run");
    assert!(out.status.success());
    let line = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let (id, key) = line.split_once(':').expect("id:base64");
    assert!(id.starts_with('k') && id.len() == 9, "{id}");
    assert_eq!(key.len(), 44, "32 bytes in base64");
    Keyring::parse(&line.clone().into()).expect("the entry parses as a keyring");
}

#[tokio::test]
async fn serve_refuses_to_start_when_a_sealing_key_is_missing() {
    let app = TestApp::spawn().await;
    app.owner("ada@example.com", "Club").await;
    seed_credential(&app, "ada@example.com", "Old", KEY, Environment::Paper).await;
    let (_, spec) = keyring(&[&entry("k2")]);
    let mut cmd = paddock(&app.database, &spec);
    cmd.arg("serve");
    let (ok, _, stderr) = run(cmd);
    assert!(!ok, "serve must refuse");
    assert!(
        stderr.contains("1 credential(s) under key id `k1`"),
        "{stderr}"
    );
    assert!(!stderr.contains(SECRET));
}

#[tokio::test]
async fn serve_refuses_to_run_as_a_role_that_bypasses_row_level_security() {
    let app = TestApp::spawn().await;
    let (_, spec) = keyring(&[&entry("k1")]);
    let mut cmd = paddock(&app.database, &spec);
    cmd.env("DATABASE_URL", url(db::OWNER_ROLE, &app.database))
        .arg("serve");
    let (ok, _, stderr) = run(cmd);
    assert!(!ok);
    assert!(stderr.contains("refusing to serve"), "{stderr}");
    assert!(
        stderr.contains("BYPASSRLS") && stderr.contains("owns table"),
        "{stderr}"
    );
}

#[tokio::test]
async fn trace_logs_of_enrollment_portfolio_and_orders_never_contain_the_keys() {
    let database = crate::helpers::fresh_database().await;
    let (_, spec) = keyring(&[&entry("k1")]);
    let mut cmd = paddock(&database, &spec);
    cmd.env("RUST_LOG", "trace");
    let server = Serve::start(cmd);

    let ada = Visitor::new(&server.base);
    let page = ada.sign_up("ada@example.com", "Club", "").await;
    assert_eq!(page.status, reqwest::StatusCode::SEE_OTHER);
    enroll(&ada, "Main", KEY, SECRET, "paper").await;
    let portfolio = ada.get("/portfolio").await;
    assert_eq!(portfolio.status, reqwest::StatusCode::OK);
    assert!(portfolio.alert().is_empty(), "{}", portfolio.alert());
    let wrong = ada
        .post(
            "/credentials",
            &[
                ("label", "Twice"),
                ("environment", "live"),
                ("api_key_id", KEY),
                ("secret_key", SECRET),
            ],
        )
        .await;
    assert_eq!(wrong.status, reqwest::StatusCode::UNPROCESSABLE_ENTITY);

    let (_, log) = server.stop();
    assert!(
        log.lines().count() > 100,
        "trace logging was on ({} lines)",
        log.lines().count()
    );
    assert!(log.contains("TRACE"));
    assert!(
        log.contains("/v2/account"),
        "the Alpaca calls are in the trace"
    );
    assert!(!log.contains(KEY), "the key id leaked into the logs");
    assert!(!log.contains(SECRET), "the secret leaked into the logs");
    assert!(
        !log.contains(&KEY[..16]),
        "part of the key id leaked into the logs"
    );
    assert!(
        log.contains("finishing in-flight requests"),
        "graceful shutdown"
    );
}

#[tokio::test]
async fn rewrap_moves_every_credential_to_the_new_key_while_requests_are_served() {
    let (k1, k2, k3) = (entry("k1"), entry("k2"), entry("k3"));
    let (old, _) = keyring(&[&k1]);
    let app = TestApp::spawn_with_keyring(Options::default(), Arc::new(old)).await;
    app.owner("ada@example.com", "Club").await;
    let mut ids = Vec::new();
    for i in 0..200 {
        let key = format!("PKREWRAP{i:06}ACCT0000");
        ids.push(
            seed_credential(
                &app,
                "ada@example.com",
                &format!("c{i}"),
                &key,
                Environment::Paper,
            )
            .await,
        );
    }

    // A new server with k2 first; k1 still opens.
    let (rotated, _) = keyring(&[&k2, &k1]);
    let rotated = Arc::new(rotated);
    let serving = TestApp::spawn_with_keyring(
        Options {
            database: Some(app.database.clone()),
            ..Options::default()
        },
        rotated.clone(),
    )
    .await;
    let ada = serving.visitor();
    assert_eq!(
        ada.sign_in("ada@example.com", crate::helpers::PASSWORD)
            .await
            .status,
        reqwest::StatusCode::SEE_OTHER
    );

    let load = {
        let ids = ids.clone();
        tokio::spawn(async move {
            let mut served = 0;
            for round in 0..40 {
                let id = ids[(round * 7) % ids.len()];
                let page = ada.get(&format!("/accounts/{id}")).await;
                assert_eq!(
                    page.status,
                    reqwest::StatusCode::OK,
                    "request {round} failed"
                );
                assert!(page.alert().is_empty(), "request {round}: {}", page.alert());
                served += 1;
            }
            served
        })
    };
    let report = maintenance::rewrap(
        &serving.admin,
        rotated.as_ref(),
        20,
        Duration::from_millis(5),
        |_| {},
    )
    .await
    .expect("rewrap");
    assert_eq!(report.rewrapped, 200);
    assert_eq!(report.failed, 0);
    assert!(report.batches >= 10, "batched ({})", report.batches);
    assert_eq!(
        load.await.expect("load"),
        40,
        "no request failed during the rewrap"
    );
    let status = maintenance::status(&serving.admin, rotated.as_ref())
        .await
        .expect("status");
    assert_eq!(status.len(), 1);
    assert_eq!(
        (status[0].key_id.as_str(), status[0].credentials),
        ("k2", 200)
    );

    // Again with k3 first, as the CLI, killed half-way and run again.
    let (_, spec3) = keyring(&[&k3, &k2, &k1]);
    let mut cmd = paddock(&app.database, &spec3);
    cmd.args(["keys", "rewrap", "--batch-size", "10", "--pause-ms", "100"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().expect("rewrap");
    let count_k3 = || async {
        sqlx::query_scalar::<_, i64>(
            "select count(*) from credentials where seal_key_version = 'k3'",
        )
        .fetch_one(&app.admin)
        .await
        .expect("count")
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while count_k3().await < 40 {
        assert!(Instant::now() < deadline, "rewrap made no progress");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().expect("kill -9");
    child.wait().expect("reap");
    let halfway = count_k3().await;
    assert!((40..200).contains(&halfway), "killed half-way ({halfway})");

    let mut again = paddock(&app.database, &spec3);
    again.args(["keys", "rewrap"]);
    let (ok, stdout, stderr) = run(again);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains(&format!("{} re-sealed under `k3`", 200 - halfway)),
        "{stdout}"
    );
    let mut status = paddock(&app.database, &spec3);
    status.args(["keys", "status"]);
    let (ok, stdout, _) = run(status);
    assert!(ok);
    assert!(stdout.contains("sealing key: k3"), "{stdout}");
    let k3_line = stdout
        .lines()
        .find(|l| l.starts_with("k3"))
        .expect("a k3 line");
    assert!(
        k3_line.contains("200") && k3_line.contains("seals"),
        "{k3_line}"
    );
    assert!(
        !stdout
            .lines()
            .any(|l| l.starts_with("k1") || l.starts_with("k2")),
        "{stdout}"
    );
    let mut idempotent = paddock(&app.database, &spec3);
    idempotent.args(["keys", "rewrap"]);
    let (ok, stdout, _) = run(idempotent);
    assert!(ok && stdout.contains("0 re-sealed"), "{stdout}");

    // Every credential opens with k3 alone now.
    let (only_k3, _) = keyring(&[&k3]);
    assert!(only_k3.can_open(&KeyId::parse("k3").expect("id")));
    let mut tx = app.tenant("ada@example.com").await;
    let credentials = db::credentials::list(&mut tx).await.expect("list");
    assert_eq!(credentials.len(), 200);
    for c in &credentials {
        vault::open(&only_k3, c).unwrap_or_else(|e| panic!("{} does not open: {e}", c.label));
    }
}

#[tokio::test]
async fn rewrap_moves_totp_secrets_too_and_second_factor_sign_in_still_works() {
    let k1 = entry("k1");
    let (old, old_spec) = keyring(&[&k1]);
    let app = TestApp::spawn_with_keyring(Options::default(), Arc::new(old)).await;
    let ada = app.owner("ada@example.com", "Club").await;
    let (secret, _) = crate::account_security::turn_on_totp(&ada).await;
    let k2 = entry("k2");
    let (_, spec) = keyring(&[&k2, &k1]);
    let mut status = paddock(&app.database, &old_spec);
    status.args(["keys", "status"]);
    let (ok, stdout, stderr) = run(status);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("TOTP secrets"), "{stdout}");
    let mut rewrap = paddock(&app.database, &spec);
    rewrap.args(["keys", "rewrap"]);
    let (ok, stdout, stderr) = run(rewrap);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("rewrap done: 1 re-sealed"), "{stdout}");
    let versions: Vec<String> = sqlx::query_scalar("select seal_key_version from totp")
        .fetch_all(&app.admin)
        .await
        .expect("versions");
    assert_eq!(versions, ["k2"]);

    // A server holding only the new key still checks the codes.
    let (only_k2, _) = keyring(&[&k2]);
    let serving = TestApp::spawn_with_keyring(
        Options {
            database: Some(app.database.clone()),
            ..Options::default()
        },
        Arc::new(only_k2),
    )
    .await;
    let v = serving.visitor();
    assert_eq!(
        v.sign_in("ada@example.com", crate::helpers::PASSWORD)
            .await
            .location(),
        "/login/2fa"
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let code = secret.code_at(now + 30).expect("code");
    assert_eq!(
        v.post("/login/2fa", &[("code", &code)]).await.location(),
        "/portfolio"
    );
}
