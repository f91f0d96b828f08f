//! Database access. Functions take a `&mut PgConnection` so that they run on the
//! request's tenant-scoped transaction; nothing here knows about HTTP.

pub mod account;
pub mod action_tokens;
pub mod binaries;
pub mod credentials;
pub mod embedded;
pub mod events;
pub mod identity;
pub mod invites;
pub mod members;
pub mod passkeys;
pub mod pg_upgrade;
pub mod posture;
pub mod request;
pub mod supervisor;

use std::{str::FromStr, time::Duration};

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};
use sqlx::{
    PgPool,
    postgres::{PgConnectOptions, PgPoolOptions},
};

use crate::config::{DatabaseSettings, Settings};
use embedded::{Cluster, Durability};
use supervisor::Supervised;

/// The role that owns the schema (migrations, maintenance, SECURITY DEFINER functions).
pub const OWNER_ROLE: &str = "paddock_owner";
/// The role the server runs as: no superuser, no BYPASSRLS, owns nothing.
pub const APP_ROLE: &str = "paddock_app";
/// The database name used in the embedded cluster.
pub const DATABASE: &str = "paddock";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Connection strings for the two roles.
#[derive(Clone)]
pub struct Urls {
    pub app: SecretString,
    pub admin: SecretString,
}

/// The database in use: its URLs and, for the embedded one, the running
/// (supervised) cluster.
pub struct Database {
    pub urls: Urls,
    pub cluster: Option<Supervised>,
}

impl Database {
    /// Opens the configured database; with none configured, starts (and provisions)
    /// the embedded cluster in the data dir.
    pub async fn open(settings: &Settings) -> anyhow::Result<Self> {
        match &settings.database {
            DatabaseSettings::External { url, admin_url } => Ok(Self {
                urls: Urls {
                    app: url.clone(),
                    admin: admin_url.clone(),
                },
                cluster: None,
            }),
            DatabaseSettings::Embedded => {
                let dir = settings.data_dir.clone();
                let cluster =
                    tokio::task::spawn_blocking(move || Cluster::start(&dir, Durability::Durable))
                        .await??;
                let superuser = connect_one(&cluster.url(embedded::SUPERUSER, "postgres")).await?;
                ensure_roles(&superuser).await?;
                ensure_database(&superuser, DATABASE, None).await?;
                superuser.close().await;
                Ok(Self {
                    urls: embedded_urls(&cluster, DATABASE),
                    cluster: Some(Supervised::new(cluster)),
                })
            }
        }
    }

    /// Keeps the embedded cluster running from now on (for `serve`; one-shot
    /// commands that share a server's cluster must not restart it themselves).
    pub fn supervise(&mut self) -> std::io::Result<()> {
        match self.cluster.as_mut() {
            Some(cluster) => cluster.watch(),
            None => Ok(()),
        }
    }

    /// Stops the embedded cluster if this process started it.
    pub fn shutdown(mut self) {
        if let Some(cluster) = self.cluster.as_mut() {
            cluster.stop();
        }
    }
}

/// The URLs of the embedded cluster for `database`.
pub fn embedded_urls(cluster: &Cluster, database: &str) -> Urls {
    Urls {
        app: cluster.url(APP_ROLE, database).into(),
        admin: cluster.url(OWNER_ROLE, database).into(),
    }
}

/// A pool for the runtime (app) role.
pub async fn app_pool(url: &SecretString) -> anyhow::Result<PgPool> {
    let options = PgConnectOptions::from_str(url.expose_secret())
        .context("DATABASE_URL is not a valid PostgreSQL URL")?;
    PgPoolOptions::new()
        .max_connections(20)
        .acquire_timeout(Duration::from_secs(5))
        // sqlx checks every connection as it comes back to the pool; checking it
        // again on the way out costs a round trip per statement under load. Only
        // a connection that sat idle a while is checked (a restarted database).
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for > Duration::from_secs(1) {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
        .connect_with(options)
        .await
        .context("connecting to the database as the app role")
}

/// A small pool for the admin (owner) role.
pub async fn admin_pool(url: &SecretString) -> anyhow::Result<PgPool> {
    let options = PgConnectOptions::from_str(url.expose_secret())
        .context("DATABASE_ADMIN_URL is not a valid PostgreSQL URL")?;
    PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
        .context("connecting to the database as the admin role")
}

async fn connect_one(url: &str) -> anyhow::Result<PgPool> {
    let options = PgConnectOptions::from_str(url)?;
    Ok(PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await?)
}

/// Creates the owner and app roles if missing (needs a superuser connection).
pub async fn ensure_roles(superuser: &PgPool) -> anyhow::Result<()> {
    sqlx::query(&format!(
        "do $$ begin
            if not exists (select from pg_roles where rolname = '{OWNER_ROLE}') then
                create role {OWNER_ROLE} login nosuperuser bypassrls nocreatedb nocreaterole;
            end if;
            if not exists (select from pg_roles where rolname = '{APP_ROLE}') then
                create role {APP_ROLE} login nosuperuser nobypassrls nocreatedb nocreaterole noinherit;
            end if;
        end $$"
    ))
    .execute(superuser)
    .await
    .context("creating the database roles")?;
    Ok(())
}

/// Creates `name` owned by the owner role if it does not exist, optionally from a template.
pub async fn ensure_database(
    superuser: &PgPool,
    name: &str,
    template: Option<&str>,
) -> anyhow::Result<()> {
    let exists: bool =
        sqlx::query_scalar("select exists (select from pg_database where datname = $1)")
            .bind(name)
            .fetch_one(superuser)
            .await?;
    if !exists {
        let template = template
            .map(|t| format!(" template {}", quote_ident(t)))
            .unwrap_or_default();
        sqlx::query(&format!(
            "create database {} owner {OWNER_ROLE}{template}",
            quote_ident(name)
        ))
        .execute(superuser)
        .await
        .with_context(|| format!("creating database {name}"))?;
    }
    Ok(())
}

/// Runs the migrations as the owner, then grants
/// the app role exactly what it needs. Idempotent.
pub async fn migrate(admin: &PgPool, app_role: &str) -> anyhow::Result<()> {
    MIGRATOR.run(admin).await.context("running migrations")?;
    // Server secrets are never backed up: after a restore, make new ones.
    sqlx::query(
        "insert into paddock_private.secrets (name, value)
         select name, decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex')
         from unnest(array['identity', 'unknown_email_salt', 'attestation', 'device']) as name
         on conflict (name) do nothing",
    )
    .execute(admin)
    .await
    .context("creating the server secrets")?;
    let admin_role: String = sqlx::query_scalar("select current_user::text")
        .fetch_one(admin)
        .await?;
    if admin_role == app_role {
        // Granting "exactly what the app needs" to the owner would revoke the
        // owner's own rights; the posture check refuses this set-up anyway.
        tracing::warn!(
            role = app_role,
            "DATABASE_URL names the owner role: not granting it app privileges"
        );
        return Ok(());
    }
    let grants = include_str!("grants.sql").replace("{app}", &quote_ident(app_role));
    let mut tx = admin.begin().await?;
    // Replicas starting at once would otherwise race on the same catalog rows
    // ("tuple concurrently updated").
    sqlx::query("select pg_advisory_xact_lock(hashtextextended('paddock.grants', 0))")
        .execute(&mut *tx)
        .await?;
    sqlx::raw_sql(&grants)
        .execute(&mut *tx)
        .await
        .context("granting the app role its privileges")?;
    tx.commit().await?;
    Ok(())
}

/// The user name in a PostgreSQL URL (the app role to grant privileges to).
pub fn role_of(url: &SecretString) -> anyhow::Result<String> {
    let options = PgConnectOptions::from_str(url.expose_secret())
        .context("DATABASE_URL is not a valid PostgreSQL URL")?;
    Ok(options.get_username().to_owned())
}

/// Whether `error` is a violation of the constraint (or unique index) `name`:
/// the one place database constraint errors are recognized, so handlers can turn
/// them into form messages instead of 500s.
pub fn violates(error: &sqlx::Error, name: &str) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.constraint() == Some(name))
}

/// Quotes an SQL identifier.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
