//! End-to-end `keys rewrap` throughput: N credentials sealed under `k1` in a real
//! (fsync-on) embedded PostgreSQL, re-sealed under `k2` in batches, as the CLI does.
//! Run: `cargo bench --bench rewrap` (env `REWRAP_CREDENTIALS`, default 1000).

use std::time::{Duration, Instant};

use anyhow::Context;
use paddock::{
    alpaca::{ApiKeys, Environment},
    db::{
        self,
        credentials::NewCredential,
        embedded::{self, Cluster, Durability},
        events::Origin,
    },
    domain::{CredentialId, Email},
    maintenance,
    seal::{KeyId, Keyring},
    token::Token,
    vault,
};
use secrecy::ExposeSecret;

fn main() -> anyhow::Result<()> {
    let count: usize = std::env::var("REWRAP_CREDENTIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let dir = std::env::temp_dir().join(format!("paddock-rewrap-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut cluster = Cluster::start(&dir, Durability::Durable)?;
    let result = tokio::runtime::Runtime::new()?.block_on(run(&cluster, count));
    cluster.stop();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn run(cluster: &Cluster, count: usize) -> anyhow::Result<()> {
    let superuser = sqlx::PgPool::connect(&cluster.url(embedded::SUPERUSER, "postgres")).await?;
    db::ensure_roles(&superuser).await?;
    db::ensure_database(&superuser, "bench", None).await?;
    let urls = db::embedded_urls(cluster, "bench");
    let admin = db::admin_pool(&urls.admin).await?;
    db::migrate(&admin, db::APP_ROLE).await?;
    let app = db::app_pool(&urls.app).await?;

    let k1 = Keyring::generate_entry(&KeyId::parse("k1")?);
    let k2 = Keyring::generate_entry(&KeyId::parse("k2")?);
    let old = Keyring::parse(&k1)?;
    let new = Keyring::parse(&format!("{},{}", k2.expose_secret(), k1.expose_secret()).into())?;

    let token = Token::generate()?;
    let (member, organization) = db::identity::create_organization(
        &app,
        "Bench",
        &Email::parse("bench@example.com").context("email")?,
        "x",
        &token,
        &Origin::default(),
    )
    .await?;
    let (mut tx, _) = db::identity::begin_request(&app, &token)
        .await?
        .context("the new session")?;
    for i in 0..count {
        let id = CredentialId::new();
        let keys = ApiKeys::new(
            format!("PKBENCH{i:08}ACCT00"),
            format!("benchsecret{i:029}"),
        );
        let sealed = vault::seal_pair(&old, organization, member, id, &keys)?;
        db::credentials::insert(
            &mut tx,
            &NewCredential {
                id,
                label: &format!("c{i}"),
                environment: Environment::Paper,
                sealed_key_id: &sealed.key_id,
                sealed_secret: &sealed.secret,
                key_id_last4: "CT00",
                account_number: &format!("PA{i:010}"),
                seal_key_version: &sealed.seal_key_version,
            },
        )
        .await?;
    }
    tx.commit().await?;

    let started = Instant::now();
    let report = maintenance::rewrap(&admin, &new, 250, Duration::ZERO, |_| {}).await?;
    let took = started.elapsed();
    anyhow::ensure!(
        report.rewrapped as usize == count && report.failed == 0,
        "{report:?}"
    );
    let per_thousand = took.as_secs_f64() * 1000.0 / count as f64;
    println!(
        "rewrap: {count} credentials in {:.1} ms ({} batches of 250, fsync on) = {:.1} ms per 1,000 credentials, {:.0} credentials/s",
        took.as_secs_f64() * 1000.0,
        report.batches,
        per_thousand * 1000.0,
        count as f64 / took.as_secs_f64()
    );
    app.close().await;
    admin.close().await;
    superuser.close().await;
    Ok(())
}
