//! `paddock backup` and `paddock restore` of the embedded database, end to end as
//! an operator runs them (the server stopped, so each command starts and stops
//! the cluster itself; fsync on): 10,000 sealed credentials of 100 members and
//! 1,000,000 security events.
//! Run: `cargo bench --bench backup` (env `BACKUP_CREDENTIALS`, `BACKUP_EVENTS`).

use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use anyhow::Context;
use paddock::{
    alpaca::{ApiKeys, Environment},
    config::Settings,
    db::{self, credentials::NewCredential, events::Origin},
    domain::{CredentialId, Email},
    seal::{KeyId, Keyring},
    startup,
    token::Token,
    vault,
};

const MEMBERS: usize = 100;

fn main() -> anyhow::Result<()> {
    let var = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let (credentials, events) = (
        var("BACKUP_CREDENTIALS", 10_000),
        var("BACKUP_EVENTS", 1_000_000),
    );
    let root = std::env::temp_dir().join(format!("paddock-backup-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let (source, target, file) = (
        root.join("source"),
        root.join("target"),
        root.join("paddock.dump"),
    );
    let result = (|| {
        let seeding = Instant::now();
        tokio::runtime::Runtime::new()?.block_on(seed(&source, credentials, events))?;
        println!(
            "seeded {credentials} credentials and {events} events in {:.1} s",
            seeding.elapsed().as_secs_f64()
        );
        let backup = timed(&source, &["backup", file.to_str().unwrap_or_default()])?;
        let size = std::fs::metadata(&file)?.len();
        let restore = timed(&target, &["restore", file.to_str().unwrap_or_default()])?;
        let status = paddock(&target).args(["keys", "status"]).output()?;
        anyhow::ensure!(status.status.success(), "keys status failed");
        println!("| What | Figure |\n| --- | --- |");
        println!(
            "| backup file (custom format, compressed) | {:.1} MiB |",
            size as f64 / 1_048_576.0
        );
        println!(
            "| `paddock backup` (cluster start, pg_dump, stop) | {:.1} s |",
            backup.as_secs_f64()
        );
        println!(
            "| `paddock restore` into a new data dir (initdb, pg_restore, indexes, migrate, stop) | {:.1} s |",
            restore.as_secs_f64()
        );
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&root);
    result
}

/// `paddock` on the embedded database in `dir`, with the bench's keyring.
fn paddock(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_paddock"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("PADDOCK_DATA_DIR", dir)
        .env("PADDOCK_SEAL_KEYS", keyring_spec())
        .env("RUST_LOG", "warn");
    cmd
}

fn keyring_spec() -> String {
    // A fixed bench key: the data is thrown away with the directory.
    format!("kbench:{}", "A".repeat(43) + "=")
}

fn timed(dir: &Path, args: &[&str]) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let out = paddock(dir).args(args).output()?;
    let took = started.elapsed();
    anyhow::ensure!(
        out.status.success(),
        "paddock {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(took)
}

async fn seed(dir: &Path, credentials: usize, events: usize) -> anyhow::Result<()> {
    let dir = dir.to_string_lossy().into_owned();
    let spec = keyring_spec();
    let settings = Settings::from_lookup(|k| match k {
        "PADDOCK_DATA_DIR" => Some(dir.clone()),
        "PADDOCK_SEAL_KEYS" => Some(spec.clone()),
        _ => None,
    })?;
    let keyring = Keyring::parse(&spec.clone().into())?;
    anyhow::ensure!(keyring.sealing_key_id() == &KeyId::parse("kbench")?);
    let database = startup::prepare_database(&settings).await?;
    let admin = db::admin_pool(&database.urls.admin).await?;
    let app = db::app_pool(&database.urls.app).await?;
    for m in 0..MEMBERS {
        let token = Token::generate()?;
        let email = Email::parse(&format!("member{m}@example.com")).context("email")?;
        let (member, organization) = db::identity::create_organization(
            &app,
            &format!("Club {m}"),
            &email,
            "x",
            &token,
            &Origin::default(),
        )
        .await?;
        let (mut tx, _) = db::identity::begin_request(&app, &token)
            .await?
            .context("the new session")?;
        for i in 0..credentials / MEMBERS {
            let id = CredentialId::new();
            let keys = ApiKeys::new(
                format!("PKBENCH{m:04}{i:06}ACCT"),
                format!("benchsecret{i:029}"),
            );
            let sealed = vault::seal_pair(&keyring, organization, member, id, &keys)?;
            db::credentials::insert(
                &mut tx,
                &NewCredential {
                    id,
                    label: &format!("account {i}"),
                    environment: Environment::Paper,
                    sealed_key_id: &sealed.key_id,
                    sealed_secret: &sealed.secret,
                    key_id_last4: "ACCT",
                    account_number: &format!("PA{m:04}{i:06}"),
                    seal_key_version: &sealed.seal_key_version,
                },
            )
            .await?;
        }
        tx.commit().await?;
    }
    sqlx::query(
        "insert into security_events (organization_id, member_id, kind, detail, ip, user_agent, created_at)
         select m.orgs[1 + g % m.n], m.ids[1 + g % m.n],
                case when g % 20 = 0 then 'sign_in' else 'credential_used' end,
                'PA0000000001', '203.0.113.7',
                'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36',
                now() - make_interval(secs => g)
         from generate_series(1, $1) g,
              (select array_agg(id order by id) ids, array_agg(organization_id order by id) orgs,
                      count(*)::int n from members) m",
    )
    .bind(i32::try_from(events)?)
    .execute(&admin)
    .await?;
    sqlx::query("vacuum analyze security_events")
        .execute(&admin)
        .await?;
    app.close().await;
    admin.close().await;
    database.shutdown();
    Ok(())
}
